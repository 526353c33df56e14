/*
 * iowait.c: a task waiting for I/O without a Future: WAIT_FOREVER, or
 * WAIT_SLEEP with the deadline in the loop's timer heap; the I/O object
 * records the task and wakes it. Invariant: a waiting task is counted
 * once in loop->nsources, uncounted by its own continuation.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>

#include "core/core.h"

void
lasio_io_wait_(lua_State *L, struct lasio_task *t, int base, double deadline) {
    struct lasio_loop *loop = t->fut.loop;
    lua_settop(L, base);
    if (deadline > 0) {
        /* I/O deadlines are monotonic times: a virtual loop (real I/O
         * allowed) waits for the time left, on its own clock */
        int64_t when =
            loop->vc ? loop->vnow +
                           lasio_delay_ns_(fmax(deadline - lasio_time_(), 0))
                     : lasio_delay_ns_(deadline);
        if (lasio_timerheap_add_(loop, t, &t->heap_pos, when))
            luaL_error(L, "not enough memory");
        t->waiting = WAIT_SLEEP;
    } else {
        t->waiting = WAIT_FOREVER;
    }
    loop->nsources++;
    if (loop->trace) {
        lasio_trace_emit_(loop, TEV_IO_WAIT, t->id, -1, 0, 0, "io");
        lasio_trace_wait_(L, loop, t, TWAIT_IO, 0, "io");
    }
}

void
lasio_io_unwait_(struct lasio_task *t) {
    struct lasio_loop *loop = t->fut.loop;
    if (t->waiting == WAIT_SLEEP)
        lasio_timerheap_remove_(loop, &t->heap_pos);
    t->waiting = WAIT_NONE;
    if (loop->nsources > 0)
        loop->nsources--;
}

int
lasio_io_yield_(lua_State *L, lua_KContext ctx, lua_KFunction k) {
    lua_pushlightuserdata(L, LASIO_SENTINEL);
    return lua_yieldk(L, 1, ctx, k);
}

int
lasio_io_resumed_(lua_State *L, struct lasio_loop *loop, int base) {
    if (!loop->closed && loop->nsources > 0)
        loop->nsources--;
    if (lua_gettop(L) > base && lua_touserdata(L, base + 1) == LASIO_THROW) {
        lua_settop(L, base + 2);
        return 1;
    }
    lua_settop(L, base);
    return 0;
}

void
lasio_io_wake_(lua_State *L, struct lasio_task *t) {
    struct lasio_loop *loop = t->fut.loop;
    if (t->waiting != WAIT_FOREVER && t->waiting != WAIT_SLEEP)
        return; /* already woken (cancelled, or its deadline came) */
    if (loop->closed)
        return;
    lasio_readyq_reserve_(L, loop, 1); /* the push below cannot fail */
    if (t->waiting == WAIT_SLEEP)
        lasio_timerheap_remove_(loop, &t->heap_pos);
    if (loop->trace) {
        lasio_trace_emit_(loop, TEV_IO_READY, t->id, -1, 0, 0, "io");
        lasio_trace_by_(loop, TBY_IO);
    }
    lasio_task_timer_due_(L, t);
    lasio_trace_by_(loop, TBY_NONE);
}

static int
wake_body(lua_State *L) {
    struct lasio_task *t = lua_touserdata(L, 1);
    lasio_io_wake_(L, t);
    return 0;
}

void
lasio_io_wake_cb_(struct lasio_loop *loop, struct lasio_task *t) {
    if (t->waiting != WAIT_FOREVER && t->waiting != WAIT_SLEEP)
        return;
    if (loop->closed)
        return;
    if (loop->rq_count < loop->rq_cap) {
        /* the ready queue has room: the push allocates nothing and cannot
         * raise, so no protected call is needed (the echo fast path) */
        if (t->waiting == WAIT_SLEEP)
            lasio_timerheap_remove_(loop, &t->heap_pos);
        if (loop->trace) {
            lasio_trace_emit_(loop, TEV_IO_READY, t->id, -1, 0, 0, "io");
            lasio_trace_by_(loop, TBY_IO);
        }
        lasio_task_timer_due_(loop->L, t);
        lasio_trace_by_(loop, TBY_NONE);
        return;
    }
    lasio_io_guard_(loop, wake_body, t);
}

int
lasio_io_guard_(struct lasio_loop *loop, lua_CFunction body, void *ud) {
    lua_State *L = loop->L;
    int top = lua_gettop(L), r = 0;
    if (!lua_checkstack(L, 4))
        return -1;
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, ud);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "lasio: error inside the event loop: %s\n",
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                               : "(not a string)");
        fflush(stderr);
        r = -1;
    }
    lua_settop(L, top);
    return r;
}

struct lasio_loop *
lasio_io_running_loop_(lua_State *L, const char *what) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop)
        luaL_error(L,
                   "%s: no running loop (use lasio.run or the lasio "
                   "command)",
                   what);
    return loop;
}

void
lasio_io_unlink_(struct lasio_loop *loop, struct lasio_iolink *link,
                 unsigned char *linked) {
    if (*linked) {
        *linked = 0;
        lasio_iolink_remove_(loop, link);
    }
}

int
lasio_io_pushtimeout_(lua_State *L, double timeout) {
    if (timeout < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, timeout);
    return 1;
}

double
lasio_io_deadline_(double seconds) {
    if (seconds < 0 || isinf(seconds))
        return 0;
    return lasio_time_() + seconds;
}

double
lasio_io_checktimeout_(lua_State *L, int idx, const char *what) {
    if (lua_isnoneornil(L, idx))
        return -1;
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: timeout must be a number or nil, got %s", what,
                   luaL_typename(L, idx));
    double v = lua_tonumber(L, idx);
    if (isnan(v)) /* printf writes NaN as "-nan" here: say it plainly */
        luaL_error(L, "%s: timeout must be >= 0, got nan", what);
    if (v < 0)
        luaL_error(L, "%s: timeout must be >= 0, got %f", what, v);
    return v;
}
