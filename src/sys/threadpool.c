/*
 * threadpool.c: a small pool of worker threads per loop for blocking work
 * (lasio.to_thread, lasio.fs). Jobs are C structs with a type (run in a
 * worker, deliver on the loop, free); results come back through an
 * eventfd and a mutex-protected done list (not evthread: INTERNALS.md,
 * rule 5), and each job completes a Future awaited by the submitting task.
 * The pool is a userdata in the loop's anchors and owns its threads,
 * queues and eventfd. Invariants: a job is in exactly one place (the
 * queue, a worker, the done list) and is freed once, on the loop thread;
 * a job whose Future is pending counts once in loop->nsources; shutdown
 * (loop close, __gc, lua_close) joins every worker before the memory goes.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <event2/event.h>

#include "sys/sys.h"

#define MAX_WORKERS 4

static const char pool_key = 0; /* anchors[&pool_key] = the pool */
/* In a worker's state: registry[&worker_pool_key] = its pool (light) */
static const char worker_pool_key = 0;

struct lasio_worker {
    pthread_t thread;
    struct lasio_pool *pool;
    lua_State *W;          /* the worker's own Lua state, or NULL */
    struct lasio_job *job; /* running, under the pool's lock */
    unsigned char started;
};

struct lasio_pool {
    struct lasio_iolink link;
    struct lasio_loop *loop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lasio_job *queue, *queue_tail; /* waiting for a worker */
    struct lasio_job *done, *done_tail;   /* waiting for delivery */
    /* calls posted by workers' Lua code, in order; a job's posts are
     * queued before the job is done, so they are scheduled before it is
     * delivered */
    struct lasio_posted *posted, *posted_tail;
    struct lasio_worker workers[MAX_WORKERS];
    /* idle workers may lag behind the queue: one signalled but not yet
     * awake still counts in nidle, its job still in nqueued */
    int nworkers, nidle, nqueued;
    int wake_fd; /* eventfd written by workers */
    struct event *wake_ev;
    unsigned long seq;
    unsigned char shutdown, linked, released;
};

/* {====== Workers ====== */

/* Wakes the loop's thread through the pool's eventfd (wake_cb). */
static void
wake_loop(struct lasio_pool *pool) {
    uint64_t one = 1;
    ssize_t r = write(pool->wake_fd, &one, sizeof one);
    (void)r; /* a full counter already means "wake up" */
}

static void
stop_hook(lua_State *W, lua_Debug *ar) {
    (void)ar;
    lua_sethook(W, NULL, 0, 0);
    luaL_error(W, "lasio: the thread pool is shutting down");
}

static void *
worker_main(void *arg) {
    struct lasio_worker *w = arg;
    struct lasio_pool *pool = w->pool;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->queue && !pool->shutdown) {
            pool->nidle++;
            pthread_cond_wait(&pool->cond, &pool->lock);
            pool->nidle--;
        }
        if (pool->shutdown)
            break;
        struct lasio_job *job = pool->queue;
        pool->queue = job->next;
        if (!pool->queue)
            pool->queue_tail = NULL;
        pool->nqueued--;
        job->next = NULL;
        w->job = job;
        pthread_mutex_unlock(&pool->lock);
        job->type->run(job, w);
        pthread_mutex_lock(&pool->lock);
        w->job = NULL;
        int was_empty = pool->done == NULL;
        if (pool->done_tail)
            pool->done_tail->next = job;
        else
            pool->done = job;
        pool->done_tail = job;
        if (was_empty)
            wake_loop(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    if (w->W)
        lua_close(w->W);
    w->W = NULL;
    return NULL;
}

lua_State *
lasio_worker_lua_(struct lasio_worker *w, int (*init)(lua_State *W)) {
    if (w->W)
        return w->W;
    lua_State *W = luaL_newstate();
    if (!W)
        return NULL;
    lua_pushcfunction(W, init);
    if (lua_pcall(W, 0, 0, 0) != LUA_OK) {
        lua_close(W);
        return NULL;
    }
    lua_pushlightuserdata(W, w->pool); /* a light userdata: cannot fail */
    lua_rawsetp(W, LUA_REGISTRYINDEX, &worker_pool_key);
    pthread_mutex_lock(&w->pool->lock);
    w->W = W;
    if (w->pool->shutdown) /* too late: stop at once */
        lua_sethook(W, stop_hook, LUA_MASKCOUNT, 1);
    pthread_mutex_unlock(&w->pool->lock);
    return W;
}

/* Starts a worker; returns -1 when the thread cannot be created. Called
 * with the lock held. Workers block every signal: the hub's handler then
 * always runs on a thread that is not in the middle of a job. */
static int
start_worker(struct lasio_pool *pool) {
    if (pool->nworkers >= MAX_WORKERS)
        return 0;
    struct lasio_worker *w = &pool->workers[pool->nworkers];
    memset(w, 0, sizeof *w);
    w->pool = pool;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    w->started = 1;
    pool->nworkers++;
    return 0;
}

/* ====== } */

/* {====== Shutdown ====== */

static void
free_posted(struct lasio_posted *p) {
    while (p) {
        struct lasio_posted *next = p->next;
        lasio_posted_free_(p);
        p = next;
    }
}

static void
free_list(struct lasio_job *job) {
    while (job) {
        struct lasio_job *next = job->next;
        job->type->free(job);
        job = next;
    }
}

/* Stops and joins every worker, frees every job; runs no Lua code of the
 * loop's state. Idempotent. */
static void
pool_release(struct lasio_pool *pool) {
    if (pool->released)
        return;
    pool->released = 1;
    lasio_io_unlink_(pool->loop, &pool->link, &pool->linked);
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = 1;
    for (int i = 0; i < pool->nworkers; i++) {
        struct lasio_worker *w = &pool->workers[i];
        if (w->job && w->W) /* interrupt a long Lua job */
            lua_sethook(w->W, stop_hook,
                        LUA_MASKCOUNT | LUA_MASKCALL | LUA_MASKRET, 1);
    }
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nworkers; i++)
        if (pool->workers[i].started)
            pthread_join(pool->workers[i].thread, NULL);
    pool->nworkers = 0;
    free_list(pool->queue);
    free_list(pool->done);
    free_posted(pool->posted);
    pool->posted = pool->posted_tail = NULL;
    pool->queue = pool->queue_tail = pool->done = pool->done_tail = NULL;
    if (pool->wake_ev)
        event_free(pool->wake_ev);
    pool->wake_ev = NULL;
    if (pool->wake_fd >= 0)
        close(pool->wake_fd);
    pool->wake_fd = -1;
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
}

static void
link_release(struct lasio_iolink *link) {
    struct lasio_pool *pool = (struct lasio_pool *)link;
    pool->linked = 0;
    pool_release(pool);
}

static int
pool_gc(lua_State *L) {
    struct lasio_pool *pool = lua_touserdata(L, 1);
    if (pool->loop) /* fully built */
        pool_release(pool);
    return 0;
}

/* ====== } */

/* {====== Delivery on the loop ====== */

/* Pushes the anchor table of a job. [-0, +1, -] */
static void
pushanchor(lua_State *L, struct lasio_loop *loop, struct lasio_job *job) {
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_rawgeti(L, -1, job->anchor);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* The job is over for the loop: unanchor, uncount. */
static void
retire(lua_State *L, struct lasio_loop *loop, struct lasio_job *job) {
    lasio_sys_unanchor_(L, loop, &job->anchor);
    if (job->counted) {
        job->counted = 0;
        lasio_sys_uncount_(loop);
        loop->vholds--;
    }
}

static int
box_gc(lua_State *L) {
    struct lasio_job **box = lua_touserdata(L, 1);
    if (*box)
        (*box)->type->free(*box);
    *box = NULL;
    return 0;
}

struct lasio_job **
lasio_pool_box_(lua_State *L) {
    struct lasio_job **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    return box;
}

static int
postbox_gc(lua_State *L) {
    struct lasio_posted **box = lua_touserdata(L, 1);
    free_posted(*box);
    *box = NULL;
    return 0;
}

/* Pushes a box for a list of posted calls: its __gc frees what is left
 * in it, so an error leaks nothing. [-0, +1, m] */
static struct lasio_posted **
postbox(lua_State *L) {
    struct lasio_posted **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, postbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    return box;
}

/* Delivers every finished job and schedules every posted call (protected;
 * the light userdata is the pool). A job being delivered sits in a box,
 * the posted calls in another, so an error leaks nothing. */
static int
deliver_body(lua_State *L) {
    struct lasio_pool *pool = lua_touserdata(L, 1);
    struct lasio_loop *loop = pool->loop;
    for (;;) {
        lua_settop(L, 1);
        struct lasio_posted **posts = postbox(L);
        struct lasio_job **box = lasio_pool_box_(L);
        /* the calls posted so far, then one job: a job's calls were
         * posted before it was done, so they go first */
        pthread_mutex_lock(&pool->lock);
        *posts = pool->posted;
        pool->posted = pool->posted_tail = NULL;
        struct lasio_job *job = pool->done;
        if (job) {
            pool->done = job->next;
            if (!pool->done)
                pool->done_tail = NULL;
            job->next = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
        *box = job;
        while (*posts) {
            struct lasio_posted *p = *posts;
            lasio_posted_schedule_(L, loop, p);
            *posts = p->next;
            lasio_posted_free_(p);
        }
        if (!job)
            return 0;
        pushanchor(L, loop, job);
        lua_rawgeti(L, -1, 1);
        int fidx = lua_gettop(L);
        struct lasio_future *f = lasio_tofuture_(L, fidx);
        if (loop->trace) {
            lasio_trace_emit_(loop, TEV_THREAD_DONE, 0, (int64_t)job->seq, 0, 0,
                              NULL);
            lasio_trace_by_(loop, TBY_THREAD);
        }
        if (f && f->state == FUT_PENDING) {
            int n = job->type->deliver(L, job, fidx - 1);
            if (n >= 0)
                lasio_future_finish_(L, fidx, f, n);
            else
                lasio_future_fail_(L, fidx, f); /* traceback, error */
        }
        lasio_trace_by_(loop, TBY_NONE);
        retire(L, loop, job);
        *box = NULL;
        job->type->free(job);
    }
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg) {
    struct lasio_pool *pool = arg;
    uint64_t n;
    (void)what;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    if (lasio_io_guard_(pool->loop, deliver_body, pool) == 0)
        return;
    /* stopped by an error (memory): what is left is tried again on the
     * next wake-up, which nothing else would bring */
    pthread_mutex_lock(&pool->lock);
    if (pool->done || pool->posted)
        wake_loop(pool);
    pthread_mutex_unlock(&pool->lock);
}

/* ====== } */

/* {====== Calls posted by workers ====== */

struct lasio_pool *
lasio_worker_pool_(lua_State *W) {
    lua_rawgetp(W, LUA_REGISTRYINDEX, &worker_pool_key);
    struct lasio_pool *pool = lua_touserdata(W, -1);
    lua_pop(W, 1);
    return pool;
}

int
lasio_pool_post_(struct lasio_pool *pool, struct lasio_posted *p) {
    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    p->next = NULL;
    int was_empty = pool->posted == NULL;
    if (pool->posted_tail)
        pool->posted_tail->next = p;
    else
        pool->posted = p;
    pool->posted_tail = p;
    if (was_empty)
        wake_loop(pool);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

/* ====== } */

/* {====== Submitting ====== */

/* Pushes the loop's pool, created on first use. [-0, +1, m] */
static struct lasio_pool *
getpool(lua_State *L, struct lasio_loop *loop) {
    lasio_pushloop_(L, loop);
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_remove(L, -2);
    if (lua_rawgetp(L, -1, &pool_key) != LUA_TNIL) {
        lua_remove(L, -2);
        return lua_touserdata(L, -1);
    }
    lua_pop(L, 1);
    struct lasio_pool *pool = lua_newuserdatauv(L, sizeof *pool, 0);
    memset(pool, 0, sizeof *pool);
    pool->wake_fd = -1;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if (pthread_mutex_init(&pool->lock, NULL) != 0)
        luaL_error(L, "cannot create the thread pool");
    if (pthread_cond_init(&pool->cond, NULL) != 0) {
        pthread_mutex_destroy(&pool->lock);
        luaL_error(L, "cannot create the thread pool");
    }
    pool->loop = loop; /* from here on __gc releases */
    pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->wake_fd >= 0)
        pool->wake_ev = event_new(loop->base, pool->wake_fd,
                                  EV_READ | EV_PERSIST, wake_cb, pool);
    if (!pool->wake_ev || event_add(pool->wake_ev, NULL) < 0)
        luaL_error(L, "cannot create the thread pool");
    lasio_iolink_add_(loop, &pool->link);
    pool->link.release = link_release;
    pool->linked = 1;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, &pool_key);
    lua_remove(L, -2);
    return pool;
}

/* Done callback of a job's Future: a cancelled job still queued is taken
 * out; one running goes on and its result is dropped. Upvalues: the pool,
 * the job's sequence number. */
static int
cancel_cb(lua_State *L) {
    struct lasio_future *f = lasio_tofuture_(L, 1);
    struct lasio_pool *pool = lua_touserdata(L, lua_upvalueindex(1));
    unsigned long seq = (unsigned long)lua_tointeger(L, lua_upvalueindex(2));
    if (!f || f->state != FUT_CANCELLED || pool->released)
        return 0;
    struct lasio_job *found = NULL, *running = NULL;
    pthread_mutex_lock(&pool->lock);
    for (struct lasio_job **pp = &pool->queue; *pp; pp = &(*pp)->next) {
        if ((*pp)->seq == seq) {
            found = *pp;
            *pp = found->next;
            found->next = NULL;
            break;
        }
    }
    if (found) {
        pool->nqueued--;
        pool->queue_tail = NULL;
        for (struct lasio_job *j = pool->queue; j; j = j->next)
            pool->queue_tail = j;
    }
    for (int i = 0; !found && i < pool->nworkers; i++)
        if (pool->workers[i].job && pool->workers[i].job->seq == seq)
            running = pool->workers[i].job;
    if (running && running->counted) { /* only the loop thread reads it */
        running->counted = 0;
        lasio_sys_uncount_(pool->loop);
        pool->loop->vholds--;
    }
    pthread_mutex_unlock(&pool->lock);
    if (found) {
        struct lasio_job **box = lasio_pool_box_(L);
        *box = found;
        retire(L, pool->loop, found);
        *box = NULL;
        found->type->free(found);
    }
    return 0;
}

struct lasio_future *
lasio_pool_start_(lua_State *L, struct lasio_loop *loop, struct lasio_job **box,
                  int nextra, const char *what) {
    int extra = lua_gettop(L) - nextra + 1;
    struct lasio_pool *pool = getpool(L, loop);
    int pidx = lua_gettop(L);
    /* the Future and its anchor table {future, extras...} */
    lasio_future_push_(L, loop);
    int fidx = lua_gettop(L);
    lua_createtable(L, nextra + 1, 0);
    lua_pushvalue(L, fidx);
    lua_rawseti(L, -2, 1);
    for (int i = 0; i < nextra; i++) {
        lua_pushvalue(L, extra + i);
        lua_rawseti(L, -2, i + 2);
    }
    struct lasio_job *job = *box;
    job->anchor = LUA_NOREF;
    job->counted = 0;
    job->next = NULL;
    lasio_sys_anchor_(L, loop, -1, &job->anchor);
    lua_pop(L, 1);
    job->seq = ++pool->seq;
    lua_pushvalue(L, pidx);
    lua_pushinteger(L, (lua_Integer)job->seq);
    lua_pushcclosure(L, cancel_cb, 2);
    lasio_future_add_callback_(L, fidx, lasio_tofuture_(L, fidx), -1);
    lua_pop(L, 1);
    /* from here nothing raises: hand the job over */
    pthread_mutex_lock(&pool->lock);
    /* a worker per queued job beyond the idle ones, up to MAX_WORKERS:
     * testing nidle alone let one idle worker take every job of a burst */
    if (pool->nqueued >= pool->nidle && start_worker(pool) < 0 &&
        pool->nworkers == 0) {
        pthread_mutex_unlock(&pool->lock);
        lasio_sys_unanchor_(L, loop, &job->anchor);
        lasio_sys_raise_(L, what, EAGAIN, NULL);
    }
    if (pool->queue_tail)
        pool->queue_tail->next = job;
    else
        pool->queue = job;
    pool->queue_tail = job;
    pool->nqueued++;
    *box = NULL;
    job->counted = 1;
    loop->nsources++;
    loop->vholds++; /* a virtual clock holds for it */
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_THREAD_SUBMIT,
                          loop->current ? loop->current->id : 0,
                          (int64_t)job->seq, 0, 0, NULL);
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    lua_replace(L, pidx); /* the Future on top, where the pool was */
    lua_settop(L, pidx);
    return lasio_tofuture_(L, pidx);
}

int
lasio_pool_submit_(lua_State *L, struct lasio_job **box, int nextra,
                   const char *what) {
    struct lasio_loop *loop;
    lasio_check_await_(L, &loop, what);
    lasio_pool_start_(L, loop, box, nextra, what);
    return lasio_await_(L, lua_gettop(L), what);
}

/* ====== } */
