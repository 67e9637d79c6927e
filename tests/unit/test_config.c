/*
 * test_config.c - settings from files and the environment, defaults,
 * aliases, validation messages, schema_mapping, and --about output.
 *
 * Config files are written to mkstemp files and removed by each test.  Log
 * warnings go to stderr; tests that check them redirect fd 2 into a temporary
 * file for the duration of the call (capture_begin / capture_end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "error.h"
#include "sbuf.h"

/* Every variable tgt_config_load_env reads, cleared before env tests so the
 * caller's environment cannot leak in. */
static const char *const env_vars[] = {
    "TARGET_PG_HOST",
    "TARGET_PG_PORT",
    "TARGET_PG_USER",
    "TARGET_PG_PASSWORD",
    "TARGET_PG_DBNAME",
    "TARGET_PG_DATABASE",
    "TARGET_PG_SSLMODE",
    "TARGET_PG_SSLROOTCERT",
    "TARGET_PG_SSLCERT",
    "TARGET_PG_SSLKEY",
    "TARGET_PG_CONNINFO",
    "TARGET_PG_DEFAULT_TARGET_SCHEMA",
    "TARGET_PG_SCHEMA",
    "TARGET_PG_SCHEMA_MAPPING",
    "TARGET_PG_BATCH_SIZE_ROWS",
    "TARGET_PG_MAX_BATCH_AGE_SECONDS",
    "TARGET_PG_TIMESTAMP_COLUMN",
    "TARGET_PG_FLATTENING_MAX_DEPTH",
    "TARGET_PG_DATA_FLATTENING_MAX_LEVEL",
    "TARGET_PG_LOG_LEVEL",
    "TARGET_PG_LOG_FORMAT",
    "TARGET_PG_ADD_METADATA_COLUMNS",
    "TARGET_PG_ADD_RECORD_METADATA",
    "TARGET_PG_HARD_DELETE",
    "TARGET_PG_LOAD_METHOD",
    "TARGET_PG_INVALID_RECORDS",
    "TARGET_PG_DEAD_LETTER_PATH",
    "TARGET_PG_CONNECT_RETRIES",
    "TARGET_PG_CONNECT_RETRY_DELAY_MS",
    "MELTANO_EXTRACT__LOAD_SCHEMA",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
}

/* Writes text to a new temporary file with the given mode; caller frees the
 * returned path and unlinks the file. */
static char *write_temp(const char *text, mode_t mode)
{
    char *path = strdup("/tmp/test_config_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

static void remove_temp(char *path)
{
    unlink(path);
    free(path);
}

/* Loads one file of JSON text (mode 0600) into cfg; returns the result. */
static int load_text(tgt_config *cfg, const char *text, tgt_error *err)
{
    char *path = write_temp(text, 0600);
    int rc = tgt_config_load_file(cfg, path, err);
    remove_temp(path);
    return rc;
}

static int saved_stderr = -1;
static char capture_path[64];

static void capture_begin(void)
{
    fflush(stderr);
    strcpy(capture_path, "/tmp/test_config_err_XXXXXX");
    int fd = mkstemp(capture_path);
    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Restores stderr and returns what was written meanwhile (caller frees). */
static char *capture_end(void)
{
    fflush(stderr);
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *fp = fopen(capture_path, "r");
    assert_non_null(fp);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    unlink(capture_path);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(cfg.batch_size_rows, 100000);
    assert_int_equal(cfg.max_batch_age_seconds, 300);
    assert_int_equal(cfg.flattening_max_depth, 10);
    assert_null(cfg.timestamp_column);
    assert_null(cfg.default_target_schema);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.default_target_schema, "public");
    assert_string_equal(cfg.timestamp_column, "__loaded_at");
    assert_string_equal(cfg.driver, "postgres"); /* the registry's default driver */
    assert_string_equal(cfg.log_level, "info");
    assert_null(cfg.host);
    assert_null(cfg.port);
    assert_null(cfg.password);
    assert_null(cfg.sslmode);
    assert_null(cfg.conninfo);
    assert_int_equal(cfg.n_schema_mapping, 0);
    tgt_config_deinit(&cfg);
    tgt_config_deinit(&cfg); /* a second deinit is harmless */
}

/* The fixed-choice settings are parsed once into their enums, and a field
 * a caller set directly to something else is refused. */
static void test_modes_parsed_once(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_int_equal(cfg.load_method_mode, TGT_LOAD_AUTO);
    assert_int_equal(cfg.type_change_mode, TGT_TYPE_CHANGE_FAIL);
    assert_int_equal(cfg.invalid_records_mode, TGT_INVALID_FAIL);
    free(cfg.load_method);
    cfg.load_method = strdup("overwrite");
    free(cfg.type_change);
    cfg.type_change = strdup("keep");
    free(cfg.invalid_records);
    cfg.invalid_records = strdup("skip");
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_int_equal(cfg.load_method_mode, TGT_LOAD_OVERWRITE);
    assert_int_equal(cfg.type_change_mode, TGT_TYPE_CHANGE_KEEP);
    assert_int_equal(cfg.invalid_records_mode, TGT_INVALID_SKIP);
    free(cfg.load_method);
    cfg.load_method = strdup("merge");
    assert_int_equal(tgt_config_finish(&cfg, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "\"load_method\""));
    assert_non_null(strstr(err.message, "merge"));
    tgt_config_deinit(&cfg);
}

static void test_two_files_later_wins(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    char *a = write_temp("{\"host\": \"a.example\", \"user\": \"loader\", \"batch_size_rows\": 5, "
                         "\"port\": 5432, \"timestamp_column\": \"received\"}",
                         0600);
    char *b =
        write_temp("{\"host\": \"b.example\", \"port\": \"6543\", \"batch_size_rows\": 7}", 0600);
    assert_int_equal(tgt_config_load_file(&cfg, a, &err), 0);
    assert_string_equal(cfg.port, "5432");
    assert_int_equal(tgt_config_load_file(&cfg, b, &err), 0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.host, "b.example");
    assert_string_equal(cfg.user, "loader");
    assert_string_equal(cfg.port, "6543");
    assert_int_equal(cfg.batch_size_rows, 7);
    assert_string_equal(cfg.timestamp_column, "received");
    assert_int_equal(cfg.max_batch_age_seconds, 300);
    remove_temp(a);
    remove_temp(b);
    tgt_config_deinit(&cfg);
}

static void test_aliases(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"database\": \"warehouse\", \"schema\": \"raw\", "
                               "\"data_flattening_max_level\": 3}",
                               &err),
                     0);
    assert_string_equal(cfg.dbname, "warehouse");
    assert_string_equal(cfg.default_target_schema, "raw");
    assert_int_equal(cfg.flattening_max_depth, 3);

    /* The canonical name wins within one file, whatever the key order. */
    capture_begin();
    int rc1 = load_text(&cfg, "{\"database\": \"alias\", \"dbname\": \"canonical\"}", &err);
    char *log = capture_end();
    assert_int_equal(rc1, 0);
    assert_string_equal(cfg.dbname, "canonical");
    assert_non_null(strstr(log, "\"dbname\""));
    assert_non_null(strstr(log, "\"database\""));
    free(log);
    capture_begin();
    int rc2 =
        load_text(&cfg, "{\"flattening_max_depth\": 4, \"data_flattening_max_level\": 9}", &err);
    log = capture_end();
    assert_int_equal(rc2, 0);
    assert_int_equal(cfg.flattening_max_depth, 4);
    assert_non_null(strstr(log, "\"data_flattening_max_level\""));
    free(log);

    /* An alias in a later file overrides the canonical name of an earlier one. */
    assert_int_equal(load_text(&cfg, "{\"database\": \"later\"}", &err), 0);
    assert_string_equal(cfg.dbname, "later");
    tgt_config_deinit(&cfg);
}

static void test_null_means_unset(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"host\": \"h\", \"batch_size_rows\": 7, "
                               "\"schema_mapping\": {\"a\": \"b\"}, \"sslmode\": \"require\"}",
                               &err),
                     0);
    assert_int_equal(load_text(&cfg,
                               "{\"host\": null, \"batch_size_rows\": null, \"password\": null, "
                               "\"schema_mapping\": null, \"sslmode\": null, \"port\": null, "
                               "\"dbname\": null, \"database\": \"d\", \"log_level\": null, "
                               "\"timestamp_column\": null, \"default_target_schema\": null}",
                               &err),
                     0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.host, "h");
    assert_int_equal(cfg.batch_size_rows, 7);
    assert_null(cfg.password);
    assert_null(cfg.port);
    assert_string_equal(cfg.sslmode, "require");
    assert_int_equal(cfg.n_schema_mapping, 1);
    assert_string_equal(cfg.dbname, "d"); /* a null canonical name does not hide the alias */
    assert_string_equal(cfg.timestamp_column, "__loaded_at");
    assert_string_equal(cfg.default_target_schema, "public");
    assert_string_equal(cfg.log_level, "info");
    tgt_config_deinit(&cfg);
}

/* Loads text, expects TGT_ERR_USAGE whose message contains `want` and not
 * `never` (when non-NULL). */
static void expect_usage_error(const char *text, const char *want, const char *never)
{
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg, text, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    if (strstr(err.message, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, want);
    if (never != NULL && strstr(err.message, never) != NULL)
        fail_msg("message \"%s\" leaks \"%s\"", err.message, never);
    tgt_config_deinit(&cfg);
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_usage_error("{\"batch_size_rows\": \"100\"}",
                       "setting \"batch_size_rows\" must be an integer >= 1, got a string", NULL);
    expect_usage_error("{\"batch_size_rows\": 0}",
                       "setting \"batch_size_rows\" must be an integer >= 1, got 0", NULL);
    expect_usage_error("{\"max_batch_age_seconds\": 1.5}",
                       "setting \"max_batch_age_seconds\" must be an integer >= 1, got 1.5 (a "
                       "number with a fraction)",
                       NULL);
    /* integral but written as a JSON real: the message says how to write it */
    expect_usage_error("{\"batch_size_rows\": 1e3}",
                       "setting \"batch_size_rows\" must be an integer >= 1, got 1000 written "
                       "with an exponent or a decimal point (write 1000)",
                       NULL);
    expect_usage_error("{\"port\": 5432.0}", "got 5432 written with an exponent", NULL);
    /* a bounded setting names both ends of its range */
    expect_usage_error("{\"connect_retries\": 5000}",
                       "setting \"connect_retries\" must be an integer from 0 to 1000, got 5000",
                       NULL);
    expect_usage_error("{\"connect_retry_delay_ms\": -1}",
                       "must be an integer from 0 to 3600000, got -1", NULL);
    expect_usage_error("{\"data_flattening_max_level\": -1}",
                       "setting \"data_flattening_max_level\" must be an integer >= 0, got -1",
                       NULL);
    expect_usage_error("{\"host\": 5}", "setting \"host\" must be a string, got an integer", NULL);
    expect_usage_error("{\"timestamp_column\": \"\"}",
                       "setting \"timestamp_column\" must be a non-empty string", NULL);
    expect_usage_error("{\"port\": \"54x2\"}", "setting \"port\" must be a port number", NULL);
    expect_usage_error("{\"port\": 70000}", "got 70000", NULL);
    expect_usage_error("{\"port\": true}", "got a boolean", NULL);
    /* Secrets: the type is named, the value never. */
    expect_usage_error("{\"password\": [\"hunter2-secret\"]}",
                       "setting \"password\" must be a string, got an array", "hunter2");
    expect_usage_error("{\"conninfo\": {\"password\": \"hunter2-secret\"}}",
                       "setting \"conninfo\" must be a string, got an object", "hunter2");

    /* The file is reported as where the error happened. */
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    char *path = write_temp("{\"flattening_max_depth\": \"deep\"}", 0600);
    assert_int_equal(tgt_config_load_file(&cfg, path, &err), -1);
    assert_non_null(strstr(err.where, path));
    remove_temp(path);
    tgt_config_deinit(&cfg);

    /* Zero is a valid depth. */
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg, "{\"flattening_max_depth\": 0}", &err), 0);
    assert_int_equal(cfg.flattening_max_depth, 0);
    tgt_config_deinit(&cfg);
}

static void test_enums(void **state)
{
    (void)state;
    expect_usage_error("{\"sslmode\": \"sometimes\"}",
                       "setting \"sslmode\" must be one of disable, allow, prefer, require, "
                       "verify-ca, verify-full, got \"sometimes\"",
                       NULL);
    expect_usage_error("{\"log_level\": \"loud\"}", "setting \"log_level\" must be one of", NULL);
    expect_usage_error("{\"log_level\": 3}", "got an integer", NULL);

    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(
        load_text(&cfg, "{\"sslmode\": \"VERIFY-FULL\", \"log_level\": \"debug\"}", &err), 0);
    assert_string_equal(cfg.sslmode, "verify-full"); /* stored as libpq spells it */
    assert_string_equal(cfg.log_level, "debug");
    tgt_config_deinit(&cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_config_init(&cfg);

    tgt_error_init(&err);
    assert_int_equal(tgt_config_load_file(&cfg, "/nonexistent/target-pg.json", &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "/nonexistent/target-pg.json"));

    tgt_error_init(&err);
    assert_int_equal(tgt_config_load_file(&cfg, "/tmp", &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "directory"));

    char *path = write_temp("{\"host\": \"x\",\n  \"port\": }", 0600);
    tgt_error_init(&err);
    assert_int_equal(tgt_config_load_file(&cfg, path, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "line 2"));
    remove_temp(path);

    path = write_temp("[1, 2]", 0600);
    tgt_error_init(&err);
    assert_int_equal(tgt_config_load_file(&cfg, path, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "must hold a JSON object, got an array"));
    remove_temp(path);

    /* A syntax error inside a password must not quote the password. */
    expect_usage_error("{\"password\": \"s3cr3t\\q\"}", "not valid JSON", "s3cr3t");
    tgt_config_deinit(&cfg);
}

static void test_unknown_keys_warned(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    capture_begin();
    int rc = load_text(&cfg,
                       "{\"primary_key_required\": true, \"validate_records\": \"upsert\", "
                       "\"bogus\": 1, "
                       "\"password\": \"pw-value-1\", \"host\": \"h\"}",
                       &err);
    char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.host, "h");
    assert_non_null(strstr(log, "unknown setting \"primary_key_required\""));
    assert_non_null(strstr(log, "unknown setting \"validate_records\""));
    assert_non_null(strstr(log, "unknown setting \"bogus\""));
    assert_null(strstr(log, "upsert"));
    assert_null(strstr(log, "pw-value-1"));
    free(log);
    tgt_config_deinit(&cfg);
}

static void test_permission_warning(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);

    char *path = write_temp("{\"password\": \"pw-value-2\"}", 0644);
    capture_begin();
    int rc = tgt_config_load_file(&cfg, path, &err);
    char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.password, "pw-value-2");
    assert_non_null(strstr(log, path));
    assert_non_null(strstr(log, "chmod 600"));
    assert_null(strstr(log, "pw-value-2"));
    free(log);
    remove_temp(path);

    /* conninfo with a password, world-readable: warned too. */
    path = write_temp("{\"conninfo\": \"postgresql://u:pw-value-3@db/x\"}", 0604);
    capture_begin();
    rc = tgt_config_load_file(&cfg, path, &err);
    log = capture_end();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "chmod 600"));
    assert_null(strstr(log, "pw-value-3"));
    free(log);
    remove_temp(path);

    /* Private file, or no password: quiet. */
    path = write_temp("{\"conninfo\": \"host=db password=pw-value-4\"}", 0600);
    capture_begin();
    rc = tgt_config_load_file(&cfg, path, &err);
    log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(log, "");
    free(log);
    remove_temp(path);
    path = write_temp("{\"conninfo\": \"host=db user=u\"}", 0644);
    capture_begin();
    rc = tgt_config_load_file(&cfg, path, &err);
    log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(log, "");
    free(log);
    remove_temp(path);
    tgt_config_deinit(&cfg);
}

/* A config file Meltano writes for one run (under <project>/.meltano/run/,
 * mode 0644 by Meltano's choice) gets no warning the user could not act on;
 * the same file elsewhere still does. */
static void test_permission_warning_meltano_run(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    char dir[] = "/tmp/test_config_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], sub[256];
    const char *const parts[] = {"/.meltano", "/.meltano/run", "/.meltano/run/target-pg"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s%s", dir, parts[i]);
        assert_int_equal(mkdir(sub, 0700), 0);
    }
    snprintf(path, sizeof(path), "%s/.meltano/run/target-pg/target.1.config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("{\"password\": \"pw-value-5\"}", f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0644), 0);
    capture_begin();
    int rc = tgt_config_load_file(&cfg, path, &err);
    char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(log, "");
    free(log);
    unlink(path);
    for (size_t i = 3; i-- > 0;) {
        snprintf(sub, sizeof(sub), "%s%s", dir, parts[i]);
        rmdir(sub);
    }
    /* "x.meltano/run/" is not Meltano's directory */
    snprintf(sub, sizeof(sub), "%s/x.meltano", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/x.meltano/run", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/x.meltano/run/c.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("{\"password\": \"pw-value-6\"}", f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0644), 0);
    capture_begin();
    rc = tgt_config_load_file(&cfg, path, &err);
    log = capture_end();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "chmod 600"));
    free(log);
    unlink(path);
    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/x.meltano", dir);
    rmdir(sub);
    rmdir(dir);
    tgt_config_deinit(&cfg);
}

static void test_env(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    setenv("TARGET_PG_HOST", "env.example", 1);
    setenv("TARGET_PG_PORT", "5433", 1);
    setenv("TARGET_PG_PASSWORD", "env-pw", 1);
    setenv("TARGET_PG_DATABASE", "envdb", 1);
    setenv("TARGET_PG_BATCH_SIZE_ROWS", "250", 1);
    setenv("TARGET_PG_DATA_FLATTENING_MAX_LEVEL", "0", 1);
    setenv("TARGET_PG_SSLMODE", "require", 1);
    setenv("TARGET_PG_SCHEMA_MAPPING", "{\"sales\": \"raw_sales\"}", 1);
    setenv("TARGET_PG_TIMESTAMP_COLUMN", "", 1); /* empty: not set */
    assert_int_equal(tgt_config_load_env(&cfg, &err), 0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.host, "env.example");
    assert_string_equal(cfg.port, "5433");
    assert_string_equal(cfg.password, "env-pw");
    assert_string_equal(cfg.dbname, "envdb");
    assert_int_equal(cfg.batch_size_rows, 250);
    assert_int_equal(cfg.flattening_max_depth, 0);
    assert_string_equal(cfg.sslmode, "require");
    assert_string_equal(cfg.timestamp_column, "__loaded_at");
    assert_string_equal(tgt_config_target_schema(&cfg, "sales", 5), "raw_sales");
    tgt_config_deinit(&cfg);

    /* The canonical variable beats the alias. */
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    setenv("TARGET_PG_DBNAME", "canonical", 1);
    capture_begin();
    int rc = tgt_config_load_env(&cfg, &err);
    char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.dbname, "canonical");
    assert_non_null(strstr(log, "TARGET_PG_DATABASE"));
    free(log);
    tgt_config_deinit(&cfg);
    clear_env();
}

/* Sets one variable, expects TGT_ERR_USAGE naming it. */
static void expect_env_error(const char *var, const char *value, const char *want)
{
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    clear_env();
    setenv(var, value, 1);
    assert_int_equal(tgt_config_load_env(&cfg, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    if (strstr(err.message, var) == NULL || strstr(err.message, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err.message, var, want);
    unsetenv(var);
    tgt_config_deinit(&cfg);
}

static void test_env_bad_values(void **state)
{
    (void)state;
    expect_env_error("TARGET_PG_BATCH_SIZE_ROWS", "12abc",
                     "must be an integer >= 1, got \"12abc\"");
    expect_env_error("TARGET_PG_BATCH_SIZE_ROWS", " 12", "got \" 12\"");
    expect_env_error("TARGET_PG_BATCH_SIZE_ROWS", "+12", "got \"+12\"");
    expect_env_error("TARGET_PG_BATCH_SIZE_ROWS", "0", "got 0");
    expect_env_error("TARGET_PG_MAX_BATCH_AGE_SECONDS", "99999999999999999999999",
                     "must be an integer >= 1");
    expect_env_error("TARGET_PG_FLATTENING_MAX_DEPTH", "-3", "got -3");
    expect_env_error("TARGET_PG_PORT", "-5432", "must be a port number");
    expect_env_error("TARGET_PG_PORT", "65536", "got 65536");
    expect_env_error("TARGET_PG_SSLMODE", "maybe", "must be one of");
    expect_env_error("TARGET_PG_SCHEMA_MAPPING", "sales=raw", "must hold a JSON object");
    expect_env_error("TARGET_PG_SCHEMA_MAPPING", "[\"sales\"]", "got an array");
    expect_env_error("TARGET_PG_SCHEMA_MAPPING", "{\"sales\": 1}", "\"sales\"");
}

static void test_meltano_load_schema(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);

    setenv("MELTANO_EXTRACT__LOAD_SCHEMA", "tap_github", 1);
    tgt_config_init(&cfg);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.default_target_schema, "tap_github");
    tgt_config_deinit(&cfg);

    /* An explicit setting wins. */
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg, "{\"default_target_schema\": \"chosen\"}", &err), 0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.default_target_schema, "chosen");
    tgt_config_deinit(&cfg);

    /* Empty counts as unset. */
    setenv("MELTANO_EXTRACT__LOAD_SCHEMA", "", 1);
    tgt_config_init(&cfg);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.default_target_schema, "public");
    tgt_config_deinit(&cfg);
    unsetenv("MELTANO_EXTRACT__LOAD_SCHEMA");
}

static void test_schema_mapping(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"default_target_schema\": \"landing\", \"schema_mapping\": {"
                               "\"sales\": \"raw_sales\", "
                               "\"hr\": {\"target_schema\": \"raw_hr\", \"indices\": {}}}}",
                               &err),
                     0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_int_equal(cfg.n_schema_mapping, 2);
    assert_string_equal(tgt_config_target_schema(&cfg, "sales", 5), "raw_sales");
    assert_string_equal(tgt_config_target_schema(&cfg, "hr", 2), "raw_hr");
    /* Only the first source_len bytes are the source schema. */
    assert_string_equal(tgt_config_target_schema(&cfg, "sales-orders", 5), "raw_sales");
    assert_string_equal(tgt_config_target_schema(&cfg, "hr-people", 2), "raw_hr");
    /* Exact match only: no prefixes, no case folding. */
    assert_string_equal(tgt_config_target_schema(&cfg, "sale", 4), "landing");
    assert_string_equal(tgt_config_target_schema(&cfg, "salesx", 6), "landing");
    assert_string_equal(tgt_config_target_schema(&cfg, "SALES", 5), "landing");
    assert_string_equal(tgt_config_target_schema(&cfg, NULL, 0), "landing");

    /* A later file replaces the whole mapping. */
    assert_int_equal(load_text(&cfg, "{\"schema_mapping\": {\"ops\": \"raw_ops\"}}", &err), 0);
    assert_int_equal(cfg.n_schema_mapping, 1);
    assert_string_equal(tgt_config_target_schema(&cfg, "sales", 5), "landing");
    assert_string_equal(tgt_config_target_schema(&cfg, "ops", 3), "raw_ops");
    assert_int_equal(load_text(&cfg, "{\"schema_mapping\": {}}", &err), 0);
    assert_int_equal(cfg.n_schema_mapping, 0);
    tgt_config_deinit(&cfg);

    expect_usage_error("{\"schema_mapping\": {\"sales\": 3}}",
                       "setting \"schema_mapping\" must map each source schema", NULL);
    expect_usage_error("{\"schema_mapping\": {\"a\": \"x\", \"sales\": {\"target\": \"x\"}}}",
                       "got an object without a usable target_schema for \"sales\"", NULL);
    expect_usage_error("{\"schema_mapping\": {\"sales\": \"\"}}", "got an empty string", NULL);
    expect_usage_error("{\"schema_mapping\": [\"sales\"]}", "got an array", NULL);
}

static void test_finish_range_check(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_error_init(&err);
    tgt_config_init(&cfg);
    cfg.batch_size_rows = 0;
    assert_int_equal(tgt_config_finish(&cfg, &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "batch_size_rows"));
    tgt_config_deinit(&cfg);
}

/* Booleans: JSON true/false from files (the alias too), words from the
 * environment; anything else names the setting. */
static void test_booleans(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_config_init(&cfg);
    tgt_error_init(&err);
    assert_int_equal(cfg.hard_delete, 0);
    assert_int_equal(cfg.add_metadata_columns, 0);
    assert_int_equal(
        load_text(&cfg, "{\"hard_delete\": true, \"add_record_metadata\": true}", &err), 0);
    assert_int_equal(cfg.hard_delete, 1);
    assert_int_equal(cfg.add_metadata_columns, 1);
    assert_int_equal(load_text(&cfg, "{\"hard_delete\": \"yes\"}", &err), -1);
    assert_int_equal(err.code, TGT_ERR_USAGE);
    assert_non_null(strstr(err.message, "hard_delete"));
    assert_non_null(strstr(err.message, "true or false"));
    tgt_config_deinit(&cfg);

    clear_env();
    tgt_config_init(&cfg);
    tgt_error_init(&err);
    setenv("TARGET_PG_HARD_DELETE", "TRUE", 1);
    setenv("TARGET_PG_ADD_METADATA_COLUMNS", "0", 1);
    assert_int_equal(tgt_config_load_env(&cfg, &err), 0);
    assert_int_equal(cfg.hard_delete, 1);
    assert_int_equal(cfg.add_metadata_columns, 0);
    setenv("TARGET_PG_HARD_DELETE", "maybe", 1);
    assert_int_equal(tgt_config_load_env(&cfg, &err), -1);
    assert_non_null(strstr(err.message, "TARGET_PG_HARD_DELETE"));
    clear_env();
    tgt_config_deinit(&cfg);
}

/* dead_letter without a path is refused at finish, with it accepted. */
static void test_dead_letter_needs_path(void **state)
{
    (void)state;
    tgt_config cfg;
    tgt_error err;
    tgt_config_init(&cfg);
    tgt_error_init(&err);
    assert_int_equal(load_text(&cfg, "{\"invalid_records\": \"dead_letter\"}", &err), 0);
    assert_int_equal(tgt_config_finish(&cfg, &err), -1);
    assert_non_null(strstr(err.message, "dead_letter_path"));
    tgt_config_deinit(&cfg);

    tgt_config_init(&cfg);
    tgt_error_init(&err);
    assert_int_equal(load_text(&cfg,
                               "{\"invalid_records\": \"dead_letter\", "
                               "\"dead_letter_path\": \"/tmp/x.jsonl.zst\"}",
                               &err),
                     0);
    assert_int_equal(tgt_config_finish(&cfg, &err), 0);
    assert_string_equal(cfg.load_method, "auto");
    assert_int_equal(cfg.connect_retries, 5);
    tgt_config_deinit(&cfg);
}

static const char *const all_settings[] = {
    "driver",
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "conninfo",
    "odbc_connection_string",
    "odbc_dsn",
    "dialect",
    "default_target_schema",
    "schema_mapping",
    "batch_size_rows",
    "max_batch_age_seconds",
    "timestamp_column",
    "flattening_max_depth",
    "type_change",
    "add_metadata_columns",
    "hard_delete",
    "load_method",
    "invalid_records",
    "dead_letter_path",
    "connect_retries",
    "connect_retry_delay_ms",
    "log_level",
    "log_format",
};

static json_t *props_of(json_t *root)
{
    return json_object_get(json_object_get(root, "settings"), "properties");
}

static void test_about_json(void **state)
{
    (void)state;
    tgt_sbuf out;
    tgt_sbuf_init(&out);
    assert_int_equal(tgt_config_write_about(&out, 0), 0);
    json_error_t jerr;
    json_t *root = json_loads(tgt_sbuf_str(&out), 0, &jerr);
    if (root == NULL)
        fail_msg("about is not JSON: %s", jerr.text);
    assert_string_equal(json_string_value(json_object_get(root, "name")), "target-pg");
    assert_non_null(json_string_value(json_object_get(root, "description")));
    assert_non_null(json_string_value(json_object_get(root, "version")));
    json_t *caps = json_object_get(root, "capabilities");
    static const char *const want_caps[] = {
        "about",       "activate-version",  "batch",         "hard-delete",
        "soft-delete", "schema-flattening", "target-schema", "structured-logging"};
    assert_int_equal(json_array_size(caps), sizeof(want_caps) / sizeof(want_caps[0]));
    for (size_t i = 0; i < sizeof(want_caps) / sizeof(want_caps[0]); i++)
        assert_string_equal(json_string_value(json_array_get(caps, i)), want_caps[i]);
    /* a default would be copied into Meltano's plugin and defeat the variable */
    assert_null(
        json_object_get(json_object_get(props_of(root), "default_target_schema"), "default"));

    json_t *settings = json_object_get(root, "settings");
    assert_string_equal(json_string_value(json_object_get(settings, "type")), "object");
    assert_true(json_is_array(json_object_get(settings, "required")));
    json_t *props = json_object_get(settings, "properties");
    size_t n = sizeof(all_settings) / sizeof(all_settings[0]);
    assert_int_equal(json_object_size(props), n);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object_get(props, all_settings[i]);
        if (p == NULL)
            fail_msg("about lacks setting %s", all_settings[i]);
        assert_non_null(json_string_value(json_object_get(p, "type")));
        const char *desc = json_string_value(json_object_get(p, "description"));
        assert_non_null(desc);
        assert_true(strlen(desc) > 20);
    }
    json_t *hard = json_object_get(props, "hard_delete");
    assert_string_equal(json_string_value(json_object_get(hard, "type")), "boolean");
    assert_true(json_is_false(json_object_get(hard, "default")));

    assert_true(json_is_true(json_object_get(json_object_get(props, "password"), "writeOnly")));
    assert_true(json_is_true(json_object_get(json_object_get(props, "conninfo"), "writeOnly")));
    assert_true(json_is_true(json_object_get(json_object_get(props, "password"), "secret")));
    assert_true(json_is_true(json_object_get(json_object_get(props, "conninfo"), "secret")));
    assert_null(json_object_get(json_object_get(props, "host"), "secret"));
    assert_null(json_object_get(json_object_get(props, "host"), "writeOnly"));
    json_t *odbc = json_object_get(props, "odbc_connection_string");
    assert_true(json_is_true(json_object_get(odbc, "writeOnly")));
    assert_true(json_is_true(json_object_get(odbc, "secret")));
    assert_null(json_object_get(json_object_get(props, "odbc_dsn"), "secret"));

    json_t *batch = json_object_get(props, "batch_size_rows");
    assert_string_equal(json_string_value(json_object_get(batch, "type")), "integer");
    assert_int_equal(json_integer_value(json_object_get(batch, "default")), 100000);
    assert_int_equal(json_integer_value(json_object_get(batch, "minimum")), 1);
    json_t *depth = json_object_get(props, "flattening_max_depth");
    assert_int_equal(json_integer_value(json_object_get(depth, "minimum")), 0);
    assert_non_null(strstr(json_string_value(json_object_get(depth, "description")),
                           "data_flattening_max_level"));
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(props, "dbname"), "description")),
               "`database`"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(props, "sslmode"), "enum")),
                     6);
    json_t *level = json_object_get(props, "log_level");
    assert_string_equal(json_string_value(json_object_get(level, "default")), "info");
    assert_int_equal(json_array_size(json_object_get(level, "enum")), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(props, "timestamp_column"), "default")),
        "__loaded_at");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(props, "schema_mapping"), "type")),
        "object");
    json_decref(root);
    tgt_sbuf_deinit(&out);
}

static void test_about_markdown(void **state)
{
    (void)state;
    tgt_sbuf out;
    tgt_sbuf_init(&out);
    assert_int_equal(tgt_config_write_about(&out, 1), 0);
    const char *md = tgt_sbuf_str(&out);
    assert_true(strncmp(md, "# target-pg\n", 12) == 0);
    assert_non_null(strstr(md, "| Setting | Type | Default | Description |"));
    for (size_t i = 0; i < sizeof(all_settings) / sizeof(all_settings[0]); i++) {
        char cell[64];
        snprintf(cell, sizeof(cell), "| `%s` |", all_settings[i]);
        if (strstr(md, cell) == NULL)
            fail_msg("markdown lacks a row for %s", all_settings[i]);
    }
    assert_non_null(strstr(md, "`100000`"));
    assert_non_null(strstr(md, "`about`"));
    assert_non_null(strstr(md, "| `host` | string | libpq |"));
    assert_non_null(strstr(md, "| `conninfo` | string (secret) |  |"));
    tgt_sbuf_deinit(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_modes_parsed_once, setup),
        cmocka_unit_test_setup(test_two_files_later_wins, setup),
        cmocka_unit_test_setup(test_aliases, setup),
        cmocka_unit_test_setup(test_null_means_unset, setup),
        cmocka_unit_test_setup(test_wrong_types, setup),
        cmocka_unit_test_setup(test_enums, setup),
        cmocka_unit_test_setup(test_file_errors, setup),
        cmocka_unit_test_setup(test_unknown_keys_warned, setup),
        cmocka_unit_test_setup(test_permission_warning, setup),
        cmocka_unit_test_setup(test_env, setup),
        cmocka_unit_test_setup(test_env_bad_values, setup),
        cmocka_unit_test_setup(test_meltano_load_schema, setup),
        cmocka_unit_test_setup(test_permission_warning_meltano_run, setup),
        cmocka_unit_test_setup(test_schema_mapping, setup),
        cmocka_unit_test_setup(test_finish_range_check, setup),
        cmocka_unit_test_setup(test_booleans, setup),
        cmocka_unit_test_setup(test_dead_letter_needs_path, setup),
        cmocka_unit_test_setup(test_about_json, setup),
        cmocka_unit_test_setup(test_about_markdown, setup),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
