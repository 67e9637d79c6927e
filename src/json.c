/*
 * json.c - the validating JSON tokenizer behind every input line, plus the
 * string helpers that read its tokens (key lookup, decoding, comparison).
 *
 * tgt_json_parse() makes one pass over the bytes with an explicit stack of
 * open containers, so nesting depth costs memory, never C stack.  It checks
 * the whole of RFC 8259 as it goes (UTF-8 inside strings, escapes, number
 * grammar, literals, whitespace, trailing bytes), reads Python's NaN and
 * Infinity values as flagged numbers (json.h), and records tokens that
 * point back into the caller's text; it never copies or decodes a string.
 * Decoding happens later and only on demand: tgt_json_decode_string()
 * appends to a caller's sbuf, tgt_json_string_equals() compares without
 * allocating.  Nothing here builds a tree, converts numbers or allocates per
 * line: the token array and the stack belong to the parser and are grown
 * with realloc only when a line needs more than any line before it.
 *
 * Errors name the 1-based byte column where the problem was seen; for an
 * unterminated string that is the opening quote.  After a failed parse
 * p->n_tokens is 0.
 */
#include "json.h"
#include "bytes.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Stack entries are (token index << 1) | is_object.  Containers inside an
 * array whose items are skipped have no token; they use NO_TOKEN so the stack
 * still knows which bracket closes them. */
#define NO_TOKEN (SIZE_MAX >> 1)
#define STACK_OBJECT 1u

/* Scanners return a byte offset, or FAILED after setting the error. */
#define FAILED SIZE_MAX

/* Bytes a string body may hold as they are: printable ASCII other than the
 * quote and the backslash.  Everything else (controls, escapes, UTF-8 lead
 * bytes, the closing quote) leaves the fast loop. */
/* clang-format off */
#define P0 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define P1 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const uint8_t plain_byte[256] = {
    P0, P0,                                          /* 0x00..0x1f: controls */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x20..0x2f: 0x22 is '"' */
    P1, P1,                                          /* 0x30..0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 0x50..0x5f: 0x5c is '\\' */
    P1, P1,                                          /* 0x60..0x7f (DEL is allowed) */
    P0, P0, P0, P0, P0, P0, P0, P0,                  /* 0x80..0xff: UTF-8 */
};
#undef P0
#undef P1
/* clang-format on */

/* Per-call state.  It lives in registers once the helpers are inlined, which
 * is why the token array, its count and the stack are copied here instead of
 * being used through the parser (stores into size_t token fields could
 * otherwise alias p->n_tokens and force reloads). */
typedef struct scan {
    const unsigned char *s;
    size_t len;
    size_t pos;
    tgt_json_token *tok;
    size_t n_tok;
    size_t cap_tok;
    size_t *stack;
    size_t cap_stack;
    size_t depth;
    size_t quiet; /* depth of the array whose items get no tokens; 0: none */
    int skip_items;
    tgt_json_parser *p;
    tgt_error *err;
} scan;

static int fail(tgt_error *err, size_t pos, const char *what)
{
    return tgt_error_set(err, TGT_ERR_INPUT, "invalid JSON at column %zu: %s", pos + 1, what);
}

/* fail() for the scanners, which return offsets. */
static size_t failed(tgt_error *err, size_t pos, const char *what)
{
    fail(err, pos, what);
    return FAILED;
}

static int fail_byte(tgt_error *err, size_t pos, unsigned char c)
{
    if (c > 0x20 && c < 0x7f)
        return tgt_error_set(err, TGT_ERR_INPUT,
                             "invalid JSON at column %zu: unexpected character '%c'", pos + 1, c);
    return tgt_error_set(err, TGT_ERR_INPUT, "invalid JSON at column %zu: unexpected byte 0x%02X",
                         pos + 1, c);
}

static int is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10u;
}

static size_t skip_ws(const unsigned char *s, size_t len, size_t pos)
{
    while (pos < len) {
        unsigned char c = s[pos];
        /* Most bytes here are syntax, not blanks: one compare rejects them. */
        if (c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t'))
            break;
        pos++;
    }
    return pos;
}

/* A mask with bit 7 set in the bytes of w that are not plain_byte[]; zero
 * when all 8 are plain.  Each term is the classic "has a byte below n" trick:
 * a borrow can falsely flag bytes above a real hit, never below it, and bytes
 * >= 0x80 are flagged by the last term whatever the others say. */
static uint64_t special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t ctl = (w - ones * 0x20) & ~w;
    return (ctl | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
}

/* Offset of the first byte at or after pos that is not plain (or len). */
static size_t skip_plain(const unsigned char *s, size_t len, size_t pos)
{
    while (len - pos >= 8) {
        uint64_t w;
        memcpy(&w, s + pos, 8);
        uint64_t m = special_bytes(w);
        if (m != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* Borrows only run upwards, so the lowest flagged byte is exact. */
            return pos + (size_t)(__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }
        pos += 8;
    }
    while (pos < len && plain_byte[s[pos]])
        pos++;
    return pos;
}

static int hex_digit(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of the 4 hex digits at s[pos..], or -1. */
static long hex4(const unsigned char *s, size_t len, size_t pos)
{
    if (len - pos < 4)
        return -1;
    long v = 0;
    for (size_t i = 0; i < 4; i++) {
        int d = hex_digit(s[pos + i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static int is_high_surrogate(long u)
{
    return u >= 0xD800 && u <= 0xDBFF;
}

static int is_low_surrogate(long u)
{
    return u >= 0xDC00 && u <= 0xDFFF;
}

static size_t fail_surrogate(tgt_error *err, const unsigned char *s, size_t pos)
{
    tgt_error_set(err, TGT_ERR_INPUT,
                  "invalid JSON at column %zu: lone UTF-16 surrogate escape %.6s", pos + 1,
                  (const char *)s + pos);
    return FAILED;
}

/* s[pos] == 'u' after a backslash at pos - 1.  Offset after the escape (and
 * after its low-surrogate partner), or FAILED. */
static size_t scan_u_escape(const unsigned char *s, size_t len, size_t pos, unsigned *flags,
                            tgt_error *err)
{
    size_t esc = pos - 1;
    long u = hex4(s, len, pos + 1);
    if (u < 0)
        return failed(err, esc, "invalid \\u escape (expected 4 hex digits)");
    if (u == 0)
        *flags |= TGT_JSON_HAS_NUL;
    if (is_low_surrogate(u))
        return fail_surrogate(err, s, esc);
    if (!is_high_surrogate(u))
        return pos + 5;
    if (len - pos < 7 || s[pos + 5] != '\\' || s[pos + 6] != 'u')
        return fail_surrogate(err, s, esc);
    long lo = hex4(s, len, pos + 7);
    if (lo < 0)
        return failed(err, pos + 5, "invalid \\u escape (expected 4 hex digits)");
    if (!is_low_surrogate(lo))
        return fail_surrogate(err, s, esc);
    return pos + 11;
}

/* s[pos] is a backslash inside a string and s[pos + 1] exists.  Offset after
 * the escape or FAILED. */
static size_t scan_escape(const unsigned char *s, size_t len, size_t pos, unsigned *flags,
                          tgt_error *err)
{
    unsigned char c = s[pos + 1];
    *flags |= TGT_JSON_ESCAPED;
    switch (c) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return pos + 2;
    case 'u':
        return scan_u_escape(s, len, pos + 1, flags, err);
    default:
        break;
    }
    if (c > 0x20 && c < 0x7f)
        tgt_error_set(err, TGT_ERR_INPUT, "invalid JSON at column %zu: invalid escape '\\%c'",
                      pos + 1, c);
    else
        tgt_error_set(err, TGT_ERR_INPUT,
                      "invalid JSON at column %zu: invalid escape (byte 0x%02X after '\\')",
                      pos + 1, c);
    return FAILED;
}

static size_t fail_control(tgt_error *err, size_t pos, unsigned char c)
{
    tgt_error_set(err, TGT_ERR_INPUT,
                  "invalid JSON at column %zu: unescaped control character 0x%02X in string",
                  pos + 1, c);
    return FAILED;
}

/* s[open] is the opening quote.  Offset of the closing quote, or FAILED. */
static size_t scan_string(const unsigned char *s, size_t len, size_t open, unsigned *flags,
                          tgt_error *err)
{
    size_t pos = open + 1, next;
    for (;;) {
        pos = skip_plain(s, len, pos);
        if (pos >= len)
            break;
        unsigned char c = s[pos];
        if (c == '"')
            return pos;
        if (c == '\\') {
            if (pos + 1 >= len)
                break;
            next = scan_escape(s, len, pos, flags, err);
        } else if (c >= 0x80) {
            *flags |= TGT_JSON_NON_ASCII;
            size_t seq = tgt_utf8_sequence_len(s + pos, len - pos);
            next = seq == 0 ? failed(err, pos, "invalid UTF-8 in string") : pos + seq;
        } else {
            next = fail_control(err, pos, c);
        }
        if (next == FAILED)
            return FAILED;
        pos = next;
    }
    return failed(err, open, "unterminated string");
}

/* s[pos] is '-' or a digit.  Offset after the number, or FAILED. */
static size_t scan_number(const unsigned char *s, size_t len, size_t pos, unsigned *flags,
                          tgt_error *err)
{
    size_t i = pos + (s[pos] == '-');
    if (i >= len || !is_digit(s[i]))
        return failed(err, i, "expected a digit after '-'");
    if (s[i] == '0') {
        if (++i < len && is_digit(s[i]))
            return failed(err, i - 1, "leading zeros are not allowed in numbers");
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    *flags = TGT_JSON_INTEGRAL;
    if (i < len && s[i] == '.') {
        *flags = 0;
        if (++i >= len || !is_digit(s[i]))
            return failed(err, i, "expected a digit after the decimal point");
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] | 0x20) == 'e') {
        *flags = 0;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return failed(err, i, "expected a digit in the exponent");
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i;
}

/* realloc to twice the capacity (at least 64); NULL leaves arr untouched. */
static void *grow_array(void *arr, size_t *cap, size_t elem)
{
    size_t n = *cap ? *cap : 32;
    if (n > SIZE_MAX / 2 / elem)
        return NULL;
    void *grown = realloc(arr, 2 * n * elem);
    if (grown != NULL)
        *cap = 2 * n;
    return grown;
}

static int more_tokens(scan *c)
{
    tgt_json_token *t = grow_array(c->tok, &c->cap_tok, sizeof(*t));
    if (t == NULL)
        return tgt_error_nomem(c->err);
    c->tok = c->p->tokens = t;
    c->p->cap_tokens = c->cap_tok;
    return 0;
}

static int more_stack(scan *c)
{
    size_t *st = grow_array(c->stack, &c->cap_stack, sizeof(*st));
    if (st == NULL)
        return tgt_error_nomem(c->err);
    c->stack = c->p->stack = st;
    c->p->cap_stack = c->cap_stack;
    return 0;
}

/* Appends a token unless inside a skipped array. */
static int emit(scan *c, tgt_json_type type, unsigned flags, size_t start, size_t len)
{
    if (c->quiet)
        return 0;
    if (c->n_tok == c->cap_tok && more_tokens(c) != 0)
        return -1;
    tgt_json_token *t = &c->tok[c->n_tok++];
    t->type = (uint8_t)type;
    t->flags = (uint8_t)flags;
    t->size = 0;
    t->start = start;
    t->len = len;
    t->end = c->n_tok;
    return 0;
}

static int parse_string(scan *c)
{
    unsigned flags = 0;
    size_t close = scan_string(c->s, c->len, c->pos, &flags, c->err);
    if (close == FAILED)
        return -1;
    size_t start = c->pos + 1;
    c->pos = close + 1;
    return emit(c, TGT_JSON_STRING, flags, start, close - start);
}

static int parse_number(scan *c)
{
    unsigned flags = 0;
    size_t end = scan_number(c->s, c->len, c->pos, &flags, c->err);
    if (end == FAILED)
        return -1;
    size_t start = c->pos;
    c->pos = end;
    return emit(c, TGT_JSON_NUMBER, flags, start, end - start);
}

/* The literal word[0..n) must stand at c->pos. */
static int expect_word(scan *c, const char *word, size_t n)
{
    if (c->len - c->pos >= n && memcmp(c->s + c->pos, word, n) == 0)
        return 0;
    return tgt_error_set(c->err, TGT_ERR_INPUT,
                         "invalid JSON at column %zu: invalid literal (expected '%s')", c->pos + 1,
                         word);
}

static int parse_literal(scan *c, const char *word, size_t n, tgt_json_type type)
{
    if (expect_word(c, word, n) != 0)
        return -1;
    size_t start = c->pos;
    c->pos += n;
    return emit(c, type, 0, start, n);
}

/* Marks the innermost container that has a token as holding a non-finite
 * number; close_container() carries the mark outwards.  Inside an array
 * whose items get no tokens that is the skipped array's own token. */
static void mark_nonfinite(scan *c)
{
    if (c->depth == 0)
        return; /* the whole document is the number */
    size_t holder = c->quiet ? c->quiet - 1 : c->depth - 1;
    c->tok[c->stack[holder] >> 1].flags |= TGT_JSON_NONFINITE;
}

/* NaN, Infinity or -Infinity at c->pos: the bare tokens Python's json.dumps
 * writes for non-finite floats.  Only these spellings; anything else that
 * starts like them is an invalid literal. */
static int parse_nonfinite(scan *c)
{
    static const char *const words[] = {"NaN", "Infinity", "-Infinity"};
    const char *word = words[c->s[c->pos] == 'N' ? 0 : c->s[c->pos] == 'I' ? 1 : 2];
    size_t n = strlen(word);
    if (expect_word(c, word, n) != 0)
        return -1;
    size_t start = c->pos;
    c->pos += n;
    mark_nonfinite(c);
    return emit(c, TGT_JSON_NUMBER, TGT_JSON_NONFINITE, start, n);
}

/* s[pos] is '[' or '{'.  The token's len and end are filled in on close. */
static int open_container(scan *c, tgt_json_type type)
{
    size_t idx = c->quiet ? NO_TOKEN : c->n_tok;
    if (emit(c, type, 0, c->pos, 0) != 0)
        return -1;
    if (c->depth == c->cap_stack && more_stack(c) != 0)
        return -1;
    c->stack[c->depth++] = idx << 1 | (type == TGT_JSON_OBJECT ? STACK_OBJECT : 0);
    if (type == TGT_JSON_ARRAY && c->skip_items && !c->quiet)
        c->quiet = c->depth;
    c->pos = skip_ws(c->s, c->len, c->pos + 1);
    return 0;
}

/* The container holds at least one item: size starts at 1, each comma adds 1. */
static void first_item(scan *c)
{
    size_t idx = c->stack[c->depth - 1] >> 1;
    if (idx != NO_TOKEN)
        c->tok[idx].size = 1;
}

static int next_item(scan *c)
{
    size_t idx = c->stack[c->depth - 1] >> 1;
    if (idx != NO_TOKEN && ++c->tok[idx].size == 0)
        return fail(c->err, c->pos, "more than 4294967295 items in one array or object");
    return 0;
}

/* s[pos] is the matching closing bracket. */
static void close_container(scan *c)
{
    size_t idx = c->stack[--c->depth] >> 1;
    if (idx != NO_TOKEN) {
        tgt_json_token *t = &c->tok[idx];
        t->len = c->pos + 1 - t->start;
        t->end = c->n_tok;
        /* a container with a token sits in one that has a token too */
        if ((t->flags & TGT_JSON_NONFINITE) && c->depth > 0)
            c->tok[c->stack[c->depth - 1] >> 1].flags |= TGT_JSON_NONFINITE;
    }
    if (c->quiet > c->depth)
        c->quiet = 0;
    c->pos++;
}

/* At c->pos (blanks skipped) an object key starts; consumes it and the ':'. */
static int parse_key(scan *c)
{
    if (c->pos >= c->len || c->s[c->pos] != '"')
        return fail(c->err, c->pos, "expected a string as object key");
    if (parse_string(c) != 0)
        return -1;
    c->pos = skip_ws(c->s, c->len, c->pos);
    if (c->pos >= c->len || c->s[c->pos] != ':')
        return fail(c->err, c->pos, "expected ':' after object key");
    c->pos++;
    return 0;
}

/* Where the state machine goes after a value or a bracket. */
enum next { NEXT_VALUE, NEXT_KEY, NEXT_AFTER, NEXT_CLOSE, NEXT_DONE, NEXT_ERROR };

/* One value starting at c->pos (blanks not yet skipped). */
static enum next parse_value(scan *c)
{
    c->pos = skip_ws(c->s, c->len, c->pos);
    if (c->pos >= c->len) {
        fail(c->err, c->pos, "unexpected end of input, expected a value");
        return NEXT_ERROR;
    }
    int rc;
    switch (c->s[c->pos]) {
    case '"':
        rc = parse_string(c);
        break;
    case '{':
    case '[': {
        int obj = c->s[c->pos] == '{';
        if (open_container(c, obj ? TGT_JSON_OBJECT : TGT_JSON_ARRAY) != 0)
            return NEXT_ERROR;
        if (c->pos < c->len && c->s[c->pos] == (obj ? '}' : ']'))
            return NEXT_CLOSE;
        first_item(c);
        return obj ? NEXT_KEY : NEXT_VALUE;
    }
    case 'N':
    case 'I':
        rc = parse_nonfinite(c);
        break;
    case '-':
        if (c->pos + 1 < c->len && c->s[c->pos + 1] == 'I') {
            rc = parse_nonfinite(c);
            break;
        }
        /* fall through */
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        rc = parse_number(c);
        break;
    case 't':
        rc = parse_literal(c, "true", 4, TGT_JSON_TRUE);
        break;
    case 'f':
        rc = parse_literal(c, "false", 5, TGT_JSON_FALSE);
        break;
    case 'n':
        rc = parse_literal(c, "null", 4, TGT_JSON_NULL);
        break;
    default:
        fail_byte(c->err, c->pos, c->s[c->pos]);
        return NEXT_ERROR;
    }
    return rc == 0 ? NEXT_AFTER : NEXT_ERROR;
}

/* After a complete value: a comma, the closing bracket, or the end. */
static enum next after_value(scan *c)
{
    c->pos = skip_ws(c->s, c->len, c->pos);
    if (c->depth == 0) {
        if (c->pos == c->len)
            return NEXT_DONE;
        fail(c->err, c->pos, "trailing characters after the JSON value");
        return NEXT_ERROR;
    }
    int obj = (c->stack[c->depth - 1] & STACK_OBJECT) != 0;
    if (c->pos < c->len) {
        unsigned char ch = c->s[c->pos];
        if (ch == ',') {
            c->pos++;
            if (next_item(c) != 0)
                return NEXT_ERROR;
            return obj ? NEXT_KEY : NEXT_VALUE;
        }
        if (ch == (obj ? '}' : ']'))
            return NEXT_CLOSE;
    }
    fail(c->err, c->pos,
         obj ? "expected ',' or '}' after object member"
             : "expected ',' or ']' after array element");
    return NEXT_ERROR;
}

/* The whole document as a loop over states instead of recursion: what a
 * nested value needs to remember lives on c->stack, so depth costs memory
 * only. */
static int run(scan *c)
{
    enum next state = NEXT_VALUE;
    for (;;) {
        switch (state) {
        case NEXT_VALUE:
            state = parse_value(c);
            break;
        case NEXT_KEY:
            c->pos = skip_ws(c->s, c->len, c->pos);
            state = parse_key(c) == 0 ? NEXT_VALUE : NEXT_ERROR;
            break;
        case NEXT_CLOSE:
            close_container(c);
            state = after_value(c);
            break;
        case NEXT_AFTER:
            state = after_value(c);
            break;
        case NEXT_DONE:
            return 0;
        case NEXT_ERROR:
            return -1;
        }
    }
}

void tgt_json_parser_init(tgt_json_parser *p)
{
    memset(p, 0, sizeof(*p));
}

void tgt_json_parser_deinit(tgt_json_parser *p)
{
    free(p->tokens);
    free(p->stack);
    tgt_json_parser_init(p);
}

int tgt_json_parse(tgt_json_parser *p, const char *text, size_t len, tgt_error *err)
{
    scan c = {
        .s = (const unsigned char *)text,
        .len = len,
        .tok = p->tokens,
        .cap_tok = p->cap_tokens,
        .stack = p->stack,
        .cap_stack = p->cap_stack,
        .skip_items = p->skip_array_items,
        .p = p,
        .err = err,
    };
    p->n_tokens = 0;
    c.pos = skip_ws(c.s, len, 0);
    if (c.pos >= len)
        return fail(err, c.pos, "empty input");
    if (run(&c) != 0)
        return -1;
    p->n_tokens = c.n_tok;
    return 0;
}

/* Writes code point u as UTF-8 to d; returns the byte count. */
static size_t put_utf8(unsigned long u, unsigned char *d)
{
    if (u < 0x80) {
        d[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        d[0] = (unsigned char)(0xC0 | u >> 6);
        d[1] = (unsigned char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        d[0] = (unsigned char)(0xE0 | u >> 12);
        d[1] = (unsigned char)(0x80 | (u >> 6 & 0x3F));
        d[2] = (unsigned char)(0x80 | (u & 0x3F));
        return 3;
    }
    d[0] = (unsigned char)(0xF0 | u >> 18);
    d[1] = (unsigned char)(0x80 | (u >> 12 & 0x3F));
    d[2] = (unsigned char)(0x80 | (u >> 6 & 0x3F));
    d[3] = (unsigned char)(0x80 | (u & 0x3F));
    return 4;
}

/* The byte a one-letter escape stands for ('"', '\\' and '/' stand for
 * themselves). */
static unsigned char simple_escape(unsigned char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return c;
    }
}

/* e[0] is a backslash of an escape that tgt_json_parse() accepted.  Writes its
 * UTF-8 form (at most 4 bytes, never more than the escape's own length) to d,
 * stores the byte count in *n_out and returns the escape's length. */
static size_t unescape(const unsigned char *e, size_t avail, unsigned char *d, size_t *n_out,
                       size_t *nul_count)
{
    if (e[1] != 'u') {
        d[0] = simple_escape(e[1]);
        *n_out = 1;
        return 2;
    }
    unsigned long u = (unsigned long)hex4(e, avail, 2);
    size_t used = 6;
    if (is_high_surrogate((long)u)) {
        unsigned long lo = (unsigned long)hex4(e, avail, 8);
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    } else if (u == 0) {
        u = 0xFFFD; /* PostgreSQL text cannot hold NUL */
        if (nul_count != NULL)
            ++*nul_count;
    }
    *n_out = put_utf8(u, d);
    return used;
}

void tgt_json_decode_string(const char *raw, size_t len, tgt_sbuf *out, size_t *nul_count)
{
    const unsigned char *s = (const unsigned char *)raw;
    const unsigned char *bs = memchr(s, '\\', len);
    if (bs == NULL) {
        tgt_sbuf_append(out, raw, len);
        return;
    }
    /* Every escape decodes to no more bytes than it occupies, so len bytes
     * of room are enough and the loop writes straight into the buffer. */
    if (tgt_sbuf_reserve(out, len) != 0)
        return;
    unsigned char *d = (unsigned char *)out->data + out->len;
    size_t i = 0;
    while (bs != NULL) {
        size_t run = (size_t)(bs - (s + i)), n;
        memcpy(d, s + i, run);
        d += run;
        i += run;
        i += unescape(s + i, len - i, d, &n, nul_count);
        d += n;
        bs = i < len ? memchr(s + i, '\\', len - i) : NULL;
    }
    memcpy(d, s + i, len - i);
    d += len - i;
    out->len = (size_t)((char *)d - out->data);
    out->data[out->len] = '\0';
}

int tgt_json_string_equals(const char *raw, size_t len, unsigned flags, const char *s, size_t n)
{
    if (!(flags & TGT_JSON_ESCAPED))
        return len == n && memcmp(raw, s, n) == 0;
    const unsigned char *r = (const unsigned char *)raw;
    size_t i = 0, j = 0;
    while (i < len) {
        const unsigned char *bs = memchr(r + i, '\\', len - i);
        size_t run = bs != NULL ? (size_t)(bs - (r + i)) : len - i;
        if (n - j < run || memcmp(r + i, s + j, run) != 0)
            return 0;
        i += run;
        j += run;
        if (bs == NULL)
            break;
        unsigned char buf[4];
        size_t k;
        i += unescape(r + i, len - i, buf, &k, NULL);
        if (n - j < k || memcmp(buf, s + j, k) != 0)
            return 0;
        j += k;
    }
    return j == n;
}

static int key_is(const tgt_json_token *k, const char *text, const char *key, size_t keylen)
{
    if (!(k->flags & TGT_JSON_ESCAPED))
        return k->len == keylen && tgt_bytes_equal(text + k->start, key, keylen);
    return tgt_json_string_equals(text + k->start, k->len, k->flags, key, keylen);
}

long tgt_json_object_get(const tgt_json_parser *p, const char *text, size_t obj, const char *key,
                         size_t keylen)
{
    if (obj >= p->n_tokens || p->tokens[obj].type != TGT_JSON_OBJECT)
        return -1;
    long found = -1;
    size_t end = p->tokens[obj].end;
    /* Keys sit at obj + 1 and then one past each value's subtree; the scan
     * runs to the end so that a later duplicate replaces an earlier one. */
    for (size_t i = obj + 1; i < end; i = p->tokens[i + 1].end) {
        if (key_is(&p->tokens[i], text, key, keylen))
            found = (long)(i + 1);
    }
    return found;
}
