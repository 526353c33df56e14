/*
 * embed.c: driving lasio from a C host (lasio.h): lasio_open, lasio_close,
 * lasio_run, lasio_step, lasio_task_spawn, the exception handler, and the
 * protected calls every function of lasio.h goes through. Owns nothing
 * beyond what the loop owns. Invariant: no function here raises into the
 * host; a refused call changes nothing (E1, E2).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <event2/event.h>

#include "embed/embed.h"

/* {====== Protected calls ====== */

int
lasio_api_call_(lua_State *L, lua_CFunction body, struct lasio_apicall *c,
                int nargs, int nresults) {
    c->refused = 0;
    if (!lua_checkstack(L, 3)) {
        lua_pop(L, nargs);
        if (nresults != 0)
            lua_pushnil(L); /* the caller keeps room for one result */
        return LUA_ERRMEM;
    }
    lua_pushcfunction(L, body);
    lua_insert(L, -(nargs + 1));
    lua_pushlightuserdata(L, c);
    lua_insert(L, -(nargs + 1));
    int status = lua_pcall(L, nargs + 1, nresults, 0);
    if (status == LUA_OK)
        return LASIO_OK;
    if (c->refused)
        status = c->refused;
    if (nresults == 0)
        lua_pop(L, 1);
    return status;
}

int
lasio_api_refuse_(lua_State *L, struct lasio_apicall *c, int code,
                  const char *msg) {
    c->refused = code;
    lua_pushstring(L, msg);
    return lua_error(L);
}

/* Is L the main thread of its state? [-0, +0, -] (needs 1 slot) */
static int
is_main(lua_State *L) {
    int main = lua_pushthread(L);
    lua_pop(L, 1);
    return main;
}

const char *
lasio_strerror(int status) {
    switch (status) {
    case LASIO_OK:
        return "ok";
    case LASIO_EBUSY:
        return "the loop is running (called from inside it)";
    case LASIO_ECLOSED:
        return "lasio is not open in this state, or its loop is closed";
    case LASIO_ETHREAD:
        return "a coroutine was given where the main thread is needed";
    case LASIO_EINVAL:
        return "invalid argument";
    case LASIO_EDONE:
        return "the Future is already done";
    case LUA_ERRRUN:
        return "error in Lua code";
    case LUA_ERRMEM:
        return "not enough memory";
    case LUA_ERRERR:
        return "error in the error handler";
    default:
        return "unknown status";
    }
}

/* ====== } */

/* {====== Opening and closing ====== */

/* One module of the compiled-in facade (the generated facade.c, see
 * cmake/embed.cmake), part of every build of the runtime. */
struct lasio_embedded_ {
    const char *mod, *chunkname, *src;
    size_t len;
};
LASIO_HIDDEN extern const struct lasio_embedded_ lasio_facade_[];

/* package.preload loader of one facade module (upvalue 1: its entry). */
static int
facade_loader(lua_State *L) {
    const struct lasio_embedded_ *e = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_loadbufferx(L, e->src, e->len, e->chunkname, "t") != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, e->mod);
    lua_pushstring(L, e->chunkname + 1);
    lua_call(L, 2, 1);
    return 1;
}

LASIO_API int luaopen_lasio_core(lua_State *L);

struct openctx {
    struct lasio_apicall c;
    struct event_base *base;
};

static int
open_body(lua_State *L) {
    struct openctx *c = lua_touserdata(L, 1);
    if (!is_main(L))
        return lasio_api_refuse_(L, &c->c, LASIO_ETHREAD,
                                 "lasio_open: L must be the main thread");
    if (lasio_current_loop_(L))
        return lasio_api_refuse_(L, &c->c, LASIO_EBUSY,
                                 "lasio_open: a loop is open in this state "
                                 "already (lasio_close it first)");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_lasio_core);
    lua_setfield(L, -2, "lasio.core");
    for (const struct lasio_embedded_ *e = lasio_facade_; e->mod; e++) {
        lua_pushlightuserdata(L, (void *)e); /* static entries */
        lua_pushcclosure(L, facade_loader, 1);
        lua_setfield(L, -2, e->mod);
    }
    lua_pop(L, 1);
    /* metatables and classes, and package.loaded["lasio.core"], so the
     * first require does not build the module a second time */
    luaL_requiref(L, "lasio.core", luaopen_lasio_core, 0);
    lua_pop(L, 1);
    lasio_loop_set_current_new_(L, c->base);
    return 0;
}

int
lasio_open(lua_State *L, struct event_base *base) {
    struct openctx c = {{0}, base};
    return lasio_api_call_(L, open_body, &c.c, 0, 0);
}

static int
close_body(lua_State *L) {
    struct lasio_apicall *c = lua_touserdata(L, 1);
    if (!is_main(L))
        return lasio_api_refuse_(L, c, LASIO_ETHREAD,
                                 "lasio_close: L must be the main thread");
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return lasio_api_refuse_(L, c, LASIO_ECLOSED,
                                 "lasio_close: no loop is open");
    if (loop->running || lasio_running_loop_(L))
        return lasio_api_refuse_(L, c, LASIO_EBUSY,
                                 "lasio_close: the loop is running");
    lasio_pushloop_(L, loop);
    lasio_loop_close_(L, -1, loop, LASIO_REPORT_ALL);
    return 0;
}

int
lasio_close(lua_State *L) {
    struct lasio_apicall c;
    return lasio_api_call_(L, close_body, &c, 0, 0);
}

/* ====== } */

/* {====== Running ====== */

/* The state's loop, for lasio_run and lasio_step: refuses (E1, E2) a
 * coroutine, a closed state, and a call from inside a running loop, also
 * when that loop is a host's dispatch of the base: libevent refuses a
 * reentrant event_base_loop, so one non-blocking iteration probes it. */
static struct lasio_loop *
loop_to_run(lua_State *L, struct lasio_apicall *c, const char *what) {
    if (!is_main(L)) {
        lua_pushfstring(L, "%s: L must be the main thread", what);
        lasio_api_refuse_(L, c, LASIO_ETHREAD, lua_tostring(L, -1));
    }
    if (lasio_running_loop_(L)) {
        lua_pushfstring(L, "%s: called from inside a running loop", what);
        lasio_api_refuse_(L, c, LASIO_EBUSY, lua_tostring(L, -1));
    }
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop) {
        lua_pushfstring(L, "%s: lasio is not open in this state", what);
        lasio_api_refuse_(L, c, LASIO_ECLOSED, lua_tostring(L, -1));
    }
    return loop;
}

/* One non-blocking iteration of the base with the loop running. Returns
 * event_base_loop's result: -1 when a dispatch of the base is running. */
static int
poll_once(lua_State *L, struct lasio_loop *loop) {
    lasio_loop_enter_(L, loop);
    if (loop->rq_count > 0)
        lasio_readyq_arm_(loop);
    int r = event_base_loop(loop->base, EVLOOP_NONBLOCK);
    lasio_loop_leave_(L, loop);
    return r;
}

/* loop:close() called while the loop ran takes effect once it stopped. */
static void
close_if_pending(lua_State *L, struct lasio_loop *loop) {
    if (loop->close_pending && !loop->closed) {
        loop->close_pending = 0;
        lasio_pushloop_(L, loop);
        lasio_loop_close_(L, -1, loop, LASIO_REPORT_ALL);
        lua_pop(L, 1);
    }
}

/* libevent refuses a reentrant event_base_loop */
#define REENTRANT ": called from a callback of a dispatch of the loop's base"

/* Stack: ctx, fn, args... */
static int
run_body(lua_State *L) {
    struct lasio_apicall *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = loop_to_run(L, c, "lasio_run");
    if (poll_once(L, loop) < 0)
        return lasio_api_refuse_(L, c, LASIO_EBUSY, "lasio_run" REENTRANT);
    if (loop->closed) /* loop:close() in what the probe ran */
        return lasio_api_refuse_(L, c, LASIO_ECLOSED,
                                 "lasio_run: the loop was closed");
    int nargs = lua_gettop(L) - 2;
    lasio_pushloop_(L, loop);
    lua_replace(L, 1); /* loop, fn, args... */
    lua_getiuservalue(L, 1, LOOP_UV_MAIN);
    lua_insert(L, 2); /* loop, previous main, fn, args... */
    struct lasio_task *t = lasio_task_spawn_(L, loop, 3, nargs);
    lua_replace(L, 3); /* loop, previous main, task */
    lasio_loop_set_main_(L, 1, 3);
    int deadlock = lasio_loop_run_(L, loop);
    t->fut.has_stop = 0; /* a later completion must not stop a run */
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, LOOP_UV_MAIN);
    if (t->fut.log_error) { /* re-raised below: not "never retrieved" */
        t->fut.log_error = 0;
        lasio_diag_untrack_(L, 3, &t->fut);
    }
    if (deadlock)
        return lua_error(L); /* the report */
    close_if_pending(L, loop);
    if (t->fut.state == FUT_PENDING)
        return luaL_error(L, "lasio_run: the loop stopped before the main "
                             "task finished");
    return lasio_future_results_(L, 3, &t->fut);
}

int
lasio_run(lua_State *L, int nargs, int nresults) {
    struct lasio_apicall c;
    if (nargs < 0 || lua_gettop(L) < nargs + 1)
        return LASIO_EINVAL;
    /* one result at least, so that a failure leaves its error object (the
     * documented +(nresults|1)); a success with none asked pops it */
    int status = lasio_api_call_(L, run_body, &c, nargs + 1,
                                 nresults == 0 ? 1 : nresults);
    if (status == LASIO_OK && nresults == 0)
        lua_pop(L, 1);
    /* a task that ran out of memory failed with Lua's message */
    if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "not enough memory") == 0)
        status = LUA_ERRMEM;
    return status;
}

struct stepctx {
    struct lasio_apicall c;
    int pending;
};

static int
step_body(lua_State *L) {
    struct stepctx *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = loop_to_run(L, &c->c, "lasio_step");
    if (poll_once(L, loop) < 0)
        return lasio_api_refuse_(L, &c->c, LASIO_EBUSY, "lasio_step" REENTRANT);
    close_if_pending(L, loop);
    c->pending = loop->closed ? 0 : loop->ntasks;
    return 0;
}

int
lasio_step(lua_State *L) {
    struct stepctx c = {{0}, 0};
    int status = lasio_api_call_(L, step_body, &c.c, 0, 0);
    return status == LASIO_OK ? c.pending : status;
}

/* Stack: ctx, fn, args... */
static int
spawn_body(lua_State *L) {
    struct lasio_apicall *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return lasio_api_refuse_(L, c, LASIO_ECLOSED,
                                 "lasio_task_spawn: lasio is not open");
    if (!lua_isfunction(L, 2))
        return lasio_api_refuse_(L, c, LASIO_EINVAL,
                                 "lasio_task_spawn: not a function");
    lasio_task_spawn_(L, loop, 2, lua_gettop(L) - 2);
    return 1;
}

int
lasio_task_spawn(lua_State *L, int nargs) {
    struct lasio_apicall c;
    if (nargs < 0 || lua_gettop(L) < nargs + 1)
        return LASIO_EINVAL;
    return lasio_api_call_(L, spawn_body, &c, nargs + 1, 1);
}

/* Stack: ctx, handler */
static int
handler_body(lua_State *L) {
    struct lasio_apicall *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return lasio_api_refuse_(L, c, LASIO_ECLOSED,
                                 "lasio_exception_handler_set: lasio is "
                                 "not open");
    if (!lua_isfunction(L, 2) && !lua_isnil(L, 2))
        return lasio_api_refuse_(L, c, LASIO_EINVAL,
                                 "lasio_exception_handler_set: a function "
                                 "or nil expected");
    lasio_pushloop_(L, loop);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, LOOP_UV_HANDLER);
    return 0;
}

int
lasio_exception_handler_set(lua_State *L, int idx) {
    struct lasio_apicall c;
    if (!lua_checkstack(L, 1))
        return LUA_ERRMEM;
    lua_pushvalue(L, idx);
    return lasio_api_call_(L, handler_body, &c, 1, 0);
}

/* ====== } */
