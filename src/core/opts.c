/*
 * opts.c: reading option tables (`{backlog = 100, ...}`) for every layer:
 * optional fields with their defaults and types, and the refusal of a
 * misspelt key, each error naming the function and the option.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "core/core.h"

int
lasio_optfield_(lua_State *L, int opts, const char *key) {
    if (opts == 0 || lua_isnoneornil(L, opts)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    return lua_getfield(L, opts, key);
}

int
lasio_optboolean_(lua_State *L, int opts, const char *key, int dflt,
                  const char *what) {
    int t = lasio_optfield_(L, opts, key);
    int v = dflt;
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a boolean, got %s", what, key,
                   luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

lua_Integer
lasio_optinteger_(lua_State *L, int opts, const char *key, lua_Integer dflt,
                  lua_Integer min, const char *what) {
    int t = lasio_optfield_(L, opts, key);
    lua_Integer v = dflt;
    if (t != LUA_TNIL) {
        int isnum = 0;
        if (t == LUA_TNUMBER)
            v = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "%s: option '%s' must be an integer, got %s", what,
                       key, luaL_tolstring(L, -1, NULL));
        if (v < min)
            luaL_error(L, "%s: option '%s' must be >= %d, got %d", what, key,
                       (int)min, (int)v);
    }
    lua_pop(L, 1);
    return v;
}

void
lasio_checkopts_(lua_State *L, int idx, const char *what,
                 const char *const known[]) {
    if (lua_isnoneornil(L, idx))
        return;
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: options must be a table, got %s", what,
                   luaL_typename(L, idx));
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; known[i] && !ok; i++)
                ok = strcmp(k, known[i]) == 0;
        }
        if (!ok)
            luaL_error(L, "%s: unknown option '%s'", what,
                       luaL_tolstring(L, -1, NULL));
    }
}
