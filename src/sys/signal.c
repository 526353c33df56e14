/*
 * signal.c: loop:add_signal_handler / loop:remove_signal_handler
 * (docs/API.md, Signals) on top of the process-wide hub (core/sighub.c),
 * and the dispatch of the signals the hub flags (the loop's on_signals
 * hook: a script's handlers, the command's default). A loop's handlers
 * live in a table in its anchors, keyed by signal number; the hub flags
 * the loop and wakes it, and the dispatch schedules each handler as a
 * ready-queue callback, so a handler never runs inside a Lua frame.
 * Invariant: each installed handler counts once in loop->nsources.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <string.h>

#include "sys/sys.h"

#define MAX_SIGNAL 30 /* standard signals, bit masks in an int */

static const char handlers_key = 0; /* anchors[&handlers_key] = {sig=call} */

static const struct {
    const char *name;
    int sig;
} signal_names[] = {{"SIGHUP", SIGHUP},       {"SIGINT", SIGINT},
                    {"SIGQUIT", SIGQUIT},     {"SIGILL", SIGILL},
                    {"SIGTRAP", SIGTRAP},     {"SIGABRT", SIGABRT},
                    {"SIGBUS", SIGBUS},       {"SIGFPE", SIGFPE},
                    {"SIGKILL", SIGKILL},     {"SIGUSR1", SIGUSR1},
                    {"SIGSEGV", SIGSEGV},     {"SIGUSR2", SIGUSR2},
                    {"SIGPIPE", SIGPIPE},     {"SIGALRM", SIGALRM},
                    {"SIGTERM", SIGTERM},     {"SIGCHLD", SIGCHLD},
                    {"SIGCONT", SIGCONT},     {"SIGSTOP", SIGSTOP},
                    {"SIGTSTP", SIGTSTP},     {"SIGTTIN", SIGTTIN},
                    {"SIGTTOU", SIGTTOU},     {"SIGURG", SIGURG},
                    {"SIGXCPU", SIGXCPU},     {"SIGXFSZ", SIGXFSZ},
                    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF},
                    {"SIGWINCH", SIGWINCH},   {"SIGIO", SIGIO},
                    {"SIGPWR", SIGPWR},       {"SIGSYS", SIGSYS},
                    {"SIGIOT", SIGIOT},       {"SIGPOLL", SIGPOLL},
                    {"SIGCLD", SIGCHLD},      {NULL, 0}};

int
lasio_checksignal_(lua_State *L, int idx, const char *fname) {
    int arg = idx - 1; /* the methods count arguments after self */
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = lua_tointeger(L, idx);
        if (!lua_isinteger(L, idx) || n <= 0 || n >= 65)
            lasio_argerror_(L, arg, fname,
                            lua_pushfstring(L, "invalid signal number %s",
                                            luaL_tolstring(L, idx, NULL)));
        return (int)n;
    }
    const char *s = lua_tostring(L, idx);
    if (!s || lua_type(L, idx) != LUA_TSTRING)
        lasio_argerror_(L, arg, fname,
                        lua_pushfstring(L,
                                        "signal name or number expected, "
                                        "got %s",
                                        luaL_typename(L, idx)));
    const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (int i = 0; signal_names[i].name; i++)
        if (strcmp(signal_names[i].name + 3, bare) == 0)
            return signal_names[i].sig;
    return lasio_argerror_(L, arg, fname,
                           lua_pushfstring(L, "unknown signal name '%s'", s));
}

/* Pushes the loop's anchors table, or nil when the loop was forgotten. */
static void
pushanchors(lua_State *L, struct lasio_loop *loop) {
    lasio_pushloop_(L, loop);
    if (!lua_isnil(L, -1)) {
        lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
        lua_remove(L, -2);
    }
}

/* Pushes the loop's handlers table (created when create is set; else nil
 * when there is none). [-0, +1, m] */
static void
pushhandlers(lua_State *L, struct lasio_loop *loop, int create) {
    pushanchors(L, loop);
    if (lua_isnil(L, -1)) /* closed and forgotten */
        return;
    if (lua_rawgetp(L, -1, &handlers_key) == LUA_TNIL && create) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, -3, &handlers_key);
    }
    lua_remove(L, -2);
}

/* The signals with a handler of add_signal_handler, as a bit mask. */
static int
user_mask(lua_State *L, struct lasio_loop *loop) {
    int mask = 0;
    if (!lua_checkstack(L, 3))
        return 0;
    pushhandlers(L, loop, 0);
    if (lua_istable(L, -1)) {
        for (int sig = 1; sig <= MAX_SIGNAL; sig++) {
            if (lua_rawgeti(L, -1, sig) != LUA_TNIL)
                mask |= 1 << sig;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return mask;
}

/* Schedules the handlers of the signals in mask. */
static void
run_handlers(lua_State *L, struct lasio_loop *loop, int mask) {
    luaL_checkstack(L, 8, NULL);
    pushhandlers(L, loop, 0);
    int handlers = lua_gettop(L);
    for (int sig = 1; sig <= MAX_SIGNAL && lua_istable(L, handlers); sig++) {
        if (!(mask & (1 << sig)))
            continue;
        if (lua_rawgeti(L, handlers, sig) != LUA_TTABLE) { /* removed */
            lua_pop(L, 1);
            continue;
        }
        /* call_soon(loop, fn, args...) from the stored {fn, args..., n=} */
        int call = lua_gettop(L);
        lua_getfield(L, call, "n");
        int n = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        luaL_checkstack(L, n + 3, "too many handler arguments");
        lua_pushcfunction(L, lasio_call_soon_);
        lasio_pushloop_(L, loop);
        for (int i = 1; i <= n; i++)
            lua_rawgeti(L, call, i);
        lua_call(L, n + 1, 0);
        lua_settop(L, handlers);
    }
    lua_settop(L, handlers - 1);
}

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

static const char *
why(struct lasio_loop *loop) {
    return loop->exit_signal == SIGINT ? "interrupted" : "terminated";
}

/* Cancels the interrupt target; when it is done already (the main task
 * returned while the loop finishes the others), every pending task, as
 * the command does once the main task ended cancelled. */
static void
cancel_target(lua_State *L, struct lasio_loop *loop) {
    luaL_checkstack(L, 6, NULL);
    lua_pushstring(L, why(loop));
    int msg = lua_gettop(L);
    push_interrupt_target(L, loop);
    struct lasio_task *t = lasio_totask_(L, -1);
    if (t && t->fut.state == FUT_PENDING) {
        lasio_task_cancel_(L, -1, t, msg);
        lua_settop(L, msg - 1);
        return;
    }
    lasio_loop_cancel_all_(L, loop, msg);
    lua_settop(L, msg - 1);
}

/* {====== Interrupting a task that runs without awaiting ====== */

/* How long a task may go on running without awaiting after a signal
 * before it counts as spinning and gets CancelledError where it runs (a
 * task about to await is left alone: the loop delivers what the signal
 * did), and how often the hook looks (VM instructions). */
#define SPIN_GRACE 0.2
#define SPIN_COUNT 1000

/* The running task is cancelled and gets CancelledError where it runs. */
static void
interrupt_running(lua_State *L, struct lasio_loop *loop) {
    struct lasio_task *cur = loop->current;
    if (!cur || cur->fut.state != FUT_PENDING || !lua_isyieldable(L))
        return;
    if (!cur->must_cancel) {
        luaL_checkstack(L, 4, NULL);
        lasio_pushloop_(L, loop);
        lua_getiuservalue(L, -1, LOOP_UV_TASKS);
        lua_rawgeti(L, -1, cur->fut.ref);
        lua_pushstring(L, why(loop));
        lasio_task_cancel_(L, -2, cur, -1);
        lua_pop(L, 4);
    }
    if (!cur->must_cancel)
        return;
    cur->must_cancel = 0;
    lasio_newerror_(L, ERR_CANCELLED, why(loop), 1);
    lua_error(L);
}

/* A count hook on the thread that ran when the signal came: it stops
 * when the task awaited (a later step, or no task), interrupts it once it
 * has run SPIN_GRACE seconds without awaiting. */
static void
spin_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop || !loop->current || loop->closed ||
        loop->steps != loop->spin_steps) {
        lasio_budget_rearm_(L, loop);
        return;
    }
    if (lasio_time_() - loop->spin_since < SPIN_GRACE)
        return;
    lasio_budget_rearm_(L, loop);
    interrupt_running(L, loop);
}

/* From the interrupt hook: the interrupt target that runs is interrupted
 * at once (a Ctrl-C of a CPU-bound script); another running task is
 * watched and interrupted if it spins, since a task that never awaits
 * keeps the loop from delivering the cancellation (or the drain). */
static void
watch_running(lua_State *L, struct lasio_loop *loop) {
    struct lasio_task *cur = loop->current;
    if (!cur || cur->fut.state != FUT_PENDING || !lua_isyieldable(L))
        return;
    if (cur->must_cancel) /* the target itself, cancelled just now */
        interrupt_running(L, loop);
    loop->spin_steps = loop->steps;
    loop->spin_since = lasio_time_();
    lua_sethook(L, spin_hook, LUA_MASKCOUNT, SPIN_COUNT);
}

/* ====== } */

/* {====== Shutdown callbacks: the graceful SIGTERM ======
 * A server that can finish its requests in flight (lasio.http.serve)
 * registers a callback with its grace period; on the first default-handled
 * SIGTERM the dispatch calls them all (each starts its server's graceful
 * close) and cancels the interrupt target only when every one has
 * unregistered (its server closed) or the longest grace period passed. A
 * second SIGTERM or a SIGINT ends the drain at once. */

static const char shutdown_key = 0;    /* anchors[&shutdown_key] = {fn=grace} */
static const char drain_timer_key = 0; /* anchors[&...] = TimerHandle */

/* The drain is over: cancel as a first SIGTERM without servers does. */
static void
end_drain(lua_State *L, struct lasio_loop *loop) {
    if (loop->draining != 1)
        return;
    loop->draining = 2;
    luaL_checkstack(L, 4, NULL);
    int top = lua_gettop(L);
    pushanchors(L, loop);
    if (lua_istable(L, -1) &&
        lua_rawgetp(L, -1, &drain_timer_key) == LUA_TUSERDATA) {
        lua_getfield(L, -1, "cancel");
        lua_insert(L, -2);
        lua_call(L, 1, 0);
        lua_pushnil(L);
        lua_rawsetp(L, -2, &drain_timer_key);
    }
    lua_settop(L, top);
    if (!loop->closed)
        cancel_target(L, loop);
}

/* The longest grace period ran out. */
static int
drain_expired(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    end_drain(L, loop);
    return 0;
}

/* Calls every shutdown callback (from the ready queue) and arms the
 * timer of the longest grace period. Returns 0 when there is none. */
static int
start_drain(lua_State *L, struct lasio_loop *loop) {
    luaL_checkstack(L, 8, NULL);
    int top = lua_gettop(L);
    pushanchors(L, loop);
    if (!lua_istable(L, -1) ||
        lua_rawgetp(L, -1, &shutdown_key) != LUA_TTABLE) {
        lua_settop(L, top);
        return 0;
    }
    int list = lua_gettop(L);
    double grace = -1;
    lua_pushnil(L);
    while (lua_next(L, list)) {
        double g = lua_tonumber(L, -1);
        grace = g > grace ? g : grace;
        lua_pop(L, 1);
        lua_pushcfunction(L, lasio_call_soon_);
        lasio_pushloop_(L, loop);
        lua_pushvalue(L, -3);
        lua_call(L, 2, 0);
    }
    if (grace < 0) { /* an empty list */
        lua_settop(L, top);
        return 0;
    }
    loop->draining = 1;
    lua_pushcfunction(L, lasio_call_later_);
    lasio_pushloop_(L, loop);
    lua_pushnumber(L, grace);
    lua_pushcfunction(L, drain_expired);
    lasio_pushloop_(L, loop);
    lua_call(L, 4, 1);
    lua_rawsetp(L, list - 1, &drain_timer_key);
    lua_settop(L, top);
    return 1;
}

/* core.internal.shutdown_add(fn, grace): fn() is called on the command's
 * first SIGTERM; the loop waits up to grace seconds for its removal. */
static int
module_shutdown_add(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Number grace = luaL_checknumber(L, 2);
    luaL_argcheck(L, grace >= 0, 2, "grace period must be >= 0");
    pushanchors(L, loop);
    if (!lua_istable(L, -1))
        return luaL_error(L, "shutdown_add: the loop is closed");
    if (lua_rawgetp(L, -1, &shutdown_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, -3, &shutdown_key);
    }
    lua_pushvalue(L, 1);
    lua_pushnumber(L, grace);
    lua_rawset(L, -3);
    return 0;
}

/* Ends the drain from the ready queue. */
static int
drain_over(lua_State *L) {
    end_drain(L, lasio_checkloop_(L, 1));
    return 0;
}

/* core.internal.shutdown_remove(fn): fn's server has closed; the last
 * removal during a drain ends it, on the next turn of the ready queue:
 * what the close woke (a serve_forever that returns) runs first. */
static int
module_shutdown_remove(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    int empty = 1;
    pushanchors(L, loop);
    if (lua_istable(L, -1) && lua_rawgetp(L, -1, &shutdown_key) == LUA_TTABLE) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -3);
        lua_pushnil(L);
        empty = !lua_next(L, -2);
    }
    lua_settop(L, 1);
    if (empty && loop->draining == 1) {
        lua_pushcfunction(L, lasio_call_soon_);
        lasio_pushloop_(L, loop);
        lua_pushcfunction(L, drain_over);
        lasio_pushloop_(L, loop);
        lua_call(L, 3, 0);
    }
    return 0;
}

/* ====== } */

/* The loop's on_signals hook: handles the signals the hub flagged. Called
 * from the interrupt hook (from_hook), it may raise CancelledError in the
 * running task. */
static void
dispatch(lua_State *L, struct lasio_loop *loop, int from_hook) {
    /* signals the script handles itself run its handlers from the ready
     * queue, never from the interrupt hook, and replace the default */
    int user = user_mask(L, loop);
    int take = from_hook ? ((1 << SIGINT) | (1 << SIGTERM)) & ~user : ~0;
    int pending =
        __atomic_fetch_and(&loop->pending_signals, ~take, __ATOMIC_SEQ_CST) &
        take;
    if (!pending || loop->closed)
        return;
    if (pending & user)
        run_handlers(L, loop, pending & user);
    pending &= ~user;
    if ((pending & (1 << SIGQUIT)) && loop->trace) /* --trace-ring */
        lasio_trace_snapshot_(loop);
    if (!pending || !loop->interrupt_mode)
        return;
    if (!(pending & ((1 << SIGINT) | (1 << SIGTERM))))
        return;
    int sig = pending & (1 << SIGTERM) ? SIGTERM : SIGINT;
    loop->exit_signal = sig;
    if (sig == SIGTERM && !loop->draining && start_drain(L, loop))
        ; /* the servers finish their requests first */
    else if (loop->draining == 1)
        end_drain(L, loop); /* a second SIGTERM, a SIGINT: at once */
    else
        cancel_target(L, loop);
    if (from_hook)
        watch_running(L, loop);
}

void
lasio_signal_default_(struct lasio_loop *loop) {
    loop->interrupt_mode = 1;
    loop->on_signals = dispatch;
    lasio_sighub_add_(loop, SIGINT);
    lasio_sighub_add_(loop, SIGTERM);
}

/* Signals whose handler would run again at once when it returns. */
static int
is_fault(int sig) {
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
           sig == SIGSYS;
}

/* loop:add_signal_handler(sig, fn, ...) */
static int
loop_add_signal_handler(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    const char *fname = "loop:add_signal_handler";
    int sig = lasio_checksignal_(L, 2, fname);
    if (lua_type(L, 3) != LUA_TFUNCTION)
        return lasio_argerror_(L, 2, fname,
                               lua_pushfstring(L, "function expected, got %s",
                                               luaL_typename(L, 3)));
    if (loop->closed)
        return luaL_error(L, "%s: the loop is closed", fname);
    if (sig > MAX_SIGNAL)
        return lasio_argerror_(L, 1, fname,
                               "real-time signals are not supported");
    if (sig == SIGKILL || sig == SIGSTOP)
        return lasio_argerror_(L, 1, fname,
                               "SIGKILL and SIGSTOP cannot be handled");
    if (is_fault(sig))
        return lasio_argerror_(L, 1, fname,
                               "a fault signal cannot be handled on "
                               "the loop");
    int n = lua_gettop(L) - 2; /* fn and its arguments */
    lua_createtable(L, n, 1);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i + 2);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    int call = lua_gettop(L);
    pushhandlers(L, loop, 1);
    int had = lua_rawgeti(L, -1, sig) != LUA_TNIL;
    lua_pop(L, 1);
    loop->on_signals = dispatch;
    if (!had && lasio_sighub_add_user_(loop, sig) < 0)
        return luaL_error(L, "%s: cannot handle signal %d", fname, sig);
    lua_pushvalue(L, call);
    lua_rawseti(L, -2, sig); /* the slot existed or the table grows: a
                                memory error here leaves the hub watching,
                                which only wakes the loop for nothing */
    if (!had)
        loop->nsources++;
    return 0;
}

/* loop:remove_signal_handler(sig) -> true if a handler was removed */
static int
loop_remove_signal_handler(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    int sig = lasio_checksignal_(L, 2, "loop:remove_signal_handler");
    int had = 0;
    if (sig <= MAX_SIGNAL) {
        pushhandlers(L, loop, 0);
        if (lua_istable(L, -1)) {
            had = lua_rawgeti(L, -1, sig) != LUA_TNIL;
            lua_pop(L, 1);
            lua_pushnil(L);
            lua_rawseti(L, -2, sig);
        }
        lua_pop(L, 1);
    }
    if (had) {
        lasio_sighub_remove_user_(loop, sig);
        if (!loop->closed && loop->nsources > 0)
            loop->nsources--;
    }
    lua_pushboolean(L, had);
    return 1;
}

static const luaL_Reg signal_methods[] = {
    {"add_signal_handler", loop_add_signal_handler},
    {"remove_signal_handler", loop_remove_signal_handler},
    {NULL, NULL}};

static const luaL_Reg shutdown_funcs[] = {
    {"shutdown_add", module_shutdown_add},
    {"shutdown_remove", module_shutdown_remove},
    {NULL, NULL}};

void
lasio_signal_open_(lua_State *L) {
    /* the loop's methods are the table behind its __index (loop.c): a
     * table, or the first upvalue of an __index function */
    luaL_getmetatable(L, LASIO_LOOP_MT);
    if (lua_getfield(L, -1, "__index") == LUA_TFUNCTION) {
        lua_getupvalue(L, -1, 1);
        lua_remove(L, -2);
    }
    if (lua_istable(L, -1))
        luaL_setfuncs(L, signal_methods, 0);
    lua_pop(L, 2);
    lua_getfield(L, -1, "internal"); /* for lua/lasio/http_server.lua */
    luaL_setfuncs(L, shutdown_funcs, 0);
    lua_pop(L, 1);
}
