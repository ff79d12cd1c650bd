/* The node VM's initrd init (make node-test): loads the modules for a virtio disk and ext4, mounts /dev/vda
 * and hands the machine to the image's systemd. In C, static, without udev: Debian's initramfs-tools initrd
 * takes seconds longer under software emulation, and a static busybox one failed (docs/reliability.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(const char *what, const char *detail)
{
    fprintf(stderr, "node-init: %s %s (%s)\n", what, detail, strerror(errno));
}

static int __attribute__((noreturn)) halt_here(void)
{
    /* PID 1 must not exit (the kernel would panic and QEMU reboot): the host sees no boot and says so. */
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    (void)argc;
    mkdir("/dev", 0755);
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, "") != 0)
        say("cannot mount", "/dev");
    freopen("/dev/console", "w", stderr);

    /* /modules/order: one file name per line, in load order (a module's dependencies first). */
    FILE *order = fopen("/modules/order", "r");
    char name[256], path[300];
    while (order && fgets(name, sizeof name, order)) {
        name[strcspn(name, "\n")] = 0;
        if (!name[0])
            continue;
        snprintf(path, sizeof path, "/modules/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST))
            say("cannot load", path);
        if (fd >= 0)
            close(fd);
    }

    /* The disk appears when virtio_blk has probed it, shortly after its module loaded. */
    struct stat st;
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; stat("/dev/vda", &st) != 0; i++) {
        if (i == 1000) {
            say("no disk", "/dev/vda");
            return halt_here();
        }
        nanosleep(&tick, NULL);
    }
    mkdir("/root", 0755);
    if (mount("/dev/vda", "/root", "ext4", 0, "") != 0) {
        say("cannot mount", "/dev/vda");
        return halt_here();
    }
    if (mount("/dev", "/root/dev", NULL, MS_MOVE, NULL) != 0)
        say("cannot move", "/dev");
    if (chdir("/root") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
        say("cannot switch to", "/dev/vda");
        return halt_here();
    }
    argv[0] = "/sbin/init";
    execv("/sbin/init", argv);
    say("cannot start", "/sbin/init");
    return halt_here();
}
