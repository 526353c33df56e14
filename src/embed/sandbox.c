/*
 * sandbox.c: the environment of untrusted chunks (docs/UNTRUSTED.md):
 * an allow-list of the standard library, in copies, so a chunk changes
 * nothing the host sees. Left out: io, os but its clocks, package,
 * require, loadfile, dofile, debug, string.dump, the garbage collector's
 * switches; `load` takes text only (whatever --allow-bytecode says) and
 * defaults to the sandbox's environment; `getmetatable` answers for
 * tables only, so the string metatable and the methods of lasio's objects
 * stay out of reach; `print` counts its bytes against the profile's
 * output cap. lasio itself is a copy of the loaded module's table: the
 * whole of it when the profile allows I/O, else its scheduling part.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include "embed/embed.h"

static const char *const safe_globals[] = {
    "assert",   "error",  "ipairs", "next",     "pairs",  "pcall",
    "rawequal", "rawget", "rawlen", "rawset",   "select", "tonumber",
    "tostring", "type",   "xpcall", "_VERSION", NULL};

static const char *const safe_libs[] = {"string", "table", "math", "utf8",
                                        NULL};

static const char *const os_safe[] = {"clock", "time", "date", "difftime",
                                      NULL};

/* lasio without I/O: scheduling, synchronisation, errors. */
static const char *const lasio_no_io[] = {"sleep",
                                          "spawn",
                                          "create_task",
                                          "gather",
                                          "wait",
                                          "wait_for",
                                          "shield",
                                          "timeout",
                                          "timeout_at",
                                          "as_completed",
                                          "current_task",
                                          "all_tasks",
                                          "await",
                                          "isfuture",
                                          "time",
                                          "taskgroup",
                                          "Future",
                                          "Event",
                                          "Lock",
                                          "Semaphore",
                                          "BoundedSemaphore",
                                          "Condition",
                                          "Barrier",
                                          "Queue",
                                          "LifoQueue",
                                          "PriorityQueue",
                                          "WaitQueue",
                                          "Error",
                                          "CancelledError",
                                          "TimeoutError",
                                          "InvalidStateError",
                                          "ErrorGroup",
                                          "QueueEmpty",
                                          "QueueFull",
                                          "QueueShutDown",
                                          "BrokenBarrierError",
                                          "BudgetExceeded",
                                          "ALL_COMPLETED",
                                          "FIRST_COMPLETED",
                                          "FIRST_EXCEPTION",
                                          "VERSION",
                                          NULL};

/* Copies the fields named in `names` (all when NULL) of the table at src
 * into a new table. [-0, +1, m] */
static void
copy_fields(lua_State *L, int src, const char *const *names) {
    src = lua_absindex(L, src);
    lua_newtable(L);
    if (!names) {
        lua_pushnil(L);
        while (lua_next(L, src)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        return;
    }
    for (; *names; names++) {
        lua_getfield(L, src, *names);
        lua_setfield(L, -2, *names);
    }
}

/* {====== Read-only views ======
 * The tables of lasio (its classes, lasio.fs, ...) are the host's own: a
 * sandbox sees them through views that read through (and wrap the
 * tables they lead to), call through, and refuse writes. */

static void push_view(lua_State *L, int idx);

static int
view_index(lua_State *L) {
    lua_settop(L, 2);
    lua_gettable(L, lua_upvalueindex(1));
    if (lua_istable(L, -1))
        push_view(L, -1);
    return 1;
}

static int
view_newindex(lua_State *L) {
    return luaL_error(L, "attempt to change a read-only table of lasio");
}

static int
view_call(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_replace(L, 1); /* the real table, called in the view's place */
    lua_call(L, n - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void
push_view(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, view_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, view_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, view_call, 1);
    lua_setfield(L, -2, "__call");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* ====== } */

/* getmetatable for tables only (and their __metatable field). */
static int
sandbox_getmetatable(lua_State *L) {
    luaL_checkany(L, 1);
    if (!lua_istable(L, 1) || !lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    luaL_getmetafield(L, 1, "__metatable");
    return 1;
}

/* load(chunk [, name [, mode [, env]]]): text only; env defaults to the
 * sandbox's (upvalue 1). */
static int
sandbox_load(lua_State *L) {
    int has_env = !lua_isnone(L, 4);
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b'))
        return luaL_error(L,
                          "load: binary chunks are not allowed here "
                          "(mode '%s')",
                          mode);
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(2)); /* the host's load */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (has_env)
        lua_pushvalue(L, 4);
    else
        lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 4, 2);
    return 2;
}

/* setmetatable without __gc: a finalizer runs with hooks off, so no
 * budget could stop it. */
static int
sandbox_setmetatable(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushliteral(L, "__gc"); /* raw, as Lua looks for it */
    if (lua_istable(L, 2) && lua_rawget(L, 2) != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc is not allowed here");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* collectgarbage: "count", "step" and "isrunning" only. */
static int
sandbox_collectgarbage(lua_State *L) {
    static const char *const opts[] = {"count", "step", "isrunning", NULL};
    int o = luaL_checkoption(L, 1, "count", opts);
    switch (o) {
    case 0: {
        int k = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
        lua_pushnumber(L, (lua_Number)k + ((lua_Number)b / 1024));
        return 1;
    }
    case 1:
        lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, 0));
        return 1;
    default:
        lua_pushboolean(L, lua_gc(L, LUA_GCISRUNNING));
        return 1;
    }
}

/* print, counted: upvalue 1 holds the bytes left (a full userdata). */
static int
sandbox_print(lua_State *L) {
    long long *left = lua_touserdata(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (*left >= 0) {
        if ((long long)len > *left)
            return luaL_error(L, "print: the sandbox's output cap is "
                                 "reached");
        *left -= (long long)len;
    }
    fwrite(s, 1, len, stdout);
    return 0;
}

void
lasio_sandbox_env_(lua_State *L, int allow_io, long long max_output) {
    luaL_checkstack(L, 8, NULL);
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = env + 1;
    for (const char *const *n = safe_globals; *n; n++) {
        lua_getfield(L, g, *n);
        lua_setfield(L, env, *n);
    }
    lasio_patmatch_install_(L); /* patterns count in budgets */
    for (const char *const *n = safe_libs; *n; n++) {
        lua_getfield(L, g, *n);
        if (lua_istable(L, -1)) {
            copy_fields(L, -1, NULL);
            if (strcmp(*n, "string") == 0) {
                lua_pushnil(L);
                lua_setfield(L, -2, "dump");
            }
            lua_setfield(L, env, *n);
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, g, "os");
    if (lua_istable(L, -1)) {
        copy_fields(L, -1, os_safe);
        lua_setfield(L, env, "os");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, sandbox_getmetatable);
    lua_setfield(L, env, "getmetatable");
    lua_pushcfunction(L, sandbox_collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushvalue(L, env);
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, sandbox_load, 2);
    lua_setfield(L, env, "load");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, env, "setmetatable");
    long long *left = lua_newuserdatauv(L, sizeof *left, 0);
    *left = max_output > 0 ? max_output : -1;
    lua_pushcclosure(L, sandbox_print, 1);
    lua_setfield(L, env, "print");
    /* lasio, as loaded (never required from here: the facade is above) */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "lasio") == LUA_TTABLE) {
        copy_fields(L, -1, allow_io ? NULL : lasio_no_io);
        lua_pushnil(L); /* its tables as read-only views */
        while (lua_next(L, -2)) {
            if (lua_istable(L, -1)) {
                push_view(L, -1);
                lua_remove(L, -2);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
            } else {
                lua_pop(L, 1);
            }
        }
        if (lua_getfield(L, -2, "coroutine") == LUA_TTABLE) {
            copy_fields(L, -1, NULL);
            lua_setfield(L, env, "coroutine"); /* lasio's forwarding one */
        }
        lua_pop(L, 1);
        lua_setfield(L, env, "lasio");
    }
    lua_pop(L, 2);
    if (lua_getfield(L, env, "coroutine") == LUA_TNIL) {
        lua_getfield(L, g, "coroutine");
        if (lua_istable(L, -1)) {
            copy_fields(L, -1, NULL);
            lua_setfield(L, env, "coroutine");
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_settop(L, env);
}

/* lasio.sandbox_env{io=false, output=N}: a new environment table. */
static int
module_sandbox_env(lua_State *L) {
    int allow_io = 0;
    long long output = 0;
    static const char *const known[] = {"io", "output", NULL};
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lasio_checkopts_(L, 1, "lasio.sandbox_env", known);
        lua_getfield(L, 1, "io");
        allow_io = lua_toboolean(L, -1);
        lua_getfield(L, 1, "output");
        if (!lua_isnil(L, -1)) {
            int isnum;
            lua_Integer n = lua_tointegerx(L, -1, &isnum);
            if (!isnum || n < 0)
                return luaL_error(L, "lasio.sandbox_env: option 'output' "
                                     "must be an integer >= 0");
            output = n;
        }
        lua_pop(L, 2);
    }
    lasio_sandbox_env_(L, allow_io, output);
    return 1;
}

void
lasio_sandbox_open_(lua_State *L) {
    lua_pushcfunction(L, module_sandbox_env);
    lua_setfield(L, -2, "sandbox_env");
}
