/*
 * connect.c: lasio.open_connection / open_unix_connection (docs/API.md,
 * TCP and Unix streams): resolve, then connect (happy eyeballs, RFC 8305 lite:
 * the addresses of a name are tried in turn, families interleaved, each attempt
 * started `happy_eyeballs_delay` after the previous one unless that one
 * already failed; the first to connect wins and the others are closed),
 * then the TLS handshake, all within one `timeout`. The request on the
 * caller's stack owns the addresses; each attempt's stream owns its
 * socket.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"

#define MAXADDRS 16

/* Stack of open_connection while it runs: */
enum {
    ARG_HOST = 1, /* host or path */
    ARG_PORT,     /* port or nil */
    ARG_OPTS,     /* options or nil */
    SLOT_REQ,     /* struct conn_req */
    SLOT_STREAM,  /* the stream that connected, or nil */
    SLOT_TRIES,   /* attempt i -> its stream while it connects, or false */
    SLOT_ERRS,    /* the errors of the failed attempts, in order */
    SLOT_CTX,     /* the SSLContext, or nil */
    SLOT_SNI,     /* the name the server's certificate must have, or nil */
    BASE = SLOT_SNI
};

#define HAPPY_EYEBALLS_DELAY 0.25 /* RFC 8305's recommended delay */

struct conn_req {
    int n, next; /* addresses, and the next one to try */
    int live;    /* attempts connecting now */
    double deadline, hs_timeout;
    double delay;   /* happy_eyeballs_delay, < 0: one attempt at a time */
    double next_at; /* when the next attempt may start */
    int nodelay, has_local;
    size_t limit;
    union lasio_sockaddr local;
    socklen_t local_len;
    socklen_t len[MAXADDRS];
    union lasio_sockaddr sa[MAXADDRS];
};

static const char *const tcp_opts[] = {"ssl",
                                       "server_hostname",
                                       "local_addr",
                                       "timeout",
                                       "limit",
                                       "nodelay",
                                       "family",
                                       "ssl_handshake_timeout",
                                       "happy_eyeballs_delay",
                                       NULL};
static const char *const unix_opts[] = {
    "ssl",   "server_hostname",       "timeout",
    "limit", "ssl_handshake_timeout", NULL};

static int advance(lua_State *L, struct conn_req *r);

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

/* {====== Attempts ====== */

/* Records the error on top (of the attempt to address i) in SLOT_ERRS,
 * with the address it was for. [-1, +0, m] */
static void
add_error(lua_State *L, struct conn_req *r, int i) {
    lua_Integer k = (lua_Integer)lua_rawlen(L, SLOT_ERRS) + 1;
    if (r->sa[i].sa.sa_family != AF_UNIX) {
        lasio_pushaddr_(L, &r->sa[i].sa, r->len[i]);
        lua_setfield(L, -2, "address");
    }
    lua_rawseti(L, SLOT_ERRS, k);
}

/* Records the failure of op for the attempt to address i, as an OSError
 * whose message names that address. */
static void
attempt_failed(lua_State *L, struct conn_req *r, int i, const char *op,
               int err) {
    lasio_pushaddrstr_(L, &r->sa[i].sa, r->len[i]);
    const char *msg = lua_pushfstring(L, "%s (while connecting to %s)",
                                      strerror(err), lua_tostring(L, -1));
    lasio_oserror_pushmsg_(L, op, err, msg);
    lua_replace(L, -3);
    lua_pop(L, 1);
    add_error(L, r, i);
}

/* Releases every attempt still connecting. */
static void
drop_attempts(lua_State *L, struct conn_req *r) {
    for (int i = 1; i <= r->next; i++) {
        if (lua_rawgeti(L, SLOT_TRIES, i) == LUA_TUSERDATA)
            lasio_stream_release_(lua_touserdata(L, -1));
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_rawseti(L, SLOT_TRIES, i);
    }
    r->live = 0;
}

/* Starts the connect to address r->next on a new stream (attempt
 * r->next + 1 in SLOT_TRIES); a failure at once is recorded. */
static void
start_attempt(lua_State *L, struct conn_req *r, struct lasio_loop *loop) {
    int i = r->next++;
    lua_pushboolean(L, 0);
    lua_rawseti(L, SLOT_TRIES, i + 1);
    struct lasio_stream *s = lasio_stream_new_(L, loop);
    s->limit = r->limit;
    int family = r->sa[i].sa.sa_family;
    int fd = lasio_socket_(family, SOCK_STREAM);
    if (fd < 0) {
        attempt_failed(L, r, i, "socket", errno);
        lua_pop(L, 1);
        return;
    }
    int one = 1;
    if (family != AF_UNIX && r->nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (r->has_local && r->local.sa.sa_family == family &&
        bind(fd, &r->local.sa, r->local_len) != 0) {
        int err = errno;
        close(fd);
        attempt_failed(L, r, i, "bind", err);
        lua_pop(L, 1);
        return;
    }
    int rc;
    do
        rc = connect(fd, &r->sa[i].sa, r->len[i]);
    while (rc != 0 && errno == EINTR);
    int err = rc == 0 ? 0 : errno;
    if (rc != 0 && err != EINPROGRESS) {
        close(fd);
        attempt_failed(L, r, i, "connect", err);
        lua_pop(L, 1);
        return;
    }
    if (lasio_stream_attach_(s, fd, &lasio_socket_transport_,
                             rc != 0 ? LASIO_ATTACH_CONNECTING : 0) < 0)
        luaL_error(L, "not enough memory");
    lasio_iolink_socket_(loop, &s->link);
    lua_rawseti(L, SLOT_TRIES, i + 1);
    r->live++;
}

/* Pushes the address of an attempt's error as messages write it. */
static void
push_where(lua_State *L, int err) {
    lua_getfield(L, err, "address");
    lua_getfield(L, -1, "addr");
    lua_getfield(L, -2, "port");
    lua_getfield(L, -3, "family");
    const char *fmt =
        lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "inet6") == 0
            ? "[%s]:%s"
            : "%s:%s";
    lua_pushfstring(L, fmt, lua_tostring(L, -3), lua_tostring(L, -2));
    lua_replace(L, -5);
    lua_pop(L, 3);
}

/* Every attempt failed: raises the one error when there was one attempt;
 * when all failed the same way (op and code), one OSError naming every
 * address ("connect: Connection refused (while connecting to
 * 127.0.0.3:80, 127.0.0.4:80)"); else an OSError listing each failure.
 * Both have `errors` (each with its `address`), and code / errno when the
 * errors share one. */
static int
raise_failed(lua_State *L) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, SLOT_ERRS);
    if (n == 0)
        return luaL_error(L, "open_connection: no address to connect to");
    lua_rawgeti(L, SLOT_ERRS, 1);
    if (n == 1)
        return lua_error(L);
    int same_code = 1;
    lua_getfield(L, -1, "op");
    lua_getfield(L, -2, "code");
    lua_getfield(L, -3, "errno");
    int first = lua_gettop(L) - 3;
    for (lua_Integer i = 2; i <= n; i++) {
        lua_rawgeti(L, SLOT_ERRS, i);
        lua_getfield(L, -1, "op");
        lua_getfield(L, -2, "code");
        same_code = same_code && lua_rawequal(L, -2, first + 1) &&
                    lua_rawequal(L, -1, first + 2);
        lua_pop(L, 3);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (same_code) {
        lua_pushfstring(L, "%s: %s (while connecting to ",
                        lua_tostring(L, first + 1),
                        strerror((int)lua_tointeger(L, first + 3)));
        luaL_addvalue(&b);
    } else {
        lua_pushfstring(L, "open_connection: all %d attempts failed: ", (int)n);
        luaL_addvalue(&b);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, SLOT_ERRS, i);
        if (same_code) {
            push_where(L, lua_gettop(L));
            lua_pushstring(L, i > 1 ? ", " : "");
            lua_insert(L, -2);
            lua_concat(L, 2);
        } else { /* each message names its address */
            lua_getfield(L, -1, "message");
            lua_pushfstring(L, "%s%s", i > 1 ? "; " : "", lua_tostring(L, -1));
            lua_replace(L, -2);
        }
        lua_replace(L, -2);
        luaL_addvalue(&b);
    }
    if (same_code)
        luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    lasio_newerror_(L, ERR_OSERROR, lua_tostring(L, -1), 1);
    lua_pushvalue(L, SLOT_ERRS);
    lua_setfield(L, -2, "errors");
    lua_pushliteral(L, "connect");
    lua_setfield(L, -2, "op");
    if (same_code) {
        lua_pushvalue(L, first + 1);
        lua_setfield(L, -2, "op");
        lua_pushvalue(L, first + 2);
        lua_setfield(L, -2, "code");
        lua_pushvalue(L, first + 3);
        lua_setfield(L, -2, "errno");
    }
    return lua_error(L);
}

static int
connect_k(lua_State *L, int status, lua_KContext ctx) {
    struct conn_req *r = lua_touserdata(L, SLOT_REQ);
    struct lasio_loop *loop = lasio_running_loop_(L);
    (void)status, (void)ctx;
    for (int i = 1; i <= r->next; i++) { /* no attempt records the task */
        if (lua_rawgeti(L, SLOT_TRIES, i) == LUA_TUSERDATA)
            ((struct lasio_stream *)lua_touserdata(L, -1))->reader = NULL;
        lua_pop(L, 1);
    }
    if (lasio_io_resumed_(L, loop, BASE)) {
        drop_attempts(L, r);
        return lua_error(L);
    }
    if (!loop || loop->closed) {
        drop_attempts(L, r);
        return luaL_error(L, "open_connection: the loop is closed");
    }
    return advance(L, r);
}

/* Takes the outcome of every attempt that finished connecting: the first
 * success wins (returns 1, its stream in SLOT_STREAM, the others
 * released); failures are recorded. */
static int
reap(lua_State *L, struct conn_req *r) {
    for (int i = 1; i <= r->next; i++) {
        if (lua_rawgeti(L, SLOT_TRIES, i) != LUA_TUSERDATA) {
            lua_pop(L, 1);
            continue;
        }
        struct lasio_stream *s = lua_touserdata(L, -1);
        if (s->released) { /* the loop let go of it */
            lua_pop(L, 1);
            drop_attempts(L, r);
            return luaL_error(L, "open_connection: the loop is closed");
        }
        if (s->connecting) {
            lua_pop(L, 1);
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0) {
            lua_replace(L, SLOT_STREAM);
            lua_pushboolean(L, 0);
            lua_rawseti(L, SLOT_TRIES, i);
            drop_attempts(L, r);
            return 1;
        }
        lasio_stream_release_(s);
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_rawseti(L, SLOT_TRIES, i);
        r->live--;
        attempt_failed(L, r, i - 1, "connect", err);
    }
    return 0;
}

/* Goes on: takes finished attempts, starts the next one when it is due,
 * and waits for the rest. */
static int
advance(lua_State *L, struct conn_req *r) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "connect");
    if (r->next == 0)
        lasio_cap_sockets_(L, loop, "connect");
    for (;;) {
        if (reap(L, r))
            return connected(L, lua_touserdata(L, SLOT_STREAM));
        double now = lasio_time_();
        if (r->deadline > 0 && now >= r->deadline) {
            drop_attempts(L, r);
            return lasio_raise_(L, ERR_TIMEOUT, "connect: timed out");
        }
        int more = r->next < r->n;
        if (more && (r->live == 0 || (r->delay >= 0 && now >= r->next_at))) {
            start_attempt(L, r, loop);
            r->next_at = now + r->delay;
            continue;
        }
        if (r->live == 0)
            return raise_failed(L);
        double wake = r->deadline;
        if (more && r->delay >= 0 && (wake == 0 || r->next_at < wake))
            wake = r->next_at;
        lasio_io_wait_(L, t, BASE, wake);
        t->wait_what = "connect"; /* what the await graph shows */
        for (int i = 1; i <= r->next; i++) {
            if (lua_rawgeti(L, SLOT_TRIES, i) == LUA_TUSERDATA)
                ((struct lasio_stream *)lua_touserdata(L, -1))->reader = t;
            lua_pop(L, 1);
        }
        return lasio_io_yield_(L, 0, connect_k);
    }
}

/* Common start: the request is at SLOT_REQ; the stack is cut to BASE. */
static int
start(lua_State *L, struct conn_req *r) {
    lua_settop(L, BASE);
    lua_createtable(L, r->n, 0);
    lua_replace(L, SLOT_TRIES);
    lua_createtable(L, 0, 0);
    lua_replace(L, SLOT_ERRS);
    return advance(L, r);
}

/* ====== } */

/* RFC 8305 section 4: alternates the families of r's addresses, the
 * first address's family first, keeping the order within each. */
static void
interleave(struct conn_req *r) {
    union lasio_sockaddr sa[MAXADDRS];
    socklen_t len[MAXADDRS];
    int used[MAXADDRS] = {0}, k = 0;
    if (r->n < 3)
        return; /* nothing to reorder */
    int want = r->sa[0].sa.sa_family;
    while (k < r->n) {
        int found = -1;
        for (int i = 0; i < r->n && found < 0; i++)
            if (!used[i] && r->sa[i].sa.sa_family == want)
                found = i;
        if (found < 0) /* that family is used up: take the next left */
            for (int i = 0; i < r->n && found < 0; i++)
                if (!used[i])
                    found = i;
        used[found] = 1;
        sa[k] = r->sa[found];
        len[k++] = r->len[found];
        want = r->sa[found].sa.sa_family == AF_INET ? AF_INET6 : AF_INET;
    }
    memcpy(r->sa, sa, sizeof sa);
    memcpy(r->len, len, sizeof len);
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
    interleave(r);
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
module_open_connection(lua_State *L) {
    const char *what = "open_connection";
    lasio_vclock_refuse_(L, "lasio.open_connection");
    const char *host = luaL_checkstring(L, ARG_HOST);
    int port = lasio_checkport_(L, ARG_PORT, what);
    lua_settop(L, ARG_OPTS);
    lasio_checkopts_(L, ARG_OPTS, what, tcp_opts);
    lua_settop(L, BASE);
    struct conn_req *r = newreq(L);
    double timeout = common_opts(L, r, ARG_HOST, what);
    r->deadline = lasio_io_deadline_(timeout);
    r->nodelay = lasio_optboolean_(L, ARG_OPTS, "nodelay", 1, what);
    r->delay = HAPPY_EYEBALLS_DELAY;
    int t = lasio_optfield_(L, ARG_OPTS, "happy_eyeballs_delay");
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        r->delay = -1;
    else if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
            luaL_error(L,
                       "%s: happy_eyeballs_delay must be a number >= 0 or "
                       "false",
                       what);
        r->delay = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
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
module_open_unix_connection(lua_State *L) {
    const char *what = "open_unix_connection";
    lasio_vclock_refuse_(L, "lasio.open_unix_connection");
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
    {"open_connection", module_open_connection},
    {"open_unix_connection", module_open_unix_connection},
    {NULL, NULL}};

void
lasio_connect_open_(lua_State *L) {
    luaL_setfuncs(L, connect_funcs, 0);
}
