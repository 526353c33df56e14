/*
 * stream.c: the stream under StreamReader / StreamWriter: one fd, a
 * persistent read event filling the stream's own input buffer, and an
 * output buffer used only when the fd would block; the plain-fd
 * transport. Owns the fd, both events and both buffers; invariants above
 * struct lasio_stream (stream.h). The transport's state bits, not its
 * kind, decide which events are on.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "stream/stream.h"

#define READ_MIN 16384  /* first read size of a stream */
#define READ_MAX 262144 /* largest single read */
#define BUF_KEEP 262144 /* an empty buffer larger than this is freed */

/* {====== Buffers ====== */

int
lasio_buf_reserve_(struct lasio_buf *b, size_t n) {
    if (b->cap - b->off - b->len >= n)
        return 0;
    if (b->off > 0 && b->cap - b->len >= n && b->len <= b->cap / 2) {
        memmove(b->data, b->data + b->off, b->len); /* compact */
        b->off = 0;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *p = malloc(cap);
    if (!p)
        return -1;
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->off = 0;
    return 0;
}

void
lasio_buf_consume_(struct lasio_buf *b, size_t n) {
    b->off += n;
    b->len -= n;
    if (b->len == 0) {
        b->off = 0;
        if (b->cap > BUF_KEEP) {
            free(b->data);
            b->data = NULL;
            b->cap = 0;
        }
    }
}

void
lasio_buf_free_(struct lasio_buf *b) {
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

/* ====== } */

/* {====== The plain-fd transport ====== */

static long
fd_read(struct lasio_stream *s, char *p, size_t n) {
    return (long)read(s->fd, p, n);
}

/* write(), not send(): a pipe takes no MSG_NOSIGNAL, so SIGPIPE must be
 * ignored while such a stream writes (stream.h) */
static long
fd_write(struct lasio_stream *s, const char *p, size_t n) {
    return (long)write(s->fd, p, n);
}

/* "pipe": the fd, as "socket" is for a socket (asyncio names both) */
static int
fd_extra_info(lua_State *L, int streamidx, const char *name) {
    struct lasio_stream *s = lua_touserdata(L, streamidx);
    if (strcmp(name, "pipe") != 0 || s->fd < 0)
        return 0;
    lua_pushinteger(L, s->fd);
    return 1;
}

const struct lasio_transport lasio_fd_transport_ = {
    .name = "pipe",
    .read = fd_read,
    .write = fd_write,
    .extra_info = fd_extra_info,
    .eof = LASIO_TP_EOF_CLOSE,
};

/* The transport's LASIO_TP_* bits: a stateless one costs a test, no
 * call. */
static unsigned
tpstate(struct lasio_stream *s) {
    return s->tp->state ? s->tp->state(s) : 0;
}

/* ====== } */

/* {====== Event state ====== */

/* Reading pauses when the input buffer holds this much (asyncio's 2 *
 * limit, but at least one first read's worth, so that a small limit
 * does not make the stream read in tiny steps), and resumes at half. */
static size_t
pause_mark(const struct lasio_stream *s) {
    size_t m = 2 * s->limit;
    return m > READ_MIN ? m : READ_MIN;
}

void
lasio_stream_update_reading_(struct lasio_stream *s) {
    int want = 0;
    unsigned st = 0;
    if (s->fd >= 0) {
        st = tpstate(s);
        if (st & LASIO_TP_HANDSHAKE) {
            want = (st & LASIO_TP_WANT_READ) != 0;
        } else if (!s->eof && !s->rerr && !s->closing && !s->connecting) {
            if (s->paused && s->in.len <= pause_mark(s) / 2)
                s->paused = 0;
            want = !s->paused || (s->reader && s->in.len < s->rneed);
        }
    }
    if (want && !s->reading) {
        if (event_add(s->rev, NULL) == 0)
            s->reading = 1;
    } else if (!want && s->reading) {
        event_del(s->rev);
        s->reading = 0;
    }
    /* bytes the transport holds (TLS: decrypted, or read before TLS
     * started): no readiness of the fd will come for them */
    if (s->reading && (st & LASIO_TP_PENDING))
        event_active(s->rev, EV_READ, 1);
}

void
lasio_stream_consumed_(struct lasio_stream *s) {
    if (s->paused && s->in.len <= pause_mark(s) / 2)
        lasio_stream_update_reading_(s);
}

/* wev is added while output is pending or a connect waits, unless the
 * transport's write waits for readability; and whenever the transport
 * needs writability for itself. */
void
lasio_stream_update_writing_(struct lasio_stream *s) {
    int want = 0;
    if (s->fd >= 0) {
        unsigned st = tpstate(s);
        if (st & LASIO_TP_HANDSHAKE)
            want = (st & LASIO_TP_WANT_WRITE) != 0;
        else
            want = (st & LASIO_TP_READ_WAITS) ||
                   ((s->out.len > 0 || s->connecting) &&
                    !(st & LASIO_TP_WRITE_WAITS));
    }
    if (want && !s->writing) {
        if (event_add(s->wev, NULL) == 0)
            s->writing = 1;
    } else if (!want && s->writing) {
        event_del(s->wev);
        s->writing = 0;
    }
}

void
lasio_stream_write_failed_(struct lasio_stream *s, int err) {
    if (!s->werr)
        s->werr = err;
    s->out.off = s->out.len = 0;
    if (err == ECONNRESET && !s->eof) {
        /* a reset seen by a write is the read side's end too (asyncio's
         * connection_lost); reads still get the buffered bytes first */
        s->rerr = err;
        s->eof = 1;
        lasio_stream_update_reading_(s);
    }
}

void
lasio_stream_flush_(struct lasio_stream *s) {
    while (s->out.len > 0 && s->fd >= 0) {
        long n = s->tp->write(s, s->out.data + s->out.off, s->out.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lasio_stream_write_failed_(s, errno);
            break;
        }
        lasio_buf_consume_(&s->out, (size_t)n);
    }
    /* eof_wanted is set only on a LASIO_TP_EOF_SHUTDOWN transport */
    if (s->out.len == 0 && s->eof_wanted && !s->eof_sent && s->fd >= 0 &&
        !s->werr) {
        s->eof_sent = 1;
        s->tp->shutdown_write(s);
    }
    if (s->fd >= 0)
        lasio_stream_update_writing_(s);
}

/* ====== } */

/* {====== Life cycle ====== */

struct lasio_stream *
lasio_stream_new_(lua_State *L, struct lasio_loop *loop) {
    struct lasio_stream *s =
        lua_newuserdatauv(L, sizeof(struct lasio_stream), STREAM_NUV);
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->anchor = LUA_NOREF;
    s->limit = LASIO_STREAM_LIMIT;
    s->whigh = LASIO_WRITE_HIGH;
    s->wlow = LASIO_WRITE_LOW;
    s->timeout = -1;
    s->readsize = READ_MIN;
    s->tp = &lasio_fd_transport_;
    s->loop = loop;
    luaL_setmetatable(L, LASIO_STREAM_MT);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, -2, STREAM_UV_LOOP);
    return s;
}

void
lasio_stream_release_(struct lasio_stream *s) {
    if (s->tp->release)
        s->tp->release(s);
    if (s->rev)
        event_free(s->rev);
    if (s->wev)
        event_free(s->wev);
    s->rev = s->wev = NULL;
    s->reading = s->writing = 0;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    lasio_io_unlink_(s->loop, &s->link, &s->linked);
    lasio_buf_free_(&s->in);
    lasio_buf_free_(&s->out);
    s->released = 1;
}

/* The loop closes: let go of everything. */
static void
release_link(struct lasio_iolink *link) {
    struct lasio_stream *s = (struct lasio_stream *)link;
    s->linked = 0; /* the loop removed the link */
    lasio_stream_release_(s);
    free(s->ww);
    s->ww = NULL;
    s->nww = s->capww = 0;
    s->reader = NULL;
    s->hangup = NULL;
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

int
lasio_stream_attach_(struct lasio_stream *s, int fd,
                     const struct lasio_transport *tp, int flags) {
    s->fd = fd;
    s->tp = tp;
    s->connecting = (flags & LASIO_ATTACH_CONNECTING) != 0;
    s->eof = (flags & LASIO_ATTACH_WRONLY) != 0;
    s->released = 0;
    s->rev = event_new(s->loop->base, fd, EV_READ | EV_PERSIST, on_read, s);
    s->wev = event_new(s->loop->base, fd, EV_WRITE | EV_PERSIST, on_write, s);
    s->link.release = release_link;
    lasio_iolink_add_(s->loop, &s->link);
    s->linked = 1;
    if (!s->rev || !s->wev) {
        lasio_stream_release_(s);
        return -1;
    }
    lasio_stream_update_reading_(s);
    lasio_stream_update_writing_(s);
    return 0;
}

void
lasio_stream_connected_(struct lasio_stream *s) {
    s->connecting = 0;
    if (s->fd >= 0) {
        lasio_stream_update_writing_(s);
        lasio_stream_update_reading_(s);
    }
}

/* ====== } */

/* {====== Waking waiters ====== */

void
lasio_stream_reserve_ww_(lua_State *L, struct lasio_stream *s) {
    if (s->nww < s->capww)
        return;
    int cap = s->capww ? s->capww * 2 : 4;
    void *p = realloc(s->ww, (size_t)cap * sizeof *s->ww);
    if (!p)
        luaL_error(L, "not enough memory");
    s->ww = p;
    s->capww = cap;
}

void
lasio_stream_add_ww_(struct lasio_stream *s, struct lasio_task *t) {
    s->ww[s->nww++] = t;
}

void
lasio_stream_del_ww_(struct lasio_stream *s, struct lasio_task *t) {
    for (int i = 0; i < s->nww; i++) {
        if (s->ww[i] == t) {
            memmove(s->ww + i, s->ww + i + 1,
                    (size_t)(s->nww - i - 1) * sizeof *s->ww);
            s->nww--;
            return;
        }
    }
}

void
lasio_stream_wake_(lua_State *L, struct lasio_stream *s, int reader,
                   int writers) {
    if (reader && s->reader)
        lasio_io_wake_(L, s->reader);
    if (reader && s->hangup)
        lasio_io_wake_(L, s->hangup);
    if (writers)
        for (int i = 0; i < s->nww; i++)
            lasio_io_wake_(L, s->ww[i]);
}

/* From a libevent callback. The woken tasks keep the stream reachable
 * (each has it on its stack), so a collection run by a wake-up cannot
 * free it. */
static void
wake_cb(struct lasio_stream *s, int reader, int writers) {
    if (reader && s->reader)
        lasio_io_wake_cb_(s->loop, s->reader);
    if (reader && s->hangup)
        lasio_io_wake_cb_(s->loop, s->hangup);
    if (writers && s->nww > 0)
        for (int i = 0; i < s->nww; i++)
            lasio_io_wake_cb_(s->loop, s->ww[i]);
}

/* ====== } */

/* {====== libevent callbacks ====== */

/* Ends the read side with EOF (err 0) or an error. A reset also ends the
 * write side. */
static void
read_ended(struct lasio_stream *s, int err) {
    s->eof = 1;
    if (err) {
        s->rerr = err;
        if (err == ECONNRESET || err == EPIPE || err == ETIMEDOUT)
            lasio_stream_write_failed_(s, err);
    }
    lasio_stream_update_reading_(s);
    if (s->werr && s->fd >= 0)
        lasio_stream_update_writing_(s);
}

static void after_write(struct lasio_stream *s);

/* One read into the input buffer (and more while the transport holds
 * input: TLS's decrypted bytes); returns bytes read, 0 at EOF, -1 with
 * errno. */
static long
read_some(struct lasio_stream *s) {
    long total = 0;
    do {
        if (lasio_buf_reserve_(&s->in, s->readsize) < 0) {
            errno = ENOMEM;
            return total > 0 ? total : -1;
        }
        size_t room = s->in.cap - s->in.off - s->in.len;
        long n = s->tp->read(s, s->in.data + s->in.off + s->in.len, room);
        if (n <= 0)
            return total > 0 ? total : n;
        s->in.len += (size_t)n;
        total += n;
        if ((size_t)n == room && s->readsize < READ_MAX)
            s->readsize *= 2; /* the peer sends fast: read more at once */
    } while ((tpstate(s) & LASIO_TP_PENDING) && s->in.len < pause_mark(s));
    return total;
}

static void
on_read(evutil_socket_t fd, short what, void *arg) {
    struct lasio_stream *s = arg;
    (void)fd, (void)what;
    if (tpstate(s) & LASIO_TP_HANDSHAKE) { /* the handshake's task goes on */
        if (s->reader)
            lasio_io_wake_cb_(s->loop, s->reader);
        return;
    }
    long n = read_some(s);
    if (tpstate(s) & LASIO_TP_WRITE_WAITS) {
        /* the transport's write (SSL_write) waited for this readability */
        lasio_stream_flush_(s);
        after_write(s);
        if (s->fd < 0)
            return;
    }
    if (n > 0) {
        if (s->in.len >= pause_mark(s)) {
            s->paused = 1;
            lasio_stream_update_reading_(s);
        }
        if (s->reader && s->in.len >= s->rneed)
            lasio_io_wake_cb_(s->loop, s->reader);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (s->tp->state) /* the read (SSL_read) may want writability */
            lasio_stream_update_writing_(s);
        return;
    }
    int err = n < 0 ? errno : 0;
    read_ended(s, err);
    wake_cb(s, 1, err != 0);
}

/* Drops the anchor that kept a closing stream alive. No allocation. */
static int
unanchor_body(lua_State *L) {
    struct lasio_stream *s = lua_touserdata(L, 1);
    int ref = s->anchor;
    s->anchor = LUA_NOREF;
    if (ref == LUA_NOREF || s->loop->closed)
        return 0;
    lasio_pushloop_(L, s->loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    luaL_unref(L, -1, ref);
    lua_pop(L, 2);
    return 0;
}

/* Output was written: wake drain() below the low mark; finish a close. */
static void
after_write(struct lasio_stream *s) {
    if (s->closing && (s->out.len == 0 || s->werr)) {
        lasio_stream_release_(s);
        wake_cb(s, 0, 1); /* wait_closed */
        if (s->anchor != LUA_NOREF)
            lasio_io_guard_(s->loop, unanchor_body, s);
        return; /* s may be unreachable from now on */
    }
    if (s->out.len <= s->wlow)
        s->wpaused = 0;
    if (s->werr)
        wake_cb(s, 1, 1);
    else if (s->nww > 0 && !s->wpaused)
        wake_cb(s, 0, 1);
}

static void
on_write(evutil_socket_t fd, short what, void *arg) {
    struct lasio_stream *s = arg;
    (void)what;
    unsigned st = tpstate(s);
    if (s->connecting || (st & LASIO_TP_HANDSHAKE)) {
        /* connect.c reads SO_ERROR; the handshake's task goes on */
        s->connecting = 0;
        lasio_stream_update_writing_(s);
        if (s->reader)
            lasio_io_wake_cb_(s->loop, s->reader);
        return;
    }
    if (st & LASIO_TP_READ_WAITS) {
        on_read(fd, EV_READ, s); /* the transport's read waited for this */
        if (s->fd < 0)
            return;
    }
    lasio_stream_flush_(s);
    after_write(s);
}

/* ====== } */

/* {====== close, views, metatables ====== */

void
lasio_stream_close_(lua_State *L, int idx, struct lasio_stream *s) {
    idx = lua_absindex(L, idx);
    if (s->closing)
        return;
    if (s->fd >= 0 && s->out.len > 0 && !s->werr) {
        /* flushing in the background needs the stream alive */
        lasio_pushloop_(L, s->loop);
        lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
        lua_pushvalue(L, idx);
        s->anchor = luaL_ref(L, -2);
        lua_pop(L, 2);
    }
    s->closing = 1;
    if (s->fd >= 0 && s->anchor == LUA_NOREF)
        lasio_stream_release_(s);
    else if (s->fd >= 0)
        lasio_stream_update_reading_(s);
    lasio_stream_wake_(L, s, 1, 1);
}

void
lasio_stream_abort_(lua_State *L, struct lasio_stream *s) {
    s->closing = 1;
    if (s->fd >= 0)
        lasio_stream_release_(s);
    if (s->anchor != LUA_NOREF) {
        lua_pushcfunction(L, unanchor_body);
        lua_pushlightuserdata(L, s);
        lua_call(L, 1, 0);
    }
    lasio_stream_wake_(L, s, 1, 1);
}

int
lasio_stream_readerror_(lua_State *L, struct lasio_stream *s, const char *op) {
    if (s->closing || s->released) {
        lasio_oserror_pushmsg_(L, op, EBADF, "the stream is closed");
        return 1;
    }
    const char *msg;
    if (s->rerr == EPROTO && s->tp->error && (msg = s->tp->error(s))) {
        lasio_oserror_pushmsg_(L, op, EPROTO, msg);
        return 1;
    }
    if (s->rerr) {
        lasio_oserror_push_(L, op, s->rerr);
        return 1;
    }
    return 0;
}

static int
stream_gc(lua_State *L) {
    struct lasio_stream *s = lua_touserdata(L, 1);
    lasio_stream_release_(s);
    free(s->ww);
    s->ww = NULL;
    s->nww = s->capww = 0;
    return 0;
}

static void
pushview(lua_State *L, int idx, const char *mt) {
    struct lasio_stream *s = lua_touserdata(L, idx);
    struct lasio_view *v = lua_newuserdatauv(L, sizeof *v, 1);
    v->s = s;
    luaL_setmetatable(L, mt);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, 1);
}

void
lasio_stream_pushviews_(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    pushview(L, idx, LASIO_READER_MT);
    pushview(L, idx, LASIO_WRITER_MT);
}

const char *
lasio_stream_state_(const struct lasio_stream *s, int reader) {
    if (s->released || s->fd < 0)
        return "closed";
    if (s->closing)
        return "closing";
    if (reader ? s->eof : s->eof_wanted)
        return "eof";
    return "open";
}

int
lasio_view_close_(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lasio_stream_close_(L, -1, lua_touserdata(L, -1));
    return 0;
}

void
lasio_stream_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_STREAM_MT)) {
        lua_pushcfunction(L, stream_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, stream_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    lasio_reader_open_(L);
    lasio_writer_open_(L);
}

/* ====== } */
