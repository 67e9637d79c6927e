/*
 * number.h - JSON number texts judged the way PostgreSQL's number columns
 * read them, before they go into a COPY stream.
 *
 * Python writes an integral float from 1e16 up as `1e+16`, and other tools
 * write integers as `1E+2` or `12.000`; PostgreSQL's bigint input refuses
 * all of them.  tgt_number_integer_text() spells such a value with plain
 * digits when it is an integer, exactly (string arithmetic on the digits,
 * never through a double), so it loads into an integer column; a value with
 * a fractional part is refused.  tgt_number_fits() is the range check for
 * numeric, real and double precision columns, which read the text as it is.
 *
 * Pure functions over (pointer, length) of a number token's text as the
 * JSON tokenizer accepted it (json.h): no allocation, static reasons.  The
 * non-finite tokens (NaN, Infinity) are the caller's to handle.
 */
#ifndef TGT_NUMBER_H
#define TGT_NUMBER_H

#include <stddef.h>

#include "types.h"

/* Room for the longest integer text: a sign, 19 digits and a NUL. */
#define TGT_NUMBER_INTEGER_MAX 21

/* For a smallint, integer or bigint column: writes the value of the JSON
 * number v[0..n) as plain decimal digits (a '-' for negatives, no leading
 * zeros, "0" for any zero) and a NUL into out, and returns their length:
 * "12" -> 12, "-7" -> -7, "12.000" -> 12, "1e2" / "1E+2" -> 100,
 * "1.5e1" -> 15, "-0.0e5" -> 0.  Returns 0 with *why set when the value is
 * not an integer ("1.5", "1.5e0", "1e-2": "not an integer") or is outside
 * the column kind's range ("out of range"); out is then unspecified. */
size_t tgt_number_integer_text(const char *v, size_t n, tgt_type_kind kind,
                               char out[TGT_NUMBER_INTEGER_MAX], const char **why);

/* For a numeric, real or double precision column: 1 when PostgreSQL reads
 * the JSON number v[0..n) as written, else 0 with *why naming the limit
 * (numeric: 131,072 digits before the point, 16,383 after it, exponents
 * below 2^30 - 1; real and double: their exponent range, approximately). */
int tgt_number_fits(const char *v, size_t n, tgt_type_kind kind, const char **why);

#endif
