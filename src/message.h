/*
 * message.h - one input line -> one Singer message envelope.
 *
 * Tokenizes the line (json.h) and picks out the envelope fields; the
 * payload stays as tokens (RECORD, STATE) for the hot path, or is parsed
 * with jansson by the caller (SCHEMA, rare).  Message types are compared
 * case-insensitively.  Fields the target does not use (bookmark_properties,
 * ...) are ignored.
 */
#ifndef TGT_MESSAGE_H
#define TGT_MESSAGE_H

#include <stddef.h>

#include "error.h"
#include "json.h"
#include "sbuf.h"

typedef enum tgt_message_type {
    TGT_MSG_SCHEMA,
    TGT_MSG_RECORD,
    TGT_MSG_STATE,
    TGT_MSG_ACTIVATE_VERSION,
    TGT_MSG_BATCH
} tgt_message_type;

typedef struct tgt_message {
    tgt_message_type type;
    const char *stream; /* decoded stream name (borrowed from the line or the scratch) */
    size_t stream_len;
    long record;         /* RECORD: token of the record object */
    long schema;         /* SCHEMA: token of the schema object */
    long value;          /* STATE: token of the value */
    long version;        /* RECORD / ACTIVATE_VERSION: token of "version", or -1 */
    long time_extracted; /* RECORD: token of "time_extracted", or -1 */
} tgt_message;

/* Parses line[0..len) with p.  Errors (TGT_ERR_INPUT) say what is wrong;
 * the caller adds the input line.  `scratch` holds a decoded stream name
 * when the name has escapes. */
int tgt_message_parse(tgt_json_parser *p, const char *line, size_t len, tgt_message *m,
                      tgt_sbuf *scratch, tgt_error *err);

const char *tgt_message_type_name(tgt_message_type type);

#endif
