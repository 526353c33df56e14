/*
 * httpres.c: the response object of lasio.http.serve (docs/API.md,
 * HTTP/1.1 Server). A userdata: the status, the headers (the first
 * INLINE_HEADERS in user values, no table per response; more in a list),
 * and the state of the answer. set_status, set_header, add_header,
 * get_header and finish are here; finish sends head and body with one
 * write (lasio_http_send_response_: a body over 4 KiB is not copied, it
 * leaves in the same write as the head). Streaming (write, and a finish
 * after it) is lua/lasio/http_server.lua's, as it waits for the client:
 * it asks this file for the head (_begin_write) and the end (_end_stream),
 * so that the head and the framing are decided here only. Fields a handler
 * assigns go into a table of the response's own, made on first use.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <strings.h>

#include "http/http.h"

#define RESPONSE_MT "lasio.http.Response"

/* Headers kept in user values; the rest go to a list. */
#define INLINE_HEADERS 4

/* User values: 1 .. 2 * INLINE_HEADERS the first headers' names and
 * values, then: */
enum {
    RES_UV_MORE = 2 * INLINE_HEADERS + 1, /* {name, value, ...} beyond */
    RES_UV_USER,   /* fields the handler or the server assigned */
    RES_UV_CONN,   /* the server's connection table */
    RES_UV_REQ,    /* the request */
    RES_UV_WRITER, /* the connection's writer: keeps the stream alive */
    RES_NUV = RES_UV_WRITER
};

struct lasio_httpres {
    struct lasio_stream *s; /* the writer's stream (RES_UV_WRITER) */
    const struct lasio_httpconn_state *conn_state; /* (RES_UV_CONN's) */
    lua_Integer length; /* the Content-Length set, -1: none */
    lua_Integer sent;   /* body bytes streamed */
    int status, nh;
    unsigned char keep, finished, headers_sent, chunked, head, http10;
};

static const char response_token = 0;
/* The registry key of the methods table. */
static const char methods_key = 0;

/* The response at 1, or an error naming the method `what`. */
static struct lasio_httpres *
checkres(lua_State *L, const char *what) {
    struct lasio_httpres *r = lasio_testobj_(L, 1, &response_token);
    if (!r)
        luaL_error(L, "%s: self must be a " RESPONSE_MT " (res:%s()), not a %s",
                   what, what + 4, luaL_typename(L, 1));
    return r;
}

/* {====== Headers ====== */

/* Pushes the name and the value of header i (from 0). */
static void
push_header(lua_State *L, int i) {
    if (i < INLINE_HEADERS) {
        lua_getiuservalue(L, 1, 2 * i + 1);
        lua_getiuservalue(L, 1, 2 * i + 2);
        return;
    }
    lua_getiuservalue(L, 1, RES_UV_MORE);
    lua_rawgeti(L, -1, 2 * (i - INLINE_HEADERS) + 1);
    lua_rawgeti(L, -2, 2 * (i - INLINE_HEADERS) + 2);
    lua_remove(L, -3);
}

/* Header i becomes the strings at nidx and vidx. */
static void
store_header(lua_State *L, int i, int nidx, int vidx) {
    if (i < INLINE_HEADERS) {
        lua_pushvalue(L, nidx);
        lua_setiuservalue(L, 1, 2 * i + 1);
        lua_pushvalue(L, vidx);
        lua_setiuservalue(L, 1, 2 * i + 2);
        return;
    }
    if (lua_getiuservalue(L, 1, RES_UV_MORE) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 8, 0);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, RES_UV_MORE);
    }
    lua_pushvalue(L, nidx);
    lua_rawseti(L, -2, 2 * (i - INLINE_HEADERS) + 1);
    lua_pushvalue(L, vidx);
    lua_rawseti(L, -2, 2 * (i - INLINE_HEADERS) + 2);
    lua_pop(L, 1);
}

/* The index of the first header named like the string at nidx (any
 * case), or -1. */
static int
find_header(lua_State *L, struct lasio_httpres *r, int nidx) {
    size_t n;
    const char *name = lua_tolstring(L, nidx, &n);
    for (int i = 0; i < r->nh; i++) {
        size_t m;
        push_header(L, i);
        const char *hn = lua_tolstring(L, -2, &m);
        int same = m == n && strncasecmp(hn, name, n) == 0;
        lua_pop(L, 2);
        if (same)
            return i;
    }
    return -1;
}

static int
name_is(const char *name, size_t n, const char *lit, size_t litlen) {
    return n == litlen && strncasecmp(name, lit, n) == 0;
}

#define NAME_IS(name, n, lit) name_is(name, n, lit, sizeof lit - 1)

/* The headers the server writes itself: 1 when the header at 2 (value at
 * 3) was one of them and is taken care of. */
static int
special(lua_State *L, struct lasio_httpres *r) {
    size_t n, m;
    const char *name = lua_tolstring(L, 2, &n);
    if (n != 14 && n != 17 && n != 10)
        return 0;
    const char *value = lua_tolstring(L, 3, &m);
    if (NAME_IS(name, n, "content-length")) {
        size_t i = 0;
        lua_Integer v = 0;
        int digits = 0, ok = 1;
        while (i < m && (value[i] == ' ' || value[i] == '\t'))
            i++;
        for (; i < m && value[i] >= '0' && value[i] <= '9'; i++, digits++) {
            if (v > (LUA_MAXINTEGER - 9) / 10)
                ok = 0;
            else
                v = v * 10 + (value[i] - '0');
        }
        while (i < m && (value[i] == ' ' || value[i] == '\t'))
            i++;
        if (!ok || digits == 0 || i != m)
            luaL_error(L,
                       "res:set_header: Content-Length must be a number "
                       ">= 0, not '%s'",
                       value);
        r->length = v;
        return 1;
    }
    if (NAME_IS(name, n, "transfer-encoding"))
        luaL_error(L, "res:set_header: Transfer-Encoding is the server's (a "
                      "body without Content-Length is sent chunked)");
    if (NAME_IS(name, n, "connection")) {
        for (size_t i = 0; i + 5 <= m; i++)
            if (strncasecmp(value + i, "close", 5) == 0) {
                r->keep = 0;
                break;
            }
        return 1;
    }
    return 0;
}

/* ====== } */

/* {====== Checks ====== */

static void
check_open(lua_State *L, struct lasio_httpres *r, const char *what) {
    if (r->finished)
        luaL_error(L, "res:%s: the response is already finished", what);
}

static void
check_unsent(lua_State *L, struct lasio_httpres *r, const char *what) {
    check_open(L, r, what);
    if (r->headers_sent)
        luaL_error(L, "res:%s: the headers were already sent", what);
}

/* ====== } */

/* {====== Methods ====== */

static int
res_set_status(lua_State *L) {
    struct lasio_httpres *r = checkres(L, "res:set_status");
    check_unsent(L, r, "set_status");
    lua_Integer code = 0;
    if (!lua_isinteger(L, 2) || (code = lua_tointeger(L, 2)) < 100 ||
        code > 999)
        return luaL_error(L,
                          "res:set_status: status must be an integer from "
                          "100 to 999, not %s",
                          luaL_tolstring(L, 2, NULL));
    r->status = (int)code;
    return 0;
}

static int
add(lua_State *L, int replace, const char *what) {
    struct lasio_httpres *r = checkres(L, what);
    check_unsent(L, r, what + 4);
    lasio_http_check_header_(L, 2, 3, what);
    if (special(L, r))
        return 0;
    int i = replace ? find_header(L, r, 2) : -1;
    if (i < 0) {
        if (r->nh >= 0x7fff)
            return luaL_error(L, "%s: too many headers", what);
        i = r->nh++;
    }
    store_header(L, i, 2, 3);
    return 0;
}

/* res:set_header(name, value): replaces any header of that name. */
static int
res_set_header(lua_State *L) {
    return add(L, 1, "res:set_header");
}

/* res:add_header(name, value): one more header of that name
 * (Set-Cookie). */
static int
res_add_header(lua_State *L) {
    return add(L, 0, "res:add_header");
}

static int
res_get_header(lua_State *L) {
    struct lasio_httpres *r = checkres(L, "res:get_header");
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "res:get_header: name must be a string, not a %s",
                          luaL_typename(L, 2));
    int i = find_header(L, r, 2);
    if (i < 0)
        return 0;
    push_header(L, i);
    return 1;
}

/* Sends the head of the response at 1, and body (NULL: none); length:
 * the Content-Length, or -1 for a body whose length is not known (chunked
 * in HTTP/1.1, to the end of the connection in HTTP/1.0). */
static void
send_head(lua_State *L, struct lasio_httpres *r, lua_Integer length,
          const char *body, size_t blen) {
    int keep = r->keep && !r->conn_state->closing;
    int chunked = 0;
    if (length < 0) {
        if (r->http10)
            keep = 0;
        else
            chunked = 1;
    }
    r->keep = (unsigned char)keep;
    if (r->head)
        body = NULL;
    r->headers_sent = 1;
    /* a HEAD answer has the head of GET's and no body bytes at all: not
     * even the chunked terminator (it would be read as the next answer) */
    r->chunked = (unsigned char)(chunked && !r->head);
    struct lasio_http_field stackf[INLINE_HEADERS], *f = stackf;
    if (r->nh > INLINE_HEADERS)
        f = lua_newuserdatauv(L, (size_t)r->nh * sizeof *f, 0);
    int base = lua_gettop(L);
    luaL_checkstack(L, 2 * r->nh, "res:finish: too many headers");
    for (int i = 0; i < r->nh; i++) {
        push_header(L, i); /* kept on the stack while the bytes are used */
        f[i].name = lua_tolstring(L, -2, &f[i].namelen);
        f[i].value = lua_tolstring(L, -1, &f[i].valuelen);
    }
    int flags =
        (chunked ? LASIO_HTTP_CHUNKED : 0) | (!keep       ? LASIO_HTTP_CLOSE
                                              : r->http10 ? LASIO_HTTP_KEEPALIVE
                                                          : 0);
    /* no client I/O error is raised here: a lost connection is recorded
     * for the next drain; it raises only on a stream closed under the
     * handler (the server's shutdown), reported like any handler error */
    lasio_http_send_response_(L, r->s, r->status, f, (size_t)r->nh, length,
                              flags, body, blen);
    lua_settop(L, base);
}

static int
finish_k(lua_State *L, int status, lua_KContext ctx) {
    (void)L, (void)status, (void)ctx;
    return 0;
}

/* res:finish([body]): ends the response (idempotent without a body). */
int
lasio_httpres_finish_(lua_State *L) {
    struct lasio_httpres *r = checkres(L, "res:finish");
    int bt = lua_type(L, 2);
    if (bt != LUA_TNONE && bt != LUA_TNIL && bt != LUA_TSTRING)
        return luaL_error(L, "res:finish: body must be a string, not a %s",
                          luaL_typename(L, 2));
    int has_body = bt == LUA_TSTRING;
    if (r->finished) {
        if (!has_body)
            return 0;
        check_open(L, r, "finish");
    }
    if (r->headers_sent) {
        /* after write(): lua/lasio/http_server.lua ends the stream */
        lua_settop(L, 2);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &methods_key);
        lua_getfield(L, -1, "_finish_stream");
        lua_replace(L, -2);
        lua_insert(L, 1);
        lua_callk(L, 2, 0, 0, finish_k);
        return 0;
    }
    size_t blen = 0;
    const char *body = has_body ? lua_tolstring(L, 2, &blen) : "";
    if (r->length >= 0 && (size_t)r->length != blen && !r->head)
        return luaL_error(L,
                          "res:finish: the body has %I bytes, but "
                          "Content-Length says %I",
                          (lua_Integer)blen, r->length);
    r->finished = 1;
    send_head(L, r, r->length >= 0 ? r->length : (lua_Integer)blen, body, blen);
    return 0;
}

/* res:_begin_write(chunk) -> send, chunked: what write() does before it
 * waits for the client: checks, the head when not sent yet; send is false
 * when no bytes go out (a HEAD answer, an empty chunk). */
static int
res_begin_write(lua_State *L) {
    struct lasio_httpres *r = checkres(L, "res:write");
    check_open(L, r, "write");
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "res:write: chunk must be a string, not a %s",
                          luaL_typename(L, 2));
    if (!r->headers_sent)
        send_head(L, r, r->length, NULL, 0);
    size_t n = lua_rawlen(L, 2);
    if (r->head || n == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    r->sent += (lua_Integer)n;
    if (r->length >= 0 && r->sent > r->length)
        return luaL_error(
            L, "res:write: more body than its Content-Length (%I)", r->length);
    lua_pushboolean(L, 1);
    lua_pushboolean(L, r->chunked);
    return 2;
}

/* res:_end_stream() -> "chunked" (the last chunk is due), "short" (and
 * the bytes sent and the Content-Length: the connection must close) or
 * nil: marks a streamed response finished. */
static int
res_end_stream(lua_State *L) {
    struct lasio_httpres *r = checkres(L, "res:finish");
    r->finished = 1;
    if (r->chunked) {
        lua_pushliteral(L, "chunked");
        return 1;
    }
    if (r->length >= 0 && r->sent < r->length && !r->head) {
        r->keep = 0; /* the client would wait for the rest */
        lua_pushliteral(L, "short");
        lua_pushinteger(L, r->sent);
        lua_pushinteger(L, r->length);
        return 3;
    }
    return 0;
}

/* ====== } */

/* {====== Fields ====== */

#define IS(k, n, lit) ((n) == sizeof lit - 1 && memcmp(k, lit, n) == 0)

/* Pushes the built-in field k; 0 when k is none. */
static int
push_field(lua_State *L, struct lasio_httpres *r, const char *k, size_t n) {
    if (IS(k, n, "status"))
        lua_pushinteger(L, r->status);
    else if (IS(k, n, "finished"))
        lua_pushboolean(L, r->finished);
    else if (IS(k, n, "headers_sent"))
        lua_pushboolean(L, r->headers_sent);
    else if (IS(k, n, "_keep"))
        lua_pushboolean(L, r->keep);
    else if (IS(k, n, "_conn"))
        lua_getiuservalue(L, 1, RES_UV_CONN);
    else if (IS(k, n, "_req"))
        lua_getiuservalue(L, 1, RES_UV_REQ);
    else if (IS(k, n, "_headers")) {
        /* a copy, {name, value, ...} (the WebSocket answer's extras) */
        lua_createtable(L, 2 * r->nh, 0);
        for (int i = 0; i < r->nh; i++) {
            push_header(L, i);
            lua_rawseti(L, -3, 2 * i + 2);
            lua_rawseti(L, -2, 2 * i + 1);
        }
    } else
        return 0;
    return 1;
}

/* __index (upvalue 1: the methods): the handler's own fields first, then
 * the built-in ones, then the methods. */
static int
res_index(lua_State *L) {
    struct lasio_httpres *r = lua_touserdata(L, 1);
    if (lasio_http_own_field_(L, RES_UV_USER))
        return 1;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, 2, &n);
        if (push_field(L, r, k, n))
            return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* __newindex: the state the server sets (finished, headers_sent, _keep,
 * status), else the response's own table, made on first use. */
static int
res_newindex(lua_State *L) {
    struct lasio_httpres *r = lua_touserdata(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, 2, &n);
        unsigned char *flag = IS(k, n, "finished")       ? &r->finished
                              : IS(k, n, "headers_sent") ? &r->headers_sent
                              : IS(k, n, "_keep")        ? &r->keep
                                                         : NULL;
        if (flag) {
            *flag = (unsigned char)lua_toboolean(L, 3);
            return 0;
        }
        if (IS(k, n, "status")) {
            lua_settop(L, 3);
            lua_remove(L, 2);
            return res_set_status(L);
        }
    }
    return lasio_http_set_own_field_(L, RES_UV_USER);
}

static int
res_tostring(lua_State *L) {
    struct lasio_httpres *r = lua_touserdata(L, 1);
    lua_pushfstring(L, "lasio.http.Response (%d%s): %p", r->status,
                    r->finished ? ", finished" : "", (void *)r);
    return 1;
}

/* ====== } */

void
lasio_httpres_pushmt_(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &response_token);
}

void
lasio_httpres_push_(lua_State *L, int mt, int req, int conn,
                    const struct lasio_httpconn_state *st, int writer,
                    struct lasio_stream *s, int keep) {
    mt = lua_absindex(L, mt);
    req = lua_absindex(L, req);
    conn = lua_absindex(L, conn);
    writer = lua_absindex(L, writer);
    struct lasio_httpreq *q = lua_touserdata(L, req);
    struct lasio_httpres *r = lua_newuserdatauv(L, sizeof *r, RES_NUV);
    memset(r, 0, sizeof *r);
    r->s = s;
    r->conn_state = st;
    r->length = -1;
    r->status = 200;
    r->keep = (unsigned char)keep;
    r->head = (unsigned char)lasio_httpreq_is_head_(q);
    r->http10 = (unsigned char)lasio_httpreq_is_http10_(q);
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, conn);
    lua_setiuservalue(L, -2, RES_UV_CONN);
    lua_pushvalue(L, req);
    lua_setiuservalue(L, -2, RES_UV_REQ);
    lua_pushvalue(L, writer);
    lua_setiuservalue(L, -2, RES_UV_WRITER);
    lasio_httpreq_attach_(L, req, conn, -1);
}

int
lasio_httpres_finished_(const struct lasio_httpres *r) {
    return r->finished;
}

int
lasio_httpres_keep_(const struct lasio_httpres *r) {
    return r->finished && r->keep;
}

void
lasio_httpres_open_(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"set_status", res_set_status},    {"set_header", res_set_header},
        {"add_header", res_add_header},    {"get_header", res_get_header},
        {"finish", lasio_httpres_finish_}, {"_begin_write", res_begin_write},
        {"_end_stream", res_end_stream},   {NULL, NULL}};
    /* http_server.lua adds write */
    static const struct lasio_http_class response = {
        .tname = RESPONSE_MT,
        .token = &response_token,
        .methods_key = &methods_key,
        .methods = methods,
        .field = "http_response_methods",
        .index = res_index,
        .newindex = res_newindex,
        .tostring = res_tostring,
    };
    lasio_http_open_class_(L, &response);
}
