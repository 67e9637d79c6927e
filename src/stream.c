/*
 * stream.c - the stream registry (see stream.h).  Streams are few (tens), so
 * a small chained hash table that doubles when full is plenty; the `recent`
 * shortcut makes the common case (many records of one stream in a row) a
 * single memcmp.
 */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "naming.h"

void tgt_stream_registry_init(tgt_stream_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

static void stream_free(tgt_stream *s)
{
    tgt_schema_model_deinit(&s->model);
    tgt_sbuf_deinit(&s->chunk);
    free(s->schema_fingerprint);
    free(s->schema_text);
    free(s->slot_tok);
    free(s->seen);
    free(s->name);
    free(s);
}

void tgt_stream_registry_deinit(tgt_stream_registry *reg)
{
    tgt_stream *s = reg->first;
    while (s != NULL) {
        tgt_stream *next = s->next_in_order;
        stream_free(s);
        s = next;
    }
    free(reg->buckets);
    tgt_stream_registry_init(reg);
}

tgt_stream *tgt_stream_find(tgt_stream_registry *reg, const char *name, size_t len)
{
    tgt_stream *r = reg->recent;
    if (r != NULL && r->name_len == len && memcmp(r->name, name, len) == 0)
        return r;
    if (reg->n_buckets == 0)
        return NULL;
    size_t b = tgt_naming_hash(name, len) & (reg->n_buckets - 1);
    for (tgt_stream *s = reg->buckets[b]; s != NULL; s = s->next_in_bucket) {
        if (s->name_len == len && memcmp(s->name, name, len) == 0) {
            reg->recent = s;
            return s;
        }
    }
    return NULL;
}

static int rehash(tgt_stream_registry *reg)
{
    size_t n = reg->n_buckets ? reg->n_buckets * 2 : 16;
    tgt_stream **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return -1;
    for (tgt_stream *s = reg->first; s != NULL; s = s->next_in_order) {
        size_t b = tgt_naming_hash(s->name, s->name_len) & (n - 1);
        s->next_in_bucket = buckets[b];
        buckets[b] = s;
    }
    free(reg->buckets);
    reg->buckets = buckets;
    reg->n_buckets = n;
    return 0;
}

tgt_stream *tgt_stream_get_or_add(tgt_stream_registry *reg, const char *name, size_t len,
                                  tgt_error *err)
{
    tgt_stream *s = tgt_stream_find(reg, name, len);
    if (s != NULL)
        return s;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = malloc(len + 1)) == NULL) {
        free(s);
        tgt_error_nomem(err);
        return NULL;
    }
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->name_len = len;
    tgt_schema_model_init(&s->model);
    tgt_sbuf_init(&s->chunk);
    tgt_spill_queue_init(&s->spill);
    if (reg->last != NULL)
        reg->last->next_in_order = s;
    else
        reg->first = s;
    reg->last = s;
    s->id = (uint32_t)reg->n_streams++;
    if (reg->n_streams > reg->n_buckets) {
        if (rehash(reg) != 0) {
            tgt_error_nomem(err);
            return NULL; /* s stays registered and is freed with the registry */
        }
    } else {
        size_t b = tgt_naming_hash(name, len) & (reg->n_buckets - 1);
        s->next_in_bucket = reg->buckets[b];
        reg->buckets[b] = s;
    }
    reg->recent = s;
    return s;
}

int tgt_stream_set_model(tgt_stream *s, tgt_schema_model *model, char *fingerprint, tgt_error *err)
{
    size_t n_cols = model->table.n_columns;
    size_t n_root = model->root->n_entries;
    long *slots = malloc((n_cols + 1) * sizeof(*slots));
    unsigned char *seen = calloc(n_root + 1, 1);
    if (slots == NULL || seen == NULL) {
        free(slots);
        free(seen);
        free(fingerprint);
        return tgt_error_nomem(err);
    }
    tgt_schema_model_deinit(&s->model);
    s->model = *model;
    tgt_schema_model_init(model);
    free(s->slot_tok);
    free(s->seen);
    free(s->schema_fingerprint);
    s->slot_tok = slots;
    s->seen = seen;
    s->schema_fingerprint = fingerprint;
    s->n_required = 0;
    for (size_t i = 0; i < n_root; i++)
        s->n_required += s->model.root->entries[i].required != 0;
    return 0;
}

int tgt_stream_has_model(const tgt_stream *s)
{
    return s->model.root != NULL;
}

int tgt_stream_stages(const tgt_stream *s)
{
    return s->model.table.n_keys > 0 && !s->direct;
}
