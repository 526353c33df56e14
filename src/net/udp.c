/*
 * udp.c: lasio.open_datagram and DatagramEndpoint (docs/API.md, UDP):
 * send and recv with addresses, connected or not. Owns its fd, two events
 * and a receive buffer. Invariant: rev / wev are added iff a task waits in
 * recv / send, and that task is recorded in reader / writer.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "net/net.h"

#define LASIO_DGRAM_MT "lasio.DatagramEndpoint"
#define DGRAM_MAX 65536 /* larger than any UDP payload over IP */

enum { DGRAM_UV_LOOP = 1, DGRAM_NUV = DGRAM_UV_LOOP };

struct lasio_dgram {
    struct lasio_iolink link;
    struct lasio_loop *loop; /* kept alive by DGRAM_UV_LOOP */
    int fd;
    struct event *rev, *wev;
    struct lasio_task *reader, *writer;
    double timeout; /* seconds, < 0 for none */
    char *buf;      /* DGRAM_MAX bytes, allocated by the first recv */
    int family;
    unsigned char linked, connected, closed;
};

static struct lasio_dgram *
checkdgram(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_DGRAM_MT);
}

/* {====== Life cycle ====== */

/* Releases fd and events. Runs no Lua code. */
static void
release(struct lasio_dgram *d) {
    if (d->rev)
        event_free(d->rev);
    if (d->wev)
        event_free(d->wev);
    d->rev = d->wev = NULL;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    lasio_io_unlink_(d->loop, &d->link, &d->linked);
    free(d->buf);
    d->buf = NULL;
    d->closed = 1;
}

static void
release_link(struct lasio_iolink *link) {
    struct lasio_dgram *d = (struct lasio_dgram *)link;
    d->linked = 0;
    d->reader = d->writer = NULL;
    release(d);
}

static void
on_ready(evutil_socket_t fd, short what, void *arg) {
    struct lasio_dgram *d = arg;
    (void)fd;
    /* the waiting task keeps the endpoint reachable from its stack */
    if ((what & EV_READ) && d->reader)
        lasio_io_wake_cb_(d->loop, d->reader);
    if ((what & EV_WRITE) && d->writer)
        lasio_io_wake_cb_(d->loop, d->writer);
}

static int
dgram_close(lua_State *L) {
    struct lasio_dgram *d = checkdgram(L, 1);
    if (d->closed)
        return 0;
    release(d);
    if (d->reader)
        lasio_io_wake_(L, d->reader);
    if (d->writer)
        lasio_io_wake_(L, d->writer);
    return 0;
}

static int
dgram_gc(lua_State *L) {
    release(lua_touserdata(L, 1));
    return 0;
}

/* ====== } */

/* {====== recv and send ====== */

/* Stack of both: 1 endpoint, 2 data or nil, 3 address or nil, 4 the
 * deadline. */
#define BASE 4

static int
closed_error(lua_State *L, const char *op) {
    lasio_oserror_pushmsg_(L, op, EBADF, "the endpoint is closed");
    return lua_error(L);
}

static int recv_try(lua_State *L, struct lasio_dgram *d);
static int send_try(lua_State *L, struct lasio_dgram *d);
static int io_k(lua_State *L, int status, lua_KContext ctx);

/* Suspends the task until the socket is readable (recv) or writable
 * (send), or the deadline at 4 passes (then raises TimeoutError). */
static int
wait_io(lua_State *L, struct lasio_dgram *d, int sending) {
    const char *op = sending ? "send" : "recv";
    double deadline = lua_tonumber(L, 4);
    if (deadline > 0 && lasio_time_() >= deadline)
        return lasio_raise_(L, ERR_TIMEOUT, "%s: timed out", op);
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, op);
    if (loop != d->loop)
        return luaL_error(L, "%s: the endpoint belongs to another loop", op);
    if (sending && d->writer)
        return luaL_error(L, "send: another task is already waiting to send "
                             "on this endpoint");
    lasio_io_wait_(L, t, BASE, deadline);
    if (event_add(sending ? d->wev : d->rev, NULL) != 0) {
        lasio_io_unwait_(t);
        return luaL_error(L, "%s: cannot watch the socket", op);
    }
    *(sending ? &d->writer : &d->reader) = t;
    return lasio_io_yield_(L, sending, io_k);
}

/* After the wait: forgets the task and tries again. */
static int
io_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_dgram *d = lua_touserdata(L, 1);
    struct event *ev = ctx ? d->wev : d->rev;
    (void)status;
    *(ctx ? &d->writer : &d->reader) = NULL;
    if (ev)
        event_del(ev);
    if (lasio_io_resumed_(L, d->loop, BASE))
        return lua_error(L);
    return ctx ? send_try(L, d) : recv_try(L, d);
}

static int
recv_try(lua_State *L, struct lasio_dgram *d) {
    if (d->closed)
        return closed_error(L, "recv");
    if (!d->buf) {
        d->buf = malloc(DGRAM_MAX);
        if (!d->buf)
            return luaL_error(L, "not enough memory");
    }
    union lasio_sockaddr sa;
    for (;;) {
        socklen_t len = sizeof sa;
        memset(&sa, 0, sizeof sa);
        ssize_t n = recvfrom(d->fd, d->buf, DGRAM_MAX, 0, &sa.sa, &len);
        if (n >= 0) {
            lua_pushlstring(L, d->buf, (size_t)n);
            if (len > 0 && sa.sa.sa_family != AF_UNSPEC)
                lasio_pushaddr_(L, &sa.sa, len);
            else
                lasio_pushsockname_(L, d->fd, 1);
            return 2;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return lasio_oserror_raise_(L, "recv", errno);
        break;
    }
    return wait_io(L, d, 0);
}

/* endpoint:recv() -> data, addr */
static int
dgram_recv(lua_State *L) {
    struct lasio_dgram *d = checkdgram(L, 1);
    if (d->reader)
        return luaL_error(L, "recv: another task is already receiving on "
                             "this endpoint");
    lua_settop(L, 3);
    lua_pushnumber(L, lasio_io_deadline_(d->timeout));
    return recv_try(L, d);
}

/* The destination is in the userdata at 3 (nil: connected). */
static int
send_try(lua_State *L, struct lasio_dgram *d) {
    size_t n;
    const char *p = lua_tolstring(L, 2, &n);
    union lasio_sockaddr *to = lua_touserdata(L, 3);
    if (d->closed)
        return closed_error(L, "send");
    for (;;) {
        ssize_t w = to ? sendto(d->fd, p, n, 0, &to->sa,
                                to->sa.sa_family == AF_INET6
                                    ? sizeof(struct sockaddr_in6)
                                    : sizeof(struct sockaddr_in))
                       : send(d->fd, p, n, 0);
        if (w >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
            return lasio_oserror_raise_(L, "send", errno);
        break;
    }
    return wait_io(L, d, 1);
}

/* endpoint:send(data [, {host, port}]): returns once the kernel took the
 * datagram (at once, unless its buffer is full). */
static int
dgram_send(lua_State *L) {
    struct lasio_dgram *d = checkdgram(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING)
        return lasio_argerror_(
            L, 1, "endpoint:send",
            lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_settop(L, 3);
    if (lua_isnil(L, 3)) {
        if (!d->connected)
            return luaL_error(L, "send: no address, and the endpoint has no "
                                 "remote_addr");
    } else {
        if (d->connected)
            return luaL_error(L, "send: the endpoint is connected: no "
                                 "address allowed");
        union lasio_sockaddr *to = lua_newuserdatauv(L, sizeof *to, 0);
        socklen_t len;
        if (lasio_checkpair_(L, 3, "send", to, &len) != 0)
            return luaL_error(L, "send: the address must be numeric");
        if (to->sa.sa_family != d->family)
            return luaL_error(L, "send: address family does not match the "
                                 "endpoint's");
        lua_replace(L, 3);
    }
    lua_pushnumber(L, lasio_io_deadline_(d->timeout));
    return send_try(L, d);
}

/* ====== } */

/* {====== Other methods ====== */

static int
dgram_get_extra_info(lua_State *L) {
    struct lasio_dgram *d = checkdgram(L, 1);
    lasio_checkargtype_(L, 2, LUA_TSTRING, "endpoint:get_extra_info");
    const char *name = lua_tostring(L, 2);
    lua_settop(L, 3);
    if (d->fd >= 0 &&
        (strcmp(name, "peername") == 0 || strcmp(name, "sockname") == 0)) {
        lasio_pushsockname_(L, d->fd, name[0] == 'p');
        if (!lua_isnil(L, -1))
            return 1;
    } else if (d->fd >= 0 &&
               (strcmp(name, "fd") == 0 || strcmp(name, "socket") == 0)) {
        lua_pushinteger(L, d->fd);
        return 1;
    }
    lua_pushvalue(L, 3);
    return 1;
}

static int
dgram_settimeout(lua_State *L) {
    checkdgram(L, 1)->timeout = lasio_io_checktimeout_(L, 2, "settimeout");
    return 0;
}

static int
dgram_gettimeout(lua_State *L) {
    return lasio_io_pushtimeout_(L, checkdgram(L, 1)->timeout);
}

static int
dgram_is_closing(lua_State *L) {
    lua_pushboolean(L, checkdgram(L, 1)->closed);
    return 1;
}

static int
dgram_tostring(lua_State *L) {
    struct lasio_dgram *d = checkdgram(L, 1);
    lua_pushfstring(L, "lasio.DatagramEndpoint<fd=%d %s%s>", d->fd,
                    d->closed ? "closed" : "open",
                    d->connected ? " connected" : "");
    return 1;
}

static const luaL_Reg dgram_methods[] = {
    {"send", dgram_send},
    {"sendto", dgram_send},
    {"recv", dgram_recv},
    {"close", dgram_close},
    {"is_closing", dgram_is_closing},
    {"get_extra_info", dgram_get_extra_info},
    {"settimeout", dgram_settimeout},
    {"gettimeout", dgram_gettimeout},
    {NULL, NULL}};

/* ====== } */

/* {====== open_datagram ====== */

static const char *const dgram_opts[] = {"local_addr", "remote_addr",
                                         "reuse_port", "allow_broadcast",
                                         "family",     NULL};

static int
family_of(lua_State *L, int opts) {
    static const char *const names[] = {"inet", "inet6", NULL};
    static const int families[] = {AF_INET, AF_INET6};
    if (lasio_optfield_(L, opts, "family") == LUA_TNIL) {
        lua_pop(L, 1);
        return AF_UNSPEC;
    }
    int i = luaL_checkoption(L, -1, NULL, names);
    lua_pop(L, 1);
    return families[i];
}

/* The addresses of open_datagram, in a userdata at slot 2 while names
 * are resolved. */
struct od_addrs {
    union lasio_sockaddr sa[2]; /* local, remote */
    socklen_t len[2];
    int has[2];
};

static const char *const od_keys[] = {"local_addr", "remote_addr"};

static int od_step(lua_State *L, int which);

/* A name of address `which` was resolved: its first address is it. */
static int
od_resolved_k(lua_State *L, int status, lua_KContext ctx) {
    struct od_addrs *a = lua_touserdata(L, 2);
    int which = (int)ctx;
    (void)status;
    if (lasio_addrlist_get_(L, -1, 1, &a->sa[which], &a->len[which]) != 0)
        return luaL_error(L, "open_datagram: no address for %s",
                          od_keys[which]);
    a->has[which] = 1;
    lua_settop(L, 3);
    return od_step(L, which + 1);
}

/* Reads address `which` (0 local, 1 remote), resolving a name; then the
 * next; then makes the endpoint. */
static int
od_step(lua_State *L, int which) {
    const char *what = "open_datagram";
    struct od_addrs *a = lua_touserdata(L, 2);
    int family = (int)lua_tointeger(L, 3);
    int one = 1;
    for (; which < 2; which++) {
        if (lasio_optfield_(L, 1, od_keys[which]) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushfstring(L, "open_datagram: %s", od_keys[which]);
        if (lasio_checkpair_(L, -2, lua_tostring(L, -1), &a->sa[which],
                             &a->len[which]) == 0) {
            a->has[which] = 1;
            lua_settop(L, 3);
            continue;
        }
        /* a host name, left on top by lasio_checkpair_: resolve it */
        int pair = lua_gettop(L) - 2;
        if (lua_rawgeti(L, pair, 2) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_getfield(L, pair, "port");
        }
        int port = lasio_checkport_(L, -1, what);
        lua_pop(L, 1);
        int fam = family;
        if (fam == AF_UNSPEC && which == 1 && a->has[0])
            fam = a->sa[0].sa.sa_family;
        int nargs = lasio_push_resolve_(L, -1, port, fam, 1, 0);
        lua_callk(L, nargs, 1, which, od_resolved_k);
        return od_resolved_k(L, LUA_OK, which);
    }
    lua_settop(L, 3);
    int reuse_port = lasio_optboolean_(L, 1, "reuse_port",
                                       lasio_net_listeners_shared_(L), what);
    int broadcast = lasio_optboolean_(L, 1, "allow_broadcast", 0, what);
    if (a->has[0] && a->has[1] &&
        a->sa[0].sa.sa_family != a->sa[1].sa.sa_family)
        return luaL_error(L,
                          "%s: local_addr and remote_addr are of "
                          "different families",
                          what);
    if (family == AF_UNSPEC)
        family = a->has[0]   ? a->sa[0].sa.sa_family
                 : a->has[1] ? a->sa[1].sa.sa_family
                             : AF_INET;
    else if ((a->has[0] && a->sa[0].sa.sa_family != family) ||
             (a->has[1] && a->sa[1].sa.sa_family != family))
        return luaL_error(L, "%s: the addresses do not match the family", what);
    struct lasio_loop *loop = lasio_io_running_loop_(L, what);
    /* the endpoint first, closed; then the socket */
    struct lasio_dgram *d =
        lua_newuserdatauv(L, sizeof(struct lasio_dgram), DGRAM_NUV);
    memset(d, 0, sizeof *d);
    d->fd = -1;
    d->closed = 1;
    d->timeout = -1;
    d->loop = loop;
    d->family = family;
    luaL_setmetatable(L, LASIO_DGRAM_MT);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, -2, DGRAM_UV_LOOP);
    lasio_cap_sockets_(L, loop, what);
    d->fd = lasio_socket_(family, SOCK_DGRAM);
    if (d->fd < 0)
        return lasio_oserror_raise_(L, "socket", errno);
    d->closed = 0;
    d->link.release = release_link;
    lasio_iolink_add_(loop, &d->link);
    lasio_iolink_socket_(loop, &d->link);
    d->linked = 1;
    d->rev = event_new(loop->base, d->fd, EV_READ | EV_PERSIST, on_ready, d);
    d->wev = event_new(loop->base, d->fd, EV_WRITE | EV_PERSIST, on_ready, d);
    if (!d->rev || !d->wev)
        return luaL_error(L, "not enough memory");
    if (reuse_port &&
        setsockopt(d->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        return lasio_oserror_raise_(L, "setsockopt", errno);
    if (broadcast &&
        setsockopt(d->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0)
        return lasio_oserror_raise_(L, "setsockopt", errno);
    if (a->has[0] && bind(d->fd, &a->sa[0].sa, a->len[0]) != 0)
        return lasio_raise_addrerror_(L, "bind", errno, "binding", &a->sa[0].sa,
                                      a->len[0]);
    if (a->has[1]) {
        if (connect(d->fd, &a->sa[1].sa, a->len[1]) != 0)
            return lasio_raise_addrerror_(L, "connect", errno, "connecting to",
                                          &a->sa[1].sa, a->len[1]);
        d->connected = 1;
    }
    return 1;
}

/* lasio.open_datagram([opts]) -> DatagramEndpoint; host names in the
 * addresses are resolved (the call suspends then). */
static int
module_open_datagram(lua_State *L) {
    lasio_vclock_refuse_(L, "lasio.open_datagram");
    lua_settop(L, 1);
    lasio_checkopts_(L, 1, "open_datagram", dgram_opts);
    struct od_addrs *a = lua_newuserdatauv(L, sizeof *a, 0);
    memset(a, 0, sizeof *a);
    lua_pushinteger(L, family_of(L, 1));
    return od_step(L, 0);
}

static const luaL_Reg udp_funcs[] = {{"open_datagram", module_open_datagram},
                                     {NULL, NULL}};

void
lasio_udp_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_DGRAM_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, dgram_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, dgram_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, dgram_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, dgram_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, udp_funcs, 0);
}

/* ====== } */
