#!/usr/bin/env python3
"""JSON Schema types -> PostgreSQL columns and exact values (docs/contract.md "Types",
"Loading").

Loads one keyed and one unkeyed stream with the same schema and rows, then:
  * column types from information_schema: integer -> bigint, number ->
    numeric, date-time -> timestamp with time zone, date -> date, time ->
    time without time zone, boolean -> boolean, array / object without
    properties / no type -> jsonb, ["integer","string"] -> text, integer with
    a maximum past 64 bits -> numeric, anyOf [date-time, null] -> timestamptz;
  * numbers exactly as written (123456789012345678901234567890.123456789,
    1e-7, -0, 1E+5, 1.50 keeping its scale), compared server-side against the
    input text cast to numeric;
  * bigint extremes -9223372036854775808 and 9223372036854775807;
  * date-times with +05:30, Z, -03:00, no zone (= UTC, with the database's
    time zone set to Asia/Kathmandu), a space separator and fractions
    compared as instants (extract(epoch ...));
  * date, time, boolean, jsonb values (jsonb equality), the union column
    keeping `5` and `x`;
  * __loaded_at timestamptz filled (and recent) for every row, both streams.
Failures, each in its own run:
  * an integer past 64 bits -> exit 1 naming the property; the failing
    batch's rows are not committed, the committed batch is, no STATE after the
    failure point;
  * 2019-02-30 in a date column -> exit 1 naming line, stream and property;
  * "abc" in an integer column -> exit 1 naming the line number.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import re
import sys
from datetime import datetime, timezone
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "types_t"
problems = []


def problem(msg):
    problems.append(msg)


PROPS = {
    "id": {"type": "integer"},
    "n": {"type": ["null", "number"]},
    "i": {"type": ["null", "integer"]},
    "dt": {"type": ["null", "string"], "format": "date-time"},
    "d": {"type": ["null", "string"], "format": "date"},
    "t": {"type": ["null", "string"], "format": "time"},
    "b": {"type": ["null", "boolean"]},
    "arr": {"type": ["null", "array"], "items": {}},
    "obj": {"type": ["null", "object"]},
    "u": {"type": ["integer", "string", "null"]},
    "notype": {},
    "big": {"type": ["null", "integer"], "maximum": 100000000000000000000000000000},
    "anydt": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    "s": {"type": ["null", "string"]},
}
WANT_TYPES = {
    "id": "bigint", "n": "numeric", "i": "bigint", "dt": "timestamp with time zone",
    "d": "date", "t": "time without time zone", "b": "boolean", "arr": "jsonb", "obj": "jsonb",
    "u": "text", "notype": "jsonb", "big": "numeric", "anydt": "timestamp with time zone",
    "s": "text", "__loaded_at": "timestamp with time zone",
}

# raw JSON texts per column; rows are built position by position (null past
# the end of a list)
RAW = {
    "n": ["123456789012345678901234567890.123456789", "1e-7", "-0", "1E+5", "1.50",
          "-0.000000000000000000001", "3.141592653589793238462643383279502884197", "1e400",
          "-1.5E-300", "0.1", "9007199254740993"],
    "i": ["-9223372036854775808", "9223372036854775807", "0", "-1", "42"],
    "dt": ['"2024-03-10T12:00:00+05:30"', '"2024-03-10T12:00:00Z"',
           '"2024-03-10T12:00:00-03:00"', '"2024-03-10T12:00:00"',
           '"2024-03-10 12:00:00+05:30"', '"2024-03-10T12:00:00.123456Z"',
           '"2024-03-10 12:00:00"'],
    "d": ['"2024-02-29"', '"1999-12-31"', '"2000-01-01"'],
    "t": ['"13:45:30"', '"00:00:00"', '"23:59:59.123456"'],
    "b": ["true", "false"],
    "arr": ['[1, "two", {"three": 3.25}, null, [true]]', "[]"],
    "obj": ['{"k": "v", "n": 1.5, "nested": {"x": [1, 2]}}', "{}"],
    "u": ["5", '"x"', "-17"],
    "notype": ['{"a": 1}', '"s"', "7"],
    "big": ["99999999999999999999999999", "-5"],
    "anydt": ['"2001-02-03T04:05:06+01:00"'],
    "s": ['"plain"'],
}
N_ROWS = max(len(v) for v in RAW.values())


def raw(col, row):
    vals = RAW[col]
    return vals[row] if row < len(vals) else "null"


def record_text(stream, row):
    fields = ['"id": %d' % (row + 1)] + ['"%s": %s' % (c, raw(c, row)) for c in RAW]
    return '{"type": "RECORD", "stream": %s, "record": {%s}}' % (json.dumps(stream),
                                                                 ", ".join(fields))


def schema_text(stream, keyed, props=None):
    return json.dumps({"type": "SCHEMA", "stream": stream,
                       "schema": {"type": "object", "properties": props or PROPS},
                       "key_properties": ["id"] if keyed else []})


def epoch_of(text):
    """Seconds since 1970 of an ISO 8601 date-time; no zone means UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1000000


def check_stream(db, stream):
    table = harness.table_name(stream)
    q = harness.qualified(SCHEMA, table)
    if not harness.table_exists(SCHEMA, table, db):
        problem("%s: no table %s" % (stream, q))
        return
    cols = harness.columns(SCHEMA, table, db)
    for col, typ in WANT_TYPES.items():
        if cols.get(col) != typ:
            problem("%s: column %s is %s, expected %s" % (stream, col, cols.get(col), typ))

    n = harness.count_rows(SCHEMA, table, db)
    if n != N_ROWS:
        problem("%s: %d rows, expected %d" % (stream, n, N_ROWS))

    # numbers: the column's text equals the input text cast to numeric
    # server-side (so scale and every digit are kept), bigint text exact
    for col in ("n", "big"):
        if col not in cols:
            continue
        for row in range(N_ROWS):
            rv = raw(col, row)
            if rv == "null":
                continue
            got = harness.query_json(
                "SELECT %s::text AS got, %s::numeric::text AS want, %s = %s::numeric AS eq "
                "FROM %s WHERE id = %d" % (harness.quote_ident(col), harness.sql_literal(rv),
                                            harness.quote_ident(col), harness.sql_literal(rv),
                                            q, row + 1), db)
            if not got:
                problem("%s: row %d missing" % (stream, row + 1))
            elif got[0]["got"] != got[0]["want"] or got[0]["eq"] is not True:
                problem("%s: %s for input %s reads back as %s, expected %s"
                        % (stream, col, rv, got[0]["got"], got[0]["want"]))
    big = harness.scalar("SELECT n::text FROM %s WHERE id = 1" % q, db) if "n" in cols else ""
    if "n" in cols and big != "123456789012345678901234567890.123456789":
        problem("%s: n = %r, expected 123456789012345678901234567890.123456789" % (stream, big))

    rows = {r["id"]: r for r in harness.query_json(
        "SELECT id, i::text AS i, extract(epoch FROM dt)::text AS dt_epoch, dt::text AS dt, "
        "extract(epoch FROM anydt)::text AS anydt_epoch, d::text AS d, t::text AS t, b, "
        "arr::text AS arr, obj::text AS obj, notype::text AS notype, u, s, "
        "__loaded_at IS NOT NULL AS loaded, "
        "__loaded_at BETWEEN now() - interval '10 minutes' AND now() + interval '1 minute' "
        "AS loaded_recent FROM %s" % q, db)} if all(c in cols for c in WANT_TYPES) else {}
    if not rows:
        return
    for row in range(N_ROWS):
        r = rows.get(row + 1)
        if r is None:
            problem("%s: row id %d missing" % (stream, row + 1))
            continue
        label = "%s id %d" % (stream, row + 1)
        rv = raw("i", row)
        if (None if rv == "null" else rv) != r["i"]:
            problem("%s: i = %s, expected %s" % (label, r["i"], rv))
        for col, ecol in (("dt", "dt_epoch"), ("anydt", "anydt_epoch")):
            rv = raw(col, row)
            if rv == "null":
                if r[ecol] is not None:
                    problem("%s: %s should be NULL, is %s" % (label, col, r[col if col == "dt"
                                                                             else ecol]))
                continue
            want = epoch_of(json.loads(rv))
            if r[ecol] is None or Decimal(r[ecol]) != want:
                problem("%s: %s for input %s is the instant %s (epoch %s), expected epoch %s"
                        % (label, col, rv, r.get("dt"), r[ecol], want))
        for col in ("d", "t"):
            rv = raw(col, row)
            want = None if rv == "null" else json.loads(rv)
            if r[col] != want:
                problem("%s: %s = %r, expected %r" % (label, col, r[col], want))
        rv = raw("b", row)
        if r["b"] != json.loads(rv):
            problem("%s: b = %r, expected %s" % (label, r["b"], rv))
        for col in ("arr", "obj", "notype"):
            rv = raw(col, row)
            if rv == "null":
                if r[col] is not None:
                    problem("%s: %s should be NULL, is %s" % (label, col, r[col]))
                continue
            eq = harness.scalar("SELECT %s = %s::jsonb FROM %s WHERE id = %d"
                                % (harness.quote_ident(col), harness.sql_literal(rv), q,
                                   row + 1), db)
            if eq != "t":
                problem("%s: %s = %s, expected jsonb %s" % (label, col, r[col], rv))
        rv = raw("u", row)
        want = None if rv == "null" else (rv if not rv.startswith('"') else json.loads(rv))
        if r["u"] != want:
            problem("%s: union column u = %r, expected %r" % (label, r["u"], want))
        rv = raw("s", row)
        if r["s"] != (None if rv == "null" else json.loads(rv)):
            problem("%s: s = %r, expected %s" % (label, r["s"], rv))
        if not r["loaded"]:
            problem("%s: __loaded_at is NULL" % label)
        elif not r["loaded_recent"]:
            problem("%s: __loaded_at is not the receive time (not within the last minutes)"
                    % label)


def check_failure(db, tmp, name, lines, bad_line, stream, prop, label, cfg):
    """Runs lines, expects exit 1 and an error naming bad_line/stream/prop
    (any of them None = not required)."""
    path = os.path.join(tmp, name)
    harness.write_lines(path, lines)
    r = harness.run_input(cfg, path)
    if not harness.check_exit_1(problems, label, r):
        return r
    errs = harness.lines_mentioning(r.stderr, "error")
    text = "\n".join(errs)
    if not errs:
        problem("%s: no error line on stderr (stderr: %s)" % (label, r.stderr.strip()[-1000:]))
        return r
    if bad_line is not None and not re.search(r"\bline %d\b" % bad_line, text):
        problem("%s: the error does not name input line %d: %s" % (label, bad_line,
                                                                  text[-800:]))
    if stream is not None and stream not in text:
        problem("%s: the error does not name stream %s: %s" % (label, stream, text[-800:]))
    if prop is not None and not re.search(r'(\b|")%s(\b|")' % re.escape(prop), text):
        problem("%s: the error does not name property %s: %s" % (label, prop, text[-800:]))
    return r


def main():
    db, tmp = harness.integration_env()
    cfg = harness.write_config(os.path.join(tmp, "types-config.json"), db, SCHEMA)
    # a session time zone far from UTC, so "no zone = UTC" is really tested
    harness.psql("ALTER DATABASE %s SET timezone = 'Asia/Kathmandu'" % harness.quote_ident(db),
                 db)

    lines = [schema_text("typed_keyed", True), schema_text("typed_append", False)]
    for row in range(N_ROWS):
        lines.append(record_text("typed_keyed", row))
        lines.append(record_text("typed_append", row))
    lines.append('{"type": "STATE", "value": {"ok": 1}}')
    path = os.path.join(tmp, "types.singer")
    harness.write_lines(path, lines)
    r = harness.run_input(cfg, path)
    if harness.check_exit_0(problems, "main run", r, tail=2000):
        check_stream(db, "typed_keyed")
        check_stream(db, "typed_append")

    # --- failures ---------------------------------------------------------------
    # 1. integer past 64 bits in the second batch (batch_size_rows = 2)
    cfg2 = harness.write_config(os.path.join(tmp, "types-config-batch2.json"), db, SCHEMA,
                                batch_size_rows=2)
    props = {"id": {"type": "integer"}, "qty": {"type": ["null", "integer"]}}
    lines = [schema_text("overflow", False, props)]
    lines += ['{"type": "RECORD", "stream": "overflow", "record": {"id": 1, "qty": 1}}',
              '{"type": "RECORD", "stream": "overflow", "record": {"id": 2, "qty": 2}}',
              '{"type": "STATE", "value": {"s": 1}}',
              '{"type": "RECORD", "stream": "overflow", "record": {"id": 3, "qty": 3}}',
              '{"type": "STATE", "value": {"s": 2}}',
              '{"type": "RECORD", "stream": "overflow", "record": '
              '{"id": 4, "qty": 9223372036854775808}}',
              '{"type": "STATE", "value": {"s": 3}}']
    r = check_failure(db, tmp, "overflow.singer", lines, 7, "overflow", "qty",
                      "integer 9223372036854775808 in a bigint column", cfg2)
    if not r.timed_out:
        ids = harness.column_values(SCHEMA, "overflow", "id", db, order_by="id")
        if ids != [1, 2]:
            problem("overflow run: rows %s in the table, expected [1, 2] (the first batch "
                    "committed, nothing of the failing batch)" % ids)
        states = harness.parse_states(problems, "overflow run", r.stdout)
        if states is not None and states not in ([], [{"s": 1}]):
            problem("overflow run: stdout STATEs %r; only {'s': 1} (covering the committed "
                    "batch) may appear" % states)

    # 2. an invalid date
    props = {"id": {"type": "integer"}, "day": {"type": ["null", "string"], "format": "date"}}
    lines = [schema_text("bad_date", False, props),
             '{"type": "RECORD", "stream": "bad_date", "record": {"id": 1, "day": "2019-02-28"}}',
             '{"type": "RECORD", "stream": "bad_date", "record": {"id": 2, "day": "2019-02-30"}}',
             '{"type": "STATE", "value": {"s": 1}}']
    r = check_failure(db, tmp, "bad_date.singer", lines, 3, "bad_date", "day",
                      "date 2019-02-30", cfg)
    if not r.timed_out:
        check_nothing_committed(db, "bad_date", "bad date run")
        if r.stdout.strip():
            problem("bad date run: stdout %r, expected no STATE" % r.stdout.strip())

    # 3. "abc" in an integer column
    props = {"id": {"type": "integer"}, "cnt": {"type": ["null", "integer"]}}
    lines = [schema_text("bad_int", True, props),
             '{"type": "RECORD", "stream": "bad_int", "record": {"id": 1, "cnt": 5}}',
             '{"type": "RECORD", "stream": "bad_int", "record": {"id": 2, "cnt": 6}}',
             '{"type": "RECORD", "stream": "bad_int", "record": {"id": 3, "cnt": "abc"}}']
    r = check_failure(db, tmp, "bad_int.singer", lines, 4, "bad_int", "cnt",
                      '"abc" in an integer column', cfg)
    if not r.timed_out:
        check_nothing_committed(db, "bad_int", '"abc" run')
    return harness.report(problems)


def check_nothing_committed(db, table, label):
    """After a run that failed in its first batch: table, where it exists,
    holds no row (the failing batch was not committed)."""
    if harness.table_exists(SCHEMA, table, db) and harness.count_rows(SCHEMA, table, db) != 0:
        problem("%s: rows of the failing batch were committed" % label)


if __name__ == "__main__":
    sys.exit(main())
