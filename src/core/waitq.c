/*
 * waitq.c: lasio.core.WaitQueue, a FIFO of waiting tasks for the
 * synchronisation primitives and queues of the facade (locks.lua,
 * queues.lua). Waiting allocates nothing: the task itself is the list node
 * (wq_next/wq_prev), where asyncio allocates a Future per wait.
 * Invariant: a task is linked in at most one WaitQueue, exactly while its
 * `waiting` is WAIT_QUEUE; waking or cancelling unlinks it, and a
 * collected WaitQueue unlinks every task it still holds.
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"

#define LASIO_WAITQ_MT "lasio.WaitQueue"

static struct lasio_waitq *
checkwaitq(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &lasio_waitq_token_, LASIO_WAITQ_MT);
}

/* Takes t (linked) out of its queue: inlined into the wake-up. */
static inline void
unlink_task(struct lasio_task *t) {
    struct lasio_waitq *q = t->wq;
    if (t->wq_prev)
        t->wq_prev->wq_next = t->wq_next;
    else
        q->head = t->wq_next;
    if (t->wq_next)
        t->wq_next->wq_prev = t->wq_prev;
    else
        q->tail = t->wq_prev;
    t->in_wq = 0;
    t->heap_pos = t->wait_fd = -1; /* their room is theirs again */
    q->n--;
}

void
lasio_waitq_unlink_(struct lasio_task *t) {
    if (t->in_wq)
        unlink_task(t);
}

void
lasio_waitq_init_(struct lasio_waitq *q) {
    q->head = q->tail = NULL;
    q->n = 0;
    q->loop = NULL;
}

void
lasio_waitq_clear_(struct lasio_waitq *q) {
    while (q->head)
        lasio_waitq_unlink_(q->head);
}

/* Wakes the first waiter: unlinks it and schedules its step. */
int
lasio_waitq_wake_(lua_State *L, struct lasio_waitq *q) {
    struct lasio_task *t = q->head;
    if (!t)
        return 0;
    unlink_task(t);
    t->waiting = WAIT_NONE;
    t->wq_woken = 1;
    t->scheduled = 1;
    lasio_readyq_push_task_(L, t->fut.loop, t);
    return 1;
}

void
lasio_waitq_link_(lua_State *L, struct lasio_waitq *q, const char *what) {
    struct lasio_loop *loop;
    struct lasio_task *t = lasio_check_await_(L, &loop, what);
    if (q->loop != loop) {
        if (q->loop) /* a pointer compared, never followed */
            luaL_error(L, "%s: bound to a different event loop", what);
        q->loop = loop;
    }
    t->in_wq = 1; /* not sleeping: heap_pos and wait_fd are free */
    t->wq = q;
    t->wq_prev = q->tail;
    t->wq_next = NULL;
    if (q->tail)
        q->tail->wq_next = t;
    else
        q->head = t;
    q->tail = t;
    q->n++;
    t->wq_woken = 0;
    t->waiting = WAIT_QUEUE;
    t->wait_what = what; /* static, or kept on the waiting stack */
    if (loop->trace)
        lasio_trace_wait_(L, loop, t, TWAIT_WHAT, 0, what);
}

int
lasio_waitq_resumed_(lua_State *L, int base, int *woken) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    struct lasio_task *t = loop ? loop->current : NULL;
    *woken = t ? t->wq_woken : 0;
    if (t)
        t->wq_woken = 0;
    return lua_gettop(L) > base && lua_touserdata(L, base + 1) == LASIO_THROW;
}

/* After the scheduler resumed the waiter: true, or false, the error and
 * whether the task had been woken before the error came (then the caller
 * passes the wake-up on to the next waiter if what it was for is still
 * there). */
static int
wait_k(lua_State *L, int status, lua_KContext ctx) {
    int woken;
    (void)status, (void)ctx;
    if (lasio_waitq_resumed_(L, 2, &woken)) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, 4);
        lua_pushboolean(L, woken);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* wq:wait([what]) -> true | false, err, woken. Suspends the current task
 * until wake() reaches it; a cancellation comes back as false, the
 * CancelledError, and whether a wake() had reached the task first. `what`
 * names the caller in error messages. */
static int
waitq_wait(lua_State *L) {
    struct lasio_waitq *q = checkwaitq(L, 1);
    const char *what = luaL_optstring(L, 2, "wait");
    lua_settop(L, 2); /* keeps `what` alive while the task waits */
    lasio_waitq_link_(L, q, what);
    lua_pushlightuserdata(L, LASIO_SENTINEL);
    return lua_yieldk(L, 1, 0, wait_k);
}

/* wq:wake() -> true if a waiter was woken */
static int
waitq_wake(lua_State *L) {
    lua_pushboolean(L, lasio_waitq_wake_(L, checkwaitq(L, 1)));
    return 1;
}

/* wq:wake_all() -> how many were woken */
static int
waitq_wake_all(lua_State *L) {
    struct lasio_waitq *q = checkwaitq(L, 1);
    int n = 0;
    while (lasio_waitq_wake_(L, q))
        n++;
    lua_pushinteger(L, n);
    return 1;
}

static int
waitq_len(lua_State *L) {
    lua_pushinteger(L, checkwaitq(L, 1)->n);
    return 1;
}

static int
waitq_tostring(lua_State *L) {
    lua_pushfstring(L, "lasio.WaitQueue<waiters=%d>", checkwaitq(L, 1)->n);
    return 1;
}

/* A collected queue leaves no task pointing at it. */
static int
waitq_gc(lua_State *L) {
    lasio_waitq_clear_(lua_touserdata(L, 1));
    return 0;
}

static int
waitq_new(lua_State *L) {
    struct lasio_waitq *q = lua_newuserdatauv(L, sizeof *q, 0);
    lasio_waitq_init_(q);
    luaL_setmetatable(L, LASIO_WAITQ_MT);
    return 1;
}

static const luaL_Reg waitq_methods[] = {{"wait", waitq_wait},
                                         {"wake", waitq_wake},
                                         {"wake_all", waitq_wake_all},
                                         {NULL, NULL}};

void
lasio_waitq_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_WAITQ_MT, &lasio_waitq_token_)) {
        luaL_newlib(L, waitq_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, waitq_len);
        lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, waitq_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, waitq_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, waitq_new);
    lua_setfield(L, -2, "WaitQueue"); /* into the module table at top */
}
