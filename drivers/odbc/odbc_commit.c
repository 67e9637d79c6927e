/*
 * odbc_commit.c - knowing whether a COMMIT whose reply was lost took
 * effect (driver.h commit_status), for any dialect.
 *
 * ODBC has no portable transaction id to ask the server about, so each
 * transaction writes a marker row: begin() inserts a fresh random id into
 * the dialect's marker table (odbc_dialect marker_table; "target-pg.commits"
 * on SQLite) inside the transaction, and removes this session's previous
 * marker in the same transaction.  The row exists after a reconnect
 * exactly when that transaction committed.  A row that is not there means
 * aborted, which is sound once the old session is gone: the server rolls
 * back a transaction whose connection died, and the core only asks after
 * reconnecting.  A dialect whose server keeps transaction ids answers
 * from them instead (odbc_dialect txn_begin / txn_status: PostgreSQL's
 * txid_current and txid_status, no table).
 * Markers of sessions that ended are pruned after seven days.  A dialect
 * without marker_table has no commit_status: asking is an error.
 */
#include "odbc_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"

#define MARKER_KEEP_DAYS 7

/* 32 hex digits from /dev/urandom (a clock-and-pid mix when unreadable). */
static void new_marker_id(odbc_driver *d, char *out, size_t cap)
{
    unsigned char raw[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f != NULL ? fread(raw, 1, sizeof raw, f) : 0;
    if (f != NULL)
        fclose(f);
    if (got != sizeof raw) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf((char *)raw, sizeof raw, "%lx%lx", (unsigned long)ts.tv_nsec,
                 (unsigned long)ts.tv_sec ^ (unsigned long)++d->txn_counter);
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof raw && n + 2 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", raw[i]);
}

/* "YYYY-MM-DD HH:MM:SS" in UTC, `days_ago` days back. */
static void utc_text(char *out, size_t cap, int days_ago)
{
    time_t now = time(NULL) - (time_t)days_ago * 86400;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static int marker_sql(odbc_driver *d, tgt_sbuf *sb, const char *before, const char *after,
                      tgt_error *err)
{
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, before);
    d->dialect->marker_table(d, sb);
    tgt_sbuf_append_str(sb, after);
    return odbc_sql_check(sb, err);
}

int odbc_marker_setup(odbc_driver *d, tgt_error *err)
{
    if (d->dialect->marker_table == NULL || d->marker_ready)
        return 0;
    tgt_sbuf *sb = &d->sql;
    if (marker_sql(d, sb, "CREATE TABLE IF NOT EXISTS ",
                   " (id VARCHAR(64) NOT NULL PRIMARY KEY, committed_at VARCHAR(32) NOT NULL)",
                   err) < 0 ||
        odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while creating the commit marker table") < 0)
        return -1;
    char cutoff[32];
    utc_text(cutoff, sizeof cutoff, MARKER_KEEP_DAYS);
    const char *params[1] = {cutoff};
    if (marker_sql(d, sb, "DELETE FROM ", " WHERE committed_at < ?", err) < 0 ||
        odbc_exec_params(d, tgt_sbuf_str(sb), params, 1, NULL, err,
                         "while pruning old commit markers") < 0)
        return -1;
    d->marker_ready = 1;
    return 0;
}

int odbc_marker_write(odbc_driver *d, tgt_error *err)
{
    if (d->dialect->txn_begin != NULL)
        return d->dialect->txn_begin(d, err);
    if (d->dialect->marker_table == NULL)
        return 0;
    tgt_sbuf *sb = &d->sql;
    if (d->txn_marker[0] != '\0') {
        const char *old[1] = {d->txn_marker};
        if (marker_sql(d, sb, "DELETE FROM ", " WHERE id = ?", err) < 0 ||
            odbc_exec_params(d, tgt_sbuf_str(sb), old, 1, NULL, err,
                             "while removing the previous commit marker") < 0)
            return -1;
    }
    char now[32];
    utc_text(now, sizeof now, 0);
    new_marker_id(d, d->txn_marker, sizeof d->txn_marker);
    const char *params[2] = {d->txn_marker, now};
    if (marker_sql(d, sb, "INSERT INTO ", " (id, committed_at) VALUES (?, ?)", err) < 0 ||
        odbc_exec_params(d, tgt_sbuf_str(sb), params, 2, NULL, err,
                         "while writing the commit marker") < 0) {
        d->txn_marker[0] = '\0';
        return -1;
    }
    return 0;
}

int odbc_commit_status(tgt_driver *base, tgt_txn_status *out, tgt_error *err)
{
    odbc_driver *d = (odbc_driver *)base;
    if (d->dialect != NULL && d->dialect->txn_status != NULL)
        return d->dialect->txn_status(d, out, err);
    if (d->dialect == NULL || d->dialect->marker_table == NULL || d->txn_marker[0] == '\0')
        return tgt_error_set(err, TGT_ERR_LOAD,
                             "%s: cannot tell whether the last commit took effect",
                             d->dbms_name[0] != '\0' ? d->dbms_name : "ODBC");
    odbc_result r;
    const char *params[1] = {d->txn_marker};
    tgt_sbuf *sb = &d->sql;
    int rc = marker_sql(d, sb, "SELECT count(*) FROM ", " WHERE id = ?", err);
    if (rc == 0)
        rc = odbc_query(d, tgt_sbuf_str(sb), params, 1, &r, err,
                        "while asking whether the last transaction committed");
    if (rc == 0) {
        const char *n = odbc_result_get(&r, 0, 0);
        *out = n != NULL && strcmp(n, "0") != 0 ? TGT_TXN_COMMITTED : TGT_TXN_ABORTED;
    }
    odbc_result_free(&r);
    return rc;
}
