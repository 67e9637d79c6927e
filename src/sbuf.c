/*
 * sbuf.c - growable string builder.  Growth doubles the capacity so appends
 * are amortised O(1); the hot COPY path relies on tgt_sbuf_reserve() followed
 * by direct writes into data + len.
 */
#include "sbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tgt_sbuf_init(tgt_sbuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->broken = 0;
}

void tgt_sbuf_deinit(tgt_sbuf *sb)
{
    free(sb->data);
    tgt_sbuf_init(sb);
}

void tgt_sbuf_reset(tgt_sbuf *sb)
{
    sb->len = 0;
    sb->broken = 0;
    if (sb->data != NULL)
        sb->data[0] = '\0';
}

int tgt_sbuf_grow(tgt_sbuf *sb, size_t extra)
{
    if (sb->broken)
        return -1;
    if (extra >= SIZE_MAX - sb->len - 1) {
        sb->broken = 1;
        return -1;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *grown = realloc(sb->data, cap);
    if (grown == NULL) {
        sb->broken = 1;
        return -1;
    }
    sb->data = grown;
    sb->cap = cap;
    return 0;
}

void tgt_sbuf_append_str(tgt_sbuf *sb, const char *s)
{
    tgt_sbuf_append(sb, s, strlen(s));
}

void tgt_sbuf_append_char(tgt_sbuf *sb, char c)
{
    tgt_sbuf_append(sb, &c, 1);
}

void tgt_sbuf_vprintf(tgt_sbuf *sb, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) {
        sb->broken = 1;
        return;
    }
    if (tgt_sbuf_reserve(sb, (size_t)n) != 0)
        return;
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void tgt_sbuf_printf(tgt_sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tgt_sbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

int tgt_sbuf_ok(const tgt_sbuf *sb)
{
    return !sb->broken;
}

const char *tgt_sbuf_str(const tgt_sbuf *sb)
{
    return sb->data != NULL && !sb->broken ? sb->data : "";
}

char *tgt_sbuf_take(tgt_sbuf *sb)
{
    if (sb->broken) {
        tgt_sbuf_deinit(sb);
        return NULL;
    }
    if (sb->data == NULL && tgt_sbuf_reserve(sb, 0) != 0)
        return NULL;
    sb->data[sb->len] = '\0';
    char *out = sb->data;
    tgt_sbuf_init(sb);
    return out;
}
