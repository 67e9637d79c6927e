#!/usr/bin/env python3
"""Thousands of streams in one run (issue #11 item 3; README "Server settings
for big runs").

5,000 keyed streams with one record each, then one STATE, into the test
cluster, whose max_locks_per_transaction is PostgreSQL's default (64; checked
first, the test would prove nothing otherwise).  Before the fix every
stream's staging table and table were locked by the one transaction of the
commit point, and the run failed with "out of shared memory / You might need
to increase max_locks_per_transaction" after ~1,600 streams (~2,500 with
max_connections 100).  Now a transaction takes no more tables than the
server's lock table allows (tables_per_transaction in the driver) and staging
tables live only in their transaction.  Expected: exit 0, every table holds
its record, the STATE written once after everything is committed, and no
temporary table left over in the server (a session's leftover temporary
tables are dropped in one transaction, which fails past the lock table too).
A second run of the same input (all keys exist, nothing changes) loads too.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
N = 5000
SCHEMA = "many"


def write_input(path):
    lines = []
    for i in range(N):
        lines.append(harness.jline({
            "type": "SCHEMA", "stream": "s%04d" % i, "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"}}}}))
    for i in range(N):
        lines.append(harness.jline({"type": "RECORD", "stream": "s%04d" % i,
                                    "record": {"id": i, "v": "value %d" % i}}))
    lines.append(harness.jline({"type": "STATE", "value": {"streams": N}}))
    harness.write_lines(path, lines)


def check_run(label, r):
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{"streams": N}])
    n_tables = int(harness.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = '%s'"
                                  % SCHEMA, DB))
    if n_tables != N:
        problems.append("%s: %d tables in schema %s, expected %d" % (label, n_tables, SCHEMA, N))
    # each table holds exactly its record; 250 tables per statement, each
    # statement its own transaction (one over all tables would itself run
    # out of locks)
    args = [harness.pg_prog("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", DB]
    for start in range(0, N, 250):
        args += ["-c", " UNION ALL ".join(
            "SELECT %d, count(*), min(id), min(v) FROM %s" % (i, harness.qualified(
                SCHEMA, "s%04d" % i)) for i in range(start, min(N, start + 250)))]
    out = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        problems.append("%s: reading the tables failed: %s" % (
            label, out.stderr.decode("utf-8", "replace").strip()[-500:]))
        return
    rows = [line.split("|") for line in out.stdout.decode("utf-8").splitlines() if line]
    wrong = [r[0] for r in rows if r[1:] != ["1", r[0], "value %s" % r[0]]]
    if len(rows) != N or wrong:
        problems.append("%s: %d tables read, %d do not hold exactly their record (e.g. %s)"
                        % (label, len(rows), len(wrong), wrong[:5]))
    temp = harness.scalar("SELECT count(*) FROM pg_class WHERE relpersistence = 't'", DB)
    if temp != "0":
        problems.append("%s: %s temporary tables left in the database after the run"
                        % (label, temp))


locks = harness.scalar("SHOW max_locks_per_transaction", DB)
if locks != "64":
    problems.append("the test cluster has max_locks_per_transaction %s, not the default 64: "
                    "this test needs the default" % locks)
else:
    path = os.path.join(TMP, "many.singer")
    write_input(path)
    cfg = harness.write_config(os.path.join(TMP, "many.json"), DB, schema=SCHEMA)
    r = harness.run_input(cfg, path, timeout=300)
    check_run("5,000 keyed streams, first load", r)
    print("# first load of %d streams: %.1f s" % (N, r.seconds))
    if not problems:
        r = harness.run_input(cfg, path, timeout=300)
        check_run("5,000 keyed streams, same input again", r)
        print("# second load of the same input: %.1f s" % r.seconds)
sys.exit(harness.report(problems))
