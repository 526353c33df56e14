/*
 * net.h: structs and cross-file functions of the network layer (streams,
 * servers, datagrams, DNS, TLS), on core.h. Internal. A stream owns its
 * fd, events and buffers; Reader and Writer are views that keep the
 * stream userdata alive through a user value.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_net_h
#define lasio_net_h

#include <stddef.h>
#include <sys/socket.h>

#include "core.h"

#define LASIO_STREAM_MT "lasio.Stream"
#define LASIO_READER_MT "lasio.StreamReader"
#define LASIO_WRITER_MT "lasio.StreamWriter"
#define LASIO_SERVER_MT "lasio.Server"

/* Defaults (RELIABILITY.md, default limits). */
#define LASIO_STREAM_LIMIT 65536 /* reader buffer limit (asyncio's) */
#define LASIO_WRITE_HIGH 65536   /* drain() waits above this ... */
#define LASIO_WRITE_LOW 16384    /* ... until the buffer is below this */

/* {====== Waiting for I/O (iowait.c) ======
 * A task waiting for I/O is in WAIT_FOREVER (no deadline) or WAIT_SLEEP
 * (its deadline in the loop's timer heap) and counted in loop->nsources;
 * the I/O object records the task pointer. The object's libevent callback
 * wakes it with lasio_io_wake_; cancellation and the deadline wake it
 * through the core. Either way the operation's continuation runs next and
 * re-checks its condition, so a spurious wake-up is harmless, and it
 * forgets the task pointer before returning or raising: a recorded task is
 * always suspended in that operation (and so alive). */

/* Waiting is three steps, so that a task pointer is recorded only once
 * nothing can fail any more:
 *   lasio_io_wait_(L, t, base, deadline);  (may raise; cuts the stack to
 *                                           base values)
 *   obj->waiter = t;                        (must not fail)
 *   return lasio_io_yield_(L, ctx, k);
 * deadline is a monotonic time, or 0 for none. */
LASIO_HIDDEN void lasio_io_wait_(lua_State *L, struct lasio_task *t, int base,
                                 double deadline);
LASIO_HIDDEN int lasio_io_yield_(lua_State *L, lua_KContext ctx,
                                 lua_KFunction k);
/* Undoes lasio_io_wait_ when the wait cannot go ahead after all. */
LASIO_HIDDEN void lasio_io_unwait_(struct lasio_task *t);
/* In a continuation: uncounts the wait; returns 1 when the task was
 * cancelled (the CancelledError is then at base + 2). */
LASIO_HIDDEN int lasio_io_resumed_(lua_State *L, struct lasio_loop *loop,
                                   int base);
/* Wakes t if it still waits. [-0, +0, m] */
LASIO_HIDDEN void lasio_io_wake_(lua_State *L, struct lasio_task *t);
/* The same from a libevent callback: never raises (a memory error is
 * printed, and the task's deadline or cancellation still wakes it). */
LASIO_HIDDEN void lasio_io_wake_cb_(struct lasio_loop *loop,
                                    struct lasio_task *t);
/* Runs body(L) in protected mode on loop->L with the light userdata ud as
 * its argument; returns 0, or -1 after printing the error. */
LASIO_HIDDEN int lasio_io_guard_(struct lasio_loop *loop, lua_CFunction body,
                                 void *ud);
/* The deadline for a timeout of `seconds` (<0 means none): 0 or a
 * monotonic time. */
LASIO_HIDDEN double lasio_io_deadline_(double seconds);
/* The running loop; raises "what: no running loop" without one. */
LASIO_HIDDEN struct lasio_loop *lasio_io_running_loop_(lua_State *L,
                                                       const char *what);
/* Takes link out of the loop's list if *linked (and clears it). */
LASIO_HIDDEN void lasio_io_unlink_(struct lasio_loop *loop,
                                   struct lasio_iolink *link,
                                   unsigned char *linked);
/* gettimeout's result: nil for none (< 0), else the seconds; returns 1.
 * [-0, +1, -] */
LASIO_HIDDEN int lasio_io_pushtimeout_(lua_State *L, double timeout);
/* Reads a timeout argument at idx: nil (none, -1) or a number >= 0. */
LASIO_HIDDEN double lasio_io_checktimeout_(lua_State *L, int idx,
                                           const char *what);
/* ====== } */

/* {====== Addresses and errors (netaddr.c) ====== */
union lasio_sockaddr {
    struct sockaddr sa;
    struct sockaddr_storage ss;
};

/* Pushes an OSError for errno value err, named after the operation:
 * "op: strerror" with fields code ("ECONNREFUSED"), errno and op.
 * [-0, +1, m] */
LASIO_HIDDEN void lasio_oserror_push_(lua_State *L, const char *op, int err);
/* Same with a message of its own. */
LASIO_HIDDEN void lasio_oserror_pushmsg_(lua_State *L, const char *op, int err,
                                         const char *msg);
/* Raises lasio_oserror_push_(op, err). */
LASIO_HIDDEN int lasio_oserror_raise_(lua_State *L, const char *op, int err);
/* Pushes the address table {family=, addr=, port=} of sa. [-0, +1, m] */
LASIO_HIDDEN void lasio_pushaddr_(lua_State *L, const struct sockaddr *sa,
                                  socklen_t len);
/* Parses a numeric host and a port into sa; returns 0, or -1 when host is
 * not a numeric address. family: AF_UNSPEC, AF_INET or AF_INET6. */
LASIO_HIDDEN int lasio_parseaddr_(const char *host, int port, int family,
                                  union lasio_sockaddr *sa, socklen_t *len);
/* Fills a Unix address from path; raises on a path that is too long. */
LASIO_HIDDEN socklen_t lasio_unixaddr_(lua_State *L, const char *path,
                                       size_t len, union lasio_sockaddr *sa,
                                       const char *what);
/* Reads a port argument: an integer 0..65535 or a numeric string. */
LASIO_HIDDEN int lasio_checkport_(lua_State *L, int idx, const char *what);
/* Reads a {host, port} pair (or {host=, port=}) at idx into sa; raises on
 * a bad pair; returns 0, or -1 when the host is not numeric (the host
 * string is then left on the stack, else nothing). */
LASIO_HIDDEN int lasio_checkpair_(lua_State *L, int idx, const char *what,
                                  union lasio_sockaddr *sa, socklen_t *len);
/* A new non-blocking, close-on-exec socket, or -1 with errno set. */
LASIO_HIDDEN int lasio_socket_(int family, int type);
/* Pushes get_extra_info's "peername" / "sockname" of fd, or nil. */
LASIO_HIDDEN void lasio_pushsockname_(lua_State *L, int fd, int peer);
/* Optional table field helpers for opts tables (opts may be absent). */
LASIO_HIDDEN int lasio_optfield_(lua_State *L, int opts, const char *key);
LASIO_HIDDEN int lasio_optboolean_(lua_State *L, int opts, const char *key,
                                   int dflt, const char *what);
LASIO_HIDDEN lua_Integer lasio_optinteger_(lua_State *L, int opts,
                                           const char *key, lua_Integer dflt,
                                           lua_Integer min, const char *what);
/* Checks that opts (at idx) is nil or a table whose keys are all listed
 * in the NULL-terminated `known`: a misspelt option raises. */
LASIO_HIDDEN void lasio_checkopts_(lua_State *L, int idx, const char *what,
                                   const char *const known[]);
/* ====== } */

/* {====== Streams (stream.c, reader.c, writer.c) ====== */

/* A byte buffer: the bytes are data[off .. off+len). */
struct lasio_buf {
    char *data;
    size_t off, len, cap;
};

/* The I/O of a stream: plain syscalls, or TLS (tls.c). read returns
 * bytes > 0, 0 at EOF, -1 with errno (EAGAIN when it would block); write
 * returns bytes written or -1 with errno. */
struct lasio_stream;
struct lasio_tls;

/* User values of the stream userdata. */
enum {
    STREAM_UV_LOOP = 1, /* the loop userdata: keeps the loop alive */
    STREAM_UV_EXTRA,    /* table: server, TLS context ... or nil */
    STREAM_NUV = STREAM_UV_EXTRA
};

/*
 * The stream. Invariants:
 * - fd >= 0 exactly while the stream holds the socket; then rev and wev
 *   exist and `link` is in the loop's list.
 * - rev is added iff reading is on: fd open, no EOF or error seen, not
 *   closing, and either not paused or the waiting reader needs more bytes
 *   (paused: in.len reached max(2 * limit, 16 KiB), cleared at half).
 * - wev is added iff output is pending, or a connect (or a TLS step)
 *   waits for writability.
 * - reader is the one task suspended in a read or a connect, or NULL;
 *   ww[0 .. nww) are the tasks suspended in drain or wait_closed. Every
 *   task recorded there is suspended in that operation, whose
 *   continuation forgets it, so the pointers never dangle; such a task
 *   keeps the stream reachable from its stack.
 * - pin is a ref in LOOP_UV_ANCHORS while close() flushes output.
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
    int pin;          /* anchor ref while flushing at close, or LUA_NOREF */
    size_t readsize;  /* bytes to ask for in the next read */
    double rdeadline; /* deadline of the current read, 0 for none */
    size_t rscan;     /* readuntil: where the next search starts */
    unsigned char linked, eof, paused, reading, writing, closing, eof_wanted,
        eof_sent, connecting, is_socket, released, wpaused;
    struct lasio_tls *tls; /* tls.c state, or NULL */
};

/* Pushes a new stream userdata on loop in the closed state (fd -1).
 * [-0, +1, m] */
LASIO_HIDDEN struct lasio_stream *lasio_stream_new_(lua_State *L,
                                                    struct lasio_loop *loop);
/* Gives the stream the non-blocking fd (it owns it from now on, also when
 * this raises on a memory error: the fd is closed then). Reading starts
 * unless `connecting`, when writability is awaited instead. */
LASIO_HIDDEN void lasio_stream_attach_(lua_State *L, struct lasio_stream *s,
                                       int fd, int is_socket, int connecting);
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
 * the background (pinning the stream at idx) and releases the socket when
 * done. Idempotent. [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_close_(lua_State *L, int idx,
                                      struct lasio_stream *s);
/* Releases the socket now, dropping buffered output, and unpins the
 * stream; wakes the write-side waiters. [-0, +0, m] */
LASIO_HIDDEN void lasio_stream_abort_(lua_State *L, struct lasio_stream *s);
/* The stream behind the Reader or Writer at idx. */
LASIO_HIDDEN struct lasio_stream *lasio_checkreader_(lua_State *L, int idx);
LASIO_HIDDEN struct lasio_stream *lasio_checkwriter_(lua_State *L, int idx);
/* Pushes the error a read must raise now (closed, reset), or returns 0
 * and pushes nothing. [-0, +(0|1), m] */
LASIO_HIDDEN int lasio_stream_readerror_(lua_State *L, struct lasio_stream *s,
                                         const char *op);
/* Syscall layer: plain or TLS; -1 with errno (EAGAIN: would block). */
LASIO_HIDDEN long lasio_stream_rawread_(struct lasio_stream *s, char *p,
                                        size_t n);
LASIO_HIDDEN long lasio_stream_rawwrite_(struct lasio_stream *s, const char *p,
                                         size_t n);
/* Buffer helpers: room for n more bytes at the end (-1: no memory). */
LASIO_HIDDEN int lasio_buf_reserve_(struct lasio_buf *b, size_t n);
LASIO_HIDDEN void lasio_buf_consume_(struct lasio_buf *b, size_t n);
LASIO_HIDDEN void lasio_buf_free_(struct lasio_buf *b);
/* Consumed input: resume reading below the low mark. */
LASIO_HIDDEN void lasio_stream_consumed_(struct lasio_stream *s);
LASIO_HIDDEN int luaopen_lasio_stream_(lua_State *L);
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
/* Method tables of the views (reader.c, writer.c). */
LASIO_HIDDEN extern const luaL_Reg lasio_reader_methods_[];
LASIO_HIDDEN extern const luaL_Reg lasio_writer_methods_[];
LASIO_HIDDEN int lasio_writer_close_(lua_State *L);
/* ====== } */

/* {====== Connections, servers, datagrams, DNS (connect.c, server.c,
 * udp.c, dns.c) ====== */
LASIO_HIDDEN int luaopen_lasio_connect_(lua_State *L);
LASIO_HIDDEN int luaopen_lasio_server_(lua_State *L);
LASIO_HIDDEN int luaopen_lasio_udp_(lua_State *L);
LASIO_HIDDEN int luaopen_lasio_dns_(lua_State *L);
/* core.http_parser, core.http_head, ... (httpparse.c, httpformat.c) */
LASIO_HIDDEN int luaopen_lasio_http_(lua_State *L);
LASIO_HIDDEN int luaopen_lasio_httpformat_(lua_State *L);
/* Pushes lasio.getaddrinfo and its arguments for host (at hostidx), port,
 * family (AF_UNSPEC for any), a stream or datagram use and what is left
 * of deadline (0: none); returns the argument count, for lua_callk: its
 * one result is the address list. [-0, +4, m] */
LASIO_HIDDEN int lasio_push_resolve_(lua_State *L, int hostidx, int port,
                                     int family, int dgram, double deadline);
/* Reads entry i of the address list at idx into sa; returns 0, or -1
 * when there is none. [-0, +0, m] */
LASIO_HIDDEN int lasio_addrlist_get_(lua_State *L, int idx, lua_Integer i,
                                     union lasio_sockaddr *sa, socklen_t *len);
/* The server a connection came from lost one connection. */
LASIO_HIDDEN void lasio_server_conn_done_(lua_State *L, int serveridx);
/* The addresses of a lookup, and how each family's question ended
 * (DNS_ERR_* of evdns, -1 before an answer). */
#define LASIO_DNS_MAXADDR 32 /* addresses kept per family */
struct lasio_dnsanswer {
    int err4, err6;
    int n4, n6;
    unsigned char a4[LASIO_DNS_MAXADDR][4];
    unsigned char a6[LASIO_DNS_MAXADDR][16];
};
/* ====== } */

/* {====== TCP retry of truncated DNS replies (dnstcp.c) ======
 * Asks the nameservers in turn over TCP, each within try_timeout, for
 * the A and/or AAAA records of a name. The lookup owns its socket and
 * event; while a task waits, it is recorded in `waiter`, which the
 * continuation forgets. */
#define LASIO_DNSTCP_MAXNS 8
struct lasio_dnstcp_q {
    unsigned short id;
    int qtype; /* ns_t_a or ns_t_aaaa */
    int done;
};
struct lasio_dnstcp {
    struct lasio_iolink link;
    struct lasio_loop *loop;
    struct lasio_task *waiter;
    struct event *ev; /* the one event the current step waits for */
    int fd, state, ready;
    int ns_next, nns;
    union lasio_sockaddr ns[LASIO_DNSTCP_MAXNS];
    socklen_t nslen[LASIO_DNSTCP_MAXNS];
    double try_timeout, try_deadline;
    int fail; /* DNS_ERR_* for questions no server answered */
    int nq;
    struct lasio_dnstcp_q q[2];
    unsigned char out[2 * (2 + 512)];
    size_t outlen, outoff;
    unsigned char *in; /* 2-byte length and the largest message */
    size_t inlen;
    struct lasio_dnsanswer answer;
    char name[256];
    unsigned char linked;
};
/* Pushes a new lookup of name (want4: A, want6: AAAA) on loop; its
 * answer starts empty (the caller may fill in what it already has).
 * [-0, +1, m] */
LASIO_HIDDEN struct lasio_dnstcp *
lasio_dnstcp_new_(lua_State *L, struct lasio_loop *loop, const char *name,
                  int want4, int want6, double try_timeout);
/* Adds a nameserver to ask; -1 when there are too many. */
LASIO_HIDDEN int lasio_dnstcp_add_server_(struct lasio_dnstcp *d,
                                          const struct sockaddr *sa,
                                          socklen_t len);
/* Goes on as far as it can without waiting: returns 1 when every question
 * has its outcome in d->answer, 0 when it waits for its socket or for
 * try_deadline. Runs no Lua code. */
LASIO_HIDDEN int lasio_dnstcp_step_(struct lasio_dnstcp *d);
/* Closes the socket and frees what the lookup holds. Idempotent. */
LASIO_HIDDEN void lasio_dnstcp_release_(struct lasio_dnstcp *d);
/* ====== } */

#endif
