/*
 * transform.h - the `transformations` setting: pseudonymising rules in
 * pipelinewise-transform-field's format, applied to every RECORD before it
 * is stored anywhere (the warehouse, the replay spool, a dead letter, an
 * error message, a log line or a METRIC).
 *
 * A rule: {"tap_stream_name": "users", "field_id": "email", "type": "HMAC",
 * "field_paths": ["a/b"], "when": [{"column": "country", "equals": "DE"},
 * {"column": "meta", "field_path": "k/v", "regex_match": "^x"}]}.  The
 * types and what they do to a value are transform_value.h's; here: which
 * values a rule reaches (conditions, nested paths), the SCHEMA a rule
 * implies (a DROP removes the property, a hashing type makes it a string),
 * and the record rewritten in place of the original line, so that nothing
 * downstream ever sees the clear value.
 *
 * Ownership: a tgt_transform owns its rules, its key copy and the buffers
 * of the last rewritten record; the stream handles it returns are its own
 * and live as long as it does.  Not thread-safe.  Library code: errors
 * through tgt_error, the end-of-run warnings through log.h.
 */
#ifndef TGT_TRANSFORM_H
#define TGT_TRANSFORM_H

#include <stddef.h>

#include <jansson.h>

#include "error.h"
#include "json.h"
#include "message.h"

typedef struct tgt_transform tgt_transform;
typedef struct tgt_transform_stream tgt_transform_stream;

/* Reads the rules from rules_json (the setting's JSON array text; NULL: no
 * rules, *out = NULL) with the HMAC key `key` (NULL or empty: none; copied).
 * Errors are TGT_ERR_USAGE naming the rule: not an array of objects, a
 * missing or non-string tap_stream_name / field_id / type, an unknown type,
 * an HMAC type without a key, a malformed `when` (no column, neither equals
 * nor regex_match, a regex_match that does not compile) or field_paths, a
 * DROP with a `when`.  The caller frees *out with tgt_transform_free. */
int tgt_transform_new(const char *rules_json, const char *key, tgt_transform **out, tgt_error *err);

void tgt_transform_free(tgt_transform *t);

/* The rules for stream name[0..len) (borrowed from t), or NULL when t is
 * NULL or no rule names the stream.  Marks the stream as seen. */
tgt_transform_stream *tgt_transform_find_stream(tgt_transform *t, const char *name, size_t len);

/* Rewrites the SCHEMA message `root` (its "schema") for the rules of ts: a
 * DROP removes the property (and its "required" entry); a type that makes
 * strings (HASH, HMAC, masks) turns the property into {"type": ["string",
 * "null"]}; MASK-NUMBER into an integer unless the property already takes a
 * number or plain string.  A DROP of a key property is a TGT_ERR_USAGE
 * error. */
int tgt_transform_schema(tgt_transform_stream *ts, json_t *root, tgt_error *err);

/* The RECORD after its rules. */
typedef struct tgt_transformed {
    const tgt_json_parser *p;
    const char *line;
    size_t len;
    const tgt_message *msg;
} tgt_transformed;

/* Applies the rules of ts to the RECORD line[0..len) parsed by p as msg.
 * Returns 0 when no rule changed it (*out holds the input), 1 when *out is
 * the rewritten line, parsed (borrowed from t, valid until the next call),
 * -1 with err on allocation failure. */
int tgt_transform_record(tgt_transform *t, tgt_transform_stream *ts, const tgt_json_parser *p,
                         const char *line, size_t len, const tgt_message *msg, tgt_transformed *out,
                         tgt_error *err);

/* Logs, once at the end of a run, a warning per rule whose stream or
 * property never appeared and per rule that turned values it could not
 * transform into NULL (counts only, never values).  NULL t: nothing. */
void tgt_transform_report(const tgt_transform *t);

#endif
