/*
 * table.c - lifetime helpers for the table model in table.h.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

void tgt_table_init(tgt_table *t)
{
    memset(t, 0, sizeof(*t));
    t->deleted_at_column = -1;
    t->version_column = -1;
}

void tgt_table_deinit(tgt_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        free(t->columns[i].source_path);
        free(t->columns[i].source_json);
    }
    free(t->columns);
    free(t->key_columns);
    free(t->schema);
    free(t->name);
    tgt_table_init(t);
}

long tgt_table_find_column(const tgt_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        if (strcmp(t->columns[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

void tgt_live_table_init(tgt_live_table *lt)
{
    memset(lt, 0, sizeof(*lt));
}

void tgt_live_table_deinit(tgt_live_table *lt)
{
    for (size_t i = 0; i < lt->n_columns; i++)
        free(lt->columns[i].source_path);
    free(lt->columns);
    free(lt->key);
    tgt_live_table_init(lt);
}

const tgt_live_column *tgt_live_table_find(const tgt_live_table *lt, const char *name)
{
    for (size_t i = 0; i < lt->n_columns; i++) {
        if (strcmp(lt->columns[i].name, name) == 0)
            return &lt->columns[i];
    }
    return NULL;
}
