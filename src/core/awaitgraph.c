/*
 * awaitgraph.c: who awaits whom, where each task was created, and what
 * each waits on (docs/SEEING.md, "Await chains and call graphs").
 *
 * The hot paths stay cheap: a task already records the Future it waits on
 * (TASK_UV_WAITER) and its wait kind, so "who awaits this Future" is
 * derived from the waiters when a graph is captured. Only where a
 * combinator sits between a task and what it waits for (gather, wait,
 * shield, task groups) is a link stored: the combinator's Future, or the
 * task itself for a task group, holds in EXTRA_AWAITS a table whose keys
 * or values are the awaited Futures, or tables of them (asyncio's
 * future_add_to_awaited_by, kept per combinator instead of per child).
 *
 * A creation site is the chunk source pointer and line of the first frame
 * outside lasio's facade, noted at spawn as the id of that pair in the
 * state's table of sites; the source string is anchored for the state's
 * life (a registry table keeps one function of each chunk that created a
 * task), so the pointer stays valid and is formatted only when asked.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "core/core.h"

/* {====== Creation sites ====== */

/* registry: {[source pointer] = a function of that chunk} */
static const char sites_key = 0;

/* Is the chunk one of lasio's facade files (lasio/<name>.lua, compiled in
 * as "@lasio/x.lua" or loaded from .../lasio/x.lua)? */
static int
is_facade(const char *src) {
    if (src[0] != '@')
        return 0;
    const char *slash = strrchr(src, '/');
    if (!slash || slash - src < 6 || memcmp(slash - 5, "lasio", 5) != 0)
        return 0;
    return slash - 5 == src + 1 || slash[-6] == '/';
}

/* A frame whose chunk was not seen yet: anchors its source and says
 * whether it is the facade's. [-0, +0, m] */
static int
classify(lua_State *L, struct lasio_loop *loop, lua_Debug *ar) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sites_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &sites_key);
    }
    if (lua_rawgetp(L, -1, ar->source) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getinfo(L, "f", ar);
        lua_rawsetp(L, -2, ar->source);
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    int facade = is_facade(ar->source);
    if (facade)
        loop->site_facade_src = ar->source;
    else
        loop->site_user_src = ar->source;
    return facade;
}

/* The state's creation sites: every distinct (chunk source, line) pair
 * that created a task gets an id, so a task keeps 4 bytes instead of a
 * pointer and a line. The struct and its arrays are userdata anchored in
 * the registry (no __gc: they stay valid while finalizers run at the
 * state's close, when reports may still name sites). */
struct site {
    const char *src;
    int line;
};
struct lasio_sites {
    struct site *e;       /* e[1..n]; e[0] unused */
    uint32_t *index;      /* open addressing: ids, 0 empty */
    uint32_t n, cap;      /* cap: room in e, counting e[0] */
    uint32_t icap;        /* a power of 2, at least twice n */
    const char *last_src; /* the pair asked for last and its id */
    int last_line;
    uint32_t last_id;
};
enum { SITES_UV_ENTRIES = 1, SITES_UV_INDEX, SITES_NUV = SITES_UV_INDEX };

static const char sitetab_key = 0;

static uint32_t
site_hash(const char *src, int line) {
    uint64_t h = ((uint64_t)(uintptr_t)src >> 3) * 0x9e3779b97f4a7c15u;
    return (uint32_t)((h >> 32) ^ (uint32_t)line * 0x85ebca6bu);
}

/* The state's table, made on first use and noted in the loop. [-0,+0,m] */
static struct lasio_sites *
sites_of(lua_State *L, struct lasio_loop *loop) {
    if (loop->sites)
        return loop->sites;
    struct lasio_sites *st;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sitetab_key) == LUA_TUSERDATA) {
        st = lua_touserdata(L, -1);
    } else {
        lua_pop(L, 1);
        st = lua_newuserdatauv(L, sizeof *st, SITES_NUV);
        memset(st, 0, sizeof *st);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &sitetab_key);
    }
    lua_pop(L, 1);
    loop->sites = st;
    return st;
}

/* A new userdata of size bytes as user value uv of the table at the
 * top, replacing the one before. [-0, +0, m] */
static void *
sites_array(lua_State *L, int uv, size_t size) {
    void *p = lua_newuserdatauv(L, size, 0);
    memset(p, 0, size);
    lua_setiuservalue(L, -2, uv);
    return p;
}

/* Grows the entries (and the index, rebuilt) so one more fits. */
static void
sites_grow(lua_State *L, struct lasio_sites *st) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sitetab_key);
    if (st->n + 1 >= st->cap) {
        uint32_t cap = st->cap ? 2 * st->cap : 64;
        struct site *e = sites_array(L, SITES_UV_ENTRIES, cap * sizeof *e);
        if (st->n)
            memcpy(e, st->e, (st->n + 1) * sizeof *e);
        st->e = e;
        st->cap = cap;
    }
    if (2 * (st->n + 1) > st->icap) {
        uint32_t icap = st->icap ? 2 * st->icap : 128;
        uint32_t *index = sites_array(L, SITES_UV_INDEX, icap * sizeof *index);
        for (uint32_t id = 1; id <= st->n; id++) {
            uint32_t i = site_hash(st->e[id].src, st->e[id].line);
            while (index[i & (icap - 1)])
                i++;
            index[i & (icap - 1)] = id;
        }
        st->index = index;
        st->icap = icap;
    }
    lua_pop(L, 1);
}

/* The id of the pair (src, line), a new one the first time. [-0,+0,m] */
static uint32_t
site_id(lua_State *L, struct lasio_loop *loop, const char *src, int line) {
    struct lasio_sites *st = sites_of(L, loop);
    if (src == st->last_src && line == st->last_line)
        return st->last_id;
    if (2 * (st->n + 1) > st->icap || st->n + 1 >= st->cap)
        sites_grow(L, st);
    uint32_t i = site_hash(src, line), id;
    while ((id = st->index[i & (st->icap - 1)]) != 0) {
        if (st->e[id].src == src && st->e[id].line == line)
            goto found;
        i++;
    }
    id = ++st->n;
    st->e[id].src = src;
    st->e[id].line = line;
    st->index[i & (st->icap - 1)] = id;
found:
    st->last_src = src;
    st->last_line = line;
    st->last_id = id;
    return id;
}

void
lasio_task_site_record_(lua_State *L, struct lasio_loop *loop,
                        struct lasio_task *t) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar); /* the line: one lookup, usually hit */
        if (ar.source == loop->site_user_src)
            goto found;
        if (ar.what[0] == 'C' || ar.source == loop->site_facade_src)
            continue;
        if (!classify(L, loop, &ar))
            goto found;
    }
    /* no user frame on this thread (a task the facade starts from its
     * own task): the parent's site */
    if (loop->current)
        t->site = loop->current->site;
    return;
found:
    t->site = site_id(L, loop, ar.source, ar.currentline);
}

/* Pushes a chunk source as tracebacks show it (luaO_chunkid's rules,
 * without the length cut for file names). [-0, +1, m] */
static void
push_chunkid(lua_State *L, const char *src) {
    if (*src == '=' || *src == '@') {
        lua_pushstring(L, src + 1);
        return;
    }
    const char *nl = strchr(src, '\n');
    size_t len = nl ? (size_t)(nl - src) : strlen(src);
    if (len > 40)
        len = 40;
    lua_pushfstring(L, "[string \"%s%s\"]", lua_pushlstring(L, src, len),
                    len < strlen(src) ? "..." : "");
    lua_remove(L, -2);
}

int
lasio_task_pushsite_(lua_State *L, struct lasio_task *t) {
    struct lasio_sites *st = t->fut.loop->sites;
    if (!t->site || !st) {
        lua_pushnil(L);
        return 0;
    }
    push_chunkid(L, st->e[t->site].src);
    lua_pushfstring(L, "%s:%d", lua_tostring(L, -1), st->e[t->site].line);
    lua_remove(L, -2);
    return 1;
}

int
lasio_task_pushparent_(lua_State *L, struct lasio_task *t) {
    if (t->parent_id == 0) {
        lua_pushnil(L);
        return 0;
    }
    /* no link is kept (spawn stays cheap, and a chain of tasks that each
     * start the next holds nothing): a pending parent is in the tasks
     * table */
    lasio_pushtasks_(L, t->fut.loop);
    int tasks = lua_gettop(L);
    lua_pushnil(L);
    while (lua_istable(L, tasks) && lua_next(L, tasks)) {
        struct lasio_task *p = lasio_totask_(L, -1);
        if (p && p->id == t->parent_id && p->fut.loop == t->fut.loop &&
            p->fut.state == FUT_PENDING) {
            lua_replace(L, tasks);
            lua_settop(L, tasks);
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, tasks - 1);
    lua_pushfstring(L, "Task #%d", t->parent_id);
    return 2;
}

/* ====== } */

/* {====== What a task waits on ====== */

/* Appends " tcp 127.0.0.1:80" (the peer, else the local address) for a
 * socket fd. [-0, +1, m] */
static void
push_sockdesc(lua_State *L, int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0) {
        lua_pushliteral(L, "");
        return;
    }
    const char *proto = type == SOCK_DGRAM ? "udp" : "tcp";
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
            lua_pushliteral(L, "");
            return;
        }
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        lua_pushfstring(L, " %s %s:%d", proto, host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        lua_pushfstring(L, " %s [%s]:%d", proto, host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
        if (n > 0 && a->sun_path[0] == '\0')
            lua_pushfstring(L, " unix @%s",
                            lua_pushlstring(L, a->sun_path + 1, n - 1));
        else
            lua_pushfstring(
                L, " unix %s",
                n > 0 ? lua_pushlstring(L, a->sun_path, strnlen(a->sun_path, n))
                      : lua_pushliteral(L, "(unnamed)"));
        lua_remove(L, -2);
    } else {
        lua_pushliteral(L, "");
    }
}

/* Pushes "Queue.get" for "lasio.Queue:get". [-0, +1, m] */
static void
push_what(lua_State *L, const char *what) {
    if (strncmp(what, "lasio.", 6) == 0)
        what += 6;
    luaL_gsub(L, what, ":", ".");
}

int
lasio_task_pushwait_(lua_State *L, int idx, struct lasio_task *t) {
    idx = lua_absindex(L, idx);
    struct lasio_loop *loop = t->fut.loop;
    if (t->fut.state != FUT_PENDING || t->scheduled || t == loop->current) {
        lua_pushnil(L);
        return 0;
    }
    switch (t->waiting) {
    case WAIT_FUTURE: {
        int top = lua_gettop(L);
        if (t->has_waiter) /* else the slot may hold an old outcome */
            lua_getiuservalue(L, idx, TASK_UV_WAITER);
        else
            lua_pushnil(L);
        struct lasio_future *w = lasio_tofuture_(L, -1);
        if (w && w->kind == KIND_TASK) {
            lasio_task_pushname_(L, -1, (struct lasio_task *)w);
            lua_pushfstring(L, "Task #%d %s", ((struct lasio_task *)w)->id,
                            lua_tostring(L, -1));
            lua_replace(L, -3);
            lua_pop(L, 1);
        } else if (w && lasio_extra_get_(L, -1, EXTRA_NAME) == LUA_TSTRING) {
            push_what(L, lua_tostring(L, -1));
            lua_replace(L, top + 1);
            lua_settop(L, top + 1);
        } else {
            lua_settop(L, top);
            lua_pushliteral(L, "Future");
        }
        return 1;
    }
    case WAIT_QUEUE:
        push_what(L, t->wait_what ? t->wait_what : "wait");
        return 1;
    case WAIT_SLEEP:
    case WAIT_FOREVER:
        if (t->wait_what) { /* an I/O wait */
            if (t->wait_fd >= 0) {
                push_sockdesc(L, t->wait_fd);
                lua_pushfstring(L, "%s fd %d%s", t->wait_what, t->wait_fd,
                                lua_tostring(L, -1));
                lua_remove(L, -2);
            } else {
                lua_pushstring(L, t->wait_what);
            }
            return 1;
        }
        if (t->waiting == WAIT_FOREVER) {
            lua_pushliteral(L, "sleep inf");
        } else {
            double when = t->heap_pos >= 0
                              ? (double)loop->th[t->heap_pos].when / 1e9
                              : t->wait_since;
            char buf[32];
            snprintf(buf, sizeof buf, "sleep %.6g", when - t->wait_since);
            lua_pushstring(L, buf);
        }
        return 1;
    default:
        lua_pushnil(L);
        return 0;
    }
}

/* ====== } */

/* {====== Awaited-by links ====== */

/* Adds task at tidx to index[fut at fidx] (a list, with the task also as
 * a key so it is added once). [-0, +0, m] */
static void
index_add(lua_State *L, int index, int fidx, int tidx) {
    if (lua_rawequal(L, fidx, tidx))
        return;
    lua_pushvalue(L, fidx);
    if (lua_rawget(L, index) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, fidx);
        lua_pushvalue(L, -2);
        lua_rawset(L, index);
    }
    lua_pushvalue(L, tidx);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushvalue(L, tidx);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lua_pushvalue(L, tidx);
        lua_rawseti(L, -3, (lua_Integer)lua_rawlen(L, -3) + 1);
    }
    lua_pop(L, 2);
}

/* Adds the task at tidx as awaiting every Future that is a key or a
 * value of the table at lidx, or of a table found there (one level).
 * [-0, +0, m] */
static void
index_awaits(lua_State *L, int index, int lidx, int tidx, int nested) {
    lidx = lua_absindex(L, lidx);
    luaL_checkstack(L, 6, NULL);
    lua_pushnil(L);
    while (lua_next(L, lidx)) {
        for (int i = -2; i <= -1; i++) {
            int at = lua_absindex(L, i);
            if (lasio_tofuture_(L, at))
                index_add(L, index, at, tidx);
            else if (!nested && lua_type(L, at) == LUA_TTABLE)
                index_awaits(L, index, at, tidx, 1);
        }
        lua_pop(L, 1);
    }
}

void
lasio_awaitgraph_index_(lua_State *L, struct lasio_loop *loop) {
    lua_newtable(L);
    int index = lua_gettop(L);
    lasio_pushtasks_(L, loop); /* nil once the loop is closed */
    int tasks = index + 1;
    lua_pushnil(L);
    while (lua_istable(L, tasks) && lua_next(L, tasks)) {
        int tidx = lua_gettop(L);
        struct lasio_task *t = lasio_totask_(L, tidx);
        if (t && t->fut.state == FUT_PENDING) {
            if (t->waiting == WAIT_FUTURE && t->has_waiter &&
                lua_getiuservalue(L, tidx, TASK_UV_WAITER) != LUA_TNIL) {
                int w = lua_gettop(L);
                index_add(L, index, w, tidx);
                if (lasio_extra_get_(L, w, EXTRA_AWAITS) == LUA_TTABLE)
                    index_awaits(L, index, -1, tidx, 0);
            }
            if (lasio_extra_get_(L, tidx, EXTRA_AWAITS) == LUA_TTABLE)
                index_awaits(L, index, -1, tidx, 0);
        }
        lua_settop(L, tidx - 1);
    }
    lua_settop(L, index);
}

/* core.internal.await_link(obj, x [, what]): obj (a Future or a Task)
 * awaits x, a Future or a table of them (nil: nothing more); what names
 * a Future's wait ("gather 3", "lasio.Semaphore:acquire"). */
static int
await_link(lua_State *L) {
    lasio_checkfuture_(L, 1);
    if (!lua_isnil(L, 2)) {
        if (lasio_extra_get_(L, 1, EXTRA_AWAITS) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lasio_extra_set_(L, 1, EXTRA_AWAITS);
        }
        lua_pushvalue(L, 2);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    if (lua_type(L, 3) == LUA_TSTRING) {
        struct lasio_future *f = lua_touserdata(L, 1);
        if (f->kind != KIND_TASK) {
            lua_pushvalue(L, 3);
            lasio_extra_set_(L, 1, EXTRA_NAME);
        }
    }
    return 0;
}

/* core.internal.await_unlink(obj, x) */
static int
await_unlink(lua_State *L) {
    lasio_checkfuture_(L, 1);
    if (lasio_extra_get_(L, 1, EXTRA_AWAITS) == LUA_TTABLE) {
        lua_pushvalue(L, 2);
        lua_pushnil(L);
        lua_rawset(L, -3);
    }
    return 0;
}

void
lasio_await_link_(lua_State *L, int fidx, int xidx, const char *what) {
    fidx = lua_absindex(L, fidx);
    xidx = lua_absindex(L, xidx);
    lua_pushcfunction(L, await_link);
    lua_pushvalue(L, fidx);
    lua_pushvalue(L, xidx);
    lua_pushstring(L, what);
    lua_call(L, 3, 0);
}

/* ====== } */

/* {====== Call graphs ====== */

struct capture {
    int index; /* the awaited-by index */
    int path;  /* set of the nodes on the current path (cycles) */
    int limit, has_limit;
};

/* Pushes the frame at ar as {file=, line=, name=}. [-0, +1, m] */
static void
push_frame(lua_State *L, lua_State *co, lua_Debug *ar) {
    lua_getinfo(co, "Sln", ar);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, ar->short_src);
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, ar->currentline);
    lua_setfield(L, -2, "line");
    if (ar->name)
        lua_pushstring(L, ar->name);
    else if (ar->what[0] == 'm')
        lua_pushliteral(L, "main chunk");
    else
        lua_pushfstring(L, "function <%s:%d>", ar->short_src, ar->linedefined);
    lua_setfield(L, -2, "name");
}

/* Pushes the call stack of thread co from level `from`: the Lua frames
 * outside lasio's facade, innermost first, cut as limit says.
 * [-0, +1, m] */
static void
push_stack(lua_State *L, lua_State *co, int from, struct capture *c) {
    lua_Debug ar;
    lua_newtable(L);
    int n = 0;
    for (int level = from; co && lua_getstack(co, level, &ar); level++) {
        lua_getinfo(co, "S", &ar);
        if (ar.what[0] == 'C' || is_facade(ar.source))
            continue;
        push_frame(L, co, &ar);
        lua_rawseti(L, -2, ++n);
    }
    if (!c->has_limit)
        return;
    int keep = c->limit < 0 ? -c->limit : c->limit;
    if (keep >= n)
        return;
    if (c->limit < 0) { /* the outermost |limit| entries */
        for (int i = 1; i <= keep; i++) {
            lua_rawgeti(L, -1, n - keep + i);
            lua_rawseti(L, -2, i);
        }
    }
    for (int i = keep + 1; i <= n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
}

/* The thread of a suspended task, or NULL. */
static lua_State *
task_thread(struct lasio_task *t) {
    if (t->fut.state != FUT_PENDING || !t->started || t == t->fut.loop->current)
        return NULL;
    return t->co;
}

static void build(lua_State *L, int fidx, lua_State *co, int from,
                  struct capture *c);

/* Pushes the node of the Future at fidx. [-0, +1, m] */
static void
build(lua_State *L, int fidx, lua_State *co, int from, struct capture *c) {
    fidx = lua_absindex(L, fidx);
    luaL_checkstack(L, 8, "call graph too deep");
    lua_createtable(L, 0, 4);
    int node = lua_gettop(L);
    lua_pushvalue(L, fidx);
    lua_setfield(L, node, "future");
    struct lasio_future *f = lua_touserdata(L, fidx);
    if (!co && f->kind == KIND_TASK)
        co = task_thread((struct lasio_task *)f);
    push_stack(L, co, from, c);
    lua_setfield(L, node, "call_stack");
    lua_newtable(L);
    int by = lua_gettop(L);
    lua_pushvalue(L, fidx);
    if (lua_rawget(L, c->path) != LUA_TNIL) { /* back on the path */
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_setfield(L, node, "cycle");
        lua_setfield(L, node, "awaited_by");
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, fidx);
    lua_pushboolean(L, 1);
    lua_rawset(L, c->path);
    lua_pushvalue(L, fidx);
    if (lua_rawget(L, c->index) == LUA_TTABLE) {
        int list = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, list);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, list, i);
            build(L, -1, NULL, 0, c);
            lua_rawseti(L, by, i);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_pushvalue(L, fidx);
    lua_pushnil(L);
    lua_rawset(L, c->path);
    lua_setfield(L, node, "awaited_by");
}

void
lasio_callgraph_capture_(lua_State *L, int fidx, int index, lua_State *from_L,
                         int depth, int limit, int has_limit) {
    fidx = lua_absindex(L, fidx);
    int base = lua_gettop(L);
    struct lasio_future *f = lua_touserdata(L, fidx);
    struct capture c = {0, 0, limit, has_limit};
    if (index) {
        c.index = lua_absindex(L, index);
    } else {
        lasio_awaitgraph_index_(L, f->loop);
        c.index = lua_gettop(L);
    }
    lua_newtable(L);
    c.path = lua_gettop(L);
    build(L, fidx, from_L, from_L ? depth : 0, &c);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
}

/* Appends the string on top, indented by level, to the list at out.
 * [-1, +0, m] */
static void
add_line(lua_State *L, int out, int level) {
    static const char pad[] = "                                        ";
    int n = level * 4;
    if (n > (int)sizeof pad - 1)
        n = (int)sizeof pad - 1;
    lua_pushlstring(L, pad, (size_t)n);
    lua_insert(L, -2);
    lua_concat(L, 2);
    lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
}

/* Pushes "Task(name='x', id=3)" or "Future(id=0x...)" for the Future at
 * idx. [-0, +1, m] */
static void
push_label(lua_State *L, int idx) {
    struct lasio_future *f = lasio_tofuture_(L, idx);
    if (f && f->kind == KIND_TASK) {
        lasio_task_pushname_(L, idx, (struct lasio_task *)f);
        lua_pushfstring(L, "Task(name='%s', id=%d)", lua_tostring(L, -1),
                        ((struct lasio_task *)f)->id);
        lua_remove(L, -2);
    } else {
        lua_pushfstring(L, "Future(id=%p)", (void *)f);
    }
}

/* Renders the node at nidx into the list of lines at out (asyncio's
 * print_call_graph layout). [-0, +0, m] */
static void
render(lua_State *L, int out, int nidx, int level) {
    nidx = lua_absindex(L, nidx);
    luaL_checkstack(L, 8, "call graph too deep");
    int top = lua_gettop(L);
    lua_getfield(L, nidx, "future");
    lua_pushliteral(L, "* ");
    push_label(L, top + 1);
    lua_getfield(L, nidx, "cycle");
    if (lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, " (await cycle)");
    } else {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    lua_concat(L, 3);
    add_line(L, out, level);
    if (lua_getfield(L, nidx, "call_stack") == LUA_TTABLE &&
        lua_rawlen(L, -1) > 0) {
        int st = lua_gettop(L);
        lua_pushliteral(L, "  + Call stack:");
        add_line(L, out, level);
        for (lua_Integer i = 1; lua_rawgeti(L, st, i) == LUA_TTABLE; i++) {
            lua_getfield(L, -1, "file");
            lua_getfield(L, -2, "line");
            lua_getfield(L, -3, "name");
            lua_pushfstring(L, "  |   File '%s', line %d, in %s",
                            lua_tostring(L, -3), (int)lua_tointeger(L, -2),
                            lua_tostring(L, -1));
            add_line(L, out, level);
            lua_pop(L, 4);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (lua_getfield(L, nidx, "awaited_by") == LUA_TTABLE &&
        lua_rawlen(L, -1) > 0) {
        int by = lua_gettop(L);
        lua_pushliteral(L, "  + Awaited by:");
        add_line(L, out, level);
        for (lua_Integer i = 1; lua_rawgeti(L, by, i) == LUA_TTABLE; i++) {
            render(L, out, -1, level + 1);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
}

void
lasio_callgraph_format_(lua_State *L, int nidx) {
    nidx = lua_absindex(L, nidx);
    lua_newtable(L);
    int out = lua_gettop(L);
    render(L, out, nidx, 0);
    luaL_Buffer b;
    lua_Integer n = (lua_Integer)lua_rawlen(L, out);
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, out, i);
        luaL_addvalue(&b);
        if (i < n)
            luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    lua_remove(L, out);
}

/* Adds the awaited-by lines of the node at nidx to the list at out:
 * each awaiting task with its await site (the top of its call stack).
 * [-0, +0, m] */
static void
report_chain(lua_State *L, int out, int nidx, int level) {
    nidx = lua_absindex(L, nidx);
    luaL_checkstack(L, 8, "await chain too deep");
    int top = lua_gettop(L);
    if (lua_getfield(L, nidx, "awaited_by") != LUA_TTABLE)
        return (void)lua_settop(L, top);
    int by = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, by, i) == LUA_TTABLE; i++) {
        int node = lua_gettop(L);
        lua_getfield(L, node, "future");
        lua_pushliteral(L, "awaited by ");
        push_label(L, node + 1);
        if (lua_getfield(L, node, "call_stack") == LUA_TTABLE &&
            lua_rawgeti(L, -1, 1) == LUA_TTABLE) {
            lua_getfield(L, -1, "file");
            lua_getfield(L, -2, "line");
            lua_getfield(L, -3, "name");
            lua_pushfstring(L, " at %s:%d, in %s", lua_tostring(L, -3),
                            (int)lua_tointeger(L, -2), lua_tostring(L, -1));
            lua_replace(L, -6);
            lua_pop(L, 4);
        } else {
            lua_pop(L, 2);
            lua_pushliteral(L, "");
        }
        lua_getfield(L, node, "cycle");
        int cycle = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_pushstring(L, cycle ? " (await cycle)" : "");
        lua_concat(L, 4);
        add_line(L, out, level);
        if (!cycle)
            report_chain(L, out, node, level + 1);
        lua_settop(L, by);
    }
    lua_settop(L, top);
}

void
lasio_task_pushreport_(lua_State *L, int idx, struct lasio_task *t, int index) {
    idx = lua_absindex(L, idx);
    index = index ? lua_absindex(L, index) : 0;
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_pushliteral(L, "created at ");
    int has_site = lasio_task_pushsite_(L, t);
    if (!has_site) {
        lua_pop(L, 1);
        lua_pushliteral(L, "(no Lua caller)");
    }
    int p = lasio_task_pushparent_(L, t);
    if (p == 1) {
        struct lasio_task *pt = lua_touserdata(L, -1);
        lasio_task_pushname_(L, -1, pt);
        lua_pushfstring(L, " by Task #%d '%s'", pt->id, lua_tostring(L, -1));
        lua_replace(L, -3);
        lua_pop(L, 1);
    } else if (p == 2) {
        lua_pushfstring(L, " by %s", lua_tostring(L, -1));
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    lua_concat(L, 3);
    if (has_site || p) /* the main task, made by the runtime: nothing */
        add_line(L, out, 0);
    else
        lua_pop(L, 1);
    if (t->fut.state == FUT_PENDING && t->fut.loop && !t->fut.loop->closed) {
        lasio_callgraph_capture_(L, idx, index, NULL, 0, 0, 0);
        report_chain(L, out, -1, 0);
        lua_pop(L, 1);
    }
    luaL_Buffer b;
    lua_Integer n = (lua_Integer)lua_rawlen(L, out);
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, out, i);
        luaL_addvalue(&b);
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    lua_remove(L, out);
}

/* Reads (fut, opts) at 1 and 2 for the call graph functions: pushes the
 * graph, or nil when there is no current task and no fut. */
static int
capture_args(lua_State *L, const char *what, int *has_file) {
    static const char *const known[] = {"depth", "limit", "file", NULL};
    int optidx = 2;
    if (lua_istable(L, 1) && !lasio_tofuture_(L, 1) && lua_isnone(L, 2))
        optidx = 1; /* capture_call_graph({depth=...}) */
    lasio_checkopts_(L, optidx, what, known);
    lua_Integer depth = 1, limit = 0;
    int has_limit = 0;
    if (lasio_optfield_(L, optidx, "depth")) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
            luaL_error(L, "%s: depth must be an integer >= 0, got %s", what,
                       luaL_tolstring(L, -1, NULL));
        depth = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (lasio_optfield_(L, optidx, "limit")) {
        if (!lua_isinteger(L, -1))
            luaL_error(L, "%s: limit must be an integer, got %s", what,
                       luaL_tolstring(L, -1, NULL));
        limit = lua_tointeger(L, -1);
        has_limit = 1;
        lua_pop(L, 1);
    }
    if (has_file)
        *has_file = lasio_optfield_(L, optidx, "file") ? lua_gettop(L) : 0;
    else if (lasio_optfield_(L, optidx, "file"))
        luaL_error(L, "%s: unknown option 'file'", what);
    struct lasio_loop *loop = lasio_running_loop_(L);
    int fidx = 0;
    if (optidx == 2 && !lua_isnoneornil(L, 1)) {
        if (!lasio_tofuture_(L, 1))
            return lasio_argerror_(
                L, 1, what,
                lua_pushfstring(L, "Future or Task expected, got %s",
                                luaL_typename(L, 1)));
        fidx = 1;
    }
    lua_State *from = NULL;
    if (fidx == 0 || (loop && loop->current &&
                      lua_touserdata(L, fidx) == (void *)loop->current)) {
        if (!loop)
            return luaL_error(L,
                              "%s: no running loop and no Future or Task "
                              "to introspect",
                              what);
        if (!loop->current) {
            lua_pushnil(L);
            return 1;
        }
        lasio_pushtasks_(L, loop);
        lua_rawgeti(L, -1, loop->current->fut.ref);
        lua_remove(L, -2);
        fidx = lua_gettop(L);
        from = L;
    }
    lasio_callgraph_capture_(L, fidx, 0, from, (int)depth, (int)limit,
                             has_limit);
    return 1;
}

/* lasio.capture_call_graph([fut] [, {depth=, limit=}]) -> graph or nil */
static int
capture_call_graph(lua_State *L) {
    return capture_args(L, "lasio.capture_call_graph", NULL);
}

/* lasio.format_call_graph([fut] [, {depth=, limit=}]) -> string or nil */
static int
format_call_graph(lua_State *L) {
    capture_args(L, "lasio.format_call_graph", NULL);
    if (lua_isnil(L, -1))
        return 1;
    lasio_callgraph_format_(L, -1);
    return 1;
}

/* lasio.print_call_graph([fut] [, {depth=, limit=, file=}]): the text on
 * file (default: through print) */
static int
print_call_graph(lua_State *L) {
    int file = 0;
    capture_args(L, "lasio.print_call_graph", &file);
    if (lua_isnil(L, -1))
        return 0;
    lasio_callgraph_format_(L, -1);
    if (file) {
        lua_getfield(L, file, "write");
        lua_pushvalue(L, file);
        lua_pushvalue(L, -3);
        lua_pushliteral(L, "\n");
        lua_call(L, 3, 0);
        return 0;
    }
    lua_getglobal(L, "print");
    lua_insert(L, -2);
    lua_call(L, 1, 0);
    return 0;
}

/* task:created_at() -> site, parent: "file:line" of the call that
 * created the task (nil when no Lua code made it), and the task that was
 * running then (the Task while this one is pending, else its description
 * "Task #3 'name'"; nil when made outside any task). */
static int
task_created_at(lua_State *L) {
    struct lasio_task *t = lasio_totask_(L, 1);
    if (!t)
        return lasio_argerror_(
            L, 0, "task:created_at",
            lua_pushfstring(L, "Task expected, got %s", luaL_typename(L, 1)));
    lasio_task_pushsite_(L, t);
    lasio_task_pushparent_(L, t);
    return 2;
}

/* core.internal.task_waiting_on(task) -> what, since: what the task
 * waits on and the loop time the wait began, or nil */
static int
task_waiting_on(lua_State *L) {
    struct lasio_task *t = lasio_totask_(L, 1);
    if (!t)
        return lasio_argerror_(
            L, 1, "task_waiting_on",
            lua_pushfstring(L, "Task expected, got %s", luaL_typename(L, 1)));
    if (!lasio_task_pushwait_(L, 1, t))
        return 1;
    lua_pushnumber(L, t->wait_since);
    return 2;
}

static const luaL_Reg graph_funcs[] = {
    {"capture_call_graph", capture_call_graph},
    {"format_call_graph", format_call_graph},
    {"print_call_graph", print_call_graph},
    {NULL, NULL}};

void
lasio_awaitgraph_open_(lua_State *L) {
    luaL_setfuncs(L, graph_funcs, 0);
    lua_getfield(L, -1, "internal");
    lua_pushcfunction(L, await_link);
    lua_setfield(L, -2, "await_link");
    lua_pushcfunction(L, await_unlink);
    lua_setfield(L, -2, "await_unlink");
    lua_pushcfunction(L, task_waiting_on);
    lua_setfield(L, -2, "task_waiting_on");
    lua_pop(L, 1);
    luaL_getmetatable(L, LASIO_TASK_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, task_created_at);
    lua_setfield(L, -2, "created_at");
    lua_pop(L, 2);
}

/* ====== } */
