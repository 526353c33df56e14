/*
 * tls_dl.h: OpenSSL loaded on first use (tls_dl.c). Linking libssl and
 * libcrypto into the command and the module cost every run more than the
 * rest of startup together (the dynamic linker binds ~4000 symbols of them,
 * eagerly: Debian builds them with -z now), so tls.c calls OpenSSL through
 * a table of function pointers filled by dlopen when the first SSLContext
 * is made (or, for wsdigest.c, on the first WebSocket handshake). Include
 * this after the OpenSSL headers, in tls.c and wsdigest.c only: it
 * redirects the names in LASIO_TLS_FUNCS (and the header macros built on
 * them) to the table.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_tls_dl_h
#define lasio_tls_dl_h

#include <stddef.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/core.h"

/* The library loaded; libcrypto comes with it as its dependency. The
 * soname follows the headers built against (ABI of that major version). */
#ifndef LASIO_LIBSSL_SONAME
#if OPENSSL_VERSION_MAJOR >= 3
#define LASIO_TLS_STR_(x) #x
#define LASIO_TLS_STR(x) LASIO_TLS_STR_(x)
#define LASIO_LIBSSL_SONAME "libssl.so." LASIO_TLS_STR(OPENSSL_VERSION_MAJOR)
#else
#define LASIO_LIBSSL_SONAME "libssl.so.1.1"
#endif
#endif

/* Every OpenSSL function tls.c and wsdigest.c call, directly or through a
 * header macro
 * (`nm -u` of tls.o lists them; the command fails to link if one is
 * missing here). */
#define LASIO_TLS_FUNCS(X)                                                     \
    X(ASN1_STRING_get0_data)                                                   \
    X(ASN1_STRING_length)                                                      \
    X(ASN1_TIME_print)                                                         \
    X(BIO_clear_flags)                                                         \
    X(BIO_ctrl)                                                                \
    X(BIO_free)                                                                \
    X(BIO_get_data)                                                            \
    X(BIO_meth_free)                                                           \
    X(BIO_meth_new)                                                            \
    X(BIO_meth_set_create)                                                     \
    X(BIO_meth_set_ctrl)                                                       \
    X(BIO_meth_set_destroy)                                                    \
    X(BIO_meth_set_read)                                                       \
    X(BIO_meth_set_write)                                                      \
    X(BIO_new)                                                                 \
    X(BIO_s_mem)                                                               \
    X(BIO_set_data)                                                            \
    X(BIO_set_flags)                                                           \
    X(BIO_set_init)                                                            \
    X(ERR_clear_error)                                                         \
    X(EVP_Digest)                                                              \
    X(EVP_EncodeBlock)                                                         \
    X(EVP_sha1)                                                                \
    X(ERR_peek_last_error)                                                     \
    X(ERR_reason_error_string)                                                 \
    X(GENERAL_NAMES_free)                                                      \
    X(OPENSSL_sk_num)                                                          \
    X(OPENSSL_sk_value)                                                        \
    X(SSL_CIPHER_get_bits)                                                     \
    X(SSL_CIPHER_get_name)                                                     \
    X(SSL_CTX_check_private_key)                                               \
    X(SSL_CTX_ctrl)                                                            \
    X(SSL_CTX_free)                                                            \
    X(SSL_CTX_load_verify_locations)                                           \
    X(SSL_CTX_new)                                                             \
    X(SSL_CTX_set_alpn_protos)                                                 \
    X(SSL_CTX_set_alpn_select_cb)                                              \
    X(SSL_CTX_set_cipher_list)                                                 \
    X(SSL_CTX_set_default_verify_paths)                                        \
    X(SSL_CTX_set_options)                                                     \
    X(SSL_CTX_set_verify)                                                      \
    X(SSL_CTX_use_PrivateKey_file)                                             \
    X(SSL_CTX_use_certificate_chain_file)                                      \
    X(SSL_ctrl)                                                                \
    X(SSL_do_handshake)                                                        \
    X(SSL_free)                                                                \
    X(SSL_get0_alpn_selected)                                                  \
    X(SSL_get0_param)                                                          \
    X(SSL_get1_peer_certificate)                                               \
    X(SSL_get_current_cipher)                                                  \
    X(SSL_get_error)                                                           \
    X(SSL_get_servername)                                                      \
    X(SSL_get_verify_result)                                                   \
    X(SSL_get_version)                                                         \
    X(SSL_is_server)                                                           \
    X(SSL_new)                                                                 \
    X(SSL_pending)                                                             \
    X(SSL_read)                                                                \
    X(SSL_select_next_proto)                                                   \
    X(SSL_set1_host)                                                           \
    X(SSL_set_accept_state)                                                    \
    X(SSL_set_bio)                                                             \
    X(SSL_set_connect_state)                                                   \
    X(SSL_set_hostflags)                                                       \
    X(SSL_shutdown)                                                            \
    X(SSL_write)                                                               \
    X(TLS_client_method)                                                       \
    X(TLS_server_method)                                                       \
    X(X509_NAME_oneline)                                                       \
    X(X509_VERIFY_PARAM_set1_ip_asc)                                           \
    X(X509_free)                                                               \
    X(X509_get0_notAfter)                                                      \
    X(X509_get0_notBefore)                                                     \
    X(X509_get_ext_d2i)                                                        \
    X(X509_get_issuer_name)                                                    \
    X(X509_get_subject_name)                                                   \
    X(X509_verify_cert_error_string)

#define LASIO_TLS_FIELD_(name) __typeof__(name) *name;
struct lasio_tls_api {
    LASIO_TLS_FUNCS(LASIO_TLS_FIELD_)
};
#undef LASIO_TLS_FIELD_

/* Filled by lasio_tls_load_; read only after it succeeded. */
LASIO_HIDDEN extern struct lasio_tls_api lasio_tls_api_;

/* Loads OpenSSL once per process (thread-safe). Returns NULL when the
 * table is ready, or a message saying why not (the library or a function
 * missing), the same for every later call. */
LASIO_HIDDEN const char *lasio_tls_load_(void);
/* The loader itself, for tests: loads `soname` into a fresh table `api`;
 * returns NULL on success, or writes the reason to err and returns it. The
 * library stays loaded on success. */
LASIO_HIDDEN const char *lasio_tls_dlopen_(const char *soname,
                                           struct lasio_tls_api *api, char *err,
                                           size_t errlen);

#ifndef LASIO_TLS_DL_TABLE_ONLY
/* From here on, calls go through the table (the loader and its test
 * define LASIO_TLS_DL_TABLE_ONLY to name the fields themselves). */
#define ASN1_STRING_get0_data (*lasio_tls_api_.ASN1_STRING_get0_data)
#define ASN1_STRING_length (*lasio_tls_api_.ASN1_STRING_length)
#define ASN1_TIME_print (*lasio_tls_api_.ASN1_TIME_print)
#define BIO_clear_flags (*lasio_tls_api_.BIO_clear_flags)
#define BIO_ctrl (*lasio_tls_api_.BIO_ctrl)
#define BIO_free (*lasio_tls_api_.BIO_free)
#define BIO_get_data (*lasio_tls_api_.BIO_get_data)
#define BIO_meth_free (*lasio_tls_api_.BIO_meth_free)
#define BIO_meth_new (*lasio_tls_api_.BIO_meth_new)
#define BIO_meth_set_create (*lasio_tls_api_.BIO_meth_set_create)
#define BIO_meth_set_ctrl (*lasio_tls_api_.BIO_meth_set_ctrl)
#define BIO_meth_set_destroy (*lasio_tls_api_.BIO_meth_set_destroy)
#define BIO_meth_set_read (*lasio_tls_api_.BIO_meth_set_read)
#define BIO_meth_set_write (*lasio_tls_api_.BIO_meth_set_write)
#define BIO_new (*lasio_tls_api_.BIO_new)
#define BIO_s_mem (*lasio_tls_api_.BIO_s_mem)
#define BIO_set_data (*lasio_tls_api_.BIO_set_data)
#define BIO_set_flags (*lasio_tls_api_.BIO_set_flags)
#define BIO_set_init (*lasio_tls_api_.BIO_set_init)
#define ERR_clear_error (*lasio_tls_api_.ERR_clear_error)
#define EVP_Digest (*lasio_tls_api_.EVP_Digest)
#define EVP_EncodeBlock (*lasio_tls_api_.EVP_EncodeBlock)
#define EVP_sha1 (*lasio_tls_api_.EVP_sha1)
#define ERR_peek_last_error (*lasio_tls_api_.ERR_peek_last_error)
#define ERR_reason_error_string (*lasio_tls_api_.ERR_reason_error_string)
#define GENERAL_NAMES_free (*lasio_tls_api_.GENERAL_NAMES_free)
#define OPENSSL_sk_num (*lasio_tls_api_.OPENSSL_sk_num)
#define OPENSSL_sk_value (*lasio_tls_api_.OPENSSL_sk_value)
#define SSL_CIPHER_get_bits (*lasio_tls_api_.SSL_CIPHER_get_bits)
#define SSL_CIPHER_get_name (*lasio_tls_api_.SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key (*lasio_tls_api_.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (*lasio_tls_api_.SSL_CTX_ctrl)
#define SSL_CTX_free (*lasio_tls_api_.SSL_CTX_free)
#define SSL_CTX_load_verify_locations                                          \
    (*lasio_tls_api_.SSL_CTX_load_verify_locations)
#define SSL_CTX_new (*lasio_tls_api_.SSL_CTX_new)
#define SSL_CTX_set_alpn_protos (*lasio_tls_api_.SSL_CTX_set_alpn_protos)
#define SSL_CTX_set_alpn_select_cb (*lasio_tls_api_.SSL_CTX_set_alpn_select_cb)
#define SSL_CTX_set_cipher_list (*lasio_tls_api_.SSL_CTX_set_cipher_list)
#define SSL_CTX_set_default_verify_paths                                       \
    (*lasio_tls_api_.SSL_CTX_set_default_verify_paths)
#define SSL_CTX_set_options (*lasio_tls_api_.SSL_CTX_set_options)
#define SSL_CTX_set_verify (*lasio_tls_api_.SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey_file                                            \
    (*lasio_tls_api_.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate_chain_file                                     \
    (*lasio_tls_api_.SSL_CTX_use_certificate_chain_file)
#define SSL_ctrl (*lasio_tls_api_.SSL_ctrl)
#define SSL_do_handshake (*lasio_tls_api_.SSL_do_handshake)
#define SSL_free (*lasio_tls_api_.SSL_free)
#define SSL_get0_alpn_selected (*lasio_tls_api_.SSL_get0_alpn_selected)
#define SSL_get0_param (*lasio_tls_api_.SSL_get0_param)
#define SSL_get1_peer_certificate (*lasio_tls_api_.SSL_get1_peer_certificate)
#define SSL_get_current_cipher (*lasio_tls_api_.SSL_get_current_cipher)
#define SSL_get_error (*lasio_tls_api_.SSL_get_error)
#define SSL_get_servername (*lasio_tls_api_.SSL_get_servername)
#define SSL_get_verify_result (*lasio_tls_api_.SSL_get_verify_result)
#define SSL_get_version (*lasio_tls_api_.SSL_get_version)
#define SSL_is_server (*lasio_tls_api_.SSL_is_server)
#define SSL_new (*lasio_tls_api_.SSL_new)
#define SSL_pending (*lasio_tls_api_.SSL_pending)
#define SSL_read (*lasio_tls_api_.SSL_read)
#define SSL_select_next_proto (*lasio_tls_api_.SSL_select_next_proto)
#define SSL_set1_host (*lasio_tls_api_.SSL_set1_host)
#define SSL_set_accept_state (*lasio_tls_api_.SSL_set_accept_state)
#define SSL_set_bio (*lasio_tls_api_.SSL_set_bio)
#define SSL_set_connect_state (*lasio_tls_api_.SSL_set_connect_state)
#define SSL_set_hostflags (*lasio_tls_api_.SSL_set_hostflags)
#define SSL_shutdown (*lasio_tls_api_.SSL_shutdown)
#define SSL_write (*lasio_tls_api_.SSL_write)
#define TLS_client_method (*lasio_tls_api_.TLS_client_method)
#define TLS_server_method (*lasio_tls_api_.TLS_server_method)
#define X509_NAME_oneline (*lasio_tls_api_.X509_NAME_oneline)
#define X509_VERIFY_PARAM_set1_ip_asc                                          \
    (*lasio_tls_api_.X509_VERIFY_PARAM_set1_ip_asc)
#define X509_free (*lasio_tls_api_.X509_free)
#define X509_get0_notAfter (*lasio_tls_api_.X509_get0_notAfter)
#define X509_get0_notBefore (*lasio_tls_api_.X509_get0_notBefore)
#define X509_get_ext_d2i (*lasio_tls_api_.X509_get_ext_d2i)
#define X509_get_issuer_name (*lasio_tls_api_.X509_get_issuer_name)
#define X509_get_subject_name (*lasio_tls_api_.X509_get_subject_name)
#define X509_verify_cert_error_string                                          \
    (*lasio_tls_api_.X509_verify_cert_error_string)
#endif

#endif
