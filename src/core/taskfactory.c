/*
 * taskfactory.c: the loop's task factory (asyncio's set_task_factory) and
 * eager tasks (asyncio 3.12's eager_task_factory): a task made eagerly runs
 * its first step at once, inside the call that made it, until its first
 * suspension; one that finishes without suspending is never scheduled
 * (its done callbacks still are). Every task-making call of the module
 * (spawn, create_task, await of a function) goes through
 * lasio_task_create_, which costs one test when no factory is set.
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"

/* Steps the new, unscheduled task on top now if the loop runs, else
 * schedules it (asyncio starts eagerly only on a running loop). */
static void
start_eagerly(lua_State *L, struct lasio_loop *loop, struct lasio_task *t) {
    if (loop->running) {
        lasio_task_step_(L, -1);
        return;
    }
    t->scheduled = 1;
    lasio_readyq_push_(L, loop, -1);
}

/* Calls the factory of the loop (LOOP_UV_FACTORY) with the loop, the
 * function at fidx and the nargs values on top (popped); leaves the task
 * it returned. Tasks made while it runs are plain ones: a factory written
 * with loop:create_task does not call itself. */
static struct lasio_task *
call_factory(lua_State *L, struct lasio_loop *loop, int fidx, int nargs,
             const char *what) {
    fidx = lua_absindex(L, fidx);
    luaL_checkstack(L, 3, NULL);
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_FACTORY);
    lua_insert(L, -(nargs + 2));
    lua_insert(L, -(nargs + 1));
    lua_pushvalue(L, fidx);
    lua_insert(L, -(nargs + 1));
    loop->in_factory++;
    int status = lua_pcall(L, nargs + 2, 1, 0);
    loop->in_factory--;
    if (status != LUA_OK)
        lua_error(L);
    struct lasio_task *t = lasio_totask_(L, -1);
    if (!t)
        luaL_error(L, "%s: the loop's task factory returned %s, not a Task",
                   what, luaL_typename(L, -1));
    return t;
}

struct lasio_task *
lasio_task_create_slow_(lua_State *L, struct lasio_loop *loop, int fidx,
                        int nargs, const char *what) {
    struct lasio_task *t;
    switch (loop->factory) {
    case FACTORY_EAGER:
        t = lasio_task_new_(L, loop, fidx, nargs);
        start_eagerly(L, loop, t);
        return t;
    case FACTORY_CAPTURE: /* the first task of an eager constructor */
        if (loop->eager_made)
            return lasio_task_spawn_(L, loop, fidx, nargs);
        t = lasio_task_new_(L, loop, fidx, nargs);
        loop->eager_made = t;
        return t;
    default:
        if (loop->in_factory)
            return lasio_task_spawn_(L, loop, fidx, nargs);
        return call_factory(L, loop, fidx, nargs, what);
    }
}

/* lasio.eager_task_factory(loop, fn, ...) -> Task */
static int
eager_task_factory(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (loop->closed)
        return luaL_error(L, "lasio.eager_task_factory: the loop is closed");
    struct lasio_task *t = lasio_task_new_(L, loop, 2, lua_gettop(L) - 2);
    start_eagerly(L, loop, t);
    return 1;
}

/* The factory made by create_eager_task_factory(ctor): ctor(loop, fn, ...)
 * makes the task (with loop:create_task, say, and then names it); that
 * task, held back from the ready queue, is then started at once. */
static int
eager_with_constructor(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    int n = lua_gettop(L);
    luaL_checkstack(L, 1, NULL);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    unsigned char saved = loop->factory;
    loop->factory = FACTORY_CAPTURE;
    loop->eager_made = NULL;
    int status = lua_pcall(L, n, 1, 0);
    struct lasio_task *t = loop->eager_made;
    loop->factory = saved;
    loop->eager_made = NULL;
    if (t && (status != LUA_OK || lasio_totask_(L, -1) != t)) {
        /* made but not returned: it ends cancelled, without running */
        t->must_cancel = 1;
        t->scheduled = 1;
        lasio_pushtasks_(L, loop);
        lua_rawgeti(L, -1, t->fut.ref);
        lasio_readyq_push_(L, loop, -1);
        lua_pop(L, 2);
    }
    if (status != LUA_OK)
        return lua_error(L);
    if (!t || lasio_totask_(L, -1) != t)
        return luaL_error(L,
                          "create_eager_task_factory: the constructor must "
                          "return the task it made on the loop, got %s",
                          luaL_typename(L, -1));
    start_eagerly(L, loop, t);
    return 1;
}

/* lasio.create_eager_task_factory(ctor) -> factory */
static int
create_eager_task_factory(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_pushcclosure(L, eager_with_constructor, 1);
    return 1;
}

int
lasio_loop_set_task_factory_(lua_State *L) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (!lua_isnoneornil(L, 2) && !lua_isfunction(L, 2) &&
        !luaL_getmetafield(L, 2, "__call"))
        return luaL_error(L,
                          "loop:set_task_factory: factory must be a function "
                          "or nil, got %s",
                          luaL_typename(L, 2));
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, LOOP_UV_FACTORY);
    if (lua_isnil(L, 2))
        loop->factory = FACTORY_NONE;
    else if (lua_tocfunction(L, 2) == eager_task_factory)
        loop->factory = FACTORY_EAGER;
    else
        loop->factory = FACTORY_LUA;
    return 0;
}

int
lasio_loop_get_task_factory_(lua_State *L) {
    lasio_checkloop_(L, 1);
    lua_getiuservalue(L, 1, LOOP_UV_FACTORY);
    return 1;
}

void
lasio_taskfactory_open_(lua_State *L) {
    lua_pushcfunction(L, eager_task_factory);
    lua_setfield(L, -2, "eager_task_factory");
    lua_pushcfunction(L, create_eager_task_factory);
    lua_setfield(L, -2, "create_eager_task_factory");
}
