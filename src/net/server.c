/*
 * server.c: lasio.start_server / start_unix_server and the Server object
 * (docs/API.md, TCP and Unix streams): listening sockets with persistent accept
 * events; each connection runs the client callback in its own task, whose end
 * closes the connection. Owns the listening fds and events; anchored in the
 * loop's anchors and counted as a wake-up source exactly while serving.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/event.h>

#include "net/net.h"

#define MAXLISTEN 8
#define ACCEPT_BATCH 64     /* accepts per readiness event */
#define EMFILE_RETRY 0.1    /* seconds to pause accepting without fds */
#define DEFAULT_BACKLOG 100 /* asyncio's */

enum {
    SERVER_UV_LOOP = 1, /* the loop userdata */
    SERVER_UV_CB,       /* the client callback */
    SERVER_UV_CONNS,    /* set of the streams of live connections */
    SERVER_UV_EXTRA,    /* TLS context or nil */
    SERVER_NUV = SERVER_UV_EXTRA
};

/* Invariant: serving == (anchor != LUA_NOREF) == counted in nsources; evs[i]
 * is added iff serving and not paused. */
struct lasio_server {
    struct lasio_iolink link;
    struct lasio_loop *loop; /* kept alive by SERVER_UV_LOOP */
    int nfds;
    int fds[MAXLISTEN];
    struct event *evs[MAXLISTEN];
    struct event *retry_ev; /* resumes accepting after EMFILE */
    int anchor;
    int nconn, max_conn;
    size_t limit;
    double hs_timeout; /* TLS handshake of each connection */
    unsigned char linked, serving, closed, paused_full, paused_fds, unixsock;
    dev_t udev; /* the Unix socket file we created, removed at close */
    ino_t uino;
    char *upath;
    struct lasio_task **waiters; /* in wait_closed / serve_forever */
    int nwait, capwait;
};

static struct lasio_server *
checkserver(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_SERVER_MT);
}

/* {====== Listening state ====== */

static void
set_listening(struct lasio_server *sv) {
    int on = sv->serving && !sv->paused_full && !sv->paused_fds;
    for (int i = 0; i < sv->nfds; i++) {
        if (on)
            event_add(sv->evs[i], NULL);
        else
            event_del(sv->evs[i]);
    }
}

/* Closes the listening sockets and events. Runs no Lua code. */
static void
release_listeners(struct lasio_server *sv) {
    for (int i = 0; i < sv->nfds; i++) {
        if (sv->evs[i])
            event_free(sv->evs[i]);
        sv->evs[i] = NULL;
        if (sv->fds[i] >= 0)
            close(sv->fds[i]);
        sv->fds[i] = -1;
    }
    sv->nfds = 0;
    if (sv->retry_ev)
        event_free(sv->retry_ev);
    sv->retry_ev = NULL;
    if (sv->upath) {
        struct stat st;
        if (stat(sv->upath, &st) == 0 && st.st_dev == sv->udev &&
            st.st_ino == sv->uino)
            unlink(sv->upath);
        free(sv->upath);
        sv->upath = NULL;
    }
    lasio_io_unlink_(sv->loop, &sv->link, &sv->linked);
}

static void
release_link(struct lasio_iolink *link) {
    struct lasio_server *sv = (struct lasio_server *)link;
    sv->linked = 0;
    sv->serving = 0;
    sv->closed = 1;
    sv->anchor = LUA_NOREF; /* the anchors go with the loop */
    release_listeners(sv);
    free(sv->waiters);
    sv->waiters = NULL;
    sv->nwait = sv->capwait = 0;
}

/* Stops serving: [-0, +0, m] on the server at idx. */
static void
server_stop(lua_State *L, int idx, struct lasio_server *sv) {
    idx = lua_absindex(L, idx);
    if (sv->closed)
        return;
    sv->closed = 1;
    release_listeners(sv);
    if (sv->serving) {
        sv->serving = 0;
        if (!sv->loop->closed && sv->loop->nsources > 0)
            sv->loop->nsources--;
    }
    if (sv->anchor != LUA_NOREF && !sv->loop->closed) {
        lasio_pushloop_(L, sv->loop);
        lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
        luaL_unref(L, -1, sv->anchor);
        lua_pop(L, 2);
    }
    sv->anchor = LUA_NOREF;
    for (int i = 0; i < sv->nwait; i++)
        lasio_io_wake_(L, sv->waiters[i]);
}

/* ====== } */

/* {====== Connections ====== */

/* The body of a connection's task: 1 callback, 2 reader, 3 writer, 4
 * server, 5 stream. Everything after the start, registering the
 * connection with the server included, runs under lua_pcallk, so that
 * its end (error, cancellation and memory errors included) always closes
 * the connection and tells the server. */
static int conn_k(lua_State *L, int status, lua_KContext ctx);

static int
conn_body_k(lua_State *L, int status, lua_KContext ctx) {
    (void)L, (void)status, (void)ctx;
    return 0;
}

/* After a TLS handshake: the callback. */
static int
conn_tls_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status, (void)ctx;
    lua_settop(L, 3);
    lua_callk(L, 2, 0, 0, conn_body_k);
    return 0;
}

/* Protected part: cb, reader, writer, server, stream. */
static int
conn_body(lua_State *L) {
    struct lasio_server *sv = lua_touserdata(L, 4);
    lua_getiuservalue(L, 4, SERVER_UV_CONNS);
    lua_pushvalue(L, 5);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_settop(L, 5);
    if (lua_getiuservalue(L, 4, SERVER_UV_EXTRA) != LUA_TNIL) {
        /* TLS: the handshake before the callback */
        lasio_tls_attach_(L, 5, 6, NULL, 1);
        int n =
            lasio_tls_push_handshake_(L, 5, lasio_io_deadline_(sv->hs_timeout));
        lua_callk(L, n, 0, 0, conn_tls_k);
        return conn_tls_k(L, LUA_OK, 0);
    }
    lua_settop(L, 3);
    lua_callk(L, 2, 0, 0, conn_body_k);
    return 0;
}

static int
conn_main(lua_State *L) {
    lua_settop(L, 5);
    lua_pushcfunction(L, lasio_msgh_);
    lua_pushcfunction(L, conn_body);
    for (int i = 1; i <= 5; i++)
        lua_pushvalue(L, i);
    int status = lua_pcallk(L, 5, 0, 6, 0, conn_k);
    return conn_k(L, status, 0);
}

/* Closes the connection, tells the server, then re-raises a cancellation
 * or reports another error through the loop's exception handler. */
static int
conn_k(lua_State *L, int status, lua_KContext ctx) {
    (void)ctx;
    struct lasio_stream *s = lua_touserdata(L, 5);
    struct lasio_server *sv = lua_touserdata(L, 4);
    int hs_failed = lasio_tls_handshaking_(s);
    /* first what cannot fail: forget the connection */
    lua_getiuservalue(L, 4, SERVER_UV_CONNS);
    lua_pushvalue(L, 5);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    sv->nconn--;
    lasio_stream_close_(L, 5, s);
    if (sv->paused_full && (sv->max_conn == 0 || sv->nconn < sv->max_conn)) {
        sv->paused_full = 0;
        set_listening(sv);
    }
    if (sv->nconn == 0 && sv->closed)
        for (int i = 0; i < sv->nwait; i++)
            lasio_io_wake_(L, sv->waiters[i]);
    if (status == LUA_OK || status == LUA_YIELD)
        return 0;
    if (lasio_iserror_(L, -1, ERR_CANCELLED))
        return lua_error(L);
    if (hs_failed)
        return 0; /* a client that failed its TLS handshake: just closed */
    /* report it: the task itself ends well, nothing is left unretrieved */
    struct lasio_loop *loop = sv->loop;
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "Unhandled error in client_connected_cb");
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "exception");
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    lua_rawgeti(L, -1, loop->current->fut.ref);
    lua_setfield(L, -4, "task");
    lua_pop(L, 2);
    if (lua_istable(L, -2))
        lua_getfield(L, -2, "traceback");
    else {
        lua_getfield(L, -1, "task");
        lasio_extra_get_(L, -1, EXTRA_TRACEBACK);
        lua_remove(L, -2);
    }
    lua_setfield(L, -2, "traceback");
    lasio_call_exception_handler_(L, loop);
    return 0;
}

/* Starts the task of the accepted connection whose stream is at the top
 * (popped). [-1, +0, m] with the server at sidx. If this raises, the
 * stream is garbage and its collection closes the socket. */
static void
start_conn(lua_State *L, int sidx, struct lasio_server *sv) {
    int stream = lua_gettop(L);
    lua_pushcfunction(L, conn_main);
    lua_getiuservalue(L, sidx, SERVER_UV_CB);
    lasio_stream_pushviews_(L, stream);
    lua_pushvalue(L, sidx);
    lua_pushvalue(L, stream);
    lasio_task_spawn_(L, sv->loop, stream + 1, 5);
    sv->nconn++; /* conn_k, which always runs, counts it down */
    lua_settop(L, stream - 1);
    if (sv->max_conn > 0 && sv->nconn >= sv->max_conn) {
        sv->paused_full = 1;
        set_listening(sv);
    }
}

static void
on_retry(evutil_socket_t fd, short what, void *arg) {
    struct lasio_server *sv = arg;
    (void)fd, (void)what;
    sv->paused_fds = 0;
    set_listening(sv);
}

/* Out of fds: pause accepting instead of spinning on a listener that
 * stays readable; the connections wait in the backlog meanwhile. */
static void
pause_for_fds(struct lasio_server *sv) {
    if (!sv->retry_ev)
        sv->retry_ev = event_new(sv->loop->base, -1, 0, on_retry, sv);
    if (sv->retry_ev) {
        struct timeval tv = {0, (int)(EMFILE_RETRY * 1e6)};
        sv->paused_fds = 1;
        set_listening(sv);
        event_add(sv->retry_ev, &tv);
    }
}

/* The guard passes one pointer: the listener's fd travels along. */
struct accept_arg {
    struct lasio_server *sv;
    int fd;
};

/* Accepts what is pending on one listening socket. Runs guarded. */
static int
accept_body(lua_State *L) {
    struct accept_arg *a = lua_touserdata(L, 1);
    struct lasio_server *sv = a->sv;
    lasio_pushloop_(L, sv->loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_rawgeti(L, -1, sv->anchor); /* the server, anchored while serving */
    int sidx = lua_gettop(L);
    for (int n = 0; n < ACCEPT_BATCH && sv->serving && !sv->paused_full; n++) {
        /* the stream exists before the fd: nothing can leak it */
        struct lasio_stream *s = lasio_stream_new_(L, sv->loop);
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            lua_pop(L, 1);
            if (err == EINTR || err == ECONNABORTED || err == EPROTO ||
                err == EPERM)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
                err == ENOMEM)
                pause_for_fds(sv);
            break;
        }
        struct lasio_limits *lim = sv->loop->limits;
        if (lim && lim->max_sockets && sv->loop->nsockets >= lim->max_sockets) {
            close(fd); /* refused: the loop's cap of sockets */
            lua_pop(L, 1);
            continue;
        }
        s->limit = sv->limit;
        if (lasio_stream_attach_(s, fd, &lasio_socket_transport_, 0) < 0)
            luaL_error(L, "not enough memory");
        lasio_iolink_socket_(sv->loop, &s->link);
        if (!sv->unixsock) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        start_conn(L, sidx, sv);
    }
    return 0;
}

static void
on_accept(evutil_socket_t fd, short what, void *arg) {
    struct lasio_server *sv = arg;
    struct accept_arg a = {sv, (int)fd};
    (void)what;
    if (sv->serving)
        lasio_io_guard_(sv->loop, accept_body, &a);
}

/* ====== } */

/* {====== Methods ====== */

/* Waiting for the server: 1 the server. */
enum swait { SW_CLOSED, SW_FOREVER };
static const char *const swaitnames[] = {"wait_closed", "serve_forever"};

static void
del_waiter(struct lasio_server *sv, struct lasio_task *t) {
    for (int i = 0; i < sv->nwait; i++) {
        if (sv->waiters[i] == t) {
            sv->waiters[i] = sv->waiters[--sv->nwait];
            return;
        }
    }
}

static int server_wait(lua_State *L, struct lasio_server *sv, enum swait w);

static int
server_wait_k(lua_State *L, int status, lua_KContext ctx) {
    enum swait w = (enum swait)ctx;
    struct lasio_server *sv = lua_touserdata(L, 1);
    (void)status;
    del_waiter(sv, lasio_running_loop_(L)->current);
    if (lasio_io_resumed_(L, sv->loop, 1)) {
        if (w == SW_FOREVER) /* cancelling serve_forever closes (asyncio) */
            server_stop(L, 1, sv);
        return lua_error(L);
    }
    return server_wait(L, sv, w);
}

static int
server_wait(lua_State *L, struct lasio_server *sv, enum swait w) {
    struct lasio_loop *loop;
    if (sv->closed && (w == SW_FOREVER || sv->nconn == 0))
        return 0;
    struct lasio_task *t = lasio_check_await_(L, &loop, swaitnames[w]);
    if (sv->nwait == sv->capwait) {
        int cap = sv->capwait ? 2 * sv->capwait : 4;
        void *p = realloc(sv->waiters, (size_t)cap * sizeof *sv->waiters);
        if (!p)
            return luaL_error(L, "not enough memory");
        sv->waiters = p;
        sv->capwait = cap;
    }
    lasio_io_wait_(L, t, 1, 0);
    t->wait_what = "accept"; /* what the await graph shows */
    sv->waiters[sv->nwait++] = t;
    return lasio_io_yield_(L, w, server_wait_k);
}

static int
server_close(lua_State *L) {
    server_stop(L, 1, checkserver(L, 1));
    return 0;
}

/* server:wait_closed(): until closed and every connection finished. */
static int
server_wait_closed(lua_State *L) {
    struct lasio_server *sv = checkserver(L, 1);
    lua_settop(L, 1);
    return server_wait(L, sv, SW_CLOSED);
}

/* server:serve_forever(): until the server is closed; cancelling it
 * closes the server. */
static int
server_serve_forever(lua_State *L) {
    struct lasio_server *sv = checkserver(L, 1);
    lua_settop(L, 1);
    if (sv->closed)
        return luaL_error(L, "serve_forever: the server is closed");
    return server_wait(L, sv, SW_FOREVER);
}

static int
server_is_serving(lua_State *L) {
    lua_pushboolean(L, checkserver(L, 1)->serving);
    return 1;
}

static int
server_sockets(lua_State *L) {
    struct lasio_server *sv = checkserver(L, 1);
    lua_createtable(L, sv->nfds, 0);
    for (int i = 0; i < sv->nfds; i++) {
        lasio_pushsockname_(L, sv->fds[i], 0);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int
server_get_loop(lua_State *L) {
    checkserver(L, 1);
    lua_getiuservalue(L, 1, SERVER_UV_LOOP);
    return 1;
}

/* close_clients() / abort_clients() (Python 3.13): close every live
 * connection, flushing its output or not. */
static int
each_client(lua_State *L, int abort) {
    checkserver(L, 1);
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, SERVER_UV_CONNS);
    /* collect first: closing changes nothing in the set, but be safe */
    lua_newtable(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++n);
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        struct lasio_stream *s = lua_touserdata(L, -1);
        if (abort)
            lasio_stream_abort_(L, s);
        else
            lasio_stream_close_(L, -1, s);
        lua_pop(L, 1);
    }
    return 0;
}

static int
server_close_clients(lua_State *L) {
    return each_client(L, 0);
}

static int
server_abort_clients(lua_State *L) {
    return each_client(L, 1);
}

static int
server_gc(lua_State *L) {
    struct lasio_server *sv = lua_touserdata(L, 1);
    release_listeners(sv); /* a server being served is anchored */
    free(sv->waiters);
    sv->waiters = NULL;
    sv->nwait = sv->capwait = 0;
    return 0;
}

static int
server_tostring(lua_State *L) {
    struct lasio_server *sv = checkserver(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "lasio.Server<");
    for (int i = 0; i < sv->nfds; i++) {
        union lasio_sockaddr sa;
        socklen_t len = sizeof sa;
        if (getsockname(sv->fds[i], &sa.sa, &len) != 0)
            continue;
        lasio_pushaddr_(L, &sa.sa, len);
        lua_getfield(L, -1, "addr");
        lua_getfield(L, -2, "port");
        if (lua_isnil(L, -1))
            lua_pushfstring(L, "%s ", lua_tostring(L, -2));
        else
            lua_pushfstring(L, "%s:%s ", lua_tostring(L, -2),
                            lua_tostring(L, -1));
        lua_replace(L, -4);
        lua_pop(L, 2);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, sv->serving ? "serving" : "closed");
    luaL_addchar(&b, '>');
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg server_methods[] = {
    {"close", server_close},
    {"wait_closed", server_wait_closed},
    {"serve_forever", server_serve_forever},
    {"is_serving", server_is_serving},
    {"sockets", server_sockets},
    {"get_loop", server_get_loop},
    {"close_clients", server_close_clients},
    {"abort_clients", server_abort_clients},
    {NULL, NULL}};

/* ====== } */

/* {====== Starting ====== */

static const char *const tcp_opts[] = {
    "backlog",         "reuse_port", "reuse_address",         "ssl", "limit",
    "max_connections", "family",     "ssl_handshake_timeout", NULL};
static const char *const unix_opts[] = {
    "backlog", "ssl", "limit", "max_connections", "ssl_handshake_timeout",
    NULL};

/* A new server at the top, closed until it listens. [-0, +1, m] */
static struct lasio_server *
newserver(lua_State *L, struct lasio_loop *loop, int cbidx, int opts,
          const char *what) {
    struct lasio_server *sv =
        lua_newuserdatauv(L, sizeof(struct lasio_server), SERVER_NUV);
    memset(sv, 0, sizeof *sv);
    sv->closed = 1;
    sv->anchor = LUA_NOREF;
    sv->loop = loop;
    luaL_setmetatable(L, LASIO_SERVER_MT);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, -2, SERVER_UV_LOOP);
    lua_pushvalue(L, cbidx);
    lua_setiuservalue(L, -2, SERVER_UV_CB);
    lua_newtable(L);
    lua_setiuservalue(L, -2, SERVER_UV_CONNS);
    sv->limit = (size_t)lasio_optinteger_(L, opts, "limit", LASIO_STREAM_LIMIT,
                                          1, what);
    sv->max_conn =
        (int)lasio_optinteger_(L, opts, "max_connections", 0, 0, what);
    lasio_optfield_(L, opts, "ssl_handshake_timeout");
    sv->hs_timeout = lua_isnil(L, -1) ? 60 /* asyncio's default */
                                      : lasio_io_checktimeout_(L, -1, what);
    lua_pop(L, 1);
    if (lasio_optfield_(L, opts, "ssl") != LUA_TNIL &&
        !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
        if (lua_isboolean(L, -1) || !lasio_tls_is_server_(L, -1))
            luaL_error(L,
                       "%s: ssl must be a server SSLContext "
                       "(lasio.ssl_context{server = true, certfile = ...})",
                       what);
        lasio_tls_checkctx_(L, -1, what);
        lua_setiuservalue(L, -2, SERVER_UV_EXTRA);
    } else {
        lua_pop(L, 1);
    }
    return sv;
}

/* Binds and listens on sa; the fd joins the server. Raises OSError. */
static void
add_listener(lua_State *L, struct lasio_server *sv,
             const union lasio_sockaddr *sa, socklen_t len, int backlog,
             int reuse_addr, int reuse_port) {
    int family = sa->sa.sa_family, one = 1;
    if (sv->nfds == MAXLISTEN)
        luaL_error(L, "start_server: too many addresses (at most %d)",
                   MAXLISTEN);
    if (!sv->linked)
        lasio_cap_sockets_(L, sv->loop, "start_server");
    int fd = lasio_socket_(family, SOCK_STREAM);
    if (fd < 0)
        lasio_oserror_raise_(L, "socket", errno);
    sv->fds[sv->nfds] = fd; /* owned by the server from here */
    sv->evs[sv->nfds] = NULL;
    sv->nfds++;
    if (!sv->linked) {
        sv->link.release = release_link;
        lasio_iolink_add_(sv->loop, &sv->link);
        lasio_iolink_socket_(sv->loop, &sv->link);
        sv->linked = 1;
    }
    if (family != AF_UNIX && reuse_addr)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        lasio_oserror_raise_(L, "setsockopt", errno);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, &sa->sa, len) != 0)
        lasio_raise_addrerror_(L, "bind", errno, "binding", &sa->sa, len);
    if (listen(fd, backlog) != 0)
        lasio_oserror_raise_(L, "listen", errno);
    sv->evs[sv->nfds - 1] =
        event_new(sv->loop->base, fd, EV_READ | EV_PERSIST, on_accept, sv);
    if (!sv->evs[sv->nfds - 1])
        luaL_error(L, "not enough memory");
}

/* The server at idx has its listeners: serve. */
static void
begin_serving(lua_State *L, int idx, struct lasio_server *sv) {
    idx = lua_absindex(L, idx);
    lasio_pushloop_(L, sv->loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_pushvalue(L, idx);
    sv->anchor = luaL_ref(L, -2);
    lua_pop(L, 2);
    sv->closed = 0;
    sv->serving = 1;
    sv->loop->nsources++;
    set_listening(sv);
}

/* Stack of start_server while it runs: 1 cb, 2 host(s), 3 port, 4 opts,
 * then: */
enum {
    SS_SERVER = 5, /* the Server, closed until it listens */
    SS_HOSTS,      /* sequence of host strings */
    SS_NEXT,       /* index of the next host */
    SS_BASE = SS_NEXT
};

/* What start_server needs while it resolves names. */
struct listen_args {
    int port, backlog, reuse_addr, reuse_port, family;
};

static int listen_next(lua_State *L);

/* A host name was resolved: listen on each of its addresses. */
static int
listen_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_server *sv = lua_touserdata(L, SS_SERVER);
    struct listen_args *a = lua_touserdata(L, SS_BASE + 1);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    (void)status, (void)ctx;
    for (lua_Integer i = 1; i <= n; i++) {
        union lasio_sockaddr sa;
        socklen_t len;
        if (lasio_addrlist_get_(L, list, i, &sa, &len) == 0)
            add_listener(L, sv, &sa, len, a->backlog, a->reuse_addr,
                         a->reuse_port);
    }
    lua_settop(L, SS_BASE + 1);
    return listen_next(L);
}

/* Listens on the hosts from SS_NEXT on; a host name is resolved first
 * (the call suspends then). */
static int
listen_next(lua_State *L) {
    struct lasio_server *sv = lua_touserdata(L, SS_SERVER);
    struct listen_args *a = lua_touserdata(L, SS_BASE + 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, SS_HOSTS);
    for (lua_Integer i = lua_tointeger(L, SS_NEXT); i <= n; i++) {
        union lasio_sockaddr sa;
        socklen_t len;
        lua_rawgeti(L, SS_HOSTS, i);
        if (lasio_parseaddr_(lua_tostring(L, -1), a->port, a->family, &sa,
                             &len) == 0) {
            lua_pop(L, 1);
            add_listener(L, sv, &sa, len, a->backlog, a->reuse_addr,
                         a->reuse_port);
            continue;
        }
        lua_pushinteger(L, i + 1);
        lua_replace(L, SS_NEXT);
        int nargs = lasio_push_resolve_(L, -1, a->port, a->family, 0, 0);
        lua_remove(L, -(nargs + 2)); /* the host string */
        lua_callk(L, nargs, 1, 0, listen_k);
        return listen_k(L, LUA_OK, 0);
    }
    begin_serving(L, SS_SERVER, sv);
    lua_settop(L, SS_SERVER);
    return 1;
}

#define SHARED_LISTENERS_KEY "lasio.shared_listeners"

void
lasio_net_share_listeners_(lua_State *L) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SHARED_LISTENERS_KEY);
}

int
lasio_net_listeners_shared_(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, SHARED_LISTENERS_KEY);
    int shared = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return shared;
}

/* lasio.start_server(cb, host, port [, opts]) -> Server */
static int
module_start_server(lua_State *L) {
    const char *what = "start_server";
    lasio_vclock_refuse_(L, "lasio.start_server");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int t = lua_type(L, 2);
    if (t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TTABLE)
        return luaL_typeerror(L, 2, "host string, table of hosts or nil");
    int port = lasio_checkport_(L, 3, what);
    lua_settop(L, 4);
    lasio_checkopts_(L, 4, what, tcp_opts);
    struct lasio_loop *loop = lasio_io_running_loop_(L, what);
    struct listen_args args;
    args.port = port;
    args.backlog =
        (int)lasio_optinteger_(L, 4, "backlog", DEFAULT_BACKLOG, 0, what);
    args.reuse_addr = lasio_optboolean_(L, 4, "reuse_address", 1, what);
    args.reuse_port = lasio_optboolean_(L, 4, "reuse_port",
                                        lasio_net_listeners_shared_(L), what);
    args.family = AF_UNSPEC;
    if (lasio_optfield_(L, 4, "family") != LUA_TNIL) {
        const char *f = lua_tostring(L, -1);
        if (!f || (strcmp(f, "inet") && strcmp(f, "inet6")))
            luaL_error(L, "%s: family must be \"inet\" or \"inet6\"", what);
        args.family = f[4] == '6' ? AF_INET6 : AF_INET;
    }
    lua_pop(L, 1);
    newserver(L, loop, 1, 4, what); /* SS_SERVER */
    lua_newtable(L);                /* SS_HOSTS */
    if (t == LUA_TNIL || (t == LUA_TSTRING && lua_rawlen(L, 2) == 0)) {
        if (args.family != AF_INET6) {
            lua_pushliteral(L, "0.0.0.0");
            lua_rawseti(L, -2, 1);
        }
        if (args.family != AF_INET) {
            lua_pushliteral(L, "::");
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
    } else if (t == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        lua_rawseti(L, -2, 1);
    } else {
        lua_Integer n = luaL_len(L, 2);
        if (n == 0)
            return luaL_error(L, "%s: empty table of hosts", what);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, 2, i) != LUA_TSTRING)
                return luaL_error(L, "%s: host %I is not a string", what, i);
            lua_rawseti(L, -2, i);
        }
    }
    lua_pushinteger(L, 1); /* SS_NEXT */
    struct listen_args *a = lua_newuserdatauv(L, sizeof *a, 0);
    *a = args;
    return listen_next(L);
}

/* lasio.start_unix_server(cb, path [, opts]) -> Server. A socket file
 * left at path is replaced; close() removes the one it made. */
static int
module_start_unix_server(lua_State *L) {
    const char *what = "start_unix_server";
    lasio_vclock_refuse_(L, "lasio.start_unix_server");
    size_t plen;
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *path = luaL_checklstring(L, 2, &plen);
    lua_settop(L, 3);
    lasio_checkopts_(L, 3, what, unix_opts);
    struct lasio_loop *loop = lasio_io_running_loop_(L, what);
    int backlog =
        (int)lasio_optinteger_(L, 3, "backlog", DEFAULT_BACKLOG, 0, what);
    union lasio_sockaddr sa;
    socklen_t len = lasio_unixaddr_(L, path, plen, &sa, what);
    struct lasio_server *sv = newserver(L, loop, 1, 3, what);
    int idx = lua_gettop(L);
    sv->unixsock = 1;
    struct stat st;
    if (path[0] != '\0' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket file (asyncio does the same) */
    add_listener(L, sv, &sa, len, backlog, 0, 0);
    if (path[0] != '\0' && stat(path, &st) == 0) {
        sv->upath = strdup(path);
        if (!sv->upath)
            return luaL_error(L, "not enough memory");
        sv->udev = st.st_dev;
        sv->uino = st.st_ino;
    }
    begin_serving(L, idx, sv);
    lua_settop(L, idx);
    return 1;
}

static const luaL_Reg server_funcs[] = {
    {"start_server", module_start_server},
    {"start_unix_server", module_start_unix_server},
    {NULL, NULL}};

void
lasio_server_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_SERVER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, server_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, server_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, server_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, server_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, server_funcs, 0);
}

/* ====== } */
