/*
 * edit_dl.c: loads libedit with dlopen when the REPL first reads a
 * terminal (why: edit_dl.h) and fills the table of what repl.c uses.
 * SPDX-License-Identifier: MIT
 */
#define LASIO_EDIT_DL_TABLE_ONLY
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "cli/edit_dl.h"

struct lasio_edit_api lasio_edit_api_;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[512];
static const char *load_result; /* NULL: loaded */

const char *
lasio_edit_dlopen_(const char *soname, struct lasio_edit_api *api, char *err,
                   size_t errlen) {
    /* RTLD_LOCAL: libedit's readline names stay out of the global scope,
     * where a Lua C module might look for GNU readline's. */
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load libedit (%s)", why ? why : soname);
        return err;
    }
    struct lasio_edit_api t;
#define LASIO_EDIT_SYM_(name)                                                  \
    t.name = (__typeof__(t.name))dlsym(h, #name);                              \
    if (!t.name) {                                                             \
        snprintf(err, errlen, "%s has no symbol %s", soname, #name);           \
        dlclose(h);                                                            \
        return err;                                                            \
    }
    LASIO_EDIT_SYMS(LASIO_EDIT_SYM_)
#undef LASIO_EDIT_SYM_
    *api = t;
    return NULL;
}

static void
load(void) {
    load_result = lasio_edit_dlopen_(LASIO_LIBEDIT_SONAME, &lasio_edit_api_,
                                     load_err, sizeof load_err);
}

const char *
lasio_edit_load_(void) {
    pthread_once(&load_once, load);
    return load_result;
}
