/*
 * timer.c: Handle (loop:call_soon) and TimerHandle (loop:call_later,
 * loop:call_at). A TimerHandle waits in the loop's timer heap
 * (timerheap.c, which also keeps timers from firing early: INTERNALS.md,
 * rule 11), kept in a slot of the loop meanwhile.
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <math.h>

#include "core/core.h"

/* A function, or a value with a __call metamethod. */
static void
checkcallable(lua_State *L, int idx) {
    if (lua_isfunction(L, idx))
        return;
    if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_typeerror(L, idx, "callable");
}

static struct lasio_handle *
checkhandle(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &lasio_handle_token_, "lasio.Handle");
}

/* Takes h out of the timer heap and unanchors it. */
static void
disarm(lua_State *L, struct lasio_handle *h) {
    if (h->heap_pos < 0 || h->slot == LUA_NOREF)
        return;
    lasio_timerheap_remove_(h->loop, &h->heap_pos);
    if (!h->loop->closed) { /* else the slots went with the loop */
        lasio_pushtasks_(L, h->loop);
        lasio_slot_release_(L, h->loop, -1, h->slot);
        lua_pop(L, 1);
    }
    h->slot = LUA_NOREF;
}

static struct lasio_handle *
newhandle(lua_State *L, struct lasio_loop *loop, int fidx, int timer) {
    /* the arguments go into user values of their own: no table per call */
    int nargs = lua_gettop(L) - fidx;
    if (nargs > USHRT_MAX - HANDLE_NUV)
        luaL_error(L, "too many arguments for a callback (%d)", nargs);
    struct lasio_handle *h =
        lua_newuserdatauv(L, sizeof(struct lasio_handle), HANDLE_NUV + nargs);
    h->kind = KIND_HANDLE;
    h->nargs = nargs;
    h->cancelled = 0;
    h->is_timer = (unsigned char)timer;
    h->heap_pos = -1;
    h->slot = LUA_NOREF;
    h->when = 0;
    h->loop = loop;
    lua_rawgeti(L, LUA_REGISTRYINDEX,
                timer ? loop->mt_timer_ref : loop->mt_handle_ref);
    lua_setmetatable(L, -2);
    int hidx = lua_gettop(L);
    lasio_pushloop_(L, loop);
    lua_setiuservalue(L, hidx, HANDLE_UV_LOOP);
    lua_pushvalue(L, fidx);
    lua_setiuservalue(L, hidx, HANDLE_UV_CALL);
    for (int i = 1; i <= nargs; i++) {
        lua_pushvalue(L, fidx + i);
        lua_setiuservalue(L, hidx, HANDLE_NUV + i);
    }
    return h;
}

static struct lasio_loop *
checkopen(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (loop->closed || loop->close_pending) /* close_pending: loop.c */
        luaL_error(L, "the loop is closed");
    return loop;
}

/* loop:call_soon(fn, ...) */
int
lasio_call_soon_(lua_State *L) {
    struct lasio_loop *loop = checkopen(L);
    checkcallable(L, 2);
    newhandle(L, loop, 2, 0);
    lasio_readyq_push_(L, loop, -1);
    return 1;
}

/* Schedules fidx at `when` seconds of the loop's clock, due at when_ns. */
static int
schedule_at(lua_State *L, struct lasio_loop *loop, double when, int64_t when_ns,
            int fidx) {
    checkcallable(L, fidx);
    if (loop->limits)
        lasio_cap_check_(L, loop, 1);
    struct lasio_handle *h = newhandle(L, loop, fidx, 1);
    h->when = when;
    if (isinf(when)) /* never fires: not armed, not a wake-up source */
        return 1;
    lasio_pushtasks_(L, loop);
    h->slot = lasio_slot_take_(L, loop, -1, -2);
    if (lasio_timerheap_add_(loop, h, &h->heap_pos, when_ns)) {
        lasio_slot_release_(L, loop, -1, h->slot);
        h->slot = LUA_NOREF;
        return luaL_error(L, "call_later: not enough memory");
    }
    lua_pop(L, 1);
    return 1;
}

static double
checktime(lua_State *L, int idx, const char *what) {
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: %s must be a number, got %s",
                   idx == 2 ? "loop:call_later" : "loop:call_at", what,
                   luaL_typename(L, idx));
    double v = lua_tonumber(L, idx);
    if (isnan(v))
        luaL_error(L, "%s: %s must not be NaN",
                   idx == 2 ? "loop:call_later" : "loop:call_at", what);
    return v;
}

/* loop:call_later(delay, fn, ...): a negative delay runs on the next
 * turn, as in asyncio; math.huge never fires. */
int
lasio_call_later_(lua_State *L) {
    struct lasio_loop *loop = checkopen(L);
    double delay = checktime(L, 2, "delay");
    if (!(delay > 0))
        delay = 0;
    int64_t when = lasio_loop_deadline_ns_(loop, delay); /* one clock read */
    return schedule_at(L, loop, (double)when / 1e9, when, 3);
}

/* loop:call_at(when, fn, ...) */
int
lasio_call_at_(lua_State *L) {
    struct lasio_loop *loop = checkopen(L);
    double when = checktime(L, 2, "when");
    return schedule_at(L, loop, when, when > 0 ? lasio_delay_ns_(when) : 0, 3);
}

void
lasio_handle_run_(lua_State *L, int idx, struct lasio_handle *h) {
    if (h->cancelled)
        return;
    idx = lua_absindex(L, idx);
    if (h->loop->trace)
        lasio_trace_emit_(h->loop, TEV_CB_RUN, 0, 0, 0, 0,
                          h->is_timer ? "TimerHandle" : "Handle");
    int nargs = h->nargs;
    luaL_checkstack(L, nargs + 2, NULL);
    lua_getiuservalue(L, idx, HANDLE_UV_CALL);
    for (int i = 1; i <= nargs; i++)
        lua_getiuservalue(L, idx, HANDLE_NUV + i);
    lasio_protected_call_(L, h->loop, nargs, idx);
}

static int
handle_cancel(lua_State *L) {
    struct lasio_handle *h = checkhandle(L, 1);
    h->cancelled = 1;
    disarm(L, h);
    return 0;
}

static int
handle_cancelled(lua_State *L) {
    lua_pushboolean(L, checkhandle(L, 1)->cancelled);
    return 1;
}

static int
handle_when(lua_State *L) {
    lua_pushnumber(L, checkhandle(L, 1)->when);
    return 1;
}

/* Pushes where the handle's callback was defined ("file:line"), so
 * reports say which callback they mean. [-0, +1, m] */
static void
push_callback_site(lua_State *L, int idx) {
    lua_Debug ar;
    lua_getiuservalue(L, idx, HANDLE_UV_CALL);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "callable");
        return;
    }
    lua_getinfo(L, ">S", &ar);
    if (ar.what[0] == 'C')
        lua_pushliteral(L, "C function");
    else
        lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
}

static int
handle_tostring(lua_State *L) {
    struct lasio_handle *h = checkhandle(L, 1);
    push_callback_site(L, 1);
    const char *site = lua_tostring(L, -1);
    if (h->is_timer)
        lua_pushfstring(L, "lasio.TimerHandle<when=%f %s%s>", h->when, site,
                        h->cancelled ? " cancelled" : "");
    else
        lua_pushfstring(L, "lasio.Handle<%s %s>",
                        h->cancelled ? "cancelled" : "pending", site);
    return 1;
}

static const luaL_Reg handle_methods[] = {
    {"cancel", handle_cancel}, {"cancelled", handle_cancelled}, {NULL, NULL}};

void
lasio_timer_open_(lua_State *L) {
    const char *names[2] = {LASIO_HANDLE_MT, LASIO_TIMER_MT};
    for (int i = 0; i < 2; i++) {
        if (lasio_newmetatable_(L, names[i], &lasio_handle_token_)) {
            lua_newtable(L);
            luaL_setfuncs(L, handle_methods, 0);
            if (i == 1) {
                lua_pushcfunction(L, handle_when);
                lua_setfield(L, -2, "when");
            }
            lua_setfield(L, -2, "__index");
            lua_pushcfunction(L, handle_tostring);
            lua_setfield(L, -2, "__tostring");
        }
        lua_pop(L, 1);
    }
}
