/*
 * task.c: lasio.Task, a Future that runs a function in a coroutine
 * (docs/API.md, Task), and the await primitive every suspending call goes
 * through. A task's coroutine starts in a C trampoline that runs the body
 * under lua_pcallk, so <close> handlers run inside the coroutine and may
 * await while the task is being cancelled (INTERNALS.md, rule 7). The Task
 * invariant (INTERNALS.md, rule 6) is stated above struct lasio_task in
 * core.h.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>
#include "core/core.h"

/* A blocked task costs its record: a field more crosses the allocator's
 * 16-byte step (core.h, struct lasio_task). */
_Static_assert(sizeof(struct lasio_task) <= 104, "the Task record grew");
_Static_assert(sizeof(struct lasio_future) <= 24, "the Future record grew");

const char lasio_yield_sentinel_ = 0;
const char lasio_throw_sentinel_ = 0;

struct lasio_task *
lasio_totask_(lua_State *L, int idx) {
    return lasio_testobj_(L, idx, &lasio_task_token_);
}

static struct lasio_task *
checktask(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &lasio_task_token_, LASIO_TASK_MT);
}

/* Pushes the task userdata of a pending task from its C pointer: the
 * loop's tasks table holds every pending task. [-0, +1, -] */
static void
pushtask(lua_State *L, struct lasio_task *t) {
    lasio_pushtasks_(L, t->fut.loop);
    lua_rawgeti(L, -1, t->fut.ref);
    lua_remove(L, -2);
}

/* {====== The trampoline ====== */

static int
trampoline_k(lua_State *co, int status, lua_KContext ctx) {
    (void)ctx;
    /* stack: msgh, results... or msgh, error */
    lua_pushboolean(co, status == LUA_OK || status == LUA_YIELD);
    lua_replace(co, 1);
    return lua_gettop(co);
}

/* The body of every task's coroutine: stack msgh, fn, args... (task_new
 * put the message handler below fn). Returns true, results... or false,
 * error. */
static int
trampoline(lua_State *co) {
    int nargs = lua_gettop(co) - 2;
    int status = lua_pcallk(co, nargs, LUA_MULTRET, 1, 0, trampoline_k);
    return trampoline_k(co, status, 0);
}

/* ====== } */

/* lasio_task_new_, inlined into the spawn of every task */
static inline struct lasio_task *
task_new(lua_State *L, struct lasio_loop *loop, int fidx, int nargs) {
    fidx = lua_absindex(L, fidx);
    luaL_checkstack(L, 6, NULL);
    if (loop->closed)
        luaL_error(L, "cannot create a task: the loop is closed");
    if (loop->limits)
        lasio_cap_check_(L, loop, 0);
    struct lasio_task *t =
        lua_newuserdatauv(L, sizeof(struct lasio_task), TASK_NUV);
    t->fut.kind = KIND_TASK;
    t->waiting = WAIT_NONE;
    t->scheduled = 0;
    t->must_cancel = 0;
    t->started = 0;
    t->has_waiter = 0;
    t->num_cancels = 0;
    t->counted = 0;
    t->budgeted = 0;
    t->preempted = 0;
    t->co = NULL;
    t->heap_pos = -1;
    t->wq_woken = 0;
    t->cancelling = 0;
    t->in_wq = 0;
    t->id = 0;
    t->site = 0;
    t->parent_id = 0;
    t->wait_what = NULL;
    t->wait_fd = -1;
    t->wait_since = 0;
    t->steps = 0;
    t->cpu_ns = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->mt_task_ref);
    lua_setmetatable(L, -2);
    int tidx = lua_gettop(L);
    lasio_future_init_(L, tidx, &t->fut, loop);
    t->exposed = 0;
    lua_State *co;
    if (loop->copool_n > 0) { /* a finished task's coroutine */
        lua_rawgeti(L, LUA_REGISTRYINDEX, loop->copool_ref);
        lua_rawgeti(L, -1, loop->copool_n);
        lua_pushnil(L);
        lua_rawseti(L, -3, loop->copool_n--);
        lua_remove(L, -2);
        co = lua_tothread(L, -1);
        /* as lua_newthread: the hook of the thread that spawns */
        lua_sethook(co, lua_gethook(L), lua_gethookmask(L),
                    lua_gethookcount(L));
    } else {
        co = lua_newthread(L);
    }
    lua_setiuservalue(L, tidx, TASK_UV_CORO);
    t->co = co;
    /* the trampoline, its message handler, fn and the arguments */
    if (!lua_checkstack(co, nargs + 3))
        luaL_error(L, "too many arguments for a task (%d)", nargs);
    lua_pushcfunction(co, trampoline);
    lua_pushcfunction(co, lasio_msgh_);
    lua_pushvalue(L, fidx);
    lua_xmove(L, co, 1);
    /* move the arguments (below the task) into the coroutine */
    lua_rotate(L, -(nargs + 1), 1);
    lua_xmove(L, co, nargs);
    tidx = lua_gettop(L);
    if (loop->debug) {
        luaL_traceback(L, L, NULL, 1);
        lasio_extra_set_(L, tidx, EXTRA_SITE);
    }
    lasio_task_site_record_(L, loop, t);
    lasio_pushtasks_(L, loop);
    if (loop->current)
        t->parent_id = loop->current->id;
    t->fut.ref = lasio_slot_take_(L, loop, -1, tidx);
    lua_pop(L, 1);
    t->id = ++loop->next_task_id;
    t->counted = 1;
    loop->ntasks++;
    if (loop->trace)
        lasio_trace_create_(L, loop, t);
    return t;
}

struct lasio_task *
lasio_task_new_(lua_State *L, struct lasio_loop *loop, int fidx, int nargs) {
    return task_new(L, loop, fidx, nargs);
}

struct lasio_task *
lasio_task_spawn_(lua_State *L, struct lasio_loop *loop, int fidx, int nargs) {
    /* the push below cannot fail then */
    lasio_readyq_reserve_steps_(L, loop, 1);
    struct lasio_task *t = task_new(L, loop, fidx, nargs);
    t->scheduled = 1;
    lasio_trace_by_(loop, TBY_START);
    lasio_readyq_push_task_(L, loop, t);
    lasio_trace_by_(loop, TBY_NONE);
    return t;
}

/* The task at idx is done: drop the loop's strong reference. */
static void
task_retire(lua_State *L, int idx, struct lasio_task *t) {
    idx = lua_absindex(L, idx);
    struct lasio_loop *loop = t->fut.loop;
    if (t->waiting == WAIT_SLEEP)
        lasio_timerheap_remove_(loop, &t->heap_pos);
    lasio_waitq_unlink_(t);
    t->waiting = WAIT_NONE;
    if (loop->trace && t->fut.state != FUT_PENDING)
        lasio_trace_done_(L, idx, loop, t);
    if (t->counted) {
        t->counted = 0;
        loop->ntasks--;
        /* C callback entries just queued for it keep the slot until they
         * ran (readyq.c) */
        if (t->fut.queued == 0 && t->fut.ref != LUA_NOREF && !loop->closed) {
            lasio_pushtasks_(L, loop);
            lasio_slot_release_(L, loop, -1, t->fut.ref);
            lua_pop(L, 1);
            t->fut.ref = LUA_NOREF;
        }
    }
    /* the step cleared the waiter before the outcome took its slot
     * (TASK_UV_WAITER is FUT_UV_RESULT) */
    t->has_waiter = 0;
}

/* The body ended with the error at the top (popped): a CancelledError
 * cancels the task, anything else fails it. [-1, +0, m] */
static void
task_ended_with_error(lua_State *L, int idx, struct lasio_task *t) {
    idx = lua_absindex(L, idx);
    if (t->budgeted)
        lasio_budget_error_(L, t);
    if (lasio_iserror_(L, -1, ERR_CANCELLED)) {
        lua_getfield(L, -1, "message");
        lua_remove(L, -2);
        lasio_future_cancelled_(L, idx, &t->fut);
        return;
    }
    lasio_extra_get_(L, idx, EXTRA_TRACEBACK);
    lua_insert(L, -2);
    lasio_future_fail_(L, idx, &t->fut);
}

/* Pushes the CancelledError for a pending cancellation. [-0, +1, m] */
static void
push_cancel_error(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lasio_extra_get_(L, idx, EXTRA_CANCELMSG);
    lasio_newerror_at_(L, ERR_CANCELLED, -1);
    lua_remove(L, -2);
    lua_pushnil(L);
    lasio_extra_set_(L, idx, EXTRA_CANCELMSG);
}

/* Handles a yield of the task's coroutine with nres values. */
static void
task_yielded(lua_State *L, int idx, struct lasio_task *t, int nres) {
    lua_State *co = t->co;
    if (nres >= 1 && lua_touserdata(co, -nres) == LASIO_SENTINEL) {
        lua_pop(co, nres);
        struct lasio_loop *loop = t->fut.loop;
        if (t->waiting != WAIT_SLEEP || t->wait_what) /* sleep: its own */
            t->wait_since =
                loop->vc ? (double)loop->vnow / 1e9 : loop->time_cache;
        return;
    }
    if (nres == 0 && t->preempted) { /* the forced-yield hook: requeue */
        t->scheduled = 1;
        t->fut.loop->end_batch = 1;
        lasio_readyq_push_task_(L, t->fut.loop, t);
        return;
    }
    /* a yield that is not the scheduler's (a coroutine.yield captured
     * before lasio replaced it): the task cannot go on */
    lua_pop(co, nres);
    lua_closethread(co, L);
    lua_pushliteral(L, "task yielded a value outside of lasio (a plain "
                       "coroutine.yield at task level)");
    task_ended_with_error(L, idx, t);
    task_retire(L, idx, t);
}

#define COPOOL_MAX 256 /* coroutines kept for reuse, per loop */

/* The task at idx returned: its coroutine, empty and with no function
 * running, can run the next task (as a new thread would) unless user
 * code has seen it. The task lets go of it. */
static void
recycle_coroutine(lua_State *L, int idx, struct lasio_task *t) {
    struct lasio_loop *loop = t->fut.loop;
    lua_State *co = t->co;
    if (t->exposed || loop->copool_n >= COPOOL_MAX || loop->closed ||
        lua_status(co) != LUA_OK || lua_gettop(co) != 0)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->copool_ref);
    lua_getiuservalue(L, idx, TASK_UV_CORO);
    lua_rawseti(L, -2, ++loop->copool_n);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setiuservalue(L, idx, TASK_UV_CORO);
    t->co = NULL;
}

/* The rare part of a step before the resume (the first step, a
 * preempted, cancelled or woken-by-a-Future task): returns the count of
 * values to resume with, or -1 when the task ended without running. */
static __attribute__((noinline)) int
step_prologue(lua_State *L, int idx, struct lasio_task *t) {
    lua_State *co = t->co;
    int nargs = 0;
    if (t->preempted) { /* resumes where the forced-yield hook stopped it */
        t->preempted = 0;
        if (t->must_cancel) {
            t->must_cancel = 0;
            push_cancel_error(L, idx);
            lasio_budget_cancel_at_resume_(L, t);
        }
    } else if (t->must_cancel) {
        t->must_cancel = 0;
        if (!t->started) { /* cancelled before its first step: the body
                              never runs */
            push_cancel_error(L, idx);
            task_ended_with_error(L, idx, t);
            task_retire(L, idx, t);
            return -1;
        }
        lua_pushlightuserdata(L, LASIO_THROW);
        push_cancel_error(L, idx);
        nargs = 2;
    }
    if (!lua_checkstack(co, nargs + 2)) {
        lua_pop(L, nargs);
        lua_pushliteral(L, "task stack overflow");
        task_ended_with_error(L, idx, t);
        task_retire(L, idx, t);
        return -1;
    }
    lua_xmove(L, co, nargs);
    if (!t->started) {
        t->started = 1;
        nargs = lua_gettop(co) - 1;
    }
    if (t->has_waiter) { /* the awaited Future is done with */
        t->has_waiter = 0;
        lua_pushnil(L);
        lua_setiuservalue(L, idx, TASK_UV_WAITER);
    }
    return nargs;
}

/* The resume of a task with budgets: they count while it runs. */
static __attribute__((noinline)) int
resume_budgeted(lua_State *L, struct lasio_loop *loop, struct lasio_task *t,
                int nargs, int *nres) {
    lasio_budget_enter_(L, loop, t);
    int status = lua_resume(t->co, L, nargs, nres);
    lasio_budget_leave_(L, loop, t);
    return status;
}

void
lasio_task_step_(lua_State *L, int idx) {
    struct lasio_task *t = lua_touserdata(L, idx);
    struct lasio_loop *loop = t->fut.loop;
    int nargs = 0, nres = 0;
    idx = lua_absindex(L, idx);
    t->scheduled = 0;
    if (t->fut.state != FUT_PENDING)
        return;
    luaL_checkstack(L, 4, NULL);
    lua_State *co = t->co;
    /* one test for the rare cases: bits of the same byte */
    if (t->preempted | t->must_cancel | !t->started | t->has_waiter) {
        nargs = step_prologue(L, idx, t);
        if (nargs < 0)
            return;
    }
    struct lasio_task *prev = loop->current; /* an eager start nests steps */
    lua_State *prev_L = loop->running_L;
    loop->current = t;
    loop->steps++;
    loop->running_L = co;
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_TASK_RUN, t->id, 0, 0, 0, NULL);
    int status = t->budgeted ? resume_budgeted(L, loop, t, nargs, &nres)
                             : lua_resume(co, L, nargs, &nres);
    /* one clock read per step: the step began where the last one ended
     * (or where the drain began) */
    int64_t now = lasio_coarse_ns_();
    t->cpu_ns += now - loop->step_start;
    loop->step_start = now;
    t->steps++;
    loop->running_L = prev_L;
    loop->current = prev;
    if (status == LUA_YIELD) {
        task_yielded(L, idx, t, nres);
        return;
    }
    if (loop->trace) { /* what its end wakes, it wakes */
        loop->trace->by = TBY_TASK;
        loop->trace->by_task = t->id;
    }
    if (status == LUA_OK) {
        /* the trampoline returned true, results... or false, error */
        int ok = lua_toboolean(co, -nres);
        if (!lua_checkstack(L, nres + 2)) {
            lua_settop(co, 0);
            lua_pushliteral(L, "too many results");
            task_ended_with_error(L, idx, t);
        } else {
            lua_xmove(co, L, nres);
            lua_remove(L, -nres);
            if (ok && t->must_cancel) {
                /* it cancelled itself and returned: asyncio ends it
                 * cancelled */
                lua_pop(L, nres - 1);
                push_cancel_error(L, idx);
                task_ended_with_error(L, idx, t);
            } else if (ok)
                lasio_future_finish_(L, idx, &t->fut, nres - 1);
            else
                task_ended_with_error(L, idx, t);
            recycle_coroutine(L, idx, t);
        }
    } else {
        /* an error escaped the trampoline (memory error, error in a
         * __close): reset the thread, which leaves the error on top */
        lua_xmove(co, L, 1);
        lua_closethread(co, L);
        task_ended_with_error(L, idx, t);
    }
    task_retire(L, idx, t);
    lasio_trace_by_(loop, TBY_NONE);
}

int
lasio_task_cancel_(lua_State *L, int idx, struct lasio_task *t, int msgidx) {
    idx = lua_absindex(L, idx);
    msgidx = msgidx ? lua_absindex(L, msgidx) : 0;
    if (t->fut.state != FUT_PENDING)
        return 0;
    t->num_cancels++;
    if (t->fut.loop->trace)
        lasio_trace_cancel_(L, t->fut.loop, t, msgidx);
    int wake = t->waiting == WAIT_SLEEP || t->waiting == WAIT_FOREVER ||
               t->waiting == WAIT_QUEUE;
    if (t->waiting == WAIT_FUTURE && t->has_waiter) {
        lua_getiuservalue(L, idx, TASK_UV_WAITER);
        struct lasio_future *w = lasio_tofuture_(L, -1);
        struct lasio_task *wt =
            w && w->kind == KIND_TASK ? (struct lasio_task *)w : NULL;
        int cancelled = 0;
        if (wt && wt->cancelling) {
            /* an await cycle: the task it waits on is being cancelled
             * further out and waits, through others, on this one; going
             * round would never end, so this one wakes with the
             * cancellation and stops waiting */
            lasio_future_remove_callback_(L, -1, w, idx);
            wake = 1;
        } else if (wt) {
            t->cancelling = 1;
            cancelled = lasio_task_cancel_(L, -1, wt, msgidx);
            t->cancelling = 0;
        } else if (w) {
            cancelled = lasio_future_cancel_(L, -1, w, msgidx);
        }
        lua_pop(L, 1);
        if (cancelled)
            return 1; /* the wake-up raises CancelledError at the await */
    }
    t->must_cancel = 1;
    if (msgidx)
        lua_pushvalue(L, msgidx);
    else
        lua_pushnil(L);
    lasio_extra_set_(L, idx, EXTRA_CANCELMSG);
    if (wake) {
        if (t->waiting == WAIT_SLEEP)
            lasio_timerheap_remove_(t->fut.loop, &t->heap_pos);
        lasio_waitq_unlink_(t);
        t->waiting = WAIT_NONE;
        t->scheduled = 1;
        if (!t->fut.loop->current) /* from a callback, not a task */
            lasio_trace_by_(t->fut.loop, TBY_CANCEL);
        lasio_readyq_push_(L, t->fut.loop, idx);
        lasio_trace_by_(t->fut.loop, TBY_NONE);
    }
    return 1;
}

/* {====== Awaiting ====== */

/* Pushes the name under which the loaded modules hold the function on
 * top ("string.gsub", "require"), or nil: the shortest such name, the
 * first in byte order among equals, so the answer never depends on the
 * hash order of the tables (lauxlib's own search takes the first found).
 * [-0, +1, m] */
static void
push_loaded_name(lua_State *L) {
    int fn = lua_gettop(L);
    luaL_checkstack(L, 8, NULL);
    lua_pushnil(L); /* best name so far */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* module name, module */
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) { /* key, value */
                if (lua_rawequal(L, -1, fn) && lua_type(L, -2) == LUA_TSTRING) {
                    const char *mod = lua_tostring(L, -4);
                    if (strcmp(mod, LUA_GNAME) == 0)
                        lua_pushvalue(L, -2);
                    else
                        lua_pushfstring(L, "%s.%s", mod, lua_tostring(L, -2));
                    size_t n, bn;
                    const char *name = lua_tolstring(L, -1, &n);
                    const char *best = lua_tolstring(L, fn + 1, &bn);
                    if (!best || n < bn || (n == bn && strcmp(name, best) < 0))
                        lua_replace(L, fn + 1);
                    else
                        lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    lua_settop(L, fn + 1);
    lua_remove(L, fn);
}

/* Names the innermost C function that makes the caller non-yieldable:
 * its public name, else the name at the call site; the name is left on
 * the stack. [-0, +1, m] */
static const char *
blocking_c_function(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Snf", &ar))
            break;
        if (ar.what[0] == 'C') {
            push_loaded_name(L);
            lua_remove(L, -2); /* the function */
            if (lua_isstring(L, -1))
                return lua_tostring(L, -1);
            lua_pop(L, 1);
            return lua_pushstring(L, ar.name ? ar.name : "a C function");
        }
        lua_pop(L, 1);
        if (ar.what[0] == 'm')
            return lua_pushliteral(L, "the main chunk of a require");
    }
    return lua_pushliteral(L, "a C function");
}

struct lasio_task *
lasio_check_await_(lua_State *L, struct lasio_loop **lp, const char *what) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop || !loop->current)
        luaL_error(L,
                   "%s: not inside a task (use lasio.run or the lasio "
                   "command)",
                   what);
    if (!lua_isyieldable(L))
        luaL_error(L,
                   "%s: cannot await here: attempt to yield across a "
                   "C-call boundary (in %s)",
                   what, blocking_c_function(L));
    struct lasio_task *t = loop->current;
    if (t->must_cancel) { /* the task cancelled itself: raise at once */
        t->must_cancel = 0;
        pushtask(L, t);
        push_cancel_error(L, -1);
        lua_error(L);
    }
    *lp = loop;
    return t;
}

/* After a scheduler resume: raise a delivered error, else return the
 * awaited Future's results. The Future sits at ctx. */
static int
await_k(lua_State *L, int status, lua_KContext ctx) {
    int idx = (int)ctx;
    (void)status;
    if (lua_gettop(L) > idx && lua_touserdata(L, idx + 1) == LASIO_THROW) {
        lua_settop(L, idx + 2);
        return lua_error(L);
    }
    lua_settop(L, idx);
    return lasio_future_results_(L, idx, lua_touserdata(L, idx));
}

int
lasio_await_(lua_State *L, int idx, const char *what) {
    struct lasio_loop *loop;
    idx = lua_absindex(L, idx);
    lua_settop(L, idx);
    struct lasio_task *t = lasio_check_await_(L, &loop, what);
    struct lasio_future *f = lua_touserdata(L, idx);
    if (f == &t->fut)
        return luaL_error(L, "%s: a task cannot await itself", what);
    if (f->loop != loop)
        return luaL_error(L, "%s: the Future belongs to another loop", what);
    pushtask(L, t);
    lasio_future_add_callback_(L, idx, f, -1);
    /* only now, when nothing can fail before the yield: the waiter's slot
     * is the one the task's outcome takes */
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, TASK_UV_WAITER);
    t->has_waiter = 1;
    lua_pop(L, 1);
    t->waiting = WAIT_FUTURE;
    if (loop->trace)
        lasio_trace_wait_(
            L, loop, t, f->kind == KIND_TASK ? TWAIT_TASK : TWAIT_WHAT,
            f->kind == KIND_TASK ? ((struct lasio_task *)f)->id : 0, what);
    lua_pushlightuserdata(L, LASIO_SENTINEL);
    return lua_yieldk(L, 1, idx, await_k);
}

void
lasio_task_timer_due_(lua_State *L, struct lasio_task *t) {
    /* t is kept alive by the loop's tasks table while it sleeps */
    struct lasio_loop *loop = t->fut.loop;
    t->waiting = WAIT_NONE;
    t->scheduled = 1;
    lasio_readyq_push_task_(L, loop, t);
}

/* After a sleep: raise a delivered error or return the extra arguments. */
static int
sleep_k(lua_State *L, int status, lua_KContext ctx) {
    int base = (int)ctx;
    (void)status;
    if (lua_gettop(L) > base && lua_touserdata(L, base + 1) == LASIO_THROW) {
        lua_settop(L, base + 2);
        return lua_error(L);
    }
    lua_settop(L, base);
    return base - 1;
}

int
lasio_sleep_(lua_State *L) {
    struct lasio_loop *loop;
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L, "lasio.sleep: delay must be a number, got %s",
                          luaL_typename(L, 1));
    double delay = lua_tonumber(L, 1);
    if (isnan(delay)) /* printf writes NaN as "-nan" here: say it plainly */
        return luaL_error(L, "lasio.sleep: delay must be >= 0, got nan");
    if (delay < 0)
        return luaL_error(L, "lasio.sleep: delay must be >= 0, got %f", delay);
    struct lasio_task *t = lasio_check_await_(L, &loop, "lasio.sleep");
    int base = lua_gettop(L);
    t->wait_what = NULL;
    if (delay == 0) {
        t->scheduled = 1;
        lasio_readyq_push_task_(L, loop, t);
    } else if (isinf(delay)) {
        t->waiting = WAIT_FOREVER;
        if (loop->trace)
            lasio_trace_wait_(L, loop, t, TWAIT_FOREVER, 0, NULL);
    } else {
        int64_t when = lasio_loop_deadline_ns_(loop, delay);
        if (lasio_timerheap_add_(loop, t, &t->heap_pos, when))
            return luaL_error(L, "lasio.sleep: not enough memory");
        t->wait_since = (double)when / 1e9 - delay;
        t->waiting = WAIT_SLEEP;
        if (loop->trace)
            lasio_trace_wait_(L, loop, t, TWAIT_SLEEP,
                              delay < 4e9 ? (int64_t)llround(delay * 1e9)
                                          : lasio_delay_ns_(delay),
                              NULL);
    }
    lua_pushlightuserdata(L, LASIO_SENTINEL);
    return lua_yieldk(L, 1, base, sleep_k);
}

/* ====== } */

/* {====== Lua methods ====== */

void
lasio_task_pushname_(lua_State *L, int idx, struct lasio_task *t) {
    idx = lua_absindex(L, idx);
    if (lasio_extra_get_(L, idx, EXTRA_NAME) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushfstring(L, "Task-%d", t->id);
    }
}

void
lasio_task_pushstack_(lua_State *L, int idx, struct lasio_task *t) {
    (void)idx;
    if (t->fut.state != FUT_PENDING || !t->started) {
        lua_pushliteral(L, "");
        return;
    }
    luaL_traceback(L, t->co, NULL, 0);
}

static int
task_cancelling(lua_State *L) {
    lua_pushinteger(L, checktask(L, 1)->num_cancels);
    return 1;
}

static int
task_uncancel(lua_State *L) {
    struct lasio_task *t = checktask(L, 1);
    if (t->num_cancels > 0 && --t->num_cancels == 0)
        t->must_cancel = 0;
    lua_pushinteger(L, t->num_cancels);
    return 1;
}

static int
task_get_name(lua_State *L) {
    lasio_task_pushname_(L, 1, checktask(L, 1));
    return 1;
}

static int
task_set_name(lua_State *L) {
    struct lasio_task *t = checktask(L, 1);
    luaL_checkany(L, 2);
    luaL_tolstring(L, 2, NULL);
    if (t->fut.loop->trace)
        lasio_trace_rename_(L, t->fut.loop, t, -1);
    lasio_extra_set_(L, 1, EXTRA_NAME);
    return 0;
}

static int
task_get_coro(lua_State *L) {
    checktask(L, 1)->exposed = 1;
    lua_getiuservalue(L, 1, TASK_UV_CORO);
    return 1;
}

static int
task_get_stack(lua_State *L) {
    lasio_task_pushstack_(L, 1, checktask(L, 1));
    return 1;
}

static int
task_not_allowed(lua_State *L) {
    checktask(L, 1);
    return lasio_raise_(L, ERR_INVALIDSTATE,
                        "Task does not support set_result() or "
                        "set_exception()");
}

static const luaL_Reg task_methods[] = {{"cancelling", task_cancelling},
                                        {"uncancel", task_uncancel},
                                        {"get_name", task_get_name},
                                        {"set_name", task_set_name},
                                        {"get_coro", task_get_coro},
                                        {"get_stack", task_get_stack},
                                        {"set_result", task_not_allowed},
                                        {"set_exception", task_not_allowed},
                                        {NULL, NULL}};

void
lasio_task_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_TASK_MT, &lasio_task_token_)) {
        lua_newtable(L);
        lasio_future_register_(L);
        luaL_setfuncs(L, task_methods, 0);
        lua_setfield(L, -2, "__index");
        lasio_future_metamethods_(L, KIND_TASK);
    }
    lua_pop(L, 1);
}

/* ====== } */
