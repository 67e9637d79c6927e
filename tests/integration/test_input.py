#!/usr/bin/env python3
"""Reading the input (docs/contract.md "Invocation"; reader).

  * zstd-compressed input (made with the zstd CLI) via stdin and via --input;
  * one record with a 64 MiB string value (a line of more than 64 MiB):
    octet length, character length and md5 compared server-side;
  * blank lines (empty, whitespace-only) skipped, a CRLF line accepted, a last
    line without a newline loaded;
  * message types in other cases ("record", "Schema", "state") accepted;
  * BATCH messages -> exit 1 with an error naming the message type (not
    implemented; ACTIVATE_VERSION is tested in test_versions_and_methods.py);
  * an empty input (stdin, --input file, empty zstd frame) -> exit 0, nothing
    on stdout, no table made;
  * malformed JSON on line 3 -> exit 1, the error names line 3, the records
    before it are not committed.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "input_t"
problems = []
PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def problem(msg):
    problems.append(msg)


def schema_msg(stream, keys=("id",)):
    return harness.jline({"type": "SCHEMA", "stream": stream, "key_properties": list(keys),
                          "schema": {"type": "object", "properties": PROPS}})


def rec(stream, rid, v, mtype="RECORD"):
    return harness.jline({"type": mtype, "stream": stream, "record": {"id": rid, "v": v}})


def zstd(src, dst):
    subprocess.run(["zstd", "-q", "-f", "-o", dst, src], check=True, stdin=subprocess.DEVNULL)


def run_ok(label, args, stdin_path=None, timeout=120):
    """The run of target-pg with args; None (after a problem) unless it exited 0."""
    r = harness.run_target(args, timeout=timeout, stdin_path=stdin_path)
    return r if harness.check_exit_0(problems, label, r) else None


def rows(table, db):
    if not harness.table_exists(SCHEMA, table, db):
        return None
    return [(r["id"], r["v"]) for r in harness.query_json(
        "SELECT id, v FROM %s ORDER BY id" % harness.qualified(SCHEMA, table), db)]


def check_rows(label, table, want, db):
    got = rows(table, db)
    if got is None:
        problem("%s: no table %s.%s" % (label, SCHEMA, table))
    elif got != want:
        problem("%s: %s holds %r, expected %r" % (label, table, got, want))


def check_states(label, r, want):
    """A problem unless run r wrote exactly the STATE values want."""
    harness.check_states(problems, label, r.stdout, want)


def tables_in_db(db):
    return [r["t"] for r in harness.query_json(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1", db)]


def test_zstd(db, tmp, cfg):
    # via --input, then via stdin: a second stream so the result is distinguishable
    for label, stream, n, value, name, via_stdin in (
            ("zstd via --input", "zst", 1000, "row %d ✓", "zst.singer", False),
            ("zstd via stdin", "zst_stdin", 500, "s%d", "zst2.singer", True)):
        lines = [schema_msg(stream)] + [rec(stream, i, value % i) for i in range(1, n + 1)]
        lines.append(harness.jline({"type": "STATE", "value": {stream: n}}))
        plain = os.path.join(tmp, name)
        harness.write_lines(plain, lines)
        comp = plain + ".zst"
        zstd(plain, comp)
        if via_stdin:
            r = run_ok(label, ["--config", cfg], stdin_path=comp)
        else:
            r = run_ok(label, ["--config", cfg, "--input", comp])
        if r:
            check_states(label, r, [{stream: n}])
            check_rows(label, stream, [(i, value % i) for i in range(1, n + 1)], db)
    # two concatenated zstd frames are one zstd stream
    cat = os.path.join(tmp, "two-frames.singer.zst")
    a = os.path.join(tmp, "frame-a.singer")
    b = os.path.join(tmp, "frame-b.singer")
    harness.write_lines(a, [schema_msg("frames"), rec("frames", 1, "a")])
    harness.write_lines(b, [rec("frames", 2, "b"), harness.jline({"type": "STATE", "value": 2})])
    zstd(a, a + ".zst")
    zstd(b, b + ".zst")
    with open(cat, "wb") as out:
        for p in (a + ".zst", b + ".zst"):
            with open(p, "rb") as f:
                out.write(f.read())
    r = run_ok("two zstd frames", ["--config", cfg, "--input", cat])
    if r:
        check_states("two zstd frames", r, [2])
        check_rows("two zstd frames", "frames", [(1, "a"), (2, "b")], db)


def test_big_line(db, tmp, cfg):
    size = 64 * 1024 * 1024
    unit = "abcdefghijklmnopqrstuvwxyz0123456789 \t\\\"/Ω漢😀\n\r\\N\\."
    ub = len(unit.encode("utf-8"))
    n = size // ub
    value = unit * n + "x" * (size - n * ub)
    vbytes = value.encode("utf-8")
    assert len(vbytes) == size
    md5 = hashlib.md5(vbytes).hexdigest()
    path = os.path.join(tmp, "big.singer")
    with open(path, "w", encoding="utf-8") as f:
        f.write(schema_msg("big", keys=()) + "\n")
        f.write(rec("big", 1, value) + "\n")
        f.write(rec("big", 2, "small") + "\n")
        f.write(harness.jline({"type": "STATE", "value": {"big": True}}) + "\n")
    line_len = len(rec("big", 1, value).encode("utf-8"))
    del value
    r = run_ok("64 MiB value (line of %d bytes)" % line_len,
               ["--config", cfg, "--input", path], timeout=300)
    if not r:
        return
    check_states("64 MiB value", r, [{"big": True}])
    if not harness.table_exists(SCHEMA, "big", db):
        problem("64 MiB value: no table big")
        return
    got = harness.query_json(
        "SELECT id, octet_length(v) AS o, char_length(v) AS c, md5(v) AS m FROM %s ORDER BY id"
        % harness.qualified(SCHEMA, "big"), db)
    want = [{"id": 1, "o": size, "c": len(unit) * n + (size - n * ub), "m": md5},
            {"id": 2, "o": 5, "c": 5, "m": hashlib.md5(b"small").hexdigest()}]
    if got != want:
        problem("64 MiB value: read back %r, expected %r" % (got, want))
    os.unlink(path)


def test_lines(db, tmp, cfg):
    # blank lines, whitespace-only lines, a CRLF line, no newline at the end
    text = ("\n" + schema_msg("lines") + "\n\n   \n\t\n" + rec("lines", 1, "one") + "\r\n"
            + "\n" + rec("lines", 2, "two") + "\n\n"
            + harness.jline({"type": "STATE", "value": {"lines": 2}}) + "\n"
            + rec("lines", 3, "last line, no newline"))
    path = os.path.join(tmp, "lines.singer")
    harness.write_text(path, text)
    r = run_ok("blank lines / no final newline", ["--config", cfg, "--input", path])
    if r:
        check_rows("blank lines / no final newline", "lines",
                   [(1, "one"), (2, "two"), (3, "last line, no newline")], db)
        check_states("blank lines / no final newline", r, [{"lines": 2}])
    # the same through stdin, the last line a STATE without newline
    text = schema_msg("lines_stdin") + "\n" + rec("lines_stdin", 1, "x") + "\n\n" + \
        harness.jline({"type": "STATE", "value": "final"})
    path = os.path.join(tmp, "lines2.singer")
    harness.write_text(path, text)
    r = run_ok("stdin, STATE without final newline", ["--config", cfg], stdin_path=path)
    if r:
        check_rows("stdin, STATE without final newline", "lines_stdin", [(1, "x")], db)
        check_states("stdin, STATE without final newline", r, ["final"])


def test_case_insensitive_types(db, tmp, cfg):
    lines = [harness.jline({"type": "Schema", "stream": "lower", "key_properties": ["id"],
                            "schema": {"type": "object", "properties": PROPS}}),
             rec("lower", 1, "a", mtype="record"),
             rec("lower", 2, "b", mtype="Record"),
             rec("lower", 3, "c", mtype="RECORD"),
             harness.jline({"type": "state", "value": {"lower": 3}})]
    path = os.path.join(tmp, "lower.singer")
    harness.write_lines(path, lines)
    r = run_ok("message types in lower/mixed case", ["--config", cfg, "--input", path])
    if r:
        check_rows("message types in lower/mixed case", "lower", [(1, "a"), (2, "b"), (3, "c")],
                   db)
        check_states("message types in lower/mixed case", r, [{"lower": 3}])


def expect_failure(label, args, stdin_path=None, must_name=(), line=None):
    r = harness.run_target(args, timeout=120, stdin_path=stdin_path)
    if not harness.check_exit_1(problems, label, r):
        return r
    errs = "\n".join(harness.lines_mentioning(r.stderr, "error"))
    if not errs:
        problem("%s: no error message on stderr (stderr: %s)" % (label, r.stderr.strip()[-800:]))
    for word in must_name:
        if word not in errs:
            problem("%s: the error does not name %s: %s" % (label, word, errs[-800:]))
    if line is not None and not re.search(r"\bline %d\b" % line, errs):
        problem("%s: the error does not name line %d: %s" % (label, line, errs[-800:]))
    return r


def test_unsupported(db, tmp, cfg):
    for mtype, extra in (("BATCH", {"stream": "unsup", "encoding": {"format": "jsonl",
                                                                     "compression": "gzip"},
                                    "manifest": ["file:///tmp/nothing.jsonl.gz"]}),):
        msg = dict({"type": mtype}, **extra)
        lines = [schema_msg("unsup"), rec("unsup", 1, "before"), harness.jline(msg),
                 rec("unsup", 2, "after"), harness.jline({"type": "STATE", "value": mtype})]
        path = os.path.join(tmp, "unsup-%s.singer" % mtype)
        harness.write_lines(path, lines)
        r = expect_failure("%s message" % mtype, ["--config", cfg, "--input", path],
                           must_name=(mtype,), line=3)
        if r.stdout.strip():
            problem("%s message: stdout %r, expected no STATE" % (mtype, r.stdout.strip()))


def test_empty(db, tmp, cfg):
    before = tables_in_db(db)
    empty = os.path.join(tmp, "empty.singer")
    harness.write_text(empty, "")
    blank = os.path.join(tmp, "blank.singer")
    harness.write_text(blank, "\n\n  \n")
    zst = os.path.join(tmp, "empty.singer.zst")
    zstd(empty, zst)
    for label, args, stdin in (("empty stdin", ["--config", cfg], None),
                               ("empty --input file", ["--config", cfg, "--input", empty], None),
                               ("blank-lines-only input", ["--config", cfg], blank),
                               ("empty zstd input", ["--config", cfg, "--input", zst], None),
                               ("empty zstd via stdin", ["--config", cfg], zst)):
        r = run_ok(label, args, stdin_path=stdin)
        if r and r.stdout != "":
            problem("%s: stdout %r, expected nothing" % (label, r.stdout))
    after = tables_in_db(db)
    if after != before:
        problem("empty input made tables: %s" % sorted(set(after) - set(before)))


def test_malformed(db, tmp, cfg):
    lines = [schema_msg("malformed", keys=()), rec("malformed", 1, "ok"),
             '{"type": "RECORD", "stream": "malformed", "record": {"id": 2, "v": "x"',
             rec("malformed", 3, "after"), harness.jline({"type": "STATE", "value": 1})]
    path = os.path.join(tmp, "malformed.singer")
    harness.write_lines(path, lines)
    r = expect_failure("malformed JSON on line 3", ["--config", cfg, "--input", path], line=3)
    if r.stdout.strip():
        problem("malformed JSON: stdout %r, expected no STATE" % r.stdout.strip())
    got = rows("malformed", db)
    if got:
        problem("malformed JSON on line 3: rows %r committed, expected none" % got)
    # the same through stdin, zstd-compressed
    zst = path + ".zst"
    zstd(path, zst)
    expect_failure("malformed JSON on line 3 (zstd, stdin)", ["--config", cfg],
                   stdin_path=zst, line=3)
    # not a JSON object
    lines = [schema_msg("malformed2", keys=()), rec("malformed2", 1, "ok"), "[1, 2, 3]"]
    path = os.path.join(tmp, "malformed2.singer")
    harness.write_lines(path, lines)
    expect_failure("a JSON array on line 3", ["--config", cfg, "--input", path], line=3)


def main():
    db, tmp = harness.integration_env()
    if not shutil.which("zstd"):
        print("the zstd command-line program is needed")
        return 1
    cfg = harness.write_config(os.path.join(tmp, "input-config.json"), db, SCHEMA)
    test_empty(db, tmp, cfg)
    test_zstd(db, tmp, cfg)
    test_lines(db, tmp, cfg)
    test_case_insensitive_types(db, tmp, cfg)
    test_unsupported(db, tmp, cfg)
    test_malformed(db, tmp, cfg)
    test_big_line(db, tmp, cfg)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
