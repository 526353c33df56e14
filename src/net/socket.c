/*
 * socket.c: the transport of streams on a connected socket (TCP, Unix):
 * read, send without SIGPIPE, shutdown(SHUT_WR) for write_eof, and the
 * socket's get_extra_info names. Owns nothing: the stream owns the fd;
 * the transport keeps no state (tpdata stays NULL).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net.h"

static long
sock_read(struct lasio_stream *s, char *p, size_t n) {
    return (long)read(s->fd, p, n);
}

/* MSG_NOSIGNAL: a peer that is gone is EPIPE, never SIGPIPE, whatever
 * the process's disposition */
static long
sock_write(struct lasio_stream *s, const char *p, size_t n) {
    return (long)send(s->fd, p, n, MSG_NOSIGNAL);
}

static long
sock_write2(struct lasio_stream *s, const char *p1, size_t n1, const char *p2,
            size_t n2) {
    struct iovec iov[2] = {{(void *)p1, n1}, {(void *)p2, n2}};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    return (long)sendmsg(s->fd, &m, MSG_NOSIGNAL);
}

static void
sock_shutdown_write(struct lasio_stream *s) {
    shutdown(s->fd, SHUT_WR);
}

/* "peername" / "sockname" (address tables), "socket" (the fd). */
static int
sock_extra_info(lua_State *L, int streamidx, const char *name) {
    struct lasio_stream *s = lua_touserdata(L, streamidx);
    if (s->fd < 0)
        return 0;
    if (strcmp(name, "socket") == 0) {
        lua_pushinteger(L, s->fd);
        return 1;
    }
    if (strcmp(name, "peername") != 0 && strcmp(name, "sockname") != 0)
        return 0;
    lasio_pushsockname_(L, s->fd, name[0] == 'p');
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    return 0;
}

const struct lasio_transport lasio_socket_transport_ = {
    .name = "socket",
    .read = sock_read,
    .write = sock_write,
    .write2 = sock_write2,
    .shutdown_write = sock_shutdown_write,
    .extra_info = sock_extra_info,
    .eof = LASIO_TP_EOF_SHUTDOWN,
};
