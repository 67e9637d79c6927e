/*
 * naming.h - how stream and property names become PostgreSQL identifiers
 * (docs/contract.md "Names").
 *
 * Rule: ASCII letters are lower-cased; ASCII characters other than [a-z0-9_]
 * become '_'; non-ASCII characters (valid UTF-8) are kept; a leading digit
 * gets a '_' prefix; an empty name becomes "_".  A result longer than 63
 * bytes is cut at a character boundary to at most 54 bytes and given '_' and
 * 8 lower-case hex digits of the FNV-1a 32-bit hash of the full source path
 * (the original, un-normalised names joined by 0x1F, the ASCII unit
 * separator).  The same suffix is what a clash resolver appends.
 */
#ifndef TGT_NAMING_H
#define TGT_NAMING_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

#define TGT_IDENT_MAX 63        /* PostgreSQL's NAMEDATALEN - 1 */
#define TGT_IDENT_CUT 54        /* bytes kept before "_" + 8 hex digits */
#define TGT_PATH_SEPARATOR 0x1F /* joins source path parts for hashing */

/* FNV-1a 32-bit over bytes. */
uint32_t tgt_naming_hash(const void *bytes, size_t n);

/* FNV-1a 32-bit over the parts joined by TGT_PATH_SEPARATOR: the hash
 * that the 63-byte rule and the clash suffix use. */
uint32_t tgt_naming_path_hash(const char *const *parts, const size_t *lens, size_t n_parts);

/* Appends the normalised form of one name part (no length rule applied). */
void tgt_naming_normalize_part(const char *name, size_t len, tgt_sbuf *out);

/*
 * Builds an identifier from a source path of n_parts names: each part
 * normalised, joined with "__", then the 63-byte rule applied (hash over the
 * original parts joined by TGT_PATH_SEPARATOR).  Writes a NUL-terminated
 * identifier of at most 63 bytes into out (capacity >= 64).
 * Returns 0, or -1 on allocation failure.
 */
int tgt_naming_identifier(const char *const *parts, const size_t *lens, size_t n_parts,
                          char out[TGT_IDENT_MAX + 1]);

/* The clash form of an identifier: cut to <= 54 bytes at a character
 * boundary + "_" + 8 hex digits of `hash`.  out capacity >= 64. */
void tgt_naming_with_suffix(const char *ident, uint32_t hash, char out[TGT_IDENT_MAX + 1]);

/*
 * The shadow table that load_method overwrite loads into instead of `live`
 * (a normalised identifier): "_tgt_overwrite_<live>" when that fits in 63
 * bytes; otherwise "_tgt_overwrite_", the live name cut at a character
 * boundary to at most 31 bytes, '-' and 16 hex digits of the FNV-1a 64-bit
 * hash of the whole live name.  Distinct live names get distinct shadows: the
 * short form is injective, a normalised name never holds '-' so the forms
 * cannot meet, and two long forms meet only when prefix and 64-bit hash both
 * do.  Writes at most 63 bytes + NUL into out.
 */
void tgt_naming_shadow(const char *live, char out[TGT_IDENT_MAX + 1]);

/*
 * Splits a stream name per docs/contract.md: when it splits on '-' into two or three
 * non-empty parts, *table points at the last part and *source_schema at the
 * part before it (lengths in *_len); otherwise the whole name is the table
 * and *source_schema is NULL.  Pointers borrow `stream`.
 */
void tgt_naming_split_stream(const char *stream, size_t len, const char **source_schema,
                             size_t *source_schema_len, const char **table, size_t *table_len);

#endif
