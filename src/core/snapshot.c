/*
 * snapshot.c: what the inspector answers (docs/SEEING.md, "Looking at a
 * running process"): the rows of `lasio ps` (as JSON or a table), the
 * await tree of `lasio pstree` with its await cycles, and the stacks of
 * `lasio dump`, also printed on SIGQUIT. Runs on the loop between task
 * steps, so every answer is one consistent picture. The rows are the
 * pending tasks in id order, kept in a userdata array (collected if an
 * allocation fails halfway); their text is made when written out.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* One pending task. `awaits` is the row of the task it awaits (its
 * TASK_UV_WAITER is a task) or -1; the tasks awaiting a row are the list
 * first_awaiter, next_awaiter... */
struct row {
    int id, ref;
    struct lasio_task *t;
    int awaits, first_awaiter, next_awaiter;
    int mark;  /* cycle search: 0 new, 1 on the path, 2 done */
    int shown; /* pstree: drawn already */
};

struct snap {
    struct lasio_loop *loop;
    struct row *rows;
    int n;
    int tasks;   /* stack index of the loop's tasks table */
    int64_t now; /* coarse monotonic ns */
};

static int
by_id(const void *a, const void *b) {
    const struct row *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int
find_row(struct snap *s, struct lasio_task *t) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->rows[mid].id == t->id)
            return s->rows[mid].t == t ? mid : -1;
        if (s->rows[mid].id < t->id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Collects the pending tasks; pushes the tasks table and the rows'
 * userdata. [-0, +2, m] */
static void
collect(lua_State *L, struct snap *s, struct lasio_loop *loop) {
    s->loop = loop;
    s->now = lasio_coarse_ns_();
    lasio_pushtasks_(L, loop);
    s->tasks = lua_gettop(L);
    int cap = loop->ntasks + 1;
    s->rows = lua_newuserdatauv(L, sizeof(struct row) * (size_t)cap, 0);
    s->n = 0;
    lua_pushnil(L);
    while (lua_next(L, s->tasks)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        if (t && t->fut.state == FUT_PENDING && t->fut.ref > 0 && s->n < cap) {
            struct row *r = &s->rows[s->n++];
            r->id = t->id;
            r->ref = t->fut.ref;
            r->t = t;
            r->awaits = r->first_awaiter = r->next_awaiter = -1;
            r->mark = r->shown = 0;
        }
        lua_pop(L, 1);
    }
    qsort(s->rows, (size_t)s->n, sizeof(struct row), by_id);
    for (int i = 0; i < s->n; i++) {
        struct row *r = &s->rows[i];
        if (r->t->waiting != WAIT_FUTURE || !r->t->has_waiter)
            continue;
        lua_rawgeti(L, s->tasks, r->ref);
        lua_getiuservalue(L, -1, TASK_UV_WAITER);
        struct lasio_task *w = lasio_totask_(L, -1);
        lua_pop(L, 2);
        int j = w ? find_row(s, w) : -1;
        if (j >= 0) {
            r->awaits = j;
            r->next_awaiter = s->rows[j].first_awaiter;
            s->rows[j].first_awaiter = i;
        }
    }
}

/* Pushes the task of row i. [-0, +1, -] */
static void
push_task(lua_State *L, struct snap *s, int i) {
    lua_rawgeti(L, s->tasks, s->rows[i].ref);
}

static void
push_name(lua_State *L, struct snap *s, int i) {
    push_task(L, s, i);
    lasio_task_pushname_(L, -1, s->rows[i].t);
    lua_remove(L, -2);
}

static const char *
state_of(struct snap *s, struct lasio_task *t) {
    if (s->loop->current == t)
        return "running";
    if (t->scheduled || t->waiting == WAIT_NONE)
        return "ready";
    return t->waiting == WAIT_SLEEP ? "sleeping" : "waiting";
}

/* Seconds since the task last ran (or, running, since its step began);
 * -1 before its first step. */
static double
for_of(struct snap *s, struct lasio_task *t) {
    int64_t since = s->loop->current == t ? s->loop->step_start : t->since_ns;
    if (since <= 0 || since > s->now)
        return since > s->now ? 0 : -1;
    return (double)(s->now - since) / 1e9;
}

/* Pushes what row i waits on, or nil. [-0, +1, m] */
static void
push_waiting_on(lua_State *L, struct snap *s, int i) {
    struct lasio_task *t = s->rows[i].t;
    struct lasio_loop *loop = s->loop;
    if (s->loop->current == t || t->scheduled) {
        lua_pushnil(L);
        return;
    }
    switch (t->waiting) {
    case WAIT_FUTURE:
        if (s->rows[i].awaits >= 0) {
            int j = s->rows[i].awaits;
            lua_pushfstring(L, "task #%d ", s->rows[j].id);
            push_name(L, s, j);
            lua_concat(L, 2);
            return;
        }
        push_task(L, s, i);
        lua_getiuservalue(L, -1, TASK_UV_WAITER);
        luaL_tolstring(L, -1, NULL);
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
    case WAIT_SLEEP:
        if (t->heap_pos >= 0 && t->heap_pos < loop->th_n) {
            double left = (double)(loop->th[t->heap_pos].when -
                                   lasio_loop_now_ns_(loop)) /
                          1e9;
            lua_pushfstring(L, "sleep (%f s left)", left > 0 ? left : 0.0);
            /* %f of lua_pushfstring has many digits: keep one */
            const char *p = strchr(lua_tostring(L, -1), '.');
            if (p) {
                lua_pushlstring(L, lua_tostring(L, -1),
                                (size_t)(p + 2 - lua_tostring(L, -1)));
                lua_pushliteral(L, " s left)");
                lua_concat(L, 2);
                lua_replace(L, -2);
            }
        } else {
            lua_pushliteral(L, "sleep");
        }
        return;
    case WAIT_QUEUE:
        lua_pushliteral(L, "a wait queue (lock, event, queue...)");
        return;
    case WAIT_FOREVER:
        lua_pushliteral(L, "nothing (waits forever)");
        return;
    default:
        lua_pushnil(L);
    }
}

/* Is a frame's source lasio's own (the facade compiled in or on disk)? */
static int
is_lasio_source(const char *src) {
    return strncmp(src, "@lasio/", 7) == 0 || strstr(src, "/lasio/") != NULL;
}

/* Pushes "file:line" of the innermost frame of co outside lasio, or nil.
 * [-0, +1, m] */
static void
push_user_line(lua_State *L, lua_State *co) {
    lua_Debug d;
    for (int level = 0; co && lua_getstack(co, level, &d); level++) {
        if (!lua_getinfo(co, "Sl", &d) || d.currentline <= 0 ||
            is_lasio_source(d.source))
            continue;
        lua_pushfstring(L, "%s:%d", d.short_src, d.currentline);
        return;
    }
    lua_pushnil(L);
}

/* Pushes where row i was created ("file:line"), or nil: the first line
 * of its creation traceback outside lasio (debug mode). [-0, +1, m] */
static void
push_created_at(lua_State *L, struct snap *s, int i) {
    push_task(L, s, i);
    if (lasio_extra_get_(L, -1, EXTRA_SITE) != LUA_TSTRING) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return;
    }
    const char *tb = lua_tostring(L, -1), *line;
    for (line = strchr(tb, '\n'); line; line = strchr(line + 1, '\n')) {
        const char *start = line + 1;
        while (*start == '\t' || *start == ' ')
            start++;
        if (*start == '[' || strstr(start, "lasio/") == start ||
            strncmp(start, "...", 3) == 0)
            continue;
        const char *colon = strchr(start, ':');
        const char *colon2 = colon ? strchr(colon + 1, ':') : NULL;
        if (!colon2)
            continue;
        lua_pushlstring(L, start, (size_t)(colon2 - start));
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 2);
    lua_pushnil(L);
}

/* {====== lasio ps ====== */

static const char *const columns[] = {
    "ID",    "NAME",       "STATE", "WAITING-ON", "FOR", "AWAITED-BY",
    "GROUP", "CREATED-AT", "STEPS", "CPU",        NULL};
#define NCOLS 10

static void
push_seconds(lua_State *L, double sec) {
    char buf[32];
    if (sec < 0)
        snprintf(buf, sizeof buf, "-");
    else if (sec < 60)
        snprintf(buf, sizeof buf, "%.1fs", sec);
    else if (sec < 3600)
        snprintf(buf, sizeof buf, "%dm%02ds", (int)sec / 60, (int)sec % 60);
    else
        snprintf(buf, sizeof buf, "%dh%02dm", (int)sec / 3600,
                 (int)sec / 60 % 60);
    lua_pushstring(L, buf);
}

/* Pushes the text of column c of row i. [-0, +1, m] */
static void
push_cell(lua_State *L, struct snap *s, int i, int c) {
    struct row *r = &s->rows[i];
    char buf[32];
    switch (c) {
    case 0:
        lua_pushfstring(L, "%d", r->id);
        return;
    case 1:
        push_name(L, s, i);
        return;
    case 2:
        lua_pushstring(L, state_of(s, r->t));
        return;
    case 3:
        push_waiting_on(L, s, i);
        break;
    case 4:
        push_seconds(L, for_of(s, r->t));
        return;
    case 5: {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int j = r->first_awaiter; j >= 0; j = s->rows[j].next_awaiter) {
            lua_pushfstring(L, "%s#%d", j == r->first_awaiter ? "" : ",",
                            s->rows[j].id);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        break;
    }
    case 6:
        lua_pushnil(L); /* task groups name no task yet */
        break;
    case 7:
        push_created_at(L, s, i);
        break;
    case 8:
        snprintf(buf, sizeof buf, "%lu", r->t->steps);
        lua_pushstring(L, buf);
        return;
    default:
        snprintf(buf, sizeof buf, "%.3fs", (double)r->t->cpu_ns / 1e9);
        lua_pushstring(L, buf);
        return;
    }
    if (lua_isnil(L, -1) || lua_rawlen(L, -1) == 0) {
        lua_pop(L, 1);
        lua_pushliteral(L, "-");
    }
}

/* Display width of UTF-8 text: its code points. */
static size_t
width(const char *p, size_t n) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)p[i] & 0xC0) != 0x80;
    return w;
}

static void
add_padded(luaL_Buffer *b, const char *p, size_t n, size_t w, int last) {
    luaL_addlstring(b, p, n);
    if (last)
        return;
    for (size_t k = width(p, n); k < w + 2; k++)
        luaL_addchar(b, ' ');
}

/* Pushes the ps table. [-0, +1, m] */
static void
push_ps_text(lua_State *L, struct snap *s) {
    size_t w[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        w[c] = strlen(columns[c]);
    for (int i = 0; i < s->n; i++)
        for (int c = 0; c < NCOLS; c++) {
            size_t n;
            push_cell(L, s, i, c);
            const char *p = lua_tolstring(L, -1, &n);
            if (width(p, n) > w[c])
                w[c] = width(p, n);
            lua_pop(L, 1);
        }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int c = 0; c < NCOLS; c++)
        add_padded(&b, columns[c], strlen(columns[c]), w[c], c == NCOLS - 1);
    luaL_addchar(&b, '\n');
    for (int i = 0; i < s->n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            size_t n;
            push_cell(L, s, i, c);
            const char *p = lua_tolstring(L, -1, &n);
            size_t cw = width(p, n);
            luaL_addvalue(&b);
            if (c < NCOLS - 1)
                for (size_t k = cw; k < w[c] + 2; k++)
                    luaL_addchar(&b, ' ');
        }
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
}

static void
buf_put(void *ud, const char *p, size_t n) {
    luaL_addlstring((luaL_Buffer *)ud, p, n);
}

/* Adds the string on top as a JSON string, or null for nil. */
static void
add_json_value(luaL_Buffer *b) {
    lua_State *L = b->L;
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        luaL_addstring(b, "null");
        return;
    }
    size_t n;
    const char *p = lua_tolstring(L, -1, &n);
    /* the string stays below the buffer's own slots while quoted */
    char stackbuf[256];
    char *copy = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
    if (!copy) {
        lua_pop(L, 1);
        luaL_addstring(b, "null");
        return;
    }
    memcpy(copy, p, n);
    lua_pop(L, 1);
    lasio_json_quote_(copy, n, buf_put, b);
    if (copy != stackbuf)
        free(copy);
}

static void
add_number(luaL_Buffer *b, double x) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.6f", x);
    luaL_addstring(b, buf);
}

/* Adds row i as a JSON object (docs/SEEING.md, the schema). */
static void
add_json_row(lua_State *L, luaL_Buffer *b, struct snap *s, int i) {
    struct row *r = &s->rows[i];
    char buf[64];
    snprintf(buf, sizeof buf, "{\"id\":%d,\"name\":", r->id);
    luaL_addstring(b, buf);
    push_name(L, s, i);
    add_json_value(b);
    luaL_addstring(b, ",\"state\":\"");
    luaL_addstring(b, state_of(s, r->t));
    luaL_addstring(b, "\",\"waiting_on\":");
    push_waiting_on(L, s, i);
    add_json_value(b);
    luaL_addstring(b, ",\"for\":");
    double f = for_of(s, r->t);
    if (f < 0)
        luaL_addstring(b, "null");
    else
        add_number(b, f);
    luaL_addstring(b, ",\"awaits\":");
    if (r->awaits >= 0) {
        snprintf(buf, sizeof buf, "%d", s->rows[r->awaits].id);
        luaL_addstring(b, buf);
    } else {
        luaL_addstring(b, "null");
    }
    luaL_addstring(b, ",\"awaited_by\":[");
    for (int j = r->first_awaiter; j >= 0; j = s->rows[j].next_awaiter) {
        snprintf(buf, sizeof buf, "%s%d", j == r->first_awaiter ? "" : ",",
                 s->rows[j].id);
        luaL_addstring(b, buf);
    }
    luaL_addstring(b, "],\"group\":null,\"created_at\":");
    push_created_at(L, s, i);
    add_json_value(b);
    luaL_addstring(b, ",\"where\":");
    push_user_line(L, r->t->co);
    add_json_value(b);
    snprintf(buf, sizeof buf, ",\"steps\":%lu,\"cpu\":", r->t->steps);
    luaL_addstring(b, buf);
    add_number(b, (double)r->t->cpu_ns / 1e9);
    luaL_addchar(b, '}');
}

/* Pushes the `ps --json` reply. [-0, +1, m] */
static void
push_ps_json(lua_State *L, struct snap *s) {
    luaL_Buffer b;
    char buf[96];
    luaL_buffinit(L, &b);
    snprintf(buf, sizeof buf, "{\"v\":%d,\"ok\":true,\"pid\":%ld,\"time\":",
             LASIO_INSPECT_VERSION, (long)getpid());
    luaL_addstring(&b, buf);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    add_number(&b, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    luaL_addstring(&b, ",\"tasks\":[");
    for (int i = 0; i < s->n; i++) {
        if (i > 0)
            luaL_addchar(&b, ',');
        add_json_row(L, &b, s, i);
    }
    luaL_addstring(&b, "]}");
    luaL_pushresult(&b);
}

/* ====== } */

/* {====== lasio pstree ====== */

/* Adds "#id name" of row i. */
static void
add_label(lua_State *L, luaL_Buffer *b, struct snap *s, int i) {
    lua_pushfstring(L, "#%d ", s->rows[i].id);
    luaL_addvalue(b);
    push_name(L, s, i);
    luaL_addvalue(b);
}

/* Finds the await cycles (each task awaits at most one task, so a cycle
 * is a path that comes back); adds one line per cycle. Returns their
 * count. */
static int
add_cycles(lua_State *L, luaL_Buffer *b, struct snap *s) {
    int found = 0;
    for (int i = 0; i < s->n; i++) {
        int j = i;
        while (j >= 0 && s->rows[j].mark == 0) {
            s->rows[j].mark = 1;
            j = s->rows[j].awaits;
        }
        if (j >= 0 && s->rows[j].mark == 1) { /* came back to this path */
            luaL_addstring(b, "await cycle: ");
            int k = j;
            do {
                add_label(L, b, s, k);
                luaL_addstring(b, " \xe2\x86\x92 "); /* → */
                k = s->rows[k].awaits;
            } while (k != j);
            add_label(L, b, s, j);
            luaL_addchar(b, '\n');
            found++;
        }
        for (j = i; j >= 0 && s->rows[j].mark == 1; j = s->rows[j].awaits)
            s->rows[j].mark = 2;
    }
    return found;
}

/* Adds the frames of co outside lasio, outermost first, as tree lines
 * under prefix; returns the depth it reached. */
static int
add_frames(lua_State *L, luaL_Buffer *b, lua_State *co, const char *prefix,
           int depth) {
    lua_Debug d;
    int levels = 0;
    while (co && lua_getstack(co, levels, &d))
        levels++;
    for (int level = levels - 1; level >= 0; level--) {
        if (!lua_getstack(co, level, &d) || !lua_getinfo(co, "Sln", &d) ||
            d.currentline <= 0 || is_lasio_source(d.source))
            continue;
        luaL_addstring(b, prefix);
        for (int k = 0; k < depth; k++)
            luaL_addstring(b, "    ");
        if (d.name)
            lua_pushstring(L, d.name);
        else if (*d.what == 'm')
            lua_pushliteral(L, "main chunk");
        else
            lua_pushfstring(L, "function <%s:%d>", d.short_src, d.linedefined);
        lua_pushfstring(L, "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 %s %s:%d\n",
                        lua_tostring(L, -1), d.short_src, d.currentline);
        lua_remove(L, -2);
        luaL_addvalue(b);
        depth++;
    }
    return depth;
}

/* Adds task i and, below its frames, the tasks it awaits. */
static void
add_tree(lua_State *L, luaL_Buffer *b, struct snap *s, int i, int depth,
         int hops) {
    luaL_checkstack(L, 8, NULL);
    s->rows[i].shown = 1;
    for (int k = 0; k < depth; k++)
        luaL_addstring(b, "    ");
    luaL_addstring(b, "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 (T) ");
    add_label(L, b, s, i);
    luaL_addchar(b, '\n');
    int inner = add_frames(L, b, s->rows[i].t->co, "", depth + 1);
    /* the task it awaits hangs below its innermost frame */
    int j = s->rows[i].awaits;
    if (j >= 0 && hops < s->n && !s->rows[j].shown)
        add_tree(L, b, s, j, inner, hops + 1);
}

/* Pushes the pstree text; *cycles gets the count of await cycles.
 * [-0, +1, m] */
static void
push_pstree(lua_State *L, struct snap *s, int *cycles) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    /* roots: the tasks nothing awaits */
    for (int i = 0; i < s->n; i++)
        if (s->rows[i].first_awaiter < 0)
            add_tree(L, &b, s, i, 0, 0);
    *cycles = add_cycles(L, &b, s);
    luaL_pushresult(&b);
}

/* ====== } */

/* {====== lasio dump ====== */

void
lasio_snapshot_dump_(lua_State *L, struct lasio_loop *loop) {
    struct snap s;
    luaL_checkstack(L, 12, NULL);
    collect(L, &s, loop);
    int base = lua_gettop(L);
    /* stacks[traceback] = {row indexes}, in order of first appearance */
    lua_newtable(L);
    int stacks = base + 1;
    lua_newtable(L);
    int order = base + 2;
    for (int i = 0; i < s.n; i++) {
        push_task(L, &s, i);
        lasio_task_pushstack_(L, -1, s.rows[i].t);
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, stacks) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, stacks);
            lua_pushvalue(L, -2);
            lua_rawseti(L, order, (lua_Integer)lua_rawlen(L, order) + 1);
        }
        lua_pushinteger(L, i);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "lasio dump: process %d, %d pending task(s)\n",
                    (int)getpid(), s.n);
    luaL_addvalue(&b);
    lua_Integer ngroups = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer g = 1; g <= ngroups; g++) {
        lua_rawgeti(L, order, g);
        lua_pushvalue(L, -1);
        lua_rawget(L, stacks);
        lua_Integer count = (lua_Integer)lua_rawlen(L, -1);
        lua_pushfstring(L, "\n--- %d task(s) with this stack:\n", (int)count);
        luaL_addvalue(&b);
        for (lua_Integer k = 1; k <= count; k++) {
            lua_rawgeti(L, -1, k);
            int i = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            luaL_addstring(&b, "  ");
            add_label(L, &b, &s, i);
            lua_pushfstring(L, " [%s", state_of(&s, s.rows[i].t));
            luaL_addvalue(&b);
            push_waiting_on(L, &s, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
            } else {
                luaL_addstring(&b, ": ");
                luaL_addvalue(&b);
            }
            double f = for_of(&s, s.rows[i].t);
            if (f >= 0) {
                luaL_addstring(&b, ", for ");
                push_seconds(L, f);
                luaL_addvalue(&b);
            }
            luaL_addstring(&b, "]");
            push_created_at(L, &s, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
            } else {
                luaL_addstring(&b, " created at ");
                luaL_addvalue(&b);
            }
            luaL_addchar(&b, '\n');
        }
        lua_pop(L, 1); /* the list; the stack text stays on top */
        size_t n;
        const char *tb = lua_tolstring(L, -1, &n);
        if (n == 0) {
            lua_pop(L, 1);
            luaL_addstring(&b, "(not started yet)\n");
        } else {
            luaL_addvalue(&b);
            if (tb[n - 1] != '\n')
                luaL_addchar(&b, '\n');
        }
    }
    luaL_pushresult(&b);
    lua_replace(L, base - 1);
    lua_settop(L, base - 1);
}

/* ====== } */

/* {====== Requests ====== */

static void
push_error_reply(lua_State *L, const char *msg) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L,
                    "{\"v\":%d,\"ok\":false,\"error\":", LASIO_INSPECT_VERSION);
    luaL_addvalue(&b);
    lua_pushstring(L, msg);
    add_json_value(&b);
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
}

/* Replaces the text on top by {"v":1,"ok":true,"status":N,"text":...}. */
static void
wrap_text(lua_State *L, int status) {
    luaL_Buffer b;
    int text = lua_gettop(L);
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "{\"v\":%d,\"ok\":true,\"status\":%d,\"text\":",
                    LASIO_INSPECT_VERSION, status);
    luaL_addvalue(&b);
    lua_pushvalue(L, text);
    add_json_value(&b);
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    lua_replace(L, text);
}

void
lasio_snapshot_reply_(lua_State *L, struct lasio_loop *loop, const char *req,
                      size_t len) {
    struct lasio_jfield f[16];
    char cmd[32], format[16] = "text";
    luaL_checkstack(L, 12, NULL);
    int n = lasio_json_fields_(req, len, f, 16);
    if (n < 0) {
        push_error_reply(L, "malformed request: not a JSON object");
        return;
    }
    const struct lasio_jfield *v = lasio_json_get_(f, n, "v");
    const struct lasio_jfield *c = lasio_json_get_(f, n, "cmd");
    const struct lasio_jfield *fm = lasio_json_get_(f, n, "format");
    if (!v || v->vlen != 1 || v->val[0] != '0' + LASIO_INSPECT_VERSION) {
        push_error_reply(L, "unsupported request: \"v\" must be 1");
        return;
    }
    if (!c || c->val[0] != '"' || c->vlen >= sizeof cmd) {
        push_error_reply(L, "malformed request: \"cmd\" must be a string");
        return;
    }
    lasio_json_unquote_(c, cmd);
    if (fm && fm->val[0] == '"' && fm->vlen < sizeof format)
        lasio_json_unquote_(fm, format);
    int js = strcmp(format, "json") == 0;
    if (strcmp(cmd, "dump") == 0) {
        lasio_snapshot_dump_(L, loop);
        wrap_text(L, 0);
        return;
    }
    if (strcmp(cmd, "ps") != 0 && strcmp(cmd, "pstree") != 0) {
        lua_pushfstring(L, "unknown command \"%s\" (ps, pstree, dump)", cmd);
        push_error_reply(L, lua_tostring(L, -1));
        lua_remove(L, -2);
        return;
    }
    struct snap s;
    collect(L, &s, loop);
    int cycles = 0;
    if (strcmp(cmd, "ps") == 0 && js)
        push_ps_json(L, &s);
    else if (strcmp(cmd, "ps") == 0)
        push_ps_text(L, &s);
    else
        push_pstree(L, &s, &cycles);
    if (!(strcmp(cmd, "ps") == 0 && js))
        wrap_text(L, cycles > 0 ? 1 : 0);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* ====== } */
