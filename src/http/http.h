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

/* http_parser, http_trace, http_headers_mt (httpparse.c); http_send,
 * http_send_chunk, http_check_header (httpformat.c): fields of the table
 * on the top of the stack (core.internal: module.c). */
LASIO_HIDDEN void lasio_http_open_(lua_State *L);
LASIO_HIDDEN void lasio_httpformat_open_(lua_State *L);

#endif
