/*
 * chunkmode.c: the lasio command refuses binary chunks (crafted bytecode can
 * crash the VM) wherever code loads: script, load, loadfile, dofile and
 * require's Lua searcher. Owns the replaced functions. Invariant: with the
 * policy on, every chunk reaches lua_load with mode "t".
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "cli/cli.h"

/* The exact message of Lua's own mode check (lundump.c/ldo.c checkmode). */
#define LUA_REFUSAL "attempt to load a binary chunk (mode is 't')"

#define REFUSAL                                                                \
    "attempt to load a binary chunk (refused: lasio loads text chunks "        \
    "only; run it with --allow-bytecode to allow binary chunks)"

/*
 * After a load with mode "t": turns Lua's terse refusal into one that says
 * why and what to do, prefixed with `name` when it is not NULL.
 * Stack: [-1, +1, m] when status is an error, else [-0, +0, -]
 */
static int
explain(lua_State *L, int status, const char *name) {
    const char *msg;
    if (status != LUA_ERRSYNTAX)
        return status;
    msg = lua_tostring(L, -1);
    if (msg == NULL || strcmp(msg, LUA_REFUSAL) != 0)
        return status;
    lua_pop(L, 1);
    if (name != NULL)
        lua_pushfstring(L, "%s: %s", name, REFUSAL);
    else
        lua_pushliteral(L, REFUSAL);
    return status;
}

/*
 * The caller asked for `mode` but the chunk was loaded as text: when the
 * mode excludes text, replace the function by Lua's own refusal.
 * Stack: [-1, +1, m] when it refuses, else [-0, +0, -]
 */
static int
check_text_mode(lua_State *L, int status, const char *mode) {
    if (status == LUA_OK && mode != NULL && strchr(mode, 't') == NULL) {
        lua_pop(L, 1);
        lua_pushfstring(L, "attempt to load a text chunk (mode is '%s')", mode);
        return LUA_ERRSYNTAX;
    }
    return status;
}

int
lasio_cli_loadfile_(lua_State *L, const char *fname, int allow_binary) {
    int status;
    if (allow_binary)
        return luaL_loadfilex(L, fname, NULL);
    status = luaL_loadfilex(L, fname, "t");
    return explain(L, status, fname != NULL ? fname : "stdin");
}

int
lasio_cli_loadbuffer_(lua_State *L, const char *s, size_t len, const char *name,
                      int allow_binary) {
    int status;
    if (allow_binary)
        return luaL_loadbufferx(L, s, len, name, NULL);
    status = luaL_loadbufferx(L, s, len, name, "t");
    return explain(L, status, NULL);
}

/* {====== replaced base functions ====== */

/*
 * load(chunk [, chunkname [, mode [, env]]]): the original load (upvalue 1)
 * called with mode "t". Argument 4 stays absent when it was absent: the
 * original sets _ENV to nil when it is present, even as nil.
 */
static int
base_load(lua_State *L) {
    int nargs = lua_gettop(L) >= 4 ? 4 : 3;
    const char *mode = luaL_optstring(L, 3, "bt");
    lua_settop(L, nargs); /* the pushes below must not see our own values */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (nargs == 4)
        lua_pushvalue(L, 4);
    lua_call(L, nargs, 2);
    if (!lua_isnil(L, -2)) { /* loaded */
        lua_pop(L, 1);
        if (check_text_mode(L, LUA_OK, mode) == LUA_OK)
            return 1;
    } else {
        explain(L, LUA_ERRSYNTAX, NULL);
    }
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
}

/* Loads fname with mode "t" and checks the caller's mode. [-0, +1, m] */
static int
loadfile_text(lua_State *L, const char *fname, const char *mode) {
    int status = lasio_cli_loadfile_(L, fname, 0);
    return check_text_mode(L, status, mode);
}

/* loadfile([filename [, mode [, env]]]), as lbaselib.c's luaB_loadfile. */
static int
base_loadfile(lua_State *L) {
    const char *fname = luaL_optstring(L, 1, NULL);
    const char *mode = luaL_optstring(L, 2, NULL);
    int env = !lua_isnone(L, 3) ? 3 : 0;
    if (loadfile_text(L, fname, mode) == LUA_OK) {
        if (env != 0) { /* 'env' parameter? */
            lua_pushvalue(L, env);
            if (!lua_setupvalue(L, -2, 1)) /* no upvalue: drop env */
                lua_pop(L, 1);
        }
        return 1;
    }
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
}

/* Continuation of dofile: returns everything the chunk returned. */
static int
dofile_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    return lua_gettop(L) - 1;
}

/* dofile([filename]): yieldable like the original (lua_callk). */
static int
base_dofile(lua_State *L) {
    const char *fname = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (loadfile_text(L, fname, NULL) != LUA_OK)
        return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_k);
    return dofile_k(L, LUA_OK, 0);
}

/*
 * require's searcher for Lua files, as loadlib.c's searcher_Lua but with
 * mode "t". Upvalue 1 is the package table, upvalue 2 the original
 * package.searchpath (a later reassignment of it does not change the
 * search, as with the original searcher).
 */
static int
searcher_lua(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *filename;
    lua_getfield(L, lua_upvalueindex(1), "path");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "'package.path' must be a string");
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -3);
    lua_call(L, 2, 2); /* package.searchpath(name, package.path) */
    if (lua_isnil(L, -2))
        return 1; /* not found: the message lists the files tried */
    lua_pop(L, 1);
    filename = lua_tostring(L, -1);
    if (lasio_cli_loadfile_(L, filename, 0) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, filename, lua_tostring(L, -1));
    lua_pushstring(L, filename); /* second argument to the loader */
    return 2;
}

/* }====== */

void
lasio_cli_refuse_binary_(lua_State *L) {
    lua_getglobal(L, "load");
    lua_pushcclosure(L, base_load, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, base_loadfile);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, base_dofile);
    lua_setglobal(L, "dofile");
    /* package.searchers[2] is the Lua searcher after luaL_openlibs */
    if (lua_getglobal(L, "package") == LUA_TTABLE) {
        if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
            lua_pushvalue(L, -2);
            lua_getfield(L, -1, "searchpath");
            lua_pushcclosure(L, searcher_lua, 2);
            lua_rawseti(L, -2, 2);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
