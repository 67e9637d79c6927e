/*
 * copy.h - PostgreSQL COPY text-format encoding of single values, straight
 * from the input bytes.
 *
 * In COPY text format a row is values separated by TAB and ended by '\n';
 * NULL is \N; inside a value backslash, TAB, LF and CR must be escaped
 * (\\ \t \n \r).  These functions append one value's bytes (never the
 * separators) to a buffer that the caller has sized with tgt_sbuf_reserve or
 * that grows on demand.  They never fail except by the buffer going broken.
 *
 * U+0000 cannot be stored by PostgreSQL in text or jsonb: it is replaced by
 * U+FFFD here and only here, and counted through *nul_count.
 */
#ifndef TGT_COPY_H
#define TGT_COPY_H

#include <stddef.h>

#include "sbuf.h"

/* Raw bytes (already decoded UTF-8), escaped for COPY. */
void tgt_copy_append_text(tgt_sbuf *out, const char *s, size_t n);

/* A JSON string token's raw bytes (between the quotes, still JSON-escaped):
 * decoded to UTF-8 (surrogate pairs combined, \u0000 -> U+FFFD) and escaped
 * for COPY in one pass.  `escaped` is 0 when the token has no backslash, which
 * allows a straight copy. */
void tgt_copy_append_json_string(tgt_sbuf *out, const char *raw, size_t n, int escaped,
                                 size_t *nul_count);

/* A JSON value's full text (for a jsonb/json column) escaped for COPY, with
 * each \u0000 escape inside its strings rewritten to \ufffd.  Whitespace
 * outside strings is kept (jsonb normalises it anyway). */
void tgt_copy_append_json_raw(tgt_sbuf *out, const char *json, size_t n, size_t *nul_count);

/* The NULL marker. */
void tgt_copy_append_null(tgt_sbuf *out);

#endif
