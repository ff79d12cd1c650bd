/* The least a durable ADD can cost on this machine: a process that writes a small file, fdatasyncs it, exits. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 1;
    if (write(fd, "10.0.0.2 c eth0\n", 16) != 16) return 1;
    if (fdatasync(fd) != 0) return 1;
    return close(fd) == 0 ? 0 : 1;
}
