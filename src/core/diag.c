/*
 * diag.c: diagnostics that go through the loop's exception handler:
 * errors raised by callbacks, "exception was never retrieved", "Task was
 * destroyed but it is pending!", and the deadlock report. Futures holding
 * an unretrieved error are kept in a weak-keyed set of the loop so that
 * closing the loop reports those still alive; collected ones report from
 * __gc. A report made in __gc is queued, never run inside the finalizer.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int
lasio_debug_from_env_(void) {
    /* asyncio's PYTHONASYNCIODEBUG: any value but "" and "0" */
    const char *v = getenv("LASIO_DEBUG");
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static const char last_traceback_key = 0;
static const char rethrow_key = 0; /* {error, traceback, origin} */

void
lasio_diag_rethrow_(lua_State *L, int idx, int fidx) {
    idx = lua_absindex(L, idx);
    fidx = lua_absindex(L, fidx);
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, 1);
    lasio_extra_get_(L, fidx, EXTRA_TRACEBACK);
    lua_rawseti(L, -2, 2);
    struct lasio_future *f = lasio_tofuture_(L, fidx);
    if (f && f->kind == KIND_TASK)
        lasio_task_pushname_(L, fidx, (struct lasio_task *)f);
    else
        lua_pushliteral(L, "a Future");
    lua_rawseti(L, -2, 3);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rethrow_key);
}

/* Appends to the traceback on top where a re-raised error came from. */
static void
add_origin(lua_State *L, int err) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rethrow_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_rawgeti(L, -1, 1);
    int same = lua_rawequal(L, -1, err);
    lua_pop(L, 1);
    if (!same || lua_rawgeti(L, -1, 2) != LUA_TSTRING) {
        lua_pop(L, same ? 2 : 1);
        return;
    }
    /* stack: tb, record, origin tb */
    lua_rawgeti(L, -2, 3);
    lua_pushfstring(L, "\n(raised in task %s:)\n", lua_tostring(L, -1));
    lua_replace(L, -2);
    lua_insert(L, -2); /* tb, record, "raised in", origin tb */
    lua_remove(L, -3);
    lua_concat(L, 3);
}

/* The message handler of every protected call and task body: records a
 * traceback (in the running task, or under last_traceback_key) and
 * returns the error value unchanged, so awaiting code sees what was
 * raised. */
int
lasio_msgh_(lua_State *L) {
    /* a CancelledError leaving a task's body cancels the task, whose
     * traceback nobody reads: none is written (it would cost a search of
     * package.loaded per frame, for every cancelled task) */
    struct lasio_loop *running = lasio_running_loop_(L);
    if (running && running->current && running->current->co == L &&
        lasio_iserror_(L, 1, ERR_CANCELLED)) {
        lua_settop(L, 1);
        return 1;
    }
    const char *msg = NULL;
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER)
        msg = lua_tostring(L, 1);
    else if (luaL_callmeta(L, 1, "__tostring") &&
             lua_type(L, -1) == LUA_TSTRING)
        msg = lua_tostring(L, -1);
    else
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    add_origin(L, 1);
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (loop && loop->current && loop->current->co == L) {
        lasio_pushloop_(L, loop);
        lua_getiuservalue(L, -1, LOOP_UV_TASKS);
        lua_rawgeti(L, -1, loop->current->fut.ref);
        lua_pushvalue(L, -4);
        lasio_extra_set_(L, -2, EXTRA_TRACEBACK);
        lua_pop(L, 3);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &last_traceback_key);
    lua_settop(L, 1);
    return 1;
}

/* A guarded callback: when a host's own event_base_dispatch runs it (no
 * lasio_run or lasio_step on the stack), the loop counts as running while
 * it does, so tasks can await and Lua code sees a running loop. */
struct guard {
    struct lasio_loop *loop;
    lua_CFunction body;
    int entered;
};

static int
guard_body(lua_State *L) {
    struct guard *g = lua_touserdata(L, 1);
    g->entered = lasio_loop_enter_(L, g->loop);
    lua_pushlightuserdata(L, g->loop);
    lua_replace(L, 1);
    return g->body(L);
}

void
lasio_guarded_(struct lasio_loop *loop, lua_CFunction body) {
    lua_State *L = loop->L;
    struct guard g = {loop, body, 0};
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 4))
        return;
    lua_pushcfunction(L, guard_body);
    lua_pushlightuserdata(L, &g);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "lasio: error inside the event loop: %s\n",
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                               : "(not a string)");
        fflush(stderr);
    }
    if (g.entered)
        lasio_loop_leave_(L, loop);
    lua_settop(L, top);
}

void
lasio_protected_call_(lua_State *L, struct lasio_loop *loop, int nargs,
                      int handleidx) {
    int fidx = lua_gettop(L) - nargs;
    handleidx = handleidx ? lua_absindex(L, handleidx) : 0;
    lua_pushcfunction(L, lasio_msgh_);
    lua_insert(L, fidx);
    if (lua_pcall(L, nargs, 0, fidx) == LUA_OK) {
        lua_pop(L, 1);
        return;
    }
    /* stack: msgh, error */
    lasio_report_callback_error_(L, loop, handleidx);
    lua_pop(L, 1);
}

void
lasio_report_callback_error_(lua_State *L, struct lasio_loop *loop,
                             int handleidx) {
    handleidx = handleidx ? lua_absindex(L, handleidx) : 0;
    lua_createtable(L, 0, 4);
    lua_insert(L, -2);
    lua_setfield(L, -2, "exception");
    lua_pushliteral(L, "Exception in callback");
    lua_setfield(L, -2, "message");
    if (handleidx) {
        lua_pushvalue(L, handleidx);
        lua_setfield(L, -2, "handle");
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &last_traceback_key);
    lua_setfield(L, -2, "traceback");
    lasio_call_exception_handler_(L, loop);
}

/* Pushes the loop's set of futures with unretrieved errors, or nothing
 * (returns 0) once the loop is closed. */
static int
pushunseen(lua_State *L, struct lasio_future *f) {
    if (f->loop->closed)
        return 0;
    lasio_pushloop_(L, f->loop);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_getiuservalue(L, -1, LOOP_UV_UNSEEN);
    lua_remove(L, -2);
    return 1;
}

/* The turns an error waits in report_early mode before it is reported:
 * an awaiting task is woken by a done callback, which queues its step
 * behind the first pass, so it retrieves the error before the last. */
#define EARLY_PASSES 3

static void push_unretrieved_context(lua_State *L, int idx,
                                     struct lasio_future *f);

/* From the ready queue, with the Future at 1 and the passes left as
 * upvalue: reports its error if nothing retrieved it meanwhile. Reported
 * this way (someone saw it) the error does not change the command's exit
 * status. */
static int
early_pass(lua_State *L) {
    struct lasio_future *f = lasio_tofuture_(L, 1);
    lua_Integer left = lua_tointeger(L, lua_upvalueindex(1));
    if (!f || !f->log_error || f->loop->closed)
        return 0;
    if (left > 0) {
        lua_pushinteger(L, left - 1);
        lua_pushcclosure(L, early_pass, 1);
        lasio_readyq_push_call_(L, f->loop, -1, 1);
        return 0;
    }
    f->log_error = 0;
    lasio_diag_untrack_(L, 1, f);
    push_unretrieved_context(L, 1, f);
    lasio_call_exception_handler_(L, f->loop);
    return 0;
}

int
lasio_diag_report_early_(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    loop->report_early = (unsigned char)lua_toboolean(L, 1);
    return 0;
}

void
lasio_diag_track_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    if (!pushunseen(L, f))
        return;
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    if (f->loop->report_early) {
        lua_pushinteger(L, EARLY_PASSES - 1);
        lua_pushcclosure(L, early_pass, 1);
        lasio_readyq_push_call_(L, f->loop, -1, idx);
        lua_pop(L, 1);
    }
}

void
lasio_diag_untrack_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    if (!pushunseen(L, f))
        return;
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Adds to the context table on top where the task at tidx was created
 * and by whom, and who awaits it (the report block, as origin), and in
 * debug mode the creation traceback (source_traceback). */
static void
add_site(lua_State *L, int tidx) {
    tidx = lua_absindex(L, tidx);
    struct lasio_task *t = lasio_totask_(L, tidx);
    if (!t)
        return;
    lasio_task_pushreport_(L, tidx, t, 0);
    lua_setfield(L, -2, "origin");
    if (lasio_extra_get_(L, tidx, EXTRA_SITE) == LUA_TSTRING)
        lua_setfield(L, -2, "source_traceback");
    else
        lua_pop(L, 1);
}

/* Pushes the context of an unretrieved error of the Future at idx. */
static void
push_unretrieved_context(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    int is_task = f->kind == KIND_TASK;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, is_task ? "Task exception was never retrieved"
                              : "Future exception was never retrieved");
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, is_task ? "task" : "future");
    add_site(L, idx);
    lua_getiuservalue(L, idx, FUT_UV_RESULT);
    lua_setfield(L, -2, "exception");
    lasio_extra_get_(L, idx, EXTRA_TRACEBACK);
    lua_setfield(L, -2, "traceback");
}

/* Reports made in __gc wait for the ready queue in a set of the loop's
 * unseen table (unseen[&queued_key] = {[context] = true}), so that a
 * close coming before the next loop step still reports them. */
static const char queued_key = 0;

/* Pushes the set of queued reports (made on first use). [-0, +1, m] */
static void
pushqueued(lua_State *L, int unseen) {
    if (lua_rawgetp(L, unseen, &queued_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, unseen, &queued_key);
}

/* Queued from __gc: reports the context it is given, unless the loop's
 * close reported it already. */
static int
report_later(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    lua_pop(L, 1);
    lua_settop(L, 1);
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_UNSEEN);
    pushqueued(L, lua_gettop(L));
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TNIL)
        return 0;
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -4);
    lua_settop(L, 1);
    lasio_call_exception_handler_(L, loop);
    return 0;
}

void
lasio_diag_unretrieved_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    f->log_error = 0;
    f->loop->unretrieved++;
    push_unretrieved_context(L, idx, f);
    if (f->loop->closed || !pushunseen(L, f)) {
        lasio_call_exception_handler_(L, f->loop); /* default: prints */
        return;
    }
    pushqueued(L, lua_gettop(L));
    lua_pushvalue(L, -3);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 2);
    lua_pushcfunction(L, report_later);
    lasio_readyq_push_call_(L, f->loop, -1, -2);
    lua_pop(L, 2);
}

void
lasio_diag_close_(lua_State *L, int loopidx, struct lasio_loop *loop,
                  int report) {
    loopidx = lua_absindex(L, loopidx);
    /* futures still alive with an unretrieved error */
    lua_getiuservalue(L, loopidx, LOOP_UV_UNSEEN);
    int set = lua_gettop(L);
    /* reports queued by __gc that no loop step ran yet */
    if (lua_rawgetp(L, set, &queued_key) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_rawsetp(L, set, &queued_key);
        int queued = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, queued)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lasio_call_exception_handler_(L, loop);
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, set)) {
        lua_pop(L, 1);
        struct lasio_future *f = lasio_tofuture_(L, -1);
        if (f && f->log_error) {
            f->log_error = 0;
            loop->unretrieved++;
            push_unretrieved_context(L, -1, f);
            lasio_call_exception_handler_(L, loop);
        }
    }
    lua_pop(L, 1);
    if (!(report & LASIO_REPORT_PENDING) || loop->ntasks == 0)
        return; /* ntasks counts the pending tasks */
    /* tasks that never finished */
    lua_getiuservalue(L, loopidx, LOOP_UV_TASKS);
    int tasks = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, tasks)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        if (t && t->fut.state == FUT_PENDING) {
            lua_createtable(L, 0, 3);
            lua_pushliteral(L, "Task was destroyed but it is pending!");
            lua_setfield(L, -2, "message");
            lua_pushvalue(L, -2);
            lua_setfield(L, -2, "task");
            add_site(L, -2);
            lasio_task_pushstack_(L, -2, t);
            lua_setfield(L, -2, "traceback");
            lasio_call_exception_handler_(L, loop);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Appends the string on top to the accumulator at acc. [-1, +0, m] */
static void
append(lua_State *L, int acc) {
    lua_pushvalue(L, acc);
    lua_insert(L, -2);
    lua_concat(L, 2);
    lua_replace(L, acc);
}

void
lasio_deadlock_report_(lua_State *L, struct lasio_loop *loop) {
    lua_pushfstring(L,
                    "lasio: deadlock: %d task(s) wait for something that "
                    "nothing can bring (no ready work, timer, I/O or "
                    "signal handler left)\n",
                    loop->ntasks);
    int acc = lua_gettop(L);
    lasio_awaitgraph_index_(L, loop);
    int index = lua_gettop(L);
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    lua_remove(L, -2);
    int tasks = lua_gettop(L);
    double now = lasio_loop_time_(loop);
    lua_pushnil(L);
    while (lua_next(L, tasks)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        int task = lua_gettop(L);
        if (t && t->fut.state == FUT_PENDING) {
            /* the one report format (awaitgraph.c): what it waits on, its
             * stack, where it was created and by whom, who awaits it */
            lua_pushliteral(L, "task ");
            lasio_task_pushname_(L, task, t);
            if (!lasio_task_pushwait_(L, task, t)) {
                lua_pop(L, 1);
                lua_pushliteral(L, " waits forever\n");
            } else {
                char since[40];
                snprintf(since, sizeof since, " (for %.1f s)\n",
                         now - t->wait_since);
                lua_pushfstring(L, " waits on %s%s", lua_tostring(L, -1),
                                since);
                lua_remove(L, -2);
            }
            lasio_task_pushstack_(L, task, t);
            lua_pushliteral(L, "\n");
            lasio_task_pushreport_(L, task, t, index);
            if (lasio_extra_get_(L, task, EXTRA_SITE) == LUA_TSTRING) {
                lua_pushliteral(L, "created at:\n");
                lua_insert(L, -2);
                lua_pushliteral(L, "\n");
                lua_concat(L, 9);
            } else {
                lua_pop(L, 1);
                lua_concat(L, 6);
            }
            append(L, acc);
        }
        lua_settop(L, task - 1);
    }
    lua_settop(L, acc);
}
