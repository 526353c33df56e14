/*
 * tools.c: the command's tools, `lasio NAME ARGS...` (`lasio trace view
 * FILE`). A tool is a Lua chunk, src/cli/tools/NAME.lua, compiled into the
 * binary with the other files of that folder (cmake/embed_tools.cmake),
 * and run in a state of its own where the standard libraries, lasio and
 * its facade are available. The chunk gets the table of the folder's files
 * (file name -> contents) and the arguments after NAME, and returns the
 * exit status; it prints its own usage errors. A tool's name takes
 * precedence over a script of that name in the current directory
 * (`lasio ./trace` runs the script).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "cli/cli.h"
#include "lasio.h"

/* One file of src/cli/tools, from build/tool_files.c. */
struct lasio_cli_tool_file_ {
    const char *name, *data;
    size_t len;
};
extern const struct lasio_cli_tool_file_ lasio_cli_tool_files_[];

/* The tools, by the first argument that names them: a new tool is a name
 * here and its NAME.lua. */
static const char *const tool_names[] = {"trace", NULL};

struct tool_run {
    int argc;
    char **argv; /* argv[1] is the tool's name */
    int status;
};

/* The message handler: the error with a traceback. */
static int
traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs the tool of r (light userdata at 1) in protected mode. */
static int
run_tool(lua_State *L) {
    struct tool_run *r = lua_touserdata(L, 1);
    const struct lasio_cli_tool_file_ *f, *chunk = NULL;
    char chunkname[64];
    int i;
    luaL_openlibs(L);
    if (lasio_open(L, NULL) != 0)
        return luaL_error(L, "cannot create the event loop");
    lasio_cli_preload_facade_(L);
    snprintf(chunkname, sizeof chunkname, "%s.lua", r->argv[1]);
    lua_createtable(L, 0, 8);
    for (f = lasio_cli_tool_files_; f->name != NULL; f++) {
        lua_pushlstring(L, f->data, f->len);
        lua_setfield(L, -2, f->name);
        if (strcmp(f->name, chunkname) == 0)
            chunk = f;
    }
    if (chunk == NULL)
        return luaL_error(L, "the tool '%s' is not compiled in", r->argv[1]);
    lua_pushfstring(L, "@lasio/tools/%s", chunkname);
    if (luaL_loadbufferx(L, chunk->data, chunk->len, lua_tostring(L, -1),
                         "t") != LUA_OK)
        return lua_error(L);
    lua_insert(L, -3); /* chunk, files, chunkname */
    lua_pop(L, 1);
    luaL_checkstack(L, r->argc, "too many arguments");
    for (i = 2; i < r->argc; i++)
        lua_pushstring(L, r->argv[i]);
    lua_call(L, r->argc - 1, 1);
    r->status =
        lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : LASIO_EXIT_ERROR;
    return 0;
}

int
lasio_cli_tool_(int argc, char **argv, int *status) {
    const char *const *n;
    struct tool_run r = {argc, argv, LASIO_EXIT_ERROR};
    struct lasio_alloc *alloc;
    lua_State *L;
    if (argc < 2)
        return 0;
    for (n = tool_names; *n != NULL && strcmp(*n, argv[1]) != 0; n++)
        ;
    if (*n == NULL)
        return 0;
    L = lasio_cli_newstate_(&alloc);
    if (L == NULL) {
        fprintf(stderr, "lasio: cannot create state: not enough memory\n");
        *status = LASIO_EXIT_ERROR;
        return 1;
    }
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, run_tool);
    lua_pushlightuserdata(L, &r);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
        fprintf(stderr, "lasio %s: %s\n", argv[1], lua_tostring(L, -1));
        r.status = LASIO_EXIT_ERROR;
    }
    lua_close(L);
    lasio_alloc_free_(alloc);
    if (fflush(stdout) != 0 && r.status == LASIO_EXIT_OK) {
        fprintf(stderr, "lasio %s: error writing to stdout\n", argv[1]);
        r.status = LASIO_EXIT_ERROR;
    }
    *status = r.status;
    return 1;
}
