/*
 * loop.c: the event loop object (docs/API.md, Loop): creation on an own or
 * a host's event_base, run_until_complete / run_forever / stop / close
 * (including their behaviour inside a task of the running loop), the
 * exception handler and debug mode. The registry maps the loop's address to
 * its userdata while it is open; the running loop and the state's current
 * loop are kept under the addresses of running_key and current_key.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/core.h"

static const char current_key = 0; /* the state's current loop */
static const char running_key = 0; /* the loop inside run_*, or nil */

double
lasio_time_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t
lasio_mono_ns_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct lasio_loop *
lasio_checkloop_(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &lasio_loop_token_, LASIO_LOOP_MT);
}

void
lasio_pushloop_(lua_State *L, struct lasio_loop *loop) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref); /* nil once closed */
}

lua_Alloc lasio_ctx_allocf_ = NULL;

/* Sets the running loop to the loop userdata (or nil) on top, popped, in
 * the registry and in the state's context. [-1, +0, -] */
static void
set_running(lua_State *L) {
    struct lasio_statectx *ctx = lasio_statectx_(L);
    if (ctx)
        ctx->running = lua_touserdata(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
}

struct lasio_loop *
lasio_running_loop_(lua_State *L) {
    struct lasio_statectx *ctx = lasio_statectx_(L);
    if (ctx)
        return ctx->running;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
    struct lasio_loop *loop = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return loop;
}

/* The loop running on this thread, for code that has no Lua state at
 * hand (evdns's log callback). */
static _Thread_local struct lasio_loop *thread_loop;

struct lasio_loop *
lasio_thread_loop_(void) {
    return thread_loop;
}

struct lasio_loop *
lasio_current_loop_(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &current_key);
        loop = lasio_testobj_(L, -1, &lasio_loop_token_);
        lua_pop(L, 1);
    }
    return loop && !loop->closed ? loop : NULL;
}

int
lasio_loop_enter_(lua_State *L, struct lasio_loop *loop) {
    if (lasio_running_loop_(L) || loop->closed)
        return 0;
    lasio_pushloop_(L, loop);
    set_running(L);
    loop->running = 1;
    thread_loop = loop;
    return 1;
}

void
lasio_loop_leave_(lua_State *L, struct lasio_loop *loop) {
    lua_pushnil(L); /* removing a key never allocates */
    set_running(L);
    loop->running = 0;
    thread_loop = NULL;
}

/* {====== Creation and close ====== */

static struct lasio_loop *
newloop(lua_State *L, struct event_base *base) {
    struct lasio_loop *loop =
        lua_newuserdatauv(L, sizeof(struct lasio_loop), LOOP_NUV);
    memset(loop, 0, sizeof *loop);
    /* closed until every resource is acquired: __gc frees what exists */
    loop->closed = 1;
    loop->wake_fd[0] = loop->wake_fd[1] = -1;
    loop->timer_fd = -1;
    loop->self_ref = loop->lq_ref = LUA_NOREF;
    loop->mt_task_ref = loop->mt_future_ref = LUA_NOREF;
    loop->mt_handle_ref = loop->mt_timer_ref = LUA_NOREF;
    loop->tasks_ref = loop->copool_ref = LUA_NOREF;
    loop->slow_callback_duration = 0.1;
    loop->debug = (unsigned char)lasio_debug_from_env_();
    luaL_setmetatable(L, LASIO_LOOP_MT);
    int idx = lua_gettop(L);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    loop->tasks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setiuservalue(L, idx, LOOP_UV_TASKS);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    loop->copool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setiuservalue(L, idx, LOOP_UV_COPOOL);
    lua_newtable(L);
    lua_setiuservalue(L, idx, LOOP_UV_ANCHORS);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setiuservalue(L, idx, LOOP_UV_UNSEEN);
    lasio_readyq_init_(L, loop);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    loop->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    loop->running_L = loop->L;
    if (!base) {
        struct event_config *cfg = event_config_new();
        if (cfg) {
            /* no EVENT_BASE_FLAG_PRECISE_TIMER: the timer heap has its
             * own timerfd (timerheap.c) */
            event_config_set_flag(cfg, EVENT_BASE_FLAG_NO_CACHE_TIME);
            base = event_base_new_with_config(cfg);
            event_config_free(cfg);
        }
        if (!base)
            luaL_error(L, "cannot create an event_base");
        loop->own_base = 1;
    }
    loop->base = base;
    loop->drain_ev = event_new(base, -1, 0, lasio_readyq_drain_cb_, loop);
    loop->timer_fd =
        timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (loop->timer_fd < 0)
        luaL_error(L, "cannot create the loop's timer: %s", strerror(errno));
    loop->timer_ev = event_new(base, loop->timer_fd, EV_READ | EV_PERSIST,
                               lasio_timerheap_fire_cb_, loop);
    if (!loop->drain_ev || !loop->timer_ev)
        luaL_error(L, "not enough memory");
    luaL_getmetatable(L, LASIO_TASK_MT);
    loop->mt_task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_getmetatable(L, LASIO_FUTURE_MT);
    loop->mt_future_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_getmetatable(L, LASIO_HANDLE_MT);
    loop->mt_handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_getmetatable(L, LASIO_TIMER_MT);
    loop->mt_timer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, idx);
    loop->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lasio_vclock_attach_(L, loop);
    loop->closed = 0;
    return loop;
}

void
lasio_iolink_add_(struct lasio_loop *loop, struct lasio_iolink *link) {
    link->socket = 0;
    link->prev = NULL;
    link->next = loop->iolinks;
    if (loop->iolinks)
        loop->iolinks->prev = link;
    loop->iolinks = link;
}

void
lasio_iolink_remove_(struct lasio_loop *loop, struct lasio_iolink *link) {
    if (link->socket) /* counted while linked */
        loop->nsockets--;
    link->socket = 0;
    if (link->prev)
        link->prev->next = link->next;
    else if (loop->iolinks == link)
        loop->iolinks = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->prev = link->next = NULL;
}

/* Frees the libevent side; runs no Lua code. */
static void
release(lua_State *L, struct lasio_loop *loop) {
    lasio_trace_free_(loop); /* written before the clock and base go */
    while (loop->iolinks) {  /* I/O objects let go of their events first */
        struct lasio_iolink *link = loop->iolinks;
        lasio_iolink_remove_(loop, link);
        link->release(link);
    }
    lasio_sighub_remove_all_(loop);
    lasio_inspect_stop_(loop); /* its event, before the base goes */
    lasio_limits_release_(loop);
    if (loop->drain_ev)
        event_free(loop->drain_ev);
    if (loop->wake_ev)
        event_free(loop->wake_ev);
    if (loop->timer_ev)
        event_free(loop->timer_ev);
    loop->drain_ev = loop->wake_ev = loop->timer_ev = NULL;
    loop->timer_on = 0;
    if (loop->timer_fd >= 0)
        close(loop->timer_fd);
    loop->timer_fd = -1;
    lasio_vclock_free_(loop);
    lasio_timerheap_free_(loop);
    for (int i = 0; i < 2; i++) {
        if (loop->wake_fd[i] >= 0)
            close(loop->wake_fd[i]);
        loop->wake_fd[i] = -1;
    }
    if (loop->own_base && loop->base)
        event_base_free(loop->base);
    loop->base = NULL;
    lasio_readyq_free_(L, loop);
    int *refs[] = {&loop->mt_task_ref,   &loop->mt_future_ref,
                   &loop->mt_handle_ref, &loop->mt_timer_ref,
                   &loop->tasks_ref,     &loop->copool_ref};
    for (int i = 0; i < 6; i++) {
        luaL_unref(L, LUA_REGISTRYINDEX, *refs[i]);
        *refs[i] = LUA_NOREF;
    }
}

/* Forgets every pending timer and sleep of the loop, and takes its tasks
 * out of the WaitQueues they wait in (which may outlive the loop). */
static void
release_pending(lua_State *L, int idx, struct lasio_loop *loop) {
    /* only pending tasks wait, and ntasks counts them: no walk over the
     * free slots of a loop that ran many tasks */
    if (loop->ntasks > 0) {
        lua_getiuservalue(L, idx, LOOP_UV_TASKS);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            struct lasio_task *t = lasio_totask_(L, -1);
            if (t)
                lasio_waitq_unlink_(t);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lasio_timerheap_free_(loop);
    loop->nsources = 0;
    lua_pushnil(L); /* the coroutines kept for reuse can go */
    lua_setiuservalue(L, idx, LOOP_UV_COPOOL);
    loop->copool_n = 0;
}

void
lasio_loop_close_(lua_State *L, int idx, struct lasio_loop *loop, int report) {
    idx = lua_absindex(L, idx);
    if (loop->closed)
        return;
    if (report)
        lasio_diag_close_(L, idx, loop, report);
    release_pending(L, idx, loop);
    loop->closed = 1;
    release(L, loop);
    luaL_unref(L, LUA_REGISTRYINDEX, loop->self_ref);
    loop->self_ref = LUA_NOREF;
}

static int
loop_gc(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    if (!loop->closed) {
        release_pending(L, 1, loop);
        loop->closed = 1;
    }
    release(L, loop); /* also what a half-built loop acquired */
    lasio_vclock_gc_(loop);
    return 0;
}

struct lasio_loop *
lasio_get_loop_(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (loop) {
        lasio_pushloop_(L, loop);
        return loop;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &current_key);
    loop = lasio_testobj_(L, -1, &lasio_loop_token_);
    if (loop && !loop->closed)
        return loop;
    lua_pop(L, 1);
    loop = newloop(L, NULL);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &current_key);
    return loop;
}

/* Makes the loop at idx (or nil) the state's current loop. */
static void
set_current(lua_State *L, int idx) {
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &current_key);
}

/* ====== } */

/* {====== Running ====== */

int
lasio_loop_run_(lua_State *L, struct lasio_loop *loop) {
    lua_State *prevL = loop->L;
    int deadlock = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
    lasio_pushloop_(L, loop);
    set_running(L);
    loop->L = L;
    loop->running_L = L;
    loop->running = 1;
    loop->stopping = 0;
    struct lasio_loop *prev_thread_loop = thread_loop;
    thread_loop = loop;
    if (loop->rq_count > 0)
        lasio_readyq_arm_(loop);
    while (!loop->stopping && !loop->closed) {
        if (loop->until_no_tasks && loop->ntasks == 0)
            break;
        if (loop->vc) { /* virtual time: the jump rule (vclock.c) */
            int r = lasio_vclock_turn_(L, loop);
            if (r < 0)
                break;
            deadlock = r;
            if (deadlock)
                break;
            continue;
        }
        if (loop->rq_count == 0 && loop->th_n == 0 && loop->nsources == 0) {
            deadlock = 1;
            break;
        }
        if (event_base_loop(loop->base, EVLOOP_ONCE) < 0)
            break;
    }
    loop->running = 0;
    loop->stopping = 0;
    thread_loop = prev_thread_loop;
    loop->L = prevL;
    loop->running_L = prevL;
    set_running(L); /* restore */
    if (deadlock)
        lasio_deadlock_report_(L, loop);
    return deadlock;
}

void
lasio_loop_set_main_(lua_State *L, int loopidx, int mainidx) {
    struct lasio_task *t = lasio_totask_(L, mainidx);
    loopidx = lua_absindex(L, loopidx);
    mainidx = lua_absindex(L, mainidx);
    lua_pushvalue(L, mainidx);
    lua_setiuservalue(L, loopidx, LOOP_UV_MAIN);
    t->fut.has_stop = 1;
    lua_pushcfunction(L, lasio_stop_loop_cb_);
    lasio_future_add_callback_(L, mainidx, &t->fut, -1);
    lua_pop(L, 1);
}

void
lasio_loop_cancel_all_(lua_State *L, struct lasio_loop *loop, int msgidx) {
    msgidx = msgidx ? lua_absindex(L, msgidx) : 0;
    luaL_checkstack(L, 4, NULL);
    lasio_pushloop_(L, loop);
    if (lua_isnil(L, -1)) { /* closed and forgotten */
        lua_pop(L, 1);
        return;
    }
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        if (t) /* a done task's cancel does nothing */
            lasio_task_cancel_(L, -1, t, msgidx);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

int
lasio_loop_finish_all_(lua_State *L, struct lasio_loop *loop, int cancel) {
    if (cancel)
        lasio_loop_cancel_all_(L, loop, 0);
    loop->until_no_tasks = 1;
    int deadlock = lasio_loop_run_(L, loop);
    loop->until_no_tasks = 0;
    return deadlock;
}

/* Refuses a run while this or another loop runs, unless the caller is a
 * task of this loop (returns 1: await instead). */
static int
check_can_run(lua_State *L, struct lasio_loop *loop, const char *what) {
    if (loop->closed)
        luaL_error(L, "%s: the loop is closed", what);
    struct lasio_loop *running = lasio_running_loop_(L);
    if (running == loop && loop->current && lua_isyieldable(L))
        return 1;
    if (running == loop)
        luaL_error(L,
                   "%s: this loop is already running (await instead, "
                   "from a task)",
                   what);
    if (running)
        luaL_error(L, "%s: another loop is running in this Lua state", what);
    return 0;
}

/* Replaces the awaitable at idx by a Future: a function becomes a Task.
 */
static struct lasio_future *
ensure_future(lua_State *L, int idx, struct lasio_loop *loop) {
    idx = lua_absindex(L, idx);
    if (lua_isfunction(L, idx)) {
        lua_pushvalue(L, idx);
        lasio_task_spawn_(L, loop, -1, 0);
        lua_replace(L, idx);
        lua_pop(L, 1);
    }
    struct lasio_future *f = lasio_tofuture_(L, idx);
    if (!f)
        luaL_typeerror(L, idx, "awaitable (Future, Task or function)");
    return f;
}

static int
loop_run_until_complete(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    lua_settop(L, 2);
    int inside = check_can_run(L, loop, "run_until_complete");
    struct lasio_future *f = ensure_future(L, 2, loop);
    if (f->state != FUT_PENDING)
        return lasio_future_results_(L, 2, f);
    if (inside)
        return lasio_await_(L, 2, "run_until_complete");
    f->has_stop = 1;
    lua_pushcfunction(L, lasio_stop_loop_cb_);
    lasio_future_add_callback_(L, 2, f, -1);
    loop->user_stoppable = 1; /* stop() ends the run early: raised below */
    int deadlock = lasio_loop_run_(L, loop);
    loop->user_stoppable = 0;
    lasio_future_remove_callback_(L, 2, f, 3);
    f->has_stop = 0;
    if (deadlock)
        return lua_error(L); /* the report is on top */
    if (loop->close_pending) {
        loop->close_pending = 0;
        lasio_loop_close_(L, 1, loop, LASIO_REPORT_ALL);
    }
    if (f->state == FUT_PENDING)
        return luaL_error(L, "run_until_complete: the loop stopped before "
                             "the Future completed");
    lua_settop(L, 2);
    return lasio_future_results_(L, 2, f);
}

static int
loop_run_forever(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    lua_settop(L, 1);
    if (check_can_run(L, loop, "run_forever")) {
        if (loop->stop_pending) { /* stop() came first: one turn */
            loop->stop_pending = 0;
            lua_settop(L, 0);
            lua_pushinteger(L, 0);
            return lasio_sleep_(L);
        }
        /* a task of the running loop waits for stop() */
        if (lua_getiuservalue(L, 1, LOOP_UV_STOPWAIT) == LUA_TNIL) {
            lua_pop(L, 1);
            lasio_future_push_(L, loop);
            lua_pushvalue(L, -1);
            lua_setiuservalue(L, 1, LOOP_UV_STOPWAIT);
        }
        return lasio_await_(L, 2, "run_forever");
    }
    loop->user_stoppable = 1;
    if (loop->stop_pending) {
        /* stop() came first: run what is ready now, then return */
        loop->stop_pending = 0;
        lua_State *prevL = loop->L;
        loop->L = L;
        if (loop->rq_count > 0)
            lasio_readyq_drain_cb_(-1, 0, loop);
        loop->L = prevL;
        loop->user_stoppable = 0;
        return 0;
    }
    int deadlock = lasio_loop_run_(L, loop);
    loop->user_stoppable = 0;
    if (deadlock)
        return lua_error(L);
    if (loop->close_pending) {
        loop->close_pending = 0;
        lasio_loop_close_(L, 1, loop, LASIO_REPORT_ALL);
    }
    return 0;
}

static int
loop_stop(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (lua_getiuservalue(L, 1, LOOP_UV_STOPWAIT) != LUA_TNIL) {
        struct lasio_future *f = lasio_tofuture_(L, -1);
        lua_pushnil(L);
        lua_setiuservalue(L, 1, LOOP_UV_STOPWAIT);
        if (f && f->state == FUT_PENDING)
            lasio_future_finish_(L, -1, f, 0);
        return 0;
    }
    if (loop->running && loop->user_stoppable)
        loop->stopping = 1;
    else /* the next run_forever runs what is ready and returns, also in a
            task of a running loop (the command's): as under stock Lua */
        loop->stop_pending = 1;
    return 0;
}

static int
loop_is_running(lua_State *L) {
    lua_pushboolean(L, lasio_checkloop_(L, 1)->running);
    return 1;
}

static int
loop_close(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (loop->running) {
        loop->close_pending = 1; /* takes effect when it stops */
        return 0;
    }
    lasio_loop_close_(L, 1, loop, LASIO_REPORT_ALL);
    return 0;
}

/* A close asked for while the loop runs is closed for the script: it
 * reports so and takes no new tasks or callbacks from the loop's methods,
 * while what it holds finishes (the loop really closes when it stops). */
static int
loop_is_closed(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    lua_pushboolean(L, loop->closed || loop->close_pending);
    return 1;
}

static int
loop_create_task(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (loop->close_pending)
        return luaL_error(L, "cannot create a task: the loop is closed");
    lasio_task_create_(L, loop, 2, lua_gettop(L) - 2, "loop:create_task");
    return 1;
}

static int
loop_create_future(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (loop->closed)
        return luaL_error(L, "create_future: the loop is closed");
    lasio_future_push_(L, loop);
    return 1;
}

static int
loop_time(lua_State *L) {
    lua_pushnumber(L, lasio_loop_time_(lasio_checkloop_(L, 1)));
    return 1;
}

/* ====== } */

/* {====== Exception handler ====== */

static void
print_field(lua_State *L, int ctx, const char *key) {
    if (lua_getfield(L, ctx, key) != LUA_TNIL)
        fprintf(stderr, "%s: %s\n", key, luaL_tolstring(L, -1, NULL));
    lua_settop(L, ctx);
}

/* Prints a context table at ctx to stderr, as asyncio's default handler
 * logs it. Runs no Lua code but __tostring metamethods. */
static void
default_handler(lua_State *L, int ctx) {
    ctx = lua_absindex(L, ctx);
    int top = lua_gettop(L);
    lua_getfield(L, ctx, "message");
    fprintf(stderr, "%s\n",
            lua_isnil(L, -1) ? "Unhandled error in event loop"
                             : luaL_tolstring(L, -1, NULL));
    lua_settop(L, ctx);
    print_field(L, ctx, "task");
    print_field(L, ctx, "future");
    print_field(L, ctx, "handle");
    print_field(L, ctx, "exception");
    if (lua_getfield(L, ctx, "origin") == LUA_TSTRING) /* awaitgraph.c */
        fprintf(stderr, "%s", lua_tostring(L, -1));
    lua_settop(L, ctx);
    if (lua_getfield(L, ctx, "source_traceback") == LUA_TSTRING)
        fprintf(stderr, "created at:\n%s\n", lua_tostring(L, -1));
    lua_settop(L, ctx);
    if (lua_getfield(L, ctx, "traceback") == LUA_TNIL) {
        lua_pop(L, 1);
        if (lua_getfield(L, ctx, "exception") == LUA_TTABLE)
            lua_getfield(L, -1, "traceback");
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fflush(stderr);
    lua_settop(L, top);
}

/* [-0, +0, -] pcall wrapper for default_handler (tostring may raise) */
static int
default_handler_protected(lua_State *L) {
    default_handler(L, 1);
    return 0;
}

void
lasio_call_exception_handler_(lua_State *L, struct lasio_loop *loop) {
    int ctx = lua_gettop(L);
    luaL_checkstack(L, 6, NULL);
    lasio_pushloop_(L, loop);
    int has_handler =
        lua_istable(L, ctx) && !lua_isnil(L, -1) &&
        lua_getiuservalue(L, -1, LOOP_UV_HANDLER) == LUA_TFUNCTION;
    if (has_handler) {
        lua_insert(L, -2); /* handler, loop */
        lua_pushvalue(L, ctx);
        lua_pushcfunction(L, lasio_msgh_);
        lua_insert(L, -4);
        if (lua_pcall(L, 2, 0, -4) == LUA_OK) {
            lua_settop(L, ctx - 1);
            return;
        }
        /* the handler failed: report both with the default handler */
        fprintf(stderr, "Unhandled error in exception handler: %s\n",
                luaL_tolstring(L, -1, NULL));
    }
    lua_settop(L, ctx);
    lua_pushcfunction(L, default_handler_protected);
    lua_pushvalue(L, ctx);
    lua_pcall(L, 1, 0, 0);
    lua_settop(L, ctx - 1);
}

static int
loop_set_exception_handler(lua_State *L) {
    lasio_checkloop_(L, 1);
    if (!lua_isnil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, LOOP_UV_HANDLER);
    return 0;
}

static int
loop_get_exception_handler(lua_State *L) {
    lasio_checkloop_(L, 1);
    lua_getiuservalue(L, 1, LOOP_UV_HANDLER);
    return 1;
}

static int
loop_default_exception_handler(lua_State *L) {
    lasio_checkloop_(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    default_handler(L, 2);
    return 0;
}

static int
loop_call_exception_handler(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lasio_call_exception_handler_(L, loop);
    return 0;
}

/* ====== } */

static int
loop_set_debug(lua_State *L) {
    lasio_checkloop_(L, 1)->debug = (unsigned char)lua_toboolean(L, 2);
    return 0;
}

static int
loop_get_debug(lua_State *L) {
    lua_pushboolean(L, lasio_checkloop_(L, 1)->debug);
    return 1;
}

static int
loop_tostring(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    lua_pushfstring(L, "lasio.Loop<%s debug=%s>",
                    loop->closed    ? "closed"
                    : loop->running ? "running"
                                    : "idle",
                    loop->debug ? "true" : "false");
    return 1;
}

static const luaL_Reg loop_methods[] = {
    {"run_until_complete", loop_run_until_complete},
    {"run_forever", loop_run_forever},
    {"stop", loop_stop},
    {"is_running", loop_is_running},
    {"close", loop_close},
    {"is_closed", loop_is_closed},
    {"create_task", loop_create_task},
    {"create_future", loop_create_future},
    {"set_task_factory", lasio_loop_set_task_factory_},
    {"get_task_factory", lasio_loop_get_task_factory_},
    {"call_soon", lasio_call_soon_},
    {"call_later", lasio_call_later_},
    {"call_at", lasio_call_at_},
    {"time", loop_time},
    {"set_exception_handler", loop_set_exception_handler},
    {"get_exception_handler", loop_get_exception_handler},
    {"default_exception_handler", loop_default_exception_handler},
    {"call_exception_handler", loop_call_exception_handler},
    {"set_debug", loop_set_debug},
    {"get_debug", loop_get_debug},
    {NULL, NULL}};

/* loop.slow_callback_duration reads and writes the C field; other keys
 * are methods. */
static int
loop_index(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "slow_callback_duration") == 0) {
        lua_pushnumber(L, loop->slow_callback_duration);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int
loop_newindex(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    const char *key = lua_tostring(L, 2);
    if (!key || strcmp(key, "slow_callback_duration") != 0)
        return luaL_error(L, "cannot set field '%s' of a loop",
                          key ? key : luaL_typename(L, 2));
    double v = luaL_checknumber(L, 3);
    if (!(v >= 0))
        return luaL_error(L, "loop.slow_callback_duration must be >= 0");
    loop->slow_callback_duration = v;
    return 0;
}

/* {====== Module-level functions ====== */

/* lasio.run(fn, ...); `fresh`: on a new loop even inside a running one
 * (lasio.testing.run), which waits meanwhile */
static int
run_on_new_loop(lua_State *L, int fresh) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    struct lasio_loop *running = lasio_running_loop_(L);
    if (running && !fresh) {
        if (!running->current || !lua_isyieldable(L))
            return luaL_error(L, "lasio.run: cannot be called from a "
                                 "callback of a running loop");
        lasio_task_spawn_(L, running, 1, nargs);
        return lasio_await_(L, lua_gettop(L), "lasio.run");
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &current_key); /* previous current */
    lua_insert(L, 1);                                /* prev, fn, args */
    struct lasio_loop *loop = newloop(L, NULL);
    lua_insert(L, 1); /* loop, prev, fn, args */
    set_current(L, 1);
    lasio_task_spawn_(L, loop, 3, nargs);
    int main = lua_gettop(L);
    struct lasio_future *f = &lasio_totask_(L, main)->fut;
    lasio_loop_set_main_(L, 1, main);
    int deadlock = lasio_loop_run_(L, loop);
    if (!deadlock && lasio_loop_finish_all_(L, loop, 1))
        lua_pop(L, 1);  /* stuck in cleanup: reported at close */
    if (f->log_error) { /* re-raised below: not "never retrieved" */
        f->log_error = 0;
        lasio_diag_untrack_(L, main, f);
    }
    /* after a deadlock the error raised below lists the stuck tasks: they
     * are not reported a second time as destroyed */
    lasio_loop_close_(L, 1, loop,
                      deadlock ? LASIO_REPORT_UNRETRIEVED : LASIO_REPORT_ALL);
    set_current(L, 2);
    if (deadlock)
        return lua_error(L);
    lua_settop(L, main);
    return lasio_future_results_(L, main, f);
}

static int
module_run(lua_State *L) {
    return run_on_new_loop(L, 0);
}

int
lasio_run_fresh_(lua_State *L) {
    return run_on_new_loop(L, 1);
}

static int
module_get_running_loop(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop)
        return luaL_error(L, "lasio.get_running_loop: no running loop");
    lasio_pushloop_(L, loop);
    return 1;
}

static int
module_get_event_loop(lua_State *L) {
    lasio_get_loop_(L);
    return 1;
}

static int
module_new_event_loop(lua_State *L) {
    newloop(L, NULL);
    return 1;
}

static int
module_set_event_loop(lua_State *L) {
    if (!lua_isnil(L, 1))
        lasio_checkloop_(L, 1);
    set_current(L, 1);
    return 0;
}

static const luaL_Reg module_funcs[] = {
    {"run", module_run},
    {"get_running_loop", module_get_running_loop},
    {"get_event_loop", module_get_event_loop},
    {"new_event_loop", module_new_event_loop},
    {"set_event_loop", module_set_event_loop},
    {NULL, NULL}};

/* ====== } */

void
lasio_loop_open_(lua_State *L) {
    if (lasio_newmetatable_(L, LASIO_LOOP_MT, &lasio_loop_token_)) {
        lua_newtable(L);
        luaL_setfuncs(L, loop_methods, 0);
        lua_pushcclosure(L, loop_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, loop_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, loop_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, loop_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, module_funcs, 0); /* into the module table at top */
}

void
lasio_loop_methods_push_(lua_State *L) {
    luaL_getmetatable(L, LASIO_LOOP_MT);
    lua_getfield(L, -1, "__index");
    lua_getupvalue(L, -1, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* {====== Embedding entry points ====== */

void
lasio_loop_set_current_new_(lua_State *L, struct event_base *base) {
    newloop(L, base);
    set_current(L, -1);
    lua_pop(L, 1);
}

struct event_base *
lasio_get_base(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &current_key);
        loop = lasio_testobj_(L, -1, &lasio_loop_token_);
        lua_pop(L, 1);
    }
    return loop && !loop->closed ? loop->base : NULL;
}

/* ====== } */
