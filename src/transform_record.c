/*
 * transform_record.c - a RECORD line rewritten by its stream's rules (see
 * transform.h).
 *
 * The rules run in their order over the parsed line, as transform-field
 * runs them over the record dict: a rule applies when the record carries
 * its field_id (`if trans.field_id in message.record`) and every condition
 * of its `when` holds, and a later rule sees what an earlier one wrote.
 * Nothing is changed in the line while the rules run: each change is an
 * edit of a value token (replaced or removed), and the conditions and
 * later rules read a value through its edit.  Then the objects that hold
 * an edit are written anew, member by member (untouched members copied as
 * they were), everything else copied whole, and the new line is parsed
 * again, so that the spool, the dead letter and every message below see
 * only the new line.  An object that holds an edit drops the earlier of
 * two members with one name: JSON readers (and the encoder, record.c) take
 * the last, and the earlier one would carry its clear value along.
 */
#include <stdlib.h>
#include <string.h>

#include "transform_int.h"

static tr_edit *find_edit(tgt_transform *t, size_t tok)
{
    for (size_t i = 0; i < t->n_edits; i++)
        if (t->edits[i].tok == tok)
            return &t->edits[i];
    return NULL;
}

/* Records (or replaces) the edit of value token tok. */
static int set_edit(tgt_transform *t, size_t tok, tr_edit_kind kind, size_t off, size_t len,
                    tgt_error *err)
{
    tr_edit *e = find_edit(t, tok);
    if (e == NULL) {
        if (t->n_edits == t->cap_edits) {
            size_t cap = t->cap_edits ? 2 * t->cap_edits : 8;
            tr_edit *grown = realloc(t->edits, cap * sizeof(*grown));
            if (grown == NULL)
                return tgt_error_nomem(err);
            t->edits = grown;
            t->cap_edits = cap;
        }
        e = &t->edits[t->n_edits++];
        e->tok = tok;
    }
    e->kind = kind;
    e->off = off;
    e->len = len;
    return 0;
}

/* Does an edit lie strictly inside the subtree of token tok? */
static int holds_edit(const tgt_transform *t, const tgt_json_parser *p, size_t tok)
{
    for (size_t i = 0; i < t->n_edits; i++)
        if (t->edits[i].tok > tok && t->edits[i].tok < p->tokens[tok].end)
            return 1;
    return 0;
}

/* A JSON value's full text span (strings with their quotes). */
static void span(const tgt_json_token *tk, const char *line, const char **s, size_t *n)
{
    int quoted = tk->type == TGT_JSON_STRING;
    *s = line + tk->start - quoted;
    *n = tk->len + 2 * (size_t)quoted;
}

static void append_json_string(tgt_sbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    tgt_sbuf_append_char(out, '"');
    size_t plain = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        tgt_sbuf_append(out, s + plain, i - plain);
        plain = i + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tgt_sbuf_append(out, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tgt_sbuf_append(out, esc, 6);
        }
    }
    tgt_sbuf_append(out, s + plain, n - plain);
    tgt_sbuf_append_char(out, '"');
}

static void emit(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t tok,
                 tgt_sbuf *out);

/* Is the member whose key is token k overridden by a later member of the
 * same name (which JSON readers take instead)?  m: the member's index,
 * size: the object's member count, next: the token after member m. */
static int overridden(const tgt_json_parser *p, const char *line, size_t obj, size_t k)
{
    const tgt_json_token *key = &p->tokens[k];
    const tgt_json_token *toks = p->tokens;
    for (size_t i = toks[k + 1].end; i < toks[obj].end; i = toks[i + 1].end) {
        const tgt_json_token *other = &toks[i];
        if (!((key->flags | other->flags) & TGT_JSON_ESCAPED)) {
            if (other->len == key->len &&
                memcmp(line + other->start, line + key->start, key->len) == 0)
                return 1;
            continue;
        }
        /* an escaped spelling: compare decoded (rare) */
        tgt_sbuf a;
        tgt_sbuf_init(&a);
        tgt_json_decode_string(line + key->start, key->len, &a, NULL);
        int same = tgt_sbuf_ok(&a) && tgt_json_string_equals(line + other->start, other->len,
                                                             other->flags, a.data, a.len);
        /* out of memory: keep the member (the line stays as the tap sent it) */
        tgt_sbuf_deinit(&a);
        if (same)
            return 1;
    }
    return 0;
}

/* An object holding an edit, written member by member. */
static void emit_object(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t obj,
                        tgt_sbuf *out)
{
    const tgt_json_token *toks = p->tokens;
    int first = 1;
    tgt_sbuf_append_char(out, '{');
    for (size_t k = obj + 1; k < toks[obj].end; k = toks[k + 1].end) {
        const tr_edit *e = find_edit(t, k + 1);
        if ((e != NULL && e->kind == TR_REMOVED) || overridden(p, line, obj, k))
            continue;
        if (!first)
            tgt_sbuf_append_char(out, ',');
        first = 0;
        const char *s;
        size_t n;
        span(&toks[k], line, &s, &n);
        tgt_sbuf_append(out, s, n);
        tgt_sbuf_append_char(out, ':');
        emit(t, p, line, k + 1, out);
    }
    tgt_sbuf_append_char(out, '}');
}

static void emit(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t tok,
                 tgt_sbuf *out)
{
    const tr_edit *e = find_edit(t, tok);
    if (e != NULL) {
        const char *bytes = t->arena.data + e->off;
        switch (e->kind) {
        case TR_REMOVED: /* its member is skipped by emit_object */
        case TR_NULL:
            tgt_sbuf_append_str(out, "null");
            return;
        case TR_NUMBER:
            tgt_sbuf_append(out, bytes, e->len);
            return;
        case TR_STRING:
            append_json_string(out, bytes, e->len);
            return;
        }
    }
    if (p->tokens[tok].type == TGT_JSON_OBJECT && holds_edit(t, p, tok)) {
        emit_object(t, p, line, tok, out);
        return;
    }
    const char *s;
    size_t n;
    span(&p->tokens[tok], line, &s, &n);
    tgt_sbuf_append(out, s, n);
}

/* The current value of token tok (through its edit) into t->input: a
 * string decoded, anything else as JSON text. */
static int read_value(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t tok,
                      tgt_transform_input *in, tgt_error *err)
{
    const tgt_json_token *tk = &p->tokens[tok];
    const tr_edit *e = find_edit(t, tok);
    tgt_sbuf_reset(&t->input);
    if (e != NULL) {
        in->type = e->kind == TR_STRING   ? TGT_JSON_STRING
                   : e->kind == TR_NUMBER ? TGT_JSON_NUMBER
                                          : TGT_JSON_NULL;
        tgt_sbuf_append(&t->input, t->arena.data + e->off, e->len);
    } else if (tk->type == TGT_JSON_STRING) {
        in->type = TGT_JSON_STRING;
        tgt_json_decode_string(line + tk->start, tk->len, &t->input, NULL);
    } else {
        in->type = (tgt_json_type)tk->type;
        emit(t, p, line, tok, &t->input);
    }
    if (!tgt_sbuf_ok(&t->input))
        return tgt_error_nomem(err);
    in->text = tgt_sbuf_str(&t->input);
    in->len = t->input.len;
    return 0;
}

/* The value token of member key[0..len) of object obj, or -1 when the
 * object lacks it (or a rule removed it). */
static long member(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t obj,
                   const char *key, size_t len)
{
    long v = tgt_json_object_get(p, line, obj, key, len);
    if (v < 0)
        return -1;
    const tr_edit *e = find_edit(t, (size_t)v);
    return e != NULL && e->kind == TR_REMOVED ? -1 : v;
}

/* An object as the tap sent it (a rule may have replaced it by a scalar). */
static int is_object(tgt_transform *t, const tgt_json_parser *p, long tok)
{
    return tok >= 0 && p->tokens[tok].type == TGT_JSON_OBJECT && find_edit(t, (size_t)tok) == NULL;
}

/* The value at path inside object value v (dpath's get), or -1. */
static long walk(tgt_transform *t, const tgt_json_parser *p, const char *line, long v,
                 const tr_path *path)
{
    for (size_t i = 0; i < path->n && v >= 0; i++) {
        if (!is_object(t, p, v))
            return -1;
        v = member(t, p, line, (size_t)v, path->parts[i], path->lens[i]);
    }
    return v;
}

static int equals(const tr_cond *c, const tgt_transform_input *in)
{
    if (in->type != c->eq_type)
        return 0;
    switch (c->eq_type) {
    case TGT_JSON_STRING:
        return in->len == c->eq_len && memcmp(in->text, c->eq_text, in->len) == 0;
    case TGT_JSON_NUMBER:
        return strtod(in->text, NULL) == c->eq_number; /* Python: 1 == 1.0 */
    case TGT_JSON_NULL:
    case TGT_JSON_TRUE:
    case TGT_JSON_FALSE:
        return 1;
    case TGT_JSON_ARRAY:
    case TGT_JSON_OBJECT:
        break;
    }
    return 0;
}

/* 1 when condition c holds for the record object root, 0 when not, -1 on
 * allocation failure. */
static int cond_met(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t root,
                    const tr_cond *c, tgt_error *err)
{
    long v = member(t, p, line, root, c->column, c->column_len);
    tgt_transform_input in = {TGT_JSON_STRING, "", 0}; /* record.get(column, "") */
    if (c->path.n > 0) {
        v = v < 0 ? -1 : walk(t, p, line, v, &c->path);
        if (v < 0)
            return 0; /* the path does not exist: not met */
    }
    if (v >= 0 && read_value(t, p, line, (size_t)v, &in, err) != 0)
        return -1;
    if (!c->is_regex)
        return equals(c, &in);
    /* re.search of a non-string raises in transform-field: no transformation */
    return in.type == TGT_JSON_STRING && regexec(&c->re, in.text, 0, NULL, 0) == 0;
}

static int apply(tgt_transform *t, tr_rule *r, const tgt_json_parser *p, const char *line,
                 size_t tok, tgt_error *err)
{
    if (r->kind == TGT_TR_DROP)
        return set_edit(t, tok, TR_REMOVED, 0, 0, err);
    tgt_transform_input in;
    if (read_value(t, p, line, tok, &in, err) != 0)
        return -1;
    size_t off = t->arena.len;
    tgt_transform_result res =
        tgt_transform_value(r->kind, r->n, t->key, t->key_len, &in, &t->arena);
    if (!tgt_sbuf_ok(&t->arena))
        return tgt_error_nomem(err);
    tr_edit_kind kind = TR_NULL;
    switch (res) {
    case TGT_TV_FAILED:
        r->failed++;
        break;
    case TGT_TV_NULL:
        break;
    case TGT_TV_NUMBER:
        kind = TR_NUMBER;
        break;
    case TGT_TV_STRING:
        kind = TR_STRING;
        break;
    }
    return set_edit(t, tok, kind, off, t->arena.len - off, err);
}

static int run_rule(tgt_transform *t, tr_rule *r, const tgt_json_parser *p, const char *line,
                    size_t root, tgt_error *err)
{
    long v = member(t, p, line, root, r->field, r->field_len);
    if (v < 0)
        return 0;
    r->field_seen = 1;
    for (size_t i = 0; i < r->n_conds; i++) {
        int met = cond_met(t, p, line, root, &r->conds[i], err);
        if (met <= 0)
            return met;
    }
    /* field_paths reach into an object; any other value is transformed whole */
    if (r->n_paths == 0 || !is_object(t, p, v))
        return apply(t, r, p, line, (size_t)v, err);
    for (size_t i = 0; i < r->n_paths; i++) {
        long nv = walk(t, p, line, v, &r->paths[i]);
        if (nv < 0)
            r->path_missing++;
        else if (apply(t, r, p, line, (size_t)nv, err) != 0)
            return -1;
    }
    return 0;
}

int tgt_transform_record(tgt_transform *t, tgt_transform_stream *ts, const tgt_json_parser *p,
                         const char *line, size_t len, const tgt_message *msg, tgt_transformed *out,
                         tgt_error *err)
{
    *out = (tgt_transformed){.p = p, .line = line, .len = len, .msg = msg};
    if (ts == NULL || msg->record < 0)
        return 0;
    t->n_edits = 0;
    tgt_sbuf_reset(&t->arena);
    for (size_t i = 0; i < ts->n_rules; i++)
        if (run_rule(t, ts->rules[i], p, line, (size_t)msg->record, err) != 0)
            return -1;
    if (t->n_edits == 0)
        return 0;
    /* the whole envelope is written again: a second "record" member the
     * reader would ignore must not carry clear values into the spool */
    tgt_sbuf_reset(&t->line);
    emit(t, p, line, 0, &t->line);
    if (!tgt_sbuf_ok(&t->line))
        return tgt_error_nomem(err);
    if (tgt_message_parse(&t->parser, t->line.data, t->line.len, &t->msg, &t->msg_scratch, err) !=
        0)
        return -1;
    *out = (tgt_transformed){
        .p = &t->parser, .line = t->line.data, .len = t->line.len, .msg = &t->msg};
    return 1;
}
