/*
 * tls.c: TLS with OpenSSL (docs/API.md, TLS): ssl_context, the ssl option
 * of streams and servers, start_tls; verification on by default. OpenSSL
 * is loaded (tls_dl.c) and initialises on the first context. A TLS stream
 * has the TLS transport, which wraps the stream's previous one (the
 * socket's): its state (tpdata) owns the SSL and a BIO method of its own
 * that serves bytes read before TLS started, then the wrapped transport.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "net/tls_dl.h" /* OpenSSL, loaded by the first context */

static const char default_ctx_key = 0; /* registry: the default client ctx */

/* {====== Contexts ====== */

struct lasio_sslctx {
    SSL_CTX *ctx;
    int server, verify;
    unsigned char *alpn; /* wire format (length-prefixed names), malloc */
    unsigned alpnlen;
};

static struct lasio_sslctx *
toctx(lua_State *L, int idx) {
    return luaL_testudata(L, idx, LASIO_SSLCTX_MT);
}

static int
ctx_gc(lua_State *L) {
    struct lasio_sslctx *c = lua_touserdata(L, 1);
    if (c->ctx)
        SSL_CTX_free(c->ctx); /* SSL objects keep their own reference */
    c->ctx = NULL;
    free(c->alpn);
    c->alpn = NULL;
    return 0;
}

/* The last OpenSSL error as text, or dflt. */
static const char *
ssl_errstr(char *buf, size_t len, const char *dflt) {
    unsigned long e = ERR_peek_last_error();
    if (!e) {
        snprintf(buf, len, "%s", dflt);
        return buf;
    }
    const char *reason = ERR_reason_error_string(e);
    snprintf(buf, len, "%s", reason ? reason : dflt);
    ERR_clear_error();
    return buf;
}

/* Server side of ALPN: the first of our protocols the client offers. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned inlen, void *arg) {
    struct lasio_sslctx *c = arg;
    unsigned char *o;
    (void)ssl;
    if (!c->alpn || SSL_select_next_proto(&o, outlen, c->alpn, c->alpnlen, in,
                                          inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static const char *const ctx_opts[] = {
    "server",  "verify", "cafile",  "capath",      "certfile",
    "keyfile", "alpn",   "ciphers", "min_version", NULL};

/* Reads a string option, or NULL. */
static const char *
optstring(lua_State *L, const char *key) {
    int t = lasio_optfield_(L, 1, key);
    const char *s = NULL;
    if (t == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "ssl_context: option '%s' must be a string, got %s", key,
                   luaL_typename(L, -1));
    lua_pop(L, 1); /* the opts table keeps the string alive */
    return s;
}

/* lasio.ssl_context([{server=, verify=, cafile=, capath=, certfile=,
 * keyfile=, alpn=, ciphers=, min_version=}]) -> SSLContext */
static int
module_ssl_context(lua_State *L) {
    const char *what = "ssl_context";
    lasio_vclock_refuse_(L, "lasio.ssl_context");
    char err[256];
    lua_settop(L, 1);
    lasio_checkopts_(L, 1, what, ctx_opts);
    int server = lasio_optboolean_(L, 1, "server", 0, what);
    int verify = lasio_optboolean_(L, 1, "verify", !server, what);
    const char *cafile = optstring(L, "cafile");
    const char *capath = optstring(L, "capath");
    const char *certfile = optstring(L, "certfile");
    const char *keyfile = optstring(L, "keyfile");
    const char *ciphers = optstring(L, "ciphers");
    const char *minv = optstring(L, "min_version");
    int minproto = TLS1_2_VERSION;
    if (minv && strcmp(minv, "TLSv1.2") == 0)
        minproto = TLS1_2_VERSION;
    else if (minv && strcmp(minv, "TLSv1.3") == 0)
        minproto = TLS1_3_VERSION;
    else if (minv)
        return luaL_error(L,
                          "%s: min_version must be \"TLSv1.2\" or "
                          "\"TLSv1.3\"",
                          what);
    if (server && !certfile)
        return luaL_error(L, "%s: a server context needs a certfile", what);
    /* ALPN list in wire format, built on the Lua stack first */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (lasio_optfield_(L, 1, "alpn") != LUA_TNIL) {
        int list = lua_gettop(L);
        if (!lua_istable(L, list))
            return luaL_error(L, "%s: alpn must be a table of strings", what);
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, list); i++) {
            size_t n;
            if (lua_rawgeti(L, list, i) != LUA_TSTRING ||
                (lua_tolstring(L, -1, &n), n == 0 || n > 255))
                return luaL_error(L,
                                  "%s: alpn entries must be strings of 1 "
                                  "to 255 bytes",
                                  what);
            luaL_addchar(&b, (char)n);
            lua_pop(L, 1);
            lua_rawgeti(L, list, i);
            luaL_addvalue(&b);
        }
    }
    luaL_pushresult(&b);
    int alpnidx = lua_gettop(L);
    const char *unavailable = lasio_tls_load_();
    if (unavailable)
        return luaL_error(L, "%s: %s", what, unavailable);
    /* the userdata first, then OpenSSL's objects */
    struct lasio_sslctx *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, LASIO_SSLCTX_MT);
    c->server = server;
    c->verify = verify;
    size_t alen = lua_rawlen(L, alpnidx);
    if (alen > 0) {
        c->alpn = malloc(alen);
        if (!c->alpn)
            return luaL_error(L, "not enough memory");
        memcpy(c->alpn, lua_tostring(L, alpnidx), alen);
        c->alpnlen = (unsigned)alen;
    }
    c->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c->ctx)
        return luaL_error(L, "%s: %s", what,
                          ssl_errstr(err, sizeof err, "cannot create"));
    SSL_CTX_set_min_proto_version(c->ctx, minproto);
    SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(c->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
    if (verify || cafile || capath) {
        int ok = cafile || capath
                     ? SSL_CTX_load_verify_locations(c->ctx, cafile, capath)
                     : SSL_CTX_set_default_verify_paths(c->ctx);
        if (!ok)
            return luaL_error(L, "%s: cannot load the CA certificates%s%s: %s",
                              what, cafile ? " from " : "",
                              cafile ? cafile : "",
                              ssl_errstr(err, sizeof err, "failed"));
    }
    if (certfile && SSL_CTX_use_certificate_chain_file(c->ctx, certfile) != 1)
        return luaL_error(L, "%s: cannot load certfile %s: %s", what, certfile,
                          ssl_errstr(err, sizeof err, "failed"));
    if ((keyfile || certfile) &&
        SSL_CTX_use_PrivateKey_file(c->ctx, keyfile ? keyfile : certfile,
                                    SSL_FILETYPE_PEM) != 1)
        return luaL_error(L, "%s: cannot load keyfile %s: %s", what,
                          keyfile ? keyfile : certfile,
                          ssl_errstr(err, sizeof err, "failed"));
    if (certfile && SSL_CTX_check_private_key(c->ctx) != 1)
        return luaL_error(L, "%s: the key does not match the certificate",
                          what);
    if (ciphers && SSL_CTX_set_cipher_list(c->ctx, ciphers) != 1)
        return luaL_error(L, "%s: bad cipher list '%s'", what, ciphers);
    if (c->alpn) {
        if (server)
            SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
        else if (SSL_CTX_set_alpn_protos(c->ctx, c->alpn, c->alpnlen) != 0)
            return luaL_error(L, "not enough memory");
    }
    return 1;
}

/* Pushes the default client context, made on first use. [-0, +1, m] */
static void
push_default_ctx(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &default_ctx_key) == LUA_TUSERDATA)
        return;
    lua_pop(L, 1);
    lua_pushcfunction(L, module_ssl_context);
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &default_ctx_key);
}

void
lasio_tls_checkctx_(lua_State *L, int idx, const char *what) {
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, idx)) {
        push_default_ctx(L);
        lua_replace(L, idx);
    } else if (!toctx(L, idx)) {
        luaL_error(L, "%s: option 'ssl' must be true or an SSLContext, got %s",
                   what, luaL_typename(L, idx));
    }
}

int
lasio_tls_is_server_(lua_State *L, int idx) {
    struct lasio_sslctx *c = toctx(L, idx);
    return c && c->server;
}

static int
ctx_tostring(lua_State *L) {
    struct lasio_sslctx *c = luaL_checkudata(L, 1, LASIO_SSLCTX_MT);
    lua_pushfstring(L, "lasio.SSLContext<%s verify=%s>",
                    c->server ? "server" : "client",
                    c->verify ? "true" : "false");
    return 1;
}

/* ====== } */

/* {====== TLS on a stream ====== */

/*
 * Invariant: while the stream's transport is tls_transport, tpdata is
 * its lasio_tls; ssl reads and writes through bio (method meth, owned)
 * with the wrapped transport `inner`, serving prefix[poff .. plen) first;
 * hs is set until the handshake succeeded, and want_read / want_write
 * then say what it waits for; after it, rwantw marks an SSL_read that
 * needs writability and wwantr an SSL_write that needs readability.
 */
struct lasio_tls {
    SSL *ssl;
    BIO_METHOD *meth;
    struct lasio_stream *s;
    const struct lasio_transport *inner;
    char *prefix;
    size_t plen, poff;
    unsigned char hs, want_read, want_write, rwantw, wwantr, shut;
    char err[200];
};

static int
bio_write(BIO *b, const char *data, int len) {
    struct lasio_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    long n = t->inner->write(t->s, data, (size_t)len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        return -1;
    }
    return (int)n;
}

static int
bio_read(BIO *b, char *data, int len) {
    struct lasio_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->poff < t->plen) { /* bytes read before TLS started */
        size_t n = t->plen - t->poff;
        if (n > (size_t)len)
            n = (size_t)len;
        memcpy(data, t->prefix + t->poff, n);
        t->poff += n;
        return (int)n;
    }
    long n = t->inner->read(t->s, data, (size_t)len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static int
bio_destroy(BIO *b) {
    (void)b;
    return 1;
}

static const struct lasio_transport tls_transport;

/* The TLS state of the stream, or NULL when it is not a TLS stream. */
static struct lasio_tls *
tlsof(struct lasio_stream *s) {
    return s->tp == &tls_transport ? s->tpdata : NULL;
}

/* Frees the TLS state and gives the stream its wrapped transport back.
 * Runs no Lua code. */
static void
tls_free(struct lasio_stream *s) {
    struct lasio_tls *t = tlsof(s);
    if (!t)
        return;
    s->tp = t->inner;
    s->tpdata = NULL;
    if (t->ssl)
        SSL_free(t->ssl); /* and the BIO */
    if (t->meth)
        BIO_meth_free(t->meth);
    free(t->prefix);
    free(t);
}

/* The transport's release: close_notify (best effort, never waits),
 * then the wrapped transport's own release. */
static void
tls_release(struct lasio_stream *s) {
    struct lasio_tls *t = s->tpdata;
    if (!t->hs && !t->shut && s->fd >= 0) {
        t->shut = 1;
        ERR_clear_error();
        SSL_shutdown(t->ssl); /* close_notify, if the socket takes it now */
        ERR_clear_error();
    }
    tls_free(s);
    if (s->tp->release)
        s->tp->release(s);
}

/* Is s a numeric IP address? */
static int
is_ip(const char *s) {
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

void
lasio_tls_attach_(lua_State *L, int streamidx, int ctxidx, const char *hostname,
                  int server) {
    char err[200];
    streamidx = lua_absindex(L, streamidx);
    struct lasio_stream *s = lua_touserdata(L, streamidx);
    struct lasio_sslctx *c = toctx(L, ctxidx);
    if (tlsof(s))
        luaL_error(L, "start_tls: the stream already uses TLS");
    /* remember the context (get_extra_info, and it outlives the stream's
     * handshakes) before anything is acquired */
    if (lua_getiuservalue(L, streamidx, STREAM_UV_EXTRA) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, streamidx, STREAM_UV_EXTRA);
    }
    lua_pushvalue(L, ctxidx);
    lua_setfield(L, -2, "sslcontext");
    if (hostname && *hostname) {
        lua_pushstring(L, hostname);
        lua_setfield(L, -2, "server_hostname");
    }
    lua_pop(L, 1);
    struct lasio_tls *t = calloc(1, sizeof *t);
    if (!t)
        luaL_error(L, "not enough memory");
    t->s = s;
    t->hs = 1;
    t->inner = s->tp;
    /* owned by the stream from here: released with it */
    s->tp = &tls_transport;
    s->tpdata = t;
    if (s->in.len > 0) { /* the peer's first TLS bytes may be there */
        t->prefix = malloc(s->in.len);
        if (!t->prefix) {
            tls_free(s);
            luaL_error(L, "not enough memory");
        }
        memcpy(t->prefix, s->in.data + s->in.off, s->in.len);
        t->plen = s->in.len;
        lasio_buf_consume_(&s->in, s->in.len);
    }
    /* a BIO method per stream: nothing global, and it lives exactly as
     * long as the SSL that uses it */
    t->meth = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "lasio stream");
    int ok = t->meth && BIO_meth_set_write(t->meth, bio_write) &&
             BIO_meth_set_read(t->meth, bio_read) &&
             BIO_meth_set_ctrl(t->meth, bio_ctrl) &&
             BIO_meth_set_create(t->meth, bio_create) &&
             BIO_meth_set_destroy(t->meth, bio_destroy);
    t->ssl = ok && c && c->ctx ? SSL_new(c->ctx) : NULL;
    BIO *bio = t->ssl ? BIO_new(t->meth) : NULL;
    if (!bio) {
        if (bio)
            BIO_free(bio);
        tls_free(s);
        luaL_error(L, "TLS: %s", ssl_errstr(err, sizeof err, "cannot start"));
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (hostname && *hostname && is_ip(hostname)) {
            ok =
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), hostname);
        } else if (hostname && *hostname) {
            ok = SSL_set_tlsext_host_name(t->ssl, hostname) &&
                 SSL_set1_host(t->ssl, hostname);
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        if (!ok) {
            tls_free(s);
            luaL_error(L, "TLS: bad server_hostname '%s'", hostname);
        }
    }
    /* no read or write event until the handshake asks for one */
    lasio_stream_update_reading_(s);
    lasio_stream_update_writing_(s);
}

int
lasio_tls_handshaking_(struct lasio_stream *s) {
    struct lasio_tls *t = tlsof(s);
    return t && t->hs;
}

/* The transport's state: what the handshake waits for; after it, which
 * SSL call waits for the other readiness, and decrypted bytes (or bytes
 * read before TLS started) that no readiness of the fd will announce. */
static unsigned
tls_state(struct lasio_stream *s) {
    struct lasio_tls *t = s->tpdata;
    if (t->hs)
        return LASIO_TP_HANDSHAKE | (t->want_read ? LASIO_TP_WANT_READ : 0) |
               (t->want_write ? LASIO_TP_WANT_WRITE : 0);
    unsigned st = 0;
    if (t->rwantw)
        st |= LASIO_TP_READ_WAITS;
    if (t->wwantr)
        st |= LASIO_TP_WRITE_WAITS;
    if (SSL_pending(t->ssl) > 0 || t->poff < t->plen)
        st |= LASIO_TP_PENDING;
    return st;
}

static const char *
tls_error(struct lasio_stream *s) {
    struct lasio_tls *t = s->tpdata;
    return t->err[0] ? t->err : NULL;
}

/* Records the failure of an SSL call; returns errno's value for it. */
static int
failed(struct lasio_tls *t, int sslerr) {
    if (sslerr == SSL_ERROR_SYSCALL) {
        int e = errno ? errno : ECONNRESET;
        snprintf(t->err, sizeof t->err, "%s",
                 errno ? strerror(errno) : "unexpected EOF");
        ERR_clear_error();
        return e;
    }
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK)
        snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    else
        ssl_errstr(t->err, sizeof t->err, "TLS error");
    ERR_clear_error();
    return EPROTO;
}

static long
tls_read(struct lasio_stream *s, char *p, size_t n) {
    struct lasio_tls *t = s->tpdata;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0) {
        t->rwantw = 0;
        return r;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        t->rwantw = 1;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0; /* EOF without close_notify: a ragged EOF */
        errno = failed(t, SSL_ERROR_SYSCALL);
        return -1;
    default:
        errno = failed(t, SSL_ERROR_SSL);
        return -1;
    }
}

static long
tls_write(struct lasio_stream *s, const char *p, size_t n) {
    struct lasio_tls *t = s->tpdata;
    if (t->hs) { /* not before the handshake: the data waits */
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0) {
        t->wwantr = 0;
        return r;
    }
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_READ:
        t->wwantr = 1;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        errno = failed(t, SSL_ERROR_SYSCALL);
        return -1;
    default:
        errno = failed(t, SSL_ERROR_SSL);
        return -1;
    }
}

/* One handshake step: 1 done, 0 waiting, -1 failed (t->err set). */
static int
hs_step(struct lasio_tls *t) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->hs = 0;
        t->want_read = t->want_write = 0;
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t->want_read = e == SSL_ERROR_WANT_READ;
        t->want_write = e == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL && errno == 0)
        snprintf(t->err, sizeof t->err, "%s",
                 "the peer closed the connection during the handshake");
    else
        failed(t, e);
    ERR_clear_error();
    return -1;
}

/* The handshake function: 1 the stream, 2 the deadline. */
static int hs_run(lua_State *L);

static int
hs_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_stream *s = lua_touserdata(L, 1);
    (void)status, (void)ctx;
    s->reader = NULL;
    if (lasio_io_resumed_(L, s->loop, 2))
        return lua_error(L);
    return hs_run(L);
}

static int
hs_run(lua_State *L) {
    struct lasio_stream *s = lua_touserdata(L, 1);
    double deadline = lua_tonumber(L, 2);
    struct lasio_tls *t = tlsof(s);
    lua_settop(L, 2);
    if (!t || s->fd < 0)
        return luaL_error(L, "handshake: the stream is closed");
    int r = hs_step(t);
    lasio_stream_update_reading_(s);
    lasio_stream_update_writing_(s);
    if (r == 1)
        return 0;
    if (r < 0) {
        int code = strncmp(t->err, "certificate verify failed", 25) == 0;
        lasio_oserror_pushmsg_(L, "handshake", EPROTO, t->err);
        lua_pushstring(L, code ? "SSL_CERTIFICATE_VERIFY_FAILED" : "SSL_ERROR");
        lua_setfield(L, -2, "code");
        return lua_error(L);
    }
    if (deadline > 0 && lasio_time_() >= deadline)
        return lasio_raise_(L, ERR_TIMEOUT, "handshake: timed out");
    struct lasio_loop *loop;
    struct lasio_task *task = lasio_check_await_(L, &loop, "handshake");
    lasio_io_wait_(L, task, 2, deadline);
    s->reader = task;
    return lasio_io_yield_(L, 0, hs_k);
}

int
lasio_tls_push_handshake_(lua_State *L, int streamidx, double deadline) {
    streamidx = lua_absindex(L, streamidx);
    lua_pushcfunction(L, hs_run);
    lua_pushvalue(L, streamidx);
    lua_pushnumber(L, deadline);
    return 2;
}

/* ====== } */

/* {====== get_extra_info, start_tls ====== */

/* Pushes the peer certificate as {subject=, issuer=, serial=, notBefore=,
 * notAfter=, subjectAltName = {"DNS:x", "IP Address:1.2.3.4", ...}}, or
 * nil. */
static void
push_peercert(lua_State *L, SSL *ssl) {
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) {
        lua_pushnil(L);
        return;
    }
    char buf[512];
    lua_createtable(L, 0, 6);
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "subject");
    X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "issuer");
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem) {
        const char *fields[] = {"notBefore", "notAfter"};
        const ASN1_TIME *times[] = {X509_get0_notBefore(cert),
                                    X509_get0_notAfter(cert)};
        for (int i = 0; i < 2; i++) {
            char *p;
            (void)BIO_reset(mem);
            if (ASN1_TIME_print(mem, times[i])) {
                long n = BIO_get_mem_data(mem, &p);
                lua_pushlstring(L, p, (size_t)n);
                lua_setfield(L, -2, fields[i]);
            }
        }
        BIO_free(mem);
    }
    GENERAL_NAMES *names =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    lua_newtable(L);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            lua_pushfstring(L, "DNS:%s",
                            (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int len = ASN1_STRING_length(g->d.iPAddress);
            char a[INET6_ADDRSTRLEN] = "?";
            inet_ntop(len == 16 ? AF_INET6 : AF_INET,
                      ASN1_STRING_get0_data(g->d.iPAddress), a, sizeof a);
            lua_pushfstring(L, "IP Address:%s", a);
        } else {
            continue;
        }
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
    GENERAL_NAMES_free(names);
    lua_setfield(L, -2, "subjectAltName");
    X509_free(cert);
}

/* The transport's get_extra_info: the wrapped transport's names
 * ("peername" ...), then, after the handshake, "peercert", "cipher",
 * "alpn_protocol", "ssl_object". ("sslcontext" and "server_hostname" are
 * recorded in STREAM_UV_EXTRA by lasio_tls_attach_.) */
static int
tls_extra_info(lua_State *L, int streamidx, const char *name) {
    struct lasio_stream *s = lua_touserdata(L, streamidx);
    struct lasio_tls *t = s->tpdata;
    if (t->inner->extra_info && t->inner->extra_info(L, streamidx, name))
        return 1;
    if (t->hs)
        return 0;
    if (strcmp(name, "peercert") == 0) {
        push_peercert(L, t->ssl);
        return 1;
    }
    if (strcmp(name, "cipher") == 0) {
        const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
        lua_createtable(L, 3, 0);
        lua_pushstring(L, SSL_CIPHER_get_name(c));
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, SSL_get_version(t->ssl));
        lua_rawseti(L, -2, 2);
        lua_pushinteger(L, SSL_CIPHER_get_bits(c, NULL));
        lua_rawseti(L, -2, 3);
        return 1;
    }
    if (strcmp(name, "alpn_protocol") == 0) {
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (n == 0)
            return 0;
        lua_pushlstring(L, (const char *)p, n);
        return 1;
    }
    if (strcmp(name, "ssl_object") == 0) {
        const unsigned char *p;
        unsigned n;
        lua_createtable(L, 0, 6);
        lua_pushstring(L, SSL_get_version(t->ssl));
        lua_setfield(L, -2, "version");
        lua_pushstring(L, SSL_get_cipher_name(t->ssl));
        lua_setfield(L, -2, "cipher");
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (n > 0) {
            lua_pushlstring(L, (const char *)p, n);
            lua_setfield(L, -2, "alpn_protocol");
        }
        lua_pushboolean(L, SSL_is_server(t->ssl));
        lua_setfield(L, -2, "server_side");
        const char *sni = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
        if (sni) {
            lua_pushstring(L, sni);
            lua_setfield(L, -2, "server_hostname");
        }
        push_peercert(L, t->ssl);
        lua_setfield(L, -2, "peercert");
        return 1;
    }
    return 0;
}

static const struct lasio_transport tls_transport = {
    .name = "TLS",
    .read = tls_read,
    .write = tls_write,
    .state = tls_state,
    .release = tls_release,
    .error = tls_error,
    .extra_info = tls_extra_info,
    /* close_notify ends both directions: no half close */
    .eof = LASIO_TP_EOF_NONE,
};

/* writer:start_tls(ctx [, {server_hostname=, timeout=}]): 1 writer, 2
 * ctx, 3 opts, 4 stream, 5 deadline. Waits until the output buffer is
 * empty, then upgrades the stream and awaits the handshake. */
static int start_tls_step(lua_State *L);

static int
start_tls_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_stream *s = lua_touserdata(L, 4);
    (void)status;
    if (ctx == 1) /* the handshake is done */
        return 0;
    lasio_stream_del_ww_(s, lasio_running_loop_(L)->current);
    if (lasio_io_resumed_(L, s->loop, 5))
        return lua_error(L);
    return start_tls_step(L);
}

static int
start_tls_step(lua_State *L) {
    struct lasio_stream *s = lua_touserdata(L, 4);
    double deadline = lua_tonumber(L, 5);
    if (s->closing || s->released || s->fd < 0) {
        lasio_oserror_pushmsg_(L, "start_tls", EBADF, "the stream is closed");
        return lua_error(L);
    }
    if (s->werr)
        return lasio_oserror_raise_(L, "start_tls", s->werr);
    if (deadline > 0 && lasio_time_() >= deadline)
        return lasio_raise_(L, ERR_TIMEOUT, "start_tls: timed out");
    if (s->out.len > 0) { /* the plaintext goes out first */
        struct lasio_loop *loop;
        struct lasio_task *t = lasio_check_await_(L, &loop, "start_tls");
        lasio_stream_reserve_ww_(L, s);
        lasio_io_wait_(L, t, 5, deadline);
        lasio_stream_add_ww_(s, t);
        return lasio_io_yield_(L, 0, start_tls_k);
    }
    const char *host = NULL;
    if (lasio_optfield_(L, 3, "server_hostname") == LUA_TSTRING)
        host = lua_tostring(L, -1);
    lua_pop(L, 1);
    lasio_tls_attach_(L, 4, 2, host, lasio_tls_is_server_(L, 2));
    int n = lasio_tls_push_handshake_(L, 4, deadline);
    lua_callk(L, n, 0, 1, start_tls_k);
    return 0;
}

static const char *const start_tls_opts[] = {"server_hostname", "timeout",
                                             "ssl_handshake_timeout", NULL};

static int
writer_start_tls(lua_State *L) {
    lasio_vclock_refuse_(L, "StreamWriter:start_tls");
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    lua_settop(L, 3);
    lasio_tls_checkctx_(L, 2, "start_tls");
    lasio_checkopts_(L, 3, "start_tls", start_tls_opts);
    if (tlsof(s))
        return luaL_error(L, "start_tls: the stream already uses TLS");
    if (s->reader)
        return luaL_error(L, "start_tls: a task is reading the stream");
    lasio_optfield_(L, 3, "timeout");
    double timeout = lasio_io_checktimeout_(L, -1, "start_tls");
    lua_pop(L, 1);
    lua_getiuservalue(L, 1, 1); /* 4: the stream */
    lua_pushnumber(L, lasio_io_deadline_(timeout < 0 ? 60 : timeout));
    return start_tls_step(L);
}

/* ====== } */

static const luaL_Reg tls_funcs[] = {{"ssl_context", module_ssl_context},
                                     {NULL, NULL}};

void
lasio_tls_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_SSLCTX_MT)) {
        lua_pushcfunction(L, ctx_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, ctx_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    /* writer:start_tls joins the writer's methods (writer.c made them) */
    luaL_getmetatable(L, LASIO_WRITER_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, writer_start_tls);
    lua_setfield(L, -2, "start_tls");
    lua_pop(L, 2);
    luaL_setfuncs(L, tls_funcs, 0);
}
