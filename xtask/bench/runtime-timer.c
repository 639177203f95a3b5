/* A runtime as the engines call it, timed, for `cargo xtask engines --bench`. Registered
 * under podman, ctr and the CRI in place of the runtime, it forks the real runtime with the
 * same arguments, waits for that one process and appends a line to the log:
 *
 *     START_NS END_NS USER_US SYS_US VERB
 *
 * START_NS and END_NS are CLOCK_MONOTONIC (the runtime's execve, its reaping), USER_US and
 * SYS_US its CPU time (itself and what it reaped). Only the runtime process's own lifetime
 * counts: what `create` leaves running (the container's process) is not waited for. A
 * wrapper that exec'd the runtime would leave nothing to time.
 *
 * The runtime and the log are compiled in (-DRUNTIME="..." -DLOG="..."), so the arguments
 * pass through unchanged; with -DHIDE_CGROUP2 the child first does hide-cgroup2.c's work
 * (crun on a hybrid cgroup host), before its start is taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if !defined(RUNTIME) || !defined(LOG)
#error "build with -DRUNTIME=\"/path/to/runtime\" -DLOG=\"/path/to/log\""
#endif

static volatile pid_t child;

static void forward(int sig) {
    if (child > 0) kill(child, sig);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The runtime's command: the first argument that is neither a flag nor a global flag's value. */
static const char *verb(char **argv) {
    for (int i = 1; argv[i]; i++) {
        const char *a = argv[i];
        if (a[0] != '-') return a;
        if (!strchr(a, '=') && (!strcmp(a, "--root") || !strcmp(a, "--log") ||
                                !strcmp(a, "--log-format") || !strcmp(a, "--criu")))
            i++;
        if (!argv[i]) break;
    }
    return "-";
}

int main(int argc, char **argv) {
    (void)argc;
    int gate[2];
    if (pipe2(gate, O_CLOEXEC)) { perror("runtime-timer: pipe"); return 125; }
    child = fork();
    if (child < 0) { perror("runtime-timer: fork"); return 125; }
    if (child == 0) {
        close(gate[0]);
#ifdef HIDE_CGROUP2
        if (unshare(CLONE_NEWNS)) { perror("runtime-timer: unshare(CLONE_NEWNS)"); _exit(125); }
        /* Private first: an unmount in a namespace whose mounts are shared would reach the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) { perror("runtime-timer: make / private"); _exit(125); }
        if (umount2("/sys/fs/cgroup/unified", MNT_DETACH)) { perror("runtime-timer: umount /sys/fs/cgroup/unified"); _exit(125); }
#endif
        long long start = now_ns();
        if (write(gate[1], &start, sizeof start) != sizeof start) _exit(125);
        close(gate[1]);
        argv[0] = RUNTIME;
        execv(RUNTIME, argv);
        perror("runtime-timer: exec " RUNTIME);
        _exit(127);
    }
    close(gate[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &sa, NULL);

    long long start = 0;
    ssize_t got;
    do got = read(gate[0], &start, sizeof start); while (got < 0 && errno == EINTR);
    close(gate[0]);
    int status;
    struct rusage usage;
    pid_t waited;
    do waited = wait4(child, &status, 0, &usage); while (waited < 0 && errno == EINTR);
    long long end = now_ns();
    if (waited < 0) { perror("runtime-timer: wait4"); return 125; }

    if (got == sizeof start) {
        char line[256];
        long long user = usage.ru_utime.tv_sec * 1000000LL + usage.ru_utime.tv_usec;
        long long sys = usage.ru_stime.tv_sec * 1000000LL + usage.ru_stime.tv_usec;
        int n = snprintf(line, sizeof line, "%lld %lld %lld %lld %.64s\n", start, end, user, sys, verb(argv));
        int log = open(LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        /* One write: lines from concurrent calls never interleave. */
        if (log < 0 || write(log, line, n) != n) perror("runtime-timer: " LOG);
        if (log >= 0) close(log);
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
