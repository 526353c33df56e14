/*
 * httpconn.c: one request of lasio.http.serve's connection loop, the
 * handler's call (docs/API.md, HTTP/1.1 Server). http_run calls the
 * handler in the connection's task with lua_callk, so that it may suspend
 * anywhere, finishes the response the handler left open, and tells the
 * loop whether the connection stays open. The loop around it (reading the
 * next head, the failures, lingering, the watcher that cancels a handler
 * whose client went away) is lua/lasio/http_server.lua's: per request it
 * is a few calls of C functions (read_head, http_response, http_run,
 * drain), so a state machine in C would save little of the request's
 * cost and put the rare paths (errors, upgrades, lingering) in two
 * places.
 * SPDX-License-Identifier: MIT
 */
#include "http/http.h"

/* Stack: 1 handler, 2 request, 3 response. ctx 0: the handler returned;
 * 1: the finish the handler left to the server returned. */
static int
run_k(lua_State *L, int status, lua_KContext ctx) {
    /* checked by http_run; the slot stays the response */
    const struct lasio_httpres *r = lua_touserdata(L, 3);
    (void)status;
    if (ctx == 0 && !lasio_httpres_finished_(r)) {
        lua_pushcfunction(L, lasio_httpres_finish_);
        lua_pushvalue(L, 3);
        lua_callk(L, 1, 0, 1, run_k);
    }
    lua_pushboolean(L, lasio_httpres_keep_(r));
    return 1;
}

/* core.internal.http_run(handler, req, res) -> keep: calls
 * handler(req, res), then res:finish() unless it finished; keep: the
 * connection may take the next request. Errors propagate (the server
 * pcalls this). */
static int
http_run(lua_State *L) {
    lua_settop(L, 3);
    if (!lasio_httpres_test_(L, 3))
        return luaL_error(L, "http_run: res must be a lasio.http.Response");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_callk(L, 2, 0, 0, run_k);
    return run_k(L, LUA_OK, 0);
}

void
lasio_httpconn_open_(lua_State *L) {
    lua_pushcfunction(L, http_run);
    lua_setfield(L, -2, "http_run");
}
