#!/usr/bin/env python3
"""Keyed first loads go straight into a new or empty table (issue #14 item 1;
README "Performance", docs/contract.md "Keyed streams").

  (a) An empty table with a primary key (made beforehand, with a statement
      trigger that records each statement writing to it) gets 2,000 keyed
      records in 4 batches: every row arrives by COPY into the table itself,
      no INSERT (no staging table, no merge).  Before: each batch was merged
      (INSERT ... ON CONFLICT).
  (b) A first load into a new table whose batch holds keys twice (a full
      record sent again with newer values, and a partial record that omits
      a property): the direct COPY meets its own key, the batch is sent again
      through staging (an info line says so), the newest record per key wins
      and the partial record keeps the property it omitted from the older
      record.  STATE after the commit as always.
  (c) A second run into that now non-empty table merges as before: changed
      rows change, a partial record keeps the stored values it omits, an
      unchanged row is not touched (same xmin).
  (d) Two loaders start at once on one empty table with overlapping keys:
      another session holds a SHARE lock until both wait for it, so both
      COPY straight in at the same moment; the second to reach a shared key
      waits for the first, meets the key once the first commits, and sends
      its batch again through staging (exactly one of them logs that).  Both
      exit 0; every key is there once; the shared keys hold one loader's
      values throughout.

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
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0
SCHEMA = "fl"
FALLBACK_LINE = "sending the batch again through staging"


def schema_msg(stream):
    return {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"},
                                                        "n": {"type": "integer"}}}}


def record(stream, i, v, n=None, **extra):
    rec = {"id": i, "v": v, "n": i if n is None else n}
    rec.update(extra)
    return {"type": "RECORD", "stream": stream, "record": rec}


def config(name, **extra):
    return harness.write_config(os.path.join(TMP, name + ".json"), DB, schema=SCHEMA, **extra)


def sql(text):
    return harness.psql(text, DB)


def test_direct_into_empty_table():
    label = "(a) empty table with a key"
    sql("CREATE TABLE fl.direct (id bigint PRIMARY KEY, v text, n bigint)")
    sql("CREATE TABLE fl.audit (statement text)")
    sql("CREATE FUNCTION fl.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO fl.audit VALUES (upper(split_part(ltrim(current_query()), ' ', 1))); "
        "RETURN NULL; END $$")
    sql("CREATE TRIGGER audit AFTER INSERT OR UPDATE ON fl.direct "
        "FOR EACH STATEMENT EXECUTE FUNCTION fl.audit()")
    path = os.path.join(TMP, "direct.singer")
    msgs = [schema_msg("direct")]
    for i in range(1, 2001):
        msgs.append(record("direct", i, "v%d" % i))
        if i % 500 == 0:
            msgs.append({"type": "STATE", "value": {"n": i}})
    harness.write_messages(path, msgs)
    r = harness.run_input(config("direct", batch_size_rows=500), path)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout,
                         [{"n": 500}, {"n": 1000}, {"n": 1500}, {"n": 2000}])
    got = harness.scalar("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || "
                         "count(*) FILTER (WHERE v = 'v' || id AND n = id) FROM fl.direct", DB)
    if got != "2000 2000 2000":
        problems.append("%s: rows, keys, right values = %s, expected 2000 2000 2000"
                        % (label, got))
    how = harness.scalar("SELECT string_agg(DISTINCT statement, ',') FROM fl.audit", DB)
    if how != "COPY":
        problems.append("%s: the rows were written by %r statements, expected only COPY "
                        "(straight into the table, no staging and merge)" % (label, how))
    if FALLBACK_LINE in r.stderr:
        problems.append("%s: a batch fell back to staging: %s" % (label, r.stderr[-800:]))


def test_duplicates_in_first_batch():
    label = "(b) new table, a key twice in the batch"
    path = os.path.join(TMP, "dups.singer")
    msgs = [schema_msg("dups")]
    msgs += [record("dups", i, "old%d" % i) for i in range(1, 1001)]
    msgs.append(record("dups", 10, "newer", n=-10))
    # a partial record: v absent, so v keeps the older record's value
    msgs.append({"type": "RECORD", "stream": "dups", "record": {"id": 500, "n": -500}})
    msgs.append({"type": "STATE", "value": {"dups": 1}})
    harness.write_messages(path, msgs)
    r = harness.run_input(config("dups"), path)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"dups": 1}])
    if FALLBACK_LINE not in r.stderr:
        problems.append("%s: no info line %r: %s" % (label, FALLBACK_LINE, r.stderr[-800:]))
    got = harness.scalar("SELECT count(*) || ' ' || count(DISTINCT id) FROM fl.dups", DB)
    if got != "1000 1000":
        problems.append("%s: rows, keys = %s, expected 1000 1000" % (label, got))
    rows = harness.query_json("SELECT id, v, n FROM fl.dups WHERE id IN (9, 10, 500) "
                              "ORDER BY id", DB)
    want = [{"id": 9, "v": "old9", "n": 9}, {"id": 10, "v": "newer", "n": -10},
            {"id": 500, "v": "old500", "n": -500}]
    if rows != want:
        problems.append("%s: rows %r, expected %r (newest record per key, the partial "
                        "record keeping v)" % (label, rows, want))


def test_second_run_merges():
    label = "(c) second run into the now non-empty table"
    before = harness.scalar("SELECT xmin FROM fl.dups WHERE id = 7", DB)
    path = os.path.join(TMP, "second.singer")
    msgs = [schema_msg("dups")]
    msgs += [record("dups", i, "second%d" % i) for i in range(1, 6)]
    msgs.append({"type": "RECORD", "stream": "dups", "record": {"id": 6, "n": 66}})
    msgs.append(record("dups", 7, "old7"))  # unchanged
    msgs.append(record("dups", 1001, "new1001"))
    msgs.append({"type": "STATE", "value": {"second": 1}})
    harness.write_messages(path, msgs)
    r = harness.run_input(config("second"), path)
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"second": 1}])
    rows = harness.query_json("SELECT id, v, n FROM fl.dups WHERE id IN (1, 5, 6, 7, 1001) "
                              "ORDER BY id", DB)
    want = [{"id": 1, "v": "second1", "n": 1}, {"id": 5, "v": "second5", "n": 5},
            {"id": 6, "v": "old6", "n": 66}, {"id": 7, "v": "old7", "n": 7},
            {"id": 1001, "v": "new1001", "n": 1001}]
    if rows != want:
        problems.append("%s: rows %r, expected %r" % (label, rows, want))
    if harness.count_rows(SCHEMA, "dups", DB) != 1001:
        problems.append("%s: %d rows, expected 1001"
                        % (label, harness.count_rows(SCHEMA, "dups", DB)))
    after = harness.scalar("SELECT xmin FROM fl.dups WHERE id = 7", DB)
    if before != after:
        problems.append("%s: the unchanged row 7 was rewritten (xmin %s -> %s)"
                        % (label, before, after))


def waiting_for_lock(n, timeout):
    """True once n target-pg sessions wait for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = harness.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'target-pg' AND wait_event_type = 'Lock' AND datname = "
                             "current_database()", DB)
        if int(got) >= n:
            return True
        time.sleep(0.05)
    return False


def share_lock_held(timeout):
    """True once a session holds the SHARE lock on fl.conc."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = harness.scalar("SELECT count(*) FROM pg_locks WHERE relation = 'fl.conc'::regclass "
                             "AND mode = 'ShareLock' AND granted", DB)
        if got != "0":
            return True
        time.sleep(0.05)
    return False


def test_concurrent_first_loads():
    label = "(d) two loaders, one empty table, overlapping keys"
    sql("CREATE TABLE fl.conc (id bigint PRIMARY KEY, v text, n bigint)")
    inputs = {}
    for tag, keys in (("a", range(0, 2000)), ("b", range(1000, 3000))):
        inputs[tag] = os.path.join(TMP, "conc_%s.singer" % tag)
        harness.write_messages(inputs[tag], [schema_msg("conc")] +
                               [record("conc", i, tag) for i in keys] +
                               [{"type": "STATE", "value": {"run": tag}}])
    cfg = config("conc")
    lock = subprocess.Popen([harness.pg_prog("psql"), "-X", "-q", "-d", DB],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    runs = {}
    try:
        lock.stdin.write("BEGIN; LOCK TABLE fl.conc IN SHARE MODE;\n")
        lock.stdin.flush()
        if not share_lock_held(30 * SLOW):
            problems.append("%s: the other session never locked the table" % label)
            return
        threads = [threading.Thread(target=lambda t=t: runs.__setitem__(
            t, harness.run_input(cfg, inputs[t], timeout=120 * SLOW))) for t in inputs]
        for t in threads:
            t.start()
        if not waiting_for_lock(2, 30 * SLOW):
            problems.append("%s: the two loaders never both waited for the table" % label)
        lock.stdin.write("COMMIT;\n")
        lock.stdin.close()
        for t in threads:
            t.join()
    finally:
        if not lock.stdin.closed:
            lock.stdin.close()  # psql ends, rolling its transaction back
        try:
            lock.wait(timeout=10)
        except subprocess.TimeoutExpired:
            lock.kill()
    for tag in inputs:
        if tag not in runs:
            problems.append("%s: loader %s did not finish" % (label, tag))
            return
        harness.check_exit_0(problems, "%s, loader %s" % (label, tag), runs[tag])
    # both went straight in; the one that met the other's keys sent its batch again
    fell_back = [t for t in inputs if FALLBACK_LINE in runs[t].stderr]
    if len(fell_back) != 1:
        problems.append("%s: loaders %r logged %r, expected exactly one"
                        % (label, fell_back, FALLBACK_LINE))
    got = harness.query_json("SELECT CASE WHEN id < 1000 THEN 'only a' WHEN id >= 2000 "
                             "THEN 'only b' ELSE 'both' END AS keys, v, count(*) AS n "
                             "FROM fl.conc GROUP BY 1, 2 ORDER BY 1, 2", DB)
    shared = [g for g in got if g["keys"] == "both"]
    ok = ([g for g in got if g["keys"] != "both"] ==
          [{"keys": "only a", "v": "a", "n": 1000}, {"keys": "only b", "v": "b", "n": 1000}] and
          len(shared) == 1 and shared[0]["n"] == 1000)
    if not ok:
        problems.append("%s: the table holds %r, expected each loader's own keys with its "
                        "values and the 1,000 shared keys all with one loader's" % (label, got))
    total = harness.scalar("SELECT count(*) || ' ' || count(DISTINCT id) FROM fl.conc", DB)
    if total != "3000 3000":
        problems.append("%s: rows, keys = %s, expected 3000 3000" % (label, total))


def main():
    sql("CREATE SCHEMA fl")
    test_direct_into_empty_table()
    test_duplicates_in_first_batch()
    test_second_run_merges()
    test_concurrent_first_loads()
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
