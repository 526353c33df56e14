/*
 * copy_values.c: fuzz target of copying values between Lua states
 * (src/sys/copyval.c, what lasio.to_thread moves between the loop and
 * its workers). Byte 0 chooses the mode:
 *   even: the rest describes values (nil, booleans, integers, floats,
 *     strings, nested tables, and what cannot be copied: functions, a
 *     table that contains itself, a table key), built in state A, written
 *     with lasio_copy_write_, read into state B, written again from B and
 *     read back into A. Invariants: the write raises exactly when a value
 *     cannot be copied (with a lasio.to_thread message); otherwise the
 *     values in B, then back in A, equal the originals (integers and
 *     floats kept apart, NaN included).
 *   odd: the rest is a value buffer as it would come from another state;
 *     lasio_copy_read_ must read it or raise a clean error, and what it
 *     reads copies again to equal values.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "sys/sys.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static lua_State *A, *B;

int
LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    A = luaL_newstate();
    B = luaL_newstate();
    CHECK(A && B);
    luaL_openlibs(A);
    return 0;
}

/* {====== Building values from the input ====== */

struct input {
    const uint8_t *p, *end;
    int uncopyable; /* a value that the write must refuse was built */
};

static uint8_t
next(struct input *in) {
    return in->p < in->end ? *in->p++ : 0;
}

static void
take(struct input *in, void *out, size_t n) {
    memset(out, 0, n);
    size_t have = (size_t)(in->end - in->p);
    memcpy(out, in->p, have < n ? have : n);
    in->p += have < n ? have : n;
}

/* Pushes a value that may be a table key (not nil, not NaN). */
static void
build_key(struct input *in) {
    uint8_t tag = next(in) % 5;
    switch (tag) {
    case 0:
        lua_pushboolean(A, next(in) & 1);
        break;
    case 1: {
        lua_Integer v;
        take(in, &v, sizeof v);
        lua_pushinteger(A, v);
        break;
    }
    case 2: {
        lua_Number v;
        take(in, &v, sizeof v);
        if (isnan(v))
            v = 0.5;
        lua_pushnumber(A, v);
        break;
    }
    default: {
        char s[16];
        size_t n = next(in) % sizeof s;
        take(in, s, n);
        lua_pushlstring(A, s, n);
        break;
    }
    }
}

/* Pushes one value; `self` is the index of the table being filled (0 at
 * the top level). */
static void
build(struct input *in, int depth, int self) {
    luaL_checkstack(A, 8, NULL);
    uint8_t tag = next(in) % 10;
    switch (tag) {
    case 0:
        lua_pushnil(A);
        return;
    case 1: {
        lua_Number v;
        take(in, &v, sizeof v); /* any double: NaN and infinities too */
        lua_pushnumber(A, v);
        return;
    }
    case 2: {
        size_t n = next(in);
        char s[256];
        take(in, s, n);
        lua_pushlstring(A, s, n);
        return;
    }
    case 3:
    case 4:
    case 5: {
        if (depth > 110) { /* a little past the copy's own limit */
            lua_pushinteger(A, depth);
            return;
        }
        int n = next(in) % 6;
        lua_createtable(A, 0, n);
        int t = lua_gettop(A);
        if (depth >= 100)
            in->uncopyable = 1; /* nested deeper than the limit */
        for (int i = 0; i < n; i++) {
            build_key(in);
            /* keys stay distinct, so that no value is replaced */
            for (lua_Integer k = 0;
                 lua_pushvalue(A, -1), lua_rawget(A, t) != LUA_TNIL; k++) {
                lua_pop(A, 2);
                lua_pushinteger(A, k);
            }
            lua_pop(A, 1);
            build(in, depth + 1, t);
            lua_rawset(A, t);
        }
        return;
    }
    case 6:
        if (self && (next(in) & 1)) { /* a table that contains itself */
            lua_pushvalue(A, self);
            in->uncopyable = 1;
        } else if (self) { /* a table key */
            lua_newtable(A);
            lua_pushboolean(A, 1);
            lua_rawset(A, self);
            lua_pushboolean(A, 1);
            in->uncopyable = 1;
        } else {
            lua_pushboolean(A, 0);
        }
        return;
    case 7:
        if (next(in) == 7) { /* rarely: a function */
            lua_getglobal(A, "print");
            in->uncopyable = 1;
            return;
        }
        lua_pushboolean(A, 1);
        return;
    default:
        build_key(in);
        return;
    }
}

/* ====== } */

/* {====== Comparing values across states ====== */

static int equal(lua_State *L1, int i1, lua_State *L2, int i2, int depth);

/* Pushes onto L2 a copy of the key at i1 in L1 (a scalar). */
static void
push_key(lua_State *L1, int i1, lua_State *L2) {
    switch (lua_type(L1, i1)) {
    case LUA_TBOOLEAN:
        lua_pushboolean(L2, lua_toboolean(L1, i1));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L1, i1))
            lua_pushinteger(L2, lua_tointeger(L1, i1));
        else
            lua_pushnumber(L2, lua_tonumber(L1, i1));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L1, i1, &n);
        lua_pushlstring(L2, s, n);
        break;
    }
    default:
        CHECK(!"a copied table key is a scalar");
    }
}

static size_t
count(lua_State *L, int t) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

static int
equal(lua_State *L1, int i1, lua_State *L2, int i2, int depth) {
    i1 = lua_absindex(L1, i1);
    i2 = lua_absindex(L2, i2);
    luaL_checkstack(L1, 4, NULL);
    luaL_checkstack(L2, 4, NULL);
    int t = lua_type(L1, i1);
    if (t != lua_type(L2, i2) || depth > 200)
        return 0;
    switch (t) {
    case LUA_TNIL:
        return 1;
    case LUA_TBOOLEAN:
        return lua_toboolean(L1, i1) == lua_toboolean(L2, i2);
    case LUA_TNUMBER:
        if (lua_isinteger(L1, i1) != lua_isinteger(L2, i2))
            return 0;
        if (lua_isinteger(L1, i1))
            return lua_tointeger(L1, i1) == lua_tointeger(L2, i2);
        {
            lua_Number a = lua_tonumber(L1, i1), b = lua_tonumber(L2, i2);
            return memcmp(&a, &b, sizeof a) == 0;
        }
    case LUA_TSTRING: {
        size_t n1, n2;
        const char *s1 = lua_tolstring(L1, i1, &n1);
        const char *s2 = lua_tolstring(L2, i2, &n2);
        return n1 == n2 && memcmp(s1, s2, n1) == 0;
    }
    case LUA_TTABLE: {
        if (count(L1, i1) != count(L2, i2))
            return 0;
        lua_pushnil(L1);
        while (lua_next(L1, i1)) {
            push_key(L1, -2, L2);
            lua_rawget(L2, i2);
            int same = equal(L1, -1, L2, -1, depth + 1);
            lua_pop(L2, 1);
            lua_pop(L1, 1);
            if (!same) {
                lua_pop(L1, 1);
                return 0;
            }
        }
        return 1;
    }
    default:
        return 0;
    }
}

/* ====== } */

static int
do_write(lua_State *L) {
    /* stack: box, values... */
    int n = lua_gettop(L) - 1;
    struct lasio_wbuf *b = lua_touserdata(L, 1);
    lasio_copy_write_(L, b, 2, n, "argument");
    lua_settop(L, 1);
    return 1;
}

static int
do_read(lua_State *L) {
    /* stack: light userdata of the box (in another state) */
    struct lasio_wbuf *b = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return lasio_copy_read_(L, b->p, b->len);
}

static int
do_read_raw(lua_State *L) {
    const char *p = lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    lua_settop(L, 0);
    return lasio_copy_read_(L, p, len);
}

/* Copies the n values on top of `from` to `to` (pushed there); returns
 * LUA_OK, or the write's status with its error on top of `from`. The
 * values on `from` stay. */
static int
copy(lua_State *from, lua_State *to, int n, int *nout) {
    int base = lua_gettop(from) - n;
    luaL_checkstack(from, n + 4, NULL);
    lua_pushcfunction(from, do_write);
    lasio_wbuf_new_(from);
    for (int i = 1; i <= n; i++)
        lua_pushvalue(from, base + i);
    int st = lua_pcall(from, n + 1, 1, 0);
    if (st != LUA_OK)
        return st;
    struct lasio_wbuf *b = lua_touserdata(from, -1);
    int top = lua_gettop(to);
    lua_pushcfunction(to, do_read);
    lua_pushlightuserdata(to, b);
    CHECK(lua_pcall(to, 1, LUA_MULTRET, 0) == LUA_OK);
    *nout = lua_gettop(to) - top;
    lua_pop(from, 1); /* the box */
    return LUA_OK;
}

static void
structured(const uint8_t *data, size_t size) {
    struct input in = {data, data + size, 0};
    int n = 1 + next(&in) % 4;
    for (int i = 0; i < n; i++)
        build(&in, 0, 0);
    int nb;
    int st = copy(A, B, n, &nb);
    if (in.uncopyable) {
        CHECK(st == LUA_ERRRUN);
        CHECK(strstr(lua_tostring(A, -1), "lasio.to_thread: argument") != NULL);
        lua_settop(A, 0);
        return;
    }
    CHECK(st == LUA_OK);
    CHECK(nb == n);
    for (int i = 1; i <= n; i++)
        CHECK(equal(A, i, B, i, 0));
    int na;
    CHECK(copy(B, A, n, &na) == LUA_OK);
    CHECK(na == n);
    for (int i = 1; i <= n; i++)
        CHECK(equal(A, i, A, n + i, 0));
    lua_settop(A, 0);
    lua_settop(B, 0);
}

static void
raw(const uint8_t *data, size_t size) {
    lua_pushcfunction(B, do_read_raw);
    lua_pushlightuserdata(B, (void *)data);
    lua_pushinteger(B, (lua_Integer)size);
    if (lua_pcall(B, 2, LUA_MULTRET, 0) != LUA_OK) {
        CHECK(lua_type(B, -1) == LUA_TSTRING);
        lua_settop(B, 0);
        return;
    }
    int n = lua_gettop(B), na;
    CHECK(copy(B, A, n, &na) == LUA_OK);
    CHECK(na == n);
    for (int i = 1; i <= n; i++)
        CHECK(equal(B, i, A, i, 0));
    lua_settop(A, 0);
    lua_settop(B, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    if (data[0] & 1)
        raw(data + 1, size - 1);
    else
        structured(data + 1, size - 1);
    return 0;
}
