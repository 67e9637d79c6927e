#!/usr/bin/env python3
"""Columns the target fills are the target's (issue #10 item 6).

  (a) a record property _sdc_table_version (an integer, as a table re-read
      from a Singer target's output carries it): the version comes from the
      RECORD envelope only; the property lands in its own suffixed column
      with a warning; with hard_delete, ACTIVATE_VERSION of the envelope's
      version keeps every row of that version and deletes only older ones;
  (b) a text _sdc_table_version property with versions loads (no SQL error):
      the property in its suffixed text column, the version bigint;
  (c) timestamp_column "_sdc_deleted_at" with hard_delete, and
      timestamp_column "_SDC_Sequence": configuration errors (exit 2) naming
      the setting, the table's rows untouched, no column turned timestamptz;
  (d) a declared property named like timestamp_column (__loaded_at): its own
      suffixed column; __loaded_at stays the receive time (timestamptz);
  (e) a property _sdc_sequence without add_metadata_columns is plain data in
      _sdc_sequence (the metadata columns are the target's when in use);
  (f) _sdc_deleted_at keeps its CDC meaning: declared or not, a keyed record
      carrying it deletes its row with hard_delete.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
SCRATCH = harness.Scratch(DB, TMP, "own")
VERSION = harness.suffixed("_sdc_table_version")


def problem(msg):
    problems.append(msg)


def schema_msg(stream, props, keys=("id",)):
    return {"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
            "schema": {"type": "object", "properties": props}}


def rec(stream, record, version=None):
    m = {"type": "RECORD", "stream": stream, "record": record}
    if version is not None:
        m["version"] = version
    return m


def activate(stream, version):
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def rows(schema, table, cols):
    """[tuple of cols] ordered by the first; None without the table; the
    error's text when the query fails (a column missing)."""
    if not harness.table_exists(schema, table, DB):
        return None
    try:
        return [tuple(r.values()) for r in harness.query_json(
            "SELECT %s FROM %s ORDER BY 1" % (cols, harness.qualified(schema, table)), DB)]
    except harness.DbError as e:
        return str(e).strip()[-200:]


# --- (a) an integer _sdc_table_version property ------------------------------------

def case_a():
    S, T = "own_a", "reread"
    cfg = SCRATCH.config(S, hard_delete=True)
    props = {"id": {"type": "integer"}, "_sdc_table_version": {"type": ["null", "integer"]}}
    r = SCRATCH.run(cfg, [schema_msg(T, props), activate(T, 5)] +
            [rec(T, {"id": i, "_sdc_table_version": 1}, version=5) for i in (1, 2, 3)] +
            [activate(T, 5)])
    if not harness.check_exit_0(problems, "(a) version 5", r):
        return
    got = rows(S, T, "id, _sdc_table_version, %s" % VERSION)
    if got != [(1, 5, 1), (2, 5, 1), (3, 5, 1)]:
        problem("(a) version 5: (id, _sdc_table_version, %s) holds %r, expected every row "
                "with version 5 and the property's 1" % (VERSION, got))
    if 'property "_sdc_table_version" is loaded into column "%s"' % VERSION not in r.stderr:
        problem("(a) no warning about the property's column: %s" % r.stderr.strip()[-800:])
    r = SCRATCH.run(cfg, [schema_msg(T, props)] +
            [rec(T, {"id": i, "_sdc_table_version": 9}, version=6) for i in (1, 2)] +
            [activate(T, 6)])
    if harness.check_exit_0(problems, "(a) version 6", r):
        got = rows(S, T, "id, _sdc_table_version, %s" % VERSION)
        if got != [(1, 6, 9), (2, 6, 9)]:
            problem("(a) version 6: holds %r, expected ids 1 and 2 of version 6 (3 deleted)"
                    % got)


# --- (b) a text _sdc_table_version property ----------------------------------------

def case_b():
    S, T = "own_b", "textver"
    props = {"id": {"type": "integer"}, "_sdc_table_version": {"type": ["null", "string"]}}
    r = SCRATCH.run(SCRATCH.config(S), [schema_msg(T, props), rec(T, {"id": 1, "_sdc_table_version": "v1"}),
                        rec(T, {"id": 2, "_sdc_table_version": "v2"}, version=7),
                        activate(T, 7)])
    if not harness.check_exit_0(problems, "(b) text _sdc_table_version", r):
        return
    cols = harness.columns(S, T, DB)
    if cols.get("_sdc_table_version") != "bigint" or cols.get(VERSION) != "text":
        problem("(b) columns %r: expected _sdc_table_version bigint and %s text" % (cols, VERSION))
    got = rows(S, T, "id, %s, _sdc_table_version, _sdc_deleted_at IS NOT NULL" % VERSION)
    if got != [(1, "v1", None, True), (2, "v2", 7, False)]:
        problem("(b) holds %r, expected row 1 (no version) marked deleted, row 2 version 7"
                % got)


# --- (c) timestamp_column naming a metadata column -----------------------------------

def case_c():
    S, T = "own_c", "kept"
    props = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}
    r = SCRATCH.run(SCRATCH.config(S), [schema_msg(T, props), rec(T, {"id": 1, "v": "a"}),
                        rec(T, {"id": 2, "v": "b"})])
    if not harness.check_exit_0(problems, "(c) setup", r):
        return
    for label, extra in (("_sdc_deleted_at + hard_delete",
                          dict(timestamp_column="_sdc_deleted_at", hard_delete=True)),
                         ("_SDC_Sequence + add_metadata_columns",
                          dict(timestamp_column="_SDC_Sequence", add_metadata_columns=True))):
        r = SCRATCH.run(SCRATCH.config(S, **extra), [schema_msg(T, props), rec(T, {"id": 1, "v": "c"}),
                                     rec(T, {"id": 3, "v": "d"})])
        if r.timed_out or r.returncode != 2:
            problem("(c) timestamp_column %s: exit %s, expected 2 (stderr: %s)"
                    % (label, r.returncode, r.stderr.strip()[-600:]))
        elif "timestamp_column" not in r.stderr:
            problem("(c) timestamp_column %s: the error does not name the setting: %s"
                    % (label, r.stderr.strip()[-600:]))
        got = rows(S, T, "id, v")
        if got != [(1, "a"), (2, "b")]:
            problem("(c) timestamp_column %s: the table holds %r, expected it untouched"
                    % (label, got))
    cols = harness.columns(S, T, DB)
    if set(cols) != {"id", "v", "__loaded_at"}:
        problem("(c) the table's columns changed: %r" % cols)


# --- (d) a property named like timestamp_column --------------------------------------

def case_d():
    S, T = "own_d", "loaded"
    props = {"id": {"type": "integer"}, "__loaded_at": {"type": ["null", "string"]}}
    r = SCRATCH.run(SCRATCH.config(S), [schema_msg(T, props), rec(T, {"id": 1, "__loaded_at": "source time"}),
                        rec(T, {"id": 2})])
    if not harness.check_exit_0(problems, "(d) declared __loaded_at", r):
        return
    col = harness.suffixed("__loaded_at")
    cols = harness.columns(S, T, DB)
    if cols.get("__loaded_at") != "timestamp with time zone" or cols.get(col) != "text":
        problem("(d) columns %r: expected __loaded_at timestamptz and %s text" % (cols, col))
        return
    got = rows(S, T, "id, %s, __loaded_at > now() - interval '1 hour'" % col)
    if got != [(1, "source time", True), (2, None, True)]:
        problem("(d) (id, %s, __loaded_at is recent) holds %r" % (col, got))


# --- (e) metadata names not in use ----------------------------------------------------

def case_e():
    S, T = "own_e", "plain"
    props = {"id": {"type": "integer"}, "_sdc_sequence": {"type": ["null", "integer"]}}
    r = SCRATCH.run(SCRATCH.config(S), [schema_msg(T, props), rec(T, {"id": 1, "_sdc_sequence": 42})])
    if harness.check_exit_0(problems, "(e) _sdc_sequence as data", r):
        got = rows(S, T, "id, _sdc_sequence")
        if got != [(1, 42)] or set(harness.columns(S, T, DB)) != {"id", "_sdc_sequence",
                                                                    "__loaded_at"}:
            problem("(e) holds %r with columns %r" % (got, harness.columns(S, T, DB)))


# --- (f) _sdc_deleted_at keeps its CDC meaning --------------------------------------

def case_f():
    S = "own_f"
    cfg = SCRATCH.config(S, hard_delete=True)
    at = "2024-06-01T12:00:00Z"
    declared = {"id": {"type": "integer"},
                "_sdc_deleted_at": {"type": ["null", "string"], "format": "date-time"}}
    plain = {"id": {"type": "integer"}}
    for T, props in (("cdc_declared", declared), ("cdc_undeclared", plain)):
        r = SCRATCH.run(cfg, [schema_msg(T, props), rec(T, {"id": 1}), rec(T, {"id": 2}),
                      {"type": "STATE", "value": {T: 1}},
                      rec(T, {"id": 1, "_sdc_deleted_at": at})])
        if harness.check_exit_0(problems, "(f) %s" % T, r):
            got = rows(S, T, "id")
            if got != [(2,)]:
                problem("(f) %s: holds %r, expected the marked row 1 deleted" % (T, got))


def main():
    case_a()
    case_b()
    case_c()
    case_d()
    case_e()
    case_f()
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
