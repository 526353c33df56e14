/*
 * dns.c: lasio.getaddrinfo, getnameinfo, dns_configure (docs/API.md, DNS)
 * on evdns, one resolver per loop made on first use. Owns the evdns_base
 * and the queries in flight; a query outlives a cancelled or timed-out
 * asker (orphaned) until evdns calls back for it, or the loop closes.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "net/net.h"

#define LASIO_RESOLVER_MT "lasio.Resolver"
#define LASIO_QBOX_MT "lasio.DNSQuery"
#define HOSTS_MAX (4 << 20) /* largest hosts file read */
#define HOSTS_PATH "/etc/hosts"
#define RESOLV_PATH "/etc/resolv.conf"
#define EVDNS_TIMEOUT 5.0 /* evdns's default seconds per try */

static const char resolver_key = 0; /* the resolver, in LOOP_UV_ANCHORS */

enum {
    RES_UV_HOSTS = 1, /* lower-case name -> sequence of address strings */
    RES_UV_RHOSTS,    /* address string -> first name */
    RES_NUV = RES_UV_RHOSTS
};

struct dns_query;

/* Invariant: queries lists every query not yet freed; dns is NULL once
 * released. */
struct lasio_resolver {
    struct lasio_iolink link;
    struct lasio_loop *loop;
    struct evdns_base *dns;
    struct dns_query *queries;
    double try_timeout; /* seconds per nameserver (the TCP retry) */
    unsigned char linked;
};

/* A box on the asking task's stack: its __gc orphans a query still in
 * it, so a Lua error anywhere cannot leave a task pointer behind. */
struct qbox {
    struct dns_query *q;
};

/*
 * One getaddrinfo (A and/or AAAA) or getnameinfo (PTR) in flight.
 * Invariant: task is the suspended asker or NULL (orphaned); box and
 * box->q point at each other or are both NULL; pending counts the evdns
 * requests whose callback has not come yet, and the query is freed when
 * it is orphaned and pending is 0 (or when the loop closes).
 */
struct dns_query {
    struct dns_query *prev, *next;
    struct lasio_resolver *res; /* NULL once the resolver let go */
    struct lasio_loop *loop;
    struct lasio_task *task;
    struct qbox *box;
    int pending;
    struct lasio_dnsanswer ans;
    int errptr; /* DNS_ERR_* of the PTR answer, -1 before it */
    char *ptr;  /* PTR answer (malloc) */
};

/* {====== Errors ====== */

struct gaierr {
    int code;
    const char *name;
};

static const struct gaierr gaierrs[] = {
    {EAI_NONAME, "EAI_NONAME"},   {EAI_AGAIN, "EAI_AGAIN"},
    {EAI_FAIL, "EAI_FAIL"},       {EAI_NODATA, "EAI_NODATA"},
    {EAI_SERVICE, "EAI_SERVICE"}, {EAI_FAMILY, "EAI_FAMILY"},
    {EAI_MEMORY, "EAI_MEMORY"},   {0, NULL}};

/* Pushes OSError "op: gai_strerror (detail)" with code "EAI_NONAME",
 * errno (the EAI value) and op. [-0, +1, m] */
static void
push_gaierror(lua_State *L, const char *op, int eai, const char *detail) {
    const char *name = "EAI_FAIL";
    for (int i = 0; gaierrs[i].name; i++)
        if (gaierrs[i].code == eai)
            name = gaierrs[i].name;
    if (detail)
        lua_pushfstring(L, "%s: %s (%s)", op, gai_strerror(eai), detail);
    else
        lua_pushfstring(L, "%s: %s", op, gai_strerror(eai));
    lasio_newerror_(L, ERR_OSERROR, lua_tostring(L, -1), 1);
    lua_remove(L, -2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, eai);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
}

static int
raise_gaierror(lua_State *L, const char *op, int eai, const char *detail) {
    push_gaierror(L, op, eai, detail);
    return lua_error(L);
}

/* The EAI value for a failed evdns answer. */
static int
eai_of(int dnserr) {
    switch (dnserr) {
    case DNS_ERR_NOTEXIST:
        return EAI_NONAME;
    case DNS_ERR_NODATA:
    case DNS_ERR_NONE:
        return EAI_NODATA;
    case DNS_ERR_TIMEOUT:
    case DNS_ERR_SERVERFAILED:
    case DNS_ERR_SHUTDOWN:
        return EAI_AGAIN;
    default: /* format, refused, not implemented, malformed reply */
        return EAI_FAIL;
    }
}

/* ====== } */

/* {====== Queries ====== */

static void
query_unlink(struct dns_query *q) {
    if (!q->res)
        return;
    if (q->prev)
        q->prev->next = q->next;
    else
        q->res->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->res = NULL;
}

static void
query_free(struct dns_query *q) {
    query_unlink(q);
    if (q->box)
        q->box->q = NULL;
    free(q->ptr);
    free(q);
}

/* The asker no longer waits: free now, or when the last callback came. */
static void
query_orphan(struct dns_query *q) {
    q->task = NULL;
    if (q->box) {
        q->box->q = NULL;
        q->box = NULL;
    }
    if (q->pending == 0)
        query_free(q);
}

/* One request answered (or failed, or was cut short by the resolver's
 * replacement): record it; the last one wakes the asker. */
static void
answered(struct dns_query *q, int *err, int result) {
    *err = result;
    if (--q->pending > 0)
        return;
    if (!q->task) {
        query_free(q);
        return;
    }
    /* the asker has the query's box on its stack: it is alive */
    if (!q->loop->closed)
        lasio_io_wake_cb_(q->loop, q->task);
}

/* An A (six == 0) or AAAA answer: keeps its addresses. */
static void
got_addrs(struct dns_query *q, int result, int type, int count,
          const unsigned char *addresses, int six) {
    struct lasio_dnsanswer *a = &q->ans;
    size_t size = six ? 16 : 4;
    int *n = six ? &a->n6 : &a->n4;
    unsigned char *to = six ? a->a6[0] : a->a4[0];
    if (result == DNS_ERR_NONE && type == (six ? DNS_IPv6_AAAA : DNS_IPv4_A))
        for (int i = 0; i < count && *n < LASIO_DNS_MAXADDR; i++)
            memcpy(to + size * (size_t)(*n)++, addresses + size * (size_t)i,
                   size);
    answered(q, six ? &a->err6 : &a->err4, result);
}

static void
cb_a(int result, char type, int count, int ttl, void *addresses, void *arg) {
    (void)ttl;
    got_addrs(arg, result, type, count, addresses, 0);
}

static void
cb_aaaa(int result, char type, int count, int ttl, void *addresses, void *arg) {
    (void)ttl;
    got_addrs(arg, result, type, count, addresses, 1);
}

static void
cb_ptr(int result, char type, int count, int ttl, void *addresses, void *arg) {
    struct dns_query *q = arg;
    (void)ttl;
    if (result == DNS_ERR_NONE && type == DNS_PTR && count > 0 && !q->ptr)
        q->ptr = strdup(*(char **)addresses);
    answered(q, &q->errptr, result);
}

/* ====== } */

/* {====== The resolver ====== */

/* evdns's log lines ("Nameserver ... has failed", "[warn] Address
 * mismatch ...") describe conditions the callers already get as errors:
 * they go to stderr only while the loop running on this thread is in
 * debug mode, else nowhere. */
static void
dns_log(int is_warning, const char *msg) {
    struct lasio_loop *loop = lasio_thread_loop_();
    if (!loop || !loop->debug)
        return;
    fprintf(stderr, "lasio: evdns%s: %s\n", is_warning ? " warning" : "", msg);
    fflush(stderr);
}

/* A new evdns_base on loop (flags: EVDNS_BASE_*), or NULL. evdns's log
 * function is process-wide: lasio sets it when it first makes a base, so
 * a host that never resolves through lasio keeps its own. */
static struct evdns_base *
new_base(struct lasio_loop *loop, int flags) {
    evdns_set_log_fn(dns_log); /* the same pointer each time */
    return evdns_base_new(loop->base, flags | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
}

/* Lets go of the evdns_base and of every query. Runs no Lua code. With
 * the loop's own event_base, which is freed right after, evdns must not
 * schedule callbacks (they would never run, and leak): requests are
 * dropped and the queries freed here. With a host's base, which lives
 * on, evdns fails the requests and its callbacks free the queries. */
static void
resolver_release(struct lasio_resolver *r) {
    int own = r->loop->own_base;
    if (r->dns)
        evdns_base_free(r->dns, !own);
    r->dns = NULL;
    while (r->queries) {
        struct dns_query *q = r->queries;
        query_unlink(q);
        q->task = NULL;
        if (q->box) {
            q->box->q = NULL;
            q->box = NULL;
        }
        if (own || q->pending == 0)
            query_free(q);
    }
    lasio_io_unlink_(r->loop, &r->link, &r->linked);
}

static void
resolver_release_link(struct lasio_iolink *link) {
    struct lasio_resolver *r = (struct lasio_resolver *)link;
    r->linked = 0;
    resolver_release(r);
}

static int
resolver_gc(lua_State *L) {
    resolver_release(lua_touserdata(L, 1));
    return 0;
}

/* Lower-cases s[0..n) into buf (n < sizeof buf). */
static void
lower(char *buf, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    buf[n] = '\0';
}

/* Normalises a numeric address string (so "::0:1" finds "::1"); returns
 * 0, or -1 when it is not an address. */
static int
normaddr(const char *s, char *out, size_t outlen, int *family) {
    unsigned char b[16];
    if (inet_pton(AF_INET, s, b) == 1) {
        *family = AF_INET;
        inet_ntop(AF_INET, b, out, (socklen_t)outlen);
        return 0;
    }
    if (inet_pton(AF_INET6, s, b) == 1) {
        *family = AF_INET6;
        inet_ntop(AF_INET6, b, out, (socklen_t)outlen);
        return 0;
    }
    return -1;
}

/* Parses a hosts file into the resolver's tables (at ridx). A missing or
 * unreadable file gives empty tables. [-0, +0, m] */
static void
load_hosts(lua_State *L, int ridx, const char *path) {
    lua_newtable(L);
    lua_newtable(L);
    int fwd = lua_gettop(L) - 1, rev = fwd + 1;
    struct stat st;
    if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        /* the text lives in a userdata, made before the file is opened:
         * a memory error cannot leak either */
        size_t size = st.st_size > HOSTS_MAX ? HOSTS_MAX : (size_t)st.st_size;
        char *text = lua_newuserdatauv(L, size + 1, 0);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(text, 1, size, f) : 0;
        if (f)
            fclose(f);
        text[n] = '\0';
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
            char *tsave = NULL, addr[INET6_ADDRSTRLEN];
            char *tok = strtok_r(line, " \t\r", &tsave);
            int family;
            if (!tok || normaddr(tok, addr, sizeof addr, &family) != 0)
                continue;
            while ((tok = strtok_r(NULL, " \t\r", &tsave))) {
                char name[256];
                size_t len = strlen(tok);
                if (len >= sizeof name)
                    continue;
                lower(name, tok, len);
                if (lua_getfield(L, fwd, name) == LUA_TNIL) {
                    lua_pop(L, 1);
                    lua_newtable(L);
                    lua_pushvalue(L, -1);
                    lua_setfield(L, fwd, name);
                }
                lua_pushstring(L, addr);
                lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
                lua_pop(L, 1);
                if (lua_getfield(L, rev, addr) == LUA_TNIL) {
                    lua_pushstring(L, tok);
                    lua_setfield(L, rev, addr);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1); /* the text */
    }
    lua_setiuservalue(L, ridx, RES_UV_RHOSTS);
    lua_setiuservalue(L, ridx, RES_UV_HOSTS);
}

/* Pushes the loop's resolver, made on first use (with /etc/hosts when
 * `defaults`), without an evdns_base yet. [-0, +1, m] */
static struct lasio_resolver *
push_resolver(lua_State *L, struct lasio_loop *loop, int defaults) {
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_remove(L, -2);
    if (lua_rawgetp(L, -1, &resolver_key) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return lua_touserdata(L, -1);
    }
    lua_pop(L, 1);
    struct lasio_resolver *r =
        lua_newuserdatauv(L, sizeof(struct lasio_resolver), RES_NUV);
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->try_timeout = EVDNS_TIMEOUT;
    luaL_setmetatable(L, LASIO_RESOLVER_MT);
    int ridx = lua_gettop(L);
    load_hosts(L, ridx, defaults ? HOSTS_PATH : NULL);
    lua_pushvalue(L, ridx);
    lua_rawsetp(L, -3, &resolver_key); /* anchored: lives with the loop */
    lua_remove(L, -2);
    r->link.release = resolver_release_link;
    lasio_iolink_add_(loop, &r->link);
    r->linked = 1;
    return r;
}

/* The resolver of the running loop, with an evdns_base (from
 * /etc/resolv.conf when it had none). [-0, +1, m] */
static struct lasio_resolver *
running_resolver(lua_State *L, const char *what) {
    struct lasio_loop *loop = lasio_io_running_loop_(L, what);
    struct lasio_resolver *r = push_resolver(L, loop, 1);
    if (!r->dns) {
        r->dns = new_base(loop, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!r->dns)
            luaL_error(L, "cannot create the DNS resolver");
    }
    return r;
}

/* ====== } */

/* {====== Queries from Lua ====== */

static int
qbox_gc(lua_State *L) {
    struct qbox *box = lua_touserdata(L, 1);
    if (box->q)
        query_orphan(box->q);
    return 0;
}

/* Pushes a box with a new query of r in it. [-0, +1, m] */
static struct dns_query *
new_query(lua_State *L, struct lasio_resolver *r) {
    struct qbox *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->q = NULL;
    luaL_setmetatable(L, LASIO_QBOX_MT);
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        luaL_error(L, "not enough memory");
    q->res = r;
    q->loop = r->loop;
    q->ans.err4 = q->ans.err6 = q->errptr = -1;
    q->next = r->queries;
    if (r->queries)
        r->queries->prev = q;
    r->queries = q;
    q->box = box;
    box->q = q;
    return q;
}

/* Checks a host name argument (D4): a non-empty string without NUL
 * bytes, at most 253 characters (a trailing dot aside), labels of at
 * most 63. */
static const char *
checkhost(lua_State *L, int idx, const char *what) {
    size_t len;
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "%s: host must be a string, got %s", what,
                   luaL_typename(L, idx));
    const char *h = lua_tolstring(L, idx, &len);
    if (len == 0)
        luaL_error(L, "%s: empty host name", what);
    if (strlen(h) != len)
        luaL_error(L, "%s: host name contains a NUL byte", what);
    if (len - (h[len - 1] == '.') > 253)
        luaL_error(L, "%s: host name too long (%d bytes)", what, (int)len);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (h[i] == '.') {
            if (label == 0 && len > 1)
                luaL_error(L, "%s: empty label in host name '%s'", what, h);
            label = 0;
        } else if (++label > 63) {
            luaL_error(L, "%s: label longer than 63 bytes in host name", what);
        }
    }
    return h;
}

/* The port at idx: nil (0), an integer, a numeric string or a service
 * name ("http"). */
static int
checkservice(lua_State *L, int idx, const char *proto, const char *what) {
    if (lua_isnoneornil(L, idx))
        return 0;
    if (lua_type(L, idx) == LUA_TSTRING && !lua_isnumber(L, idx)) {
        struct servent se, *res = NULL;
        char buf[1024];
        if (getservbyname_r(lua_tostring(L, idx), proto, &se, buf, sizeof buf,
                            &res) != 0 ||
            !res)
            raise_gaierror(L, what, EAI_SERVICE, lua_tostring(L, idx));
        return ntohs((unsigned short)res->s_port);
    }
    return lasio_checkport_(L, idx, what);
}

/* Appends one address table to the list at lidx. */
static void
add_result(lua_State *L, int lidx, int family, const void *bytes, int port) {
    union lasio_sockaddr sa;
    memset(&sa, 0, sizeof sa);
    socklen_t len;
    if (family == AF_INET) {
        sa.ss.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&sa.ss)->sin_addr, bytes, 4);
        ((struct sockaddr_in *)&sa.ss)->sin_port = htons((unsigned short)port);
        len = sizeof(struct sockaddr_in);
    } else {
        sa.ss.ss_family = AF_INET6;
        memcpy(&((struct sockaddr_in6 *)&sa.ss)->sin6_addr, bytes, 16);
        ((struct sockaddr_in6 *)&sa.ss)->sin6_port =
            htons((unsigned short)port);
        len = sizeof(struct sockaddr_in6);
    }
    lasio_pushaddr_(L, &sa.sa, len);
    lua_rawseti(L, lidx, (lua_Integer)lua_rawlen(L, lidx) + 1);
}

/* Appends the address string s if its family is wanted. */
static void
add_string(lua_State *L, int lidx, const char *s, int want, int port) {
    unsigned char b[16];
    if (want != AF_INET6 && inet_pton(AF_INET, s, b) == 1)
        add_result(L, lidx, AF_INET, b, port);
    else if (want != AF_INET && inet_pton(AF_INET6, s, b) == 1)
        add_result(L, lidx, AF_INET6, b, port);
}

/* ====== } */

/* {====== Waiting for a query ======
 * getaddrinfo and getnameinfo keep the same first slots (arguments, then
 * Q_BOX and Q_DEADLINE) and wait for their query the same way. */

enum { Q_BOX = 4, Q_DEADLINE = 5 };
enum { LOOKUP_FORWARD, LOOKUP_REVERSE };

/* Stack of getaddrinfo while it runs: */
enum {
    GA_HOST = 1,
    GA_PORT,
    GA_OPTS,
    GA_BOX = Q_BOX,           /* the query's box */
    GA_DEADLINE = Q_DEADLINE, /* monotonic deadline or 0 */
    GA_FAMILY,                /* AF_* wanted */
    GA_PORTNUM,
    GA_DGRAM, /* 1 for a datagram use */
    GA_BASE = GA_DGRAM
};

/* Stack of getnameinfo while it runs: */
enum {
    GN_ADDR = 1,
    GN_PORT,
    GN_OPTS,
    GN_BOX = Q_BOX,
    GN_DEADLINE = Q_DEADLINE,
    GN_HOST,    /* the numeric address string */
    GN_SERVICE, /* the service, already known */
    GN_BASE = GN_SERVICE
};

static int gai_done(lua_State *L, struct dns_query *q);
static int gni_done(lua_State *L, struct dns_query *q);

static const struct lookup {
    const char *what;
    int base; /* the stack's height while waiting */
    /* returns the results of q, NULL when the resolver let go of it */
    int (*done)(lua_State *L, struct dns_query *q);
} lookups[] = {{"getaddrinfo", GA_BASE, gai_done},
               {"getnameinfo", GN_BASE, gni_done}};

static int lookup_k(lua_State *L, int status, lua_KContext ctx);

/* Waits (again) for the answers of the query in the box. */
static int
lookup_wait(lua_State *L, struct dns_query *q, int kind) {
    const struct lookup *k = &lookups[kind];
    struct lasio_loop *loop;
    double deadline = lua_tonumber(L, Q_DEADLINE);
    if (deadline > 0 && lasio_time_() >= deadline) {
        query_orphan(q);
        return lasio_raise_(L, ERR_TIMEOUT, "%s: timed out", k->what);
    }
    struct lasio_task *t = lasio_check_await_(L, &loop, k->what);
    lasio_io_wait_(L, t, k->base, deadline);
    q->task = t;
    return lasio_io_yield_(L, kind, lookup_k);
}

static int
lookup_k(lua_State *L, int status, lua_KContext ctx) {
    const struct lookup *k = &lookups[ctx];
    struct qbox *box = lua_touserdata(L, Q_BOX);
    struct dns_query *q = box->q;
    (void)status;
    if (q)
        q->task = NULL;
    if (lasio_io_resumed_(L, lasio_running_loop_(L), k->base)) {
        if (q)
            query_orphan(q);
        return lua_error(L);
    }
    if (q && q->pending > 0)
        return lookup_wait(L, q, (int)ctx);
    return k->done(L, q);
}

/* Reads the timeout option of opts and pushes the slots Q_BOX (nil until
 * a query is made) and Q_DEADLINE. [-0, +2, e] */
static void
push_query_slots(lua_State *L, int opts, const char *what) {
    lasio_optfield_(L, opts, "timeout");
    double timeout = lasio_io_checktimeout_(L, -1, what);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushnumber(L, lasio_io_deadline_(timeout));
}

/* Makes a query of r, boxed in Q_BOX, and cuts the stack to base.
 * [-?, +0, m] */
static struct dns_query *
start_query(lua_State *L, struct lasio_resolver *r, int base) {
    struct dns_query *q = new_query(L, r);
    lua_replace(L, Q_BOX);
    lua_settop(L, base);
    return q;
}

/* ====== } */

/* {====== getaddrinfo ====== */

static const char *const gai_opts[] = {"family", "type", "timeout", NULL};

/* Returns the address list of an answer, or raises its error. */
static int
gai_result(lua_State *L, const struct lasio_dnsanswer *a) {
    int port = (int)lua_tointeger(L, GA_PORTNUM);
    lua_createtable(L, a->n4 + a->n6, 0);
    int lidx = lua_gettop(L);
    for (int i = 0; i < a->n4; i++)
        add_result(L, lidx, AF_INET, a->a4[i], port);
    for (int i = 0; i < a->n6; i++)
        add_result(L, lidx, AF_INET6, a->a6[i], port);
    if (lua_rawlen(L, lidx) > 0)
        return 1;
    /* no address: a name that does not exist wins over the rest */
    int err4 = a->err4, err6 = a->err6;
    int eai = err4 == DNS_ERR_NOTEXIST || err6 == DNS_ERR_NOTEXIST ? EAI_NONAME
              : err4 > 0 && err4 != DNS_ERR_NODATA ? eai_of(err4)
              : err6 > 0 && err6 != DNS_ERR_NODATA ? eai_of(err6)
                                                   : EAI_NODATA;
    return raise_gaierror(L, "getaddrinfo", eai, lua_tostring(L, GA_HOST));
}

/* {====== Truncated replies ======
 * evdns 2.1 has no TCP retry for a reply with the TC bit: the families
 * whose reply was truncated are asked again over TCP (dnstcp.c), of the
 * same nameservers, within the getaddrinfo deadline; each server gets
 * the resolver's per-try timeout. The lookup replaces the query in
 * GA_BOX. */

static int gai_tcp_k(lua_State *L, int status, lua_KContext ctx);

/* Steps the TCP lookup in GA_BOX; waits, or returns its result. */
static int
gai_tcp_step(lua_State *L, struct lasio_dnstcp *d) {
    if (lasio_dnstcp_step_(d)) {
        struct lasio_dnsanswer a = d->answer;
        lasio_dnstcp_release_(d);
        return gai_result(L, &a);
    }
    double deadline = lua_tonumber(L, GA_DEADLINE);
    if (deadline > 0 && lasio_time_() >= deadline) {
        lasio_dnstcp_release_(d);
        return lasio_raise_(L, ERR_TIMEOUT, "getaddrinfo: timed out");
    }
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "getaddrinfo");
    /* wake at the earlier of the caller's and the server's deadline */
    if (deadline == 0 || d->try_deadline < deadline)
        deadline = d->try_deadline;
    lasio_io_wait_(L, t, GA_BASE, deadline);
    d->waiter = t;
    return lasio_io_yield_(L, 0, gai_tcp_k);
}

static int
gai_tcp_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_dnstcp *d = lua_touserdata(L, GA_BOX);
    (void)status, (void)ctx;
    d->waiter = NULL;
    if (lasio_io_resumed_(L, lasio_running_loop_(L), GA_BASE)) {
        lasio_dnstcp_release_(d);
        return lua_error(L);
    }
    if (!d->linked) /* the loop let go of it */
        return raise_gaierror(L, "getaddrinfo", EAI_AGAIN,
                              lua_tostring(L, GA_HOST));
    return gai_tcp_step(L, d);
}

/* Starts the TCP lookup for the families of q whose reply was truncated,
 * keeping q's other answers. */
static int
gai_tcp_start(lua_State *L, struct dns_query *q, struct lasio_resolver *r) {
    int tc4 = q->ans.err4 == DNS_ERR_TRUNCATED;
    int tc6 = q->ans.err6 == DNS_ERR_TRUNCATED;
    struct lasio_dnstcp *d = lasio_dnstcp_new_(
        L, q->loop, lua_tostring(L, GA_HOST), tc4, tc6, r->try_timeout);
    lua_replace(L, GA_BOX); /* the query's box goes: q is orphaned below */
    struct lasio_dnsanswer *a = &d->answer;
    if (!tc4) {
        a->err4 = q->ans.err4;
        a->n4 = q->ans.n4;
        memcpy(a->a4, q->ans.a4, sizeof a->a4);
    }
    if (!tc6) {
        a->err6 = q->ans.err6;
        a->n6 = q->ans.n6;
        memcpy(a->a6, q->ans.a6, sizeof a->a6);
    }
    query_orphan(q);
    int n = r->dns ? evdns_base_count_nameservers(r->dns) : 0;
    for (int i = 0; i < n; i++) {
        union lasio_sockaddr sa;
        int len = evdns_base_get_nameserver_addr(r->dns, i, &sa.sa, sizeof sa);
        if (len > 0)
            lasio_dnstcp_add_server_(d, &sa.sa, (socklen_t)len);
    }
    lua_settop(L, GA_BASE);
    return gai_tcp_step(L, d);
}

/* ====== } */

/* The answers are in: the address list, or the error. */
static int
gai_done(lua_State *L, struct dns_query *q) {
    if (!q) /* the resolver let go of it (the loop closes) */
        return raise_gaierror(L, "getaddrinfo", EAI_AGAIN,
                              lua_tostring(L, GA_HOST));
    if (q->ans.err4 == DNS_ERR_TRUNCATED || q->ans.err6 == DNS_ERR_TRUNCATED) {
        struct lasio_resolver *r = q->res;
        if (r)
            return gai_tcp_start(L, q, r);
    }
    struct lasio_dnsanswer a = q->ans;
    query_orphan(q); /* answered: frees it */
    return gai_result(L, &a);
}

static int
family_opt(lua_State *L, int opts, const char *what) {
    static const char *const names[] = {"inet", "inet6", NULL};
    static const int families[] = {AF_INET, AF_INET6};
    int t = lasio_optfield_(L, opts, "family");
    int family = AF_UNSPEC;
    if (t == LUA_TSTRING) {
        int i = 0;
        while (names[i] && strcmp(names[i], lua_tostring(L, -1)) != 0)
            i++;
        if (!names[i])
            luaL_error(L, "%s: family must be \"inet\" or \"inet6\", got '%s'",
                       what, lua_tostring(L, -1));
        family = families[i];
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: family must be a string, got %s", what,
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return family;
}

/* lasio.getaddrinfo(host, port [, {family=, type=, timeout=}]) ->
 * sequence of address tables */
static int
module_getaddrinfo(lua_State *L) {
    const char *what = "getaddrinfo";
    lasio_vclock_refuse_(L, "lasio.getaddrinfo");
    lua_settop(L, GA_OPTS);
    lasio_checkopts_(L, GA_OPTS, what, gai_opts);
    const char *host = checkhost(L, GA_HOST, what);
    int family = family_opt(L, GA_OPTS, what);
    const char *proto = "tcp";
    int dgram = 0;
    if (lasio_optfield_(L, GA_OPTS, "type") != LUA_TNIL) {
        const char *type = lua_tostring(L, -1);
        if (!type || (strcmp(type, "stream") && strcmp(type, "dgram")))
            luaL_error(L, "%s: type must be \"stream\" or \"dgram\"", what);
        if (type[0] == 'd') {
            proto = "udp";
            dgram = 1;
        }
    }
    lua_pop(L, 1);
    int port = checkservice(L, GA_PORT, proto, what);
    push_query_slots(L, GA_OPTS, what);
    lua_pushinteger(L, family);
    lua_pushinteger(L, port);
    lua_pushinteger(L, dgram);
    /* numeric addresses need no resolver */
    unsigned char b[16];
    int numeric = inet_pton(AF_INET, host, b) == 1    ? AF_INET
                  : inet_pton(AF_INET6, host, b) == 1 ? AF_INET6
                                                      : 0;
    if (numeric) {
        lua_newtable(L);
        if (family == AF_UNSPEC || family == numeric)
            add_result(L, lua_gettop(L), numeric, b, port);
        else
            return raise_gaierror(L, what, EAI_FAMILY, host);
        return 1;
    }
    struct lasio_resolver *r = running_resolver(L, what);
    int ridx = lua_gettop(L);
    char name[256];
    lower(name, host, strlen(host));
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        name[n - 1] = '\0';
    lua_newtable(L);
    int lidx = lua_gettop(L);
    lua_getiuservalue(L, ridx, RES_UV_HOSTS);
    if (lua_getfield(L, -1, name) == LUA_TTABLE) {
        lua_Integer k = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= k; i++) {
            lua_rawgeti(L, -1, i);
            add_string(L, lidx, lua_tostring(L, -1), family, port);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        if (lua_rawlen(L, lidx) > 0)
            return 1;
    } else {
        lua_pop(L, 2);
    }
    /* RFC 6761: localhost is the loopback, never asked to the DNS */
    size_t nl = strlen(name);
    if (strcmp(name, "localhost") == 0 ||
        (nl > 10 && strcmp(name + nl - 10, ".localhost") == 0)) {
        if (family != AF_INET6)
            add_string(L, lidx, "127.0.0.1", AF_INET, port);
        if (family != AF_INET)
            add_string(L, lidx, "::1", AF_INET6, port);
        return 1;
    }
    lua_settop(L, ridx);
    if (evdns_base_count_nameservers(r->dns) == 0)
        return raise_gaierror(L, what, EAI_FAIL, "no nameserver");
    struct dns_query *q = start_query(L, r, GA_BASE);
    if (family != AF_INET6 && evdns_base_resolve_ipv4(r->dns, host, 0, cb_a, q))
        q->pending++;
    if (family != AF_INET &&
        evdns_base_resolve_ipv6(r->dns, host, 0, cb_aaaa, q))
        q->pending++;
    if (q->pending == 0) {
        query_orphan(q);
        return raise_gaierror(L, what, EAI_MEMORY, host);
    }
    return lookup_wait(L, q, LOOKUP_FORWARD);
}

/* ====== } */

/* {====== getnameinfo ====== */

static const char *const gni_opts[] = {"numerichost", "numericserv", "namereqd",
                                       "type",        "timeout",     NULL};

/* Returns host, service: the PTR name, or the numeric address unless
 * namereqd. */
static int
gni_done(lua_State *L, struct dns_query *q) {
    if (q && q->ptr) {
        size_t n = strlen(q->ptr);
        lua_pushlstring(L, q->ptr, n > 1 && q->ptr[n - 1] == '.' ? n - 1 : n);
    } else if (lasio_optboolean_(L, GN_OPTS, "namereqd", 0, "getnameinfo")) {
        int err = q ? q->errptr : DNS_ERR_NOTEXIST;
        if (q)
            query_orphan(q);
        return raise_gaierror(L, "getnameinfo",
                              err == DNS_ERR_NOTEXIST || err == DNS_ERR_NODATA
                                  ? EAI_NONAME
                                  : eai_of(err),
                              lua_tostring(L, GN_HOST));
    } else {
        lua_pushvalue(L, GN_HOST);
    }
    if (q)
        query_orphan(q);
    lua_pushvalue(L, GN_SERVICE);
    return 2;
}

/* lasio.getnameinfo(addr [, port] [, opts]) -> host, service. addr is a
 * numeric address or an address table (whose port is used when port is
 * nil). opts: numerichost, numericserv, namereqd, type, timeout. */
static int
module_getnameinfo(lua_State *L) {
    const char *what = "getnameinfo";
    lasio_vclock_refuse_(L, "lasio.getnameinfo");
    char addr[INET6_ADDRSTRLEN];
    int family;
    lua_settop(L, GN_OPTS);
    if (lua_istable(L, GN_ADDR)) {
        if (lua_isnil(L, GN_PORT)) {
            lua_getfield(L, GN_ADDR, "port");
            lua_replace(L, GN_PORT);
        }
        lua_getfield(L, GN_ADDR, "addr");
        lua_replace(L, GN_ADDR);
    }
    if (lua_type(L, GN_ADDR) != LUA_TSTRING)
        return luaL_error(L,
                          "%s: address must be a string or an address "
                          "table, got %s",
                          what, luaL_typename(L, GN_ADDR));
    if (normaddr(lua_tostring(L, GN_ADDR), addr, sizeof addr, &family) != 0)
        return luaL_error(L, "%s: '%s' is not a numeric address", what,
                          lua_tostring(L, GN_ADDR));
    lasio_checkopts_(L, GN_OPTS, what, gni_opts);
    const char *proto = "tcp";
    if (lasio_optfield_(L, GN_OPTS, "type") == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "dgram") == 0)
        proto = "udp";
    lua_pop(L, 1);
    int port = lua_isnil(L, GN_PORT) ? -1 : lasio_checkport_(L, GN_PORT, what);
    push_query_slots(L, GN_OPTS, what);
    lua_pushstring(L, addr);
    /* the service: a name from /etc/services, else the number */
    struct servent se, *res = NULL;
    char buf[1024];
    if (port < 0)
        lua_pushnil(L);
    else if (!lasio_optboolean_(L, GN_OPTS, "numericserv", 0, what) &&
             getservbyport_r(htons((unsigned short)port), proto, &se, buf,
                             sizeof buf, &res) == 0 &&
             res)
        lua_pushstring(L, res->s_name);
    else
        lua_pushfstring(L, "%d", port);
    if (lasio_optboolean_(L, GN_OPTS, "numerichost", 0, what)) {
        lua_pushvalue(L, GN_HOST);
        lua_pushvalue(L, GN_SERVICE);
        return 2;
    }
    struct lasio_resolver *r = running_resolver(L, what);
    lua_getiuservalue(L, -1, RES_UV_RHOSTS);
    if (lua_getfield(L, -1, addr) == LUA_TSTRING) {
        lua_pushvalue(L, GN_SERVICE);
        return 2;
    }
    lua_settop(L, GN_BASE + 1); /* keeps the resolver on the stack */
    if (evdns_base_count_nameservers(r->dns) == 0)
        return gni_done(L, NULL);
    struct dns_query *q = start_query(L, r, GN_BASE);
    unsigned char b[16];
    inet_pton(family, addr, b);
    struct evdns_request *req =
        family == AF_INET
            ? evdns_base_resolve_reverse(r->dns, (struct in_addr *)b, 0, cb_ptr,
                                         q)
            : evdns_base_resolve_reverse_ipv6(r->dns, (struct in6_addr *)b, 0,
                                              cb_ptr, q);
    if (!req) {
        query_orphan(q);
        return raise_gaierror(L, what, EAI_MEMORY, addr);
    }
    q->pending++;
    return lookup_wait(L, q, LOOKUP_REVERSE);
}

/* ====== } */

/* {====== dns_configure ====== */

static const char *const cfg_opts[] = {
    "nameservers", "timeout",        "attempts",     "search", "ndots",
    "hosts",       "randomize_case", "max_inflight", NULL};

/* Reads an optional sequence of strings option; leaves it on the stack
 * (nil when absent) and returns whether it is there. */
static int
strings_opt(lua_State *L, const char *key, const char *what) {
    if (lasio_optfield_(L, 1, key) == LUA_TNIL)
        return 0;
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: '%s' must be a table of strings", what, key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
            luaL_error(L, "%s: '%s' must be a table of strings", what, key);
        lua_pop(L, 1);
    }
    return 1;
}

/* lasio.dns_configure{nameservers=, timeout=, attempts=, search=, ndots=,
 * hosts=, randomize_case=, max_inflight=}: replaces the running loop's
 * resolver settings. Queries in flight fail with EAI_AGAIN. */
static int
module_dns_configure(lua_State *L) {
    const char *what = "dns_configure";
    char val[64];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lasio_checkopts_(L, 1, what, cfg_opts);
    struct lasio_loop *loop = lasio_io_running_loop_(L, what);
    /* check everything before anything changes */
    int has_ns = strings_opt(L, "nameservers", what); /* 2 */
    int has_search = strings_opt(L, "search", what);  /* 3 */
    double timeout = -1;
    if (lasio_optfield_(L, 1, "timeout") != LUA_TNIL) {
        timeout = luaL_checknumber(L, -1);
        if (!(timeout > 0 && timeout < 1e6))
            luaL_error(L, "%s: timeout must be a number > 0", what);
    }
    lua_pop(L, 1);
    lua_Integer attempts = lasio_optinteger_(L, 1, "attempts", 0, 1, what);
    lua_Integer ndots = lasio_optinteger_(L, 1, "ndots", -1, 0, what);
    lua_Integer inflight = lasio_optinteger_(L, 1, "max_inflight", 0, 1, what);
    int randcase = lasio_optboolean_(L, 1, "randomize_case", 1, what);
    const char *hosts = HOSTS_PATH;
    int t = lasio_optfield_(L, 1, "hosts"); /* 4 */
    if (t == LUA_TBOOLEAN)
        hosts = lua_toboolean(L, -1) ? HOSTS_PATH : NULL;
    else if (t == LUA_TSTRING)
        hosts = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: hosts must be a boolean or a file name", what);
    struct lasio_resolver *r = push_resolver(L, loop, 0); /* 5 */
    load_hosts(L, 5, hosts);
    /* from here on, no Lua allocation until the new base is stored */
    struct evdns_base *dns = new_base(loop, 0);
    if (!dns)
        return luaL_error(L, "%s: cannot create the DNS resolver", what);
    int flags = DNS_OPTION_MISC | (has_ns ? 0 : DNS_OPTION_NAMESERVERS) |
                (has_search ? 0 : DNS_OPTION_SEARCH);
    evdns_base_resolv_conf_parse(dns, flags, RESOLV_PATH);
    const char *bad = NULL;
    if (has_ns) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
        for (lua_Integer i = 1; i <= n && !bad; i++) {
            lua_rawgeti(L, 2, i);
            if (evdns_base_nameserver_ip_add(dns, lua_tostring(L, -1)) != 0)
                bad = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    if (bad) {
        evdns_base_free(dns, 0);
        return luaL_error(L, "%s: bad nameserver '%s'", what, bad);
    }
    if (has_search) {
        evdns_base_search_clear(dns);
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i);
            evdns_base_search_add(dns, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    if (timeout > 0) {
        snprintf(val, sizeof val, "%g", timeout);
        evdns_base_set_option(dns, "timeout:", val);
    }
    if (attempts > 0) {
        snprintf(val, sizeof val, "%d", (int)attempts);
        evdns_base_set_option(dns, "attempts:", val);
    }
    if (ndots >= 0)
        evdns_base_search_ndots_set(dns, (int)ndots);
    if (inflight > 0) {
        snprintf(val, sizeof val, "%d", (int)inflight);
        evdns_base_set_option(dns, "max-inflight:", val);
    }
    evdns_base_set_option(dns, "randomize-case:", randcase ? "1" : "0");
    struct evdns_base *old = r->dns;
    r->dns = dns;
    r->try_timeout = timeout > 0 ? timeout : EVDNS_TIMEOUT;
    if (old) /* its queries fail through their callbacks */
        evdns_base_free(old, 1);
    return 0;
}

/* ====== } */

static const luaL_Reg dns_funcs[] = {{"getaddrinfo", module_getaddrinfo},
                                     {"getnameinfo", module_getnameinfo},
                                     {"dns_configure", module_dns_configure},
                                     {NULL, NULL}};

void
lasio_dns_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_RESOLVER_MT)) {
        lua_pushcfunction(L, resolver_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LASIO_QBOX_MT)) {
        lua_pushcfunction(L, qbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, dns_funcs, 0);
}

/* {====== For the other network calls ====== */

int
lasio_push_resolve_(lua_State *L, int hostidx, int port, int family, int dgram,
                    double deadline) {
    hostidx = lua_absindex(L, hostidx);
    lua_pushcfunction(L, module_getaddrinfo);
    lua_pushvalue(L, hostidx);
    lua_pushinteger(L, port);
    lua_createtable(L, 0, 3);
    if (family != AF_UNSPEC) {
        lua_pushstring(L, family == AF_INET ? "inet" : "inet6");
        lua_setfield(L, -2, "family");
    }
    lua_pushstring(L, dgram ? "dgram" : "stream");
    lua_setfield(L, -2, "type");
    if (deadline > 0) {
        double left = deadline - lasio_time_();
        lua_pushnumber(L, left > 0 ? left : 0);
        lua_setfield(L, -2, "timeout");
    }
    return 3;
}

int
lasio_addrlist_get_(lua_State *L, int idx, lua_Integer i,
                    union lasio_sockaddr *sa, socklen_t *len) {
    int ok = -1;
    if (lua_rawgeti(L, idx, i) == LUA_TTABLE) {
        lua_getfield(L, -1, "addr");
        lua_getfield(L, -2, "port");
        if (lua_type(L, -2) == LUA_TSTRING)
            ok =
                lasio_parseaddr_(lua_tostring(L, -2), (int)lua_tointeger(L, -1),
                                 AF_UNSPEC, sa, len);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return ok;
}

/* ====== } */
