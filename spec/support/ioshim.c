/*
 * ioshim.c: an LD_PRELOAD shim for S2 (docs/RELIABILITY.md), mockeagain-style:
 * on non-blocking stream sockets and pipes, every other read or write
 * fails with EAGAIN and the others move one byte. Datagram sockets and
 * blocking fds are left alone. Built and loaded by stream_shim_spec.lua.
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static __thread unsigned calls;

/* Is fd a non-blocking stream socket or pipe? */
static int
target(int fd) {
    int fl = fcntl(fd, F_GETFL);
    struct stat st;
    if (fl < 0 || !(fl & O_NONBLOCK) || fstat(fd, &st) != 0)
        return 0;
    if (S_ISFIFO(st.st_mode))
        return 1;
    if (!S_ISSOCK(st.st_mode))
        return 0;
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_STREAM;
}

/* 1: fail with EAGAIN now; else *n is cut to one byte. */
static int
squeeze(int fd, size_t *n) {
    if (*n == 0 || !target(fd))
        return 0;
    if (calls++ & 1) {
        errno = EAGAIN;
        return 1;
    }
    *n = 1;
    return 0;
}

#define REAL(name) ((__typeof__(name) *)dlsym(RTLD_NEXT, #name))

ssize_t
read(int fd, void *buf, size_t n) {
    if (squeeze(fd, &n))
        return -1;
    return REAL(read)(fd, buf, n);
}

ssize_t
write(int fd, const void *buf, size_t n) {
    if (squeeze(fd, &n))
        return -1;
    return REAL(write)(fd, buf, n);
}

ssize_t
recv(int fd, void *buf, size_t n, int flags) {
    if (squeeze(fd, &n))
        return -1;
    return REAL(recv)(fd, buf, n, flags);
}

ssize_t
send(int fd, const void *buf, size_t n, int flags) {
    if (squeeze(fd, &n))
        return -1;
    return REAL(send)(fd, buf, n, flags);
}
