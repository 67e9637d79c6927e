/*
 * source_path.c - recording a column's property path (see source_path.h).
 * Reading uses jansson, which refuses U+0000 in strings: no property name
 * holds one (jansson refuses it in object keys too), so such a comment is
 * not one target-pg wrote in the JSON form.
 */
#include "source_path.h"

#include <jansson.h>
#include <stdlib.h>

/* A recorded array of more parts is no path target-pg wrote. */
#define MAX_PARTS 64

/* The array as compact JSON ("[\"a\",\"b\"]"), appended to out; jansson
 * does the escaping.  Allocation failure leaves out broken. */
static void append_dump(const json_t *array, tgt_sbuf *out)
{
    char *text = array != NULL ? json_dumps(array, JSON_COMPACT) : NULL;
    if (text == NULL)
        out->broken = 1;
    else
        tgt_sbuf_append_str(out, text);
    free(text);
}

void tgt_source_path_write(const char *const *parts, const size_t *lens, size_t n_parts,
                           tgt_sbuf *out)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < n_parts; i++) {
        if (json_array_append_new(array, json_stringn(parts[i], lens[i])) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    append_dump(array, out);
    json_decref(array);
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
    int is_path = n <= MAX_PARTS;
    for (size_t i = 0; is_path && i < n; i++)
        is_path = json_is_string(json_array_get(doc, i));
    if (is_path) {
        tgt_sbuf_reset(out);
        append_dump(doc, out);
    }
    json_decref(doc);
    if (is_path && !tgt_sbuf_ok(out))
        return -1;
    return is_path;
}
