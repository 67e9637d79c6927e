#!/usr/bin/env python3
"""Connecting with bounded retries and backoff (src/retry.h, issue #5 item 3).

  (a) nothing listens on the port, connect_retries 2, connect_retry_delay_ms
      100: exit 1 after ~0.3 s (100 + 200 ms of waiting), a warning for
      attempts 1 and 2 of 3, the error names "3 attempts over"; the password
      appears nowhere;
  (b) connect_retries 0: one attempt, no warning, exit 1 at once;
  (b2) SIGTERM while waiting to retry: exit 143 at once, the error says it
      stopped after 1 attempt;
  (c) a server that comes up during the retries (a second throwaway cluster
      from tests/pg.sh, started on a port picked here ~1 s after target-pg):
      the stream is loaded, exit 0, its STATE written;
  (d) failures that waiting cannot fix fail at once, with retries allowed:
      a missing database, a missing role, a bad conninfo, and on the second
      cluster switched to scram-sha-256 for TCP: a wrong password and no
      password at all.  Never a password in the output.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
DB, TMP = harness.integration_env()
# a wrapper such as valgrind slows start-up a lot: allow more time for what
# must happen, never less for what must not
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0
PG_SH = os.path.join(harness.REPO_ROOT, "tests", "pg.sh")
SECRET = "pw-Zq7-never-printed"

# no password from the environment or ~/.pgpass may rescue a test
os.environ.pop("PGPASSWORD", None)
os.environ["PGPASSFILE"] = os.path.join(TMP, "no-such-pgpass")

INPUT = os.path.join(TMP, "in.singer")
harness.write_messages(INPUT, [
    {"type": "SCHEMA", "stream": "items", "key_properties": ["id"],
     "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                 "name": {"type": ["null", "string"]}}}},
    {"type": "RECORD", "stream": "items", "record": {"id": 1, "name": "a"}},
    {"type": "RECORD", "stream": "items", "record": {"id": 2, "name": "b"}},
    {"type": "RECORD", "stream": "items", "record": {"id": 3, "name": "c"}},
    {"type": "STATE", "value": {"done": 3}},
])


def config(name, **settings):
    path = os.path.join(TMP, name + ".json")
    cfg = {"default_target_schema": "retry"}
    cfg.update(settings)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    return path


def timed_run(cfg, timeout=120):
    t0 = time.monotonic()
    r = harness.run_input(cfg, INPUT, timeout=timeout)
    return r, time.monotonic() - t0


def retry_warnings(stderr):
    return [line for line in stderr.splitlines()
            if "warning: cannot connect to PostgreSQL (attempt" in line]


def no_secret(label, r):
    if SECRET in r.stdout or SECRET in r.stderr:
        problems.append("%s: the password appears in the output" % label)


# --- (a) nothing listening: 3 attempts, ~0.3 s ------------------------------------
port = harness.free_port()
cfg = config("unreachable", host="127.0.0.1", port=port, user="postgres", dbname=DB,
             password=SECRET, connect_retries=2, connect_retry_delay_ms=100)
r, took = timed_run(cfg)
label = "(a) unreachable"
if harness.check_exit_1(problems, label, r):
    warns = retry_warnings(r.stderr)
    want = ["(attempt 1 of 3)", "(attempt 2 of 3)"]
    if len(warns) != 2 or any(w not in line for w, line in zip(want, warns)):
        problems.append("%s: expected warnings for attempts 1 and 2 of 3, got %r" % (label, warns))
    if warns and "retrying in 100 ms" not in warns[0]:
        problems.append("%s: first wait not 100 ms: %s" % (label, warns[0]))
    if len(warns) > 1 and "retrying in 200 ms" not in warns[1]:
        problems.append("%s: second wait not 200 ms: %s" % (label, warns[1]))
    if not re.search(r"target-pg: error .*Connection refused.*\(3 attempts over 0\.[2-9] s\)",
                     r.stderr) and SLOW == 1.0:
        problems.append("%s: the error does not name 3 attempts over ~0.3 s: %s"
                        % (label, r.stderr[-800:]))
    if "(3 attempts over" not in r.stderr:
        problems.append("%s: no \"(3 attempts over\" in the error: %s" % (label, r.stderr[-800:]))
    if not 0.28 <= took <= 3.0 * SLOW:
        problems.append("%s: took %.2f s, expected about 0.3 s" % (label, took))
    if r.stdout.strip():
        problems.append("%s: stdout not empty: %r" % (label, r.stdout[:200]))
no_secret(label, r)

# --- (b) connect_retries 0: one attempt ------------------------------------------
cfg = config("once", host="127.0.0.1", port=port, user="postgres", dbname=DB,
             password=SECRET, connect_retries=0, connect_retry_delay_ms=5000)
r, took = timed_run(cfg)
label = "(b) connect_retries 0"
if harness.check_exit_1(problems, label, r):
    if retry_warnings(r.stderr):
        problems.append("%s: retried: %r" % (label, retry_warnings(r.stderr)))
    if "(1 attempt over" not in r.stderr:
        problems.append("%s: error does not say \"(1 attempt over\": %s" % (label, r.stderr[-600:]))
    if took > 2.0 * SLOW:
        problems.append("%s: took %.2f s" % (label, took))
no_secret(label, r)


# --- (b2) SIGTERM while waiting to retry: stop at once, exit 143 --------------------
cfg = config("interrupted", host="127.0.0.1", port=port, user="postgres", dbname=DB,
             password=SECRET, connect_retries=5, connect_retry_delay_ms=10000)
label = "(b2) SIGTERM during the wait"
p = subprocess.Popen(harness.target_cmd() + ["--config", cfg, "--input", INPUT],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     start_new_session=True)
t_sig = None
err_lines = []
for raw in iter(p.stderr.readline, b""):
    line = raw.decode("utf-8", "replace")
    err_lines.append(line)
    if t_sig is None and "retrying in 10.0 s" in line:
        time.sleep(0.3)
        t_sig = time.monotonic()
        p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rc = p.wait()
stderr_b2 = "".join(err_lines)
if t_sig is None:
    problems.append("%s: no retry warning seen: %s" % (label, stderr_b2[-600:]))
else:
    took = time.monotonic() - t_sig
    if rc != 143:
        problems.append("%s: exit %s, expected 143: %s" % (label, rc, stderr_b2[-600:]))
    if took > 1.5 * SLOW:
        problems.append("%s: ended %.1f s after the signal" % (label, took))
    if "SIGTERM received: stopped trying to connect after 1 attempt" not in stderr_b2:
        problems.append("%s: error does not say so: %s" % (label, stderr_b2[-600:]))
if SECRET in stderr_b2:
    problems.append("%s: the password appears in the output" % label)
p.stdout.close()
p.stderr.close()

# --- (c) the server comes up while target-pg retries --------------------------------
def psql2(pgdir, port2, sql):
    env = dict(os.environ, PGHOST=os.path.join(pgdir, "sock"), PGPORT=str(port2),
               PGUSER="postgres", PGDATABASE="postgres", PGCONNECT_TIMEOUT="10")
    out = subprocess.run([harness.pg_prog("psql"), "-X", "-q", "-A", "-t", "-v",
                          "ON_ERROR_STOP=1", "-c", sql], env=env, capture_output=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    if out.returncode != 0:
        raise harness.DbError(out.stderr.decode("utf-8", "replace").strip())
    return out.stdout.decode("utf-8").strip()


PGDIR2 = os.path.join("/tmp", "tgt-retry-%d" % os.getpid())
# a timeout's SIGTERM must still run the finally below, which removes PGDIR2
signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
port2 = harness.free_port()
started = {"ok": False, "out": ""}


def start_second_cluster():
    time.sleep(1.0)
    env = dict(os.environ, TGT_PG_PORT=str(port2))
    p = subprocess.run([PG_SH, "start", PGDIR2], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    started["ok"] = p.returncode == 0
    started["out"] = (p.stdout + p.stderr).decode("utf-8", "replace")


try:
    cfg = config("comes_up", host="127.0.0.1", port=port2, user="postgres", dbname="postgres",
                 connect_retries=8, connect_retry_delay_ms=250)
    th = threading.Thread(target=start_second_cluster, daemon=True)
    t0 = time.monotonic()
    th.start()
    r = harness.run_input(cfg, INPUT, timeout=120)
    took = time.monotonic() - t0
    th.join(120)
    label = "(c) server comes up"
    if not started["ok"]:
        problems.append("%s: tests/pg.sh start failed: %s" % (label, started["out"][-800:]))
    elif "PGPORT=%d " % port2 not in started["out"]:
        problems.append("%s: port %d was taken meanwhile, cannot test: %s"
                        % (label, port2, started["out"][-300:]))
    elif harness.check_exit_0(problems, label, r):
        if not retry_warnings(r.stderr):
            problems.append("%s: loaded without a single retry (took %.1f s)" % (label, took))
        if "connected at attempt" not in r.stderr:
            problems.append("%s: no \"connected at attempt\" line: %s" % (label, r.stderr[-600:]))
        harness.check_states(problems, label, r.stdout, [{"done": 3}])
        try:
            n = psql2(PGDIR2, port2, "SELECT count(*) FROM retry.items")
            if n != "3":
                problems.append("%s: %s rows in retry.items, expected 3" % (label, n))
        except harness.DbError as e:
            problems.append("%s: %s" % (label, e))

    # --- (d) permanent failures: at once, even with retries allowed ------------------
    def expect_at_once(label, cfg, needle):
        r, took = timed_run(cfg)
        if harness.check_exit_1(problems, label, r):
            if retry_warnings(r.stderr):
                problems.append("%s: retried: %r" % (label, retry_warnings(r.stderr)))
            if needle not in r.stderr:
                problems.append("%s: no %r in stderr: %s" % (label, needle, r.stderr[-600:]))
            if "Not retried" not in r.stderr:
                problems.append("%s: no \"Not retried\" DETAIL: %s" % (label, r.stderr[-600:]))
            if took > 2.0 * SLOW:
                problems.append("%s: took %.2f s" % (label, took))
        no_secret(label, r)

    slow_retry = {"connect_retries": 3, "connect_retry_delay_ms": 2000}
    shared = {"host": os.environ["PGHOST"], "port": int(os.environ["PGPORT"])}
    expect_at_once("(d) missing database",
                   config("nodb", user="postgres", dbname="no_such_db_for_retry", **shared,
                          **slow_retry),
                   "database \"no_such_db_for_retry\" does not exist")
    expect_at_once("(d) missing role",
                   config("norole", user="no_such_role_for_retry", dbname=DB, **shared,
                          **slow_retry),
                   "role \"no_such_role_for_retry\" does not exist")
    expect_at_once("(d) bad conninfo",
                   config("badci", conninfo="host=127.0.0.1 port=%d no_such_option=1 "
                          "password=%s" % (port, SECRET), **slow_retry),
                   "invalid connection option")

    if started["ok"]:
        try:
            psql2(PGDIR2, port2, "ALTER ROLE postgres PASSWORD 'right-Pw-1'")
            with open(os.path.join(PGDIR2, "data", "pg_hba.conf"), "w") as f:
                f.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
            psql2(PGDIR2, port2, "SELECT pg_reload_conf()")
            time.sleep(0.3)
            tcp = {"host": "127.0.0.1", "port": port2, "user": "postgres", "dbname": "postgres"}
            expect_at_once("(d) wrong password",
                           config("wrongpw", password=SECRET, **tcp, **slow_retry),
                           "password authentication failed")
            expect_at_once("(d) no password", config("nopw", **tcp, **slow_retry),
                           "no password supplied")
            # and the right one still works through the same path
            r = harness.run_input(config("rightpw", password="right-Pw-1", **tcp, **slow_retry),
                                  INPUT)
            harness.check_exit_0(problems, "(d) right password", r)
        except (OSError, harness.DbError) as e:
            problems.append("(d) setting up password authentication: %s" % e)
finally:
    subprocess.run([PG_SH, "stop", PGDIR2], capture_output=True, stdin=subprocess.DEVNULL,
                   timeout=120)

sys.exit(harness.report(problems))
