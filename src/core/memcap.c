/*
 * memcap.c: the memory cap of a Lua state (docs/UNTRUSTED.md). A counting
 * allocator is put in front of whatever allocator the state has (the
 * command's size classes, malloc, a host's own): it adds up what Lua asks
 * for (Lua passes the old size of every block, so the count is exact) and
 * refuses a growth past the cap, which Lua turns into an emergency
 * collection and then a "not enough memory" error in the code that asked.
 * While a task with a memory budget runs, its growth is counted against
 * the budget too (budget.c). The record is freed at lua_close by the
 * finalizer of a registry value, which puts the inner allocator back
 * first, so the state's last frees never reach freed memory.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "core/core.h"

static const char memcap_key = 0; /* registry: the record's keeper */

void *
lasio_memcap_alloc_(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct lasio_memcap *m = ud;
    if (ptr == NULL)
        osize = 0; /* osize tells the kind of object, not a size */
    if (nsize > osize) {
        size_t grow = nsize - osize;
        if (grow > m->limit - m->used) /* used <= limit always */
            return NULL;
        struct lasio_budget *b = m->task;
        if (b && b->memory && lasio_budget_memory_grow_(b, grow))
            return NULL;
        void *p = m->inner(m->inner_ud, ptr, osize, nsize);
        if (!p)
            return NULL;
        m->used += grow;
        if (m->used > m->peak)
            m->peak = m->used;
        return p;
    }
    void *p = m->inner(m->inner_ud, ptr, osize, nsize);
    if (p || nsize == 0) /* a shrink that fails keeps the old block */
        m->used -= osize - nsize;
    return p;
}

/* At lua_close: the inner allocator takes over, with the context. */
static int
memcap_gc(lua_State *L) {
    struct lasio_memcap **box = lua_touserdata(L, 1);
    struct lasio_memcap *m = *box;
    if (!m)
        return 0;
    *box = NULL;
    if (m->inner == lasio_ctx_allocf_) /* its ud starts with a context */
        *(struct lasio_statectx *)m->inner_ud = m->ctx;
    lua_setallocf(L, m->inner, m->inner_ud);
    free(m);
    return 0;
}

struct lasio_memcap *
lasio_memcap_get_(lua_State *L) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f == lasio_memcap_alloc_ ? ud : NULL;
}

struct lasio_memcap *
lasio_memcap_install_(lua_State *L) {
    struct lasio_memcap *m = lasio_memcap_get_(L);
    if (m)
        return m;
    if (!lua_checkstack(L, 3))
        return NULL;
    struct lasio_memcap **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_newtable(L); /* its metatable */
    lua_pushcfunction(L, memcap_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    m = calloc(1, sizeof *m);
    if (!m) {
        lua_pop(L, 1);
        return NULL;
    }
    *box = m;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &memcap_key);
    m->inner = lua_getallocf(L, &m->inner_ud);
    m->ctx.running = lasio_running_loop_(L); /* as the registry says */
    m->limit = (size_t)-1;
    /* what the state holds now, exactly as Lua counts it */
    m->used =
        (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
    m->peak = m->used;
    lua_setallocf(L, lasio_memcap_alloc_, m);
    return m;
}

int
lasio_memcap_set_limit_(lua_State *L, size_t limit) {
    struct lasio_memcap *m = lasio_memcap_install_(L);
    if (!m)
        return -1;
    if (limit == 0)
        limit = (size_t)-1;
    if (limit < m->used) { /* collect first: the cap may still fit */
        lua_gc(L, LUA_GCCOLLECT);
        if (limit < m->used)
            return -2;
    }
    m->limit = limit;
    return 0;
}
