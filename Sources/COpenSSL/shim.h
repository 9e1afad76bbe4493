// OpenSSL's libcrypto through pkg-config (scripts/libpq-static's static copy of libssl-dev's, or
// Debian's shared one): hashing, and the version for the start-up log.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
