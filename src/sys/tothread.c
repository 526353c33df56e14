/*
 * tothread.c: lasio.to_thread(fn, ...) (docs/API.md, Worker threads). The
 * function is dumped with lua_dump inside the process (never from user
 * input, so the command's refusal of binary chunks does not apply to it)
 * and loaded in a worker's own Lua state; arguments and results are copied
 * (copyval.c). A job owns its dumped function, arguments and results
 * (malloc). Worker states load user chunks as text only, as the lasio
 * command does.
 * Invariant: nothing of the caller's state is touched by a worker.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "sys/sys.h"

struct lua_job {
    struct lasio_job head;
    char *code; /* the dumped function */
    size_t code_len;
    char *args; /* copied arguments */
    size_t args_len;
    char *out; /* copied results, or {error, traceback} */
    size_t out_len;
    int ok;          /* results (1) or an error (0) */
    const char *oom; /* a static message when even that failed */
};

/* Worker states: load, loadfile and dofile take text chunks only (what
 * the lasio command enforces), and require's Lua searcher too. */
static const char prelude[] =
    "local load, loadfile, select = load, loadfile, select\n"
    "_G.load = function(chunk, name, mode, ...)\n"
    "  if select('#', ...) > 0 then return load(chunk, name, 't', ...) end\n"
    "  return load(chunk, name, 't')\n"
    "end\n"
    "_G.loadfile = function(name, mode, ...)\n"
    "  if select('#', ...) > 0 then return loadfile(name, 't', ...) end\n"
    "  return loadfile(name, 't')\n"
    "end\n"
    "_G.dofile = function(name)\n"
    "  local f = assert(loadfile(name, 't'))\n"
    "  return f()\n"
    "end\n"
    "package.searchers[2] = function(name)\n"
    "  local path, err = package.searchpath(name, package.path)\n"
    "  if not path then return err end\n"
    "  local f, e = loadfile(path, 't')\n"
    "  if not f then\n"
    "    error(string.format(\"error loading module '%s' from file "
    "'%s':\\n\\t%s\",\n"
    "      name, path, e), 2)\n"
    "  end\n"
    "  return f, path\n"
    "end\n";

static int
worker_init(lua_State *W) {
    luaL_openlibs(W);
    if (luaL_loadbufferx(W, prelude, sizeof prelude - 1, "=(lasio worker)",
                         "t") != LUA_OK)
        return lua_error(W);
    lua_call(W, 0, 0);
    return 0;
}

/* The message handler in workers: {error, traceback}. */
static int
worker_msgh(lua_State *W) {
    const char *msg = lua_tostring(W, 1);
    if (!msg)
        msg = lua_pushfstring(W, "(error object is a %s value)",
                              luaL_typename(W, 1));
    luaL_traceback(W, W, msg, 1);
    lua_createtable(W, 2, 0);
    lua_pushvalue(W, 1);
    lua_rawseti(W, -2, 1);
    lua_insert(W, -2);
    lua_rawseti(W, -2, 2);
    return 1;
}

/* Protected: copies the values 2 .. top into the box at 1. */
static int
copy_body(lua_State *W) {
    lasio_copy_write_(W, lua_touserdata(W, 1), 2, lua_gettop(W) - 1, "error");
    return 0;
}

/* In the worker, protected: runs the job and moves the copied outcome
 * into it. */
static int
run_body(lua_State *W) {
    struct lua_job *j = lua_touserdata(W, 1);
    lua_settop(W, 0);
    struct lasio_wbuf *b = lasio_wbuf_new_(W); /* 1 */
    lua_pushcfunction(W, worker_msgh);         /* 2 */
    if (luaL_loadbufferx(W, j->code, j->code_len, "=to_thread", "b") != LUA_OK)
        return lua_error(W);
    /* the function's only upvalue (checked by the caller) is _ENV */
    if (lua_getupvalue(W, 3, 1)) {
        lua_pop(W, 1);
        lua_pushglobaltable(W);
        lua_setupvalue(W, 3, 1);
    }
    int nargs = lasio_copy_read_(W, j->args, j->args_len);
    if (lua_pcall(W, nargs, LUA_MULTRET, 2) == LUA_OK) {
        lasio_copy_write_(W, b, 3, lua_gettop(W) - 2, "result");
        j->ok = 1;
    } else {
        if (lua_istable(W, 3)) { /* error, traceback */
            lua_rawgeti(W, 3, 1);
            lua_rawgeti(W, 3, 2);
        } else { /* the handler itself failed */
            lua_pushvalue(W, 3);
            lua_pushnil(W);
        }
        lua_pushcfunction(W, copy_body);
        lua_pushlightuserdata(W, b);
        lua_pushvalue(W, 4);
        lua_pushvalue(W, 5);
        if (lua_pcall(W, 3, 0, 0) != LUA_OK) {
            /* an error value that cannot be copied: its tostring */
            b->len = 0;
            luaL_tolstring(W, 4, NULL);
            lua_replace(W, 4);
            lasio_copy_write_(W, b, 4, 2, "error");
        }
        j->ok = 0;
    }
    j->out = b->p;
    j->out_len = b->len;
    b->p = NULL;
    return 0;
}

static void
lua_job_run(struct lasio_job *job, struct lasio_worker *w) {
    struct lua_job *j = (struct lua_job *)job;
    lua_State *W = lasio_worker_lua_(w, worker_init);
    if (!W) {
        j->oom = "lasio.to_thread: cannot create the worker's Lua state";
        return;
    }
    lua_settop(W, 0);
    lua_pushcfunction(W, run_body);
    lua_pushlightuserdata(W, j);
    if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
        /* outside the function: loading, copying results, memory */
        struct lasio_wbuf b = {NULL, 0, 0};
        size_t len;
        const char *msg = lua_tolstring(W, -1, &len);
        if (!msg)
            msg = "lasio.to_thread: error in the worker", len = strlen(msg);
        if (lasio_copy_message_(&b, msg, len) < 0) {
            free(b.p);
            j->oom = "not enough memory";
        } else {
            free(j->out);
            j->out = b.p;
            j->out_len = b.len;
        }
        j->ok = 0;
    }
    lua_settop(W, 0);
}

static int
lua_job_deliver(lua_State *L, struct lasio_job *job, int anchor) {
    struct lua_job *j = (struct lua_job *)job;
    (void)anchor;
    if (j->oom) {
        lua_pushnil(L);
        lua_pushstring(L, j->oom);
        return -1;
    }
    int base = lua_gettop(L);
    int n = lasio_copy_read_(L, j->out, j->out_len);
    if (j->ok)
        return n;
    /* error, traceback -> traceback, error */
    lua_settop(L, base + 2);
    lua_insert(L, -2);
    return -1;
}

static void
lua_job_free(struct lasio_job *job) {
    struct lua_job *j = (struct lua_job *)job;
    free(j->code);
    free(j->args);
    free(j->out);
    free(j);
}

static const struct lasio_jobtype lua_job_type = {lua_job_run, lua_job_deliver,
                                                  lua_job_free};

static int
dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
    (void)L;
    return lasio_wbuf_add_(ud, p, sz) < 0;
}

/* Checks that the function at fnidx can cross to another state (a Lua
 * function whose only upvalue, if any, is _ENV) and dumps it into a new
 * buffer, pushed. `fname` names the caller in errors. [-0, +1, e] */
static struct lasio_wbuf *
dump_checked(lua_State *L, int fnidx, const char *fname) {
    if (lua_type(L, fnidx) != LUA_TFUNCTION)
        luaL_error(L, "%s: fn: function expected, got %s", fname,
                   luaL_typename(L, fnidx));
    if (lua_iscfunction(L, fnidx))
        luaL_error(L, "%s: fn: a C function cannot run in a thread", fname);
    for (int i = 1;; i++) {
        const char *name = lua_getupvalue(L, fnidx, i);
        if (!name)
            break;
        lua_pop(L, 1);
        if (strcmp(name, "_ENV") != 0 || i > 1)
            luaL_error(L,
                       "%s: fn: the function must not use local variables "
                       "of its caller (upvalue '%s'); pass them as "
                       "arguments",
                       fname, *name ? name : "?");
    }
    struct lasio_wbuf *code = lasio_wbuf_new_(L);
    lua_pushvalue(L, fnidx);
    if (lua_dump(L, dump_writer, code, 0) != 0)
        luaL_error(L, "not enough memory");
    lua_pop(L, 1);
    return code;
}

/* Checks and dumps the function at fnidx and copies the nargs values after
 * it: pushes the box of the job, ready for loop's pool (loop may be among
 * the values). `fname` names the caller in errors, `fnarg` is fn's
 * argument number. [-0, +1, e] */
static struct lasio_job **
prepare(lua_State *L, struct lasio_loop *loop, int fnidx, int nargs,
        const char *fname, int fnarg) {
    struct lasio_wbuf *code = dump_checked(L, fnidx, fname);
    struct lasio_wbuf *args = lasio_wbuf_new_(L);
    lasio_copy_write_as_(L, args, fnidx + 1, nargs, fname, "argument",
                         fnarg + 1, loop);
    struct lasio_job **box = lasio_pool_box_(L);
    struct lua_job *j = calloc(1, sizeof *j);
    if (!j)
        luaL_error(L, "not enough memory");
    j->head.type = &lua_job_type;
    *box = &j->head;
    /* the job owns both buffers from here */
    j->code = code->p;
    j->code_len = code->len;
    code->p = NULL;
    j->args = args->p;
    j->args_len = args->len;
    args->p = NULL;
    return box;
}

/* lasio.to_thread(fn, ...) */
static int
module_to_thread(lua_State *L) {
    struct lasio_job **box = prepare(L, lasio_running_loop_(L), 1,
                                     lua_gettop(L) - 1, "lasio.to_thread", 1);
    return lasio_pool_submit_(L, box, 0, "lasio.to_thread");
}

/* loop:run_in_executor(executor, fn, ...) -> a Future of fn(...)'s results
 * (asyncio's): executor nil is the loop's worker pool, the only executor;
 * fn and its arguments cross as for to_thread, checked at once. */
static int
loop_run_in_executor(lua_State *L) {
    static const char what[] = "loop:run_in_executor";
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    if (!lua_isnil(L, 2))
        return luaL_error(L,
                          "%s: executor must be nil (the loop's worker "
                          "pool), got %s",
                          what, luaL_typename(L, 2));
    if (loop->closed)
        return luaL_error(L, "%s: the loop is closed", what);
    struct lasio_job **box = prepare(L, loop, 3, lua_gettop(L) - 3, what, 3);
    lasio_pool_start_(L, loop, box, 0, what);
    return 1;
}

/* {====== Posting to the loop from a worker ======
 * A loop passed to to_thread or run_in_executor arrives in the worker as
 * a handle whose one method is call_soon_threadsafe: the function and its
 * arguments cross as they do for to_thread, the other way, and run on the
 * loop through call_soon. */

#define LOOPPROXY_MT "lasio.LoopHandle"

void
lasio_posted_free_(struct lasio_posted *p) {
    free(p->code);
    free(p->args);
    free(p);
}

void
lasio_posted_schedule_(lua_State *L, struct lasio_loop *loop,
                       const struct lasio_posted *p) {
    if (loop->closed || loop->close_pending)
        return; /* closed for the script (loop.c): nothing new runs */
    int top = lua_gettop(L);
    lua_pushcfunction(L, lasio_call_soon_);
    lasio_pushloop_(L, loop);
    if (luaL_loadbufferx(L, p->code, p->code_len, "=call_soon_threadsafe",
                         "b") != LUA_OK)
        lua_error(L);
    /* its only upvalue (checked in the worker) is _ENV: our globals */
    if (lua_getupvalue(L, -1, 1)) {
        lua_pop(L, 1);
        lua_pushglobaltable(L);
        lua_setupvalue(L, -2, 1);
    }
    int nargs = lasio_copy_read_(L, p->args, p->args_len);
    lua_call(L, nargs + 2, 1);
    lua_settop(L, top);
}

/* handle:call_soon_threadsafe(fn, ...) in a worker */
static int
proxy_call_soon_threadsafe(lua_State *W) {
    static const char what[] = "loop:call_soon_threadsafe";
    luaL_checkudata(W, 1, LOOPPROXY_MT);
    int nargs = lua_gettop(W) - 2;
    struct lasio_pool *pool = lasio_worker_pool_(W);
    struct lasio_wbuf *code = dump_checked(W, 2, what);
    struct lasio_wbuf *args = lasio_wbuf_new_(W);
    lasio_copy_write_as_(W, args, 3, nargs, what, "argument", 3, NULL);
    struct lasio_posted *p = calloc(1, sizeof *p);
    if (!p)
        return luaL_error(W, "not enough memory");
    p->code = code->p;
    p->code_len = code->len;
    code->p = NULL;
    p->args = args->p;
    p->args_len = args->len;
    args->p = NULL;
    if (lasio_pool_post_(pool, p) < 0) {
        lasio_posted_free_(p);
        return luaL_error(W, "%s: the loop is closed", what);
    }
    return 0;
}

static int
proxy_tostring(lua_State *W) {
    lua_pushliteral(W, "lasio.Loop<handle in a worker thread>");
    return 1;
}

void
lasio_loopproxy_push_(lua_State *W) {
    if (!lasio_worker_pool_(W))
        luaL_error(W, "lasio.to_thread: a loop handle outside a worker");
    lua_newuserdatauv(W, 1, 0);
    if (luaL_newmetatable(W, LOOPPROXY_MT)) {
        lua_createtable(W, 0, 1);
        lua_pushcfunction(W, proxy_call_soon_threadsafe);
        lua_setfield(W, -2, "call_soon_threadsafe");
        lua_setfield(W, -2, "__index");
        lua_pushcfunction(W, proxy_tostring);
        lua_setfield(W, -2, "__tostring");
    }
    lua_setmetatable(W, -2);
}

/* ====== } */

/* loop:call_soon_threadsafe(fn, ...) on the loop's own thread: call_soon,
 * with errors that name this method. */
static int
loop_call_soon_threadsafe(lua_State *L) {
    if (!lua_isfunction(L, 2)) {
        if (luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
            return luaL_error(L,
                              "loop:call_soon_threadsafe: fn must be "
                              "callable, got %s",
                              luaL_typename(L, 2));
        lua_pop(L, 1);
    }
    return lasio_call_soon_(L);
}

static const luaL_Reg thread_loop_methods[] = {
    {"run_in_executor", loop_run_in_executor},
    /* on the loop's own thread it is call_soon (asyncio) */
    {"call_soon_threadsafe", loop_call_soon_threadsafe},
    {NULL, NULL}};

static const luaL_Reg thread_funcs[] = {{"to_thread", module_to_thread},
                                        {NULL, NULL}};

void
lasio_thread_open_(lua_State *L) {
    luaL_setfuncs(L, thread_funcs, 0);
    lasio_loop_methods_push_(L);
    luaL_setfuncs(L, thread_loop_methods, 0);
    lua_pop(L, 1);
}
