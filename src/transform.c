/*
 * transform.c - the `transformations` setting read into rules, the SCHEMA
 * each stream's rules imply, and the end-of-run report (see transform.h).
 * Rewriting a RECORD is transform_record.c's; what a type does to a value,
 * transform_value.c's.
 *
 * The rule format and the `when` semantics come from pipelinewise-
 * transform-field (af22b03): transform_field/__init__.py reads
 * tap_stream_name, field_id, type, when and field_paths;
 * transform_field/transform.py is_transform_required() takes every
 * condition of `when` (all must hold): `column`'s value, or with
 * `field_path` the value at that dpath inside it (a missing path: not met),
 * `equals` (Python ==) or else `regex_match` (re.search, so unanchored; a
 * non-string value does not match).  Differences, all listed in the README:
 * a condition with neither equals nor regex_match is refused here (it is
 * silently false there), a falsy `equals` (0, "", false) is compared
 * (transform-field skips it), regular expressions are POSIX extended ones
 * (with \d and \D added), and a rule transform-field would refuse at its
 * SCHEMA check (HASH of an integer) is accepted: its column becomes text.
 */
#include "transform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transform_int.h"

/* ---- Reading the rules -------------------------------------------------- */

static int rule_error(tgt_error *err, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rule_error(tgt_error *err, size_t index, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tgt_error_set(err, TGT_ERR_USAGE, "setting \"transformations\": rule %zu: %s", index, msg);
    tgt_error_hint(err, "A rule is {\"tap_stream_name\": \"users\", \"field_id\": \"email\", "
                        "\"type\": \"HMAC\"} with an optional \"when\": [{\"column\": \"c\", "
                        "\"equals\": \"v\"}] and \"field_paths\": [\"a/b\"] (README, "
                        "\"Pseudonymising personal data\").");
    return -1;
}

static char *dup_string(const json_t *v)
{
    return strndup(json_string_value(v), json_string_length(v));
}

static void free_path(tr_path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->parts[i]);
    free(p->parts);
    free(p->lens);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

/* "a/b/c" (a leading '/' allowed, as dpath allows it) into its parts. */
static int parse_path(const char *text, tr_path *p, size_t index, tgt_error *err)
{
    const char *s = text[0] == '/' ? text + 1 : text;
    size_t n = 1;
    for (const char *c = s; *c != '\0'; c++)
        n += *c == '/';
    if (*s == '\0' || strstr(s, "//") != NULL || s[strlen(s) - 1] == '/')
        return rule_error(err, index, "path \"%s\" has an empty part", text);
    if (strpbrk(s, "*?[") != NULL)
        return rule_error(err, index, "path \"%s\" holds a glob; name each field exactly", text);
    p->parts = calloc(n, sizeof(*p->parts));
    p->lens = calloc(n, sizeof(*p->lens));
    p->text = strdup(text);
    if (p->parts == NULL || p->lens == NULL || p->text == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(s, "/");
        p->parts[i] = strndup(s, len);
        if (p->parts[i] == NULL)
            return tgt_error_nomem(err);
        p->lens[i] = len;
        p->n = i + 1;
        s += len + (s[len] == '/');
    }
    return 0;
}

/* Python's re.search pattern as a POSIX extended one: \d and \D (which
 * glibc lacks) become bracket expressions outside brackets; \s \S \w \W are
 * glibc's own. */
static int compile_regex(const char *pattern, regex_t *re, size_t index, tgt_error *err)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    int in_bracket = 0;
    for (const char *c = pattern; *c != '\0'; c++) {
        if (!in_bracket && c[0] == '\\' && (c[1] == 'd' || c[1] == 'D')) {
            tgt_sbuf_append_str(&sb, c[1] == 'd' ? "[0-9]" : "[^0-9]");
            c++;
            continue;
        }
        if (c[0] == '\\' && c[1] != '\0') {
            tgt_sbuf_append(&sb, c, 2);
            c++;
            continue;
        }
        if (*c == '[')
            in_bracket = 1;
        else if (*c == ']')
            in_bracket = 0;
        tgt_sbuf_append_char(&sb, *c);
    }
    if (!tgt_sbuf_ok(&sb)) {
        tgt_sbuf_deinit(&sb);
        return tgt_error_nomem(err);
    }
    int rc = regcomp(re, tgt_sbuf_str(&sb), REG_EXTENDED | REG_NOSUB);
    tgt_sbuf_deinit(&sb);
    if (rc != 0)
        return rule_error(err, index,
                          "regex_match \"%s\" is not a POSIX extended regular expression", pattern);
    return 0;
}

static int parse_equals(const json_t *v, tr_cond *c, size_t index, tgt_error *err)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        c->eq_type = TGT_JSON_STRING;
        c->eq_text = dup_string(v);
        c->eq_len = json_string_length(v);
        return c->eq_text == NULL ? tgt_error_nomem(err) : 0;
    case JSON_INTEGER:
    case JSON_REAL:
        c->eq_type = TGT_JSON_NUMBER;
        c->eq_number = json_number_value(v);
        return 0;
    case JSON_TRUE:
        c->eq_type = TGT_JSON_TRUE;
        return 0;
    case JSON_FALSE:
        c->eq_type = TGT_JSON_FALSE;
        return 0;
    case JSON_NULL:
        c->eq_type = TGT_JSON_NULL;
        return 0;
    case JSON_OBJECT:
    case JSON_ARRAY:
        break;
    }
    return rule_error(err, index, "%s: \"equals\" must be a string, number, boolean or null",
                      "a condition");
}

static int parse_cond(const json_t *v, tr_cond *c, size_t index, tgt_error *err)
{
    const json_t *column = json_object_get(v, "column");
    const json_t *path = json_object_get(v, "field_path");
    const json_t *equals = json_object_get(v, "equals");
    const json_t *regex = json_object_get(v, "regex_match");
    if (!json_is_object(v))
        return rule_error(err, index, "%s of \"when\" must be an object", "each condition");
    if (!json_is_string(column) || json_string_length(column) == 0)
        return rule_error(err, index, "%s has no \"column\" string", "a condition of \"when\"");
    c->column = dup_string(column);
    if (c->column == NULL)
        return tgt_error_nomem(err);
    c->column_len = json_string_length(column);
    if (path != NULL && !json_is_string(path))
        return rule_error(err, index, "%s: \"field_path\" must be a string", c->column);
    if (path != NULL && parse_path(json_string_value(path), &c->path, index, err) != 0)
        return -1;
    if (equals != NULL)
        return parse_equals(equals, c, index, err);
    if (json_is_string(regex)) {
        c->is_regex = 1;
        if (compile_regex(json_string_value(regex), &c->re, index, err) != 0) {
            c->is_regex = 0; /* nothing compiled to free */
            return -1;
        }
        return 0;
    }
    return rule_error(err, index,
                      "the condition on \"%s\" needs \"equals\" or a \"regex_match\" string",
                      c->column);
}

static int parse_when(const json_t *when, tr_rule *r, tgt_error *err)
{
    if (when == NULL || json_is_null(when))
        return 0;
    if (!json_is_array(when))
        return rule_error(err, r->index, "%s must be a list of conditions", "\"when\"");
    if (r->kind == TGT_TR_DROP && json_array_size(when) > 0)
        return rule_error(err, r->index,
                          "%s takes no \"when\": a property is a column or it is not", "DROP");
    r->conds = calloc(json_array_size(when) + 1, sizeof(*r->conds));
    if (r->conds == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < json_array_size(when); i++) {
        r->n_conds = i + 1;
        if (parse_cond(json_array_get(when, i), &r->conds[i], r->index, err) != 0)
            return -1;
    }
    return 0;
}

static int parse_field_paths(const json_t *paths, tr_rule *r, tgt_error *err)
{
    if (paths == NULL || json_is_null(paths))
        return 0;
    if (!json_is_array(paths))
        return rule_error(err, r->index, "%s must be a list of paths such as \"a/b\"",
                          "\"field_paths\"");
    r->paths = calloc(json_array_size(paths) + 1, sizeof(*r->paths));
    if (r->paths == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const json_t *p = json_array_get(paths, i);
        if (!json_is_string(p))
            return rule_error(err, r->index, "%s must hold strings such as \"a/b\"",
                              "\"field_paths\"");
        r->n_paths = i + 1;
        if (parse_path(json_string_value(p), &r->paths[i], r->index, err) != 0)
            return -1;
    }
    return 0;
}

static const json_t *required_string(const json_t *v, const char *name, size_t index,
                                     tgt_error *err)
{
    const json_t *s = json_object_get(v, name);
    if (json_is_string(s) && json_string_length(s) > 0)
        return s;
    rule_error(err, index, "\"%s\" must be a non-empty string", name);
    return NULL;
}

static int parse_rule(const json_t *v, tr_rule *r, int have_key, tgt_error *err)
{
    if (!json_is_object(v))
        return rule_error(err, r->index, "%s", "must be an object");
    const json_t *stream = required_string(v, "tap_stream_name", r->index, err);
    const json_t *field = stream ? required_string(v, "field_id", r->index, err) : NULL;
    const json_t *type = field ? required_string(v, "type", r->index, err) : NULL;
    if (type == NULL)
        return -1;
    if (tgt_transform_kind_parse(json_string_value(type), &r->kind, &r->n) != 0)
        return rule_error(err, r->index,
                          "unknown type \"%s\"; the types are SET-NULL, HASH, "
                          "HASH-SKIP-FIRST-n, MASK-DATE, MASK-NUMBER, MASK-HIDDEN, "
                          "MASK-STRING-SKIP-ENDS-n (n one digit), HMAC, HMAC-EMAIL and DROP",
                          json_string_value(type));
    if ((r->kind == TGT_TR_HMAC || r->kind == TGT_TR_HMAC_EMAIL) && !have_key)
        return rule_error(err, r->index,
                          "type %s needs the secret setting \"pseudonymization_key\"",
                          json_string_value(type));
    r->stream = dup_string(stream);
    r->field = dup_string(field);
    if (r->stream == NULL || r->field == NULL)
        return tgt_error_nomem(err);
    r->field_len = json_string_length(field);
    if (parse_when(json_object_get(v, "when"), r, err) != 0)
        return -1;
    return parse_field_paths(json_object_get(v, "field_paths"), r, err);
}

/* The slot of name[0..len) among s's names, added when new. */
static size_t name_slot(tgt_transform_stream *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n_names; i++)
        if (s->name_lens[i] == len && memcmp(s->names[i], name, len) == 0)
            return i;
    s->names[s->n_names] = name;
    s->name_lens[s->n_names] = len;
    return s->n_names++;
}

/* The names each stream's rules read, and every rule's slots in them. */
static int collect_names(tgt_transform *t, tgt_error *err)
{
    for (size_t i = 0; i < t->n_streams; i++) {
        tgt_transform_stream *s = &t->streams[i];
        size_t most = 0;
        for (size_t j = 0; j < s->n_rules; j++)
            most += 1 + s->rules[j]->n_conds;
        s->names = calloc(most, sizeof(*s->names));
        s->name_lens = calloc(most, sizeof(*s->name_lens));
        if (s->names == NULL || s->name_lens == NULL)
            return tgt_error_nomem(err);
        for (size_t j = 0; j < s->n_rules; j++) {
            tr_rule *r = s->rules[j];
            r->field_slot = name_slot(s, r->field, r->field_len);
            for (size_t c = 0; c < r->n_conds; c++)
                r->conds[c].column_slot = name_slot(s, r->conds[c].column, r->conds[c].column_len);
        }
        if (s->n_names > t->cap_slots)
            t->cap_slots = s->n_names;
    }
    t->slots = calloc(t->cap_slots + 1, sizeof(*t->slots));
    return t->slots == NULL ? tgt_error_nomem(err) : 0;
}

/* Groups the rules by stream, keeping their order. */
static int group_streams(tgt_transform *t, tgt_error *err)
{
    t->streams = calloc(t->n_rules, sizeof(*t->streams));
    if (t->streams == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < t->n_rules; i++) {
        tr_rule *r = &t->rules[i];
        tgt_transform_stream *s = NULL;
        for (size_t j = 0; j < t->n_streams && s == NULL; j++)
            if (strcmp(t->streams[j].name, r->stream) == 0)
                s = &t->streams[j];
        if (s == NULL) {
            s = &t->streams[t->n_streams++];
            s->name = r->stream;
            s->rules = calloc(t->n_rules, sizeof(*s->rules));
            if (s->rules == NULL)
                return tgt_error_nomem(err);
        }
        s->rules[s->n_rules++] = r;
    }
    return 0;
}

static int read_rules(tgt_transform *t, const char *rules_json, tgt_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(rules_json, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return tgt_error_set(err, TGT_ERR_USAGE,
                             "setting \"transformations\" is not valid JSON: column %d: %s",
                             jerr.column, jerr.text);
    int rc = -1;
    if (!json_is_array(root)) {
        tgt_error_set(err, TGT_ERR_USAGE,
                      "setting \"transformations\" must be a list of rules (a JSON array)");
        goto out;
    }
    t->rules = calloc(json_array_size(root) + 1, sizeof(*t->rules));
    if (t->rules == NULL) {
        tgt_error_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        t->rules[i].index = i + 1;
        t->n_rules = i + 1;
        if (parse_rule(json_array_get(root, i), &t->rules[i], t->has_key, err) != 0)
            goto out;
    }
    rc = group_streams(t, err);
    if (rc == 0)
        rc = collect_names(t, err);
out:
    json_decref(root);
    return rc;
}

int tgt_transform_new(const char *rules_json, const char *key, tgt_transform **out, tgt_error *err)
{
    *out = NULL;
    if (rules_json == NULL)
        return 0;
    tgt_transform *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return tgt_error_nomem(err);
    tgt_sbuf_init(&t->arena);
    tgt_sbuf_init(&t->input);
    tgt_sbuf_init(&t->line);
    tgt_json_parser_init(&t->parser);
    t->parser.skip_array_items = 1; /* as the main parser (target.c) */
    if (key != NULL && key[0] != '\0') {
        tgt_hmac_sha256_key_init(&t->key, key, strlen(key));
        t->has_key = 1;
    }
    if (read_rules(t, rules_json, err) != 0) {
        tgt_transform_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static void free_rule(tr_rule *r)
{
    free(r->stream);
    free(r->field);
    for (size_t i = 0; i < r->n_paths; i++)
        free_path(&r->paths[i]);
    free(r->paths);
    for (size_t i = 0; i < r->n_conds; i++) {
        tr_cond *c = &r->conds[i];
        free(c->column);
        free(c->eq_text);
        free_path(&c->path);
        if (c->is_regex)
            regfree(&c->re);
    }
    free(r->conds);
}

void tgt_transform_free(tgt_transform *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_rules; i++)
        free_rule(&t->rules[i]);
    free(t->rules);
    for (size_t i = 0; i < t->n_streams; i++) {
        free(t->streams[i].rules);
        free(t->streams[i].names);
        free(t->streams[i].name_lens);
    }
    free(t->slots);
    free(t->streams);
    tgt_hmac_sha256_key_wipe(&t->key); /* no key material left in freed memory */
    free(t->edits);
    free(t->keys);
    tgt_sbuf_deinit(&t->arena);
    tgt_sbuf_deinit(&t->input);
    tgt_sbuf_deinit(&t->line);
    tgt_json_parser_deinit(&t->parser);
    free(t);
}

tgt_transform_stream *tgt_transform_find_stream(tgt_transform *t, const char *name, size_t len)
{
    for (size_t i = 0; t != NULL && i < t->n_streams; i++) {
        tgt_transform_stream *s = &t->streams[i];
        if (strlen(s->name) != len || memcmp(s->name, name, len) != 0)
            continue;
        for (size_t j = 0; j < s->n_rules; j++)
            s->rules[j]->stream_seen = 1;
        return s;
    }
    return NULL;
}

/* ---- The SCHEMA --------------------------------------------------------- */

/* Does the JSON Schema node's "type" (a name or a list) name `type`? */
static int admits(const json_t *node, const char *type)
{
    const json_t *t = json_object_get(node, "type");
    if (json_is_string(t))
        return strcmp(json_string_value(t), type) == 0;
    for (size_t i = 0; json_is_array(t) && i < json_array_size(t); i++) {
        const json_t *e = json_array_get(t, i);
        if (json_is_string(e) && strcmp(json_string_value(e), type) == 0)
            return 1;
    }
    return 0;
}

static json_t *typed_node(const char *type)
{
    return json_pack("{s:[s,s]}", "type", type, "null");
}

/* MASK-NUMBER writes 0: a property that takes a number, a plain string or
 * anything (no type) keeps its schema; others become integers. */
static int takes_zero(const json_t *node)
{
    if (json_object_get(node, "type") == NULL && json_object_get(node, "anyOf") == NULL)
        return 1;
    return admits(node, "integer") || admits(node, "number") ||
           (admits(node, "string") && json_object_get(node, "format") == NULL);
}

static void remove_required(json_t *parent, const char *name)
{
    json_t *req = json_object_get(parent, "required");
    for (size_t i = 0; json_is_array(req) && i < json_array_size(req); i++) {
        const json_t *e = json_array_get(req, i);
        if (json_is_string(e) && strcmp(json_string_value(e), name) == 0) {
            json_array_remove(req, i);
            return;
        }
    }
}

static int is_key(const json_t *root, const char *name)
{
    const json_t *keys = json_object_get(root, "key_properties");
    for (size_t i = 0; json_is_array(keys) && i < json_array_size(keys); i++) {
        const json_t *e = json_array_get(keys, i);
        if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
            return 1;
    }
    return 0;
}

/* The property `name` of object schema `parent` under rule r. */
static int change_property(const tr_rule *r, json_t *root, json_t *parent, const char *name,
                           int at_root, tgt_error *err)
{
    json_t *props = json_object_get(parent, "properties");
    json_t *node = json_object_get(props, name);
    json_t *replacement = NULL;
    if (r->kind == TGT_TR_DROP) {
        if (at_root && is_key(root, name))
            return rule_error(err, r->index,
                              "DROP of \"%s\", a key property of its stream: a row needs its key",
                              name);
        json_object_del(props, name);
        remove_required(parent, name);
        return 0;
    }
    if (tgt_transform_kind_is_textual(r->kind))
        replacement = typed_node("string");
    else if (r->kind == TGT_TR_MASK_NUMBER && !takes_zero(node))
        replacement = typed_node("integer");
    else
        return 0;
    if (replacement == NULL || json_object_set_new(props, name, replacement) != 0)
        return tgt_error_nomem(err);
    return 0;
}

/* A field_paths entry inside the object schema `node`: changed where the
 * path leads to a declared property; a path into an object without
 * properties stays inside its jsonb value, which needs no change. */
static int change_path(const tr_rule *r, json_t *root, json_t *node, const tr_path *p,
                       tgt_error *err)
{
    for (size_t i = 0; i < p->n; i++) {
        json_t *child = json_object_get(json_object_get(node, "properties"), p->parts[i]);
        if (!json_is_object(child))
            return 0;
        if (i + 1 == p->n)
            return change_property(r, root, node, p->parts[i], 0, err);
        node = child;
    }
    return 0;
}

int tgt_transform_schema(tgt_transform_stream *ts, json_t *root, tgt_error *err)
{
    json_t *schema = json_object_get(root, "schema");
    json_t *props = json_object_get(schema, "properties");
    if (ts == NULL || !json_is_object(props))
        return 0; /* schema.c refuses a SCHEMA without properties */
    for (size_t i = 0; i < ts->n_rules; i++) {
        tr_rule *r = ts->rules[i];
        json_t *node = json_object_get(props, r->field);
        if (!json_is_object(node))
            continue;
        r->field_seen = 1;
        int rc = 0;
        /* transform-field applies field_paths to an object value only;
         * anything else is transformed whole */
        if (r->n_paths > 0 && (admits(node, "object") || json_object_get(node, "properties"))) {
            for (size_t j = 0; j < r->n_paths && rc == 0; j++)
                rc = change_path(r, root, node, &r->paths[j], err);
        } else {
            rc = change_property(r, root, schema, r->field, 1, err);
        }
        if (rc != 0) {
            tgt_error_where(err, "SCHEMA of stream \"%s\"", ts->name);
            return -1;
        }
    }
    return 0;
}

/* ---- The report --------------------------------------------------------- */

void tgt_transform_report(const tgt_transform *t)
{
    for (size_t i = 0; t != NULL && i < t->n_rules; i++) {
        const tr_rule *r = &t->rules[i];
        if (!r->stream_seen)
            tgt_log(TGT_LOG_WARN,
                    "setting \"transformations\": rule %zu names stream \"%s\", which did not "
                    "appear in this run",
                    r->index, r->stream);
        else if (!r->field_seen)
            tgt_log(TGT_LOG_WARN,
                    "setting \"transformations\": rule %zu names property \"%s\", which stream "
                    "\"%s\" neither declared nor sent in this run",
                    r->index, r->field, r->stream);
        if (r->path_missing > 0)
            tgt_log(TGT_LOG_WARN,
                    "setting \"transformations\": rule %zu: %lu records of stream \"%s\" had "
                    "property \"%s\" without one of its field_paths",
                    r->index, r->path_missing, r->stream, r->field);
        if (r->failed > 0)
            tgt_log(TGT_LOG_WARN,
                    "setting \"transformations\": rule %zu (%s): %lu values of property \"%s\" "
                    "of stream \"%s\" were not dates and were loaded as NULL",
                    r->index, tgt_transform_kind_name(r->kind), r->failed, r->field, r->stream);
    }
}
