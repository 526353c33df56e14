/*
 * luadriver.c: the libFuzzer driver of the targets written in Lua
 * (fuzz/<target>.lua, named by LASIO_FUZZ_SCRIPT at build time). One Lua
 * state with lasio open lives for the whole run; the script returns a
 * function that gets each input as a string and runs as the main task
 * (lasio_run). The function checks its target's invariants with error():
 * any error, like a sanitizer report, aborts the run so that libFuzzer
 * saves the input.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lasio.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int harness_ref;

static void
fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, luaL_tolstring(L, -1, NULL));
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    if (lasio_open(L, NULL) != LASIO_OK)
        abort();
    /* the scripts share modules of fuzz/ */
    lua_getglobal(L, "package");
    lua_pushliteral(L, LASIO_FUZZ_DIR "/?.lua;");
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadfile(L, LASIO_FUZZ_SCRIPT) != LUA_OK)
        fail(LASIO_FUZZ_SCRIPT);
    if (lasio_run(L, 0, 1) != LUA_OK)
        fail(LASIO_FUZZ_SCRIPT);
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "%s must return a function\n", LASIO_FUZZ_SCRIPT);
        abort();
    }
    harness_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, harness_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lasio_run(L, 1, 0) != LUA_OK)
        fail("invariant broken");
    return 0;
}
