/*
 * future.c: lasio.Future, asyncio's Future in C (docs/API.md, Future). A
 * Future holds any number of results or one error, and a list of done
 * callbacks that are always scheduled through the ready queue, never
 * called from inside set_result. A Task (task.c) is a Future too and
 * shares these methods.
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"

/* Set by task.c to mark the error-holding flavour of FUT_FINISHED. */
#define FUT_FAILED(f) ((f)->nresults < 0)

struct lasio_future *
lasio_tofuture_(lua_State *L, int idx) {
    struct lasio_future *f = lua_touserdata(L, idx);
    if (!f || !lua_getmetatable(L, idx))
        return NULL;
    lua_rawgeti(L, -1, 1);
    const void *t = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return t == &lasio_future_token_ || t == &lasio_task_token_ ? f : NULL;
}

struct lasio_future *
lasio_checkfuture_(lua_State *L, int idx) {
    struct lasio_future *f = lasio_tofuture_(L, idx);
    if (!f)
        luaL_typeerror(L, idx, "lasio.Future");
    return f;
}

void
lasio_future_init_(lua_State *L, int idx, struct lasio_future *f,
                   struct lasio_loop *loop) {
    idx = lua_absindex(L, idx);
    f->state = FUT_PENDING;
    f->log_error = 0;
    f->has_stop = 0;
    f->c_source = 0;
    f->gather_mark = 0;
    f->finalized = 0;
    f->ncallbacks = 0;
    f->ref = LUA_NOREF;
    f->queued = 0;
    f->loop = loop;
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, idx, FUT_UV_EXTRA);
}

struct lasio_future *
lasio_future_push_(lua_State *L, struct lasio_loop *loop) {
    if (loop->closed)
        luaL_error(L, "cannot create a Future: the loop is closed");
    struct lasio_future *f =
        lua_newuserdatauv(L, sizeof(struct lasio_future), FUT_NUV);
    f->kind = KIND_FUTURE;
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->mt_future_ref);
    lua_setmetatable(L, -2);
    lasio_future_init_(L, -1, f, loop);
    return f;
}

int
lasio_extra_get_(lua_State *L, int idx, int key) {
    if (lua_getiuservalue(L, idx, FUT_UV_EXTRA) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_rawgeti(L, -1, key);
    lua_remove(L, -2);
    return t;
}

void
lasio_extra_set_(lua_State *L, int idx, int key) {
    idx = lua_absindex(L, idx);
    if (lua_getiuservalue(L, idx, FUT_UV_EXTRA) != LUA_TTABLE) {
        lua_pop(L, 1);
        if (lua_isnil(L, -1)) { /* clearing an unset field */
            lua_pop(L, 1);
            return;
        }
        lua_createtable(L, EXTRA_N, 0);
        lua_getiuservalue(L, idx, FUT_UV_EXTRA); /* the loop moves in */
        lua_rawseti(L, -2, EXTRA_LOOP);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, idx, FUT_UV_EXTRA);
    }
    lua_insert(L, -2);
    lua_rawseti(L, -2, key);
    lua_pop(L, 1);
}

/* {====== Completion ====== */

/* Pushes callback i of the list at idx holding n: one callback is stored
 * as itself, more in a table. [-0, +1, -] */
static void
push_callback(lua_State *L, int idx, int n, int i) {
    if (n == 1)
        lua_pushvalue(L, idx);
    else
        lua_rawgeti(L, idx, i);
}

/* Schedules every done callback of the Future at idx and forgets them
 * (asyncio copies the list: callbacks removed or added during dispatch
 * affect nothing already scheduled). [-0, +0, m] */
static void
schedule_callbacks(lua_State *L, int idx, struct lasio_future *f, int n) {
    if (f->c_source) { /* a C Future is no longer a wake-up source */
        f->c_source = 0;
        f->loop->nsources--;
    }
    if (n == 0)
        return;
    luaL_checkstack(L, 4, NULL);
    lua_getiuservalue(L, idx, FUT_UV_CALLBACKS);
    if (n == 1 && lua_type(L, -1) == LUA_TUSERDATA &&
        *(unsigned char *)lua_touserdata(L, -1) == KIND_DONECB) {
        /* a child's one callback, its gather's: nothing to queue */
        lua_pushnil(L);
        lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
        struct lasio_donecb *cb = lua_touserdata(L, -1);
        cb->run(L, lua_gettop(L), idx, f);
        lua_pop(L, 1);
        return;
    }
    /* room for every entry first: no callback is lost to a memory error */
    lasio_readyq_reserve_(L, f->loop, 2 * n);
    lua_pushnil(L);
    lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
    int list = lua_gettop(L), ndonecb = 0;
    for (int i = 1; i <= n; i++) {
        push_callback(L, list, n, i);
        /* only Tasks, C callbacks and functions are ever stored as
         * callbacks */
        struct lasio_task *t =
            lua_type(L, -1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
        if (t && t->fut.kind == KIND_DONECB) {
            ndonecb++; /* run below */
        } else if (t) {
            /* the wake-up of a task awaiting this Future */
            if (t->waiting == WAIT_FUTURE && !t->fut.state) {
                t->waiting = WAIT_NONE;
                t->scheduled = 1;
                lasio_readyq_push_(L, f->loop, -1);
            }
        } else {
            lasio_readyq_push_call_(L, f->loop, -1, idx);
        }
        lua_pop(L, 1);
    }
    /* C callbacks run now, after the others were queued: what they
     * schedule comes after those, as it would from the queue, without a
     * trip through it */
    for (int i = 1; ndonecb > 0 && i <= n; i++) {
        push_callback(L, list, n, i);
        unsigned char *kind =
            lua_type(L, -1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
        if (kind && *kind == KIND_DONECB) {
            ndonecb--;
            ((struct lasio_donecb *)kind)->run(L, lua_gettop(L), idx, f);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void
lasio_future_finish_(lua_State *L, int idx, struct lasio_future *f, int n) {
    idx = lua_absindex(L, idx);
    int ncb = f->ncallbacks; /* nresults takes its place */
    if (n <= 1) {            /* no table for none or one value */
        if (n == 0)
            lua_pushnil(L);
        lua_setiuservalue(L, idx, FUT_UV_RESULT);
    } else {
        lua_createtable(L, n, 0);
        lua_insert(L, -(n + 1));
        for (int i = n; i >= 1; i--)
            lua_rawseti(L, -(i + 1), i);
        lua_setiuservalue(L, idx, FUT_UV_RESULT);
    }
    f->nresults = n;
    f->state = FUT_FINISHED;
    schedule_callbacks(L, idx, f, ncb);
}

void
lasio_future_fail_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    int ncb = f->ncallbacks; /* nresults takes its place */
    lua_setiuservalue(L, idx, FUT_UV_RESULT);
    lasio_extra_set_(L, idx, EXTRA_TRACEBACK);
    f->nresults = -1;
    f->state = FUT_FINISHED;
    f->log_error = 1;
    lasio_future_finalize_(L, idx, f);
    schedule_callbacks(L, idx, f, ncb);
    lasio_diag_track_(L, idx, f);
}

void
lasio_future_cancelled_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    int ncb = f->ncallbacks; /* nresults takes its place */
    lua_setiuservalue(L, idx, FUT_UV_RESULT);
    f->state = FUT_CANCELLED;
    f->nresults = 0;
    schedule_callbacks(L, idx, f, ncb);
}

void
lasio_future_push_cancelled_error_(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_getiuservalue(L, idx, FUT_UV_RESULT);
    lasio_newerror_at_(L, ERR_CANCELLED, -1);
    lua_remove(L, -2);
}

int
lasio_future_results_(lua_State *L, int idx, struct lasio_future *f) {
    idx = lua_absindex(L, idx);
    if (f->state == FUT_CANCELLED) {
        lasio_future_push_cancelled_error_(L, idx);
        return lua_error(L);
    }
    if (f->state == FUT_PENDING)
        return lasio_raise_(L, ERR_INVALIDSTATE, "Result is not set.");
    if (FUT_FAILED(f)) {
        if (f->log_error) {
            f->log_error = 0;
            lasio_diag_untrack_(L, idx, f);
        }
        lua_getiuservalue(L, idx, FUT_UV_RESULT);
        lasio_diag_rethrow_(L, -1, idx);
        return lua_error(L);
    }
    int n = f->nresults;
    if (n == 1) {
        lua_getiuservalue(L, idx, FUT_UV_RESULT);
        return 1;
    }
    luaL_checkstack(L, n + 1, "too many results");
    lua_getiuservalue(L, idx, FUT_UV_RESULT);
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));
    return n;
}

/* ====== } */

/* {====== Callbacks ====== */

void
lasio_future_add_callback_(lua_State *L, int idx, struct lasio_future *f,
                           int cbidx) {
    idx = lua_absindex(L, idx);
    cbidx = lua_absindex(L, cbidx);
    if (f->state != FUT_PENDING) {
        unsigned char *kind = lua_type(L, cbidx) == LUA_TUSERDATA
                                  ? lua_touserdata(L, cbidx)
                                  : NULL;
        if (kind && *kind == KIND_DONECB) {
            if (f->loop->closed)
                return; /* the queue takes nothing any more */
            lasio_readyq_reserve_(L, f->loop, 1);
            lasio_pushtasks_(L, f->loop);
            lasio_slot_reserve_(L, f->loop, -1, 2);
            lua_pop(L, 1);
            lasio_readyq_push_donecb_(L, f->loop, cbidx, idx);
        } else if (lasio_totask_(L, cbidx)) {
            struct lasio_task *t = lasio_totask_(L, cbidx);
            t->waiting = WAIT_NONE;
            t->scheduled = 1;
            lasio_readyq_push_(L, f->loop, cbidx);
        } else {
            lasio_readyq_push_call_(L, f->loop, cbidx, idx);
        }
        return;
    }
    int n = f->ncallbacks;
    if (n == 0) {
        lua_pushvalue(L, cbidx);
        lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
    } else if (n == 1) {
        lua_createtable(L, 4, 0);
        lua_getiuservalue(L, idx, FUT_UV_CALLBACKS);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, cbidx);
        lua_rawseti(L, -2, 2);
        lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
    } else {
        lua_getiuservalue(L, idx, FUT_UV_CALLBACKS);
        lua_pushvalue(L, cbidx);
        lua_rawseti(L, -2, n + 1);
        lua_pop(L, 1);
    }
    f->ncallbacks = n + 1;
}

int
lasio_future_remove_callback_(lua_State *L, int idx, struct lasio_future *f,
                              int cbidx) {
    if (f->state != FUT_PENDING) /* its callbacks were scheduled */
        return 0;
    int n = f->ncallbacks, removed = 0;
    idx = lua_absindex(L, idx);
    cbidx = lua_absindex(L, cbidx);
    if (n == 0)
        return 0;
    lua_getiuservalue(L, idx, FUT_UV_CALLBACKS);
    if (n == 1) {
        if (lua_rawequal(L, -1, cbidx)) {
            lua_pushnil(L);
            lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
            f->ncallbacks = 0;
            removed = 1;
        }
        lua_pop(L, 1);
        return removed;
    }
    int list = lua_gettop(L), kept = 0;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        if (lua_rawequal(L, -1, cbidx)) {
            lua_pop(L, 1);
            removed++;
        } else {
            lua_rawseti(L, list, ++kept);
        }
    }
    for (int i = kept + 1; i <= n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, list, i);
    }
    f->ncallbacks = kept;
    if (kept == 1) { /* back to the single-value form */
        lua_rawgeti(L, list, 1);
        lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
    } else if (kept == 0) {
        lua_pushnil(L);
        lua_setiuservalue(L, idx, FUT_UV_CALLBACKS);
    }
    lua_pop(L, 1);
    return removed;
}

int
lasio_future_cancel_(lua_State *L, int idx, struct lasio_future *f,
                     int msgidx) {
    idx = lua_absindex(L, idx);
    if (f->state != FUT_PENDING)
        return 0;
    if (msgidx)
        lua_pushvalue(L, msgidx);
    else
        lua_pushnil(L);
    lasio_future_cancelled_(L, idx, f);
    return 1;
}

/* ====== } */

/* {====== Lua methods ====== */

static struct lasio_future *
checkplain(lua_State *L, int idx, const char *what) {
    struct lasio_future *f = lasio_checkfuture_(L, idx);
    if (f->kind == KIND_TASK)
        luaL_error(L, "%s: not allowed on a Task", what);
    return f;
}

static int
future_done(lua_State *L) {
    lua_pushboolean(L, lasio_checkfuture_(L, 1)->state != FUT_PENDING);
    return 1;
}

static int
future_cancelled(lua_State *L) {
    lua_pushboolean(L, lasio_checkfuture_(L, 1)->state == FUT_CANCELLED);
    return 1;
}

static int
future_result(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    lua_settop(L, 1);
    return lasio_future_results_(L, 1, f);
}

static int
future_exception(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    if (f->state == FUT_CANCELLED) {
        lasio_future_push_cancelled_error_(L, 1);
        return lua_error(L);
    }
    if (f->state == FUT_PENDING)
        return lasio_raise_(L, ERR_INVALIDSTATE, "Exception is not set.");
    if (!FUT_FAILED(f))
        return 0;
    if (f->log_error) {
        f->log_error = 0;
        lasio_diag_untrack_(L, 1, f);
    }
    lua_getiuservalue(L, 1, FUT_UV_RESULT);
    return 1;
}

static void
checkpending(lua_State *L, struct lasio_future *f) {
    if (f->state != FUT_PENDING) {
        lua_pushvalue(L, 1);
        lasio_raise_(L, ERR_INVALIDSTATE, "invalid state: %s",
                     luaL_tolstring(L, -1, NULL));
    }
}

static int
future_set_result(lua_State *L) {
    struct lasio_future *f = checkplain(L, 1, "set_result");
    checkpending(L, f);
    lasio_future_finish_(L, 1, f, lua_gettop(L) - 1);
    return 0;
}

static int
future_set_exception(lua_State *L) {
    struct lasio_future *f = checkplain(L, 1, "set_exception");
    luaL_checkany(L, 2);
    if (lua_isnil(L, 2))
        return luaL_argerror(L, 2, "error value expected, got nil");
    checkpending(L, f);
    lua_settop(L, 2);
    if (lua_istable(L, 2))
        lua_getfield(L, 2, "traceback");
    else
        luaL_traceback(L, L, NULL, 1);
    lua_insert(L, 2);
    lasio_future_fail_(L, 1, f);
    return 0;
}

static int
future_cancel(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    if (f->kind == KIND_TASK) {
        lua_pushboolean(L, lasio_task_cancel_(L, 1, (struct lasio_task *)f,
                                              lua_isnoneornil(L, 2) ? 0 : 2));
        return 1;
    }
    lua_pushboolean(
        L, lasio_future_cancel_(L, 1, f, lua_isnoneornil(L, 2) ? 0 : 2));
    return 1;
}

static int
future_add_done_callback(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    lasio_checkargtype_(L, 2, LUA_TFUNCTION, "fut:add_done_callback");
    lasio_future_add_callback_(L, 1, f, 2);
    return 0;
}

static int
future_remove_done_callback(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    lasio_checkargtype_(L, 2, LUA_TFUNCTION, "fut:remove_done_callback");
    lua_pushinteger(L, lasio_future_remove_callback_(L, 1, f, 2));
    return 1;
}

static int
future_await(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    lua_settop(L, 1);
    if (f->state != FUT_PENDING)
        return lasio_future_results_(L, 1, f);
    return lasio_await_(L, 1, "await");
}

static int
future_get_loop(lua_State *L) {
    lasio_checkfuture_(L, 1);
    if (lua_getiuservalue(L, 1, FUT_UV_EXTRA) == LUA_TTABLE)
        lua_rawgeti(L, -1, EXTRA_LOOP);
    return 1;
}

/* Appends " result=..." / " exception=..." to the buffer. */
static void
describe_outcome(lua_State *L, luaL_Buffer *b, struct lasio_future *f) {
    if (f->state == FUT_PENDING) {
        luaL_addstring(b, "pending");
        return;
    }
    if (f->state == FUT_CANCELLED) {
        luaL_addstring(b, "cancelled");
        return;
    }
    luaL_addstring(b, "finished");
    if (FUT_FAILED(f)) {
        luaL_addstring(b, " exception=");
        lua_getiuservalue(L, 1, FUT_UV_RESULT);
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        luaL_addvalue(b);
    } else if (f->nresults >= 1) {
        luaL_addstring(b, " result=");
        lua_getiuservalue(L, 1, FUT_UV_RESULT);
        if (f->nresults > 1) {
            lua_rawgeti(L, -1, 1);
            lua_remove(L, -2);
        }
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        luaL_addvalue(b);
        if (f->nresults > 1)
            luaL_addstring(b, ", ...");
    }
}

static int
future_tostring(lua_State *L) {
    struct lasio_future *f = lasio_checkfuture_(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (f->kind == KIND_TASK) {
        luaL_addstring(&b, "lasio.Task<");
        lasio_task_pushname_(L, 1, (struct lasio_task *)f);
        luaL_addvalue(&b);
        luaL_addchar(&b, ' ');
    } else {
        luaL_addstring(&b, "lasio.Future<");
    }
    describe_outcome(L, &b, f);
    luaL_addchar(&b, '>');
    luaL_pushresult(&b);
    return 1;
}

static int
future_gc(lua_State *L) {
    struct lasio_future *f = lua_touserdata(L, 1);
    if (f->c_source && !f->loop->closed) /* dropped before resolved */
        f->loop->nsources--;
    f->c_source = 0;
    if (f->kind == KIND_TASK) /* collected with its loop: leave no link */
        lasio_waitq_unlink_((struct lasio_task *)f);
    if (f->log_error)
        lasio_diag_unretrieved_(L, 1, f);
    return 0;
}

/* core.internal.gather_results(list, n) -> {n = n, ...}: for each done Future
 * of list[1..n], its first result, or its error (marked retrieved), or a
 * CancelledError: what gather returns with return_exceptions, in one call
 * instead of three method calls per child. */
int
lasio_gather_results_(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 0x7fffffff, 2, "bad count");
    lua_settop(L, 2);
    lua_createtable(L, (int)n, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, 3, "n");
    lua_pushnil(L); /* 4: the metatable of the last item checked */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        struct lasio_future *f = NULL;
        if (lua_getmetatable(L, 5)) { /* the children mostly share one */
            if (lua_rawequal(L, -1, 4)) {
                f = lua_touserdata(L, 5);
                lua_pop(L, 1);
            } else {
                f = lasio_tofuture_(L, 5);
                if (f)
                    lua_replace(L, 4); /* a Future's or a Task's */
                else
                    lua_pop(L, 1);
            }
        }
        if (!f || f->state == FUT_PENDING)
            return luaL_error(L,
                              "gather_results: item %d is not a done "
                              "Future",
                              (int)i);
        if (f->state == FUT_CANCELLED) {
            lasio_future_push_cancelled_error_(L, 5);
        } else if (FUT_FAILED(f)) {
            if (f->log_error) {
                f->log_error = 0;
                lasio_diag_untrack_(L, 5, f);
            }
            lua_getiuservalue(L, 5, FUT_UV_RESULT);
        } else if (f->nresults == 0) {
            lua_pushnil(L);
        } else {
            lua_getiuservalue(L, 5, FUT_UV_RESULT);
            if (f->nresults > 1) {
                lua_rawgeti(L, -1, 1);
                lua_remove(L, -2);
            }
        }
        lua_rawseti(L, 3, i);
        lua_settop(L, 4);
    }
    lua_settop(L, 3);
    return 1;
}

int
lasio_stop_loop_cb_(lua_State *L) {
    struct lasio_future *f = lasio_tofuture_(L, 1);
    if (f && f->has_stop)
        f->loop->stopping = 1;
    return 0;
}

static const luaL_Reg future_methods[] = {
    {"done", future_done},
    {"cancelled", future_cancelled},
    {"result", future_result},
    {"exception", future_exception},
    {"set_result", future_set_result},
    {"set_exception", future_set_exception},
    {"cancel", future_cancel},
    {"add_done_callback", future_add_done_callback},
    {"remove_done_callback", future_remove_done_callback},
    {"await", future_await},
    {"get_loop", future_get_loop},
    {NULL, NULL}};

void
lasio_future_register_(lua_State *L) {
    luaL_setfuncs(L, future_methods, 0);
}

/* Futures and Tasks have no __gc in their metatables: it would make every
 * one finalizable, costing each an extra collection cycle and a finalizer
 * call (~10% of a short task's instructions). The few that need one get
 * the twin of their metatable with __gc (lasio_future_finalize_). Pending
 * Tasks need none: the loop unlinks them from WaitQueues when it closes
 * or is collected (loop.c, release_pending). */
static const char future_twin_key = 0, task_twin_key = 0;

void
lasio_future_metamethods_(lua_State *L, int kind) {
    lua_pushcfunction(L, future_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_createtable(L, 0, 8); /* the twin: the same fields, and __gc */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushcfunction(L, future_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX,
                kind == KIND_TASK ? &task_twin_key : &future_twin_key);
}

void
lasio_future_finalize_(lua_State *L, int idx, struct lasio_future *f) {
    if (f->finalized)
        return;
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX,
                f->kind == KIND_TASK ? &task_twin_key : &future_twin_key);
    lua_setmetatable(L, idx);
    f->finalized = 1;
}

void
lasio_future_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_FUTURE_MT, &lasio_future_token_)) {
        lua_newtable(L);
        lasio_future_register_(L);
        lua_setfield(L, -2, "__index");
        lasio_future_metamethods_(L, KIND_FUTURE);
    }
    lua_pop(L, 1);
}

/* ====== } */
