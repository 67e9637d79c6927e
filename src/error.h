/*
 * error.h - the one error value that travels down every fallible call.
 *
 * A tgt_error is owned by the caller (usually on main's stack) and passed as
 * the last argument.  The first error set wins: later tgt_error_set() calls on
 * an error that already holds one are ignored, so a low-level cause is never
 * overwritten by a generic message from a caller further up.  Callers add
 * context (input line, stream, property) with tgt_error_where(), which only
 * fills the "where" part once.  Nothing here prints or exits; main.c does.
 */
#ifndef TGT_ERROR_H
#define TGT_ERROR_H

#include <stddef.h>

/* What kind of failure it is; main.c maps these to exit statuses. */
typedef enum tgt_error_code {
    TGT_OK = 0,
    TGT_ERR_INPUT,      /* malformed or out-of-order input: exit 1 */
    TGT_ERR_DATA,       /* a value or schema the target cannot load: exit 1 */
    TGT_ERR_LOAD,       /* the database refused or failed: exit 1 */
    TGT_ERR_USAGE,      /* bad command line or settings: exit 2 */
    TGT_ERR_NOMEM,      /* allocation failed: exit 3 */
    TGT_ERR_INTERNAL,   /* a bug or an unexpected system failure: exit 3 */
    TGT_ERR_IO,         /* reading input or writing stdout failed: exit 1 */
    TGT_ERR_INTERRUPTED /* SIGINT/SIGTERM stopped a wait (a connection retry)
                         * before the run could finish: exit 128 + the signal
                         * number, which main.c adds (signals.h) */
} tgt_error_code;

#define TGT_ERROR_MESSAGE_MAX 1024
#define TGT_ERROR_DETAIL_MAX 2048
#define TGT_ERROR_HINT_MAX 512
#define TGT_ERROR_WHERE_MAX 512

typedef struct tgt_error {
    tgt_error_code code;
    char sqlstate[6]; /* five characters and a NUL, empty when not from SQL */
    char message[TGT_ERROR_MESSAGE_MAX];
    char detail[TGT_ERROR_DETAIL_MAX];
    char hint[TGT_ERROR_HINT_MAX];
    char where[TGT_ERROR_WHERE_MAX];
    /* 1 when the same operation may succeed if simply tried again later (the
     * database is unreachable, starting up or full), 0 when something must
     * be changed first (a wrong password, a missing database).  Set by the
     * driver's connect (drivers/driver.h), read by retry.c; 0 elsewhere. */
    int transient;
    /* 1 when the database connection broke (set by the driver): the loader
     * reconnects and replays what was not committed. */
    int connection_lost;
    /* 1 when the connection broke while a COMMIT was under way (set by the
     * driver with connection_lost): the server may have committed, so the
     * loader asks (the driver's commit_status) before sending anything again. */
    int commit_unknown;
    /* 1 when the transaction lost a conflict with another session (a
     * deadlock, a serialization failure; set by the driver): rolled back, it
     * may well succeed when simply run again. */
    int conflict;
    /* When the database refused a row of a bulk write: its 1-based position
     * in that write (COPY's "line N"), else 0.  Set by the driver. */
    unsigned long bulk_row;
    /* 1 when bulk_row is the refused row itself (the database quoted that
     * row or a value of it); 0 when it is only how far the write had got
     * when the refusal came (PostgreSQL writes rows in groups and reports a
     * row too big for its page at the group's last row), so the loader must
     * search for the row.  Set by the driver with bulk_row. */
    int bulk_row_exact;
    /* 1 when a bulk write straight into a keyed table (TGT_WRITE_DIRECT,
     * driver.h) met a key the table already holds or that the write holds
     * twice (set by the driver): nothing is wrong with the data, the loader
     * sends the batch again through staging and merge. */
    int key_clash;
} tgt_error;

/* Resets err to "no error". */
void tgt_error_init(tgt_error *err);

/* True when err holds an error. */
int tgt_error_is_set(const tgt_error *err);

/* Sets code and printf-style message unless err already holds an error.
 * Always returns -1 so callers can write `return tgt_error_set(...)`. */
int tgt_error_set(tgt_error *err, tgt_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the detail, hint or where part, each only if still empty. */
void tgt_error_detail(tgt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tgt_error_hint(tgt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tgt_error_where(tgt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records a five-character SQLSTATE (NULL or shorter strings are ignored). */
void tgt_error_sqlstate(tgt_error *err, const char *sqlstate);

/* Shortcut for allocation failures; returns -1. */
int tgt_error_nomem(tgt_error *err);

/* Exit status documented in the README for an error code
 * (TGT_ERR_INTERRUPTED: 128, to which main.c adds the signal number). */
int tgt_error_exit_status(tgt_error_code code);

#endif
