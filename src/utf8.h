/*
 * utf8.h - the two UTF-8 facts the rest of the code needs: where a
 * character boundary is, and how long a well-formed sequence is.  Pure
 * functions on bytes, no allocation, no dependencies; the one place that
 * knows UTF-8's shape (the JSON reader validates with it, names and
 * messages are cut with it, the dead-letter writer repairs with it).
 */
#ifndef TGT_UTF8_H
#define TGT_UTF8_H

#include <stddef.h>

/* The largest prefix length <= limit of s[0..len) that does not cut a
 * character in two (len itself when len <= limit).  s is assumed to be
 * UTF-8; a stray continuation byte run is treated as one character. */
size_t tgt_utf8_cut(const char *s, size_t len, size_t limit);

/* Length (1-4) of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0
 * when there is none: Unicode table 3-7, so no overlong forms, no
 * surrogates, nothing past U+10FFFF, no sequence cut by n. */
size_t tgt_utf8_sequence_len(const unsigned char *s, size_t n);

#endif
