/* The kernel floor for `cargo xtask bench`: the least a container start can cost on this
 * kernel. One clone with the namespace flags of the seed sample, make mounts private, bind
 * the rootfs onto itself, pivot_root into it, detach the old root, mount /proc, exec.
 * No config, no /dev, no capabilities, no lifecycle: nsinit is measured against this.
 *
 * usage: floor ROOTFS CMD [ARGS...]
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *root = argv[1];
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
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
