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
 * usage: floor [--full] ROOTFS CMD [ARGS...]
 */
#define _GNU_SOURCE
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

int main(int argc, char **argv) {
    int full = argc > 1 && strcmp(argv[1], "--full") == 0;
    if (argc < 3 + full) { fprintf(stderr, "usage: floor [--full] ROOTFS CMD [ARGS...]\n"); return 2; }
    const char *root = argv[1 + full];
    char **cmd = argv + 2 + full;
    pid_t pid = syscall(SYS_clone, CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET|SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) { perror("clone"); return 125; }
    if (pid == 0) {
        if (mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)) _exit(125);
        if (mount(root, root, NULL, MS_BIND|MS_REC, NULL)) _exit(125);
        if (chdir(root)) _exit(125);
        if (syscall(SYS_pivot_root, ".", ".")) _exit(125);
        if (umount2(".", MNT_DETACH)) _exit(125);
        if (chdir("/")) _exit(125);
        if (mount("proc", "/proc", "proc", MS_NOSUID|MS_NOEXEC|MS_NODEV, NULL)) _exit(125);
        if (full) full_setup();
        execv(cmd[0], cmd);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
