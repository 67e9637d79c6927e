/*
 * naming.h - how stream and property names become identifiers, at the
 * identifier limit the driver states (docs/contract.md "Names").
 *
 * Rule: ASCII letters are lower-cased; ASCII characters other than [a-z0-9_]
 * become '_'; non-ASCII characters (valid UTF-8) are kept; a leading digit
 * gets a '_' prefix; an empty name becomes "_".  A result longer than the
 * warehouse's identifier limit `max` (the driver's caps->ident_max through
 * tgt_naming_limit; 63 bytes on PostgreSQL) is cut at a character boundary
 * to at most max - 9 bytes (54 on PostgreSQL) and given '_' and 8 lower-case
 * hex digits of the FNV-1a 32-bit hash of the full source path (the
 * original, un-normalised names joined by 0x1F, the ASCII unit separator).
 * The same suffix is what a clash resolver appends.
 */
#ifndef TGT_NAMING_H
#define TGT_NAMING_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* The bounds of an identifier limit: TGT_IDENT_MAX sizes the core's fixed
 * identifier buffers (a driver with a longer limit, or none, gets this one);
 * TGT_IDENT_MIN leaves room for the shadow form below. */
#define TGT_IDENT_MAX 127
#define TGT_IDENT_MIN 32
#define TGT_IDENT_SUFFIX 9      /* "_" + 8 hex digits */
#define TGT_PATH_SEPARATOR 0x1F /* joins source path parts for hashing */

/* The identifier limit in bytes a driver states (its caps->ident_max,
 * driver.h) clamped to [TGT_IDENT_MIN, TGT_IDENT_MAX]; 0 (no limit) gives
 * TGT_IDENT_MAX. */
size_t tgt_naming_limit(size_t ident_max);

/* FNV-1a 32-bit over bytes. */
uint32_t tgt_naming_hash(const void *bytes, size_t n);

/* FNV-1a 32-bit over the parts joined by TGT_PATH_SEPARATOR: the hash
 * that the length rule and the clash suffix use. */
uint32_t tgt_naming_path_hash(const char *const *parts, const size_t *lens, size_t n_parts);

/* Appends the normalised form of one name part (no length rule applied). */
void tgt_naming_normalize_part(const char *name, size_t len, tgt_sbuf *out);

/*
 * Builds an identifier from a source path of n_parts names: each part
 * normalised, joined with "__", then the length rule for `max` applied
 * (hash over the original parts joined by TGT_PATH_SEPARATOR).  `max` is a
 * tgt_naming_limit.  Writes a NUL-terminated identifier of at most `max`
 * bytes into out.  Returns 0, or -1 on allocation failure.
 */
int tgt_naming_identifier(const char *const *parts, const size_t *lens, size_t n_parts, size_t max,
                          char out[TGT_IDENT_MAX + 1]);

/* The clash form of an identifier: cut to <= max - 9 bytes at a character
 * boundary + "_" + 8 hex digits of `hash` (max a tgt_naming_limit). */
void tgt_naming_with_suffix(const char *ident, uint32_t hash, size_t max,
                            char out[TGT_IDENT_MAX + 1]);

/*
 * The shadow table that load_method overwrite loads into instead of `live`
 * (a normalised identifier): "_tgt_overwrite_<live>" when that fits in `max`
 * bytes (a tgt_naming_limit); otherwise "_tgt_overwrite_", the live name cut
 * at a character boundary to at most max - 32 bytes (31 on PostgreSQL), '-'
 * and 16 hex digits of the FNV-1a 64-bit
 * hash of the whole live name.  Distinct live names get distinct shadows: the
 * short form is injective, a normalised name never holds '-' so the forms
 * cannot meet, and two long forms meet only when prefix and 64-bit hash both
 * do.  Writes at most `max` bytes + NUL into out.
 */
void tgt_naming_shadow(const char *live, size_t max, char out[TGT_IDENT_MAX + 1]);

/*
 * Splits a stream name per docs/contract.md: when it splits on '-' into two or three
 * non-empty parts, *table points at the last part and *source_schema at the
 * part before it (lengths in *_len); otherwise the whole name is the table
 * and *source_schema is NULL.  Pointers borrow `stream`.
 */
void tgt_naming_split_stream(const char *stream, size_t len, const char **source_schema,
                             size_t *source_schema_len, const char **table, size_t *table_len);

#endif
