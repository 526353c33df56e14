/*
 * dnstcp.c: the TCP retry of a lookup whose UDP reply came back truncated
 * (TC bit). evdns 2.1 has no TCP fallback, so this asks the same
 * nameservers again over TCP (RFC 7766), one after the other, driven by
 * the loop: non-blocking sockets and libevent events, no thread, so the
 * caller's deadline and cancellation apply as to any other wait. glibc's
 * libresolv builds the queries (res_mkquery) and parses the replies
 * (ns_initparse / ns_parserr).
 * SPDX-License-Identifier: MIT
 */
#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "net/net.h"

#define LASIO_DNSTCP_MT "lasio.DNSTcpLookup"
#define QUERY_MAX 512 /* res_mkquery's packet for one name */

enum { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_RECEIVING };

/* Releases the socket of the current attempt. Runs no Lua code. */
static void
drop_socket(struct lasio_dnstcp *d) {
    if (d->ev)
        event_free(d->ev);
    d->ev = NULL;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->state = ST_IDLE;
    d->ready = 0;
}

void
lasio_dnstcp_release_(struct lasio_dnstcp *d) {
    drop_socket(d);
    d->waiter = NULL;
    free(d->in);
    d->in = NULL;
    lasio_io_unlink_(d->loop, &d->link, &d->linked);
}

static void
release_link(struct lasio_iolink *link) {
    struct lasio_dnstcp *d = (struct lasio_dnstcp *)link;
    d->linked = 0;
    lasio_dnstcp_release_(d);
}

static int
dnstcp_gc(lua_State *L) {
    lasio_dnstcp_release_(lua_touserdata(L, 1));
    return 0;
}

static void
on_ready(evutil_socket_t fd, short what, void *arg) {
    struct lasio_dnstcp *d = arg;
    (void)fd, (void)what;
    d->ready = 1;
    /* the waiting task keeps the lookup reachable from its stack */
    if (d->waiter)
        lasio_io_wake_cb_(d->loop, d->waiter);
}

/* Waits for the socket to be readable or writable; -1 when the event
 * cannot be made. */
static int
arm(struct lasio_dnstcp *d, short what) {
    if (d->ev)
        event_free(d->ev);
    d->ev = event_new(d->loop->base, d->fd, what, on_ready, d);
    d->ready = 0;
    if (!d->ev || event_add(d->ev, NULL) != 0)
        return -1;
    return 0;
}

/* The current nameserver failed (err: DNS_ERR_* for what is still
 * unanswered if no other server does better): on to the next one. */
static void
server_failed(struct lasio_dnstcp *d, int err) {
    drop_socket(d);
    d->fail = err;
    d->ns_next++;
}

static int
all_answered(const struct lasio_dnstcp *d) {
    for (int i = 0; i < d->nq; i++)
        if (!d->q[i].done)
            return 0;
    return 1;
}

/* {====== Replies ====== */

/* The DNS_ERR_* of a reply's rcode. */
static int
err_of_rcode(int rcode) {
    switch (rcode) {
    case ns_r_noerror:
        return DNS_ERR_NONE;
    case ns_r_formerr:
        return DNS_ERR_FORMAT;
    case ns_r_servfail:
        return DNS_ERR_SERVERFAILED;
    case ns_r_nxdomain:
        return DNS_ERR_NOTEXIST;
    case ns_r_notimpl:
        return DNS_ERR_NOTIMPL;
    default:
        return DNS_ERR_REFUSED;
    }
}

/* Takes the answers of one reply for question q. */
static void
take_answers(struct lasio_dnstcp *d, struct lasio_dnsanswer *a, ns_msg *msg,
             int qtype) {
    char want[NS_MAXDNAME];
    ns_rr rr;
    int n = ns_msg_count(*msg, ns_s_an);
    strcpy(want, d->name);
    /* one pass: a CNAME of the name looked for redirects to its target,
     * and only addresses of the name looked for (so far) are kept */
    for (int i = 0; i < n; i++) {
        if (ns_parserr(msg, ns_s_an, i, &rr) != 0)
            break;
        if (ns_rr_class(rr) != ns_c_in || strcasecmp(ns_rr_name(rr), want))
            continue;
        if (ns_rr_type(rr) == ns_t_cname) {
            char target[NS_MAXDNAME];
            if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg),
                                   ns_rr_rdata(rr), target, sizeof target) >= 0)
                strcpy(want, target);
        } else if ((int)ns_rr_type(rr) == qtype && qtype == ns_t_a &&
                   ns_rr_rdlen(rr) == 4 && a->n4 < LASIO_DNS_MAXADDR) {
            memcpy(a->a4[a->n4++], ns_rr_rdata(rr), 4);
        } else if ((int)ns_rr_type(rr) == qtype && qtype == ns_t_aaaa &&
                   ns_rr_rdlen(rr) == 16 && a->n6 < LASIO_DNS_MAXADDR) {
            memcpy(a->a6[a->n6++], ns_rr_rdata(rr), 16);
        }
    }
}

/* Reads one reply message; returns 0, or -1 when it is malformed or
 * answers no question of ours (the server is then given up). */
static int
take_reply(struct lasio_dnstcp *d, const unsigned char *p, size_t len) {
    ns_msg msg;
    ns_rr rr;
    if (ns_initparse(p, (int)len, &msg) != 0 ||
        ns_msg_count(msg, ns_s_qd) != 1 ||
        ns_parserr(&msg, ns_s_qd, 0, &rr) != 0)
        return -1;
    for (int i = 0; i < d->nq; i++) {
        struct lasio_dnstcp_q *q = &d->q[i];
        if (ns_msg_id(msg) != q->id || (int)ns_rr_type(rr) != q->qtype ||
            ns_rr_class(rr) != ns_c_in || strcasecmp(ns_rr_name(rr), d->name))
            continue;
        if (q->done) /* an earlier server answered it */
            return 0;
        int err = err_of_rcode(ns_msg_getflag(msg, ns_f_rcode));
        if (err == DNS_ERR_NONE)
            take_answers(d, &d->answer, &msg, q->qtype);
        if (q->qtype == ns_t_a)
            d->answer.err4 = err;
        else
            d->answer.err6 = err;
        q->done = 1;
        return 0;
    }
    return -1;
}

/* Takes every complete message in the input; -1 on a bad one. */
static int
take_input(struct lasio_dnstcp *d) {
    size_t off = 0;
    while (d->inlen - off >= 2) {
        size_t n = ((size_t)d->in[off] << 8) | d->in[off + 1];
        if (d->inlen - off - 2 < n)
            break;
        if (take_reply(d, d->in + off + 2, n) != 0)
            return -1;
        off += 2 + n;
    }
    memmove(d->in, d->in + off, d->inlen - off);
    d->inlen -= off;
    return 0;
}

/* ====== } */

/* {====== The steps ====== */

/* Starts the connect to the next nameserver; 0, or -1 when it failed at
 * once (the server is then given up). */
static int
start_server(struct lasio_dnstcp *d) {
    const union lasio_sockaddr *ns = &d->ns[d->ns_next];
    d->fd = lasio_socket_(ns->sa.sa_family, SOCK_STREAM);
    if (d->fd < 0) {
        server_failed(d, DNS_ERR_UNKNOWN);
        return -1;
    }
    int rc;
    do
        rc = connect(d->fd, &ns->sa, d->nslen[d->ns_next]);
    while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        server_failed(d, DNS_ERR_TIMEOUT);
        return -1;
    }
    d->outoff = d->inlen = 0;
    d->try_deadline = lasio_io_deadline_(d->try_timeout);
    d->state = ST_CONNECTING;
    if (arm(d, EV_WRITE) != 0) {
        server_failed(d, DNS_ERR_UNKNOWN);
        return -1;
    }
    return 0;
}

/* Sends what is left of the queries; -1 on an error. */
static int
send_queries(struct lasio_dnstcp *d) {
    while (d->outoff < d->outlen) {
        ssize_t n = write(d->fd, d->out + d->outoff, d->outlen - d->outoff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return arm(d, EV_WRITE);
        if (n <= 0)
            return -1;
        d->outoff += (size_t)n;
    }
    d->state = ST_RECEIVING;
    return arm(d, EV_READ);
}

int
lasio_dnstcp_input_(struct lasio_dnstcp *d, size_t n) {
    d->inlen += n;
    if (take_input(d) != 0)
        return -1;
    return all_answered(d);
}

/* Reads what has come; 1 when every question is answered, 0 to wait
 * for more, -1 on an error, EOF or a bad reply. */
static int
receive(struct lasio_dnstcp *d) {
    for (;;) {
        ssize_t n =
            read(d->fd, d->in + d->inlen, LASIO_DNSTCP_REPLY_MAX - d->inlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -1;
        int r = lasio_dnstcp_input_(d, (size_t)n);
        if (r != 0)
            return r;
    }
    return arm(d, EV_READ) == 0 ? 0 : -1;
}

int
lasio_dnstcp_step_(struct lasio_dnstcp *d) {
    for (;;) {
        if (all_answered(d)) {
            drop_socket(d);
            return 1;
        }
        if (d->state == ST_IDLE) {
            if (d->ns_next >= d->nns) { /* every server failed */
                for (int i = 0; i < d->nq; i++) {
                    if (d->q[i].done)
                        continue;
                    if (d->q[i].qtype == ns_t_a)
                        d->answer.err4 = d->fail;
                    else
                        d->answer.err6 = d->fail;
                    d->q[i].done = 1;
                }
                return 1;
            }
            if (start_server(d) == 0)
                return 0;
            continue;
        }
        if (!d->ready) {
            if (lasio_time_() < d->try_deadline)
                return 0;
            server_failed(d, DNS_ERR_TIMEOUT);
            continue;
        }
        d->ready = 0;
        if (d->state == ST_CONNECTING) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
                err != 0) {
                server_failed(d, DNS_ERR_TIMEOUT);
                continue;
            }
            d->state = ST_SENDING;
        }
        if (d->state == ST_SENDING) {
            if (send_queries(d) != 0)
                server_failed(d, DNS_ERR_TIMEOUT);
            continue; /* waits in the next round (ready is 0) */
        }
        int r = receive(d);
        if (r < 0) {
            /* a server that hung up or sent garbage: the next one may do
             * better; if none does, the lookup failed */
            server_failed(d, DNS_ERR_SERVERFAILED);
            continue;
        }
        if (r == 0)
            return 0;
    }
}

/* ====== } */

/* Appends the length-prefixed query for name and qtype; -1 if it cannot
 * be built. */
static int
add_query(struct lasio_dnstcp *d, int qtype) {
    unsigned char *p = d->out + d->outlen + 2;
    int n = res_mkquery(ns_o_query, d->name, ns_c_in, qtype, NULL, 0, NULL, p,
                        QUERY_MAX);
    if (n < NS_HFIXEDSZ)
        return -1;
    p[-2] = (unsigned char)(n >> 8);
    p[-1] = (unsigned char)n;
    struct lasio_dnstcp_q *q = &d->q[d->nq++];
    q->id = (unsigned short)((p[0] << 8) | p[1]);
    q->qtype = qtype;
    q->done = 0;
    d->outlen += 2 + (size_t)n;
    return 0;
}

struct lasio_dnstcp *
lasio_dnstcp_new_(lua_State *L, struct lasio_loop *loop, const char *name,
                  int want4, int want6, double try_timeout) {
    /* one socket at a time, counted by the loop's cap while it lasts */
    lasio_cap_sockets_(L, loop, "getaddrinfo");
    struct lasio_dnstcp *d = lua_newuserdatauv(L, sizeof *d, 0);
    memset(d, 0, sizeof *d);
    d->fd = -1;
    d->loop = loop;
    d->try_timeout = try_timeout;
    d->fail = DNS_ERR_TIMEOUT;
    d->answer.err4 = d->answer.err6 = -1;
    if (luaL_newmetatable(L, LASIO_DNSTCP_MT)) {
        lua_pushcfunction(L, dnstcp_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    size_t n = strlen(name);
    if (n >= sizeof d->name)
        luaL_error(L, "getaddrinfo: host name too long");
    memcpy(d->name, name, n + 1);
    if (n > 1 && d->name[n - 1] == '.')
        d->name[n - 1] = '\0';
    if ((want4 && add_query(d, ns_t_a) != 0) ||
        (want6 && add_query(d, ns_t_aaaa) != 0))
        luaL_error(L, "getaddrinfo: cannot build a query for '%s'", name);
    d->in = malloc(LASIO_DNSTCP_REPLY_MAX);
    if (!d->in)
        luaL_error(L, "not enough memory");
    d->link.release = release_link;
    lasio_iolink_add_(loop, &d->link);
    lasio_iolink_socket_(loop, &d->link);
    d->linked = 1;
    return d;
}

int
lasio_dnstcp_add_server_(struct lasio_dnstcp *d, const struct sockaddr *sa,
                         socklen_t len) {
    if (d->nns >= LASIO_DNSTCP_MAXNS || len > sizeof d->ns[0])
        return -1;
    memcpy(&d->ns[d->nns], sa, len);
    d->nslen[d->nns++] = len;
    return 0;
}
