/*
 * redis.c: one Redis connection on the loop (lasio.redis.Connection, used
 * by lua/lasio/redis.lua), on hiredis's asynchronous API with event hooks
 * of our own on the loop's event_base. Owns the hiredis context and its two
 * events. Invariant: replies come back in the order the commands went out,
 * so the Futures of the commands in flight wait in a ring (REDIS_UV_RING,
 * [head, tail)) and each reply completes the oldest; while anything can
 * still arrive (connecting, commands in flight, subscribed) the connection
 * is anchored in the loop and counted in loop->nsources.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <hiredis/async.h>

#include "db/hiredis_dl.h"
#include "db/redis.h"

#define LASIO_REDIS_MT "lasio.redis.Connection"
#define ARGV_ON_STACK 16

enum {
    REDIS_UV_LOOP = 1, /* the loop (keeps struct lasio_loop alive) */
    REDIS_UV_RING,     /* Futures of the commands in flight */
    REDIS_UV_CONNECT,  /* the Future of the connection, until it is up */
    REDIS_UV_PUSHES,   /* subscription messages not read yet */
    REDIS_UV_PUSHWAIT, /* the Future of the task reading them, or nil */
    REDIS_NUV = REDIS_UV_PUSHWAIT
};

struct lasio_redis {
    struct lasio_iolink link;
    struct lasio_loop *loop;  /* kept alive by REDIS_UV_LOOP */
    redisAsyncContext *ac;    /* owned; NULL once hiredis has freed it */
    struct event *rev, *wev;  /* owned (freed by the context's cleanup) */
    int anchor;               /* LOOP_UV_ANCHORS ref, or LUA_NOREF */
    lua_Integer head, tail;   /* the ring's Futures: [head, tail) */
    lua_Integer phead, ptail; /* unread messages: [phead, ptail) */
    int err;                  /* errno value of why it ended */
    unsigned char linked, connecting, subscribed, nolua;
    /* writes: commands sent while batching only ask for a flush, queued
     * once on the ready queue, so the commands of one loop turn go out in
     * one write with no epoll_ctl; the write event is added only when the
     * socket cannot take everything (flushing) */
    unsigned char batching, want_write, flush_queued;
    char errmsg[200]; /* why the connection ended, "" while it is up */
    char where[120];  /* "host:port" or the socket's path, for messages */
};

static const char classes_key = 0; /* {ReplyError, ConnectionError} */
static const char null_key = 0;    /* redis.null: a nil inside an array */

/* {====== Errors ====== */

/* Pushes class i (1 ReplyError, 2 ConnectionError), made once per state
 * on the pattern of core's classes: ReplyError under lasio.Error,
 * ConnectionError under OSError, so OSError:is() catches it. [-0, +1, m] */
static void
pushclass(lua_State *L, int i) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key) != LUA_TTABLE) {
        static const char *const names[] = {"ReplyError", "ConnectionError"};
        static const int parents[] = {ERR_BASE, ERR_OSERROR};
        lua_pop(L, 1);
        lua_createtable(L, 2, 0);
        for (int k = 0; k < 2; k++) {
            lasio_pusherrclass_(L, parents[k]);
            int parent = lua_gettop(L);
            lua_createtable(L, 0, 8);
            lua_pushstring(L, names[k]);
            lua_setfield(L, -2, "_classname");
            lua_pushfstring(L, "lasio.redis.%s", names[k]);
            lua_setfield(L, -2, "__name");
            lua_pushvalue(L, -1);
            lua_setfield(L, -2, "__index");
            lua_getfield(L, parent, "__tostring");
            lua_setfield(L, -2, "__tostring");
            lua_getfield(L, parent, "is");
            lua_setfield(L, -2, "is");
            lua_pushvalue(L, parent);
            lua_setfield(L, -2, "_parent");
            lua_getmetatable(L, parent); /* Class(msg) constructs */
            lua_setmetatable(L, -2);
            lua_rawseti(L, -3, k + 1);
            lua_pop(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
    }
    lua_rawgeti(L, -1, i);
    lua_remove(L, -2);
}

/* A Redis error reply as a ReplyError: message is the server's text,
 * code its first word ("ERR", "WRONGTYPE", "NOAUTH", ...). [-0, +1, m] */
static void
push_reply_error(lua_State *L, const char *s, size_t len) {
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, "message");
    size_t n = 0;
    while (n < len && s[n] >= 'A' && s[n] <= 'Z')
        n++;
    if (n > 0 && (n == len || s[n] == ' ')) {
        lua_pushlstring(L, s, n);
        lua_setfield(L, -2, "code");
    }
    pushclass(L, 1);
    lua_setmetatable(L, -2);
}

/* Records why the connection ended (the first reason only). hiredis gives
 * a strerror text for I/O errors: the errno value is found back from it,
 * so the ConnectionError carries the same code an OSError would. */
static void
note_error(struct lasio_redis *c, const char *why, int errcode) {
    if (c->errmsg[0])
        return;
    snprintf(c->errmsg, sizeof c->errmsg, "%s", why);
    c->err = errcode;
    if (errcode)
        return;
    c->err = ECONNRESET; /* "Server closed the connection", protocol errors */
    for (int e = 1; e < 134; e++)
        if (strcmp(strerror(e), why) == 0) {
            c->err = e;
            break;
        }
}

static void
note_context_error(struct lasio_redis *c) {
    if (c->ac && c->ac->errstr && c->ac->err)
        note_error(c, c->ac->errstr, 0);
    else
        note_error(c, "the connection was closed", EPIPE);
}

/* The ConnectionError of a connection that ended. [-0, +1, m] */
static void
push_conn_error(lua_State *L, struct lasio_redis *c, const char *op) {
    if (!c->errmsg[0])
        note_error(c, "the connection is closed", EPIPE);
    lua_pushfstring(L, "%s %s", op, c->where);
    lasio_oserror_pushmsg_(L, lua_tostring(L, -1), c->err, c->errmsg);
    lua_remove(L, -2);
    pushclass(L, 2);
    lua_setmetatable(L, -2);
}

/* ====== } */

/* {====== Anchoring and the ring ====== */

/* Pushes the connection from its anchor (callbacks get only the struct).
 * [-0, +1, m] */
static void
push_self(lua_State *L, struct lasio_redis *c) {
    lasio_pushloop_(L, c->loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_rawgeti(L, -1, c->anchor);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Anchors the connection at idx while anything can still arrive on it and
 * counts it in nsources meanwhile (INTERNALS.md, "Writing an awaitable
 * operation in C", 3 and 4); undoes both when nothing can. */
static void
reanchor(lua_State *L, struct lasio_redis *c, int idx) {
    int want = c->ac && (c->connecting || c->head < c->tail || c->subscribed);
    if (want && c->anchor == LUA_NOREF) {
        idx = lua_absindex(L, idx);
        lasio_pushloop_(L, c->loop);
        lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
        lua_pushvalue(L, idx);
        c->anchor = luaL_ref(L, -2);
        lua_pop(L, 2);
        c->loop->nsources++;
    } else if (!want && c->anchor != LUA_NOREF) {
        lasio_pushloop_(L, c->loop);
        lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
        luaL_unref(L, -1, c->anchor);
        lua_pop(L, 2);
        c->anchor = LUA_NOREF;
        c->loop->nsources--;
    }
}

/* Fails every Future still waiting on the connection at idx (the ring,
 * the connect, the message reader) with its ConnectionError. */
static void
fail_all(lua_State *L, struct lasio_redis *c, int idx, const char *op) {
    idx = lua_absindex(L, idx);
    lua_getiuservalue(L, idx, REDIS_UV_RING);
    for (; c->head < c->tail; c->head++) {
        lua_rawgeti(L, -1, c->head);
        struct lasio_future *f = lua_touserdata(L, -1);
        lua_pushnil(L);
        lua_rawseti(L, -3, c->head);
        if (f && f->state == FUT_PENDING) {
            lua_pushnil(L);
            push_conn_error(L, c, op);
            lasio_future_fail_(L, -3, f);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    c->head = c->tail = 1;
    for (int uv = REDIS_UV_CONNECT; uv <= REDIS_UV_PUSHWAIT; uv += 2) {
        lua_getiuservalue(L, idx, uv);
        struct lasio_future *f = lasio_tofuture_(L, -1);
        if (f && f->state == FUT_PENDING) {
            lua_pushnil(L);
            push_conn_error(L, c, op);
            lasio_future_fail_(L, -3, f);
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setiuservalue(L, idx, uv);
    }
    c->connecting = 0;
}

/* ====== } */

/* {====== Replies ====== */

/* Pushes reply r as Lua values: strings (bulk and status), integers, nil,
 * tables for arrays, ReplyError objects for errors inside arrays; a nil
 * inside an array is redis.null, so the table stays a sequence. */
static void
push_reply(lua_State *L, const redisReply *r, int in_array) {
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ERROR:
        push_reply_error(L, r->str, r->len);
        break;
    case REDIS_REPLY_ARRAY:
        luaL_checkstack(L, 4, "lasio.redis: reply nested too deeply");
        lua_createtable(L, r->elements > 1 << 24 ? 1 << 24 : (int)r->elements,
                        0);
        for (size_t i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    default: /* REDIS_REPLY_NIL */
        if (in_array)
            lua_pushlightuserdata(L, (void *)&null_key);
        else
            lua_pushnil(L);
    }
}

struct delivery {
    struct lasio_redis *c;
    const redisReply *r;
    int status;
};

/* Completes the oldest Future of the ring with reply d->r (NULL: the
 * connection ended). */
static int
deliver_reply(lua_State *L) {
    struct delivery *d = lua_touserdata(L, 1);
    struct lasio_redis *c = d->c;
    push_self(L, c);
    int self = lua_gettop(L);
    lua_getiuservalue(L, self, REDIS_UV_RING);
    lua_rawgeti(L, -1, c->head);
    lua_pushnil(L);
    lua_rawseti(L, -3, c->head);
    if (++c->head == c->tail)
        c->head = c->tail = 1;
    struct lasio_future *f = lua_touserdata(L, -1);
    if (f && f->state == FUT_PENDING) { /* else cancelled: dropped */
        if (!d->r) {
            lua_pushnil(L);
            push_conn_error(L, c, "redis");
            lasio_future_fail_(L, -3, f);
        } else if (d->r->type == REDIS_REPLY_ERROR) {
            lua_pushnil(L);
            push_reply_error(L, d->r->str, d->r->len);
            lasio_future_fail_(L, -3, f);
        } else {
            push_reply(L, d->r, 0);
            lasio_future_finish_(L, -2, f, 1);
        }
    }
    reanchor(L, c, self);
    return 0;
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct lasio_redis *c = privdata;
    if (!r)
        note_context_error(c);
    (void)ac;
    if (c->nolua) /* close, collection or the loop's end: the ring goes */
        return;
    struct delivery d = {c, r, 0};
    lasio_io_guard_(c->loop, deliver_reply, &d);
}

/* A subscription message, or a subscription's confirmation, for the task
 * reading them (or the queue of unread ones); NULL: the connection ended,
 * which the reader learns when the queue is empty. */
static int
deliver_push(lua_State *L) {
    struct delivery *d = lua_touserdata(L, 1);
    struct lasio_redis *c = d->c;
    push_self(L, c);
    int self = lua_gettop(L);
    lua_getiuservalue(L, self, REDIS_UV_PUSHWAIT);
    struct lasio_future *f = lasio_tofuture_(L, -1);
    if (f && f->state != FUT_PENDING)
        f = NULL; /* the reader was cancelled: keep the message */
    if (d->r) {
        push_reply(L, d->r, 0);
        if (f) {
            lasio_future_finish_(L, -2, f, 1);
        } else {
            lua_getiuservalue(L, self, REDIS_UV_PUSHES);
            lua_insert(L, -2);
            lua_rawseti(L, -2, c->ptail++);
        }
    } else {
        if (f) {
            lua_pushnil(L);
            push_conn_error(L, c, "redis");
            lasio_future_fail_(L, -3, f);
        }
        c->subscribed = 0; /* nothing more can arrive */
        reanchor(L, c, self);
    }
    if (f) {
        lua_pushnil(L);
        lua_setiuservalue(L, self, REDIS_UV_PUSHWAIT);
    }
    return 0;
}

static void
on_push(redisAsyncContext *ac, void *r, void *privdata) {
    struct lasio_redis *c = privdata;
    (void)ac;
    if (!r)
        note_context_error(c);
    if (c->nolua || c->anchor == LUA_NOREF)
        return;
    struct delivery d = {c, r, 0};
    lasio_io_guard_(c->loop, deliver_push, &d);
}

static int
deliver_connect(lua_State *L) {
    struct delivery *d = lua_touserdata(L, 1);
    struct lasio_redis *c = d->c;
    push_self(L, c);
    int self = lua_gettop(L);
    c->connecting = 0;
    lua_getiuservalue(L, self, REDIS_UV_CONNECT);
    struct lasio_future *f = lasio_tofuture_(L, -1);
    if (f && f->state == FUT_PENDING) {
        if (d->status == REDIS_OK) {
            lua_pushboolean(L, 1);
            lasio_future_finish_(L, -2, f, 1);
        } else {
            lua_pushnil(L);
            push_conn_error(L, c, "connect");
            lasio_future_fail_(L, -3, f);
        }
    }
    lua_pushnil(L);
    lua_setiuservalue(L, self, REDIS_UV_CONNECT);
    reanchor(L, c, self);
    return 0;
}

static void
on_connect(const redisAsyncContext *ac, int status) {
    struct lasio_redis *c = ac->data;
    if (status != REDIS_OK)
        note_error(c, ac->errstr ? ac->errstr : "connection failed", 0);
    if (c->nolua)
        return;
    struct delivery d = {c, NULL, status};
    lasio_io_guard_(c->loop, deliver_connect, &d);
}

/* ====== } */

/* {====== Event hooks (hiredis's adapter interface) ======
 * Our own adapter rather than adapters/libevent.h: its events are
 * persistent (no epoll_ctl per read), and its cleanup tells us when hiredis
 * has freed the context, whatever the reason. */

static void
on_read(evutil_socket_t fd, short what, void *arg) {
    struct lasio_redis *c = arg;
    (void)fd, (void)what;
    if (c->ac)
        redisAsyncHandleRead(c->ac);
}

static void
on_write(evutil_socket_t fd, short what, void *arg) {
    struct lasio_redis *c = arg;
    (void)fd, (void)what;
    if (c->ac)
        redisAsyncHandleWrite(c->ac);
}

static void
add_read(void *p) {
    event_add(((struct lasio_redis *)p)->rev, NULL);
}

static void
del_read(void *p) {
    event_del(((struct lasio_redis *)p)->rev);
}

static void
add_write(void *p) {
    struct lasio_redis *c = p;
    if (c->batching)
        c->want_write = 1;
    else
        event_add(c->wev, NULL);
}

/* The flush queued by send_command: writes what the commands of this
 * turn put in hiredis's buffer (hiredis adds the write event through
 * add_write if the socket takes only part of it). */
static int
flush_cb(lua_State *L) {
    struct lasio_redis *c = lua_touserdata(L, 1);
    c->flush_queued = 0;
    if (c->ac && !c->connecting)
        redisAsyncHandleWrite(c->ac);
    return 0;
}

static void
del_write(void *p) {
    event_del(((struct lasio_redis *)p)->wev);
}

/* hiredis is freeing the context (an error, the server gone, or our own
 * redisAsyncFree): the events go, the context pointer too. Runs no Lua
 * code; the anchor, if any, is dropped by whoever runs Lua next (close,
 * a call that finds the connection gone) or goes with the loop. */
static void
cleanup(void *p) {
    struct lasio_redis *c = p;
    note_context_error(c);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    c->ac = NULL;
    lasio_io_unlink_(c->loop, &c->link, &c->linked);
}

/* Frees the context without running Lua code (pending Futures are left
 * to the caller, or go with the state). */
static void
release(struct lasio_redis *c) {
    if (c->ac) {
        c->nolua = 1;
        redisAsyncFree(c->ac); /* calls cleanup */
        c->nolua = 0;
    }
    lasio_io_unlink_(c->loop, &c->link, &c->linked);
}

/* The loop closes (INTERNALS.md, rule 13): its anchors go with it. */
static void
release_link(struct lasio_iolink *link) {
    struct lasio_redis *c = (struct lasio_redis *)link;
    c->linked = 0;
    c->nolua = 1;
    if (c->ac)
        redisAsyncFree(c->ac);
    c->anchor = LUA_NOREF;
}

/* ====== } */

/* {====== Methods ====== */

static struct lasio_redis *
checkconn(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_REDIS_MT);
}

/* Sends the command made of the arguments from `first` to the top, with
 * callback fn. Misuse raises: no command, an argument that is not a
 * string or a number (nil included, named by its position). */
static void
send_command(lua_State *L, struct lasio_redis *c, int self, int first,
             const char *what, redisCallbackFn *fn) {
    int n = lua_gettop(L) - first + 1;
    if (n < 1)
        luaL_error(L, "%s: no command given", what);
    const char *sargv[ARGV_ON_STACK];
    size_t slen[ARGV_ON_STACK];
    const char **argv = sargv;
    size_t *argvlen = slen;
    for (int i = 0; i < n; i++) {
        int idx = first + i, t = lua_type(L, idx);
        if (t == LUA_TNUMBER && !lua_isinteger(L, idx)) {
            /* the shortest text that reads back as the same float:
             * Lua's own "%.14g" may round it */
            char buf[40];
            double v = lua_tonumber(L, idx);
            for (int prec = 14; prec <= 17; prec++) {
                snprintf(buf, sizeof buf, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                    break;
            }
            lua_pushstring(L, buf);
            lua_replace(L, idx);
        } else if (t != LUA_TSTRING && t != LUA_TNUMBER) {
            const char *cmd = lua_type(L, first) == LUA_TSTRING
                                  ? lua_tostring(L, first)
                                  : "the command";
            luaL_error(L,
                       "%s: argument #%d of %s is %s (only strings and "
                       "numbers can be sent)",
                       what, i + 1, cmd, luaL_typename(L, idx));
        }
    }
    if (!c->ac) { /* nothing was sent: the facade may reconnect */
        push_conn_error(L, c, what);
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "unsent");
        lua_error(L);
    }
    if (n > ARGV_ON_STACK) {
        argv = lua_newuserdatauv(
            L, (size_t)n * (sizeof *argv + sizeof *argvlen), 0);
        argvlen = (size_t *)(argv + n);
    }
    for (int i = 0; i < n; i++)
        argv[i] = lua_tolstring(L, first + i, &argvlen[i]);
    c->batching = 1;
    int r = redisAsyncCommandArgv(c->ac, fn, c, n, argv, argvlen);
    c->batching = 0;
    if (r != REDIS_OK) {
        note_error(c, "the connection is closing", EPIPE);
        push_conn_error(L, c, what);
        lua_error(L);
    }
    if (c->want_write) {
        c->want_write = 0;
        if (c->connecting || event_pending(c->wev, EV_WRITE, NULL)) {
            event_add(c->wev, NULL); /* the write event will see it */
        } else if (!c->flush_queued) {
            lua_pushcfunction(L, flush_cb);
            lasio_readyq_push_call_(L, c->loop, -1, self);
            lua_pop(L, 1);
            c->flush_queued = 1;
        }
    }
}

/* Sends the command at 2.. and pushes the Future of its reply. */
static void
push_command(lua_State *L, struct lasio_redis *c, const char *what) {
    send_command(L, c, 1, 2, what, on_reply);
    lua_getiuservalue(L, 1, REDIS_UV_RING);
    lasio_future_push_(L, c->loop);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, c->tail++);
    lua_remove(L, -2);
    reanchor(L, c, 1);
}

/* conn:send(cmd, ...) -> Future of the reply (pipelining without a task
 * per command). */
static int
conn_send(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    push_command(L, c, "redis send");
    return 1;
}

/* conn:call(cmd, ...) -> the reply; raises ReplyError, ConnectionError. */
static int
conn_call(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    struct lasio_loop *loop;
    lasio_check_await_(L, &loop, "redis call");
    push_command(L, c, "redis call");
    return lasio_await_(L, lua_gettop(L), "redis call");
}

/* conn:subscribe_command(cmd, ...): (P)(UN)SUBSCRIBE, whose replies and
 * the messages after them are read with next_message. */
static int
conn_subscribe_command(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    send_command(L, c, 1, 2, "redis subscribe", on_push);
    c->subscribed = 1;
    reanchor(L, c, 1);
    return 0;
}

/* conn:next_message() -> the next subscription reply (a table such as
 * {"message", channel, payload}); raises ConnectionError once the
 * connection has ended and every message was read. */
static int
conn_next_message(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, REDIS_UV_PUSHES);
    if (c->phead < c->ptail) {
        lua_rawgeti(L, 2, c->phead);
        lua_pushnil(L);
        lua_rawseti(L, 2, c->phead);
        if (++c->phead == c->ptail)
            c->phead = c->ptail = 1;
        return 1;
    }
    if (!c->ac) {
        push_conn_error(L, c, "redis messages");
        return lua_error(L);
    }
    lua_getiuservalue(L, 1, REDIS_UV_PUSHWAIT);
    struct lasio_future *f = lasio_tofuture_(L, -1);
    if (f && f->state == FUT_PENDING)
        return luaL_error(L, "redis messages: another task is already "
                             "reading this subscription's messages");
    struct lasio_loop *loop;
    lasio_check_await_(L, &loop, "redis messages");
    lasio_future_push_(L, c->loop);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, REDIS_UV_PUSHWAIT);
    return lasio_await_(L, lua_gettop(L), "redis messages");
}

/* conn:close(): every command in flight fails with ConnectionError
 * ("the connection was closed"). Idempotent. */
static int
conn_close(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    note_error(c, "the connection was closed", EPIPE);
    release(c);
    fail_all(L, c, 1, "redis");
    c->subscribed = 0;
    reanchor(L, c, 1);
    return 0;
}

static int
conn_gc(lua_State *L) {
    release(lua_touserdata(L, 1));
    return 0;
}

/* conn:status() -> "connecting" | "open" | "closed", and the reason it
 * ended (or nil). A connection that hiredis has freed drops its anchor
 * here (no Lua code could run in the cleanup hook). */
static int
conn_status(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    if (!c->ac) {
        fail_all(L, c, 1, "redis");
        reanchor(L, c, 1);
    }
    lua_pushstring(L, !c->ac          ? "closed"
                      : c->connecting ? "connecting"
                                      : "open");
    if (c->errmsg[0])
        lua_pushstring(L, c->errmsg);
    else
        lua_pushnil(L);
    return 2;
}

/* conn:is_head(fut) -> whether fut is the oldest command in flight (the
 * one the server is serving, or will serve next). */
static int
conn_is_head(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, REDIS_UV_RING);
    lua_rawgeti(L, 3, c->head);
    lua_pushboolean(L, c->head < c->tail && lua_rawequal(L, 2, 4));
    return 1;
}

/* conn:pending() -> the number of commands in flight. */
static int
conn_pending(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    lua_pushinteger(L, c->tail - c->head);
    return 1;
}

static int
conn_tostring(lua_State *L) {
    struct lasio_redis *c = checkconn(L, 1);
    lua_pushfstring(L, "lasio.redis.Connection<%s fd=%d>",
                    !c->ac          ? "closed"
                    : c->connecting ? "connecting"
                                    : "open",
                    c->ac ? c->ac->c.fd : -1);
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"call", conn_call},
    {"send", conn_send},
    {"subscribe_command", conn_subscribe_command},
    {"next_message", conn_next_message},
    {"close", conn_close},
    {"status", conn_status},
    {"pending", conn_pending},
    {"is_head", conn_is_head},
    {NULL, NULL}};

/* ====== } */

/* {====== Connecting ====== */

static void
push_metatable(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_REDIS_MT)) {
        luaL_newlib(L, conn_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, conn_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, conn_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, conn_tostring);
        lua_setfield(L, -2, "__tostring");
    }
}

/* internal.redis_connect(host, port) or (path) -> conn, Future of the
 * connection (true, or a ConnectionError). host must be numeric: hiredis
 * resolves names with a blocking getaddrinfo, so the facade resolves them
 * first. */
static int
module_redis_connect(lua_State *L) {
    const char *host = luaL_checkstring(L, 1);
    int port = lua_isnoneornil(L, 2) ? -1 : (int)luaL_checkinteger(L, 2);
    struct lasio_loop *loop = lasio_io_running_loop_(L, "lasio.redis.connect");
    const char *why = lasio_hiredis_load_();
    if (why) {
        lasio_oserror_pushmsg_(L, "lasio.redis.connect", ENOSYS, why);
        return lua_error(L);
    }
    lua_settop(L, 2);
    struct lasio_redis *c = lua_newuserdatauv(L, sizeof *c, REDIS_NUV);
    memset(c, 0, sizeof *c);
    c->anchor = LUA_NOREF;
    c->head = c->tail = c->phead = c->ptail = 1;
    c->loop = loop;
    c->link.release = release_link;
    if (port >= 0)
        snprintf(c->where, sizeof c->where, "%s:%d", host, port);
    else
        snprintf(c->where, sizeof c->where, "%s", host);
    push_metatable(L);
    lua_setmetatable(L, 3);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, 3, REDIS_UV_LOOP);
    lua_newtable(L);
    lua_setiuservalue(L, 3, REDIS_UV_RING);
    lua_newtable(L);
    lua_setiuservalue(L, 3, REDIS_UV_PUSHES);
    lasio_future_push_(L, loop); /* 4 */
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, 3, REDIS_UV_CONNECT);

    redisAsyncContext *ac =
        port >= 0 ? redisAsyncConnect(host, port) : redisAsyncConnectUnix(host);
    if (!ac)
        return luaL_error(L, "not enough memory");
    if (ac->err) {
        note_error(c, ac->errstr, 0);
        redisAsyncFree(ac);
        push_conn_error(L, c, "connect");
        return lua_error(L);
    }
    c->rev = event_new(loop->base, ac->c.fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev =
        event_new(loop->base, ac->c.fd, EV_WRITE | EV_PERSIST, on_write, c);
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    c->ac = ac;
    lasio_iolink_add_(loop, &c->link);
    c->linked = 1;
    if (!c->rev || !c->wev) {
        release(c);
        return luaL_error(L, "not enough memory");
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    lasio_sighub_ignore_sigpipe_(loop); /* hiredis writes with write(2) */
    /* the first write event completes the connection (hiredis's
     * redisAsyncHandleWrite sees it) */
    event_add(c->wev, NULL);
    event_add(c->rev, NULL);
    c->connecting = 1;
    reanchor(L, c, 3);
    return 2;
}

/* internal.redis_errors() -> ReplyError, ConnectionError (one pair per
 * Lua state). */
static int
module_redis_errors(lua_State *L) {
    pushclass(L, 1);
    pushclass(L, 2);
    return 2;
}

void
lasio_redis_open_(lua_State *L) {
    lua_pushcfunction(L, module_redis_connect);
    lua_setfield(L, -2, "redis_connect");
    lua_pushcfunction(L, module_redis_errors);
    lua_setfield(L, -2, "redis_errors");
    lua_pushlightuserdata(L, (void *)&null_key);
    lua_setfield(L, -2, "redis_null");
}

/* ====== } */
