// OpenSSL through pkg-config (scripts/libpq-static's static build from Debian's openssl source,
// or libssl-dev's static or shared libraries): hashing and HMAC (migrations, AWS SigV4), TLS for
// the HTTPS client, and the version for the start-up log.
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// Macros in OpenSSL's headers, which Swift cannot call: the same calls as functions.
static inline long copenssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline long copenssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
// A peer that closes without close_notify ends the stream (the response parser still notices
// a response cut short by its Content-Length or chunk framing).
static inline void copenssl_ctx_ignore_unexpected_eof(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}
// RSA-PSS as JWS's PS256 uses it (RFC 7518 §3.5): salt as long as the digest, MGF1 with it.
static inline int copenssl_pkey_ctx_set_pss(EVP_PKEY_CTX *ctx) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1) return 0;
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST);
}
