/*
 * tls.h: TLS for streams (tls.c), OpenSSL kept out of every other file.
 * A TLS stream owns an SSL object reading and writing the stream's fd
 * through a BIO of its own; the stream's buffers hold plaintext.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_tls_h
#define lasio_tls_h

#include "net.h"

#define LASIO_SSLCTX_MT "lasio.SSLContext"

/* Checks that the value at idx is an SSLContext, or true (replaced by
 * the default client context). [-0, +0, m] */
LASIO_HIDDEN void lasio_tls_checkctx_(lua_State *L, int idx, const char *what);
/* Is the context at idx a server context? */
LASIO_HIDDEN int lasio_tls_is_server_(lua_State *L, int idx);
/* Makes the stream a TLS stream with the context at ctxidx: a client
 * verifying `hostname` (NULL or "" for no name check) or a server. The
 * bytes already in the stream's input buffer are fed to TLS first.
 * Raises on errors; the stream is unchanged then. [-0, +0, m] */
LASIO_HIDDEN void lasio_tls_attach_(lua_State *L, int streamidx, int ctxidx,
                                    const char *hostname, int server);
/* Pushes the handshake function and its arguments for lua_callk: it
 * awaits the handshake of the stream at streamidx until deadline (0:
 * none) and raises its failure. Returns the argument count. */
LASIO_HIDDEN int lasio_tls_push_handshake_(lua_State *L, int streamidx,
                                           double deadline);
/* Is the stream still in its handshake? */
LASIO_HIDDEN int lasio_tls_handshaking_(struct lasio_stream *s);
/* Does TLS need readability / writability to go on? */
LASIO_HIDDEN int lasio_tls_wants_read_(struct lasio_stream *s);
LASIO_HIDDEN int lasio_tls_wants_write_(struct lasio_stream *s);
/* Is an SSL_write waiting for readability, an SSL_read for
 * writability? */
LASIO_HIDDEN int lasio_tls_write_waits_read_(struct lasio_stream *s);
LASIO_HIDDEN int lasio_tls_read_waits_write_(struct lasio_stream *s);
/* Plaintext already decrypted and not read yet. */
LASIO_HIDDEN int lasio_tls_pending_(struct lasio_stream *s);
/* Syscall layer: -1 with errno EAGAIN when TLS waits for the socket. */
LASIO_HIDDEN long lasio_tls_read_(struct lasio_stream *s, char *p, size_t n);
LASIO_HIDDEN long lasio_tls_write_(struct lasio_stream *s, const char *p,
                                   size_t n);
/* The message of the last TLS failure of the stream (for OSErrors). */
LASIO_HIDDEN const char *lasio_tls_error_(struct lasio_stream *s);
/* Sends close_notify (best effort, never waits). */
LASIO_HIDDEN void lasio_tls_shutdown_(struct lasio_stream *s);
/* Frees the TLS state. Runs no Lua code. */
LASIO_HIDDEN void lasio_tls_free_(struct lasio_stream *s);
/* get_extra_info for TLS names ("ssl_object", "cipher", "peercert",
 * "sslcontext", "alpn_protocol"); returns 1 with the value pushed, or 0.
 * The stream userdata is at streamidx. */
LASIO_HIDDEN int lasio_tls_extra_info_(lua_State *L, int streamidx,
                                       const char *name);
LASIO_HIDDEN int luaopen_lasio_tls_(lua_State *L);

#endif
