/*
 * httpformat.c: writing HTTP/1.1 messages (docs/API.md, HTTP/1.1).
 * A head and a small body leave in one write, straight from a buffer on
 * the C stack (one syscall per response where it
 * can). Header names and values are checked when they are set, so no
 * CR, LF or NUL reaches the wire (H9 in docs/RELIABILITY.md: response
 * splitting). SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/http.h"

/* Bodies up to this size are copied behind the head: one write. */
#define COALESCE_MAX 65536

/* {====== Header checks ====== */

/* RFC 9110 5.6.2: tchar, as a table (a header check runs per header set,
 * on every response). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1};

static int
is_tchar(unsigned char c) {
    return tchar[c];
}

/* Raises "invalid character 0xNN in header name" (or in the value of the
 * header `name`). */
static int
bad_char(lua_State *L, const char *what, unsigned char c, const char *name) {
    char hex[8];
    snprintf(hex, sizeof hex, "0x%02x", c);
    if (name)
        return luaL_error(L,
                          "%s: invalid character %s in the value of "
                          "header '%s'",
                          what, hex, name);
    return luaL_error(L, "%s: invalid character %s in header name", what, hex);
}

void
lasio_http_check_header_(lua_State *L, int nidx, int vidx, const char *what) {
    size_t nlen, vlen;
    if (lua_type(L, nidx) != LUA_TSTRING)
        luaL_error(L, "%s: header name must be a string, not a %s", what,
                   luaL_typename(L, nidx));
    int vt = lua_type(L, vidx);
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
        luaL_error(L,
                   "%s: value of header '%s' must be a string or a number, "
                   "not a %s",
                   what, lua_tostring(L, nidx), luaL_typename(L, vidx));
    const char *name = lua_tolstring(L, nidx, &nlen);
    const char *value = lua_tolstring(L, vidx, &vlen);
    if (nlen == 0)
        luaL_error(L, "%s: empty header name", what);
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (is_tchar(c))
            continue;
        if (c == '\r' || c == '\n' || c == '\0')
            luaL_error(L, "%s: header name contains CR, LF or NUL", what);
        bad_char(L, what, c, NULL);
    }
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        if (c == '\r' || c == '\n' || c == '\0')
            luaL_error(L, "%s: value of header '%s' contains CR, LF or NUL",
                       what, name);
        if (c != '\t')
            bad_char(L, what, c, name);
    }
}

/* core.internal.http_check_header(name, value, what) -> name, value (as
 * string): raises naming `what` when the name is not a token or either
 * holds a CR, LF, NUL or another control character (HTAB allowed in
 * values). */
static int
check_header(lua_State *L) {
    lasio_http_check_header_(L, 1, 2, luaL_optstring(L, 3, "set_header"));
    lua_settop(L, 2);
    return 2;
}

/* ====== } */

/* {====== Heads ====== */

/* RFC 9110 section 15 (and 6585, 8297). */
static const char *
reason_phrase(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 102:
        return "Processing";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 207:
        return "Multi-Status";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a teapot";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 511:
        return "Network Authentication Required";
    default:
        return "Unknown";
    }
}

/* Adds the decimal digits of n >= 0 (snprintf costs ~800 instructions
 * per call, a good part of a small response). */
static void
add_uint(luaL_Buffer *b, unsigned long long n) {
    char digits[24];
    int i = (int)sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    luaL_addlstring(b, digits + i, sizeof digits - (size_t)i);
}

/* The Date header line, formatted once per second; *len its length. */
static const char *
date_line(size_t *len) {
    static __thread time_t last;
    static __thread char date[64];
    static __thread size_t datelen;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        datelen = strftime(date, sizeof date,
                           "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        last = now;
    }
    *len = datelen;
    return date;
}

/* {====== Responses ======
 * A head (and a body) that fits in HEAD_STACK bytes is formatted with
 * plain copies into a buffer on the C stack: no luaL_Buffer, no Lua stack
 * traffic per header; a larger head gets a buffer of its exact size. */

#define HEAD_STACK 4096

/* Copies n bytes to p; returns the end. */
static char *
put(char *p, const char *src, size_t n) {
    memcpy(p, src, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof lit - 1)

static char *
put_uint(char *p, unsigned long long n) {
    char digits[24];
    int i = (int)sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    return put(p, digits + i, sizeof digits - (size_t)i);
}

void
lasio_http_send_response_(lua_State *L, struct lasio_stream *s, int status,
                          const struct lasio_http_field *h, size_t nh,
                          lua_Integer length, int flags, const char *body,
                          size_t blen) {
    const char *reason = reason_phrase(status);
    size_t rlen = strlen(reason), dlen;
    const char *date = date_line(&dlen);
    /* an upper bound of the head's size */
    size_t need = sizeof "HTTP/1.1 999 \r\n" + rlen + dlen +
                  sizeof "Content-Length: 18446744073709551615\r\n" +
                  sizeof "Transfer-Encoding: chunked\r\n" +
                  sizeof "Connection: keep-alive\r\n" + 2;
    for (size_t i = 0; i < nh; i++)
        need += h[i].namelen + h[i].valuelen + 4;
    char stack[HEAD_STACK];
    int coalesce = body && need + blen <= sizeof stack;
    luaL_Buffer b;
    char *start = need + (coalesce ? blen : 0) <= sizeof stack
                      ? stack
                      : luaL_buffinitsize(L, &b, need);
    char *p = PUT_LIT(start, "HTTP/1.1 ");
    p = put_uint(p, (unsigned)status);
    *p++ = ' ';
    p = put(p, reason, rlen);
    p = PUT_LIT(p, "\r\n");
    p = put(p, date, dlen);
    for (size_t i = 0; i < nh; i++) {
        p = put(p, h[i].name, h[i].namelen);
        p = PUT_LIT(p, ": ");
        p = put(p, h[i].value, h[i].valuelen);
        p = PUT_LIT(p, "\r\n");
    }
    if (length >= 0) {
        p = PUT_LIT(p, "Content-Length: ");
        p = put_uint(p, (unsigned long long)length);
        p = PUT_LIT(p, "\r\n");
    }
    if (flags & LASIO_HTTP_CHUNKED)
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    if (flags & LASIO_HTTP_CLOSE)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (flags & LASIO_HTTP_KEEPALIVE)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    if (coalesce) {
        p = put(p, body, blen);
        body = NULL;
    }
    if (body && blen > 0)
        lasio_stream_send2_(L, s, start, (size_t)(p - start), body, blen,
                            "write");
    else
        lasio_stream_send_(L, s, start, (size_t)(p - start), "write");
}

/* The response of http_send: its headers as fields (the strings stay in
 * the table at 3). */
static void
send_status(lua_State *L, struct lasio_stream *s, int status, const char *body,
            size_t blen) {
    struct lasio_http_field stackf[16], *f = stackf;
    size_t nh = lua_rawlen(L, 3) / 2;
    if (nh > sizeof stackf / sizeof *stackf)
        f = lua_newuserdatauv(L, nh * sizeof *f, 0);
    for (size_t i = 0; i < nh; i++) {
        lua_rawgeti(L, 3, (lua_Integer)(2 * i + 1));
        lua_rawgeti(L, 3, (lua_Integer)(2 * i + 2));
        f[i].name = lua_tolstring(L, -2, &f[i].namelen);
        f[i].value = lua_tolstring(L, -1, &f[i].valuelen);
        if (!f[i].name || !f[i].value)
            luaL_error(L, "http_send: header %d is not a string",
                       (int)(2 * i + 1));
        lua_pop(L, 2); /* the strings stay in the table */
    }
    lua_Integer length = -1;
    if (!lua_isnoneornil(L, 4)) {
        length = luaL_checkinteger(L, 4);
        luaL_argcheck(L, length >= 0, 4, "negative Content-Length");
    }
    int flags = (lua_toboolean(L, 5) ? LASIO_HTTP_CHUNKED : 0) |
                (lua_toboolean(L, 6) ? LASIO_HTTP_CLOSE : 0);
    lasio_http_send_response_(L, s, status, f, nh, length, flags, body, blen);
}

/* ====== } */

/* core.internal.http_send(writer, line, headers, content_length, chunked,
 * close, body): writes a message head and, when given, its body.
 *   line: a status code (a response: status line and Date) or a request
 *     line without its CRLF;
 *   headers: a list {name, value, ...} already checked by
 *     http_check_header;
 *   content_length: a number for a Content-Length header, or nil;
 *   chunked: adds Transfer-Encoding: chunked; close: Connection: close;
 *   body: a string sent after the head (nil: none). */
static int
http_send(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t blen = 0;
    const char *body =
        lua_isnoneornil(L, 7) ? NULL : luaL_checklstring(L, 7, &blen);
    lua_settop(L, 7);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int status = (int)lua_tointeger(L, 2);
        if (status < 100 || status > 999)
            return luaL_error(L, "invalid status code %d", status);
        send_status(L, s, status, body, blen);
        return 0;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    {
        size_t n;
        const char *line = luaL_checklstring(L, 2, &n);
        luaL_addlstring(&b, line, n);
        luaL_addlstring(&b, "\r\n", 2);
    }
    lua_Integer nh = (lua_Integer)lua_rawlen(L, 3);
    for (lua_Integer i = 1; i + 1 <= nh; i += 2) {
        size_t n, m;
        lua_rawgeti(L, 3, i);
        lua_rawgeti(L, 3, i + 1);
        const char *name = lua_tolstring(L, -2, &n);
        const char *value = lua_tolstring(L, -1, &m);
        if (!name || !value)
            return luaL_error(L, "http_send: header %I is not a string", i);
        /* the buffer may sit on the stack: add, then pop */
        lua_insert(L, -3);
        lua_insert(L, -3);
        luaL_addlstring(&b, name, n);
        luaL_addlstring(&b, ": ", 2);
        luaL_addlstring(&b, value, m);
        luaL_addlstring(&b, "\r\n", 2);
        lua_remove(L, -2);
        lua_remove(L, -2);
    }
    if (!lua_isnoneornil(L, 4)) {
        lua_Integer length = luaL_checkinteger(L, 4);
        luaL_argcheck(L, length >= 0, 4, "negative Content-Length");
        luaL_addstring(&b, "Content-Length: ");
        add_uint(&b, (unsigned long long)length);
        luaL_addstring(&b, "\r\n");
    }
    if (lua_toboolean(L, 5))
        luaL_addstring(&b, "Transfer-Encoding: chunked\r\n");
    if (lua_toboolean(L, 6))
        luaL_addstring(&b, "Connection: close\r\n");
    luaL_addlstring(&b, "\r\n", 2);
    if (body && blen <= COALESCE_MAX) {
        luaL_addlstring(&b, body, blen);
        body = NULL;
    }
    lasio_stream_send_(L, s, luaL_buffaddr(&b), luaL_bufflen(&b), "write");
    if (body)
        lasio_stream_send_(L, s, body, blen, "write");
    return 0;
}

/* core.internal.http_send_chunk(writer, data): one chunk of a chunked
 * body; "" sends the last chunk (and an empty trailer section). */
static int
http_send_chunk(lua_State *L) {
    struct lasio_stream *s = lasio_checkwriter_(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    if (n == 0) {
        lasio_stream_send_(L, s, "0\r\n\r\n", 5, "write");
        return 0;
    }
    char size[32];
    int k = snprintf(size, sizeof size, "%zx\r\n", n);
    if (n <= COALESCE_MAX) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, size, (size_t)k);
        luaL_addlstring(&b, data, n);
        luaL_addlstring(&b, "\r\n", 2);
        lasio_stream_send_(L, s, luaL_buffaddr(&b), luaL_bufflen(&b), "write");
        return 0;
    }
    lasio_stream_send_(L, s, size, (size_t)k, "write");
    lasio_stream_send_(L, s, data, n, "write");
    lasio_stream_send_(L, s, "\r\n", 2, "write");
    return 0;
}

/* ====== } */

void
lasio_httpformat_open_(lua_State *L) {
    static const luaL_Reg funcs[] = {{"http_check_header", check_header},
                                     {"http_send", http_send},
                                     {"http_send_chunk", http_send_chunk},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
