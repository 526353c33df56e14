/*
 * readyq.c: the loop's FIFO ready queue and its drain. The order lives in
 * a C ring of pointers: a Task pointer (the hot path: a task step needs no
 * Lua table access, the task being kept alive by the loop's tasks table
 * while it is pending) or NULL, meaning "the next entry of the Lua ring",
 * which holds Handles and (function, argument) pairs so the GC sees them.
 * The drain runs from an event made active with event_active, or armed
 * with a zero timeout once a batch used its budget, so libevent polls
 * timers and I/O between batches without a system call per task switch.
 * Invariant: every allocation happens before the indices are read or
 * written, so a __gc finalizer that pushes (G6) never sees a torn queue.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <event2/event.h>

#include "core.h"

#define RQ_INITIAL_CAP 64
#define RQ_BATCH_STEPS 256     /* poll I/O at least this often */
#define RQ_BATCH_SECONDS 0.001 /* ... or after this long */
#define RQ_CLOCK_EVERY 32      /* steps between clock reads */

/* [-0, +1, -] the Lua ring */
static void
pushring(lua_State *L, struct lasio_loop *loop) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->lq_ref);
}

void
lasio_rq_init_(lua_State *L, struct lasio_loop *loop) {
    loop->rq = malloc(RQ_INITIAL_CAP * sizeof *loop->rq);
    if (!loop->rq)
        luaL_error(L, "not enough memory");
    loop->rq_head = loop->rq_count = 0;
    loop->rq_cap = RQ_INITIAL_CAP;
    loop->lq_head = loop->lq_count = 0;
    loop->lq_cap = RQ_INITIAL_CAP;
    lua_createtable(L, RQ_INITIAL_CAP, 0);
    loop->lq_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void
lasio_rq_free_(lua_State *L, struct lasio_loop *loop) {
    free(loop->rq);
    loop->rq = NULL;
    loop->rq_count = loop->lq_count = 0;
    if (loop->lq_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, loop->lq_ref);
        loop->lq_ref = LUA_NOREF;
    }
}

/* Makes room for k more pointers in the C ring. */
static void
ensure_c_room(lua_State *L, struct lasio_loop *loop, int k) {
    if (loop->rq_count + k <= loop->rq_cap)
        return;
    int cap = loop->rq_cap, newcap = cap;
    while (loop->rq_count + k > newcap)
        newcap *= 2;
    void **n = malloc((size_t)newcap * sizeof *n);
    if (!n)
        luaL_error(L, "not enough memory");
    for (int i = 0; i < loop->rq_count; i++)
        n[i] = loop->rq[(loop->rq_head + i) & (cap - 1)];
    free(loop->rq);
    loop->rq = n;
    loop->rq_head = 0;
    loop->rq_cap = newcap;
}

/* Makes room for k more slots in the Lua ring. The new table is allocated
 * before the old one is read: a finalizer run by that allocation may
 * itself push. */
static void
ensure_lua_room(lua_State *L, struct lasio_loop *loop, int k) {
    while (loop->lq_count + k > loop->lq_cap) {
        int newcap = loop->lq_cap * 2;
        lua_createtable(L, newcap, 0);
        if (loop->lq_count + k <= loop->lq_cap) {
            lua_pop(L, 1); /* a finalizer grew it meanwhile */
            continue;
        }
        pushring(L, loop);
        int cap = loop->lq_cap, head = loop->lq_head, n = loop->lq_count;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, ((head + i) & (cap - 1)) + 1);
            lua_rawseti(L, -3, i + 1);
        }
        lua_pop(L, 1);
        lua_rawseti(L, LUA_REGISTRYINDEX, loop->lq_ref);
        loop->lq_head = 0;
        loop->lq_cap = newcap;
    }
}

void
lasio_rq_reserve_(lua_State *L, struct lasio_loop *loop, int k) {
    ensure_c_room(L, loop, k);
    ensure_lua_room(L, loop, k);
}

void
lasio_rq_arm_(struct lasio_loop *loop) {
    /* inside the drain, its end re-arms for what is left */
    if (loop->drain_armed || loop->closed || loop->in_drain)
        return;
    loop->drain_armed = 1;
    event_active(loop->drain_ev, EV_TIMEOUT, 0);
}

/* Appends p to the C ring (room was made). */
static void
c_put(struct lasio_loop *loop, void *p) {
    loop->rq[(loop->rq_head + loop->rq_count) & (loop->rq_cap - 1)] = p;
    loop->rq_count++;
}

/* Stores the value at idx in the Lua ring (room was made). */
static void
lua_put(lua_State *L, struct lasio_loop *loop, int idx) {
    int slot = ((loop->lq_head + loop->lq_count) & (loop->lq_cap - 1)) + 1;
    pushring(L, loop);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
    loop->lq_count++;
}

void
lasio_rq_push_task_(lua_State *L, struct lasio_loop *loop,
                    struct lasio_task *t) {
    if (loop->closed)
        return;
    ensure_c_room(L, loop, 1);
    c_put(loop, t);
    lasio_rq_arm_(loop);
}

void
lasio_rq_push_(lua_State *L, struct lasio_loop *loop, int idx) {
    idx = lua_absindex(L, idx);
    if (loop->closed)
        return;
    unsigned char *kind = lua_touserdata(L, idx);
    if (kind && *kind == KIND_TASK) {
        lasio_rq_push_task_(L, loop, (struct lasio_task *)kind);
        return;
    }
    ensure_c_room(L, loop, 1);
    ensure_lua_room(L, loop, 1);
    c_put(loop, NULL);
    lua_put(L, loop, idx);
    lasio_rq_arm_(loop);
}

void
lasio_rq_push_call_(lua_State *L, struct lasio_loop *loop, int fidx, int aidx) {
    fidx = lua_absindex(L, fidx);
    aidx = lua_absindex(L, aidx);
    if (loop->closed)
        return;
    ensure_c_room(L, loop, 1);
    ensure_lua_room(L, loop, 2);
    c_put(loop, NULL);
    lua_put(L, loop, fidx);
    lua_put(L, loop, aidx);
    lasio_rq_arm_(loop);
}

/* Pops the oldest entry of the Lua ring onto the stack. [-0, +1, -] */
static void
lua_take(lua_State *L, struct lasio_loop *loop) {
    int slot = loop->lq_head + 1;
    pushring(L, loop);
    lua_rawgeti(L, -1, slot);
    lua_pushnil(L);
    lua_rawseti(L, -3, slot);
    lua_remove(L, -2);
    loop->lq_head = (loop->lq_head + 1) & (loop->lq_cap - 1);
    loop->lq_count--;
}

/* Pops the oldest entry: pushes the Task, Handle or function (then its
 * argument too, and returns 2). [-0, +(1|2), -] */
static int
take(lua_State *L, struct lasio_loop *loop, int tasks) {
    struct lasio_task *t = loop->rq[loop->rq_head];
    loop->rq_head = (loop->rq_head + 1) & (loop->rq_cap - 1);
    loop->rq_count--;
    if (t) {
        lua_rawgeti(L, tasks, t->ref);
        return 1;
    }
    lua_take(L, loop);
    if (lua_type(L, -1) != LUA_TFUNCTION)
        return 1;
    lua_take(L, loop);
    return 2;
}

/* Runs the entry of n values at the top of L (popped). */
static void
run_entry(lua_State *L, struct lasio_loop *loop, int n) {
    if (n == 2) { /* a done callback: fn, argument */
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

/* Runs a batch of entries: until the queue is empty, the loop stops, or
 * the batch budget is used. Called through lasio_guarded_. */
static int
drain_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    int tasks = lua_gettop(L), top = tasks;
    double start = 0;
    for (int steps = 1; loop->rq_count > 0 && !loop->stopping; steps++) {
        int n = take(L, loop, tasks);
        if (loop->debug) {
            double t0 = lasio_time_();
            lua_pushvalue(L, top + 1);
            lua_insert(L, top + 1); /* a copy to report below the entry */
            run_entry(L, loop, n);
            double took = lasio_time_() - t0;
            if (took > loop->slow_callback_duration)
                report_slow(L, loop, top + 1, took);
        } else {
            run_entry(L, loop, n);
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
