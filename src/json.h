/*
 * json.h - a validating, allocation-reusing JSON tokenizer for one input line.
 *
 * The RECORD hot path must not build a jansson tree (which allocates per
 * value and turns numbers into doubles).  tgt_json_parse() checks that a line
 * is exactly one well-formed JSON value (RFC 8259: UTF-8 only, no trailing
 * garbage except whitespace) and fills a flat token array that points back
 * into the caller's text.  One extension: the bare values NaN, Infinity and
 * -Infinity, which Python's json.dumps writes by default for floats it cannot
 * spell otherwise, are read as numbers flagged TGT_JSON_NONFINITE (exactly
 * those spellings, and only where a value may stand: never as a key).  Numbers keep their exact
 * text; strings keep their raw (still escaped) bytes and are decoded only
 * when needed.  Nesting depth is limited only by memory: the parser keeps an
 * explicit stack, never recursion.
 *
 * Tokens are in document order.  A container's children follow it directly;
 * an object's children alternate key, value.  Every token records `end`, the
 * index one past its subtree, so a caller skips a value in O(1).  With
 * skip_array_items set, array elements are validated but get no tokens of
 * their own (arrays are only ever stored whole, as JSON text), which keeps the
 * token count small for huge arrays.
 *
 * Ownership: the parser owns its token array and stack and reuses them from
 * line to line; tokens borrow the text, which must outlive their use.
 */
#ifndef TGT_JSON_H
#define TGT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sbuf.h"

typedef enum tgt_json_type {
    TGT_JSON_NULL = 0,
    TGT_JSON_FALSE,
    TGT_JSON_TRUE,
    TGT_JSON_NUMBER,
    TGT_JSON_STRING,
    TGT_JSON_ARRAY,
    TGT_JSON_OBJECT
} tgt_json_type;

/* Token flags. */
#define TGT_JSON_ESCAPED 0x01u   /* string: holds at least one backslash escape */
#define TGT_JSON_HAS_NUL 0x02u   /* string: holds a \u0000 escape */
#define TGT_JSON_INTEGRAL 0x04u  /* number: no fraction and no exponent */
#define TGT_JSON_NON_ASCII 0x08u /* string: holds bytes >= 0x80 (already valid UTF-8) */
/* number: NaN, Infinity or -Infinity (not RFC 8259 JSON); array/object: holds
 * such a number at some depth, so a caller can refuse it for strict JSON
 * without walking the subtree (also when array items got no tokens). */
#define TGT_JSON_NONFINITE 0x10u

typedef struct tgt_json_token {
    uint8_t type;  /* tgt_json_type */
    uint8_t flags; /* TGT_JSON_* flags */
    uint32_t size; /* array: element count; object: member count; else 0 */
    size_t start;  /* string: offset of the first byte after the opening quote;
                      other types: offset of the value's first byte */
    size_t len;    /* string: raw bytes between the quotes; number/literal: its
                      text; array/object: the whole span including brackets */
    size_t end;    /* index of the first token after this value's subtree */
} tgt_json_token;

typedef struct tgt_json_parser {
    tgt_json_token *tokens; /* owned, reused */
    size_t n_tokens;
    size_t cap_tokens;
    size_t *stack; /* owned, reused: indexes of open containers */
    size_t cap_stack;
    int skip_array_items; /* see the file comment */
} tgt_json_parser;

void tgt_json_parser_init(tgt_json_parser *p);
void tgt_json_parser_deinit(tgt_json_parser *p);

/*
 * Tokenizes text[0..len).  On success returns 0 and p->tokens[0] is the root.
 * On malformed input returns -1 with a TGT_ERR_INPUT error whose message says
 * what is wrong and at which byte (1-based column), e.g.
 * "invalid JSON at column 17: expected ':' after object key".  Rejects:
 * invalid UTF-8 (overlong forms, encoded surrogates, > U+10FFFF), raw control
 * characters below 0x20 in strings, bad escapes, \u escapes that form a lone
 * or reversed UTF-16 surrogate, leading zeros, other spellings of NaN and
 * Infinity (nan, +Infinity, -NaN, inf), trailing commas,
 * trailing non-whitespace, empty input.  Allocation failure: TGT_ERR_NOMEM.
 */
int tgt_json_parse(tgt_json_parser *p, const char *text, size_t len, tgt_error *err);

/*
 * In object token `obj`, the index of the value whose key equals key[0..keylen)
 * after decoding escapes, or -1 when absent (also when `obj` is not an object).
 * Duplicate keys: the last one wins, as in most JSON readers.
 */
long tgt_json_object_get(const tgt_json_parser *p, const char *text, size_t obj, const char *key,
                         size_t keylen);

/*
 * Appends the decoded UTF-8 form of a string token's raw bytes to out.
 * \u0000 decodes to U+FFFD (PostgreSQL cannot store NUL) and increments
 * *nul_count when nul_count is not NULL.  Input must come from a token of a
 * successful tgt_json_parse (already validated), so this cannot fail except
 * by out going broken.
 */
void tgt_json_decode_string(const char *raw, size_t len, tgt_sbuf *out, size_t *nul_count);

/* True when the decoded string token equals s[0..n). */
int tgt_json_string_equals(const char *raw, size_t len, unsigned flags, const char *s, size_t n);

#endif
