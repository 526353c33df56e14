/*
 * pg_dl.h: libpq loaded on first use (pg_dl.c). Linking libpq would make
 * every run of the command and the module bind it (and, through it,
 * OpenSSL, GSSAPI and LDAP) at startup, so pg.c calls libpq through a
 * table of function pointers filled by dlopen on the first connection, as
 * net/tls_dl.h does for OpenSSL. Include this after libpq-fe.h, in the db
 * layer's libpq users only: it redirects the names in LASIO_PG_FUNCS.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_pg_dl_h
#define lasio_pg_dl_h

#include <stddef.h>
#include <libpq-fe.h>

#include "core/core.h"

/* libpq's ABI has been libpq.so.5 since PostgreSQL 8.x; pipeline mode
 * needs the library of PostgreSQL 14 or later. */
#ifndef LASIO_LIBPQ_SONAME
#define LASIO_LIBPQ_SONAME "libpq.so.5"
#endif

/* Every libpq function the db layer calls. */
#define LASIO_PG_FUNCS(X)                                                      \
    X(PQbackendPID)                                                            \
    X(PQcancel)                                                                \
    X(PQclear)                                                                 \
    X(PQcmdTuples)                                                             \
    X(PQconnectPoll)                                                           \
    X(PQconnectStartParams)                                                    \
    X(PQconninfoFree)                                                          \
    X(PQconninfoParse)                                                         \
    X(PQconsumeInput)                                                          \
    X(PQenterPipelineMode)                                                     \
    X(PQerrorMessage)                                                          \
    X(PQfinish)                                                                \
    X(PQflush)                                                                 \
    X(PQfname)                                                                 \
    X(PQfreeCancel)                                                            \
    X(PQfreemem)                                                               \
    X(PQftype)                                                                 \
    X(PQgetCancel)                                                             \
    X(PQgetResult)                                                             \
    X(PQgetisnull)                                                             \
    X(PQgetlength)                                                             \
    X(PQgetvalue)                                                              \
    X(PQisBusy)                                                                \
    X(PQnfields)                                                               \
    X(PQnotifies)                                                              \
    X(PQntuples)                                                               \
    X(PQparameterStatus)                                                       \
    X(PQpipelineSync)                                                          \
    X(PQresStatus)                                                             \
    X(PQresultErrorField)                                                      \
    X(PQresultErrorMessage)                                                    \
    X(PQresultStatus)                                                          \
    X(PQsendQueryParams)                                                       \
    X(PQserverVersion)                                                         \
    X(PQsetNoticeProcessor)                                                    \
    X(PQsetnonblocking)                                                        \
    X(PQsocket)                                                                \
    X(PQstatus)                                                                \
    X(PQtransactionStatus)

#define LASIO_PG_FIELD_(name) __typeof__(name) *name;
struct lasio_pg_api {
    LASIO_PG_FUNCS(LASIO_PG_FIELD_)
};
#undef LASIO_PG_FIELD_

/* Filled by lasio_pg_load_; read only after it succeeded. */
LASIO_HIDDEN extern struct lasio_pg_api lasio_pg_api_;

/* Loads libpq once per process (thread-safe). Returns NULL when the table
 * is ready, or a message saying why not, the same for every later call. */
LASIO_HIDDEN const char *lasio_pg_load_(void);

#ifndef LASIO_PG_DL_TABLE_ONLY
#define PQbackendPID (*lasio_pg_api_.PQbackendPID)
#define PQcancel (*lasio_pg_api_.PQcancel)
#define PQclear (*lasio_pg_api_.PQclear)
#define PQcmdTuples (*lasio_pg_api_.PQcmdTuples)
#define PQconnectPoll (*lasio_pg_api_.PQconnectPoll)
#define PQconnectStartParams (*lasio_pg_api_.PQconnectStartParams)
#define PQconninfoFree (*lasio_pg_api_.PQconninfoFree)
#define PQconninfoParse (*lasio_pg_api_.PQconninfoParse)
#define PQconsumeInput (*lasio_pg_api_.PQconsumeInput)
#define PQenterPipelineMode (*lasio_pg_api_.PQenterPipelineMode)
#define PQerrorMessage (*lasio_pg_api_.PQerrorMessage)
#define PQfinish (*lasio_pg_api_.PQfinish)
#define PQflush (*lasio_pg_api_.PQflush)
#define PQfname (*lasio_pg_api_.PQfname)
#define PQfreeCancel (*lasio_pg_api_.PQfreeCancel)
#define PQfreemem (*lasio_pg_api_.PQfreemem)
#define PQftype (*lasio_pg_api_.PQftype)
#define PQgetCancel (*lasio_pg_api_.PQgetCancel)
#define PQgetResult (*lasio_pg_api_.PQgetResult)
#define PQgetisnull (*lasio_pg_api_.PQgetisnull)
#define PQgetlength (*lasio_pg_api_.PQgetlength)
#define PQgetvalue (*lasio_pg_api_.PQgetvalue)
#define PQisBusy (*lasio_pg_api_.PQisBusy)
#define PQnfields (*lasio_pg_api_.PQnfields)
#define PQnotifies (*lasio_pg_api_.PQnotifies)
#define PQntuples (*lasio_pg_api_.PQntuples)
#define PQparameterStatus (*lasio_pg_api_.PQparameterStatus)
#define PQpipelineSync (*lasio_pg_api_.PQpipelineSync)
#define PQresStatus (*lasio_pg_api_.PQresStatus)
#define PQresultErrorField (*lasio_pg_api_.PQresultErrorField)
#define PQresultErrorMessage (*lasio_pg_api_.PQresultErrorMessage)
#define PQresultStatus (*lasio_pg_api_.PQresultStatus)
#define PQsendQueryParams (*lasio_pg_api_.PQsendQueryParams)
#define PQserverVersion (*lasio_pg_api_.PQserverVersion)
#define PQsetNoticeProcessor (*lasio_pg_api_.PQsetNoticeProcessor)
#define PQsetnonblocking (*lasio_pg_api_.PQsetnonblocking)
#define PQsocket (*lasio_pg_api_.PQsocket)
#define PQstatus (*lasio_pg_api_.PQstatus)
#define PQtransactionStatus (*lasio_pg_api_.PQtransactionStatus)
#endif

#endif
