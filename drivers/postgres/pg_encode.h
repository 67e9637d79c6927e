/*
 * pg_encode.h - the PostgreSQL driver's row encoder (drivers/row.h): typed
 * values into COPY text format, straight from the input bytes.  The bytes go
 * through the core's chunk to pg_copy.c's write_data unchanged.
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
#ifndef TGT_PG_ENCODE_H
#define TGT_PG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "row.h"
#include "sbuf.h"

/* The row writer of the postgres driver: one COPY text line per row, values
 * separated by TAB, \N for NULL, t/f, times of the target's own columns
 * with "+00" (so no session setting decides their zone); a staging row ends
 * with the sequence and the presence mask ('1'/'0' per column, \N when
 * every column was carried). */
extern const tgt_row_ops tgt_pg_row_ops;

/* Raw bytes (already decoded UTF-8), escaped for COPY. */
void tgt_pg_copy_text(tgt_sbuf *out, const char *s, size_t n);

/* A JSON string token's raw bytes (between the quotes, still JSON-escaped):
 * decoded to UTF-8 (surrogate pairs combined, \u0000 -> U+FFFD) and escaped
 * for COPY in one pass.  `escaped` is 0 when the token has no backslash, which
 * allows a straight copy. */
void tgt_pg_copy_json_string(tgt_sbuf *out, const char *raw, size_t n, int escaped,
                             size_t *nul_count);

/* A JSON value's full text (for a jsonb/json column) escaped for COPY, with
 * each \u0000 escape inside its strings rewritten to \ufffd.  Whitespace
 * outside strings is kept (jsonb normalises it anyway). */
void tgt_pg_copy_json_raw(tgt_sbuf *out, const char *json, size_t n, size_t *nul_count);

/* The NULL marker. */
void tgt_pg_copy_null(tgt_sbuf *out);

/* The JSON \uXXXX escape at p (p[0] == '\\', p[1] == 'u', p < end),
 * combined with a following low surrogate escape when it is a high
 * surrogate.  Returns the code point and sets *used to the input bytes
 * consumed.  A broken escape (truncated, bad hex digits, lone surrogate)
 * yields U+FFFD; U+0000 is returned as it is (the caller replaces it). */
uint32_t tgt_pg_decode_u_escape(const char *p, const char *end, size_t *used);

#endif
