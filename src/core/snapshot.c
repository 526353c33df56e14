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

/* One pending task. Its await edges (from awaitgraph.c's index) are in
 * the snapshot's edge array: the ones to the tasks it awaits (first_out,
 * next_out...) and from the tasks awaiting it (first_in, next_in...). */
struct row {
    int id, ref;
    struct lasio_task *t;
    int first_out, first_in;
    int group, group_nth; /* row of the task whose TaskGroup it is in (-1:
                             none), and which of that task's groups */
    int mark;             /* cycle search: 0 new, 1 on the path, 2 done */
    int shown;            /* pstree: drawn already */
};

struct edge {
    int from, to; /* rows: `from` awaits `to` */
    int next_out, next_in;
};

struct snap {
    struct lasio_loop *loop;
    struct row *rows;
    struct edge *edges;
    int n, nedges;
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

/* The edges of the await index at idx ({[Future] = {Task...}}) between
 * pending tasks: counts them (fill 0) or stores them. */
static int
walk_index(lua_State *L, struct snap *s, int idx, int fill) {
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        struct lasio_task *to = lasio_totask_(L, -2);
        int j = to ? find_row(s, to) : -1;
        if (j >= 0 && lua_istable(L, -1)) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer m = 1; m <= n; m++) {
                lua_rawgeti(L, -1, m);
                struct lasio_task *from = lasio_totask_(L, -1);
                int i = from ? find_row(s, from) : -1;
                lua_pop(L, 1);
                if (i < 0 || i == j)
                    continue;
                if (fill && k < s->nedges) {
                    struct edge *e = &s->edges[k];
                    e->from = i;
                    e->to = j;
                    e->next_out = s->rows[i].first_out;
                    e->next_in = s->rows[j].first_in;
                    s->rows[i].first_out = s->rows[j].first_in = k;
                }
                k++;
            }
        }
        lua_pop(L, 1);
    }
    return k;
}

/* The task groups: a task running a TaskGroup links the set of its
 * children (a table of tasks) in its EXTRA_AWAITS (awaitgraph.c). */
static void
find_groups(lua_State *L, struct snap *s) {
    for (int i = 0; i < s->n; i++) {
        lua_rawgeti(L, s->tasks, s->rows[i].ref);
        if (lasio_extra_get_(L, -1, EXTRA_AWAITS) != LUA_TTABLE) {
            lua_pop(L, 2);
            continue;
        }
        int nth = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            if (!lua_istable(L, -1) || lasio_tofuture_(L, -1))
                continue;
            nth++;
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pop(L, 1);
                struct lasio_task *c = lasio_totask_(L, -1);
                int j = c ? find_row(s, c) : -1;
                if (j >= 0 && s->rows[j].group < 0) {
                    s->rows[j].group = i;
                    s->rows[j].group_nth = nth;
                }
            }
        }
        lua_pop(L, 2);
    }
}

/* Collects the pending tasks and their awaits; pushes the tasks table,
 * the rows' and the edges' userdata. [-0, +3, m] */
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
            r->first_out = r->first_in = r->group = -1;
            r->group_nth = r->mark = r->shown = 0;
        }
        lua_pop(L, 1);
    }
    qsort(s->rows, (size_t)s->n, sizeof(struct row), by_id);
    lasio_awaitgraph_index_(L, loop);
    int index = lua_gettop(L);
    s->nedges = walk_index(L, s, index, 0);
    s->edges =
        lua_newuserdatauv(L, sizeof(struct edge) * (size_t)(s->nedges + 1), 0);
    walk_index(L, s, index, 1);
    lua_remove(L, index);
    find_groups(L, s);
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

/* Seconds the task has waited (or, running, run), or -1 when it is
 * ready. */
static double
for_of(struct snap *s, struct lasio_task *t) {
    if (s->loop->current == t)
        return (double)(s->now - s->loop->step_start) / 1e9;
    if (t->scheduled || t->waiting == WAIT_NONE || t->wait_since <= 0)
        return -1;
    double d = lasio_loop_time_(s->loop) - t->wait_since;
    return d > 0 ? d : 0;
}

/* Pushes what row i waits on, or nil (awaitgraph.c). [-0, +1, m] */
static void
push_waiting_on(lua_State *L, struct snap *s, int i) {
    lua_rawgeti(L, s->tasks, s->rows[i].ref);
    lasio_task_pushwait_(L, -1, s->rows[i].t);
    lua_remove(L, -2);
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

/* Pushes where row i was created ("file:line"), or nil. [-0, +1, m] */
static void
push_created_at(lua_State *L, struct snap *s, int i) {
    lasio_task_pushsite_(L, s->rows[i].t);
}

/* Pushes the name of row i's task group ("TaskGroup #3", the task that
 * runs it; "TaskGroup #3.2" for its second one), or nil. [-0, +1, m] */
static void
push_group(lua_State *L, struct snap *s, int i) {
    struct row *r = &s->rows[i];
    if (r->group < 0)
        lua_pushnil(L);
    else if (r->group_nth > 1)
        lua_pushfstring(L, "TaskGroup #%d.%d", s->rows[r->group].id,
                        r->group_nth);
    else
        lua_pushfstring(L, "TaskGroup #%d", s->rows[r->group].id);
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
        for (int e = r->first_in; e >= 0; e = s->edges[e].next_in) {
            lua_pushfstring(L, "%s#%d", e == r->first_in ? "" : ",",
                            s->rows[s->edges[e].from].id);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        break;
    }
    case 6:
        push_group(L, s, i);
        break;
    case 7:
        push_created_at(L, s, i);
        break;
    case 8:
        snprintf(buf, sizeof buf, "%lu", (unsigned long)r->t->steps);
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
    luaL_addstring(b, ",\"awaits\":[");
    for (int e = r->first_out; e >= 0; e = s->edges[e].next_out) {
        snprintf(buf, sizeof buf, "%s%d", e == r->first_out ? "" : ",",
                 s->rows[s->edges[e].to].id);
        luaL_addstring(b, buf);
    }
    luaL_addstring(b, "],\"awaited_by\":[");
    for (int e = r->first_in; e >= 0; e = s->edges[e].next_in) {
        snprintf(buf, sizeof buf, "%s%d", e == r->first_in ? "" : ",",
                 s->rows[s->edges[e].from].id);
        luaL_addstring(b, buf);
    }
    luaL_addstring(b, "],\"group\":");
    push_group(L, s, i);
    add_json_value(b);
    luaL_addstring(b, ",\"created_at\":");
    push_created_at(L, s, i);
    add_json_value(b);
    if (r->t->parent_id > 0)
        snprintf(buf, sizeof buf, ",\"parent\":%d", r->t->parent_id);
    else
        snprintf(buf, sizeof buf, ",\"parent\":null");
    luaL_addstring(b, buf);
    luaL_addstring(b, ",\"where\":");
    push_user_line(L, r->t->co);
    add_json_value(b);
    snprintf(buf, sizeof buf,
             ",\"steps\":%lu,\"cpu\":", (unsigned long)r->t->steps);
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

/* Depth-first from row i along the awaits; path[0..depth-1] holds the
 * rows on the way. Adds a line per cycle found (a row met again on the
 * path). Returns their count. */
static int
cycles_from(lua_State *L, luaL_Buffer *b, struct snap *s, int i, int *path,
            int depth) {
    int found = 0;
    s->rows[i].mark = 1;
    path[depth] = i;
    luaL_checkstack(L, 4, NULL);
    for (int e = s->rows[i].first_out; e >= 0; e = s->edges[e].next_out) {
        int j = s->edges[e].to;
        if (s->rows[j].mark == 1) { /* back on the path: a cycle */
            int k = depth;
            while (path[k] != j)
                k--;
            luaL_addstring(b, "await cycle: ");
            for (; k <= depth; k++) {
                add_label(L, b, s, path[k]);
                luaL_addstring(b, " \xe2\x86\x92 "); /* → */
            }
            add_label(L, b, s, j);
            luaL_addchar(b, '\n');
            found++;
        } else if (s->rows[j].mark == 0) {
            found += cycles_from(L, b, s, j, path, depth + 1);
        }
    }
    s->rows[i].mark = 2;
    return found;
}

/* Finds the await cycles; adds one line per cycle. Returns their count. */
static int
add_cycles(lua_State *L, luaL_Buffer *b, struct snap *s, int *path) {
    int found = 0;
    for (int i = 0; i < s->n; i++)
        if (s->rows[i].mark == 0)
            found += cycles_from(L, b, s, i, path, 0);
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
add_tree(lua_State *L, luaL_Buffer *b, struct snap *s, int i, int depth) {
    luaL_checkstack(L, 8, NULL);
    s->rows[i].shown = 1;
    for (int k = 0; k < depth; k++)
        luaL_addstring(b, "    ");
    luaL_addstring(b, "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 (T) ");
    add_label(L, b, s, i);
    push_group(L, s, i);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
    } else {
        luaL_addstring(b, " [");
        luaL_addvalue(b);
        luaL_addchar(b, ']');
    }
    luaL_addchar(b, '\n');
    int inner = add_frames(L, b, s->rows[i].t->co, "", depth + 1);
    /* the tasks it awaits hang below its innermost frame */
    for (int e = s->rows[i].first_out; e >= 0; e = s->edges[e].next_out)
        if (!s->rows[s->edges[e].to].shown)
            add_tree(L, b, s, s->edges[e].to, inner);
}

/* Pushes the pstree text; *cycles gets the count of await cycles.
 * [-0, +1, m] */
static void
push_pstree(lua_State *L, struct snap *s, int *cycles) {
    luaL_Buffer b;
    /* the cycle search's path, made before the buffer takes the top */
    int *path = lua_newuserdatauv(L, sizeof(int) * (size_t)(s->n + 1), 0);
    int ud = lua_gettop(L);
    luaL_buffinit(L, &b);
    /* roots: the tasks nothing awaits */
    for (int i = 0; i < s->n; i++)
        if (s->rows[i].first_in < 0)
            add_tree(L, &b, s, i, 0);
    *cycles = add_cycles(L, &b, s, path);
    luaL_pushresult(&b);
    lua_remove(L, ud);
}

/* ====== } */

/* {====== lasio dump ====== */

void
lasio_snapshot_dump_(lua_State *L, struct lasio_loop *loop) {
    struct snap s;
    luaL_checkstack(L, 12, NULL);
    int first = lua_gettop(L) + 1;
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
    /* the text's pieces: no luaL_Buffer, since values come and go on
     * the stack between them */
    lua_newtable(L);
    int parts = lua_gettop(L), np = 0;
    lua_pushfstring(L, "lasio dump: process %d, %d pending task(s)\n",
                    (int)getpid(), s.n);
    lua_rawseti(L, parts, ++np);
    lua_Integer ngroups = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer g = 1; g <= ngroups; g++) {
        lua_rawgeti(L, order, g);
        lua_pushvalue(L, -1);
        lua_rawget(L, stacks);
        lua_Integer count = (lua_Integer)lua_rawlen(L, -1);
        lua_pushfstring(L, "\n--- %d task(s) with this stack:\n", (int)count);
        lua_rawseti(L, parts, ++np);
        for (lua_Integer k = 1; k <= count; k++) {
            lua_rawgeti(L, -1, k);
            int i = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            lua_pushliteral(L, "  ");
            lua_rawseti(L, parts, ++np);
            lua_pushfstring(L, "#%d ", s.rows[i].id);
            lua_rawseti(L, parts, ++np);
            push_name(L, &s, i);
            lua_rawseti(L, parts, ++np);
            lua_pushfstring(L, " [%s", state_of(&s, s.rows[i].t));
            lua_rawseti(L, parts, ++np);
            push_waiting_on(L, &s, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
            } else {
                lua_pushliteral(L, ": ");
                lua_rawseti(L, parts, ++np);
                lua_rawseti(L, parts, ++np);
            }
            double f = for_of(&s, s.rows[i].t);
            if (f >= 0) {
                lua_pushliteral(L, ", for ");
                lua_rawseti(L, parts, ++np);
                push_seconds(L, f);
                lua_rawseti(L, parts, ++np);
            }
            lua_pushliteral(L, "]");
            lua_rawseti(L, parts, ++np);
            push_created_at(L, &s, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
            } else {
                lua_pushliteral(L, " created at ");
                lua_rawseti(L, parts, ++np);
                lua_rawseti(L, parts, ++np);
            }
            lua_pushliteral(L, "\n");
            lua_rawseti(L, parts, ++np);
        }
        lua_pop(L, 1); /* the list; the stack text stays on top */
        size_t n;
        const char *tb = lua_tolstring(L, -1, &n);
        if (n == 0) {
            lua_pop(L, 1);
            lua_pushliteral(L, "(not started yet)\n");
            lua_rawseti(L, parts, ++np);
        } else {
            int nl = tb[n - 1] == '\n';
            lua_rawseti(L, parts, ++np);
            if (!nl) {
                lua_pushliteral(L, "\n");
                lua_rawseti(L, parts, ++np);
            }
        }
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 1; k <= np; k++) {
        lua_rawgeti(L, parts, k);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, first);
    lua_settop(L, first);
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
        lua_pushfstring(L, "unknown command \"%s\" (ps, pstree, dump, trace)",
                        cmd);
        push_error_reply(L, lua_tostring(L, -1));
        lua_remove(L, -2);
        return;
    }
    struct snap s;
    int first = lua_gettop(L) + 1;
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
    lua_replace(L, first);
    lua_settop(L, first);
}

/* ====== } */
