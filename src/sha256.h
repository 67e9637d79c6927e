/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the
 * pseudonymising transformations (transform.h).
 *
 * A small implementation of our own: the core links no crypto library
 * (libcrypto reaches the binary only through libpq, and the unit tests link
 * no libpq), and these two functions are all the target needs.  Checked
 * against the FIPS 180-4 example vectors and the RFC 4231 HMAC vectors
 * (tests/unit/test_sha256.c).  Pure functions, no allocation; a context is
 * embedded by value.  Not constant-time where that would matter for keys
 * used interactively: here the key and the data are both the target's own.
 */
#ifndef TGT_SHA256_H
#define TGT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TGT_SHA256_LEN 32 /* digest bytes */
#define TGT_SHA256_HEX 64 /* digest as lower-case hex, without a NUL */
#define TGT_SHA256_BLOCK 64

typedef struct tgt_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes; /* message length so far */
    unsigned char block[TGT_SHA256_BLOCK];
    size_t used; /* bytes of block filled */
} tgt_sha256_ctx;

void tgt_sha256_init(tgt_sha256_ctx *c);
void tgt_sha256_update(tgt_sha256_ctx *c, const void *data, size_t n);
void tgt_sha256_final(tgt_sha256_ctx *c, unsigned char out[TGT_SHA256_LEN]);

/* The digest of data[0..n) in one call. */
void tgt_sha256(const void *data, size_t n, unsigned char out[TGT_SHA256_LEN]);

/* HMAC-SHA-256 of data[0..n) under key[0..key_len) (any length: a key longer
 * than a block is hashed first, as RFC 2104 says). */
void tgt_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[TGT_SHA256_LEN]);

/* A key made ready once: the hash states after its inner and outer padded
 * blocks, which every HMAC under it starts from (two compressions saved per
 * value).  Holds key material: wipe it (tgt_hmac_sha256_key_wipe) when done. */
typedef struct tgt_hmac_sha256_key {
    tgt_sha256_ctx inner;
    tgt_sha256_ctx outer;
} tgt_hmac_sha256_key;

void tgt_hmac_sha256_key_init(tgt_hmac_sha256_key *k, const void *key, size_t key_len);
void tgt_hmac_sha256_key_wipe(tgt_hmac_sha256_key *k);

/* The same as tgt_hmac_sha256 under the prepared key k. */
void tgt_hmac_sha256_with(const tgt_hmac_sha256_key *k, const void *data, size_t n,
                          unsigned char out[TGT_SHA256_LEN]);

/* Whether the SHA instructions of the CPU (x86 SHA-NI) are used; on = 0
 * forces the portable code (for the tests, which check both).  Returns
 * whether they are used now. */
int tgt_sha256_use_cpu(int on);

/* Writes the 64 lower-case hex digits of a digest to hex (no NUL). */
void tgt_sha256_hex(const unsigned char digest[TGT_SHA256_LEN], char hex[TGT_SHA256_HEX]);

#endif
