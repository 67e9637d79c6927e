/*
 * sha256.c - SHA-256 and HMAC-SHA-256 (see sha256.h), written from FIPS
 * 180-4 sections 4.2.2 (constants), 5.1.1 (padding), 6.2.2 (the
 * compression function) and RFC 2104 (HMAC).
 */
#include "sha256.h"

#include <string.h>

static const uint32_t round_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_SHA_NI 1
#include <immintrin.h>
#endif

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress_portable(uint32_t h[8], const unsigned char *p)
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
        uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                      round_k[t] + w[t];
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

#ifdef HAVE_SHA_NI
/* One block with the SHA-NI instructions, four rounds per step: the
 * well-known arrangement of Intel's "Intel SHA Extensions" paper (2013).
 * The state is kept as ABEF and CDGH, as sha256rnds2 wants it; the message
 * schedule rotates through w[0..3], sha256msg1 and sha256msg2 computing the
 * next four words of W from the last sixteen. */
__attribute__((target("sha,sse4.1"))) static void compress_sha_ni(uint32_t h[8],
                                                                  const unsigned char *p)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[0]), 0xB1);
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[4]), 0x1B);
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);      /* CDGH */
    const __m128i abef = s0, cdgh = s1;
    __m128i w[4];
    for (int g = 0; g < 16; g++) {
        __m128i *cur = &w[g & 3], *prev = &w[(g + 3) & 3], *next = &w[(g + 1) & 3];
        if (g < 4)
            *cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * g)),
                                    mask);
        __m128i msg =
            _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)(const void *)&round_k[4 * g]));
        s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
        if (g >= 3 && g <= 14) {
            *next = _mm_add_epi32(*next, _mm_alignr_epi8(*cur, *prev, 4));
            *next = _mm_sha256msg2_epu32(*next, *cur);
        }
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
        if (g >= 1 && g <= 12)
            *prev = _mm_sha256msg1_epu32(*prev, *cur);
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
    tmp = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);    /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0); /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)(void *)&h[0], s0);
    _mm_storeu_si128((__m128i *)(void *)&h[4], s1);
}
#endif

/* -1: not decided yet; 0: portable; 1: SHA-NI. */
static int use_cpu = -1;

int tgt_sha256_use_cpu(int on)
{
#ifdef HAVE_SHA_NI
    __builtin_cpu_init();
    use_cpu = on && __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
#else
    (void)on;
    use_cpu = 0;
#endif
    return use_cpu;
}

static void compress(uint32_t h[8], const unsigned char *p)
{
    if (use_cpu < 0)
        tgt_sha256_use_cpu(1);
#ifdef HAVE_SHA_NI
    if (use_cpu) {
        compress_sha_ni(h, p);
        return;
    }
#endif
    compress_portable(h, p);
}

/* The last block of a message of total_bytes whose tail tail[0..n) fits
 * one block with its padding (n <= 55): compressed into h. */
static void last_block(uint32_t h[8], const void *tail, size_t n, uint64_t total_bytes)
{
    unsigned char block[TGT_SHA256_BLOCK] = {0};
    memcpy(block, tail, n);
    block[n] = 0x80;
    uint64_t bits = total_bytes * 8;
    for (int i = 0; i < 8; i++)
        block[TGT_SHA256_BLOCK - 1 - i] = (unsigned char)(bits >> (8 * i));
    compress(h, block);
}

static void state_out(const uint32_t h[8], unsigned char out[TGT_SHA256_LEN])
{
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
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
    state_out(c->h, out);
}

/* Short values (names, e-mail addresses) fit one block: hashed without the
 * general update/final bookkeeping, which costs as much as the block. */
#define ONE_BLOCK_MAX (TGT_SHA256_BLOCK - 9)

void tgt_sha256(const void *data, size_t n, unsigned char out[TGT_SHA256_LEN])
{
    if (n <= ONE_BLOCK_MAX) {
        tgt_sha256_ctx c;
        tgt_sha256_init(&c);
        last_block(c.h, data, n, n);
        state_out(c.h, out);
        return;
    }
    tgt_sha256_ctx c;
    tgt_sha256_init(&c);
    tgt_sha256_update(&c, data, n);
    tgt_sha256_final(&c, out);
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *b = p;
    while (n-- > 0)
        *b++ = 0;
}

void tgt_hmac_sha256_key_init(tgt_hmac_sha256_key *k, const void *key, size_t key_len)
{
    unsigned char k0[TGT_SHA256_BLOCK] = {0}, pad[TGT_SHA256_BLOCK];
    if (key_len > TGT_SHA256_BLOCK)
        tgt_sha256(key, key_len, k0);
    else if (key_len > 0)
        memcpy(k0, key, key_len);
    for (int i = 0; i < TGT_SHA256_BLOCK; i++)
        pad[i] = k0[i] ^ 0x36;
    tgt_sha256_init(&k->inner);
    tgt_sha256_update(&k->inner, pad, sizeof(pad));
    for (int i = 0; i < TGT_SHA256_BLOCK; i++)
        pad[i] = k0[i] ^ 0x5c;
    tgt_sha256_init(&k->outer);
    tgt_sha256_update(&k->outer, pad, sizeof(pad));
    wipe(k0, sizeof(k0));
    wipe(pad, sizeof(pad));
}

void tgt_hmac_sha256_key_wipe(tgt_hmac_sha256_key *k)
{
    wipe(k, sizeof(*k));
}

void tgt_hmac_sha256_with(const tgt_hmac_sha256_key *k, const void *data, size_t n,
                          unsigned char out[TGT_SHA256_LEN])
{
    unsigned char inner[TGT_SHA256_LEN];
    tgt_sha256_ctx c = k->inner;
    if (n <= ONE_BLOCK_MAX) {
        last_block(c.h, data, n, TGT_SHA256_BLOCK + n);
    } else {
        tgt_sha256_update(&c, data, n);
        tgt_sha256_final(&c, inner);
        memcpy(c.h, k->outer.h, sizeof(c.h));
        last_block(c.h, inner, sizeof(inner), TGT_SHA256_BLOCK + sizeof(inner));
        state_out(c.h, out);
        return;
    }
    state_out(c.h, inner);
    memcpy(c.h, k->outer.h, sizeof(c.h));
    last_block(c.h, inner, sizeof(inner), TGT_SHA256_BLOCK + sizeof(inner));
    state_out(c.h, out);
}

void tgt_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[TGT_SHA256_LEN])
{
    tgt_hmac_sha256_key k;
    tgt_hmac_sha256_key_init(&k, key, key_len);
    tgt_hmac_sha256_with(&k, data, n, out);
    tgt_hmac_sha256_key_wipe(&k);
}

void tgt_sha256_hex(const unsigned char digest[TGT_SHA256_LEN], char hex[TGT_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < TGT_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
}
