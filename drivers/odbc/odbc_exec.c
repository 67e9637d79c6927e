/*
 * odbc_exec.c - running statements and queries over ODBC, and turning their
 * failures into a tgt_error.
 *
 * Every failure becomes TGT_ERR_LOAD with "<DBMS>: <first diagnostic>", its
 * SQLSTATE, any further diagnostic records as the detail and a "where"
 * naming what the driver was doing.  Classification for the core
 * (driver.h) goes by SQLSTATE, the one thing every ODBC driver reports the
 * same way: class 08 is a lost connection, 40001 and 40P01 a conflict; the
 * dialect refines what its driver reports otherwise.  Statement handles
 * are allocated and freed here, on every path.
 */
#include "odbc_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Copies a diagnostic into buf as one line (newlines become spaces) and
 * drops the driver manager's "[unixODBC][Driver]" bracket prefixes. */
static void one_line(const char *msg, char *buf, size_t cap)
{
    while (*msg == '[') {
        const char *close = strchr(msg, ']');
        if (close == NULL)
            break;
        msg = close + 1;
    }
    size_t n = 0;
    for (const char *p = msg; *p != '\0' && n + 1 < cap; p++)
        buf[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
}

int odbc_error_forward(tgt_error *err, const tgt_error *src)
{
    if (!tgt_error_is_set(err))
        *err = *src;
    return -1;
}

int odbc_fail(odbc_driver *d, SQLSMALLINT handle_type, SQLHANDLE handle, tgt_error *err,
              const char *where)
{
    if (tgt_error_is_set(err))
        return -1;
    SQLCHAR state[6] = "", msg[1024] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    char line[TGT_ERROR_MESSAGE_MAX - 64];
    const char *who = d->dbms_name[0] != '\0' ? d->dbms_name : "ODBC";
    if (handle == SQL_NULL_HANDLE ||
        !ODBC_OK(SQLGetDiagRec(handle_type, handle, 1, state, &native, msg, sizeof(msg), &len))) {
        tgt_error_set(err, TGT_ERR_LOAD,
                      "%s: the ODBC driver reported a failure without a "
                      "diagnostic",
                      who);
        tgt_error_where(err, "%s", where != NULL ? where : "");
        /* psqlODBC fails a bulk execute on a connection the server closed
         * without a diagnostic; the connection attribute still tells */
        SQLUINTEGER dead = SQL_CD_FALSE;
        if (d->dbc != SQL_NULL_HDBC &&
            ODBC_OK(SQLGetConnectAttr(d->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
            dead == SQL_CD_TRUE) {
            err->connection_lost = 1;
            d->connected = 0;
        }
        return -1;
    }
    one_line((const char *)msg, line, sizeof(line));
    tgt_error_set(err, TGT_ERR_LOAD, "%s: %s", who, line);
    tgt_error_sqlstate(err, (const char *)state);
    /* the further records, as the detail */
    tgt_sbuf more;
    tgt_sbuf_init(&more);
    for (SQLSMALLINT i = 2; i <= 4; i++) {
        SQLCHAR s2[6] = "", m2[512] = "";
        SQLINTEGER n2 = 0;
        if (!ODBC_OK(SQLGetDiagRec(handle_type, handle, i, s2, &n2, m2, sizeof(m2), &len)))
            break;
        char l2[512];
        one_line((const char *)m2, l2, sizeof(l2));
        tgt_sbuf_printf(&more, "%s%s (SQLSTATE %s)", more.len > 0 ? "; " : "", l2, s2);
    }
    if (more.len > 0 && tgt_sbuf_ok(&more))
        tgt_error_detail(err, "%s", tgt_sbuf_str(&more));
    tgt_sbuf_deinit(&more);
    if (where != NULL)
        tgt_error_where(err, "%s", where);
    if (strncmp((const char *)state, "08", 2) == 0) {
        err->connection_lost = 1;
        d->connected = 0;
    } else if (strcmp((const char *)state, "40001") == 0 ||
               strcmp((const char *)state, "40P01") == 0) {
        err->conflict = 1;
    }
    if (d->dialect != NULL && d->dialect->classify != NULL)
        d->dialect->classify(d, (const char *)state, (long)native, line, err);
    return -1;
}

static void format_where(char *buf, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(buf, cap, fmt, ap);
}

static SQLHSTMT new_stmt(odbc_driver *d, tgt_error *err, const char *where)
{
    SQLHSTMT st = SQL_NULL_HSTMT;
    if (!d->connected)
        return tgt_error_set(err, TGT_ERR_LOAD, "%s: not connected", d->dbms_name), NULL;
    if (!ODBC_OK(SQLAllocHandle(SQL_HANDLE_STMT, d->dbc, &st))) {
        odbc_fail(d, SQL_HANDLE_DBC, d->dbc, err, where);
        return SQL_NULL_HSTMT;
    }
    return st;
}

int odbc_exec(odbc_driver *d, const char *sql, unsigned long *rows, tgt_error *err,
              const char *what, ...)
{
    char where[TGT_ERROR_WHERE_MAX];
    va_list ap;
    va_start(ap, what);
    format_where(where, sizeof(where), what, ap);
    va_end(ap);
    SQLHSTMT st = new_stmt(d, err, where);
    if (st == SQL_NULL_HSTMT)
        return -1;
    SQLRETURN rc = SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS);
    /* SQL_NO_DATA: a searched UPDATE or DELETE that touched no row */
    if (!ODBC_OK(rc) && rc != SQL_NO_DATA) {
        odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return -1;
    }
    if (rows != NULL) {
        SQLLEN n = 0;
        *rows = rc != SQL_NO_DATA && ODBC_OK(SQLRowCount(st, &n)) && n > 0 ? (unsigned long)n : 0;
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return 0;
}

void odbc_result_free(odbc_result *r)
{
    if (r->cells != NULL) {
        for (size_t i = 0; i < r->n_rows * r->n_cols; i++)
            free(r->cells[i]);
    }
    free(r->cells);
    r->cells = NULL;
    r->n_rows = r->n_cols = 0;
}

const char *odbc_result_get(const odbc_result *r, size_t row, size_t col)
{
    if (row >= r->n_rows || col >= r->n_cols)
        return NULL;
    return r->cells[row * r->n_cols + col];
}

/* Reads column c of the current row as text (any length) into *out (NULL for
 * SQL NULL).  0, or -1 (err filled). */
static int fetch_cell(odbc_driver *d, SQLHSTMT st, SQLUSMALLINT c, char **out, tgt_error *err,
                      const char *where)
{
    tgt_sbuf sb;
    tgt_sbuf_init(&sb);
    char chunk[512];
    for (;;) {
        SQLLEN ind = 0;
        SQLRETURN rc = SQLGetData(st, c, SQL_C_CHAR, chunk, sizeof(chunk), &ind);
        if (rc == SQL_NO_DATA)
            break;
        if (!ODBC_OK(rc)) {
            tgt_sbuf_deinit(&sb);
            return odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
        }
        if (ind == SQL_NULL_DATA) {
            tgt_sbuf_deinit(&sb);
            *out = NULL;
            return 0;
        }
        /* with info: truncated, the buffer is full but for its NUL */
        size_t got =
            rc == SQL_SUCCESS_WITH_INFO || ind == SQL_NO_TOTAL || (size_t)ind >= sizeof(chunk)
                ? sizeof(chunk) - 1
                : (size_t)ind;
        tgt_sbuf_append(&sb, chunk, got);
        if (rc == SQL_SUCCESS)
            break;
    }
    *out = tgt_sbuf_take(&sb);
    return *out == NULL ? tgt_error_nomem(err) : 0;
}

static int fetch_all(odbc_driver *d, SQLHSTMT st, odbc_result *out, tgt_error *err,
                     const char *where)
{
    SQLSMALLINT ncols = 0;
    if (!ODBC_OK(SQLNumResultCols(st, &ncols)))
        return odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
    out->n_cols = ncols > 0 ? (size_t)ncols : 0;
    size_t cap = 0;
    for (;;) {
        SQLRETURN rc = SQLFetch(st);
        if (rc == SQL_NO_DATA || out->n_cols == 0)
            break;
        if (!ODBC_OK(rc))
            return odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
        if (out->n_rows == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **cells = realloc(out->cells, ncap * out->n_cols * sizeof(*cells));
            if (cells == NULL)
                return tgt_error_nomem(err);
            out->cells = cells;
            cap = ncap;
        }
        char **row = out->cells + out->n_rows * out->n_cols;
        for (size_t c = 0; c < out->n_cols; c++)
            row[c] = NULL;
        out->n_rows++;
        for (size_t c = 0; c < out->n_cols; c++)
            if (fetch_cell(d, st, (SQLUSMALLINT)(c + 1), &row[c], err, where) < 0)
                return -1;
    }
    return 0;
}

/* Binds params as text and executes sql on st.  0 or -1. */
static int run_params(odbc_driver *d, SQLHSTMT st, const char *sql, const char *const *params,
                      size_t n_params, SQLLEN *lens, tgt_error *err, const char *where)
{
    for (size_t i = 0; i < n_params; i++) {
        lens[i] = params[i] == NULL ? SQL_NULL_DATA : (SQLLEN)strlen(params[i]);
        SQLULEN size = params[i] == NULL || lens[i] == 0 ? 1 : (SQLULEN)lens[i];
        if (!ODBC_OK(SQLBindParameter(st, (SQLUSMALLINT)(i + 1), SQL_PARAM_INPUT, SQL_C_CHAR,
                                      SQL_VARCHAR, size, 0, (SQLPOINTER)params[i], lens[i],
                                      &lens[i])))
            return odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
    }
    SQLRETURN rc = SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS);
    if (!ODBC_OK(rc) && rc != SQL_NO_DATA)
        return odbc_fail(d, SQL_HANDLE_STMT, st, err, where);
    return 0;
}

/* What odbc_query and odbc_exec_params share: out NULL keeps no rows,
 * rows NULL counts none. */
static int run(odbc_driver *d, const char *sql, const char *const *params, size_t n_params,
               odbc_result *out, unsigned long *rows, tgt_error *err, const char *where)
{
    SQLHSTMT st = new_stmt(d, err, where);
    if (st == SQL_NULL_HSTMT)
        return -1;
    SQLLEN one, *lens = n_params > 1 ? calloc(n_params, sizeof(*lens)) : &one;
    if (lens == NULL) {
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return tgt_error_nomem(err);
    }
    int rc = run_params(d, st, sql, params, n_params, lens, err, where);
    if (rc == 0 && rows != NULL) {
        SQLLEN n = 0;
        *rows = ODBC_OK(SQLRowCount(st, &n)) && n > 0 ? (unsigned long)n : 0;
    }
    if (rc == 0 && out != NULL)
        rc = fetch_all(d, st, out, err, where);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    if (lens != &one)
        free(lens);
    return rc;
}

int odbc_query(odbc_driver *d, const char *sql, const char *const *params, size_t n_params,
               odbc_result *out, tgt_error *err, const char *what, ...)
{
    out->n_rows = out->n_cols = 0;
    out->cells = NULL;
    char where[TGT_ERROR_WHERE_MAX];
    va_list ap;
    va_start(ap, what);
    format_where(where, sizeof(where), what, ap);
    va_end(ap);
    return run(d, sql, params, n_params, out, NULL, err, where);
}

int odbc_exec_params(odbc_driver *d, const char *sql, const char *const *params, size_t n_params,
                     unsigned long *rows, tgt_error *err, const char *what, ...)
{
    if (rows != NULL)
        *rows = 0;
    char where[TGT_ERROR_WHERE_MAX];
    va_list ap;
    va_start(ap, what);
    format_where(where, sizeof(where), what, ap);
    va_end(ap);
    return run(d, sql, params, n_params, NULL, rows, err, where);
}
