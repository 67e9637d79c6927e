#!/usr/bin/env python3
"""Widening several columns of a table costs one table rewrite (issue #14
item 5; README "Schema changes").

A table of 1,000 rows with four bigint columns gets a SCHEMA that widens
three of them to number (bigint -> numeric) and leaves one alone.  An event
trigger records every ALTER TABLE statement and every table rewrite
(table_rewrite) on the database.  Expected: exit 0, exactly one ALTER TABLE
and one rewrite, the three columns numeric with every value kept, the fourth
still bigint, and a log line per altered column.  Before: one ALTER TABLE and
one rewrite per column (three).

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()


def schema_msg(numbers):
    props = {"id": {"type": "integer"}}
    for c in ("a", "b", "c", "d"):
        props[c] = {"type": "number" if c in numbers else "integer"}
    return {"type": "SCHEMA", "stream": "w", "key_properties": ["id"],
            "schema": {"type": "object", "properties": props}}


def main():
    sql = lambda text: harness.psql(text, DB)  # noqa: E731
    sql("CREATE SCHEMA wo")
    cfg = harness.write_config(os.path.join(TMP, "wo.json"), DB, schema="wo")
    seed = os.path.join(TMP, "seed.singer")
    harness.write_messages(seed, [schema_msg(())] +
                           [{"type": "RECORD", "stream": "w",
                             "record": {"id": i, "a": i, "b": -i, "c": i * 1000003, "d": 7}}
                            for i in range(1, 1001)])
    r = harness.run_input(cfg, seed)
    if not harness.check_exit_0(problems, "seeding the table", r):
        return harness.report(problems)
    sql("CREATE TABLE wo.ddl (what text)")
    sql("CREATE FUNCTION wo.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO wo.ddl VALUES (TG_TAG); END $$")
    sql("CREATE FUNCTION wo.note_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO wo.ddl VALUES ('rewrite ' || pg_event_trigger_table_rewrite_oid()::regclass); "
        "END $$")
    sql("CREATE EVENT TRIGGER wo_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE') "
        "EXECUTE FUNCTION wo.note_ddl()")
    sql("CREATE EVENT TRIGGER wo_rewrite ON table_rewrite EXECUTE FUNCTION wo.note_rewrite()")
    try:
        path = os.path.join(TMP, "widen.singer")
        harness.write_messages(path, [schema_msg(("a", "b", "c")),
                                      {"type": "STATE", "value": {"widened": 1}}])
        r = harness.run_input(cfg, path)
        label = "three columns widened by one SCHEMA"
        if harness.check_exit_0(problems, label, r):
            harness.check_states(problems, label, r.stdout, [{"widened": 1}])
    finally:
        sql("DROP EVENT TRIGGER wo_ddl")
        sql("DROP EVENT TRIGGER wo_rewrite")
    got = harness.scalar("SELECT string_agg(what, ', ' ORDER BY what) FROM wo.ddl", DB)
    if got != "ALTER TABLE, rewrite wo.w":
        problems.append("%s: DDL statements and rewrites %r, expected one ALTER TABLE and one "
                        "rewrite of wo.w" % (label, got))
    types = harness.scalar("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), "
                           "', ' ORDER BY attname) FROM pg_attribute WHERE attrelid = "
                           "'wo.w'::regclass AND attname IN ('a', 'b', 'c', 'd')", DB)
    if types != "a numeric, b numeric, c numeric, d bigint":
        problems.append("%s: column types %r" % (label, types))
    kept = harness.scalar("SELECT count(*) FROM wo.w WHERE a = id AND b = -id "
                          "AND c = id * 1000003 AND d = 7", DB)
    if kept != "1000":
        problems.append("%s: %s of 1000 rows kept their values" % (label, kept))
    for c in ("a", "b", "c"):
        if 'altering "wo"."w"."%s" from bigint to numeric' % c not in r.stderr:
            problems.append("%s: no log line altering column %s: %s" % (label, c, r.stderr[-600:]))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
