/*
 * stream.h: the byte stream under StreamReader / StreamWriter (stream.c,
 * reader.c, writer.c), on core.h. A stream owns its fd, events and
 * buffers; Reader and Writer are views that keep the stream userdata
 * alive through a user value. What moves the bytes is the stream's
 * transport, a const table of functions: plain fds (pipes) here, sockets
 * and TLS in the network layer. Internal.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_stream_h
#define lasio_stream_h

#include <stddef.h>

#include "core/core.h"

#define LASIO_STREAM_MT "lasio.Stream"
#define LASIO_READER_MT "lasio.StreamReader"
#define LASIO_WRITER_MT "lasio.StreamWriter"

/* Defaults (docs/RELIABILITY.md, Default limits). */
#define LASIO_STREAM_LIMIT 65536 /* reader buffer limit (asyncio's) */
#define LASIO_WRITE_HIGH 65536   /* drain() waits above this ... */
#define LASIO_WRITE_LOW 16384    /* ... until the buffer is below this */

/* {====== Streams (stream.c, reader.c, writer.c) ====== */

/* A byte buffer: the bytes are data[off .. off+len). */
struct lasio_buf {
    char *data;
    size_t off, len, cap;
};

struct lasio_stream;

/* {====== Transports ======
 * How a stream moves its bytes, as libevent's bufferevent_ops: one const
 * table per kind of fd, so the stream's code never asks which kind it
 * has. read returns bytes > 0, 0 at EOF, -1 with errno (EAGAIN when it
 * would block); write returns bytes written or -1 with errno. A transport
 * that keeps state of its own (TLS) keeps it in the stream's tpdata and
 * reports it through `state`; the others leave `state` NULL, and then the
 * fd's readiness is the whole story. */

/* Bits of lasio_transport.state: what the transport waits for. */
enum {
    LASIO_TP_HANDSHAKE = 1,    /* a handshake drives both events: */
    LASIO_TP_WANT_READ = 2,    /* ... it needs readability */
    LASIO_TP_WANT_WRITE = 4,   /* ... it needs writability */
    LASIO_TP_READ_WAITS = 8,   /* a read needs writability first */
    LASIO_TP_WRITE_WAITS = 16, /* a write needs readability first */
    LASIO_TP_PENDING = 32      /* input ready that no readiness announces */
};

/* What write_eof() does on the transport. */
enum lasio_tp_eof {
    LASIO_TP_EOF_NONE,     /* refused: can_write_eof() is false */
    LASIO_TP_EOF_SHUTDOWN, /* shutdown_write once the output is flushed */
    LASIO_TP_EOF_CLOSE     /* closes the stream (flushed first): a pipe has
                              no half close (asyncio's write pipe) */
};

struct lasio_transport {
    const char *name; /* "pipe", "socket", "TLS": for messages */
    long (*read)(struct lasio_stream *s, char *p, size_t n);
    long (*write)(struct lasio_stream *s, const char *p, size_t n);
    /* Writes the two parts in one call (a head and a large body that is
     * not copied behind it), as write does; NULL: two writes. */
    long (*write2)(struct lasio_stream *s, const char *p1, size_t n1,
                   const char *p2, size_t n2);
    /* LASIO_TP_* bits now, or NULL: never any */
    unsigned (*state)(struct lasio_stream *s);
    /* Ends the write side (LASIO_TP_EOF_SHUTDOWN only). */
    void (*shutdown_write)(struct lasio_stream *s);
    /* Lets go of tpdata before the fd closes; may put back the transport
     * it wrapped. NULL: nothing to do. Runs no Lua code. */
    void (*release)(struct lasio_stream *s);
    /* The message of the failure behind a read error EPROTO, or NULL;
     * the hook itself may be NULL. */
    const char *(*error)(struct lasio_stream *s);
    /* get_extra_info names of the transport: returns 1 with the value
     * pushed, or 0 with nothing; the stream is at streamidx. May be NULL.
     * [-0, +(0|1), m] */
    int (*extra_info)(lua_State *L, int streamidx, const char *name);
    unsigned char eof; /* enum lasio_tp_eof */
};

/* Plain fds (stream.c): read / write. Writing to a pipe whose reader has
 * gone needs SIGPIPE ignored (lasio_sighub_ignore_sigpipe_, as
 * process.c does for a child's stdin) to fail with EPIPE; "pipe" is the
 * fd for get_extra_info. */
LASIO_HIDDEN extern const struct lasio_transport lasio_fd_transport_;

/* ====== } */

/* User values of the stream userdata. */
enum {
    STREAM_UV_LOOP = 1, /* the loop userdata: keeps the loop alive */
    STREAM_UV_EXTRA,    /* get_extra_info values a transport recorded
                           (name -> value: the TLS context ...), or nil */
    STREAM_NUV = STREAM_UV_EXTRA
};

/*
 * The stream. Invariants:
 * - fd >= 0 exactly while the stream holds the socket; then rev and wev
 *   exist and `link` is in the loop's list.
 * - rev is added iff reading is on: fd open, no EOF or error seen, not
 *   closing, and either not paused or the waiting reader needs more bytes
 *   (paused: in.len reached max(2 * limit, 16 KiB), cleared at half).
 * - wev is added iff output is pending, or a connect (or the transport:
 *   LASIO_TP_* state) waits for writability.
 * - tp is never NULL: lasio_fd_transport_ until attach says otherwise.
 * - reader is the one task suspended in a read or a connect, or NULL;
 *   ww[0 .. nww) are the tasks suspended in drain or wait_closed. Every
 *   task recorded there is suspended in that operation, whose
 *   continuation forgets it, so the pointers never dangle; such a task
 *   keeps the stream reachable from its stack.
 * - anchor is a ref in LOOP_UV_ANCHORS while close() flushes output.
 */
struct lasio_stream {
    struct lasio_iolink link;
    struct lasio_loop *loop; /* kept alive by STREAM_UV_LOOP */
    int fd;
    struct event *rev, *wev;
    struct lasio_buf in, out;
    size_t limit;       /* reader limit (readuntil; pause at 2 * limit) */
    size_t whigh, wlow; /* write water marks */
    size_t rneed;       /* wake the reader when in.len >= rneed */
    double timeout;     /* settimeout: seconds, < 0 for none */
    struct lasio_task *reader;
    /* a task waiting for the peer to go away (httpparse.c): woken, like
     * the reader, at EOF, on an error and at close */
    struct lasio_task *hangup;
    struct lasio_task **ww; /* malloc'd */
    int nww, capww;
    int rerr, werr;   /* errno that ended reading / writing, or 0 */
    int anchor;       /* anchor ref while flushing at close, or LUA_NOREF */
    size_t readsize;  /* bytes to ask for in the next read */
    double rdeadline; /* deadline of the current read, 0 for none */
    size_t rscan;     /* readuntil: where the next search starts */
    unsigned char linked, eof, paused, reading, writing, closing, eof_wanted,
        eof_sent, connecting, released, wpaused;
    const struct lasio_transport *tp;
    void *tpdata; /* the transport's state (TLS), or NULL */
};

/* A Reader or Writer userdata: the stream pointer; its user value 1 keeps
 * the stream alive. */
struct lasio_view {
    struct lasio_stream *s;
};

/* Pushes a new stream userdata on loop in the closed state (fd -1).
 * [-0, +1, m] */
LASIO_HIDDEN struct lasio_stream *lasio_stream_new_(lua_State *L,
                                                    struct lasio_loop *loop);
/* Flags of lasio_stream_attach_. */
enum {
    LASIO_ATTACH_CONNECTING = 1, /* await writability (a connect) first */
    LASIO_ATTACH_WRONLY = 2      /* no read side (a child's stdin): at EOF */
};
/* Gives the stream the non-blocking fd, moved by tp (the stream owns the
 * fd from now on, also on failure: it is closed then). Reading starts
 * unless a flag says otherwise. Returns 0, or -1 when out of memory (the
 * stream is released). Runs no Lua code. */
LASIO_HIDDEN int lasio_stream_attach_(struct lasio_stream *s, int fd,
                                      const struct lasio_transport *tp,
                                      int flags);
/* The connect finished: start reading. */
LASIO_HIDDEN void lasio_stream_connected_(struct lasio_stream *s);
/* Pushes a Reader and a Writer for the stream at idx. [-0, +2, m] */
LASIO_HIDDEN void lasio_stream_pushviews_(lua_State *L, int idx);
/* Releases fd, events and buffers now (no flush). Runs no Lua code. */
LASIO_HIDDEN void lasio_stream_release_(struct lasio_stream *s);
/* Starts or stops reading / writing according to the invariant above. */
LASIO_HIDDEN void lasio_stream_update_reading_(struct lasio_stream *s);
LASIO_HIDDEN void lasio_stream_update_writing_(struct lasio_stream *s);
/* Writes what it can of the output buffer and arms wev for the rest;
 * on an error sets werr and drops the buffer. Runs no Lua code. */
LASIO_HIDDEN void lasio_stream_flush_(struct lasio_stream *s);
/* The write side failed with errno value err: drops buffered output; a
 * reset ends the read side as well. Runs no Lua code. */
LASIO_HIDDEN void lasio_stream_write_failed_(struct lasio_stream *s, int err);
/* Wakes the reader, and every write-side waiter, from Lua. [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_wake_(lua_State *L, struct lasio_stream *s,
                                     int reader, int writers);
/* Makes room for one more write-side waiter (may raise), then records
 * the running task t (cannot fail) / forgets it. */
LASIO_HIDDEN void lasio_stream_reserve_ww_(lua_State *L,
                                           struct lasio_stream *s);
LASIO_HIDDEN void lasio_stream_add_ww_(struct lasio_stream *s,
                                       struct lasio_task *t);
LASIO_HIDDEN void lasio_stream_del_ww_(struct lasio_stream *s,
                                       struct lasio_task *t);
/* close(): stops reading, wakes the waiters, flushes what is buffered in
 * the background (anchoring the stream at idx) and releases the socket when
 * done. Idempotent. [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_close_(lua_State *L, int idx,
                                      struct lasio_stream *s);
/* Releases the socket now, dropping buffered output, and unanchors the
 * stream; wakes the write-side waiters. [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_abort_(lua_State *L, struct lasio_stream *s);
/* The stream behind the Reader or Writer at idx. */
LASIO_HIDDEN struct lasio_stream *lasio_checkreader_(lua_State *L, int idx);
LASIO_HIDDEN struct lasio_stream *lasio_checkwriter_(lua_State *L, int idx);
/* Pushes the error a read must raise now (closed, reset), or returns 0
 * and pushes nothing. [-0, +(0|1), m] */
LASIO_HIDDEN int lasio_stream_readerror_(lua_State *L, struct lasio_stream *s,
                                         const char *op);
/* "closed", "closing", "eof" (reader: EOF seen; writer: write_eof) or
 * "open", for __tostring. */
LASIO_HIDDEN const char *lasio_stream_state_(const struct lasio_stream *s,
                                             int reader);
/* The address of the buffer's byte at (an offset into data): "" while it
 * has no storage (data NULL, then at is 0), so that no code forms
 * NULL + offset nor passes NULL to memcmp and friends. */
static inline const char *
lasio_buf_at_(const struct lasio_buf *b, size_t at) {
    return b->data ? b->data + at : "";
}
/* Buffer helpers: room for n more bytes at the end (-1: no memory). */
LASIO_HIDDEN int lasio_buf_reserve_(struct lasio_buf *b, size_t n);
LASIO_HIDDEN void lasio_buf_consume_(struct lasio_buf *b, size_t n);
LASIO_HIDDEN void lasio_buf_free_(struct lasio_buf *b);
/* Consumed input: resume reading below the low mark. */
LASIO_HIDDEN void lasio_stream_consumed_(struct lasio_stream *s);
/* Registers the stream's metatable and the views' (reader.c,
 * writer.c). [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_open_(lua_State *L);
LASIO_HIDDEN void lasio_reader_open_(lua_State *L);
LASIO_HIDDEN void lasio_writer_open_(lua_State *L);
/* Waits as the stream's one reader (s->reader) until s->rneed bytes are
 * buffered, EOF, an error, close or s->rdeadline; k runs next and must
 * begin with lasio_reader_woken_, which forgets the task and raises the
 * CancelledError of a cancelled wait. */
LASIO_HIDDEN int lasio_reader_wait_(lua_State *L, struct lasio_stream *s,
                                    int base, const char *op, lua_KContext ctx,
                                    lua_KFunction k);
LASIO_HIDDEN void lasio_reader_woken_(lua_State *L, struct lasio_stream *s,
                                      int base);
/* Has the read deadline passed? (Reading is then updated: the caller
 * raises its timeout.) */
LASIO_HIDDEN int lasio_reader_expired_(struct lasio_stream *s);
/* Sends n bytes at once, buffering what the socket does not take; raises
 * when the stream is closed or after write_eof (op names the call). */
LASIO_HIDDEN void lasio_stream_send_(lua_State *L, struct lasio_stream *s,
                                     const char *p, size_t n, const char *op);
/* The same for p1[0..n1) then p2[0..n2), in one write of the transport
 * when it has write2 (no copy of p2 behind p1). */
LASIO_HIDDEN void lasio_stream_send2_(lua_State *L, struct lasio_stream *s,
                                      const char *p1, size_t n1, const char *p2,
                                      size_t n2, const char *op);
/* The body of either view's close(), once the view at 1 is checked:
 * closes the stream (lasio_stream_close_). Returns 0 (no results).
 * [-0, +1, m] */
LASIO_HIDDEN int lasio_view_close_(lua_State *L);
/* ====== } */

#endif
