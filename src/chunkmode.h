/*
 * chunkmode.h: the lasio command's binary-chunk policy (chunkmode.c).
 * Binary chunks are refused everywhere unless --allow-bytecode is given.
 * Internal to the command: not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_chunkmode_h
#define lasio_chunkmode_h

#include <stddef.h>

#include <lua.h>

/*
 * Loads the file fname (stdin when NULL) like luaL_loadfilex. Unless
 * allow_binary, only text chunks load, and a refused binary chunk gives a
 * message that names the file and the option that allows it.
 * Returns a lua_load status (LUA_ERRFILE when the file cannot be read).
 * Stack: [-0, +1, m]
 */
int lasio_cli_loadfile_(lua_State *L, const char *fname, int allow_binary);

/*
 * Loads the buffer s like luaL_loadbufferx, under the same policy.
 * Stack: [-0, +1, m]
 */
int lasio_cli_loadbuffer_(lua_State *L, const char *s, size_t len,
                          const char *name, int allow_binary);

/*
 * Replaces the global load, loadfile and dofile and the Lua searcher of
 * require (package.searchers[2]) by versions that refuse binary chunks.
 * Call after luaL_openlibs, only when binary chunks are not allowed.
 * Stack: [-0, +0, e]
 */
void lasio_cli_refuse_binary_(lua_State *L);

#endif
