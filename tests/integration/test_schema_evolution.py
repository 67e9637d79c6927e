#!/usr/bin/env python3
"""Schema evolution (docs/contract.md "Type lattice", README "Schema changes"):
every SCHEMA is diffed against the live table and columns only ever widen.

  (1) up: every edge a SCHEMA can ask for (bigint -> numeric -> text, date
      -> timestamptz, date / timestamptz / time / boolean / jsonb -> text)
      and incomparable pairs that meet at text (boolean + integer, date +
      time, integer + date, time + date-time, number + boolean, object +
      integer): across runs (run 1 creates type A and loads, run 2's SCHEMA
      asks for B) and inside one run (SCHEMA A, records, SCHEMA B, records;
      keyed, so the staging table follows the new type).  The values loaded
      before keep their text form (123 -> numeric 123, boolean -> 'true',
      date -> timestamptz at midnight UTC, jsonb -> its text), the column is
      the join afterwards (format_type), the info log names both types;
  (2) down (narrowing: number -> integer, string -> integer/number/boolean/
      date/time/date-time/object, date-time -> date): type_change fail (the
      default), across runs and inside a run: exit 1, the error names
      stream, column, live and requested type, the column is unchanged,
      nothing of the pending batch is committed (rows after the last commit,
      also rows already shipped to the server in a COPY chunk, and another
      stream's pending rows) and no STATE after the last commit is written;
      type_change keep: exit 0, the wider column stays and the values load
      into it;
  (3) a table made with psql (smallint, integer, real, double precision,
      varchar(5) holding 'abc', timestamp, json, date, numeric(10,2), a
      column the SCHEMA does not name; no target-pg comments) is upgraded in
      place by a stream that needs more (a 3-billion id, 100000 in the
      smallint, 0.1 / 1E-7 in the floats, a longer string, a date-time with
      an offset, an object, 123.456 and 123456789.5 in the numeric(10,2)):
      same pg_class oid, pre-existing row intact, new row exact; a second
      run with the same SCHEMA changes nothing;
  (4) ten SCHEMA changes in one stream in one run (add, widen, reorder,
      drop a property -> NULLs, nested object added then dropped,
      incomparable change), records between each: the final table exact;
  (5) an identical SCHEMA repeated (in a run and in the next run) and a
      SCHEMA that differs only in property order and annotations: no DDL in
      the log, xmin of the pg_class / pg_attribute / pg_description rows
      and relfilenode unchanged;
  (6) concurrency, 5 rounds: two target-pg started at the same moment on the
      same new table in a new schema (same stream, different records), then
      both adding the same column, then both widening the same column: both
      exit 0, every row there, no "already exists" error; and two SCHEMAs
      with different columns creating one new table: the loser of the race
      adds the columns it lacks.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB = TMP = None


def problem(msg):
    problems.append(msg)


# --- JSON Schema types and their values ------------------------------------------

# JSON Schema of each column type a SCHEMA can ask for, and its format_type
JS = {
    "bigint": {"type": ["null", "integer"]},
    "numeric": {"type": ["null", "number"]},
    "text": {"type": ["null", "string"]},
    "timestamptz": {"type": ["null", "string"], "format": "date-time"},
    "date": {"type": ["null", "string"], "format": "date"},
    "time": {"type": ["null", "string"], "format": "time"},
    "boolean": {"type": ["null", "boolean"]},
    "jsonb": {"type": ["null", "object"]},
}
SQL = {
    "bigint": "bigint", "numeric": "numeric", "text": "text",
    "timestamptz": "timestamp with time zone", "date": "date", "time": "time without time zone",
    "boolean": "boolean", "jsonb": "jsonb",
}
# per type: (raw JSON of the value, its text in a column of that type read in a
# UTC session, its text when loaded straight into a text column)
VALS = {
    "bigint": [("123", "123", "123"),
               ("-9223372036854775808", "-9223372036854775808", "-9223372036854775808")],
    "numeric": [("1.50", "1.50", "1.50"), ("1E-7", "0.0000001", "1E-7"),
                ("123456789012345678901234567890.5", "123456789012345678901234567890.5",
                 "123456789012345678901234567890.5")],
    "text": [('"a\\tb \\u00fc"', "a\tb \u00fc", "a\tb \u00fc")],
    "timestamptz": [('"2024-03-10T12:00:00+05:30"', "2024-03-10 06:30:00+00",
                     "2024-03-10T12:00:00+05:30")],
    "date": [('"2024-02-29"', "2024-02-29", "2024-02-29")],
    "time": [('"13:45:30.5"', "13:45:30.5", "13:45:30.5")],
    "boolean": [("true", "true", "true"), ("false", "false", "false")],
    "jsonb": [('{"b": [1, 2], "a": "x"}', '{"a": "x", "b": [1, 2]}', '{"b": [1, 2], "a": "x"}')],
}

# (A, B, the column type afterwards): chain edges, then incomparable pairs
UP = [("bigint", "numeric", "numeric"), ("bigint", "text", "text"),
      ("numeric", "text", "text"), ("date", "timestamptz", "timestamptz"),
      ("date", "text", "text"), ("timestamptz", "text", "text"), ("time", "text", "text"),
      ("boolean", "text", "text"), ("jsonb", "text", "text"),
      ("boolean", "bigint", "text"), ("bigint", "boolean", "text"), ("date", "time", "text"),
      ("bigint", "date", "text"), ("time", "timestamptz", "text"),
      ("numeric", "boolean", "text"), ("jsonb", "bigint", "text")]
# (live A, requested narrower B)
DOWN = [("numeric", "bigint"), ("text", "bigint"), ("text", "numeric"),
        ("timestamptz", "date"), ("text", "boolean"), ("text", "date"), ("text", "time"),
        ("text", "timestamptz"), ("text", "jsonb")]


def converted(a, f, own):
    """Text of a type-a value (own: its text as type a) after the column is
    altered from a to f."""
    if a == "date" and f == "timestamptz":
        return own + " 00:00:00+00"
    return own


def loaded_into(b, f, val):
    """Text of a type-b value (a VALS entry) loaded into a column of type f."""
    raw, own, as_text = val
    if f == b:
        return own
    if f == "text":
        return as_text
    if b == "date" and f == "timestamptz":
        return own + " 00:00:00+00"
    return own  # bigint into numeric: the same digits


# --- Singer input and database helpers --------------------------------------------

def schema_line(stream, props, keys=()):
    return harness.jline({"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
                          "schema": {"type": "object", "properties": props}})


def record_line(stream, id_, **raw):
    """A RECORD line; raw maps property -> raw JSON text (kept exact)."""
    fields = ['"id": %d' % id_] + ['%s: %s' % (json.dumps(k), v) for k, v in raw.items()]
    return '{"type": "RECORD", "stream": %s, "record": {%s}}' % (json.dumps(stream),
                                                                 ", ".join(fields))


def state_line(value):
    return harness.jline({"type": "STATE", "value": value})


def run_lines(name, lines, cfg):
    path = os.path.join(TMP, name + ".singer")
    harness.write_lines(path, lines)
    return harness.run_input(cfg, path)


def config(name, schema, **extra):
    return harness.write_config(os.path.join(TMP, name + ".json"), DB, schema, **extra)


def q(sql):
    """Rows of sql as dicts, read in a UTC session (timestamptz text is +00)."""
    out = harness.psql("SET TimeZone = 'UTC'; SELECT coalesce(json_agg(q), '[]'::json) "
                       "FROM (%s) q" % sql, DB)
    return json.loads(out)


def col_types(schema, table):
    """[(column, format_type)] in attnum order; [] when there is no such table."""
    return [(r["n"], r["t"]) for r in q(
        "SELECT attname AS n, format_type(atttypid, atttypmod) AS t FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        % harness.sql_literal(harness.qualified(schema, table)))]


def texts(schema, table, col="v"):
    """{id: column as text} of every row; {} when there is no such table."""
    if not harness.table_exists(schema, table, DB):
        return {}
    return {r["id"]: r["v"] for r in q("SELECT id, %s::text AS v FROM %s"
                                       % (harness.quote_ident(col),
                                          harness.qualified(schema, table)))}


def error_lines(stderr):
    return "\n".join(harness.lines_mentioning(stderr, "error"))


DDL_RE = re.compile(r"info: (creating table|adding column|altering|creating schema)")


def ddl_lines(stderr):
    return [line for line in stderr.splitlines() if DDL_RE.search(line)]


def altering_line(stderr, schema, table, col, frm, to):
    want = 'altering "%s"."%s"."%s" from %s to %s' % (schema, table, col, frm, to)
    return any(want in line for line in stderr.splitlines())


# --- (1) upward --------------------------------------------------------------------

def up_streams(prefix):
    return [("%s_%s_%s" % (prefix, a, b), a, b, f) for a, b, f in UP]


def check_up(label, schema, stream, a, b, f, stderr, a_ids, b_ids):
    got_types = dict(col_types(schema, stream))
    if got_types.get("v") != SQL[f]:
        problem("%s %s: column v is %s after %s -> %s, expected %s"
                % (label, stream, got_types.get("v"), a, b, SQL[f]))
    want = {}
    for i, val in zip(a_ids, VALS[a]):
        want[i] = converted(a, f, val[1])
    for i, val in zip(b_ids, VALS[b]):
        want[i] = loaded_into(b, f, val)
    got = texts(schema, stream)
    if got != want:
        problem("%s %s: values %r, expected %r" % (label, stream, got, want))
    if not altering_line(stderr, schema, stream, "v", SQL[a], SQL[f]):
        problem("%s %s: no info line 'altering \"%s\".\"%s\".\"v\" from %s to %s' in: %s"
                % (label, stream, schema, stream, SQL[a], SQL[f],
                   " | ".join(ddl_lines(stderr))[-800:]))


def test_up():
    schema = "evo_up"
    cfg = config("up", schema)
    # across runs: run 1 creates every table with type A, run 2 asks for B
    streams = up_streams("x")
    lines = []
    for stream, a, b, f in streams:
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[a]}))
        for i, val in enumerate(VALS[a], 1):
            lines.append(record_line(stream, i, v=val[0]))
    lines.append(state_line({"run": 1}))
    r1 = run_lines("up-run1", lines, cfg)
    if not harness.check_exit_0(problems, "up run 1", r1):
        return
    lines = []
    for stream, a, b, f in streams:
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[b]}))
        for i, val in enumerate(VALS[b], 11):
            lines.append(record_line(stream, i, v=val[0]))
    lines.append(state_line({"run": 2}))
    r2 = run_lines("up-run2", lines, cfg)
    if harness.check_exit_0(problems, "up run 2", r2):
        harness.check_states(problems, "up run 2", r2.stdout, [{"run": 2}])
        for stream, a, b, f in streams:
            check_up("across runs:", schema, stream, a, b, f, r2.stderr,
                     range(1, len(VALS[a]) + 1), range(11, len(VALS[b]) + 11))

    # inside one run, keyed: SCHEMA A + records for every stream, a STATE,
    # then SCHEMA B + records (the first SCHEMA B commits what is pending)
    streams = up_streams("i")
    lines = []
    for stream, a, b, f in streams:
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[a]}, ["id"]))
        for i, val in enumerate(VALS[a], 1):
            lines.append(record_line(stream, i, v=val[0]))
    lines.append(state_line({"at": "A"}))
    for stream, a, b, f in streams:
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[b]}, ["id"]))
        for i, val in enumerate(VALS[b], 11):
            lines.append(record_line(stream, i, v=val[0]))
    lines.append(state_line({"at": "B"}))
    r = run_lines("up-inrun", lines, cfg)
    if harness.check_exit_0(problems, "up inside one run", r):
        harness.check_states(problems, "up inside one run", r.stdout, [{"at": "A"}, {"at": "B"}])
        for stream, a, b, f in streams:
            check_up("inside one run:", schema, stream, a, b, f, r.stderr,
                     range(1, len(VALS[a]) + 1), range(11, len(VALS[b]) + 11))

    # inside one run, while rows of the batch are already on their way to
    # the server (a COPY chunk of over 64 kB was shipped): the SCHEMA
    # change must commit them, not break the COPY
    big = json.dumps("y" * 70000)
    stream = "i_copy_open"
    lines = [schema_line(stream, {"id": JS["bigint"], "v": JS["bigint"], "p": JS["text"]}),
             record_line(stream, 1, v="1", p=big), record_line(stream, 2, v="2", p=big),
             state_line({"copy": 1}),
             schema_line(stream, {"id": JS["bigint"], "v": JS["numeric"], "p": JS["text"]}),
             record_line(stream, 3, v="3.5", p='"s"'), state_line({"copy": 2})]
    r = run_lines("up-copy-open", lines, cfg)
    label = "up inside one run with a COPY chunk already shipped"
    if harness.check_exit_0(problems, label, r):
        harness.check_states(problems, label, r.stdout, [{"copy": 1}, {"copy": 2}])
        got = texts(schema, stream)
        if got != {1: "1", 2: "2", 3: "3.5"}:
            problem("%s: values %r, expected {1: '1', 2: '2', 3: '3.5'}" % (label, got))


# --- (2) downward ------------------------------------------------------------------

def narrowing_error_ok(label, r, schema, stream, a, b):
    """Checks exit 1 and an error naming stream, column v, live and wanted type."""
    if not harness.check_exit_1(problems, label, r):
        return
    errs = error_lines(r.stderr)
    if not errs:
        problem("%s: no error line (stderr: %s)" % (label, r.stderr.strip()[-600:]))
        return
    for what, word in (("stream", '"%s"' % stream), ("column", '"v"'),
                       ("live type", SQL[a]), ("requested type", b)):
        if word not in errs:
            problem("%s: the error does not name the %s %s: %s" % (label, what, word,
                                                                  errs[-600:]))
    # the live type must be named as live (PostgreSQL's spelling), the
    # requested one as requested (the lattice name, whatever the warehouse)
    m = re.search(r"is (.+?) in the database but the SCHEMA asks for (.+?),", errs)
    if m and (m.group(1) != SQL[a] or m.group(2) != b):
        problem("%s: the error has live type %r and requested %r, expected %r and %r"
                % (label, m.group(1), m.group(2), SQL[a], b))


def test_down():
    schema = "evo_down"
    cfg = config("down", schema)
    cfg_keep = config("down-keep", schema, type_change="keep")
    lines = []
    for prefix in ("f", "k"):
        for a, b in DOWN:
            stream = "%s_%s_%s" % (prefix, a, b)
            lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[a]}))
            for i, val in enumerate(VALS[a], 1):
                lines.append(record_line(stream, i, v=val[0]))
    r = run_lines("down-run1", lines, cfg)
    if not harness.check_exit_0(problems, "down run 1", r):
        return

    # type_change fail across runs: one run per pair (the first error stops a run)
    for a, b in DOWN:
        stream = "f_%s_%s" % (a, b)
        label = "narrowing %s -> %s across runs (fail)" % (a, b)
        before = texts(schema, stream)
        lines = [state_line({"before": 1}),
                 schema_line(stream, {"id": JS["bigint"], "v": JS[b]}),
                 record_line(stream, 50, v=VALS[b][0][0]), state_line({"after": 1})]
        r = run_lines("down-fail-" + stream, lines, cfg)
        narrowing_error_ok(label, r, schema, stream, a, b)
        if dict(col_types(schema, stream)).get("v") != SQL[a]:
            problem("%s: column v changed to %s" % (label, dict(col_types(schema, stream))))
        if texts(schema, stream) != before:
            problem("%s: rows changed: %r, expected %r" % (label, texts(schema, stream), before))
        harness.check_states(problems, label, r.stdout, [{"before": 1}])

    # type_change keep across runs: one run for every pair
    lines = []
    for a, b in DOWN:
        stream = "k_%s_%s" % (a, b)
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[b]}))
        for i, val in enumerate(VALS[b], 11):
            lines.append(record_line(stream, i, v=val[0]))
    r = run_lines("down-keep", lines, cfg_keep)
    if harness.check_exit_0(problems, "narrowing across runs (keep)", r):
        for a, b in DOWN:
            check_kept("narrowing %s -> %s across runs (keep)" % (a, b), schema,
                       "k_%s_%s" % (a, b), a, b, r.stderr)

    # type_change keep inside one run
    lines = []
    for a, b in DOWN:
        stream = "ki_%s_%s" % (a, b)
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[a]}, ["id"]))
        for i, val in enumerate(VALS[a], 1):
            lines.append(record_line(stream, i, v=val[0]))
        lines.append(schema_line(stream, {"id": JS["bigint"], "v": JS[b]}, ["id"]))
        for i, val in enumerate(VALS[b], 11):
            lines.append(record_line(stream, i, v=val[0]))
    r = run_lines("down-keep-inrun", lines, cfg_keep)
    if harness.check_exit_0(problems, "narrowing inside one run (keep)", r):
        for a, b in DOWN:
            check_kept("narrowing %s -> %s inside one run (keep)" % (a, b), schema,
                       "ki_%s_%s" % (a, b), a, b, r.stderr)

    # type_change fail inside one run, batch_size_rows 3: rows 1-3 are
    # committed (STATE s1 after them is written), rows 4-5 and another
    # stream's rows are pending when the narrowing SCHEMA arrives
    cfg3 = config("down-batch3", schema, batch_size_rows=3)
    for a, b, big in (("numeric", "bigint", False), ("text", "bigint", True)):
        stream = "fi_%s_%s%s" % (a, b, "_big" if big else "")
        other = stream + "_other"
        label = "narrowing %s -> %s inside one run (fail%s)" % (
            a, b, ", pending rows already shipped in a COPY chunk" if big else "")
        pay = json.dumps("z" * 70000) if big else '"p"'
        props_a = {"id": JS["bigint"], "v": JS[a], "p": JS["text"]}
        props_b = {"id": JS["bigint"], "v": JS[b], "p": JS["text"]}
        va, vb = VALS[a][0][0], VALS[b][0][0]
        lines = [schema_line(stream, props_a), schema_line(other, props_a)]
        lines += [record_line(stream, i, v=va, p='"p"') for i in (1, 2, 3)]
        lines += [state_line({"s": 1}), record_line(other, 1, v=va, p=pay),
                  record_line(stream, 4, v=va, p=pay), record_line(stream, 5, v=va, p=pay),
                  state_line({"s": 2}), schema_line(stream, props_b),
                  record_line(stream, 6, v=vb, p='"p"'), state_line({"s": 3})]
        r = run_lines("down-fail-inrun-" + stream, lines, cfg3)
        narrowing_error_ok(label, r, schema, stream, a, b)
        ids = sorted(texts(schema, stream))
        if ids != [1, 2, 3]:
            problem("%s: rows %s in the table, expected [1, 2, 3] (the batch pending at the "
                    "narrowing SCHEMA must not be committed)" % (label, ids))
        others = sorted(texts(schema, other))
        if others:
            problem("%s: another stream's pending rows %s were committed" % (label, others))
        harness.check_states(problems, label, r.stdout, [{"s": 1}])
        if dict(col_types(schema, stream)).get("v") != SQL[a]:
            problem("%s: column v changed: %s" % (label, col_types(schema, stream)))


def check_kept(label, schema, stream, a, b, stderr):
    got_type = dict(col_types(schema, stream)).get("v")
    if got_type != SQL[a]:
        problem("%s: column v is %s, expected the live %s kept" % (label, got_type, SQL[a]))
    want = {i: val[1] for i, val in enumerate(VALS[a], 1)}
    for i, val in enumerate(VALS[b], 11):
        want[i] = loaded_into(b, a, val)
    got = texts(schema, stream)
    if got != want:
        problem("%s: values %r, expected %r" % (label, got, want))
    want_log = 'keeping column "v" as %s (the SCHEMA asks for %s' % (SQL[a], b)
    if not any(stream in line and want_log in line for line in stderr.splitlines()):
        problem("%s: no info line naming stream %s and %r" % (label, stream, want_log))


# --- (3) pre-made tables -------------------------------------------------------------

PRE_COLS = [("id", "integer"), ("s", "smallint"), ("i", "integer"), ("r", "real"),
            ("d", "double precision"), ("vc", "character varying(5)"),
            ("ts", "timestamp without time zone"), ("j", "json"), ("dt", "date"),
            ("n", "numeric(10,2)"), ("n2", "numeric(10,2)"), ("extra", "text")]
PRE_ROW = ("1, 7, 2000000000, 1.5, 0.1, 'abc', '2024-01-01 10:00:00', '{\"k\": [1, 2]}', "
           "'2024-02-29', 12.34, -0.5, 'kept'")
PRE_PROPS = {"id": {"type": "integer"}, "s": JS["bigint"], "i": JS["bigint"],
             "r": JS["numeric"], "d": JS["numeric"], "vc": JS["text"], "ts": JS["timestamptz"],
             "j": JS["jsonb"], "dt": JS["timestamptz"], "n": JS["numeric"], "n2": JS["numeric"]}
PRE_AFTER = [("id", "bigint"), ("s", "bigint"), ("i", "bigint"), ("r", "numeric"),
             ("d", "numeric"), ("vc", "text"), ("ts", "timestamp with time zone"),
             ("j", "jsonb"), ("dt", "timestamp with time zone"), ("n", "numeric"),
             ("n2", "numeric"), ("extra", "text"), ("__loaded_at", "timestamp with time zone")]
PRE_WANT = {
    # the row made with psql, after the upgrades (timestamp read as UTC)
    1: {"s": "7", "i": "2000000000", "r": "1.5", "d": "0.1", "vc": "abc",
        "ts": "2024-01-01 10:00:00+00", "j": '{"k": [1, 2]}', "dt": "2024-02-29 00:00:00+00",
        "n": "12.34", "n2": "-0.50", "extra": "kept"},
    3000000000: {"s": "100000", "i": "3000000000", "r": "0.1", "d": "0.0000001",
                 "vc": "abcdefgh", "ts": "2024-01-01 08:00:00+00", "j": '{"b": 1}',
                 "dt": "2024-03-01 12:00:00+00", "n": "123.456", "n2": "123456789.5",
                 "extra": None},
}


def test_premade():
    schema = "evo_pre"
    cfg = config("pre", schema)
    harness.psql("CREATE SCHEMA evo_pre; CREATE TABLE evo_pre.pre (%s, PRIMARY KEY (id)); "
                 "INSERT INTO evo_pre.pre VALUES (%s)"
                 % (", ".join("%s %s" % c for c in PRE_COLS), PRE_ROW), DB)
    oid = harness.scalar("SELECT 'evo_pre.pre'::regclass::oid", DB)
    rec = ('{"type": "RECORD", "stream": "pre", "record": {"id": 3000000000, "s": 100000, '
           '"i": 3000000000, "r": 0.1, "d": 1E-7, "vc": "abcdefgh", '
           '"ts": "2024-01-01T10:00:00+02:00", "j": {"b": 1}, "dt": "2024-03-01T12:00:00Z", '
           '"n": 123.456, "n2": 123456789.5}}')
    lines = [schema_line("pre", PRE_PROPS, ["id"]), rec]
    r = run_lines("pre", lines, cfg)
    if not harness.check_exit_0(problems, "pre-made table", r):
        return
    if harness.scalar("SELECT 'evo_pre.pre'::regclass::oid", DB) != oid:
        problem("pre-made table: re-created (pg_class oid changed)")
    got_types = col_types(schema, "pre")
    if got_types != PRE_AFTER:
        problem("pre-made table: columns %s, expected %s" % (got_types, PRE_AFTER))
    for c, t in PRE_COLS:
        want_t = dict(PRE_AFTER)[c]
        if c != "extra" and t != want_t and not altering_line(r.stderr, schema, "pre", c, t,
                                                              want_t):
            problem("pre-made table: no info line altering %s from %s to %s" % (c, t, want_t))
    if "does not manage" in r.stderr:
        problem("pre-made table: a column was left unmanaged: %s"
                % harness.lines_mentioning(r.stderr, "does not manage"))
    cols = [c for c, _ in PRE_COLS if c != "id"]
    rows = {row["id"]: row for row in q("SELECT id, %s FROM evo_pre.pre" % ", ".join(
        "%s::text AS %s" % (c, c) for c in cols))}
    for id_, want in PRE_WANT.items():
        got = rows.get(id_)
        if got is None:
            problem("pre-made table: row id %d missing (rows %s)" % (id_, sorted(rows)))
            continue
        for c in cols:
            if got[c] != want[c]:
                problem("pre-made table: row %d column %s = %r, expected %r"
                        % (id_, c, got[c], want[c]))
    if len(rows) != 2:
        problem("pre-made table: %d rows, expected 2" % len(rows))

    # the same SCHEMA again: nothing to change
    r = run_lines("pre-again", lines[:1] + [rec.replace('"id": 3000000000', '"id": 5')], cfg)
    if harness.check_exit_0(problems, "pre-made table, second run", r) and ddl_lines(r.stderr):
        problem("pre-made table, second run with the same SCHEMA: DDL %s" % ddl_lines(r.stderr))


# --- (4) ten SCHEMA changes in one run -----------------------------------------------

def test_ten_changes():
    schema = "evo_ten"
    cfg = config("ten", schema)
    s, i, n = JS["text"], JS["bigint"], JS["numeric"]
    st = "ten"
    obj = {"type": ["null", "object"], "properties": {"x": i, "y": s}}
    obj2 = {"type": ["null", "object"], "properties": {"x": s, "y": s}}
    steps = [
        ({"id": i, "a": s}, ['"a": "one"']),                               # create
        ({"id": i, "a": s, "b": i}, ['"a": "two", "b": 2']),                # 1 add b
        ({"id": i, "a": s, "b": n}, ['"a": "three", "b": 3.25']),           # 2 b -> numeric
        ({"b": n, "a": s, "id": i}, ['"b": 4, "a": "four"']),               # 3 reorder
        ({"id": i, "b": n}, ['"a": "ignored", "b": 5.5']),                  # 4 drop a
        ({"id": i, "b": n, "a": s, "c": JS["date"]},
         ['"a": "six", "b": 6, "c": "2024-06-06"']),                        # 5 a back, add c
        ({"id": i, "b": n, "a": s, "c": JS["timestamptz"]},
         ['"c": "2024-07-07T07:07:07+02:00"']),                             # 6 c -> timestamptz
        ({"id": i, "b": n, "a": s, "c": JS["timestamptz"], "d": obj},
         ['"b": 8, "d": {"x": 8, "y": "eight"}']),                          # 7 add d__x, d__y
        ({"id": i, "b": s, "a": s, "c": JS["timestamptz"], "d": obj2},
         ['"b": "nine", "d": {"x": "nine", "y": null}']),                   # 8 d__x, b -> text
        ({"id": i, "b": s, "a": s, "c": JS["timestamptz"], "e": JS["boolean"]},
         ['"e": true, "d": {"x": "ignored"}']),                             # 9 drop d, add e
        ({"id": i, "b": s, "a": s, "c": JS["timestamptz"], "e": i,
          "f": {"type": ["null", "array"]}},
         ['"e": 11, "f": [1, "x"]']),                                       # 10 e -> text, add f
    ]
    lines, id_ = [], 0
    for props, recs in steps:
        lines.append(schema_line(st, props, ["id"]))
        for body in recs:
            id_ += 1
            lines.append('{"type": "RECORD", "stream": "ten", "record": {"id": %d, %s}}'
                         % (id_, body))
        lines.append(state_line({"id": id_}))
    r = run_lines("ten", lines, cfg)
    if not harness.check_exit_0(problems, "ten SCHEMA changes", r):
        return
    # a SCHEMA that changes nothing (the reordering) need not commit, so not
    # every STATE appears; those that do are in order and end with the last
    states = harness.parse_states(problems, "ten SCHEMA changes", r.stdout)
    ids = [st.get("id") for st in states or []]
    if states is not None and (ids[-1:] != [id_] or ids != sorted(set(ids))):
        problem("ten SCHEMA changes: stdout STATEs %r, expected increasing ids ending with %d"
                % (states, id_))
    want_cols = [("id", "bigint"), ("a", "text"), ("__loaded_at", "timestamp with time zone"),
                 ("b", "text"), ("c", "timestamp with time zone"), ("d__x", "text"),
                 ("d__y", "text"), ("e", "text"), ("f", "jsonb")]
    got_cols = col_types(schema, st)
    if got_cols != want_cols:
        problem("ten SCHEMA changes: columns %s, expected %s" % (got_cols, want_cols))
    N = None
    want = {
        1: ["one", N, N, N, N, N, N], 2: ["two", "2", N, N, N, N, N],
        3: ["three", "3.25", N, N, N, N, N], 4: ["four", "4", N, N, N, N, N],
        5: [N, "5.5", N, N, N, N, N], 6: ["six", "6", "2024-06-06 00:00:00+00", N, N, N, N],
        7: [N, N, "2024-07-07 05:07:07+00", N, N, N, N], 8: [N, "8", N, "8", "eight", N, N],
        9: [N, "nine", N, "nine", N, N, N], 10: [N, N, N, N, N, "true", N],
        11: [N, N, N, N, N, "11", '[1, "x"]'],
    }
    names = ["a", "b", "c", "d__x", "d__y", "e", "f"]
    if got_cols == want_cols:
        got = {row["id"]: [row[c] for c in names] for row in q(
            "SELECT id, %s FROM evo_ten.ten" % ", ".join("%s::text AS %s" % (c, c)
                                                         for c in names))}
        if got != want:
            for k in sorted(set(got) | set(want)):
                if got.get(k) != want.get(k):
                    problem("ten SCHEMA changes: row %d = %s, expected %s (columns %s)"
                            % (k, got.get(k), want.get(k), names))
        if q("SELECT count(*) AS n FROM evo_ten.ten WHERE __loaded_at IS NULL")[0]["n"] != 0:
            problem("ten SCHEMA changes: __loaded_at NULL in some rows")
    want_ddl = ['creating table "evo_ten"."ten"', 'adding column "b" bigint',
                'altering "evo_ten"."ten"."b" from bigint to numeric',
                'adding column "c" date',
                'altering "evo_ten"."ten"."c" from date to timestamp with time zone',
                'adding column "d__x" bigint', 'adding column "d__y" text',
                'altering "evo_ten"."ten"."b" from numeric to text',
                'altering "evo_ten"."ten"."d__x" from bigint to text',
                'adding column "e" boolean',
                'altering "evo_ten"."ten"."e" from boolean to text',
                'adding column "f" jsonb']
    got_ddl = [line for line in ddl_lines(r.stderr) if "creating schema" not in line]
    missing = [w for w in want_ddl if not any(w in line for line in got_ddl)]
    if missing or len(got_ddl) != len(want_ddl):
        problem("ten SCHEMA changes: DDL log %s, expected one line each for %s"
                % (got_ddl, want_ddl))


# --- (5) an identical SCHEMA repeated ----------------------------------------------

def catalog_snapshot(schema, table):
    rel = harness.sql_literal(harness.qualified(schema, table))
    return q("SELECT (SELECT xmin::text || '/' || relfilenode::text FROM pg_class "
             "WHERE oid = %s::regclass) AS class, "
             "(SELECT string_agg(attname || ':' || xmin::text, ',' ORDER BY attnum) "
             "FROM pg_attribute WHERE attrelid = %s::regclass) AS attrs, "
             "(SELECT string_agg(objsubid::text || ':' || xmin::text, ',' ORDER BY objsubid) "
             "FROM pg_description WHERE objoid = %s::regclass) AS comments"
             % (rel, rel, rel))[0]


def test_same_schema():
    schema = "evo_same"
    cfg = config("same", schema)
    props = {"id": JS["bigint"], "n": JS["numeric"], "s": JS["text"],
             "o": {"type": ["null", "object"], "properties": {"x": JS["date"]}}}
    reordered = {"s": dict(JS["text"], description="a string"), "o": props["o"],
                 "n": props["n"], "id": props["id"]}
    sch = schema_line("same", props, ["id"])
    lines = [sch, record_line("same", 1, n="1.5"), sch, record_line("same", 2, n="2"),
             schema_line("same", reordered, ["id"]), record_line("same", 3, s='"x"'), sch,
             record_line("same", 4, o='{"x": "2024-01-01"}')]
    r = run_lines("same-1", lines, cfg)
    if not harness.check_exit_0(problems, "same SCHEMA, run 1", r):
        return
    ddl = [line for line in ddl_lines(r.stderr) if "creating schema" not in line]
    if len(ddl) != 1 or "creating table" not in ddl[0]:
        problem("same SCHEMA repeated in one run: DDL %s, expected only the creation" % ddl)
    before = catalog_snapshot(schema, "same")
    r = run_lines("same-2", [sch, record_line("same", 5, n="5"),
                             schema_line("same", reordered, ["id"]),
                             record_line("same", 6, n="6"), sch], cfg)
    if not harness.check_exit_0(problems, "same SCHEMA, run 2", r):
        return
    if ddl_lines(r.stderr):
        problem("same SCHEMA in the next run: DDL %s" % ddl_lines(r.stderr))
    after = catalog_snapshot(schema, "same")
    if after != before:
        problem("same SCHEMA in the next run changed the catalog: %s -> %s" % (before, after))
    if sorted(texts(schema, "same", "id")) != [1, 2, 3, 4, 5, 6]:
        problem("same SCHEMA: rows %s, expected ids 1-6" % sorted(texts(schema, "same", "id")))


# --- (6) concurrency ----------------------------------------------------------------

def run_pair(label, cfg, inputs):
    """Starts one target-pg per input text at the same moment (both already
    running before either gets a byte) and waits for both."""
    procs = [subprocess.Popen(harness.target_cmd() + ["--config", cfg], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True) for _ in inputs]
    for p, text in zip(procs, inputs):
        p.stdin.write(text.encode("utf-8"))
    for p in procs:
        p.stdin.close()
    ok = True
    for n, p in enumerate(procs, 1):
        try:
            out = p.stdout.read()
            err = p.stderr.read().decode("utf-8", "replace")
            rc = p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            problem("%s: process %d timed out" % (label, n))
            ok = False
            continue
        bad = [line for line in err.splitlines() if "error" in line.lower()
               or "already exists" in line.lower()]
        if rc != 0 or bad:
            problem("%s: process %d exit %d: %s" % (label, n, rc, " | ".join(bad)[-800:]
                                                     or err.strip()[-800:]))
            ok = False
        states = harness.parse_states(problems, "%s: process %d" % (label, n),
                                      out.decode("utf-8", "replace"))
        if states is not None and states != [{"done": n}]:
            problem("%s: process %d wrote STATEs %r, expected [{'done': %d}]"
                    % (label, n, states, n))
    return ok


def test_concurrency():
    for rnd in range(1, 6):
        schema = "evo_conc_%d" % rnd
        cfg = config("conc-%d" % rnd, schema)
        keys = ["id"] if rnd % 2 else []
        label = "concurrency round %d (%s)" % (rnd, "keyed" if keys else "unkeyed")
        props = {"id": JS["bigint"], "v": JS["bigint"]}

        def text(props_, ids, n):
            return "\n".join([schema_line("shared", props_, keys)]
                             + [record_line("shared", k, v=str(k), w='"w%d"' % k) for k in ids]
                             + [state_line({"done": n})]) + "\n"

        # 1. a new table in a new schema
        if not run_pair(label + ", new table", cfg,
                        [text(props, range(1, 51), 1), text(props, range(51, 101), 2)]):
            continue
        # 2. both add the same column
        props2 = dict(props, w=JS["text"])
        ok = run_pair(label + ", same column added", cfg,
                      [text(props2, range(101, 151), 1), text(props2, range(151, 201), 2)])
        # 3. both widen the same column
        props3 = dict(props2, v=JS["numeric"])
        ok = run_pair(label + ", same column widened", cfg,
                      [text(props3, range(201, 251), 1), text(props3, range(251, 301), 2)]) and ok
        if not ok:
            continue
        got = q("SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi, "
                "count(*) FILTER (WHERE v::text <> id::text) AS bad_v, "
                "count(*) FILTER (WHERE id > 100 AND w IS DISTINCT FROM 'w' || id) AS bad_w "
                "FROM %s.shared" % schema)[0]
        if got != {"n": 300, "d": 300, "lo": 1, "hi": 300, "bad_v": 0, "bad_w": 0}:
            problem("%s: table holds %s, expected 300 distinct rows 1-300 with v = id and w "
                    "filled from 101" % (label, got))
        types = col_types(schema, "shared")
        want = [("id", "bigint"), ("v", "numeric"), ("__loaded_at", "timestamp with time zone"),
                ("w", "text")]
        if types != want:
            problem("%s: columns %s, expected %s" % (label, types, want))

        # 4. a new table from two SCHEMAs with different columns (of the
        # same types): the loser of the creation race adds what it lacks
        one = "\n".join([schema_line("diff", props, keys)]
                        + [record_line("diff", k, v=str(k)) for k in range(1, 51)]
                        + [state_line({"done": 1})]) + "\n"
        two = "\n".join([schema_line("diff", props2, keys)]
                        + [record_line("diff", k, v=str(k), w='"w%d"' % k)
                           for k in range(51, 101)]
                        + [state_line({"done": 2})]) + "\n"
        if run_pair(label + ", new table from two different SCHEMAs", cfg, [one, two]):
            got = q("SELECT count(DISTINCT id) AS d, "
                    "count(*) FILTER (WHERE id > 50 AND w IS DISTINCT FROM 'w' || id) AS bad_w "
                    "FROM %s.diff" % schema)[0]
            if got != {"d": 100, "bad_w": 0}:
                problem("%s, two SCHEMAs: table holds %s, expected 100 rows, w filled from 51"
                        % (label, got))


def main():
    global DB, TMP
    DB, TMP = harness.integration_env()
    # target-pg's session must not depend on the server's time zone
    harness.psql("ALTER DATABASE %s SET timezone = 'Asia/Kathmandu'" % harness.quote_ident(DB),
                 DB)
    for test in (test_up, test_down, test_premade, test_ten_changes, test_same_schema,
                 test_concurrency):
        try:
            test()
        except harness.DbError as e:  # a check's own query failed: report, go on
            problem("%s: %s" % (test.__name__, e))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
