/*
 * log.c - stderr logger.  Each message is formatted into one buffer and
 * written with a single fputs so lines from a future second thread do not
 * interleave mid-line.  Every line passes through tgt_log_escape() here, the
 * one place all stderr text goes through, so a stream, property or schema
 * name from the input can never start a line of its own (a forged
 * "METRIC:") or send terminal escape sequences, whichever message it is in.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static tgt_log_level min_level = TGT_LOG_INFO;

void tgt_log_set_level(tgt_log_level min)
{
    min_level = min;
}

int tgt_log_parse_level(const char *name, tgt_log_level *out)
{
    static const struct {
        const char *name;
        tgt_log_level level;
    } names[] = {{"debug", TGT_LOG_DEBUG}, {"info", TGT_LOG_INFO},     {"warning", TGT_LOG_WARN},
                 {"warn", TGT_LOG_WARN},   {"error", TGT_LOG_ERROR}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

int tgt_log_enabled(tgt_log_level level)
{
    return level >= min_level;
}

static const char *level_name(tgt_log_level level)
{
    switch (level) {
    case TGT_LOG_DEBUG:
        return "debug";
    case TGT_LOG_INFO:
        return "info";
    case TGT_LOG_WARN:
        return "warning";
    case TGT_LOG_ERROR:
        return "error";
    }
    return "?";
}

/* Escapes for the C0 controls with a short form; the others are \xNN. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

size_t tgt_log_escape(char *dst, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)src; *p != '\0'; p++) {
        char esc[8];
        size_t len = 0;
        if (*p < 0x20 || *p == 0x7f) {
            esc[len++] = '\\';
            if (short_escape(*p) != 0) {
                esc[len++] = short_escape(*p);
            } else {
                esc[len++] = 'x';
                esc[len++] = hex[*p >> 4];
                esc[len++] = hex[*p & 0xf];
            }
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* U+0080-U+009F in UTF-8: C1 controls, e.g. U+009B (CSI) */
            memcpy(esc, "\\u00", 4);
            len = 4;
            esc[len++] = hex[p[1] >> 4];
            esc[len++] = hex[p[1] & 0xf];
            p++;
        } else {
            esc[len++] = (char)*p;
        }
        if (n + len >= cap)
            break; /* cut before an escape rather than through it */
        memcpy(dst + n, esc, len);
        n += len;
    }
    dst[n] = '\0';
    return n;
}

/* Writes text (already formatted) escaped, plus a newline, in one fputs. */
static void write_line(const char *text)
{
    char line[8192];
    size_t len = tgt_log_escape(line, sizeof(line) - 1, text);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void tgt_log(tgt_log_level level, const char *fmt, ...)
{
    if (!tgt_log_enabled(level))
        return;
    char text[4096];
    int head = snprintf(text, sizeof(text), "target-pg: %s: ", level_name(level));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + head, sizeof(text) - (size_t)head, fmt, ap);
    va_end(ap);
    write_line(text);
}

void tgt_log_print_line(const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    write_line(text);
}

void tgt_log_metric(const char *json)
{
    fprintf(stderr, "METRIC: %s\n", json);
}
