/*
 * connect.c: lasio.open_connection / open_unix_connection (API.md section
 * 9): resolve, then try each address with a non-blocking connect, then
 * the TLS handshake, all within one `timeout`. The request on the caller's
 * stack owns the addresses; each attempt's stream owns its socket.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "tls.h"

#define MAXADDRS 16

/* Stack of open_connection while it runs: */
enum {
    ARG_HOST = 1, /* host or path */
    ARG_PORT,     /* port or nil */
    ARG_OPTS,     /* options or nil */
    SLOT_REQ,     /* struct conn_req */
    SLOT_STREAM,  /* the stream of the current attempt, or nil */
    SLOT_ERR,     /* error of the last failed attempt, or nil */
    SLOT_CTX,     /* the SSLContext, or nil */
    SLOT_SNI,     /* the name the server's certificate must have, or nil */
    BASE = SLOT_SNI
};

struct conn_req {
    int n, next; /* addresses, and the next one to try */
    double deadline, hs_timeout;
    int nodelay, has_local;
    size_t limit;
    union lasio_sockaddr local;
    socklen_t local_len;
    socklen_t len[MAXADDRS];
    union lasio_sockaddr sa[MAXADDRS];
};

static const char *const tcp_opts[] = {
    "ssl",   "server_hostname", "local_addr", "timeout",
    "limit", "nodelay",         "family",     "ssl_handshake_timeout",
    NULL};
static const char *const unix_opts[] = {
    "ssl",   "server_hostname",       "timeout",
    "limit", "ssl_handshake_timeout", NULL};

static int try_next(lua_State *L, struct conn_req *r);

/* The TLS handshake ended: returns reader, writer, or releases the
 * socket at once and raises. */
static int
handshake_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_stream *s = lua_touserdata(L, SLOT_STREAM);
    (void)ctx;
    if (status != LUA_OK && status != LUA_YIELD) {
        lasio_stream_release_(s);
        return lua_error(L);
    }
    lua_settop(L, BASE);
    lasio_stream_pushviews_(L, SLOT_STREAM);
    return 2;
}

/* The connection is up: returns reader, writer (after the handshake
 * with ssl). */
static int
connected(lua_State *L, struct lasio_stream *s) {
    struct conn_req *r = lua_touserdata(L, SLOT_REQ);
    lasio_stream_connected_(s);
    lua_settop(L, BASE);
    if (lua_isnil(L, SLOT_CTX)) {
        lasio_stream_pushviews_(L, SLOT_STREAM);
        return 2;
    }
    lasio_tls_attach_(L, SLOT_STREAM, SLOT_CTX, lua_tostring(L, SLOT_SNI), 0);
    double deadline = lasio_io_deadline_(r->hs_timeout);
    if (r->deadline > 0 && (deadline == 0 || r->deadline < deadline))
        deadline = r->deadline;
    int n = lasio_tls_push_handshake_(L, SLOT_STREAM, deadline);
    int status = lua_pcallk(L, n, 0, 0, 0, handshake_k);
    return handshake_k(L, status, 0);
}

/* The attempt in SLOT_STREAM failed with err: on to the next address. */
static int
attempt_failed(lua_State *L, struct conn_req *r, int err) {
    struct lasio_stream *s = lua_touserdata(L, SLOT_STREAM);
    lasio_stream_release_(s);
    lasio_oserror_push_(L, "connect", err);
    lua_replace(L, SLOT_ERR);
    lua_pushnil(L);
    lua_replace(L, SLOT_STREAM);
    return try_next(L, r);
}

static int
connect_k(lua_State *L, int status, lua_KContext ctx) {
    struct conn_req *r = lua_touserdata(L, SLOT_REQ);
    struct lasio_stream *s = lua_touserdata(L, SLOT_STREAM);
    (void)status, (void)ctx;
    s->reader = NULL;
    if (lasio_io_resumed_(L, s->loop, BASE)) {
        lasio_stream_release_(s);
        return lua_error(L);
    }
    if (s->released) /* the loop was closed */
        return luaL_error(L, "open_connection: the loop is closed");
    if (s->connecting) { /* not writable yet: the deadline came */
        if (r->deadline > 0 && lasio_time_() >= r->deadline) {
            lasio_stream_release_(s);
            return lasio_raise_(L, ERR_TIMEOUT, "connect: timed out");
        }
        struct lasio_loop *loop;
        struct lasio_task *t = lasio_check_await_(L, &loop, "connect");
        lasio_io_wait_(L, t, BASE, r->deadline);
        s->reader = t;
        return lasio_io_yield_(L, 0, connect_k);
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0)
        return connected(L, s);
    return attempt_failed(L, r, err);
}

/* Starts a connect to address r->next - 1 on a new stream in
 * SLOT_STREAM. */
static int
try_next(lua_State *L, struct conn_req *r) {
    struct lasio_loop *loop;
    while (r->next < r->n) {
        int i = r->next++;
        if (r->deadline > 0 && lasio_time_() >= r->deadline)
            return lasio_raise_(L, ERR_TIMEOUT, "connect: timed out");
        struct lasio_task *t = lasio_check_await_(L, &loop, "connect");
        struct lasio_stream *s = lasio_stream_new_(L, loop);
        s->limit = r->limit;
        lua_replace(L, SLOT_STREAM);
        int family = r->sa[i].sa.sa_family;
        int fd = lasio_socket_(family, SOCK_STREAM);
        if (fd < 0) {
            lasio_oserror_push_(L, "socket", errno);
            lua_replace(L, SLOT_ERR);
            continue;
        }
        int one = 1;
        if (family != AF_UNIX && r->nodelay)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (r->has_local && r->local.sa.sa_family == family &&
            bind(fd, &r->local.sa, r->local_len) != 0) {
            int err = errno;
            close(fd);
            lasio_oserror_push_(L, "bind", err);
            lua_replace(L, SLOT_ERR);
            continue;
        }
        int rc;
        do
            rc = connect(fd, &r->sa[i].sa, r->len[i]);
        while (rc != 0 && errno == EINTR);
        int err = rc == 0 ? 0 : errno;
        if (rc != 0 && err != EINPROGRESS) {
            close(fd);
            lasio_oserror_push_(L, "connect", err);
            lua_replace(L, SLOT_ERR);
            continue;
        }
        lasio_stream_attach_(L, s, fd, 1, rc != 0);
        if (rc == 0)
            return connected(L, s);
        lasio_io_wait_(L, t, BASE, r->deadline);
        s->reader = t;
        return lasio_io_yield_(L, 0, connect_k);
    }
    if (lua_isnil(L, SLOT_ERR))
        return luaL_error(L, "open_connection: no address to connect to");
    lua_pushvalue(L, SLOT_ERR); /* the last attempt's error */
    return lua_error(L);
}

/* Common start: the request is at SLOT_REQ; the stack is cut to BASE. */
static int
start(lua_State *L, struct conn_req *r) {
    lua_settop(L, BASE);
    return try_next(L, r);
}

/* The host name was resolved: its address list is on top. */
static int
resolved_k(lua_State *L, int status, lua_KContext ctx) {
    struct conn_req *r = lua_touserdata(L, SLOT_REQ);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    (void)status, (void)ctx;
    for (lua_Integer i = 1; i <= n && r->n < MAXADDRS; i++)
        if (lasio_addrlist_get_(L, list, i, &r->sa[r->n], &r->len[r->n]) == 0)
            r->n++;
    return start(L, r);
}

static struct conn_req *
newreq(lua_State *L) {
    struct conn_req *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    lua_replace(L, SLOT_REQ);
    return r;
}

/* Reads the options common to both calls: limit, timeout, and ssl,
 * server_hostname, ssl_handshake_timeout into SLOT_CTX and SLOT_SNI
 * (host: the default name, at hostidx, or 0). */
static double
common_opts(lua_State *L, struct conn_req *r, int hostidx, const char *what) {
    r->limit = (size_t)lasio_optinteger_(L, ARG_OPTS, "limit",
                                         LASIO_STREAM_LIMIT, 1, what);
    lasio_optfield_(L, ARG_OPTS, "timeout");
    double timeout = lasio_io_checktimeout_(L, -1, what);
    lua_pop(L, 1);
    lasio_optfield_(L, ARG_OPTS, "ssl_handshake_timeout");
    r->hs_timeout = lua_isnil(L, -1) ? 60 /* asyncio's default */
                                     : lasio_io_checktimeout_(L, -1, what);
    lua_pop(L, 1);
    int sni = lasio_optfield_(L, ARG_OPTS, "server_hostname");
    if (sni != LUA_TNIL && sni != LUA_TSTRING)
        luaL_error(L, "%s: server_hostname must be a string", what);
    if (lasio_optfield_(L, ARG_OPTS, "ssl") == LUA_TNIL ||
        (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
        if (sni != LUA_TNIL)
            luaL_error(L, "%s: server_hostname is only meaningful with ssl",
                       what);
        lua_pop(L, 2);
        return timeout;
    }
    lasio_tls_checkctx_(L, -1, what);
    if (lasio_tls_is_server_(L, -1))
        luaL_error(L, "%s: ssl is a server context", what);
    lua_replace(L, SLOT_CTX);
    if (sni == LUA_TNIL) {
        if (!hostidx)
            luaL_error(L, "%s: server_hostname is required with ssl", what);
        lua_pushvalue(L, hostidx);
        lua_replace(L, -2);
    }
    lua_replace(L, SLOT_SNI);
    return timeout;
}

/* lasio.open_connection(host, port [, opts]) -> reader, writer */
static int
lasio_open_connection(lua_State *L) {
    const char *what = "open_connection";
    const char *host = luaL_checkstring(L, ARG_HOST);
    int port = lasio_checkport_(L, ARG_PORT, what);
    lua_settop(L, ARG_OPTS);
    lasio_checkopts_(L, ARG_OPTS, what, tcp_opts);
    lua_settop(L, BASE);
    struct conn_req *r = newreq(L);
    double timeout = common_opts(L, r, ARG_HOST, what);
    r->deadline = lasio_io_deadline_(timeout);
    r->nodelay = lasio_optboolean_(L, ARG_OPTS, "nodelay", 1, what);
    int family = AF_UNSPEC;
    if (lasio_optfield_(L, ARG_OPTS, "family") != LUA_TNIL) {
        const char *f = lua_tostring(L, -1);
        if (!f || (strcmp(f, "inet") && strcmp(f, "inet6")))
            luaL_error(L, "%s: family must be \"inet\" or \"inet6\"", what);
        family = f[4] == '6' ? AF_INET6 : AF_INET;
    }
    lua_pop(L, 1);
    if (lasio_optfield_(L, ARG_OPTS, "local_addr") != LUA_TNIL) {
        if (lasio_checkpair_(L, -1, "open_connection: local_addr", &r->local,
                             &r->local_len) != 0)
            luaL_error(L, "%s: local_addr must be a numeric address", what);
        r->has_local = 1;
    }
    lua_pop(L, 1);
    if (lasio_parseaddr_(host, port, family, &r->sa[0], &r->len[0]) == 0) {
        r->n = 1;
        return start(L, r);
    }
    /* a host name: resolve it first (within the same timeout) */
    lua_settop(L, BASE);
    int n = lasio_push_resolve_(L, ARG_HOST, port, family, 0, r->deadline);
    lua_callk(L, n, 1, 0, resolved_k);
    return resolved_k(L, LUA_OK, 0);
}

/* lasio.open_unix_connection(path [, opts]) -> reader, writer */
static int
lasio_open_unix_connection(lua_State *L) {
    const char *what = "open_unix_connection";
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    lua_settop(L, 2);
    lua_pushnil(L);
    lua_insert(L, ARG_PORT); /* path, nil, opts */
    lasio_checkopts_(L, ARG_OPTS, what, unix_opts);
    lua_settop(L, BASE);
    struct conn_req *r = newreq(L);
    r->deadline = lasio_io_deadline_(common_opts(L, r, 0, what));
    r->len[0] = lasio_unixaddr_(L, path, len, &r->sa[0], what);
    r->n = 1;
    return start(L, r);
}

static const luaL_Reg connect_funcs[] = {
    {"open_connection", lasio_open_connection},
    {"open_unix_connection", lasio_open_unix_connection},
    {NULL, NULL}};

int
luaopen_lasio_connect_(lua_State *L) {
    luaL_setfuncs(L, connect_funcs, 0);
    return 0;
}
