/*
 * pg_dl.c: loads libpq with dlopen when the first PostgreSQL connection is
 * made (why: pg_dl.h) and fills the table of the functions pg.c and
 * pgvalue.c call.
 * SPDX-License-Identifier: MIT
 */
#define LASIO_PG_DL_TABLE_ONLY
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "db/pg_dl.h"

struct lasio_pg_api lasio_pg_api_;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[512];
static const char *load_result; /* NULL: loaded */

static void
load(void) {
    /* RTLD_LOCAL: libpq's symbols stay out of the global scope (a Lua C
     * module linking its own libpq binds to that one); RTLD_NODELETE:
     * connections and cancel threads may outlive any handle. */
    void *h = dlopen(LASIO_LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_err, sizeof load_err,
                 "PostgreSQL unavailable: cannot load libpq (%s)",
                 why ? why : LASIO_LIBPQ_SONAME);
        load_result = load_err;
        return;
    }
    struct lasio_pg_api t;
#define LASIO_PG_SYM_(name)                                                    \
    t.name = (__typeof__(t.name))dlsym(h, #name);                              \
    if (!t.name) {                                                             \
        snprintf(load_err, sizeof load_err,                                    \
                 "PostgreSQL unavailable: %s has no function %s (libpq "       \
                 "older than 14?)",                                            \
                 LASIO_LIBPQ_SONAME, #name);                                   \
        load_result = load_err;                                                \
        return;                                                                \
    }
    LASIO_PG_FUNCS(LASIO_PG_SYM_)
#undef LASIO_PG_SYM_
    lasio_pg_api_ = t;
    load_result = NULL;
}

const char *
lasio_pg_load_(void) {
    pthread_once(&load_once, load);
    return load_result;
}
