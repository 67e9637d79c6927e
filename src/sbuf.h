/*
 * sbuf.h - a growable byte string that goes "broken" on allocation failure.
 *
 * Appends never fail loudly: when memory runs out the buffer is marked broken
 * and further appends are ignored, so a long builder sequence (an SQL
 * statement, a COPY row) is checked once at the end with tgt_sbuf_ok().  The
 * data is always NUL-terminated when not broken (the NUL is not counted in
 * len).  An sbuf is embedded by value: tgt_sbuf_init / tgt_sbuf_deinit.
 */
#ifndef TGT_SBUF_H
#define TGT_SBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct tgt_sbuf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
    int broken; /* an allocation failed; contents are incomplete */
} tgt_sbuf;

void tgt_sbuf_init(tgt_sbuf *sb);
void tgt_sbuf_deinit(tgt_sbuf *sb);

/* Empties the buffer but keeps its memory (and clears "broken"). */
void tgt_sbuf_reset(tgt_sbuf *sb);

/* The slow half of tgt_sbuf_reserve(): reallocates (or goes broken).  Same
 * contract; call tgt_sbuf_reserve() instead. */
int tgt_sbuf_grow(tgt_sbuf *sb, size_t extra);

/* Makes room for at least `extra` more bytes plus the NUL; 0 or -1 (broken).
 * Inline because the COPY encoders call it for every value: the common case
 * (room left) is one compare instead of a call. */
static inline int tgt_sbuf_reserve(tgt_sbuf *sb, size_t extra)
{
    /* len < cap whenever cap > 0 (the NUL), so this cannot wrap; cap == 0
     * always takes the slow path */
    if (!sb->broken && extra < sb->cap - sb->len)
        return 0;
    return tgt_sbuf_grow(sb, extra);
}

/* Appends n bytes (bytes may be NULL when n is 0); inline for the same
 * reason as tgt_sbuf_reserve(). */
static inline void tgt_sbuf_append(tgt_sbuf *sb, const void *bytes, size_t n)
{
    if (tgt_sbuf_reserve(sb, n) != 0)
        return;
    if (n > 0)
        memcpy(sb->data + sb->len, bytes, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void tgt_sbuf_append_str(tgt_sbuf *sb, const char *s);
void tgt_sbuf_append_char(tgt_sbuf *sb, char c);
void tgt_sbuf_printf(tgt_sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tgt_sbuf_vprintf(tgt_sbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* 1 when every append so far succeeded. */
int tgt_sbuf_ok(const tgt_sbuf *sb);

/* The contents as a C string ("" for an empty buffer); borrowed. */
const char *tgt_sbuf_str(const tgt_sbuf *sb);

/* Hands the heap string to the caller (who frees it) and re-initialises sb.
 * Returns NULL when broken or when allocation of an empty string fails. */
char *tgt_sbuf_take(tgt_sbuf *sb);

#endif
