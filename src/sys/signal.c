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
lasio_checksignal_(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = lua_tointeger(L, idx);
        if (!lua_isinteger(L, idx) || n <= 0 || n >= 65)
            luaL_argerror(L, idx, "invalid signal number");
        return (int)n;
    }
    const char *s = luaL_checkstring(L, idx);
    const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (int i = 0; signal_names[i].name; i++)
        if (strcmp(signal_names[i].name + 3, bare) == 0)
            return signal_names[i].sig;
    return luaL_argerror(L, idx,
                         lua_pushfstring(L, "unknown signal name '%s'", s));
}

/* Pushes the loop's handlers table (created when create is set; else nil
 * when there is none). [-0, +1, m] */
static void
pushhandlers(lua_State *L, struct lasio_loop *loop, int create) {
    lasio_pushloop_(L, loop);
    if (lua_isnil(L, -1)) /* closed and forgotten */
        return;
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_remove(L, -2);
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

/* From the interrupt hook: a task that runs without awaiting (CPU-bound,
 * the interrupt target or any other) would keep the loop from ever
 * delivering the cancellation, so it is cancelled too and gets the
 * CancelledError where it runs. */
static void
interrupt_running(lua_State *L, struct lasio_loop *loop, const char *why) {
    struct lasio_task *cur = loop->current;
    if (!cur || cur->fut.state != FUT_PENDING || !lua_isyieldable(L))
        return;
    if (!cur->must_cancel) {
        lasio_pushloop_(L, loop);
        lua_getiuservalue(L, -1, LOOP_UV_TASKS);
        lua_rawgeti(L, -1, cur->fut.ref);
        lua_pushstring(L, why);
        lasio_task_cancel_(L, -2, cur, -1);
        lua_pop(L, 4);
    }
    if (!cur->must_cancel)
        return;
    cur->must_cancel = 0;
    lasio_newerror_(L, ERR_CANCELLED, why, 1);
    lua_error(L);
}

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
    if (!pending || !loop->interrupt_mode)
        return;
    int sig = pending & (1 << SIGTERM) ? SIGTERM : SIGINT;
    if (!(pending & ((1 << SIGINT) | (1 << SIGTERM))))
        return;
    loop->exit_signal = sig;
    const char *why = sig == SIGINT ? "interrupted" : "terminated";
    luaL_checkstack(L, 4, NULL);
    push_interrupt_target(L, loop);
    struct lasio_task *t = lasio_totask_(L, -1);
    if (t && t->fut.state == FUT_PENDING) {
        lua_pushstring(L, why);
        lasio_task_cancel_(L, -2, t, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (from_hook)
        interrupt_running(L, loop, why);
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
    int sig = lasio_checksignal_(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (loop->closed)
        return luaL_error(L, "add_signal_handler: the loop is closed");
    if (sig > MAX_SIGNAL)
        return luaL_argerror(L, 2, "real-time signals are not supported");
    if (sig == SIGKILL || sig == SIGSTOP)
        return luaL_argerror(L, 2, "SIGKILL and SIGSTOP cannot be handled");
    if (is_fault(sig))
        return luaL_argerror(L, 2,
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
        return luaL_error(L, "add_signal_handler: cannot handle signal %d",
                          sig);
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
    int sig = lasio_checksignal_(L, 2);
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
}
