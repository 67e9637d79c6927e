/*
 * log.h - the one logger.  Everything except STATE lines goes to stderr
 * through here, prefixed "target-pg: <level>: ".  METRIC lines use
 * tgt_log_metric() so they keep the Singer SDK "METRIC: {...}" form.
 * Record values are only ever logged at debug; passwords never.
 */
#ifndef TGT_LOG_H
#define TGT_LOG_H

typedef enum tgt_log_level {
    TGT_LOG_DEBUG = 0,
    TGT_LOG_INFO,
    TGT_LOG_WARN,
    TGT_LOG_ERROR
} tgt_log_level;

/* Messages below `min` are dropped.  Default: TGT_LOG_INFO. */
void tgt_log_set_level(tgt_log_level min);

/* Parses "debug", "info", "warning"/"warn", "error"; -1 when unknown. */
int tgt_log_parse_level(const char *name, tgt_log_level *out);

int tgt_log_enabled(tgt_log_level level);

void tgt_log(tgt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "METRIC: <json>\n" to stderr; json is a complete JSON object. */
void tgt_log_metric(const char *json);

#endif
