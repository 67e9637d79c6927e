/*
 * pg_cache.c - what the driver remembers per target table: the name and
 * shape of its temporary staging table and the COPY and merge statements
 * built for its current shape, so that switching between many streams does
 * not rebuild SQL or re-create tables.
 *
 * Entries are found by (schema, name) with a hash compare first; the same
 * hash names the staging table ("tgt_stage_" + 8 hex digits).  Two tables
 * whose hashes collide get different stage names by re-hashing with a salt.
 * The cache owns every string in it; pg_cache_free releases them.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static uint32_t fnv_more(uint32_t h, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t table_hash(const char *schema, const char *name)
{
    const unsigned char sep = 0x1F;
    uint32_t h = fnv_more(2166136261u, schema, strlen(schema));
    h = fnv_more(h, &sep, 1);
    return fnv_more(h, name, strlen(name));
}

pg_table_cache *pg_cache_find(pg_driver *d, const char *schema, const char *name)
{
    uint32_t h = table_hash(schema, name);
    for (size_t i = 0; i < d->n_tables; i++) {
        pg_table_cache *tc = d->tables[i];
        if (tc->hash == h && strcmp(tc->name, name) == 0 && strcmp(tc->schema, schema) == 0)
            return tc;
    }
    return NULL;
}

static int stage_name_taken(const pg_driver *d, const char *stage)
{
    for (size_t i = 0; i < d->n_tables; i++) {
        if (strcmp(d->tables[i]->stage, stage) == 0)
            return 1;
    }
    return 0;
}

static void entry_free(pg_table_cache *tc)
{
    if (tc == NULL)
        return;
    free(tc->schema);
    free(tc->name);
    free(tc->copy_sql[0]);
    free(tc->copy_sql[1]);
    for (int m = 0; m < PG_MERGE_FORMS; m++)
        free(tc->merge_sql[m]);
    free(tc);
}

pg_table_cache *pg_cache_get(pg_driver *d, const char *schema, const char *name, tgt_error *err)
{
    pg_table_cache *tc = pg_cache_find(d, schema, name);
    if (tc != NULL)
        return tc;
    if (d->n_tables == d->cap_tables) {
        size_t cap = d->cap_tables ? d->cap_tables * 2 : 16;
        pg_table_cache **grown = realloc(d->tables, cap * sizeof(*grown));
        if (grown == NULL) {
            tgt_error_nomem(err);
            return NULL;
        }
        d->tables = grown;
        d->cap_tables = cap;
    }
    tc = calloc(1, sizeof(*tc));
    if (tc == NULL || (tc->schema = strdup(schema)) == NULL || (tc->name = strdup(name)) == NULL) {
        entry_free(tc);
        tgt_error_nomem(err);
        return NULL;
    }
    tc->hash = table_hash(schema, name);
    uint32_t h = tc->hash;
    snprintf(tc->stage, sizeof(tc->stage), "tgt_stage_%08x", (unsigned)h);
    for (unsigned char salt = 1; stage_name_taken(d, tc->stage); salt++) {
        h = fnv_more(h, &salt, 1);
        snprintf(tc->stage, sizeof(tc->stage), "tgt_stage_%08x", (unsigned)h);
    }
    d->tables[d->n_tables++] = tc;
    return tc;
}

void pg_cache_forget_stages(pg_driver *d)
{
    for (size_t i = 0; i < d->n_tables; i++)
        d->tables[i]->stage_ready = 0;
}

void pg_cache_free(pg_driver *d)
{
    for (size_t i = 0; i < d->n_tables; i++)
        entry_free(d->tables[i]);
    free(d->tables);
    d->tables = NULL;
    d->n_tables = 0;
    d->cap_tables = 0;
}
