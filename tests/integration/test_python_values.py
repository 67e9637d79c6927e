#!/usr/bin/env python3
"""Real taps' numbers and dates (issue #11 items 1 and 2): what Python taps
write loads, exactly, or is an invalid record under `invalid_records`.

Each case is its own run into its own table:
  * offsets: UTC offsets with seconds as pipelinewise-tap-postgres writes
    them from a non-UTC session (1900-01-01T05:21:10+05:21:10) load into a timestamptz column as the exact instant (epoch
    compared with Python's reading of the same text), into time and date
    columns too;
  * time_date: a `format: time` value with an offset is stored converted to
    UTC (10:00:00+05:30 -> 04:30:00, round the clock), never with the offset
    silently dropped; a `format: date` value given a full date-time keeps its
    calendar date as written (2024-01-31T23:00:00-05:00 -> 2024-01-31);
  * bom: input starting with a UTF-8 byte-order mark, plain and zstd, loads;
  * exponents: 1e2, 1E+2, 1e+16, 1.5e1, -2.5E+1, 12.000 into a bigint column
    load as 100, 100, 10000000000000000, 15, -25, 12; 1.5e0 (not an
    integer) and 1e19 (out of range) are invalid records: skipped, counted;
  * nonfinite: Python's bare NaN, Infinity, -Infinity load into numeric and
    double precision columns as such, into a text column as the words;
    in a bigint or jsonb column (also deep inside an array) they are
    invalid records: skipped with invalid_records skip, and with dead_letter
    the record lands in the dead letter as a string (strict JSON);
  * extracted_at: with add_metadata_columns, records whose time_extracted
    is not a date-time load with a NULL _sdc_extracted_at and one warning for
    the stream (not one per record) naming the first line, plus a count;
  * real tap: fixtures/realtaps/tap-postgres-kolkata.singer, recorded from
    pipelinewise-tap-postgres in an Asia/Kolkata session (LMT offsets with
    seconds, Infinity, 1e+16), loads with exit 0 and the exact values.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "pyvals"
problems = []


def problem(msg):
    problems.append(msg)


def schema_line(stream, props, keys=("id",)):
    return json.dumps({"type": "SCHEMA", "stream": stream,
                       "schema": {"type": "object", "properties": props},
                       "key_properties": list(keys)})


def record_line(stream, fields, extra=""):
    """A RECORD whose record object is written from raw JSON texts, so
    values Python's json module would respell (NaN, 1e+16) stay as given."""
    body = ", ".join('"%s": %s' % (k, v) for k, v in fields)
    return '{"type": "RECORD", "stream": "%s", "record": {%s}%s}' % (stream, body, extra)


def run_lines(db, tmp, name, lines, **settings):
    cfg = harness.write_config(os.path.join(tmp, name + ".json"), db, SCHEMA, **settings)
    path = os.path.join(tmp, name + ".singer")
    harness.write_lines(path, lines)
    return harness.run_input(cfg, path)


def epoch_of(text):
    """Seconds since 1970 of an ISO 8601 date-time, exactly (Python reads
    offsets with seconds too)."""
    delta = datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1000000


def rows_by_id(db, table, select):
    q = harness.qualified(SCHEMA, table)
    if not harness.table_exists(SCHEMA, table, db):
        problem("%s: no table %s" % (table, q))
        return {}
    return {r["id"]: r for r in harness.query_json("SELECT id, %s FROM %s" % (select, q), db)}


def case_offsets(db, tmp):
    stamps = ["1900-01-01T05:21:10+05:21:10", "1941-09-30T23:59:59.5+05:53:20",
              "1890-06-01T12:00:00-00:01:15", "2024-03-10T12:00:00+05:30"]
    props = {"id": {"type": "integer"},
             "ts": {"type": ["null", "string"], "format": "date-time"},
             "t": {"type": ["null", "string"], "format": "time"},
             "d": {"type": ["null", "string"], "format": "date"}}
    lines = [schema_line("offsets", props)]
    for i, stamp in enumerate(stamps):
        lines.append(record_line("offsets", [("id", str(i + 1)), ("ts", json.dumps(stamp))]))
    lines.append(record_line("offsets", [("id", "100"), ("t", '"02:00:00.25+05:21:10"'),
                                         ("d", '"1900-01-01T00:00:00+05:21:10"')]))
    r = run_lines(db, tmp, "offsets", lines)
    if not harness.check_exit_0(problems, "offsets", r):
        return
    rows = rows_by_id(db, "offsets", "extract(epoch FROM ts) AS e, t::text AS t, d::text AS d")
    extra = rows.get(100, {})
    if extra.get("t") != "20:38:50.25" or extra.get("d") != "1900-01-01":
        problem("offsets: time 02:00:00.25+05:21:10 and date 1900-01-01T00:00:00+05:21:10 "
                "stored as %s and %s, expected 20:38:50.25 and 1900-01-01"
                % (extra.get("t"), extra.get("d")))
    for i, stamp in enumerate(stamps):
        row = rows.get(i + 1)
        want = epoch_of(stamp)
        if row is None:
            problem("offsets: row %d missing" % (i + 1))
        elif row["e"] is None or Decimal(str(row["e"])) != want:
            problem("offsets: %s loaded as epoch %s, expected %s" % (stamp, row["e"], want))


def case_time_and_date(db, tmp):
    times = [("10:00:00+05:30", "04:30:00"), ("02:00:00.25+05:45", "20:15:00.25"),
             ("23:30:00-01:00", "00:30:00"), ("13:45:30", "13:45:30"),
             ("13:45:30Z", "13:45:30")]
    dates = [("1900-01-01T00:00:00+05:30", "1900-01-01"), ("2024-02-29", "2024-02-29"),
             ("2024-01-31T23:00:00-05:00", "2024-01-31")]
    props = {"id": {"type": "integer"},
             "t": {"type": ["null", "string"], "format": "time"},
             "d": {"type": ["null", "string"], "format": "date"}}
    lines = [schema_line("time_date", props)]
    for i, (text, _) in enumerate(times):
        lines.append(record_line("time_date", [("id", str(i + 1)), ("t", json.dumps(text))]))
    for i, (text, _) in enumerate(dates):
        lines.append(record_line("time_date", [("id", str(100 + i)), ("d", json.dumps(text))]))
    r = run_lines(db, tmp, "time_date", lines)
    if not harness.check_exit_0(problems, "time_date", r):
        return
    rows = rows_by_id(db, "time_date", "t::text AS t, d::text AS d")
    for i, (text, want) in enumerate(times):
        got = rows.get(i + 1, {}).get("t")
        if got != want:
            problem("time_date: time %s stored as %s, expected %s (converted to UTC)"
                    % (text, got, want))
    for i, (text, want) in enumerate(dates):
        got = rows.get(100 + i, {}).get("d")
        if got != want:
            problem("time_date: date %s stored as %s, expected %s (the date as written)"
                    % (text, got, want))


def case_bom(db, tmp):
    props = {"id": {"type": "integer"}, "s": {"type": ["null", "string"]}}
    text = "\ufeff" + "".join(line + "\n" for line in [
        schema_line("bom", props), record_line("bom", [("id", "1"), ("s", '"a"')]),
        record_line("bom", [("id", "2"), ("s", '"b"')])])
    plain = os.path.join(tmp, "bom.singer")
    harness.write_text(plain, text)
    packed = plain + ".zst"
    subprocess.run(["zstd", "-q", "-f", plain, "-o", packed], check=True)
    cfg = harness.write_config(os.path.join(tmp, "bom.json"), db, SCHEMA)
    for label, path in (("plain", plain), ("zstd", packed)):
        r = harness.run_input(cfg, path)
        if not harness.check_exit_0(problems, "bom %s" % label, r):
            continue
        got = harness.column_values(SCHEMA, "bom", "s", db, order_by="id")
        if got != ["a", "b"]:
            problem("bom %s: rows %r, expected ['a', 'b']" % (label, got))


def case_exponents(db, tmp):
    good = [("1e2", 100), ("1E+2", 100), ("1e+16", 10000000000000000), ("1.5e1", 15),
            ("-2.5E+1", -25), ("12.000", 12), ("9.223372036854775807e18", 9223372036854775807)]
    bad = ["1.5e0", "1e19"]
    props = {"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}}
    lines = [schema_line("exponents", props)]
    for i, (text, _) in enumerate(good):
        lines.append(record_line("exponents", [("id", str(i + 1)), ("n", text)]))
    for i, text in enumerate(bad):
        lines.append(record_line("exponents", [("id", str(100 + i)), ("n", text)]))
    r = run_lines(db, tmp, "exponents", lines, invalid_records="skip")
    if not harness.check_exit_0(problems, "exponents", r):
        return
    rows = rows_by_id(db, "exponents", "n::text AS n")
    for i, (text, want) in enumerate(good):
        got = rows.get(i + 1, {}).get("n")
        if got != str(want):
            problem("exponents: %s loaded as %s, expected %d" % (text, got, want))
    for i, text in enumerate(bad):
        if 100 + i in rows:
            problem("exponents: %s was loaded (%s); it is an invalid record"
                    % (text, rows[100 + i]["n"]))
    for text, why in (("1.5e0", "not an integer"), ("1e19", "out of range")):
        if not any(text in ln and why in ln for ln in r.stderr.splitlines()):
            problem("exponents: no warning naming %s as %s in: %s" % (text, why,
                                                                      r.stderr[-1500:]))


def dead_letters(path):
    out = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    return [json.loads(line) for line in out.decode("utf-8").splitlines() if line]


def case_nonfinite(db, tmp):
    # a table made by someone else gives the double precision column
    q = harness.qualified(SCHEMA, "nonfinite")
    harness.psql("CREATE SCHEMA IF NOT EXISTS %s" % harness.quote_ident(SCHEMA), db)
    harness.psql("DROP TABLE IF EXISTS %s" % q, db)
    harness.psql("CREATE TABLE %s (id bigint PRIMARY KEY, f double precision)" % q, db)
    props = {"id": {"type": "integer"}, "f": {"type": ["null", "number"]},
             "n": {"type": ["null", "number"]}, "s": {"type": ["null", "string"]},
             "i": {"type": ["null", "integer"]}, "j": {}}
    good = [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]
    lines = [schema_line("nonfinite", props)]
    for k, (text, _) in enumerate(good):
        lines.append(record_line("nonfinite", [("id", str(k + 1)), ("f", text), ("n", text),
                                               ("s", text), ("j", '[1, "NaN"]')]))
    refused = [("i", "NaN"), ("j", "NaN"), ("j", "[1, [Infinity]]"), ("j", '{"a": -Infinity}')]
    for k, (col, text) in enumerate(refused):
        lines.append(record_line("nonfinite", [("id", str(100 + k)), (col, text)]))
    dead = os.path.join(tmp, "nonfinite-dead.jsonl.zst")
    r = run_lines(db, tmp, "nonfinite", lines, invalid_records="dead_letter",
                  dead_letter_path=dead)
    if not harness.check_exit_0(problems, "nonfinite", r):
        return
    rows = rows_by_id(db, "nonfinite", "f::text AS f, n::text AS n, s, j::text AS j")
    for k, (text, want) in enumerate(good):
        row = rows.get(k + 1)
        if row is None:
            problem("nonfinite: the row with %s is missing" % text)
            continue
        for col, typ in (("f", "double precision"), ("n", "numeric"), ("s", "text")):
            if row[col] != want:
                problem("nonfinite: %s in the %s column reads back as %r, expected %r"
                        % (text, typ, row[col], want))
        if row["j"] != '[1, "NaN"]':
            problem("nonfinite: jsonb [1, \"NaN\"] reads back as %r" % row["j"])
    for k, (col, text) in enumerate(refused):
        if 100 + k in rows:
            problem("nonfinite: %s in column %s was loaded; it is an invalid record"
                    % (text, col))
    entries = dead_letters(dead) if os.path.exists(dead) else []
    if len(entries) != len(refused):
        problem("nonfinite: %d dead letters, expected %d" % (len(entries), len(refused)))
    for e in entries:
        # strict JSON: the record is kept as its text, in a string
        if not isinstance(e.get("record"), str) or "Infinity" not in e["record"] and \
                "NaN" not in e["record"]:
            problem("nonfinite: dead letter record %r is not the record text" % e.get("record"))
        if "JSON cannot hold NaN or Infinity" not in e.get("reason", "") and \
                "not a valid bigint" not in e.get("reason", ""):
            problem("nonfinite: dead letter reason %r" % e.get("reason"))


def case_extracted_at(db, tmp):
    props = {"id": {"type": "integer"}}
    lines = [schema_line("extracted", props)]
    stamps = ["2024-01-01T00:00:00+05:21:10", "yesterday", "2024-13-01T00:00:00Z",
              "2024-01-02T00:00:00Z"]
    for k, st in enumerate(stamps):
        lines.append(record_line("extracted", [("id", str(k + 1))],
                                 ', "time_extracted": %s' % json.dumps(st)))
    r = run_lines(db, tmp, "extracted", lines, add_metadata_columns=True)
    if not harness.check_exit_0(problems, "extracted_at", r):
        return
    rows = rows_by_id(db, "extracted", "extract(epoch FROM _sdc_extracted_at) AS e")
    for k, st in enumerate(stamps):
        row = rows.get(k + 1)
        bad = k in (1, 2)
        if row is None:
            problem("extracted_at: row %d missing" % (k + 1))
        elif bad and row["e"] is not None:
            problem("extracted_at: %r gave _sdc_extracted_at %s, expected NULL" % (st, row["e"]))
        elif not bad and (row["e"] is None or Decimal(str(row["e"])) != epoch_of(st)):
            problem("extracted_at: %r gave epoch %s, expected %s" % (st, row["e"], epoch_of(st)))
    warned = [ln for ln in r.stderr.splitlines()
              if "time_extracted" in ln and "warning" in ln]
    first = [ln for ln in warned if "line 3" in ln and "not an ISO 8601 date-time" in ln]
    counted = [ln for ln in warned if "2 time_extracted values" in ln]
    if len(first) != 1 or len(counted) != 1 or len(warned) != 2:
        problem("extracted_at: expected one warning naming line 3 and one count of 2, got %r"
                % warned)


def case_real_tap(db, tmp):
    """The recorded output of pipelinewise-tap-postgres from an Asia/Kolkata
    session (fixtures/realtaps/README.md) loads, with the exact instants."""
    path = os.path.join(harness.REPO_ROOT, "fixtures", "realtaps", "tap-postgres-kolkata.singer")
    cfg = harness.write_config(os.path.join(tmp, "realtap.json"), db, SCHEMA,
                               add_metadata_columns=True)
    r = harness.run_input(cfg, path)
    if not harness.check_exit_0(problems, "real tap", r):
        return
    rows = rows_by_id(db, "events",
                      "extract(epoch FROM happened_at) AS e, anynum::text AS anynum, "
                      "f::text AS f, r::text AS r, amount::text AS amount, "
                      "_sdc_deleted_at IS NULL AS live")
    want = {1: (epoch_of("1900-01-01T00:00:00+00:00"), "Infinity", "10000000000000000", "1.5",
                "12345678901234567890.1234567890"),
            2: (epoch_of("1941-09-30T18:06:39.5+00:00"), "-Infinity", "15" + "0" * 299,
                "-34" + "0" * 37, "-0.0000000001"),
            5: (epoch_of("1850-06-01T00:00:00+00:00"), "123456789012345678901234567890123456789.5",
                None, "0." + "0" * 39 + "1", "99999999999999999999.9999999999")}
    if sorted(rows) != sorted(want):
        problem("real tap: ids %s, expected %s" % (sorted(rows), sorted(want)))
    for i, (epoch, anynum, f, rv, amount) in want.items():
        row = rows.get(i)
        if row is None:
            continue
        got = (Decimal(str(row["e"])), row["anynum"], row["f"], row["r"], row["amount"])
        if got != (epoch, anynum, f, rv, amount) or not row["live"]:
            problem("real tap: id %d is %r (live %s), expected %r"
                    % (i, got, row["live"], (epoch, anynum, f, rv, amount)))


def main():
    db, tmp = harness.integration_env()
    case_offsets(db, tmp)
    case_time_and_date(db, tmp)
    case_bom(db, tmp)
    case_exponents(db, tmp)
    case_nonfinite(db, tmp)
    case_extracted_at(db, tmp)
    case_real_tap(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
