/*
 * pipe.c: the stream reader and writer of a child's pipes (PipeReader,
 * PipeWriter; asyncio's StreamReader / StreamWriter names, API.md section
 * 9). A pipe owns its fd, one libevent event and one byte buffer. Readers
 * read on demand, so a child that writes more than is read blocks on the
 * full pipe (back-pressure). Writers write at once when they can and flush
 * the rest from the event, pinned meanwhile; drain() waits above the
 * high-water mark.
 * Invariants: at most one task waits on a pipe (p->task, suspended in one
 * of its operations); the event is added only while a task waits or a
 * writer flushes; fd >= 0 exactly while the pipe is open and linked.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "sys/sys.h"

#define READ_CHUNK 65536
#define WRITE_HIGH 65536 /* drain() waits above this ... */
#define WRITE_LOW 16384  /* ... until the buffer is below this */

struct lasio_pipe {
    struct lasio_iolink link;
    struct lasio_loop *loop; /* kept alive by PIPE_UV_LOOP */
    struct event *ev;        /* EV_READ or EV_WRITE on fd */
    int fd;
    int err;                  /* errno that ended the I/O, or 0 */
    int pin;                  /* anchor ref while a writer flushes */
    struct lasio_task *task;  /* the task waiting in an operation */
    double timeout, deadline; /* settimeout (<0: none); current op's */
    size_t limit;
    char *buf; /* the bytes are buf[off .. off+len) */
    size_t off, len, cap;
    unsigned char writer, armed, eof, closing, linked;
};

enum { PIPE_UV_LOOP = 1, PIPE_NUV = PIPE_UV_LOOP };

static struct lasio_pipe *
checkreader(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_PIPE_READER_MT);
}

static struct lasio_pipe *
checkwriter(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_PIPE_WRITER_MT);
}

/* {====== Lifetime ====== */

/* Lets go of the event and the fd; runs no Lua code (loop close too). */
static void
release(struct lasio_pipe *p) {
    lasio_io_unlink_(p->loop, &p->link, &p->linked);
    if (p->ev) {
        event_free(p->ev);
        p->ev = NULL;
    }
    p->armed = 0;
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = p->cap = 0;
}

static void
link_release(struct lasio_iolink *link) {
    struct lasio_pipe *p = (struct lasio_pipe *)link;
    p->linked = 0;  /* the loop unlinked it */
    p->task = NULL; /* never resumed now */
    release(p);
}

static void pipe_event(evutil_socket_t fd, short what, void *arg);

struct lasio_pipe *
lasio_pipe_new_(lua_State *L, struct lasio_loop *loop, int writer,
                size_t limit) {
    struct lasio_pipe *p =
        lua_newuserdatauv(L, sizeof(struct lasio_pipe), PIPE_NUV);
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->pin = LUA_NOREF;
    p->timeout = -1;
    p->limit = limit;
    p->writer = (unsigned char)writer;
    p->loop = loop;
    luaL_setmetatable(L, writer ? LASIO_PIPE_WRITER_MT : LASIO_PIPE_READER_MT);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, -2, PIPE_UV_LOOP);
    return p;
}

int
lasio_pipe_open_(struct lasio_pipe *p, int fd) {
    p->ev = event_new(p->loop->base, fd, p->writer ? EV_WRITE : EV_READ,
                      pipe_event, p);
    if (!p->ev)
        return -1;
    p->fd = fd;
    lasio_iolink_add_(p->loop, &p->link);
    p->link.release = link_release;
    p->linked = 1;
    return 0;
}

static int
pipe_gc(lua_State *L) {
    release(lua_touserdata(L, 1));
    return 0;
}

/* ====== } */

/* {====== Waiting ====== */

/* Body of the libevent callback, in protected mode. */
static int
event_body(lua_State *L) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    if (p->writer) {
        /* flushed, failed or closed: unpin once the event is off */
        if (!p->armed)
            lasio_sys_unpin_(L, p->loop, &p->pin);
        if (p->task && (p->len <= WRITE_LOW || p->err || p->fd < 0))
            lasio_io_wake_(L, p->task);
    } else if (p->task) {
        lasio_io_wake_(L, p->task);
    }
    return 0;
}

/* Writes what the buffer holds; returns -1 on a write error (p->err). */
static int
flush(struct lasio_pipe *p) {
    while (p->len > 0) {
        ssize_t n = write(p->fd, p->buf + p->off, p->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            p->err = errno;
            p->off = p->len = 0; /* the data cannot go anywhere now */
            return -1;
        }
        p->off += (size_t)n;
        p->len -= (size_t)n;
    }
    p->off = 0;
    return 0;
}

static void
pipe_event(evutil_socket_t fd, short what, void *arg) {
    struct lasio_pipe *p = arg;
    (void)fd, (void)what;
    p->armed = 0;
    if (p->writer && p->fd >= 0) {
        flush(p);
        if (p->len > 0 && !p->err) { /* more to write */
            event_add(p->ev, NULL);
            p->armed = 1;
        } else if (p->closing) {
            release(p);
        }
    }
    lasio_io_guard_(p->loop, event_body, p);
}

/* Adds the event if it is not. Returns -1 on failure. */
static int
arm(struct lasio_pipe *p) {
    if (p->armed)
        return 0;
    if (event_add(p->ev, NULL) < 0)
        return -1;
    p->armed = 1;
    return 0;
}

static void
disarm(struct lasio_pipe *p) {
    if (p->armed && p->ev)
        event_del(p->ev);
    p->armed = 0;
}

/* Starts an operation that may wait: the pipe must be open and idle. */
static void
begin(lua_State *L, struct lasio_pipe *p, const char *what) {
    if (p->fd < 0 || (p->closing && !p->writer))
        luaL_error(L, "%s: the pipe is closed", what);
    if (p->task)
        luaL_error(L, "%s: another task is already waiting on this pipe", what);
    p->deadline = lasio_io_deadline_(p->timeout);
}

/* Suspends the running task until the pipe is ready (or the deadline). */
static int
wait_ready(lua_State *L, struct lasio_pipe *p, int base, lua_KContext ctx,
           lua_KFunction k, const char *what) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, what);
    if (p->deadline > 0 && lasio_time_() >= p->deadline) {
        if (!p->writer)
            disarm(p);
        return lasio_raise_(L, ERR_TIMEOUT, "%s: timed out", what);
    }
    if (arm(p) < 0)
        return luaL_error(L, "%s: cannot watch the pipe", what);
    p->task = t;
    lasio_io_wait_(L, t, base, p->deadline);
    return lasio_io_yield_(L, ctx, k);
}

/* In a continuation: forgets the waiting task; raises CancelledError,
 * or returns when the operation may go on (wait_ready raises
 * TimeoutError if it must wait again past the deadline). */
static void
resumed(lua_State *L, struct lasio_pipe *p, int base) {
    p->task = NULL;
    if (lasio_io_resumed_(L, p->loop, base)) {
        if (!p->writer)
            disarm(p);
        lua_error(L);
    }
}

/* ====== } */

/* {====== Reader ====== */

enum { OP_READ, OP_READALL, OP_UNTIL, OP_EXACTLY, OP_LINE };

/* Reads once into the buffer: 1 data, 0 EOF or error, -1 would block. */
static int
fill(lua_State *L, struct lasio_pipe *p) {
    if (p->off > 0 && p->off + p->len + READ_CHUNK > p->cap) {
        memmove(p->buf, p->buf + p->off, p->len);
        p->off = 0;
    }
    if (p->len + READ_CHUNK > p->cap) {
        size_t cap = p->cap ? p->cap : READ_CHUNK;
        while (cap < p->len + READ_CHUNK)
            cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb)
            luaL_error(L, "not enough memory");
        p->buf = nb;
        p->cap = cap;
    }
    for (;;) {
        ssize_t n = read(p->fd, p->buf + p->off + p->len, READ_CHUNK);
        if (n > 0) {
            p->len += (size_t)n;
            return 1;
        }
        if (n == 0) {
            p->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return -1;
        p->err = errno;
        p->eof = 1;
        return 0;
    }
}

/* Pushes the first n buffered bytes and consumes them. */
static void
take(lua_State *L, struct lasio_pipe *p, size_t n) {
    lua_pushlstring(L, p->buf ? p->buf + p->off : "", n);
    p->off += n;
    p->len -= n;
    if (p->len == 0)
        p->off = 0;
}

/* Tries to complete the operation from the buffer: returns the number of
 * results pushed, or 0 when it needs more data. stack: self, arg */
static int
try_op(lua_State *L, struct lasio_pipe *p, int op) {
    switch (op) {
    case OP_READ: {
        size_t n = (size_t)lua_tointeger(L, 2);
        if (p->len == 0 && !p->eof)
            return 0;
        take(L, p, p->len < n ? p->len : n);
        return 1;
    }
    case OP_READALL:
        if (!p->eof)
            return 0;
        take(L, p, p->len);
        return 1;
    case OP_EXACTLY: {
        size_t n = (size_t)lua_tointeger(L, 2);
        if (p->len >= n) {
            take(L, p, n);
            return 1;
        }
        if (!p->eof)
            return 0;
        take(L, p, p->len);
        lua_pushfstring(L, "%d bytes read on a total of %d expected bytes",
                        (int)lua_rawlen(L, -1), (int)n);
        lasio_newerror_at_(L, ERR_INCOMPLETEREAD, -1);
        lua_remove(L, -2);
        lua_insert(L, -2);
        lua_setfield(L, -2, "partial");
        lua_pushinteger(L, (lua_Integer)n);
        lua_setfield(L, -2, "expected");
        return lua_error(L);
    }
    default: { /* OP_UNTIL, OP_LINE */
        size_t seplen;
        const char *sep = lua_tolstring(L, 2, &seplen);
        const char *data = p->buf ? p->buf + p->off : "";
        const char *hit =
            seplen <= p->len ? memmem(data, p->len, sep, seplen) : NULL;
        size_t need = hit ? (size_t)(hit - data) + seplen : 0;
        if (hit && need - seplen <= p->limit) {
            take(L, p, need);
            return 1;
        }
        if (hit || p->len > p->limit) { /* data stays in the buffer */
            lasio_newerror_(L, ERR_LIMITOVERRUN,
                            hit ? "Separator is found, but chunk is longer "
                                  "than limit"
                                : "Separator is not found, and chunk "
                                  "exceed the limit",
                            1);
            lua_pushinteger(L, (lua_Integer)(hit ? need : p->len));
            lua_setfield(L, -2, "consumed");
            return lua_error(L);
        }
        if (!p->eof)
            return 0;
        if (op == OP_LINE) { /* asyncio's readline: the partial line */
            take(L, p, p->len);
            return 1;
        }
        take(L, p, p->len);
        lasio_newerror_(L, ERR_INCOMPLETEREAD, NULL, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, "partial");
        return lua_error(L);
    }
    }
}

static const char *const op_names[] = {"read", "read", "readuntil",
                                       "readexactly", "readline"};

/* Continuation of every read operation; ctx is the operation. */
static int
read_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    int op = (int)ctx;
    if (status == LUA_YIELD)
        resumed(L, p, 2);
    for (;;) {
        if (p->fd < 0)
            return luaL_error(L, "%s: the pipe is closed", op_names[op]);
        int n = try_op(L, p, op);
        if (n > 0)
            return n;
        int r = fill(L, p);
        if (r < 0)
            return wait_ready(L, p, 2, ctx, read_k, op_names[op]);
        if (r == 0 && p->err && p->len == 0)
            return lasio_sys_raise_(L, "read", p->err, NULL);
    }
}

static int
start_read(lua_State *L, int op) {
    struct lasio_pipe *p = checkreader(L, 1);
    begin(L, p, op_names[op]);
    lua_settop(L, 2);
    return read_k(L, LUA_OK, op);
}

/* reader:read([n]): up to n bytes (n = -1 or nil: until EOF); "" at EOF */
static int
reader_read(lua_State *L) {
    lua_Integer n = luaL_optinteger(L, 2, -1);
    if (n < 0)
        return start_read(L, OP_READALL);
    if (n == 0) {
        checkreader(L, 1);
        lua_pushliteral(L, "");
        return 1;
    }
    return start_read(L, OP_READ);
}

static int
reader_readexactly(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "must be >= 0");
    return start_read(L, OP_EXACTLY);
}

static int
reader_readuntil(lua_State *L) {
    size_t len;
    luaL_optlstring(L, 2, "\n", &len);
    luaL_argcheck(L, len > 0, 2, "the separator must not be empty");
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushliteral(L, "\n");
    }
    return start_read(L, OP_UNTIL);
}

/* reader:readline(): the line with its "\n"; "" at EOF */
static int
reader_readline(lua_State *L) {
    lua_settop(L, 1);
    lua_pushliteral(L, "\n");
    return start_read(L, OP_LINE);
}

/* The iterator of lines(): readline without the "\n", nil at EOF. */
static int
lines_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status, (void)ctx;
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len == 0) {
        lua_pushnil(L);
        return 1;
    }
    if (s[len - 1] == '\n')
        lua_pushlstring(L, s, len - 1);
    return 1;
}

static int
lines_iter(lua_State *L) {
    lua_settop(L, 0);
    lua_pushcfunction(L, reader_readline);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_callk(L, 1, 1, 0, lines_k);
    return lines_k(L, LUA_OK, 0);
}

static int
reader_lines(lua_State *L) {
    checkreader(L, 1);
    lua_settop(L, 1);
    lua_pushcclosure(L, lines_iter, 1);
    return 1;
}

static int
reader_at_eof(lua_State *L) {
    struct lasio_pipe *p = checkreader(L, 1);
    lua_pushboolean(L, p->eof && p->len == 0);
    return 1;
}

/* reader:close(): a task waiting in a read is woken and raises. */
static int
reader_close(lua_State *L) {
    struct lasio_pipe *p = checkreader(L, 1);
    if (p->task)
        lasio_io_wake_(L, p->task);
    disarm(p);
    release(p);
    return 0;
}

/* ====== } */

/* {====== Writer ====== */

/* writer:write(data) */
static int
writer_write(lua_State *L) {
    struct lasio_pipe *p = checkwriter(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (p->fd < 0 || p->closing)
        return luaL_error(L, "write: the pipe is closed");
    if (p->err)
        return lasio_sys_raise_(L, "write", p->err, NULL);
    if (len == 0)
        return 0;
    if (p->len == 0) { /* write at once what the pipe takes */
        for (;;) {
            ssize_t n = write(p->fd, data, len);
            if (n >= 0) {
                data += n;
                len -= (size_t)n;
                if (len == 0)
                    return 0;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            p->err = errno;
            return lasio_sys_raise_(L, "write", errno, NULL);
        }
    }
    if (p->off + p->len + len > p->cap) {
        if (p->off > 0) {
            memmove(p->buf, p->buf + p->off, p->len);
            p->off = 0;
        }
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + len)
            cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb)
            return luaL_error(L, "not enough memory");
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->off + p->len, data, len);
    p->len += len;
    lasio_sys_pin_(L, p->loop, 1, &p->pin); /* flushed from the event */
    if (arm(p) < 0)
        return luaL_error(L, "write: cannot watch the pipe");
    return 0;
}

static int
writer_writelines(lua_State *L) {
    checkwriter(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushcfunction(L, writer_write);
        lua_pushvalue(L, 1);
        lua_geti(L, 2, i);
        lua_call(L, 2, 0);
    }
    return 0;
}

static int
drain_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    int closing = (int)ctx; /* wait_closed: until the fd is closed */
    if (status == LUA_YIELD)
        resumed(L, p, 1);
    if (p->err && !closing)
        return lasio_sys_raise_(L, "write", p->err, NULL);
    if (closing ? p->fd < 0
                : p->len <= (status == LUA_YIELD ? WRITE_LOW : WRITE_HIGH))
        return 0;
    if (!closing && p->fd < 0)
        return luaL_error(L, "drain: the pipe is closed");
    return wait_ready(L, p, 1, ctx, drain_k, closing ? "wait_closed" : "drain");
}

/* writer:drain(): waits while the buffer is above the high-water mark */
static int
writer_drain(lua_State *L) {
    struct lasio_pipe *p = checkwriter(L, 1);
    lua_settop(L, 1);
    if (p->err)
        return lasio_sys_raise_(L, "write", p->err, NULL);
    if (p->len <= WRITE_HIGH)
        return 0;
    begin(L, p, "drain");
    return drain_k(L, LUA_OK, 0);
}

/* writer:close(): what is buffered is still written, then the fd closes */
static int
writer_close(lua_State *L) {
    struct lasio_pipe *p = checkwriter(L, 1);
    if (p->fd < 0 || p->closing)
        return 0;
    p->closing = 1;
    if (p->len == 0 || p->err) {
        if (p->task)
            lasio_io_wake_(L, p->task);
        release(p);
        lasio_sys_unpin_(L, p->loop, &p->pin);
    }
    return 0;
}

static int
writer_wait_closed(lua_State *L) {
    struct lasio_pipe *p = checkwriter(L, 1);
    lua_settop(L, 1);
    if (p->fd < 0)
        return 0;
    if (p->task)
        return luaL_error(L, "wait_closed: another task is already waiting "
                             "on this pipe");
    p->deadline = 0;
    return drain_k(L, LUA_OK, 1);
}

static int
writer_is_closing(lua_State *L) {
    struct lasio_pipe *p = checkwriter(L, 1);
    lua_pushboolean(L, p->fd < 0 || p->closing);
    return 1;
}

static int
writer_can_write_eof(lua_State *L) {
    checkwriter(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int
writer_get_write_buffer_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)checkwriter(L, 1)->len);
    return 1;
}

/* ====== } */

static int
pipe_settimeout(lua_State *L) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    luaL_argcheck(L,
                  luaL_testudata(L, 1, LASIO_PIPE_READER_MT) ||
                      luaL_testudata(L, 1, LASIO_PIPE_WRITER_MT),
                  1, "pipe expected");
    p->timeout = lasio_io_checktimeout_(L, 2, "settimeout");
    return 0;
}

static int
pipe_fileno(lua_State *L) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    luaL_argcheck(L,
                  luaL_testudata(L, 1, LASIO_PIPE_READER_MT) ||
                      luaL_testudata(L, 1, LASIO_PIPE_WRITER_MT),
                  1, "pipe expected");
    lua_pushinteger(L, p->fd);
    return 1;
}

static int
pipe_tostring(lua_State *L) {
    struct lasio_pipe *p = lua_touserdata(L, 1);
    lua_pushfstring(L, "lasio.%s<%s fd=%d>",
                    p->writer ? "PipeWriter" : "PipeReader",
                    p->fd < 0    ? "closed"
                    : p->closing ? "closing"
                    : p->eof     ? "eof"
                                 : "open",
                    p->fd);
    return 1;
}

static const luaL_Reg reader_methods[] = {
    {"read", reader_read},           {"readline", reader_readline},
    {"readuntil", reader_readuntil}, {"readexactly", reader_readexactly},
    {"lines", reader_lines},         {"at_eof", reader_at_eof},
    {"close", reader_close},         {"settimeout", pipe_settimeout},
    {"fileno", pipe_fileno},         {NULL, NULL}};

static const luaL_Reg writer_methods[] = {
    {"write", writer_write},
    {"writelines", writer_writelines},
    {"drain", writer_drain},
    {"close", writer_close},
    {"write_eof", writer_close},
    {"can_write_eof", writer_can_write_eof},
    {"wait_closed", writer_wait_closed},
    {"is_closing", writer_is_closing},
    {"get_write_buffer_size", writer_get_write_buffer_size},
    {"settimeout", pipe_settimeout},
    {"fileno", pipe_fileno},
    {NULL, NULL}};

static void
newmeta(lua_State *L, const char *name, const luaL_Reg *methods,
        lua_CFunction close) {
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, pipe_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, pipe_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

int
luaopen_lasio_pipe_(lua_State *L) {
    newmeta(L, LASIO_PIPE_READER_MT, reader_methods, reader_close);
    newmeta(L, LASIO_PIPE_WRITER_MT, writer_methods, writer_close);
    return 0;
}
