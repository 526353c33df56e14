/*
 * gather.c: the per-child part of lasio.gather in C (core.internal.gather_ops,
 * for combinators.lua only): checking the items, starting the functions,
 * counting the children in a C done callback and knowing when the outcome
 * is decided. The waiting and the passing on of a cancellation stay in
 * combinators.lua, which calls these once per gather, not once per child.
 * The semantics are those of asyncio's gather (docs/API.md, "gather").
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "core/core.h"

#define LASIO_GATHER_MT "lasio.Gather"

/* The state of one gather; the Lua side lives in its user values. It is
 * the C done callback registered on every child (core.h, struct
 * lasio_donecb): the children stay alive through GATHER_UV_UNIQ. */
struct gather {
    struct lasio_donecb donecb; /* first */
    int nfuts;                  /* distinct children */
    int nfinished;              /* children whose done callback ran */
    unsigned char rex;          /* return_exceptions */
    unsigned char closed;       /* gather returned or raised */
    unsigned char decided;      /* GATHER_UV_DECISIVE is set */
};

enum {
    GATHER_UV_CHILDREN = 1, /* the child per position (Future or Task) */
    GATHER_UV_UNIQ,         /* the distinct children, in order */
    GATHER_UV_SPAWNED,      /* tasks started from functions, or nil */
    GATHER_UV_DECISIVE,     /* first child that failed or was cancelled */
    GATHER_UV_WAKE,         /* the Future the gathering task waits on */
    GATHER_NUV = GATHER_UV_WAKE
};

static const char gather_token = 0;

static struct gather *
checkgather(lua_State *L, int idx) {
    return lasio_checkobj_(L, idx, &gather_token, LASIO_GATHER_MT);
}

/* Marks the error of the done Future at idx retrieved, as its exception()
 * method does. */
static void
mark_retrieved(lua_State *L, int idx, struct lasio_future *f) {
    if (f->state == FUT_FINISHED && f->nresults < 0 && f->log_error) {
        f->log_error = 0;
        lasio_diag_untrack_(L, idx, f);
    }
}

/* Does the userdata at idx have the metatable at mtidx (one a Future's or
 * Task's, checked before)? [-0, +0, -] */
static int
same_type(lua_State *L, int idx, int mtidx) {
    if (!lua_getmetatable(L, idx))
        return 0;
    int same = lua_rawequal(L, -1, mtidx);
    lua_pop(L, 1);
    return same;
}

/* A child at fidx is done (combinators.lua's on_done before). [-0,+0,m] */
static void
child_done(lua_State *L, int gidx, struct gather *g, int fidx,
           struct lasio_future *f) {
    g->nfinished++;
    if (g->closed || g->decided) {
        /* the outcome is known: mark the error retrieved (asyncio) */
        if (f->state != FUT_CANCELLED)
            mark_retrieved(L, fidx, f);
        return;
    }
    int decisive = 0;
    if (!g->rex) {
        if (f->state == FUT_CANCELLED) {
            decisive = 1;
        } else {
            mark_retrieved(L, fidx, f); /* exception() looked at it */
            decisive = f->nresults < 0;
        }
    }
    if (decisive) {
        lua_pushvalue(L, fidx);
        lua_setiuservalue(L, gidx, GATHER_UV_DECISIVE);
        g->decided = 1;
    } else if (g->nfinished < g->nfuts) {
        return;
    }
    if (lua_getiuservalue(L, gidx, GATHER_UV_WAKE) == LUA_TUSERDATA) {
        struct lasio_future *w = lua_touserdata(L, -1);
        if (w->state == FUT_PENDING)
            lasio_future_finish_(L, -1, w, 0);
    }
    lua_pop(L, 1);
}

/* The done callback of every child: the gather at gidx, the child at
 * fidx. */
static void
gather_on_done(lua_State *L, int gidx, int fidx, struct lasio_future *f) {
    if (f->state != FUT_PENDING)
        child_done(L, gidx, lua_touserdata(L, gidx), fidx, f);
}

/* Marks a child while the distinct ones are counted: 1 the first time
 * it is seen. */
static inline int
mark_new(struct lasio_future *f) {
    if (f->gather_mark)
        return 0;
    f->gather_mark = 1;
    return 1;
}

/* start(loop, list, n, rex) -> gather | nil, i, "type" | nil, i, "loop"
 * Checks items 1..n (awaitables of loop), then starts the functions as
 * tasks, records the distinct children and registers the done callback
 * (children already done are counted at once). A Future given twice is
 * one child; a function given twice runs twice. */
static int
gather_start(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer nn = luaL_checkinteger(L, 3);
    luaL_argcheck(L, nn >= 0 && nn <= 0x3fffffff, 3, "bad count");
    int n = (int)nn, rex = lua_toboolean(L, 4);
    lua_settop(L, 2);
    /* the checks first: nothing starts when an item is wrong */
    int nfunc = 0;
    luaL_checkstack(L, 8, NULL);
    lua_pushnil(L); /* 3: the metatable of the last item checked */
    for (int i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 2, i);
        if (t == LUA_TFUNCTION) {
            nfunc++;
        } else if (t != LUA_TUSERDATA || !same_type(L, -1, 3)) {
            struct lasio_future *f = lasio_tofuture_(L, -1);
            if (!f || f->loop != loop) {
                lua_pushnil(L);
                lua_pushinteger(L, i);
                lua_pushstring(L, f ? "loop" : "type");
                return 3;
            }
            lua_getmetatable(L, -1);
            lua_replace(L, 3);
        } else if (((struct lasio_future *)lua_touserdata(L, -1))->loop !=
                   loop) {
            lua_pushnil(L);
            lua_pushinteger(L, i);
            lua_pushliteral(L, "loop");
            return 3;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    struct gather *g = lua_newuserdatauv(L, sizeof *g, GATHER_NUV);
    g->donecb.kind = KIND_DONECB;
    g->donecb.queued = 0;
    g->donecb.ref = LUA_NOREF;
    g->donecb.run = gather_on_done;
    g->nfuts = g->nfinished = 0;
    g->rex = (unsigned char)rex;
    g->closed = g->decided = 0;
    luaL_setmetatable(L, LASIO_GATHER_MT);
    int gidx = lua_gettop(L); /* 3 */
    lua_createtable(L, n, 0);
    int children = gidx + 1;
    lua_pushvalue(L, children);
    lua_setiuservalue(L, gidx, GATHER_UV_CHILDREN);
    int spawned = 0;
    if (nfunc > 0) {
        lua_createtable(L, nfunc, 0);
        spawned = lua_gettop(L);
        lua_pushvalue(L, spawned);
        lua_setiuservalue(L, gidx, GATHER_UV_SPAWNED);
    }
    luaL_checkstack(L, 6, NULL);
    /* the distinct children: marked while they are counted, unmarked
     * right after, with nothing in between that can raise; with no
     * child given twice (the usual case) the children are the distinct
     * children, and no second table is made */
    int nu = 0;
    if (nfunc == 0) {
        /* nothing to start: copying into the table made for n entries
         * cannot raise, so the counting goes with it */
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, i);
            nu += mark_new(lua_touserdata(L, -1));
            lua_rawseti(L, children, i);
        }
    } else {
        for (int i = 1, k = 0; i <= n; i++) {
            if (lua_rawgeti(L, 2, i) == LUA_TFUNCTION) {
                lasio_task_spawn_(L, loop, -1, 0);
                lua_pushvalue(L, -1);
                lua_rawseti(L, spawned, ++k);
                lua_remove(L, -2);
            }
            lua_rawseti(L, children, i);
        }
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, children, i);
            nu += mark_new(lua_touserdata(L, -1));
            lua_pop(L, 1);
        }
    }
    int uniq = children;
    if (nu < n) {
        for (int i = 1; i <= n; i++) { /* the table may raise */
            lua_rawgeti(L, children, i);
            ((struct lasio_future *)lua_touserdata(L, -1))->gather_mark = 0;
            lua_pop(L, 1);
        }
        lua_createtable(L, nu, 0);
        uniq = lua_gettop(L);
        for (int i = 1, k = 0; i <= n; i++) {
            lua_rawgeti(L, children, i);
            struct lasio_future *f = lua_touserdata(L, -1);
            if (!f->gather_mark) { /* its first place */
                f->gather_mark = 1;
                lua_rawseti(L, uniq, ++k);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    for (int i = 1; i <= nu; i++) {
        lua_rawgeti(L, uniq, i);
        ((struct lasio_future *)lua_touserdata(L, -1))->gather_mark = 0;
        lua_pop(L, 1);
    }
    g->nfuts = nu;
    lua_pushvalue(L, uniq);
    lua_setiuservalue(L, gidx, GATHER_UV_UNIQ);
    int cb = gidx;
    for (int i = 1; i <= nu; i++) {
        lua_rawgeti(L, uniq, i);
        struct lasio_future *f = lua_touserdata(L, -1);
        if (f->state != FUT_PENDING)
            child_done(L, gidx, g, lua_gettop(L), f);
        else
            lasio_future_add_callback_(L, -1, f, cb);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, gidx);
    return 1;
}

/* pending(g) -> true while the outcome is not known */
static int
gather_pending(lua_State *L) {
    struct gather *g = checkgather(L, 1);
    lua_pushboolean(L, !g->decided && g->nfinished < g->nfuts);
    return 1;
}

/* waiter(g, loop) -> the pending Future to wait on (a new one when the
 * last was resolved or cancelled) */
static int
gather_waiter(lua_State *L) {
    checkgather(L, 1);
    struct lasio_loop *loop = lasio_checkloop_(L, 2);
    if (lua_getiuservalue(L, 1, GATHER_UV_WAKE) == LUA_TUSERDATA &&
        ((struct lasio_future *)lua_touserdata(L, -1))->state == FUT_PENDING)
        return 1;
    lua_pop(L, 1);
    if (loop->closed)
        return luaL_error(L, "create_future: the loop is closed");
    lasio_future_push_(L, loop);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, GATHER_UV_WAKE);
    /* the gathering task awaits the children through it */
    struct gather *g = lua_touserdata(L, 1);
    char what[32];
    snprintf(what, sizeof what, "gather %d", g->nfuts);
    lua_getiuservalue(L, 1, GATHER_UV_UNIQ);
    lasio_await_link_(L, -2, -1, what);
    lua_pop(L, 1);
    return 1;
}

/* Cancels, with the message at msgidx (0: none), the Future or Task at
 * idx if it is not done; 1 if it took the cancel. */
static int
cancel_child(lua_State *L, int idx, int msgidx) {
    struct lasio_future *f = lua_touserdata(L, idx);
    if (f->state != FUT_PENDING)
        return 0;
    if (f->kind == KIND_TASK)
        return lasio_task_cancel_(L, idx, (struct lasio_task *)f, msgidx);
    return lasio_future_cancel_(L, idx, f, msgidx);
}

/* cancel(g, msg) -> whether any child still running took the cancel
 * (asyncio's _GatheringFuture.cancel) */
static int
gather_cancel(lua_State *L) {
    struct gather *g = checkgather(L, 1);
    int msgidx = lua_isnoneornil(L, 2) ? 0 : 2;
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, GATHER_UV_UNIQ);
    int passed_on = 0;
    for (int i = 1; i <= g->nfuts; i++) {
        lua_rawgeti(L, 3, i);
        if (cancel_child(L, 4, msgidx))
            passed_on = 1;
        lua_settop(L, 3);
    }
    lua_pushboolean(L, passed_on);
    return 1;
}

/* close(g [, cancel_spawned]): the gather returns or raises; with
 * cancel_spawned, the tasks it started are cancelled (the await failed
 * for a reason other than a cancellation). Returns the decisive child or
 * nil, and the children per position. */
static int
gather_close(lua_State *L) {
    struct gather *g = checkgather(L, 1);
    int cancel_spawned = lua_toboolean(L, 2);
    lua_settop(L, 1);
    g->closed = 1;
    if (cancel_spawned &&
        lua_getiuservalue(L, 1, GATHER_UV_SPAWNED) == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, 2);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, i);
            struct lasio_task *t = lua_touserdata(L, 3);
            lasio_task_cancel_(L, 3, t, 0);
            lua_settop(L, 2);
        }
    }
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, GATHER_UV_DECISIVE);
    lua_getiuservalue(L, 1, GATHER_UV_CHILDREN);
    return 2;
}

static const luaL_Reg gather_ops[] = {
    {"start", gather_start},   {"pending", gather_pending},
    {"waiter", gather_waiter}, {"cancel", gather_cancel},
    {"close", gather_close},   {NULL, NULL}};

void
lasio_gather_open_(lua_State *L) {
    lasio_newmetatable_(L, LASIO_GATHER_MT, &gather_token);
    lua_pop(L, 1);
    luaL_newlib(L, gather_ops);
    lua_setfield(L, -2, "gather_ops"); /* into core.internal, at the top */
}
