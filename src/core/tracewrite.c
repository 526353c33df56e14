/*
 * tracewrite.c: the trace writers (docs/SEEING.md, The trace format): JSONL,
 * one lasio event a line after a header line, and Chrome Trace Event JSON,
 * one track per task with run / wait / ready slices, wake and spawn flows,
 * instants and counters. Both format the binary records of trace.c in one
 * pass at the end, in C only. Invariant: the output depends on the records
 * alone (no addresses, no wall clock in virtual time), so two runs with one
 * seed write the same bytes.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* {====== A growing text buffer ====== */

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void
reserve(struct sbuf *b, size_t k) {
    if (b->oom || b->n + k + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + k + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void
put(struct sbuf *b, const char *s, size_t n) {
    reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

#define PUTLIT(b, s) put((b), "" s, sizeof(s) - 1)

/* Decimal digits of v at the end of buf (24 bytes): returns the first.
 * By hand: snprintf costs ten times more, and the writer formats
 * millions of numbers. */
static char *
digits(char *end, long long v) {
    unsigned long long u =
        v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

static void
put_int(struct sbuf *b, long long v) {
    char buf[24];
    char *p = digits(buf + sizeof buf, v);
    put(b, p, (size_t)(buf + sizeof buf - p));
}

/* ns as microseconds, exactly: "12", "12.5", "12.345" */
static void
put_us(struct sbuf *b, int64_t ns) {
    int64_t a = ns < 0 ? -ns : ns;
    if (ns < 0)
        PUTLIT(b, "-");
    put_int(b, (long long)(a / 1000));
    int frac = (int)(a % 1000);
    if (frac) {
        char f[4] = {'.', (char)('0' + frac / 100),
                     (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
        size_t n = 4;
        while (f[n - 1] == '0')
            n--;
        put(b, f, n);
    }
}

static void
put_double(struct sbuf *b, double v) {
    char buf[32];
    int n;
    if (v != v || v - v != 0) /* nan, inf: JSON has neither */
        n = snprintf(buf, sizeof buf, "null");
    else if (v == (double)(long long)v && v < 1e15 && v > -1e15)
        n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    else
        n = snprintf(buf, sizeof buf, "%.17g", v);
    put(b, buf, (size_t)n);
}

/* lasio_json_quote_'s sink. */
static void
sbuf_put(void *ud, const char *s, size_t n) {
    put(ud, s, n);
}

static void
put_jstr(struct sbuf *b, const char *s, size_t n) {
    reserve(b, n + 2);
    lasio_json_quote_(s, n, sbuf_put, b);
}

static void
put_sid(struct sbuf *b, struct lasio_trace *tr, uint32_t id) {
    size_t n;
    const char *s = lasio_trace_str_(tr, id, &n);
    put_jstr(b, s ? s : "", n);
}

/* ====== } */

/* {====== Event fields ====== */

static const char *const ev_names[TEV_N] = {
    NULL,           "task.create", "task.ready",  "task.run",  "task.wait",
    "task.cancel",  "task.done",   "task.rename", "timer.add", "timer.fire",
    "timer.cancel", "io.wait",     "io.ready",    "cb.run",    "thread.submit",
    "thread.done",  "loop.poll",   "clock.jump",  "mark",      "begin",
    "end",          "counter"};

static const char *const by_names[] = {"?",  "task",   "timer", "io",
                                       "cb", "thread", "start", "cancel"};

static const char *const status_names[] = {"?", "ok", "error", "cancelled"};

/* A task's name: its current one, else "Task-<id>". */
static void
put_name(struct sbuf *b, struct lasio_trace *tr, int32_t id, uint32_t sid) {
    if (sid) {
        put_sid(b, tr, sid);
        return;
    }
    PUTLIT(b, "\"Task-");
    put_int(b, id);
    PUTLIT(b, "\"");
}

static void
put_by(struct sbuf *b, int kind, int64_t id) {
    if (kind == TBY_TASK)
        put_int(b, id);
    else {
        const char *s = by_names[kind < 8 ? kind : 0];
        put_jstr(b, s, strlen(s));
    }
}

/* What a wait event waits on, as text (no quotes). */
static void
put_what_raw(struct sbuf *b, struct lasio_trace *tr,
             const struct lasio_trace_rec *r) {
    char buf[64];
    int n = 0;
    size_t len;
    const char *s;
    switch (r->kind) {
    case TWAIT_SLEEP:
        n = snprintf(buf, sizeof buf, "sleep %.9g", (double)r->a / 1e9);
        break;
    case TWAIT_FOREVER:
        n = snprintf(buf, sizeof buf, "sleep inf");
        break;
    case TWAIT_TASK:
        n = snprintf(buf, sizeof buf, "Task #%lld", (long long)r->a);
        break;
    default:
        s = lasio_trace_str_(tr, r->s1, &len);
        put(b, s ? s : "?", s ? len : 1);
        return;
    }
    put(b, buf, (size_t)n);
}

static void
put_what(struct sbuf *b, struct lasio_trace *tr,
         const struct lasio_trace_rec *r) {
    struct sbuf t = {0};
    put_what_raw(&t, tr, r);
    put_jstr(b, t.p ? t.p : "", t.n);
    b->oom |= t.oom;
    free(t.p);
}

static void
put_counter_value(struct sbuf *b, const struct lasio_trace_rec *r) {
    if (r->kind) {
        double v;
        memcpy(&v, &r->a, sizeof v);
        put_double(b, v);
    } else
        put_int(b, r->a);
}

/* The fields of r after "ev" in the JSONL format: `,"task":1,...` */
static void
put_fields(struct sbuf *b, struct lasio_trace *tr,
           const struct lasio_trace_rec *r) {
    switch (r->ev) {
    case TEV_TASK_CREATE:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"name\":");
        put_name(b, tr, r->task, r->s1);
        PUTLIT(b, ",\"parent\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"site\":");
        put_sid(b, tr, r->s2);
        break;
    case TEV_TASK_READY:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"by\":");
        put_by(b, r->kind, r->a);
        break;
    case TEV_TASK_RUN:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        break;
    case TEV_TASK_WAIT:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"what\":");
        put_what(b, tr, r);
        PUTLIT(b, ",\"site\":");
        put_sid(b, tr, r->s2);
        if (r->b) {
            PUTLIT(b, ",\"stack\":");
            put_sid(b, tr, (uint32_t)r->b);
        }
        break;
    case TEV_TASK_CANCEL:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"by\":");
        put_by(b, r->kind, r->a);
        PUTLIT(b, ",\"msg\":");
        if (r->s1)
            put_sid(b, tr, r->s1);
        else
            PUTLIT(b, "null");
        break;
    case TEV_TASK_DONE:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"status\":\"");
        put(b, status_names[r->kind < 4 ? r->kind : 0],
            strlen(status_names[r->kind < 4 ? r->kind : 0]));
        PUTLIT(b, "\"");
        if (r->kind == TDONE_ERROR) {
            PUTLIT(b, ",\"err\":");
            put_sid(b, tr, r->s1);
        }
        break;
    case TEV_TASK_RENAME:
        PUTLIT(b, ",\"task\":");
        put_int(b, r->task);
        PUTLIT(b, ",\"name\":");
        put_sid(b, tr, r->s1);
        break;
    case TEV_TIMER_ADD:
    case TEV_TIMER_FIRE:
    case TEV_TIMER_CANCEL:
        PUTLIT(b, ",\"timer\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"when\":");
        put_int(b, r->b);
        break;
    case TEV_IO_WAIT:
    case TEV_IO_READY:
        PUTLIT(b, ",\"fd\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"what\":");
        put_sid(b, tr, r->s1);
        break;
    case TEV_CB_RUN:
        PUTLIT(b, ",\"what\":");
        put_sid(b, tr, r->s1);
        break;
    case TEV_THREAD_SUBMIT:
    case TEV_THREAD_DONE:
        PUTLIT(b, ",\"job\":");
        put_int(b, r->a);
        break;
    case TEV_LOOP_POLL:
        PUTLIT(b, ",\"ready\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"tasks\":");
        put_int(b, r->b);
        PUTLIT(b, ",\"timers\":");
        put_int(b, r->c);
        PUTLIT(b, ",\"fds\":");
        put_int(b, r->task);
        break;
    case TEV_CLOCK_JUMP:
        PUTLIT(b, ",\"from\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"to\":");
        put_int(b, r->b);
        break;
    case TEV_MARK:
    case TEV_BEGIN:
    case TEV_END:
        PUTLIT(b, ",\"name\":");
        put_sid(b, tr, r->s1);
        if (r->s2) {
            size_t n;
            const char *s = lasio_trace_str_(tr, r->s2, &n);
            PUTLIT(b, ",\"args\":");
            put(b, s, n);
        }
        if (r->ev != TEV_MARK) {
            PUTLIT(b, ",\"task\":");
            put_int(b, r->task);
        }
        break;
    case TEV_COUNTER:
        PUTLIT(b, ",\"name\":");
        put_sid(b, tr, r->s1);
        PUTLIT(b, ",\"value\":");
        put_counter_value(b, r);
        break;
    default:
        break;
    }
}

static void
put_jsonl(struct sbuf *b, struct lasio_trace *tr,
          const struct lasio_trace_rec *r, uint64_t seq) {
    PUTLIT(b, "{\"seq\":");
    put_int(b, (long long)seq);
    PUTLIT(b, ",\"ts\":");
    put_int(b, r->ts);
    PUTLIT(b, ",\"ev\":\"");
    put(b, ev_names[r->ev], strlen(ev_names[r->ev]));
    PUTLIT(b, "\"");
    put_fields(b, tr, r);
    PUTLIT(b, "}");
}

long
lasio_trace_jsonl_line_(struct lasio_trace *tr, const struct lasio_trace_rec *r,
                        uint64_t seq, char **buf, size_t *cap) {
    struct sbuf b = {*buf, 0, *cap, 0};
    put_jsonl(&b, tr, r, seq);
    *buf = b.p;
    *cap = b.cap;
    return b.oom ? -1 : (long)b.n;
}

/* The header's fields, without braces. */
static void
put_header_fields(struct sbuf *b, struct lasio_trace *tr) {
    PUTLIT(b, "\"lasio_trace\":1,\"clock\":");
    if (tr->virt)
        PUTLIT(b, "\"virtual\"");
    else
        PUTLIT(b, "\"real\"");
    PUTLIT(b, ",\"seed\":");
    if (tr->has_seed)
        put_int(b, tr->seed);
    else
        PUTLIT(b, "null");
    PUTLIT(b, ",\"deterministic\":");
    if (tr->deterministic)
        PUTLIT(b, "true");
    else
        PUTLIT(b, "false");
    PUTLIT(b, ",\"pid\":");
    put_int(b, tr->virt ? 1 : (long long)getpid());
    PUTLIT(b, ",\"start\":");
    put_int(b, tr->start);
}

/* ====== } */

/* The i-th record, oldest first. */
static const struct lasio_trace_rec *
rec_at(struct lasio_trace *tr, size_t i) {
    return &tr->recs[tr->ring ? (tr->head + i) % tr->ring : i];
}

static int
write_jsonl(struct lasio_trace *tr) {
    struct sbuf b = {0};
    PUTLIT(&b, "{");
    put_header_fields(&b, tr);
    PUTLIT(&b, "}\n");
    int rc = 0;
    for (size_t i = 0; i < tr->n && !b.oom; i++) {
        put_jsonl(&b, tr, rec_at(tr, i), i + 1);
        PUTLIT(&b, "\n");
        if (b.n > 65536) {
            if (fwrite(b.p, 1, b.n, tr->out) != b.n)
                rc = -1;
            b.n = 0;
        }
    }
    if (b.oom || fwrite(b.p, 1, b.n, tr->out) != b.n)
        rc = -1;
    free(b.p);
    return rc;
}

/* {====== Chrome Trace Event JSON ======
 * Each output event is formatted into one arena and sorted by (ts, order
 * of making), so every track's events come in time order; a slice is made
 * when it ends, with its start as ts. */

struct cev {
    int64_t ts;
    size_t order, off, len;
};

/* A task's open slice. */
struct track {
    uint8_t open; /* 0 none, else the record kind that opened it */
    int64_t since;
    uint64_t seq;
    size_t rec; /* the record that opened it (a wait's what) */
};

struct chrome {
    struct lasio_trace *tr;
    struct sbuf text;
    struct cev *ev;
    size_t n, cap;
    long long pid;
    long long flows;
    struct track *tracks;
    int32_t ntracks;
    struct sbuf tmp;
};

/* Starts an event at ts: its text follows in c->text until end_ev. */
static void
begin_ev(struct chrome *c, int64_t ts) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        struct cev *ev = realloc(c->ev, cap * sizeof *ev);
        if (!ev) {
            c->text.oom = 1;
            return;
        }
        c->ev = ev;
        c->cap = cap;
    }
    c->ev[c->n].ts = ts;
    c->ev[c->n].order = c->n;
    c->ev[c->n].off = c->text.n;
}

static void
end_ev(struct chrome *c) {
    if (c->text.oom || c->n == c->cap)
        return;
    c->ev[c->n].len = c->text.n - c->ev[c->n].off;
    c->n++;
}

/* `{"name":NAME,"ph":"P","ts":..,"pid":..,"tid":..` */
static void
put_head(struct chrome *c, const char *ph, int64_t ts, int32_t tid) {
    struct sbuf *b = &c->text;
    PUTLIT(b, ",\"ph\":\"");
    put(b, ph, strlen(ph));
    PUTLIT(b, "\",\"ts\":");
    put_us(b, ts);
    PUTLIT(b, ",\"pid\":");
    put_int(b, c->pid);
    PUTLIT(b, ",\"tid\":");
    put_int(b, tid);
}

static void
slice(struct chrome *c, int32_t tid, struct track *t, int64_t end) {
    struct sbuf *b = &c->text;
    const struct lasio_trace_rec *r = rec_at(c->tr, t->rec);
    begin_ev(c, t->since);
    PUTLIT(b, "{\"name\":");
    if (t->open == TEV_TASK_WAIT) {
        c->tmp.n = 0;
        PUTLIT(&c->tmp, "wait: ");
        put_what_raw(&c->tmp, c->tr, r);
        put_jstr(b, c->tmp.p ? c->tmp.p : "", c->tmp.n);
    } else if (t->open == TEV_TASK_RUN)
        PUTLIT(b, "\"run\"");
    else
        PUTLIT(b, "\"ready\"");
    put_head(c, "X", t->since, tid);
    PUTLIT(b, ",\"dur\":");
    put_us(b, end - t->since);
    PUTLIT(b, ",\"args\":{\"seq\":");
    put_int(b, (long long)t->seq);
    if (t->open == TEV_TASK_WAIT && r->s2) {
        PUTLIT(b, ",\"site\":");
        put_sid(b, c->tr, r->s2);
    }
    if (t->open == TEV_TASK_WAIT && r->b) {
        PUTLIT(b, ",\"stack\":");
        put_sid(b, c->tr, (uint32_t)r->b);
    }
    PUTLIT(b, "}}");
    end_ev(c);
    t->open = 0;
}

static struct track *
track_of(struct chrome *c, int32_t id) {
    return id > 0 && id < c->ntracks ? &c->tracks[id] : NULL;
}

/* Closes the open slice of task id at ts and opens one of kind (0: none). */
static void
switch_slice(struct chrome *c, int32_t id, int kind, int64_t ts, uint64_t seq,
             size_t rec) {
    struct track *t = track_of(c, id);
    if (!t)
        return;
    if (t->open)
        slice(c, id, t, ts);
    if (kind) {
        t->open = (uint8_t)kind;
        t->since = ts;
        t->seq = seq;
        t->rec = rec;
    }
}

/* A flow from track `from` to track `to` at ts. */
static void
flow(struct chrome *c, const char *cat, int32_t from, int32_t to, int64_t ts,
     uint64_t seq) {
    struct sbuf *b = &c->text;
    long long id = ++c->flows;
    for (int end = 0; end < 2; end++) {
        begin_ev(c, ts);
        PUTLIT(b, "{\"name\":\"");
        put(b, cat, strlen(cat));
        PUTLIT(b, "\",\"cat\":\"");
        put(b, cat, strlen(cat));
        PUTLIT(b, "\"");
        put_head(c, end ? "f" : "s", ts, end ? to : from);
        PUTLIT(b, ",\"id\":");
        put_int(b, id);
        if (end)
            PUTLIT(b, ",\"bp\":\"e\"");
        PUTLIT(b, ",\"args\":{\"seq\":");
        put_int(b, (long long)seq);
        PUTLIT(b, "}}");
        end_ev(c);
    }
}

/* An instant on tid, named name, with r's JSONL fields as args. */
static void
instant(struct chrome *c, const char *name, size_t namelen, int32_t tid,
        const struct lasio_trace_rec *r, uint64_t seq, const char *ph) {
    struct sbuf *b = &c->text;
    begin_ev(c, r->ts);
    PUTLIT(b, "{\"name\":");
    put_jstr(b, name, namelen);
    put_head(c, ph, r->ts, tid);
    if (ph[0] == 'i')
        PUTLIT(b, ",\"s\":\"t\"");
    PUTLIT(b, ",\"args\":{\"seq\":");
    put_int(b, (long long)seq);
    if (r->ev == TEV_MARK || r->ev == TEV_BEGIN || r->ev == TEV_END) {
        size_t n;
        const char *s = lasio_trace_str_(c->tr, r->s2, &n);
        if (s && n > 2) { /* the user's args, merged: {"k":v,...} */
            PUTLIT(b, ",");
            put(b, s + 1, n - 2);
        }
    } else {
        put_fields(b, c->tr, r);
    }
    PUTLIT(b, "}}");
    end_ev(c);
}

/* A counter event on the loop's track: args without seq (every arg of a
 * "C" event is drawn as a series). */
static void
counter(struct chrome *c, const struct lasio_trace_rec *r) {
    struct sbuf *b = &c->text;
    begin_ev(c, r->ts);
    PUTLIT(b, "{\"name\":");
    if (r->ev == TEV_LOOP_POLL)
        PUTLIT(b, "\"loop\"");
    else
        put_sid(b, c->tr, r->s1);
    put_head(c, "C", r->ts, 0);
    PUTLIT(b, ",\"args\":{");
    if (r->ev == TEV_LOOP_POLL) {
        PUTLIT(b, "\"ready\":");
        put_int(b, r->a);
        PUTLIT(b, ",\"tasks\":");
        put_int(b, r->b);
        PUTLIT(b, ",\"timers\":");
        put_int(b, r->c);
        PUTLIT(b, ",\"fds\":");
        put_int(b, r->task);
    } else {
        PUTLIT(b, "\"value\":");
        put_counter_value(b, r);
    }
    PUTLIT(b, "}}");
    end_ev(c);
}

static void
chrome_record(struct chrome *c, size_t i) {
    const struct lasio_trace_rec *r = rec_at(c->tr, i);
    uint64_t seq = i + 1;
    const char *name = ev_names[r->ev];
    switch (r->ev) {
    case TEV_TASK_CREATE:
        if (r->a > 0)
            flow(c, "spawn", (int32_t)r->a, r->task, r->ts, seq);
        break;
    case TEV_TASK_READY:
        switch_slice(c, r->task, TEV_TASK_READY, r->ts, seq, i);
        if (r->kind == TBY_TASK && r->a != r->task && r->a > 0)
            flow(c, "wake", (int32_t)r->a, r->task, r->ts, seq);
        break;
    case TEV_TASK_RUN:
    case TEV_TASK_WAIT:
        switch_slice(c, r->task, r->ev, r->ts, seq, i);
        break;
    case TEV_TASK_DONE:
        switch_slice(c, r->task, 0, r->ts, seq, i);
        instant(c, "done", 4, r->task, r, seq, "i");
        break;
    case TEV_TASK_CANCEL:
        instant(c, "cancel", 6, r->task, r, seq, "i");
        break;
    case TEV_TASK_RENAME:
        break; /* the track's one name is the last */
    case TEV_LOOP_POLL:
    case TEV_COUNTER:
        counter(c, r);
        break;
    case TEV_MARK:
    case TEV_BEGIN:
    case TEV_END: {
        size_t n;
        const char *s = lasio_trace_str_(c->tr, r->s1, &n);
        instant(c, s ? s : "", n, r->task, r, seq,
                r->ev == TEV_MARK    ? "i"
                : r->ev == TEV_BEGIN ? "B"
                                     : "E");
        break;
    }
    default:
        instant(c, name, strlen(name), 0, r, seq, "i");
        break;
    }
}

static int
cmp_cev(const void *pa, const void *pb) {
    const struct cev *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The metadata event naming track tid. */
static void
put_track_name(struct chrome *c, struct sbuf *b, int32_t tid) {
    PUTLIT(b, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":");
    put_int(b, c->pid);
    PUTLIT(b, ",\"tid\":");
    put_int(b, tid);
    PUTLIT(b, ",\"args\":{\"name\":");
    c->tmp.n = 0;
    if (tid == 0)
        PUTLIT(&c->tmp, "loop");
    else {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "#%d ", (int)tid);
        put(&c->tmp, buf, (size_t)n);
        uint32_t sid = tid < c->tr->ncap ? c->tr->names[tid] : 0;
        size_t len;
        const char *s = lasio_trace_str_(c->tr, sid, &len);
        if (s)
            put(&c->tmp, s, len);
        else {
            n = snprintf(buf, sizeof buf, "Task-%d", (int)tid);
            put(&c->tmp, buf, (size_t)n);
        }
    }
    put_jstr(b, c->tmp.p ? c->tmp.p : "", c->tmp.n);
    PUTLIT(b, "}}");
}

static int
write_chrome(struct lasio_trace *tr) {
    struct chrome c = {0};
    c.tr = tr;
    c.pid = tr->virt ? 1 : (long long)getpid();
    int32_t maxid = 0;
    int64_t last = 0;
    for (size_t i = 0; i < tr->n; i++) {
        const struct lasio_trace_rec *r = rec_at(tr, i);
        if (r->task > maxid)
            maxid = r->task;
        if (r->ts > last)
            last = r->ts;
    }
    c.ntracks = maxid + 1;
    c.tracks = calloc((size_t)c.ntracks, sizeof *c.tracks);
    unsigned char *seen = calloc((size_t)c.ntracks, 1);
    int rc = 0;
    if (!c.tracks || !seen)
        rc = -1;
    for (size_t i = 0; i < tr->n && rc == 0; i++) {
        const struct lasio_trace_rec *r = rec_at(tr, i);
        if (r->ev != TEV_LOOP_POLL && r->ev != TEV_COUNTER)
            seen[r->task] = 1;
        if ((r->ev == TEV_TASK_CREATE || r->ev == TEV_TASK_READY ||
             r->ev == TEV_TASK_CANCEL) &&
            r->a > 0 && r->a < c.ntracks)
            seen[r->a] = 1;
        chrome_record(&c, i);
    }
    /* slices still open at the end (a task waiting for ever, a ring
     * written mid-run) end with the trace */
    for (int32_t id = 1; id < c.ntracks && rc == 0; id++)
        if (c.tracks[id].open)
            slice(&c, id, &c.tracks[id], last);
    if (c.text.oom)
        rc = -1;
    struct sbuf b = {0};
    if (rc == 0) {
        if (c.n > 1)
            qsort(c.ev, c.n, sizeof *c.ev, cmp_cev);
        PUTLIT(&b, "{\"traceEvents\":[\n");
        int first = 1;
        seen[0] = 1;
        for (int32_t id = 0; id < c.ntracks; id++) {
            if (!seen[id])
                continue;
            if (!first)
                PUTLIT(&b, ",\n");
            first = 0;
            put_track_name(&c, &b, id);
        }
        for (size_t i = 0; i < c.n && !b.oom; i++) {
            PUTLIT(&b, ",\n");
            put(&b, c.text.p + c.ev[i].off, c.ev[i].len);
            if (b.n > 65536) {
                if (fwrite(b.p, 1, b.n, tr->out) != b.n)
                    rc = -1;
                b.n = 0;
            }
        }
        PUTLIT(&b, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{");
        put_header_fields(&b, tr);
        PUTLIT(&b, "}}\n");
        if (b.oom || fwrite(b.p, 1, b.n, tr->out) != b.n)
            rc = -1;
    }
    free(b.p);
    free(c.text.p);
    free(c.tmp.p);
    free(c.ev);
    free(c.tracks);
    free(seen);
    return rc;
}

/* ====== } */

int
lasio_trace_write_(struct lasio_trace *tr) {
    return tr->format == TRACE_CHROME ? write_chrome(tr) : write_jsonl(tr);
}
