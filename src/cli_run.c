/*
 * cli_run.c: how the lasio command runs a script (API.md section 1): the
 * script as the main task, the loop kept running until every task is done,
 * the exit status table, the deadlock report, and the default handling of
 * SIGINT and SIGTERM (the first cancels the interrupt target, by default
 * the main task; cli.h). Also the dispatch of signals flagged by the hub.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>

#include "cli.h"
#include "core.h"
#include "sys.h"

/* Pushes the task that SIGINT/SIGTERM cancel: the interrupt target, else
 * the main task. [-0, +1, -] */
static void
push_interrupt_target(lua_State *L, struct lasio_loop *loop) {
    lasio_pushloop_(L, loop);
    if (lua_getiuservalue(L, -1, LOOP_UV_INTERRUPT) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getiuservalue(L, -1, LOOP_UV_MAIN);
    }
    lua_remove(L, -2);
}

void
lasio_signals_dispatch_(lua_State *L, struct lasio_loop *loop, int from_hook) {
    /* signals the script handles itself run its handlers from the ready
     * queue, never from the interrupt hook, and replace the default */
    int user = lasio_signal_user_mask_(L, loop);
    int take = from_hook ? ((1 << SIGINT) | (1 << SIGTERM)) & ~user : ~0;
    int pending =
        __atomic_fetch_and(&loop->pending_signals, ~take, __ATOMIC_SEQ_CST) &
        take;
    if (!pending || loop->closed)
        return;
    if (pending & user)
        lasio_signal_run_handlers_(L, loop, pending & user);
    pending &= ~user;
    if (!pending || !loop->interrupt_mode)
        return;
    int sig = pending & (1 << SIGTERM) ? SIGTERM : SIGINT;
    if (!(pending & ((1 << SIGINT) | (1 << SIGTERM))))
        return;
    loop->exit_signal = sig;
    luaL_checkstack(L, 4, NULL);
    push_interrupt_target(L, loop);
    struct lasio_task *t = lasio_totask_(L, -1);
    if (!t || t->fut.state != FUT_PENDING) {
        lua_pop(L, 1);
        return;
    }
    lua_pushstring(L, sig == SIGINT ? "interrupted" : "terminated");
    lasio_task_cancel_(L, -2, t, -1);
    lua_pop(L, 2);
    /* a CPU-bound target is interrupted where it runs */
    if (from_hook && loop->current == t && t->must_cancel &&
        lua_isyieldable(L)) {
        t->must_cancel = 0;
        lasio_newerror_(L, ERR_CANCELLED,
                        sig == SIGINT ? "interrupted" : "terminated", 1);
        lua_error(L);
    }
}

/* Prints the main task's error: message and traceback, with its name. */
static void
print_main_error(lua_State *L, int task) {
    struct lasio_task *t = lasio_totask_(L, task);
    lasio_task_pushname_(L, task, t);
    lua_getiuservalue(L, task, FUT_UV_RESULT);
    lasio_extra_get_(L, task, EXTRA_TRACEBACK);
    const char *tb = lua_tostring(L, -1);
    if (!tb) /* no traceback recorded: the error's own text */
        tb = luaL_tolstring(L, -2, NULL);
    fprintf(stderr, "lasio: error in task %s:\n%s\n", lua_tostring(L, -3), tb);
    fflush(stderr);
    lua_settop(L, task);
}

/* Cancels every pending task and runs until all have finished.
 * Returns 1 on deadlock (report printed). */
static int
finish_all(lua_State *L, int loopidx, struct lasio_loop *loop, int cancel) {
    int deadlock = lasio_loop_finish_all_(L, loopidx, loop, cancel);
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
        lasio_rq_drain_cb_(-1, 0, loop);
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
    loop->interrupt_mode = 1;
    lasio_sighub_add_(loop, SIGINT);
    lasio_sighub_add_(loop, SIGTERM);
    lasio_task_spawn_(L, loop, fidx, nargs);
    lua_replace(L, fidx);
    int main = fidx;
    struct lasio_task *t = lasio_totask_(L, main);
    lasio_task_pushname_(L, main, t);
    lua_pushliteral(L, " (main)");
    lua_concat(L, 2);
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
        if (finish_all(L, loopidx, loop,
                       failed || t->fut.state == FUT_CANCELLED) &&
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
