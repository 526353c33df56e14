/*
 * readyq.c: the loop's FIFO ready queue and its drain. Entries live in a
 * ring table (so the GC sees them) with C head/count indices; the drain
 * runs from an event made active with event_active, or armed with a zero
 * timeout once a batch used its budget, so libevent polls timers and I/O
 * between batches without a system call per task switch.
 * Invariant: every allocation happens before the indices are read or
 * written, so a __gc finalizer that pushes (G6) never sees a torn queue.
 * SPDX-License-Identifier: MIT
 */
#include <event2/event.h>

#include "core.h"

#define RQ_INITIAL_CAP 64
#define RQ_BATCH_STEPS 256     /* poll I/O at least this often */
#define RQ_BATCH_SECONDS 0.001 /* ... or after this long */
#define RQ_CLOCK_EVERY 32      /* steps between clock reads */

/* [-0, +1, -] the ring table, registered under &loop->rq_head */
static void
pushring(lua_State *L, struct lasio_loop *loop) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loop->rq_head);
}

void
lasio_rq_init_(lua_State *L, int loopidx, struct lasio_loop *loop) {
    (void)loopidx;
    loop->rq_head = 0;
    loop->rq_count = 0;
    loop->rq_cap = RQ_INITIAL_CAP;
    lua_createtable(L, RQ_INITIAL_CAP, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loop->rq_head);
}

/* Makes room for k more slots. The new table is allocated before the old
 * one is read: a finalizer run by that allocation may itself push. */
static void
ensure_room(lua_State *L, struct lasio_loop *loop, int k) {
    while (loop->rq_count + k > loop->rq_cap) {
        int newcap = loop->rq_cap * 2;
        lua_createtable(L, newcap, 0);
        if (loop->rq_count + k <= loop->rq_cap || newcap <= loop->rq_cap) {
            lua_pop(L, 1); /* a finalizer grew it meanwhile */
            continue;
        }
        pushring(L, loop);
        int cap = loop->rq_cap, head = loop->rq_head, n = loop->rq_count;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, ((head + i) & (cap - 1)) + 1);
            lua_rawseti(L, -3, i + 1);
        }
        lua_pop(L, 1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &loop->rq_head);
        loop->rq_head = 0;
        loop->rq_cap = newcap;
    }
}

void
lasio_rq_arm_(struct lasio_loop *loop) {
    /* inside the drain, its end re-arms for what is left */
    if (loop->drain_armed || loop->closed || loop->in_drain)
        return;
    loop->drain_armed = 1;
    event_active(loop->drain_ev, EV_TIMEOUT, 0);
}

/* Stores the value at idx in the next free slot. No allocation. */
static void
put(lua_State *L, struct lasio_loop *loop, int idx) {
    int slot = ((loop->rq_head + loop->rq_count) & (loop->rq_cap - 1)) + 1;
    pushring(L, loop);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
    loop->rq_count++;
}

void
lasio_rq_reserve_(lua_State *L, struct lasio_loop *loop, int k) {
    ensure_room(L, loop, k);
}

void
lasio_rq_push_(lua_State *L, struct lasio_loop *loop, int idx) {
    idx = lua_absindex(L, idx);
    ensure_room(L, loop, 1);
    put(L, loop, idx);
    lasio_rq_arm_(loop);
}

void
lasio_rq_push_call_(lua_State *L, struct lasio_loop *loop, int fidx, int aidx) {
    fidx = lua_absindex(L, fidx);
    aidx = lua_absindex(L, aidx);
    ensure_room(L, loop, 2);
    put(L, loop, fidx);
    put(L, loop, aidx);
    lasio_rq_arm_(loop);
}

/* Pops the oldest entry onto the stack. [-0, +1, -] */
static void
take(lua_State *L, struct lasio_loop *loop) {
    int slot = loop->rq_head + 1;
    pushring(L, loop);
    lua_rawgeti(L, -1, slot);
    lua_pushnil(L);
    lua_rawseti(L, -3, slot);
    lua_remove(L, -2);
    loop->rq_head = (loop->rq_head + 1) & (loop->rq_cap - 1);
    loop->rq_count--;
}

/* Runs one entry at the top of L (popped). */
static void
run_entry(lua_State *L, struct lasio_loop *loop) {
    int t = lua_type(L, -1);
    if (t == LUA_TFUNCTION) { /* a done callback: fn, future */
        take(L, loop);
        lasio_protected_call_(L, loop, 1, 0);
        return;
    }
    unsigned char *kind = lua_touserdata(L, -1);
    if (kind && *kind == KIND_TASK)
        lasio_task_step_(L, -1);
    else if (kind && *kind == KIND_HANDLE)
        lasio_handle_run_(L, -1, (struct lasio_handle *)kind);
    lua_pop(L, 1);
}

/* Debug mode: reports the entry at idx that ran for `took` seconds. */
static void
report_slow(lua_State *L, struct lasio_loop *loop, int idx, double took) {
    unsigned char *kind = lua_touserdata(L, idx);
    lua_createtable(L, 0, 2);
    lua_pushfstring(L, "Executing %s took %f seconds",
                    luaL_tolstring(L, idx, NULL), took);
    lua_setfield(L, -3, "message");
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, kind && *kind == KIND_TASK ? "task" : "handle");
    lasio_call_exception_handler_(L, loop);
}

static int drain_body(lua_State *L);

void
lasio_rq_drain_cb_(int fd, short what, void *arg) {
    struct lasio_loop *loop = arg;
    (void)fd, (void)what;
    loop->drain_armed = 0;
    if (loop->in_drain || loop->closed)
        return;
    loop->in_drain = 1;
    lasio_guarded_(loop, drain_body);
    loop->in_drain = 0;
    if (loop->rq_count > 0 && !loop->closed) {
        /* more work: let libevent poll timers and I/O first */
        static const struct timeval zero = {0, 0};
        loop->drain_armed = 1;
        event_add(loop->drain_ev, &zero);
    }
}

/* Runs a batch of entries: until the queue is empty, the loop stops, or
 * the batch budget is used. Called through lasio_guarded_. */
static int
drain_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    int top = lua_gettop(L);
    double start = 0;
    for (int steps = 1; loop->rq_count > 0 && !loop->stopping; steps++) {
        take(L, loop);
        if (loop->debug) {
            double t0 = lasio_time_();
            lua_pushvalue(L, -1);
            run_entry(L, loop);
            double took = lasio_time_() - t0;
            if (took > loop->slow_callback_duration)
                report_slow(L, loop, top + 1, took);
        } else {
            run_entry(L, loop);
        }
        lua_settop(L, top);
        if (steps % RQ_CLOCK_EVERY == 0) {
            double now = lasio_time_();
            if (start == 0)
                start = now;
            else if (now - start >= RQ_BATCH_SECONDS)
                break;
        }
        if (steps >= RQ_BATCH_STEPS)
            break;
    }
    return 0;
}
