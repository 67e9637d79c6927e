/*
 * transform_int.h - the rule model shared by transform.c (reading the
 * setting, the SCHEMA, the report) and transform_record.c (rewriting a
 * RECORD).  Private to those two files.
 */
#ifndef TGT_TRANSFORM_INT_H
#define TGT_TRANSFORM_INT_H

#include <regex.h>
#include <stddef.h>

#include "sbuf.h"
#include "transform.h"
#include "transform_value.h"

/* A path through nested objects ("a/b": a, then b), as dpath reads it. */
typedef struct tr_path {
    char **parts; /* owned */
    size_t *lens;
    size_t n;
    char *text; /* owned: as written, for messages */
} tr_path;

/* One `when` condition: the record's property `column` (or the value at
 * `path` inside it) equals a JSON value or matches a regular expression. */
typedef struct tr_cond {
    char *column; /* owned */
    size_t column_len;
    size_t column_slot; /* index of column in its stream's names */
    tr_path path;       /* n == 0: the property itself */
    int is_regex;
    regex_t re;            /* is_regex */
    tgt_json_type eq_type; /* else: the value to equal */
    char *eq_text;         /* owned: a string's bytes, or a number's text */
    size_t eq_len;
    double eq_number;
} tr_cond;

typedef struct tr_rule {
    size_t index; /* 1-based position in the setting, for messages */
    char *stream; /* owned */
    char *field;  /* owned */
    size_t field_len;
    size_t field_slot; /* index of field in its stream's names */
    tgt_transform_kind kind;
    int n;          /* the digit of the -n types */
    tr_path *paths; /* owned: field_paths */
    size_t n_paths;
    tr_cond *conds; /* owned */
    size_t n_conds;
    /* what the run saw, for tgt_transform_report */
    int stream_seen;
    int field_seen;
    unsigned long failed;       /* values that became NULL (MASK-DATE of a non-date) */
    unsigned long path_missing; /* records whose object lacked a field_paths entry */
} tr_rule;

struct tgt_transform_stream {
    char *name;      /* borrowed from its first rule */
    tr_rule **rules; /* owned array, config order */
    size_t n_rules;
    /* The record properties its rules read (fields and condition columns),
     * each once, looked up in one pass over a record (borrowed strings). */
    const char **names; /* owned array */
    size_t *name_lens;  /* owned */
    size_t n_names;
};

/* An edit of the record being rewritten: the value token `tok` replaced or
 * (its member) removed. */
typedef enum tr_edit_kind { TR_REMOVED, TR_NULL, TR_NUMBER, TR_STRING } tr_edit_kind;

typedef struct tr_edit {
    size_t tok;
    tr_edit_kind kind;
    size_t off; /* the output bytes in the arena */
    size_t len;
} tr_edit;

struct tgt_transform {
    tr_rule *rules; /* owned */
    size_t n_rules;
    tgt_transform_stream *streams; /* owned */
    size_t n_streams;
    tgt_hmac_sha256_key key; /* pseudonymization_key, prepared (has_key) */
    int has_key;
    /* the record being rewritten (reused) */
    tr_edit *edits;
    size_t n_edits, cap_edits;
    size_t *keys; /* scratch of cap_edits: what each edit adds to the line (splice) */
    long *slots;  /* per name of the stream being rewritten: its value token, or -1 */
    size_t cap_slots;
    tgt_sbuf arena;         /* edit outputs */
    tgt_sbuf input;         /* the value a rule reads, decoded */
    tgt_sbuf line;          /* the rewritten line */
    tgt_json_parser parser; /* the tokens of the rewritten line */
    tgt_message msg;
};

#endif
