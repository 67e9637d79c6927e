/*
 * pg_copy.c - the bulk stream: write_begin / write_data / write_end (and the
 * deferred end, write_close, with write_ready to see it done) over
 * COPY ... FROM STDIN (binary or text format), and the temporary staging
 * tables keyed streams write into.
 *
 * A staging table is "pg_temp"."tgt_stage_<8 hex>" (see pg_cache.c), made
 * LIKE the target table plus the trailing "target-pg sequence" bigint and
 * "target-pg present" text (driver.h), ON COMMIT DROP: it lives only in the
 * transaction that stages rows in it.  Staging tables that outlived their
 * transaction (ON COMMIT DELETE ROWS, as before) cost every later commit a
 * lock and a truncation each (the server empties all of them), and at the end
 * of the session one transaction must drop them all: with a few thousand
 * streams both fail with "out of shared memory" (and the leftover temporary
 * schema then fails the next session that gets it).  Creating one per
 * transaction costs one catalog insert per keyed stream and commit.  The COPY
 * statement per (table, shape, mode) is cached so starting a COPY builds
 * nothing.
 *
 * A direct write (TGT_WRITE_DIRECT: a keyed first load) is an append's COPY
 * into the table itself; the primary key refuses a key that is there or
 * twice in the rows, which write_end reports as a key clash.
 *
 * The rows themselves are already encoded (pg_encode_binary.h): binary
 * tuples for a table whose every column has a binary form, COPY text lines
 * for any other; they are passed on untouched.  The statement says which
 * (FORMAT binary), decided with the rows' own test and cached per table
 * shape, and a binary COPY gets its header here at write_begin and its
 * trailer at write_end: rows may be split, dropped and re-sent, so neither
 * belongs to one.  Errors in the data surface at write_end, with the server's
 * CONTEXT ("COPY t, line 3, column amount: ...") as the error's where.
 */
#include "pg_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "pg_encode_binary.h"

static int ensure_stage(pg_driver *d, const tgt_table *t, pg_table_cache *tc, tgt_error *err)
{
    if (tc->stage_ready && tc->stage_shape == t->shape_version)
        return 0;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "DROP TABLE IF EXISTS pg_temp.");
    pg_sql_ident(d, sb, tc->stage);
    tgt_sbuf_append_str(sb, "; CREATE TEMP TABLE ");
    pg_sql_ident(d, sb, tc->stage);
    tgt_sbuf_append_str(sb, " (LIKE ");
    pg_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " INCLUDING DEFAULTS, ");
    pg_sql_ident(d, sb, PG_SEQ_COLUMN);
    tgt_sbuf_append_str(sb, " bigint, ");
    pg_sql_ident(d, sb, PG_PRESENT_COLUMN);
    tgt_sbuf_append_str(sb, " text) ON COMMIT DROP");
    if (pg_sql_check(d, sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_DEBUG, "creating staging table %s for \"%s\".\"%s\" (shape %lu)", tc->stage,
            t->schema, t->name, t->shape_version);
    tc->stage_ready = 0;
    if (pg_command(d, tgt_sbuf_str(sb), err, "while creating the staging table for \"%s\".\"%s\"",
                   t->schema, t->name) < 0)
        return -1;
    tc->stage_ready = 1;
    tc->stage_shape = t->shape_version;
    return 0;
}

/* The cached COPY statement for t in mode, rebuilt when the shape changed. */
static const char *copy_sql(pg_driver *d, const tgt_table *t, pg_table_cache *tc,
                            tgt_write_mode mode, tgt_error *err)
{
    int m = mode == TGT_WRITE_STAGING ? 1 : 0;
    size_t ncols = pg_existing_columns(t);
    if (tc->copy_sql[m] != NULL && tc->copy_shape[m] == t->shape_version &&
        tc->copy_ncols[m] == ncols)
        return tc->copy_sql[m];
    if (ncols == 0 && mode != TGT_WRITE_STAGING) {
        tgt_error_set(err, TGT_ERR_INTERNAL, "\"%s\".\"%s\" has no columns to load into", t->schema,
                      t->name);
        return NULL;
    }

    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    tgt_sbuf_append_str(&sb, "COPY ");
    if (mode == TGT_WRITE_STAGING) {
        tgt_sbuf_append_str(&sb, "pg_temp.");
        pg_sql_ident(d, &sb, tc->stage);
    } else {
        pg_sql_qualified(d, &sb, t->schema, t->name);
    }
    tgt_sbuf_append_str(&sb, " (");
    pg_sql_columns(d, &sb, t, "");
    if (mode == TGT_WRITE_STAGING) {
        tgt_sbuf_append_str(&sb, ncols > 0 ? ", " : "");
        pg_sql_ident(d, &sb, PG_SEQ_COLUMN);
        tgt_sbuf_append_str(&sb, ", ");
        pg_sql_ident(d, &sb, PG_PRESENT_COLUMN);
    }
    tgt_sbuf_append_str(&sb, ") FROM STDIN");
    int binary = tgt_pg_binary_table(t);
    if (binary)
        tgt_sbuf_append_str(&sb, " WITH (FORMAT binary)");
    char *sql = pg_sql_take(d, &sb, err);
    if (sql == NULL)
        return NULL;
    tgt_log(TGT_LOG_DEBUG, "rows of \"%s\".\"%s\" go in COPY %s format (shape %lu)", t->schema,
            t->name, binary ? "binary" : "text", t->shape_version);
    free(tc->copy_sql[m]);
    tc->copy_sql[m] = sql;
    tc->copy_shape[m] = t->shape_version;
    tc->copy_ncols[m] = ncols;
    tc->copy_binary[m] = binary;
    return sql;
}

int pg_write_begin(tgt_driver *base, const tgt_table *t, tgt_write_mode mode, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (d->copying != NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL,
                             "PostgreSQL: a COPY into \"%s\".\"%s\" is still open",
                             d->copying->schema, d->copying->name);
    pg_table_cache *tc = pg_cache_get(d, t->schema, t->name, err);
    if (tc == NULL)
        return -1;
    if (mode == TGT_WRITE_STAGING && ensure_stage(d, t, tc, err) < 0)
        return -1;
    const char *sql = copy_sql(d, t, tc, mode, err);
    if (sql == NULL)
        return -1;
    PGresult *res = pg_exec(d, sql, PGRES_COPY_IN, err, "while starting to load \"%s\".\"%s\"",
                            t->schema, t->name);
    if (res == NULL)
        return -1;
    PQclear(res);
    d->copying = tc;
    d->copy_mode = mode;
    d->copy_closed = 0;
    d->copy_binary = tc->copy_binary[mode == TGT_WRITE_STAGING ? 1 : 0];
    if (d->copy_binary &&
        pg_write_data(base, TGT_PG_BINARY_HEADER, TGT_PG_BINARY_HEADER_LEN, err) != 0)
        return -1;
    return 0;
}

int pg_write_data(tgt_driver *base, const char *data, size_t len, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    if (d->copying == NULL || d->copy_closed)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: write_data without a COPY");
    while (len > 0) {
        /* PQputCopyData takes an int length */
        int chunk = len > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)len;
        if (PQputCopyData(d->conn, data, chunk) <= 0) {
            char where[TGT_ERROR_WHERE_MAX];
            snprintf(where, sizeof(where), "while sending rows to \"%s\".\"%s\"",
                     d->copying->schema, d->copying->name);
            return pg_fail(d, NULL, 0, err, where);
        }
        data += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

/* 1 when a failed COPY refused a row's data (classes 22 and 23): COPY's
 * context then says where, "COPY t, line 3, column amount"; any other
 * failure (a full disk, a lost lock) is the table's and names it. */
static int refused_row(const PGresult *r)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return st != NULL && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0);
}

/* Collects the results that end a COPY.  The first error is reported; the
 * row count of a successful COPY goes to *rows.  Returns 0 or -1. */
static int drain(pg_driver *d, const pg_table_cache *tc, unsigned long *rows, tgt_error *err)
{
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while loading \"%s\".\"%s\"", tc->schema, tc->name);
    int failed = 0;
    PGresult *r;
    while ((r = PQgetResult(d->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK) {
            if (rows != NULL)
                *rows = strtoul(PQcmdTuples(r), NULL, 10);
        } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* still copying: the end message could not be sent */
            if (!failed)
                pg_fail(d, NULL, 0, err, where);
            PQclear(r);
            return -1;
        } else if (!failed) {
            pg_fail(d, r, refused_row(r), err, where);
            failed = 1;
        }
        PQclear(r);
    }
    return failed ? -1 : 0;
}

/* Sends the end of the COPY into tc (a binary COPY's trailer first); on
 * failure reports it, drains, -1. */
static int send_end(pg_driver *d, const pg_table_cache *tc, tgt_error *err)
{
    if ((!d->copy_binary ||
         PQputCopyData(d->conn, TGT_PG_BINARY_TRAILER, TGT_PG_BINARY_TRAILER_LEN) > 0) &&
        PQputCopyEnd(d->conn, NULL) > 0)
        return 0;
    char where[TGT_ERROR_WHERE_MAX];
    snprintf(where, sizeof(where), "while finishing the load of \"%s\".\"%s\"", tc->schema,
             tc->name);
    pg_fail(d, NULL, 0, err, where);
    drain(d, tc, NULL, err);
    return -1;
}

int pg_write_end(tgt_driver *base, unsigned long *rows, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    pg_table_cache *tc = d->copying;
    if (tc == NULL)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: write_end without a COPY");
    unsigned long n = 0;
    d->copying = NULL;
    if (!d->copy_closed && send_end(d, tc, err) < 0)
        return -1;
    if (drain(d, tc, &n, err) < 0) {
        /* unique_violation in a direct write: a key was there already or
         * twice in the rows (driver.h, TGT_WRITE_DIRECT) */
        if (d->copy_mode == TGT_WRITE_DIRECT && strcmp(err->sqlstate, "23505") == 0)
            err->key_clash = 1;
        return -1;
    }
    if (rows != NULL)
        *rows = n;
    return 0;
}

/* The deferred end (driver.h): the end goes out now, and the server finishes
 * the COPY while the core encodes other rows; write_end then only collects
 * the results, which libpq keeps until asked.  The connection is blocking, so
 * PQputCopyEnd has flushed everything when it returns. */
int pg_write_close(tgt_driver *base, tgt_error *err)
{
    pg_driver *d = (pg_driver *)base;
    pg_table_cache *tc = d->copying;
    if (tc == NULL || d->copy_closed)
        return tgt_error_set(err, TGT_ERR_INTERNAL, "PostgreSQL: write_close without a COPY");
    if (send_end(d, tc, err) < 0) {
        d->copying = NULL;
        return -1;
    }
    d->copy_closed = 1;
    return 0;
}

/* Whether the server has answered the closed COPY (driver.h).  libpq's
 * socket is non-blocking underneath even on a blocking connection, so
 * PQconsumeInput only reads what has arrived; PQisBusy then says whether
 * PQgetResult would still wait.  A read that fails leaves the failure for
 * write_end to report. */
int pg_write_ready(tgt_driver *base)
{
    pg_driver *d = (pg_driver *)base;
    if (d->copying == NULL || !d->copy_closed || PQconsumeInput(d->conn) == 0)
        return 1;
    return !PQisBusy(d->conn);
}

/* Whether write_data of a spill slot would go out without waiting
 * (driver.h): the socket reports writable.  A local socket does so while at
 * most a quarter of its send buffer is queued (pg_driver.c widens it), TCP
 * while a good part of its buffer is free, so a slot does not wait, or not
 * for long; libpq itself keeps less than 8 kB back on a blocking
 * connection.  (Asking the kernel how much is queued, SIOCOUTQ, and keeping
 * it near 256 kB measured the same.) */
int pg_write_room(tgt_driver *base)
{
    pg_driver *d = (pg_driver *)base;
    int fd = d->conn != NULL ? PQsocket(d->conn) : -1;
    if (d->copying == NULL || d->copy_closed || fd < 0)
        return 1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n != 0;
}

void pg_copy_abort(pg_driver *d)
{
    pg_table_cache *tc = d->copying;
    int closed = tc != NULL && d->copy_closed;
    d->copying = NULL;
    if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK)
        return;
    /* a closed COPY has sent its end: only its results are left to drain */
    if (!closed)
        PQputCopyEnd(d->conn, "aborted");
    PGresult *r;
    while ((r = PQgetResult(d->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break; /* the end could not be sent; the connection is unusable */
    }
    if (tc != NULL)
        tgt_log(TGT_LOG_DEBUG, "aborted the load of \"%s\".\"%s\"", tc->schema, tc->name);
}
