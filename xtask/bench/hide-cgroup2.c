/* crun's way onto a hybrid cgroup host, for `cargo xtask bench`: crun 1.8 refuses a host
 * with both v1 controllers and a cgroup2 mount at /sys/fs/cgroup/unified ("cgroups in hybrid
 * mode not supported"). This runs CMD in a private mount namespace of its own without that
 * mount; the host keeps it. What `unshare -m sh -c 'umount ... && exec CMD'` does, minus the
 * unshare and sh processes, so the bench can subtract a small, measured cost.
 *
 * usage: hide-cgroup2 CMD [ARGS...]
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: hide-cgroup2 CMD [ARGS...]\n"); return 2; }
    if (unshare(CLONE_NEWNS)) { perror("hide-cgroup2: unshare(CLONE_NEWNS)"); return 125; }
    /* Private first: an unmount in a namespace whose mounts are shared would reach the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) { perror("hide-cgroup2: make / private"); return 125; }
    if (umount2("/sys/fs/cgroup/unified", MNT_DETACH)) { perror("hide-cgroup2: umount /sys/fs/cgroup/unified"); return 125; }
    execvp(argv[1], argv + 1);
    perror("hide-cgroup2: exec");
    return 127;
}
