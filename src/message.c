/*
 * message.c - Singer envelope parsing (see message.h).  Only presence and
 * JSON types of envelope fields are checked here; what a SCHEMA or RECORD
 * means is the loader's business.
 */
#include "message.h"

#include <strings.h>

static const struct {
    const char *name;
    tgt_message_type type;
} message_types[] = {{"SCHEMA", TGT_MSG_SCHEMA},
                     {"RECORD", TGT_MSG_RECORD},
                     {"STATE", TGT_MSG_STATE},
                     {"ACTIVATE_VERSION", TGT_MSG_ACTIVATE_VERSION},
                     {"BATCH", TGT_MSG_BATCH}};

const char *tgt_message_type_name(tgt_message_type type)
{
    for (size_t i = 0; i < sizeof(message_types) / sizeof(message_types[0]); i++) {
        if (message_types[i].type == type)
            return message_types[i].name;
    }
    return "?";
}

static long field(const tgt_json_parser *p, const char *line, const char *name)
{
    size_t n = 0;
    while (name[n] != '\0')
        n++;
    return tgt_json_object_get(p, line, 0, name, n);
}

static int require_field(const tgt_json_parser *p, const char *line, const char *name,
                         tgt_json_type type, const char *type_name, const char *msg_name, long *out,
                         tgt_error *err)
{
    *out = field(p, line, name);
    if (*out < 0)
        return tgt_error_set(err, TGT_ERR_INPUT, "%s message has no \"%s\"", msg_name, name);
    if (type != TGT_JSON_NULL && p->tokens[*out].type != type)
        return tgt_error_set(err, TGT_ERR_INPUT, "%s message's \"%s\" must be %s", msg_name, name,
                             type_name);
    return 0;
}

static int parse_type(const tgt_json_parser *p, const char *line, tgt_message *m, tgt_error *err)
{
    long t = field(p, line, "type");
    if (t < 0)
        return tgt_error_set(err, TGT_ERR_INPUT, "message has no \"type\"");
    const tgt_json_token *tok = &p->tokens[t];
    if (tok->type != TGT_JSON_STRING)
        return tgt_error_set(err, TGT_ERR_INPUT, "message \"type\" must be a string");
    for (size_t i = 0; i < sizeof(message_types) / sizeof(message_types[0]); i++) {
        size_t n = 0;
        while (message_types[i].name[n] != '\0')
            n++;
        if (tok->len == n && !(tok->flags & TGT_JSON_ESCAPED) &&
            strncasecmp(line + tok->start, message_types[i].name, n) == 0) {
            m->type = message_types[i].type;
            return 0;
        }
    }
    int shown = tok->len > 40 ? 40 : (int)tok->len;
    return tgt_error_set(err, TGT_ERR_INPUT, "unknown message type \"%.*s\"", shown,
                         line + tok->start);
}

static int parse_stream(const tgt_json_parser *p, const char *line, tgt_message *m,
                        tgt_sbuf *scratch, tgt_error *err)
{
    long s;
    if (require_field(p, line, "stream", TGT_JSON_STRING, "a string",
                      tgt_message_type_name(m->type), &s, err) != 0)
        return -1;
    const tgt_json_token *tok = &p->tokens[s];
    if (!(tok->flags & TGT_JSON_ESCAPED)) {
        m->stream = line + tok->start;
        m->stream_len = tok->len;
    } else {
        tgt_sbuf_reset(scratch);
        tgt_json_decode_string(line + tok->start, tok->len, scratch, NULL);
        if (!tgt_sbuf_ok(scratch))
            return tgt_error_nomem(err);
        m->stream = scratch->data;
        m->stream_len = scratch->len;
    }
    if (m->stream_len == 0)
        return tgt_error_set(err, TGT_ERR_INPUT, "%s message has an empty \"stream\"",
                             tgt_message_type_name(m->type));
    return 0;
}

int tgt_message_parse(tgt_json_parser *p, const char *line, size_t len, tgt_message *m,
                      tgt_sbuf *scratch, tgt_error *err)
{
    m->stream = NULL;
    m->stream_len = 0;
    m->record = m->schema = m->value = m->version = m->time_extracted = -1;
    if (tgt_json_parse(p, line, len, err) != 0)
        return -1;
    if (p->tokens[0].type != TGT_JSON_OBJECT)
        return tgt_error_set(err, TGT_ERR_INPUT, "a Singer message must be a JSON object");
    if (parse_type(p, line, m, err) != 0)
        return -1;
    const char *name = tgt_message_type_name(m->type);
    switch (m->type) {
    case TGT_MSG_RECORD:
        m->version = field(p, line, "version");
        m->time_extracted = field(p, line, "time_extracted");
        if (parse_stream(p, line, m, scratch, err) != 0)
            return -1;
        return require_field(p, line, "record", TGT_JSON_OBJECT, "an object", name, &m->record,
                             err);
    case TGT_MSG_SCHEMA:
        if (parse_stream(p, line, m, scratch, err) != 0)
            return -1;
        return require_field(p, line, "schema", TGT_JSON_OBJECT, "an object", name, &m->schema,
                             err);
    case TGT_MSG_STATE:
        return require_field(p, line, "value", TGT_JSON_NULL, "", name, &m->value, err);
    case TGT_MSG_ACTIVATE_VERSION:
        if (parse_stream(p, line, m, scratch, err) != 0)
            return -1;
        return require_field(p, line, "version", TGT_JSON_NUMBER, "a number", name, &m->version,
                             err);
    case TGT_MSG_BATCH:
        return parse_stream(p, line, m, scratch, err);
    }
    return 0;
}
