/*
 * pg_binary.h - PostgreSQL's binary send forms of the values the core hands
 * the row writer (row.h), computed the way the server's text input reads the
 * same text, so that a value loaded by binary COPY is the value COPY text
 * would have stored: numeric with its written scale (1.50 keeps two
 * places), fractional seconds past six digits rounded as the server rounds
 * them (rint of strtod), real and double through strtof/strtod.
 *
 * Pure functions, no libpq: the unit tests link this file alone.  Times are
 * microseconds and dates days since 2000-01-01 (PostgreSQL's epoch); every
 * multi-byte number on the wire is big-endian (pg_binary_put16/32/64).
 */
#ifndef TGT_PG_BINARY_H
#define TGT_PG_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "datetime.h"
#include "sbuf.h"

/* Big-endian stores into p (which must have room); they return p advanced. */
char *pg_binary_put16(char *p, uint16_t v);
char *pg_binary_put32(char *p, uint32_t v);
char *pg_binary_put64(char *p, uint64_t v);

/* Appends to out the body of numeric_send (no field length): int16 ndigits,
 * int16 weight, uint16 sign (0x0000 +, 0x4000 -, NaN 0xC000, Infinity
 * 0xD000, -Infinity 0xF000), uint16 dscale, then ndigits base-10000 digits.
 * text[0..n) is a JSON number the core checked for a numeric column
 * (number.h) or one of the words NaN, Infinity, -Infinity.  The scale is the
 * written one, as numeric_in reads it: digits after the point minus the
 * exponent, at least 0.  Only fails by out going broken. */
void pg_binary_numeric(tgt_sbuf *out, const char *text, size_t n);

/* A real or double precision value as float4in/float8in read the text
 * (strtof/strtod, NaN/Infinity/-Infinity included).  Returns 0, or -1 when
 * the server's input would refuse it (it under- or overflows to zero or
 * infinity), leaving *out unspecified. */
int pg_binary_float4(const char *text, size_t n, float *out);
int pg_binary_float8(const char *text, size_t n, double *out);

/* Days from 2000-01-01 to v's date (date_recv's form). */
int32_t pg_binary_date(const tgt_datetime *v);

/* Microseconds since midnight of v's clock parts into *out, with the
 * fraction rounded as time_in rounds it (time_recv's form; 24:00:00 is
 * 86400000000).  Returns 0, or -1 when the clock passes 24:00:00 once
 * rounded (23:59:60.5), which the server's input refuses. */
int pg_binary_time(const tgt_datetime *v, int64_t *out);

/* Microseconds since 2000-01-01 00:00 of v into *out (a date alone is
 * midnight).  With `utc` (a timestamptz column) a written offset is taken
 * off, as timestamptz_in does; without (a timestamp column) the clock is
 * kept as written and the offset ignored, as timestamp_in does.  Second 60
 * and hour 24 roll over into the next minute or day, as they do in the
 * server.  Returns 0, or -1 when the written clock passes 24:00:00 (as
 * pg_binary_time). */
int pg_binary_timestamp(const tgt_datetime *v, int utc, int64_t *out);

#endif
