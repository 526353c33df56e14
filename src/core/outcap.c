/*
 * outcap.c: the output cap of a loop (docs/UNTRUSTED.md). Once a cap is
 * set, print, io.write and the write method of files, for io.stdout and
 * io.stderr, count their bytes against it: a call that would pass it
 * writes nothing and raises "NAME: the output cap is reached (N bytes)".
 * The functions are wrapped in the state's base and io libraries (once);
 * each wrapper counts, then calls the function it wraps.
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"

enum { OUT_PRINT, OUT_WRITE, OUT_FILE_WRITE };
static const char *const out_names[] = {"print", "io.write", "file:write"};

/* Is the value at idx io.stdout or io.stderr? */
static int
is_std_stream(lua_State *L, int idx) {
    int found = 0;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        for (int i = 0; i < 2 && !found; i++) {
            lua_getfield(L, -1, i ? "stderr" : "stdout");
            found = lua_rawequal(L, -1, idx);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    return found;
}

/* Bytes the call with its arguments at 1..n would write. */
static long long
bytes_of(lua_State *L, int kind, int n) {
    long long bytes = 0;
    int first = kind == OUT_FILE_WRITE ? 2 : 1;
    for (int i = first; i <= n; i++) {
        size_t len = 0;
        if (kind == OUT_PRINT) {
            luaL_tolstring(L, i, &len);
            lua_pop(L, 1);
            len += 1; /* a tab, or the newline */
        } else if (lua_type(L, i) == LUA_TSTRING ||
                   lua_type(L, i) == LUA_TNUMBER) {
            lua_pushvalue(L, i); /* a number's text, as write makes it */
            lua_tolstring(L, -1, &len);
            lua_pop(L, 1);
        }
        bytes += (long long)len;
    }
    return kind == OUT_PRINT && n == 0 ? 1 : bytes;
}

static int
counted(lua_State *L) {
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    int n = lua_gettop(L);
    struct lasio_loop *loop = lasio_running_loop_(L);
    struct lasio_limits *lim = loop ? loop->limits : NULL;
    if (lim && lim->max_output > 0 &&
        (kind != OUT_FILE_WRITE || is_std_stream(L, 1))) {
        long long bytes = bytes_of(L, kind, n);
        if (bytes > lim->max_output - lim->output_used)
            return luaL_error(L, "%s: the output cap is reached (%I bytes)",
                              out_names[kind], (lua_Integer)lim->max_output);
        lim->output_used += bytes;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps field k of the table at idx unless it is wrapped already. */
static void
wrap(lua_State *L, int idx, const char *k, int kind) {
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, k);
    if (lua_isfunction(L, -1) && lua_tocfunction(L, -1) != counted) {
        lua_pushinteger(L, kind);
        lua_pushcclosure(L, counted, 2);
        lua_setfield(L, idx, k);
    } else {
        lua_pop(L, 1);
    }
}

void
lasio_outcap_install_(lua_State *L) {
    luaL_checkstack(L, 6, NULL);
    lua_pushglobaltable(L);
    wrap(L, -1, "print", OUT_PRINT);
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "io") == LUA_TTABLE)
        wrap(L, -1, "write", OUT_WRITE);
    lua_pop(L, 2);
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE &&
        lua_getfield(L, -1, "__index") == LUA_TTABLE) {
        wrap(L, -1, "write", OUT_FILE_WRITE);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
