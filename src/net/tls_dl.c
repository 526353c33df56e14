/*
 * tls_dl.c: loads OpenSSL with dlopen when the first SSLContext is made
 * (why: tls_dl.h) and fills the table of its functions tls.c calls.
 * SPDX-License-Identifier: MIT
 */
#define LASIO_TLS_DL_TABLE_ONLY
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "net/tls_dl.h"

struct lasio_tls_api lasio_tls_api_;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[512];
static const char *load_result; /* NULL: loaded */

const char *
lasio_tls_dlopen_(const char *soname, struct lasio_tls_api *api, char *err,
                  size_t errlen) {
    /* RTLD_LOCAL: OpenSSL's symbols stay out of the global scope, so Lua
     * C modules loaded later bind to whatever they link themselves;
     * RTLD_NODELETE: contexts may outlive every handle we could close. */
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "TLS unavailable: cannot load OpenSSL (%s)",
                 why ? why : soname);
        return err;
    }
    struct lasio_tls_api t;
    /* dlsym on the handle searches libssl, then its dependencies
     * (libcrypto). */
#define LASIO_TLS_SYM_(name)                                                   \
    t.name = (__typeof__(t.name))dlsym(h, #name);                              \
    if (!t.name) {                                                             \
        snprintf(err, errlen,                                                  \
                 "TLS unavailable: %s has no function %s (OpenSSL too old?)",  \
                 soname, #name);                                               \
        dlclose(h);                                                            \
        return err;                                                            \
    }
    LASIO_TLS_FUNCS(LASIO_TLS_SYM_)
#undef LASIO_TLS_SYM_
    *api = t;
    return NULL;
}

static void
load(void) {
    load_result = lasio_tls_dlopen_(LASIO_LIBSSL_SONAME, &lasio_tls_api_,
                                    load_err, sizeof load_err);
}

const char *
lasio_tls_load_(void) {
    pthread_once(&load_once, load);
    return load_result;
}
