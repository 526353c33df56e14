/*
 * coro.c: the forwarding coroutine library (docs/API.md, Module functions).
 * Loading lasio replaces coroutine.resume, wrap, yield, isyieldable,
 * running, status and close with these: when a user coroutine running
 * inside a task awaits, the scheduler's yield (marked by the sentinel)
 * passes through resume up to the task, and the scheduler's resume comes
 * back down. Coroutines being forwarded are kept in a weak-keyed registry
 * set so that status() reports them "normal", as the originals would.
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"

static const char forwarding_key = 0;

static void
set_forwarding(lua_State *L, lua_State *co, int on) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &forwarding_key);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (on)
        lua_pushboolean(L, 1);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int
is_forwarding(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &forwarding_key);
    lua_pushvalue(L, idx);
    int on = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return on;
}

/* Is co the coroutine of the task being stepped? */
static int
is_task_level(lua_State *L, lua_State *co) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    return loop && loop->current && loop->current->co == co;
}

static lua_State *
getco(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    return co;
}

/* The original auxstatus of lcorolib.c, plus "normal" while forwarding. */
static const char *
costatus(lua_State *L, lua_State *co) {
    if (L == co)
        return "running";
    switch (lua_status(co)) {
    case LUA_YIELD:
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        {
            int fwd = is_forwarding(L, -1);
            lua_pop(L, 1);
            return fwd ? "normal" : "suspended";
        }
    case LUA_OK: {
        lua_Debug ar;
        if (lua_getstack(co, 0, &ar))
            return "normal";
        return lua_gettop(co) == 0 ? "dead" : "suspended";
    }
    default:
        return "dead";
    }
}

/* lcorolib.c's words for a coroutine that cannot be resumed. */
static const char *
resume_refusal(const char *status) {
    return status[0] == 'd' ? "cannot resume dead coroutine"
                            : "cannot resume non-suspended coroutine";
}

static int resume_k(lua_State *L, int status, lua_KContext ctx);

/* Turns resume's n results (true, values... or false, error) into what
 * the caller gets: the same for resume; for wrap the values, or the error
 * re-raised with position information, as lcorolib.c does. */
static int
finish(lua_State *L, lua_State *co, int n, int wrap) {
    if (!wrap)
        return n;
    if (lua_toboolean(L, -n))
        return n - 1;
    if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD) {
        lua_closethread(co, L); /* close its pending variables */
        lua_pop(co, 1);
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* Resumes co (at index 1 of L) with narg values on top of L. Pushes
 * true, values... or false, error and returns through finish(); or, when
 * co awaits, yields the scheduler's sentinel up to the task. */
static int
auxresume(lua_State *L, lua_State *co, int narg, int wrap) {
    int nres, status;
    if (!lua_checkstack(co, narg)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many arguments to resume");
        return finish(L, co, 2, wrap);
    }
    lua_xmove(L, co, narg);
    status = lua_resume(co, L, narg, &nres);
    if (status == LUA_YIELD && nres >= 1 &&
        lua_touserdata(co, -nres) == LASIO_SENTINEL) {
        /* co awaits: suspend the caller as well, up to the task */
        lua_pop(co, nres);
        if (!lua_isyieldable(L)) {
            /* nobody above can carry the await: fail it inside co */
            lua_pushlightuserdata(L, LASIO_THROW);
            lua_pushliteral(L, "cannot await here: the coroutine was "
                               "resumed from a place that cannot yield");
            return auxresume(L, co, 2, wrap);
        }
        set_forwarding(L, co, 1);
        lua_settop(L, 1);
        lua_pushlightuserdata(L, LASIO_SENTINEL);
        return lua_yieldk(L, 1, wrap, resume_k);
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushboolean(L, 0);
            lua_pushliteral(L, "too many results to resume");
            return finish(L, co, 2, wrap);
        }
        lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        return finish(L, co, nres + 1, wrap);
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1);
    /* a cancellation must not be swallowed by the user's resume: close
     * the dead coroutine (its <close> variables run) and re-raise */
    if (lasio_iserror_(L, -1, ERR_CANCELLED)) {
        lua_closethread(co, L);
        lua_settop(co, 0);
        return lua_error(L);
    }
    return finish(L, co, 2, wrap);
}

/* The scheduler resumed the caller: pass its values down to co. */
static int
resume_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    lua_State *co = lua_tothread(L, 1);
    set_forwarding(L, co, 0);
    return auxresume(L, co, lua_gettop(L) - 1, (int)ctx);
}

static int
co_resume(lua_State *L) {
    lua_State *co = getco(L);
    const char *st = costatus(L, co);
    if (st[0] != 's') { /* not "suspended" */
        lua_pushboolean(L, 0);
        lua_pushstring(L, resume_refusal(st));
        return 2;
    }
    return auxresume(L, co, lua_gettop(L) - 1, 0);
}

static int
auxwrap(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    const char *st = costatus(L, co);
    if (st[0] != 's')
        return luaL_error(L, "%s", resume_refusal(st));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    return auxresume(L, co, lua_gettop(L) - 1, 1);
}

static int
co_create(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

static int
co_wrap(lua_State *L) {
    co_create(L);
    lua_pushcclosure(L, auxwrap, 1);
    return 1;
}

/* A plain yield at task level would hand the scheduler a value it cannot
 * use: raise at the call site instead. */
static int co_yield (lua_State *L) {
    if (is_task_level(L, L))
        return luaL_error(L, "coroutine.yield: cannot yield from a task "
                             "(await instead, or yield inside a coroutine "
                             "of your own)");
    return lua_yield(L, lua_gettop(L));
}

static int
co_isyieldable(lua_State *L) {
    lua_State *co = lua_isnone(L, 1) ? L : getco(L);
    lua_pushboolean(L, lua_isyieldable(co) && !is_task_level(L, co));
    return 1;
}

static int
co_running(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (loop && loop->current && loop->current->co == L)
        loop->current->exposed = 1; /* never reuse it for another task */
    int ismain = lua_pushthread(L);
    lua_pushboolean(L, ismain);
    return 2;
}

static int
co_status(lua_State *L) {
    lua_State *co = getco(L);
    lua_pushstring(L, costatus(L, co));
    return 1;
}

static int
co_close(lua_State *L) {
    lua_State *co = getco(L);
    const char *st = costatus(L, co);
    if (st[0] == 'd' || st[0] == 's') {
        int status = lua_closethread(co, L);
        if (status == LUA_OK) {
            lua_pushboolean(L, 1);
            return 1;
        }
        lua_pushboolean(L, 0);
        lua_xmove(co, L, 1);
        return 2;
    }
    return luaL_error(L, "cannot close a %s coroutine", st);
}

static const luaL_Reg coro_funcs[] = {{"create", co_create},
                                      {"resume", co_resume},
                                      {"wrap", co_wrap},
                                      {"yield", co_yield },
                                      {"isyieldable", co_isyieldable},
                                      {"running", co_running},
                                      {"status", co_status},
                                      {"close", co_close},
                                      {NULL, NULL}};

void
lasio_coro_open_(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &forwarding_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &forwarding_key);
    } else {
        lua_pop(L, 1);
    }
    luaL_newlib(L, coro_funcs);
    lua_setfield(L, -2, "coroutine");
}
