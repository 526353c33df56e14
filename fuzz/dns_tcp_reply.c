/*
 * dns_tcp_reply.c: fuzz target of the TCP DNS reply parser (the TCP retry
 * of a truncated lookup, src/net/dnstcp.c). A lookup of example.com is
 * made as getaddrinfo makes it; the input is the byte stream a nameserver
 * sends back (2-byte lengths and messages), fed in pieces through
 * lasio_dnstcp_input_, as receive() feeds what read() returns.
 * Input: byte 0 the questions (bit 0: A, bit 1: AAAA; neither: both),
 * byte 1 the size of the pieces - 1, then the stream. A message whose ID
 * is 0 or 1 gets the ID of question 1 or 2, so that replies can match.
 * Invariants: the answer holds at most LASIO_DNS_MAXADDR addresses per
 * family; an outcome of 1 means every question is answered.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lasio.h"
#include "net/net.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    if (!L || lasio_open(L, NULL) != LASIO_OK)
        abort();
    return 0;
}

/* Gives the messages of the stream whose ID is 0 or 1 the IDs of the
 * lookup's questions. */
static void
patch_ids(const struct lasio_dnstcp *d, unsigned char *p, size_t len) {
    size_t off = 0;
    while (len - off >= 4) {
        size_t n = ((size_t)p[off] << 8) | p[off + 1];
        unsigned char *id = p + off + 2;
        if (n >= 2 && id[0] == 0 && id[1] < 2) {
            unsigned short q = d->q[id[1] % d->nq].id;
            id[0] = (unsigned char)(q >> 8);
            id[1] = (unsigned char)q;
        }
        if (len - off - 2 < n)
            break;
        off += 2 + n;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    int want4 = data[0] & 1, want6 = (data[0] >> 1) & 1;
    if (!want4 && !want6)
        want4 = want6 = 1;
    size_t piece = (size_t)data[1] + 1;
    size_t len = size - 2;
    unsigned char *stream = malloc(len ? len : 1);
    CHECK(stream != NULL);
    memcpy(stream, data + 2, len);

    struct lasio_loop *loop = lasio_current_loop_(L);
    struct lasio_dnstcp *d =
        lasio_dnstcp_new_(L, loop, "example.com", want4, want6, 1.0);
    patch_ids(d, stream, len);
    int r = 0;
    for (size_t off = 0; off < len && r == 0;) {
        size_t n = len - off < piece ? len - off : piece;
        if (n > LASIO_DNSTCP_REPLY_MAX - d->inlen)
            n = LASIO_DNSTCP_REPLY_MAX - d->inlen;
        CHECK(n > 0); /* a full buffer holds a whole message, taken */
        memcpy(d->in + d->inlen, stream + off, n);
        off += n;
        r = lasio_dnstcp_input_(d, n);
        CHECK(d->inlen <= LASIO_DNSTCP_REPLY_MAX);
    }
    CHECK(d->answer.n4 >= 0 && d->answer.n4 <= LASIO_DNS_MAXADDR);
    CHECK(d->answer.n6 >= 0 && d->answer.n6 <= LASIO_DNS_MAXADDR);
    CHECK(want4 || d->answer.n4 == 0);
    CHECK(want6 || d->answer.n6 == 0);
    if (r == 1)
        for (int i = 0; i < d->nq; i++)
            CHECK(d->q[i].done);
    lasio_dnstcp_release_(d);
    lua_pop(L, 1);
    free(stream);
    return 0;
}
