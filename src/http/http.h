/*
 * http.h: the HTTP layer in C: the llhttp binding (httpparse.c), message
 * heads and chunks (httpformat.c), WebSocket framing (websocket.c) and the
 * one OpenSSL call it needs (wsdigest.c, kept apart so that OpenSSL can be
 * reached another way without touching the framing code). On net.h.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_http_h
#define lasio_http_h

#include <stddef.h>

#include "net/net.h"

/* Longest output of lasio_ws_base64_ for LASIO_WS_B64_MAX input bytes. */
#define LASIO_WS_B64_MAX 64
#define LASIO_WS_B64_OUT (4 * ((LASIO_WS_B64_MAX + 2) / 3) + 1)

/* Writes the base64 text (NUL-terminated) of `data`, or of its SHA-1 when
 * `sha1` is set, to out (LASIO_WS_B64_OUT bytes). Without `sha1`, len is
 * at most LASIO_WS_B64_MAX. Returns 0, or -1 when OpenSSL fails. */
LASIO_HIDDEN int lasio_ws_base64_(const void *data, size_t len, int sha1,
                                  char *out);

/* Adds the table of WebSocket helpers as field "websocket" of the table on
 * the top of the stack (core.internal: module.c). */
LASIO_HIDDEN void lasio_websocket_open_(lua_State *L);

/* A header of a parsed head: name and value as offsets into its text. */
struct lasio_http_hdr {
    size_t name, namelen, value, valuelen;
};

/* A header of a response to format: its checked strings. */
struct lasio_http_field {
    const char *name, *value;
    size_t namelen, valuelen;
};

/* Flags of lasio_http_send_response_. */
enum {
    LASIO_HTTP_CHUNKED = 1,  /* Transfer-Encoding: chunked */
    LASIO_HTTP_CLOSE = 2,    /* Connection: close */
    LASIO_HTTP_KEEPALIVE = 4 /* Connection: keep-alive (HTTP/1.0) */
};

/* Sends a response: the status line, Date, the nh fields, Content-Length
 * when length >= 0, what flags say, the blank line, then body (NULL:
 * none). Head and a body of up to 4 KiB are copied into one buffer on the
 * C stack; a larger body leaves with the head in one write of two parts,
 * not copied (httpformat.c). Raises as lasio_stream_send_. */
LASIO_HIDDEN void lasio_http_send_response_(lua_State *L,
                                            struct lasio_stream *s, int status,
                                            const struct lasio_http_field *h,
                                            size_t nh, lua_Integer length,
                                            int flags, const char *body,
                                            size_t blen);

/* Checks the header name and value at the stack indexes (a number value
 * becomes a string in place) as http_check_header does, naming `what`. */
LASIO_HIDDEN void lasio_http_check_header_(lua_State *L, int name, int value,
                                           const char *what);

/* Pushes the headers table of a parsed head (httpparse.c): lower-case
 * names, repeats joined; its metatable finds any spelling. */
LASIO_HIDDEN void lasio_http_push_headers_(lua_State *L, const char *text,
                                           const struct lasio_http_hdr *hdrs,
                                           size_t nh);

/* A request head the parser completed, for lasio_httpreq_push_. */
struct lasio_http_head {
    const char *text; /* the target, then header names and values */
    size_t textlen, linelen;
    const struct lasio_http_hdr *hdrs;
    size_t nhdrs;
    int method, major, minor, keep_alive, upgrade, chunked;
    lua_Integer content_length; /* -1: none */
    double start;               /* the loop's time when it was complete */
};

/* Replaces the metatable on the top (lasio_httpreq_pushmt_'s) with a
 * server request object (httpreq.c) holding its own copy of the head.
 * [-1, +1, m] */
LASIO_HIDDEN void lasio_httpreq_push_(lua_State *L,
                                      const struct lasio_http_head *h);
/* Pushes the request objects' metatable. [-0, +1, -] */
LASIO_HIDDEN void lasio_httpreq_pushmt_(lua_State *L);
struct lasio_httpreq;
/* Facts of a request object for its response (httpreq.c). */
LASIO_HIDDEN int lasio_httpreq_is_head_(const struct lasio_httpreq *r);
LASIO_HIDDEN int lasio_httpreq_is_http10_(const struct lasio_httpreq *r);
/* Does the request ask to keep the connection, and came before until? */
LASIO_HIDDEN int lasio_httpreq_keeps_(const struct lasio_httpreq *r,
                                      double until);
/* The answer refusing the request before its handler runs (417 for an
 * expectation other than 100-continue, 413 for a declared body over
 * max_body) with its message, or 0; notes a 100-continue to answer. */
LASIO_HIDDEN int lasio_httpreq_refusal_(struct lasio_httpreq *r,
                                        lua_Integer max_body, const char **msg);
/* The fields a handler sets on a request or response (object at 1, key
 * at 2): a table in the object's user value uv, made on first assignment
 * (docs/API.md). own_field pushes the value and returns 1 when there is
 * one, else leaves the key on top and returns 0; set_own_field is an
 * __newindex (value at 3). */
LASIO_HIDDEN int lasio_http_own_field_(lua_State *L, int uv);
LASIO_HIDDEN int lasio_http_set_own_field_(lua_State *L, int uv);
/* Pushes an HTTP version as a string: "1.1", "1.0", else "major.minor"
 * (httpparse.c). [-0, +1, m] */
LASIO_HIDDEN void lasio_http_push_version_(lua_State *L, int major, int minor);
/* The metatable of requests or responses (httpreq.c, httpres.c). */
struct lasio_http_class {
    const char *tname;       /* the metatable's name */
    const void *token;       /* its type token, and its registry key */
    const void *methods_key; /* the registry key of the methods table */
    const luaL_Reg *methods; /* the C methods, or NULL */
    const char *field;       /* the methods table's core.internal field */
    lua_CFunction index;     /* called with the methods as upvalue 1 */
    lua_CFunction newindex, tostring;
};
/* Makes the class's metatable (registered under its token) and sets the
 * methods table as `field` of the table on top. The methods table is
 * made on the first call only, the same for the life of the state, so
 * that the module opened again (a host or a spec unloads and reloads
 * lasio) keeps the methods the loaded lua/lasio/http_server.lua added.
 * [-0, +0, m] */
LASIO_HIDDEN void lasio_http_open_class_(lua_State *L,
                                         const struct lasio_http_class *c);
/* Sets the request's connection table and response (user values). */
LASIO_HIDDEN void lasio_httpreq_attach_(lua_State *L, int req, int conn,
                                        int res);

/* The state of a server connection that its request loop (httpconn.c),
 * its responses and lua/lasio/http_server.lua all read and set: bytes in
 * C, so that the loop pays no table access per request. Lua sees a
 * userdata with these names as boolean fields (conn.state), made by
 * core.internal.http_conn_state() and never replaced. */
struct lasio_httpconn_state {
    unsigned char busy;     /* a request came in, its answer is not sent */
    unsigned char handling; /* the handler runs */
    unsigned char upgraded; /* the connection left HTTP (a WebSocket) */
    unsigned char gone;     /* the client went away while a handler ran */
    unsigned char abort;    /* the connection is to be cut, not closed */
    unsigned char closing;  /* the server closes: no request after this */
};

/* The response object (httpres.c): is it finished; did it finish with
 * the connection kept open? */
struct lasio_httpres;
LASIO_HIDDEN int lasio_httpres_finished_(const struct lasio_httpres *r);
LASIO_HIDDEN int lasio_httpres_keep_(const struct lasio_httpres *r);
/* Pushes the responses' metatable. [-0, +1, -] */
LASIO_HIDDEN void lasio_httpres_pushmt_(lua_State *L);
/* Pushes the response of the request at req on the connection table at
 * conn (whose state is st: the table keeps it alive), written to the
 * writer at writer (whose stream is s), its metatable at mt; keep: the
 * connection may stay open after it. [-0, +1, m] */
LASIO_HIDDEN void lasio_httpres_push_(lua_State *L, int mt, int req, int conn,
                                      const struct lasio_httpconn_state *st,
                                      int writer, struct lasio_stream *s,
                                      int keep);
/* res:finish([body]), a lua_CFunction. */
LASIO_HIDDEN int lasio_httpres_finish_(lua_State *L);

/* http_request_methods (httpreq.c), http_response_methods (httpres.c),
 * http_serve and http_conn_state (httpconn.c): fields of the table
 * on the top of the stack (core.internal: module.c). */
LASIO_HIDDEN void lasio_httpreq_open_(lua_State *L);
LASIO_HIDDEN void lasio_httpres_open_(lua_State *L);
LASIO_HIDDEN void lasio_httpconn_open_(lua_State *L);

/* The server's side of parser:read_head (httpparse.c), for a loop in C
 * whose parser is at stack index 1: head_begin starts reading the next
 * head, head_again goes on after a wait (lasio_reader_wait_ and
 * lasio_reader_woken_); both return 1 with two results pushed (the
 * request and its flags, or nil and "eof" or "idle"), or 0 to wait. */
struct httpparser;
LASIO_HIDDEN struct httpparser *lasio_http_checkparser_(lua_State *L, int idx);
LASIO_HIDDEN int lasio_http_head_begin_(lua_State *L, struct httpparser *p,
                                        struct lasio_stream *s, double idle,
                                        double head_timeout);
LASIO_HIDDEN int lasio_http_head_again_(lua_State *L, struct httpparser *p,
                                        struct lasio_stream *s);
/* Flags of a request head: a body, an Expect header, an upgrade. */
enum {
    LASIO_HTTP_HEAD_BODY = 1,
    LASIO_HTTP_HEAD_EXPECT = 2,
    LASIO_HTTP_HEAD_UPGRADE = 4
};

/* http_parser, http_trace, http_headers_mt (httpparse.c); http_send,
 * http_send_chunk, http_check_header (httpformat.c): fields of the table
 * on the top of the stack (core.internal: module.c). */
LASIO_HIDDEN void lasio_http_open_(lua_State *L);
LASIO_HIDDEN void lasio_httpformat_open_(lua_State *L);

#endif
