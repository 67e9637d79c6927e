#!/usr/bin/env python3
"""Batches, commits and STATE (docs/contract.md "Commits and STATE": STATE only after every
record before it is committed; batch_size_rows; max_batch_age_seconds).

  (a) batch_size_rows=3, 10 records, STATEs interleaved, fed through a pipe
      written slowly: after SCHEMA + 2 records + STATE s1 and 1.5 s idle no
      STATE is on stdout and no row is committed; once the third record
      crosses batch_size_rows s1 appears and the rows before it are in the
      table (queried while target-pg still runs); stdout is exactly the
      STATEs in commit order, each STATE seen only once its rows are
      committed;
  (b) max_batch_age_seconds=1: records + STATE, pipe kept open and idle 3 s:
      the STATE appears and the rows are committed while target-pg runs;
      and with records trickling in every 0.4 s (never idle for 1 s) rows
      are committed before the input ends;
  (c) at end of input the last STATE is written exactly once (also when the
      last batch was committed before it, and with no records at all);
  (d) upsert: the newest record wins within one batch and across batches
      and runs; composite key of two properties;
  (e) an unkeyed stream appends across two runs (3 + 3 = 6);
  (f) a bad value in the middle: exit 1, the failing batch (of every
      stream) is not committed, stdout holds only STATEs of earlier commits;
  (g) METRIC record_count counters on stderr sum to the records per stream.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "batches"
problems = []
# a wrapper such as valgrind slows target-pg down a lot: wait longer for
# things that must happen (never shorter for things that must not)
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0


def problem(msg):
    problems.append(msg)


def schema_msg(stream, props, keys):
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": props}}


def rec(stream, **record):
    return {"type": "RECORD", "stream": stream, "record": record}


def state(value):
    return {"type": "STATE", "value": value}


SIMPLE = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def rows_committed(table, db, where=""):
    """Rows visible to another session (committed); 0 when no table yet."""
    if not harness.table_exists(SCHEMA, table, db):
        return 0
    return int(harness.scalar("SELECT count(*) FROM %s %s"
                              % (harness.qualified(SCHEMA, table), where), db))


class Live(harness.LiveTarget):
    """target-pg fed through a pipe we write to; stdout and stderr read by
    threads so we can watch STATE lines appear while it runs, each with the
    monotonic time it was read.  Used as a context manager: target-pg is
    killed if it still runs when the block ends."""

    def __init__(self, cfg):
        super().__init__(cfg, stamped=True)

    def send(self, msgs):
        try:
            for m in msgs:
                self.p.stdin.write((harness.jline(m) + "\n").encode("utf-8"))
            self.p.stdin.flush()
            return True
        except BrokenPipeError:
            problem("target-pg closed its stdin early (exit %s): %s"
                    % (self.p.poll(), self.stderr()[-1500:]))
            return False

    def states(self):
        vals = []
        for _, line in list(self.out):
            if line.strip():
                try:
                    vals.append(json.loads(line))
                except ValueError:
                    vals.append(("not JSON", line))
        return vals

    def wait_state(self, value, timeout):
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end:
            if value in self.states():
                return True
            if self.p.poll() is not None:
                time.sleep(0.2)
                return value in self.states()
            time.sleep(0.02)
        return False

    def running(self):
        return self.p.poll() is None

    def finish(self, timeout=60):
        self.close_stdin()
        try:
            self.p.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            problem("target-pg did not exit %d s after its input ended" % (timeout * SLOW))
            self.kill()
        self.join()
        return self.p.returncode


def metric_counts(stderr):
    """{stream: summed record_count} from METRIC lines; problems for bad ones."""
    counts = {}
    for line in stderr.splitlines():
        if not line.startswith("METRIC: "):
            if "METRIC" in line:
                problem("a line mentions METRIC but is not 'METRIC: {...}': %r" % line)
            continue
        try:
            m = json.loads(line[len("METRIC: "):])
        except ValueError:
            problem("METRIC line is not JSON: %r" % line)
            continue
        if not isinstance(m, dict) or "metric" not in m or "type" not in m:
            problem("METRIC line without type/metric: %r" % line)
            continue
        if m["metric"] != "record_count":
            continue
        if m.get("type") != "counter":
            problem("record_count METRIC has type %r, expected counter" % m.get("type"))
        tags = m.get("tags") or {}
        if "stream" not in tags:
            problem("record_count METRIC without tags.stream: %r" % line)
            continue
        v = m.get("value")
        if not isinstance(v, int) or isinstance(v, bool):
            problem("record_count METRIC value is not an integer: %r" % line)
            continue
        counts[tags["stream"]] = counts.get(tags["stream"], 0) + v
    return counts


def check_metrics(label, stderr, want):
    got = metric_counts(stderr)
    if got != want:
        problem("%s: METRIC record_count per stream %r, expected %r" % (label, got, want))


def run_file(cfg, path, msgs):
    """Writes msgs to path and loads it."""
    harness.write_messages(path, msgs)
    return harness.run_input(cfg, path)


def need_ok(label, r):
    """False (after a problem) when run r did not exit 0."""
    return harness.check_exit_0(problems, label, r)


def parse_states(label, stdout):
    """The STATE values on stdout; None (after a problem) when not all JSON."""
    return harness.parse_states(problems, label, stdout)


# --- (a) -------------------------------------------------------------------------

def case_a(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "a.json"), db, SCHEMA, batch_size_rows=3)
    S = "slow"
    rc = None
    with Live(cfg) as live:
        if not live.send([schema_msg(S, SIMPLE, []), rec(S, id=1, v="r1"), rec(S, id=2, v="r2"),
                          state({"s": 1})]):
            return
        time.sleep(1.5)
        if live.states():
            problem("(a) STATE on stdout after 2 records of batch_size_rows=3 and 1.5 s idle: %r"
                    % live.states())
        n = rows_committed(S, db)
        if n != 0:
            problem("(a) %d rows committed before batch_size_rows (3) was reached" % n)
        if not live.running():
            problem("(a) target-pg exited while its stdin was open (exit %s): %s"
                    % (live.p.returncode, live.stderr()[-1500:]))
            return

        # the third record crosses batch_size_rows: commit, then s1
        live.send([rec(S, id=3, v="r3")])
        if not live.wait_state({"s": 1}, 10):
            problem("(a) STATE s1 did not appear after the batch of 3 rows was full (stdout %r)"
                    % live.states())
        else:
            n = rows_committed(S, db)
            if n < 2:
                problem("(a) STATE s1 on stdout but only %d of the 2 rows before it committed" % n)
            if not live.running():
                problem("(a) target-pg exited early")
        # r4 s2a r5 s2b r6 | commit -> s2b (s2a may come too)
        live.send([rec(S, id=4, v="r4"), state({"s": "2a"}), rec(S, id=5, v="r5"),
                   state({"s": "2b"})])
        time.sleep(0.5)
        if any(v not in ({"s": 1},) for v in live.states()):
            problem("(a) STATE of an uncommitted batch on stdout: %r (rows committed: %d)"
                    % (live.states(), rows_committed(S, db)))
        live.send([rec(S, id=6, v="r6")])
        if not live.wait_state({"s": "2b"}, 10):
            problem("(a) STATE s2b did not appear after the second batch (stdout %r)"
                    % live.states())
        elif rows_committed(S, db) < 5:
            problem("(a) STATE s2b on stdout with only %d rows committed (5 before it)"
                    % rows_committed(S, db))
        # r7 s3 r8 r9 | commit -> s3 ; r10 s4 | end -> s4
        live.send([rec(S, id=7, v="r7"), state({"s": 3}), rec(S, id=8, v="r8"),
                   rec(S, id=9, v="r9")])
        if not live.wait_state({"s": 3}, 10):
            problem("(a) STATE s3 did not appear after the third batch (stdout %r)"
                    % live.states())
        elif rows_committed(S, db) < 7:
            problem("(a) STATE s3 on stdout with only %d rows committed (7 before it)"
                    % rows_committed(S, db))
        live.send([rec(S, id=10, v="r10"), state({"s": 4})])
        time.sleep(0.3)
        if {"s": 4} in live.states():
            problem("(a) STATE s4 on stdout before its record was committed (input still open, "
                    "batch of 1 row)")
            if rows_committed(S, db) < 10:
                problem("(a) ... and only %d rows are committed" % rows_committed(S, db))
        rc = live.finish()
    if rc != 0:
        problem("(a) exit %s: %s" % (rc, live.stderr()[-1500:]))
    got = live.states()
    if got not in ([{"s": 1}, {"s": "2b"}, {"s": 3}, {"s": 4}],
                   [{"s": 1}, {"s": "2a"}, {"s": "2b"}, {"s": 3}, {"s": 4}]):
        problem("(a) stdout STATEs %r, expected [s1, (s2a,) s2b, s3, s4] each once in commit "
                "order" % (got,))
    n = rows_committed(S, db)
    if n != 10:
        problem("(a) %d rows after the run, expected 10" % n)
    check_metrics("(a)", live.stderr(), {S: 10})


# --- (b) -------------------------------------------------------------------------

def case_b(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "b.json"), db, SCHEMA, max_batch_age_seconds=1)
    S = "aged"
    rc = None
    with Live(cfg) as live:
        if not live.send([schema_msg(S, SIMPLE, ["id"]), rec(S, id=1, v="x"),
                          rec(S, id=2, v="y"), state({"aged": 1})]):
            return
        seen_state = seen_rows = None
        start = time.monotonic()
        while time.monotonic() - start < 3.0 * SLOW:
            if seen_state is None and {"aged": 1} in live.states():
                seen_state = time.monotonic() - start
                n = rows_committed(S, db)
                if n != 2:
                    problem("(b) STATE appeared with %d of 2 rows committed" % n)
            if seen_rows is None and rows_committed(S, db) == 2:
                seen_rows = time.monotonic() - start
            if not live.running():
                problem("(b) target-pg exited while its stdin was open (exit %s): %s"
                        % (live.p.returncode, live.stderr()[-1500:]))
                break
            if seen_state is not None and seen_rows is not None:
                break
            time.sleep(0.05)
        if seen_state is None:
            problem("(b) max_batch_age_seconds=1: no STATE on stdout within %.0f s of idle input"
                    % (3.0 * SLOW))
        if seen_rows is None:
            problem("(b) max_batch_age_seconds=1: the 2 rows were not committed within %.0f s of "
                    "idle input" % (3.0 * SLOW))
        # still running, and a second aged batch works too
        if live.running():
            live.send([rec(S, id=3, v="z"), state({"aged": 2})])
            if not live.wait_state({"aged": 2}, 3.0):
                problem("(b) second STATE not written within 3 s of idle input")
            elif rows_committed(S, db) != 3:
                problem("(b) second STATE written with %d of 3 rows committed"
                        % rows_committed(S, db))
        rc = live.finish()
    if rc != 0:
        problem("(b) exit %s: %s" % (rc, live.stderr()[-1500:]))
    got = live.states()
    if got != [{"aged": 1}, {"aged": 2}]:
        problem("(b) stdout STATEs %r, expected [{'aged': 1}, {'aged': 2}] (each once)" % (got,))
    check_metrics("(b)", live.stderr(), {S: 3})


def case_b_trickle(db, tmp):
    """max_batch_age_seconds=1 while records trickle in (one every 0.4 s, so
    the input is never idle for a second): rows must still be committed at
    least about once a second, before the input ends."""
    cfg = harness.write_config(os.path.join(tmp, "b2.json"), db, SCHEMA, max_batch_age_seconds=1)
    S = "trickle"
    duration = 4.0 if SLOW == 1.0 else 12.0
    first_commit = None
    rc = None
    with Live(cfg) as live:
        if not live.send([schema_msg(S, SIMPLE, [])]):
            return
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < duration and live.running():
            i += 1
            if not live.send([rec(S, id=i, v="t%d" % i)]):
                return
            time.sleep(0.4)
            if first_commit is None and rows_committed(S, db) > 0:
                first_commit = time.monotonic() - start
        if first_commit is None:
            problem("(b) max_batch_age_seconds=1 with a record every 0.4 s: no row committed "
                    "within %.0f s (%d records sent, input never idle for 1 s)" % (duration, i))
        live.send([state({"trickle": i})])
        rc = live.finish()
    if rc != 0:
        problem("(b trickle) exit %s: %s" % (rc, live.stderr()[-1500:]))
    if rows_committed(S, db) != i:
        problem("(b trickle) %d rows after the run, expected %d" % (rows_committed(S, db), i))
    if live.states() != [{"trickle": i}]:
        problem("(b trickle) stdout STATEs %r, expected [{'trickle': %d}]" % (live.states(), i))


# --- (c) -------------------------------------------------------------------------

def case_c(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "c.json"), db, SCHEMA, batch_size_rows=3)
    S = "endstate"
    # the last batch is committed on reaching batch_size_rows, then the STATE
    msgs = [schema_msg(S, SIMPLE, []), rec(S, id=1), rec(S, id=2), rec(S, id=3),
            state({"end": 1})]
    r = run_file(cfg, os.path.join(tmp, "c1.singer"), msgs)
    if need_ok("(c) full batch then STATE", r):
        st = parse_states("(c) full batch then STATE", r.stdout)
        if st is not None and st != [{"end": 1}]:
            problem("(c) full batch then STATE at end of input: stdout %r, expected exactly "
                    "[{'end': 1}]" % st)
    # two STATEs after the last record: the last one once
    msgs = [schema_msg(S, SIMPLE, []), rec(S, id=4), state({"end": 2}), state({"end": 3})]
    r = run_file(cfg, os.path.join(tmp, "c2.singer"), msgs)
    if need_ok("(c) two STATEs at the end", r):
        st = parse_states("(c) two STATEs at the end", r.stdout)
        if st is not None and st not in ([{"end": 3}], [{"end": 2}, {"end": 3}]):
            problem("(c) two STATEs at the end: stdout %r, expected the last, {'end': 3}, "
                    "exactly once at the end" % st)
    # no records at all
    r = run_file(cfg, os.path.join(tmp, "c3.singer"), [state({"only": True})])
    if need_ok("(c) STATE only", r):
        st = parse_states("(c) STATE only", r.stdout)
        if st is not None and st != [{"only": True}]:
            problem("(c) input of one STATE and no records: stdout %r, expected [{'only': True}]"
                    % st)
    # a STATE value with a big integer, a long decimal and escapes: the value
    # on stdout is the same JSON value (numbers not through a double)
    text = ('{"type": "STATE", "value": {"bookmarks": {"s": {'
            '"big": 123456789012345678901234567890, "dec": 0.10000000000000000000001, '
            '"e": 1e400, "u": "\\u00e9\\ud83d\\ude00 \\"q\\" \\\\", '
            '"ts": "2024-01-01T00:00:00.123456+00:00"}}, "list": [1, null, true]}}')
    path = os.path.join(tmp, "c4.singer")
    harness.write_lines(path, [harness.jline(schema_msg(S, SIMPLE, [])),
                               harness.jline(rec(S, id=5)), text])
    r = harness.run_input(cfg, path)
    if need_ok("(c) exact STATE value", r):
        st = parse_states("(c) exact STATE value", r.stdout)
        want = json.loads(text, parse_float=Decimal)["value"]
        if st is not None and st != [want]:
            problem("(c) STATE value on stdout %r, expected exactly %r" % (st, want))
    n = rows_committed(S, db)
    if n != 5:
        problem("(c) %d rows, expected 5" % n)


# --- (d) -------------------------------------------------------------------------

def case_d(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "d.json"), db, SCHEMA, batch_size_rows=3)
    S, C = "upserted", "composite"
    comp = {"k1": {"type": "integer"}, "k2": {"type": "string"}, "v": {"type": ["null", "string"]}}
    msgs = [schema_msg(S, SIMPLE, ["id"]), schema_msg(C, comp, ["k1", "k2"]),
            # batch 1 of S (3 rows): id 1 twice
            rec(S, id=1, v="a"), rec(S, id=2, v="b"), rec(S, id=1, v="c"),
            # batch 2 of S: id 2 updated across batches, id 1 to NULL, new id 3
            rec(S, id=2, v="b2"), rec(S, id=3, v="d"), rec(S, id=1, v=None),
            # batch 3 of S (end): id 3 twice more
            rec(S, id=3, v="d2"), rec(S, id=3, v="d3"),
            # composite key, duplicates within one batch
            rec(C, k1=1, k2="x", v="first"), rec(C, k1=1, k2="y", v="other"),
            rec(C, k1=1, k2="x", v="second"),
            rec(C, k1=2, k2="x", v="two"), rec(C, k1=1, k2="x", v="third"),
            state({"d": 1})]
    r = run_file(cfg, os.path.join(tmp, "d1.singer"), msgs)
    if need_ok("(d) run 1", r):
        check_metrics("(d) run 1", r.stderr, {S: 8, C: 5})
        check_rows("(d) run 1", S, "id", {1: None, 2: "b2", 3: "d3"}, db)
        check_rows("(d) run 1", C, "k1::text || '/' || k2",
                   {"1/x": "third", "1/y": "other", "2/x": "two"}, db)
    # run 2: updates over existing rows
    msgs = [schema_msg(S, SIMPLE, ["id"]), schema_msg(C, comp, ["k1", "k2"]),
            rec(S, id=2, v="z"), rec(S, id=1, v="back"), rec(S, id=2, v="zz"),
            rec(C, k1=1, k2="y", v="other2"), rec(C, k1=3, k2="x", v="new"),
            state({"d": 2})]
    r = run_file(cfg, os.path.join(tmp, "d2.singer"), msgs)
    if need_ok("(d) run 2", r):
        check_metrics("(d) run 2", r.stderr, {S: 3, C: 2})
        check_rows("(d) run 2", S, "id", {1: "back", 2: "zz", 3: "d3"}, db)
        check_rows("(d) run 2", C, "k1::text || '/' || k2",
                   {"1/x": "third", "1/y": "other2", "2/x": "two", "3/x": "new"}, db)
        pk = [x["attname"] for x in harness.query_json(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = %s::regclass "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)"
            % harness.sql_literal(harness.qualified(SCHEMA, C)), db)]
        if pk != ["k1", "k2"]:
            problem("(d) composite primary key is %r, expected ['k1', 'k2']" % pk)


def check_rows(label, table, key_sql, want, db):
    if not harness.table_exists(SCHEMA, table, db):
        problem("%s: no table %s" % (label, table))
        return
    rows = harness.query_json("SELECT %s AS k, v FROM %s" % (key_sql,
                                                          harness.qualified(SCHEMA, table)), db)
    got = {}
    for r in rows:
        if r["k"] in got:
            problem("%s: %s: key %s appears more than once" % (label, table, r["k"]))
        got[r["k"]] = r["v"]
    if got != want:
        problem("%s: %s holds %r, expected %r (newest record per key)" % (label, table, got,
                                                                          want))


# --- (e) -------------------------------------------------------------------------

def case_e(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "e.json"), db, SCHEMA)
    S = "appended"
    for run in (1, 2):
        msgs = [schema_msg(S, SIMPLE, [])] + [rec(S, id=i, v="run%d" % run) for i in (1, 2, 1)]
        msgs.append(state({"e": run}))
        r = run_file(cfg, os.path.join(tmp, "e%d.singer" % run), msgs)
        if not need_ok("(e) run %d" % run, r):
            return
        check_metrics("(e) run %d" % run, r.stderr, {S: 3})
    rows = harness.query_json("SELECT id, v FROM %s ORDER BY v, id"
                              % harness.qualified(SCHEMA, S), db)
    got = [(x["id"], x["v"]) for x in rows]
    want = sorted([(1, "run1"), (2, "run1"), (1, "run1"), (1, "run2"), (2, "run2"), (1, "run2")],
                  key=lambda t: (t[1], t[0]))
    if got != want:
        problem("(e) unkeyed stream after two runs of 3 records holds %r, expected the 6 "
                "records %r" % (got, want))


# --- (f) -------------------------------------------------------------------------

def case_f(db, tmp):
    cfg = harness.write_config(os.path.join(tmp, "f.json"), db, SCHEMA, batch_size_rows=3)
    A, B = "fail_append", "fail_keyed"
    props = {"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}}
    msgs = [schema_msg(A, props, []), schema_msg(B, props, ["id"]),
            rec(A, id=1, n=1), rec(B, id=1, n=1), rec(A, id=2, n=2), rec(A, id=3, n=3),
            state({"f": 1}),  # A's 3 rows committed (batch full), with B's 1 row
            rec(A, id=4, n=4), rec(B, id=2, n=2), rec(B, id=3, n=3), rec(B, id=4, n=4),
            state({"f": 2}),  # B's 3 pending rows: committed with A's row 4
            rec(A, id=5, n=5), rec(B, id=5, n=5),
            state({"f": 3}),  # nothing committed after this
            rec(A, id=6, n=6),
            {"type": "RECORD", "stream": B, "record": {"id": 6, "n": "not a number"}},  # line 17
            rec(A, id=7, n=7), state({"f": 4})]
    r = run_file(cfg, os.path.join(tmp, "f.singer"), msgs)
    if r.timed_out:
        problem("(f) timed out")
        return
    if r.returncode != 1:
        problem("(f) bad value in the middle: exit %s, expected 1 (stderr: %s)"
                % (r.returncode, r.stderr.strip()[-1000:]))
    if not re.search(r"\bline 17\b", r.stderr):
        problem("(f) the error does not name input line 17: %s" % r.stderr.strip()[-800:])
    st = parse_states("(f)", r.stdout)
    if st is not None:
        allowed = [{"f": 1}, {"f": 2}]
        if any(v not in allowed for v in st) or st != sorted(st, key=allowed.index) or \
                len(set(json.dumps(v) for v in st)) != len(st):
            problem("(f) stdout STATEs %r; only STATEs of earlier commits ({'f': 1}, {'f': 2}), "
                    "in order and once each, may appear" % st)
    a = harness.column_values(SCHEMA, A, "id", db, order_by="id")
    b = harness.column_values(SCHEMA, B, "id", db, order_by="id")
    # two batches were full before the failure: A 1-3 (+ B 1), then B 2-4 (+ A 4)
    if a != [1, 2, 3, 4] or b != [1, 2, 3, 4]:
        problem("(f) committed rows: %s %r, %s %r; expected %r and %r (the earlier batches, "
                "nothing of the failing one)" % (A, a, B, b, [1, 2, 3, 4], [1, 2, 3, 4]))
    counts = metric_counts(r.stderr)
    if counts.get(A, 0) > 4 or counts.get(B, 0) > 4:
        problem("(f) METRIC record_count %r counts records of the failed batch" % counts)


def main():
    db, tmp = harness.integration_env()
    # (b) runs in a thread beside (a): both mostly wait
    threads = [threading.Thread(target=f, args=(db, tmp), daemon=True)
               for f in (case_b, case_b_trickle)]
    for t in threads:
        t.start()
    case_a(db, tmp)
    for t in threads:
        t.join(120)
    for case in (case_c, case_d, case_e, case_f):
        case(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
