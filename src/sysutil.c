/*
 * sysutil.c: small helpers shared by the operating-system layer (sys.h):
 * OSErrors built from errno values, protected calls from libevent
 * callbacks with an object of their own, and the wait of a task on one of
 * our I/O objects (suspend, wake, resume) without a Future.
 * Owns nothing. Invariant: a task suspended here is counted once in
 * loop->nsources and uncounted by its own continuation.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sys.h"

void
lasio_sys_oserror_(lua_State *L, const char *op, int err, const char *detail) {
    const char *code = strerrorname_np(err);
    if (detail)
        lua_pushfstring(L, "%s: %s: %s", op, detail, strerror(err));
    else
        lua_pushfstring(L, "%s: %s", op, strerror(err));
    lasio_newerror_(L, ERR_OSERROR, lua_tostring(L, -1), 1);
    lua_remove(L, -2);
    lua_pushstring(L, code ? code : "EUNKNOWN");
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, err);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
    if (detail) {
        lua_pushstring(L, detail);
        lua_setfield(L, -2, "filename");
    }
}

int
lasio_sys_raise_(lua_State *L, const char *op, int err, const char *detail) {
    lasio_sys_oserror_(L, op, err, detail);
    return lua_error(L);
}

/* [-0, +0, -] runs the body with (ud) as its argument */
static int
guard_body(lua_State *L) {
    lua_CFunction body = (lua_CFunction)(void (*)(void))lua_touserdata(L, 1);
    lua_remove(L, 1);
    return body(L);
}

int
lasio_sys_guard_(struct lasio_loop *loop, lua_CFunction body, void *ud) {
    lua_State *L = loop->L;
    int top = lua_gettop(L), rc = 0;
    if (!lua_checkstack(L, 4))
        return -1;
    lua_pushcfunction(L, guard_body);
    lua_pushlightuserdata(L, (void *)(void (*)(void))body);
    lua_pushlightuserdata(L, ud);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "lasio: error inside the event loop: %s\n",
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                               : "(not a string)");
        fflush(stderr);
        rc = -1;
    }
    lua_settop(L, top);
    return rc;
}

void
lasio_sys_pin_(lua_State *L, struct lasio_loop *loop, int idx, int *pin) {
    idx = lua_absindex(L, idx);
    if (*pin != LUA_NOREF)
        return;
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_pushvalue(L, idx);
    *pin = luaL_ref(L, -2);
    lua_pop(L, 2);
}

void
lasio_sys_unpin_(lua_State *L, struct lasio_loop *loop, int *pin) {
    if (*pin == LUA_NOREF)
        return;
    lasio_pushloop_(L, loop);
    if (lua_isnil(L, -1)) { /* the loop is closed: its anchors go with it */
        lua_pop(L, 1);
        *pin = LUA_NOREF;
        return;
    }
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    luaL_unref(L, -1, *pin);
    lua_pop(L, 2);
    *pin = LUA_NOREF;
}

/* {====== Waiting for an I/O object ====== */

void
lasio_sys_uncount_(struct lasio_loop *loop) {
    if (!loop->closed && loop->nsources > 0)
        loop->nsources--;
}

/* ====== } */
