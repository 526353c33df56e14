/*
 * httpconn.c: the request loop of a lasio.http.serve connection (docs/API.md,
 * HTTP/1.1 Server), in the connection's task. Per request: the next head
 * straight from the stream's buffer (httpparse.c: a request object), the
 * refusals decided before the handler (417, 413), the response object,
 * the handler called with lua_pcallk (it may suspend anywhere; its
 * failure ends the loop and is lua/lasio/http_server.lua's to answer),
 * the finish it left undone, and the wait while the client does not read
 * the answers (drain) before the next request. A C state machine: every
 * step that waits has its continuation, so a keep-alive connection serves
 * request after request without going back to Lua. What is rare stays Lua
 * and is asked for: the body a handler left unread (skip_body), and
 * whatever ends the loop (a refusal, a failure, an upgrade), returned.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "http/http.h"

/* The stack: the arguments of http_serve, then the request's state. */
enum {
    S_PARSER = 1,
    S_READER,
    S_WRITER,
    S_CONN,
    S_HANDLER,
    S_STATE, /* the connection's state (struct lasio_httpconn_state) */
    S_HEADERS_TIMEOUT,
    S_KEEPALIVE_TIMEOUT,
    S_KEEPALIVE_REQUESTS,
    S_LIFETIME, /* requests after this time close the connection */
    S_MAX_BODY,
    S_SKIP_BODY, /* skip_body(conn, req) -> may go on */
    S_NREQ,
    S_REQ,
    S_RES,
    S_FLAGS,
    S_BASE = S_FLAGS
};

/* What a continuation resumes. */
enum { K_HEAD, K_HEAD_WAIT, K_HANDLER, K_FINISH, K_DRAIN, K_SKIP };

static int step(lua_State *L, int k, int status);

static int
conn_k(lua_State *L, int status, lua_KContext ctx) {
    return step(L, (int)ctx, status);
}

/* The upvalue of http_serve: the responses' metatable. */
#define U_RES_MT 1

/* The objects in the fixed slots, checked by http_serve. */
static struct lasio_httpconn_state *
state_of(lua_State *L) {
    return lua_touserdata(L, S_STATE);
}

static struct lasio_stream *
reader_of(lua_State *L) {
    return ((struct lasio_view *)lua_touserdata(L, S_READER))->s;
}

static struct lasio_stream *
writer_of(lua_State *L) {
    return ((struct lasio_view *)lua_touserdata(L, S_WRITER))->s;
}

/* Starts the next request: 1 when it is there, 0 when the loop ends
 * (results pushed), -1 when the head is awaited. */
static int
next_head(lua_State *L) {
    lua_settop(L, S_BASE);
    lua_pushnil(L);
    lua_replace(L, S_REQ);
    lua_pushnil(L);
    lua_replace(L, S_RES);
    struct lasio_httpconn_state *st = state_of(L);
    if (st->closing) {
        lua_pushliteral(L, "closing");
        return 0;
    }
    st->busy = 0;
    struct httpparser *p = lua_touserdata(L, S_PARSER);
    struct lasio_stream *s = reader_of(L);
    lua_Integer nreq = lua_tointeger(L, S_NREQ);
    double hto = lua_tonumber(L, S_HEADERS_TIMEOUT);
    double idle = nreq == 0 ? hto : lua_tonumber(L, S_KEEPALIVE_TIMEOUT);
    if (lasio_http_head_begin_(L, p, s, idle, hto))
        return 1;
    return -1;
}

/* The head's results are on the top (request and flags, or nil and why):
 * runs the request up to the handler's call. Returns the number of
 * results when the loop ends, else 0 once the handler returned (or
 * failed: *status) without suspending. */
static int
start_request(lua_State *L, int *status) {
    if (lua_isnil(L, -2)) { /* closed, or idle too long */
        lua_settop(L, S_BASE);
        lua_pushliteral(L, "done");
        return lua_gettop(L) - S_BASE;
    }
    lua_replace(L, S_FLAGS);
    lua_replace(L, S_REQ);
    lua_settop(L, S_BASE);
    struct lasio_httpconn_state *st = state_of(L);
    st->busy = 1;
    lua_Integer nreq = lua_tointeger(L, S_NREQ) + 1;
    lua_pushinteger(L, nreq);
    lua_replace(L, S_NREQ);
    int flags = (int)lua_tointeger(L, S_FLAGS);
    struct lasio_httpreq *req = lua_touserdata(L, S_REQ);
    if (flags) {
        const char *msg;
        int refusal =
            lasio_httpreq_refusal_(req, lua_tointeger(L, S_MAX_BODY), &msg);
        if (refusal) {
            lua_pushliteral(L, "refuse");
            lua_pushinteger(L, refusal);
            lua_pushstring(L, msg);
            return 3;
        }
    }
    int keep = !(flags & LASIO_HTTP_HEAD_UPGRADE) &&
               nreq < lua_tointeger(L, S_KEEPALIVE_REQUESTS) &&
               lasio_httpreq_keeps_(req, lua_tonumber(L, S_LIFETIME));
    lasio_httpres_push_(L, lua_upvalueindex(U_RES_MT), S_REQ, S_CONN, st,
                        S_WRITER, writer_of(L), keep);
    lua_replace(L, S_RES);
    st->handling = 1;
    lua_pushvalue(L, S_HANDLER);
    lua_pushvalue(L, S_REQ);
    lua_pushvalue(L, S_RES);
    *status = lua_pcallk(L, 2, 0, 0, K_HANDLER, conn_k);
    return 0;
}

/* A failure of the handler (or of the finish left to the server), on the
 * top: the loop ends, the server answers it. */
static int
failed(lua_State *L) {
    state_of(L)->handling = 0;
    lua_pushliteral(L, "failed");
    lua_insert(L, -2);
    lua_pushvalue(L, S_REQ);
    lua_pushvalue(L, S_RES);
    return 4;
}

static int
step(lua_State *L, int k, int status) {
    for (;;) {
        switch (k) {
        case K_HEAD: {
            int got = next_head(L);
            if (got == 0)
                return lua_gettop(L) - S_BASE;
            if (got < 0) {
                struct lasio_stream *s = reader_of(L);
                return lasio_reader_wait_(L, s, S_BASE, "read_head",
                                          K_HEAD_WAIT, conn_k);
            }
            break;
        }
        case K_HEAD_WAIT: { /* woken in the head's wait */
            struct lasio_stream *s = reader_of(L);
            lasio_reader_woken_(L, s, S_BASE);
            struct httpparser *p = lua_touserdata(L, S_PARSER);
            if (!lasio_http_head_again_(L, p, s))
                return lasio_reader_wait_(L, s, S_BASE, "read_head",
                                          K_HEAD_WAIT, conn_k);
            break;
        }
        case K_HANDLER: {
            if (status != LUA_OK && status != LUA_YIELD)
                return failed(L);
            lua_settop(L, S_BASE);
            if (!lasio_httpres_finished_(lua_touserdata(L, S_RES))) {
                lua_pushcfunction(L, lasio_httpres_finish_);
                lua_pushvalue(L, S_RES);
                status = lua_pcallk(L, 1, 0, 0, K_FINISH, conn_k);
            }
            k = K_FINISH;
            continue;
        }
        case K_FINISH: {
            if (status != LUA_OK && status != LUA_YIELD)
                return failed(L);
            lua_settop(L, S_BASE);
            struct lasio_httpconn_state *st = state_of(L);
            st->handling = 0;
            if (st->upgraded) {
                lua_pushliteral(L, "upgraded");
                return 1;
            }
            /* (abort is set only once the loop ended) */
            if (!lasio_httpres_keep_(lua_touserdata(L, S_RES)) || st->gone) {
                lua_pushliteral(L, "done");
                return 1;
            }
            /* a client that pipelines requests and does not read the
             * answers: take no more until it reads (L4); one that never
             * does is cut at send_timeout. drain() returns at once unless
             * the stream paused writing or failed: then only is it
             * called. */
            struct lasio_stream *w = writer_of(L);
            status = LUA_OK;
            if (w->wpaused || w->werr || w->rerr || w->closing || w->released) {
                lua_getfield(L, S_WRITER, "drain");
                lua_pushvalue(L, S_WRITER);
                status = lua_pcallk(L, 1, 0, 0, K_DRAIN, conn_k);
            }
            k = K_DRAIN;
            continue;
        }
        case K_DRAIN: {
            if (status != LUA_OK && status != LUA_YIELD) {
                lua_settop(L, S_BASE);
                state_of(L)->abort = 1;
                lua_pushliteral(L, "done");
                return 1;
            }
            lua_settop(L, S_BASE);
            if (lua_tointeger(L, S_FLAGS) & LASIO_HTTP_HEAD_BODY) {
                lua_pushvalue(L, S_SKIP_BODY);
                lua_pushvalue(L, S_CONN);
                lua_pushvalue(L, S_REQ);
                lua_callk(L, 2, 1, K_SKIP, conn_k);
                k = K_SKIP;
                continue;
            }
            k = K_HEAD;
            continue;
        }
        case K_SKIP: {
            int go_on = lua_toboolean(L, -1);
            lua_settop(L, S_BASE);
            if (!go_on) {
                lua_pushliteral(L, "done");
                return 1;
            }
            k = K_HEAD;
            continue;
        }
        }
        /* the head is there (a loop, not a call of step: a connection
         * whose requests never suspend must not deepen the C stack) */
        int n = start_request(L, &status);
        if (n > 0)
            return n;
        k = K_HANDLER;
    }
}

/* {====== The connection's state ====== */

#define STATE_MT "lasio.http.ConnectionState"

static const char state_token = 0;

/* The byte of the field named at 2, or an error naming it. */
static unsigned char *
state_field(lua_State *L) {
    struct lasio_httpconn_state *st =
        lasio_checkobj_(L, 1, &state_token, STATE_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "busy") == 0)
        return &st->busy;
    if (strcmp(k, "handling") == 0)
        return &st->handling;
    if (strcmp(k, "upgraded") == 0)
        return &st->upgraded;
    if (strcmp(k, "gone") == 0)
        return &st->gone;
    if (strcmp(k, "abort") == 0)
        return &st->abort;
    if (strcmp(k, "closing") == 0)
        return &st->closing;
    luaL_error(L, "connection state: no field '%s'", k);
    return NULL;
}

static int
state_index(lua_State *L) {
    lua_pushboolean(L, *state_field(L));
    return 1;
}

static int
state_newindex(lua_State *L) {
    *state_field(L) = (unsigned char)lua_toboolean(L, 3);
    return 0;
}

/* core.internal.http_conn_state() -> a new state, every field false */
static int
http_conn_state(lua_State *L) {
    struct lasio_httpconn_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &state_token);
    lua_setmetatable(L, -2);
    return 1;
}

/* ====== } */

/* core.internal.http_serve(parser, reader, writer, conn, handler, state,
 * headers_timeout, keepalive_timeout, keepalive_requests, lifetime,
 * max_body, skip_body) -> what, ...: serves the connection's requests
 * until one ends the loop: "done" (closed, idle, not kept alive, cut),
 * "closing" (the server closes), "refuse", status, message (answer it
 * and close), "failed", err, req, res (the handler failed) or "upgraded".
 * Raises what reading a head raises (HTTPError ...). The state (conn's)
 * says where the loop is (busy, handling); closing is read before each
 * request, upgraded and gone after it; abort is set when the loop ends
 * on a failed drain. */
static int
http_serve(lua_State *L) {
    lasio_http_checkparser_(L, S_PARSER);
    lasio_checkreader_(L, S_READER);
    lasio_checkwriter_(L, S_WRITER);
    luaL_checktype(L, S_CONN, LUA_TTABLE);
    lasio_checkobj_(L, S_STATE, &state_token, STATE_MT);
    luaL_checknumber(L, S_HEADERS_TIMEOUT);
    luaL_checknumber(L, S_KEEPALIVE_TIMEOUT);
    luaL_checkinteger(L, S_KEEPALIVE_REQUESTS);
    luaL_checknumber(L, S_LIFETIME);
    luaL_checkinteger(L, S_MAX_BODY);
    luaL_checktype(L, S_SKIP_BODY, LUA_TFUNCTION);
    lua_settop(L, S_BASE);
    lua_pushinteger(L, 0);
    lua_replace(L, S_NREQ);
    return step(L, K_HEAD, LUA_OK);
}

void
lasio_httpconn_open_(lua_State *L) {
    if (lasio_newmetatable_(L, STATE_MT, &state_token)) {
        lua_pushcfunction(L, state_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, state_newindex);
        lua_setfield(L, -2, "__newindex");
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &state_token);
    lua_pushcfunction(L, http_conn_state);
    lua_setfield(L, -2, "http_conn_state");
    lasio_httpres_pushmt_(L);
    lua_pushcclosure(L, http_serve, 1);
    lua_setfield(L, -2, "http_serve");
}
