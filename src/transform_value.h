/*
 * transform_value.h - one value through one pseudonymising transformation
 * type (the `type` of a `transformations` rule, transform.h).
 *
 * Pure functions over bytes: no JSON tokens, no rules, no conditions; what
 * a type does to a value is decided here and nowhere else.  The types and
 * their meanings follow pipelinewise-transform-field's
 * transform_field/transform.py (github.com/transferwise/
 * pipelinewise-transform-field, commit af22b03), where it is safe; where
 * transform-field passes the clear value through (a value it cannot
 * transform), target-pg writes a pseudonym or NULL instead.  The README
 * ("Pseudonymising personal data") lists every difference.
 */
#ifndef TGT_TRANSFORM_VALUE_H
#define TGT_TRANSFORM_VALUE_H

#include <stddef.h>

#include "json.h"
#include "sbuf.h"
#include "sha256.h"

typedef enum tgt_transform_kind {
    TGT_TR_SET_NULL,              /* any value -> null */
    TGT_TR_HASH,                  /* SHA-256 hex of the value's bytes */
    TGT_TR_HASH_SKIP_FIRST,       /* first n characters kept + SHA-256 hex of the bytes after n */
    TGT_TR_MASK_DATE,             /* a date or date-time with month and day set to 01 */
    TGT_TR_MASK_NUMBER,           /* any value -> 0 */
    TGT_TR_MASK_HIDDEN,           /* any value -> "hidden" */
    TGT_TR_MASK_STRING_SKIP_ENDS, /* characters but the first and last n -> '*' */
    TGT_TR_HMAC,                  /* HMAC-SHA-256 hex under pseudonymization_key */
    TGT_TR_HMAC_EMAIL,            /* HMAC of the part before the last '@', domain kept */
    TGT_TR_DROP                   /* the property is removed (never a column) */
} tgt_transform_kind;

/* Reads a type name ("HASH", "HASH-SKIP-FIRST-2", ...): 0 with *kind and *n
 * (the digit of the -n types, else 0) set, or -1 when it is not one of
 * the types.  The n of HASH-SKIP-FIRST-n and MASK-STRING-SKIP-ENDS-n is one
 * digit: transform-field reads only the name's last character, so a
 * longer number would mean something else there. */
int tgt_transform_kind_parse(const char *name, tgt_transform_kind *kind, int *n);

/* The type's name as the README spells it ("HASH-SKIP-FIRST-n"). */
const char *tgt_transform_kind_name(tgt_transform_kind kind);

/* True for the types whose output is always a string (or null): the column
 * of such a property is text whatever the SCHEMA said. */
int tgt_transform_kind_is_textual(tgt_transform_kind kind);

/* A value to transform: type is a tgt_json_type; for a string, text is its
 * decoded UTF-8 bytes; for any other type, its JSON text as written. */
typedef struct tgt_transform_input {
    tgt_json_type type;
    const char *text;
    size_t len;
} tgt_transform_input;

/* What a transformation made. */
typedef enum tgt_transform_result {
    TGT_TV_NULL,   /* null */
    TGT_TV_NUMBER, /* the bytes appended to out are a JSON number */
    TGT_TV_STRING, /* the bytes appended to out are a string (decoded, not escaped) */
    TGT_TV_FAILED  /* the value cannot be transformed (a MASK-DATE of a non-date): null */
} tgt_transform_result;

/* Transforms in (never DROP: that is the record's, transform.c) and appends
 * the output bytes to out (the caller checks out for a broken allocation).
 * key is the prepared HMAC key (unused by other types; NULL without one).  A null input
 * stays null except for MASK-NUMBER and MASK-HIDDEN, which replace any
 * value, as in transform-field. */
tgt_transform_result tgt_transform_value(tgt_transform_kind kind, int n,
                                         const tgt_hmac_sha256_key *key,
                                         const tgt_transform_input *in, tgt_sbuf *out);

#endif
