/*
 * queue.c: lasio.Queue, LifoQueue and PriorityQueue (docs/API.md,
 * Synchronisation and queues), asyncio's queues.py of Python 3.13
 * (task_done/join, shutdown) in C, so a hand-off between two tasks costs no
 * allocation: getters, putters and joiners wait in WaitQueues embedded in
 * the queue. Items live in the queue's user value table: a ring (FIFO), a
 * stack (LIFO) or a binary heap ordered by `<` (priority). nil is an item
 * like any other; the count, not a nil, tells where the items end.
 * Invariant: an item or a free slot is never lost: a waiter woken but
 * leaving with an error passes the wake-up on while what it was woken for
 * is still there.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "core/core.h"

enum qkind { Q_FIFO, Q_LIFO, Q_PRIO, Q_NKINDS };

static const struct {
    const char *mt, *name, *put, *get, *task_done;
} kinds[Q_NKINDS] = {
    {"lasio.Queue", "lasio.Queue", "lasio.Queue:put", "lasio.Queue:get",
     "lasio.Queue:task_done"},
    {"lasio.LifoQueue", "lasio.LifoQueue", "lasio.LifoQueue:put",
     "lasio.LifoQueue:get", "lasio.LifoQueue:task_done"},
    {"lasio.PriorityQueue", "lasio.PriorityQueue", "lasio.PriorityQueue:put",
     "lasio.PriorityQueue:get", "lasio.PriorityQueue:task_done"},
};

#define RING_INITIAL 8

struct lasio_queue {
    int kind;       /* enum qkind */
    int n;          /* items */
    int head, cap;  /* FIFO ring: first item's 0-based slot, size */
    int unfinished; /* items put and not yet task_done */
    int shutdown;
    lua_Number maxsize; /* 0: unbounded */
    int maxsize_int;    /* maxsize came as an integer (for tostring) */
    struct lasio_waitq getters, putters, joiners;
};

enum { QUEUE_UV_ITEMS = 1, QUEUE_NUV = QUEUE_UV_ITEMS };

/* The three metatables hold this address at index 1: one fast check for
 * any of the queue types. */
static const char queue_token = 0;

static struct lasio_queue *
checkqueue(lua_State *L, int idx) {
    struct lasio_queue *q = lua_touserdata(L, idx);
    if (q && lua_getmetatable(L, idx)) {
        int ok = lua_rawgeti(L, -1, 1) == LUA_TLIGHTUSERDATA &&
                 lua_touserdata(L, -1) == &queue_token;
        lua_pop(L, 2);
        if (ok)
            return q;
    }
    luaL_typeerror(L, idx, "lasio.Queue");
    return NULL;
}

static int
full(const struct lasio_queue *q) {
    return q->maxsize > 0 && q->n >= q->maxsize;
}

static int
raise_shutdown(lua_State *L) {
    return lasio_raise_(L, ERR_QUEUESHUTDOWN, "the queue is shut down");
}

/* {====== Item storage ====== */

/* Makes room for one more FIFO item: doubles the ring (allocating before
 * any index changes). */
static void
ring_room(lua_State *L, struct lasio_queue *q, int items) {
    if (q->n < q->cap)
        return;
    int cap = q->cap ? q->cap * 2 : RING_INITIAL;
    lua_createtable(L, cap, 0);
    for (int i = 0; i < q->n; i++) {
        lua_rawgeti(L, items, ((q->head + i) & (q->cap - 1)) + 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, items);
    lua_pushvalue(L, items);
    lua_setiuservalue(L, 1, QUEUE_UV_ITEMS);
    q->head = 0;
    q->cap = cap;
}

/* Stores the item at top (popped); the queue is at 1. [-1, +0, e] */
static void
store(lua_State *L, struct lasio_queue *q) {
    lua_getiuservalue(L, 1, QUEUE_UV_ITEMS);
    int items = lua_gettop(L);
    if (q->kind == Q_FIFO) {
        ring_room(L, q, items);
        lua_pushvalue(L, items - 1);
        lua_rawseti(L, items, ((q->head + q->n) & (q->cap - 1)) + 1);
    } else if (q->kind == Q_LIFO) {
        lua_pushvalue(L, items - 1);
        lua_rawseti(L, items, q->n + 1);
    } else {
        /* sift up: find the place by comparisons alone, then move, so a
         * comparison that raises leaves the heap as it was */
        int i = q->n + 1;
        while (i > 1) {
            lua_rawgeti(L, items, i / 2);
            int less = lua_compare(L, items - 1, -1, LUA_OPLT);
            lua_pop(L, 1);
            if (!less)
                break;
            i /= 2;
        }
        for (int j = q->n + 1; j > i; j /= 2) {
            lua_rawgeti(L, items, j / 2);
            lua_rawseti(L, items, j);
        }
        lua_pushvalue(L, items - 1);
        lua_rawseti(L, items, i);
    }
    q->n++;
    lua_pop(L, 2);
}

/* Heap removal for the priority queue: items at items. [-0, +1, e] */
static void
heap_pop(lua_State *L, struct lasio_queue *q, int items) {
    int n = q->n, m = n - 1, hole = 1;
    lua_rawgeti(L, items, 1); /* the result */
    if (n == 1) {
        lua_pushnil(L);
        lua_rawseti(L, items, 1);
        return;
    }
    lua_rawgeti(L, items, n); /* last: to be placed */
    int last = lua_gettop(L);
    for (;;) {
        int c = 2 * hole;
        if (c > m)
            break;
        if (c < m) {
            lua_rawgeti(L, items, c + 1);
            lua_rawgeti(L, items, c);
            if (lua_compare(L, -2, -1, LUA_OPLT))
                c++;
            lua_pop(L, 2);
        }
        lua_rawgeti(L, items, c);
        int less = lua_compare(L, -1, last, LUA_OPLT);
        lua_pop(L, 1);
        if (!less)
            break;
        hole = c;
    }
    /* move up every item on the path from the root to the hole */
    int depth = 0;
    while ((hole >> depth) > 1)
        depth++;
    for (int level = depth - 1; level >= 0; level--) {
        int child = hole >> level;
        lua_rawgeti(L, items, child);
        lua_rawseti(L, items, child >> 1);
    }
    lua_pushvalue(L, last);
    lua_rawseti(L, items, hole);
    lua_pushnil(L);
    lua_rawseti(L, items, n);
    lua_remove(L, last);
}

/* Pushes and removes the next item; the queue is at 1. [-0, +1, e] */
static void
take(lua_State *L, struct lasio_queue *q) {
    lua_getiuservalue(L, 1, QUEUE_UV_ITEMS);
    int items = lua_gettop(L);
    if (q->kind == Q_FIFO) {
        int slot = q->head + 1;
        lua_rawgeti(L, items, slot);
        lua_pushnil(L);
        lua_rawseti(L, items, slot);
        q->head = (q->head + 1) & (q->cap - 1);
    } else if (q->kind == Q_LIFO) {
        lua_rawgeti(L, items, q->n);
        lua_pushnil(L);
        lua_rawseti(L, items, q->n);
    } else {
        heap_pop(L, q, items);
    }
    q->n--;
    lua_remove(L, items);
}

/* ====== } */

/* {====== put and get ====== */

/* The queue at 1 and the item at 2, the top. */
static int
put_nowait(lua_State *L, struct lasio_queue *q) {
    if (q->shutdown)
        return raise_shutdown(L);
    if (full(q))
        return lasio_raise_(L, ERR_QUEUEFULL, "the queue is full");
    store(L, q);
    q->unfinished++;
    if (q->getters.n > 0)
        lasio_waitq_wake_(L, &q->getters);
    return 0;
}

/* The queue at 1, the top. */
static int
get_nowait(lua_State *L, struct lasio_queue *q) {
    if (q->n == 0) {
        if (q->shutdown)
            return raise_shutdown(L);
        return lasio_raise_(L, ERR_QUEUEEMPTY, "the queue is empty");
    }
    take(L, q);
    if (q->putters.n > 0)
        lasio_waitq_wake_(L, &q->putters);
    return 1;
}

static int queue_put_k(lua_State *L, int status, lua_KContext ctx);
static int queue_get_k(lua_State *L, int status, lua_KContext ctx);

/* Waits while the queue is full, then puts: queue at 1, item at 2. */
static int
put_wait(lua_State *L, struct lasio_queue *q) {
    if (full(q)) {
        if (q->shutdown)
            return raise_shutdown(L);
        lasio_waitq_link_(L, &q->putters, kinds[q->kind].put);
        lua_pushlightuserdata(L, LASIO_SENTINEL);
        return lua_yieldk(L, 1, 0, queue_put_k);
    }
    return put_nowait(L, q);
}

static int
queue_put_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_queue *q = lua_touserdata(L, 1);
    int woken;
    (void)status, (void)ctx;
    if (lasio_waitq_resumed_(L, 2, &woken)) {
        /* leaving: a free slot it was woken for goes to the next putter */
        if (woken && !full(q))
            lasio_waitq_wake_(L, &q->putters);
        lua_settop(L, 4);
        return lua_error(L);
    }
    lua_settop(L, 2);
    return put_wait(L, q);
}

static int
get_wait(lua_State *L, struct lasio_queue *q) {
    if (q->n == 0) {
        if (q->shutdown)
            return raise_shutdown(L);
        lasio_waitq_link_(L, &q->getters, kinds[q->kind].get);
        lua_pushlightuserdata(L, LASIO_SENTINEL);
        return lua_yieldk(L, 1, 0, queue_get_k);
    }
    return get_nowait(L, q);
}

static int
queue_get_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_queue *q = lua_touserdata(L, 1);
    int woken;
    (void)status, (void)ctx;
    if (lasio_waitq_resumed_(L, 1, &woken)) {
        /* leaving: an item it was woken for goes to the next getter */
        if (woken && q->n > 0)
            lasio_waitq_wake_(L, &q->getters);
        lua_settop(L, 3);
        return lua_error(L);
    }
    lua_settop(L, 1);
    return get_wait(L, q);
}

static int
queue_put(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    lua_settop(L, 2);
    return put_wait(L, q);
}

static int
queue_get(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    lua_settop(L, 1);
    return get_wait(L, q);
}

static int
queue_put_nowait(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    lua_settop(L, 2);
    return put_nowait(L, q);
}

static int
queue_get_nowait(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    lua_settop(L, 1);
    return get_nowait(L, q);
}

/* ====== } */

/* {====== join, task_done, shutdown ====== */

static int
queue_task_done(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    if (q->unfinished <= 0)
        return luaL_error(L, "%s: called more times than there were items put",
                          kinds[q->kind].task_done);
    if (--q->unfinished == 0)
        while (lasio_waitq_wake_(L, &q->joiners))
            ;
    return 0;
}

static int queue_join_k(lua_State *L, int status, lua_KContext ctx);

static int
join_wait(lua_State *L, struct lasio_queue *q) {
    if (q->unfinished == 0)
        return 0;
    lasio_waitq_link_(L, &q->joiners, "lasio.Queue:join");
    lua_settop(L, 1);
    lua_pushlightuserdata(L, LASIO_SENTINEL);
    return lua_yieldk(L, 1, 0, queue_join_k);
}

static int
queue_join_k(lua_State *L, int status, lua_KContext ctx) {
    int woken;
    (void)status, (void)ctx;
    if (lasio_waitq_resumed_(L, 1, &woken)) {
        lua_settop(L, 3);
        return lua_error(L);
    }
    lua_settop(L, 1);
    return join_wait(L, lua_touserdata(L, 1));
}

static int
queue_join(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    lua_settop(L, 1);
    return join_wait(L, q);
}

/* shutdown([immediate]): put raises from now on; get raises once the
 * queue is empty (at once when immediate: the items are dropped and count
 * as done). Every waiter wakes and re-checks. */
static int
queue_shutdown(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    int immediate = lua_toboolean(L, 2);
    q->shutdown = 1;
    if (immediate && q->n > 0) {
        lua_createtable(L, q->kind == Q_FIFO ? RING_INITIAL : 0, 0);
        lua_setiuservalue(L, 1, QUEUE_UV_ITEMS);
        q->unfinished = q->unfinished > q->n ? q->unfinished - q->n : 0;
        q->n = 0;
        q->head = 0;
        q->cap = q->kind == Q_FIFO ? RING_INITIAL : 0;
        if (q->unfinished == 0)
            while (lasio_waitq_wake_(L, &q->joiners))
                ;
    }
    while (lasio_waitq_wake_(L, &q->getters))
        ;
    while (lasio_waitq_wake_(L, &q->putters))
        ;
    return 0;
}

/* ====== } */

static int
queue_qsize(lua_State *L) {
    lua_pushinteger(L, checkqueue(L, 1)->n);
    return 1;
}

static int
queue_empty(lua_State *L) {
    lua_pushboolean(L, checkqueue(L, 1)->n == 0);
    return 1;
}

static int
queue_full(lua_State *L) {
    lua_pushboolean(L, full(checkqueue(L, 1)));
    return 1;
}

static void
push_maxsize(lua_State *L, const struct lasio_queue *q) {
    if (q->maxsize_int)
        lua_pushinteger(L, (lua_Integer)q->maxsize);
    else
        lua_pushnumber(L, q->maxsize);
}

static int
queue_tostring(lua_State *L) {
    struct lasio_queue *q = checkqueue(L, 1);
    luaL_Buffer b;
    push_maxsize(L, q);
    lua_pushfstring(L, "%s<maxsize=%s qsize=%d", kinds[q->kind].name,
                    luaL_tolstring(L, -1, NULL), q->n);
    luaL_buffinit(L, &b);
    lua_pushvalue(L, -2);
    luaL_addvalue(&b);
    if (q->getters.n > 0)
        lua_pushfstring(L, " getters=%d", q->getters.n), luaL_addvalue(&b);
    if (q->putters.n > 0)
        lua_pushfstring(L, " putters=%d", q->putters.n), luaL_addvalue(&b);
    if (q->unfinished > 0)
        lua_pushfstring(L, " tasks=%d", q->unfinished), luaL_addvalue(&b);
    if (q->shutdown)
        luaL_addstring(&b, " shutdown");
    luaL_addchar(&b, '>');
    luaL_pushresult(&b);
    return 1;
}

/* Every queue has a metatable of its own, which is also its __index: a
 * copy of its kind's template (the methods and metamethods) plus the queue
 * under self_key. So q:put(x) finds "put" with one table lookup, where an
 * __index function would cost a metamethod call on every hand-off. The
 * fields computed when read (q.maxsize; q._getters and q._putters count
 * the waiting tasks, asyncio's tests look at these) miss that table and
 * reach queue_field, the __index of the one metatable all those tables
 * share. */
static const char self_key = 0;
/* Room in a queue's metatable for __name, __tostring, __gc, __index, the
 * queue and the ten methods (a hint: a wrong one only costs a rehash). */
#define QUEUE_MT_RECORDS 15

/* __index of a queue's metatable: 1 is that metatable, 2 the key. */
static int
queue_field(lua_State *L) {
    lua_rawgetp(L, 1, &self_key);
    struct lasio_queue *q = lua_touserdata(L, -1);
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : 0;
    if (q && key && strcmp(key, "maxsize") == 0) {
        push_maxsize(L, q);
        return 1;
    }
    if (q && key &&
        (strcmp(key, "_getters") == 0 || strcmp(key, "_putters") == 0)) {
        lua_pushinteger(L, key[1] == 'g' ? q->getters.n : q->putters.n);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* A collected queue leaves no task pointing at its WaitQueues. */
static int
queue_gc(lua_State *L) {
    struct lasio_queue *q = lua_touserdata(L, 1);
    lasio_waitq_clear_(&q->getters);
    lasio_waitq_clear_(&q->putters);
    lasio_waitq_clear_(&q->joiners);
    return 0;
}

static int
queue_new(lua_State *L) {
    int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
    lua_Number maxsize = 0;
    int isint = 1;
    if (!lua_isnoneornil(L, 1)) {
        int isnum = lua_type(L, 1) == LUA_TNUMBER;
        maxsize = lua_tonumber(L, 1);
        if (!isnum || isnan(maxsize) || maxsize < 0)
            return luaL_error(L,
                              "%s: maxsize must be a number >= 0 (0: "
                              "unbounded), got %s",
                              kinds[kind].name, luaL_tolstring(L, 1, NULL));
        isint = lua_isinteger(L, 1);
    }
    struct lasio_queue *q = lua_newuserdatauv(L, sizeof *q, QUEUE_NUV);
    q->kind = kind;
    q->n = q->head = q->unfinished = q->shutdown = 0;
    q->cap = kind == Q_FIFO ? RING_INITIAL : 0;
    q->maxsize = maxsize;
    q->maxsize_int = isint;
    lasio_waitq_init_(&q->getters);
    lasio_waitq_init_(&q->putters);
    lasio_waitq_init_(&q->joiners);
    int qidx = lua_gettop(L);
    lua_createtable(L, q->cap, 0);
    lua_setiuservalue(L, qidx, QUEUE_UV_ITEMS);
    /* its own metatable (see self_key): the template's entries, itself as
     * __index, the queue, and the shared fields metatable */
    lua_createtable(L, 1, QUEUE_MT_RECORDS);
    int mt = qidx + 1;
    lua_pushvalue(L, lua_upvalueindex(2));
    int template = mt + 1;
    lua_pushnil(L);
    while (lua_next(L, template)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, mt);
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "__index");
    lua_pushvalue(L, mt);
    lua_rawset(L, mt);
    lua_pushvalue(L, qidx);
    lua_rawsetp(L, mt, &self_key);
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setmetatable(L, mt);
    lua_setmetatable(L, qidx);
    return 1;
}

static const luaL_Reg queue_methods[] = {{"put", queue_put},
                                         {"get", queue_get},
                                         {"put_nowait", queue_put_nowait},
                                         {"get_nowait", queue_get_nowait},
                                         {"qsize", queue_qsize},
                                         {"empty", queue_empty},
                                         {"full", queue_full},
                                         {"task_done", queue_task_done},
                                         {"join", queue_join},
                                         {"shutdown", queue_shutdown},
                                         {NULL, NULL}};

static const char *const constructors[Q_NKINDS] = {"Queue", "LifoQueue",
                                                   "PriorityQueue"};

void
lasio_queue_open_(lua_State *L) {
    lua_createtable(L, 0, 1); /* the metatable of the queues' metatables */
    lua_pushcfunction(L, queue_field);
    lua_setfield(L, -2, "__index");
    int fields = lua_gettop(L);
    for (int k = 0; k < Q_NKINDS; k++) {
        /* the kind's template: [1] the token, __name, the metamethods but
         * __index, the methods */
        if (luaL_newmetatable(L, kinds[k].mt)) {
            lua_pushlightuserdata(L, (void *)&queue_token);
            lua_rawseti(L, -2, 1);
            luaL_setfuncs(L, queue_methods, 0);
            lua_pushcfunction(L, queue_tostring);
            lua_setfield(L, -2, "__tostring");
            lua_pushcfunction(L, queue_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_pushinteger(L, k);
        lua_insert(L, -2);
        lua_pushvalue(L, fields);
        lua_pushcclosure(L, queue_new, 3);
        lua_setfield(L, fields - 1, constructors[k]); /* the module table */
    }
    lua_pop(L, 1);
}
