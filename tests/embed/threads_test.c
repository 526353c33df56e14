/*
 * threads_test.c: two Lua states, each with its own loop, pass spec runs in
 * one process, stepped in turn from one thread and run by lasio_run in two
 * threads at once (E5, docs/RELIABILITY.md): timers, tasks and Futures in
 * both; the signal spec in one state at a time, since signals are
 * process-wide.
 * Specs run under tests/embed/minispec.lua. Usage: threads_test ROOT BUILD
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"

static const char *root;

struct runner {
    const char *files[8];
    int use_host_base;
    int min_passed;
    struct event_base *base;
    lua_State *L;
    int status, passed, failed;
};

/* Pushes minispec.run over the runner's files as a function. */
static void
push_main(struct runner *r) {
    lua_State *L = r->L;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "local ms = require 'minispec'\n"
                     "local files = {}\n"
                     "for i, f in ipairs({...}) do files[i] = '%s/' .. f "
                     "end\n"
                     "return ms.run(files)\n",
                     root);
    if (n < 0 || (size_t)n >= sizeof buf)
        abort();
    harness_load(L, buf);
    for (int i = 0; r->files[i]; i++)
        lua_pushstring(L, r->files[i]);
}

static int
nfiles(struct runner *r) {
    int n = 0;
    while (r->files[n])
        n++;
    return n;
}

static void
open_runner(struct runner *r) {
    r->base = r->use_host_base ? event_base_new() : NULL;
    r->L = harness_state(r->base);
}

/* Reads passed, failed, pending, report (on top) and closes the state. */
static void
finish_runner(struct runner *r, const char *label) {
    lua_State *L = r->L;
    if (r->status != LASIO_OK) {
        fprintf(stderr, "%s: run failed (%d): %s\n", label, r->status,
                lua_tostring(L, -1));
        r->failed = -1;
    } else {
        r->passed = (int)lua_tointeger(L, -4);
        r->failed = (int)lua_tointeger(L, -3);
        if (r->failed)
            fprintf(stderr, "%s: failures:\n%s\n", label, lua_tostring(L, -1));
        printf("%s: %d passed, %d failed, %d pending\n", label, r->passed,
               r->failed, (int)lua_tointeger(L, -2));
    }
    CHECK_INT(r->failed, 0);
    CHECK(r->passed >= r->min_passed);
    lua_close(L);
    if (r->base)
        event_base_free(r->base);
}

static void *
thread_main(void *arg) {
    struct runner *r = arg;
    push_main(r);
    r->status = lasio_run(r->L, nfiles(r), 4);
    return NULL;
}

/* Both runners at once, each in its own thread. */
static void
in_threads(struct runner *a, struct runner *b, const char *label) {
    pthread_t ta, tb;
    char la[64], lb[64];
    open_runner(a);
    open_runner(b);
    CHECK_INT(pthread_create(&ta, NULL, thread_main, a), 0);
    CHECK_INT(pthread_create(&tb, NULL, thread_main, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    snprintf(la, sizeof la, "%s, thread A", label);
    snprintf(lb, sizeof lb, "%s, thread B", label);
    finish_runner(a, la);
    finish_runner(b, lb);
}

/* Both runners in this thread: their main tasks stepped in turn. */
static void
interleaved(struct runner *a, struct runner *b) {
    struct runner *rs[2] = {a, b};
    int pending[2];
    for (int i = 0; i < 2; i++) {
        open_runner(rs[i]);
        push_main(rs[i]);
        rs[i]->status = lasio_task_spawn(rs[i]->L, nfiles(rs[i]));
        pending[i] = 1;
    }
    while (pending[0] > 0 || pending[1] > 0) {
        for (int i = 0; i < 2; i++)
            if (pending[i] > 0)
                pending[i] = lasio_step(rs[i]->L);
    }
    for (int i = 0; i < 2; i++) {
        lua_State *L = rs[i]->L;
        CHECK_INT(pending[i], 0);
        lua_getfield(L, 1, "result"); /* the task's results */
        lua_pushvalue(L, 1);
        rs[i]->status = lua_pcall(L, 1, 4, 0);
        finish_runner(rs[i], i ? "one thread, state B"
                               : "one thread, "
                                 "state A");
    }
}

int
main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: threads_test ROOT BUILD\n");
        return 2;
    }
    root = argv[1];
    char path[4096];
    snprintf(path, sizeof path,
             "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;"
             "%s/tests/embed/?.lua;;",
             root, root, root, root);
    setenv("LUA_PATH", path, 1);
    snprintf(path, sizeof path, "%s/lua/?.so;;", argv[2]);
    setenv("LUA_CPATH", path, 1);
    setenv("LASIO_BUILD", argv[2], 1);
    setenv("LASIO_ROOT", root, 1);
    /* the specs run inside a running loop, as under the lasio command */
    setenv("LASIO_TEST_MODE", "lasio", 1);
    if (chdir(root) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    struct runner core = {{"spec/timer_spec.lua", "spec/task_spec.lua",
                           "spec/future_spec.lua", "spec/queues_spec.lua",
                           NULL},
                          0,
                          100,
                          NULL,
                          NULL,
                          0,
                          0,
                          0};
    struct runner sig = {{"spec/signal_spec.lua", "spec/timer_spec.lua", NULL},
                         1,
                         30,
                         NULL,
                         NULL,
                         0,
                         0,
                         0};
    interleaved(&core, &sig);
    core.use_host_base = 1, sig.use_host_base = 0;
    in_threads(&core, &sig, "two threads");
    in_threads(&sig, &core, "two threads, swapped");
    return harness_done("threads_test");
}
