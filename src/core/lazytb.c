/*
 * lazytb.c: the traceback of an error instance, taken cheaply where the
 * error is made and written out when someone reads it (errors.c). The
 * text is luaL_traceback's; what costs there is the name of each frame's
 * function, looked up in package.loaded (~50k instructions a frame with
 * lasio loaded), and most errors (a CancelledError per cancelled task)
 * are never shown. So the capture keeps, per frame, the "src:line: in "
 * part, the function and the name its call site gives; the search runs
 * on the first read, against package.loaded as it is then.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "core/core.h"

#define LEVELS1 10 /* frames shown at the top of a long stack */
#define LEVELS2 11 /* and at its bottom (as lauxlib) */
#define SLOTS 4    /* per frame: prefix, function or false, name, tail */

/* The level of the outermost frame of L1 (lauxlib's lastlevel). */
static int
lastlevel(lua_State *L1) {
    lua_Debug ar;
    int li = 1, le = 1;
    while (lua_getstack(L1, le, &ar)) {
        li = le;
        le *= 2;
    }
    while (li < le) {
        int m = (li + le) / 2;
        if (lua_getstack(L1, m, &ar))
            li = m + 1;
        else
            le = m;
    }
    return le - 1;
}

/* The name its call site or its kind gives a frame's function (what
 * luaL_traceback shows when package.loaded does not hold it). */
static void
pushlocalname(lua_State *L, lua_Debug *ar) {
    if (*ar->namewhat != '\0')
        lua_pushfstring(L, "%s '%s'", ar->namewhat, ar->name);
    else if (*ar->what == 'm')
        lua_pushliteral(L, "main chunk");
    else if (*ar->what != 'C')
        lua_pushfstring(L, "function <%s:%d>", ar->short_src, ar->linedefined);
    else
        lua_pushliteral(L, "?");
}

void
lasio_tb_capture_(lua_State *L, lua_State *L1, int level) {
    lua_Debug ar;
    int last = lastlevel(L1);
    int limit2show = (last - level > LEVELS1 + LEVELS2) ? LEVELS1 : -1;
    int n = 0, frames = last - level + 1;
    if (frames > LEVELS1 + LEVELS2 + 1)
        frames = LEVELS1 + LEVELS2 + 1;
    lua_createtable(L, frames > 0 ? SLOTS * frames : 0, 0);
    while (lua_getstack(L1, level++, &ar)) {
        if (limit2show-- == 0) {
            int skip = last - level - LEVELS2 + 1;
            lua_pushfstring(L, "\n\t...\t(skipping %d levels)", skip);
            lua_rawseti(L, -2, ++n);
            lua_pushboolean(L, 0);
            lua_rawseti(L, -2, ++n);
            lua_pushliteral(L, "");
            lua_rawseti(L, -2, ++n);
            lua_pushboolean(L, 0);
            lua_rawseti(L, -2, ++n);
            level += skip;
            continue;
        }
        lua_getinfo(L1, "Slntf", &ar);
        if (L1 != L)
            lua_xmove(L1, L, 1);
        if (ar.currentline <= 0)
            lua_pushfstring(L, "\n\t%s: in ", ar.short_src);
        else
            lua_pushfstring(L, "\n\t%s:%d: in ", ar.short_src, ar.currentline);
        lua_rawseti(L, -3, ++n);
        lua_rawseti(L, -2, ++n); /* the function */
        pushlocalname(L, &ar);
        lua_rawseti(L, -2, ++n);
        lua_pushboolean(L, ar.istailcall);
        lua_rawseti(L, -2, ++n);
    }
}

/* Whether the table at objidx holds the value at the top in one of its
 * fields, to depth level; then its name ("a.b") replaces the value
 * (lauxlib's findfield). */
static int
findfield(lua_State *L, int objidx, int level) {
    if (level == 0 || !lua_istable(L, -1))
        return 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (lua_rawequal(L, objidx, -1)) {
                lua_pop(L, 1);
                return 1;
            } else if (findfield(L, objidx, level - 1)) {
                lua_pushliteral(L, ".");
                lua_replace(L, -3);
                lua_concat(L, 3);
                return 1;
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Pushes "function 'name'" for the function at fidx when package.loaded
 * holds it (lauxlib's pushglobalfuncname); else pushes nothing, 0. */
static int
pushglobalname(lua_State *L, int fidx) {
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    luaL_checkstack(L, 6, "not enough stack");
    if (!findfield(L, fidx, 2)) {
        lua_settop(L, top);
        return 0;
    }
    const char *name = lua_tostring(L, -1);
    if (strncmp(name, LUA_GNAME ".", 3) == 0)
        name += 3;
    lua_pushfstring(L, "function '%s'", name);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 1;
}

void
lasio_tb_format_(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "stack traceback:");
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i + SLOTS - 1 <= n; i += SLOTS) {
        lua_rawgeti(L, idx, i);
        luaL_addvalue(&b);
        if (lua_rawgeti(L, idx, i + 1) == LUA_TBOOLEAN) {
            lua_pop(L, 1);
            continue; /* the skip line */
        }
        int fidx = lua_gettop(L);
        if (pushglobalname(L, fidx)) {
            lua_remove(L, fidx);
        } else {
            lua_pop(L, 1);
            lua_rawgeti(L, idx, i + 2);
        }
        luaL_addvalue(&b);
        lua_rawgeti(L, idx, i + 3);
        int tail = lua_toboolean(L, -1);
        lua_pop(L, 1); /* the buffer's top again, before it grows */
        if (tail)
            luaL_addstring(&b, "\n\t(...tail calls...)");
    }
    luaL_pushresult(&b);
}
