/*
 * pgvalue.c: PostgreSQL values to and from Lua. Parameters go as text
 * (bytea as binary); results come as text and are typed by their column's
 * type OID: bool, integers, floats as Lua values, bytea decoded, NULL as
 * nil, everything else (numeric, json, timestamps...) as the server's text.
 * SPDX-License-Identifier: MIT
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/pg_dl.h"

/* Type OIDs (pg_type.dat); fixed since PostgreSQL 7. */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701
};

void
lasio_pg_params_(lua_State *L, int idx, int nparams, const char **values,
                 int *lengths, int *formats, const char *what) {
    for (int i = 0; i < nparams; i++) {
        int at = idx + i;
        size_t len = 0;
        formats[i] = 0;
        switch (lua_type(L, at)) {
        case LUA_TNIL:
            values[i] = NULL; /* SQL NULL */
            lengths[i] = 0;
            continue;
        case LUA_TBOOLEAN:
            lua_pushstring(L, lua_toboolean(L, at) ? "t" : "f");
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, at)) {
                lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, at));
            } else {
                /* %.17g round-trips a double; Lua's own %.14g does not */
                double d = lua_tonumber(L, at);
                char buf[40];
                if (isnan(d))
                    strcpy(buf, "NaN");
                else if (isinf(d))
                    strcpy(buf, d > 0 ? "Infinity" : "-Infinity");
                else
                    snprintf(buf, sizeof buf, "%.17g", d);
                lua_pushstring(L, buf);
            }
            break;
        case LUA_TSTRING:
            lua_pushvalue(L, at);
            break;
        case LUA_TTABLE:
            /* pg.bytea(s) is {bytea = s}: sent as binary, so any byte goes */
            if (lua_getfield(L, at, "bytea") == LUA_TSTRING) {
                formats[i] = 1;
                break;
            }
            lua_pop(L, 1);
            luaL_error(L,
                       "%s: parameter $%d is a table (encode JSON as a "
                       "string, wrap binary data with pg.bytea)",
                       what, i + 1);
            break;
        default:
            luaL_error(L, "%s: parameter $%d: cannot send a %s", what, i + 1,
                       luaL_typename(L, at));
        }
        lua_replace(L, at);
        const char *s = lua_tolstring(L, at, &len);
        if (len > 0x7fffffff)
            luaL_error(L, "%s: parameter $%d is larger than 2 GiB", what,
                       i + 1);
        values[i] = s;
        lengths[i] = (int)len;
    }
}

static int
hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* bytea in the server's default output (bytea_output = hex): "\x" and two
 * hex digits a byte. Another form is returned as the server sent it. */
static void
pushbytea(lua_State *L, const char *s, size_t len) {
    if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2 != 0) {
        lua_pushlstring(L, s, len);
        return;
    }
    luaL_Buffer b;
    size_t n = (len - 2) / 2;
    char *out = luaL_buffinitsize(L, &b, n);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 + 2 * i]);
        int lo = hexval((unsigned char)s[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            luaL_pushresultsize(&b, 0);
            lua_pop(L, 1);
            lua_pushlstring(L, s, len);
            return;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    luaL_pushresultsize(&b, n);
}

/* Pushes the value of one field, typed by its column's OID. */
static void
pushvalue(lua_State *L, const PGresult *res, int row, int col, Oid type) {
    const char *s = PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
    switch (type) {
    case OID_BOOL:
        lua_pushboolean(L, s[0] == 't');
        return;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10));
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        /* strtod reads NaN, Infinity and -Infinity as well */
        lua_pushnumber(L, (lua_Number)strtod(s, NULL));
        return;
    case OID_BYTEA:
        pushbytea(L, s, len);
        return;
    default: /* numeric (exact), text, json, timestamps...: the text */
        lua_pushlstring(L, s, len);
    }
}

static void
pushrows(lua_State *L, const PGresult *res) {
    int nrows = PQntuples(res), ncols = PQnfields(res);
    luaL_checkstack(L, ncols + 4, "too many columns");
    /* the column names once, reused for every row */
    int names = lua_gettop(L) + 1;
    for (int c = 0; c < ncols; c++)
        lua_pushstring(L, PQfname(res, c));
    lua_createtable(L, nrows, 0);
    for (int r = 0; r < nrows; r++) {
        lua_createtable(L, 0, ncols);
        for (int c = 0; c < ncols; c++) {
            if (PQgetisnull(res, r, c))
                continue; /* NULL is nil: the field is absent */
            lua_pushvalue(L, names + c);
            pushvalue(L, res, r, c, PQftype(res, c));
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, r + 1);
    }
    lua_replace(L, names);
    lua_settop(L, names);
}

static void
setfield(lua_State *L, const PGresult *res, int code, const char *name) {
    const char *v = PQresultErrorField(res, code);
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, name);
    }
}

/* The error's fields; message is the primary message, or libpq's own
 * text (without its final newline) for a failure of the client side. */
static void
pusherror(lua_State *L, const PGresult *res, const char *fallback) {
    lua_createtable(L, 0, 8);
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!m) {
        m = PQresultErrorMessage(res);
        if (!m || !*m)
            m = fallback;
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            n--;
        lua_pushlstring(L, m, n);
    } else {
        lua_pushstring(L, m);
    }
    lua_setfield(L, -2, "message");
    setfield(L, res, PG_DIAG_SQLSTATE, "sqlstate");
    setfield(L, res, PG_DIAG_SEVERITY_NONLOCALIZED, "severity");
    setfield(L, res, PG_DIAG_MESSAGE_DETAIL, "detail");
    setfield(L, res, PG_DIAG_MESSAGE_HINT, "hint");
    setfield(L, res, PG_DIAG_STATEMENT_POSITION, "position");
    setfield(L, res, PG_DIAG_TABLE_NAME, "table");
    setfield(L, res, PG_DIAG_COLUMN_NAME, "column");
    setfield(L, res, PG_DIAG_CONSTRAINT_NAME, "constraint");
}

int
lasio_pg_pushresult_(lua_State *L, const void *resp) {
    const PGresult *res = resp;
    const char *n;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        pushrows(L, res);
        lua_pushinteger(L, PQntuples(res));
        return 2;
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        lua_createtable(L, 0, 0);
        n = PQcmdTuples((PGresult *)res);
        if (n && *n)
            lua_pushinteger(L, (lua_Integer)strtoll(n, NULL, 10));
        else
            lua_pushnil(L);
        return 2;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        lua_pushboolean(L, 0);
        lua_createtable(L, 0, 2);
        lua_pushliteral(L, "COPY is not supported by lasio.pg: the "
                           "connection was given up");
        lua_setfield(L, -2, "message");
        lua_pushliteral(L, "0A000"); /* feature_not_supported */
        lua_setfield(L, -2, "sqlstate");
        return 2;
    default:
        lua_pushboolean(L, 0);
        pusherror(L, res, PQresStatus(PQresultStatus(res)));
        return 2;
    }
}
