/*
 * api_test.c: tests of the embedding API (lasio.h) from a C host: running,
 * stepping, a host's own dispatch, Futures and pins from C and from other
 * threads, async C functions, misuse (E1-E3, docs/RELIABILITY.md) and
 * teardown (INTERNALS.md, rule 13). `api_test NAME` runs one test; ctest
 * runs each by name.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"
#include "core/core.h" /* lasio_trace_record_for_, for the inspector */

static double
now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* {====== Misuse: close, double close, coroutines (E2) ====== */

static void
test_open_close(void) {
    lua_State *L = harness_state(NULL);
    CHECK_INT(lasio_open(L, NULL), LASIO_EBUSY); /* open already */
    lua_State *co = lua_newthread(L);
    CHECK_INT(lasio_run(co, 0, 0), LASIO_EINVAL); /* nothing on co */
    harness_load(co, "return 1");
    CHECK_INT(lasio_run(co, 0, 1), LASIO_ETHREAD);
    CHECK_STR(lua_tostring(co, -1), "main thread");
    lua_settop(co, 0);
    CHECK_INT(lasio_step(co), LASIO_ETHREAD);
    CHECK_INT(lasio_close(co), LASIO_ETHREAD);
    CHECK_INT(lasio_open(co, NULL), LASIO_ETHREAD);
    lua_pop(L, 1);
    /* coroutines may make Futures */
    CHECK_INT(lasio_future_new(co), LASIO_OK);
    CHECK_INT(lasio_future_resolve(co, -1, 5), LASIO_EINVAL); /* 1 value */
    lua_pushinteger(co, 7);
    CHECK_INT(lasio_future_resolve(co, -2, 1), LASIO_OK);
    CHECK_INT(lua_gettop(co), 1);
    lua_pushinteger(co, 8);
    CHECK_INT(lasio_future_resolve(co, -2, 1), LASIO_EDONE);
    CHECK_INT(lua_gettop(co), 1);
    lua_pushinteger(co, 9);
    CHECK_INT(lasio_future_resolve(co, -1, 0), LASIO_EINVAL); /* a number */
    lua_settop(co, 0);

    CHECK_INT(lasio_close(L), LASIO_OK);
    CHECK_INT(lasio_close(L), LASIO_ECLOSED); /* double close */
    CHECK_INT(harness_run(L, "return 1"), LASIO_ECLOSED);
    CHECK_STR(lua_tostring(L, -1), "not open");
    lua_pop(L, 1);
    CHECK_INT(lasio_step(L), LASIO_ECLOSED);
    CHECK_INT(lasio_future_new(L), LASIO_ECLOSED);
    CHECK(lua_isstring(L, -1));
    lua_pop(L, 1);
    CHECK(lasio_get_base(L) == NULL);
    lua_pushnil(L);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_ECLOSED);
    lua_pop(L, 1);
    harness_load(L, "return 1");
    CHECK_INT(lasio_task_spawn(L, 0), LASIO_ECLOSED);
    lua_pop(L, 1);
    CHECK_INT(lua_gettop(L), 0);
    /* a new loop after close */
    CHECK_INT(lasio_open(L, NULL), LASIO_OK);
    CHECK_INT(harness_run(L, "lasio.sleep(0.001) return 5"), LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 5);
    lua_pop(L, 1);
    CHECK_INT(lasio_pin_push(L, NULL), LASIO_EINVAL);
    lua_pop(L, 1);
    CHECK_INT(lasio_pin_post(NULL, NULL, NULL), LASIO_EINVAL);
    CHECK(strcmp(lasio_strerror(LASIO_EBUSY), "unknown status") != 0);
    CHECK(strcmp(lasio_strerror(12345), "unknown status") == 0);
    lua_close(L);
}

/* ====== } */

/* {====== lasio_run ====== */

static void
test_run(void) {
    lua_State *L = harness_state(NULL);
    /* results, like lua_pcall */
    harness_load(L, "local a, b = ... lasio.sleep(0.001) return a + b, nil, "
                    "'x'");
    lua_pushinteger(L, 2);
    lua_pushinteger(L, 3);
    CHECK_INT(lasio_run(L, 2, LUA_MULTRET), LASIO_OK);
    CHECK_INT(lua_gettop(L), 3);
    CHECK_INT(lua_tointeger(L, 1), 5);
    CHECK(lua_isnil(L, 2));
    CHECK_STR(lua_tostring(L, 3), "x");
    lua_settop(L, 0);
    /* the error object, unchanged */
    CHECK_INT(harness_run(L, "lasio.sleep(0) error({code = 42})"), LUA_ERRRUN);
    CHECK(lua_istable(L, -1));
    lua_getfield(L, -1, "code");
    CHECK_INT(lua_tointeger(L, -1), 42);
    lua_settop(L, 0);
    /* cancelled: a CancelledError */
    CHECK_INT(harness_run(L, "lasio.current_task():cancel('bye') "
                             "lasio.sleep(1)"),
              LUA_ERRRUN);
    CHECK_STR(luaL_tolstring(L, -1, NULL), "CancelledError: bye");
    lua_settop(L, 0);
    /* nresults 0: nothing left on success, the error object on failure
     * (the documented [-(nargs+1), +(nresults|1)]) */
    lua_pushinteger(L, 7); /* a sentinel below */
    harness_load(L, "lasio.sleep(0) return 1, 2");
    CHECK_INT(lasio_run(L, 0, 0), LASIO_OK);
    CHECK_INT(lua_gettop(L), 1);
    harness_load(L, "lasio.sleep(0) error('failed with 0 results')");
    CHECK_INT(lasio_run(L, 0, 0), LUA_ERRRUN);
    CHECK_INT(lua_gettop(L), 2);
    CHECK(lua_isstring(L, -1) &&
          strstr(lua_tostring(L, -1), "failed with 0 results") != NULL);
    CHECK_INT(lua_tointeger(L, 1), 7);
    lua_settop(L, 0);
    harness_load(L, "lasio.current_task():cancel() lasio.sleep(1)");
    CHECK_INT(lasio_run(L, 0, 0), LUA_ERRRUN);
    CHECK_INT(lua_gettop(L), 1);
    lua_settop(L, 0);
    /* deadlock: an error, not a hang */
    CHECK_INT(harness_run(L, "lasio.Future():await()"), LUA_ERRRUN);
    CHECK_STR(lua_tostring(L, -1), "lasio: deadlock:");
    lua_settop(L, 0);
    /* background tasks stay pending and go on in the next run */
    CHECK_INT(harness_run(L, "bg = lasio.spawn(function() lasio.sleep(0.02) "
                             "done = true end) return 1"),
              LASIO_OK);
    lua_settop(L, 0);
    CHECK_INT(harness_run(L, "assert(not done) bg:await() return done"),
              LASIO_OK);
    CHECK(lua_toboolean(L, -1));
    lua_settop(L, 0);
    /* loop:close() inside: closed once the run ends */
    CHECK_INT(harness_run(L, "lasio.get_running_loop():close() return 3"),
              LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 3);
    lua_settop(L, 0);
    CHECK_INT(harness_run(L, "return 1"), LASIO_ECLOSED);
    lua_close(L);
}

/* ====== } */

/* {====== Reentrant calls (E1) ====== */

/* try_run(src): lasio_run from wherever it is called; returns the status
 * and message. */
static int
try_run(lua_State *L) {
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    harness_load(main, luaL_checkstring(L, 1));
    int status = lasio_run(main, 0, 1);
    if (main != L)
        lua_xmove(main, L, 1);
    lua_pushinteger(L, status);
    lua_insert(L, -2);
    return 2;
}

static int
try_step(lua_State *L) {
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, lasio_step(main));
    lua_pushinteger(L, lasio_close(main));
    return 2;
}

static const char reentrant_script[] =
    "local st, msg = try_run('return 1')\n"
    "assert(st == -1, st) assert(msg:find('inside a running loop'), msg)\n"
    "local s2, c2 = try_step()\n"
    "assert(s2 == -1 and c2 == -1, s2 .. ' ' .. c2)\n"
    "local f = lasio.Future()\n"
    "lasio.get_running_loop():call_soon(function()\n"
    "    f:set_result(try_run('return 2'))\n"
    "end)\n"
    "local st3, msg3 = f:await()\n"
    "assert(st3 == -1, st3)\n"
    "lasio.sleep(0.001)\n"
    "return 'unharmed'\n";

struct host_call {
    lua_State *L;
    struct event_base *base;
    int status;
    int calls;
};

/* A host event that calls lasio_run while the host dispatches. */
static void
host_run_cb(evutil_socket_t fd, short what, void *arg) {
    struct host_call *hc = arg;
    (void)fd, (void)what;
    harness_load(hc->L, "return 1");
    hc->status = lasio_run(hc->L, 0, 1);
    lua_pop(hc->L, 1);
    hc->calls++;
    CHECK_INT(lasio_step(hc->L), LASIO_EBUSY);
    event_base_loopbreak(hc->base);
}

static void
test_reentrant(void) {
    lua_State *L = harness_state(NULL);
    lua_register(L, "try_run", try_run);
    lua_register(L, "try_step", try_step);
    CHECK_INT(harness_run(L, reentrant_script), LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "unharmed");
    lua_pop(L, 1);
    lua_close(L);

    /* the same inside a host's own dispatch of the base */
    struct event_base *base = event_base_new();
    L = harness_state(base);
    lua_register(L, "try_run", try_run);
    lua_register(L, "try_step", try_step);
    harness_load(L, reentrant_script);
    CHECK_INT(lasio_task_spawn(L, 0), LASIO_OK);
    int task = lua_gettop(L);
    struct host_call hc = {L, base, 0, 0};
    struct event *ev = evtimer_new(base, host_run_cb, &hc);
    struct timeval tv = {0, 30000};
    evtimer_add(ev, &tv);
    event_base_dispatch(base); /* until host_run_cb breaks it */
    CHECK_INT(hc.calls, 1);
    CHECK_INT(hc.status, LASIO_EBUSY); /* libevent: reentrant loop */
    lua_getfield(L, task, "result");
    lua_pushvalue(L, task);
    CHECK_INT(lua_pcall(L, 1, 1, 0), LUA_OK);
    CHECK_STR(lua_tostring(L, -1), "unharmed");
    lua_settop(L, 0);
    /* the loop is unharmed: it still runs */
    CHECK_INT(harness_run(L, "lasio.sleep(0.001) return 4"), LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 4);
    event_free(ev);
    lua_close(L);
    event_base_free(base);
}

/* ====== } */

/* {====== lasio_step and a host's dispatch ====== */

static void
test_step(void) {
    lua_State *L = harness_state(NULL);
    harness_load(L, "local t0 = lasio.get_event_loop():time()\n"
                    "for i = 1, 3 do lasio.sleep(0.01) end\n"
                    "elapsed = lasio.get_event_loop():time() - t0\n"
                    "return 'stepped'");
    CHECK_INT(lasio_task_spawn(L, 0), LASIO_OK);
    int steps = 0, pending;
    double t0 = now();
    while ((pending = lasio_step(L)) > 0 && now() - t0 < 10) {
        steps++;
        usleep(1000); /* the host's own work */
    }
    CHECK_INT(pending, 0);
    CHECK(steps >= 3);
    lua_getglobal(L, "elapsed");
    CHECK(lua_tonumber(L, -1) >= 0.03);
    lua_pop(L, 1);
    lua_getfield(L, 1, "result");
    lua_pushvalue(L, 1);
    CHECK_INT(lua_pcall(L, 1, 1, 0), LUA_OK);
    CHECK_STR(lua_tostring(L, -1), "stepped");
    lua_settop(L, 0);
    lua_close(L);
}

/* Resolves a Future (pinned) from a host timer. */
struct later {
    struct event *ev;
    lasio_pin *pin;
    lua_State *L;
    int value;
};

static void
later_cb(evutil_socket_t fd, short what, void *arg) {
    struct later *l = arg;
    (void)fd, (void)what;
    lua_pushinteger(l->L, l->value);
    lua_pushliteral(l->L, "second");
    CHECK_INT(lasio_pin_resolve(l->L, l->pin, 2), LASIO_OK);
    lasio_future_unpin(l->pin);
    event_free(l->ev);
    free(l);
}

/* host.later(ms, value): a Future that a host timer resolves. */
static int
host_later(lua_State *L) {
    lua_Integer ms = luaL_checkinteger(L, 1);
    int value = (int)luaL_optinteger(L, 2, 0);
    struct later *l = malloc(sizeof *l);
    if (!l)
        return luaL_error(L, "not enough memory");
    if (lasio_future_new(L) != LASIO_OK) {
        free(l);
        return lua_error(L);
    }
    l->pin = lasio_future_pin(L, -1);
    l->L = L;
    l->value = value;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    l->L = lua_tothread(L, -1); /* the task's coroutine may be gone */
    lua_pop(L, 1);
    l->ev = evtimer_new(lasio_get_base(L), later_cb, l);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(l->ev, &tv);
    return 1;
}

static int
host_stop(lua_State *L) {
    event_base_loopbreak(lasio_get_base(L));
    return 0;
}

static void
test_host_dispatch(void) {
    struct event_base *base = event_base_new();
    lua_State *L = harness_state(base);
    lua_register(L, "later", host_later);
    lua_register(L, "stop", host_stop);
    harness_load(L, "assert(lasio.get_running_loop():is_running())\n"
                    "local t = lasio.spawn(function() lasio.sleep(0.01) "
                    "return 'child' end)\n"
                    "local a, b = later(20, 41):await()\n"
                    "result = {a + 1, b, t:await()}\n"
                    "stop()\n");
    CHECK_INT(lasio_task_spawn(L, 0), LASIO_OK);
    lua_pop(L, 1);
    event_base_dispatch(base);
    CHECK_INT(harness_run(L, "return table.concat(result, ' ')"), LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "42 second child");
    lua_pop(L, 1);
    lua_close(L); /* frees lasio's events, not the host's base */
    event_base_free(base);
}

/* ====== } */

/* {====== Futures and pins ====== */

static void
test_futures(void) {
    struct event_base *base = event_base_new();
    lua_State *L = harness_state(base);
    lua_register(L, "later", host_later);
    /* resolved from a host event during lasio_run */
    CHECK_INT(harness_run(L, "return select('#', later(5, 9):await())"),
              LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 2);
    lua_pop(L, 1);
    /* a Lua-made Future pinned by C counts as a wake-up source */
    CHECK_INT(luaL_dostring(L, "lf = lasio.Future() return lf"), LUA_OK);
    struct later *l = malloc(sizeof *l);
    l->pin = lasio_future_pin(L, -1);
    l->L = L;
    l->value = 77;
    l->ev = evtimer_new(base, later_cb, l);
    struct timeval tv = {0, 5000};
    evtimer_add(l->ev, &tv);
    lua_pop(L, 1);
    CHECK_INT(harness_run(L, "return lf:await()"), LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 77);
    lua_pop(L, 1);
    CHECK_INT(lasio_future_new(L), LASIO_OK);
    lasio_pin *pin = lasio_future_pin(L, -1);
    CHECK(pin != NULL);
    lua_setglobal(L, "cfut");
    CHECK_INT(lasio_pin_push(L, pin), LASIO_OK);
    lua_getglobal(L, "cfut");
    CHECK(lua_rawequal(L, -1, -2));
    lua_pop(L, 2);
    lua_pushliteral(L, "boom");
    CHECK_INT(lasio_pin_reject(L, pin), LASIO_OK);
    lua_pushliteral(L, "again");
    CHECK_INT(lasio_pin_reject(L, pin), LASIO_EDONE);
    CHECK_INT(lua_gettop(L), 0);
    CHECK_INT(harness_run(L, "return cfut:await()"), LUA_ERRRUN);
    CHECK_STR(lua_tostring(L, -1), "boom");
    lua_pop(L, 1);
    lasio_future_unpin(pin);
    /* a timeout cancels the Future: resolving later says EDONE */
    CHECK_INT(harness_run(L, "fut = lasio.Future() "
                             "return pcall(lasio.wait_for, fut, 0.001)"),
              LASIO_OK);
    lua_pop(L, 1);
    lua_getglobal(L, "fut");
    lua_pushinteger(L, 1);
    CHECK_INT(lasio_future_resolve(L, -2, 1), LASIO_EDONE);
    lua_pop(L, 1);
    /* a Task is not resolved from C */
    CHECK_INT(harness_run(L, "return lasio.spawn(function() end)"), LASIO_OK);
    lua_pushinteger(L, 1);
    CHECK_INT(lasio_future_resolve(L, -2, 1), LASIO_EINVAL);
    pin = lasio_future_pin(L, -1); /* but pinned */
    CHECK(pin != NULL);
    lua_pop(L, 1);
    lasio_future_unpin(pin);
    lua_pushinteger(L, 1);
    CHECK(lasio_future_pin(L, -1) == NULL);
    lua_pop(L, 1);
    /* after close: pins detach, Futures refuse */
    CHECK_INT(lasio_future_new(L), LASIO_OK);
    pin = lasio_future_pin(L, -1);
    CHECK_INT(lasio_close(L), LASIO_OK);
    lua_pushinteger(L, 1);
    CHECK_INT(lasio_future_resolve(L, -2, 1), LASIO_ECLOSED);
    CHECK(lasio_future_pin(L, -1) == NULL);
    lua_pop(L, 1);
    CHECK_INT(lasio_pin_push(L, pin), LASIO_ECLOSED);
    lua_pop(L, 1);
    lua_pushinteger(L, 1);
    CHECK_INT(lasio_pin_resolve(L, pin, 1), LASIO_ECLOSED);
    CHECK_INT(lua_gettop(L), 0);
    lua_close(L);
    lasio_future_unpin(pin); /* after lua_close: frees the memory only */
    event_base_free(base);
}

/* ====== } */

/* {====== From other threads ====== */

struct job {
    lasio_pin *pin;
    int n, delay_us, fail;
};

static void
job_done(lua_State *L, lasio_pin *pin, void *ud) {
    struct job *j = ud;
    int fail = j->fail, n = j->n;
    free(j);
    lasio_future_unpin(pin); /* usable until this call returns */
    if (!L)                  /* the loop closed first */
        return;
    if (fail)
        luaL_error(L, "job %d failed", n); /* rejects the Future (E3) */
    lua_pushinteger(L, n * n);
    CHECK_INT(lasio_pin_resolve(L, pin, 1), LASIO_OK);
}

static void *
worker(void *arg) {
    struct job *j = arg;
    usleep((useconds_t)j->delay_us);
    CHECK_INT(lasio_pin_post(j->pin, job_done, j), LASIO_OK);
    return NULL;
}

/* host.job(n, delay_ms, fail): a Future a thread completes. */
static int
host_job(lua_State *L) {
    struct job *j = malloc(sizeof *j);
    j->n = (int)luaL_checkinteger(L, 1);
    j->delay_us = (int)luaL_checkinteger(L, 2) * 1000;
    j->fail = lua_toboolean(L, 3);
    lasio_future_new(L);
    j->pin = lasio_future_pin(L, -1);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, worker, j), 0);
    pthread_detach(th);
    return 1;
}

static int
host_job_async(lua_State *L) {
    host_job(L);
    return lasio_future_await(L, -1);
}

static void
count_cb(lua_State *L, lasio_pin *pin, void *ud) {
    (*(int *)ud) += L ? 1 : 100;
    (void)pin;
}

static void
test_threads(void) {
    lua_State *L = harness_state(NULL);
    lua_register(L, "job", host_job);
    lua_register(L, "job_await", host_job_async);
    CHECK_INT(harness_run(L, "local fs = {}\n"
                             "for i = 1, 200 do fs[i] = job(i, i % 7) end\n"
                             "local sum = 0\n"
                             "for i = 1, 200 do sum = sum + fs[i]:await() end\n"
                             "local ok, err = pcall(job_await, 3, 1, true)\n"
                             "assert(not ok and err:find('job 3 failed'))\n"
                             "return sum + job_await(2, 1)"),
              LASIO_OK);
    CHECK_INT(lua_tointeger(L, -1), 2686700 + 4);
    lua_pop(L, 1);
    /* queued calls run with NULL when the loop closes first; later posts
     * are refused */
    int count = 0;
    lasio_future_new(L);
    lasio_pin *pin = lasio_future_pin(L, -1);
    lua_pop(L, 1);
    CHECK_INT(lasio_pin_post(pin, count_cb, &count), LASIO_OK);
    CHECK_INT(lasio_pin_post(pin, count_cb, &count), LASIO_OK);
    CHECK_INT(lasio_close(L), LASIO_OK);
    CHECK_INT(count, 200);
    CHECK_INT(lasio_pin_post(pin, count_cb, &count), LASIO_ECLOSED);
    lasio_future_unpin(pin);
    lua_close(L);
}

/* ====== } */

/* {====== Async C functions and the exception handler ====== */

static int
c_sleepy(lua_State *L) { /* returns a Future a host timer resolves */
    return host_later(L);
}

static int
c_plain(lua_State *L) {
    lua_pushinteger(L, lua_tointeger(L, 1) * 10);
    lua_pushvalue(L, lua_upvalueindex(1));
    return 2;
}

static int
c_raise(lua_State *L) {
    return luaL_error(L, "raised in C");
}

static const luaL_Reg host_funcs[] = {{"sleepy", c_sleepy},
                                      {"plain", c_plain},
                                      {"raise", c_raise},
                                      {"placeholder", NULL},
                                      {NULL, NULL}};

static void
test_async(void) {
    lua_State *L = harness_state(NULL);
    lua_newtable(L);
    lua_pushliteral(L, "up");
    CHECK_INT(lasio_async_register(L, host_funcs, 1), LASIO_OK);
    lua_setglobal(L, "host");
    lua_pushinteger(L, 1);
    CHECK_INT(lasio_async_register(L, host_funcs, 0), LASIO_EINVAL);
    lua_pop(L, 1);
    CHECK_INT(harness_run(L, "local a, b = host.sleepy(5, 6)\n"
                             "local p, up = host.plain(4)\n"
                             "local ok, err = pcall(host.raise)\n"
                             "assert(not ok and err:find('raised in C'))\n"
                             "assert(host.placeholder == false)\n"
                             "return a .. b .. p .. up"),
              LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "6second40up");
    lua_pop(L, 1);
    /* outside a task: a clear error */
    lua_getglobal(L, "host");
    lua_getfield(L, -1, "sleepy");
    lua_pushinteger(L, 1);
    CHECK_INT(lua_pcall(L, 1, 0, 0), LUA_ERRRUN);
    CHECK_STR(lua_tostring(L, -1), "not inside a task");
    lua_settop(L, 0);
    /* a C function raising in a task: the task's error (E3) */
    CHECK_INT(harness_run(L, "host.raise()"), LUA_ERRRUN);
    CHECK_STR(lua_tostring(L, -1), "raised in C");
    lua_pop(L, 1);
    /* the host timer of the call outside a task fires */
    CHECK_INT(harness_run(L, "lasio.sleep(0.01)"), LASIO_OK);
    lua_pop(L, 1);
    lua_close(L);
}

static void
test_handler(void) {
    lua_State *L = harness_state(NULL);
    harness_load(L, "return function(loop, ctx) seen = ctx end");
    lua_call(L, 0, 1);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_OK);
    lua_pop(L, 1);
    lua_pushinteger(L, 3);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_EINVAL);
    lua_pop(L, 1);
    lua_pushcfunction(L, c_raise); /* a C callback that raises (E3) */
    lua_setglobal(L, "c_raise");
    CHECK_INT(harness_run(L, "lasio.get_running_loop():call_soon(c_raise)\n"
                             "lasio.sleep(0.001)\n"
                             "return seen.message .. ': ' .. "
                             "tostring(seen.exception)"),
              LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "Exception in callback: ");
    CHECK_STR(lua_tostring(L, -1), "raised in C");
    lua_pop(L, 1);
    lua_close(L);
}

/* A failed task collected just before lasio_close, with no loop step in
 * between: its "never retrieved" report, queued by __gc, is made by the
 * close. */
static void
test_collected_at_close(void) {
    lua_State *L = harness_state(NULL);
    harness_load(L, "return function(loop, ctx)\n"
                    "  reports = (reports or 0) + 1\n"
                    "  last = ctx.message .. ': ' .. tostring(ctx.exception)\n"
                    "end");
    lua_call(L, 0, 1);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(harness_run(L, "failed = lasio.spawn(function() "
                             "error('lost at close', 0) end)\n"
                             "lasio.sleep(0.001)"),
              LASIO_OK);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setglobal(L, "failed");
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_getglobal(L, "reports");
    CHECK(lua_isnil(L, -1)); /* queued: no loop step has run it */
    lua_pop(L, 1);
    CHECK_INT(lasio_close(L), LASIO_OK);
    lua_getglobal(L, "reports");
    CHECK_INT(lua_tointeger(L, -1), 1);
    lua_getglobal(L, "last");
    CHECK_STR(lua_tostring(L, -1),
              "Task exception was never retrieved: lost at close");
    lua_pop(L, 2);
    lua_close(L);

    /* a loop step after the collection reports it once, not again at
     * close */
    L = harness_state(NULL);
    harness_load(L, "return function(loop, ctx) "
                    "reports = (reports or 0) + 1 end");
    lua_call(L, 0, 1);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(harness_run(L, "failed = lasio.spawn(function() "
                             "error('x', 0) end)\n"
                             "lasio.sleep(0.001)"),
              LASIO_OK);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setglobal(L, "failed");
    lua_gc(L, LUA_GCCOLLECT, 0);
    CHECK_INT(harness_run(L, "lasio.sleep(0.001)"), LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(lasio_close(L), LASIO_OK);
    lua_getglobal(L, "reports");
    CHECK_INT(lua_tointeger(L, -1), 1);
    lua_pop(L, 1);
    lua_close(L);
}

/* ====== } */

/* {====== Teardown (INTERNALS.md, rule 13; G4) ====== */

struct closer {
    lua_State *L;
    struct event_base *base;
    int after;
};

static void
close_cb(evutil_socket_t fd, short what, void *arg) {
    struct closer *c = arg;
    (void)fd, (void)what;
    lua_close(c->L); /* from the host's dispatch, tasks pending */
    c->L = NULL;
}

static void
after_cb(evutil_socket_t fd, short what, void *arg) {
    struct closer *c = arg;
    (void)fd, (void)what;
    c->after++;
    event_base_loopbreak(c->base);
}

static void
nop_cb(lua_State *L, lasio_pin *pin, void *ud) {
    (void)L, (void)pin, (void)ud;
}

static int lua_calls; /* Lua-visible C functions called (must stay 0) */
static long child_pid;

static int
count_call(lua_State *L) {
    (void)L;
    lua_calls++;
    return 0;
}

static int
note_child(lua_State *L) {
    child_pid = (long)luaL_checkinteger(L, 1);
    return 0;
}

static int
count_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void
test_teardown(void) {
    struct event_base *base = event_base_new();
    int fds = count_fds();
    lua_State *L = harness_state(base);
    lua_register(L, "later", host_later);
    lua_register(L, "count_call", count_call);
    lua_register(L, "note_child", note_child);
    lua_pushcfunction(L, count_call);
    CHECK_INT(lasio_exception_handler_set(L, -1), LASIO_OK);
    lua_pop(L, 1);
    /* pending tasks, sleeps, timers, C Futures, a queued call, a child
     * process, an unretrieved error and done callbacks (G4) */
    harness_load(L, "for i = 1, 10 do lasio.spawn(function() "
                    "lasio.sleep(i) end) end\n"
                    "lasio.get_running_loop():call_later(5, count_call)\n"
                    "local f = lasio.Future()\n"
                    "f:add_done_callback(count_call)\n"
                    "lasio.spawn(function() f:await() end)\n"
                    "local p = lasio.create_subprocess_exec('sleep', "
                    "{'10'}, {stdout = lasio.PIPE})\n"
                    "note_child(p.pid)\n"
                    "lasio.spawn(function() p:wait() count_call() end)\n"
                    "lasio.spawn(function() p.stdout:read() end)\n"
                    "lasio.spawn(function() error('never retrieved') end)\n"
                    "lasio.sleep(0.001)\n"
                    "return f");
    CHECK_INT(lasio_run(L, 0, 1), LASIO_OK);
    lasio_pin *pin = lasio_future_pin(L, -1);
    CHECK_INT(lasio_pin_post(pin, nop_cb, NULL), LASIO_OK);
    lua_pop(L, 1);
    struct closer c = {L, base, 0};
    struct event *e1 = evtimer_new(base, close_cb, &c);
    struct event *e2 = evtimer_new(base, after_cb, &c);
    struct timeval t1 = {0, 5000}, t2 = {0, 20000};
    evtimer_add(e1, &t1);
    evtimer_add(e2, &t2);
    event_base_dispatch(base);
    CHECK(c.L == NULL);
    CHECK_INT(c.after, 1);       /* the host's own events went on */
    CHECK_INT(lua_calls, 0);     /* no Lua code ran after close began */
    CHECK_INT(count_fds(), fds); /* every fd closed */
    CHECK(child_pid > 0);
    CHECK(waitpid((pid_t)child_pid, NULL, WNOHANG) < 0); /* reaped */
    CHECK_INT(lasio_pin_post(pin, nop_cb, NULL), LASIO_ECLOSED);
    lasio_future_unpin(pin);
    event_free(e1);
    event_free(e2);
    event_base_free(base);

    /* os.exit(0, true) inside a task of a host's dispatch: exits cleanly */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        base = event_base_new();
        L = harness_state(base);
        harness_load(L, "lasio.sleep(0.001) io.stdout:flush() "
                        "os.exit(7, true)");
        lasio_task_spawn(L, 0);
        event_base_dispatch(base);
        _exit(1); /* not reached */
    }
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

/* ====== } */

/* {====== Timers never early on a host base (INTERNALS.md, rule 11) ====== */

static const char early_script[] =
    "local loop = lasio.get_running_loop()\n"
    "local early, n = 0, 0\n"
    "local function check(when) n = n + 1 "
    "if loop:time() < when then early = early + 1 end end\n"
    "local tasks = {}\n"
    "for i = 1, 60 do\n"
    "    local d = (i % 13) * 0.0007 + 0.0001\n"
    "    loop:call_later(d, check, loop:time() + d)\n"
    "    tasks[i] = lasio.spawn(function()\n"
    "        local t = loop:time() + d\n"
    "        lasio.sleep(d)\n"
    "        check(t)\n"
    "    end)\n"
    "end\n"
    "for _, t in ipairs(tasks) do t:await() end\n"
    "lasio.sleep(0.02)\n"
    "return early, n\n";

static void
test_never_early(void) {
    struct event_config *cfg = event_config_new();
    /* a base without EVENT_BASE_FLAG_PRECISE_TIMER (and with a cached,
     * coarse clock) */
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    lua_State *L = harness_state(base);
    for (int round = 0; round < 3; round++) {
        harness_load(L, early_script);
        CHECK_INT(lasio_run(L, 0, 2), LASIO_OK);
        CHECK_INT(lua_tointeger(L, -2), 0);
        CHECK_INT(lua_tointeger(L, -1), 120);
        lua_settop(L, 0);
    }
    lua_close(L);
    event_base_free(base);
}

/* On a host's base made without EVENT_BASE_FLAG_PRECISE_TIMER: sleeps of
 * 0.3 ms wake within a fraction of a millisecond (the loop's own timerfd;
 * epoll's timeout alone would round each up to a whole millisecond, an
 * overshoot of 0.7 ms or more), and the host's dispatch ends by itself
 * once the task is done: the timer is no longer watched then. */
static const char *const fine_script =
    "local loop = lasio.get_running_loop()\n"
    "fine = 0\n"
    "for i = 1, 20 do\n"
    "  local t0 = loop:time()\n"
    "  lasio.sleep(0.0003)\n"
    "  if loop:time() - t0 < 0.0009 then fine = fine + 1 end\n"
    "end\n"
    "done = true\n";

static void
test_host_timer(void) {
    struct event_base *base = event_base_new();
    lua_State *L = harness_state(base);
    harness_load(L, fine_script);
    CHECK_INT(lasio_task_spawn(L, 0), LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(event_base_dispatch(base), 1); /* 1: no events left */
    lua_getglobal(L, "done");
    CHECK(lua_toboolean(L, -1));
    /* a loaded machine delays some wake-ups; a base without the loop's
     * timerfd would wake none of them in time */
    lua_getglobal(L, "fine");
    CHECK(lua_tointeger(L, -1) >= 5);
    lua_pop(L, 2);
    lua_close(L);
    event_base_free(base);
}

/* ====== } */

/* {====== Limits for untrusted scripts (R1-R5) ====== */

static void
test_limits(void) {
    /* refusals before lasio is open, and bad arguments */
    lua_State *bare = luaL_newstate();
    CHECK_INT(lasio_set_forced_yield(bare, 100), LASIO_ECLOSED);
    CHECK_INT(lasio_set_run_budget(bare, 1000, 0), LASIO_ECLOSED);
    CHECK_INT(lasio_set_caps(bare, 1, 1), LASIO_ECLOSED);
    CHECK_INT(lasio_memory_usage(bare, NULL, NULL), LASIO_EINVAL);
    CHECK_INT(lasio_set_forced_yield(bare, -1), LASIO_EINVAL);
    CHECK_INT(lasio_set_run_budget(bare, -1, 0), LASIO_EINVAL);
    CHECK_INT(lasio_set_caps(bare, -1, 0), LASIO_EINVAL);
    CHECK_INT(lasio_load_sandboxed(bare, NULL, 0, "x", 0, 0), LASIO_EINVAL);
    CHECK_INT(lua_gettop(bare), 0);
    lua_close(bare);

    lua_State *L = harness_state(NULL);
    /* R1: a cap below what the state holds is refused; a cap holds */
    CHECK_INT(lasio_set_memory_limit(L, 1000), LASIO_EINVAL);
    CHECK_INT(lasio_set_memory_limit(L, 8u << 20), LASIO_OK);
    size_t used = 0, peak = 0;
    CHECK_INT(lasio_memory_usage(L, &used, &peak), LASIO_OK);
    CHECK(used > 0 && used <= peak && peak <= (8u << 20));
    CHECK_INT(harness_run(L, "local t = lasio.spawn(function() local s = 'x' "
                             "while true do s = s .. s end end)\n"
                             "local ok, e = pcall(t.await, t)\n"
                             "return e"),
              LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "not enough memory");
    lua_settop(L, 0);
    CHECK_INT(lasio_memory_usage(L, NULL, &peak), LASIO_OK);
    CHECK(peak <= (8u << 20));
    /* R3: a spinning task does not stall a sleeping one */
    CHECK_INT(lasio_set_forced_yield(L, 10000), LASIO_OK);
    CHECK_INT(harness_run(L, "local stop = false\n"
                             "local spin = lasio.spawn(function() "
                             "while not stop do end end)\n"
                             "lasio.sleep(0.01) stop = true spin:await()\n"
                             "return 'woke'"),
              LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "woke");
    lua_settop(L, 0);
    /* R5: the caps */
    CHECK_INT(lasio_set_caps(L, 3, 0), LASIO_OK);
    CHECK_INT(harness_run(L, "return select(2, pcall(function() for i = 1, 5 "
                             "do lasio.spawn(function() end) end end))"),
              LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "too many tasks: the loop's cap is 3");
    lua_settop(L, 0);
    CHECK_INT(lasio_set_caps(L, 0, 0), LASIO_OK);
    /* R2: the run's budget ends a spinning run */
    CHECK_INT(lasio_set_run_budget(L, 1000000, 0), LASIO_OK);
    CHECK_INT(harness_run(L, "while true do end"), LUA_ERRRUN);
    lua_getfield(L, -1, "budget");
    CHECK_STR(lua_tostring(L, -1), "instructions");
    lua_settop(L, 0);
    CHECK_INT(lasio_set_run_budget(L, 0, 0), LASIO_OK);
    /* R4: a sandboxed chunk sees no io; binary chunks are refused */
    const char *src = "return io == nil and os.execute == nil and "
                      "string.dump == nil and lasio.sleep ~= nil";
    CHECK_INT(lasio_load_sandboxed(L, src, strlen(src), "=sb", 0, 0), LASIO_OK);
    CHECK_INT(lasio_run(L, 0, 1), LASIO_OK);
    CHECK(lua_toboolean(L, -1));
    lua_settop(L, 0);
    CHECK_INT(lasio_load_sandboxed(L, "\x1bLua", 4, "=bin", 0, 0), LUA_ERRRUN);
    CHECK_STR(lua_tostring(L, -1), "binary chunk");
    lua_settop(L, 0);
    CHECK_INT(lasio_sandbox_env(L, LASIO_SANDBOX_IO, 0), LASIO_OK);
    lua_getfield(L, -1, "lasio");
    lua_getfield(L, -1, "open_connection");
    CHECK(lua_isfunction(L, -1));
    lua_settop(L, 0);
    lasio_close(L);
    lua_close(L);
}

/* ====== } */

/* {====== Two states in one thread (E5) ====== */

static void
test_two_states(void) {
    struct event_base *base = event_base_new();
    lua_State *A = harness_state(NULL), *B = harness_state(base);
    const char *src = "local loop = lasio.get_running_loop()\n"
                      "local n = 0\n"
                      "for i = 1, 20 do lasio.spawn(function() "
                      "lasio.sleep(0.001 * (i % 5)) n = n + i end) end\n"
                      "while n < 210 do lasio.sleep(0.001) end\n"
                      "return n";
    harness_load(A, src);
    harness_load(B, src);
    CHECK_INT(lasio_task_spawn(A, 0), LASIO_OK);
    CHECK_INT(lasio_task_spawn(B, 0), LASIO_OK);
    double t0 = now();
    int pa = 1, pb = 1;
    while ((pa > 0 || pb > 0) && now() - t0 < 10) { /* interleaved */
        pa = lasio_step(A);
        pb = lasio_step(B);
        usleep(200);
    }
    CHECK_INT(pa, 0);
    CHECK_INT(pb, 0);
    lua_State *both[2] = {A, B};
    for (int i = 0; i < 2; i++) {
        lua_getfield(both[i], 1, "result");
        lua_pushvalue(both[i], 1);
        CHECK_INT(lua_pcall(both[i], 1, 1, 0), LUA_OK);
        CHECK_INT(lua_tointeger(both[i], -1), 210);
    }
    /* one state runs while the other has work pending */
    CHECK_INT(harness_run(B, "bt = lasio.spawn(function() "
                             "lasio.sleep(0.005) return 'b' end)"),
              LASIO_OK);
    CHECK_INT(harness_run(A, "lasio.sleep(0.01) return 'a'"), LASIO_OK);
    CHECK_STR(lua_tostring(A, -1), "a");
    CHECK_INT(luaL_dostring(B, "return bt:done()"), LUA_OK);
    CHECK(!lua_toboolean(B, -1)); /* B did not run meanwhile */
    CHECK_INT(harness_run(B, "return bt:await()"), LASIO_OK);
    CHECK_STR(lua_tostring(B, -1), "b");
    lua_close(A);
    lua_close(B);
    event_base_free(base);
}

/* ====== } */

/* {====== Virtual time: lasio_loop_hold ====== */

static int
host_hold(lua_State *L) {
    lua_pushinteger(L, lasio_loop_hold(L, (int)luaL_checkinteger(L, 1)));
    return 1;
}

/* A host timer's work (50 real ms) against a virtual timer due at 1 s:
 * held, the clock waits for the host; not held, it jumps past it. */
static const char hold_script[] =
    "local testing = require 'lasio.testing'\n"
    "return testing.run(function(hold)\n"
    "    local loop = lasio.get_running_loop()\n"
    "    local fired = false\n"
    "    loop:call_later(1, function() fired = true end)\n"
    "    if hold then assert(host_hold(1) == 0) end\n"
    "    local v = host_later(50, 7):await()\n"
    "    if hold then assert(host_hold(-1) == 0) end\n"
    "    return ('%d %.1f %s'):format(v, loop:time(), tostring(fired))\n"
    "end, nil, ...)";

static void
test_loop_hold(void) {
    lua_State *L = harness_state(NULL);
    lua_register(L, "host_hold", host_hold);
    lua_register(L, "host_later", host_later);
    /* no loop running, nothing held: refused, nothing changed */
    CHECK_INT(lasio_loop_hold(L, -1), LUA_ERRRUN);
    CHECK_INT(lasio_loop_hold(L, 1), LUA_OK);
    CHECK_INT(lasio_loop_hold(L, -1), LUA_OK);
    harness_load(L, hold_script);
    lua_pushboolean(L, 1);
    CHECK_INT(lasio_run(L, 1, 1), LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "7 0.0 false");
    lua_pop(L, 1);
    harness_load(L, hold_script);
    lua_pushboolean(L, 0);
    CHECK_INT(lasio_run(L, 1, 1), LASIO_OK);
    CHECK_STR(lua_tostring(L, -1), "7 1.0 true");
    lua_pop(L, 1);
    lua_close(L);
}

/* ====== } */

/* {====== The trace sink ====== */

struct sink_seen {
    int n, creates, waits, last_seq, in_order;
    char last[256];
};

static void
sink(void *ud, const struct lasio_trace_event *ev) {
    struct sink_seen *s = ud;
    s->n++;
    s->in_order &= ev->seq == s->last_seq + 1;
    s->last_seq = (int)ev->seq;
    if (strcmp(ev->ev, "task.create") == 0)
        s->creates++;
    if (strcmp(ev->ev, "task.wait") == 0)
        s->waits++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)ev->len, ev->json);
}

static void
test_trace_sink(void) {
    lua_State *L = harness_state(NULL);
    struct sink_seen s = {0, 0, 0, 0, 1, ""};
    CHECK_INT(lasio_trace_set_sink(L, sink, &s), LUA_OK);
    CHECK_INT(harness_run(L, "local t = lasio.spawn(function() "
                             "lasio.sleep(0.001) end) lasio.await(t) "
                             "return 1"),
              LASIO_OK);
    lua_pop(L, 1);
    CHECK(s.creates == 2); /* the main task and t */
    CHECK(s.waits >= 2);   /* t's sleep, the main task's await */
    CHECK(s.in_order);
    CHECK(strncmp(s.last, "{\"seq\":", 7) == 0);
    int n = s.n;
    CHECK_INT(lasio_trace_set_sink(L, NULL, NULL), LUA_OK);
    CHECK_INT(harness_run(L, "lasio.sleep(0.001) return 1"), LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(s.n, n); /* removed: nothing more */
    lua_close(L);
    lua_State *closed = harness_state(NULL);
    CHECK_INT(lasio_close(closed), LASIO_OK);
    CHECK_INT(lasio_trace_set_sink(closed, sink, &s), LASIO_ECLOSED);
    lua_close(closed);
}

/* A timed recording, as the inspector's `lasio trace PID` starts one: the
 * file is written after the time, from the loop, and the callback told. */
struct recorded {
    int calls, status;
    char path[64];
};

static void
on_written(void *ud, int status, const char *path) {
    struct recorded *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->path, sizeof r->path, "%s", path);
}

static void
test_trace_record_for(void) {
    lua_State *L = harness_state(NULL);
    struct lasio_loop *loop = lasio_current_loop_(L);
    struct recorded r = {0, -2, ""};
    char err[256], path[] = "/tmp/lasio_record_for_XXXXXX.jsonl";
    int fd = mkstemps(path, 6);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(lasio_trace_record_for_(loop, path, TRACE_JSONL, 0.05, on_written,
                                      &r, err, sizeof err),
              0);
    /* a second recording meanwhile is refused, naming the first */
    CHECK_INT(lasio_trace_record_for_(loop, path, TRACE_JSONL, 0.05, on_written,
                                      &r, err, sizeof err),
              -1);
    CHECK(strstr(err, "being recorded already") != NULL);
    CHECK_INT(harness_run(L, "for i = 1, 20 do lasio.sleep(0.01) end "
                             "return 1"),
              LASIO_OK);
    lua_pop(L, 1);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.status, 0);
    CHECK_STR(r.path, path);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[256];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(strstr(line, "{\"lasio_trace\":1,\"clock\":\"real\"") == line);
    int events = 0;
    while (fgets(line, sizeof line, f))
        events++;
    fclose(f);
    CHECK(events > 3);
    unlink(path);
    /* an unwritable path fails at once */
    CHECK_INT(lasio_trace_record_for_(loop, "/nonexistent/x.json", TRACE_CHROME,
                                      1, on_written, &r, err, sizeof err),
              -1);
    CHECK(strstr(err, "cannot open '/nonexistent/x.json'") != NULL);
    lua_close(L);
}

/* The host serves its loop to `lasio ps PID` (docs/EMBEDDING.md): bad
 * names are refused, a second server is EBUSY, a request on the socket is
 * answered by the loop while a script runs, and closing the loop stops
 * serving. */
static int
connect_abstract(const char *name) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sa.sun_path + 1, name, n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa,
                           (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                       1 + n)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_inspect_listen(void) {
    lua_State *L = harness_state(NULL);
    char name[64], longname[120];
    snprintf(name, sizeof name, "lasio-test/%ld", (long)getpid());
    memset(longname, 'x', 101);
    longname[101] = '\0';
    CHECK_INT(lasio_inspect_listen(L, ""), LASIO_EINVAL);
    CHECK_INT(lasio_inspect_listen(L, longname), LASIO_EINVAL);
    CHECK_INT(lasio_inspect_listen(L, name), LASIO_OK);
    errno = 0;
    CHECK_INT(lasio_inspect_listen(L, "lasio-test/other"), LUA_ERRRUN);
    CHECK_INT(errno, EBUSY);
    CHECK_INT(lua_gettop(L), 0); /* [-0, +0]: nothing pushed, even failing */

    /* a task parked across runs of the loop, asked about in between */
    CHECK_INT(harness_run(L, "local function parked_here() "
                             "lasio.sleep(10) end "
                             "parked = lasio.spawn(parked_here) "
                             "lasio.sleep(0) return 1"),
              LASIO_OK);
    lua_pop(L, 1);
    int fd = connect_abstract(name);
    CHECK(fd >= 0);
    char req[128];
    int n = snprintf(req, sizeof req,
                     "{\"v\":%d,\"cmd\":\"ps\",\"format\":\"text\"}\n",
                     LASIO_INSPECT_VERSION);
    CHECK_INT(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    /* the loop answers between task steps while the script runs */
    CHECK_INT(harness_run(L, "for i = 1, 30 do lasio.sleep(0.01) end "
                             "parked:cancel() return 1"),
              LASIO_OK);
    lua_pop(L, 1);
    char reply[8192];
    size_t got = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (got < sizeof reply - 1 && poll(&p, 1, 2000) > 0) {
        ssize_t r = recv(fd, reply + got, sizeof reply - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    reply[got] = '\0';
    close(fd);
    CHECK_STR(reply, "\"ok\":true");
    CHECK_STR(reply, "parked_here");

    CHECK_INT(lasio_close(L), LASIO_OK);
    CHECK(connect_abstract(name) < 0); /* closing the loop stopped it */
    CHECK_INT(lasio_inspect_listen(L, name), LASIO_ECLOSED);
    lua_close(L);
    /* a host that opens lasio again may serve under the same name at once */
    L = harness_state(NULL);
    CHECK_INT(lasio_inspect_listen(L, name), LASIO_OK);
    lua_close(L);
}

/* ====== } */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {{"open_close", test_open_close},
             {"run", test_run},
             {"reentrant", test_reentrant},
             {"step", test_step},
             {"host_dispatch", test_host_dispatch},
             {"futures", test_futures},
             {"threads", test_threads},
             {"async", test_async},
             {"handler", test_handler},
             {"collected_at_close", test_collected_at_close},
             {"teardown", test_teardown},
             {"never_early", test_never_early},
             {"host_timer", test_host_timer},
             {"two_states", test_two_states},
             {"loop_hold", test_loop_hold},
             {"limits", test_limits},
             {"trace_sink", test_trace_sink},
             {"trace_record_for", test_trace_record_for},
             {"inspect_listen", test_inspect_listen},
             {NULL, NULL}};

int
main(int argc, char **argv) {
    int ran = 0;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; tests[i].name; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        tests[i].fn();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "api_test: no test named '%s'\n", argv[1]);
        return 2;
    }
    return harness_done(argc > 1 ? argv[1] : "api_test");
}
