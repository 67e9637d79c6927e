#!/usr/bin/env python3
"""Names that used to meet (issue #10 items 4, 5, 11; issue #11 item 6).

  (a) two streams of one run that resolve to one table -- `public-orders` and
      `archive-orders` without schema_mapping, `Users` and `users`, also with
      load_method overwrite -- are refused with exit 1 naming both streams,
      the table and the setting that separates them (schema_mapping for the
      source-table form, default_target_schema otherwise), before any row of
      the second is loaded (the first stream's committed batch stays, the
      second's records are nowhere); with schema_mapping separating them both
      load;
  (b) a property "a.b" next to a nested a -> b: each keeps its own column over
      several runs (the comment records the path as a JSON array, so the two
      never share one), and a table the first release made (both columns
      commented "source: a.b", made here by SQL exactly as it wrote them)
      keeps loading, each value into its own column, also with the SCHEMA's
      properties in the other order;
  (c) load_method overwrite of tables t439599 and t622382 in one run (their
      32-bit FNV-1a hashes collide, and so did their shadow tables): both
      replaced, each with its own rows, no shadow left;
  (d) default_target_schema "PUBLIC" is schema public, and a schema_mapping
      target "Raw-Sales" is schema raw_sales (normalised like every
      identifier); no schema "PUBLIC" or "Raw-Sales" is made.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
SCRATCH = harness.Scratch(DB, TMP, "clash")


def problem(msg):
    problems.append(msg)


def schema_msg(stream, props, keys):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": props}}


def rec(stream, record):
    return {"type": "RECORD", "stream": stream, "record": record}


IV = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def q(sql):
    return harness.query_json(sql, DB)


def rows(schema, table, cols="id, v"):
    if not harness.table_exists(schema, table, DB):
        return None
    return [tuple(r.values()) for r in q("SELECT %s FROM %s ORDER BY 1"
                                         % (cols, harness.qualified(schema, table)))]


def error_line(r):
    lines = harness.lines_mentioning(r.stderr, "error")
    return lines[0] if lines else r.stderr.strip()[-300:]


def expect_refusal(label, r, first, second, table, setting):
    if not harness.check_exit_1(problems, label, r):
        return
    err = error_line(r)
    for word in ('"%s"' % first, '"%s"' % second, table, "both load into"):
        if word not in err:
            problem("%s: the error does not name %s: %s" % (label, word, err))
    if setting not in r.stderr:
        problem("%s: the message does not name the setting %s: %s"
                % (label, setting, r.stderr.strip()[-600:]))


# --- (a) two streams, one table ------------------------------------------------------

def case_a():
    S = "clash_a"
    cfg = SCRATCH.config(S, batch_size_rows=2)
    msgs = [schema_msg("public-orders", IV, ["id"]),
            rec("public-orders", {"id": 1, "v": "live"}),
            rec("public-orders", {"id": 2, "v": "live"}),          # committed (batch of 2)
            {"type": "STATE", "value": {"a": 1}},
            schema_msg("archive-orders", IV, ["id"]),
            rec("archive-orders", {"id": 1, "v": "archived"}),
            rec("archive-orders", {"id": 3, "v": "archived"}),
            {"type": "STATE", "value": {"a": 2}}]
    r = SCRATCH.run(cfg, msgs)
    expect_refusal("(a) source-table form", r, "public-orders", "archive-orders",
                   '"%s"."orders"' % S, "schema_mapping")
    got = rows(S, "orders")
    if got != [(1, "live"), (2, "live")]:
        problem("(a) source-table form: %s.orders holds %r, expected only the first stream's "
                "committed rows" % (S, got))
    harness.check_states(problems, "(a) source-table form", r.stdout, [{"a": 1}])

    # schema_mapping separates them
    r = SCRATCH.run(SCRATCH.config(S, schema_mapping={"archive": "clash_a_archive"}), msgs)
    if harness.check_exit_0(problems, "(a) with schema_mapping", r):
        if rows("clash_a_archive", "orders") != [(1, "archived"), (3, "archived")]:
            problem("(a) with schema_mapping: clash_a_archive.orders holds %r"
                    % rows("clash_a_archive", "orders"))

    # case only: Users and users; with overwrite too (then the shadow is shared)
    for method in ("auto", "overwrite"):
        label = "(a) Users/users, load_method %s" % method
        r = SCRATCH.run(SCRATCH.config(S, load_method=method),
                [schema_msg("Users", IV, ["id"]), rec("Users", {"id": 1, "v": "upper"}),
                 schema_msg("users", IV, ["id"]), rec("users", {"id": 1, "v": "lower"})])
        expect_refusal(label, r, "Users", "users", '"%s"."users"' % S, "default_target_schema")
        # the first stream's SCHEMA made the table; nothing was committed
        got = rows(S, "users")
        if got:
            problem("%s: %s.users holds %r, expected no rows" % (label, S, got))


# --- (b) "a.b" next to a -> b -----------------------------------------------------------

DOTS = {"id": {"type": "integer"}, "a.b": {"type": ["null", "string"]},
        "a": {"type": ["null", "object"], "properties": {"b": {"type": ["null", "string"]}}}}
DOTS_REVERSED = {"a": DOTS["a"], "a.b": DOTS["a.b"], "id": DOTS["id"]}


def comment_of(schema, table, column):
    got = q("SELECT col_description(to_regclass('%s')::oid, attnum) AS d FROM pg_attribute "
            "WHERE attrelid = to_regclass('%s') AND attname = '%s'"
            % (harness.qualified(schema, table), harness.qualified(schema, table), column))
    return got[0]["d"] if got else None


def dots_runs(label, S, table):
    cfg = SCRATCH.config(S)
    for n, props in enumerate((DOTS, DOTS_REVERSED, DOTS), 1):
        r = SCRATCH.run(cfg, [schema_msg(table, props, ["id"]),
                      rec(table, {"id": n, "a.b": "flat %d" % n, "a": {"b": "nested %d" % n}}),
                      {"type": "STATE", "value": {"n": n}}])
        if not harness.check_exit_0(problems, "%s run %d" % (label, n), r):
            return
    cols = harness.columns(S, table, DB)
    if sorted(cols) != ["__loaded_at", "a__b", "a_b", "id"]:
        problem("%s: columns %r, expected a_b and a__b" % (label, sorted(cols)))
    got = rows(S, table, "id, a_b, a__b")
    want = [(n, "flat %d" % n, "nested %d" % n) for n in (1, 2, 3)]
    if label.endswith("legacy"):
        want = [(0, "old flat", "old nested")] + want
    if got != want:
        problem("%s: (id, a_b, a__b) holds %r, expected %r" % (label, got, want))


def case_b():
    S = "clash_b"
    dots_runs("(b) new table", S, "dots")
    for col, path in (("a_b", ["a.b"]), ("a__b", ["a", "b"])):
        want = "source: " + json.dumps(path, separators=(",", ":"))
        if comment_of(S, "dots", col) != want:
            problem("(b) new table: comment on %s is %r, expected %r"
                    % (col, comment_of(S, "dots", col), want))
    # the first release's table: both columns commented "source: a.b"
    harness.psql(
        "CREATE TABLE %s.legacy (id bigint NOT NULL, a_b text, a__b text, "
        "__loaded_at timestamptz, PRIMARY KEY (id)); "
        "COMMENT ON COLUMN %s.legacy.id IS 'source: id'; "
        "COMMENT ON COLUMN %s.legacy.a_b IS 'source: a.b'; "
        "COMMENT ON COLUMN %s.legacy.a__b IS 'source: a.b'; "
        "INSERT INTO %s.legacy VALUES (0, 'old flat', 'old nested', now())"
        % ((S,) * 5), DB)
    dots_runs("(b) legacy", S, "legacy")


# --- (c) overwrite shadows of colliding hashes ------------------------------------------

def case_c():
    S = "clash_c"
    a, b = "t439599", "t622382"
    if harness.fnv1a32(a.encode()) != harness.fnv1a32(b.encode()):
        problem("(c) test bug: the FNV-1a hashes of %s and %s do not collide" % (a, b))
    cfg = SCRATCH.config(S, load_method="overwrite")
    for n in (1, 2):
        r = SCRATCH.run(cfg, [schema_msg(a, IV, ["id"]), schema_msg(b, IV, ["id"]),
                      rec(a, {"id": 1, "v": "a%d" % n}), rec(b, {"id": 1, "v": "b%d" % n}),
                      rec(b, {"id": 2, "v": "b%d" % n}), {"type": "STATE", "value": {"c": n}}])
        if not harness.check_exit_0(problems, "(c) overwrite run %d" % n, r):
            return
        harness.check_states(problems, "(c) overwrite run %d" % n, r.stdout, [{"c": n}])
        if rows(S, a) != [(1, "a%d" % n)] or rows(S, b) != [(1, "b%d" % n), (2, "b%d" % n)]:
            problem("(c) run %d: %s holds %r, %s holds %r" % (n, a, rows(S, a), b, rows(S, b)))
    left = q("SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace('%s') AND "
             "relname LIKE '\\_tgt\\_overwrite%%'" % S)
    if left:
        problem("(c) shadow tables left: %r" % left)


# --- (d) schema names normalised -----------------------------------------------------

def case_d():
    cfg = SCRATCH.config("PUBLIC", schema_mapping={"src": "Raw-Sales"})
    r = SCRATCH.run(cfg, [schema_msg("upper_default", IV, ["id"]), rec("upper_default", {"id": 1}),
                  schema_msg("src-mapped_orders", IV, ["id"]),
                  rec("src-mapped_orders", {"id": 2})])
    if not harness.check_exit_0(problems, "(d) PUBLIC / Raw-Sales", r):
        return
    if rows("public", "upper_default") != [(1, None)]:
        problem("(d) default_target_schema PUBLIC: public.upper_default holds %r"
                % rows("public", "upper_default"))
    if rows("raw_sales", "mapped_orders") != [(2, None)]:
        problem("(d) schema_mapping target Raw-Sales: raw_sales.mapped_orders holds %r"
                % rows("raw_sales", "mapped_orders"))
    odd = q("SELECT nspname FROM pg_namespace WHERE nspname IN ('PUBLIC', 'Raw-Sales')")
    if odd:
        problem("(d) schemas made under their unnormalised names: %r" % odd)


def main():
    harness.psql("CREATE SCHEMA clash_b", DB)
    case_a()
    case_b()
    case_c()
    case_d()
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
