/*
 * vclock.c: virtual time (docs/VIRTUAL_TIME.md). A virtual loop's clock is
 * an int64 count of nanoseconds (loop->vnow) that moves only in the loop's
 * idle path, by the jump rule: once the ready queue is empty and a poll
 * without blocking brought nothing, (1) a source that holds the clock
 * (a worker-thread job, a C host's lasio_loop_hold, recent real I/O under
 * real_io) is waited for with the clock still; (2) else the clock jumps to
 * the earliest timer and every timer due then is queued in (deadline,
 * arrival) order; (3) else the loop blocks for what else can wake a task
 * (signal handlers, a host's pinned Futures); (4) else it is a deadlock.
 * Also here: the state's request for virtual loops (a registry table read
 * when a loop is made), the seeded PRNG and the shuffle of ready batches,
 * the refusal of real I/O, and the functions lasio.testing and the
 * command use (core.internal.vclock_*).
 * Invariant: loop->vc != NULL iff the loop is virtual; its timer heap then
 * holds virtual deadlines and the libevent timer event is never armed.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "core/core.h"

#define NS 1000000000LL
#define POLL_EVERY 16 /* turns between polls when nothing can come */

static const char config_key = 0; /* the state's request: table or nil */
static const char os_key = 0;     /* os.time/os.date wrapped already */

struct lasio_vclock {
    int64_t start;  /* ns the clock starts at */
    int64_t epoch;  /* os.time() at virtual 0, in seconds */
    int64_t limit;  /* ns after start that cancels the main task, or -1 */
    double limit_s; /* the same, as given (for the message) */
    lua_Integer seed;
    uint64_t rng[4]; /* xoshiro256** state, seeded from seed */
    int real_io_ms;  /* -1: real I/O refused; else the hold after I/O */
    double rate;     /* 0: jump; else virtual seconds per real second */
    unsigned char shuffle, limit_hit, real_io_used;
    struct event *wait_ev; /* a real-time wait (rate, real_io) */
    unsigned long jumps, turns;
    FILE *log; /* the event log --check-determinism compares, or NULL */
};

/* {====== The PRNG: xoshiro256** seeded by splitmix64 ====== */

static uint64_t
splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t
next_random(struct lasio_vclock *vc) {
    uint64_t *s = vc->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* A uniform integer in [0, n). */
static uint64_t
random_below(struct lasio_vclock *vc, uint64_t n) {
    return (uint64_t)(((unsigned __int128)next_random(vc) * n) >> 64);
}

/* ====== } */

/* {====== os.time and os.date on the virtual epoch ====== */

/* The running loop's virtual time as os.time() would give it, pushed;
 * or nothing pushed (0) in real time. */
static int
push_vtime(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop || !loop->vc)
        return 0;
    int64_t secs = loop->vnow / NS - (loop->vnow % NS < 0);
    lua_pushinteger(L, (lua_Integer)(loop->vc->epoch + secs));
    return 1;
}

/* os.time([t]): with no table, the virtual epoch plus the virtual
 * seconds. Upvalue 1: the original. */
static int
vtime_os_time(lua_State *L) {
    if (lua_isnoneornil(L, 1) && push_vtime(L))
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* os.date([fmt [, t]]): without t, at the virtual time. */
static int
vtime_os_date(lua_State *L) {
    if (lua_isnoneornil(L, 2)) {
        if (lua_isnone(L, 1))
            lua_pushliteral(L, "%c");
        lua_settop(L, 1);
        if (!push_vtime(L))
            lua_settop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Wraps os.time and os.date once per state, the first time a virtual
 * loop is made: a state without one keeps Lua's own. [-0, +0, m] */
static void
wrap_os(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &os_key) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &os_key);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "os") == LUA_TTABLE) {
        if (lua_getfield(L, -1, "time") == LUA_TFUNCTION) {
            lua_pushcclosure(L, vtime_os_time, 1);
            lua_setfield(L, -2, "time");
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, -1, "date") == LUA_TFUNCTION) {
            lua_pushcclosure(L, vtime_os_date, 1);
            lua_setfield(L, -2, "date");
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
}

/* ====== } */

/* {====== Creation ====== */

static double
optnumber(lua_State *L, int t, const char *key, double def) {
    double v =
        lua_getfield(L, t, key) == LUA_TNUMBER ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

void
lasio_vclock_attach_(lua_State *L, struct lasio_loop *loop) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int t = lua_gettop(L);
    struct lasio_vclock *vc = calloc(1, sizeof *vc);
    if (!vc)
        luaL_error(L, "not enough memory");
    loop->vc = vc;
    vc->start = (int64_t)llround(optnumber(L, t, "start", 0) * 1e9);
    vc->epoch = (int64_t)optnumber(L, t, "epoch", 946684800);
    vc->limit_s = optnumber(L, t, "limit", -1);
    vc->limit = vc->limit_s >= 0 ? lasio_delay_ns_(vc->limit_s) : -1;
    vc->real_io_ms = (int)optnumber(L, t, "real_io", -1);
    vc->rate = optnumber(L, t, "rate", 0);
    lua_getfield(L, t, "seed");
    vc->seed = lua_tointeger(L, -1);
    lua_getfield(L, t, "shuffle");
    vc->shuffle = (unsigned char)lua_toboolean(L, -1);
    if (lua_getfield(L, t, "log") == LUA_TSTRING)
        vc->log = fopen(lua_tostring(L, -1), "w");
    lua_getfield(L, t, "once");
    if (lua_toboolean(L, -1)) { /* lasio.testing.run: this loop only */
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key);
    }
    lua_settop(L, t - 1);
    uint64_t x = (uint64_t)vc->seed;
    for (int i = 0; i < 4; i++)
        vc->rng[i] = splitmix64(&x);
    loop->vnow = vc->start;
    wrap_os(L);
}

void
lasio_vclock_free_(struct lasio_loop *loop) {
    struct lasio_vclock *vc = loop->vc;
    if (!vc)
        return;
    if (vc->wait_ev)
        event_free(vc->wait_ev);
    vc->wait_ev = NULL;
    if (vc->log)
        fclose(vc->log);
    vc->log = NULL;
    /* vc itself stays until the loop's memory goes: the clock is still
     * read after close (loop:time()) */
}

void
lasio_vclock_gc_(struct lasio_loop *loop) {
    lasio_vclock_free_(loop);
    free(loop->vc);
    loop->vc = NULL;
}

/* ====== } */

/* {====== The jump rule ====== */

static void
wait_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
}

/* Polls libevent, blocking for at most `ns` real nanoseconds (< 0: until
 * an event). Returns event_base_loop's result. */
static int
poll_for(struct lasio_loop *loop, int64_t ns) {
    struct lasio_vclock *vc = loop->vc;
    if (ns >= 0) {
        if (!vc->wait_ev)
            vc->wait_ev = event_new(loop->base, -1, 0, wait_done, NULL);
        if (!vc->wait_ev)
            return -1;
        struct timeval tv = {(time_t)(ns / NS),
                             (suseconds_t)((ns % NS + 999) / 1000)};
        if (tv.tv_usec >= 1000000) {
            tv.tv_sec++;
            tv.tv_usec -= 1000000;
        }
        evtimer_add(vc->wait_ev, &tv);
    }
    int r = event_base_loop(loop->base, EVLOOP_ONCE);
    if (ns >= 0)
        evtimer_del(vc->wait_ev);
    return r;
}

/* The virtual time limit is reached: the main task is cancelled. */
static void
hit_limit(lua_State *L, struct lasio_loop *loop) {
    struct lasio_vclock *vc = loop->vc;
    vc->limit_hit = 1;
    loop->vnow = vc->start + vc->limit;
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_MAIN);
    struct lasio_task *t = lasio_totask_(L, -1);
    if (t) {
        lua_pushfstring(L, "virtual time limit %f s reached", vc->limit_s);
        lasio_task_cancel_(L, -2, t, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

/* Sets the clock to `when` and queues every timer due then. */
static void
jump(lua_State *L, struct lasio_loop *loop, int64_t when) {
    struct lasio_vclock *vc = loop->vc;
    if (loop->trace && when > loop->vnow)
        lasio_trace_emit_(loop, TEV_CLOCK_JUMP, 0, loop->vnow, when, 0, NULL);
    if (when > loop->vnow)
        loop->vnow = when;
    vc->jumps++;
    if (vc->log) /* what ran before the jump, and where it goes */
        fprintf(vc->log, "jump %lu: %lu steps, %d tasks, to %lld ns\n",
                vc->jumps, loop->steps, loop->ntasks, (long long)loop->vnow);
    lasio_timerheap_collect_(L, loop, loop->vnow);
}

int
lasio_vclock_drain_jump_(lua_State *L, struct lasio_loop *loop) {
    struct lasio_vclock *vc = loop->vc;
    /* only when the idle path would surely jump: nothing outside can
     * wake a task (no poll needed), no limit or rate to apply */
    if (loop->th_n == 0 || loop->nsources != 0 || loop->vholds != 0 ||
        vc->rate > 0 || loop->closed)
        return 0;
    int64_t when = loop->th[0].when;
    if (vc->limit >= 0 && when > vc->start + vc->limit)
        return 0;
    jump(L, loop, when);
    return loop->rq_count > 0;
}

int
lasio_vclock_turn_(lua_State *L, struct lasio_loop *loop) {
    struct lasio_vclock *vc = loop->vc;
    if (loop->nsources == 0 && loop->vholds == 0 &&
        (++vc->turns & (POLL_EVERY - 1)) != 0) {
        /* nothing outside can wake a task: no poll, no system call (a
         * jump per timer must cost no more than a timer in real time);
         * one turn in POLL_EVERY still polls, for Ctrl-C and the
         * command's watchdog */
        if (loop->rq_count > 0) {
            lasio_readyq_drain_cb_(-1, 0, loop);
            return 0;
        }
    } else if (event_base_loop(loop->base, EVLOOP_NONBLOCK) < 0) {
        return -1; /* ready work, and whatever a poll brings */
    }
    if (loop->rq_count > 0 || loop->stopping || loop->closed)
        return 0;
    /* 1. a source holding the clock: wait for it, the clock still */
    if (loop->vholds > 0)
        return poll_for(loop, -1) < 0 ? -1 : 0;
    if (vc->real_io_ms >= 0 && loop->nsources > 0) {
        /* real I/O: the clock holds while events keep coming */
        if (poll_for(loop, (int64_t)vc->real_io_ms * 1000000) < 0)
            return -1;
        if (loop->rq_count > 0)
            return 0;
    }
    /* 2. the earliest timer: the clock jumps there */
    if (loop->th_n > 0) {
        int64_t when = loop->th[0].when;
        if (vc->limit >= 0 && !vc->limit_hit && when > vc->start + vc->limit) {
            hit_limit(L, loop);
            return 0;
        }
        if (vc->rate > 0 && when > loop->vnow) {
            /* flow at `rate`: wait the real share of the gap, letting
             * signals and threads in; an early wake moves the clock by
             * the real time that passed */
            int64_t t0 = lasio_mono_ns_();
            int64_t gap = when - loop->vnow;
            if (poll_for(loop, (int64_t)((double)gap / vc->rate)) < 0)
                return -1;
            int64_t moved =
                (int64_t)((double)(lasio_mono_ns_() - t0) * vc->rate);
            if (moved < gap) {
                loop->vnow += moved;
                return 0;
            }
        }
        jump(L, loop, when);
        return 0;
    }
    /* 3. what else can wake a task from outside */
    if (loop->nsources > 0)
        return poll_for(loop, -1) < 0 ? -1 : 0;
    return 1; /* 4. nothing can move */
}

void
lasio_vclock_shuffle_(struct lasio_loop *loop) {
    struct lasio_vclock *vc = loop->vc;
    if (!vc->shuffle || loop->rq_count < 2)
        return;
    /* Fisher-Yates over the C ring; marks of the Lua ring stay in their
     * relative order (they are interchangeable), everything else moves */
    int mask = loop->rq_cap - 1, h = loop->rq_head;
    for (int i = loop->rq_count - 1; i > 0; i--) {
        int j = (int)random_below(vc, (uint64_t)i + 1);
        struct lasio_readyq_entry *a = &loop->rq[(h + i) & mask];
        struct lasio_readyq_entry *b = &loop->rq[(h + j) & mask];
        struct lasio_readyq_entry tmp = *a;
        *a = *b;
        *b = tmp;
    }
}

/* ====== } */

/* {====== Real I/O refused ====== */

void
lasio_vclock_refuse_(lua_State *L, const char *fn) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop || !loop->vc)
        return;
    if (loop->vc->real_io_ms >= 0) {
        loop->vc->real_io_used = 1; /* the run is not deterministic */
        return;
    }
    lasio_raise_(L, ERR_VIRTUALTIME,
                 "%s: real I/O is refused in virtual time (its timing is "
                 "not virtual); use lasio.testing.pipe or "
                 "lasio.testing.listen/connect, or run with --real-io",
                 fn);
}

/* ====== } */

/* {====== core.internal.vclock_* ====== */

/* vclock_request(opts or nil): loops made from now on are virtual with
 * opts {seed, start, epoch, limit, shuffle, real_io, rate, once};
 * returns the request it replaces. */
static int
vclock_request(lua_State *L) {
    if (!lua_isnil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key);
    lua_insert(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key);
    return 1;
}

/* vclock_info([loop]): nil for a real loop (or none), else a table
 * {now, seed, epoch, limit_hit, real_io_used, jumps}. */
static int
vclock_info(lua_State *L) {
    struct lasio_loop *loop =
        lua_isnoneornil(L, 1) ? lasio_current_loop_(L) : lasio_checkloop_(L, 1);
    if (!loop || !loop->vc) {
        lua_pushnil(L);
        return 1;
    }
    struct lasio_vclock *vc = loop->vc;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)loop->vnow);
    lua_setfield(L, -2, "now_ns");
    lua_pushinteger(L, vc->seed);
    lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)vc->epoch);
    lua_setfield(L, -2, "epoch");
    lua_pushboolean(L, vc->limit_hit);
    lua_setfield(L, -2, "limit_hit");
    lua_pushnumber(L, vc->limit_s);
    lua_setfield(L, -2, "limit");
    lua_pushboolean(L, vc->real_io_used);
    lua_setfield(L, -2, "real_io_used");
    lua_pushinteger(L, (lua_Integer)vc->jumps);
    lua_setfield(L, -2, "jumps");
    return 1;
}

/* vclock_random(): a float in [0, 1) from the running virtual loop's
 * PRNG, or nil in real time. */
static int
vclock_random(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop || !loop->vc) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushnumber(L, (double)(next_random(loop->vc) >> 11) * 0x1.0p-53);
    return 1;
}

/* vclock_limit_hit(loop): did the virtual time limit cancel the main
 * task of this loop (also once it is closed)? */
int
lasio_vclock_limit_hit_(struct lasio_loop *loop, double *limit) {
    if (!loop->vc)
        return 0;
    *limit = loop->vc->limit_s;
    return loop->vc->limit_hit;
}

void
lasio_vclock_request_(lua_State *L) {
    lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key);
}

/* ready_count(): entries in the running loop's ready queue. */
static int
ready_count(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    lua_pushinteger(L, loop ? loop->rq_count : 0);
    return 1;
}

/* now_ns(): the current loop's clock in integer ns. */
static int
now_ns(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    lua_pushinteger(L, loop ? (lua_Integer)lasio_loop_now_ns_(loop) : 0);
    return 1;
}

/* vclock_refuse(fn): lasio_vclock_refuse_ for the Lua parts that do real
 * I/O (the database clients), before they resolve or connect. */
static int
vclock_refuse(lua_State *L) {
    lasio_vclock_refuse_(L, luaL_checkstring(L, 1));
    return 0;
}

static const luaL_Reg vclock_funcs[] = {
    {"vclock_request", vclock_request}, {"vclock_refuse", vclock_refuse},
    {"vclock_info", vclock_info},       {"vclock_random", vclock_random},
    {"ready_count", ready_count},       {"now_ns", now_ns},
    {"run_fresh", lasio_run_fresh_},    {NULL, NULL}};

void
lasio_vclock_open_(lua_State *L) {
    luaL_setfuncs(L, vclock_funcs, 0); /* into core.internal at the top */
}

/* ====== } */

int
lasio_vclock_seed_(struct lasio_loop *loop, long long *seed,
                   int *deterministic) {
    if (!loop->vc) {
        *deterministic = 0;
        return 0;
    }
    *seed = (long long)loop->vc->seed;
    *deterministic = loop->vc->real_io_ms < 0 && loop->vc->rate <= 0;
    return 1;
}

/* {====== Embedding: lasio_loop_hold ====== */

int
lasio_loop_hold(lua_State *L, int delta) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return LUA_ERRRUN;
    if (loop->vholds + delta < 0)
        return LUA_ERRRUN; /* more releases than holds */
    loop->vholds += delta;
    return LUA_OK;
}

/* ====== } */
