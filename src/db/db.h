/*
 * db.h: cross-file functions of the database layer (PostgreSQL through
 * libpq, loaded on first use by pg_dl.c), on core.h. Internal.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_db_h
#define lasio_db_h

#include "core/core.h"

#define LASIO_PGCONN_MT "lasio.pg.Connection"

/* {====== PostgreSQL values (pgvalue.c) ======
 * Libpq types stay out of this header (pg_dl.h redirects libpq's names):
 * results and parameters are passed as void pointers to PGresult. */

/* The query's parameters: the nparams values from idx are replaced on the
 * stack by their text (or bytea) form, and the arrays values, lengths and
 * formats (room for nparams each) point into them; they stay valid while
 * those stack slots do. Raises a misuse error naming `what` and the
 * parameter for a value that cannot be sent. [-0, +0, e] */
LASIO_HIDDEN void lasio_pg_params_(lua_State *L, int idx, int nparams,
                                   const char **values, int *lengths,
                                   int *formats, const char *what);
/* Pushes the outcome of a query's result res (a PGresult *): rows and the
 * affected-row count for a success, or false and a table of the error's
 * fields. Returns the number of values pushed (2). [-0, +2, m] */
LASIO_HIDDEN int lasio_pg_pushresult_(lua_State *L, const void *res);
/* ====== } */

/* Sets pg_conninfo_parse and pg_connect (pg.c) in the table at the top
 * (core.internal) and registers the connection's metatable.
 * [-0, +0, m] */
LASIO_HIDDEN void lasio_pg_open_(lua_State *L);

#endif
