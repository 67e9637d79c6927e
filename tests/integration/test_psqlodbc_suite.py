#!/usr/bin/env python3
"""The integration cases that are not PostgreSQL-specific, again through the
ODBC driver and psqlODBC (issue #12 item 5; docs/warehouses.md).

Each file of CASES below runs as a subprocess with TEST_TARGET_DRIVER=
psqlodbc, which makes harness.write_config (and so harness.Scratch) write an
`odbc_connection_string` for the same throwaway server instead of libpq
settings; the checks still read the tables back over libpq.  Each gets its
own fresh database and scratch directory, as tests/run_all.sh gives the
libpq run.  Among them: types and text byte for byte, upserts with absent
properties and hard deletes, schema evolution (widening re-prepares the bulk
INSERT), invalid records refused inside a psqlODBC batch chunk (found by
bisection), ACTIVATE_VERSION and overwrite, names at the 63-byte limit, a
deadlock retried, a connection lost mid-BATCH replayed, and a lost COMMIT
reply answered by txid_status (test_lost_commit's TCP proxy sits between
psqlODBC and the server).

Files left out, and why: test_settings, test_security, test_connect_retry
and test_faults write libpq settings of their own (host, conninfo, sslmode)
or kill backends by libpq's behaviour; test_db_errors reads COPY-specific
messages; test_many_streams, test_bad_input, test_input, test_signals,
test_closed_fds and test_tmpdir exercise the core's reading and process
handling, which does not depend on the driver, and would only add minutes.

Skipped (exit 0 with a note) when psqlODBC is not installed.  Run by
tests/run_all.sh (PG* env, TARGET_PG, TEST_DB, TEST_TMPDIR).
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import warehouse  # noqa: E402

CASES = [
    "test_types.py",
    "test_text_roundtrip.py",
    "test_python_values.py",
    "test_upsert_semantics.py",
    "test_dropped_keys.py",
    "test_target_columns.py",
    "test_schema_evolution.py",
    "test_versions_and_methods.py",
    "test_names.py",
    "test_name_clashes.py",
    "test_batches_and_state.py",
    "test_batch_messages.py",
    "test_invalid_records.py",
    "test_concurrent_runs.py",
    "test_lost_commit.py",
    "test_demo_fixture.py",
]

problems = []
DB, TMP = harness.integration_env()

if "psqlodbc" not in warehouse.names():
    print("# skipped: psqlODBC (odbc-postgresql) is not installed")
    sys.exit(0)

here = os.path.dirname(os.path.abspath(__file__))
for i, case in enumerate(CASES):
    db = "%s_odbc%d" % (DB, i)
    tmp = os.path.join(TMP, "odbc%d" % i)
    os.makedirs(tmp, exist_ok=True)
    harness.createdb(db)
    env = dict(os.environ, TEST_TARGET_DRIVER="psqlodbc", TEST_DB=db, TEST_TMPDIR=tmp)
    started = time.monotonic()
    try:
        r = subprocess.run([sys.executable, os.path.join(here, case)], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        if r.returncode != 0:
            problems += ["%s through psqlODBC: %s" % (case, line)
                         for line in out.splitlines() if line.strip()][:20]
            if not out.strip():
                problems.append("%s through psqlODBC: exit %d" % (case, r.returncode))
    except subprocess.TimeoutExpired:
        problems.append("%s through psqlODBC: no result within 300 s" % case)
    finally:
        harness.dropdb(db)
    print("# %-28s %5.1f s" % (case, time.monotonic() - started))

sys.exit(harness.report(problems))
