/*
 * errors.c: the error classes of docs/API.md, Errors (CancelledError,
 * TimeoutError, ...). Classes are Lua tables created once per Lua state and
 * kept in the registry under the address of `classes_key`, so a second
 * require "lasio" returns the very same classes (INTERNALS.md, rule 1).
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <string.h>

#include "core/core.h"

static const char classes_key = 0;
/* registry key: weak-keyed instance -> captured traceback (newinstance) */
static const char captures_key = 0;

const char lasio_future_token_ = 0, lasio_task_token_ = 0,
           lasio_loop_token_ = 0, lasio_handle_token_ = 0,
           lasio_waitq_token_ = 0;

void *
lasio_testobj_(lua_State *L, int idx, const void *token) {
    void *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    lua_rawgeti(L, -1, 1);
    const void *t = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return t == token ? p : NULL;
}

void *
lasio_checkobj_(lua_State *L, int idx, const void *token, const char *tname) {
    void *p = lasio_testobj_(L, idx, token);
    if (!p)
        luaL_typeerror(L, idx, tname);
    return p;
}

int
lasio_newmetatable_(lua_State *L, const char *tname, const void *token) {
    if (!luaL_newmetatable(L, tname))
        return 0;
    lua_pushlightuserdata(L, (void *)token);
    lua_rawseti(L, -2, 1);
    return 1;
}

struct classdef {
    const char *name;
    int parent; /* -1 for the root */
};

static const struct classdef classdefs[ERR_NCLASSES] = {
    [ERR_BASE] = {"Error", -1},
    [ERR_CANCELLED] = {"CancelledError", ERR_BASE},
    [ERR_TIMEOUT] = {"TimeoutError", ERR_BASE},
    [ERR_INVALIDSTATE] = {"InvalidStateError", ERR_BASE},
    [ERR_ERRORGROUP] = {"ErrorGroup", ERR_BASE},
    [ERR_QUEUEEMPTY] = {"QueueEmpty", ERR_BASE},
    [ERR_QUEUEFULL] = {"QueueFull", ERR_BASE},
    [ERR_QUEUESHUTDOWN] = {"QueueShutDown", ERR_BASE},
    [ERR_BROKENBARRIER] = {"BrokenBarrierError", ERR_BASE},
    [ERR_INCOMPLETEREAD] = {"IncompleteReadError", ERR_BASE},
    [ERR_LIMITOVERRUN] = {"LimitOverrunError", ERR_BASE},
    [ERR_OSERROR] = {"OSError", ERR_BASE},
    [ERR_HTTP] = {"HTTPError", ERR_BASE},
    [ERR_VIRTUALTIME] = {"VirtualTimeError", ERR_BASE},
    [ERR_BUDGET] = {"BudgetExceeded", ERR_BASE},
};

/* [-0, +1, m] the registry table of classes, indexed by class id + 1 */
static void
pushclasses(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
}

void
lasio_pusherrclass_(lua_State *L, int cls) {
    pushclasses(L);
    lua_rawgeti(L, -1, cls + 1);
    lua_remove(L, -2);
}

/* Is the value at idx an instance of the class table at cidx? */
static int
isinstance(lua_State *L, int idx, int cidx) {
    int found = 0;
    cidx = lua_absindex(L, cidx);
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    /* walk the parent chain: each class keeps its parent in _parent */
    for (int depth = 0; depth < 16 && lua_istable(L, -1); depth++) {
        if (lua_rawequal(L, -1, cidx)) {
            found = 1;
            break;
        }
        lua_getfield(L, -1, "_parent");
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return found;
}

int
lasio_iserror_(lua_State *L, int idx, int cls) {
    idx = lua_absindex(L, idx);
    lasio_pusherrclass_(L, cls);
    int r = isinstance(L, idx, -1);
    lua_pop(L, 1);
    return r;
}

/* Builds an instance of the class at cidx with the message at msgidx
 * (nil allowed) and a traceback from level: written at once for
 * Class(msg), or (lazy) captured for the errors the library makes, most
 * of which nobody reads (a CancelledError per cancelled task), and
 * written on the first read of `traceback` (instance_index). [-0, +1, m] */
static void
newinstance(lua_State *L, int cidx, int msgidx, int level, int lazy) {
    cidx = lua_absindex(L, cidx);
    msgidx = msgidx ? lua_absindex(L, msgidx) : 0;
    lua_createtable(L, 0, 3);
    if (msgidx && !lua_isnil(L, msgidx)) {
        lua_pushvalue(L, msgidx);
        lua_setfield(L, -2, "message");
    }
    if (lazy) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &captures_key);
        lua_pushvalue(L, -2);
        lasio_tb_capture_(L, L, level);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    } else {
        luaL_traceback(L, L, NULL, level);
        lua_setfield(L, -2, "traceback");
    }
    lua_pushvalue(L, cidx);
    lua_setmetatable(L, -2);
}

/* __index of the instances of a class (upvalue 1; upvalue 2: the
 * captures): the class's fields, and a captured traceback, written out
 * once and kept as the field. */
static int
instance_index(lua_State *L) {
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, 2), "traceback") == 0) {
        lua_pushvalue(L, 1);
        if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TTABLE) {
            lasio_tb_format_(L, -1);
            lua_pushvalue(L, 1);
            lua_pushnil(L);
            lua_rawset(L, lua_upvalueindex(2));
            lua_pushvalue(L, -1);
            lua_setfield(L, 1, "traceback"); /* rawset: no __newindex */
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

void
lasio_newerror_at_(lua_State *L, int cls, int msgidx) {
    msgidx = msgidx ? lua_absindex(L, msgidx) : 0;
    lasio_pusherrclass_(L, cls);
    newinstance(L, -1, msgidx, 1, 1);
    lua_remove(L, -2);
}

void
lasio_newerror_(lua_State *L, int cls, const char *msg, int level) {
    lasio_pusherrclass_(L, cls);
    if (msg)
        lua_pushstring(L, msg);
    else
        lua_pushnil(L);
    newinstance(L, -2, -1, level, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

int
lasio_raise_(lua_State *L, int cls, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const char *msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lasio_newerror_(L, cls, msg, 1);
    return lua_error(L);
}

/* Class(msg [, fields]): a new instance. fields are copied into it; for
 * ErrorGroup a sequence becomes its `errors`. */
static int
class_call(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2) && !lua_isstring(L, 2))
        luaL_typeerror(L, 2, "string or nil");
    lua_settop(L, 3);
    newinstance(L, 1, 2, 1, 0);
    if (lua_istable(L, 3)) {
        lua_rawgeti(L, 3, 1);
        int is_list = !lua_isnil(L, -1);
        lua_pop(L, 1);
        lasio_pusherrclass_(L, ERR_ERRORGROUP);
        int is_group = lua_rawequal(L, -1, 1);
        lua_pop(L, 1);
        if (is_group && (is_list || lua_rawlen(L, 3) == 0)) {
            lua_pushvalue(L, 3);
            lua_setfield(L, -2, "errors");
        } else {
            lua_pushnil(L);
            while (lua_next(L, 3)) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
            }
        }
    } else if (!lua_isnil(L, 3)) {
        return luaL_typeerror(L, 3, "table or nil");
    }
    if (lua_getfield(L, -1, "errors") == LUA_TNIL) {
        lasio_pusherrclass_(L, ERR_ERRORGROUP);
        if (lua_rawequal(L, -1, 1)) {
            lua_newtable(L);
            lua_setfield(L, -4, "errors");
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 1;
}

/* Class:is(v) */
static int
class_is(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushboolean(L, isinstance(L, 2, 1));
    return 1;
}

/* tostring(instance): "Name: message" or "Name". */
static int
instance_tostring(lua_State *L) {
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "_classname");
    const char *name = lua_tostring(L, -1);
    lua_getfield(L, 1, "message");
    if (lua_isnil(L, -1))
        lua_pushstring(L, name ? name : "Error");
    else
        lua_pushfstring(L, "%s: %s", name ? name : "Error",
                        luaL_tolstring(L, -1, NULL));
    return 1;
}

static int
class_tostring(lua_State *L) {
    lua_getfield(L, 1, "_classname");
    lua_pushfstring(L, "lasio.%s", lua_tostring(L, -1));
    return 1;
}

/* Makes the classes of this state, once. [-0, +0, m] */
static void
make_classes(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key) == LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 0); /* the captures, weak-keyed */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &captures_key);
    lua_createtable(L, ERR_NCLASSES, 0);
    /* the metatable of the classes themselves: Class(msg) constructs */
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, class_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, class_tostring);
    lua_setfield(L, -2, "__tostring");
    for (int i = 0; i < ERR_NCLASSES; i++) {
        lua_createtable(L, 0, 8);
        lua_pushstring(L, classdefs[i].name);
        lua_setfield(L, -2, "_classname");
        lua_pushfstring(L, "lasio.%s", classdefs[i].name);
        lua_setfield(L, -2, "__name");
        lua_pushvalue(L, -1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &captures_key);
        lua_pushcclosure(L, instance_index, 2);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, instance_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, class_is);
        lua_setfield(L, -2, "is");
        if (classdefs[i].parent >= 0) {
            lua_rawgeti(L, -3, classdefs[i].parent + 1);
            lua_setfield(L, -2, "_parent");
        }
        lua_pushvalue(L, -2);
        lua_setmetatable(L, -2);
        lua_rawseti(L, -3, i + 1);
    }
    lua_pop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
}

void
lasio_errors_open_(lua_State *L) {
    make_classes(L);
    for (int i = 0; i < ERR_NCLASSES; i++) {
        lasio_pusherrclass_(L, i);
        lua_setfield(L, -2, classdefs[i].name);
    }
}

/* {====== OSError ====== */

/* The symbolic name of an errno value ("ECONNREFUSED"). */
static const char *
errname(int err) {
    const char *name = strerrorname_np(err);
    return name ? name : "EUNKNOWN";
}

void
lasio_oserror_pushmsg_(lua_State *L, const char *op, int err, const char *msg) {
    luaL_checkstack(L, 4, NULL);
    lua_pushfstring(L, "%s: %s", op, msg);
    lasio_newerror_(L, ERR_OSERROR, lua_tostring(L, -1), 1);
    lua_remove(L, -2);
    lua_pushstring(L, errname(err));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, err);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
}

void
lasio_oserror_push_(lua_State *L, const char *op, int err) {
    lasio_oserror_pushmsg_(L, op, err, strerror(err));
}

int
lasio_oserror_raise_(lua_State *L, const char *op, int err) {
    lasio_oserror_push_(L, op, err);
    return lua_error(L);
}

int
lasio_argerror_(lua_State *L, int arg, const char *fname, const char *msg) {
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

void
lasio_checkargtype_(lua_State *L, int idx, int type, const char *fname) {
    int ok = lua_type(L, idx) == type ||
             (type == LUA_TNUMBER && lua_isnumber(L, idx)) ||
             (type == LUA_TSTRING && lua_isstring(L, idx));
    if (!ok)
        lasio_argerror_(L, idx - 1, fname,
                        lua_pushfstring(L, "%s expected, got %s",
                                        lua_typename(L, type),
                                        luaL_typename(L, idx)));
}

/* ====== } */
