/*
 * error.c - filling a tgt_error.  See error.h for the "first error wins"
 * rule.  Messages are truncated to the fixed buffers; nothing allocates, so
 * reporting an out-of-memory condition cannot itself fail.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tgt_error_init(tgt_error *err)
{
    memset(err, 0, sizeof(*err));
}

int tgt_error_is_set(const tgt_error *err)
{
    return err->code != TGT_OK;
}

int tgt_error_set(tgt_error *err, tgt_error_code code, const char *fmt, ...)
{
    if (err->code != TGT_OK)
        return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

static void fill_once(char *dst, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void fill_once(char *dst, size_t cap, const char *fmt, va_list ap)
{
    if (dst[0] != '\0')
        return;
    vsnprintf(dst, cap, fmt, ap);
}

void tgt_error_detail(tgt_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill_once(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void tgt_error_hint(tgt_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill_once(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

void tgt_error_where(tgt_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill_once(err->where, sizeof(err->where), fmt, ap);
    va_end(ap);
}

void tgt_error_sqlstate(tgt_error *err, const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5 || err->sqlstate[0] != '\0')
        return;
    memcpy(err->sqlstate, sqlstate, 6);
}

int tgt_error_nomem(tgt_error *err)
{
    return tgt_error_set(err, TGT_ERR_NOMEM, "out of memory");
}

int tgt_error_exit_status(tgt_error_code code)
{
    switch (code) {
    case TGT_OK:
        return 0;
    case TGT_ERR_INPUT:
    case TGT_ERR_DATA:
    case TGT_ERR_LOAD:
    case TGT_ERR_IO:
        return 1;
    case TGT_ERR_USAGE:
        return 2;
    case TGT_ERR_NOMEM:
    case TGT_ERR_INTERNAL:
        return 3;
    case TGT_ERR_INTERRUPTED:
        return 128;
    }
    return 3;
}
