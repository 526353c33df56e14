/*
 * chunk_load.c: fuzz target of chunk loading under the lasio command's
 * policy (src/cli/chunkmode.c): binary chunks are refused everywhere,
 * text chunks load as Lua loads them. The input is a chunk, loaded (never
 * run) by one of the ways the command loads code, chosen by byte 0:
 *   0: lasio_cli_loadbuffer_ (the -e and stdin paths);
 *   1: the replaced load() with a mode from byte 1 ("t", "b", "bt", none);
 *   2: lasio_cli_loadfile_ of the chunk written to a memfd;
 *   3: the replaced loadfile() of that file, with a mode from byte 1.
 * Invariants: a binary chunk (starting with LUA_SIGNATURE) never loads
 * and is refused with the policy's message; a text chunk loads exactly
 * when luaL_loadbufferx with mode "t" loads it, unless the mode asked for
 * excludes text; nothing is left on the stack.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "cli/cli.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REFUSAL "attempt to load a binary chunk (refused"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static lua_State *L;
static int memfd = -1;
static char memfd_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    lasio_cli_refuse_binary_(L);
    memfd = memfd_create("chunk", 0);
    CHECK(memfd >= 0);
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

/* Does Lua itself load the chunk as text? */
static int
loads_as_text(const char *s, size_t len) {
    int ok = luaL_loadbufferx(L, s, len, "=chunk", "t") == LUA_OK;
    lua_pop(L, 1);
    return ok;
}

/* Does the chunk start with what Lua skips in a file only (a UTF-8 BOM,
 * a first line starting with '#')? */
static int
file_prefix(const char *s, size_t len) {
    return (len > 0 && s[0] == '#') ||
           (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0);
}

static void
write_file(const char *s, size_t len) {
    CHECK(ftruncate(memfd, 0) == 0);
    CHECK(pwrite(memfd, s, len, 0) == (ssize_t)len);
}

/* Calls the global fn(arg, mode) (mode omitted when NULL) protected;
 * returns whether it gave a function. */
static int
call_loader(const char *fn, const char *arg, size_t len, const char *mode) {
    lua_getglobal(L, fn);
    lua_pushlstring(L, arg, len);
    int nargs = 1;
    if (mode) {
        if (strcmp(fn, "load") == 0) {
            lua_pushliteral(L, "=chunk");
            nargs++;
        }
        lua_pushstring(L, mode);
        nargs++;
    }
    CHECK(lua_pcall(L, nargs, 2, 0) == LUA_OK);
    int loaded = lua_isfunction(L, -2);
    if (!loaded)
        CHECK(lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING);
    return loaded;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    static const char *const modes[] = {"t", "b", "bt", NULL};
    int way = data[0] % 4;
    const char *mode = modes[data[1] % 4];
    const char *chunk = (const char *)data + 2;
    size_t len = size - 2;
    int binary = len > 0 && chunk[0] == LUA_SIGNATURE[0];
    int text_ok = !binary && loads_as_text(chunk, len);
    int text_allowed = mode == NULL || strchr(mode, 't') != NULL;
    int top = lua_gettop(L);
    int loaded;
    switch (way) {
    case 0:
        loaded = lasio_cli_loadbuffer_(L, chunk, len, "=chunk", 0) == LUA_OK;
        if (binary)
            CHECK(strstr(lua_tostring(L, -1), REFUSAL) != NULL);
        CHECK(loaded == text_ok);
        lua_pop(L, 1);
        break;
    case 1:
        loaded = call_loader("load", chunk, len, mode);
        if (binary)
            CHECK(strstr(lua_tostring(L, -1), REFUSAL) != NULL);
        CHECK(loaded == (text_ok && text_allowed));
        lua_pop(L, 2);
        break;
    case 2:
        write_file(chunk, len);
        loaded = lasio_cli_loadfile_(L, memfd_path, 0) == LUA_OK;
        if (binary)
            CHECK(strstr(lua_tostring(L, -1), REFUSAL) != NULL);
        lua_pop(L, 1);
        if (!file_prefix(chunk, len))
            CHECK(loaded == text_ok);
        break;
    default:
        write_file(chunk, len);
        loaded = call_loader("loadfile", memfd_path, strlen(memfd_path), mode);
        if (binary)
            CHECK(strstr(lua_tostring(L, -1), REFUSAL) != NULL);
        if (!file_prefix(chunk, len))
            CHECK(loaded == (text_ok && text_allowed));
        else
            CHECK(!loaded || text_allowed);
        lua_pop(L, 2);
        break;
    }
    CHECK(lua_gettop(L) == top);
    return 0;
}
