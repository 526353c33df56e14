/*
 * reader.c: StreamReader (docs/API.md, TCP and Unix streams): asyncio's read,
 * readline, readuntil, readexactly, at_eof, and lines(), with close() and
 * fileno() (a child's pipes need both); its metatable. Owns nothing: each
 * operation completes from the stream's input buffer when it can, else
 * waits as the stream's one reader, and its continuation tries again.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "stream/stream.h"

/* Stack of every operation: 1 the reader, 2 its argument. */
#define BASE 2

/* The type token of the metatable (errors.c: a check without a registry
 * lookup by name on every I/O call). */
static const char reader_token = 0;

struct lasio_stream *
lasio_checkreader_(lua_State *L, int idx) {
    struct lasio_view *v =
        lasio_checkobj_(L, idx, &reader_token, LASIO_READER_MT);
    return v->s;
}

enum op { OP_READ, OP_READALL, OP_EXACTLY, OP_UNTIL, OP_LINE, OP_LINES };

static const char *const opnames[] = {"read",      "read",     "readexactly",
                                      "readuntil", "readline", "lines"};

/* Pushes n bytes from the front of the input and consumes them. */
static void
take(lua_State *L, struct lasio_stream *s, size_t n) {
    lua_pushlstring(L, lasio_buf_at_(&s->in, s->in.off), n);
    lasio_buf_consume_(&s->in, n);
    lasio_stream_consumed_(s);
}

/* Raises IncompleteReadError with the bytes at the top as `partial`. */
static int
incomplete(lua_State *L, lua_Integer expected) {
    size_t n = lua_rawlen(L, -1);
    if (expected >= 0)
        lua_pushfstring(L, "%I bytes read on a total of %I expected bytes",
                        (lua_Integer)n, expected);
    else
        lua_pushfstring(L,
                        "%I bytes read on a total of undefined expected "
                        "bytes",
                        (lua_Integer)n);
    lasio_newerror_(L, ERR_INCOMPLETEREAD, lua_tostring(L, -1), 1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "partial");
    if (expected >= 0) {
        lua_pushinteger(L, expected);
        lua_setfield(L, -2, "expected");
    }
    return lua_error(L);
}

static int
overrun(lua_State *L, const char *msg, size_t consumed) {
    lasio_newerror_(L, ERR_LIMITOVERRUN, msg, 1);
    lua_pushinteger(L, (lua_Integer)consumed);
    lua_setfield(L, -2, "consumed");
    return lua_error(L);
}

/* The read side ended (EOF, error or close) and the buffer cannot satisfy
 * the operation: raises the stream's error, if any. */
static void
check_error(lua_State *L, struct lasio_stream *s, enum op op) {
    if (lasio_stream_readerror_(L, s, opnames[op]))
        lua_error(L);
}

/* readuntil / readline / lines: asyncio's readuntil, with readline's
 * handling of its errors when op is not OP_UNTIL. */
static int
try_until(lua_State *L, struct lasio_stream *s, enum op op) {
    size_t seplen = 1;
    const char *sep = "\n";
    if (op == OP_UNTIL)
        sep = lua_tolstring(L, 2, &seplen);
    if (s->closing || s->released)
        check_error(L, s, op);
    const char *buf = lasio_buf_at_(&s->in, s->in.off);
    size_t len = s->in.len;
    const char *found = NULL;
    if (len >= seplen && s->rscan <= len - seplen)
        found = memmem(buf + s->rscan, len - s->rscan, sep, seplen);
    if (found) {
        size_t isep = (size_t)(found - buf);
        if (isep > s->limit) {
            if (op == OP_UNTIL)
                return overrun(L,
                               "Separator is found, but chunk is longer "
                               "than limit",
                               isep);
            /* readline drops the line and its separator */
            lasio_buf_consume_(&s->in, isep + seplen);
            lasio_stream_consumed_(s);
            return overrun(L,
                           "Separator is found, but chunk is longer "
                           "than limit",
                           isep);
        }
        /* lines() gives them without the end of line, as io.lines */
        take(L, s, isep + seplen - (op == OP_LINES));
        if (op == OP_LINES) {
            lasio_buf_consume_(&s->in, 1);
            lasio_stream_consumed_(s);
        }
        return 1;
    }
    s->rscan = len + 1 >= seplen ? len + 1 - seplen : 0;
    if (s->rscan > s->limit) {
        size_t consumed = s->rscan;
        if (op != OP_UNTIL) { /* readline clears the buffer */
            lasio_buf_consume_(&s->in, s->in.len);
            lasio_stream_consumed_(s);
        }
        return overrun(L, "Separator is not found, and chunk exceed the limit",
                       consumed);
    }
    if (s->eof) {
        if (len == 0)
            check_error(L, s, op);
        if (op == OP_LINES && len == 0) {
            lua_pushnil(L); /* the end of the iteration */
            return 1;
        }
        take(L, s, len);
        if (op == OP_UNTIL)
            return incomplete(L, -1);
        return 1;
    }
    s->rneed = len + 1;
    return 0;
}

/* Tries the operation on the buffered bytes: returns 1 with the result
 * pushed, or 0 with s->rneed set when it must wait. Raises its errors. */
static int
try_op(lua_State *L, struct lasio_stream *s, enum op op) {
    lua_Integer n;
    switch (op) {
    case OP_READ:
        n = lua_tointeger(L, 2);
        if (s->closing || s->released)
            check_error(L, s, op);
        if (s->in.len > 0) {
            take(L, s, (size_t)n < s->in.len ? (size_t)n : s->in.len);
            return 1;
        }
        if (s->eof) {
            check_error(L, s, op);
            lua_pushliteral(L, "");
            return 1;
        }
        s->rneed = 1;
        return 0;
    case OP_READALL:
        if (s->closing || s->released)
            check_error(L, s, op);
        if (s->eof) {
            check_error(L, s, op);
            take(L, s, s->in.len);
            return 1;
        }
        s->rneed = SIZE_MAX;
        return 0;
    case OP_EXACTLY:
        n = lua_tointeger(L, 2);
        if (s->closing || s->released)
            check_error(L, s, op);
        if (s->in.len >= (size_t)n) {
            take(L, s, (size_t)n);
            return 1;
        }
        if (s->eof) {
            check_error(L, s, op);
            take(L, s, s->in.len);
            return incomplete(L, n);
        }
        s->rneed = (size_t)n;
        return 0;
    default:
        return try_until(L, s, op);
    }
}

static int wait_op(lua_State *L, struct lasio_stream *s, enum op op);

/* After a wake-up: forget the task, then try again. */
static int
read_k(lua_State *L, int status, lua_KContext ctx) {
    enum op op = (enum op)ctx;
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    (void)status;
    lasio_reader_woken_(L, s, BASE);
    if (try_op(L, s, op))
        return lua_gettop(L) - BASE;
    if (lasio_reader_expired_(s))
        return lasio_raise_(L, ERR_TIMEOUT, "%s: timed out", opnames[op]);
    return wait_op(L, s, op);
}

static int
wait_op(lua_State *L, struct lasio_stream *s, enum op op) {
    return lasio_reader_wait_(L, s, BASE, opnames[op], op, read_k);
}

int
lasio_reader_wait_(lua_State *L, struct lasio_stream *s, int base,
                   const char *op, lua_KContext ctx, lua_KFunction k) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, op);
    if (loop != s->loop)
        return luaL_error(L, "%s: the stream belongs to another loop", op);
    lasio_io_wait_(L, t, base, s->rdeadline);
    t->wait_what = "read"; /* what the await graph shows */
    t->wait_fd = s->fd;
    if (loop->trace)
        lasio_trace_io_detail_(loop, t, s->fd, op);
    s->reader = t;
    lasio_stream_update_reading_(s);
    return lasio_io_yield_(L, ctx, k);
}

void
lasio_reader_woken_(lua_State *L, struct lasio_stream *s, int base) {
    s->reader = NULL;
    if (lasio_io_resumed_(L, s->loop, base)) {
        if (s->fd >= 0)
            lasio_stream_update_reading_(s);
        lua_error(L);
    }
}

int
lasio_reader_expired_(struct lasio_stream *s) {
    if (s->rdeadline > 0 && lasio_time_() >= s->rdeadline) {
        if (s->fd >= 0)
            lasio_stream_update_reading_(s);
        return 1;
    }
    return 0;
}

/* Runs op: at once when the buffer has what it needs, else waits. */
static int
run_op(lua_State *L, struct lasio_stream *s, enum op op) {
    lua_settop(L, BASE);
    if (s->reader)
        return luaL_error(L,
                          "%s: another task is already reading this stream "
                          "(read already in progress)",
                          opnames[op]);
    s->rscan = 0;
    if (try_op(L, s, op))
        return lua_gettop(L) - BASE;
    s->rdeadline = lasio_io_deadline_(s->timeout);
    return wait_op(L, s, op);
}

/* {====== Methods ====== */

/* reader:read([n]): up to n bytes as soon as any are there; nil or a
 * negative n reads until EOF. "" at EOF. */
static int
reader_read(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    if (lua_isnoneornil(L, 2))
        return run_op(L, s, OP_READALL);
    lasio_checkargtype_(L, 2, LUA_TNUMBER, "reader:read");
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0)
        return run_op(L, s, OP_READALL);
    if (n == 0) {
        if (s->reader)
            return luaL_error(L, "read: another task is already reading "
                                 "this stream (read already in progress)");
        lua_pushliteral(L, "");
        return 1;
    }
    return run_op(L, s, OP_READ);
}

static int
reader_readexactly(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    lasio_checkargtype_(L, 2, LUA_TNUMBER, "reader:readexactly");
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 0)
        return luaL_argerror(L, 2,
                             "readexactly size can not be less than "
                             "zero");
    if (n == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    return run_op(L, s, OP_EXACTLY);
}

static int
reader_readuntil(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushliteral(L, "\n");
    }
    size_t seplen;
    if (lua_type(L, 2) != LUA_TSTRING)
        return lasio_argerror_(
            L, 1, "reader:readuntil",
            lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_tolstring(L, 2, &seplen);
    if (seplen == 0)
        return luaL_argerror(L, 2,
                             "separator should be at least one-byte "
                             "string");
    return run_op(L, s, OP_UNTIL);
}

static int
reader_readline(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    return run_op(L, s, OP_LINE);
}

/* The iterator of lines(): upvalue 1 is the reader. */
static int
lines_next(lua_State *L) {
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    lua_pushnil(L);
    return run_op(L, s, OP_LINES);
}

/* reader:lines(): for line in reader:lines() do ... end; lines come
 * without their "\n" (as io.lines gives them); the loop ends at EOF. */
static int
reader_lines(lua_State *L) {
    lasio_checkreader_(L, 1);
    lua_settop(L, 1);
    lua_pushcclosure(L, lines_next, 1);
    return 1;
}

static int
reader_at_eof(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    /* after close() nothing more can be read */
    lua_pushboolean(L, s->closing || s->released || (s->eof && s->in.len == 0));
    return 1;
}

static int
reader_settimeout(lua_State *L) {
    lasio_checkreader_(L, 1)->timeout =
        lasio_io_checktimeout_(L, 2, "settimeout");
    return 0;
}

static int
reader_gettimeout(lua_State *L) {
    return lasio_io_pushtimeout_(L, lasio_checkreader_(L, 1)->timeout);
}

/* reader:get_limit(): the buffer limit of readuntil / readline. */
static int
reader_get_limit(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lasio_checkreader_(L, 1)->limit);
    return 1;
}

/* reader:buffered(): how many bytes are buffered. */
static int
reader_buffered(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lasio_checkreader_(L, 1)->in.len);
    return 1;
}

/* reader:fileno(): the fd, -1 once closed. */
static int
reader_fileno(lua_State *L) {
    lua_pushinteger(L, lasio_checkreader_(L, 1)->fd);
    return 1;
}

/* reader:close(): closes the stream, as the writer's close() (a child's
 * stdout has no writer); a task blocked reading is woken with an
 * error. */
static int
reader_close(lua_State *L) {
    lasio_checkreader_(L, 1);
    return lasio_view_close_(L);
}

static int
reader_tostring(lua_State *L) {
    struct lasio_stream *s = lasio_checkreader_(L, 1);
    lua_pushfstring(L, "%s<fd=%d %s buffered=%I>", LASIO_READER_MT, s->fd,
                    lasio_stream_state_(s, 1), (lua_Integer)s->in.len);
    return 1;
}

static const luaL_Reg reader_methods[] = {{"read", reader_read},
                                          {"readexactly", reader_readexactly},
                                          {"readuntil", reader_readuntil},
                                          {"readline", reader_readline},
                                          {"lines", reader_lines},
                                          {"at_eof", reader_at_eof},
                                          {"settimeout", reader_settimeout},
                                          {"gettimeout", reader_gettimeout},
                                          {"get_limit", reader_get_limit},
                                          {"buffered", reader_buffered},
                                          {"fileno", reader_fileno},
                                          {"close", reader_close},
                                          {NULL, NULL}};

/* ====== } */

void
lasio_reader_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_READER_MT, &reader_token)) {
        luaL_newlib(L, reader_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, reader_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, reader_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}
