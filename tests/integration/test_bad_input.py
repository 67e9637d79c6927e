#!/usr/bin/env python3
"""Bad and extreme input (issue #5; README "Failure behaviour").

Every bad case is a small file whose first lines load and commit (config
batch_size_rows = 1: SCHEMA, RECORD id 1, STATE {"<stream>": 1}), then the
bad line, then a RECORD and a STATE that must never be reached.  Each
asserts: exit status 1 within a timeout (never a signal, never exit 3), a
"target-pg: error" line that names the input line (and the stream, property
and value where there are any) and comes from target-pg's own checks, not
from a failed COPY; stdout holds exactly the STATE of the committed part;
the table holds exactly the committed rows (no wrong value loaded).

Cases: malformed JSON (names line and column); a line that is an array, a
number, a string; a message without "type", "stream", "record", "schema";
RECORD before its SCHEMA; a record without its key property; a null key;
invalid SCHEMAs (no properties, properties not an object, unknown type
names); values a column cannot take (text in an integer column; year 0,
month 13, Feb 30, hour 25 in date/date-time/time columns; integers past 64
bits; 1e400 in an integer column; numbers past PostgreSQL's numeric range
in a number column; NaN/Infinity as strings, and bare tokens spelled other
than Python's NaN, Infinity, -Infinity); invalid
UTF-8 in a string value, a key and a stream name; lone UTF-16 surrogate
escapes; a record value and a SCHEMA nested 100,000 levels deep; input cut
off mid-line (plain via --input and a pipe, and zstd cut mid-frame): the
earlier batches stay committed and STATE does not pass them.

Extreme input that must load: a ~40 MB string full of escapes in a keyed
stream (staging + merge; length and md5 checked server-side); a value
nested 5,000 levels deep in a jsonb column; a SCHEMA with 2,000 properties
in 20 objects (past the 400-column budget: the objects stay jsonb); empty
input through a pipe (exit 0, nothing on stdout).  A SCHEMA with 2,000 flat
properties cannot become a table (PostgreSQL allows 1,600 columns): exit 1
naming the stream and the limit, nothing created.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "bad_input"
TIMEOUT = 60
problems = []
DB = TMP = CFG = None  # set by main()


def problem(msg):
    problems.append(msg)


# --- building input ---------------------------------------------------------------

def j(obj):
    return harness.jline(obj).encode("utf-8")


def schema_msg(stream, props, keys=("id",)):
    return j({"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
              "schema": {"type": "object", "properties": props}})


def rec(stream, **record):
    return j({"type": "RECORD", "stream": stream, "record": record})


def state(stream, n):
    return j({"type": "STATE", "value": {stream: n}})


def write_bytes(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def framed(stream, props, good, bad, keys=("id",)):
    """SCHEMA, RECORD good (id 1), STATE 1, the bad line (bytes), RECORD id 5,
    STATE 5: the bad line is line 4."""
    return b"".join(line + b"\n" for line in (
        schema_msg(stream, props, keys), rec(stream, **good), state(stream, 1), bad,
        rec(stream, **dict(good, id=5)), state(stream, 5)))


# --- checking ---------------------------------------------------------------------

def run(label, path=None, stdin_bytes=None, timeout=TIMEOUT, cfg=None):
    """target-pg --config CFG [--input path], or fed stdin_bytes through a
    pipe.  Returns a harness.Run."""
    args = ["--config", cfg or CFG]
    if stdin_bytes is None:
        return harness.run_target(args + ["--input", path], timeout=timeout)
    cmd = harness.target_cmd() + args
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(stdin_bytes, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        timed_out = True
    return harness.Run(p.returncode, out.decode("utf-8", "replace"),
                       err.decode("utf-8", "replace"), timed_out)


def error_line(r):
    for line in r.stderr.splitlines():
        if line.startswith("target-pg: error"):
            return line
    return None


def check_fails(label, r, line, names=(), from_target=True):
    """Exit 1 in time, never a crash; the error line names `line` and every
    string of names; from_target: the error is target-pg's own (no failed
    COPY, no SQLSTATE).  Returns the error line or None."""
    if r.timed_out:
        problem("%s: timed out after %d s (a hang)" % (label, TIMEOUT))
        return None
    if r.returncode < 0 or r.returncode >= 128:
        problem("%s: crashed (exit %s): %s" % (label, r.returncode, r.stderr.strip()[-1500:]))
        return None
    if r.returncode != 1:
        problem("%s: exit %s, expected 1 (stderr: %s)" % (label, r.returncode,
                                                          r.stderr.strip()[-1000:]))
    msg = error_line(r)
    if os.environ.get("BAD_INPUT_VERBOSE"):
        print("# %s: exit %s: %s" % (label, r.returncode, msg))
    if msg is None:
        problem("%s: no 'target-pg: error' line on stderr: %s" % (label, r.stderr.strip()[-800:]))
        return None
    if line is not None and not re.search(r"\bline %d\b" % line, msg):
        problem("%s: the error does not name input line %d: %s" % (label, line, msg))
    for word in names:
        if word not in msg:
            problem("%s: the error does not name %s: %s" % (label, word, msg))
    if from_target and ("COPY" in msg or "SQLSTATE" in r.stderr):
        problem("%s: the error comes from a failed COPY, not from target-pg's checks: %s"
                % (label, r.stderr.strip()[-800:]))
    return msg


def table_rows(stream, cols="id"):
    table = harness.table_name(stream)
    if not harness.table_exists(SCHEMA, table, DB):
        return None
    return harness.query_json("SELECT %s FROM %s ORDER BY id"
                              % (cols, harness.qualified(SCHEMA, table)), DB)


def check_committed(label, r, stream, states, ids, cols="id", rows=None):
    """stdout holds exactly `states`; the stream's table holds exactly the
    rows with `ids` (None: no table at all); with rows: exactly those
    (dicts of cols)."""
    harness.check_states(problems, label, r.stdout, states)
    got = table_rows(stream, cols)
    if ids is None:
        if got is not None:
            problem("%s: table for stream %s exists, expected none" % (label, stream))
        return
    want = rows if rows is not None else [{"id": i} for i in ids]
    if got != want:
        problem("%s: table %s holds %r, expected %r" % (label, stream, got, want))


def bad_case(label, stream, props, good, bad, names=(), line=4, keys=("id",),
             from_target=True):
    """The common frame: line 4 is bad; only record 1 and STATE 1 survive."""
    path = write_bytes(stream + ".singer", framed(stream, props, good, bad, keys))
    r = run(label, path)
    msg = check_fails(label, r, line, names, from_target)
    check_committed(label, r, stream, [{stream: 1}], [1])
    return msg


ID = {"id": {"type": "integer"}}


# --- malformed lines ----------------------------------------------------------------

def test_malformed_json():
    bad = b'{"type": "RECORD", "stream": "mal", "record": {"id": 2, "v": "b"}'
    bad_case("malformed JSON", "mal", dict(ID, v={"type": "string"}), {"id": 1, "v": "a"}, bad,
             names=("invalid JSON", "column %d" % (len(bad) + 1)))
    bad_case("malformed JSON (trailing comma)", "mal2", ID, {"id": 1},
             b'{"type": "RECORD", "stream": "mal2", "record": {"id": 2,}}',
             names=("invalid JSON",))


def test_not_an_object():
    for n, (what, bad) in enumerate((("array", b'[{"type": "RECORD"}]'), ("number", b"42"),
                                     ("string", b'"RECORD"'), ("null", b"null"))):
        bad_case("line that is a JSON %s" % what, "notobj%d" % n, ID, {"id": 1}, bad,
                 names=("JSON object",))


def test_missing_envelope_fields():
    cases = (("no type", b'{"stream": "env0", "record": {"id": 2}}', '"type"'),
             ("type not a string", b'{"type": 7, "stream": "env1", "record": {"id": 2}}',
              '"type"'),
             ("unknown type", b'{"type": "RECORDS", "stream": "env2", "record": {"id": 2}}',
              "RECORDS"),
             ("RECORD without stream", b'{"type": "RECORD", "record": {"id": 2}}', '"stream"'),
             ("RECORD with a numeric stream",
              b'{"type": "RECORD", "stream": 4, "record": {"id": 2}}', '"stream"'),
             ("RECORD without record", b'{"type": "RECORD", "stream": "env5"}', '"record"'),
             ("RECORD whose record is an array",
              b'{"type": "RECORD", "stream": "env6", "record": [2]}', '"record"'),
             ("SCHEMA without schema",
              b'{"type": "SCHEMA", "stream": "env7", "key_properties": []}', '"schema"'),
             ("SCHEMA without stream",
              b'{"type": "SCHEMA", "schema": {"properties": {}}}', '"stream"'),
             ("STATE without value", b'{"type": "STATE"}', '"value"'))
    for n, (label, bad, name) in enumerate(cases):
        bad_case(label, "env%d" % n, ID, {"id": 1}, bad, names=(name,))


def test_record_before_schema():
    bad_case("RECORD before its SCHEMA", "early", ID, {"id": 1}, rec("early_other", id=2),
             names=('"early_other"', "SCHEMA"))


def test_keys():
    props = dict(ID, v={"type": "string"})
    bad_case("record without its key property", "nokey", props, {"id": 1, "v": "a"},
             rec("nokey", v="b"), names=('"id"', '"nokey"', "missing"))
    bad_case("record with a null key", "nullkey", props, {"id": 1, "v": "a"},
             rec("nullkey", id=None, v="b"), names=('"id"', '"nullkey"', "null"))
    # a composite key, the second part missing
    props2 = dict(ID, k2={"type": "string"})
    bad_case("record without the second key property", "nokey2", props2, {"id": 1, "k2": "a"},
             rec("nokey2", id=2), names=('"k2"', '"nokey2"'), keys=("id", "k2"))


def test_invalid_schema():
    cases = (("SCHEMA without properties", {"type": "object"}, "properties", ()),
             ("SCHEMA whose properties is an array", {"type": "object", "properties": [ID]},
              "properties", ()),
             ("SCHEMA whose properties is a string", {"type": "object", "properties": "id"},
              "properties", ()),
             ("SCHEMA with an unknown type name",
              {"type": "object", "properties": dict(ID, v={"type": "strnig"})}, "strnig",
              ('"v"',)),
             ("SCHEMA with an unknown type name in a list",
              {"type": "object", "properties": dict(ID, v={"type": ["null", "intger"]})},
              "intger", ('"v"',)),
             ("SCHEMA with a number as type",
              {"type": "object", "properties": dict(ID, v={"type": 5})}, '"v"', ()),
             ("SCHEMA with an unknown type in a nested object",
              {"type": "object", "properties": dict(ID, o={"type": "object", "properties": {
                  "x": {"type": "decimal"}}})}, "decimal", ("o.x",)))
    for n, (label, schema, name, more) in enumerate(cases):
        stream = "badschema%d" % n
        bad = j({"type": "SCHEMA", "stream": stream + "_b", "key_properties": ["id"],
                 "schema": schema})
        bad_case(label, stream, ID, {"id": 1}, bad, names=(name, stream + "_b") + more)
        if harness.table_exists(SCHEMA, stream + "_b", DB):
            problem("%s: a table was made from the invalid SCHEMA" % label)


# --- values a column cannot take ----------------------------------------------------

def test_bad_values():
    props = dict(ID, i={"type": ["null", "integer"]}, n={"type": ["null", "number"]},
                 d={"type": ["null", "string"], "format": "date"},
                 ts={"type": ["null", "string"], "format": "date-time"},
                 t={"type": ["null", "string"], "format": "time"})
    # (label, property, raw JSON value, words the error must name)
    cases = (("text in an integer column", "i", b'"abc"', ('"abc"', "bigint")),
             ("a boolean in an integer column", "i", b"true", ("true",)),
             ("a fraction in an integer column", "i", b"1.5", ("1.5",)),
             ("2^63 in a bigint column", "i", b"9223372036854775808",
              ("9223372036854775808", "out of range")),
             ("-2^63-1 in a bigint column", "i", b"-9223372036854775809",
              ("-9223372036854775809", "out of range")),
             ("a 30-digit integer in a bigint column", "i", b"123456789012345678901234567890",
              ("123456789012345678901234567890",)),
             ("1e400 in an integer column", "i", b"1e400", ("1e400",)),
             ("1e999999 in a number column", "n", b"1e999999", ("1e999999", "out of range")),
             ("1e-999999 in a number column", "n", b"-1e-999999", ("-1e-999999",)),
             ("1e131072 in a number column", "n", b"1e131072", ("1e131072",)),
             ("NaN as a string in a number column", "n", b'"NaN"', ('"NaN"',)),
             ("Infinity as a string in a number column", "n", b'"Infinity"', ('"Infinity"',)),
             ("-Infinity as a string in a number column", "n", b'"-Infinity"',
              ('"-Infinity"',)),
             ("a numeric string in a number column", "n", b'"12.5"', ('"12.5"',)),
             ("year 0 in a date column", "d", b'"0000-01-01"', ('"0000-01-01"', "year 0")),
             ("month 13 in a date column", "d", b'"2024-13-01"', ('"2024-13-01"', "month 13")),
             ("Feb 30 in a date column", "d", b'"2023-02-30"', ('"2023-02-30"', "day 30")),
             ("Feb 29 of a common year", "d", b'"2023-02-29"', ('"2023-02-29"', "day 29")),
             ("hour 25 in a date-time column", "ts", b'"2024-01-01T25:00:00Z"',
              ('"2024-01-01T25:00:00Z"', "hour 25")),
             ("year 0 in a date-time column", "ts", b'"0000-06-01T00:00:00Z"',
              ("year 0",)),
             ("month 13 in a date-time column", "ts", b'"2024-13-01T00:00:00Z"',
              ("month 13",)),
             ("Feb 30 in a date-time column", "ts", b'"2024-02-30T00:00:00Z"', ("day 30",)),
             ("not a date-time", "ts", b'"yesterday"', ('"yesterday"',)),
             ("a number in a date-time column", "ts", b"1700000000", ("1700000000",)),
             ("hour 25 in a time column", "t", b'"25:00:00"', ('"25:00:00"', "hour 25")),
             ("minute 60 in a time column", "t", b'"12:60:00"', ("minute 60",)))
    for n, (label, prop, raw, names) in enumerate(cases):
        stream = "val%d" % n
        bad = b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "%s": %s}}' % (
            stream.encode(), prop.encode(), raw)
        bad_case(label, stream, props, {"id": 1, prop: None}, bad,
                 names=('"%s"' % stream, 'property "%s"' % prop) + names)


def test_number_edges():
    """Numbers at the edges of PostgreSQL's numeric range load exactly."""
    stream = "numedge"
    values = ("1e131071", "9.999e131071", "-1e-16383", "0.5e-16382", "0e200000",
              "0.0000000001e-16373", "123456789012345678901234567890.123456789")
    lines = [schema_msg(stream, dict(ID, n={"type": "number"}))]
    lines += [b'{"type": "RECORD", "stream": "numedge", "record": {"id": %d, "n": %s}}'
              % (i, v.encode()) for i, v in enumerate(values, 1)]
    label = "numbers at the edges of numeric"
    r = run(label, write_bytes("numedge.singer", b"\n".join(lines) + b"\n"))
    if not harness.check_exit_0(problems, label, r):
        return
    for i, v in enumerate(values, 1):
        got = harness.scalar("SELECT n = '%s'::numeric FROM %s WHERE id = %d"
                             % (v, harness.qualified(SCHEMA, stream), i), DB)
        if got != "t":
            problem("%s: %s read back differently (%r)" % (label, v, got))
    # one level past the depth limit of a jsonb value
    props = dict(ID, j={})
    bad_case("jsonb value 5,001 levels deep", "deep5001", props, {"id": 1},
             b'{"type": "RECORD", "stream": "deep5001", "record": {"id": 2, "j": %s}}'
             % nested_object(5001), names=("nested more than 5000 levels",))


def test_nan_infinity_tokens():
    props = dict(ID, n={"type": ["null", "number"]})
    # NaN, Infinity and -Infinity themselves load (test_python_values.py);
    # other spellings stay malformed JSON
    for n, token in enumerate((b"-NaN", b"+Infinity", b"INF", b"nan", b"inf", b"NaNx")):
        stream = "nantok%d" % n
        bad = b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "n": %s}}' % (
            stream.encode(), token)
        bad_case("bare %s" % token.decode(), stream, props, {"id": 1, "n": 1}, bad,
                 names=("invalid JSON", "column"))


# --- encoding -----------------------------------------------------------------------

def test_invalid_utf8():
    props = dict(ID, v={"type": ["null", "string"]})
    cases = (("invalid UTF-8 in a string value",
              b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v": "ab\xff"}}'),
             ("a truncated UTF-8 sequence in a string value",
              b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v": "\xe6\xbc"}}'),
             ("an overlong UTF-8 form in a string value",
              b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v": "\xc0\xaf"}}'),
             ("a UTF-8-encoded surrogate in a string value",
              b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v": "\xed\xa0\x80"}}'),
             ("invalid UTF-8 in a key",
              b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v\xfe": "x"}}'),
             ("invalid UTF-8 in a stream name",
              b'{"type": "RECORD", "stream": "%s\x80", "record": {"id": 2, "v": "x"}}'),
             ("Latin-1 text", b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, '
                              b'"v": "caf\xe9"}}'))
    for n, (label, bad) in enumerate(cases):
        stream = "utf%d" % n
        bad_case(label, stream, props, {"id": 1, "v": "ok"}, bad % stream.encode(),
                 names=("UTF-8",))


def test_lone_surrogates():
    props = dict(ID, v={"type": ["null", "string"]})
    cases = ((r"\ud800 alone", rb'"\ud800"'), (r"\udc00 alone", rb'"\udc00"'),
             (r"\ud800 then a letter", rb'"\ud800x"'),
             (r"\ud800 then \u0041", rb'"\ud800\u0041"'),
             (r"\ud800 then \ud800", rb'"\ud800\ud800"'),
             (r"low before high", rb'"\udc00\ud800"'),
             (r"\ud800 at the end of a key", None))
    for n, (label, value) in enumerate(cases):
        stream = "sur%d" % n
        if value is None:
            bad = rb'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v\ud800": "x"}}'
        else:
            bad = rb'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "v": ' + value + b"}}"
        bad_case("lone surrogate: " + label, stream, props, {"id": 1, "v": "ok"},
                 bad % stream.encode(), names=("surrogate",))


# --- nesting --------------------------------------------------------------------------

def nested_object(depth, leaf=b"1"):
    return b'{"a":' * depth + leaf + b"}" * depth


def test_deep_record():
    props = dict(ID, j={}, o={"type": ["null", "object"]}, v={"type": ["null", "string"]})
    depth = 100000
    for n, (label, prop, value) in enumerate((
            ("object 100,000 levels deep in a jsonb column", "j", nested_object(depth)),
            ("array 100,000 levels deep in a jsonb column", "o",
             b"[" * depth + b"]" * depth))):
        stream = "deep%d" % n
        bad = b'{"type": "RECORD", "stream": "%s", "record": {"id": 2, "%s": %s}}' % (
            stream.encode(), prop.encode(), value)
        bad_case(label, stream, props, {"id": 1}, bad,
                 names=('"%s"' % stream, 'property "%s"' % prop, "nested"))
    # the same depth in an undeclared property is ignored; into a text column it
    # is loaded as its JSON text
    stream = "deep_ok"
    value = nested_object(depth)
    lines = [schema_msg(stream, props), rec(stream, id=1),
             b'{"type": "RECORD", "stream": "deep_ok", "record": {"id": 2, "x": %s, "v": %s}}'
             % (value, value), state(stream, 2)]
    r = run("100,000 levels in an undeclared and a text property",
            write_bytes("deep_ok.singer", b"\n".join(lines) + b"\n"))
    if harness.check_exit_0(problems, "100,000 levels in an undeclared and a text property", r):
        got = table_rows(stream, "id, md5(v) AS m, j")
        want = [{"id": 1, "m": None, "j": None},
                {"id": 2, "m": hashlib.md5(value).hexdigest(), "j": None}]
        if got != want:
            problem("100,000 levels in a text property: rows %r, expected %r" % (got, want))
    # 5,000 levels is within what PostgreSQL's jsonb takes: it loads (and
    # merges again on a second run of the same key)
    stream = "deep_jsonb"
    value = nested_object(5000, b'"leaf"')
    lines = [schema_msg(stream, props),
             b'{"type": "RECORD", "stream": "deep_jsonb", "record": {"id": 1, "j": %s}}' % value,
             state(stream, 1)]
    path = write_bytes("deep_jsonb.singer", b"\n".join(lines) + b"\n")
    for attempt in ("first run", "second run (upsert)"):
        label = "5,000 levels in a jsonb column, %s" % attempt
        r = run(label, path)
        if not harness.check_exit_0(problems, label, r):
            break
        got = harness.scalar("SELECT md5(j::text) FROM %s"
                             % harness.qualified(SCHEMA, "deep_jsonb"), DB)
        want = hashlib.md5(value.replace(b":", b": ")).hexdigest()
        if got != want:
            problem("%s: the jsonb value read back differs" % label)


def test_deep_schema():
    depth = 100000
    stream = "deepschema"
    prop = b'{"type": "object", "properties": {"a": ' * depth + b'{"type": "string"}' + \
        b"}}" * depth
    bad = b'{"type": "SCHEMA", "stream": "deepschema_b", "key_properties": [], ' \
          b'"schema": {"type": "object", "properties": {"id": {"type": "integer"}, "p": ' + \
          prop + b"}}}"
    bad_case("SCHEMA nested 100,000 levels deep", stream, ID, {"id": 1}, bad,
             names=('"deepschema_b"',))
    # nested a little less deep than jansson's parse limit (2,048): the
    # objects past flattening_max_depth stay one jsonb column
    depth = 1000
    prop = b'{"type": "object", "properties": {"a": ' * depth + b'{"type": "string"}' + \
        b"}}" * depth
    lines = [b'{"type": "SCHEMA", "stream": "deepschema_ok", "key_properties": ["id"], '
             b'"schema": {"type": "object", "properties": {"id": {"type": "integer"}, "p": ' +
             prop + b"}}}",
             b'{"type": "RECORD", "stream": "deepschema_ok", "record": {"id": 1, "p": ' +
             nested_object(depth, b'"x"') + b"}}"]
    label = "SCHEMA nested 1,000 levels deep"
    r = run(label, write_bytes("deepschema_ok.singer", b"\n".join(lines) + b"\n"))
    if harness.check_exit_0(problems, label, r):
        cols = harness.columns(SCHEMA, "deepschema_ok", DB)
        want = {"id": "bigint", "p" + "__a" * 10: "jsonb", "__loaded_at": "timestamp with time zone"}
        if cols != want:
            problem("%s: columns %r, expected %r" % (label, cols, want))
        elif harness.count_rows(SCHEMA, "deepschema_ok", DB) != 1:
            problem("%s: expected 1 row" % label)


# --- size ------------------------------------------------------------------------------

def test_big_string():
    """~40 MB of text with escapes of every kind, in a keyed stream."""
    unit = 'plain text, "quoted", back\\slash, tab\t, newline\n, cr\r, \\N, é, 漢, 😀, \x01 '
    n = 40 * 1024 * 1024 // len(unit.encode("utf-8"))
    value = unit * n
    vbytes = value.encode("utf-8")
    stream = "big"
    path = os.path.join(TMP, "big.singer")
    with open(path, "wb") as f:
        f.write(schema_msg(stream, dict(ID, v={"type": "string"})) + b"\n")
        # ensure_ascii: \uXXXX escapes and surrogate pairs for the non-ASCII
        f.write(json.dumps({"type": "RECORD", "stream": stream,
                                    "record": {"id": 1, "v": value}}).encode("ascii") + b"\n")
        f.write(rec(stream, id=2, v="small") + b"\n" + state(stream, 2) + b"\n")
    label = "a %d-byte string" % len(vbytes)
    started = time.time()
    r = run(label, path, timeout=120)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{stream: 2}])
    got = table_rows(stream, "id, octet_length(v) AS o, char_length(v) AS c, md5(v) AS m")
    want = [{"id": 1, "o": len(vbytes), "c": len(value), "m": hashlib.md5(vbytes).hexdigest()},
            {"id": 2, "o": 5, "c": 5, "m": hashlib.md5(b"small").hexdigest()}]
    if got != want:
        problem("%s: read back %r, expected %r" % (label, got, want))
    os.unlink(path)
    return time.time() - started


def test_wide_schema():
    # 2,000 flat properties: more than PostgreSQL's 1,600 columns per table
    stream = "wide"
    props = {"p%04d" % i: {"type": ["null", "integer"]} for i in range(2000)}
    props["id"] = {"type": "integer"}
    bad = j({"type": "SCHEMA", "stream": "wide_b", "key_properties": ["id"],
             "schema": {"type": "object", "properties": props}})
    msg = bad_case("SCHEMA with 2,000 flat properties", stream, ID, {"id": 1}, bad,
                   names=('"wide_b"', "1600"))
    if harness.table_exists(SCHEMA, "wide_b", DB):
        problem("SCHEMA with 2,000 flat properties: a table was created")
    del msg
    # 2,000 properties in 20 objects of 100: flattening would pass the
    # 400-column budget, so the objects stay jsonb columns and it loads
    stream = "wide_nested"
    props = {"o%02d" % k: {"type": "object", "properties": {
        "p%03d" % i: {"type": ["null", "integer"]} for i in range(100)}} for k in range(20)}
    props["id"] = {"type": "integer"}
    record = {"o%02d" % k: {"p%03d" % i: k * 1000 + i for i in range(100)} for k in range(20)}
    record["id"] = 1
    lines = [j({"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
                "schema": {"type": "object", "properties": props}}),
             j({"type": "RECORD", "stream": stream, "record": record}), state(stream, 1)]
    label = "SCHEMA with 2,000 properties in 20 objects"
    r = run(label, write_bytes("wide_nested.singer", b"\n".join(lines) + b"\n"))
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{stream: 1}])
    cols = harness.columns(SCHEMA, stream, DB)
    want = {"o%02d" % k: "jsonb" for k in range(20)}
    want.update(id="bigint", __loaded_at="timestamp with time zone")
    if cols != want:
        problem("%s: columns %r, expected %r" % (label, cols, want))
        return
    got = harness.scalar("SELECT (o07->>'p042')::int + (o19->>'p099')::int FROM %s"
                         % harness.qualified(SCHEMA, stream), DB)
    if got != str(7042 + 19099):
        problem("%s: values read back %r, expected %r" % (label, got, 7042 + 19099))


# --- empty and cut-off input ------------------------------------------------------------

def test_empty_pipe():
    r = run("empty input through a pipe", stdin_bytes=b"")
    if harness.check_exit_0(problems, "empty input through a pipe", r) and r.stdout != "":
        problem("empty input through a pipe: stdout %r, expected nothing" % r.stdout)


def cut_input(stream):
    """SCHEMA, 1, STATE 1, 2, STATE 2 (committed one by one), then record 3
    cut off in the middle, without a newline: line 6."""
    full = rec(stream, id=3, v="three")
    return b"".join(line + b"\n" for line in (
        schema_msg(stream, dict(ID, v={"type": "string"})), rec(stream, id=1, v="one"),
        state(stream, 1), rec(stream, id=2, v="two"), state(stream, 2))) + full[:len(full) - 9]


def test_cut_off():
    for via in ("--input", "a pipe"):
        stream = "cut_file" if via == "--input" else "cut_pipe"
        data = cut_input(stream)
        label = "input cut off mid-line (%s)" % via
        if via == "--input":
            r = run(label, write_bytes(stream + ".singer", data))
        else:
            r = run(label, stdin_bytes=data)
        check_fails(label, r, 6, ("invalid JSON",))
        check_committed(label, r, stream, [{stream: 1}, {stream: 2}], [1, 2])
    # default batch size: nothing committed before the cut, nothing on stdout
    stream = "cut_nobatch"
    label = "input cut off mid-line, one pending batch"
    cfg = harness.write_config(os.path.join(TMP, "cfg-nobatch.json"), DB, SCHEMA)
    r = run(label, write_bytes(stream + ".singer", cut_input(stream)), cfg=cfg)
    check_fails(label, r, 6, ("invalid JSON",))
    got = table_rows(stream)
    harness.check_states(problems, label, r.stdout, [])
    if got:
        problem("%s: rows %r committed, expected none" % (label, got))
    # zstd cut in the middle of its frame: 2,000 records of ~300 bytes are
    # several 128 kB blocks, so the lines of the first blocks arrive and their
    # batches (100 rows) commit; the error says how far the input was read
    if not shutil.which("zstd"):
        problem("the zstd command-line program is needed")
        return
    stream = "cut_zstd"
    lines = [schema_msg(stream, dict(ID, v={"type": "string"}))]
    for i in range(1, 2001):
        lines.append(rec(stream, id=i, v="%05d " % i + hashlib.sha256(b"%d" % i).hexdigest() * 4))
        if i % 100 == 0:
            lines.append(state(stream, i))
    plain = write_bytes(stream + ".singer", b"".join(line + b"\n" for line in lines))
    subprocess.run(["zstd", "-q", "-f", "-o", plain + ".zst", plain], check=True,
                   stdin=subprocess.DEVNULL)
    with open(plain + ".zst", "rb") as f:
        comp = f.read()
    label = "zstd input cut off mid-frame"
    cfg = harness.write_config(os.path.join(TMP, "cfg-100.json"), DB, SCHEMA,
                               batch_size_rows=100)
    r = run(label, write_bytes(stream + ".cut.zst", comp[:len(comp) * 3 // 5]), cfg=cfg)
    msg = check_fails(label, r, None, ("zstd", "after line"))
    states = harness.parse_states(problems, label, r.stdout)
    if msg is None or states is None:
        return
    m = re.search(r"after line (\d+)", msg)
    last = states[-1][stream] if states else 0
    if not states or not 0 < last < 2000 or \
            states != [{stream: n} for n in range(100, last + 1, 100)]:
        problem("%s: stdout STATEs %r, expected 100, 200, ... up to a point before the cut"
                % (label, states))
    elif m and not last < int(m.group(1)) < 2000 + 21:
        problem("%s: the error names line %s, but STATE %d was already written"
                % (label, m.group(1), last))
    else:
        check_committed(label, r, stream, states, range(1, last + 1))


def main():
    global DB, TMP, CFG
    DB, TMP = harness.integration_env()
    CFG = harness.write_config(os.path.join(TMP, "bad-input-config.json"), DB, SCHEMA,
                               batch_size_rows=1)
    timings = []
    for test in (test_malformed_json, test_not_an_object, test_missing_envelope_fields,
                 test_record_before_schema, test_keys, test_invalid_schema, test_bad_values,
                 test_number_edges, test_nan_infinity_tokens, test_invalid_utf8, test_lone_surrogates,
                 test_deep_record, test_deep_schema, test_big_string, test_wide_schema,
                 test_empty_pipe, test_cut_off):
        started = time.time()
        test()
        timings.append((time.time() - started, test.__name__))
    if os.environ.get("BAD_INPUT_TIMINGS"):
        for seconds, name in sorted(timings, reverse=True):
            print("# %6.2f s %s" % (seconds, name))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
