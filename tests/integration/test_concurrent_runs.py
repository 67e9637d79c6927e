#!/usr/bin/env python3
"""Concurrent runs on the same tables (issue #11 item 4; README "Failure
behaviour", deadlocks).

  (a) Two runs upsert the same 6 keyed tables (2,000 existing keys each) at
      the same moment, one with the streams in order t0..t5, the other in
      order t5..t0, each writing its own values; three rounds.  Before the
      fix the merges locked rows table by table in stream order, so the two
      transactions deadlocked and one run exited 1 (in every round, typically).
      Now each transaction first locks the tables it merges in one stable
      order (the driver's lock_for_merge) and a deadlock that still happens
      is retried.  Expected: both runs exit 0 in every round, and every table
      holds all its keys with the values of one run or the other (a table
      is merged by one transaction, so never a mix).
  (b) A deadlock that target-pg cannot avoid is retried: another session
      updates key 1 of table b and keeps its transaction open; target-pg
      (deadlock_timeout 2 s through PGOPTIONS) merges a, then waits for b;
      the session then updates key 1 of a, closing the cycle (its own
      deadlock_timeout is 10 minutes, so PostgreSQL picks target-pg as the
      victim).  The session commits once target-pg's transaction is gone.
      Expected: exit 0, a warning naming the deadlock and the retry, and
      target-pg's values in both tables.  Before the fix: exit 1.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
N_TABLES, N_KEYS, ROUNDS = 6, 2000, 3
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0


def schema_msg(stream):
    return {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"}}}}


def write_run_input(path, order, tag):
    """Every table's N_KEYS keys with value <tag>, the streams in `order`."""
    msgs = [schema_msg("t%d" % t) for t in order]
    for t in order:
        msgs += [{"type": "RECORD", "stream": "t%d" % t, "record": {"id": k, "v": tag}}
                 for k in range(N_KEYS)]
    msgs.append({"type": "STATE", "value": {"run": tag}})
    harness.write_messages(path, msgs)


def run_pair(cfg, round_no):
    forward, backward = list(range(N_TABLES)), list(reversed(range(N_TABLES)))
    runs = {}
    inputs = {}
    for name, order in (("fwd", forward), ("bwd", backward)):
        inputs[name] = os.path.join(TMP, "%s%d.singer" % (name, round_no))
        write_run_input(inputs[name], order, "%s%d" % (name, round_no))
    start = threading.Barrier(2)

    def go(name):
        start.wait()
        runs[name] = harness.run_input(cfg, inputs[name], timeout=120 * SLOW)

    threads = [threading.Thread(target=go, args=(n,)) for n in ("fwd", "bwd")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return runs


def test_opposite_orders():
    schema = "conc"
    cfg = harness.write_config(os.path.join(TMP, "conc.json"), DB, schema=schema)
    seed = os.path.join(TMP, "seed.singer")
    write_run_input(seed, range(N_TABLES), "seed")
    r = harness.run_input(cfg, seed)
    if not harness.check_exit_0(problems, "seeding the tables", r):
        return
    for round_no in range(1, ROUNDS + 1):
        label = "round %d of two runs in opposite stream order" % round_no
        runs = run_pair(cfg, round_no)
        for name in ("fwd", "bwd"):
            harness.check_exit_0(problems, "%s, run %s" % (label, name), runs[name])
        tags = {"fwd%d" % round_no, "bwd%d" % round_no}
        for t in range(N_TABLES):
            rows = harness.query_json("SELECT v, count(*) AS n, count(DISTINCT id) AS keys, "
                                      "min(id) AS lo, max(id) AS hi FROM %s GROUP BY v"
                                      % harness.qualified(schema, "t%d" % t), DB)
            ok = (len(rows) == 1 and rows[0]["v"] in tags and rows[0]["n"] == N_KEYS and
                  rows[0]["keys"] == N_KEYS and rows[0]["lo"] == 0 and
                  rows[0]["hi"] == N_KEYS - 1)
            if not ok:
                problems.append("%s: table t%d holds %r, expected the %d keys with the values "
                                "of one run" % (label, t, rows, N_KEYS))


class Session:
    """An interactive psql session: run() sends SQL and waits until psql
    has executed it (an \\echo marker after it comes back)."""

    def __init__(self):
        self.p = subprocess.Popen([harness.pg_prog("psql"), "-X", "-q", "-A", "-t", "-d", DB],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.n = 0

    def send(self, sql):
        self.n += 1
        self.p.stdin.write("%s\n\\echo MARK%d\n" % (sql, self.n))
        self.p.stdin.flush()
        return "MARK%d" % self.n

    def wait(self, mark, timeout):
        """Output lines up to mark; None when it did not come in time."""
        got = []
        result = {}

        def read():
            for line in self.p.stdout:
                line = line.rstrip("\n")
                if line == mark:
                    result["done"] = True
                    return
                got.append(line)

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return got if result.get("done") else None

    def run(self, sql, timeout=30):
        return self.wait(self.send(sql), timeout)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def target_waits_for_lock(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = harness.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                           "'target-pg' AND wait_event_type = 'Lock' AND datname = "
                           "current_database()", DB)
        if n != "0":
            return True
        time.sleep(0.05)
    return False


def test_forced_deadlock():
    label = "a deadlock with another session"
    schema = "dl"
    cfg = harness.write_config(os.path.join(TMP, "dl.json"), DB, schema=schema)
    seed = os.path.join(TMP, "dl_seed.singer")
    harness.write_messages(seed, [schema_msg("a"), schema_msg("b"),
                                  {"type": "RECORD", "stream": "a", "record": {"id": 1, "v": "0"}},
                                  {"type": "RECORD", "stream": "b", "record": {"id": 1, "v": "0"}}])
    r = harness.run_input(cfg, seed)
    if not harness.check_exit_0(problems, label + ": seeding", r):
        return
    path = os.path.join(TMP, "dl.singer")
    harness.write_messages(path, [schema_msg("a"), schema_msg("b"),
                                  {"type": "RECORD", "stream": "a", "record": {"id": 1, "v": "t"}},
                                  {"type": "RECORD", "stream": "b", "record": {"id": 1, "v": "t"}},
                                  {"type": "STATE", "value": {"dl": 1}}])
    x = Session()
    try:
        if x.run("BEGIN; SET LOCAL deadlock_timeout = '10min'; "
                 "UPDATE dl.b SET v = 'x' WHERE id = 1;") is None:
            problems.append(label + ": the other session could not lock b")
            return
        env = dict(os.environ, PGOPTIONS="-c deadlock_timeout=%dms" % int(2000 * SLOW))
        p = subprocess.Popen(harness.target_cmd() + ["--config", cfg, "--input", path],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=True)
        if not target_waits_for_lock(30 * SLOW):
            problems.append(label + ": target-pg never waited for the other session's lock")
        # closes the cycle; returns once PostgreSQL ended target-pg's transaction
        closed = x.run("UPDATE dl.a SET v = 'x' WHERE id = 1;", timeout=60 * SLOW)
        if closed is None:
            problems.append(label + ": the other session's update never finished")
        x.run("COMMIT;")
        try:
            out, err = p.communicate(timeout=60 * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            problems.append(label + ": target-pg did not finish")
            return
    finally:
        x.close()
    if p.returncode != 0:
        problems.append("%s: target-pg exit %d: %s" % (label, p.returncode, err.strip()[-1500:]))
        return
    warned = [line for line in err.splitlines() if "deadlock" in line.lower()]
    if not warned or "again" not in warned[0]:
        problems.append("%s: no warning about the deadlock and the retry: %s"
                        % (label, err.strip()[-800:]))
    harness.check_states(problems, label, out, [{"dl": 1}])
    for t in ("a", "b"):
        v = harness.scalar("SELECT v FROM dl.%s WHERE id = 1" % t, DB)
        if v != "t":
            problems.append("%s: dl.%s holds %r for key 1, expected target-pg's 't'"
                            % (label, t, v))


test_opposite_orders()
test_forced_deadlock()
sys.exit(harness.report(problems))
