/*
 * record.h - one RECORD's values routed through the stream's flatten plan
 * and put, checked and typed, through the driver's row writer (row.h),
 * which appends the row to the stream's chunk in the driver's format.
 *
 * Works on the tokens of the already-parsed line (json.h), never on a
 * jansson tree: numbers go out as their exact JSON text, strings as their
 * raw tokens (the encoder decodes and escapes in one pass), arrays and
 * unflattened objects as JSON text.  A property the record does not carry is absent, which a
 * staged row tells apart from an explicit null (the presence mask of
 * driver.h); a null object is null in all its flattened columns, an omitted
 * one absent in all of them.  Each value is checked against the live
 * column's type first, so a bad value is reported with its input line,
 * stream and property rather than as a bulk-load failure of a whole chunk.  On
 * error nothing of the row stays in the chunk.
 */
#ifndef TGT_RECORD_H
#define TGT_RECORD_H

#include <stddef.h>

#include "error.h"
#include "json.h"
#include "row.h"
#include "stream.h"

typedef struct tgt_record_context {
    const char *input_name; /* "stdin" or the file, for messages */
    unsigned long line_no;
    const tgt_row_ops *rows; /* the driver's row writer (borrowed, static) */
    size_t json_max_depth;   /* the driver's caps->json_max_depth: deeper JSON is invalid */
    /* The target's own times: "YYYY-MM-DD HH:MM:SS.ffffff" in UTC. */
    const char *loaded_at; /* the receive time */
    size_t loaded_at_len;
    int staging;       /* append the sequence column */
    tgt_sbuf *scratch; /* reused for decoding escaped keys and values */
    /* For the metadata columns (table.h roles); unused when a table has none. */
    const char *batched_at; /* when the batch began */
    size_t batched_at_len;
    unsigned long long sequence; /* _sdc_sequence of this record */
    long extracted_tok;          /* token of the RECORD's time_extracted, or -1 */
    long version_tok;            /* token of the RECORD's version, or -1 */
} tgt_record_context;

/* Encodes the record object at token `record` of the parsed line `text`.
 * Errors: TGT_ERR_DATA naming line, stream, property and (truncated) value. */
int tgt_record_encode(tgt_stream *s, const tgt_json_parser *p, const char *text, size_t record,
                      const tgt_record_context *ctx, tgt_error *err);

#endif
