/*
 * alloc.c: the Lua allocator of the lasio command. Small blocks come from
 * size classes carved out of 2 MiB chunks, so no block carries a malloc
 * header (Lua passes the old size on every free and realloc) and a freed
 * block is reused by the next of its size at once. Large blocks go to
 * malloc. One allocator per lua_State; not thread-safe, as Lua states are
 * not. The sanitizer build uses plain malloc so ASan sees every block. In
 * both, the allocator's ud starts with the state's lasio context (core.h).
 * The chunks are not madvised for huge pages: on this project's machine
 * kind (a VM whose kernel reports free 8 MiB blocks to the host), a huge
 * page often comes from memory the host has taken back, and zeroing it
 * then costs more than the 4 KiB faults it saves (bench/README.md).
 * Past the first chunk, the bump area is pre-faulted 256 KiB ahead in one
 * madvise(MADV_POPULATE_WRITE) instead of one page fault per 4 KiB page:
 * a state that grows (200k tasks) spends a third of its time in faults
 * otherwise, and one that stays small (start-up) touches no page more.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cli/cli.h"
#include "core/core.h"

#define GRAIN 16 /* block sizes are multiples of this */
/* larger blocks go to malloc; a coroutine's first stack (45 slots of 16
 * bytes) is a small one */
#define MAX_SMALL 1024
#define NCLASSES (MAX_SMALL / GRAIN)
#define CHUNK_SIZE (2u << 20)      /* mapped at a time */
#define POPULATE_STEP (256u << 10) /* pre-faulted at a time */

struct freeblock {
    struct freeblock *next;
};

struct chunk {
    struct chunk *next;
};

struct lasio_alloc {
    struct lasio_statectx ctx;        /* first: the state's context */
    struct freeblock *free[NCLASSES]; /* per size class */
    char *bump, *end;                 /* the unused part of the chunk */
    char *populated;                  /* pre-faulted up to here (or NULL) */
    struct chunk *chunks;             /* every mapped chunk */
};

#ifdef LASIO_SANITIZED
/* plain malloc, so the sanitizers see every block; ud is still the
 * struct lasio_alloc that holds the state's context */
void *
lasio_alloc_fn_(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}
#else
static size_t
class_of(size_t size) {
    return (size + GRAIN - 1) / GRAIN - 1;
}

/* Maps a new chunk and makes it the bump area. Returns 0 on failure. */
static int
new_chunk(struct lasio_alloc *a) {
    void *p = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    struct chunk *c = p;
    c->next = a->chunks;
    a->chunks = c;
    a->bump = (char *)p + GRAIN; /* the first grain holds the link */
    a->end = (char *)p + CHUNK_SIZE;
    /* the first chunk faults page by page: a small state stays small */
    a->populated = c->next ? (char *)p : NULL;
    return 1;
}

/* Pre-faults the next step of the bump area, once the bump pointer has
 * reached the part not done yet. A kernel without MADV_POPULATE_WRITE
 * (before 5.14) refuses it: pages then fault on first touch, as in the
 * first chunk. */
static void
populate_ahead(struct lasio_alloc *a) {
#ifdef MADV_POPULATE_WRITE
    size_t step = (size_t)(a->end - a->populated);
    if (step > POPULATE_STEP)
        step = POPULATE_STEP;
    if (madvise(a->populated, step, MADV_POPULATE_WRITE) != 0) {
        a->populated = NULL;
        return;
    }
    a->populated += step;
#else
    a->populated = NULL;
#endif
}

static void *
small_alloc(struct lasio_alloc *a, size_t size) {
    size_t cls = class_of(size);
    struct freeblock *b = a->free[cls];
    if (b) {
        a->free[cls] = b->next;
        return b;
    }
    size_t bytes = (cls + 1) * GRAIN;
    if ((size_t)(a->end - a->bump) < bytes) {
        /* the tail of the old chunk is too small: give it to the
         * classes that fit, then start a new chunk */
        while ((size_t)(a->end - a->bump) >= GRAIN) {
            size_t left = (size_t)(a->end - a->bump);
            size_t c = class_of(left < MAX_SMALL ? left : MAX_SMALL);
            if ((c + 1) * GRAIN > left)
                c--;
            struct freeblock *f = (struct freeblock *)a->bump;
            f->next = a->free[c];
            a->free[c] = f;
            a->bump += (c + 1) * GRAIN;
        }
        if (!new_chunk(a))
            return NULL;
    }
    void *p = a->bump;
    a->bump += bytes;
    if (a->populated && a->bump > a->populated)
        populate_ahead(a);
    return p;
}

static void
small_free(struct lasio_alloc *a, void *p, size_t size) {
    struct freeblock *b = p;
    size_t cls = class_of(size);
    b->next = a->free[cls];
    a->free[cls] = b;
}

void *
lasio_alloc_fn_(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct lasio_alloc *a = ud;
    if (ptr == NULL)
        osize = 0; /* osize tells the kind of object, not a size */
    if (nsize == 0) {
        if (ptr) {
            if (osize <= MAX_SMALL)
                small_free(a, ptr, osize);
            else
                free(ptr);
        }
        return NULL;
    }
    if (osize > MAX_SMALL && nsize > MAX_SMALL)
        return realloc(ptr, nsize);
    if (ptr && osize <= MAX_SMALL && nsize <= MAX_SMALL &&
        class_of(osize) == class_of(nsize))
        return ptr; /* same class: the block already fits */
    void *n = nsize <= MAX_SMALL ? small_alloc(a, nsize) : malloc(nsize);
    if (!n)
        return NULL; /* Lua keeps the old block */
    if (ptr) {
        memcpy(n, ptr, osize < nsize ? osize : nsize);
        if (osize <= MAX_SMALL)
            small_free(a, ptr, osize);
        else
            free(ptr);
    }
    return n;
}
#endif

struct lasio_alloc *
lasio_alloc_new_(void) {
    return calloc(1, sizeof(struct lasio_alloc));
}

void
lasio_alloc_free_(struct lasio_alloc *a) {
    if (!a)
        return;
    while (a->chunks) {
        struct chunk *c = a->chunks;
        a->chunks = c->next;
        munmap(c, CHUNK_SIZE);
    }
    free(a);
}
