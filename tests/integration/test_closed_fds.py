#!/usr/bin/env python3
"""Closed standard descriptors (README "Failure behaviour"): target-pg
started with fd 0, 1 or 2 closed first occupies it with /dev/null, so no
file or socket it opens later (config, spool, libpq's connection) can take
its number and receive log lines or STATE.

  (a) `2>&-`: the run loads and exits 0 with its STATE (log lines are lost);
      a failing run still exits 1.  (Before: libpq's socket became fd 2, log
      lines went into the connection and the run hung, deaf to SIGTERM.)
  (b) `>&-`: refused before anything is loaded, exit 2, a message naming
      stdout (STATE would be lost; `>/dev/null` discards it on purpose).
  (c) `<&-` without --input: exit 2 naming stdin (reading /dev/null would
      look like an empty tap); with --input FILE the run is normal.
  (d) `<&- 2>&-` with --input: loads, exit 0, STATE on stdout.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "fds"
TIMEOUT = 60 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 20
problems = []
DB, TMP = harness.integration_env()


class Result:
    def __init__(self, rc, out, err, timed_out):
        self.returncode, self.stdout, self.stderr, self.timed_out = rc, out, err, timed_out


def run_closed(args, closed, stdin_path=None):
    """target-pg with args and the descriptors in `closed` (0, 1, 2) closed;
    the others are pipes (stdin: stdin_path or /dev/null).  Killed after
    TIMEOUT seconds (SIGKILL: a hung run may ignore SIGTERM)."""
    out_path = os.path.join(TMP, "fds.out")
    err_path = os.path.join(TMP, "fds.err")
    with open(stdin_path or os.devnull, "rb") as fin, open(out_path, "wb") as fout, \
            open(err_path, "wb") as ferr:
        def close_them():
            for fd in closed:
                os.close(fd)
        p = subprocess.Popen(harness.target_cmd() + list(args), stdin=fin, stdout=fout,
                             stderr=ferr, preexec_fn=close_them, start_new_session=True)
        try:
            p.wait(timeout=TIMEOUT)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            timed_out = True
    with open(out_path, encoding="utf-8", errors="replace") as f:
        out = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        err = f.read()
    return Result(p.returncode, out, err, timed_out)


def expect(label, r, rc):
    if r.timed_out:
        problems.append("%s: timed out after %d s (killed)" % (label, TIMEOUT))
        return False
    if r.returncode != rc:
        problems.append("%s: exit %s, expected %d (stderr: %s)"
                        % (label, r.returncode, rc, r.stderr.strip()[-600:]))
        return False
    return True


def messages(stream, ids, state):
    return [{"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
             "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                         "v": {"type": "string"}}}}] \
        + [{"type": "RECORD", "stream": stream, "record": {"id": i, "v": "x" * 50}}
           for i in ids] \
        + [{"type": "STATE", "value": state}]


def rows(table):
    if not harness.table_exists(SCHEMA, table, DB):
        return None
    return harness.count_rows(SCHEMA, table, DB)


def main():
    cfg = harness.write_config(os.path.join(TMP, "cfg.json"), DB, SCHEMA)

    # (a) stderr closed: enough records for several log lines and a commit
    src = os.path.join(TMP, "a.singer")
    harness.write_messages(src, messages("a", range(1, 2001), {"a": 1}))
    r = run_closed(["--config", cfg], [2], stdin_path=src)
    if expect("(a) 2>&-", r, 0):
        harness.check_states(problems, "(a) 2>&-", r.stdout, [{"a": 1}])
        if rows("a") != 2000:
            problems.append("(a) 2>&-: table a holds %r rows, expected 2000" % rows("a"))
    bad = os.path.join(TMP, "bad.singer")
    harness.write_lines(bad, ['{"type":"RECORD","stream":"nope","record":{"id":1}}'])
    r = run_closed(["--config", cfg, "--input", bad], [2])
    expect("(a) 2>&- with a RECORD before its SCHEMA", r, 1)

    # (b) stdout closed: refused before loading
    src = os.path.join(TMP, "b.singer")
    harness.write_messages(src, messages("b", range(1, 11), {"b": 1}))
    r = run_closed(["--config", cfg], [1], stdin_path=src)
    if expect("(b) >&-", r, 2):
        if "stdout" not in r.stderr:
            problems.append("(b) >&-: the error does not name stdout: %s" % r.stderr.strip())
    if rows("b") is not None:
        problems.append("(b) >&-: table b was created (%r rows); nothing may load" % rows("b"))

    # (c) stdin closed
    r = run_closed(["--config", cfg], [0])
    if expect("(c) <&- without --input", r, 2) and "stdin" not in r.stderr:
        problems.append("(c) <&-: the error does not name stdin: %s" % r.stderr.strip())
    src = os.path.join(TMP, "c.singer")
    harness.write_messages(src, messages("c", range(1, 6), {"c": 1}))
    r = run_closed(["--config", cfg, "--input", src], [0])
    if expect("(c) <&- --input FILE", r, 0):
        harness.check_states(problems, "(c) <&- --input FILE", r.stdout, [{"c": 1}])
        if rows("c") != 5:
            problems.append("(c) <&- --input FILE: table c holds %r rows, expected 5" % rows("c"))

    # (d) stdin and stderr closed, --input: the config, input and libpq take fds >= 3
    src = os.path.join(TMP, "d.singer")
    harness.write_messages(src, messages("d", range(1, 301), {"d": 1}))
    r = run_closed(["--config", cfg, "--input", src], [0, 2])
    if expect("(d) <&- 2>&- --input FILE", r, 0):
        harness.check_states(problems, "(d) <&- 2>&- --input FILE", r.stdout, [{"d": 1}])
        if rows("d") != 300:
            problems.append("(d): table d holds %r rows, expected 300" % rows("d"))


if __name__ == "__main__":
    main()
    sys.exit(harness.report(problems))
