/*
 * hiredis_dl_test.c: the hiredis loader (src/db/hiredis_dl.c): the error
 * when the library is missing or is not hiredis, and a working table from
 * the real one. Run by ctest (hiredis-dl).
 * SPDX-License-Identifier: MIT
 */
#define LASIO_HIREDIS_DL_TABLE_ONLY /* the table's fields by name */
#include "../embed/harness.h"
#include "db/hiredis_dl.h"

int
main(void) {
    char err[512];
    struct lasio_hiredis_api api;
    memset(&api, 0, sizeof api);

    /* no such library: the message names it and the package */
    const char *e = lasio_hiredis_dlopen_("liblasio-no-such-hiredis.so.0", &api,
                                          err, sizeof err);
    CHECK(e == err);
    CHECK_STR(e, "Redis unavailable: cannot load hiredis");
    CHECK_STR(e, "liblasio-no-such-hiredis.so.0");
    CHECK_STR(e, "libhiredis");
    CHECK(api.redisAsyncConnect == NULL); /* the table is left alone */

    /* a library that is not hiredis: the first missing function */
    e = lasio_hiredis_dlopen_("libc.so.6", &api, err, sizeof err);
    CHECK_STR(e, "Redis unavailable: libc.so.6 has no function "
                 "redisAsyncConnect");
    CHECK(api.redisAsyncConnect == NULL);

    /* the real one, through the process-wide table, once */
    CHECK(lasio_hiredis_load_() == NULL);
    CHECK(lasio_hiredis_load_() == NULL);
    CHECK(lasio_hiredis_api_.redisAsyncCommandArgv != NULL);
    /* a Unix socket that does not exist: the context reports it at once
     * or on its first event; either way it frees cleanly */
    redisAsyncContext *ac =
        lasio_hiredis_api_.redisAsyncConnectUnix("/nonexistent/lasio.sock");
    CHECK(ac != NULL);
    if (ac) {
        CHECK(ac->err != 0);
        lasio_hiredis_api_.redisAsyncFree(ac);
    }
    return harness_done("hiredis_dl_test");
}
