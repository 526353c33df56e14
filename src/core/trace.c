/*
 * trace.c: the loop's event trace (docs/SEEING.md): the sites' C side, which
 * appends fixed-size binary records to a growing array or a ring, the
 * strings those records name (interned into a C table of the trace's own),
 * the task names, starting and stopping a recording and the embedder's
 * sink. Invariant: the trace holds no Lua value, so it is written from C
 * alone (at loop close, os.exit, a timed stop) and never runs Lua code.
 *
 * Fields of a record per event (the others are 0):
 *   task.create  task, a parent id, s1 name (0: "Task-<id>"), s2 site
 *   task.ready   task, kind by, a the waking task's id (by TBY_TASK)
 *   task.run     task
 *   task.wait    task, kind wait kind, a number, s1 what, s2 site,
 *                b stack summary id (--trace-stacks)
 *   task.cancel  task, kind by, a canceller's id, s1 message
 *   task.done    task, kind status, s1 error
 *   task.rename  task, s1 name
 *   timer.*      a timer id, b deadline (ns)
 *   io.*         a fd (-1 unknown), s1 what
 *   cb.run       s1 what
 *   thread.*     a job id
 *   loop.poll    a ready, b tasks, c timers, task fds (wake-up sources)
 *   clock.jump   a from, b to
 *   mark/begin/end  task, s1 name, s2 args (JSON object text)
 *   counter      s1 name, a value (kind 1: a double's bits)
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/core.h"

#define TRACE_CAP0 4096

/* {====== Interned strings ====== */

static uint32_t
hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int
grow_index(struct lasio_trace *tr) {
    uint32_t cap = tr->icap ? tr->icap * 2 : 256;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return -1;
    for (uint32_t id = 1; id <= tr->nstr; id++) {
        uint32_t h = hash_bytes(tr->str[id], tr->slen[id]) & (cap - 1);
        while (idx[h])
            h = (h + 1) & (cap - 1);
        idx[h] = id;
    }
    free(tr->index);
    tr->index = idx;
    tr->icap = cap;
    return 0;
}

/* The id of the n bytes at s, added when new; 0 when out of memory (the
 * event then names nothing rather than failing). */
static uint32_t
intern(struct lasio_trace *tr, const char *s, size_t n) {
    if (!s)
        return 0;
    if ((tr->nstr + 1) * 2 > tr->icap && grow_index(tr) < 0)
        return 0;
    uint32_t h = hash_bytes(s, n) & (tr->icap - 1);
    for (uint32_t id; (id = tr->index[h]) != 0; h = (h + 1) & (tr->icap - 1))
        if (tr->slen[id] == n && memcmp(tr->str[id], s, n) == 0)
            return id;
    if (tr->nstr + 1 >= tr->strcap) {
        uint32_t cap = tr->strcap ? tr->strcap * 2 : 256;
        char **str = realloc(tr->str, cap * sizeof *str);
        if (!str)
            return 0;
        tr->str = str;
        uint32_t *slen = realloc(tr->slen, cap * sizeof *slen);
        if (!slen)
            return 0;
        tr->slen = slen;
        tr->strcap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return 0;
    memcpy(copy, s, n);
    copy[n] = '\0';
    uint32_t id = ++tr->nstr;
    tr->str[id] = copy;
    tr->slen[id] = (uint32_t)n;
    tr->index[h] = id;
    return id;
}

static uint32_t
intern_cstr(struct lasio_trace *tr, const char *s) {
    return s ? intern(tr, s, strlen(s)) : 0;
}

const char *
lasio_trace_str_(struct lasio_trace *tr, uint32_t id, size_t *len) {
    if (id == 0 || id > tr->nstr) {
        *len = 0;
        return NULL;
    }
    *len = tr->slen[id];
    return tr->str[id];
}

/* ====== } */

/* {====== Appending ====== */

/* A new record of the loop's trace at the clock's now, or NULL when
 * nothing keeps records (a sink alone gets it from `emitted`). */
static struct lasio_trace_rec *
append(struct lasio_loop *loop, struct lasio_trace *tr, int ev, int32_t task) {
    struct lasio_trace_rec *r;
    if (!tr->recording) {
        r = &tr->scratch; /* never kept: for the sink only */
    } else if (tr->ring) {
        if (tr->n < tr->ring) {
            r = &tr->recs[tr->n++];
        } else {
            r = &tr->recs[tr->head];
            tr->head = (tr->head + 1) % tr->ring;
        }
    } else {
        if (tr->n == tr->cap) {
            size_t cap = tr->cap ? tr->cap * 2 : TRACE_CAP0;
            void *recs = realloc(tr->recs, cap * sizeof *tr->recs);
            if (!recs)
                return NULL; /* out of memory: the event is lost */
            tr->recs = recs;
            tr->cap = cap;
        }
        r = &tr->recs[tr->n++];
    }
    memset(r, 0, sizeof *r);
    r->ts = loop->vc ? loop->vnow : lasio_mono_ns_() - tr->start;
    r->ev = (uint8_t)ev;
    r->task = task;
    return r;
}

/* After a record is filled: the embedder's sink gets it. */
static void
emitted(struct lasio_trace *tr, const struct lasio_trace_rec *r) {
    if (!tr->sink || !r)
        return;
    char *buf = NULL;
    size_t cap = 0;
    long n = lasio_trace_jsonl_line_(tr, r, ++tr->sink_seq, &buf, &cap);
    if (n >= 0) {
        struct lasio_trace_event e = {(long long)tr->sink_seq,
                                      (long long)r->ts,
                                      NULL,
                                      r->task,
                                      buf,
                                      (size_t)n};
        static const char *const names[TEV_N] = {
            NULL,        "task.create", "task.ready",    "task.run",
            "task.wait", "task.cancel", "task.done",     "task.rename",
            "timer.add", "timer.fire",  "timer.cancel",  "io.wait",
            "io.ready",  "cb.run",      "thread.submit", "thread.done",
            "loop.poll", "clock.jump",  "mark",          "begin",
            "end",       "counter"};
        e.ev = names[r->ev];
        tr->sink(tr->sink_ud, &e);
    }
    free(buf);
}

/* The id of the current task, or 0. */
static int32_t
current_id(struct lasio_loop *loop) {
    return loop->current ? loop->current->id : 0;
}

static void
set_name(struct lasio_trace *tr, int32_t id, uint32_t name) {
    if (id <= 0)
        return;
    if (id >= tr->ncap) {
        int32_t cap = tr->ncap ? tr->ncap : 256;
        while (cap <= id)
            cap *= 2;
        uint32_t *names = realloc(tr->names, (size_t)cap * sizeof *names);
        if (!names)
            return;
        memset(names + tr->ncap, 0, (size_t)(cap - tr->ncap) * sizeof *names);
        tr->names = names;
        tr->ncap = cap;
    }
    tr->names[id] = name;
}

/* Is source one of the facade files (under lua/lasio, or compiled in as
 * lasio/)? */
static int
in_facade(const char *src) {
    return strncmp(src, "@lasio/", 7) == 0 || strstr(src, "/lua/lasio/") ||
           strncmp(src, "@lua/lasio/", 11) == 0;
}

/* "file:line" of the innermost Lua function of L outside the facade, as
 * an interned id (0 when there is none). [-0, +0, m] */
static uint32_t
site_of(struct lasio_trace *tr, lua_State *L) {
    lua_Debug ar;
    for (int level = 0; level < 24 && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 ||
            in_facade(ar.source))
            continue;
        /* "file:line", by hand: this runs at every task creation */
        char buf[LUA_IDSIZE + 24];
        size_t n = strlen(ar.short_src);
        memcpy(buf, ar.short_src, n);
        buf[n++] = ':';
        char num[12], *p = num + sizeof num;
        int line = ar.currentline;
        do {
            *--p = (char)('0' + line % 10);
            line /= 10;
        } while (line);
        memcpy(buf + n, p, (size_t)(num + sizeof num - p));
        n += (size_t)(num + sizeof num - p);
        return intern(tr, buf, n);
    }
    return 0;
}

/* A one-line summary of L's Lua stack: "f.lua:3 < g.lua:9 < ...".
 * [-0, +0, m] */
static uint32_t
stack_of(struct lasio_trace *tr, lua_State *L) {
    lua_Debug ar;
    char buf[512];
    size_t n = 0;
    for (int level = 0; level < 16 && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
            continue;
        int k = snprintf(buf + n, sizeof buf - n, "%s%s:%d", n ? " < " : "",
                         ar.short_src, ar.currentline);
        if (k < 0 || (size_t)k >= sizeof buf - n)
            break;
        n += (size_t)k;
    }
    return intern(tr, buf, n);
}

/* The text of the value at idx without calling a metamethod: a string, an
 * error object's message, else its type. [-0, +0, -] */
static uint32_t
text_of(struct lasio_trace *tr, lua_State *L, int idx) {
    size_t n;
    const char *s;
    if (lua_type(L, idx) == LUA_TSTRING) {
        s = lua_tolstring(L, idx, &n);
        return intern(tr, s, n);
    }
    if (lua_type(L, idx) == LUA_TTABLE) {
        lua_pushliteral(L, "message");
        lua_rawget(L, idx < 0 ? idx - 1 : idx);
        uint32_t id = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &n);
            id = intern(tr, s, n);
        }
        lua_pop(L, 1);
        if (id)
            return id;
    }
    return intern_cstr(tr, luaL_typename(L, idx));
}

void
lasio_trace_create_(lua_State *L, struct lasio_loop *loop,
                    struct lasio_task *t) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_CREATE, t->id);
    set_name(tr, t->id, 0);
    if (!r)
        return;
    r->a = current_id(loop);
    r->s2 = site_of(tr, L);
    emitted(tr, r);
}

void
lasio_trace_ready_(struct lasio_loop *loop, struct lasio_task *t) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_READY, t->id);
    if (!r)
        return;
    if (tr->by != TBY_NONE) {
        r->kind = tr->by;
        r->a = tr->by_task;
    } else if (loop->current && loop->current != t) {
        r->kind = TBY_TASK;
        r->a = loop->current->id;
    } else
        r->kind = loop->current ? TBY_START : TBY_CB;
    if (loop->current == t && tr->by == TBY_NONE) {
        r->kind = TBY_TASK; /* sleep(0), a yield: it readies itself */
        r->a = t->id;
    }
    emitted(tr, r);
}

void
lasio_trace_wait_(lua_State *L, struct lasio_loop *loop, struct lasio_task *t,
                  int kind, int64_t a, const char *what) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_WAIT, t->id);
    if (!r)
        return;
    r->kind = (uint8_t)kind;
    r->a = a;
    r->s1 = intern_cstr(tr, what);
    r->s2 = site_of(tr, L);
    if (tr->stacks)
        r->b = stack_of(tr, L);
    emitted(tr, r);
}

void
lasio_trace_cancel_(lua_State *L, struct lasio_loop *loop, struct lasio_task *t,
                    int msgidx) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_CANCEL, t->id);
    if (!r)
        return;
    if (loop->current) {
        r->kind = TBY_TASK;
        r->a = loop->current->id;
    } else
        r->kind = tr->by != TBY_NONE ? tr->by : TBY_CB;
    if (msgidx && !lua_isnil(L, msgidx))
        r->s1 = text_of(tr, L, msgidx);
    emitted(tr, r);
}

void
lasio_trace_done_(lua_State *L, int idx, struct lasio_loop *loop,
                  struct lasio_task *t) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_DONE, t->id);
    if (!r)
        return;
    if (t->fut.state == FUT_CANCELLED)
        r->kind = TDONE_CANCELLED;
    else if (t->fut.nresults < 0) {
        r->kind = TDONE_ERROR;
        lua_getiuservalue(L, idx, FUT_UV_RESULT);
        r->s1 = text_of(tr, L, -1);
        lua_pop(L, 1);
    } else
        r->kind = TDONE_OK;
    emitted(tr, r);
}

void
lasio_trace_rename_(lua_State *L, struct lasio_loop *loop, struct lasio_task *t,
                    int nameidx) {
    struct lasio_trace *tr = loop->trace;
    size_t n;
    const char *s = lua_tolstring(L, nameidx, &n);
    uint32_t id = intern(tr, s, n);
    set_name(tr, t->id, id);
    struct lasio_trace_rec *r = append(loop, tr, TEV_TASK_RENAME, t->id);
    if (!r)
        return;
    r->s1 = id;
    emitted(tr, r);
}

void
lasio_trace_emit_(struct lasio_loop *loop, int ev, int32_t task, int64_t a,
                  int64_t b, int64_t c, const char *what) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, ev, task);
    if (!r)
        return;
    r->a = a;
    r->b = b;
    r->c = c;
    if (ev >= TEV_TIMER_ADD && ev <= TEV_TIMER_CANCEL && !loop->vc)
        r->b -= tr->start; /* deadlines on the trace's clock */
    r->s1 = intern_cstr(tr, what);
    emitted(tr, r);
}

void
lasio_trace_user_(struct lasio_loop *loop, int ev, const char *name,
                  size_t namelen, const char *args, size_t argslen, int isfloat,
                  int64_t value) {
    struct lasio_trace *tr = loop->trace;
    struct lasio_trace_rec *r = append(loop, tr, ev, current_id(loop));
    if (!r)
        return;
    r->s1 = intern(tr, name, namelen);
    r->s2 = args ? intern(tr, args, argslen) : 0;
    r->kind = (uint8_t)isfloat;
    r->a = value;
    emitted(tr, r);
}

/* ====== } */

/* {====== Starting and stopping ====== */

int
lasio_trace_format_of_(const char *path) {
    size_t n = strlen(path);
    if (n >= 6 && strcmp(path + n - 6, ".jsonl") == 0)
        return TRACE_JSONL;
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0)
        return TRACE_CHROME;
    return -1;
}

/* The loop's trace, made when missing. */
static struct lasio_trace *
get_trace(struct lasio_loop *loop) {
    if (loop->trace)
        return loop->trace;
    struct lasio_trace *tr = calloc(1, sizeof *tr);
    if (!tr)
        return NULL;
    loop->trace = tr;
    return tr;
}

/* Frees tr when it has no more use (no recording, no sink). */
static void
drop_if_idle(struct lasio_loop *loop) {
    struct lasio_trace *tr = loop->trace;
    if (!tr || tr->recording || tr->sink)
        return;
    for (uint32_t id = 1; id <= tr->nstr; id++)
        free(tr->str[id]);
    free(tr->str);
    free(tr->slen);
    free(tr->index);
    free(tr->names);
    free(tr->recs);
    free(tr->path);
    free(tr);
    loop->trace = NULL;
}

int
lasio_trace_start_(struct lasio_loop *loop, const char *path, int format,
                   size_t ring, int stacks, char *err, size_t errlen) {
    if (loop->trace && loop->trace->recording) {
        snprintf(err, errlen, "a trace is being recorded already (to '%s')",
                 loop->trace->path);
        return -1;
    }
    FILE *out = fopen(path, "w");
    if (!out) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    char *copy = strdup(path);
    struct lasio_trace *tr = copy ? get_trace(loop) : NULL;
    if (ring && tr) {
        tr->recs = malloc(ring * sizeof *tr->recs);
        if (!tr->recs)
            tr = NULL;
    }
    if (!tr) {
        free(copy);
        fclose(out);
        drop_if_idle(loop);
        snprintf(err, errlen, "not enough memory");
        return -1;
    }
    tr->out = out;
    tr->path = copy;
    tr->format = (uint8_t)format;
    tr->ring = ring;
    tr->cap = ring;
    tr->n = tr->head = 0;
    tr->stacks = (uint8_t)(stacks != 0);
    tr->start = loop->vc ? loop->vnow : lasio_mono_ns_();
    int det = 0;
    tr->virt = (uint8_t)(loop->vc != NULL);
    tr->has_seed = (uint8_t)lasio_vclock_seed_(loop, &tr->seed, &det);
    tr->deterministic = (uint8_t)det;
    tr->recording = 1;
    return 0;
}

/* Writes the records over the open file from its start (a snapshot may
 * have written it before). */
static int
rewrite(struct lasio_trace *tr) {
    if (fflush(tr->out) != 0 || fseek(tr->out, 0, SEEK_SET) != 0 ||
        ftruncate(fileno(tr->out), 0) != 0)
        return -1;
    return lasio_trace_write_(tr);
}

/* Writes the records to the open file, then closes it. */
static int
write_out(struct lasio_trace *tr) {
    int rc = rewrite(tr);
    if (fclose(tr->out) != 0)
        rc = -1;
    tr->out = NULL;
    return rc;
}

int
lasio_trace_stop_(struct lasio_loop *loop) {
    struct lasio_trace *tr = loop->trace;
    if (!tr || !tr->recording)
        return 0;
    if (tr->stop_ev) {
        event_free(tr->stop_ev);
        tr->stop_ev = NULL;
    }
    int rc = write_out(tr);
    int saved = errno;
    void (*done)(void *, int, const char *) = tr->on_written;
    void *ud = tr->on_written_ud;
    char *path = tr->path;
    tr->path = NULL;
    tr->on_written = NULL;
    tr->recording = 0;
    free(tr->recs);
    tr->recs = NULL;
    tr->n = tr->cap = tr->ring = tr->head = 0;
    if (done)
        done(ud, rc, path);
    free(path);
    drop_if_idle(loop);
    errno = saved;
    return rc;
}

int
lasio_trace_snapshot_(struct lasio_loop *loop) {
    struct lasio_trace *tr = loop->trace;
    if (!tr || !tr->recording || !tr->out)
        return 0;
    int rc = rewrite(tr); /* what is kept now, over the file */
    return fflush(tr->out) == 0 ? rc : -1;
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    lasio_trace_stop_(arg);
}

int
lasio_trace_record_for_(struct lasio_loop *loop, const char *path, int format,
                        double seconds,
                        void (*done)(void *ud, int status, const char *path),
                        void *ud, char *err, size_t errlen) {
    if (loop->closed || !loop->base) {
        snprintf(err, errlen, "the loop is closed");
        return -1;
    }
    if (lasio_trace_start_(loop, path, format, 0, 0, err, errlen) < 0)
        return -1;
    struct lasio_trace *tr = loop->trace;
    tr->stop_ev = evtimer_new(loop->base, stop_cb, loop);
    int64_t us = (int64_t)(seconds * 1e6);
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    if (!tr->stop_ev || evtimer_add(tr->stop_ev, &tv) < 0) {
        lasio_trace_stop_(loop);
        snprintf(err, errlen, "not enough memory");
        return -1;
    }
    tr->on_written = done;
    tr->on_written_ud = ud;
    return 0;
}

int
lasio_trace_sink_(struct lasio_loop *loop, lasio_trace_fn fn, void *ud) {
    if (!fn) {
        if (loop->trace) {
            loop->trace->sink = NULL;
            drop_if_idle(loop);
        }
        return 0;
    }
    struct lasio_trace *tr = get_trace(loop);
    if (!tr)
        return -1;
    tr->sink = fn;
    tr->sink_ud = ud;
    return 0;
}

void
lasio_trace_free_(struct lasio_loop *loop) {
    if (!loop->trace)
        return;
    lasio_trace_stop_(loop);
    if (loop->trace) {
        loop->trace->sink = NULL;
        drop_if_idle(loop);
    }
}

/* ====== } */

/* {====== Embedding: lasio_trace_set_sink ====== */

int
lasio_trace_set_sink(lua_State *L, lasio_trace_sink_fn fn, void *ud) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop)
        return LASIO_ECLOSED;
    return lasio_trace_sink_(loop, fn, ud) < 0 ? LUA_ERRMEM : LUA_OK;
}

/* ====== } */
