/*
 * fake_driver.c - the in-memory warehouse of fake_driver.h.
 *
 * Rows are arrays of owned strings (NULL for SQL NULL) parsed from the
 * fake's own row format (fake_rows.h) that its row writer gave the core.  A transaction keeps a
 * deep copy of every table's rows taken at begin(); rollback() puts it back.  Out of memory is
 * reported as TGT_ERR_NOMEM like any driver would.  Simplicity beats speed here: the tests load
 * tens of rows, so lookups are linear.
 */
#include "fake/fake_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake/fake_rows.h"

#define FAKE_MAX_COLUMNS 512
#define FAKE_OPS 23

typedef struct fake_column {
    char name[TGT_IDENT_MAX + 1];
    tgt_coltype type;
    char *source_path;
    int not_null;
} fake_column;

typedef struct fake_rows {
    char ***rows; /* rows[i][c], n_columns values each (+2 for staging) */
    size_t n_rows;
    size_t width;
} fake_rows;

typedef struct fake_table {
    char schema[TGT_IDENT_MAX + 1];
    char name[TGT_IDENT_MAX + 1];
    fake_column columns[FAKE_MAX_COLUMNS];
    size_t n_columns;
    char key[FAKE_MAX_COLUMNS][TGT_IDENT_MAX + 1];
    size_t n_keys;
    fake_rows rows;
    fake_rows saved;   /* the rows at begin(), while a transaction is open */
    fake_rows staging; /* staged rows of this transaction, + sequence and presence mask */
    int has_saved;
} fake_table;

typedef struct fake_failure {
    unsigned at; /* call number that fails; 0: none */
    tgt_fake_failure how;
    unsigned long row;
} fake_failure;

typedef struct fake_driver {
    tgt_driver base;
    tgt_driver_ops ops; /* fake_ops, with write_room once tgt_fake_set_room was called */
    fake_table **tables;
    size_t n_tables;
    char **schemas;
    size_t n_schemas;
    int connected;
    int in_txn;
    unsigned calls[FAKE_OPS];
    fake_failure failures[FAKE_OPS];
    tgt_sbuf log;
    /* the open bulk write */
    fake_table *write_table;
    int write_staging;
    int write_direct;         /* TGT_WRITE_DIRECT: a key already in the table clashes */
    unsigned long clashed_at; /* first row of the open direct write whose key clashed (0: none) */
    tgt_sbuf pending;         /* bytes of an incomplete last row */
    tgt_sbuf cells;           /* scratch for the cells of one row */
    unsigned long written;    /* rows parsed in this bulk write */
    int write_closed;         /* write_close ended it: write_end reports the outcome */
    unsigned busy_answers;    /* tgt_fake_set_busy: write_ready says no this often per close */
    unsigned busy_left;       /* of those, still to give for the closed write */
    unsigned room_full;       /* tgt_fake_set_room: write_room says no this often per write */
    unsigned room_left;       /* of those, still to give for the open write */
    unsigned long refuse_row; /* a REFUSED failure waiting for this row (0: none) */
    /* tgt_fake_refuse_value: rows holding this value are refused when the
     * write ends (append) or at merge (staging), naming no row */
    char refuse_column[TGT_IDENT_MAX + 1];
    char *refuse_value;
    unsigned long refused_at; /* first refused row of the open write (0: none) */
    /* tgt_fake_check_value: rows holding this value are refused as they
     * are written, naming their row */
    char check_column[TGT_IDENT_MAX + 1];
    char *check_value;
    size_t tables_per_txn;
    tgt_txn_status last_commit; /* what became of the last COMMIT that was cut off */
} fake_driver;

static const char *const op_names[FAKE_OPS] = {
    "connect",
    "describe_table",
    "ensure_schema",
    "create_table",
    "add_column",
    "alter_column_types",
    "begin",
    "commit",
    "rollback",
    "write_begin",
    "write_data",
    "write_end",
    "merge",
    "activate_version",
    "set_primary_key",
    "drop_table",
    "replace_table",
    "commit_status",
    "tables_per_transaction",
    "lock_for_merge",
    "write_close",
    "write_ready",
    "write_room",
};

static int op_index(const char *op)
{
    for (int i = 0; i < FAKE_OPS; i++)
        if (strcmp(op_names[i], op) == 0)
            return i;
    return -1;
}

/* --- rows ------------------------------------------------------------------ */

static void rows_free(fake_rows *r)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        for (size_t c = 0; c < r->width; c++)
            free(r->rows[i][c]);
        free(r->rows[i]);
    }
    free(r->rows);
    memset(r, 0, sizeof(*r));
}

static char *dup_or_null(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

/* Appends a row of `width` cells taken from `cells` (copied). */
static int rows_add(fake_rows *r, char *const *cells, size_t width)
{
    char ***grown = realloc(r->rows, (r->n_rows + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    r->rows = grown;
    char **row = calloc(width > 0 ? width : 1, sizeof(*row));
    if (row == NULL)
        return -1;
    for (size_t c = 0; c < width; c++) {
        row[c] = dup_or_null(cells[c]);
        if (cells[c] != NULL && row[c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(row[k]);
            free(row);
            return -1;
        }
    }
    r->rows[r->n_rows++] = row;
    r->width = width;
    return 0;
}

static int rows_copy(fake_rows *to, const fake_rows *from)
{
    memset(to, 0, sizeof(*to));
    to->width = from->width;
    for (size_t i = 0; i < from->n_rows; i++)
        if (rows_add(to, from->rows[i], from->width) != 0)
            return -1;
    to->width = from->width;
    return 0;
}

static void rows_delete(fake_rows *r, size_t at)
{
    for (size_t c = 0; c < r->width; c++)
        free(r->rows[at][c]);
    free(r->rows[at]);
    memmove(&r->rows[at], &r->rows[at + 1], (r->n_rows - at - 1) * sizeof(*r->rows));
    r->n_rows--;
}

/* Widens every row to `width` cells (new cells NULL): ADD COLUMN. */
static int rows_widen(fake_rows *r, size_t width)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        char **row = realloc(r->rows[i], width * sizeof(*row));
        if (row == NULL)
            return -1;
        for (size_t c = r->width; c < width; c++)
            row[c] = NULL;
        r->rows[i] = row;
    }
    r->width = width;
    return 0;
}

/* --- tables ------------------------------------------------------------------ */

static fake_table *find_table(const fake_driver *d, const char *schema, const char *name)
{
    for (size_t i = 0; i < d->n_tables; i++)
        if (strcmp(d->tables[i]->schema, schema) == 0 && strcmp(d->tables[i]->name, name) == 0)
            return d->tables[i];
    return NULL;
}

static long find_column(const fake_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_columns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void table_free(fake_table *t)
{
    for (size_t i = 0; i < t->n_columns; i++)
        free(t->columns[i].source_path);
    rows_free(&t->rows);
    rows_free(&t->saved);
    rows_free(&t->staging);
    free(t);
}

static void remove_table(fake_driver *d, fake_table *t)
{
    for (size_t i = 0; i < d->n_tables; i++) {
        if (d->tables[i] == t) {
            memmove(&d->tables[i], &d->tables[i + 1], (d->n_tables - i - 1) * sizeof(*d->tables));
            d->n_tables--;
            table_free(t);
            return;
        }
    }
}

/* --- failures ------------------------------------------------------------------ */

/* Counts a call of op and decides whether it fails now.  Returns 1 and sets
 * *how when it does (the caller applies TGT_FAKE_LOST_AFTER's effect first). */
static int take_failure(fake_driver *d, int op, tgt_fake_failure *how)
{
    d->calls[op]++;
    tgt_sbuf_append_str(&d->log, op_names[op]);
    tgt_sbuf_append_char(&d->log, '\n');
    fake_failure *f = &d->failures[op];
    if (f->at == 0 || d->calls[op] != f->at)
        return 0;
    f->at = 0;
    *how = f->how;
    return 1;
}

static int fail_with(fake_driver *d, tgt_fake_failure how, const char *op, tgt_error *err)
{
    if (how == TGT_FAKE_LOST || how == TGT_FAKE_LOST_AFTER) {
        d->connected = 0;
        tgt_error_set(err, TGT_ERR_LOAD, "fake: connection lost during %s", op);
        err->connection_lost = 1;
        return -1;
    }
    if (how == TGT_FAKE_CONFLICT) {
        tgt_error_set(err, TGT_ERR_LOAD, "fake: deadlock detected during %s", op);
        tgt_error_sqlstate(err, "40P01");
        err->conflict = 1;
        return -1;
    }
    tgt_error_set(err, TGT_ERR_LOAD, "fake: %s failed", op);
    tgt_error_sqlstate(err, "XX000");
    return -1;
}

/* The common prologue of every operation but connect: counts the call,
 * refuses when not connected, fails it when asked to (before it acts). */
static int enter(fake_driver *d, int op, tgt_fake_failure *after, tgt_error *err)
{
    tgt_fake_failure how;
    *after = (tgt_fake_failure)-1;
    if (!d->connected) {
        d->calls[op]++;
        tgt_error_set(err, TGT_ERR_LOAD, "fake: not connected (%s)", op_names[op]);
        err->connection_lost = 1;
        return -1;
    }
    if (take_failure(d, op, &how)) {
        /* a lost reply only means something for commit, a refused row only
         * for a bulk write; elsewhere both are a failure before the call */
        if ((how == TGT_FAKE_LOST_AFTER && op == op_index("commit")) ||
            (how == TGT_FAKE_REFUSED && op == op_index("write_data"))) {
            *after = how;
            return 0;
        }
        return fail_with(d, how == TGT_FAKE_LOST_AFTER ? TGT_FAKE_LOST : how, op_names[op], err);
    }
    return 0;
}

/* --- operations ------------------------------------------------------------------ */

static int fake_connect(tgt_driver *base, const tgt_config *cfg, tgt_error *err)
{
    (void)cfg;
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure how;
    if (take_failure(d, op_index("connect"), &how)) {
        tgt_error_set(err, TGT_ERR_LOAD, "fake: connection refused");
        err->transient = 1;
        return -1;
    }
    d->connected = 1;
    d->in_txn = 0;
    return 0;
}

static void discard_transaction(fake_driver *d, int restore)
{
    for (size_t i = 0; i < d->n_tables; i++) {
        fake_table *t = d->tables[i];
        rows_free(&t->staging);
        if (!t->has_saved)
            continue;
        if (restore) {
            rows_free(&t->rows);
            t->rows = t->saved;
            memset(&t->saved, 0, sizeof(t->saved));
        } else {
            rows_free(&t->saved);
        }
        t->has_saved = 0;
    }
    d->in_txn = 0;
    d->write_table = NULL;
}

static void fake_free(tgt_driver *base)
{
    fake_driver *d = (fake_driver *)base;
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_tables; i++)
        table_free(d->tables[i]);
    free(d->tables);
    for (size_t i = 0; i < d->n_schemas; i++)
        free(d->schemas[i]);
    free(d->schemas);
    tgt_sbuf_deinit(&d->log);
    tgt_sbuf_deinit(&d->pending);
    tgt_sbuf_deinit(&d->cells);
    free(d->refuse_value);
    free(d->check_value);
    free(d);
}

static int fake_describe_table(tgt_driver *base, const char *schema, const char *table,
                               tgt_live_table *out, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    tgt_live_table_init(out);
    if (enter(d, op_index("describe_table"), &after, err) != 0)
        return -1;
    const fake_table *t = find_table(d, schema, table);
    if (t == NULL)
        return 0;
    out->exists = 1;
    out->columns = calloc(t->n_columns + 1, sizeof(*out->columns));
    out->key = calloc(t->n_keys + 1, sizeof(*out->key));
    if (out->columns == NULL || out->key == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < t->n_columns; i++) {
        tgt_live_column *lc = &out->columns[out->n_columns++];
        memcpy(lc->name, t->columns[i].name, sizeof(lc->name));
        tgt_type_name(t->columns[i].type, lc->sql_type, sizeof(lc->sql_type));
        lc->type = t->columns[i].type;
        lc->not_null = t->columns[i].not_null;
        lc->source_path = dup_or_null(t->columns[i].source_path);
        if (t->columns[i].source_path != NULL && lc->source_path == NULL)
            return tgt_error_nomem(err);
    }
    for (size_t k = 0; k < t->n_keys; k++)
        memcpy(out->key[out->n_keys++], t->key[k], TGT_IDENT_MAX + 1);
    out->empty = t->n_keys > 0 && t->rows.n_rows == 0;
    return 0;
}

static int fake_ensure_schema(tgt_driver *base, const char *schema, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("ensure_schema"), &after, err) != 0)
        return -1;
    for (size_t i = 0; i < d->n_schemas; i++)
        if (strcmp(d->schemas[i], schema) == 0)
            return 0;
    char **grown = realloc(d->schemas, (d->n_schemas + 1) * sizeof(*grown));
    if (grown == NULL)
        return tgt_error_nomem(err);
    d->schemas = grown;
    if ((d->schemas[d->n_schemas] = strdup(schema)) == NULL)
        return tgt_error_nomem(err);
    d->n_schemas++;
    return 0;
}

static int set_column(fake_column *fc, const tgt_column *c)
{
    memcpy(fc->name, c->name, sizeof(fc->name));
    fc->type = c->type;
    fc->not_null = c->is_key;
    free(fc->source_path);
    /* what a driver records with the column is the path's recorded form */
    fc->source_path = dup_or_null(c->source_json);
    return c->source_json != NULL && fc->source_path == NULL ? -1 : 0;
}

static int fake_create_table(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("create_table"), &after, err) != 0)
        return -1;
    if (find_table(d, t->schema, t->name) != NULL) {
        tgt_error_set(err, TGT_ERR_LOAD, "fake: relation \"%s\" already exists", t->name);
        tgt_error_sqlstate(err, "42P07");
        return -1;
    }
    if (t->n_columns > FAKE_MAX_COLUMNS)
        return tgt_error_set(err, TGT_ERR_LOAD, "fake: too many columns");
    fake_table *ft = calloc(1, sizeof(*ft));
    fake_table **grown = realloc(d->tables, (d->n_tables + 1) * sizeof(*grown));
    if (ft == NULL || grown == NULL) {
        free(ft);
        if (grown != NULL)
            d->tables = grown;
        return tgt_error_nomem(err);
    }
    d->tables = grown;
    snprintf(ft->schema, sizeof(ft->schema), "%s", t->schema);
    snprintf(ft->name, sizeof(ft->name), "%s", t->name);
    for (size_t i = 0; i < t->n_columns; i++)
        if (set_column(&ft->columns[ft->n_columns++], &t->columns[i]) != 0) {
            table_free(ft);
            return tgt_error_nomem(err);
        }
    for (size_t k = 0; k < t->n_keys; k++)
        memcpy(ft->key[ft->n_keys++], t->columns[t->key_columns[k]].name, TGT_IDENT_MAX + 1);
    ft->rows.width = ft->n_columns;
    d->tables[d->n_tables++] = ft;
    return 0;
}

static fake_table *table_of(fake_driver *d, const char *schema, const char *name, tgt_error *err)
{
    fake_table *ft = find_table(d, schema, name);
    if (ft == NULL) {
        tgt_error_set(err, TGT_ERR_LOAD, "fake: relation \"%s\".\"%s\" does not exist", schema,
                      name);
        tgt_error_sqlstate(err, "42P01");
    }
    return ft;
}

static int fake_add_column(tgt_driver *base, const tgt_table *t, size_t col, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("add_column"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, t->schema, t->name, err);
    if (ft == NULL)
        return -1;
    if (find_column(ft, t->columns[col].name) >= 0)
        return 0; /* IF NOT EXISTS */
    if (ft->n_columns == FAKE_MAX_COLUMNS)
        return tgt_error_set(err, TGT_ERR_LOAD, "fake: too many columns");
    if (set_column(&ft->columns[ft->n_columns], &t->columns[col]) != 0 ||
        rows_widen(&ft->rows, ft->n_columns + 1) != 0)
        return tgt_error_nomem(err);
    ft->n_columns++;
    return 0;
}

/* All or nothing, like the real drivers: every column is checked before any
 * type changes. */
static int fake_alter_column_types(tgt_driver *base, const tgt_table *t, const size_t *cols,
                                   size_t n, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("alter_column_types"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, t->schema, t->name, err);
    if (ft == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (cols[i] >= t->n_columns || find_column(ft, t->columns[cols[i]].name) < 0)
            return tgt_error_set(err, TGT_ERR_LOAD, "fake: no column %zu to alter", cols[i]);
    }
    for (size_t i = 0; i < n; i++)
        ft->columns[find_column(ft, t->columns[cols[i]].name)].type = t->columns[cols[i]].type;
    return 0;
}

static int fake_begin(tgt_driver *base, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("begin"), &after, err) != 0)
        return -1;
    for (size_t i = 0; i < d->n_tables; i++) {
        fake_table *t = d->tables[i];
        if (rows_copy(&t->saved, &t->rows) != 0)
            return tgt_error_nomem(err);
        t->has_saved = 1;
    }
    d->in_txn = 1;
    return 0;
}

static int fake_commit(tgt_driver *base, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("commit"), &after, err) != 0) {
        if (err->connection_lost && d->in_txn) {
            /* the COMMIT never reached the server: rolled back */
            err->commit_unknown = 1;
            d->last_commit = TGT_TXN_ABORTED;
        }
        discard_transaction(d, 1);
        return -1;
    }
    discard_transaction(d, 0);
    if (after == TGT_FAKE_LOST_AFTER) {
        d->last_commit = TGT_TXN_COMMITTED; /* only the reply was lost */
        fail_with(d, after, "commit", err);
        err->commit_unknown = 1;
        return -1;
    }
    return 0;
}

static int fake_commit_status(tgt_driver *base, tgt_txn_status *out, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("commit_status"), &after, err) != 0)
        return -1;
    *out = d->last_commit;
    return 0;
}

static size_t fake_tables_per_transaction(tgt_driver *base)
{
    fake_driver *d = (fake_driver *)base;
    d->calls[op_index("tables_per_transaction")]++;
    return d->tables_per_txn;
}

static int fake_lock_for_merge(tgt_driver *base, const tgt_table **tables, size_t n, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    (void)tables;
    (void)n;
    return enter(d, op_index("lock_for_merge"), &after, err);
}

static void fake_rollback(tgt_driver *base)
{
    fake_driver *d = (fake_driver *)base;
    d->calls[op_index("rollback")]++;
    tgt_sbuf_append_str(&d->log, "rollback\n");
    discard_transaction(d, 1);
}

static int fake_write_begin(tgt_driver *base, const tgt_table *t, tgt_write_mode mode,
                            tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("write_begin"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, t->schema, t->name, err);
    if (ft == NULL)
        return -1;
    d->write_table = ft;
    d->write_staging = mode == TGT_WRITE_STAGING;
    d->write_direct = mode == TGT_WRITE_DIRECT;
    d->clashed_at = 0;
    d->written = 0;
    d->write_closed = 0;
    d->refused_at = 0;
    d->room_left = d->room_full;
    tgt_sbuf_reset(&d->pending);
    return 0;
}

/* True when `column` of a row of ft holds `value` (NULL: no rule). */
static int holds_value(const fake_table *ft, char *const *cells, const char *column,
                       const char *value)
{
    if (value == NULL)
        return 0;
    long c = find_column(ft, column);
    return c >= 0 && cells[c] != NULL && strcmp(cells[c], value) == 0;
}

/* True when a row of ft holds the value tgt_fake_refuse_value refuses. */
static int refused_value(const fake_driver *d, const fake_table *ft, char *const *cells)
{
    return holds_value(ft, cells, d->refuse_column, d->refuse_value);
}

/* A refusal that names no row, as a foreign key's at the end of a COPY. */
static int refuse_unnamed(tgt_error *err)
{
    tgt_error_set(err, TGT_ERR_LOAD, "fake: insert or update violates foreign key constraint");
    tgt_error_sqlstate(err, "23503");
    return -1;
}

static long find_key(const fake_table *ft, char *const *staged);

/* Takes one complete row p[0..len) of the fake's format (fake_rows.h)
 * into the open write's table. */
static int take_row(fake_driver *d, const char *p, size_t len, tgt_error *err)
{
    fake_table *ft = d->write_table;
    size_t width = ft->n_columns + (d->write_staging ? 2 : 0); /* + sequence, presence mask */
    const char *cells[FAKE_MAX_COLUMNS + 2];
    long n = tgt_fake_row_cells(p, len, &d->cells, cells, width);
    if (n < 0)
        return tgt_error_nomem(err);
    d->written++;
    if ((size_t)n != width)
        return tgt_error_set(err, TGT_ERR_LOAD, "fake: row %lu has %ld fields, %zu expected",
                             d->written, n, width);
    for (size_t c = 0; c < ft->n_columns; c++)
        if (ft->columns[c].not_null && cells[c] == NULL) {
            tgt_error_set(err, TGT_ERR_LOAD, "fake: null value in column \"%s\"",
                          ft->columns[c].name);
            tgt_error_sqlstate(err, "23502");
            err->bulk_row = d->written;
            return -1;
        }
    if (holds_value(ft, (char *const *)cells, d->check_column, d->check_value)) {
        tgt_error_set(err, TGT_ERR_LOAD, "fake: new row violates check constraint");
        tgt_error_sqlstate(err, "23514");
        err->bulk_row = d->written;
        err->bulk_row_exact = 1;
        return -1;
    }
    if (d->refused_at == 0 && !d->write_staging && refused_value(d, ft, (char *const *)cells))
        d->refused_at = d->written;
    if (d->write_direct && find_key(ft, (char *const *)cells) >= 0) {
        if (d->clashed_at == 0)
            d->clashed_at = d->written;
        return 0; /* the write fails at its end; nothing of it stays (rollback) */
    }
    fake_rows *into = d->write_staging ? &ft->staging : &ft->rows;
    return rows_add(into, (char *const *)cells, width) == 0 ? 0 : tgt_error_nomem(err);
}

static int fake_write_data(tgt_driver *base, const char *data, size_t len, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("write_data"), &after, err) != 0)
        return -1;
    if (d->write_table == NULL || d->write_closed)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "fake: write_data without an open write");
    if (after == TGT_FAKE_REFUSED)
        d->refuse_row = d->failures[op_index("write_data")].row;
    tgt_sbuf_append(&d->pending, data, len);
    if (!tgt_sbuf_ok(&d->pending))
        return tgt_error_nomem(err);
    const char *buf = d->pending.data;
    size_t used = 0;
    for (long row; (row = tgt_fake_row_scan(buf + used, d->pending.len - used)) != 0;) {
        if (row < 0)
            return tgt_error_set(err, TGT_ERR_LOAD, "fake: malformed row data after row %lu",
                                 d->written);
        if (d->refuse_row != 0 && d->written + 1 == d->refuse_row) {
            d->refuse_row = 0;
            tgt_error_set(err, TGT_ERR_LOAD, "fake: new row violates check constraint");
            tgt_error_sqlstate(err, "23514");
            err->bulk_row = d->written + 1;
            err->bulk_row_exact = 1;
            return -1;
        }
        if (take_row(d, buf + used, (size_t)row, err) != 0)
            return -1;
        used += (size_t)row;
    }
    memmove(d->pending.data, buf + used, d->pending.len - used);
    d->pending.len -= used;
    return 0;
}

static int fake_write_end(tgt_driver *base, unsigned long *rows, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    *rows = 0;
    int rc = enter(d, op_index("write_end"), &after, err);
    d->write_table = NULL;
    if (rc != 0)
        return -1;
    if (d->pending.len != 0)
        return tgt_error_set(err, TGT_ERR_LOAD, "fake: bulk write ends inside a row");
    if (d->clashed_at != 0) {
        tgt_error_set(err, TGT_ERR_LOAD,
                      "fake: duplicate key value violates unique constraint (row %lu)",
                      d->clashed_at);
        tgt_error_sqlstate(err, "23505");
        err->key_clash = 1;
        return -1;
    }
    if (d->refused_at != 0)
        return refuse_unnamed(err);
    *rows = d->written;
    return 0;
}

/* The deferred end (driver.h): the write takes no more data; whatever it
 * ran into is still reported by write_end, as PostgreSQL's COPY reports it
 * when the results are collected.  A failure injected here (a lost
 * connection, say) ends the write with no write_end. */
static int fake_write_close(tgt_driver *base, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("write_close"), &after, err) != 0) {
        d->write_table = NULL;
        return -1;
    }
    if (d->write_table == NULL || d->write_closed)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "fake: write_close without an open write");
    d->write_closed = 1;
    d->busy_left = d->busy_answers;
    return 0;
}

/* Whether the closed write is done (driver.h): not for the first
 * tgt_fake_set_busy answers after each write_close, as a server still busy
 * with the rows.  Counted and logged like any call; it cannot fail. */
static int fake_write_ready(tgt_driver *base)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure how;
    (void)take_failure(d, op_index("write_ready"), &how);
    if (d->write_table == NULL || !d->write_closed || d->busy_left == 0)
        return 1;
    d->busy_left--;
    return 0;
}

/* Whether write_data would wait (driver.h): "no room" for the first
 * tgt_fake_set_room answers after each write_begin, as a socket whose
 * buffer the server has not drained yet, then room for the rest of the
 * write.  Counted and logged like any call; it cannot fail. */
static int fake_write_room(tgt_driver *base)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure how;
    (void)take_failure(d, op_index("write_room"), &how);
    if (d->write_table == NULL || d->write_closed || d->room_left == 0)
        return 1;
    d->room_left--;
    return 0;
}

/* Index in ft->rows of the row whose key equals the staged row's, or -1. */
static long find_key(const fake_table *ft, char *const *staged)
{
    for (size_t i = 0; i < ft->rows.n_rows; i++) {
        int same = 1;
        for (size_t k = 0; same && k < ft->n_keys; k++) {
            long c = find_column(ft, ft->key[k]);
            const char *a = ft->rows.rows[i][c], *b = staged[c];
            same = a != NULL && b != NULL && strcmp(a, b) == 0;
        }
        if (same)
            return (long)i;
    }
    return -1;
}

/* 1 when staged rows a and b carry the same key. */
static int same_key(const fake_table *ft, char *const *a, char *const *b)
{
    for (size_t k = 0; k < ft->n_keys; k++) {
        long c = find_column(ft, ft->key[k]);
        if (a[c] == NULL || b[c] == NULL || strcmp(a[c], b[c]) != 0)
            return 0;
    }
    return 1;
}

/* 1 when staged row r carried column c: its presence mask (the column after
 * the sequence) is NULL for a complete record, else '1' or '0' per column. */
static int carried(const fake_table *ft, char *const *r, size_t c)
{
    const char *mask = r[ft->n_columns + 1];
    return mask == NULL || mask[c] == '1';
}

static unsigned long long seq_of(const fake_table *ft, char *const *r)
{
    return strtoull(r[ft->n_columns], NULL, 10);
}

/* Applies staged row r onto *row (owned cells, n_columns of them): each
 * column it carried replaces the cell.  A deletion (hard_delete and a mark)
 * empties the row instead; *deleted tells. */
static int apply_onto(const fake_table *ft, const tgt_table *t, char *const *r, char **row,
                      int *deleted)
{
    if (t->hard_delete && t->deleted_at_column >= 0 && r[t->deleted_at_column] != NULL) {
        for (size_t c = 0; c < ft->n_columns; c++) {
            free(row[c]);
            row[c] = NULL;
        }
        *deleted = 1;
        return 0;
    }
    *deleted = 0;
    for (size_t c = 0; c < ft->n_columns; c++) {
        if (!carried(ft, r, c))
            continue;
        char *v = dup_or_null(r[c]);
        if (r[c] != NULL && v == NULL)
            return -1;
        free(row[c]);
        row[c] = v;
    }
    return 0;
}

/* Merges the staged rows of one key (staged[i] is the first of them): the
 * stored row (or an empty one) takes each staged row in sequence order, so
 * per column the newest row that carried it wins. */
static int merge_key(fake_table *ft, const tgt_table *t, size_t first, unsigned char *done,
                     unsigned long *changed)
{
    fake_rows *st = &ft->staging;
    long at = find_key(ft, st->rows[first]);
    char **row = calloc(ft->n_columns + 1, sizeof(*row));
    if (row == NULL)
        return -1;
    for (size_t c = 0; at >= 0 && c < ft->n_columns; c++)
        if (ft->rows.rows[at][c] != NULL && (row[c] = strdup(ft->rows.rows[at][c])) == NULL)
            goto nomem;
    int deleted = 0;
    for (;;) {
        long next = -1; /* the key's staged row with the lowest sequence not applied yet */
        for (size_t j = first; j < st->n_rows; j++)
            if (!done[j] && same_key(ft, st->rows[first], st->rows[j]) &&
                (next < 0 || seq_of(ft, st->rows[j]) < seq_of(ft, st->rows[next])))
                next = (long)j;
        if (next < 0)
            break;
        done[next] = 1;
        if (apply_onto(ft, t, st->rows[next], row, &deleted) != 0)
            goto nomem;
    }
    if (at >= 0)
        rows_delete(&ft->rows, (size_t)at);
    int rc = deleted ? 0 : rows_add(&ft->rows, row, ft->n_columns);
    *changed += deleted ? 0 : 1;
    for (size_t c = 0; c < ft->n_columns; c++)
        free(row[c]);
    free(row);
    return rc;
nomem:
    for (size_t c = 0; c < ft->n_columns; c++)
        free(row[c]);
    free(row);
    return -1;
}

static int fake_merge(tgt_driver *base, const tgt_table *t, int partial, unsigned long *changed,
                      tgt_error *err)
{
    (void)partial; /* merge_key handles complete rows as the special case they are */
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    *changed = 0;
    if (enter(d, op_index("merge"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, t->schema, t->name, err);
    if (ft == NULL)
        return -1;
    fake_rows *st = &ft->staging;
    for (size_t i = 0; i < st->n_rows; i++)
        if (refused_value(d, ft, st->rows[i]))
            return refuse_unnamed(err);
    unsigned char *done = calloc(st->n_rows + 1, 1);
    if (done == NULL)
        return tgt_error_nomem(err);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < st->n_rows; i++)
        if (!done[i])
            rc = merge_key(ft, t, i, done, changed);
    free(done);
    rows_free(st);
    return rc == 0 ? 0 : tgt_error_nomem(err);
}

static int fake_activate_version(tgt_driver *base, const char *schema, const char *table,
                                 const char *version_column, const char *deleted_column,
                                 const char *version, int hard, unsigned long *affected,
                                 tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    *affected = 0;
    if (enter(d, op_index("activate_version"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, schema, table, err);
    if (ft == NULL)
        return -1;
    long vc = find_column(ft, version_column), dc = find_column(ft, deleted_column);
    if (vc < 0 || dc < 0)
        return tgt_error_set(err, TGT_ERR_LOAD, "fake: no version or deletion column");
    long long v = strtoll(version, NULL, 10);
    for (size_t i = ft->rows.n_rows; i-- > 0;) {
        char **row = ft->rows.rows[i];
        if (row[vc] != NULL && strtoll(row[vc], NULL, 10) >= v)
            continue;
        if (hard) {
            rows_delete(&ft->rows, i);
            (*affected)++;
        } else if (row[dc] == NULL) {
            if ((row[dc] = strdup("now")) == NULL)
                return tgt_error_nomem(err);
            (*affected)++;
        }
    }
    return 0;
}

static int fake_set_primary_key(tgt_driver *base, const tgt_table *t, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("set_primary_key"), &after, err) != 0)
        return -1;
    fake_table *ft = table_of(d, t->schema, t->name, err);
    if (ft == NULL)
        return -1;
    ft->n_keys = 0;
    for (size_t k = 0; k < t->n_keys; k++) {
        const char *name = t->columns[t->key_columns[k]].name;
        memcpy(ft->key[ft->n_keys++], name, TGT_IDENT_MAX + 1);
        long c = find_column(ft, name);
        if (c >= 0)
            ft->columns[c].not_null = 1;
    }
    return 0;
}

static int fake_drop_table(tgt_driver *base, const char *schema, const char *table, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("drop_table"), &after, err) != 0)
        return -1;
    fake_table *ft = find_table(d, schema, table);
    if (ft != NULL)
        remove_table(d, ft);
    return 0;
}

static int fake_replace_table(tgt_driver *base, const char *schema, const char *live,
                              const char *shadow, tgt_error *err)
{
    fake_driver *d = (fake_driver *)base;
    tgt_fake_failure after;
    if (enter(d, op_index("replace_table"), &after, err) != 0)
        return -1;
    fake_table *sh = table_of(d, schema, shadow, err);
    if (sh == NULL)
        return -1;
    fake_table *old = find_table(d, schema, live);
    if (old != NULL)
        remove_table(d, old);
    snprintf(sh->name, sizeof(sh->name), "%s", live);
    return 0;
}

/* Limits unlike PostgreSQL's on purpose, so that a core still assuming
 * PostgreSQL's numbers fails the unit tests (test_loader.c). */
static const tgt_driver_caps fake_caps = {
    .ident_max = TGT_FAKE_IDENT_MAX,
    .max_columns = 100,
    .column_budget = TGT_FAKE_COLUMN_BUDGET,
    .json_max_depth = TGT_FAKE_JSON_MAX_DEPTH,
    /* tables are created and replaced at once, whatever rollback() does */
    .transactional_ddl = 0,
    .column_comments = 1,
};

static const tgt_driver_ops fake_ops = {
    .name = "fake",
    .rows = &tgt_fake_row_ops,
    .caps = &fake_caps,
    .connect = fake_connect,
    .free = fake_free,
    .describe_table = fake_describe_table,
    .ensure_schema = fake_ensure_schema,
    .create_table = fake_create_table,
    .add_column = fake_add_column,
    .alter_column_types = fake_alter_column_types,
    .begin = fake_begin,
    .commit = fake_commit,
    .rollback = fake_rollback,
    .commit_status = fake_commit_status,
    .tables_per_transaction = fake_tables_per_transaction,
    .lock_for_merge = fake_lock_for_merge,
    .write_begin = fake_write_begin,
    .write_data = fake_write_data,
    .write_end = fake_write_end,
    .write_close = fake_write_close,
    .write_ready = fake_write_ready,
    .merge = fake_merge,
    .activate_version = fake_activate_version,
    .set_primary_key = fake_set_primary_key,
    .drop_table = fake_drop_table,
    .replace_table = fake_replace_table,
};

tgt_driver *tgt_fake_driver_new(tgt_error *err)
{
    fake_driver *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        tgt_error_nomem(err);
        return NULL;
    }
    /* a copy: tgt_fake_set_room adds write_room to this driver's alone */
    d->ops = fake_ops;
    d->base.ops = &d->ops;
    d->tables_per_txn = 1000;
    tgt_sbuf_init(&d->log);
    tgt_sbuf_init(&d->pending);
    tgt_sbuf_init(&d->cells);
    return &d->base;
}

/* --- test inspection ------------------------------------------------------------------ */

void tgt_fake_fail_at(tgt_driver *base, const char *op, unsigned n, tgt_fake_failure how,
                      unsigned long row)
{
    fake_driver *d = (fake_driver *)base;
    int i = op_index(op);
    if (i < 0 || n == 0)
        return;
    d->failures[i].at = d->calls[i] + n;
    d->failures[i].how = how;
    d->failures[i].row = row;
}

int tgt_fake_refuse_value(tgt_driver *base, const char *column, const char *value)
{
    fake_driver *d = (fake_driver *)base;
    free(d->refuse_value);
    snprintf(d->refuse_column, sizeof(d->refuse_column), "%s", column);
    d->refuse_value = strdup(value);
    return d->refuse_value == NULL ? -1 : 0;
}

int tgt_fake_check_value(tgt_driver *base, const char *column, const char *value)
{
    fake_driver *d = (fake_driver *)base;
    free(d->check_value);
    snprintf(d->check_column, sizeof(d->check_column), "%s", column);
    d->check_value = strdup(value);
    return d->check_value == NULL ? -1 : 0;
}

void tgt_fake_set_tables_per_transaction(tgt_driver *base, size_t n)
{
    ((fake_driver *)base)->tables_per_txn = n;
}

void tgt_fake_set_busy(tgt_driver *base, unsigned answers)
{
    ((fake_driver *)base)->busy_answers = answers;
}

void tgt_fake_set_room(tgt_driver *base, unsigned full)
{
    fake_driver *d = (fake_driver *)base;
    d->ops.write_room = fake_write_room;
    d->room_full = full;
}

unsigned tgt_fake_calls(const tgt_driver *base, const char *op)
{
    const fake_driver *d = (const fake_driver *)base;
    int i = op_index(op);
    return i < 0 ? 0 : d->calls[i];
}

const char *tgt_fake_call_log(const tgt_driver *base)
{
    return tgt_sbuf_str(&((const fake_driver *)base)->log);
}

size_t tgt_fake_row_count(const tgt_driver *base, const char *schema, const char *table)
{
    const fake_table *ft = find_table((const fake_driver *)base, schema, table);
    return ft == NULL ? 0 : ft->rows.n_rows;
}

const char *tgt_fake_value(const tgt_driver *base, const char *schema, const char *table,
                           size_t row, const char *column, int *found)
{
    const fake_table *ft = find_table((const fake_driver *)base, schema, table);
    long c = ft == NULL ? -1 : find_column(ft, column);
    int ok = c >= 0 && row < ft->rows.n_rows;
    if (found != NULL)
        *found = ok;
    return ok ? ft->rows.rows[row][c] : NULL;
}

tgt_coltype tgt_fake_column_type(const tgt_driver *base, const char *schema, const char *table,
                                 const char *column)
{
    const fake_table *ft = find_table((const fake_driver *)base, schema, table);
    long c = ft == NULL ? -1 : find_column(ft, column);
    return c >= 0 ? ft->columns[c].type : tgt_type_make(TGT_T_OTHER);
}
