/*
 * log.c - stderr logger.  Each message is formatted into one buffer and
 * written with a single fputs so lines from a future second thread do not
 * interleave mid-line.  Every line passes through tgt_log_escape() here, the
 * one place all stderr text goes through, so a stream, property or schema
 * name from the input can never start a line of its own (a forged
 * "METRIC:") or send terminal escape sequences, whichever message it is in.
 * The json format escapes the text the same way before it becomes a JSON
 * string, so both formats show a name alike.  A JSON line that cannot be
 * built (out of memory) is written as text rather than lost.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define APP_NAME "target-pg"

static tgt_log_level min_level = TGT_LOG_INFO;
static tgt_log_format log_format = TGT_LOG_TEXT;

void tgt_log_set_format(tgt_log_format format)
{
    log_format = format;
}

tgt_log_format tgt_log_get_format(void)
{
    return log_format;
}

int tgt_log_parse_format(const char *name, tgt_log_format *out)
{
    if (strcasecmp(name, "text") == 0)
        *out = TGT_LOG_TEXT;
    else if (strcasecmp(name, "json") == 0)
        *out = TGT_LOG_JSON;
    else
        return -1;
    return 0;
}

void tgt_log_set_level(tgt_log_level min)
{
    min_level = min;
}

int tgt_log_parse_level(const char *name, tgt_log_level *out)
{
    static const struct {
        const char *name;
        tgt_log_level level;
    } names[] = {{"debug", TGT_LOG_DEBUG},
                 {"info", TGT_LOG_INFO},
                 {"warning", TGT_LOG_WARN},
                 {"warn", TGT_LOG_WARN},
                 {"error", TGT_LOG_ERROR}};
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

/* The fields every structured line starts with, as the SDK's
 * StructuredFormatter writes them; NULL when out of memory. */
static json_t *structured_head(tgt_log_level level, const char *message, const char *stream)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char escaped[4096];
    tgt_log_escape(escaped, sizeof(escaped), message);
    return json_pack("{s:s, s:f, s:I, s:s, s:s, s:s?, s:s}", "level", level_name(level), "ts",
                     (double)now.tv_sec + (double)now.tv_nsec / 1e9, "pid", (json_int_t)getpid(),
                     "logger_name", APP_NAME, "app_name", APP_NAME, "stream_name", stream,
                     "message", escaped);
}

/* Writes obj (taken) as one compact JSON line; 0, or -1 when it could not
 * be built and nothing was written. */
static int write_json(json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(obj);
    if (text == NULL)
        return -1;
    fprintf(stderr, "%s\n", text);
    free(text);
    return 0;
}

static void emit(tgt_log_level level, const char *message)
{
    if (log_format == TGT_LOG_JSON) {
        json_t *obj = structured_head(level, message, NULL);
        if (obj != NULL && json_object_set_new(obj, "extra", json_object()) != 0) {
            json_decref(obj);
            obj = NULL;
        }
        if (write_json(obj) == 0)
            return;
    }
    char text[4096 + 32]; /* message up to 4096 bytes, plus the prefix */
    snprintf(text, sizeof(text), "%s: %s: %.4095s", APP_NAME, level_name(level), message);
    write_line(text);
}

void tgt_log(tgt_log_level level, const char *fmt, ...)
{
    if (!tgt_log_enabled(level))
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    emit(level, text);
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

static json_t *fields_object(const char *const *fields)
{
    json_t *extra = json_object();
    for (const char *const *f = fields; extra != NULL && f[0] != NULL; f += 2) {
        if (f[1] == NULL || f[1][0] == '\0')
            continue;
        char escaped[4096];
        tgt_log_escape(escaped, sizeof(escaped), f[1]);
        if (json_object_set_new(extra, f[0], json_string(escaped)) != 0) {
            json_decref(extra);
            return NULL;
        }
    }
    return extra;
}

void tgt_log_fields(tgt_log_level level, const char *message, const char *const *fields)
{
    if (log_format == TGT_LOG_JSON) {
        json_t *obj = structured_head(level, message, NULL);
        json_t *extra = fields_object(fields);
        int bad = obj == NULL || json_object_set_new(obj, "extra", extra) != 0;
        if (bad)
            json_decref(obj);
        else if (write_json(obj) == 0)
            return;
    }
    char text[4096 + 32]; /* message up to 4096 bytes, plus the prefix */
    snprintf(text, sizeof(text), "%s: %s: %.4095s", APP_NAME, level_name(level), message);
    write_line(text);
    for (const char *const *f = fields; f[0] != NULL; f += 2) {
        if (f[1] != NULL && f[1][0] != '\0')
            tgt_log_print_line("%s: %s", f[0], f[1]);
    }
}

/* METRIC {...} as a structured line: the metric object itself under
 * "metric_info", its stream tag as stream_name. */
static int metric_json(const char *json)
{
    json_t *metric = json_loads(json, 0, NULL);
    const char *stream =
        json_string_value(json_object_get(json_object_get(metric, "tags"), "stream"));
    json_t *obj = metric != NULL ? structured_head(TGT_LOG_INFO, "METRIC", stream) : NULL;
    if (obj == NULL || json_object_set_new(obj, "metric_info", metric) != 0 ||
        json_object_set_new(obj, "extra", json_object()) != 0) {
        if (obj == NULL)
            json_decref(metric);
        json_decref(obj);
        return -1;
    }
    return write_json(obj);
}

void tgt_log_metric(const char *json)
{
    if (log_format == TGT_LOG_JSON && metric_json(json) == 0)
        return;
    fprintf(stderr, "METRIC: %s\n", json);
}
