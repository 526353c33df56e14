/*
 * fdwatch.c: raw file descriptors watched by a script (asyncio's
 * loop:add_reader / add_writer and their removals) and awaited by a task
 * (lasio.wait_readable / wait_writable). Owns one libevent event per
 * watcher or wait. Invariants: a loop has at most one reader and one
 * writer per fd (a new one replaces the old); an active watcher is
 * anchored in the loop, linked into its I/O list and counted once in
 * loop->nsources; its callback is queued at most once at a time.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "core/core.h"

#define FDWATCH_MT "lasio.FdWatcher"

/* anchors[&readers_key] = {[fd] = watcher}, the same for writers */
static const char readers_key = 0;
static const char writers_key = 0;

/* A watcher (add_reader / add_writer) or one task's wait. User values of
 * a watcher: the callback, then its nargs arguments. */
struct fdwatch {
    struct lasio_iolink link; /* first: released when the loop closes */
    struct lasio_loop *loop;  /* kept alive by the anchor or the waiting task */
    struct event *ev;
    struct lasio_task *task; /* the waiting task, or NULL */
    int fd, nargs;
    short what;            /* EV_READ or EV_WRITE */
    unsigned char linked;  /* in the loop's I/O list */
    unsigned char counted; /* counted in loop->nsources */
    unsigned char queued;  /* its callback is in the ready queue */
    unsigned char fired;   /* a wait's event came */
};

/* Frees the event and forgets the loop's counts; runs no Lua. */
static void
release(struct fdwatch *w) {
    if (w->ev) {
        event_free(w->ev);
        w->ev = NULL;
    }
    if (w->counted) {
        w->counted = 0;
        if (w->loop->nsources > 0)
            w->loop->nsources--;
    }
    lasio_io_unlink_(w->loop, &w->link, &w->linked);
}

static void
link_release(struct lasio_iolink *link) {
    struct fdwatch *w = (struct fdwatch *)link;
    w->linked = 0;
    w->counted = 0; /* the loop is closing: its counts go with it */
    if (w->ev) {
        event_free(w->ev);
        w->ev = NULL;
    }
}

static int
fdwatch_gc(lua_State *L) {
    struct fdwatch *w = lua_touserdata(L, 1);
    if (w->loop)
        release(w);
    return 0;
}

/* Reads the fd argument: a descriptor number or an object with fileno()
 * (a stream, a datagram socket). */
static int
checkfd(lua_State *L, int idx, const char *what) {
    int t = lua_type(L, idx);
    if (t == LUA_TTABLE || t == LUA_TUSERDATA) {
        lua_getfield(L, idx, "fileno");
        if (lua_isfunction(L, -1)) {
            lua_pushvalue(L, idx);
            lua_call(L, 1, 1);
            lua_replace(L, idx);
        } else {
            lua_pop(L, 1);
        }
    }
    int isint;
    lua_Integer fd = lua_tointegerx(L, idx, &isint);
    if (!isint || lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L,
                   "%s: fd must be an integer descriptor or have fileno(), "
                   "got %s",
                   what, luaL_typename(L, idx));
    if (fd < 0 || fd > INT_MAX)
        luaL_error(L, "%s: fd must be a descriptor >= 0, got %I", what, fd);
    return (int)fd;
}

/* Pushes a new, closed watcher of loop. [-0, +1, m] */
static struct fdwatch *
newwatch(lua_State *L, struct lasio_loop *loop, int nuv) {
    struct fdwatch *w = lua_newuserdatauv(L, sizeof *w, nuv);
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (luaL_newmetatable(L, FDWATCH_MT)) {
        lua_pushcfunction(L, fdwatch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    w->loop = loop; /* from here on __gc releases */
    return w;
}

/* Arms w's event on its fd: persist for a watcher, which counts as a
 * wake-up source (a waiting task counts itself). Raises an OSError naming
 * `what` when the fd cannot be watched (closed, a regular file). */
static void
arm(lua_State *L, struct fdwatch *w, event_callback_fn cb, short persist,
    const char *what) {
    /* checked here, so that libevent has nothing to log: epoll refuses
     * a closed descriptor and regular files (always ready) */
    struct stat st;
    if (fstat(w->fd, &st) < 0)
        lasio_oserror_raise_(L, what, errno);
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        lasio_oserror_raise_(L, what, EPERM);
    w->ev = event_new(w->loop->base, w->fd, w->what | persist, cb, w);
    if (!w->ev)
        luaL_error(L, "%s: not enough memory", what);
    errno = 0;
    if (event_add(w->ev, NULL) < 0) {
        int err = errno ? errno : EBADF;
        event_free(w->ev);
        w->ev = NULL;
        lasio_oserror_raise_(L, what, err);
    }
    w->link.release = link_release;
    lasio_iolink_add_(w->loop, &w->link);
    w->linked = 1;
    if (persist) {
        w->counted = 1;
        w->loop->nsources++;
    }
}

/* {====== Watchers: add_reader, add_writer ====== */

/* Pushes the loop's table of readers or writers, made on first use.
 * [-0, +1, m] */
static void
pushwatchers(lua_State *L, struct lasio_loop *loop, const char *key) {
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    if (lua_rawgetp(L, -1, key) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, -3, key);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* From the ready queue, with the watcher at 1: runs its callback, unless
 * it was removed since. An error reaches the loop's exception handler. */
static int
fire(lua_State *L) {
    struct fdwatch *w = lua_touserdata(L, 1);
    w->queued = 0;
    if (!w->ev)
        return 0;
    luaL_checkstack(L, w->nargs + 1, NULL);
    for (int i = 1; i <= w->nargs + 1; i++)
        lua_getiuservalue(L, 1, i);
    lua_call(L, w->nargs, 0);
    return 0;
}

/* Protected (light userdata: the watcher): queues fire(watcher). */
static int
queue_body(lua_State *L) {
    struct fdwatch *w = lua_touserdata(L, 1);
    pushwatchers(L, w->loop, w->what == EV_READ ? &readers_key : &writers_key);
    lua_rawgeti(L, -1, w->fd);
    if (lua_touserdata(L, -1) != w)
        return 0; /* replaced or removed meanwhile */
    lua_pushcfunction(L, fire);
    lasio_readyq_push_call_(L, w->loop, -1, -2);
    w->queued = 1;
    return 0;
}

static void
watch_cb(evutil_socket_t fd, short what, void *arg) {
    struct fdwatch *w = arg;
    (void)fd;
    (void)what;
    /* level-triggered: the fd stays ready until the callback reads, so
     * one queued call at a time is enough */
    if (w->queued || w->loop->closed)
        return;
    lasio_io_guard_(w->loop, queue_body, w);
}

/* Takes the watcher of fd out of the table at tidx: returns 1 if there
 * was one. */
static int
unwatch(lua_State *L, int tidx, int fd) {
    lua_rawgeti(L, tidx, fd);
    struct fdwatch *w = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!w)
        return 0;
    release(w);
    lua_pushnil(L);
    lua_rawseti(L, tidx, fd);
    return 1;
}

static int
add_watcher(lua_State *L, short what, const char *key, const char *name) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    int fd = checkfd(L, 2, name);
    lasio_vclock_refuse_(L, name);
    if (!lua_isfunction(L, 3)) {
        if (luaL_getmetafield(L, 3, "__call") == LUA_TNIL)
            return luaL_error(L, "%s: callback must be callable, got %s", name,
                              luaL_typename(L, 3));
        lua_pop(L, 1);
    }
    if (loop->closed)
        return luaL_error(L, "%s: the loop is closed", name);
    int nargs = lua_gettop(L) - 3;
    if (nargs > 250)
        return luaL_error(L, "%s: too many arguments (%d)", name, nargs);
    pushwatchers(L, loop, key);
    int tidx = lua_gettop(L);
    struct fdwatch *w = newwatch(L, loop, nargs + 1);
    int widx = lua_gettop(L);
    for (int i = 0; i <= nargs; i++) {
        lua_pushvalue(L, 3 + i);
        lua_setiuservalue(L, widx, i + 1);
    }
    w->fd = fd;
    w->what = what;
    w->nargs = nargs;
    unwatch(L, tidx, fd); /* one per fd: the new one replaces it */
    arm(L, w, watch_cb, EV_PERSIST, name);
    lua_pushvalue(L, widx);
    lua_rawseti(L, tidx, fd);
    return 0;
}

static int
remove_watcher(lua_State *L, const char *key, const char *name) {
    struct lasio_loop *loop = lasio_checkloop_(L, 1);
    int fd = checkfd(L, 2, name);
    if (loop->closed) { /* its watchers went with it */
        lua_pushboolean(L, 0);
        return 1;
    }
    pushwatchers(L, loop, key);
    lua_pushboolean(L, unwatch(L, lua_gettop(L), fd));
    return 1;
}

/* loop:add_reader(fd, callback, ...) */
static int
loop_add_reader(lua_State *L) {
    return add_watcher(L, EV_READ, &readers_key, "loop:add_reader");
}

/* loop:remove_reader(fd) -> true if fd had a reader */
static int
loop_remove_reader(lua_State *L) {
    return remove_watcher(L, &readers_key, "loop:remove_reader");
}

/* loop:add_writer(fd, callback, ...) */
static int
loop_add_writer(lua_State *L) {
    return add_watcher(L, EV_WRITE, &writers_key, "loop:add_writer");
}

/* loop:remove_writer(fd) -> true if fd had a writer */
static int
loop_remove_writer(lua_State *L) {
    return remove_watcher(L, &writers_key, "loop:remove_writer");
}

/* ====== } */

/* {====== Waits: wait_readable, wait_writable ====== */

static void
wait_cb(evutil_socket_t fd, short what, void *arg) {
    struct fdwatch *w = arg;
    (void)fd;
    (void)what;
    w->fired = 1;
    if (w->task)
        lasio_io_wake_cb_(w->loop, w->task);
}

/* The continuation, with the wait's object at 1. */
static int
wait_k(lua_State *L, int status, lua_KContext ctx) {
    struct fdwatch *w = lua_touserdata(L, 1);
    (void)status;
    (void)ctx;
    w->task = NULL;
    int cancelled = lasio_io_resumed_(L, w->loop, 1);
    release(w); /* also when the loop closed under the wait */
    if (cancelled)
        return lua_error(L);
    lua_pushboolean(L, w->fired);
    return 1;
}

static int
wait_fd(lua_State *L, short what, const char *name) {
    struct lasio_loop *loop;
    int fd = checkfd(L, 1, name);
    lasio_vclock_refuse_(L, name);
    struct lasio_task *t = lasio_check_await_(L, &loop, name);
    lua_settop(L, 0);
    struct fdwatch *w = newwatch(L, loop, 0);
    w->fd = fd;
    w->what = what;
    arm(L, w, wait_cb, 0, name);
    lasio_io_wait_(L, t, 1, 0);
    w->task = t;
    return lasio_io_yield_(L, 0, wait_k);
}

/* lasio.wait_readable(fd) -> true once fd can be read without blocking */
static int
module_wait_readable(lua_State *L) {
    return wait_fd(L, EV_READ, "lasio.wait_readable");
}

/* lasio.wait_writable(fd) -> true once fd can be written without blocking */
static int
module_wait_writable(lua_State *L) {
    return wait_fd(L, EV_WRITE, "lasio.wait_writable");
}

/* ====== } */

static const luaL_Reg fdwatch_loop_methods[] = {
    {"add_reader", loop_add_reader},
    {"remove_reader", loop_remove_reader},
    {"add_writer", loop_add_writer},
    {"remove_writer", loop_remove_writer},
    {NULL, NULL}};

static const luaL_Reg fdwatch_funcs[] = {
    {"wait_readable", module_wait_readable},
    {"wait_writable", module_wait_writable},
    {NULL, NULL}};

void
lasio_fdwatch_open_(lua_State *L) {
    luaL_setfuncs(L, fdwatch_funcs, 0);
    lasio_loop_methods_push_(L);
    luaL_setfuncs(L, fdwatch_loop_methods, 0);
    lua_pop(L, 1);
}
