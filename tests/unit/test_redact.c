/*
 * test_redact.c - unit tests for redact.c: the messages libpq gives for
 * malformed connection strings, with the password and the conninfo masked;
 * text without a secret left alone; truncation to the buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "redact.h"

static tgt_config cfg_with(const char *conninfo, const char *password)
{
    tgt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.conninfo = (char *)conninfo;
    cfg.password = (char *)password;
    return cfg;
}

static void check(const tgt_config *cfg, const char *in, const char *want)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", in);
    tgt_redact(buf, sizeof(buf), cfg);
    assert_string_equal(buf, want);
}

static void test_uri_password(void **state)
{
    (void)state;
    tgt_config cfg = cfg_with("postgresql://u:s3cr%zz@127.0.0.1:5432/db", NULL);
    check(&cfg, "invalid percent-encoded token: \"s3cr%zz\"",
          "invalid percent-encoded token: \"***\"");
    /* the whole URI quoted back */
    check(&cfg, "in URI: \"postgresql://u:s3cr%zz@127.0.0.1:5432/db\"", "in URI: \"***\"");
    /* no password in the text: unchanged */
    check(&cfg, "connection refused", "connection refused");
}

static void test_uri_query_and_keyword_password(void **state)
{
    (void)state;
    tgt_config cfg = cfg_with("postgresql://u@h/db?sslmode=require&password=pw%G1&x=1", NULL);
    check(&cfg, "invalid percent-encoded token: \"pw%G1\"",
          "invalid percent-encoded token: \"***\"");
    cfg = cfg_with("host=h password = 'p w' dbname=d", NULL);
    check(&cfg, "got p w here", "got *** here");
    cfg = cfg_with("host=h password=abc dbname=d", NULL);
    check(&cfg, "abc and abcabc", "*** and ******");
}

static void test_password_setting_and_conninfo_as_a_whole(void **state)
{
    (void)state;
    tgt_config cfg = cfg_with("mydb", "hunter2");
    check(&cfg, "database mydb: password hunter2 refused", "database ***: password *** refused");
    cfg = cfg_with(NULL, NULL);
    check(&cfg, "nothing to hide", "nothing to hide");
    tgt_redact(NULL, 10, &cfg);
    char buf[8] = "abc";
    tgt_redact(buf, sizeof(buf), NULL);
    assert_string_equal(buf, "abc");
    /* the HMAC key of the transformations is a secret too */
    cfg = cfg_with(NULL, NULL);
    cfg.pseudonymization_key = (char *)"k3y-s3cret";
    check(&cfg, "a message quoting k3y-s3cret", "a message quoting ***");
}

static void test_cut_to_the_buffer(void **state)
{
    (void)state;
    tgt_config cfg = cfg_with(NULL, "x");
    char buf[8];
    memcpy(buf, "xxxxxxx", 8); /* seven secrets become 21 bytes: cut at 7 */
    tgt_redact(buf, sizeof(buf), &cfg);
    assert_string_equal(buf, "*******");
}

static void test_error_parts(void **state)
{
    (void)state;
    tgt_config cfg = cfg_with(NULL, "pw123");
    tgt_error err;
    tgt_error_init(&err);
    tgt_error_set(&err, TGT_ERR_LOAD, "m pw123");
    tgt_error_detail(&err, "d pw123");
    tgt_error_hint(&err, "h pw123");
    tgt_error_where(&err, "w pw123");
    tgt_redact_error(&err, &cfg);
    assert_string_equal(err.message, "m ***");
    assert_string_equal(err.detail, "d ***");
    assert_string_equal(err.hint, "h ***");
    assert_string_equal(err.where, "w ***");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_password),
        cmocka_unit_test(test_uri_query_and_keyword_password),
        cmocka_unit_test(test_password_setting_and_conninfo_as_a_whole),
        cmocka_unit_test(test_cut_to_the_buffer),
        cmocka_unit_test(test_error_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
