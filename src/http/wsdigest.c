/*
 * wsdigest.c: the WebSocket module's only use of OpenSSL (SHA-1 and
 * base64 for Sec-WebSocket-Accept and Sec-WebSocket-Key, RFC 6455 4.1 and
 * 4.2.2), in one function. OpenSSL is reached through tls_dl.h's table,
 * loaded on the first handshake (a script without TLS or WebSocket never
 * loads it).
 * SPDX-License-Identifier: MIT
 */
#include <openssl/evp.h>

#include "net/tls_dl.h"
#include "http/http.h"

int
lasio_ws_base64_(const void *data, size_t len, int sha1, char *out) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (lasio_tls_load_() != NULL)
        return -1;
    if (sha1) {
        if (!EVP_Digest(data, len, digest, &dlen, EVP_sha1(), NULL))
            return -1;
        data = digest;
        len = dlen;
    } else if (len > LASIO_WS_B64_MAX) {
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return 0;
}
