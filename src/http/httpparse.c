/*
 * httpparse.c: HTTP/1.1 message parsing on llhttp (docs/API.md,
 * HTTP/1.1). A parser reads one message at a time straight from a
 * stream's input buffer, as the stream's one reader:
 *   read_head() returns the request or status line and the headers as a
 *     table once the head is complete (llhttp pauses there, so nothing of
 *     the body is consumed before the caller has looked at the head); with
 *     the option `requests` (the server's), a request object (httpreq.c)
 *     and flags instead;
 *   read_body() returns the body bytes that arrived, and nil at the end
 *     of the message (llhttp pauses there too, so a pipelined message
 *     stays in the stream's buffer for the next read_head()).
 * llhttp runs in strict mode (no lenient flags). The limits of
 * docs/RELIABILITY.md, Default limits (request line, header line, total head,
 * header count, body) are checked in the callbacks as the bytes arrive, so an
 * oversized head is refused before it is buffered whole. Failures raise
 * lasio.HTTPError with `status` (the answer a server gives: 400, 408,
 * 413, 414, 431), `code` (llhttp's error name or LIMIT/TIMEOUT/EOF) and
 * `silent` (true when the bytes were not HTTP at all: H1 says close
 * without an answer).
 * SPDX-License-Identifier: MIT
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "http/http.h"

#define PARSER_MT "lasio.HttpParser"

/* Stack of the waiting operations: 1 parser, 2 reader, 3 and 4 the
 * timeouts or flags of the operation. */
#define BASE 4

enum pstate {
    PS_IDLE,    /* between messages */
    PS_BODY,    /* head returned, body not finished */
    PS_DONE,    /* message complete; llhttp paused at its end */
    PS_UPGRADE, /* the connection left HTTP (upgrade or CONNECT) */
    PS_FAILED   /* an error was raised: the connection must close */
};

/* A header's name and value as offsets into `text`. */
#define hdr lasio_http_hdr

struct httpparser {
    llhttp_t ll; /* first: the callbacks cast back from it */
    enum pstate state;
    /* limits (0: none) */
    size_t max_line, max_field, max_head, max_headers;
    lua_Integer max_body;      /* < 0: none */
    lua_Integer dflt_max_body; /* requests: each starts with this limit */
    /* the head being parsed: target (or reason phrase), then the header
     * names and values */
    struct lasio_buf text;
    size_t linelen; /* bytes of the target or reason in text */
    struct hdr *hdrs;
    size_t nhdrs, caphdrs;
    size_t headbytes;
    int in_value;     /* the last header span was a value */
    int line_done;    /* the target (or reason) is complete */
    int hdr_open;     /* the last header is not complete yet */
    int recount;      /* paused so that head_budget() is taken anew */
    int head_done;    /* on_headers_complete ran for this message */
    int started;      /* on_message_begin ran for this message */
    int complete;     /* on_message_complete ran for this message */
    int skip_body;    /* a response to HEAD: no body whatever it says */
    int raw;          /* heads carry raw_headers too */
    int requests;     /* heads are request objects (httpreq.c) */
    int limit_status; /* set by a callback that refused a limit */
    const char *limit_msg;
    /* body bytes parsed by the last execute, not yet returned */
    struct lasio_buf body;
    lua_Integer bodyseen;
    double head_deadline; /* once the first byte came: 0 for none */
    double head_timeout;  /* seconds, < 0: none */
};

/* The parser metatable's type token (errors.c: a check without a
 * registry lookup by name, on every call of the request path). */
static const char parser_token = 0;

static struct httpparser *
checkparser(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &parser_token, PARSER_MT);
}

/* {====== llhttp callbacks ====== */

static int
refuse(struct httpparser *p, int status, const char *msg) {
    p->limit_status = status;
    p->limit_msg = msg;
    return -1; /* llhttp: HPE_USER */
}

static int
append(struct httpparser *p, const char *at, size_t len) {
    if (len == 0) /* llhttp gives empty spans (an empty reason phrase or
                     header name): nothing to copy, text may have no
                     storage yet */
        return 0;
    if (lasio_buf_reserve_(&p->text, len) < 0)
        return refuse(p, 500, "not enough memory");
    memcpy(p->text.data + p->text.len, at, len);
    p->text.len += len;
    return 0;
}

static int
on_message_begin(llhttp_t *ll) {
    struct httpparser *p = (struct httpparser *)ll;
    p->text.len = 0;
    p->linelen = 0;
    p->nhdrs = 0;
    p->headbytes = 0;
    p->in_value = 0;
    p->line_done = 0;
    p->hdr_open = 0;
    p->head_done = 0;
    p->complete = 0;
    p->started = 1;
    p->body.len = 0;
    p->body.off = 0;
    p->bodyseen = 0;
    return 0;
}

/* The request target, or a response's reason phrase. */
static int
on_line(llhttp_t *ll, const char *at, size_t len) {
    struct httpparser *p = (struct httpparser *)ll;
    p->linelen += len;
    if (p->max_line && p->linelen > p->max_line)
        return refuse(p, 414, "request line too long");
    return append(p, at, len);
}

static int
on_line_complete(llhttp_t *ll) {
    ((struct httpparser *)ll)->line_done = 1;
    return 0;
}

static int
count_head(struct httpparser *p, struct hdr *h, size_t len) {
    p->headbytes += len;
    if (p->max_field && h->namelen + h->valuelen > p->max_field)
        return refuse(p, 431, "header line too long");
    if (p->max_head && p->headbytes > p->max_head)
        return refuse(p, 431, "headers too large");
    return 0;
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t len) {
    struct httpparser *p = (struct httpparser *)ll;
    if (p->nhdrs == 0 || p->in_value) { /* a new header */
        if (p->max_headers && p->nhdrs >= p->max_headers)
            return refuse(p, 431, "too many headers");
        if (p->nhdrs == p->caphdrs) {
            size_t cap = p->caphdrs ? 2 * p->caphdrs : 16;
            struct hdr *n = realloc(p->hdrs, cap * sizeof *n);
            if (!n)
                return refuse(p, 500, "not enough memory");
            p->hdrs = n;
            p->caphdrs = cap;
        }
        struct hdr *h = &p->hdrs[p->nhdrs++];
        h->name = p->text.len;
        h->namelen = h->value = h->valuelen = 0;
        p->in_value = 0;
        p->hdr_open = 1;
    }
    struct hdr *h = &p->hdrs[p->nhdrs - 1];
    h->namelen += len;
    if (count_head(p, h, len))
        return -1;
    return append(p, at, len);
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t len) {
    struct httpparser *p = (struct httpparser *)ll;
    struct hdr *h = &p->hdrs[p->nhdrs - 1];
    if (!p->in_value) {
        h->value = p->text.len;
        p->in_value = 1;
    }
    h->valuelen += len;
    if (count_head(p, h, len))
        return -1;
    return append(p, at, len);
}

static int
on_header_value_complete(llhttp_t *ll) {
    struct httpparser *p = (struct httpparser *)ll;
    p->hdr_open = 0;
    if (p->max_headers && p->nhdrs >= p->max_headers) {
        p->recount = 1; /* the next byte may start a header too many */
        return HPE_PAUSED;
    }
    return 0;
}

/* Is the header named name (lower case) equal to value, ignoring case
 * and surrounding blanks? -1 when there is no such header. */
static int
header_is(struct httpparser *p, const char *name, const char *value) {
    size_t nlen = strlen(name);
    for (size_t i = 0; i < p->nhdrs; i++) {
        struct hdr *h = &p->hdrs[i];
        if (h->namelen != nlen ||
            strncasecmp(lasio_buf_at_(&p->text, h->name), name, nlen) != 0)
            continue;
        const char *v = lasio_buf_at_(&p->text, h->value);
        size_t n = h->valuelen;
        while (n > 0 && (*v == ' ' || *v == '\t'))
            v++, n--;
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        return n == strlen(value) && strncasecmp(v, value, n) == 0;
    }
    return -1;
}

static int
on_headers_complete(llhttp_t *ll) {
    struct httpparser *p = (struct httpparser *)ll;
    p->head_done = 1;
    p->hdr_open = 0;
    if (ll->type == HTTP_REQUEST && (ll->flags & F_TRANSFER_ENCODING)) {
        /* RFC 9112 6.1: a server that does not understand a transfer
         * coding answers it; only "chunked" alone is taken, once */
        int n = 0;
        for (size_t i = 0; i < p->nhdrs; i++)
            n += p->hdrs[i].namelen == 17 &&
                 strncasecmp(lasio_buf_at_(&p->text, p->hdrs[i].name),
                             "transfer-encoding", 17) == 0;
        if (n != 1 || header_is(p, "transfer-encoding", "chunked") != 1)
            return refuse(p, 400, "unsupported transfer coding");
    }
    /* RFC 9112 6.3: answers to HEAD, 1xx, 204 and 304 end with their
     * head, whatever Content-Length or Transfer-Encoding say (llhttp
     * leaves that to the caller when such a header is present) */
    if (p->skip_body || (ll->type == HTTP_RESPONSE &&
                         (ll->status_code / 100 == 1 ||
                          ll->status_code == 204 || ll->status_code == 304)))
        ll->flags |= F_SKIPBODY;
    return HPE_PAUSED; /* the caller looks at the head first */
}

static int
on_body(llhttp_t *ll, const char *at, size_t len) {
    struct httpparser *p = (struct httpparser *)ll;
    p->bodyseen += (lua_Integer)len;
    if (p->max_body >= 0 && p->bodyseen > p->max_body)
        return refuse(p, 413, "body too large");
    if (len == 0)
        return 0;
    if (lasio_buf_reserve_(&p->body, len) < 0)
        return refuse(p, 500, "not enough memory");
    memcpy(p->body.data + p->body.off + p->body.len, at, len);
    p->body.len += len;
    return 0;
}

static int
on_message_complete(llhttp_t *ll) {
    struct httpparser *p = (struct httpparser *)ll;
    p->complete = 1;
    return HPE_PAUSED; /* a pipelined message waits for read_head */
}

static llhttp_settings_t settings;

static void
init_settings(void) {
    if (settings.on_message_begin)
        return;
    llhttp_settings_init(&settings);
    settings.on_url = on_line;
    settings.on_status = on_line;
    settings.on_url_complete = on_line_complete;
    settings.on_status_complete = on_line_complete;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    settings.on_message_begin = on_message_begin; /* last: the init mark */
}

/* The head's limits are checked by the span callbacks, which llhttp calls
 * at a span's end or at the end of the bytes it was given. Given a whole
 * over-long target at once, llhttp would look at all of it before the
 * callback counted it, and a byte it refuses past the limit would turn a
 * 414 into a 400 that a cut inside the target does not give. So while
 * the head is parsed, llhttp is given at most the bytes that bring the
 * open span, a header that starts in them, and the head to their limit
 * + 1; and once the last header allowed is complete, one byte at a time
 * (on_header_value_complete pauses for that). A limit then fires at the
 * same byte however the input was cut (H8). Never 0: an open span is
 * within its limit, or it was refused. */
static size_t
head_budget(const struct httpparser *p) {
    size_t b = SIZE_MAX;
    /* Between messages (none started, or the last one complete) the
     * bytes may start the next message, whose head starts empty: the
     * fields still describe the last one until on_message_begin. */
    if (!p->started || p->complete) {
        if (p->max_line)
            b = p->max_line + 1;
        if (p->max_head && p->max_head + 1 < b)
            b = p->max_head + 1;
        if (p->max_field && p->max_field + 1 < b)
            b = p->max_field + 1;
        return b;
    }
    if (p->head_done)
        return b;
    if (!p->line_done && p->max_line)
        b = p->max_line + 1 - p->linelen;
    if (p->max_head && p->max_head + 1 - p->headbytes < b)
        b = p->max_head + 1 - p->headbytes;
    if (p->max_field) {
        size_t used = 0;
        if (p->hdr_open) {
            const struct hdr *h = &p->hdrs[p->nhdrs - 1];
            used = h->namelen + h->valuelen;
        }
        if (p->max_field + 1 - used < b)
            b = p->max_field + 1 - used;
    }
    if (p->max_headers && !p->hdr_open && p->nhdrs >= p->max_headers)
        b = 1;
    return b;
}

/* llhttp_execute over len bytes at data, in runs of at most
 * head_budget(); *used: the bytes parsed (where llhttp paused, or all). */
static llhttp_errno_t
execute(struct httpparser *p, const char *data, size_t len, size_t *used) {
    size_t off = 0;
    for (;;) {
        size_t n = len - off, b = head_budget(p);
        if (n > b)
            n = b;
        llhttp_errno_t err = llhttp_execute(&p->ll, data + off, n);
        if (err == HPE_PAUSED && p->recount) {
            p->recount = 0;
            off = (size_t)(llhttp_get_error_pos(&p->ll) - data);
            llhttp_resume(&p->ll);
            continue;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            *used = (size_t)(llhttp_get_error_pos(&p->ll) - data);
            return err;
        }
        off += n;
        if (err != HPE_OK || off == len) {
            *used = len;
            return err;
        }
    }
}

/* ====== } */

/* {====== Errors ====== */

/* Raises HTTPError(msg) with status, code and silent. */
static int
raise_http(lua_State *L, struct httpparser *p, int status, const char *code,
           const char *msg, int silent) {
    p->state = PS_FAILED;
    lasio_newerror_(L, ERR_HTTP, msg, 1);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushboolean(L, silent);
    lua_setfield(L, -2, "silent");
    return lua_error(L);
}

/* llhttp stopped with err: raises what it means. */
static int
raise_parse_error(lua_State *L, struct httpparser *p, llhttp_errno_t err) {
    /* a refusal of ours: llhttp reports it as HPE_USER from a span
     * callback, HPE_CB_HEADERS_COMPLETE from on_headers_complete */
    if ((err == HPE_USER || err == HPE_CB_HEADERS_COMPLETE) && p->limit_status)
        return raise_http(L, p, p->limit_status, "LIMIT", p->limit_msg, 0);
    /* bytes that never looked like HTTP get no answer (H1) */
    int silent = err == HPE_INVALID_METHOD || err == HPE_INVALID_CONSTANT;
    const char *reason = llhttp_get_error_reason(&p->ll);
    lua_pushfstring(L, "malformed HTTP %s: %s",
                    p->ll.type == HTTP_REQUEST ? "request" : "response",
                    reason ? reason : llhttp_errno_name(err));
    return raise_http(L, p, 400, llhttp_errno_name(err), lua_tostring(L, -1),
                      silent);
}

/* ====== } */

/* {====== Feeding llhttp from the stream ====== */

/* Parses the buffered input until llhttp pauses or wants more; consumes
 * what it parsed. Raises on a parse error. */
static void
feed(lua_State *L, struct httpparser *p, struct lasio_stream *s) {
    /* with no bytes llhttp still runs the steps that need none (the end
     * of a message without a body) */
    const char *data = s->in.data ? s->in.data + s->in.off : "";
    size_t used;
    llhttp_errno_t err = execute(p, data, s->in.len, &used);
    if (err == HPE_PAUSED_UPGRADE) {
        p->state = PS_UPGRADE;
    } else if (err != HPE_OK && err != HPE_PAUSED) {
        lasio_buf_consume_(&s->in, s->in.len);
        lasio_stream_consumed_(s);
        raise_parse_error(L, p, err);
    }
    lasio_buf_consume_(&s->in, used);
    lasio_stream_consumed_(s);
}

/* At EOF: llhttp decides whether the message may end here (a response
 * delimited by the connection's end); else it is truncated. */
static void
finish_at_eof(lua_State *L, struct httpparser *p, const char *what) {
    llhttp_errno_t err = llhttp_finish(&p->ll);
    if (err == HPE_OK || err == HPE_PAUSED)
        return;
    lua_pushfstring(L, "connection closed before the %s was complete", what);
    raise_http(L, p, 400, "EOF", lua_tostring(L, -1), 1);
}

/* The read side ended with an error, or the stream was closed: raises. */
static void
check_stream(lua_State *L, struct lasio_stream *s, const char *op) {
    if (lasio_stream_readerror_(L, s, op))
        lua_error(L);
}

/* Has the peer gone (EOF, an error) or the stream been closed? */
static int
stream_ended(const struct lasio_stream *s) {
    return s->eof || s->rerr || s->closing || s->released;
}

/* ====== } */

/* {====== Building the head table ====== */

/* Pushes the header name at h in lower case. */
static void
push_name(lua_State *L, const char *name, size_t n) {
    char low[64];
    if (n > sizeof low) {
        luaL_Buffer b;
        char *d = luaL_buffinitsize(L, &b, n);
        for (size_t i = 0; i < n; i++)
            d[i] = (char)tolower((unsigned char)name[i]);
        luaL_pushresultsize(&b, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    lua_pushlstring(L, low, n);
}

/* The registry key of the headers' metatable. */
static const char headers_mt_key = 0;

/* The headers table of the nh headers at hdrs, their bytes in text:
 * lower-case names; repeated headers joined with ", " (RFC 9110 5.3),
 * cookies with "; " (RFC 6265 5.4). Its metatable lowers other spellings
 * of a name. */
void
lasio_http_push_headers_(lua_State *L, const char *text, const struct hdr *hdrs,
                         size_t nh) {
    lua_createtable(L, 0, (int)nh);
    for (size_t i = 0; i < nh; i++) {
        const struct hdr *h = &hdrs[i];
        push_name(L, text + h->name, h->namelen);
        const char *v = text + h->value;
        size_t n = h->valuelen;
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--; /* llhttp drops leading blanks, not trailing ones */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushlstring(L, v, n);
        } else {
            int cookie = strcmp(lua_tostring(L, -2), "cookie") == 0;
            lua_pushstring(L, cookie ? "; " : ", ");
            lua_pushlstring(L, v, n);
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &headers_mt_key);
    lua_setmetatable(L, -2);
}

static void
push_headers(lua_State *L, struct httpparser *p) {
    lasio_http_push_headers_(L, lasio_buf_at_(&p->text, 0), p->hdrs, p->nhdrs);
}

/* Pushes the list {name, value, name, value ...} of the raw headers. */
static void
push_raw_headers(lua_State *L, struct httpparser *p) {
    lua_createtable(L, (int)(2 * p->nhdrs), 0);
    for (size_t i = 0; i < p->nhdrs; i++) {
        struct hdr *h = &p->hdrs[i];
        lua_pushlstring(L, lasio_buf_at_(&p->text, h->name), h->namelen);
        lua_rawseti(L, -2, (lua_Integer)(2 * i + 1));
        lua_pushlstring(L, lasio_buf_at_(&p->text, h->value), h->valuelen);
        lua_rawseti(L, -2, (lua_Integer)(2 * i + 2));
    }
}

void
lasio_http_push_version_(lua_State *L, int major, int minor) {
    if (major == 1 && minor == 1)
        lua_pushliteral(L, "1.1");
    else if (major == 1 && minor == 0)
        lua_pushliteral(L, "1.0");
    else
        lua_pushfstring(L, "%d.%d", major, minor);
}

/* With the option requests, read_head returns a request object and
 * these flags, so that the server asks for nothing more of a request that
 * has none. */
#define HEAD_BODY LASIO_HTTP_HEAD_BODY
#define HEAD_EXPECT LASIO_HTTP_HEAD_EXPECT
#define HEAD_UPGRADE LASIO_HTTP_HEAD_UPGRADE

/* Pushes the request object of the head just completed, and its flags. */
static void
push_request(lua_State *L, struct httpparser *p) {
    llhttp_t *ll = &p->ll;
    struct lasio_http_head h;
    h.text = lasio_buf_at_(&p->text, 0);
    h.textlen = p->text.len;
    h.linelen = p->linelen;
    h.hdrs = p->hdrs;
    h.nhdrs = p->nhdrs;
    h.method = ll->method;
    h.major = ll->http_major;
    h.minor = ll->http_minor;
    h.keep_alive = llhttp_should_keep_alive(ll);
    h.upgrade = ll->upgrade;
    h.chunked = (ll->flags & F_CHUNKED) != 0;
    h.content_length = !h.chunked && (ll->flags & F_CONTENT_LENGTH)
                           ? (lua_Integer)ll->content_length
                           : -1;
    struct lasio_loop *loop = lasio_current_loop_(L);
    h.start = loop ? lasio_loop_time_(loop) : lasio_time_();
    lua_getiuservalue(L, 1, 1); /* the parser's: the metatable */
    lasio_httpreq_push_(L, &h);
    int flags = (ll->flags & (F_CHUNKED | F_CONTENT_LENGTH)) ? HEAD_BODY : 0;
    if (ll->upgrade)
        flags |= HEAD_UPGRADE;
    for (size_t i = 0; i < p->nhdrs; i++) {
        struct hdr *hd = &p->hdrs[i];
        if (hd->namelen == 6 &&
            strncasecmp(lasio_buf_at_(&p->text, hd->name), "expect", 6) == 0) {
            flags |= HEAD_EXPECT;
            break;
        }
    }
    lua_pushinteger(L, flags);
}

/* Pushes the head table of the message whose head is complete. */
static void
push_head(lua_State *L, struct httpparser *p) {
    llhttp_t *ll = &p->ll;
    if (p->requests) {
        push_request(L, p);
        return;
    }
    lua_createtable(L, 0, 10);
    if (ll->type == HTTP_REQUEST) {
        lua_pushstring(L, llhttp_method_name((llhttp_method_t)ll->method));
        lua_setfield(L, -2, "method");
        const char *t = lasio_buf_at_(&p->text, 0);
        const char *q = memchr(t, '?', p->linelen);
        lua_pushlstring(L, t, p->linelen);
        lua_setfield(L, -2, "target");
        lua_pushlstring(L, t, q ? (size_t)(q - t) : p->linelen);
        lua_setfield(L, -2, "path");
        if (q)
            lua_pushlstring(L, q + 1, p->linelen - (size_t)(q + 1 - t));
        else
            lua_pushliteral(L, "");
        lua_setfield(L, -2, "query");
    } else {
        lua_pushinteger(L, ll->status_code);
        lua_setfield(L, -2, "status");
        lua_pushlstring(L, lasio_buf_at_(&p->text, 0), p->linelen);
        lua_setfield(L, -2, "reason");
    }
    lasio_http_push_version_(L, ll->http_major, ll->http_minor);
    lua_setfield(L, -2, "version");
    push_headers(L, p);
    lua_setfield(L, -2, "headers");
    if (p->raw) {
        push_raw_headers(L, p);
        lua_setfield(L, -2, "raw_headers");
    }
    lua_pushboolean(L, llhttp_should_keep_alive(ll));
    lua_setfield(L, -2, "keep_alive");
    if (ll->upgrade) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "upgrade");
    }
    if (ll->flags & F_CHUNKED) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "chunked");
    } else if (ll->flags & F_CONTENT_LENGTH) {
        lua_pushinteger(L, (lua_Integer)ll->content_length);
        lua_setfield(L, -2, "content_length");
    }
}

/* ====== } */

/* {====== parser:read_head(reader [, idle_timeout [, head_timeout]]) ======
 * Returns the head table; nil, "eof" when the peer closed between
 * messages; nil, "idle" when idle_timeout passed before the first byte.
 * head_timeout bounds the whole head from its first byte (L2: a slow
 * client cannot keep a connection by trickling bytes): HTTPError 408. */

static int head_wait(lua_State *L, struct lasio_stream *s);

/* Returns 1 with the results pushed, or 0 to wait. */
static int
head_try(lua_State *L, struct httpparser *p, struct lasio_stream *s) {
    int was_started = p->started;
    feed(L, p, s);
    if (p->head_done) {
        p->state = PS_BODY;
        push_head(L, p);
        llhttp_resume(&p->ll);
        /* a request without a body ends here: parse its end now, so
         * that the server need not ask for the body of every GET */
        if (p->ll.type == HTTP_REQUEST && !(p->ll.flags & F_CHUNKED) &&
            p->ll.content_length == 0)
            feed(L, p, s);
        return 1;
    }
    if (p->state == PS_UPGRADE) /* CONNECT-like exit without a head */
        return raise_http(L, p, 400, "UPGRADE", "unexpected upgrade", 1);
    if (p->started && !was_started && p->head_timeout >= 0) {
        p->head_deadline = lasio_io_deadline_(p->head_timeout);
        s->rdeadline = p->head_deadline;
    }
    check_stream(L, s, "read_head");
    if (s->eof) {
        if (!p->started) {
            lua_pushnil(L);
            lua_pushliteral(L, "eof");
            return 2;
        }
        finish_at_eof(L, p, "head");
        return raise_http(L, p, 400, "EOF",
                          "connection closed before the head was complete", 1);
    }
    s->rneed = 1;
    return 0;
}

/* After the wait: head_try again, or the idle or head deadline passed. */
static int
head_again(lua_State *L, struct httpparser *p, struct lasio_stream *s) {
    if (head_try(L, p, s))
        return 1;
    if (lasio_reader_expired_(s)) {
        if (!p->started) {
            lua_pushnil(L);
            lua_pushliteral(L, "idle");
            return 1;
        }
        return raise_http(L, p, 408, "TIMEOUT",
                          "timed out waiting for the request head", 0);
    }
    return 0;
}

static int
head_k(lua_State *L, int status, lua_KContext ctx) {
    struct httpparser *p = checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    (void)status, (void)ctx;
    lasio_reader_woken_(L, s, BASE);
    if (head_again(L, p, s))
        return lua_gettop(L) - BASE;
    return head_wait(L, s);
}

static int
head_wait(lua_State *L, struct lasio_stream *s) {
    return lasio_reader_wait_(L, s, BASE, "read_head", 0, head_k);
}

/* Starts the next message: llhttp sits paused at the end of the last. */
static void
next_message(lua_State *L, struct httpparser *p) {
    switch (p->state) {
    case PS_DONE:
        llhttp_resume(&p->ll);
        break;
    case PS_IDLE:
        break;
    case PS_BODY:
        if (!p->complete)
            luaL_error(L, "read_head: the body of the last message was not "
                          "read");
        llhttp_resume(&p->ll);
        break;
    case PS_UPGRADE:
        luaL_error(L, "read_head: the connection left HTTP (upgrade)");
        break;
    case PS_FAILED:
        luaL_error(L, "read_head: the parser failed; close the connection");
        break;
    }
    p->state = PS_IDLE;
    if (p->requests) /* a route's set_max_body was for its request only */
        p->max_body = p->dflt_max_body;
    p->started = p->head_done = p->complete = 0;
    p->limit_status = 0;
}

/* Starts reading the next head: 1 with the results pushed, 0 to wait (the
 * deadline set). */
static int
head_begin(lua_State *L, struct httpparser *p, struct lasio_stream *s,
           double idle) {
    if (s->reader)
        return luaL_error(L, "read_head: another task is already reading "
                             "this stream (read already in progress)");
    next_message(L, p);
    if (head_try(L, p, s))
        return 1;
    s->rdeadline = p->started ? p->head_deadline : lasio_io_deadline_(idle);
    return 0;
}

static int
parser_read_head(lua_State *L) {
    struct httpparser *p = checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    double idle = lasio_io_checktimeout_(L, 3, "read_head");
    p->head_timeout = lasio_io_checktimeout_(L, 4, "read_head");
    lua_settop(L, BASE);
    if (head_begin(L, p, s, idle))
        return lua_gettop(L) - BASE;
    return head_wait(L, s);
}

int
lasio_http_head_begin_(lua_State *L, struct httpparser *p,
                       struct lasio_stream *s, double idle,
                       double head_timeout) {
    p->head_timeout = head_timeout;
    return head_begin(L, p, s, idle);
}

int
lasio_http_head_again_(lua_State *L, struct httpparser *p,
                       struct lasio_stream *s) {
    return head_again(L, p, s);
}

struct httpparser *
lasio_http_checkparser_(lua_State *L, int idx) {
    return checkparser(L, idx);
}

/* ====== } */

/* {====== parser:read_body(reader [, timeout [, all]]) ======
 * Returns the body bytes that arrived (waiting for some), nil at the end
 * of the message; with `all`, the whole body (bounded by max_body).
 * timeout is the inactivity limit of each wait (L3). */

static int body_k(lua_State *L, int status, lua_KContext ctx);

/* A body buffer larger than this is freed once its bytes are taken: a
 * connection that once received a large body part (up to the stream's
 * whole input buffer) must not keep that much for its lifetime
 * (docs/SERVER.md, Memory). */
#define BODY_KEEP 16384

static void
take_body(lua_State *L, struct httpparser *p) {
    lua_pushlstring(L, lasio_buf_at_(&p->body, p->body.off), p->body.len);
    if (p->body.cap > BODY_KEEP)
        lasio_buf_free_(&p->body);
    p->body.len = 0;
    p->body.off = 0;
}

static int
body_try(lua_State *L, struct httpparser *p, struct lasio_stream *s, int all) {
    if (!p->complete && p->state == PS_BODY)
        feed(L, p, s);
    if (p->complete) {
        p->state = p->state == PS_UPGRADE ? PS_UPGRADE : PS_DONE;
        if (all || p->body.len > 0)
            take_body(L, p);
        else
            lua_pushnil(L);
        return 1;
    }
    if (!all && p->body.len > 0) {
        take_body(L, p);
        return 1;
    }
    check_stream(L, s, "read_body");
    if (s->eof) {
        finish_at_eof(L, p, "body");
        if (p->complete)
            return body_try(L, p, s, all);
        return raise_http(L, p, 400, "EOF",
                          "connection closed before the body was complete", 1);
    }
    s->rneed = 1;
    return 0;
}

static int
body_wait(lua_State *L, struct lasio_stream *s, int all) {
    return lasio_reader_wait_(L, s, BASE, "read_body", all, body_k);
}

static int
body_k(lua_State *L, int status, lua_KContext ctx) {
    struct httpparser *p = checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    double timeout = lua_isnil(L, 3) ? -1 : lua_tonumber(L, 3);
    (void)status;
    lasio_reader_woken_(L, s, BASE);
    if (body_try(L, p, s, (int)ctx))
        return 1;
    if (lasio_reader_expired_(s)) {
        p->state = PS_FAILED;
        return lasio_raise_(L, ERR_TIMEOUT, "read_body: timed out");
    }
    s->rdeadline = lasio_io_deadline_(timeout);
    return body_wait(L, s, (int)ctx);
}

static int
parser_read_body(lua_State *L) {
    struct httpparser *p = checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    double timeout = lasio_io_checktimeout_(L, 3, "read_body");
    int all = lua_toboolean(L, 4);
    lua_settop(L, BASE);
    if (s->reader)
        return luaL_error(L, "read_body: another task is already reading "
                             "this stream (read already in progress)");
    if (p->state == PS_DONE || p->state == PS_IDLE) {
        if (all)
            lua_pushliteral(L, "");
        else
            lua_pushnil(L);
        return 1;
    }
    if (p->state == PS_FAILED)
        return luaL_error(L, "read_body: the parser failed");
    if (body_try(L, p, s, all))
        return 1;
    s->rdeadline = lasio_io_deadline_(timeout);
    return body_wait(L, s, all);
}

/* ====== } */

/* {====== parser:wait_hangup(reader) ======
 * Suspends until the peer closes or resets the connection (then returns
 * true) or until lasio's http server wakes it with parser:wake_hangup()
 * (false). The server's connection task waits here while a handler task
 * runs, so that a client going away cancels the handler (L6). */

static int
hangup_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    (void)status, (void)ctx;
    s->hangup = NULL;
    if (lasio_io_resumed_(L, s->loop, BASE))
        return lua_error(L);
    lua_pushboolean(L, stream_ended(s));
    return 1;
}

static int
parser_wait_hangup(lua_State *L) {
    checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    lua_settop(L, BASE);
    if (stream_ended(s)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (s->hangup)
        return luaL_error(L, "wait_hangup: another task already waits");
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, "wait_hangup");
    lasio_io_wait_(L, t, BASE, 0);
    s->hangup = t;
    lasio_stream_update_reading_(s);
    return lasio_io_yield_(L, 0, hangup_k);
}

static int
parser_wake_hangup(lua_State *L) {
    checkparser(L, 1);
    struct lasio_stream *s = lasio_checkreader_(L, 2);
    if (s->hangup)
        lasio_io_wake_(L, s->hangup);
    return 0;
}

/* ====== } */

/* {====== core.internal.http_trace(kind, chunks [, opts]) ======
 * Parses the strings of the list `chunks` in turn, as if they had arrived
 * one by one, and returns the events as text: "head ..." lines with the
 * start line and the headers, "body <n> <bytes>" and "end" per message,
 * "error <status> <code>" and "eof-error". The specs compare the trace of
 * a message fed whole with its traces fed split at every byte (H8). */

static void
trace_head(lua_State *L, struct httpparser *p, int tidx) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (p->ll.type == HTTP_REQUEST)
        luaL_addstring(&b, llhttp_method_name((llhttp_method_t)p->ll.method));
    else
        lua_pushinteger(L, p->ll.status_code), luaL_addvalue(&b);
    luaL_addchar(&b, ' ');
    luaL_addlstring(&b, lasio_buf_at_(&p->text, 0), p->linelen);
    luaL_addchar(&b, ' ');
    lasio_http_push_version_(L, p->ll.http_major, p->ll.http_minor);
    luaL_addvalue(&b);
    lua_pushfstring(L, " keep=%d upgrade=%d", llhttp_should_keep_alive(&p->ll),
                    (int)p->ll.upgrade);
    luaL_addvalue(&b);
    for (size_t i = 0; i < p->nhdrs; i++) {
        struct hdr *h = &p->hdrs[i];
        luaL_addstring(&b, " [");
        luaL_addlstring(&b, lasio_buf_at_(&p->text, h->name), h->namelen);
        luaL_addstring(&b, ": ");
        luaL_addlstring(&b, lasio_buf_at_(&p->text, h->value), h->valuelen);
        luaL_addchar(&b, ']');
    }
    luaL_pushresult(&b);
    lua_rawseti(L, tidx, (lua_Integer)lua_rawlen(L, tidx) + 1);
}

static void
trace_line(lua_State *L, int tidx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_rawseti(L, tidx, (lua_Integer)lua_rawlen(L, tidx) + 1);
}

/* The body of the message that ended, then `how`. */
static void
trace_end(lua_State *L, struct httpparser *p, const char *how) {
    lua_pushfstring(L, "body %d ", (int)p->body.len);
    lua_pushlstring(L, lasio_buf_at_(&p->body, p->body.off), p->body.len);
    lua_concat(L, 2);
    lua_rawseti(L, 5, (lua_Integer)lua_rawlen(L, 5) + 1);
    trace_line(L, 5, "%s", how);
    p->complete = 0;
    p->started = 0; /* between messages, as next_message leaves it */
    p->body.len = p->body.off = 0;
}

static int new_parser(lua_State *L);

static int
http_trace(lua_State *L) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_isnoneornil(L, 3)) {
        lua_settop(L, 2);
        lua_newtable(L);
    }
    lua_pushcfunction(L, new_parser);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 1);
    struct httpparser *p = checkparser(L, 4);
    lua_newtable(L); /* 5: the events */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        const char *data = luaL_checkstring(L, -1);
        len = lua_rawlen(L, -1);
        size_t pos = 0;
        for (;;) {
            size_t used;
            llhttp_errno_t err = execute(p, data + pos, len - pos, &used);
            pos += used;
            if (err != HPE_OK && err != HPE_PAUSED &&
                err != HPE_PAUSED_UPGRADE) {
                trace_line(L, 5, "error %d %s",
                           err == HPE_USER && p->limit_status ? p->limit_status
                                                              : 400,
                           llhttp_errno_name(err));
                lua_pop(L, 1);
                goto done;
            }
            if (p->head_done == 1) {
                p->head_done = 2; /* reported */
                trace_head(L, p, 5);
            }
            if (p->complete)
                trace_end(L, p, "end");
            if (err == HPE_PAUSED_UPGRADE) {
                trace_line(L, 5, "upgrade");
                lua_pop(L, 1);
                goto done;
            }
            if (err == HPE_OK)
                break;
            llhttp_resume(&p->ll);
        }
        lua_pop(L, 1);
    }
    llhttp_errno_t fin = p->started ? llhttp_finish(&p->ll) : HPE_OK;
    if (fin != HPE_OK && fin != HPE_PAUSED)
        trace_line(L, 5, "eof-error");
    else if (p->complete)
        trace_end(L, p, "end-at-eof");
done:;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, 5); i++) {
        lua_rawgeti(L, 5, i);
        luaL_addvalue(&b);
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    return 1;
}

/* ====== } */

/* {====== Construction and small methods ====== */

static size_t
opt_size(lua_State *L, int opts, const char *key, lua_Integer dflt) {
    return (size_t)lasio_optinteger_(L, opts, key, dflt, 0, "http_parser");
}

/* core.internal.http_parser(kind, opts): kind "request" or "response";
 * opts max_line, max_field, max_head, max_headers, max_body (-1: none). */
static int
new_parser(lua_State *L) {
    static const char *const kinds[] = {"request", "response", NULL};
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    luaL_checktype(L, 2, LUA_TTABLE);
    /* user value 1: the requests' metatable, with the option requests */
    struct httpparser *p = lua_newuserdatauv(L, sizeof *p, 1);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PARSER_MT);
    init_settings();
    llhttp_init(&p->ll, kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    p->max_line = opt_size(L, 2, "max_line", 8192);
    p->max_field = opt_size(L, 2, "max_field", 8192);
    p->max_head = opt_size(L, 2, "max_head", 16384);
    p->max_headers = opt_size(L, 2, "max_headers", 100);
    p->max_body = lasio_optinteger_(L, 2, "max_body", -1, -1, "http_parser");
    p->dflt_max_body = p->max_body;
    p->raw = lasio_optboolean_(L, 2, "raw", 0, "http_parser");
    p->requests = lasio_optboolean_(L, 2, "requests", 0, "http_parser");
    if (p->requests) {
        lasio_httpreq_pushmt_(L);
        lua_setiuservalue(L, -2, 1);
    }
    p->head_timeout = -1;
    return 1;
}

static int
parser_gc(lua_State *L) {
    struct httpparser *p = checkparser(L, 1);
    lasio_buf_free_(&p->text);
    lasio_buf_free_(&p->body);
    free(p->hdrs);
    p->hdrs = NULL;
    p->nhdrs = p->caphdrs = 0;
    return 0;
}

/* parser:set_max_body(n): the body limit of the current message (a route
 * may allow more than the server's default); -1 for none. */
static int
parser_set_max_body(lua_State *L) {
    struct httpparser *p = checkparser(L, 1);
    p->max_body = luaL_checkinteger(L, 2);
    return 0;
}

/* parser:skip_body(): the next response answers a HEAD request. */
static int
parser_skip_body(lua_State *L) {
    checkparser(L, 1)->skip_body = lua_toboolean(L, 2);
    return 0;
}

/* parser:state(): "idle", "body" (the body is not all read), "done",
 * "upgrade" or "failed". */
static int
parser_state(lua_State *L) {
    static const char *const names[] = {"idle", "body", "done", "upgrade",
                                        "failed"};
    struct httpparser *p = checkparser(L, 1);
    if (p->state == PS_BODY && p->complete && p->body.len == 0)
        lua_pushliteral(L, "done");
    else
        lua_pushstring(L, names[p->state]);
    return 1;
}

/* The headers' metatable: headers["Content-Type"] finds "content-type". */
static int
headers_index(lua_State *L) {
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    push_name(L, k, n);
    if (lua_rawequal(L, -1, 2))
        return 0;
    lua_rawget(L, 1);
    return 1;
}

void
lasio_http_open_(lua_State *L) {
    static const luaL_Reg methods[] = {{"read_head", parser_read_head},
                                       {"read_body", parser_read_body},
                                       {"wait_hangup", parser_wait_hangup},
                                       {"wake_hangup", parser_wake_hangup},
                                       {"set_max_body", parser_set_max_body},
                                       {"skip_body", parser_skip_body},
                                       {"state", parser_state},
                                       {NULL, NULL}};
    lasio_newmetatable_(L, PARSER_MT, &parser_token);
    lua_pushcfunction(L, parser_gc);
    lua_setfield(L, -2, "__gc");
    lua_createtable(L, 0, 1); /* the headers' metatable */
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &headers_mt_key);
    luaL_newlib(L, methods);
    lua_setfield(L, -3, "__index");
    /* core.internal.http_headers_mt: for the header tables the facade
     * makes */
    lua_setfield(L, -3, "http_headers_mt");
    lua_pop(L, 1);
    lua_pushcfunction(L, new_parser);
    lua_setfield(L, -2, "http_parser");
    lua_pushcfunction(L, http_trace);
    lua_setfield(L, -2, "http_trace");
}

/* ====== } */
