/* The peak RSS of a command, for `cargo xtask bench`: fork, exec CMD, wait4, write the
 * child's ru_maxrss (KiB: the command and the processes it reaped) to OUT. Measured from a
 * fork of this small static program, because a process exec'd straight from the bench
 * carries the bench's own high-water mark into ru_maxrss (the kernel records the old mm's
 * peak at execve). What /usr/bin/time -f %M does, without the dependency.
 *
 * usage: peak-rss OUT CMD [ARGS...]; exits with CMD's status (128+N when killed by N).
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: peak-rss OUT CMD [ARGS...]\n"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("peak-rss: fork"); return 125; }
    if (pid == 0) { execvp(argv[2], argv + 2); perror("peak-rss: exec"); _exit(127); }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) { perror("peak-rss: wait4"); return 125; }
    FILE *out = fopen(argv[1], "w");
    if (!out || fprintf(out, "%ld\n", usage.ru_maxrss) < 0 || fclose(out)) { perror(argv[1]); return 125; }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
