#!/usr/bin/env python3
"""Text values arrive byte for byte (docs/contract.md "Loading", Text).

Loads a list of awkward strings -- tabs, newlines, CR, backslashes, the two
characters \\N, a line holding only \\., quotes, emoji given raw and as JSON
surrogate-pair escapes, Greek and CJK, control characters, the empty string,
JSON null and U+0000 -- into

  * a plain text column,
  * a flattened column of a nested object (obj.inner -> obj__inner),
  * an array (jsonb column, compared server-side with jsonb equality),

of a keyed stream (upsert through staging: a first run inserts placeholder
rows, a second run sends a placeholder then the real value per key in one
batch, so the real values go through the in-batch dedupe and ON CONFLICT
update) and of an unkeyed stream (append path).  A third stream is keyed by
the awkward text itself (merge on text keys).  Text is compared as UTF-8
bytes encoded server-side (encode(convert_to(col, 'UTF8'), 'hex')).  U+0000
must arrive as U+FFFD with a warning on stderr naming the stream; '' must
stay '' and JSON null must be NULL.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "text_rt"
KEYED = "text_keyed"
APPEND = "text_append"
problems = []


def problem(msg):
    problems.append(msg)


def jstr(s):
    """A JSON string literal with non-ASCII characters written raw (UTF-8)."""
    return json.dumps(s, ensure_ascii=False)


# (label, JSON text of the value as it appears in the input, expected Python
# value after loading: str, or None for SQL NULL)
CASES = [
    ("tab", jstr("a\tb\t"), "a\tb\t"),
    ("newline", jstr("line1\nline2\n"), "line1\nline2\n"),
    ("cr", jstr("cr\rhere\r\n"), "cr\rhere\r\n"),
    ("backslash", jstr("back\\slash \\\\ end\\"), "back\\slash \\\\ end\\"),
    ("backslash-only", jstr("\\"), "\\"),
    ("backslash-n-chars", jstr("\\n\\t\\r\\b\\f\\v\\0\\x41"), "\\n\\t\\r\\b\\f\\v\\0\\x41"),
    ("literal-\\N", jstr("\\N"), "\\N"),
    ("literal-\\N-inside", jstr("x\\Ny"), "x\\Ny"),
    ("literal-\\.", jstr("\\."), "\\."),
    ("copy-end-marker-line", jstr("before\n\\.\nafter"), "before\n\\.\nafter"),
    ("single-quote", jstr("it's 'quoted'"), "it's 'quoted'"),
    ("double-quote", jstr('say "hi" ""'), 'say "hi" ""'),
    ("sql-ish", jstr("'); DROP TABLE x; --"), "'); DROP TABLE x; --"),
    ("emoji-raw", jstr("smile \U0001F600 \U0001F469\u200d\U0001F4BB"),
     "smile \U0001F600 \U0001F469\u200d\U0001F4BB"),
    ("emoji-surrogate-escape", '"smile \\ud83d\\ude00!"', "smile \U0001F600!"),
    ("escaped-bmp", '"caf\\u00e9 \\u03a9 \\u6f22"', "caf\u00e9 \u03a9 \u6f22"),
    ("greek", jstr("Ελληνικά κείμενο"), "Ελληνικά κείμενο"),
    ("cjk", jstr("漢字かなカナ한국어"), "漢字かなカナ한국어"),
    ("empty", '""', ""),
    ("space", '" "', " "),
    ("null", "null", None),
    ("u0000", '"a\\u0000b"', "a\ufffdb"),
    ("u0000-only", '"\\u0000"', "\ufffd"),
    ("u0001", '"x\\u0001y"', "x\x01y"),
    ("controls", '"\\u0008\\u000b\\u000c\\u001f\\u007f|"', "\x08\x0b\x0c\x1f\x7f|"),
    ("json-escapes", '"\\"\\\\\\/\\b\\f\\n\\r\\t"', "\"\\/\b\f\n\r\t"),
    ("mixed", jstr("\t\\N\n\\.\r'\"\U0001F600Ω漢"), "\t\\N\n\\.\r'\"\U0001F600Ω漢"),
]
N_NUL_VALUES = sum(1 for _, text, _ in CASES if "\\u0000" in text)


def schema_line(stream, keyed):
    msg = {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "v": {"type": ["null", "string"]},
                "obj": {"type": ["null", "object"],
                        "properties": {"inner": {"type": ["null", "string"]}}},
                "arr": {"type": ["null", "array"], "items": {"type": ["null", "string"]}},
            },
        },
        "key_properties": ["id"] if keyed else [],
    }
    return json.dumps(msg)


def record_line(stream, rid, vtext):
    """A RECORD line built from raw JSON text so escapes stay as written."""
    return ('{"type": "RECORD", "stream": %s, "record": {"id": %d, "v": %s, '
            '"obj": {"inner": %s}, "arr": [%s, "tail"]}}' % (json.dumps(stream), rid, vtext,
                                                           vtext, vtext))


def run(cfg, path, label):
    """Loads path; a problem when target-pg did not exit 0."""
    r = harness.run_input(cfg, path)
    harness.check_exit_0(problems, label, r, tail=2000)
    return r


def check_nul_warning(stderr, stream, label):
    """A warning on stderr names the stream and U+0000; not one per value."""
    lines = [l for l in stderr.splitlines()
             if "U+0000" in l and ('"%s"' % stream) in l]
    if not lines:
        problem("%s: no warning on stderr naming stream %s and U+0000 (stderr: %s)"
                % (label, stream, stderr.strip()[-1500:]))
        return
    if not any("warn" in l.lower() for l in lines):
        problem("%s: the U+0000 message for stream %s is not a warning: %r" % (label, stream,
                                                                            lines[0]))
    # "counted and warned once per stream": a first-occurrence warning and an
    # end-of-run count are fine, one warning per value is not.
    if len(lines) > 2 or len(lines) >= 2 * N_NUL_VALUES:
        problem("%s: %d U+0000 warnings for stream %s (expected it warned once): %s"
                % (label, len(lines), stream, " | ".join(lines)))


def hexcol(col):
    return ("CASE WHEN %s IS NULL THEN NULL ELSE encode(convert_to(%s, 'UTF8'), 'hex') END"
            % (col, col))


def check_table(db, stream, label):
    table = harness.qualified(SCHEMA, harness.table_name(stream))
    if not harness.table_exists(SCHEMA, harness.table_name(stream), db):
        problem("%s: table %s does not exist" % (label, table))
        return
    cols = harness.columns(SCHEMA, harness.table_name(stream), db)
    for col, typ in (("v", "text"), ("obj__inner", "text"), ("arr", "jsonb")):
        if cols.get(col) != typ:
            problem("%s: column %s is %s, expected %s (columns: %s)"
                    % (label, col, cols.get(col), typ, ", ".join(cols)))
    if any(c not in cols for c in ("v", "obj__inner", "arr")):
        return

    # expected arrays as jsonb, compared server-side
    values = []
    for i, (_, _, want) in enumerate(CASES, 1):
        arr = json.dumps([want, "tail"], ensure_ascii=True)
        values.append("(%d, %s::jsonb)" % (i, harness.sql_literal(arr)))
    sql = ("SELECT t.id, %s AS v_hex, %s AS inner_hex, t.v IS NULL AS v_null, "
           "t.obj__inner IS NULL AS inner_null, t.arr = e.j AS arr_ok, t.arr::text AS arr_text, "
           "e.j::text AS arr_want "
           "FROM %s t LEFT JOIN (VALUES %s) e(id, j) ON e.id = t.id ORDER BY t.id"
           % (hexcol("t.v"), hexcol("t.obj__inner"), table, ", ".join(values)))
    rows = harness.query_json(sql, db)
    by_id = {}
    for r in rows:
        if r["id"] in by_id:
            problem("%s: id %s appears %s times" % (label, r["id"], "several"))
        by_id[r["id"]] = r
    if len(rows) != len(CASES):
        problem("%s: %d rows, expected %d" % (label, len(rows), len(CASES)))
    for i, (name, _, want) in enumerate(CASES, 1):
        r = by_id.get(i)
        if r is None:
            problem("%s: row for case %s (id %d) missing" % (label, name, i))
            continue
        want_hex = None if want is None else want.encode("utf-8").hex()
        for col, hcol, ncol in (("v", "v_hex", "v_null"), ("obj__inner", "inner_hex",
                                                           "inner_null")):
            if want is None:
                if not r[ncol]:
                    problem("%s: case %s: %s should be NULL, got hex %s"
                            % (label, name, col, r[hcol]))
            elif r[ncol]:
                problem("%s: case %s: %s is NULL, expected %r" % (label, name, col, want))
            elif r[hcol] != want_hex:
                got = bytes.fromhex(r[hcol]).decode("utf-8", "replace")
                problem("%s: case %s: %s = %r (hex %s), expected %r (hex %s)"
                        % (label, name, col, got, r[hcol], want, want_hex))
        if r["arr_ok"] is not True:
            problem("%s: case %s: arr = %s, expected jsonb %s"
                    % (label, name, r["arr_text"], r["arr_want"]))
    # an empty string is not NULL, in both text columns
    n_empty = harness.scalar("SELECT count(*) FROM %s WHERE v = '' AND obj__inner = ''" % table,
                             db)
    want_empty = sum(1 for _, _, w in CASES if w == "")
    if n_empty != str(want_empty):
        problem("%s: %s rows with v = '' and obj__inner = '', expected %d"
                % (label, n_empty, want_empty))
    n_null_loaded = harness.scalar("SELECT count(*) FROM %s WHERE __loaded_at IS NULL" % table,
                                   db)
    if n_null_loaded != "0":
        problem("%s: %s rows without __loaded_at" % (label, n_null_loaded))


def check_text_key(db, tmp, cfg):
    """A keyed stream whose key is the awkward text itself: two records per key
    in one batch, then an update in a second run; one row per key remains,
    the key byte for byte, holding the newest value."""
    S = "text_textkey"
    keyed = [(name, text, want) for name, text, want in CASES if want is not None]
    if len({w for _, _, w in keyed}) != len(keyed):
        problem("test bug: key values not distinct")
    schema = json.dumps({"type": "SCHEMA", "stream": S, "key_properties": ["k"],
                         "schema": {"type": "object",
                                    "properties": {"k": {"type": "string"},
                                                   "v": {"type": ["null", "string"]}}}})
    for run_no in (1, 2):
        lines = [schema]
        for name, text, _ in keyed:
            lines.append('{"type": "RECORD", "stream": "%s", "record": {"k": %s, "v": %s}}'
                         % (S, text, jstr("%s older %d" % (name, run_no))))
        for name, text, _ in keyed:
            lines.append('{"type": "RECORD", "stream": "%s", "record": {"k": %s, "v": %s}}'
                         % (S, text, jstr("%s run %d" % (name, run_no))))
        path = os.path.join(tmp, "textkey-%d.singer" % run_no)
        harness.write_lines(path, lines)
        if run(cfg, path, "text key run %d" % run_no).returncode != 0:
            return
    rows = harness.query_json("SELECT %s AS k, v FROM %s" % (
        hexcol("k"), harness.qualified(SCHEMA, harness.table_name(S))), db)
    got = {}
    for r in rows:
        if r["k"] in got:
            problem("text key: key hex %s appears more than once" % r["k"])
        got[r["k"]] = r["v"]
    want = {w.encode("utf-8").hex(): "%s run 2" % name for name, _, w in keyed}
    for k, v in want.items():
        if got.get(k) != v:
            problem("text key %r (hex %s): v = %r, expected %r"
                    % (bytes.fromhex(k).decode("utf-8"), k, got.get(k), v))
    extra = set(got) - set(want)
    if extra:
        problem("text key: unexpected keys (hex) %s" % sorted(extra))


def load_cases(tmp, cfg, run_no, stream):
    """Run run_no: SCHEMA of KEYED (and of stream), a placeholder record of
    KEYED per case id, then every case's real value into stream, then STATE
    {"run": run_no}."""
    lines = [schema_line(KEYED, True)]
    if stream != KEYED:
        lines.append(schema_line(stream, False))
    for i in range(1, len(CASES) + 1):
        lines.append(record_line(KEYED, i, jstr("placeholder run %d #%d" % (run_no, i))))
    for i, (_, vtext, _) in enumerate(CASES, 1):
        lines.append(record_line(stream, i, vtext))
    lines.append('{"type": "STATE", "value": {"run": %d}}' % run_no)
    path = os.path.join(tmp, "text-run%d.singer" % run_no)
    harness.write_lines(path, lines)
    return run(cfg, path, "run %d" % run_no)


def main():
    db, tmp = harness.integration_env()
    cfg = harness.write_config(os.path.join(tmp, "text-config.json"), db, SCHEMA)

    # run 1: keyed placeholders + the real values appended to the unkeyed stream
    r1 = load_cases(tmp, cfg, 1, APPEND)
    if r1.returncode == 0:
        check_nul_warning(r1.stderr, APPEND, "run 1 (append)")
        if any("U+0000" in l and '"%s"' % KEYED in l for l in r1.stderr.splitlines()):
            problem("run 1: a U+0000 warning names stream %s, which had no U+0000" % KEYED)
        harness.check_states(problems, "run 1", r1.stdout, [{"run": 1}])

    # run 2: per key a placeholder then the real value in the same batch
    # (newest wins in the batch), replacing run 1's rows (ON CONFLICT update)
    r2 = load_cases(tmp, cfg, 2, KEYED)
    if r2.returncode == 0:
        check_nul_warning(r2.stderr, KEYED, "run 2 (keyed)")

    check_text_key(db, tmp, cfg)
    check_table(db, APPEND, "append stream %s" % APPEND)
    check_table(db, KEYED, "keyed stream %s" % KEYED)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
