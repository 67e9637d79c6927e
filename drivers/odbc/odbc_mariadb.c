/*
 * odbc_mariadb.c - the MariaDB/MySQL dialect (MariaDB Connector/ODBC):
 * the session, the type map, reading the catalog and the DDL.  Staging,
 * merge, ACTIVATE_VERSION, merge locks and the overwrite swap are in
 * odbc_mariadb_merge.c.
 *
 * Schemas: a target schema is a MariaDB database (CREATE DATABASE ...
 * CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin).  Every table is created
 * with that character set and collation too, whatever the server's
 * defaults (Debian's is latin1): utf8mb4 holds every character, and the
 * binary NO PAD collation makes keys compare byte for byte, so 'a', 'A'
 * and 'a ' stay three keys as in PostgreSQL.
 *
 * The session (session_sql): sql_mode STRICT_ALL_TABLES, so a value a
 * column cannot hold (out of range, too long, a bad date) fails the
 * statement instead of being clipped with a warning, and NO_BACKSLASH_
 * ESCAPES, so a string literal (column comments) only doubles quotes;
 * time_zone '+00:00', so UTC_TIMESTAMP/NOW are UTC; the connection's
 * character set utf8mb4 (Connector/ODBC refuses SET NAMES, so the three
 * variables are set one by one); innodb_strict_mode off, because with it
 * CREATE TABLE refuses a table whose worst-case row (every LONGTEXT and
 * DECIMAL full) passes InnoDB's 8 KB in-page limit, which a few hundred
 * columns do, while real rows keep long values off the page: a row that
 * really does not fit is still refused, as an invalid record.
 *
 * Types (README "MariaDB"): boolean BOOLEAN (tinyint(1)), smallint
 * SMALLINT, integer INT, bigint BIGINT, numeric DECIMAL(65,30) (MariaDB's
 * widest: digits past the 30th after the point are rounded by the server
 * with only a note, so odbc_mariadb_decimal_fits refuses such a value as
 * an invalid record before it is sent), numeric(p,s) DECIMAL(p,s), real
 * FLOAT, double DOUBLE, date DATE, timestamp and timestamptz DATETIME(6)
 * holding UTC (the row writer moves written offsets to UTC; DATETIME keeps
 * no offset, so both read back as timestamptz), time TIME(6), varchar(n)
 * VARCHAR(n), json and jsonb JSON (MariaDB's alias for LONGTEXT with a
 * CHECK (JSON_VALID(...)) constraint, which is how describe_table tells
 * it from text; both read back as jsonb), text LONGTEXT.  A string key
 * column cannot be LONGTEXT (InnoDB keys hold at most 3072 bytes): it is a
 * VARCHAR of up to 255 characters (shared out when there are several), and
 * a primary-key VARCHAR reads back as text, so it is never "widened" to a
 * LONGTEXT the key cannot take; a longer key value is an invalid record.
 *
 * Column comments keep each column's source path ("source: <path>", as on
 * PostgreSQL); a path too long for a comment (1024 characters) is not
 * recorded and that column is then found by name.
 *
 * Lost COMMITs: each transaction writes a marker row into `target-pg`.
 * `commits` (odbc_commit.c), a database the session creates if needed.
 *
 * DDL commits: every CREATE/ALTER/RENAME/DROP of a real table ends the open
 * transaction (caps.transactional_ddl = 0).  The core issues DDL between
 * transactions anyway; staging tables are TEMPORARY, which commit nothing.
 * Each ALTER TABLE is atomic (10.6+), so widening several columns is one
 * ALTER with one MODIFY each.
 */
#include "odbc_mariadb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"

#define TABLE_OPTIONS " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"
#define COMMENT_PREFIX "source: "
#define COMMENT_MAX 1024 /* characters a column comment may hold */
#define KEY_BYTES 3072   /* InnoDB's longest index key (DYNAMIC rows) */
#define KEY_CHARS_MAX 255

static const tgt_driver_caps mariadb_caps = {
    /* MariaDB counts 64 characters; 64 bytes always fit in them */
    .ident_max = 64,
    /* InnoDB's limit of columns per table */
    .max_columns = 1017,
    /* InnoDB keeps about 8 KB of a row in the page; a DECIMAL(65,30) takes
     * 30 bytes and a LONGTEXT up to 20 in the row, so 250 columns fit */
    .column_budget = 250,
    /* JSON_VALID refuses nesting deeper than 31 levels */
    .json_max_depth = 31,
    .transactional_ddl = 0,
    .column_comments = 1,
};

static const char *const mariadb_session_sql[] = {
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES'",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION innodb_strict_mode = OFF",
    "SET SESSION character_set_client = utf8mb4, character_set_connection = utf8mb4, "
    "character_set_results = utf8mb4, collation_connection = utf8mb4_nopad_bin",
    /* where the commit markers live (mariadb_marker_table) */
    "CREATE DATABASE IF NOT EXISTS `target-pg` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin",
    NULL,
};

static void mariadb_qualified(odbc_driver *d, tgt_sbuf *sb, const char *schema, const char *name)
{
    odbc_sql_ident(d, sb, schema);
    tgt_sbuf_append_char(sb, '.');
    odbc_sql_ident(d, sb, name);
}

/* `target-pg`.`commits` (odbc_commit.c): a database of its own, which no
 * target schema can be (normalised names hold no '-'); the loader needs
 * CREATE DATABASE anyway, for its schemas. */
static void mariadb_marker_table(odbc_driver *d, tgt_sbuf *sb)
{
    mariadb_qualified(d, sb, "target-pg", "commits");
}

static int mariadb_matches(const char *dbms_name)
{
    return strncasecmp(dbms_name, "MariaDB", 7) == 0 || strncasecmp(dbms_name, "MySQL", 5) == 0;
}

/* ---- types ------------------------------------------------------------------ */

static const struct {
    const char *sql;
    tgt_type_kind kind;
} spellings[] = {
    {"BOOLEAN", TGT_T_BOOLEAN},
    {"SMALLINT", TGT_T_SMALLINT},
    {"INT", TGT_T_INTEGER},
    {"BIGINT", TGT_T_BIGINT},
    {"DECIMAL(65,30)", TGT_T_NUMERIC},
    {"FLOAT", TGT_T_REAL},
    {"DOUBLE", TGT_T_DOUBLE},
    {"DATE", TGT_T_DATE},
    {"DATETIME(6)", TGT_T_TIMESTAMP},
    {"DATETIME(6)", TGT_T_TIMESTAMPTZ},
    {"TIME(6)", TGT_T_TIME},
    {"JSON", TGT_T_JSON},
    {"JSON", TGT_T_JSONB},
    {"LONGTEXT", TGT_T_TEXT},
};

#define N_SPELLINGS (sizeof spellings / sizeof spellings[0])

static const char *mariadb_type_sql(tgt_coltype t, char *buf, size_t cap)
{
    int p, s;
    /* a VARCHAR longer than a row may hold (65,532 bytes, 4 per character) is a LONGTEXT */
    if (t.kind == TGT_T_VARCHAR && t.length > 0 && t.length <= 16383) {
        snprintf(buf, cap, "VARCHAR(%d)", t.length);
        return buf;
    }
    if (tgt_type_numeric_ps(t, &p, &s) && p >= 1 && p <= MDB_DECIMAL_PRECISION && s >= 0 &&
        s <= MDB_DECIMAL_SCALE && s <= p) {
        snprintf(buf, cap, "DECIMAL(%d,%d)", p, s);
        return buf;
    }
    const char *sql = "LONGTEXT"; /* varchar without a length, other: text */
    for (size_t i = 0; i < N_SPELLINGS; i++)
        if (spellings[i].kind == t.kind)
            sql = spellings[i].sql;
    if (t.kind == TGT_T_NUMERIC)
        sql = "DECIMAL(65,30)"; /* numeric(p,s) past DECIMAL's limits */
    snprintf(buf, cap, "%s", sql);
    return buf;
}

/* Reads what information_schema.COLUMNS.COLUMN_TYPE says (lower case:
 * "int(11)", "decimal(65,30)", "datetime(6)"), or "json" where
 * describe_table found the JSON_VALID check.  Spellings this dialect does
 * not write, and those whose values it would silently change (tinyint,
 * unsigned, datetime without 6 fraction digits, TIMESTAMP's 2038 range,
 * TEXT's 64 KB), are TGT_T_OTHER. */
static tgt_coltype mariadb_type_from_sql(const char *spelling)
{
    static const struct {
        const char *prefix; /* followed by "(<digits>)" or nothing */
        tgt_type_kind kind;
    } ints[] = {{"smallint", TGT_T_SMALLINT}, {"int", TGT_T_INTEGER}, {"bigint", TGT_T_BIGINT}};
    static const struct {
        const char *sql;
        tgt_type_kind kind;
    } exact[] = {
        {"tinyint(1)", TGT_T_BOOLEAN}, {"boolean", TGT_T_BOOLEAN},
        {"float", TGT_T_REAL},         {"double", TGT_T_DOUBLE},
        {"date", TGT_T_DATE},          {"datetime(6)", TGT_T_TIMESTAMPTZ},
        {"time(6)", TGT_T_TIME},       {"json", TGT_T_JSONB},
        {"longtext", TGT_T_TEXT},      {"decimal(65,30)", TGT_T_NUMERIC},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcasecmp(spelling, exact[i].sql) == 0)
            return tgt_type_make(exact[i].kind);
    int a = 0, b = 0, end = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        size_t len = strlen(ints[i].prefix);
        if (strncasecmp(spelling, ints[i].prefix, len) != 0)
            continue;
        const char *rest = spelling + len;
        if (*rest == '\0' || (sscanf(rest, "(%d)%n", &a, &end) == 1 && rest[end] == '\0'))
            return tgt_type_make(ints[i].kind);
    }
    if (sscanf(spelling, "varchar(%d)%n", &a, &end) == 1 && spelling[end] == '\0' && a > 0) {
        tgt_coltype t = {TGT_T_VARCHAR, a};
        return t;
    }
    if (sscanf(spelling, "decimal(%d,%d)%n", &a, &b, &end) == 2 && spelling[end] == '\0' &&
        a >= 1 && a <= MDB_DECIMAL_PRECISION && b >= 0 && b <= a)
        return tgt_type_numeric(a, b);
    return tgt_type_make(TGT_T_OTHER);
}

static int mariadb_bind_type(tgt_coltype t)
{
    (void)t; /* text in: the server converts to the column's type (strict mode checks it) */
    return SQL_VARCHAR;
}

static int mariadb_value_fits(tgt_coltype t, const char *v, size_t n, const char **why)
{
    int p = MDB_DECIMAL_PRECISION, s = MDB_DECIMAL_SCALE;
    switch (t.kind) {
    case TGT_T_NUMERIC:
        tgt_type_numeric_ps(t, &p, &s); /* unconstrained: DECIMAL(65,30) */
        return odbc_mariadb_decimal_fits(v, n, p, s, why);
    case TGT_T_REAL:
    case TGT_T_DOUBLE:
        if (n > 0 && (v[0] == 'N' || v[0] == 'I' || (n > 1 && v[1] == 'I'))) {
            *why = "MariaDB FLOAT and DOUBLE cannot hold NaN or Infinity";
            return 0;
        }
        return 1;
    case TGT_T_BOOLEAN:
    case TGT_T_SMALLINT:
    case TGT_T_INTEGER:
    case TGT_T_BIGINT:
    case TGT_T_DATE:
    case TGT_T_TIMESTAMP:
    case TGT_T_TIMESTAMPTZ:
    case TGT_T_TIME:
    case TGT_T_VARCHAR:
    case TGT_T_JSON:
    case TGT_T_JSONB:
    case TGT_T_TEXT:
    case TGT_T_OTHER:
        return 1;
    }
    return 1;
}

/* The length of a string key column: InnoDB's 3072 key bytes shared by the
 * string key columns (4 bytes a character) after the others (at most 32
 * bytes each: DECIMAL(65,30) takes 30). */
static int key_chars(const tgt_table *t)
{
    size_t n_text = 0, n_other = 0;
    for (size_t k = 0; k < t->n_keys; k++) {
        tgt_type_kind kind = t->columns[t->key_columns[k]].type.kind;
        if (kind == TGT_T_TEXT || kind == TGT_T_OTHER || kind == TGT_T_JSON || kind == TGT_T_JSONB)
            n_text++;
        else
            n_other++;
    }
    if (n_text == 0)
        return KEY_CHARS_MAX;
    size_t room = KEY_BYTES > 32 * n_other ? KEY_BYTES - 32 * n_other : 0;
    size_t chars = room / (4 * n_text);
    return chars > KEY_CHARS_MAX ? KEY_CHARS_MAX : chars < 1 ? 1 : (int)chars;
}

const char *odbc_mariadb_column_type(const tgt_table *t, size_t col, tgt_coltype type, char *buf,
                                     size_t cap)
{
    if (odbc_is_key(t, col)) {
        tgt_type_kind kind = type.kind;
        if (kind == TGT_T_TEXT || kind == TGT_T_OTHER || kind == TGT_T_JSON ||
            kind == TGT_T_JSONB || (kind == TGT_T_VARCHAR && type.length > key_chars(t))) {
            snprintf(buf, cap, "VARCHAR(%d)", key_chars(t));
            return buf;
        }
    }
    return mariadb_type_sql(type, buf, cap);
}

/* Appends prefix and s as one string literal (NO_BACKSLASH_ESCAPES:
 * only quotes are doubled). */
static void append_literal(tgt_sbuf *sb, const char *prefix, const char *s)
{
    tgt_sbuf_append_char(sb, '\'');
    tgt_sbuf_append_str(sb, prefix);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\'')
            tgt_sbuf_append_char(sb, '\'');
        tgt_sbuf_append_char(sb, *p);
    }
    tgt_sbuf_append_char(sb, '\'');
}

/* Characters (not bytes) of UTF-8 text. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void odbc_mariadb_column_def(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t, size_t col,
                             tgt_coltype type)
{
    const tgt_column *c = &t->columns[col];
    char spelled[MDB_TYPE_MAX];
    odbc_sql_ident(d, sb, c->name);
    tgt_sbuf_append_char(sb, ' ');
    tgt_sbuf_append_str(sb, odbc_mariadb_column_type(t, col, type, spelled, sizeof spelled));
    if (odbc_is_key(t, col))
        tgt_sbuf_append_str(sb, " NOT NULL");
    if (c->source_json != NULL &&
        utf8_chars(c->source_json) + sizeof(COMMENT_PREFIX) - 1 <= COMMENT_MAX) {
        tgt_sbuf_append_str(sb, " COMMENT ");
        append_literal(sb, COMMENT_PREFIX, c->source_json);
    }
}

/* ---- errors ------------------------------------------------------------------ */

static void mariadb_classify(odbc_driver *d, const char *sqlstate, long native, const char *message,
                             tgt_error *err)
{
    (void)sqlstate;
    switch (native) {
    case 1213: /* ER_LOCK_DEADLOCK: InnoDB rolled the transaction back */
    case 1205: /* ER_LOCK_WAIT_TIMEOUT */
        err->conflict = 1;
        return;
    case 2006: /* CR_SERVER_GONE_ERROR */
    case 2013: /* CR_SERVER_LOST */
    case 2055: /* CR_SERVER_LOST_EXTENDED */
    case 1927: /* ER_CONNECTION_KILLED */
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
        err->connection_lost = 1;
        return;
    case 1118: /* ER_TOO_BIG_ROWSIZE (42000): the row does not fit a page */
        if (d->bulk.open)
            tgt_error_sqlstate(err, "54000"); /* a value too big, as the core reads it */
        break;
    default:
        break;
    }
    /* A bulk INSERT refused by a value names the row of the parameter array
     * ("Out of range value for column 'x' at row 8"): the exact row, since
     * the array is one statement that took none of its rows. */
    const char *at = d->bulk.open ? strstr(message, " at row ") : NULL;
    if (at != NULL) {
        unsigned long row = strtoul(at + 8, NULL, 10);
        if (row >= 1 && row <= d->bulk.n_rows) {
            err->bulk_row = d->bulk.sent + row;
            err->bulk_row_exact = 1;
        }
    }
}

/* ---- describe --------------------------------------------------------------- */

static const char describe_sql[] =
    "SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_COMMENT, "
    "(SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS k "
    "WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME "
    "AND k.CONSTRAINT_NAME = c.COLUMN_NAME AND k.LEVEL = 'Column' "
    "AND k.CHECK_CLAUSE LIKE 'json_valid(%') "
    "FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? "
    "ORDER BY c.ORDINAL_POSITION";

static const char key_sql[] =
    "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
    "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' "
    "ORDER BY ORDINAL_POSITION";

/* The recorded source path of a column comment "source: <path>", or NULL. */
static int set_source_path(tgt_live_column *c, const char *comment)
{
    size_t n = sizeof(COMMENT_PREFIX) - 1;
    if (comment == NULL || strncmp(comment, COMMENT_PREFIX, n) != 0)
        return 0;
    c->source_path = strdup(comment + n);
    return c->source_path == NULL ? -1 : 0;
}

static int read_columns(const odbc_result *r, tgt_live_table *out, tgt_error *err)
{
    out->columns = calloc(r->n_rows, sizeof(*out->columns));
    if (out->columns == NULL)
        return tgt_error_nomem(err);
    for (size_t i = 0; i < r->n_rows; i++) {
        tgt_live_column *c = &out->columns[out->n_columns++];
        const char *type = odbc_result_get(r, i, 1), *json = odbc_result_get(r, i, 4);
        const char *nullable = odbc_result_get(r, i, 2);
        snprintf(c->name, sizeof c->name, "%s", odbc_result_get(r, i, 0));
        /* MariaDB's JSON is a LONGTEXT with a JSON_VALID check: spelled "json" here */
        int is_json = json != NULL && strcmp(json, "0") != 0;
        snprintf(c->sql_type, sizeof c->sql_type, "%s",
                 is_json        ? "json"
                 : type != NULL ? type
                                : "");
        c->type = mariadb_type_from_sql(c->sql_type);
        c->not_null = nullable != NULL && strcmp(nullable, "NO") == 0;
        if (set_source_path(c, odbc_result_get(r, i, 3)) < 0)
            return tgt_error_nomem(err);
    }
    return 0;
}

/* The primary key, and its VARCHAR columns read as text (the spelling of a
 * string key column, odbc_mariadb_column_type). */
static int read_key(const odbc_result *r, tgt_live_table *out, tgt_error *err)
{
    if (r->n_rows == 0)
        return 0;
    out->key = calloc(r->n_rows, sizeof(*out->key));
    if (out->key == NULL)
        return tgt_error_nomem(err);
    for (size_t k = 0; k < r->n_rows; k++) {
        snprintf(out->key[k], sizeof out->key[k], "%s", odbc_result_get(r, k, 0));
        out->n_keys++;
        for (size_t i = 0; i < out->n_columns; i++)
            if (strcmp(out->columns[i].name, out->key[k]) == 0 &&
                out->columns[i].type.kind == TGT_T_VARCHAR)
                out->columns[i].type = tgt_type_make(TGT_T_TEXT);
    }
    return 0;
}

static int mariadb_describe_table(odbc_driver *d, const char *schema, const char *table,
                                  tgt_live_table *out, tgt_error *err)
{
    tgt_live_table_init(out);
    const char *params[2] = {schema, table};
    odbc_result r;
    if (odbc_query(d, describe_sql, params, 2, &r, err,
                   "while reading the definition of \"%s\".\"%s\"", schema, table) < 0 ||
        r.n_rows == 0) {
        odbc_result_free(&r);
        return tgt_error_is_set(err) ? -1 : 0;
    }
    out->exists = 1;
    int rc = read_columns(&r, out, err);
    odbc_result_free(&r);
    if (rc == 0 && odbc_query(d, key_sql, params, 2, &r, err,
                              "while reading the primary key of \"%s\".\"%s\"", schema, table) == 0)
        rc = read_key(&r, out, err);
    else
        rc = -1;
    odbc_result_free(&r);
    if (rc < 0)
        tgt_live_table_deinit(out);
    return rc;
}

/* ---- DDL --------------------------------------------------------------------- */

static int mariadb_ensure_schema(odbc_driver *d, const char *schema, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "CREATE DATABASE IF NOT EXISTS ");
    odbc_sql_ident(d, sb, schema);
    tgt_sbuf_append_str(sb, " CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin");
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while creating database \"%s\"", schema);
}

static int mariadb_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols,
                                      size_t n, tgt_error *err);

/* After losing a creation race: add what the winner's table lacks, widen
 * what is narrower (alter_column_types re-reads and keeps wider ones). */

static int mariadb_create_table(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    odbc_sql_create_table(d, sb, t, odbc_mariadb_column_def);
    tgt_sbuf_append_str(sb, TABLE_OPTIONS);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "creating table \"%s\".\"%s\" with %zu columns", t->schema, t->name,
            t->n_columns);
    tgt_error local;
    tgt_error_init(&local);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while creating table \"%s\".\"%s\"",
                  t->schema, t->name) == 0)
        return 0;
    if (strstr(local.message, "already exists") == NULL)
        return odbc_error_forward(err, &local);
    tgt_log(TGT_LOG_INFO, "table \"%s\".\"%s\" was created concurrently", t->schema, t->name);
    return odbc_conform_table(d, t, err);
}

static int mariadb_add_column(odbc_driver *d, const tgt_table *t, size_t col, tgt_error *err)
{
    const tgt_column *c = &t->columns[col];
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, " ADD COLUMN ");
    odbc_mariadb_column_def(d, sb, t, col, c->type);
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    char type[MDB_TYPE_MAX];
    tgt_log(TGT_LOG_INFO, "adding column \"%s\" %s to \"%s\".\"%s\"", c->name,
            odbc_mariadb_column_type(t, col, c->type, type, sizeof type), t->schema, t->name);
    tgt_error local;
    tgt_error_init(&local);
    if (odbc_exec(d, tgt_sbuf_str(sb), NULL, &local, "while adding column \"%s\" to \"%s\".\"%s\"",
                  c->name, t->schema, t->name) == 0)
        return 0;
    if (strstr(local.message, "Duplicate column name") == NULL)
        return odbc_error_forward(err, &local);
    tgt_log(TGT_LOG_INFO, "column \"%s\" of \"%s\".\"%s\" was added concurrently", c->name,
            t->schema, t->name);
    return mariadb_alter_column_types(d, t, &col, 1, err);
}

/* Appends ", MODIFY COLUMN <def>" for each column of cols whose live type
 * (re-read: another loader may have widened it already) is lower than
 * wanted; returns how many. */
static size_t append_modifies(odbc_driver *d, tgt_sbuf *sb, const tgt_table *t,
                              const tgt_live_table *live, const size_t *cols, size_t n)
{
    size_t changed = 0;
    for (size_t j = 0; j < n; j++) {
        const tgt_column *c = &t->columns[cols[j]];
        const tgt_live_column *lc = tgt_live_table_find(live, c->name);
        if (lc == NULL || tgt_type_compare(lc->type, c->type) != TGT_ORDER_LOWER)
            continue;
        char type[MDB_TYPE_MAX];
        tgt_log(TGT_LOG_INFO, "altering \"%s\".\"%s\".\"%s\" from %s to %s", t->schema, t->name,
                c->name, lc->sql_type,
                odbc_mariadb_column_type(t, cols[j], c->type, type, sizeof type));
        tgt_sbuf_append_str(sb, changed > 0 ? ", MODIFY COLUMN " : " MODIFY COLUMN ");
        odbc_mariadb_column_def(d, sb, t, cols[j], c->type);
        changed++;
    }
    return changed;
}

static int mariadb_alter_column_types(odbc_driver *d, const tgt_table *t, const size_t *cols,
                                      size_t n, tgt_error *err)
{
    tgt_live_table live;
    if (mariadb_describe_table(d, t->schema, t->name, &live, err) < 0)
        return -1;
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    size_t changed = append_modifies(d, sb, t, &live, cols, n);
    tgt_live_table_deinit(&live);
    if (changed == 0)
        return 0;
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err, "while altering \"%s\".\"%s\"", t->schema,
                     t->name);
}

/* 1 when live's primary key is t's key, column for column. */
static int same_key(const tgt_table *t, const tgt_live_table *live)
{
    if (live->n_keys != t->n_keys)
        return 0;
    for (size_t k = 0; k < t->n_keys; k++)
        if (strcmp(live->key[k], t->columns[t->key_columns[k]].name) != 0)
            return 0;
    return 1;
}

static int mariadb_set_primary_key(odbc_driver *d, const tgt_table *t, tgt_error *err)
{
    tgt_live_table live;
    if (mariadb_describe_table(d, t->schema, t->name, &live, err) < 0)
        return -1;
    int same = same_key(t, &live), had_key = live.n_keys > 0;
    tgt_live_table_deinit(&live);
    if (same)
        return 0;
    if (t->n_keys == 0 && !had_key)
        return 0;
    /* one ALTER: the old key dropped, the key columns declared as a key
     * needs (NOT NULL, strings as VARCHAR), the new key added; it fails as
     * a whole on a duplicate or a NULL */
    tgt_sbuf *sb = &d->sql;
    tgt_sbuf_reset(sb);
    tgt_sbuf_append_str(sb, "ALTER TABLE ");
    odbc_sql_qualified(d, sb, t->schema, t->name);
    tgt_sbuf_append_str(sb, had_key ? " DROP PRIMARY KEY" : "");
    for (size_t k = 0; k < t->n_keys; k++) {
        size_t col = t->key_columns[k];
        tgt_sbuf_append_str(sb, k > 0 || had_key ? ", MODIFY COLUMN " : " MODIFY COLUMN ");
        odbc_mariadb_column_def(d, sb, t, col, t->columns[col].live_type);
    }
    if (t->n_keys > 0) {
        tgt_sbuf_append_str(sb, ", ADD PRIMARY KEY (");
        odbc_sql_key_columns(d, sb, t, "");
        tgt_sbuf_append_char(sb, ')');
    }
    if (odbc_sql_check(sb, err) < 0)
        return -1;
    tgt_log(TGT_LOG_INFO, "setting the primary key of \"%s\".\"%s\"", t->schema, t->name);
    return odbc_exec(d, tgt_sbuf_str(sb), NULL, err,
                     "while setting the primary key of \"%s\".\"%s\"", t->schema, t->name);
}

/* ---- the dialect ------------------------------------------------------------ */

const odbc_dialect odbc_mariadb_dialect = {
    .name = "mariadb",
    .caps = &mariadb_caps,
    .matches = mariadb_matches,
    .quote = '`',
    .qualified = mariadb_qualified,
    .session_sql = mariadb_session_sql,
    .begin_sql = NULL,
    .commit_sql = NULL,
    .rollback_sql = NULL,
    .type_sql = mariadb_type_sql,
    .type_from_sql = mariadb_type_from_sql,
    .bind_type = mariadb_bind_type,
    .value_fits = mariadb_value_fits,
    .classify = mariadb_classify,
    .marker_table = mariadb_marker_table,
    .rows_per_statement = 0, /* Connector/ODBC sends a parameter array as one bulk command */
    .packet_limit_sql = "SELECT @@max_allowed_packet",
    .describe_table = mariadb_describe_table,
    .ensure_schema = mariadb_ensure_schema,
    .create_table = mariadb_create_table,
    .add_column = mariadb_add_column,
    .alter_column_types = mariadb_alter_column_types,
    .stage_name = odbc_mariadb_stage_name,
    .prepare_stage = odbc_mariadb_prepare_stage,
    .merge = odbc_mariadb_merge,
    .end_transaction = odbc_mariadb_end_transaction,
    .lock_for_merge = odbc_mariadb_lock_for_merge,
    .activate_version = odbc_mariadb_activate_version,
    .set_primary_key = mariadb_set_primary_key,
    .drop_table = odbc_mariadb_drop_table,
    .replace_table = odbc_mariadb_replace_table,
    /* InnoDB has no lock table to exhaust; this bounds the temporary stages */
    .tables_per_transaction = 1000,
};
