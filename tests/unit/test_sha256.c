/*
 * test_sha256.c - SHA-256 against the FIPS 180-4 example vectors (and the
 * NIST one-million-'a' message), HMAC-SHA-256 against RFC 4231 test cases
 * 1-4, 6 and 7 (5 truncates its output); each with the CPU's SHA
 * instructions, where there are any, and with the portable code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static void hex_of(const unsigned char d[TGT_SHA256_LEN], char out[TGT_SHA256_HEX + 1])
{
    tgt_sha256_hex(d, out);
    out[TGT_SHA256_HEX] = '\0';
}

static void check_sha(const void *data, size_t n, const char *want)
{
    unsigned char d[TGT_SHA256_LEN];
    char hex[TGT_SHA256_HEX + 1];
    tgt_sha256(data, n, d);
    hex_of(d, hex);
    assert_string_equal(hex, want);
}

/* The bytes of a hex string (test keys and data of RFC 4231). */
static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        char b[3] = {h[2 * i], h[2 * i + 1], 0};
        out[i] = (unsigned char)strtoul(b, NULL, 16);
    }
    return n;
}

static void check_hmac(const char *key_hex, const char *data_hex, const char *want)
{
    unsigned char key[256], data[256], d[TGT_SHA256_LEN];
    char hex[TGT_SHA256_HEX + 1];
    size_t kn = unhex(key_hex, key), dn = unhex(data_hex, data);
    tgt_hmac_sha256(key, kn, data, dn, d);
    hex_of(d, hex);
    assert_string_equal(hex, want);
    tgt_hmac_sha256_key k;
    tgt_hmac_sha256_key_init(&k, key, kn);
    tgt_hmac_sha256_with(&k, data, dn, d);
    tgt_hmac_sha256_with(&k, data, dn, d); /* a prepared key is reused unchanged */
    hex_of(d, hex);
    assert_string_equal(hex, want);
}

static void sha_vectors(void)
{
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* 55 and 56 bytes: the length still fits the last block, or not */
    char buf[1001];
    memset(buf, 'a', sizeof(buf));
    check_sha(buf, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_sha(buf, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    tgt_sha256_ctx c;
    tgt_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        tgt_sha256_update(&c, buf, i % 2 ? 999 : 1001); /* chunks across block edges */
    unsigned char d[TGT_SHA256_LEN];
    char hex[TGT_SHA256_HEX + 1];
    tgt_sha256_final(&c, d);
    hex_of(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void hmac_vectors(void)
{
    check_hmac("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char key[300], data[300];
    memset(key, 'a', 40);
    key[40] = 0; /* 20 bytes of 0xaa */
    for (int i = 0; i < 40; i++)
        key[i] = "aa"[i % 2];
    for (int i = 0; i < 100; i++)
        data[i] = "dd"[i % 2];
    data[100] = 0;
    check_hmac(key, data, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (int i = 0; i < 100; i++) /* 50 bytes of 0xcd */
        data[i] = "cd"[i % 2];
    check_hmac("0102030405060708090a0b0c0d0e0f10111213141516171819", data,
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    /* cases 6 and 7: a 131-byte key, longer than a block, is hashed first */
    for (int i = 0; i < 262; i++)
        key[i] = "aa"[i % 2];
    key[262] = 0;
    check_hmac(key,
               "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d"
               "2048617368204b6579204669727374",
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    check_hmac(key,
               "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f63"
               "6b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a65"
               "20646174612e20546865206b6579206e6565647320746f20626520686173686564206265666f72"
               "65206265696e6720757365642062792074686520484d414320616c676f726974686d2e",
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void test_vectors_cpu(void **state)
{
    (void)state;
    tgt_sha256_use_cpu(1); /* the portable code when the CPU has no SHA instructions */
    sha_vectors();
    hmac_vectors();
}

static void test_vectors_portable(void **state)
{
    (void)state;
    assert_int_equal(tgt_sha256_use_cpu(0), 0);
    sha_vectors();
    hmac_vectors();
    tgt_sha256_use_cpu(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_cpu),
        cmocka_unit_test(test_vectors_portable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
