// OpenSSL's libcrypto from Debian's libssl-dev (pkg-config: libcrypto): hashing.
#include <openssl/evp.h>
#include <openssl/sha.h>
