/*
 * readyq.c: the loop's FIFO ready queue and its drain. The order lives in
 * a C ring of entries: a Task step (the hot path: no Lua ring access, the
 * task being kept alive by its slot while it is pending), a C done
 * callback (struct lasio_donecb) with the Future it runs for, both held by
 * slots while queued, or a mark meaning "the next entry of the Lua
 * ring", which holds Handles and (function, argument) pairs so the GC sees
 * them. A C callback runs without a lua_pcall of its own: the drain runs
 * its batch under one, and an error escaping while a C callback runs is
 * reported as that callback's, as lua_pcall would have.
 * The slots are the integer keys of the loop's tasks table, handed
 * out from a C free list (no luaL_ref); a free slot holds false rather
 * than nil, so it stays a key and filling it never allocates.
 * The drain runs from an event made active with event_active, or armed
 * with a zero timeout once a batch used its budget, so libevent polls
 * timers and I/O between batches without a system call per task switch.
 * Invariant: every allocation happens before the indices are read or
 * written, so a __gc finalizer that pushes (G6) never sees a torn queue.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <event2/event.h>

#include "core/core.h"

#define RQ_INITIAL_CAP 64
#define RQ_BATCH_STEPS 256     /* poll I/O at least this often */
#define RQ_BATCH_SECONDS 0.001 /* ... or after this long */
#define RQ_CLOCK_EVERY 32      /* steps between clock reads */
/* an empty C ring larger than this goes back to RQ_INITIAL_CAP: a burst
 * of ready entries (100,000 tasks spawned at once) does not keep its 16
 * bytes an entry for the life of the loop */
#define RQ_SHRINK_OVER 4096

/* [-0, +1, -] the Lua ring */
static void
pushring(lua_State *L, struct lasio_loop *loop) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->lq_ref);
}

void
lasio_pushtasks_(lua_State *L, struct lasio_loop *loop) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->tasks_ref);
}

/* Makes the free list able to hold slot_top + 1 slots. */
static void
ensure_slot_cap(lua_State *L, struct lasio_loop *loop) {
    if (loop->slot_top + 1 <= loop->slot_cap)
        return;
    int cap = loop->slot_cap ? 2 * loop->slot_cap : 64;
    int *n = realloc(loop->slot_free, (size_t)cap * sizeof *n);
    if (!n)
        luaL_error(L, "not enough memory");
    loop->slot_free = n;
    loop->slot_cap = cap;
}

void
lasio_slot_reserve_(lua_State *L, struct lasio_loop *loop, int tidx, int k) {
    tidx = lua_absindex(L, tidx);
    while (loop->slot_nfree < k) {
        int top = loop->slot_top + 1;
        ensure_slot_cap(L, loop);
        lua_pushboolean(L, 0);
        lua_rawseti(L, tidx, top); /* may raise: nothing changed yet */
        loop->slot_top = top;
        loop->slot_free[loop->slot_nfree++] = top;
    }
}

int
lasio_slot_take_(lua_State *L, struct lasio_loop *loop, int tidx, int vidx) {
    tidx = lua_absindex(L, tidx);
    vidx = lua_absindex(L, vidx);
    if (loop->slot_nfree == 0) { /* a new slot, straight away */
        int top = loop->slot_top + 1;
        ensure_slot_cap(L, loop);
        lua_pushvalue(L, vidx);
        lua_rawseti(L, tidx, top); /* may raise: nothing changed yet */
        loop->slot_top = top;
        return top;
    }
    int slot = loop->slot_free[--loop->slot_nfree];
    lua_pushvalue(L, vidx);
    lua_rawseti(L, tidx, slot); /* an existing key: no allocation */
    return slot;
}

void
lasio_slot_release_(lua_State *L, struct lasio_loop *loop, int tidx, int slot) {
    tidx = lua_absindex(L, tidx);
    lua_pushboolean(L, 0);
    lua_rawseti(L, tidx, slot);
    loop->slot_free[loop->slot_nfree++] = slot;
}

void
lasio_readyq_init_(lua_State *L, struct lasio_loop *loop) {
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
lasio_readyq_free_(lua_State *L, struct lasio_loop *loop) {
    free(loop->rq);
    loop->rq = NULL;
    loop->rq_count = loop->lq_count = 0;
    /* the tasks table stays (its slots are read no more); the free list
     * goes, and no slot is handed out after the close */
    free(loop->slot_free);
    loop->slot_free = NULL;
    loop->slot_nfree = loop->slot_top = loop->slot_cap = 0;
    if (loop->lq_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, loop->lq_ref);
        loop->lq_ref = LUA_NOREF;
    }
}

/* Grows the C ring to hold k more entries. */
static __attribute__((noinline)) void
grow_c_ring(lua_State *L, struct lasio_loop *loop, int k) {
    int cap = loop->rq_cap, newcap = cap;
    while (loop->rq_count + k > newcap)
        newcap *= 2;
    struct lasio_readyq_entry *n = malloc((size_t)newcap * sizeof *n);
    if (!n)
        luaL_error(L, "not enough memory");
    for (int i = 0; i < loop->rq_count; i++)
        n[i] = loop->rq[(loop->rq_head + i) & (cap - 1)];
    free(loop->rq);
    loop->rq = n;
    loop->rq_head = 0;
    loop->rq_cap = newcap;
}

/* Makes room for k more entries in the C ring: a test, inlined. */
static inline void
ensure_c_room(lua_State *L, struct lasio_loop *loop, int k) {
    if (loop->rq_count + k > loop->rq_cap)
        grow_c_ring(L, loop, k);
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
lasio_readyq_reserve_steps_(lua_State *L, struct lasio_loop *loop, int k) {
    ensure_c_room(L, loop, k);
}

void
lasio_readyq_reserve_(lua_State *L, struct lasio_loop *loop, int k) {
    ensure_c_room(L, loop, k);
    ensure_lua_room(L, loop, k);
}

void
lasio_readyq_arm_(struct lasio_loop *loop) {
    /* inside the drain, its end re-arms for what is left */
    if (loop->drain_armed || loop->closed || loop->in_drain)
        return;
    loop->drain_armed = 1;
    event_active(loop->drain_ev, EV_TIMEOUT, 0);
}

/* Appends an entry to the C ring (room was made). */
static void
c_put(struct lasio_loop *loop, void *obj, struct lasio_donecb *donecb) {
    struct lasio_readyq_entry *e =
        &loop->rq[(loop->rq_head + loop->rq_count) & (loop->rq_cap - 1)];
    e->obj = obj;
    e->donecb = donecb;
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

/* Queues an entry for obj, a Task or a due TimerHandle held by its
 * slot (take() finds it there). */
static void
push_anchored(lua_State *L, struct lasio_loop *loop, void *obj) {
    if (loop->closed)
        return;
    ensure_c_room(L, loop, 1);
    c_put(loop, obj, NULL);
    lasio_readyq_arm_(loop);
}

void
lasio_readyq_push_task_(lua_State *L, struct lasio_loop *loop,
                        struct lasio_task *t) {
    if (loop->trace && !loop->closed)
        lasio_trace_ready_(loop, t);
    push_anchored(L, loop, t);
}

void
lasio_readyq_push_timer_(lua_State *L, struct lasio_loop *loop,
                         struct lasio_handle *h) {
    push_anchored(L, loop, h);
}

void
lasio_readyq_push_(lua_State *L, struct lasio_loop *loop, int idx) {
    idx = lua_absindex(L, idx);
    if (loop->closed)
        return;
    unsigned char *kind = lua_touserdata(L, idx);
    if (kind && *kind == KIND_TASK) {
        lasio_readyq_push_task_(L, loop, (struct lasio_task *)kind);
        return;
    }
    ensure_c_room(L, loop, 1);
    ensure_lua_room(L, loop, 1);
    c_put(loop, NULL, NULL);
    lua_put(L, loop, idx);
    lasio_readyq_arm_(loop);
}

void
lasio_readyq_push_call_(lua_State *L, struct lasio_loop *loop, int fidx,
                        int aidx) {
    fidx = lua_absindex(L, fidx);
    aidx = lua_absindex(L, aidx);
    if (loop->closed)
        return;
    ensure_c_room(L, loop, 1);
    ensure_lua_room(L, loop, 2);
    c_put(loop, NULL, NULL);
    lua_put(L, loop, fidx);
    lua_put(L, loop, aidx);
    lasio_readyq_arm_(loop);
}

void
lasio_readyq_push_donecb_(lua_State *L, struct lasio_loop *loop, int cbidx,
                          int fidx) {
    cbidx = lua_absindex(L, cbidx);
    fidx = lua_absindex(L, fidx);
    if (loop->closed)
        return;
    struct lasio_donecb *donecb = lua_touserdata(L, cbidx);
    struct lasio_future *f = lua_touserdata(L, fidx);
    ensure_c_room(L, loop, 1);
    if (f->ref == LUA_NOREF || donecb->queued == 0) {
        lasio_pushtasks_(L, loop);
        if (f->ref == LUA_NOREF)
            f->ref = lasio_slot_take_(L, loop, -1, fidx);
        if (donecb->queued == 0)
            donecb->ref = lasio_slot_take_(L, loop, -1, cbidx);
        lua_pop(L, 1);
    }
    f->queued++;
    donecb->queued++;
    c_put(loop, f, donecb);
    lasio_readyq_arm_(loop);
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

/* The Future f of a C callback entry that ran: its slot goes with
 * the last such entry, unless it is a Task still pending. */
static void
unanchor_future(lua_State *L, struct lasio_loop *loop, int tasks,
                struct lasio_future *f) {
    if (--f->queued > 0 || f->ref == LUA_NOREF)
        return;
    if (f->kind == KIND_TASK && ((struct lasio_task *)f)->counted)
        return;
    lasio_slot_release_(L, loop, tasks, f->ref);
    f->ref = LUA_NOREF;
}

/* The C ring is empty and large: a small one replaces it (kept when
 * there is no memory for it). Nothing reserved room in between: the
 * reservations come right before their pushes, and take() runs from the
 * drain only. */
static __attribute__((noinline)) void
shrink_c_ring(struct lasio_loop *loop) {
    struct lasio_readyq_entry *n = malloc(RQ_INITIAL_CAP * sizeof *n);
    if (!n)
        return;
    free(loop->rq);
    loop->rq = n;
    loop->rq_head = 0;
    loop->rq_cap = RQ_INITIAL_CAP;
}

/* Pops the oldest entry: pushes the Task, Handle or function (then its
 * argument too, and returns 2), or for a C callback the callback object
 * and its Future (returns 3). [-0, +(1|2), -] */
static int
take(lua_State *L, struct lasio_loop *loop, int tasks) {
    struct lasio_readyq_entry e = loop->rq[loop->rq_head];
    loop->rq_head = (loop->rq_head + 1) & (loop->rq_cap - 1);
    if (--loop->rq_count == 0 && loop->rq_cap > RQ_SHRINK_OVER)
        shrink_c_ring(loop);
    if (e.donecb) {
        struct lasio_future *f = e.obj;
        lua_rawgeti(L, tasks, e.donecb->ref);
        lua_rawgeti(L, tasks, f->ref);
        /* on the stack now: the slots can go before the callback runs */
        if (--e.donecb->queued == 0) {
            lasio_slot_release_(L, loop, tasks, e.donecb->ref);
            e.donecb->ref = LUA_NOREF;
        }
        unanchor_future(L, loop, tasks, f);
        return 3;
    }
    if (e.obj && *(unsigned char *)e.obj == KIND_TASK) {
        lua_rawgeti(L, tasks, ((struct lasio_task *)e.obj)->fut.ref);
        return 1;
    }
    if (e.obj) { /* a due timer: on the stack now, its slot can go */
        struct lasio_handle *h = e.obj;
        lua_rawgeti(L, tasks, h->slot);
        lasio_slot_release_(L, loop, tasks, h->slot);
        h->slot = LUA_NOREF;
        return 1;
    }
    lua_take(L, loop);
    if (lua_type(L, -1) != LUA_TFUNCTION)
        return 1;
    lua_take(L, loop);
    return 2;
}

/* Runs the entry of n values at the top of L (popped). */
/* Runs the C callback entry at the top (its object, the Future): out of
 * line, so run_entry stays small enough to be inlined in the drain. */
static __attribute__((noinline)) void
run_donecb(lua_State *L, struct lasio_loop *loop) {
    struct lasio_donecb *donecb = lua_touserdata(L, -2);
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_CB_RUN, 0, 0, 0, 0, "C callback");
    loop->in_donecb = 1;
    donecb->run(L, lua_gettop(L) - 1, lua_gettop(L), lua_touserdata(L, -1));
    loop->in_donecb = 0;
    lua_pop(L, 2);
}

static inline void
run_entry(lua_State *L, struct lasio_loop *loop, int n) {
    if (n == 3) { /* a C done callback */
        run_donecb(L, loop);
        return;
    }
    if (n == 2) { /* a done callback: fn, argument */
        if (loop->trace)
            lasio_trace_emit_(loop, TEV_CB_RUN, 0, 0, 0, 0, "done callback");
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

/* A drain: the batch budget, kept across the restarts after an error of
 * a C callback. */
struct drain {
    struct lasio_loop *loop;
    int steps;
    double start;
    int done;
    int turn_left; /* entries left of the current turn */
};

/* A turn's end (asyncio's _run_once): the timers due now join the queue,
 * so call_later(0, f) runs on the next turn even while tasks keep the
 * queue busy with sleep(0); a virtual loop may also shuffle the batch.
 * Out of line: the drain's loop stays small. */
static __attribute__((noinline)) int
next_turn(lua_State *L, struct lasio_loop *loop) {
    if (loop->th_n > 0)
        lasio_timerheap_collect_(L, loop, lasio_loop_now_ns_(loop));
    if (loop->vc)
        lasio_vclock_shuffle_(loop);
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_LOOP_POLL, (int32_t)loop->nsources,
                          loop->rq_count, loop->ntasks, loop->th_n, NULL);
    return loop->rq_count;
}

/* Runs entries until the queue is empty, the loop stops, or the batch
 * budget is used (then sets d->done). Called under lua_pcall. */
static int
drain_batch(lua_State *L) {
    struct drain *d = lua_touserdata(L, 1);
    struct lasio_loop *loop = d->loop;
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    int tasks = lua_gettop(L), top = tasks;
    while (!loop->stopping &&
           (loop->rq_count > 0 ||
            (loop->vc && lasio_vclock_drain_jump_(L, loop)))) {
        if (d->turn_left <= 0 && (d->turn_left = next_turn(L, loop)) == 0)
            break;
        d->turn_left--;
        int steps = ++d->steps;
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
            loop->time_cache = now;
            if (d->start == 0)
                d->start = now;
            else if (now - d->start >= RQ_BATCH_SECONDS)
                break;
        }
        if (steps >= RQ_BATCH_STEPS || loop->end_batch) {
            loop->end_batch = 0; /* a task was preempted: poll now */
            break;
        }
    }
    d->done = 1;
    return 0;
}

/* Runs a batch of entries. An error escaping while a C callback runs is
 * reported as that callback's (lasio_protected_call_ does the same for a
 * function) and the batch goes on; any other error escapes, as before.
 * Called through lasio_guarded_. */
static int
drain_body(lua_State *L) {
    struct drain d = {lua_touserdata(L, 1), 0, 0, 0, 0};
    d.loop->time_cache = lasio_time_(); /* when waits begin (awaitgraph.c) */
    int base = lua_gettop(L);
    while (!d.done) {
        lua_pushcfunction(L, lasio_msgh_);
        lua_pushcfunction(L, drain_batch);
        lua_pushlightuserdata(L, &d);
        d.loop->in_donecb = 0;
        if (lua_pcall(L, 1, 0, base + 1) != LUA_OK) {
            if (!d.loop->in_donecb)
                return lua_error(L);
            d.loop->in_donecb = 0;
            lasio_report_callback_error_(L, d.loop, 0);
        }
        lua_settop(L, base);
    }
    return 0;
}

void
lasio_readyq_drain_cb_(int fd, short what, void *arg) {
    struct lasio_loop *loop = arg;
    (void)fd, (void)what;
    loop->drain_armed = 0;
    if (loop->in_drain || loop->closed)
        return;
    loop->in_drain = 1;
    loop->step_start = lasio_coarse_ns_(); /* task steps time from here */
    lasio_guarded_(loop, drain_body);
    loop->in_drain = 0;
    if (loop->rq_count > 0 && !loop->closed) {
        /* more work: let libevent poll timers and I/O first */
        static const struct timeval zero = {0, 0};
        loop->drain_armed = 1;
        if (event_add(loop->drain_ev, &zero) < 0) /* no room in the heap */
            event_active(loop->drain_ev, EV_TIMEOUT, 0); /* never allocates */
    }
}
