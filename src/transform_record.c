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
 * later rules read a value through its edit.  Then the new line is
 * written with its tokens, so it needs no second parse; the spool, the dead
 * letter and every message below see only the new line.  Usually every
 * edit replaces a scalar: the line is spliced (the edited values' text
 * replaced, the other tokens shifted; splice).  A removed member, a
 * replaced object or array, or an earlier member of the same name as an
 * edited one (JSON readers, and the encoder, record.c, take the last, and
 * the earlier one would carry its clear value along) make the objects that
 * hold an edit be written anew, member by member, dropping those duplicates
 * (emit).
 */
#include <stdint.h>
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
            if (grown != NULL)
                t->edits = grown;
            size_t *keys = grown ? realloc(t->keys, cap * sizeof(*keys)) : NULL;
            if (keys == NULL)
                return tgt_error_nomem(err);
            t->keys = keys;
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

/* The rewritten line and its tokens, built together (so the line needs no
 * second parse): out is the text, p the token array (t->parser's). */
typedef struct writer {
    tgt_sbuf *out;
    tgt_json_parser *p;
    int broken;
    long watch[3];  /* old tokens of the message's record, version, time_extracted */
    long mapped[3]; /* their new indexes (-1: none) */
} writer;

/* The writer's text goes into room reserved before (room_for): a line
 * grows only by its edits, so the bound is known, and the bytes are put
 * without a check each. */
static void put(writer *w, const void *bytes, size_t n)
{
    memcpy(w->out->data + w->out->len, bytes, n);
    w->out->len += n;
}

static void put_char(writer *w, char c)
{
    w->out->data[w->out->len++] = c;
}

/* Reserves out for the rewrite of n bytes of text under the current edits:
 * an edit's string at most 6 bytes per byte (\u00XX) plus quotes, a
 * "null" for a value of at least one byte; a skipped member only shrinks. */
static int room_for(const tgt_transform *t, tgt_sbuf *out, size_t n)
{
    return tgt_sbuf_reserve(out, n + 6 * t->arena.len + 6 * t->n_edits + 1);
}

/* Room for n more tokens; -1 (w broken) when out of memory. */
static int reserve_tokens(writer *w, size_t n)
{
    tgt_json_parser *p = w->p;
    if (w->broken)
        return -1;
    if (p->cap_tokens - p->n_tokens >= n)
        return 0;
    size_t cap = p->cap_tokens ? 2 * p->cap_tokens : 64;
    while (cap - p->n_tokens < n)
        cap *= 2;
    tgt_json_token *grown = realloc(p->tokens, cap * sizeof(*grown));
    if (grown == NULL) {
        w->broken = 1;
        return -1;
    }
    p->tokens = grown;
    p->cap_tokens = cap;
    return 0;
}

/* Appends a token (its index, or SIZE_MAX when out of memory). */
static size_t push_token(writer *w, const tgt_json_token *tk)
{
    if (reserve_tokens(w, 1) != 0)
        return SIZE_MAX;
    w->p->tokens[w->p->n_tokens] = *tk;
    return w->p->n_tokens++;
}

static int needs_escape(unsigned char c)
{
    /* bitwise, not short-circuit: one well-predicted branch per byte (hex
     * digits on both sides of a range test would be mispredicted half the
     * time) */
    return (c < 0x20) | (c == '"') | (c == '\\');
}

/* Does one of the eight bytes of x need an escape (below 0x20, '"' or
 * '\\')?  The bit tricks of "Bit Twiddling Hacks" (haszero, hasless): a
 * false alarm can only follow a true one, and the byte loop decides. */
static int any_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t below = (x - ones * 0x20) & ~x;
    uint64_t hit = below | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
    return (hit & highs) != 0;
}

/* A string as JSON: '"' and '\' escaped, control characters as \u00XX.
 * Sets *flags (TGT_JSON_ESCAPED, TGT_JSON_NON_ASCII) as the parser would. */
static void put_json_string(writer *w, const char *s, size_t n, uint8_t *flags)
{
    static const char hex[] = "0123456789abcdef";
    put_char(w, '"');
    size_t plain = 0;
    uint64_t high = 0;
    for (size_t i = 0; i < n; i++) {
        /* eight plain bytes at a time (digests are all plain) */
        for (uint64_t x; i + 8 <= n && (memcpy(&x, s + i, 8), !any_special(x)); i += 8)
            high |= x;
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        high |= c;
        if (!needs_escape(c))
            continue;
        put(w, s + plain, i - plain);
        plain = i + 1;
        *flags |= TGT_JSON_ESCAPED;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(w, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, esc, 6);
        }
    }
    put(w, s + plain, n - plain);
    put_char(w, '"');
    if (high & 0x8080808080808080ULL)
        *flags |= TGT_JSON_NON_ASCII;
}

static void emit(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t tok,
                 writer *w);

/* Does the value token v hold an edit (itself or inside)? */
static int edited(const tgt_transform *t, const tgt_json_parser *p, size_t v)
{
    for (size_t i = 0; i < t->n_edits; i++)
        if (t->edits[i].tok >= v && t->edits[i].tok < p->tokens[v].end)
            return 1;
    return 0;
}

/* Are the key tokens a and b the same name? */
static int same_key(const char *line, const tgt_json_token *a, const tgt_json_token *b)
{
    if (!((a->flags | b->flags) & TGT_JSON_ESCAPED))
        return a->len == b->len && memcmp(line + a->start, line + b->start, a->len) == 0;
    /* an escaped spelling: compare decoded (rare); out of memory counts as
     * the same, as dropping a member is the safe side */
    tgt_sbuf d;
    tgt_sbuf_init(&d);
    tgt_json_decode_string(line + a->start, a->len, &d, NULL);
    int same = !tgt_sbuf_ok(&d) ||
               tgt_json_string_equals(line + b->start, b->len, b->flags, d.data, d.len);
    tgt_sbuf_deinit(&d);
    return same;
}

/* Is the member whose key is token k an earlier duplicate of a member a
 * rule edited (which, as the last of its name, is the one readers and the
 * rules take)?  Only such a member carries a clear value: an untouched
 * duplicate stays as sent.  keys[0..n): the key tokens of the object's
 * edited members. */
static int shadowed(const tgt_json_parser *p, const char *line, size_t k, const size_t *keys,
                    size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] > k && same_key(line, &p->tokens[k], &p->tokens[keys[i]]))
            return 1;
    return 0;
}

/* An object holding an edit, written member by member. */
static void emit_object(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t obj,
                        writer *w)
{
    const tgt_json_token *toks = p->tokens;
    size_t at = push_token(w, &toks[obj]), start = w->out->len;
    uint32_t kept = 0;
    uint8_t flags = 0;
    /* the keys of the edited members (never more than the edits); this
     * level's own list, as a nested object holding edits makes its own */
    size_t local[16], *keys = local, n_keys = 0;
    if (t->n_edits > sizeof(local) / sizeof(local[0])) {
        keys = malloc(t->n_edits * sizeof(*keys));
        if (keys == NULL) {
            w->broken = 1;
            return;
        }
    }
    for (size_t k = obj + 1; k < toks[obj].end && n_keys < t->n_edits; k = toks[k + 1].end)
        if (edited(t, p, k + 1))
            keys[n_keys++] = k;
    put_char(w, '{');
    for (size_t k = obj + 1; k < toks[obj].end && !w->broken; k = toks[k + 1].end) {
        const tr_edit *e = find_edit(t, k + 1);
        if ((e != NULL && e->kind == TR_REMOVED) || shadowed(p, line, k, keys, n_keys))
            continue;
        if (kept++ > 0)
            put_char(w, ',');
        tgt_json_token key = toks[k];
        key.start = w->out->len + 1;
        key.end = w->p->n_tokens + 1;
        push_token(w, &key);
        const char *s;
        size_t n;
        span(&toks[k], line, &s, &n);
        put(w, s, n);
        put_char(w, ':');
        size_t v = w->p->n_tokens;
        emit(t, p, line, k + 1, w);
        if (!w->broken)
            flags |= w->p->tokens[v].flags & TGT_JSON_NONFINITE;
    }
    put_char(w, '}');
    if (keys != local)
        free(keys);
    if (w->broken)
        return;
    tgt_json_token *o = &w->p->tokens[at];
    o->flags = flags;
    o->size = kept;
    o->start = start;
    o->len = w->out->len - start;
    o->end = w->p->n_tokens;
}

/* A subtree without edits: its text and its tokens, moved. */
static void emit_copy(const tgt_json_parser *p, const char *line, size_t tok, writer *w)
{
    const char *s;
    size_t n;
    span(&p->tokens[tok], line, &s, &n);
    size_t shift_to = w->out->len, shift_from = (size_t)(s - line);
    size_t base = w->p->n_tokens, count = p->tokens[tok].end - tok;
    put(w, s, n);
    if (reserve_tokens(w, count) != 0)
        return;
    tgt_json_token *to = w->p->tokens + base;
    memcpy(to, p->tokens + tok, count * sizeof(*to));
    for (size_t i = 0; i < count; i++) {
        to[i].start = to[i].start - shift_from + shift_to;
        to[i].end = to[i].end - tok + base;
    }
    w->p->n_tokens += count;
}

static void emit(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t tok,
                 writer *w)
{
    for (int i = 0; i < 3; i++)
        if (w->watch[i] == (long)tok)
            w->mapped[i] = (long)w->p->n_tokens;
    const tr_edit *e = find_edit(t, tok);
    if (e == NULL) {
        if (p->tokens[tok].type == TGT_JSON_OBJECT && holds_edit(t, p, tok))
            emit_object(t, p, line, tok, w);
        else
            emit_copy(p, line, tok, w);
        return;
    }
    tgt_json_token v = {.type = TGT_JSON_NULL, .start = w->out->len, .end = w->p->n_tokens + 1};
    const char *bytes = t->arena.data + e->off;
    switch (e->kind) {
    case TR_REMOVED: /* its member is skipped by emit_object */
    case TR_NULL:
        put(w, "null", 4);
        v.len = 4;
        break;
    case TR_NUMBER:
        v.type = TGT_JSON_NUMBER;
        v.flags = TGT_JSON_INTEGRAL; /* MASK-NUMBER's 0 */
        put(w, bytes, e->len);
        v.len = e->len;
        break;
    case TR_STRING:
        v.type = TGT_JSON_STRING;
        v.start++; /* after the quote */
        put_json_string(w, bytes, e->len, &v.flags);
        v.len = w->out->len - v.start - 1;
        break;
    }
    push_token(w, &v);
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
        /* an object some rule already edited inside reads as edited; its
         * tokens go to the scratch parser, which the rewrite resets */
        in->type = (tgt_json_type)tk->type;
        writer w = {.out = &t->input, .p = &t->parser, .watch = {-1, -1, -1}};
        t->parser.n_tokens = 0;
        if (room_for(t, &t->input, tk->len) != 0)
            return tgt_error_nomem(err);
        emit(t, p, line, tok, &w);
        if (w.broken)
            return tgt_error_nomem(err);
        t->input.data[t->input.len] = '\0';
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

/* The record's members the stream's rules read, found in one pass (the
 * last of a name wins, as in tgt_json_object_get). */
static int find_names(tgt_transform *t, const tgt_transform_stream *ts, const tgt_json_parser *p,
                      const char *line, size_t root, tgt_error *err)
{
    const tgt_json_token *toks = p->tokens;
    for (size_t i = 0; i < ts->n_names; i++)
        t->slots[i] = -1;
    for (size_t k = root + 1; k < toks[root].end; k = toks[k + 1].end) {
        const tgt_json_token *key = &toks[k];
        const char *name = line + key->start;
        size_t len = key->len;
        if (key->flags & TGT_JSON_ESCAPED) {
            tgt_sbuf_reset(&t->input);
            tgt_json_decode_string(name, len, &t->input, NULL);
            if (!tgt_sbuf_ok(&t->input))
                return tgt_error_nomem(err);
            name = t->input.data;
            len = t->input.len;
        }
        for (size_t i = 0; i < ts->n_names; i++)
            if (ts->name_lens[i] == len && memcmp(ts->names[i], name, len) == 0)
                t->slots[i] = (long)k + 1;
    }
    return 0;
}

/* The value token of the record's member in slot i (find_names), or -1
 * when the record lacks it or a rule removed it. */
static long root_member(tgt_transform *t, size_t i)
{
    long v = t->slots[i];
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
static int cond_met(tgt_transform *t, const tgt_json_parser *p, const char *line, const tr_cond *c,
                    tgt_error *err)
{
    long v = root_member(t, c->column_slot);
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
        tgt_transform_value(r->kind, r->n, t->has_key ? &t->key : NULL, &in, &t->arena);
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
                    tgt_error *err)
{
    long v = root_member(t, r->field_slot);
    if (v < 0)
        return 0;
    r->field_seen = 1;
    for (size_t i = 0; i < r->n_conds; i++) {
        int met = cond_met(t, p, line, &r->conds[i], err);
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

/* The message of the new line: the same, with the token indexes the
 * writer noted (emit) for the record, version and time_extracted. */
static void map_message(tgt_transform *t, const tgt_message *msg, const writer *w)
{
    t->msg = *msg;
    t->msg.record = w->mapped[0];
    t->msg.version = w->mapped[1];
    t->msg.time_extracted = w->mapped[2];
}

/* ---- The usual case: values replaced in place --------------------------- */

/* Can the line be spliced: every edit replaces a scalar (no member removed,
 * no subtree going), and no object on the way to an edit holds an earlier
 * member of the same name (which a splice would keep, clear)? */
static int splice_ok(const tgt_transform *t, const tgt_json_parser *p, const char *line)
{
    const tgt_json_token *toks = p->tokens;
    for (size_t i = 0; i < t->n_edits; i++) {
        size_t e = t->edits[i].tok;
        if (t->edits[i].kind == TR_REMOVED || toks[e].end != e + 1)
            return 0;
        /* from the envelope down to e: at each level the member holding e */
        size_t obj = 0;
        while (obj != e) {
            if (toks[obj].type != TGT_JSON_OBJECT)
                return 0;
            size_t k = obj + 1;
            while (k < toks[obj].end && !(e >= k + 1 && e < toks[k + 1].end))
                k = toks[k + 1].end;
            if (k >= toks[obj].end)
                return 0;
            for (size_t j = obj + 1; j < k; j = toks[j + 1].end)
                if (same_key(line, &toks[j], &toks[k]))
                    return 0;
            obj = k + 1;
        }
    }
    return 1;
}

/* Sorts the edits by token (there are few). */
static void sort_edits(tgt_transform *t)
{
    for (size_t i = 1; i < t->n_edits; i++) {
        tr_edit e = t->edits[i];
        size_t j = i;
        for (; j > 0 && t->edits[j - 1].tok > e.tok; j--)
            t->edits[j] = t->edits[j - 1];
        t->edits[j] = e;
    }
}

/* The line with each edited value's text replaced, and its tokens: the old
 * ones shifted by what the edits before them added, containers grown by
 * what the edits inside them added, the edited ones new.  Token indexes do
 * not change, so the message's stay valid. */
static int splice(tgt_transform *t, const tgt_json_parser *p, const char *line, size_t len,
                  tgt_error *err)
{
    const tgt_json_token *toks = p->tokens;
    tgt_sbuf_reset(&t->line);
    t->parser.n_tokens = 0;
    writer w = {.out = &t->line, .p = &t->parser, .watch = {-1, -1, -1}};
    if (room_for(t, &t->line, len) != 0 || reserve_tokens(&w, p->n_tokens) != 0)
        return tgt_error_nomem(err);
    sort_edits(t);
    long *delta = (long *)(void *)t->keys; /* scratch: what edit i added to the text */
    size_t pos = 0;
    for (size_t i = 0; i < t->n_edits; i++) {
        const char *s;
        size_t n;
        span(&toks[t->edits[i].tok], line, &s, &n);
        put(&w, line + pos, (size_t)(s - line) - pos);
        size_t before = t->line.len, at = t->parser.n_tokens;
        t->parser.n_tokens = t->edits[i].tok; /* emit writes the edit's token there */
        emit(t, p, line, t->edits[i].tok, &w);
        t->parser.n_tokens = at;
        delta[i] = (long)(t->line.len - before) - (long)n;
        pos = (size_t)(s - line) + n;
    }
    put(&w, line + pos, len - pos);
    t->line.data[t->line.len] = '\0';
    tgt_json_token *nt = t->parser.tokens;
    size_t k = 0;
    long shift = 0;
    for (size_t i = 0; i < p->n_tokens; i++) {
        if (k < t->n_edits && t->edits[k].tok == i) {
            shift += delta[k++];
            continue; /* written by emit */
        }
        nt[i] = toks[i];
        nt[i].start = (size_t)((long)toks[i].start + shift);
        if (toks[i].end > i + 1)
            for (size_t j = k; j < t->n_edits && t->edits[j].tok < toks[i].end; j++)
                nt[i].len = (size_t)((long)nt[i].len + delta[j]);
    }
    t->parser.n_tokens = p->n_tokens;
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
    if (find_names(t, ts, p, line, (size_t)msg->record, err) != 0)
        return -1;
    for (size_t i = 0; i < ts->n_rules; i++)
        if (run_rule(t, ts->rules[i], p, line, err) != 0)
            return -1;
    if (t->n_edits == 0)
        return 0;
    if (splice_ok(t, p, line)) {
        if (splice(t, p, line, len, err) != 0)
            return -1;
        t->msg = *msg;
        *out = (tgt_transformed){
            .p = &t->parser, .line = t->line.data, .len = t->line.len, .msg = &t->msg};
        return 1;
    }
    /* the whole envelope is written again: a second "record" member the
     * reader would ignore must not carry clear values into the spool */
    tgt_sbuf_reset(&t->line);
    if (room_for(t, &t->line, len) != 0)
        return tgt_error_nomem(err);
    t->parser.n_tokens = 0;
    writer w = {.out = &t->line,
                .p = &t->parser,
                .watch = {msg->record, msg->version, msg->time_extracted},
                .mapped = {-1, -1, -1}};
    emit(t, p, line, 0, &w);
    if (w.broken)
        return tgt_error_nomem(err);
    t->line.data[t->line.len] = '\0';
    map_message(t, msg, &w);
    *out = (tgt_transformed){
        .p = &t->parser, .line = t->line.data, .len = t->line.len, .msg = &t->msg};
    return 1;
}
