/*
 * module.c: the C module "lasio.core" (luaopen_lasio_core) with the
 * module-level functions of docs/API.md, Module functions that live in C (the
 * embedding API of lasio.h is in embed.c and pin.c).
 * SPDX-License-Identifier: MIT
 */
#include "core/core.h"
#include "embed/embed.h"
#include "net/net.h"
#include "db/db.h"
#include "http/http.h"
#include "db/redis.h"
#include "sys/sys.h"

/* The running loop, which new tasks start on (asyncio's create_task). */
static struct lasio_loop *
spawn_loop(lua_State *L, const char *what) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop)
        luaL_error(L,
                   "%s: no running loop (use lasio.run, loop:create_task "
                   "or the lasio command)",
                   what);
    return loop;
}

/* Starts fn(...) as a task; fname is the public name that was called (one
 * C function under two names would be named after either, by hash order). */
static int
spawn(lua_State *L, const char *fname) {
    if (lua_type(L, 1) != LUA_TFUNCTION)
        return lasio_argerror_(L, 1, fname,
                               lua_pushfstring(L, "function expected, got %s",
                                               luaL_typename(L, 1)));
    struct lasio_loop *loop = spawn_loop(L, fname);
    lasio_task_create_(L, loop, 1, lua_gettop(L) - 1, fname);
    return 1;
}

/* lasio.spawn(fn, ...) */
static int
module_spawn(lua_State *L) {
    return spawn(L, "lasio.spawn");
}

/* lasio.create_task(fn, ...), asyncio's name */
static int
module_create_task(lua_State *L) {
    return spawn(L, "lasio.create_task");
}

/* lasio.await(aw): a function is started as a task first. */
static int
module_await(lua_State *L) {
    if (lua_isfunction(L, 1)) {
        struct lasio_loop *loop = spawn_loop(L, "lasio.await");
        lasio_task_create_(L, loop, 1, lua_gettop(L) - 1, "lasio.await");
        lua_replace(L, 1);
    }
    lua_settop(L, 1);
    struct lasio_future *f = lasio_tofuture_(L, 1);
    if (!f)
        return luaL_typeerror(L, 1, "awaitable (Future, Task or function)");
    if (f->state != FUT_PENDING)
        return lasio_future_results_(L, 1, f);
    return lasio_await_(L, 1, "lasio.await");
}

static int
module_current_task(lua_State *L) {
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (!loop || !loop->current) {
        lua_pushnil(L);
        return 1;
    }
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    lua_rawgeti(L, -1, loop->current->fut.ref);
    return 1;
}

static int
module_all_tasks(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    lua_getiuservalue(L, -1, LOOP_UV_TASKS);
    lua_createtable(L, loop->ntasks, 0);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        if (t && t->fut.state == FUT_PENDING)
            lua_rawseti(L, -3, ++n);
        else
            lua_pop(L, 1);
    }
    return 1;
}

static int
module_new_future(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    if (loop->closed)
        return luaL_error(L, "lasio.Future: the loop is closed");
    lasio_future_push_(L, loop);
    return 1;
}

/* core.internal.set_interrupt_task(task or nil): which task SIGINT/SIGTERM
 * cancel under the lasio command (nil: the main task). */
static int
module_set_interrupt_task(lua_State *L) {
    struct lasio_loop *loop = lasio_get_loop_(L);
    if (!lua_isnil(L, 1))
        lasio_checkobj_(L, 1, &lasio_task_token_, LASIO_TASK_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, LOOP_UV_INTERRUPT);
    loop->exit_signal = 0; /* a handled Ctrl-C does not end the process */
    return 0;
}

/* lasio.isfuture(v): is v a Future or a Task (asyncio.isfuture)? */
static int
module_isfuture(lua_State *L) {
    lua_pushboolean(L, lasio_tofuture_(L, 1) != NULL);
    return 1;
}

static int
module_time(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    lua_pushnumber(L, loop ? lasio_loop_time_(loop) : lasio_time_());
    return 1;
}

/*
 * Public and internal names (docs/INTERNALS.md, "Public and internal names
 * of lasio.core"). lua/lasio/init.lua copies the top level of lasio.core
 * into the lasio table, all of it but `internal` and `coroutine` (the
 * functions it installs into the coroutine library): a name registered
 * at the top is public API. A function or value for the facade only (the files
 * of lua/lasio/, the REPL, the specs of internals) goes into the sub-table
 * core.internal instead: in internal_funcs below, or by an opener that
 * luaopen_lasio_core calls with core.internal at the top of the stack.
 * No list of internal names is kept anywhere else.
 */
static const luaL_Reg core_funcs[] = {
    /* public: the top level */
    {"sleep", lasio_sleep_},
    {"spawn", module_spawn},
    {"create_task", module_create_task},
    {"await", module_await},
    {"current_task", module_current_task},
    {"all_tasks", module_all_tasks},
    {"Future", module_new_future},
    {"isfuture", module_isfuture},
    {"time", module_time},
    {NULL, NULL}};

static const luaL_Reg internal_funcs[] = {
    /* core.internal: for the facade only */
    {"set_interrupt_task", module_set_interrupt_task},
    {"gather_results", lasio_gather_results_},
    {"report_errors_early", lasio_diag_report_early_},
    {NULL, NULL}};

/* The internal names of the parts that only modules loaded on first use
 * read (lasio.trace, lasio.http, lasio.pg, lasio.redis and what they
 * load): registered on the first read of a name core.internal lacks, so a
 * script that uses none of them never builds their tables and
 * metatables, nor collects them. */
static int
open_lazy_parts(lua_State *L) {
    lua_settop(L, 2);
    lua_pushnil(L);
    lua_setmetatable(L, 1); /* once */
    lua_pushvalue(L, 1);
    lasio_trace_open_(L);      /* trace_api: lasio.trace (trace.lua) */
    lasio_http_open_(L);       /* http_parser, http_trace, http_headers_mt */
    lasio_httpformat_open_(L); /* http_check_header, http_send(_chunk) */
    lasio_httpreq_open_(L);    /* http_request_methods */
    lasio_httpres_open_(L);    /* http_response_methods */
    lasio_httpconn_open_(L);   /* http_serve */
    lasio_websocket_open_(L);  /* websocket */
    lasio_pg_open_(L);         /* pg_connect, pg_conninfo_parse */
    lasio_redis_open_(L);      /* redis_connect, redis_errors, redis_null */
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* Gives core.internal (at the top) the metatable of open_lazy_parts. */
static void
open_on_demand(lua_State *L) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, open_lazy_parts);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

LASIO_API int luaopen_lasio_core(lua_State *L);

int
luaopen_lasio_core(lua_State *L) {
    /* every opener takes the table it fills at the top: the module table,
     * or core.internal for the parts only the facade uses */
    luaL_checkversion(L);
    /* sized for what the openers add (62 and 17, up to 33 with the parts
     * opened on demand): no rehash on the way */
    lua_createtable(L, 0, 64);
    luaL_setfuncs(L, core_funcs, 0);
    lua_createtable(L, 0, 33);
    luaL_setfuncs(L, internal_funcs, 0);
    lua_setfield(L, -2, "internal");
    lasio_errors_open_(L);
    lasio_future_open_(L);
    lasio_task_open_(L);
    lasio_awaitgraph_open_(L); /* call graphs, task:created_at */
    lasio_taskfactory_open_(L);
    lasio_budget_open_(L); /* set_limits, memory, task:set_budget */
    lasio_sandbox_open_(L);
    lasio_timer_open_(L);
    lasio_loop_open_(L);
    lasio_waitq_open_(L);
    lasio_queue_open_(L);
    lasio_coro_open_(L);
    lasio_fdwatch_open_(L);
    lasio_stream_open_(L);
    lasio_connect_open_(L);
    lasio_server_open_(L);
    lasio_udp_open_(L);
    lasio_dns_open_(L);
    lasio_tls_open_(L);
    lasio_signal_open_(L);
    lasio_process_open_(L);
    lasio_thread_open_(L);
    lasio_fs_open_(L);
    lua_getfield(L, -1, "internal");
    lasio_gather_open_(L); /* gather_ops */
    lasio_vclock_open_(L); /* vclock_*, ready_count */
    open_on_demand(L);     /* the parts of modules loaded on first use */
    lua_pop(L, 1);
    lua_pushliteral(L, LASIO_VERSION);
    lua_setfield(L, -2, "VERSION");
    return 1;
}
