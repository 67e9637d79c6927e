#!/usr/bin/env python3
"""Binary COPY lands every value exactly as COPY text does (README
"Performance"; drivers/postgres/pg_encode_binary.h).

The same corpus of awkward values per type -- numeric scales and huge digit
counts, NaN/Infinity, fractional seconds past six digits (the server's own
rounding, halfway cases included), leap seconds, hour 24, offsets with
seconds, the first and last accepted years, times with offsets, U+0000 and
escapes in text and jsonb, numbers and objects into text -- is loaded twice
by the binary under test, in one run:

  * into schema binx, whose tables target-pg creates: every column has a
    binary form, so the rows go as COPY BINARY;
  * into schema txtx, whose tables are made beforehand with one more column
    of type uuid (a type target-pg does not manage), which keeps them on
    COPY text.

Each stream goes both through append (unkeyed) and, in a second run,
through staging and merge (keyed, every key already there).  Every column
is then compared value by value as ::text (which shows numeric scales,
microseconds and jsonb), and the debug log must say which format each table
used.  A second part checks the switch: a table loaded binary until a later
SCHEMA maps a property to an existing uuid column, then text, with every row
landing.

Run by tests/run_all.sh (PG* env, TARGET_PG, TEST_DB, TEST_TMPDIR).  Exit 0 =
pass; each problem is printed on its own line.
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
BIN, TXT = "binx", "txtx"

# property -> (JSON schema, JSON texts of values); each value gets a record
# of its own (other properties absent: NULL)
rng = random.Random(14)
FRACTIONS = ["%0*d" % (n, rng.randrange(10 ** n)) for n in (7, 8, 9, 12) for _ in range(40)]
HALFWAY = ["1234565", "0000005", "0000015", "0000025", "9999995", "5000005", "4999995",
           "00000050", "12345650", "9999999", "99999950", "0000004999"]

NUMERIC = ["0", "-0", "-0.00", "0.000", "0e5", "0.0e-3", "1.50", "1.5E-7", "1e400", "1E+2",
           "-1.5e-3", "12.000", "-12.50", "0.0001", "0.00010", "10000", "99999999", "1e-5",
           "123456789012345678901234567890.123456789", "3.14159265358979323846264338327950288",
           "1e1000", "1.23456789e-300", "9.999e3", "-9.999e-3", "5e-1", "50e-2", "1234.5678e2",
           "1234.5678e-2", "0.1", "-1", "10", "100", "1000", "100000000", "1e3", "1e4", "1e5",
           "-2.000000000000000000001",
           "1" + "0" * 5000 + ".5",
           "0." + "0" * 300 + "1",
           "-" + "7" * 20001,
           "9" * 131072,
           "0." + "3" * 16383,
           "NaN", "Infinity", "-Infinity"]
BIGINT = ["0", "-1", "1", "9223372036854775807", "-9223372036854775808", "1e2", "12.000",
          "1.5e1", "-0.0e5", "1E+18", "32767", "-32768", "2147483648"]
TIMESTAMPS = ["2020-01-01T10:00:00Z", "2020-01-01T10:00:00+05:30", "2020-01-01T10:00:00-08:00",
              "2020-01-01 10:00:00", "2020-01-01", "2020-01-01T10:00", "2016-12-31T23:59:60Z",
              "2020-02-29T24:00:00Z", "2020-12-31T24:00:00-01:00",
              "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+15:00", "0001-01-01",
              "9999-12-31T23:59:59.999999-15:00", "9999-12-31T23:59:59.999999Z", "9999-12-31",
              "1900-01-01T05:21:10+05:21:10", "2020-01-01t10:00:00z", "2020-06-15T12:00:00+0530",
              "2020-06-15T12:00:00+05", "2020-06-15T12:00:00.5Z", "2020-06-15T12:00:00.123Z",
              "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "2000-01-01T00:00:00Z",
              "1999-12-31T23:59:59.9999999Z", "2020-06-15T12:00:00.000000Z",
              "2024-02-29T12:00:00-00:00", "1600-03-01T00:00:00Z", "1582-10-10T00:00:00Z",
              "2020-01-01T10:59:60.5Z", "2020-01-01T23:59:60.0000001Z"]
# refused by the server (the clock passes 24:00:00): refused the same way
REFUSED = ["2020-01-01T23:59:60.5+01:00", "2020-01-01T23:59:60.5Z"]
TIMESTAMPS += REFUSED
TIMESTAMPS += ["2021-03-04T05:06:07.%s+02:00" % f for f in FRACTIONS + HALFWAY]
DATES = ["2020-01-01", "0001-01-01", "9999-12-31", "2000-02-29", "1999-12-31", "1970-01-01",
         "1600-02-29", "2020-01-31T10:00:00Z", "2020-01-31T23:00:00-05:00"]
TIMES = ["00:00:00", "23:59:59.999999", "24:00:00", "23:59:60", "02:00+05:30",
         "02:00:00.25+05:30", "12:34:56.7890123", "23:59:59.9999999", "10:00Z", "00:00:00-08:00",
         "12:00:00.1234565", "23:30:00-01:00", "00:30:00+01:00", "24:00:00Z", "23:59:60+01:00",
         "12:00", "12:00:00.5",
         "23:59:60.5"]  # refused by the server: past 24:00:00
TIMES += ["11:22:33.%s" % f for f in FRACTIONS[:40] + HALFWAY]
STRINGS = ['"plain"', '""', '"a\\tb\\nc\\rd\\\\e"', '"\\\\N"', '"x\\u0000y"', '"\\u0000"',
           '"caf\\u00e9 \\ud83d\\ude00 \\u6f22"', '"\\"\\/\\b\\f"',
           json.dumps("Ελληνικά 漢字 \U0001F600", ensure_ascii=False), '"\\\\u0000"',
           '"trailing\\\\"', '"' + "long " * 3000 + '"']
ANY_TEXT = ["1.50", "-0.00", "1e400", "true", "false", '{"a": 1, "b": "\\u0000"}',
            '[1, "x\\ty", null]', '"str"', "NaN", "12345678901234567890"]
JSONS = ['{"a": 1.50, "b": [1, 2.0, -0.00, 1e400]}', '{"k": "a\\u0000\\t"}', '[]', '{}',
         '{"s": "\\\\u0000 not a nul"}', '{"deep": {"er": {"est": [true, false, null]}}}',
         '{"e": "\\ud83d\\ude00 \\u00e9 \\" \\\\ \\/"}', '  { "spaced" :  [ 1 , 2 ] }  ',
         '[1.5E-7, 0.0001, 123456789012345678901234567890]', '"a json string"', '42', 'true']

COLUMNS = {
    "num": ({"type": ["null", "number"]}, NUMERIC),
    "big": ({"type": ["null", "integer"]}, BIGINT),
    "ts": ({"type": ["null", "string"], "format": "date-time"}, [json.dumps(v) for v in TIMESTAMPS]),
    "dt": ({"type": ["null", "string"], "format": "date"}, [json.dumps(v) for v in DATES]),
    "tm": ({"type": ["null", "string"], "format": "time"}, [json.dumps(v) for v in TIMES]),
    "flag": ({"type": ["null", "boolean"]}, ["true", "false"]),
    "txt": ({"type": ["null", "string"]}, STRINGS),
    "anything": ({"type": ["null", "string"]}, ANY_TEXT),
    "obj": ({"type": ["null", "object", "array"]}, JSONS),
}
SQL_TYPES = {"num": "numeric", "big": "bigint", "ts": "timestamp with time zone", "dt": "date",
             "tm": "time without time zone", "flag": "boolean", "txt": "text", "anything": "text",
             "obj": "jsonb"}


def schema_msg(stream, keyed, extra=None):
    props = {"id": {"type": "integer"}, "fx": {"type": ["null", "string"]}}
    props.update({c: s for c, (s, _) in COLUMNS.items()})
    props.update(extra or {})
    return json.dumps({"type": "SCHEMA", "stream": stream, "schema": {"properties": props},
                       "key_properties": ["id"] if keyed else []})


def records(stream):
    lines, k = [], 0
    for col, (_, values) in COLUMNS.items():
        for v in values:
            k += 1
            lines.append('{"type": "RECORD", "stream": "%s", "record": {"id": %d, "%s": %s}, '
                         '"time_extracted": "2020-01-01T00:00:00.1234567+01:00"}'
                         % (stream, k, col, v))
    return lines


def run(db, tmp, schema, label, lines, **extra):
    cfg = harness.write_config(os.path.join(tmp, "bin-%s.json" % label), db, schema,
                               log_level="debug", **extra)
    path = os.path.join(tmp, "bin-%s.singer" % label)
    harness.write_lines(path, lines)
    r = harness.run_input(cfg, path, timeout=120)
    harness.check_exit_0(problems, label, r)
    return r


def check_format(r, label, schema, table, want):
    lines = [l for l in r.stderr.splitlines()
             if 'rows of "%s"."%s" go in COPY' % (schema, table) in l]
    if not lines:
        problems.append("%s: no debug line says which COPY format %s.%s used" % (label, schema, table))
    for l in lines:
        if "COPY %s format" % want not in l:
            problems.append("%s: expected COPY %s for %s.%s: %s" % (label, want, schema, table, l))


def compare(db, table, label):
    for col in ["id"] + list(COLUMNS) + ["_sdc_extracted_at", "_sdc_table_version",
                                         "_sdc_deleted_at"]:
        rows = harness.query_json(
            "SELECT coalesce(b.id, t.id) AS id, b.%s::text AS b, t.%s::text AS t "
            "FROM %s.%s b FULL JOIN %s.%s t USING (id) "
            "WHERE b.%s::text IS DISTINCT FROM t.%s::text OR b.id IS NULL OR t.id IS NULL "
            "ORDER BY 1 LIMIT 5" % (col, col, BIN, table, TXT, table, col, col), db)
        for row in rows:
            problems.append("%s column %s id %s: binary %r, text %r"
                            % (label, col, row["id"], (row["b"] or "")[:80] if row["b"] else None,
                               (row["t"] or "")[:80] if row["t"] else None))
    n, want = harness.count_rows(BIN, table, db), sum(len(v) for _, v in COLUMNS.values())
    if table == "exact" and n != want - len(REFUSED) - 1:
        problems.append("%s: %d rows in %s.%s, expected %d"
                        % (label, n, BIN, table, want - len(REFUSED) - 1))


def precreate(db, table, keyed):
    cols = ", ".join('"%s" %s' % (c, t) for c, t in SQL_TYPES.items())
    harness.psql("CREATE SCHEMA IF NOT EXISTS %s; CREATE TABLE %s.%s (id bigint %s, "
                 "fx uuid, %s, _sdc_extracted_at timestamptz, _sdc_received_at timestamptz, "
                 "_sdc_batched_at timestamptz, _sdc_deleted_at timestamptz, "
                 "_sdc_sequence bigint, _sdc_table_version bigint, "
                 "__loaded_at timestamptz)" % (TXT, TXT, table, "PRIMARY KEY" if keyed else "", cols), db)


def check_exactness(db, tmp):
    precreate(db, "exact", False)
    for schema in (BIN, TXT):
        lines = [schema_msg("exact", False)] + records("exact")
        r = run(db, tmp, schema, "append-" + schema, lines, add_metadata_columns=True,
                invalid_records="skip")
        check_format(r, "append", schema, "exact", "binary" if schema == BIN else "text")
    compare(db, "exact", "append")

    # keyed: a first load of placeholders, then every value through staging
    # and merge (each key exists)
    precreate(db, "exact_k", True)
    for schema in (BIN, TXT):
        first = [schema_msg("exact_k", True)]
        first += ['{"type": "RECORD", "stream": "exact_k", "record": {"id": %d}}' % k
                  for k in range(1, sum(len(v) for _, v in COLUMNS.values()) + 1)]
        run(db, tmp, schema, "keyed1-" + schema, first, add_metadata_columns=True)
        lines = [schema_msg("exact_k", True)] + records("exact_k")
        r = run(db, tmp, schema, "keyed2-" + schema, lines, add_metadata_columns=True,
                invalid_records="skip")
        check_format(r, "keyed", schema, "exact_k", "binary" if schema == BIN else "text")
    compare(db, "exact_k", "keyed")


def check_switch(db, tmp):
    """Binary while every loaded column has a binary form; text from the
    SCHEMA that maps properties to the uuid, enum and domain columns, and
    binary again with the first SCHEMA, which loads none of them."""
    harness.psql("CREATE SCHEMA sw; CREATE TYPE sw.mood AS ENUM ('calm', 'happy'); "
                 "CREATE DOMAIN sw.positive AS numeric CHECK (VALUE > 0); "
                 "CREATE TABLE sw.mix (id bigint, amount numeric, code uuid, mood sw.mood, "
                 "dom sw.positive, __loaded_at timestamptz)", db)
    s1 = json.dumps({"type": "SCHEMA", "stream": "mix", "key_properties": [],
                     "schema": {"properties": {"id": {"type": "integer"},
                                               "amount": {"type": "number"}}}})
    s2 = json.dumps({"type": "SCHEMA", "stream": "mix", "key_properties": [],
                     "schema": {"properties": {"id": {"type": "integer"},
                                               "amount": {"type": "number"},
                                               "code": {"type": ["null", "string"]},
                                               "mood": {"type": ["null", "string"]},
                                               "dom": {"type": ["null", "number"]},
                                               "note": {"type": ["null", "string"]}}}})
    lines = [s1, '{"type": "RECORD", "stream": "mix", "record": {"id": 1, "amount": 1.50}}',
             s2, '{"type": "RECORD", "stream": "mix", "record": {"id": 2, "amount": -0.00, '
             '"code": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "mood": "happy", "dom": 2.50, '
             '"note": "t\\tab"}}',
             s1, '{"type": "RECORD", "stream": "mix", "record": {"id": 3, "amount": 1e3}}']
    r = run(db, tmp, "sw", "switch", lines)
    formats = [l.split("go in COPY ")[1].split()[0] for l in r.stderr.splitlines()
               if 'rows of "sw"."mix" go in COPY' in l]
    if formats != ["binary", "text", "binary"]:
        problems.append("switch: COPY formats of sw.mix were %s, expected binary, text, binary"
                        % formats)
    got = harness.psql("SELECT string_agg(concat_ws('|', id, amount, code, mood, dom, note), ';' "
                       "ORDER BY id) FROM sw.mix", db).strip()
    want = "1|1.50;2|0.00|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|happy|2.50|t\tab;3|1000"
    if got != want:
        problems.append("switch: sw.mix holds %r, expected %r" % (got, want))


def main():
    db, tmp = harness.integration_env()
    check_exactness(db, tmp)
    check_switch(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
