/*
 * clistate.c: the lua_State of the lasio command: luaL_newstate's panic
 * handler and warning functions (lauxlib.c's, which it keeps static), on
 * the allocator of alloc.c (size classes in normal builds, malloc in the
 * sanitizer build), whose ud carries the state's lasio context.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "cli/cli.h"
#include "core/core.h"

static int
panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
        msg = "error object is not a string";
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg);
    fflush(stderr);
    return 0;
}

static void warn_off(void *ud, const char *message, int tocont);
static void warn_on(void *ud, const char *message, int tocont);
static void warn_cont(void *ud, const char *message, int tocont);

/* "@on" and "@off" switch warnings, as in lauxlib.c. */
static int
checkcontrol(lua_State *L, const char *message, int tocont) {
    if (tocont || *(message++) != '@')
        return 0;
    if (strcmp(message, "off") == 0)
        lua_setwarnf(L, warn_off, L);
    else if (strcmp(message, "on") == 0)
        lua_setwarnf(L, warn_on, L);
    return 1;
}

static void
warn_off(void *ud, const char *message, int tocont) {
    checkcontrol((lua_State *)ud, message, tocont);
}

static void
warn_cont(void *ud, const char *message, int tocont) {
    lua_State *L = ud;
    fputs(message, stderr);
    if (tocont) {
        lua_setwarnf(L, warn_cont, L);
    } else {
        fputs("\n", stderr);
        fflush(stderr);
        lua_setwarnf(L, warn_on, L);
    }
}

static void
warn_on(void *ud, const char *message, int tocont) {
    if (checkcontrol((lua_State *)ud, message, tocont))
        return;
    fputs("Lua warning: ", stderr);
    warn_cont(ud, message, tocont);
}

lua_State *
lasio_cli_newstate_(struct lasio_alloc **a) {
    *a = lasio_alloc_new_();
    if (!*a)
        return NULL;
    /* the allocator's ud holds the state's context (core.h) */
    lasio_ctx_allocf_ = lasio_alloc_fn_;
    lua_State *L = lua_newstate(lasio_alloc_fn_, *a);
    if (!L) {
        lasio_alloc_free_(*a);
        *a = NULL;
        return NULL;
    }
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_off, L);
    return L;
}
