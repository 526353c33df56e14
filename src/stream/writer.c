/*
 * writer.c: StreamWriter (docs/API.md, TCP and Unix streams): write,
 * writelines, drain, write_eof, close, wait_closed, get_extra_info; its
 * metatable. Owns nothing. write() sends at once and buffers only what the fd
 * does not take; drain() waits while asyncio's pause_writing would be on (high
 * / low marks). What write_eof and get_extra_info mean is the transport's.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <string.h>

#include "stream/stream.h"

/* Stack of the waiting operations: 1 the writer. */
#define BASE 1

/* The type token of the metatable (errors.c: a check without a registry
 * lookup by name on every I/O call). */
static const char writer_token = 0;

struct lasio_stream *
lasio_checkwriter_(lua_State *L, int idx) {
    struct lasio_view *v =
        lasio_checkobj_(L, idx, &writer_token, LASIO_WRITER_MT);
    return v->s;
}

/* The error write-side operations raise now, or 0. */
static int
write_error(lua_State *L, struct lasio_stream *s, const char *op) {
    if (s->werr) {
        lasio_oserror_push_(L, op, s->werr);
        return 1;
    }
    if (s->rerr && s->rerr != ENOMEM) {
        lasio_oserror_push_(L, op, s->rerr);
        return 1;
    }
    return 0;
}

/* Writing to a stream that was closed (maybe by another task) is an
 * operational error; writing after write_eof() is misuse. */
static void
check_writable(lua_State *L, struct lasio_stream *s, const char *op) {
    if (s->closing || s->released) {
        lasio_oserror_pushmsg_(L, op, EBADF, "the stream is closed");
        lua_error(L);
    }
    if (s->eof_wanted)
        luaL_error(L, "%s: cannot write after write_eof()", op);
}

/* Sends p[0..n) or buffers what the socket does not take now. */
static void
send_or_buffer(lua_State *L, struct lasio_stream *s, const char *p, size_t n) {
    if (s->werr || n == 0)
        return; /* the connection is lost: drain() raises */
    if (s->out.len == 0 && !s->connecting) {
        for (;;) {
            long w = s->tp->write(s, p, n);
            if (w >= 0) {
                p += w;
                n -= (size_t)w;
                if (n == 0)
                    return;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            lasio_stream_write_failed_(s, errno);
            lasio_stream_wake_(L, s, 1, 0);
            return;
        }
    }
    if (lasio_buf_reserve_(&s->out, n) < 0) {
        /* part of the data may be gone: the stream is broken */
        lasio_stream_write_failed_(s, ENOMEM);
        luaL_error(L, "not enough memory");
    }
    memcpy(s->out.data + s->out.off + s->out.len, p, n);
    s->out.len += n;
    if (s->out.len > s->whigh)
        s->wpaused = 1;
    lasio_stream_update_writing_(s);
}

void
lasio_stream_send_(lua_State *L, struct lasio_stream *s, const char *p,
                   size_t n, const char *op) {
    check_writable(L, s, op);
    send_or_buffer(L, s, p, n);
}

void
lasio_stream_send2_(lua_State *L, struct lasio_stream *s, const char *p1,
                    size_t n1, const char *p2, size_t n2, const char *op) {
    check_writable(L, s, op);
    if (s->werr)
        return; /* the connection is lost: drain() raises */
    if (s->out.len == 0 && !s->connecting && s->tp->write2 && n1 > 0) {
        long w;
        do
            w = s->tp->write2(s, p1, n1, p2, n2);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            lasio_stream_write_failed_(s, errno);
            lasio_stream_wake_(L, s, 1, 0);
            return;
        }
        /* what the socket did not take goes the ordinary way */
        size_t done = w < 0 ? 0 : (size_t)w;
        if (done >= n1) {
            send_or_buffer(L, s, p2 + (done - n1), n2 - (done - n1));
            return;
        }
        p1 += done;
        n1 -= done;
    }
    send_or_buffer(L, s, p1, n1);
    send_or_buffer(L, s, p2, n2);
}

static int
writer_write(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    size_t n;
    if (lua_type(L, 2) != LUA_TSTRING)
        return lasio_argerror_(
            L, 1, "writer:write",
            lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    const char *p = lua_tolstring(L, 2, &n);
    lasio_stream_send_(L, s, p, n, "write");
    return 0;
}

static int
writer_writelines(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lasio_checkargtype_(L, 2, LUA_TTABLE, "writer:writelines");
    check_writable(L, s, "writelines");
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 2, i) != LUA_TSTRING)
            return luaL_error(L, "writelines: item %I is a %s, not a string", i,
                              luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_geti(L, 2, i);
        const char *p = lua_tolstring(L, -1, &len);
        send_or_buffer(L, s, p, len);
        lua_pop(L, 1);
    }
    return 0;
}

/* {====== Waiting: drain and wait_closed ====== */

enum wop { WOP_DRAIN, WOP_CLOSED };

static const char *const wopnames[] = {"drain", "wait_closed"};

static int wait_w(lua_State *L, struct lasio_stream *s, enum wop op);

/* Tries the operation: 1 when done, 0 when it must wait; raises. */
static int
try_w(lua_State *L, struct lasio_stream *s, enum wop op) {
    if (op == WOP_CLOSED)
        return s->released || s->fd < 0;
    if (write_error(L, s, "drain"))
        return lua_error(L);
    if (s->closing || s->released) {
        lasio_oserror_pushmsg_(L, "drain", EBADF, "the stream is closed");
        return lua_error(L);
    }
    return !s->wpaused;
}

/* A cancelled or timed-out wait_closed aborts: the socket goes now. */
static void
abort_close(lua_State *L, struct lasio_stream *s) {
    lasio_stream_abort_(L, s);
}

static int
write_k(lua_State *L, int status, lua_KContext ctx) {
    enum wop op = (enum wop)ctx;
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    struct lasio_loop *loop = lasio_running_loop_(L);
    (void)status;
    lasio_stream_del_ww_(s, loop->current);
    if (lasio_io_resumed_(L, s->loop, BASE + 1)) {
        if (op == WOP_CLOSED)
            abort_close(L, s);
        return lua_error(L);
    }
    if (try_w(L, s, op))
        return 0;
    /* the deadline is kept in the continuation's stack slot 2 */
    return wait_w(L, s, op);
}

static int
wait_w(lua_State *L, struct lasio_stream *s, enum wop op) {
    struct lasio_loop *loop;
    double deadline = lua_tonumber(L, BASE + 1);
    lua_settop(L, BASE);
    if (deadline > 0 && lasio_time_() >= deadline) {
        if (op == WOP_CLOSED)
            abort_close(L, s);
        return lasio_raise_(L, ERR_TIMEOUT, "%s: timed out", wopnames[op]);
    }
    struct lasio_task *t = lasio_check_await_(L, &loop, wopnames[op]);
    if (loop != s->loop)
        return luaL_error(L, "%s: the stream belongs to another loop",
                          wopnames[op]);
    lasio_stream_reserve_ww_(L, s);
    /* slot BASE + 1 keeps the deadline across the suspension */
    lua_pushnumber(L, deadline);
    lasio_io_wait_(L, t, BASE + 1, deadline);
    t->wait_what = "write"; /* what the await graph shows */
    t->wait_fd = s->fd;
    if (loop->trace)
        lasio_trace_io_detail_(loop, t, s->fd, wopnames[op]);
    lasio_stream_add_ww_(s, t);
    return lasio_io_yield_(L, op, write_k);
}

static int
writer_drain(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_settop(L, BASE);
    if (try_w(L, s, WOP_DRAIN))
        return 0;
    lua_pushnumber(L, lasio_io_deadline_(s->timeout));
    return wait_w(L, s, WOP_DRAIN);
}

static int
writer_wait_closed(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_settop(L, BASE);
    if (try_w(L, s, WOP_CLOSED))
        return 0;
    lua_pushnumber(L, lasio_io_deadline_(s->timeout));
    return wait_w(L, s, WOP_CLOSED);
}

/* ====== } */

static int
writer_close(lua_State *L) {
    lasio_checkwriter_(L, 1);
    return lasio_view_close_(L);
}

static int
writer_write_eof(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    if (s->closing || s->released)
        return luaL_error(L, "write_eof: the stream is closed");
    switch (s->tp->eof) {
    case LASIO_TP_EOF_NONE:
        return luaL_error(L,
                          "write_eof: not supported on %s streams "
                          "(can_write_eof() is false)",
                          s->tp->name);
    case LASIO_TP_EOF_CLOSE:
        return writer_close(L);
    default:
        break;
    }
    if (s->eof_wanted)
        return 0;
    s->eof_wanted = 1;
    if (s->out.len == 0)
        lasio_stream_flush_(s); /* shuts the write side down now */
    return 0;
}

static int
writer_can_write_eof(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_pushboolean(L, s->tp->eof != LASIO_TP_EOF_NONE);
    return 1;
}

static int
writer_is_closing(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_pushboolean(L, s->closing || s->released);
    return 1;
}

/* writer:get_extra_info(name [, default]): "fd" of any stream, the
 * transport's names ("peername", "socket", "cipher" ...), then what the
 * transport recorded in STREAM_UV_EXTRA (kept after close). */
static int
writer_get_extra_info(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lasio_checkargtype_(L, 2, LUA_TSTRING, "writer:get_extra_info");
    const char *name = lua_tostring(L, 2);
    lua_settop(L, 3);
    if (strcmp(name, "fd") == 0) {
        if (s->fd >= 0) {
            lua_pushinteger(L, s->fd);
            return 1;
        }
    } else {
        lua_getiuservalue(L, 1, 1); /* 4: the stream */
        if (s->tp->extra_info && s->tp->extra_info(L, 4, name))
            return 1;
        if (lua_getiuservalue(L, 4, STREAM_UV_EXTRA) == LUA_TTABLE &&
            lua_getfield(L, -1, name) != LUA_TNIL)
            return 1;
    }
    lua_pushvalue(L, 3);
    return 1;
}

/* writer:abort(): closes the connection at once, dropping buffered
 * output (asyncio's transport.abort()); idempotent. */
static int
writer_abort(lua_State *L) {
    lasio_stream_abort_(L, lasio_checkwriter_(L, 1));
    return 0;
}

static int
writer_settimeout(lua_State *L) {
    lasio_checkwriter_(L, 1)->timeout =
        lasio_io_checktimeout_(L, 2, "settimeout");
    return 0;
}

static int
writer_gettimeout(lua_State *L) {
    return lasio_io_pushtimeout_(L, lasio_checkwriter_(L, 1)->timeout);
}

/* writer:set_write_buffer_limits([high [, low]]), as asyncio's transport:
 * low defaults to high / 4. */
static int
writer_set_write_buffer_limits(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    for (int i = 2; i <= 3; i++)
        if (!lua_isnoneornil(L, i))
            lasio_checkargtype_(L, i, LUA_TNUMBER,
                                "writer:set_write_buffer_limits");
    lua_Integer high = luaL_optinteger(L, 2, LASIO_WRITE_HIGH);
    lua_Integer low = luaL_optinteger(L, 3, high / 4);
    if (high < 0 || low < 0 || low > high)
        return luaL_error(L,
                          "set_write_buffer_limits: high (%I) must be >= "
                          "low (%I) must be >= 0",
                          high, low);
    s->whigh = (size_t)high;
    s->wlow = (size_t)low;
    if (s->out.len > s->whigh)
        s->wpaused = 1;
    return 0;
}

static int
writer_get_write_buffer_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lasio_checkwriter_(L, 1)->out.len);
    return 1;
}

/* writer:fileno(): the fd, -1 once closed. */
static int
writer_fileno(lua_State *L) {
    lua_pushinteger(L, lasio_checkwriter_(L, 1)->fd);
    return 1;
}

static int
writer_tostring(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_pushfstring(L, "%s<fd=%d %s buffered=%I>", LASIO_WRITER_MT, s->fd,
                    lasio_stream_state_(s, 0), (lua_Integer)s->out.len);
    return 1;
}

static const luaL_Reg writer_methods[] = {
    {"write", writer_write},
    {"writelines", writer_writelines},
    {"drain", writer_drain},
    {"write_eof", writer_write_eof},
    {"can_write_eof", writer_can_write_eof},
    {"close", writer_close},
    {"abort", writer_abort},
    {"is_closing", writer_is_closing},
    {"wait_closed", writer_wait_closed},
    {"get_extra_info", writer_get_extra_info},
    {"settimeout", writer_settimeout},
    {"gettimeout", writer_gettimeout},
    {"set_write_buffer_limits", writer_set_write_buffer_limits},
    {"get_write_buffer_size", writer_get_write_buffer_size},
    {"fileno", writer_fileno},
    {NULL, NULL}};

void
lasio_writer_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_WRITER_MT, &writer_token)) {
        luaL_newlib(L, writer_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, writer_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, writer_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}
