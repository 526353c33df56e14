/*
 * edit_dl_test.c: the libedit loader of the REPL (src/cli/edit_dl.c): the
 * error when the library is missing or is not libedit, and a working
 * table from the real one. Run by ctest (edit-dl).
 * SPDX-License-Identifier: MIT
 */
#define LASIO_EDIT_DL_TABLE_ONLY /* the table's fields by name */
#include <stdio.h>
#include <string.h>

#include "cli/edit_dl.h"

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static int
contains(const char *s, const char *sub) {
    if (!s || !strstr(s, sub)) {
        fprintf(stderr, "'%s' lacks '%s'\n", s ? s : "(null)", sub);
        return 0;
    }
    return 1;
}

int
main(void) {
    char err[512];
    struct lasio_edit_api api;
    memset(&api, 0, sizeof api);

    const char *e =
        lasio_edit_dlopen_("liblasio-no-such-edit.so.0", &api, err, sizeof err);
    CHECK(e == err);
    CHECK(contains(e, "cannot load libedit ("));
    CHECK(contains(e, "liblasio-no-such-edit.so.0"));
    CHECK(api.add_history == NULL); /* the table is left alone */

    e = lasio_edit_dlopen_("libc.so.6", &api, err, sizeof err);
    CHECK(contains(e, "libc.so.6 has no symbol add_history"));
    CHECK(api.add_history == NULL);

    CHECK(lasio_edit_load_() == NULL);
    CHECK(lasio_edit_load_() == NULL);
    CHECK(lasio_edit_api_.rl_callback_read_char != NULL);
    CHECK(lasio_edit_api_.rl_readline_name != NULL); /* a variable's address */
    *lasio_edit_api_.rl_catch_signals = 0;
    CHECK(lasio_edit_api_.add_history("a line") == 0);

    if (failures)
        fprintf(stderr, "edit_dl_test: %d check(s) failed\n", failures);
    else
        printf("edit_dl_test: ok\n");
    return failures ? 1 : 0;
}
