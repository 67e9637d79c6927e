/*
 * source_path.c - recording a column's property path (see source_path.h).
 * Reading uses jansson, which refuses U+0000 in strings: no property name
 * holds one (jansson refuses it in object keys too), so such a comment is
 * not one target-pg wrote in the JSON form.
 */
#include "source_path.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* The one-letter escape JSON has for a control character, or 0. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

static void write_part(const char *part, size_t len, tgt_sbuf *out)
{
    tgt_sbuf_append_char(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)part[i];
        if (c == '"' || c == '\\') {
            tgt_sbuf_append_char(out, '\\');
            tgt_sbuf_append_char(out, (char)c);
        } else if (short_escape(c) != 0) {
            tgt_sbuf_append_char(out, '\\');
            tgt_sbuf_append_char(out, short_escape(c));
        } else if (c < 0x20) {
            tgt_sbuf_printf(out, "\\u%04x", c);
        } else {
            tgt_sbuf_append_char(out, (char)c);
        }
    }
    tgt_sbuf_append_char(out, '"');
}

void tgt_source_path_write(const char *const *parts, const size_t *lens, size_t n_parts,
                           tgt_sbuf *out)
{
    tgt_sbuf_append_char(out, '[');
    for (size_t i = 0; i < n_parts; i++) {
        if (i > 0)
            tgt_sbuf_append_char(out, ',');
        write_part(parts[i], lens[i], out);
    }
    tgt_sbuf_append_char(out, ']');
}

int tgt_source_path_read(const char *recorded, tgt_sbuf *out)
{
    /* the dotted form of a path whose first part begins with '[' could
     * look like an array; only a complete array of strings counts */
    if (recorded[0] != '[')
        return 0;
    json_t *doc = json_loads(recorded, 0, NULL);
    if (!json_is_array(doc) || json_array_size(doc) == 0) {
        json_decref(doc);
        return 0;
    }
    size_t n = json_array_size(doc);
    const char *parts[64];
    size_t lens[64];
    int is_path = n <= sizeof(parts) / sizeof(parts[0]);
    for (size_t i = 0; is_path && i < n; i++) {
        const json_t *part = json_array_get(doc, i);
        is_path = json_is_string(part);
        if (is_path) {
            parts[i] = json_string_value(part);
            lens[i] = json_string_length(part);
        }
    }
    if (is_path) {
        tgt_sbuf_reset(out);
        tgt_source_path_write(parts, lens, n, out);
    }
    json_decref(doc);
    if (is_path && !tgt_sbuf_ok(out))
        return -1;
    return is_path;
}
