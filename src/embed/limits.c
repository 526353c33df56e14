/*
 * limits.c: lasio.h's memory cap, budgets, caps and sandbox
 * (docs/UNTRUSTED.md), on the core's counting allocator and budget hook
 * (core/memcap.c, core/budget.c) and the sandbox environment
 * (embed/sandbox.c).
 * SPDX-License-Identifier: MIT
 */
#include "embed/embed.h"

struct limitsctx {
    struct lasio_apicall c;
    size_t bytes;
    long forced_yield;
    long long instructions;
    double cpu;
    int max_tasks, max_timers, flags, setting;
    long long max_output;
    const char *chunk, *name;
    size_t len;
    int idx;
};

enum {
    SET_MEMORY,
    SET_FORCED_YIELD,
    SET_RUN_BUDGET,
    SET_CAPS,
    SET_IO_CAPS,
    SET_ENV
};

static struct lasio_loop *
current_or_refuse(lua_State *L, struct lasio_apicall *c, const char *fn) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop) {
        lua_pushfstring(L, "%s: lasio is not open in this state", fn);
        lasio_api_refuse_(L, c, LASIO_ECLOSED, lua_tostring(L, -1));
    }
    return loop;
}

static int
limits_body(lua_State *L) {
    struct limitsctx *c = lua_touserdata(L, 1);
    struct lasio_loop *loop;
    struct lasio_limits *lim;
    switch (c->setting) {
    case SET_MEMORY: {
        int r = lasio_memcap_set_limit_(L, c->bytes);
        if (r == -1)
            return luaL_error(L, "lasio_set_memory_limit: not enough memory");
        if (r == -2)
            return lasio_api_refuse_(L, &c->c, LASIO_EINVAL,
                                     "lasio_set_memory_limit: the state "
                                     "holds more than that already");
        return 0;
    }
    case SET_FORCED_YIELD:
        loop = current_or_refuse(L, &c->c, "lasio_set_forced_yield");
        lim = lasio_limits_(L, loop);
        lasio_limits_set_(L, loop, c->forced_yield, lim->run_instructions,
                          lim->run_cpu);
        return 0;
    case SET_RUN_BUDGET:
        loop = current_or_refuse(L, &c->c, "lasio_set_run_budget");
        lim = lasio_limits_(L, loop);
        lasio_limits_set_(L, loop, lim->forced_yield, c->instructions, c->cpu);
        return 0;
    case SET_CAPS:
        loop = current_or_refuse(L, &c->c, "lasio_set_caps");
        lim = lasio_limits_(L, loop);
        lim->max_tasks = c->max_tasks;
        lim->max_timers = c->max_timers;
        return 0;
    case SET_IO_CAPS:
        loop = current_or_refuse(L, &c->c, "lasio_set_io_caps");
        lim = lasio_limits_(L, loop);
        lim->max_sockets = c->max_tasks;
        lim->max_output = c->max_output;
        lim->output_used = 0;
        if (c->max_output > 0)
            lasio_outcap_install_(L);
        return 0;
    default: /* SET_ENV: the environment, then maybe the chunk in it */
        lasio_sandbox_env_(L, (c->flags & LASIO_SANDBOX_IO) != 0,
                           c->max_output);
        if (!c->chunk)
            return 1;
        if (luaL_loadbufferx(L, c->chunk, c->len, c->name, "t") != LUA_OK)
            lua_error(L);
        lua_insert(L, -2);
        lua_setupvalue(L, -2, 1); /* its _ENV */
        return 1;
    }
}

int
lasio_set_memory_limit(lua_State *L, size_t bytes) {
    struct limitsctx c = {.setting = SET_MEMORY, .bytes = bytes};
    return lasio_api_call_(L, limits_body, &c.c, 0, 0);
}

int
lasio_memory_usage(lua_State *L, size_t *used, size_t *peak) {
    struct lasio_memcap *m = lasio_memcap_get_(L);
    if (!m)
        return LASIO_EINVAL;
    if (used)
        *used = m->used;
    if (peak)
        *peak = m->peak;
    return LASIO_OK;
}

int
lasio_set_forced_yield(lua_State *L, long instructions) {
    if (instructions < 0)
        return LASIO_EINVAL;
    struct limitsctx c = {.setting = SET_FORCED_YIELD,
                          .forced_yield = instructions};
    return lasio_api_call_(L, limits_body, &c.c, 0, 0);
}

int
lasio_set_run_budget(lua_State *L, long long instructions, double cpu_seconds) {
    if (instructions < 0 || !(cpu_seconds >= 0))
        return LASIO_EINVAL;
    struct limitsctx c = {.setting = SET_RUN_BUDGET,
                          .instructions = instructions,
                          .cpu = cpu_seconds};
    return lasio_api_call_(L, limits_body, &c.c, 0, 0);
}

int
lasio_set_io_caps(lua_State *L, int max_sockets, long long max_output) {
    if (max_sockets < 0 || max_output < 0)
        return LASIO_EINVAL;
    struct limitsctx c = {.setting = SET_IO_CAPS,
                          .max_tasks = max_sockets, /* the one int field */
                          .max_output = max_output};
    return lasio_api_call_(L, limits_body, &c.c, 0, 0);
}

int
lasio_set_caps(lua_State *L, int max_tasks, int max_timers) {
    if (max_tasks < 0 || max_timers < 0)
        return LASIO_EINVAL;
    struct limitsctx c = {
        .setting = SET_CAPS, .max_tasks = max_tasks, .max_timers = max_timers};
    return lasio_api_call_(L, limits_body, &c.c, 0, 0);
}

int
lasio_sandbox_env(lua_State *L, int flags, long long max_output) {
    struct limitsctx c = {
        .setting = SET_ENV, .flags = flags, .max_output = max_output};
    return lasio_api_call_(L, limits_body, &c.c, 0, 1);
}

int
lasio_load_sandboxed(lua_State *L, const char *chunk, size_t len,
                     const char *name, int flags, long long max_output) {
    if (!chunk || !name)
        return LASIO_EINVAL;
    struct limitsctx c = {.setting = SET_ENV,
                          .flags = flags,
                          .max_output = max_output,
                          .chunk = chunk,
                          .len = len,
                          .name = name};
    return lasio_api_call_(L, limits_body, &c.c, 0, 1);
}
