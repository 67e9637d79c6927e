#!/usr/bin/env python3
"""A keyed table whose stream drops key_properties (issue #11 item 5).

  (a) load_method auto, a later run whose SCHEMA has no key_properties while
      the table has the primary key (id): exit 1 naming the stream, the
      table's key and the choices (key_properties again, load_method upsert,
      load_method overwrite, dropping the key), nothing of that run committed
      and no STATE -- also with invalid_records skip, which used to drop the
      update after a "duplicate key" refusal;
  (a2) the same run with load_method upsert (one of the choices): a record of
      an existing key updates its row (the table's key serves as the
      stream's, logged), a new key is inserted, the primary key stays;
  (b) within one run (a keyed SCHEMA, then one without keys): refused under
      auto before anything is committed, the newest record wins under upsert;
  (c) a keyless SCHEMA that does not declare a column of the table's key,
      under upsert: exit 1 naming the stream, the table's key and the choices,
      nothing of the run committed.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
S = "dropped_keys"
SCRATCH = harness.Scratch(DB, TMP, "keys")


def config(**extra):
    return SCRATCH.config(S, **extra)
PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def problem(msg):
    problems.append(msg)


def schema_msg(stream, keys, props=None):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": props or PROPS}}


def rec(stream, record):
    return {"type": "RECORD", "stream": stream, "record": record}


def rows(table):
    return [(r["id"], r["v"]) for r in harness.query_json(
        "SELECT id, v FROM %s ORDER BY id" % harness.qualified(S, table), DB)]


def pk(table):
    return [r["a"] for r in harness.query_json(
        "SELECT a.attname AS a FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass('%s') AND i.indisprimary"
        % harness.qualified(S, table), DB)]


def error_text(r):
    return "\n".join(line for line in r.stderr.splitlines()
                     if line.startswith(("target-pg: error", "DETAIL", "HINT")))


def check_refused(label, r, table):
    if not harness.check_exit_1(problems, label, r):
        return
    err = error_text(r)
    for word in ('stream "%s"' % table, "no key_properties", "(id)", "key_properties again",
                 "load_method upsert", "load_method overwrite", "drop the primary key"):
        if word not in err:
            problem("%s: the error does not name %r: %s" % (label, word, err))
    harness.check_states(problems, label, r.stdout, [])


def case_a():
    for T, extra in (("later_run", {}), ("later_run_skip", {"invalid_records": "skip"})):
        label = "(a) %s" % T
        cfg = config(**extra)
        r = SCRATCH.run(cfg, [schema_msg(T, ["id"]), rec(T, {"id": 1, "v": "one"}),
                      rec(T, {"id": 2, "v": "two"})])
        if not harness.check_exit_0(problems, label + " setup", r):
            continue
        later = [schema_msg(T, []), rec(T, {"id": 1, "v": "one, updated"}),
                 rec(T, {"id": 3, "v": "three"}), {"type": "STATE", "value": {"a": 1}}]
        r = SCRATCH.run(cfg, later)
        check_refused(label, r, T)
        if rows(T) != [(1, "one"), (2, "two")]:
            problem("%s: holds %r, expected the table unchanged" % (label, rows(T)))
        label = "(a2) %s, load_method upsert" % T
        r = SCRATCH.run(config(load_method="upsert", **extra), later)
        if not harness.check_exit_0(problems, label, r):
            continue
        harness.check_states(problems, label, r.stdout, [{"a": 1}])
        if rows(T) != [(1, "one, updated"), (2, "two"), (3, "three")]:
            problem("%s: holds %r, expected id 1 updated and id 3 added" % (label, rows(T)))
        if pk(T) != ["id"]:
            problem("%s: primary key %r, expected (id)" % (label, pk(T)))
        if "upserting on the primary key (id)" not in r.stderr:
            problem("%s: no log line about the table's key: %s" % (label, r.stderr[-600:]))
        if "invalid_record_count" in r.stderr:
            problem("%s: records were refused: %s" % (label, r.stderr[-600:]))


def case_b():
    T = "same_run"
    msgs = [schema_msg(T, ["id"]), rec(T, {"id": 1, "v": "one"}),
            schema_msg(T, []), rec(T, {"id": 1, "v": "one again"}),
            rec(T, {"id": 1, "v": "one, newest"})]
    r = SCRATCH.run(config(), msgs)
    check_refused("(b) within one run, auto", r, T)
    if rows(T) != []:
        problem("(b) within one run, auto: holds %r, expected nothing committed" % rows(T))
    r = SCRATCH.run(config(load_method="upsert"), msgs)
    if harness.check_exit_0(problems, "(b) within one run, upsert", r):
        if rows(T) != [(1, "one, newest")]:
            problem("(b) within one run, upsert: holds %r, expected the newest record" % rows(T))


def case_c():
    T = "missing_key"
    cfg = config(load_method="upsert")
    r = SCRATCH.run(cfg, [schema_msg(T, ["id"]), rec(T, {"id": 1, "v": "one"})])
    if not harness.check_exit_0(problems, "(c) setup", r):
        return
    r = SCRATCH.run(cfg, [schema_msg(T, [], {"v": {"type": ["null", "string"]}}),
                  rec(T, {"v": "no id"}), {"type": "STATE", "value": {"c": 1}}])
    if not harness.check_exit_1(problems, "(c) key column not in the SCHEMA", r):
        return
    err = "\n".join(line for line in r.stderr.splitlines()
                    if line.startswith(("target-pg: error", "DETAIL", "HINT")))
    for word in ('stream "%s"' % T, "no key_properties", "(id)", "key_properties",
                 "load_method overwrite", "drop the primary key"):
        if word not in err:
            problem("(c) the error does not name %r: %s" % (word, err))
    harness.check_states(problems, "(c)", r.stdout, [])
    if rows(T) != [(1, "one")]:
        problem("(c) holds %r, expected the table unchanged" % rows(T))


def main():
    case_a()
    case_b()
    case_c()
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
