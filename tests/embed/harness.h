/*
 * harness.h: the small test harness of the embedding tests (tests/embed):
 * checks that report file and line and count failures, and helpers to
 * make a Lua state with lasio open and to run Lua source in it.
 * Header-only, each test program includes it once.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_harness_h
#define lasio_harness_h

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lasio.h"

static int harness_failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            harness_failures++;                                                \
        }                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n",  \
                    __FILE__, __LINE__, #a, #b, a_, b_);                       \
            harness_failures++;                                                \
        }                                                                      \
    } while (0)

#define CHECK_STR(s, sub)                                                      \
    do {                                                                       \
        const char *s_ = (s);                                                  \
        if (!s_ || !strstr(s_, (sub))) {                                       \
            fprintf(stderr, "%s:%d: check failed: '%s' contains '%s'\n",       \
                    __FILE__, __LINE__, s_ ? s_ : "(null)", (sub));            \
            harness_failures++;                                                \
        }                                                                      \
    } while (0)

/* A state with the standard libraries and lasio open on base (NULL: its
 * own), and the global `lasio`. Aborts the test program on failure. */
static inline lua_State *
harness_state(struct event_base *base) {
    lua_State *L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    if (lasio_open(L, base) != LASIO_OK)
        abort();
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lasio");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "require lasio: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "lasio");
    return L;
}

/* Pushes the function that the Lua source src defines (a chunk). */
static inline void
harness_load(lua_State *L, const char *src) {
    if (luaL_loadstring(L, src) != LUA_OK) {
        fprintf(stderr, "syntax error: %s\n", lua_tostring(L, -1));
        abort();
    }
}

/* Runs src as the main task with lasio_run; returns the status and leaves
 * one result (or the error) on the stack. */
static inline int
harness_run(lua_State *L, const char *src) {
    harness_load(L, src);
    return lasio_run(L, 0, 1);
}

/* Reports the result of the test program: the exit status. */
static inline int
harness_done(const char *name) {
    if (harness_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, harness_failures);
    else
        printf("%s: ok\n", name);
    return harness_failures ? 1 : 0;
}

#endif
