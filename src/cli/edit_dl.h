/*
 * edit_dl.h: libedit loaded when the REPL first reads a terminal
 * (edit_dl.c). Linked, libedit and its dependencies (libbsd, libmd,
 * libtinfo) cost every start of the command ~450 symbol bindings and four
 * more objects to map, for the one mode that edits lines. Include this
 * after <editline/readline.h>, in repl.c only: it redirects the names in
 * LASIO_EDIT_SYMS to the table.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_edit_dl_h
#define lasio_edit_dl_h

#include <stddef.h>
#include <stdio.h>
#include <editline/readline.h>

#ifndef LASIO_LIBEDIT_SONAME
#define LASIO_LIBEDIT_SONAME "libedit.so.2"
#endif

/* Every libedit function and variable repl.c uses (the command fails to
 * link if one is missing here). */
#define LASIO_EDIT_SYMS(X)                                                     \
    X(add_history)                                                             \
    X(rl_callback_handler_install)                                             \
    X(rl_callback_handler_remove)                                              \
    X(rl_callback_read_char)                                                   \
    X(rl_catch_signals)                                                        \
    X(rl_readline_name)

#define LASIO_EDIT_FIELD_(name) __typeof__(name) *name;
struct lasio_edit_api {
    LASIO_EDIT_SYMS(LASIO_EDIT_FIELD_)
};
#undef LASIO_EDIT_FIELD_

/* Filled by lasio_edit_load_; read only after it succeeded. */
extern struct lasio_edit_api lasio_edit_api_;

/* Loads libedit once per process (thread-safe). Returns NULL when the
 * table is ready, or a message saying why not, the same for every later
 * call. */
const char *lasio_edit_load_(void);
/* The loader itself, for tests: loads `soname` into `api`; returns NULL
 * on success, or writes the reason to err and returns it. */
const char *lasio_edit_dlopen_(const char *soname, struct lasio_edit_api *api,
                               char *err, size_t errlen);

#ifndef LASIO_EDIT_DL_TABLE_ONLY
/* From here on, uses go through the table (the loader and its test
 * define LASIO_EDIT_DL_TABLE_ONLY to name the fields themselves). */
#define add_history (*lasio_edit_api_.add_history)
#define rl_callback_handler_install                                            \
    (*lasio_edit_api_.rl_callback_handler_install)
#define rl_callback_handler_remove (*lasio_edit_api_.rl_callback_handler_remove)
#define rl_callback_read_char (*lasio_edit_api_.rl_callback_read_char)
#define rl_catch_signals (*lasio_edit_api_.rl_catch_signals)
#define rl_readline_name (*lasio_edit_api_.rl_readline_name)
#endif

#endif
