/*
 * log.h - the one logger.  Everything except STATE lines goes to stderr
 * through here, prefixed "target-pg: <level>: ".  METRIC lines use
 * tgt_log_metric() so they keep the Singer SDK "METRIC: {...}" form.
 * Record values are only ever logged at debug; passwords never.  Control
 * characters in a message are escaped (tgt_log_escape), so each message is
 * exactly one line whatever names from the input it quotes.
 *
 * With the json format (setting log_format) every line is instead one JSON
 * object in the Singer SDK's structured-logging form: {"level", "ts", "pid",
 * "logger_name", "app_name", "stream_name", "message", "extra"}, METRIC
 * lines as {"message": "METRIC", "metric_info": {...}}, so an orchestrator
 * can read levels and fields without parsing prose.
 */
#ifndef TGT_LOG_H
#define TGT_LOG_H

#include <stddef.h>

typedef enum tgt_log_level {
    TGT_LOG_DEBUG = 0,
    TGT_LOG_INFO,
    TGT_LOG_WARN,
    TGT_LOG_ERROR
} tgt_log_level;

typedef enum tgt_log_format {
    TGT_LOG_TEXT = 0, /* "target-pg: <level>: <message>" */
    TGT_LOG_JSON      /* one JSON object per line */
} tgt_log_format;

/* Messages below `min` are dropped.  Default: TGT_LOG_INFO. */
void tgt_log_set_level(tgt_log_level min);

/* Parses "debug", "info", "warning"/"warn", "error"; -1 when unknown. */
int tgt_log_parse_level(const char *name, tgt_log_level *out);

int tgt_log_enabled(tgt_log_level level);

/* Default: TGT_LOG_TEXT (also for every line written before it is set). */
void tgt_log_set_format(tgt_log_format format);
tgt_log_format tgt_log_get_format(void);

/* Parses "text", "json"; -1 when unknown. */
int tgt_log_parse_format(const char *name, tgt_log_format *out);

/* One message with named fields, whatever the level: in json format one
 * object whose "extra" holds the fields; in text format the message line
 * and then one "<KEY>: <value>" line per field.  `fields` is borrowed:
 * name, value pairs ending in a NULL name; pairs with an empty value are
 * left out.  For main.c's error report. */
void tgt_log_fields(tgt_log_level level, const char *message, const char *const *fields);

void tgt_log(tgt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the formatted text as one line to stderr, whatever the level and
 * without a prefix, escaped like tgt_log(): for main.c's error report. */
void tgt_log_print_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst (at most cap bytes with the NUL; cap > 0) with C0
 * controls and DEL written as \n, \r, \t or \xNN and the UTF-8 C1
 * controls U+0080-U+009F as \u00NN; other bytes are copied.  Cut before an
 * escape that does not fit.  Returns the length written. */
size_t tgt_log_escape(char *dst, size_t cap, const char *src);

/* Writes "METRIC: <json>\n" to stderr; json is a complete JSON object. */
void tgt_log_metric(const char *json);

#endif
