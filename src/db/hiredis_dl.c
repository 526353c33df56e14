/*
 * hiredis_dl.c: loads hiredis with dlopen on the first Redis connection
 * (why: hiredis_dl.h) and fills the table of the functions redis.c calls.
 * SPDX-License-Identifier: MIT
 */
#define LASIO_HIREDIS_DL_TABLE_ONLY
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "db/hiredis_dl.h"

struct lasio_hiredis_api lasio_hiredis_api_;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[512];
static const char *load_result; /* NULL: loaded */

const char *
lasio_hiredis_dlopen_(const char *soname, struct lasio_hiredis_api *api,
                      char *err, size_t errlen) {
    /* RTLD_LOCAL: hiredis's symbols stay out of the global scope, so a Lua
     * C module loaded later binds to whatever it links itself;
     * RTLD_NODELETE: contexts may outlive any handle we could close. */
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen,
                 "Redis unavailable: cannot load hiredis (%s); install "
                 "the Debian package libhiredis0.14",
                 why ? why : soname);
        return err;
    }
    struct lasio_hiredis_api t;
#define LASIO_HIREDIS_SYM_(name)                                               \
    t.name = (__typeof__(t.name))dlsym(h, #name);                              \
    if (!t.name) {                                                             \
        snprintf(err, errlen, "Redis unavailable: %s has no function %s",      \
                 soname, #name);                                               \
        dlclose(h);                                                            \
        return err;                                                            \
    }
    LASIO_HIREDIS_FUNCS(LASIO_HIREDIS_SYM_)
#undef LASIO_HIREDIS_SYM_
    *api = t;
    return NULL;
}

static void
load(void) {
    load_result =
        lasio_hiredis_dlopen_(LASIO_LIBHIREDIS_SONAME, &lasio_hiredis_api_,
                              load_err, sizeof load_err);
}

const char *
lasio_hiredis_load_(void) {
    pthread_once(&load_once, load);
    return load_result;
}
