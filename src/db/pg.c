/*
 * pg.c: a PostgreSQL connection on the loop, through libpq's asynchronous
 * API: the handshake driven by PQconnectPoll, queries sent in pipeline mode
 * (one Sync each, so every query is its own implicit transaction and many
 * may be in flight), results read by one persistent read event, the
 * notifications of LISTEN, and the cancel of a running query. Owns the
 * PGconn, its events and the list of queries sent. Invariant: a query's
 * node stays in the connection's list from its send until its task takes
 * the outcome (or, for a cancelled task, until the outcome arrives), so
 * the list and the server's answers are always in the same order.
 * SPDX-License-Identifier: MIT
 */
#include <event2/event.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/pg_dl.h"

/* How often a query waiting for a cancel request looks again (s): the
 * request takes a round trip to the server. */
#define CANCEL_POLL_S 0.001

static const char pgconn_token;

enum { PG_CLOSED, PG_CONNECTING, PG_READY, PG_BROKEN };

/* One query sent. A waiting task is suspended in pgconn_query with the
 * connection on its stack, so the connection outlives the wait. */
struct pgnode {
    struct pgnode *prev, *next;
    struct lasio_task *waiter; /* the task while it is suspended */
    PGresult *res;             /* the outcome, owned; NULL if the
                                  connection failed first */
    unsigned char done;
    unsigned char orphan; /* its task was cancelled: nobody takes it */
};

struct lasio_pgconn {
    struct lasio_iolink link; /* first: release casts back */
    unsigned char linked, state, flushing;
    struct lasio_loop *loop;    /* borrowed: the loop releases the
                                   connection (iolink) before it goes,
                                   which sets this to NULL */
    PGconn *pg;                 /* owned */
    struct event *rev, *wev;    /* once ready: persistent read; write while
                                   libpq has output left */
    struct event *cev;          /* the handshake's current wait */
    struct lasio_task *cwaiter; /* the handshake's task */
    struct lasio_task *nwaiter; /* the task waiting for a notification */
    struct pgnode *head, *tail; /* every node, in send order */
    struct pgnode *cur;         /* the first node without its outcome */
    PGresult *held; /* a result being converted (freed if that raises) */
    char *failure;  /* why the connection broke, malloc'd */
    struct cancel_job *cancel; /* the cancel request in flight, or NULL */
};

static struct lasio_pgconn *
checkconn(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &pgconn_token, LASIO_PGCONN_MT);
}

/* {====== Closing and failing ====== */

static void
unlink_node(struct lasio_pgconn *c, struct pgnode *n) {
    if (n->prev)
        n->prev->next = n->next;
    else
        c->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        c->tail = n->prev;
    if (c->cur == n)
        c->cur = n->next;
}

static void
free_node(struct pgnode *n) {
    if (n->res)
        PQclear(n->res);
    free(n);
}

/* The current node has its outcome: wake its task, or drop it if its task
 * is gone. */
static void
complete_cur(struct lasio_pgconn *c) {
    struct pgnode *n = c->cur;
    n->done = 1;
    c->cur = n->next;
    if (n->orphan) {
        unlink_node(c, n);
        free_node(n);
    } else if (n->waiter) {
        lasio_io_wake_cb_(c->loop, n->waiter);
    }
}

static void
drop_events(struct lasio_pgconn *c) {
    if (c->rev) {
        event_free(c->rev);
        c->rev = NULL;
    }
    if (c->wev) {
        event_free(c->wev);
        c->wev = NULL;
    }
    if (c->cev) {
        event_free(c->cev);
        c->cev = NULL;
    }
    c->flushing = 0;
}

/* Every waiter learns the connection is gone; nodes without a task go. */
static void
wake_all(struct lasio_pgconn *c) {
    while (c->cur)
        complete_cur(c);
    if (c->nwaiter)
        lasio_io_wake_cb_(c->loop, c->nwaiter);
    if (c->cwaiter)
        lasio_io_wake_cb_(c->loop, c->cwaiter);
}

/* The connection failed (the server went away, a write failed): its
 * events go (libpq may have closed the socket already) and every waiter
 * is woken to see why. */
static void
fail(struct lasio_pgconn *c, const char *why) {
    if (c->state != PG_READY && c->state != PG_CONNECTING)
        return;
    c->state = PG_BROKEN;
    if (!c->failure)
        c->failure = strdup(why && *why ? why : "connection lost");
    drop_events(c);
    wake_all(c);
}

/* A cancel request's thread and state, shared by the thread and the
 * connection: the last of the two to let go frees it. */
struct cancel_job {
    PGcancel *cancel;
    int refs; /* 2, then 1 once either lets go (atomic) */
    int done; /* the request is through (atomic) */
};

static void
cancel_unref(struct cancel_job *j) {
    if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        PQfreeCancel(j->cancel);
        free(j);
    }
}

static void
forget_cancel(struct lasio_pgconn *c) {
    if (c->cancel)
        cancel_unref(c->cancel);
    c->cancel = NULL;
}

/* Whether a cancel request of c is still on its way. */
static int
cancelling(struct lasio_pgconn *c) {
    if (!c->cancel)
        return 0;
    if (!__atomic_load_n(&c->cancel->done, __ATOMIC_ACQUIRE))
        return 1;
    forget_cancel(c);
    return 0;
}

/* Idempotent close, for close(), __gc, __close and the loop's release: no
 * Lua code runs. Nodes still waited on stay for their tasks to take. */
static void
close_conn(struct lasio_pgconn *c) {
    forget_cancel(c);
    drop_events(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (c->held) {
        PQclear(c->held);
        c->held = NULL;
    }
    c->state = PG_CLOSED;
    if (c->loop) {
        lasio_io_unlink_(c->loop, &c->link, &c->linked);
        if (!c->loop->closed)
            wake_all(c);
    }
}

static void
release(struct lasio_iolink *link) {
    struct lasio_pgconn *c = (struct lasio_pgconn *)link;
    c->linked = 0; /* the loop took it out of its list */
    close_conn(c);
    c->loop = NULL; /* the loop goes: a later __gc must not reach it */
}

/* ====== } */

/* {====== Reading and writing ====== */

/* Takes every result libpq has parsed, in order: the query's result, a
 * NULL, then the PIPELINE_SYNC that ends the query. */
static void
take_results(struct lasio_pgconn *c) {
    int nulls = 0;
    while (c->cur && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            if (++nulls > 1)
                break; /* nothing more until more input */
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            complete_cur(c);
            continue;
        }
        struct pgnode *n = c->cur;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
            st == PGRES_COPY_BOTH) {
            /* the session now waits for COPY data, which query has no
             * way to give or take: the connection cannot go on */
            if (n->res)
                PQclear(n->res);
            n->res = r;
            fail(c, "COPY is not supported by lasio.pg: the connection "
                    "was given up");
            return;
        }
        /* one statement gives one result; keep an error over the rest */
        if (!n->res || PQresultStatus(r) == PGRES_FATAL_ERROR) {
            if (n->res)
                PQclear(n->res);
            n->res = r;
        } else {
            PQclear(r);
        }
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        fail(c, PQerrorMessage(c->pg));
}

static void
on_readable(evutil_socket_t fd, short what, void *arg) {
    struct lasio_pgconn *c = arg;
    (void)fd, (void)what;
    if (!PQconsumeInput(c->pg)) {
        /* the result libpq made of the failure goes to the current query */
        take_results(c);
        fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->flushing && PQflush(c->pg) == 0) {
        c->flushing = 0;
        event_del(c->wev);
    }
    take_results(c);
    if (c->state == PG_READY && c->nwaiter)
        lasio_io_wake_cb_(c->loop, c->nwaiter);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg) {
    struct lasio_pgconn *c = arg;
    (void)fd, (void)what;
    int r = PQflush(c->pg);
    if (r < 0) {
        fail(c, PQerrorMessage(c->pg));
    } else if (r == 0) {
        c->flushing = 0;
        event_del(c->wev);
    }
}

/* Pushes what libpq still holds to the socket, the rest later. */
static void
flush(struct lasio_pgconn *c) {
    int r = PQflush(c->pg);
    if (r < 0) {
        fail(c, PQerrorMessage(c->pg));
    } else if (r > 0 && !c->flushing) {
        if (event_add(c->wev, NULL) == 0)
            c->flushing = 1;
        else
            fail(c, "cannot watch the connection's socket");
    }
}

/* ====== } */

/* {====== Connecting ====== */

/* core.internal.pg_conninfo_parse(s) -> {keyword = value} of the options
 * s sets, or nil and libpq's message. */
static int
module_conninfo_parse(lua_State *L) {
    const char *s = luaL_checkstring(L, 1);
    const char *why = lasio_pg_load_();
    if (why)
        return luaL_error(L, "%s", why);
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &err);
    if (!opts) {
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "out of memory");
        if (err)
            PQfreemem(err);
        return 2;
    }
    lua_newtable(L);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val) {
            lua_pushstring(L, o->val);
            lua_setfield(L, -2, o->keyword);
        }
    }
    PQconninfoFree(opts);
    return 1;
}

static void
handshake_ready(evutil_socket_t fd, short what, void *arg) {
    struct lasio_pgconn *c = arg;
    (void)fd, (void)what;
    if (c->cwaiter)
        lasio_io_wake_cb_(c->loop, c->cwaiter);
}

static int handshake_k(lua_State *L, int status, lua_KContext ctx);

/* Drives PQconnectPoll; st is what it last returned. */
static int
handshake(lua_State *L, struct lasio_pgconn *c, int st) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "pg.connect");
    for (;;) {
        if (c->state != PG_CONNECTING) {
            lua_pushnil(L);
            lua_pushstring(L, "connection closed");
            return 2;
        }
        if (st == PGRES_POLLING_OK) {
            if (PQsetnonblocking(c->pg, 1) != 0 ||
                !PQenterPipelineMode(c->pg)) {
                lua_pushnil(L);
                lua_pushstring(L, PQerrorMessage(c->pg));
                return 2;
            }
            int fd = PQsocket(c->pg);
            c->rev =
                event_new(loop->base, fd, EV_READ | EV_PERSIST, on_readable, c);
            c->wev = event_new(loop->base, fd, EV_WRITE | EV_PERSIST,
                               on_writable, c);
            if (!c->rev || !c->wev || event_add(c->rev, NULL) != 0) {
                drop_events(c);
                return luaL_error(L, "pg.connect: not enough memory");
            }
            c->state = PG_READY;
            lua_pushboolean(L, 1);
            return 1;
        }
        if (st == PGRES_POLLING_FAILED) {
            lua_pushnil(L);
            lua_pushstring(L, PQerrorMessage(c->pg));
            return 2;
        }
        short ev = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
        if (c->cev)
            event_free(c->cev);
        /* the socket may change between polls (another host, no SSL) */
        c->cev = event_new(loop->base, PQsocket(c->pg), ev, handshake_ready, c);
        if (!c->cev || event_add(c->cev, NULL) != 0)
            return luaL_error(L, "pg.connect: not enough memory");
        lasio_io_wait_(L, t, 1, 0);
        c->cwaiter = t;
        return lasio_io_yield_(L, 0, handshake_k);
    }
}

static int
handshake_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_pgconn *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_running_loop_(L);
    (void)status, (void)ctx;
    c->cwaiter = NULL;
    if (lasio_io_resumed_(L, loop, 1)) {
        close_conn(c);
        return lua_error(L);
    }
    if (c->state != PG_CONNECTING)
        return handshake(L, c, PGRES_POLLING_FAILED);
    return handshake(L, c, PQconnectPoll(c->pg));
}

/* conn:handshake() -> true, or nil and libpq's message: awaits the end of
 * the connection's setup. */
static int
pgconn_handshake(lua_State *L) {
    struct lasio_pgconn *c = checkconn(L, 1);
    lua_settop(L, 1);
    if (c->state != PG_CONNECTING || c->cwaiter)
        return luaL_error(L, "pg.connect: handshake not expected now");
    /* libpq's advice: start as if PQconnectPoll had asked for writing */
    return handshake(L, c, PGRES_POLLING_WRITING);
}

/* libpq prints the server's notices (NOTICE, WARNING) to stderr by
 * default; a library must not write to the process's stderr, so they are
 * dropped (RAISE NOTICE in a function, "table does not exist, skipping"). */
static void
drop_notice(void *arg, const char *message) {
    (void)arg, (void)message;
}

/* core.internal.pg_connect(keywords, values) -> a connection whose
 * handshake has started, or nil and libpq's message. The caller resolved
 * host names already (hostaddr), so libpq never blocks on DNS. */
static int
module_connect(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct lasio_loop *loop = lasio_io_running_loop_(L, "pg.connect");
    const char *why = lasio_pg_load_();
    if (why)
        return luaL_error(L, "%s", why);
    lua_Integer n = luaL_len(L, 1);
    if (n < 0 || n > 200 || luaL_len(L, 2) != n)
        return luaL_error(L, "pg.connect: bad option lists");
    const char *keys[201], *vals[201];
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        lua_rawgeti(L, 2, i);
        keys[i - 1] = luaL_checkstring(L, -2);
        vals[i - 1] = luaL_checkstring(L, -1);
        lua_pop(L, 2); /* the tables keep the strings alive */
    }
    keys[n] = vals[n] = NULL;
    struct lasio_pgconn *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, LASIO_PGCONN_MT);
    c->link.release = release;
    c->loop = loop;
    c->pg = PQconnectStartParams(keys, vals, 0);
    if (!c->pg)
        return luaL_error(L, "pg.connect: not enough memory");
    PQsetNoticeProcessor(c->pg, drop_notice, NULL);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        lua_pushnil(L);
        lua_pushstring(L, PQerrorMessage(c->pg));
        close_conn(c);
        return 2;
    }
    c->state = PG_CONNECTING;
    lasio_iolink_add_(loop, &c->link);
    c->linked = 1;
    return 1;
}

/* ====== } */

/* {====== Queries ====== */

/* libpq 15's PQcancel opens a connection of its own and blocks until the
 * server answers, so it runs on a thread of its own; the server then fails
 * the query with SQLSTATE 57014, which the read event takes as usual.
 * A cancel request names the connection, not the query: one that reached
 * the server late would stop whatever runs then. So a cancel is sent only
 * for the last query sent, and the connection sends no other query until
 * the request is through (pgconn_query waits): by then the server has
 * signalled its backend, which drops the signal if that query is over. */
static void *
cancel_thread(void *arg) {
    struct cancel_job *j = arg;
    char buf[256];
    PQcancel(j->cancel, buf, sizeof buf);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    cancel_unref(j);
    return NULL;
}

static void
send_cancel(struct lasio_pgconn *c) {
    if (cancelling(c)) /* for this very query: none is sent after it */
        return;
    struct cancel_job *j = malloc(sizeof *j);
    if (!j)
        return;
    j->cancel = PQgetCancel(c->pg);
    j->refs = 2;
    j->done = 0;
    pthread_attr_t attr;
    pthread_t th;
    if (j->cancel && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&th, &attr, cancel_thread, j);
        pthread_attr_destroy(&attr);
        if (r == 0) {
            c->cancel = j;
            return;
        }
    }
    /* no thread: the query runs to its end, its outcome is dropped */
    if (j->cancel)
        PQfreeCancel(j->cancel);
    free(j);
}

static int query_k(lua_State *L, int status, lua_KContext ctx);

/* Pushes the outcome of a failed connection as a query's error. */
static int
push_failure(lua_State *L, struct lasio_pgconn *c) {
    lua_pushboolean(L, 0);
    lua_createtable(L, 0, 2);
    if (c->state == PG_CLOSED) {
        lua_pushliteral(L, "connection closed");
    } else {
        const char *m = c->failure ? c->failure : "connection lost";
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            n--;
        lua_pushlstring(L, m, n);
    }
    lua_setfield(L, -2, "message");
    lua_pushliteral(L, "08006"); /* connection_failure */
    lua_setfield(L, -2, "sqlstate");
    return 2;
}

/* The node's task takes its outcome. */
static int
take(lua_State *L, struct lasio_pgconn *c, struct pgnode *n) {
    unlink_node(c, n);
    if (!n->res) {
        free(n);
        return push_failure(L, c);
    }
    if (c->held)
        PQclear(c->held);
    c->held = n->res; /* freed by the next take or the close if this
                         raises */
    free(n);
    int r = lasio_pg_pushresult_(L, c->held);
    PQclear(c->held);
    c->held = NULL;
    return r;
}

static int
wait_node(lua_State *L, struct lasio_task *t, struct pgnode *n) {
    lasio_io_wait_(L, t, 1, 0); /* no deadline: cannot raise */
    n->waiter = t;
    return lasio_io_yield_(L, (lua_KContext)n, query_k);
}

static int
query_k(lua_State *L, int status, lua_KContext ctx) {
    struct pgnode *n = (struct pgnode *)ctx;
    struct lasio_pgconn *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_running_loop_(L);
    (void)status;
    n->waiter = NULL;
    if (lasio_io_resumed_(L, loop, 1)) {
        if (n->done) {
            unlink_node(c, n);
            free_node(n);
        } else {
            n->orphan = 1;
            /* the server is running it, and nothing sent after it that a
             * late request could stop: stop it */
            if (c->cur == n && !n->next && c->state == PG_READY)
                send_cancel(c);
        }
        return lua_error(L); /* the orphan goes when its outcome comes */
    }
    if (!n->done)
        return wait_node(L, lasio_check_await_(L, &loop, "query"), n);
    return take(L, c, n);
}

static int pgconn_query(lua_State *L);

static int
query_again_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    return pgconn_query(L);
}

/* conn:query(sql, ...) -> rows, count; or false, error fields. */
static int
pgconn_query(lua_State *L) {
    struct lasio_pgconn *c = checkconn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "query");
    int nparams = lua_gettop(L) - 2;
    if (c->state != PG_READY) {
        if (c->state == PG_CONNECTING)
            return luaL_error(L, "query: the connection is not ready");
        return push_failure(L, c);
    }
    if (loop != c->loop)
        return luaL_error(L, "query: the connection belongs to another "
                             "loop");
    if (cancelling(c)) { /* a round trip to the server: look again soon */
        lua_pushcfunction(L, lasio_sleep_);
        lua_pushnumber(L, CANCEL_POLL_S);
        lua_callk(L, 1, 0, 0, query_again_k);
        return query_again_k(L, LUA_OK, 0);
    }
    if (nparams > 65535)
        return luaL_error(L, "query: more than 65535 parameters");
    const char *vbuf[16];
    int lbuf[16], fbuf[16];
    const char **values = vbuf;
    int *lengths = lbuf, *formats = fbuf;
    if (nparams > 16) {
        char *p = lua_newuserdatauv(
            L, (size_t)nparams * (sizeof *values + 2 * sizeof(int)), 0);
        values = (const char **)p;
        lengths = (int *)(p + (size_t)nparams * sizeof *values);
        formats = lengths + nparams;
        lua_insert(L, 3); /* below the parameters, which stay on top */
        lasio_pg_params_(L, 4, nparams, values, lengths, formats, "query");
    } else {
        lasio_pg_params_(L, 3, nparams, values, lengths, formats, "query");
    }
    struct pgnode *n = calloc(1, sizeof *n);
    if (!n)
        return luaL_error(L, "query: not enough memory");
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, formats,
                           0) ||
        !PQpipelineSync(c->pg)) {
        free(n);
        /* libpq refused before sending (a bad connection state) */
        lua_pushboolean(L, 0);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, PQerrorMessage(c->pg));
        lua_setfield(L, -2, "message");
        return 2;
    }
    n->prev = c->tail;
    if (c->tail)
        c->tail->next = n;
    else
        c->head = n;
    c->tail = n;
    if (!c->cur)
        c->cur = n;
    flush(c);
    /* libpq may hold a whole answer already (it reads while it writes) */
    take_results(c);
    if (n->done)
        return take(L, c, n);
    return wait_node(L, t, n);
}

/* ====== } */

/* {====== Notifications and the rest ====== */

static int notification_k(lua_State *L, int status, lua_KContext ctx);

static int
notification(lua_State *L, struct lasio_pgconn *c) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "listen");
    if (c->pg && c->state != PG_CONNECTING) {
        PGnotify *nt = PQnotifies(c->pg);
        if (nt) {
            lua_pushstring(L, nt->relname);
            lua_pushstring(L, nt->extra);
            lua_pushinteger(L, nt->be_pid);
            PQfreemem(nt);
            return 3;
        }
    }
    if (c->state != PG_READY)
        return push_failure(L, c);
    if (c->nwaiter)
        return luaL_error(L, "listen: another task waits for this "
                             "connection's notifications");
    lasio_io_wait_(L, t, 1, 0);
    c->nwaiter = t;
    return lasio_io_yield_(L, 0, notification_k);
}

static int
notification_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_pgconn *c = lua_touserdata(L, 1);
    (void)status, (void)ctx;
    c->nwaiter = NULL;
    if (lasio_io_resumed_(L, lasio_running_loop_(L), 1))
        return lua_error(L);
    return notification(L, c);
}

/* conn:notification() -> channel, payload, pid; or false, error fields. */
static int
pgconn_notification(lua_State *L) {
    struct lasio_pgconn *c = checkconn(L, 1);
    lua_settop(L, 1);
    return notification(L, c);
}

static int
pgconn_close(lua_State *L) {
    close_conn(checkconn(L, 1));
    return 0;
}

static int
pgconn_gc(lua_State *L) {
    struct lasio_pgconn *c = lua_touserdata(L, 1);
    close_conn(c);
    /* no task can wait any more: every node goes */
    while (c->head) {
        struct pgnode *n = c->head;
        unlink_node(c, n);
        free_node(n);
    }
    free(c->failure);
    c->failure = NULL;
    return 0;
}

/* conn:info() -> {state=, pid=, server_version=, transaction=,
 * in_flight=} */
static int
pgconn_info(lua_State *L) {
    struct lasio_pgconn *c = checkconn(L, 1);
    static const char *const states[] = {"closed", "connecting", "ready",
                                         "broken"};
    static const char *const tx[] = {"idle", "active", "intrans", "inerror",
                                     "unknown"};
    lua_createtable(L, 0, 5);
    lua_pushstring(L, states[c->state]);
    lua_setfield(L, -2, "state");
    int inflight = 0;
    for (struct pgnode *n = c->cur; n; n = n->next)
        inflight++;
    lua_pushinteger(L, inflight);
    lua_setfield(L, -2, "in_flight");
    if (c->state == PG_READY) {
        lua_pushinteger(L, PQbackendPID(c->pg));
        lua_setfield(L, -2, "pid");
        lua_pushinteger(L, PQserverVersion(c->pg));
        lua_setfield(L, -2, "server_version");
        int ts = (int)PQtransactionStatus(c->pg);
        lua_pushstring(L, tx[ts >= 0 && ts <= 4 ? ts : 4]);
        lua_setfield(L, -2, "transaction");
    }
    return 1;
}

static int
pgconn_tostring(lua_State *L) {
    struct lasio_pgconn *c = checkconn(L, 1);
    static const char *const states[] = {"closed", "connecting", "ready",
                                         "broken"};
    lua_pushfstring(L, "<pg.Connection %s %p>", states[c->state], (void *)c);
    return 1;
}

static const luaL_Reg pgconn_methods[] = {{"handshake", pgconn_handshake},
                                          {"query", pgconn_query},
                                          {"notification", pgconn_notification},
                                          {"close", pgconn_close},
                                          {"info", pgconn_info},
                                          {NULL, NULL}};

static const luaL_Reg pg_funcs[] = {
    {"pg_conninfo_parse", module_conninfo_parse},
    {"pg_connect", module_connect},
    {NULL, NULL}};

void
lasio_pg_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_PGCONN_MT, &pgconn_token)) {
        lua_newtable(L);
        luaL_setfuncs(L, pgconn_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, pgconn_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, pgconn_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, pgconn_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, pg_funcs, 0);
}

/* ====== } */
