/*
 * hiredis_dl.h: hiredis loaded on first use (hiredis_dl.c), as OpenSSL is
 * (net/tls_dl.h): a script that never connects to Redis neither links nor
 * maps the library, and the command's and the module's link lines stay as
 * they are. redis.c calls hiredis through this table of function pointers;
 * include this after <hiredis/async.h>, in redis.c only: it redirects the
 * names in LASIO_HIREDIS_FUNCS to the table.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_hiredis_dl_h
#define lasio_hiredis_dl_h

#include <stddef.h>
#include <hiredis/async.h>

#include "core/core.h"

/* The library loaded: the soname of the version the headers describe
 * (redis.c reads the fields of redisAsyncContext, whose layout changes
 * between versions). */
#ifndef LASIO_LIBHIREDIS_SONAME
#define LASIO_HIREDIS_STR_(x) #x
#define LASIO_HIREDIS_STR(x) LASIO_HIREDIS_STR_(x)
#if HIREDIS_MAJOR == 0
#define LASIO_LIBHIREDIS_SONAME                                                \
    "libhiredis.so.0." LASIO_HIREDIS_STR(HIREDIS_MINOR)
#else
#define LASIO_LIBHIREDIS_SONAME                                                \
    "libhiredis.so." LASIO_HIREDIS_STR(HIREDIS_MAJOR) "." LASIO_HIREDIS_STR(   \
        HIREDIS_MINOR) ".0"
#endif
#endif

/* Every hiredis function redis.c calls. */
#define LASIO_HIREDIS_FUNCS(X)                                                 \
    X(redisAsyncConnect)                                                       \
    X(redisAsyncConnectUnix)                                                   \
    X(redisAsyncSetConnectCallback)                                            \
    X(redisAsyncSetDisconnectCallback)                                         \
    X(redisAsyncFree)                                                          \
    X(redisAsyncHandleRead)                                                    \
    X(redisAsyncHandleWrite)                                                   \
    X(redisAsyncCommandArgv)

#define LASIO_HIREDIS_FIELD_(name) __typeof__(name) *name;
struct lasio_hiredis_api {
    LASIO_HIREDIS_FUNCS(LASIO_HIREDIS_FIELD_)
};
#undef LASIO_HIREDIS_FIELD_

/* Filled by lasio_hiredis_load_; read only after it succeeded. */
LASIO_HIDDEN extern struct lasio_hiredis_api lasio_hiredis_api_;

/* Loads hiredis once per process (thread-safe). Returns NULL when the
 * table is ready, or a message saying why not, the same for every later
 * call. */
LASIO_HIDDEN const char *lasio_hiredis_load_(void);
/* The loader itself, for tests: loads `soname` into `api`; returns NULL
 * on success, or writes the reason to err and returns it. */
LASIO_HIDDEN const char *lasio_hiredis_dlopen_(const char *soname,
                                               struct lasio_hiredis_api *api,
                                               char *err, size_t errlen);

#ifndef LASIO_HIREDIS_DL_TABLE_ONLY
#define redisAsyncConnect (*lasio_hiredis_api_.redisAsyncConnect)
#define redisAsyncConnectUnix (*lasio_hiredis_api_.redisAsyncConnectUnix)
#define redisAsyncSetConnectCallback                                           \
    (*lasio_hiredis_api_.redisAsyncSetConnectCallback)
#define redisAsyncSetDisconnectCallback                                        \
    (*lasio_hiredis_api_.redisAsyncSetDisconnectCallback)
#define redisAsyncFree (*lasio_hiredis_api_.redisAsyncFree)
#define redisAsyncHandleRead (*lasio_hiredis_api_.redisAsyncHandleRead)
#define redisAsyncHandleWrite (*lasio_hiredis_api_.redisAsyncHandleWrite)
#define redisAsyncCommandArgv (*lasio_hiredis_api_.redisAsyncCommandArgv)
#endif

#endif
