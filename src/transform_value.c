/*
 * transform_value.c - the transformation types applied to one value (see
 * transform_value.h).
 *
 * Where each rule comes from (transform-field af22b03,
 * transform_field/transform.py, _transform_value):
 *   SET-NULL      None.
 *   HASH          hashlib.sha256(value.encode('utf-8')).hexdigest().
 *   HASH-SKIP-FIRST-n  value[:n] + sha256(value.encode('utf-8')[n:]): the
 *                 kept prefix counts characters, the hashed rest starts
 *                 after n bytes (the same for ASCII); n = int(type[-1]).
 *   MASK-DATE     parser.parse(value).replace(month=1, day=1): the year,
 *                 time of day and offset stay.  target-pg reads the ISO
 *                 8601 forms of datetime.h and keeps the text as sent
 *                 (transform-field rewrites it in Python's isoformat()).
 *   MASK-NUMBER   0, for any value (also null and strings).
 *   MASK-HIDDEN   'hidden', for any value (also null).
 *   MASK-STRING-SKIP-ENDS-n  '*' * len when len <= 2n, else value[:n] +
 *                 '*' * (len - 2n) + value[-n:], lengths in characters.
 * transform-field returns the value unchanged when a type raises (HASH of a
 * number or of null, MASK-DATE of an unparsable string): a clear value in
 * the warehouse.  Here a non-string goes through the string types as its
 * JSON text (42 hashes as "42"), null stays null, and a MASK-DATE that finds
 * no date gives null (TGT_TV_FAILED, counted by the caller).  For
 * MASK-STRING-SKIP-ENDS-0 transform-field appends the whole value
 * (value[-0:] is all of it); here nothing is kept.  HMAC and HMAC-EMAIL are
 * target-pg's own.
 */
#include "transform_value.h"

#include <string.h>

#include "datetime.h"
#include "sha256.h"

static const struct {
    const char *name;
    tgt_transform_kind kind;
    int has_n;
} kinds[] = {
    {"SET-NULL", TGT_TR_SET_NULL, 0},
    {"HASH", TGT_TR_HASH, 0},
    {"HASH-SKIP-FIRST-", TGT_TR_HASH_SKIP_FIRST, 1},
    {"MASK-DATE", TGT_TR_MASK_DATE, 0},
    {"MASK-NUMBER", TGT_TR_MASK_NUMBER, 0},
    {"MASK-HIDDEN", TGT_TR_MASK_HIDDEN, 0},
    {"MASK-STRING-SKIP-ENDS-", TGT_TR_MASK_STRING_SKIP_ENDS, 1},
    {"HMAC", TGT_TR_HMAC, 0},
    {"HMAC-EMAIL", TGT_TR_HMAC_EMAIL, 0},
    {"DROP", TGT_TR_DROP, 0},
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

int tgt_transform_kind_parse(const char *name, tgt_transform_kind *kind, int *n)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        size_t len = strlen(kinds[i].name);
        if (!kinds[i].has_n) {
            if (strcmp(name, kinds[i].name) != 0)
                continue;
            *kind = kinds[i].kind;
            *n = 0;
            return 0;
        }
        if (strncmp(name, kinds[i].name, len) != 0 || name[len] < '0' || name[len] > '9' ||
            name[len + 1] != '\0')
            continue;
        *kind = kinds[i].kind;
        *n = name[len] - '0';
        return 0;
    }
    return -1;
}

const char *tgt_transform_kind_name(tgt_transform_kind kind)
{
    switch (kind) {
    case TGT_TR_HASH_SKIP_FIRST:
        return "HASH-SKIP-FIRST-n";
    case TGT_TR_MASK_STRING_SKIP_ENDS:
        return "MASK-STRING-SKIP-ENDS-n";
    case TGT_TR_SET_NULL:
    case TGT_TR_HASH:
    case TGT_TR_MASK_DATE:
    case TGT_TR_MASK_NUMBER:
    case TGT_TR_MASK_HIDDEN:
    case TGT_TR_HMAC:
    case TGT_TR_HMAC_EMAIL:
    case TGT_TR_DROP:
        break;
    }
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "?";
}

int tgt_transform_kind_is_textual(tgt_transform_kind kind)
{
    switch (kind) {
    case TGT_TR_HASH:
    case TGT_TR_HASH_SKIP_FIRST:
    case TGT_TR_MASK_HIDDEN:
    case TGT_TR_MASK_STRING_SKIP_ENDS:
    case TGT_TR_HMAC:
    case TGT_TR_HMAC_EMAIL:
        return 1;
    case TGT_TR_SET_NULL:
    case TGT_TR_MASK_DATE:
    case TGT_TR_MASK_NUMBER:
    case TGT_TR_DROP:
        break;
    }
    return 0;
}

/* Bytes of the first `chars` UTF-8 characters of s[0..len) (all of s when
 * it has fewer). */
static size_t char_prefix(const char *s, size_t len, size_t chars)
{
    size_t i = 0;
    for (; i < len && chars > 0; chars--) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

static size_t char_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void append_digest(tgt_sbuf *out, const unsigned char digest[TGT_SHA256_LEN])
{
    char hex[TGT_SHA256_HEX];
    tgt_sha256_hex(digest, hex);
    tgt_sbuf_append(out, hex, sizeof(hex));
}

static void append_hash(tgt_sbuf *out, const char *s, size_t n)
{
    unsigned char d[TGT_SHA256_LEN];
    tgt_sha256(s, n, d);
    append_digest(out, d);
}

static void append_hmac(tgt_sbuf *out, const tgt_hmac_sha256_key *key, const char *s, size_t n)
{
    unsigned char d[TGT_SHA256_LEN];
    tgt_hmac_sha256_with(key, s, n, d);
    append_digest(out, d);
}

static void mask_ends(tgt_sbuf *out, const char *s, size_t len, size_t n)
{
    size_t chars = char_count(s, len);
    size_t keep = chars <= 2 * n ? 0 : n;
    size_t head = char_prefix(s, len, keep);
    size_t tail_start = char_prefix(s, len, chars - keep);
    tgt_sbuf_append(out, s, head);
    for (size_t i = 0; i < chars - 2 * keep; i++)
        tgt_sbuf_append_char(out, '*');
    tgt_sbuf_append(out, s + tail_start, len - tail_start);
}

/* HMAC of the local part, the domain kept: "<hex>@example.com".  The last
 * '@' splits, as a quoted local part may hold one; without one the whole
 * value is the local part. */
static void hmac_email(tgt_sbuf *out, const tgt_hmac_sha256_key *key, const char *s, size_t len)
{
    size_t at = len;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '@')
            at = i;
    append_hmac(out, key, s, at);
    tgt_sbuf_append(out, s + at, len - at);
}

tgt_transform_result tgt_transform_value(tgt_transform_kind kind, int n,
                                         const tgt_hmac_sha256_key *key,
                                         const tgt_transform_input *in, tgt_sbuf *out)
{
    const char *s = in->text;
    size_t len = in->len;
    switch (kind) {
    case TGT_TR_SET_NULL:
    case TGT_TR_DROP:
        return TGT_TV_NULL;
    case TGT_TR_MASK_NUMBER:
        tgt_sbuf_append_char(out, '0');
        return TGT_TV_NUMBER;
    case TGT_TR_MASK_HIDDEN:
        tgt_sbuf_append_str(out, "hidden");
        return TGT_TV_STRING;
    case TGT_TR_MASK_DATE:
        if (in->type == TGT_JSON_NULL)
            return TGT_TV_NULL;
        if (in->type != TGT_JSON_STRING || !tgt_datetime_check_timestamp(s, len, NULL))
            return TGT_TV_FAILED;
        /* every accepted form begins YYYY-MM-DD (datetime.h) */
        tgt_sbuf_append(out, s, 5);
        tgt_sbuf_append_str(out, "01-01");
        tgt_sbuf_append(out, s + 10, len - 10);
        return TGT_TV_STRING;
    case TGT_TR_HASH:
    case TGT_TR_HASH_SKIP_FIRST:
    case TGT_TR_MASK_STRING_SKIP_ENDS:
    case TGT_TR_HMAC:
    case TGT_TR_HMAC_EMAIL:
        break;
    }
    if (in->type == TGT_JSON_NULL)
        return TGT_TV_NULL;
    switch (kind) {
    case TGT_TR_HASH:
        append_hash(out, s, len);
        break;
    case TGT_TR_HASH_SKIP_FIRST: {
        size_t skip = (size_t)n < len ? (size_t)n : len;
        tgt_sbuf_append(out, s, char_prefix(s, len, (size_t)n));
        append_hash(out, s + skip, len - skip);
        break;
    }
    case TGT_TR_MASK_STRING_SKIP_ENDS:
        mask_ends(out, s, len, (size_t)n);
        break;
    case TGT_TR_HMAC:
        append_hmac(out, key, s, len);
        break;
    case TGT_TR_HMAC_EMAIL:
        hmac_email(out, key, s, len);
        break;
    case TGT_TR_SET_NULL:
    case TGT_TR_DROP:
    case TGT_TR_MASK_NUMBER:
    case TGT_TR_MASK_HIDDEN:
    case TGT_TR_MASK_DATE:
        break;
    }
    return TGT_TV_STRING;
}
