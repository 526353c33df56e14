/*
 * cli_run.c: how the lasio command runs a script (docs/API.md, The lasio
 * command): the script as the main task, the loop kept running until every
 * task is done, the exit status table, the deadlock report, and the default
 * handling of SIGINT and SIGTERM (the first cancels the interrupt target,
 * by default the main task; cli.h; sys/signal.c cancels it).
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "core/core.h"
#include "sys/sys.h"

/* Prints the main task's error: message and traceback, with its name. */
static void
print_main_error(lua_State *L, int task) {
    struct lasio_task *t = lasio_totask_(L, task);
    lasio_task_pushname_(L, task, t);
    int name = lua_gettop(L);
    lua_getiuservalue(L, task, FUT_UV_RESULT);
    lasio_extra_get_(L, task, EXTRA_TRACEBACK);
    const char *tb = lua_tostring(L, -1);
    if (!tb) /* no traceback recorded (a memory error): the error's text,
                pushed above the name */
        tb = luaL_tolstring(L, -2, NULL);
    fprintf(stderr, "lasio: error in task %s:\n%s\n", lua_tostring(L, name),
            tb);
    fflush(stderr);
    lua_settop(L, task);
}

/* Cancels every pending task and runs until all have finished.
 * Returns 1 on deadlock (report printed). */
static int
finish_all(lua_State *L, struct lasio_loop *loop, int cancel) {
    int deadlock = lasio_loop_finish_all_(L, loop, cancel);
    if (deadlock) {
        fprintf(stderr, "%s", lua_tostring(L, -1));
        fflush(stderr);
        lua_pop(L, 1);
    }
    return deadlock;
}

/* Runs what is queued (reports from finalizers) before the loop closes. */
static void
flush_queue(lua_State *L, struct lasio_loop *loop) {
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    lua_State *prev = loop->L;
    loop->L = L;
    for (int i = 0; i < 16 && loop->rq_count > 0; i++)
        lasio_readyq_drain_cb_(-1, 0, loop);
    loop->L = prev;
}

int
lasio_cli_run_(lua_State *L, int nargs) {
    int status = LASIO_EXIT_OK;
    int fidx = lua_gettop(L) - nargs;
    struct lasio_loop *loop = lasio_get_loop_(L);
    lua_insert(L, fidx);
    int loopidx = fidx++;
    signal(SIGPIPE, SIG_IGN);
    lasio_signal_default_(loop);
    lasio_task_spawn_(L, loop, fidx, nargs);
    lua_replace(L, fidx);
    int main = fidx;
    struct lasio_task *t = lasio_totask_(L, main);
    lasio_task_pushname_(L, main, t);
    lua_pushliteral(L, " (main)");
    lua_concat(L, 2);
    if (loop->trace)
        lasio_trace_rename_(L, loop, t, -1);
    lasio_extra_set_(L, main, EXTRA_NAME);
    lasio_loop_set_main_(L, loopidx, main);
    if (lasio_loop_run_(L, loop)) {
        fprintf(stderr, "%s", lua_tostring(L, -1));
        fflush(stderr);
        lua_pop(L, 1);
        status = LASIO_EXIT_DEADLOCK;
    } else {
        int failed = t->fut.state == FUT_FINISHED && t->fut.nresults < 0;
        if (failed) {
            t->fut.log_error = 0;
            lasio_diag_untrack_(L, main, &t->fut);
            print_main_error(L, main);
            status = LASIO_EXIT_ERROR;
        } else if (t->fut.state == FUT_CANCELLED && !loop->exit_signal) {
            fprintf(stderr, "lasio: the main task was cancelled\n");
            status = LASIO_EXIT_ERROR;
        }
        if (finish_all(L, loop, failed || t->fut.state == FUT_CANCELLED) &&
            status == LASIO_EXIT_OK)
            status = LASIO_EXIT_DEADLOCK;
    }
    if (loop->exit_signal && status != LASIO_EXIT_DEADLOCK)
        status = 128 + loop->exit_signal;
    flush_queue(L, loop);
    /* after a deadlock report the stuck tasks were listed already */
    lasio_loop_close_(L, loopidx, loop,
                      status == LASIO_EXIT_DEADLOCK ? LASIO_REPORT_UNRETRIEVED
                                                    : LASIO_REPORT_ALL);
    if (status == LASIO_EXIT_OK && loop->unretrieved > 0)
        status = LASIO_EXIT_UNRETRIEVED;
    lua_settop(L, loopidx - 1);
    return status;
}
