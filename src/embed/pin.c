/*
 * pin.c: Futures from C (lasio.h): lasio_future_*, async C functions, pins,
 * and lasio_pin_post's queue (the loop's wake pipe and a mutex;
 * INTERNALS.md, rule 5), run by the loop's on_posted hook.
 * Owns the loop's postq and the pins (malloc'd, refcounted, may outlive L).
 * Invariant: a posted call runs once: with L, or NULL if the loop closed.
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "embed/embed.h"

/* A call queued by lasio_pin_post. */
struct lasio_tcall {
    struct lasio_tcall *next;
    lasio_pin_fn fn;
    lasio_pin *pin; /* holds one of its refs */
    void *ud;
};

/* The per-loop queue. `lock` guards head, tail, wfd, closed and every
 * refs count (pins' too); the other fields belong to the loop's thread. */
struct lasio_postq {
    struct lasio_iolink link; /* first: released when the loop closes */
    pthread_mutex_t lock;
    struct lasio_tcall *head, *tail; /* posted, not taken yet */
    struct lasio_tcall *taken;       /* taken by the loop, running */
    int wfd;                         /* the wake pipe, -1 once closed */
    int refs;                        /* the open loop + each pin */
    unsigned char closed;
    struct lasio_loop *loop; /* NULL once closed */
    lua_State *L;            /* the main thread, NULL once closed */
    lasio_pin *pins;         /* attached pins */
};

struct lasio_pin {
    struct lasio_postq *q; /* fixed; holds one of its refs */
    lasio_pin *prev, *next;
    int ref;  /* registry ref of the Future while attached, else NOREF */
    int refs; /* the holder + each queued call */
    /* the record of one queued call, so that posting once (the usual
     * case) never allocates and cannot fail for memory */
    struct lasio_tcall slot;
    unsigned char slot_busy; /* under q->lock */
};

/* Drops one reference of q (freeing it at the last). Takes the lock. */
static void
postq_unref(struct lasio_postq *q) {
    pthread_mutex_lock(&q->lock);
    int last = --q->refs == 0;
    pthread_mutex_unlock(&q->lock);
    if (last) {
        pthread_mutex_destroy(&q->lock);
        free(q);
    }
}

/* Lets go of p's Future: unrefs it and unlinks p. On the loop's thread
 * (no Lua code, no allocation). */
static void
detach(lua_State *L, lasio_pin *p) {
    struct lasio_postq *q = p->q;
    if (p->ref == LUA_NOREF)
        return;
    luaL_unref(L, LUA_REGISTRYINDEX, p->ref);
    p->ref = LUA_NOREF;
    if (p->prev)
        p->prev->next = p->next;
    else
        q->pins = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Drops one reference of p; the last lets go of its Future and frees it.
 * While the loop is open this runs on its thread; once it closed (q->L
 * is NULL, read under the lock) the pin was detached already. */
static void
pin_unref(lasio_pin *p) {
    struct lasio_postq *q = p->q;
    pthread_mutex_lock(&q->lock);
    int last = --p->refs == 0;
    lua_State *L = q->L;
    pthread_mutex_unlock(&q->lock);
    if (last) {
        if (L)
            detach(L, p);
        free(p);
        postq_unref(q);
    }
}

/* A call has run: frees its record (or frees the pin's slot) and drops
 * its reference of the pin. */
static void
call_free(struct lasio_tcall *c) {
    lasio_pin *p = c->pin;
    if (c == &p->slot) {
        pthread_mutex_lock(&p->q->lock);
        p->slot_busy = 0;
        pthread_mutex_unlock(&p->q->lock);
    } else {
        free(c);
    }
    pin_unref(p);
}

/* {====== The loop's side of the queue ====== */

/* The loop closes (lasio_close, lua_close, collection): no Lua code runs.
 * Posting stops, pins are detached, queued calls run with L == NULL. */
static void
postq_release(struct lasio_iolink *link) {
    struct lasio_postq *q = (struct lasio_postq *)link;
    /* one critical section: a thread that learns of the close (its post
     * refused) and unpins finds every pin detached */
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    q->wfd = -1;
    struct lasio_tcall *list = q->head;
    q->head = q->tail = NULL;
    while (q->pins)
        detach(q->L, q->pins);
    q->L = NULL;
    pthread_mutex_unlock(&q->lock);
    if (q->taken) { /* taken earlier: they go first */
        struct lasio_tcall *last = q->taken;
        while (last->next)
            last = last->next;
        last->next = list;
        list = q->taken;
        q->taken = NULL;
    }
    while (list) {
        struct lasio_tcall *c = list;
        list = c->next;
        c->fn(NULL, c->pin, c->ud);
        call_free(c);
    }
    q->loop->postq = NULL;
    q->loop->on_posted = NULL;
    q->loop = NULL;
    postq_unref(q);
}

static void run_posted(struct lasio_loop *loop);

/* The queue of loop, made on first use with the wake pipe. [-0, +0, e] */
static struct lasio_postq *
postq_get(lua_State *L, struct lasio_loop *loop) {
    if (loop->postq)
        return loop->postq;
    struct lasio_postq *q = calloc(1, sizeof *q);
    if (!q)
        luaL_error(L, "not enough memory");
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        luaL_error(L, "cannot create a mutex");
    }
    if (lasio_wake_open_(loop) < 0) {
        pthread_mutex_destroy(&q->lock);
        free(q);
        luaL_error(L, "cannot open the loop's wake-up pipe");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    q->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    q->wfd = loop->wake_fd[1];
    q->refs = 1;
    q->loop = loop;
    q->link.release = postq_release;
    lasio_iolink_add_(loop, &q->link);
    loop->postq = q;
    loop->on_posted = run_posted;
    return q;
}

/* Runs c->fn (a light userdata at 1) with the main thread. */
static int
call_fn(lua_State *L) {
    struct lasio_tcall *c = lua_touserdata(L, 1);
    lua_settop(L, 0);
    c->fn(L, c->pin, c->ud);
    return 0;
}

/* c->fn raised the error at 2 (c at 1): the pinned Future fails with it
 * (its awaiting task gets it, E3), or the exception handler reports it. */
static int
call_failed(lua_State *L) {
    struct lasio_tcall *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lua_touserdata(L, 3);
    lua_settop(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->pin->ref); /* 3: nil if detached */
    struct lasio_future *f = lasio_tofuture_(L, 3);
    if (f && f->kind == KIND_FUTURE && f->state == FUT_PENDING &&
        !f->loop->closed) {
        lua_pushnil(L); /* no traceback: the error was raised in C */
        lua_pushvalue(L, 2);
        lasio_future_fail_(L, 3, f);
        return 0;
    }
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "Exception in a lasio_pin_post call");
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "exception");
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "future");
    lasio_call_exception_handler_(L, loop);
    return 0;
}

/* Runs the taken calls, each in its own protected call. Called through
 * lasio_guarded_; a call is freed even when reporting its error fails. */
static int
run_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    int top = lua_gettop(L);
    /* the loop can close only in a call that ends the process */
    while (loop->postq && loop->postq->taken) {
        struct lasio_postq *q = loop->postq;
        struct lasio_tcall *c = q->taken;
        q->taken = c->next;
        lua_pushcfunction(L, call_fn);
        lua_pushlightuserdata(L, c);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            lua_pushcfunction(L, call_failed);
            lua_insert(L, -2);
            lua_pushlightuserdata(L, c);
            lua_insert(L, -2);
            lua_pushlightuserdata(L, loop);
            lua_pcall(L, 3, 0, 0); /* an error here is dropped */
        }
        lua_settop(L, top);
        call_free(c);
    }
    return 0;
}

/* The loop's on_posted hook: runs the calls lasio_pin_post queued. */
static void
run_posted(struct lasio_loop *loop) {
    struct lasio_postq *q = loop->postq;
    pthread_mutex_lock(&q->lock);
    struct lasio_tcall *list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    if (q->taken) { /* left over by a failed run: they go first */
        struct lasio_tcall *last = q->taken;
        while (last->next)
            last = last->next;
        last->next = list;
    } else {
        q->taken = list;
    }
    if (q->taken)
        lasio_guarded_(loop, run_body);
    q = loop->postq;
    if (q && q->taken) { /* run_body could not start: try again later */
        pthread_mutex_lock(&q->lock);
        ssize_t r = write(q->wfd, "", 1);
        (void)r;
        pthread_mutex_unlock(&q->lock);
    }
}

/* ====== } */

/* {====== Futures ====== */

/* Stack: ctx */
static int
new_body(lua_State *L) {
    struct lasio_apicall *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return lasio_api_refuse_(L, c, LASIO_ECLOSED,
                                 "lasio_future_new: lasio is not open");
    struct lasio_future *f = lasio_future_push_(L, loop);
    /* C code will resolve it from an event lasio does not see: while it
     * is pending, a task waiting on it is not stuck */
    f->c_source = 1;
    lasio_future_finalize_(L, -1, f); /* uncounted if dropped pending */
    loop->nsources++;
    return 1;
}

int
lasio_future_new(lua_State *L) {
    struct lasio_apicall c;
    return lasio_api_call_(L, new_body, &c, 0, 1);
}

/* What resolve and reject do to a Future. */
struct donectx {
    struct lasio_apicall c;
    int reject;
};

/* Stack: ctx, future, values... (or the error) */
static int
done_body(lua_State *L) {
    struct donectx *c = lua_touserdata(L, 1);
    struct lasio_future *f = lasio_tofuture_(L, 2);
    if (!f || f->kind != KIND_FUTURE)
        return lasio_api_refuse_(L, &c->c, LASIO_EINVAL,
                                 "not a Future (Tasks complete themselves)");
    if (f->loop->closed)
        return lasio_api_refuse_(L, &c->c, LASIO_ECLOSED,
                                 "the Future's loop is closed");
    if (f->state != FUT_PENDING)
        return lasio_api_refuse_(L, &c->c, LASIO_EDONE,
                                 "the Future is already done");
    if (c->reject) {
        lua_settop(L, 3);
        lua_pushnil(L); /* no traceback: the error was made in C */
        lua_insert(L, 3);
        lasio_future_fail_(L, 2, f);
    } else {
        lasio_future_finish_(L, 2, f, lua_gettop(L) - 2);
    }
    return 0;
}

/* Completes the Future (pushed first, at `fut`) with the n values below
 * it; pops them all. */
static int
complete(lua_State *L, int n, int reject) {
    struct donectx c = {{0}, reject};
    lua_insert(L, -(n + 1)); /* the Future below the values */
    return lasio_api_call_(L, done_body, &c.c, n + 1, 0);
}

int
lasio_future_resolve(lua_State *L, int idx, int nvalues) {
    if (nvalues < 0 || nvalues > lua_gettop(L))
        return LASIO_EINVAL;
    if (!lua_checkstack(L, 1)) {
        lua_pop(L, nvalues);
        return LUA_ERRMEM;
    }
    lua_pushvalue(L, idx);
    return complete(L, nvalues, 0);
}

int
lasio_future_reject(lua_State *L, int idx) {
    if (lua_gettop(L) < 1)
        return LASIO_EINVAL;
    if (!lua_checkstack(L, 1)) {
        lua_pop(L, 1);
        return LUA_ERRMEM;
    }
    lua_pushvalue(L, idx);
    return complete(L, 1, 1);
}

int
lasio_future_await(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    struct lasio_future *f = lasio_tofuture_(L, idx);
    if (!f)
        return luaL_typeerror(L, idx, "lasio.Future");
    lua_settop(L, idx);
    if (f->state != FUT_PENDING)
        return lasio_future_results_(L, idx, f);
    return lasio_await_(L, idx, "lasio_future_await");
}

/* ====== } */

/* {====== Async C functions ====== */

/* After the C function returned: one pending Future is awaited, a done
 * one gives its results, anything else is returned as it is. */
static int
async_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status, (void)ctx;
    if (lua_gettop(L) != 1)
        return lua_gettop(L);
    struct lasio_future *f = lasio_tofuture_(L, 1);
    if (!f)
        return 1;
    if (f->state != FUT_PENDING)
        return lasio_future_results_(L, 1, f);
    return lasio_await_(L, 1, lua_tostring(L, lua_upvalueindex(2)));
}

/* Upvalues: the C function (a closure), its name. */
static int
async_call(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, async_k);
    return async_k(L, LUA_OK, 0);
}

struct regctx {
    struct lasio_apicall c;
    const luaL_Reg *l;
    int nup;
};

/* Stack: ctx, table, upvalues... */
static int
register_body(lua_State *L) {
    struct regctx *c = lua_touserdata(L, 1);
    if (!lua_istable(L, 2))
        return lasio_api_refuse_(L, &c->c, LASIO_EINVAL,
                                 "lasio_async_register: no table below the "
                                 "upvalues");
    luaL_checkstack(L, c->nup + 3, NULL);
    for (const luaL_Reg *r = c->l; r->name; r++) {
        if (!r->func) { /* a placeholder, as luaL_setfuncs */
            lua_pushboolean(L, 0);
        } else {
            for (int i = 1; i <= c->nup; i++)
                lua_pushvalue(L, 2 + i);
            lua_pushcclosure(L, r->func, c->nup);
            lua_pushstring(L, r->name);
            lua_pushcclosure(L, async_call, 2);
        }
        lua_setfield(L, 2, r->name);
    }
    return 0;
}

int
lasio_async_register(lua_State *L, const luaL_Reg *l, int nup) {
    struct regctx c = {{0}, l, nup};
    if (!l || nup < 0 || lua_gettop(L) < nup + 1)
        return LASIO_EINVAL;
    if (!lua_checkstack(L, 1)) {
        lua_pop(L, nup);
        return LUA_ERRMEM;
    }
    lua_pushvalue(L, -(nup + 1)); /* the table, passed before upvalues */
    lua_insert(L, -(nup + 1));
    return lasio_api_call_(L, register_body, &c.c, nup + 1, 0);
}

/* ====== } */

/* {====== Pins ====== */

struct pinctx {
    struct lasio_apicall c;
    lasio_pin *pin;
};

/* Stack: ctx, future */
static int
pin_body(lua_State *L) {
    struct pinctx *c = lua_touserdata(L, 1);
    struct lasio_future *f = lasio_tofuture_(L, 2);
    if (!f)
        return lasio_api_refuse_(L, &c->c, LASIO_EINVAL, "not a Future");
    if (f->loop->closed)
        return lasio_api_refuse_(L, &c->c, LASIO_ECLOSED, "loop closed");
    struct lasio_postq *q = postq_get(L, f->loop);
    lua_pushvalue(L, 2);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lasio_pin *p = malloc(sizeof *p);
    if (!p) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "not enough memory");
    }
    p->q = q;
    p->ref = ref;
    p->refs = 1;
    p->slot_busy = 0;
    p->prev = NULL;
    p->next = q->pins;
    if (q->pins)
        q->pins->prev = p;
    q->pins = p;
    pthread_mutex_lock(&q->lock);
    q->refs++;
    pthread_mutex_unlock(&q->lock);
    if (f->kind == KIND_FUTURE && f->state == FUT_PENDING && !f->c_source) {
        f->c_source = 1; /* C code may complete it: a wake-up source */
        f->loop->nsources++;
        lasio_future_finalize_(L, 2, f);
    }
    c->pin = p;
    return 0;
}

lasio_pin *
lasio_future_pin(lua_State *L, int idx) {
    struct pinctx c = {{0}, NULL};
    if (!lua_checkstack(L, 1))
        return NULL;
    lua_pushvalue(L, idx);
    return lasio_api_call_(L, pin_body, &c.c, 1, 0) == LASIO_OK ? c.pin : NULL;
}

void
lasio_future_unpin(lasio_pin *pin) {
    if (pin)
        pin_unref(pin); /* queued calls hold it (and its Future) on */
}

/* Stack: ctx */
static int
push_body(lua_State *L) {
    struct pinctx *c = lua_touserdata(L, 1);
    if (!c->pin)
        return lasio_api_refuse_(L, &c->c, LASIO_EINVAL, "NULL pin");
    if (c->pin->ref == LUA_NOREF)
        return lasio_api_refuse_(L, &c->c, LASIO_ECLOSED,
                                 "the pin is detached (its loop closed)");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->pin->ref);
    return 1;
}

int
lasio_pin_push(lua_State *L, lasio_pin *pin) {
    struct pinctx c = {{0}, pin};
    return lasio_api_call_(L, push_body, &c.c, 0, 1);
}

/* Completes the pinned Future with the n values on top (popped). */
static int
pin_complete(lua_State *L, lasio_pin *pin, int n, int reject) {
    if (n < 0 || n > lua_gettop(L))
        return LASIO_EINVAL;
    int status = lasio_pin_push(L, pin);
    if (status != LASIO_OK) {
        lua_pop(L, n + 1);
        return status;
    }
    return complete(L, n, reject);
}

int
lasio_pin_resolve(lua_State *L, lasio_pin *pin, int nvalues) {
    return pin_complete(L, pin, nvalues, 0);
}

int
lasio_pin_reject(lua_State *L, lasio_pin *pin) {
    return pin_complete(L, pin, 1, 1);
}

int
lasio_pin_post(lasio_pin *pin, lasio_pin_fn fn, void *ud) {
    if (!pin || !fn)
        return LASIO_EINVAL;
    struct lasio_postq *q = pin->q;
    struct lasio_tcall *c;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return LASIO_ECLOSED;
    }
    if (!pin->slot_busy) {
        pin->slot_busy = 1;
        c = &pin->slot;
    } else if (!(c = malloc(sizeof *c))) {
        pthread_mutex_unlock(&q->lock);
        return LUA_ERRMEM;
    }
    c->next = NULL;
    c->fn = fn;
    c->pin = pin;
    c->ud = ud;
    pin->refs++;
    int was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    if (was_empty) { /* else a wake-up is on its way already */
        ssize_t r = write(q->wfd, "", 1);
        (void)r; /* a full pipe already means "wake up" */
    }
    pthread_mutex_unlock(&q->lock);
    return LASIO_OK;
}

/* ====== } */
