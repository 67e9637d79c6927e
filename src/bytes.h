/*
 * bytes.h - equality of short byte ranges without a call.
 *
 * Property names are compared once per key of every record (the plan's
 * guess in record.c, envelope fields in json.c); they are mostly under 16
 * bytes, where libc's memcmp costs more in the call and its size dispatch
 * than in comparing.  Header only: nothing here allocates or fails.
 */
#ifndef TGT_BYTES_H
#define TGT_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 when a[0..n) and b[0..n) hold the same bytes, else 0.  Both ranges are
 * borrowed and must be readable for n bytes; nothing past them is read (the
 * two loads of each width overlap instead). */
static inline int tgt_bytes_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    if (n > 16)
        return memcmp(x, y, n) == 0;
    if (n >= 8) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, x, 8);
        memcpy(&y0, y, 8);
        memcpy(&x1, x + n - 8, 8);
        memcpy(&y1, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, x, 4);
        memcpy(&y0, y, 4);
        memcpy(&x1, x + n - 4, 4);
        memcpy(&y1, y + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

#endif
