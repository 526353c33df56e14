/*
 * budget.c: CPU and instruction budgets, forced yields and caps of a loop
 * (docs/UNTRUSTED.md). One count hook does all of it: every `quantum` VM
 * instructions a thread runs, it charges them to the run and to the
 * running task, checks the CPU clocks, and, with forced yields on,
 * suspends the running task at that safe point (a count hook may yield,
 * with no values, when the thread is yieldable) so the loop requeues it.
 * Hooks are per thread and a new thread takes the hook of the one that
 * made it, so a task spawned from a hooked thread is hooked too; the
 * count a thread has run towards its next firing carries over its awaits.
 * A budget once exceeded is sticky: the hook then fires at every
 * instruction of that thread and raises BudgetExceeded again, so a pcall
 * cannot catch it for long.
 * With forced yields and no budget of the run, the hook is not kept on:
 * the slice timer (slice.c) puts it on a step that runs long, and the
 * hook takes itself off when it fires (but on a task with budgets).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <time.h>

#include "core/core.h"

#define QUANTUM 10000 /* instructions between checks without forced yields */

static const char owned_key = 0;  /* registry: object -> its record (weak k) */
static const char cancel_key = 0; /* registry: a preempted task's cancel */

static double
thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Pushes a new zeroed record of size bytes kept alive as long as the
 * object at idx (an ephemeron table in the registry). [-0, +1, m] */
static void *
new_owned(lua_State *L, int idx, size_t size) {
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &owned_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &owned_key);
    }
    void *p = lua_newuserdatauv(L, size, 0);
    memset(p, 0, size);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
    return p;
}

/* The record new_owned made for the object at idx, or NULL. [-0, +0, -] */
static void *
owned_get(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &owned_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return p;
}

/* The budgets of t, or NULL. A task has no field for them: the last
 * looked up are kept in the limits, else the owned table has them (t is
 * pending, so its slot holds it). An entry of a collected task is never
 * used: a task at its address has budgets only once set_budget made them
 * and noted them here. [-0, +0, m] */
static struct lasio_budget *
budget_of(lua_State *L, struct lasio_loop *loop, struct lasio_task *t) {
    struct lasio_limits *lim = loop->limits;
    if (!t || !t->budgeted || !lim || t->fut.ref == LUA_NOREF)
        return NULL;
    if (lim->budget_task == t)
        return lim->budget;
    lasio_pushtasks_(L, loop);
    lua_rawgeti(L, -1, t->fut.ref);
    struct lasio_budget *b = owned_get(L, -1);
    lua_pop(L, 2);
    lim->budget_task = t;
    lim->budget = b;
    return b;
}

struct lasio_limits *
lasio_limits_(lua_State *L, struct lasio_loop *loop) {
    if (loop->limits)
        return loop->limits;
    luaL_checkstack(L, 6, NULL);
    lasio_pushloop_(L, loop);
    struct lasio_limits *lim = new_owned(L, -1, sizeof *lim);
    lua_pop(L, 2);
    lim->quantum = QUANTUM;
    loop->limits = lim;
    return lim;
}

/* {====== The hook ====== */

static void budget_hook(lua_State *L, lua_Debug *ar);

static const char *const budget_names[] = {NULL, "instructions", "cpu",
                                           "memory"};

/* Pushes BudgetExceeded for budget `which` of `scope` ("task", "run"),
 * with its limit. [-0, +1, m] */
static void
push_budget_error(lua_State *L, const char *scope, int which, double limit) {
    if (which == BUDGET_CPU)
        lua_pushfstring(L, "the %s's cpu budget is exceeded (%f s)", scope,
                        limit);
    else
        lua_pushfstring(L, "the %s's %s budget is exceeded (%I %s)", scope,
                        budget_names[which], (lua_Integer)limit,
                        which == BUDGET_MEMORY ? "bytes" : "instructions");
    lasio_newerror_at_(L, ERR_BUDGET, -1);
    lua_remove(L, -2);
    lua_pushstring(L, budget_names[which]);
    lua_setfield(L, -2, "budget");
    lua_pushstring(L, scope);
    lua_setfield(L, -2, "scope");
    lua_pushnumber(L, limit);
    lua_setfield(L, -2, "limit");
}

static double
task_limit(const struct lasio_budget *b) {
    switch (b->exceeded) {
    case BUDGET_INSTRUCTIONS:
        return (double)b->instructions;
    case BUDGET_CPU:
        return b->cpu;
    default:
        return (double)b->memory;
    }
}

/* Raises the exceeded budget and makes the hook fire at every
 * instruction of L from now on. */
static void
raise_exceeded(lua_State *L, struct lasio_loop *loop, struct lasio_budget *b) {
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    struct lasio_memcap *m = lasio_memcap_get_(L);
    if (m && b && m->task == b)
        m->task = NULL; /* room to make the error */
    luaL_checkstack(L, 4, NULL);
    if (b) {
        push_budget_error(L, "task", b->exceeded, task_limit(b));
    } else {
        struct lasio_limits *lim = loop->limits;
        push_budget_error(L, "run", lim->run_exceeded,
                          lim->run_exceeded == BUDGET_CPU
                              ? lim->run_cpu
                              : (double)lim->run_instructions);
    }
    lua_error(L);
}

/* Charges n instructions to the run's and the running task's budgets and
 * checks the CPU clocks; raises past one. */
static void
charge(lua_State *L, struct lasio_loop *loop, struct lasio_task *t, int n) {
    struct lasio_limits *lim = loop->limits;
    if (!lim->run_exceeded && lim->run_instructions &&
        (lim->run_instr_used += n) > lim->run_instructions)
        lim->run_exceeded = BUDGET_INSTRUCTIONS;
    if (!lim->run_exceeded && lim->run_cpu > 0 &&
        thread_cpu() - lim->run_cpu_start > lim->run_cpu)
        lim->run_exceeded = BUDGET_CPU;
    if (lim->run_exceeded)
        raise_exceeded(L, loop, NULL);
    struct lasio_budget *b = budget_of(L, loop, t);
    if (b) {
        if (!b->exceeded && b->instructions &&
            (b->instr_used += n) > b->instructions)
            b->exceeded = BUDGET_INSTRUCTIONS;
        if (!b->exceeded && b->cpu > 0 &&
            b->cpu_used + thread_cpu() - b->cpu_start > b->cpu)
            b->exceeded = BUDGET_CPU;
        if (b->exceeded)
            raise_exceeded(L, loop, b);
    }
}

void
lasio_budget_charge_(lua_State *L, int n) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (loop && loop->limits)
        charge(L, loop, loop->current, n);
}

static void
budget_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop || !loop->limits) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    struct lasio_limits *lim = loop->limits;
    int n = lua_gethookcount(L);
    struct lasio_task *t = loop->current;
    if (t && t->preempted == 2 && L == t->co) { /* cancelled meanwhile */
        t->preempted = 0;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, lim->quantum);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &cancel_key);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &cancel_key);
        lua_error(L);
    }
    charge(L, loop, t, n);
    if (lim->slice && !(t && t->budgeted))
        lua_sethook(L, NULL, 0, 0); /* the slice timer hooks it again */
    else if (n != lim->quantum)
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, lim->quantum);
    if (lim->forced_yield && t && L == t->co && lua_isyieldable(L)) {
        t->preempted = 1; /* the step requeues it (task.c) */
        lua_yield(L, 0);
    }
}

void
lasio_limits_release_(struct lasio_loop *loop) {
    if (loop->limits && loop->limits->slice) {
        lasio_slice_stop_(loop->limits->slice);
        loop->limits->slice = NULL;
    }
}

/* Does a thread of this loop need the hook now? */
static int
hook_needed(struct lasio_loop *loop) {
    struct lasio_limits *lim = loop->limits;
    return lim &&
           ((lim->forced_yield && !lim->slice) || lim->run_instructions ||
            lim->run_cpu > 0 || (loop->current && loop->current->budgeted));
}

void
lasio_budget_rearm_(lua_State *co, struct lasio_loop *loop) {
    if (loop && hook_needed(loop))
        lua_sethook(co, budget_hook, LUA_MASKCOUNT, loop->limits->quantum);
    else
        lua_sethook(co, NULL, 0, 0);
}

/* ====== } */

/* {====== Steps of tasks with budgets ====== */

void
lasio_budget_enter_(lua_State *L, struct lasio_loop *loop,
                    struct lasio_task *t) {
    struct lasio_budget *b = budget_of(L, loop, t);
    if (!b)
        return;
    b->co = t->co;
    if (b->cpu > 0)
        b->cpu_start = thread_cpu();
    if (b->memory) {
        struct lasio_memcap *m = lasio_memcap_get_(loop->L);
        if (m)
            m->task = b;
    }
    if (b->exceeded)
        lua_sethook(t->co, budget_hook, LUA_MASKCOUNT, 1);
    else if (!lua_gethook(t->co))
        lasio_budget_rearm_(t->co, loop);
}

void
lasio_budget_leave_(lua_State *L, struct lasio_loop *loop,
                    struct lasio_task *t) {
    struct lasio_budget *b = budget_of(L, loop, t);
    if (!b)
        return;
    if (b->cpu > 0)
        b->cpu_used += thread_cpu() - b->cpu_start;
    if (b->memory) {
        struct lasio_memcap *m = lasio_memcap_get_(loop->L);
        if (m && m->task == b)
            m->task = NULL;
    }
}

int
lasio_budget_memory_grow_(struct lasio_budget *b, size_t grow) {
    if (!b->exceeded && grow <= b->memory - b->mem_used) {
        b->mem_used += grow;
        return 0;
    }
    if (!b->exceeded)
        b->exceeded = BUDGET_MEMORY;
    if (b->co) /* raise BudgetExceeded at its next instruction */
        lua_sethook(b->co, budget_hook, LUA_MASKCOUNT, 1);
    return 1;
}

void
lasio_budget_cancel_at_resume_(lua_State *L, struct lasio_task *t) {
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cancel_key);
    t->preempted = 2;
    lua_sethook(t->co, budget_hook, LUA_MASKCOUNT, 1);
}

void
lasio_budget_error_(lua_State *L, struct lasio_task *t) {
    struct lasio_budget *b = budget_of(L, t->fut.loop, t);
    if (!b || !b->exceeded || lasio_iserror_(L, -1, ERR_BUDGET))
        return;
    lua_pop(L, 1);
    push_budget_error(L, "task", b->exceeded, task_limit(b));
}

void
lasio_cap_check_(lua_State *L, struct lasio_loop *loop, int timers) {
    struct lasio_limits *lim = loop->limits;
    if (timers && lim->max_timers && loop->th_n >= lim->max_timers)
        luaL_error(L, "too many timers: the loop's cap is %d", lim->max_timers);
    if (!timers && lim->max_tasks && loop->ntasks >= lim->max_tasks)
        luaL_error(L, "too many tasks: the loop's cap is %d", lim->max_tasks);
}

void
lasio_cap_sockets_(lua_State *L, struct lasio_loop *loop, const char *what) {
    struct lasio_limits *lim = loop->limits;
    if (lim && lim->max_sockets && loop->nsockets >= lim->max_sockets)
        luaL_error(L, "%s: too many sockets: the loop's cap is %d", what,
                   lim->max_sockets);
}

void
lasio_iolink_socket_(struct lasio_loop *loop, struct lasio_iolink *link) {
    if (!link->socket) {
        link->socket = 1;
        loop->nsockets++;
    }
}

/* ====== } */

/* {====== From Lua ====== */

/* Reads field k of the table at 1: a number >= 0, or 0 when absent. */
static double
opt_amount(lua_State *L, const char *fn, const char *k) {
    double v = 0;
    if (lua_getfield(L, 1, k) != LUA_TNIL) {
        int isnum;
        v = lua_tonumberx(L, -1, &isnum);
        if (!isnum || !(v >= 0) || v > 9e18)
            luaL_error(L, "%s: option '%s' must be a number >= 0, got %s", fn,
                       k, isnum ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

static int
opt_present(lua_State *L, const char *k) {
    int present = lua_getfield(L, 1, k) != LUA_TNIL;
    lua_pop(L, 1);
    return present;
}

/* task:set_budget{instructions=, cpu=, memory=}: 0 or nil removes one.
 * What the task already used counts. */
static int
task_set_budget(lua_State *L) {
    struct lasio_task *t = lasio_totask_(L, 1);
    if (!t)
        return luaL_typeerror(L, 1, "Task");
    const char *fn = "task:set_budget";
    lua_settop(L, 2);
    lua_insert(L, 1); /* the options at 1 */
    if (!lua_istable(L, 1))
        return luaL_error(L, "%s: options must be a table, got %s", fn,
                          luaL_typename(L, 1));
    double instructions = opt_amount(L, fn, "instructions");
    double cpu = opt_amount(L, fn, "cpu");
    double memory = opt_amount(L, fn, "memory");
    struct lasio_loop *loop = t->fut.loop;
    if (loop->closed)
        return luaL_error(L, "%s: the task's loop is closed", fn);
    struct lasio_limits *lim = lasio_limits_(L, loop);
    if (memory > 0 && !lasio_memcap_install_(L))
        return luaL_error(L, "%s: not enough memory", fn);
    struct lasio_budget *b = t->budgeted ? owned_get(L, 2) : NULL;
    if (!b) {
        b = new_owned(L, 2, sizeof *b);
        lua_pop(L, 1);
        t->budgeted = 1;
    }
    lim->budget_task = t; /* where the steps look first */
    lim->budget = b;
    if (instructions > 0 || cpu > 0) /* patterns count too */
        lasio_patmatch_install_(L);
    b->instructions = (long long)instructions;
    b->cpu = cpu;
    b->memory = (size_t)memory;
    if (t->co && !b->exceeded)
        lua_sethook(t->co, budget_hook, LUA_MASKCOUNT, lim->quantum);
    if (loop->current == t && b->memory) { /* counts from now on */
        struct lasio_memcap *m = lasio_memcap_get_(L);
        m->task = b;
        b->co = t->co;
    }
    if (loop->current == t && b->cpu > 0 && b->cpu_start == 0)
        b->cpu_start = thread_cpu();
    lua_settop(L, 2);
    return 1;
}

/* task:get_budget(): a table of what it used and its budgets. */
static int
task_get_budget(lua_State *L) {
    struct lasio_task *t = lasio_totask_(L, 1);
    if (!t)
        return luaL_typeerror(L, 1, "Task");
    struct lasio_budget *b = t->budgeted ? owned_get(L, 1) : NULL;
    lua_createtable(L, 0, 7);
    if (!b)
        return 1;
    lua_pushinteger(L, b->instructions);
    lua_setfield(L, -2, "instructions");
    lua_pushinteger(L, b->instr_used);
    lua_setfield(L, -2, "instructions_used");
    lua_pushnumber(L, b->cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushnumber(L, b->cpu_used);
    lua_setfield(L, -2, "cpu_used");
    lua_pushinteger(L, (lua_Integer)b->memory);
    lua_setfield(L, -2, "memory");
    lua_pushinteger(L, (lua_Integer)b->mem_used);
    lua_setfield(L, -2, "memory_used");
    if (b->exceeded) {
        lua_pushstring(L, budget_names[b->exceeded]);
        lua_setfield(L, -2, "exceeded");
    }
    return 1;
}

int
lasio_limits_set_(lua_State *L, struct lasio_loop *loop, long forced_yield,
                  long long instructions, double cpu) {
    struct lasio_limits *lim = lasio_limits_(L, loop);
    lim->forced_yield = forced_yield;
    lim->quantum = forced_yield > 0 && forced_yield < 0x7fffffff
                       ? (int)forced_yield
                       : QUANTUM;
    lim->run_instructions = instructions;
    lim->run_instr_used = 0;
    lim->run_cpu = cpu;
    lim->run_cpu_start = thread_cpu();
    lim->run_exceeded = BUDGET_NONE;
    if (instructions || cpu > 0) /* patterns count too */
        lasio_patmatch_install_(L);
    /* forced yields alone: hooked only once a step runs for a slice */
    if (forced_yield > 0 && !instructions && !(cpu > 0)) {
        if (!lim->slice)
            lim->slice = lasio_slice_start_(loop, budget_hook, lim->quantum);
        else
            lasio_slice_set_count_(lim->slice, lim->quantum);
    } else if (lim->slice) {
        lasio_slice_stop_(lim->slice);
        lim->slice = NULL;
    }
    /* the threads that will spawn tasks and run callbacks */
    lasio_budget_rearm_(loop->L, loop);
    if (L != loop->L)
        lasio_budget_rearm_(L, loop);
    return 0;
}

/* lasio.set_limits{forced_yield=, instructions=, cpu=, memory=,
 * max_tasks=, max_timers=}: the current loop's limits; absent fields
 * keep their value. Returns nothing. */
static int
module_set_limits(lua_State *L) {
    static const char *const known[] = {
        "forced_yield", "instructions", "cpu",        "memory", "max_tasks",
        "max_timers",   "max_sockets",  "max_output", NULL};
    const char *fn = "lasio.set_limits";
    luaL_checktype(L, 1, LUA_TTABLE);
    lasio_checkopts_(L, 1, fn, known);
    lua_settop(L, 1);
    struct lasio_loop *loop = lasio_get_loop_(L);
    lua_pop(L, 1);
    struct lasio_limits *lim = lasio_limits_(L, loop);
    long forced = lim->forced_yield;
    long long instructions = lim->run_instructions;
    double cpu = lim->run_cpu;
    if (opt_present(L, "forced_yield"))
        forced = (long)opt_amount(L, fn, "forced_yield");
    if (opt_present(L, "instructions"))
        instructions = (long long)opt_amount(L, fn, "instructions");
    if (opt_present(L, "cpu"))
        cpu = opt_amount(L, fn, "cpu");
    if (opt_present(L, "max_tasks"))
        lim->max_tasks = (int)opt_amount(L, fn, "max_tasks");
    if (opt_present(L, "max_timers"))
        lim->max_timers = (int)opt_amount(L, fn, "max_timers");
    if (opt_present(L, "max_sockets"))
        lim->max_sockets = (int)opt_amount(L, fn, "max_sockets");
    if (opt_present(L, "max_output")) {
        lim->max_output = (long long)opt_amount(L, fn, "max_output");
        lim->output_used = 0;
        if (lim->max_output > 0)
            lasio_outcap_install_(L);
    }
    if (opt_present(L, "memory")) {
        int r = lasio_memcap_set_limit_(L, (size_t)opt_amount(L, fn, "memory"));
        if (r == -1)
            return luaL_error(L, "%s: not enough memory", fn);
        if (r == -2)
            return luaL_error(L,
                              "%s: option 'memory' is below what the "
                              "state holds already",
                              fn);
    }
    lasio_limits_set_(L, loop, forced, instructions, cpu);
    return 0;
}

/* lasio.memory(): bytes Lua holds now, the peak, the cap (nil: none);
 * nil when the state has no counting allocator. */
static int
module_memory(lua_State *L) {
    struct lasio_memcap *m = lasio_memcap_get_(L);
    if (!m) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)m->used);
    lua_pushinteger(L, (lua_Integer)m->peak);
    if (m->limit == (size_t)-1)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)m->limit);
    return 3;
}

void
lasio_budget_open_(lua_State *L) {
    static const luaL_Reg funcs[] = {{"set_limits", module_set_limits},
                                     {"memory", module_memory},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
    luaL_getmetatable(L, LASIO_TASK_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, task_set_budget);
    lua_setfield(L, -2, "set_budget");
    lua_pushcfunction(L, task_get_budget);
    lua_setfield(L, -2, "get_budget");
    lua_pop(L, 2);
}

/* ====== } */
