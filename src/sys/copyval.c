/*
 * copyval.c: copies Lua values between Lua states of different threads
 * (lasio.to_thread): nil, booleans, numbers (integer or float), strings
 * and tables of those, and the job's own loop (a worker gets a handle
 * that posts to it), written to a byte buffer in one state and read back
 * in another. Owns the buffers while they are built (a box userdata frees
 * them if an error is raised). Invariant: a table is refused if it
 * contains itself (a cycle) or nests deeper than MAX_DEPTH; metatables
 * are not copied.
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"

#define MAX_DEPTH 100

static const char box_mt = 0; /* registry key of the box metatable */

static int
box_gc(lua_State *L) {
    struct lasio_wbuf *b = lua_touserdata(L, 1);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}

struct lasio_wbuf *
lasio_wbuf_new_(lua_State *L) {
    struct lasio_wbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_mt) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &box_mt);
    }
    lua_setmetatable(L, -2);
    return b;
}

int
lasio_wbuf_add_(struct lasio_wbuf *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* {====== Writing ====== */

struct writer {
    lua_State *L;
    struct lasio_wbuf *b;
    /* for messages: "lasio.to_thread: argument 2" */
    const char *what;
    const struct lasio_loop *loop; /* the loop that may cross, or NULL */
    const void *path[MAX_DEPTH];
    int depth;
};

static void
put(struct writer *w, const void *data, size_t len) {
    if (lasio_wbuf_add_(w->b, data, len) < 0)
        luaL_error(w->L, "not enough memory");
}

static void
putbyte(struct writer *w, char c) {
    put(w, &c, 1);
}

static void write_value(struct writer *w, int idx, int is_key);

static void
write_table(struct writer *w, int idx) {
    lua_State *L = w->L;
    const void *t = lua_topointer(L, idx);
    for (int i = 0; i < w->depth; i++)
        if (w->path[i] == t)
            luaL_error(L,
                       "%s: cannot copy a table that "
                       "contains itself",
                       w->what);
    if (w->depth >= MAX_DEPTH)
        luaL_error(L, "%s: tables nested too deeply", w->what);
    luaL_checkstack(L, 4, NULL);
    w->path[w->depth++] = t;
    putbyte(w, 'T');
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        write_value(w, lua_gettop(L) - 1, 1);
        write_value(w, lua_gettop(L), 0);
        lua_pop(L, 1);
    }
    putbyte(w, 'e');
    w->depth--;
}

static void
write_value(struct writer *w, int idx, int is_key) {
    lua_State *L = w->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        putbyte(w, 'n');
        return;
    case LUA_TBOOLEAN:
        putbyte(w, lua_toboolean(L, idx) ? 't' : 'f');
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            putbyte(w, 'i');
            put(w, &v, sizeof v);
        } else {
            lua_Number v = lua_tonumber(L, idx);
            putbyte(w, 'd');
            put(w, &v, sizeof v);
        }
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        putbyte(w, 's');
        put(w, &len, sizeof len);
        put(w, s, len);
        return;
    }
    case LUA_TTABLE:
        if (is_key)
            luaL_error(L, "%s: cannot copy a table key", w->what);
        write_table(w, idx);
        return;
    case LUA_TUSERDATA:
        if (w->loop && !is_key) {
            const struct lasio_loop *loop =
                lasio_testobj_(L, idx, &lasio_loop_token_);
            if (loop == w->loop) { /* a worker posts to it */
                putbyte(w, 'L');
                return;
            }
            if (loop)
                luaL_error(L,
                           "%s: cannot copy a loop other than the one "
                           "the job belongs to",
                           w->what);
        }
        break; /* any other userdata: refused below */
    default:
        break;
    }
    luaL_error(L,
               "%s: cannot copy a %s value (only nil, "
               "booleans, numbers, strings and tables of them)",
               w->what, luaL_typename(L, idx));
}

void
lasio_copy_write_as_(lua_State *L, struct lasio_wbuf *b, int first, int n,
                     const char *fname, const char *what, int firstno,
                     const struct lasio_loop *loop) {
    struct writer w;
    char name[96];
    w.L = L;
    w.loop = loop;
    w.b = b;
    w.depth = 0;
    w.what = name;
    first = lua_absindex(L, first);
    int count = n;
    put(&w, &count, sizeof count);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s: %s %d", fname, what, i + firstno);
        write_value(&w, first + i, 0);
    }
}

void
lasio_copy_write_(lua_State *L, struct lasio_wbuf *b, int first, int n,
                  const char *what) {
    /* arguments are numbered as Lua does: fn is argument 1 */
    lasio_copy_write_as_(L, b, first, n, "lasio.to_thread", what,
                         strcmp(what, "argument") == 0 ? 2 : 1, NULL);
}

int
lasio_copy_message_(struct lasio_wbuf *b, const char *msg, size_t len) {
    int two = 2;
    char s = 's', n = 'n';
    if (lasio_wbuf_add_(b, &two, sizeof two) < 0 ||
        lasio_wbuf_add_(b, &s, 1) < 0 ||
        lasio_wbuf_add_(b, &len, sizeof len) < 0 ||
        lasio_wbuf_add_(b, msg, len) < 0 || lasio_wbuf_add_(b, &n, 1) < 0)
        return -1;
    return 0;
}

/* ====== } */

/* {====== Reading ====== */

struct reader {
    lua_State *L;
    const char *p, *end;
};

static void
get(struct reader *r, void *out, size_t len) {
    if ((size_t)(r->end - r->p) < len)
        luaL_error(r->L, "lasio.to_thread: corrupt value buffer");
    memcpy(out, r->p, len);
    r->p += len;
}

static void
read_value(struct reader *r, int depth) {
    lua_State *L = r->L;
    char tag;
    get(r, &tag, 1);
    switch (tag) {
    case 'n':
        lua_pushnil(L);
        return;
    case 't':
    case 'f':
        lua_pushboolean(L, tag == 't');
        return;
    case 'i': {
        lua_Integer v;
        get(r, &v, sizeof v);
        lua_pushinteger(L, v);
        return;
    }
    case 'd': {
        lua_Number v;
        get(r, &v, sizeof v);
        lua_pushnumber(L, v);
        return;
    }
    case 's': {
        size_t len;
        get(r, &len, sizeof len);
        if ((size_t)(r->end - r->p) < len)
            luaL_error(L, "lasio.to_thread: corrupt value buffer");
        lua_pushlstring(L, r->p, len);
        r->p += len;
        return;
    }
    case 'T':
        if (depth > MAX_DEPTH)
            luaL_error(L, "lasio.to_thread: corrupt value buffer");
        luaL_checkstack(L, 4, NULL);
        lua_newtable(L);
        while (r->p < r->end && *r->p != 'e') {
            read_value(r, depth + 1);
            read_value(r, depth + 1);
            lua_rawset(L, -3);
        }
        get(r, &tag, 1);
        return;
    case 'L':
        lasio_loopproxy_push_(L);
        return;
    default:
        luaL_error(L, "lasio.to_thread: corrupt value buffer");
    }
}

int
lasio_copy_read_(lua_State *L, const char *data, size_t len) {
    struct reader r = {L, data, data + len};
    int n;
    get(&r, &n, sizeof n);
    if (n < 0 || n > INT_MAX - 4)
        luaL_error(L, "lasio.to_thread: corrupt value buffer");
    luaL_checkstack(L, n + 4, "too many values");
    for (int i = 0; i < n; i++)
        read_value(&r, 0);
    return n;
}

/* ====== } */
