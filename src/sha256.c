/*
 * sha256.c - SHA-256 and HMAC-SHA-256 (see sha256.h), written from FIPS
 * 180-4 sections 4.2.2 (constants), 5.1.1 (padding), 6.2.2 (the
 * compression function) and RFC 2104 (HMAC).
 */
#include "sha256.h"

#include <string.h>

static const uint32_t k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 =
            hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void tgt_sha256_init(tgt_sha256_ctx *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof(h0));
    c->bytes = 0;
    c->used = 0;
}

void tgt_sha256_update(tgt_sha256_ctx *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    c->bytes += n;
    if (c->used > 0) {
        size_t take = TGT_SHA256_BLOCK - c->used < n ? TGT_SHA256_BLOCK - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < TGT_SHA256_BLOCK)
            return;
        compress(c->h, c->block);
        c->used = 0;
    }
    for (; n >= TGT_SHA256_BLOCK; p += TGT_SHA256_BLOCK, n -= TGT_SHA256_BLOCK)
        compress(c->h, p);
    memcpy(c->block, p, n);
    c->used = n;
}

void tgt_sha256_final(tgt_sha256_ctx *c, unsigned char out[TGT_SHA256_LEN])
{
    uint64_t bits = c->bytes * 8;
    /* padding: 0x80, zeros, then the length in bits as 8 big-endian bytes */
    c->block[c->used++] = 0x80;
    if (c->used > TGT_SHA256_BLOCK - 8) {
        memset(c->block + c->used, 0, TGT_SHA256_BLOCK - c->used);
        compress(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, TGT_SHA256_BLOCK - 8 - c->used);
    for (int i = 0; i < 8; i++)
        c->block[TGT_SHA256_BLOCK - 1 - i] = (unsigned char)(bits >> (8 * i));
    compress(c->h, c->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

void tgt_sha256(const void *data, size_t n, unsigned char out[TGT_SHA256_LEN])
{
    tgt_sha256_ctx c;
    tgt_sha256_init(&c);
    tgt_sha256_update(&c, data, n);
    tgt_sha256_final(&c, out);
}

void tgt_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[TGT_SHA256_LEN])
{
    unsigned char k0[TGT_SHA256_BLOCK] = {0}, pad[TGT_SHA256_BLOCK], inner[TGT_SHA256_LEN];
    if (key_len > TGT_SHA256_BLOCK)
        tgt_sha256(key, key_len, k0);
    else if (key_len > 0)
        memcpy(k0, key, key_len);
    tgt_sha256_ctx c;
    for (int i = 0; i < TGT_SHA256_BLOCK; i++)
        pad[i] = k0[i] ^ 0x36;
    tgt_sha256_init(&c);
    tgt_sha256_update(&c, pad, sizeof(pad));
    tgt_sha256_update(&c, data, n);
    tgt_sha256_final(&c, inner);
    for (int i = 0; i < TGT_SHA256_BLOCK; i++)
        pad[i] = k0[i] ^ 0x5c;
    tgt_sha256_init(&c);
    tgt_sha256_update(&c, pad, sizeof(pad));
    tgt_sha256_update(&c, inner, sizeof(inner));
    tgt_sha256_final(&c, out);
}

void tgt_sha256_hex(const unsigned char digest[TGT_SHA256_LEN], char hex[TGT_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < TGT_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
}
