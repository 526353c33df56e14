/*
 * host.c: a C program with its own libevent work (a heartbeat timer,
 * sensors answering late, a worker thread) that runs Lua scripts as tasks
 * on its event_base while it dispatches the base itself; `host` functions
 * return Futures the scripts await. Usage: host script.lua...
 * Build: cc host.c $(pkg-config --cflags --libs lasio) -lpthread
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#include <lasio.h>

static struct event_base *base; /* the host's own loop */
static int heartbeats;          /* the host's own work */
static int running;             /* scripts not finished yet */

static void
heartbeat(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    heartbeats++;
}

/* {====== host.sensor(name, ms): a Future a host timer resolves ====== */

struct reading {
    struct event *ev;
    lasio_pin *pin; /* keeps the Future alive while the timer is pending */
    lua_State *L;   /* the state's main thread */
    double value;
};

static void
sensor_ready(evutil_socket_t fd, short what, void *arg) {
    struct reading *r = arg;
    (void)fd, (void)what;
    lua_pushnumber(r->L, r->value);
    lasio_pin_resolve(r->L, r->pin, 1); /* runs no Lua code */
    lasio_future_unpin(r->pin);
    event_free(r->ev);
    free(r);
}

static int
host_sensor(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    int ms = (int)luaL_checkinteger(L, 2);
    struct reading *r = malloc(sizeof *r);
    if (!r)
        return luaL_error(L, "not enough memory");
    r->value = 10.0 + (double)(strlen(name) * 7 % 23) + 0.5;
    if (lasio_future_new(L) != LASIO_OK) {
        free(r);
        return lua_error(L);
    }
    r->pin = lasio_future_pin(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    r->L = lua_tothread(L, -1); /* the caller's coroutine may be gone */
    lua_pop(L, 1);
    r->ev = evtimer_new(base, sensor_ready, r);
    struct timeval tv = {0, ms * 1000};
    evtimer_add(r->ev, &tv);
    return 1; /* the Future: host.sensor waits for it (async function) */
}

/* ====== } */

/* {====== host.count(n): a Future a worker thread resolves ====== */

struct job {
    lasio_pin *pin;
    long n, sum;
};

/* Runs on the loop's thread (L), or with L == NULL if the loop closed. */
static void
job_done(lua_State *L, lasio_pin *pin, void *ud) {
    struct job *j = ud;
    long sum = j->sum;
    free(j);
    lasio_future_unpin(pin); /* the pin lasts until this call returns */
    if (L) {
        lua_pushinteger(L, sum);
        lasio_pin_resolve(L, pin, 1);
    }
}

static void *
worker(void *arg) {
    struct job *j = arg;
    for (long i = 1; i <= j->n; i++)
        j->sum += i;
    usleep(10000);
    if (lasio_pin_post(j->pin, job_done, j) != LASIO_OK) { /* closed */
        lasio_future_unpin(j->pin);
        free(j);
    }
    return NULL;
}

static int
host_count(lua_State *L) {
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return luaL_error(L, "not enough memory");
    j->n = (long)luaL_checkinteger(L, 1);
    if (lasio_future_new(L) != LASIO_OK) {
        free(j);
        return lua_error(L);
    }
    j->pin = lasio_future_pin(L, -1);
    pthread_t th;
    if (!j->pin || pthread_create(&th, NULL, worker, j) != 0) {
        lasio_future_unpin(j->pin);
        free(j);
        return luaL_error(L, "cannot start the worker");
    }
    pthread_detach(th);
    return 1;
}

/* ====== } */

static int
host_heartbeats(lua_State *L) {
    lua_pushinteger(L, heartbeats);
    return 1;
}

static const luaL_Reg host_funcs[] = {{"sensor", host_sensor},
                                      {"count", host_count},
                                      {"heartbeats", host_heartbeats},
                                      {NULL, NULL}};

/* Done callback of a script's task (a C function): stop when all are. */
static int
script_done(lua_State *L) {
    (void)L;
    if (--running == 0)
        event_base_loopbreak(base);
    return 0;
}

int
main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua...\n", argv[0]);
        return 2;
    }
    base = event_base_new();
    struct event *beat = event_new(base, -1, EV_PERSIST, heartbeat, NULL);
    struct timeval period = {0, 5000};
    event_add(beat, &period);

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (lasio_open(L, base) != LASIO_OK) { /* lasio on the host's base */
        fprintf(stderr, "host: cannot open lasio\n");
        return 1;
    }
    luaL_dostring(L, "lasio = require 'lasio'");
    lua_newtable(L);
    lasio_async_register(L, host_funcs, 0);
    lua_setglobal(L, "host");

    for (int i = 1; i < argc; i++) { /* each script: a task */
        if (luaL_loadfile(L, argv[i]) != LUA_OK) {
            fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
            return 1;
        }
        lasio_task_spawn(L, 0);
        lua_getfield(L, -1, "add_done_callback");
        lua_pushvalue(L, -2);
        lua_pushcfunction(L, script_done);
        lua_call(L, 2, 0);
        running++;
    }
    event_base_dispatch(base); /* the host's loop runs the tasks too */

    for (int i = 1; i < argc; i++) { /* the tasks, in order, on the stack */
        lua_getfield(L, i, "result");
        lua_pushvalue(L, i);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            printf("host: %s failed: %s\n", argv[i], lua_tostring(L, -1));
        else
            printf("host: %s finished\n", argv[i]);
    }
    lua_close(L); /* frees lasio's events; the host's stay */
    printf("host: heartbeat still armed: %s\n",
           event_pending(beat, EV_TIMEOUT, NULL) ? "yes" : "no");
    event_free(beat);
    event_base_free(base);
    return 0;
}
