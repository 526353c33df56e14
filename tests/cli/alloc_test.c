/*
 * alloc_test.c: the command's size-class allocator (src/cli/alloc.c):
 * blocks are distinct and reused, and past the first chunk the pages
 * ahead of the bump pointer are pre-faulted a step at a time (mincore
 * tells which pages are resident), while the first chunk faults page by
 * page. Run by ctest (cli-alloc) in the normal build: the sanitizer build
 * allocates with malloc.
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cli.h"
#include "harness.h" /* CHECK and the report */

#define BLOCK 1024 /* the largest small block */

/* Whether the page holding p is resident. */
static int
resident(const void *p) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    unsigned char v = 0;
    if (mincore((void *)start, (size_t)page, &v) != 0)
        return -1;
    return v & 1;
}

int
main(void) {
    struct lasio_alloc *a = lasio_alloc_new_();
    CHECK(a != NULL);

    /* the first chunk: nothing ahead of the first block is touched */
    char *first = lasio_alloc_fn_(a, NULL, 0, BLOCK);
    CHECK(first != NULL);
    memset(first, 1, BLOCK);
    CHECK(resident(first) == 1);
    CHECK(resident(first + (64 << 10)) == 0);

    /* a freed block is the next one of its size */
    lasio_alloc_fn_(a, first, BLOCK, 0);
    CHECK(lasio_alloc_fn_(a, NULL, 0, BLOCK) == first);

    /* 2.5 MiB of blocks: the last ones are in the second chunk */
    char *prev = first, *last = NULL;
    for (int i = 0; i < (5 << 20) / 2 / BLOCK; i++) {
        last = lasio_alloc_fn_(a, NULL, 0, BLOCK);
        CHECK(last != NULL && last != prev);
        prev = last;
    }
    /* pre-faulted ahead, though nothing wrote there; not a whole chunk */
    CHECK(resident(last + BLOCK) == 1);
    CHECK(resident(last + (128 << 10)) == 1);
    CHECK(resident(last + (1 << 20)) == 0);

    /* a large block goes to malloc, and back */
    char *big = lasio_alloc_fn_(a, NULL, 0, 3 * BLOCK);
    CHECK(big != NULL);
    memset(big, 2, 3 * BLOCK);
    char *small = lasio_alloc_fn_(a, big, 3 * BLOCK, 16);
    CHECK(small != NULL && small[15] == 2);
    lasio_alloc_fn_(a, small, 16, 0);

    lasio_alloc_free_(a);
    return harness_done("alloc_test");
}
