/*
 * log.c - stderr logger.  Each message is formatted into one buffer and
 * written with a single fputs so lines from a future second thread do not
 * interleave mid-line.
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

void tgt_log(tgt_log_level level, const char *fmt, ...)
{
    if (!tgt_log_enabled(level))
        return;
    char line[4096];
    int head = snprintf(line, sizeof(line), "target-pg: %s: ", level_name(level));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void tgt_log_metric(const char *json)
{
    fprintf(stderr, "METRIC: %s\n", json);
}
