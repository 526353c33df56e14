/*
 * sysutil.c: small helpers shared by the operating-system layer (sys.h):
 * OSErrors with a file name (on core/errors.c's), anchors in the loop,
 * and the count of a task's wait on one of our I/O objects.
 * Owns nothing. Invariant: a task suspended here is counted once in
 * loop->nsources and uncounted by its own continuation.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sys/sys.h"

void
lasio_sys_oserror_(lua_State *L, const char *op, int err, const char *detail) {
    if (!detail) {
        lasio_oserror_push_(L, op, err);
        return;
    }
    lua_pushfstring(L, "%s: %s", detail, strerror(err));
    lasio_oserror_pushmsg_(L, op, err, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_pushstring(L, detail);
    lua_setfield(L, -2, "filename");
}

int
lasio_sys_raise_(lua_State *L, const char *op, int err, const char *detail) {
    lasio_sys_oserror_(L, op, err, detail);
    return lua_error(L);
}

void
lasio_sys_anchor_(lua_State *L, struct lasio_loop *loop, int idx, int *anchor) {
    idx = lua_absindex(L, idx);
    if (*anchor != LUA_NOREF)
        return;
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_pushvalue(L, idx);
    *anchor = luaL_ref(L, -2);
    lua_pop(L, 2);
}

void
lasio_sys_unanchor_(lua_State *L, struct lasio_loop *loop, int *anchor) {
    if (*anchor == LUA_NOREF)
        return;
    lasio_pushloop_(L, loop);
    if (lua_isnil(L, -1)) { /* the loop is closed: its anchors go with it */
        lua_pop(L, 1);
        *anchor = LUA_NOREF;
        return;
    }
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    luaL_unref(L, -1, *anchor);
    lua_pop(L, 2);
    *anchor = LUA_NOREF;
}

/* {====== Waiting for an I/O object ====== */

void
lasio_sys_uncount_(struct lasio_loop *loop) {
    if (!loop->closed && loop->nsources > 0)
        loop->nsources--;
}

/* ====== } */
