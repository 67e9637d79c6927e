/*
 * odbc_bulk.c - the bulk stream over ODBC: write_begin prepares one INSERT
 * with a parameter per column, write_data takes the row writer's bytes
 * (odbc_rows.c; any split of whole rows) and sends them as column-wise
 * bound parameter arrays, SQL_ATTR_PARAMSET_SIZE rows per SQLExecute.
 *
 * The rows of a round stay in `pending` (the writer's bytes as received);
 * per row and parameter only an offset and a length are kept.  At a flush
 * each parameter gets one array of fixed-width slots as wide as its longest
 * value in the round, which is why a round ends not only at
 * ODBC_ROWS_PER_EXEC rows but also before its arrays would pass
 * ODBC_ROUND_BYTES: one long value makes the round shorter instead of every
 * slot long.  Memory therefore stays bounded whatever the data.  A server
 * with a limit on one command (odbc_dialect packet_limit_sql: MariaDB's
 * max_allowed_packet, which one parameter array must fit) ends a round
 * also before the rows' bytes would pass it, and a row that cannot fit on
 * its own is refused as the exact row (sqlstate 54000, an invalid record),
 * instead of a command the server answers by dropping the connection.
 *
 * A dialect with rows_per_statement k > 1 gets multi-row INSERTs instead:
 * the same arrays, each group of k rows bound to one statement's k x n
 * parameters and executed on its own, the round's last rows (fewer than k)
 * through a one-row statement.
 *
 * A refused row is reported by its position in the write (driver.h
 * bulk_row): exact when the ODBC driver marks it in the parameter status
 * array or a one-row statement refused it, otherwise how far the driver
 * got (SQL_ATTR_PARAMS_PROCESSED_PTR, or the end of the refused group),
 * which makes the core search for it.
 */
#include "odbc_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

#define ODBC_ROWS_PER_EXEC 1000
#define ODBC_ROUND_BYTES (16u << 20)
#define NO_VALUE ((size_t)-1)
#define MAX_STATEMENT_PARAMS 30000
/* Per value in a bulk command: a null indicator and a length of up to 9
 * bytes (MariaDB COM_STMT_BULK_EXECUTE); per command: its header and two
 * type bytes per parameter (at most 1,017 columns + 2). */
#define PACKET_VALUE_OVERHEAD 10
#define PACKET_HEADROOM 4096

static void free_round_arrays(odbc_bulk *b)
{
    if (b->column_buf != NULL)
        for (size_t p = 0; p < b->n_alloc; p++)
            free(b->column_buf[p]);
    if (b->indicators != NULL)
        for (size_t p = 0; p < b->n_alloc; p++)
            free(b->indicators[p]);
    free(b->column_buf);
    free(b->column_cap);
    free(b->indicators);
    free(b->max_len);
    free(b->offsets);
    free(b->lengths);
    free(b->status);
    free(b->param_column);
    b->column_buf = NULL;
    b->column_cap = NULL;
    b->indicators = NULL;
    b->max_len = NULL;
    b->offsets = b->lengths = NULL;
    b->status = NULL;
    b->param_column = NULL;
    b->cap_rows = b->n_rows = 0;
    b->n_alloc = 0;
}

void odbc_bulk_free(odbc_driver *d)
{
    odbc_bulk *b = &d->bulk;
    free_round_arrays(b);
    if (b->stmt != SQL_NULL_HSTMT)
        SQLFreeHandle(SQL_HANDLE_STMT, b->stmt);
    if (b->stmt1 != SQL_NULL_HSTMT)
        SQLFreeHandle(SQL_HANDLE_STMT, b->stmt1);
    b->stmt = b->stmt1 = SQL_NULL_HSTMT;
    free(b->insert_sql);
    free(b->insert1_sql);
    b->insert_sql = b->insert1_sql = NULL;
    tgt_sbuf_deinit(&b->pending);
    b->open = 0;
}

int odbc_bulk_read_limit(odbc_driver *d, tgt_error *err)
{
    d->max_packet = 0;
    if (d->dialect->packet_limit_sql == NULL)
        return 0;
    odbc_result r;
    int rc = odbc_query(d, d->dialect->packet_limit_sql, NULL, 0, &r, err,
                        "while reading the server's packet limit");
    const char *v = rc == 0 ? odbc_result_get(&r, 0, 0) : NULL;
    if (v != NULL) {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        if (end != v && *end == '\0')
            d->max_packet = (size_t)n;
    }
    odbc_result_free(&r);
    return rc;
}

void odbc_bulk_abort(odbc_driver *d)
{
    odbc_bulk *b = &d->bulk;
    b->open = 0;
    b->n_rows = 0;
    b->round_packet = 0;
    b->parse_pos = b->round_start = 0;
    tgt_sbuf_reset(&b->pending);
}

/* INSERT INTO <target> (<cols>[, seq, present]) VALUES (?, ...)[, (?, ...)]:
 * `rows` groups of parameters. */
static int build_insert(odbc_driver *d, const tgt_table *t, tgt_write_mode mode, size_t rows,
                        tgt_sbuf *sb, tgt_error *err)
{
    size_t n = odbc_existing_columns(t) + (mode == TGT_WRITE_STAGING ? 2 : 0);
    if (n == 0)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "\"%s\".\"%s\" has no columns to load into",
                             t->schema, t->name);
    if (d->dialect->insert_prefix != NULL)
        tgt_sbuf_append_str(sb, d->dialect->insert_prefix);
    tgt_sbuf_append_str(sb, "INSERT INTO ");
    if (mode == TGT_WRITE_STAGING)
        d->dialect->stage_name(d, sb, t);
    else
        odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " (");
    odbc_sql_columns(d, sb, t, "");
    if (mode == TGT_WRITE_STAGING) {
        tgt_sbuf_append_str(sb, odbc_existing_columns(t) > 0 ? ", " : "");
        odbc_sql_ident(d, sb, ODBC_SEQ_COLUMN);
        tgt_sbuf_append_str(sb, ", ");
        odbc_sql_ident(d, sb, ODBC_PRESENT_COLUMN);
    }
    tgt_sbuf_append_str(sb, ") VALUES ");
    for (size_t r = 0; r < rows; r++) {
        tgt_sbuf_append_str(sb, r > 0 ? ", (" : "(");
        for (size_t i = 0; i < n; i++)
            tgt_sbuf_append_str(sb, i > 0 ? ", ?" : "?");
        tgt_sbuf_append_char(sb, ')');
    }
    return odbc_sql_check(sb, err);
}

/* Prepares sb's statement on *stmt (whose text is *sql) unless it is
 * prepared already (prepare_inserts forgets the texts when the table's
 * shape changed). */
static int prepare(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, SQLHSTMT *stmt, char **sql,
                   tgt_error *err)
{
    if (*stmt != SQL_NULL_HSTMT && *sql != NULL && strcmp(*sql, tgt_sbuf_str(sb)) == 0)
        return 0;
    if (*stmt != SQL_NULL_HSTMT)
        SQLFreeHandle(SQL_HANDLE_STMT, *stmt);
    *stmt = SQL_NULL_HSTMT;
    free(*sql);
    *sql = NULL;
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof where, "while preparing to load \"%s\".\"%s\"", t->schema, t->name);
    if (!ODBC_OK(SQLAllocHandle(SQL_HANDLE_STMT, d->dbc, stmt))) {
        *stmt = SQL_NULL_HSTMT;
        return odbc_fail(d, SQL_HANDLE_DBC, d->dbc, err, where);
    }
    if (!ODBC_OK(SQLPrepare(*stmt, (SQLCHAR *)tgt_sbuf_str(sb), SQL_NTS))) {
        odbc_fail(d, SQL_HANDLE_STMT, *stmt, err, where);
        SQLFreeHandle(SQL_HANDLE_STMT, *stmt);
        *stmt = SQL_NULL_HSTMT;
        return -1;
    }
    *sql = tgt_sbuf_take(sb);
    return *sql == NULL ? tgt_error_nomem(err) : 0;
}

/* The INSERT statements of a write into t: one (group 1, parameter
 * arrays), or the group statement and the one-row statement. */
static int prepare_inserts(odbc_driver *d, const tgt_table *t, tgt_write_mode mode, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    tgt_sbuf *sb = &d->sql;
    /* the same text after a type change must be prepared again: a
     * server-side prepared statement (psqlODBC) keeps the parameter types
     * it inferred from the old columns */
    if (b->insert_shape != t->shape_version) {
        free(b->insert_sql);
        free(b->insert1_sql);
        b->insert_sql = b->insert1_sql = NULL;
        b->insert_shape = t->shape_version;
    }
    tgt_sbuf_reset(sb);
    if (build_insert(d, t, mode, b->group, sb, err) < 0 ||
        prepare(d, sb, t, &b->stmt, &b->insert_sql, err) < 0)
        return -1;
    if (b->group == 1)
        return 0;
    tgt_sbuf_reset(sb);
    if (build_insert(d, t, mode, 1, sb, err) < 0 ||
        prepare(d, sb, t, &b->stmt1, &b->insert1_sql, err) < 0)
        return -1;
    return 0;
}

static int alloc_params(odbc_bulk *b, const tgt_table *t, tgt_error *err)
{
    free_round_arrays(b);
    size_t n = b->n_params;
    b->n_alloc = n;
    b->param_column = calloc(n, sizeof(*b->param_column));
    b->max_len = calloc(n, sizeof(*b->max_len));
    b->column_buf = calloc(n, sizeof(*b->column_buf));
    b->column_cap = calloc(n, sizeof(*b->column_cap));
    b->indicators = calloc(n, sizeof(*b->indicators));
    b->cap_rows = ODBC_ROWS_PER_EXEC;
    b->offsets = calloc(b->cap_rows * n, sizeof(*b->offsets));
    b->lengths = calloc(b->cap_rows * n, sizeof(*b->lengths));
    b->status = calloc(b->cap_rows, sizeof(*b->status));
    if (b->param_column == NULL || b->max_len == NULL || b->column_buf == NULL ||
        b->column_cap == NULL || b->indicators == NULL || b->offsets == NULL ||
        b->lengths == NULL || b->status == NULL)
        return tgt_error_nomem(err);
    for (size_t p = 0; p < n; p++) {
        b->indicators[p] = calloc(b->cap_rows, sizeof(SQLLEN));
        if (b->indicators[p] == NULL)
            return tgt_error_nomem(err);
    }
    size_t p = 0;
    for (size_t i = 0; i < t->n_columns; i++)
        if (t->columns[i].exists)
            b->param_column[p++] = i;
    return 0;
}

int odbc_write_begin(tgt_driver *base, const tgt_table *t, tgt_write_mode mode, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    odbc_bulk *b = &d->bulk;
    if (b->open)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: a write into \"%s\".\"%s\" is open",
                             b->table->schema, b->table->name);
    if (mode == TGT_WRITE_STAGING) {
        if (d->dialect->prepare_stage(d, t, err) < 0)
            return -1;
        odbc_stage *s = odbc_stage_find(d, t->schema, t->name);
        if (s != NULL)
            s->filled = 1;
    }
    b->n_data = odbc_existing_columns(t);
    b->n_params = b->n_data + (mode == TGT_WRITE_STAGING ? 2 : 0);
    b->group = d->dialect->rows_per_statement > 1 ? d->dialect->rows_per_statement : 1;
    if (b->n_params > 0 && b->group * b->n_params > MAX_STATEMENT_PARAMS)
        b->group = MAX_STATEMENT_PARAMS / b->n_params > 0 ? MAX_STATEMENT_PARAMS / b->n_params : 1;
    if (prepare_inserts(d, t, mode, err) < 0)
        return -1;
    b->table = t;
    b->mode = mode;
    if (alloc_params(b, t, err) < 0)
        return -1;
    b->sent = 0;
    b->round_packet = 0;
    b->parse_pos = b->round_start = 0;
    tgt_sbuf_reset(&b->pending);
    b->open = 1;
    return 0;
}

/* Parses the row at b->parse_pos into slot b->n_rows: 1 when whole, 0 when
 * its bytes have not all arrived, -1 when malformed. */
static int parse_row(odbc_bulk *b)
{
    const char *data = b->pending.data;
    size_t end = b->pending.len, pos = b->parse_pos;
    size_t *off = b->offsets + b->n_rows * b->n_params;
    size_t *len = b->lengths + b->n_rows * b->n_params;
    for (size_t p = 0; p < b->n_data; p++) {
        if (pos >= end)
            return 0;
        if (data[pos] == ODBC_TAG_NULL) {
            off[p] = NO_VALUE;
            len[p] = 0;
            pos++;
            continue;
        }
        if (data[pos] != ODBC_TAG_VALUE)
            return -1;
        if (end - pos < 5)
            return 0;
        uint32_t n;
        memcpy(&n, data + pos + 1, 4);
        if (end - pos - 5 < n)
            return 0;
        off[p] = pos + 5;
        len[p] = n;
        pos += 5 + (size_t)n;
    }
    if (pos >= end)
        return 0;
    if (b->mode != TGT_WRITE_STAGING) { /* APPEND and DIRECT rows end alike */
        if (data[pos] != ODBC_TAG_END)
            return -1;
        pos++;
    } else {
        if (data[pos] != ODBC_TAG_STAGED)
            return -1;
        if (end - pos < 13)
            return 0;
        uint32_t n;
        memcpy(&n, data + pos + 9, 4);
        if (end - pos - 13 < n)
            return 0;
        off[b->n_data] = pos + 1; /* the 8-byte sequence */
        len[b->n_data] = 8;
        off[b->n_data + 1] = n > 0 ? pos + 13 : NO_VALUE;
        len[b->n_data + 1] = n;
        pos += 13 + (size_t)n;
    }
    b->parse_pos = pos;
    return 1;
}

/* Text of the sequence (8 bytes at p) into buf; its length. */
static size_t sequence_text(const char *p, char *buf, size_t cap)
{
    uint64_t seq;
    memcpy(&seq, p, 8);
    int n = snprintf(buf, cap, "%llu", (unsigned long long)seq);
    return n > 0 ? (size_t)n : 0;
}

#define SEQ_WIDTH 24

/* The slot width of parameter p in this round's arrays. */
static size_t param_width(const odbc_bulk *b, size_t p)
{
    return b->mode == TGT_WRITE_STAGING && p == b->n_data ? SEQ_WIDTH : b->max_len[p] + 1;
}

/* The ODBC SQL type parameter p is bound as. */
static SQLSMALLINT param_type(odbc_driver *d, size_t p)
{
    const odbc_bulk *b = &d->bulk;
    if (p >= b->n_data)
        return SQL_VARCHAR;
    return (SQLSMALLINT)d->dialect->bind_type(b->table->columns[b->param_column[p]].live_type);
}

/* Binds parameter `number` of stmt to parameter p of the round from row
 * `row` on (an array when the statement runs a parameter set). */
static int bind_param(odbc_driver *d, SQLHSTMT stmt, SQLUSMALLINT number, size_t p, size_t row,
                      tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    size_t width = param_width(b, p);
    SQLULEN size = width > 1 ? (SQLULEN)(width - 1) : 1;
    if (!ODBC_OK(SQLBindParameter(stmt, number, SQL_PARAM_INPUT, SQL_C_CHAR, param_type(d, p), size,
                                  0, b->column_buf[p] + row * width, (SQLLEN)width,
                                  b->indicators[p] + row)))
        return odbc_fail(d, SQL_HANDLE_STMT, stmt, err, "while binding rows");
    return 0;
}

/* Copies the round's values into one fixed-width array per parameter. */
static int fill_round(odbc_driver *d, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    for (size_t p = 0; p < b->n_params; p++) {
        int is_seq = b->mode == TGT_WRITE_STAGING && p == b->n_data;
        size_t width = param_width(b, p);
        size_t need = width * b->n_rows;
        if (b->column_cap[p] < need) {
            char *grown = realloc(b->column_buf[p], need);
            if (grown == NULL)
                return tgt_error_nomem(err);
            b->column_buf[p] = grown;
            b->column_cap[p] = need;
        }
        for (size_t r = 0; r < b->n_rows; r++) {
            size_t off = b->offsets[r * b->n_params + p];
            size_t len = b->lengths[r * b->n_params + p];
            char *slot = b->column_buf[p] + r * width;
            if (off == NO_VALUE) {
                b->indicators[p][r] = SQL_NULL_DATA;
                continue;
            }
            if (is_seq)
                len = sequence_text(b->pending.data + off, slot, width);
            else
                memcpy(slot, b->pending.data + off, len);
            slot[len] = '\0';
            /* SQL_NTS, not the length: every slot is NUL-terminated and
             * no value holds a NUL byte (the row writer turns U+0000 into
             * U+FFFD; JSON text has none raw), and libsqliteodbc copies a
             * value given with a length into a buffer of its own first */
            b->indicators[p][r] = SQL_NTS;
        }
    }
    return 0;
}

/* The dialect's value_fits over the round's numbers: a value the
 * warehouse would round is refused here, as the exact row (driver.h). */
static int check_numbers(odbc_driver *d, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    if (d->dialect->value_fits == NULL)
        return 0;
    for (size_t p = 0; p < b->n_data; p++) {
        const tgt_column *c = &b->table->columns[b->param_column[p]];
        tgt_type_kind kind = c->live_type.kind;
        if (kind != TGT_T_NUMERIC && kind != TGT_T_REAL && kind != TGT_T_DOUBLE)
            continue;
        for (size_t r = 0; r < b->n_rows; r++) {
            size_t off = b->offsets[r * b->n_params + p];
            const char *why = NULL;
            if (off == NO_VALUE || d->dialect->value_fits(c->live_type, b->pending.data + off,
                                                          b->lengths[r * b->n_params + p], &why))
                continue;
            tgt_error_set(err, TGT_ERR_LOAD, "%s: the value of column \"%s\" does not fit: %s",
                          d->dbms_name, c->name, why != NULL ? why : "out of range");
            tgt_error_sqlstate(err, "22003"); /* numeric value out of range: a refused value */
            err->bulk_row = b->sent + r + 1;
            err->bulk_row_exact = 1;
            return -1;
        }
    }
    return 0;
}

/* Where a refused row is, from the status array or the processed count.
 * One row marked SQL_PARAM_ERROR is the refused row; several are a chunk
 * the ODBC driver sent as one statement (psqlODBC marks every row of its
 * BatchSize chunk): the refused row is among them, so the last one is how
 * far the write got. */
static void locate_refusal(odbc_bulk *b, SQLULEN processed, tgt_error *err)
{
    size_t n_errors = 0, last = 0;
    for (size_t r = 0; r < b->n_rows; r++) {
        if (b->status[r] == SQL_PARAM_ERROR) {
            if (n_errors++ == 0)
                err->bulk_row = b->sent + r + 1;
            last = r;
        }
    }
    if (n_errors > 0) {
        err->bulk_row_exact = n_errors == 1;
        if (n_errors > 1)
            err->bulk_row = b->sent + last + 1;
        return;
    }
    if (processed > 0 && processed <= b->n_rows) {
        err->bulk_row = b->sent + processed;
        err->bulk_row_exact = 0;
    }
}

/* Runs one statement over `rows` rows from row `first` (bound already);
 * a refusal is located at the last of them, exactly when rows is 1. */
static int execute_statement(odbc_driver *d, SQLHSTMT stmt, size_t first, size_t rows,
                             const char *where, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    if (ODBC_OK(SQLExecute(stmt))) {
        SQLFreeStmt(stmt, SQL_CLOSE);
        return 0;
    }
    int fresh = !tgt_error_is_set(err);
    odbc_fail(d, SQL_HANDLE_STMT, stmt, err, where);
    if (fresh && !err->connection_lost) {
        err->bulk_row = b->sent + first + rows;
        err->bulk_row_exact = rows == 1;
    }
    SQLFreeStmt(stmt, SQL_CLOSE);
    return -1;
}

/* Multi-row statements: each group of `group` rows through stmt, the
 * rest one by one through stmt1. */
static int execute_groups(odbc_driver *d, const char *where, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    size_t full = b->n_rows / b->group * b->group;
    for (size_t g = 0; g < full; g += b->group) {
        for (size_t j = 0; j < b->group; j++)
            for (size_t p = 0; p < b->n_params; p++)
                if (bind_param(d, b->stmt, (SQLUSMALLINT)(j * b->n_params + p + 1), p, g + j, err) <
                    0)
                    return -1;
        if (execute_statement(d, b->stmt, g, b->group, where, err) < 0)
            return -1;
    }
    for (size_t r = full; r < b->n_rows; r++) {
        for (size_t p = 0; p < b->n_params; p++)
            if (bind_param(d, b->stmt1, (SQLUSMALLINT)(p + 1), p, r, err) < 0)
                return -1;
        if (execute_statement(d, b->stmt1, r, 1, where, err) < 0)
            return -1;
    }
    return 0;
}

/* One statement over the whole round as parameter arrays. */
static int execute_arrays(odbc_driver *d, const char *where, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    /* Unbind the previous round first: MariaDB Connector/ODBC 3.1.15 sends
     * garbage when a parameter is bound again at the same address with
     * another width (a round after one with a longer value) */
    if (!ODBC_OK(SQLFreeStmt(b->stmt, SQL_RESET_PARAMS)))
        return odbc_fail(d, SQL_HANDLE_STMT, b->stmt, err, where);
    for (size_t p = 0; p < b->n_params; p++)
        if (bind_param(d, b->stmt, (SQLUSMALLINT)(p + 1), p, 0, err) < 0)
            return -1;
    SQLULEN processed = 0;
    for (size_t r = 0; r < b->n_rows; r++)
        b->status[r] = SQL_PARAM_UNUSED;
    if (!ODBC_OK(SQLSetStmtAttr(b->stmt, SQL_ATTR_PARAM_BIND_TYPE,
                                (SQLPOINTER)SQL_PARAM_BIND_BY_COLUMN, 0)) ||
        !ODBC_OK(
            SQLSetStmtAttr(b->stmt, SQL_ATTR_PARAMSET_SIZE, (SQLPOINTER)(uintptr_t)b->n_rows, 0)) ||
        !ODBC_OK(SQLSetStmtAttr(b->stmt, SQL_ATTR_PARAM_STATUS_PTR, b->status, 0)) ||
        !ODBC_OK(SQLSetStmtAttr(b->stmt, SQL_ATTR_PARAMS_PROCESSED_PTR, &processed, 0)))
        return odbc_fail(d, SQL_HANDLE_STMT, b->stmt, err, where);
    SQLRETURN rc = SQLExecute(b->stmt);
    int refused = 0;
    for (size_t r = 0; r < b->n_rows; r++)
        refused |= b->status[r] == SQL_PARAM_ERROR;
    if (!ODBC_OK(rc) || refused) {
        int fresh = !tgt_error_is_set(err);
        if (!ODBC_OK(rc))
            odbc_fail(d, SQL_HANDLE_STMT, b->stmt, err, where);
        else
            tgt_error_set(err, TGT_ERR_LOAD, "%s refused a row", d->dbms_name);
        if (fresh && !err->connection_lost)
            locate_refusal(b, processed, err);
        SQLFreeStmt(b->stmt, SQL_CLOSE);
        return -1;
    }
    SQLFreeStmt(b->stmt, SQL_CLOSE);
    return 0;
}

/* A direct write (driver.h, TGT_WRITE_DIRECT) refused for an integrity
 * constraint is taken as a key clash: ODBC drivers do not agree on telling
 * a duplicate key from the other constraints (SQLite and MariaDB say 23000
 * for all of them), and the staging path the core then takes finds any
 * other refusal on its own, as it would for an upsert. */
static void mark_key_clash(const odbc_bulk *b, tgt_error *err)
{
    if (b->mode == TGT_WRITE_DIRECT && !err->connection_lost &&
        strncmp(err->sqlstate, "23", 2) == 0)
        err->key_clash = 1;
}

/* Sends the buffered rows and drops their bytes from pending. */
static int flush(odbc_driver *d, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    if (b->n_rows == 0)
        return 0;
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof where, "while loading \"%s\".\"%s\"", b->table->schema, b->table->name);
    if (check_numbers(d, err) < 0 || fill_round(d, err) < 0)
        return -1;
    if ((b->group > 1 ? execute_groups(d, where, err) : execute_arrays(d, where, err)) < 0) {
        mark_key_clash(b, err);
        return -1;
    }
    b->sent += b->n_rows;
    b->n_rows = 0;
    b->round_packet = 0;
    for (size_t p = 0; p < b->n_params; p++)
        b->max_len[p] = 0;
    /* the sent rows' bytes stay until the next write_data (compact): moving
     * the rest down here would copy a large chunk once per round */
    return 0;
}

/* Drops the bytes before the first row still needed (the round's first
 * buffered row, else the next unparsed one), moving the buffered rows'
 * offsets with them. */
static void compact(odbc_bulk *b)
{
    size_t keep = b->n_rows > 0 ? b->round_start : b->parse_pos;
    if (keep == 0)
        return;
    memmove(b->pending.data, b->pending.data + keep, b->pending.len - keep);
    b->pending.len -= keep;
    b->parse_pos -= keep;
    b->round_start = 0;
    for (size_t i = 0; i < b->n_rows * b->n_params; i++)
        if (b->offsets[i] != NO_VALUE)
            b->offsets[i] -= keep;
}

/* The most bytes of rows one command may carry, 0: no limit. */
static size_t packet_limit(const odbc_driver *d)
{
    if (d->max_packet == 0)
        return 0;
    return d->max_packet > 2 * PACKET_HEADROOM ? d->max_packet - PACKET_HEADROOM
                                               : d->max_packet / 2;
}

/* The bytes the row just parsed (slot n_rows) adds to a command. */
static size_t row_packet(const odbc_bulk *b)
{
    size_t bytes = 0;
    const size_t *len = b->lengths + b->n_rows * b->n_params;
    for (size_t p = 0; p < b->n_params; p++)
        bytes += len[p] + PACKET_VALUE_OVERHEAD;
    return bytes;
}

/* 1 when taking the row just parsed (slot n_rows), which adds `packet`
 * bytes to the command, would make the round's arrays pass
 * ODBC_ROUND_BYTES or its command pass `limit` (0: none). */
static int round_would_overflow(const odbc_bulk *b, size_t packet, size_t limit)
{
    size_t width = 0;
    const size_t *len = b->lengths + b->n_rows * b->n_params;
    for (size_t p = 0; p < b->n_params; p++)
        width += (len[p] > b->max_len[p] ? len[p] : b->max_len[p]) + 1;
    return width * (b->n_rows + 1) > ODBC_ROUND_BYTES ||
           (limit > 0 && b->round_packet + packet > limit);
}

/* Refuses the row just parsed, alone in its round, as too big for one
 * command: the exact row, naming its longest value's column. */
static int refuse_big_row(odbc_driver *d, size_t packet, tgt_error *err)
{
    odbc_bulk *b = &d->bulk;
    const size_t *len = b->lengths + b->n_rows * b->n_params;
    size_t longest = 0;
    for (size_t p = 1; p < b->n_data; p++)
        if (len[p] > len[longest])
            longest = p;
    const char *column = b->n_data > 0 ? b->table->columns[b->param_column[longest]].name : "?";
    tgt_error_set(err, TGT_ERR_LOAD,
                  "%s: the value of column \"%s\" is too big to send: its row needs %zu bytes, "
                  "more than the server takes in one command (%zu bytes)",
                  d->dbms_name, column, packet, d->max_packet);
    tgt_error_sqlstate(err, "54000"); /* program limit exceeded: a refused value */
    err->bulk_row = b->sent + b->n_rows + 1;
    err->bulk_row_exact = 1;
    return -1;
}

/* Takes the row just parsed, `packet` bytes of a command, into the round. */
static void take_row(odbc_bulk *b, size_t packet)
{
    const size_t *len = b->lengths + b->n_rows * b->n_params;
    for (size_t p = 0; p < b->n_params; p++)
        if (len[p] > b->max_len[p])
            b->max_len[p] = len[p];
    b->round_packet += packet;
    b->n_rows++;
}

int odbc_write_data(tgt_driver *base, const char *data, size_t len, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    odbc_bulk *b = &d->bulk;
    if (!b->open)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: write_data without a write");
    compact(b);
    tgt_sbuf_append(&b->pending, data, len);
    if (!tgt_sbuf_ok(&b->pending))
        return tgt_error_nomem(err);
    for (;;) {
        size_t start = b->parse_pos;
        int got = parse_row(b);
        if (got < 0)
            return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: malformed row data");
        if (got == 0)
            return 0;
        size_t packet = row_packet(b), limit = packet_limit(d);
        if (b->n_rows > 0 &&
            (round_would_overflow(b, packet, limit) || (limit > 0 && packet > limit))) {
            /* send the round without this row, then read it again */
            b->parse_pos = start;
            if (flush(d, err) < 0)
                return -1;
            continue;
        }
        if (limit > 0 && packet > limit)
            return refuse_big_row(d, packet, err);
        if (b->n_rows == 0)
            b->round_start = start;
        take_row(b, packet);
        if (b->n_rows == b->cap_rows && flush(d, err) < 0)
            return -1;
    }
}

int odbc_write_end(tgt_driver *base, unsigned long *rows, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    odbc_bulk *b = &d->bulk;
    if (!b->open)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: write_end without a write");
    int rc = flush(d, err);
    if (rc == 0 && b->parse_pos != b->pending.len)
        rc = tgt_error_set(err, TGT_ERR_INTERNAL, "ODBC: a row was cut short");
    if (rows != NULL)
        *rows = b->sent;
    b->open = 0;
    tgt_sbuf_reset(&b->pending);
    b->parse_pos = b->round_start = 0;
    b->n_rows = 0;
    b->round_packet = 0;
    return rc;
}
