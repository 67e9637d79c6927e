/*
 * naming.c - identifier normalisation (rules in naming.h).  Works on bytes:
 * multi-byte UTF-8 sequences are copied whole, so a cut never splits a
 * character.  The input is assumed to be valid UTF-8 (the JSON reader
 * guarantees it); a stray byte >= 0x80 is kept like any other.
 */
#include "naming.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>

size_t tgt_naming_limit(size_t ident_max)
{
    if (ident_max == 0 || ident_max > TGT_IDENT_MAX)
        return TGT_IDENT_MAX;
    return ident_max < TGT_IDENT_MIN ? TGT_IDENT_MIN : ident_max;
}

uint32_t tgt_naming_hash(const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t tgt_naming_path_hash(const char *const *parts, const size_t *lens, size_t n_parts)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n_parts; i++) {
        if (i > 0) {
            h ^= TGT_PATH_SEPARATOR;
            h *= 16777619u;
        }
        for (size_t j = 0; j < lens[i]; j++) {
            h ^= (unsigned char)parts[i][j];
            h *= 16777619u;
        }
    }
    return h;
}

void tgt_naming_normalize_part(const char *name, size_t len, tgt_sbuf *out)
{
    if (len == 0) {
        tgt_sbuf_append_char(out, '_');
        return;
    }
    if (name[0] >= '0' && name[0] <= '9')
        tgt_sbuf_append_char(out, '_');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        else if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
        tgt_sbuf_append_char(out, (char)c);
    }
}

void tgt_naming_with_suffix(const char *ident, uint32_t hash, size_t max,
                            char out[TGT_IDENT_MAX + 1])
{
    size_t keep = tgt_utf8_cut(ident, strlen(ident), max - TGT_IDENT_SUFFIX);
    memmove(out, ident, keep);
    snprintf(out + keep, TGT_IDENT_MAX + 1 - keep, "_%08x", hash);
}

int tgt_naming_identifier(const char *const *parts, const size_t *lens, size_t n_parts, size_t max,
                          char out[TGT_IDENT_MAX + 1])
{
    tgt_sbuf joined;
    tgt_sbuf_init(&joined);
    for (size_t i = 0; i < n_parts; i++) {
        if (i > 0)
            tgt_sbuf_append(&joined, "__", 2);
        tgt_naming_normalize_part(parts[i], lens[i], &joined);
    }
    if (!tgt_sbuf_ok(&joined)) {
        tgt_sbuf_deinit(&joined);
        return -1;
    }
    if (joined.len <= max) {
        memcpy(out, joined.data, joined.len + 1);
    } else {
        joined.data[tgt_utf8_cut(joined.data, joined.len, max - TGT_IDENT_SUFFIX)] = '\0';
        tgt_naming_with_suffix(joined.data, tgt_naming_path_hash(parts, lens, n_parts), max, out);
    }
    tgt_sbuf_deinit(&joined);
    return 0;
}

#define SHADOW_PREFIX "_tgt_overwrite_"

void tgt_naming_shadow(const char *live, size_t max, char out[TGT_IDENT_MAX + 1])
{
    size_t prefix = sizeof(SHADOW_PREFIX) - 1;
    size_t len = strlen(live);
    if (prefix + len <= max) {
        snprintf(out, TGT_IDENT_MAX + 1, SHADOW_PREFIX "%s", live);
        return;
    }
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)live[i];
        h *= 1099511628211ull;
    }
    size_t keep = tgt_utf8_cut(live, len, max - prefix - 1 - 16);
    snprintf(out, TGT_IDENT_MAX + 1, SHADOW_PREFIX "%.*s-%016llx", (int)keep, live,
             (unsigned long long)h);
}

void tgt_naming_split_stream(const char *stream, size_t len, const char **source_schema,
                             size_t *source_schema_len, const char **table, size_t *table_len)
{
    const char *dash[3];
    size_t n_dash = 0;
    for (size_t i = 0; i < len && n_dash < 3; i++) {
        if (stream[i] == '-')
            dash[n_dash++] = stream + i;
    }
    *source_schema = NULL;
    *source_schema_len = 0;
    *table = stream;
    *table_len = len;
    if (n_dash == 0 || n_dash > 2)
        return;
    /* every part must be non-empty */
    const char *end = stream + len;
    const char *prev = stream;
    for (size_t i = 0; i < n_dash; i++) {
        if (dash[i] == prev)
            return;
        prev = dash[i] + 1;
    }
    if (prev == end)
        return;
    const char *schema_start = n_dash == 1 ? stream : dash[0] + 1;
    *source_schema = schema_start;
    *source_schema_len = (size_t)(dash[n_dash - 1] - schema_start);
    *table = dash[n_dash - 1] + 1;
    *table_len = (size_t)(end - *table);
}
