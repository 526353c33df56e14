/*
 * tls_dl_test.c: the OpenSSL loader (src/net/tls_dl.c): the error when the
 * library is missing or is not OpenSSL, and a working table from the real
 * one. Run by ctest (tls-dl).
 * SPDX-License-Identifier: MIT
 */
#define LASIO_TLS_DL_TABLE_ONLY /* the table's fields by name */
#include "../embed/harness.h"
#include "net/tls_dl.h"

int
main(void) {
    char err[512];
    struct lasio_tls_api api;
    memset(&api, 0, sizeof api);

    /* no such library: the message names it */
    const char *e =
        lasio_tls_dlopen_("liblasio-no-such-ssl.so.0", &api, err, sizeof err);
    CHECK(e == err);
    CHECK_STR(e, "TLS unavailable: cannot load OpenSSL");
    CHECK_STR(e, "liblasio-no-such-ssl.so.0");
    CHECK(api.SSL_new == NULL); /* the table is left alone */

    /* a library that is not OpenSSL: the first missing function */
    e = lasio_tls_dlopen_("libc.so.6", &api, err, sizeof err);
    CHECK_STR(e, "TLS unavailable: libc.so.6 has no function "
                 "ASN1_STRING_get0_data");
    CHECK(api.SSL_new == NULL);

    /* the real one, through the process-wide table, once */
    CHECK(lasio_tls_load_() == NULL);
    CHECK(lasio_tls_load_() == NULL);
    CHECK(lasio_tls_api_.SSL_new != NULL);
    CHECK(lasio_tls_api_.X509_verify_cert_error_string != NULL);
    SSL_CTX *ctx =
        lasio_tls_api_.SSL_CTX_new(lasio_tls_api_.TLS_client_method());
    CHECK(ctx != NULL);
    if (ctx)
        lasio_tls_api_.SSL_CTX_free(ctx);
    CHECK_STR(lasio_tls_api_.X509_verify_cert_error_string(
                  X509_V_ERR_CERT_HAS_EXPIRED),
              "expired");
    return harness_done("tls_dl_test");
}
