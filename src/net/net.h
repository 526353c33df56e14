/*
 * net.h: structs and cross-file functions of the network layer
 * (connections, servers, datagrams, DNS, TLS), on core.h and the streams
 * of stream.h, whose socket and TLS transports live here. Internal.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_net_h
#define lasio_net_h

#include <stddef.h>
#include <sys/socket.h>

#include "core/core.h"
#include "stream/stream.h"

#define LASIO_SERVER_MT "lasio.Server"

/*
 * Listening sockets of this state (servers and bound datagram endpoints)
 * share their port through SO_REUSEPORT unless their reuse_port option
 * says otherwise: set in each worker of `lasio --workers N` (server.c).
 */
LASIO_HIDDEN void lasio_net_share_listeners_(lua_State *L);
LASIO_HIDDEN int lasio_net_listeners_shared_(lua_State *L);

/* {====== Addresses and errors (netaddr.c) ====== */
union lasio_sockaddr {
    struct sockaddr sa;
    struct sockaddr_storage ss;
};

/* Pushes the address table {family=, addr=, port=} of sa. [-0, +1, m] */
LASIO_HIDDEN void lasio_pushaddr_(lua_State *L, const struct sockaddr *sa,
                                  socklen_t len);
/* Pushes the address as error messages write it: "127.0.0.1:80",
 * "[::1]:80", a Unix path, "@name" for an abstract one. [-0, +1, m] */
LASIO_HIDDEN void lasio_pushaddrstr_(lua_State *L, const struct sockaddr *sa,
                                     socklen_t len);
/* Raises the OSError of op failing with err on the address, named in the
 * message: "bind: Address already in use (while binding 127.0.0.1:80)"
 * (doing = "binding"). [-0, +0, v] */
LASIO_HIDDEN int lasio_raise_addrerror_(lua_State *L, const char *op, int err,
                                        const char *doing,
                                        const struct sockaddr *sa,
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
/* ====== } */

/* {====== The socket transport of streams (socket.c) ====== */
LASIO_HIDDEN extern const struct lasio_transport lasio_socket_transport_;
/* ====== } */

/* {====== Connections, servers, datagrams, DNS (connect.c, server.c,
 * udp.c, dns.c) ====== */
LASIO_HIDDEN void lasio_connect_open_(lua_State *L);
LASIO_HIDDEN void lasio_server_open_(lua_State *L);
LASIO_HIDDEN void lasio_udp_open_(lua_State *L);
LASIO_HIDDEN void lasio_dns_open_(lua_State *L);
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
/* The input buffer: the 2-byte length and the largest message. */
#define LASIO_DNSTCP_REPLY_MAX 65537
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
/* Takes the n bytes of the server's reply stream that the caller put at
 * d->in + d->inlen (at most LASIO_DNSTCP_REPLY_MAX - d->inlen): every
 * complete reply among what has come is parsed into d->answer. Returns 1
 * when every question is answered, 0 when more is needed, -1 on a reply
 * that is malformed or answers no question of ours. Runs no Lua code. */
LASIO_HIDDEN int lasio_dnstcp_input_(struct lasio_dnstcp *d, size_t n);
/* Closes the socket and frees what the lookup holds. Idempotent. */
LASIO_HIDDEN void lasio_dnstcp_release_(struct lasio_dnstcp *d);
/* ====== } */

/* {====== TLS (tls.c) ======
 * A TLS stream's transport wraps the one it had (the socket's): an SSL
 * object reads and writes through it by a BIO of the stream's own; the
 * stream's buffers hold plaintext. OpenSSL itself is reached only through
 * tls_dl.h. */
#define LASIO_SSLCTX_MT "lasio.SSLContext"

/* Checks that the value at idx is an SSLContext, or true (replaced by
 * the default client context). [-0, +0, m] */
LASIO_HIDDEN void lasio_tls_checkctx_(lua_State *L, int idx, const char *what);
/* Is the context at idx a server context? */
LASIO_HIDDEN int lasio_tls_is_server_(lua_State *L, int idx);
/* Makes the stream a TLS stream with the context at ctxidx: a client
 * verifying `hostname` (NULL or "" for no name check) or a server. The
 * bytes already in the stream's input buffer are fed to TLS first.
 * Raises on errors; the stream is unchanged then. [-0, +0, m] */
LASIO_HIDDEN void lasio_tls_attach_(lua_State *L, int streamidx, int ctxidx,
                                    const char *hostname, int server);
/* Pushes the handshake function and its arguments for lua_callk: it
 * awaits the handshake of the stream at streamidx until deadline (0:
 * none) and raises its failure. Returns the argument count. */
LASIO_HIDDEN int lasio_tls_push_handshake_(lua_State *L, int streamidx,
                                           double deadline);
/* Is the stream a TLS stream still in its handshake? */
LASIO_HIDDEN int lasio_tls_handshaking_(struct lasio_stream *s);
LASIO_HIDDEN void lasio_tls_open_(lua_State *L);

/* ====== } */

#endif
