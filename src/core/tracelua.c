/*
 * tracelua.c: lasio.trace (docs/reference/trace.md): start and stop a
 * recording of the running (else current) loop, user marks, regions (a
 * <close> value) and counters on the trace. What the records need from
 * Lua values (names, args as JSON text) is taken at the call, so the trace
 * itself holds no Lua value (trace.c).
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define REGION_MT "lasio.TraceRegion"
#define ARGS_DEPTH 8

/* The loop a call records on: the running one, else the current one. */
static struct lasio_loop *
trace_loop(lua_State *L) {
    return lasio_current_loop_(L);
}

/* {====== args as JSON text ====== */

static void add_json(lua_State *L, luaL_Buffer *b, int idx, int depth);

static void
add_jstr(luaL_Buffer *b, const char *s, size_t n) {
    luaL_addchar(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            luaL_addstring(b, esc);
        } else
            luaL_addchar(b, (char)c);
    }
    luaL_addchar(b, '"');
}

/* Byte order of the strings at a and b (strcoll's would follow the
 * locale). */
static int
bytes_less(lua_State *L, int a, int b) {
    size_t na, nb;
    const char *sa = lua_tolstring(L, a, &na), *sb = lua_tolstring(L, b, &nb);
    int c = memcmp(sa, sb, na < nb ? na : nb);
    return c < 0 || (c == 0 && na < nb);
}

/* Sorts the string keys of the table at idx into a new sequence (so the
 * text never depends on the hash order). [-0, +1, m] */
static int
sorted_keys(lua_State *L, int idx) {
    lua_newtable(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, ++n);
        }
    }
    /* insertion sort: args tables are small */
    for (int i = 2; i <= n; i++) {
        for (int j = i; j > 1; j--) {
            lua_rawgeti(L, -1, j - 1);
            lua_rawgeti(L, -2, j);
            if (!bytes_less(L, -1, -2)) {
                lua_pop(L, 2);
                break;
            }
            lua_rawseti(L, -3, j - 1);
            lua_rawseti(L, -2, j);
        }
    }
    return n;
}

static void
add_json(lua_State *L, luaL_Buffer *b, int idx, int depth) {
    size_t n;
    const char *s;
    char num[32];
    luaL_checkstack(L, 6, NULL);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, idx));
        else {
            double v = lua_tonumber(L, idx);
            if (v != v || v - v != 0)
                snprintf(num, sizeof num, "null");
            else
                snprintf(num, sizeof num, "%.17g", v);
        }
        luaL_addstring(b, num);
        break;
    case LUA_TBOOLEAN:
        luaL_addstring(b, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        add_jstr(b, s, n);
        break;
    case LUA_TTABLE: {
        if (depth >= ARGS_DEPTH) {
            luaL_addstring(b, "null");
            break;
        }
        int len = (int)lua_rawlen(L, idx);
        if (len > 0) { /* a sequence: an array */
            luaL_addchar(b, '[');
            for (int i = 1; i <= len; i++) {
                if (i > 1)
                    luaL_addchar(b, ',');
                lua_rawgeti(L, idx, i);
                int v = lua_gettop(L);
                add_json(L, b, v, depth + 1);
                lua_remove(L, v);
            }
            luaL_addchar(b, ']');
            break;
        }
        int keys = sorted_keys(L, idx);
        int kt = lua_gettop(L);
        luaL_addchar(b, '{');
        for (int i = 1; i <= keys; i++) {
            if (i > 1)
                luaL_addchar(b, ',');
            lua_rawgeti(L, kt, i);
            s = lua_tolstring(L, -1, &n);
            add_jstr(b, s, n);
            luaL_addchar(b, ':');
            lua_rawget(L, idx);
            int v = lua_gettop(L);
            add_json(L, b, v, depth + 1);
            lua_remove(L, v);
        }
        luaL_addchar(b, '}');
        lua_remove(L, kt);
        break;
    }
    case LUA_TNIL:
        luaL_addstring(b, "null");
        break;
    default: /* functions, userdata: their type */
        s = luaL_typename(L, idx);
        add_jstr(b, s, strlen(s));
    }
}

/* Pushes the args table at idx as JSON text, or nothing (returns 0) when
 * it is absent. [-0, +(0|1), m] */
static int
push_args(lua_State *L, int idx, const char *fname) {
    if (lua_isnoneornil(L, idx))
        return 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        lasio_argerror_(L, idx, fname,
                        lua_pushfstring(L, "table expected, got %s",
                                        luaL_typename(L, idx)));
    luaL_Buffer b;
    lua_pushnil(L); /* the buffer's box goes above this slot */
    int slot = lua_gettop(L);
    luaL_buffinit(L, &b);
    add_json(L, &b, idx, 0);
    luaL_pushresult(&b);
    lua_replace(L, slot);
    return 1;
}

static const char *
check_name(lua_State *L, int idx, const char *fname, size_t *n) {
    if (lua_type(L, idx) != LUA_TSTRING)
        lasio_argerror_(L, idx, fname,
                        lua_pushfstring(L, "string expected, got %s",
                                        luaL_typename(L, idx)));
    return lua_tolstring(L, idx, n);
}

/* ====== } */

/* {====== The functions ====== */

/* user event ev named by argument 1, args at argument 2 */
static void
user_event(lua_State *L, int ev, const char *fname) {
    size_t n, an = 0;
    const char *name = check_name(L, 1, fname, &n);
    int has = push_args(L, 2, fname);
    const char *args = has ? lua_tolstring(L, -1, &an) : NULL;
    struct lasio_loop *loop = trace_loop(L);
    if (loop && loop->trace)
        lasio_trace_user_(loop, ev, name, n, args, an, 0, 0);
}

/* lasio.trace.mark(name [, args]) */
static int
trace_mark(lua_State *L) {
    user_event(L, TEV_MARK, "lasio.trace.mark");
    return 0;
}

/* region:__close(): the end of the region */
static int
region_close(lua_State *L) {
    int same =
        lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(1));
    if (!same)
        return lasio_argerror_(L, 1, "TraceRegion:close",
                               "TraceRegion expected");
    lua_pop(L, 1);
    int *open = lua_touserdata(L, 1);
    if (!*open)
        return 0;
    *open = 0;
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 1, 2);
    lua_replace(L, 2);
    lua_replace(L, 1);
    struct lasio_loop *loop = trace_loop(L);
    if (loop && loop->trace) {
        size_t n;
        const char *name = lua_tolstring(L, 1, &n);
        lasio_trace_user_(loop, TEV_END, name, n, NULL, 0, 0, 0);
    }
    return 0;
}

/* lasio.trace.region(name [, args]) -> a value to hold in a <close>
 * variable: begin now, end when it closes. */
static int
trace_region(lua_State *L) {
    check_name(L, 1, "lasio.trace.region", &(size_t){0});
    lua_settop(L, 2);
    user_event(L, TEV_BEGIN, "lasio.trace.region");
    lua_settop(L, 2);
    int *open = lua_newuserdatauv(L, sizeof *open, 2);
    *open = 1;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    return 1;
}

/* lasio.trace.counter(name, value) */
static int
trace_counter(lua_State *L) {
    size_t n;
    const char *name = check_name(L, 1, "lasio.trace.counter", &n);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return lasio_argerror_(
            L, 2, "lasio.trace.counter",
            lua_pushfstring(L, "number expected, got %s", luaL_typename(L, 2)));
    struct lasio_loop *loop = trace_loop(L);
    if (!loop || !loop->trace)
        return 0;
    if (lua_isinteger(L, 2))
        lasio_trace_user_(loop, TEV_COUNTER, name, n, NULL, 0, 0,
                          (int64_t)lua_tointeger(L, 2));
    else {
        double v = lua_tonumber(L, 2);
        int64_t bits;
        memcpy(&bits, &v, sizeof bits);
        lasio_trace_user_(loop, TEV_COUNTER, name, n, NULL, 0, 1, bits);
    }
    return 0;
}

/* lasio.trace.start(path [, {format = "json"|"jsonl", ring = N}]) */
static int
trace_start(lua_State *L) {
    static const char fname[] = "lasio.trace.start";
    static const char *const known[] = {"format", "ring", "stacks", NULL};
    const char *path = check_name(L, 1, fname, &(size_t){0});
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TTABLE)
        return lasio_argerror_(
            L, 2, fname,
            lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 2)));
    lasio_checkopts_(L, 2, fname, known);
    int format = lasio_trace_format_of_(path);
    if (lasio_optfield_(L, 2, "format")) {
        const char *f = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING ||
            (strcmp(f, "json") != 0 && strcmp(f, "jsonl") != 0))
            return lasio_argerror_(L, 2, fname,
                                   "format must be \"json\" or \"jsonl\"");
        format = strcmp(f, "json") == 0 ? TRACE_CHROME : TRACE_JSONL;
        lua_pop(L, 1);
    }
    if (format < 0)
        return lasio_argerror_(L, 1, fname,
                               lua_pushfstring(L,
                                               "cannot tell the format of "
                                               "'%s': name it .json or .jsonl, "
                                               "or give format",
                                               path));
    lua_Integer ring = 0;
    if (lasio_optfield_(L, 2, "ring")) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            lua_tointeger(L, -1) > 100000000)
            return lasio_argerror_(L, 2, fname,
                                   "ring must be an integer from 1 to "
                                   "100000000");
        ring = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    int stacks = lasio_optboolean_(L, 2, "stacks", 0, fname);
    lasio_get_loop_(L);
    struct lasio_loop *loop = trace_loop(L);
    char err[512];
    if (lasio_trace_start_(loop, path, format, (size_t)ring, stacks, err,
                           sizeof err) < 0)
        return luaL_error(L, "%s: %s", fname, err);
    return 0;
}

/* lasio.trace.stop() -> true: writes the file of the recording */
static int
trace_stop(lua_State *L) {
    struct lasio_loop *loop = trace_loop(L);
    if (!loop || !loop->trace || !loop->trace->recording)
        return luaL_error(L, "lasio.trace.stop: no trace is being recorded");
    char *path = strdup(loop->trace->path);
    if (lasio_trace_stop_(loop) < 0) {
        lasio_oserror_pushmsg_(L, "lasio.trace.stop", errno,
                               path ? path : "the trace file");
        free(path);
        return lua_error(L);
    }
    free(path);
    lua_pushboolean(L, 1);
    return 1;
}

/* lasio.trace.recording() -> is a trace being recorded on the loop */
static int
trace_recording(lua_State *L) {
    struct lasio_loop *loop = trace_loop(L);
    lua_pushboolean(L, loop && loop->trace && loop->trace->recording);
    return 1;
}

static const luaL_Reg trace_funcs[] = {{"start", trace_start},
                                       {"stop", trace_stop},
                                       {"mark", trace_mark},
                                       {"region", trace_region},
                                       {"counter", trace_counter},
                                       {"recording", trace_recording},
                                       {NULL, NULL}};

/* The region's metatable is an upvalue of the functions that need it,
 * not a registry entry: a new string key in the registry changes how its
 * integer refs (the loop's hot-path refs) are stored, which every task
 * would pay for. */
void
lasio_trace_open_(lua_State *L) {
    lua_createtable(L, 0, 4);
    int mt = lua_gettop(L);
    lua_pushliteral(L, REGION_MT);
    lua_setfield(L, mt, "__name");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, region_close, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__close");
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__gc");
    lua_setfield(L, -2, "close");
    lua_setfield(L, mt, "__index");
    luaL_newlibtable(L, trace_funcs);
    lua_pushvalue(L, mt);
    luaL_setfuncs(L, trace_funcs, 1);
    lua_remove(L, mt);
    lua_setfield(L, -2, "trace_api");
}

/* ====== } */
