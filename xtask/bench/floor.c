/* The kernel floor for `cargo xtask bench`: the least a container start can cost on this
 * kernel. One clone with the namespace flags of the seed sample, make mounts private, bind
 * the rootfs onto itself, pivot_root into it, detach the old root, mount /proc, exec.
 * No config, no /dev, no capabilities, no lifecycle: nsinit is measured against this.
 *
 * With --full it also does the kernel work nsinit's start asks for (the seed's sample
 * without network and cgroups): /sys, a /dev tmpfs with its nodes and links, devpts, shm,
 * mqueue, the hostname, `lo` up, the seed's capabilities dropped from the bounding set. The
 * gap between the two floors is what those features cost the kernel; the gap between the
 * full floor and nsinit is nsinit's own work.
 *
 * With --hardened FILTER it does what --full does plus the kernel work of nsinit's hardened
 * default (container.json without a `security` opt-out): the rootfs bound `nodev`, the
 * masked paths hidden (/dev/null bound over files, an empty read-only tmpfs over
 * directories), the read-only paths bound read-only onto themselves, no_new_privs, and the
 * seccomp filter in FILTER (a raw array of struct sock_filter, flags 0: the bench writes
 * nsinit's default program there) loaded last before exec. The lists are those of
 * runtime/src/spec/container_json/lower.rs (a test of xtask keeps them equal).
 *
 * usage: floor [--full | --hardened FILTER] ROOTFS CMD [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* What nsinit adds inside the container after /proc; exits 125 on the first failure. */
static void full_setup(void) {
    static const struct { const char *path; int major, minor; } nodes[] = {
        {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
        {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
    };
    static const char *links[][2] = {
        {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        {"pts/ptmx", "/dev/ptmx"},
    };
    /* SETPCAP SYS_MODULE SYS_RAWIO SYS_PACCT SYS_ADMIN SYS_NICE SYS_RESOURCE SYS_TIME
     * SYS_TTY_CONFIG MKNOD AUDIT_WRITE AUDIT_CONTROL MAC_OVERRIDE MAC_ADMIN */
    static const int caps[] = {8, 16, 17, 20, 21, 23, 24, 25, 26, 27, 29, 30, 32, 33};
    if (mount("sysfs", "/sys", "sysfs", MS_RDONLY|MS_NOSUID|MS_NOEXEC|MS_NODEV, NULL)) _exit(125);
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID|MS_STRICTATIME, "mode=755,size=65536k")) _exit(125);
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
        if (mknod(nodes[i].path, S_IFCHR|0666, makedev(nodes[i].major, nodes[i].minor))) _exit(125);
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1])) _exit(125);
    if (mkdir("/dev/pts", 0755) || mount("devpts", "/dev/pts", "devpts", MS_NOSUID|MS_NOEXEC,
                                         "newinstance,ptmxmode=0666,mode=0620")) _exit(125);
    if (mkdir("/dev/shm", 0755) || mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC,
                                         "mode=1777,size=65536k")) _exit(125);
    if (mkdir("/dev/mqueue", 0755) || mount("mqueue", "/dev/mqueue", "mqueue",
                                            MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)) _exit(125);
    if (sethostname("koye", 4)) _exit(125);
    struct ifreq lo;
    memset(&lo, 0, sizeof lo);
    strcpy(lo.ifr_name, "lo");
    int sock = socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0);
    if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &lo)) _exit(125);
    lo.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &lo)) _exit(125);
    close(sock);
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (prctl(PR_CAPBSET_DROP, caps[i])) _exit(125);
}

/* nsinit's MASKED_PATHS and READONLY_PATHS (runtime/src/spec/container_json/lower.rs). */
static const char *masked[] = {
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
static const char *readonly[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* The per-mount flags of the mount under `path` a bind remount must repeat. */
static unsigned long kept_flags(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st)) _exit(125);
    static const struct { unsigned long st, ms; } flags[] = {
        {ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},
    };
    unsigned long kept = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (st.f_flag & flags[i].st) kept |= flags[i].ms;
    return kept;
}

/* The masks and read-only binds of the hardened default; a path this kernel lacks is skipped. */
static void hardened_paths(void) {
    struct stat st;
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        if (lstat(masked[i], &st)) { if (errno == ENOENT) continue; _exit(125); }
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", masked[i], "tmpfs", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC,
                      "size=0,mode=555")) _exit(125);
        } else if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL)) _exit(125);
    }
    for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
        if (lstat(readonly[i], &st)) { if (errno == ENOENT) continue; _exit(125); }
        if (mount(readonly[i], readonly[i], NULL, MS_BIND|MS_REC, NULL)) _exit(125);
        if (mount(NULL, readonly[i], NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|kept_flags(readonly[i]), NULL))
            _exit(125);
    }
}

/* Reads a raw sock_filter array from `path` (exits 125 when it is not one). */
static struct sock_fprog read_filter(const char *path) {
    static struct sock_filter program[BPF_MAXINSNS];
    int fd = open(path, O_RDONLY|O_CLOEXEC);
    if (fd < 0) { perror(path); exit(125); }
    ssize_t n = read(fd, program, sizeof program);
    close(fd);
    if (n <= 0 || n % sizeof program[0]) { fprintf(stderr, "%s: not a BPF program\n", path); exit(125); }
    return (struct sock_fprog){.len = n / sizeof program[0], .filter = program};
}

int main(int argc, char **argv) {
    int full = argc > 1 && strcmp(argv[1], "--full") == 0;
    int hardened = argc > 2 && strcmp(argv[1], "--hardened") == 0;
    int skip = full + 2 * hardened;
    if (argc < 3 + skip) {
        fprintf(stderr, "usage: floor [--full | --hardened FILTER] ROOTFS CMD [ARGS...]\n");
        return 2;
    }
    struct sock_fprog filter = {0};
    if (hardened) filter = read_filter(argv[2]);
    const char *root = argv[1 + skip];
    char **cmd = argv + 2 + skip;
    pid_t pid = syscall(SYS_clone, CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET|SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) { perror("clone"); return 125; }
    if (pid == 0) {
        if (mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)) _exit(125);
        if (mount(root, root, NULL, MS_BIND|MS_REC, NULL)) _exit(125);
        if (hardened && mount(NULL, root, NULL, MS_BIND|MS_REMOUNT|MS_NODEV|kept_flags(root), NULL))
            _exit(125);
        if (chdir(root)) _exit(125);
        if (syscall(SYS_pivot_root, ".", ".")) _exit(125);
        if (umount2(".", MNT_DETACH)) _exit(125);
        if (chdir("/")) _exit(125);
        if (mount("proc", "/proc", "proc", MS_NOSUID|MS_NOEXEC|MS_NODEV, NULL)) _exit(125);
        if (full || hardened) full_setup();
        if (hardened) {
            hardened_paths();
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(125);
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter)) _exit(125);
        }
        execv(cmd[0], cmd);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
