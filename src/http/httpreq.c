/*
 * httpreq.c: the request object of lasio.http.serve (docs/API.md, HTTP/1.1
 * Server). A userdata holding its own copy of the head (the target and
 * the header bytes, as the parser left them), so that nothing is built
 * for a field no handler reads: method, path and query become strings
 * when read, and the headers table is built on first access and kept. A
 * request stays valid after its response and after the connection moved
 * on. Fields a handler assigns (req.user = ...) go into a table of the
 * request's own, made on the first assignment; they shadow the built-in
 * fields, as they did when the request was a table. The methods (body,
 * reader, ...) are lua/lasio/http_server.lua's, put into the table
 * core.internal.http_request_methods.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "http/http.h"

#define REQUEST_MT "lasio.http.Request"

/* User values. */
enum {
    REQ_UV_HEADERS = 1, /* the headers table, once built */
    REQ_UV_USER,        /* fields the handler or the server assigned */
    REQ_UV_CONN,        /* the server's connection table */
    REQ_UV_RES,         /* the response */
    REQ_NUV = REQ_UV_RES
};

struct lasio_httpreq {
    double start;               /* the loop's time when the head was complete */
    lua_Integer content_length; /* -1: none */
    int method;
    unsigned char major, minor, keep_alive, upgrade, chunked;
    unsigned char expect; /* Expect: 100-continue, still to answer */
    size_t textlen, linelen, nhdrs;
    struct lasio_http_hdr hdrs[]; /* then the text */
};

static const char request_token = 0;
/* The registry key of the methods table. */
static const char methods_key = 0;

static const char *find_header(const struct lasio_httpreq *r, const char *name,
                               size_t n, size_t *len);

static const char *
text_of(const struct lasio_httpreq *r) {
    return (const char *)(r->hdrs + r->nhdrs);
}

void
lasio_httpreq_push_(lua_State *L, const struct lasio_http_head *h) {
    size_t hsize = h->nhdrs * sizeof(struct lasio_http_hdr);
    struct lasio_httpreq *r =
        lua_newuserdatauv(L, sizeof *r + hsize + h->textlen, REQ_NUV);
    r->start = h->start;
    r->content_length = h->content_length;
    r->method = h->method;
    r->major = (unsigned char)h->major;
    r->minor = (unsigned char)h->minor;
    r->keep_alive = (unsigned char)h->keep_alive;
    r->upgrade = (unsigned char)h->upgrade;
    r->chunked = (unsigned char)h->chunked;
    r->expect = 0;
    r->textlen = h->textlen;
    r->linelen = h->linelen;
    r->nhdrs = h->nhdrs;
    if (hsize)
        memcpy(r->hdrs, h->hdrs, hsize);
    if (h->textlen)
        memcpy((char *)text_of(r), h->text, h->textlen);
    lua_rotate(L, -2, 1);
    lua_setmetatable(L, -2);
}

void
lasio_httpreq_pushmt_(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &request_token);
}

int
lasio_httpreq_is_head_(const struct lasio_httpreq *r) {
    return r->method == HTTP_HEAD;
}

int
lasio_httpreq_is_http10_(const struct lasio_httpreq *r) {
    return r->major == 1 && r->minor == 0;
}

int
lasio_httpreq_keeps_(const struct lasio_httpreq *r, double until) {
    return r->keep_alive && r->start < until;
}

int
lasio_httpreq_refusal_(struct lasio_httpreq *r, lua_Integer max_body,
                       const char **msg) {
    size_t len;
    const char *v = find_header(r, "expect", 6, &len);
    if (v) {
        if (len != 12 || strncasecmp(v, "100-continue", 12) != 0) {
            *msg = "unsupported expectation";
            return 417;
        }
        r->expect = 1;
    }
    if (r->content_length > max_body) {
        *msg = "request body too large";
        return 413;
    }
    return 0;
}

void
lasio_httpreq_attach_(lua_State *L, int req, int conn, int res) {
    req = lua_absindex(L, req);
    lua_pushvalue(L, conn);
    lua_setiuservalue(L, req, REQ_UV_CONN);
    lua_pushvalue(L, res);
    lua_setiuservalue(L, req, REQ_UV_RES);
}

/* The value of the first header named name (lower case), or NULL. */
static const char *
find_header(const struct lasio_httpreq *r, const char *name, size_t n,
            size_t *len) {
    const char *text = text_of(r);
    for (size_t i = 0; i < r->nhdrs; i++) {
        const struct lasio_http_hdr *h = &r->hdrs[i];
        if (h->namelen == n && strncasecmp(text + h->name, name, n) == 0) {
            *len = h->valuelen;
            return text + h->value;
        }
    }
    return NULL;
}

#define IS(k, n, lit) ((n) == sizeof lit - 1 && memcmp(k, lit, n) == 0)

/* A flag of the head: true, or nil when absent (as the Lua request was). */
static void
push_flag(lua_State *L, int on) {
    if (on)
        lua_pushboolean(L, 1);
    else
        lua_pushnil(L);
}

/* Pushes the built-in field k of the request at 1; 0 when k is none. */
static int
push_field(lua_State *L, struct lasio_httpreq *r, const char *k, size_t n) {
    const char *t = text_of(r);
    const char *q;
    switch (k[0]) {
    case 'm':
        if (!IS(k, n, "method"))
            return 0;
        lua_pushstring(L, llhttp_method_name((llhttp_method_t)r->method));
        return 1;
    case 'p':
        if (!IS(k, n, "path"))
            return 0;
        q = memchr(t, '?', r->linelen);
        lua_pushlstring(L, t, q ? (size_t)(q - t) : r->linelen);
        return 1;
    case 'q':
        if (!IS(k, n, "query"))
            return 0;
        q = memchr(t, '?', r->linelen);
        if (q)
            lua_pushlstring(L, q + 1, r->linelen - (size_t)(q + 1 - t));
        else
            lua_pushliteral(L, "");
        return 1;
    case 't':
        if (!IS(k, n, "target"))
            return 0;
        lua_pushlstring(L, t, r->linelen);
        return 1;
    case 'v':
        if (!IS(k, n, "version"))
            return 0;
        lasio_http_push_version_(L, r->major, r->minor);
        return 1;
    case 'k':
        if (!IS(k, n, "keep_alive"))
            return 0;
        lua_pushboolean(L, r->keep_alive);
        return 1;
    case 'c':
        if (IS(k, n, "content_length")) {
            if (r->content_length >= 0)
                lua_pushinteger(L, r->content_length);
            else
                lua_pushnil(L);
            return 1;
        }
        if (!IS(k, n, "chunked"))
            return 0;
        push_flag(L, r->chunked);
        return 1;
    case 'u':
        if (!IS(k, n, "upgrade"))
            return 0;
        push_flag(L, r->upgrade);
        return 1;
    case 'h':
        if (!IS(k, n, "headers"))
            return 0;
        if (lua_getiuservalue(L, 1, REQ_UV_HEADERS) == LUA_TNIL) {
            lua_pop(L, 1);
            lasio_http_push_headers_(L, t, r->hdrs, r->nhdrs);
            lua_pushvalue(L, -1);
            lua_setiuservalue(L, 1, REQ_UV_HEADERS);
        }
        return 1;
    case '_':
        /* the server's own (lua/lasio/http_server.lua) */
        if (IS(k, n, "_conn")) {
            lua_getiuservalue(L, 1, REQ_UV_CONN);
            return 1;
        }
        if (IS(k, n, "_res")) {
            lua_getiuservalue(L, 1, REQ_UV_RES);
            return 1;
        }
        if (IS(k, n, "_start")) {
            lua_pushnumber(L, r->start);
            return 1;
        }
        if (IS(k, n, "_expect")) {
            lua_pushboolean(L, r->expect);
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

/* __index (upvalue 1: the methods): the handler's own fields first, then
 * the built-in ones, then the methods. */
static int
req_index(lua_State *L) {
    struct lasio_httpreq *r = lua_touserdata(L, 1);
    if (lasio_http_own_field_(L, REQ_UV_USER))
        return 1;
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, 2, &n);
        if (n > 0 && push_field(L, r, k, n))
            return 1;
    }
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

int
lasio_http_own_field_(lua_State *L, int uv) {
    if (lua_getiuservalue(L, 1, uv) == LUA_TTABLE) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) != LUA_TNIL)
            return 1;
    }
    lua_settop(L, 2);
    return 0;
}

int
lasio_http_set_own_field_(lua_State *L, int uv) {
    if (lua_getiuservalue(L, 1, uv) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, uv);
    }
    lua_insert(L, 2);
    lua_rawset(L, 2);
    return 0;
}

void
lasio_http_open_class_(lua_State *L, const struct lasio_http_class *c) {
    lasio_newmetatable_(L, c->tname, c->token);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, c->methods_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        if (c->methods)
            luaL_setfuncs(L, c->methods, 0);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, c->methods_key);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, c->field);
    lua_pushcclosure(L, c->index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, c->newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, c->tostring);
    lua_setfield(L, -2, "__tostring");
    lua_rawsetp(L, LUA_REGISTRYINDEX, c->token);
}

/* __newindex: into the request's own table, made on first use. */
static int
req_newindex(lua_State *L) {
    return lasio_http_set_own_field_(L, REQ_UV_USER);
}

static int
req_tostring(lua_State *L) {
    struct lasio_httpreq *r = lua_touserdata(L, 1);
    lua_pushlstring(L, text_of(r), r->linelen < 200 ? r->linelen : 200);
    lua_pushfstring(L, "lasio.http.Request (%s %s): %p",
                    llhttp_method_name((llhttp_method_t)r->method),
                    lua_tostring(L, -1), (void *)r);
    return 1;
}

void
lasio_httpreq_open_(lua_State *L) {
    /* the methods: http_server.lua fills them */
    static const struct lasio_http_class request = {
        .tname = REQUEST_MT,
        .token = &request_token,
        .methods_key = &methods_key,
        .field = "http_request_methods",
        .index = req_index,
        .newindex = req_newindex,
        .tostring = req_tostring,
    };
    lasio_http_open_class_(L, &request);
}
