#!/usr/bin/env python3
"""Fault handling (issue #5; README "Failure behaviour", settings
connect_retries / connect_retry_delay_ms): every RECORD since the last commit
is spooled; when the PostgreSQL connection is lost mid-batch target-pg
reconnects, replays the uncommitted records and carries on.  Outcome: exit 0,
no duplicates for keyed streams, no loss for any stream, STATE still honest
(a STATE reaches stdout only once every record before it is committed).

Every input here uses one shape: a keyed stream (key id, keys repeat) and an
unkeyed stream, each record carrying a "seq" that grows with every record
and a "v" derived from seq; each STATE value is {"pos": <index of the STATE
line in the input>}.  "Covers pos P" means: for every key the table's seq is
at least the newest seq of that key before line P, and every unkeyed record
before line P is in the table.  Each STATE seen on stdout is checked to be
covered by a snapshot of the committed tables taken the moment the line is
read (another session), and all rows must be records that were sent.

  (a) backend terminated mid-batch (batch_size_rows 1000, delay 100 ms):
      the target-pg backend is killed with pg_terminate_backend while rows
      are pending: after a commit, with the rest of the batch sent but not
      committed, and target-pg idle (it has read all its input and waits for
      more, seen in /proc, and its backend waits for it), so the loss never
      hits a COMMIT.  Three times in one run: in the second batch, in a later
      one, and again once target-pg has reconnected and committed its
      replay.  Exit 0; keyed table = exactly the distinct keys with their
      newest record; unkeyed table = every record exactly once (no loss, and
      no duplicates since no COMMIT was hit); stdout = increasing STATEs,
      each covered when it appeared, the last line the last STATE sent.
  (a2) lost again during the replay: after a termination with rows
      pending another session locks the unkeyed table (SHARE mode, which
      blocks COPY), so target-pg's replay after its reconnect waits for the
      lock; that backend is terminated too, then the lock is released.
      Nothing was committed by the interrupted replay: same expectations
      as (a) (exit 0, exact tables, honest STATEs).
  (b) server restarted mid-batch (`pg_ctl restart -m fast` of a cluster of
      our own, twice in one run, each time with rows pending;
      connect_retries 8 so a slow restart cannot exhaust the retries):
      same expectations as (a).
  (c) kill -9 loop on the shared cluster: a deterministic input of 20,000
      keyed records (3,000 keys, newest wins) + 5,000 unkeyed records with a
      STATE every 500 records; batch_size_rows 700 (commits fall at other
      places than the STATEs).  An uninterrupted calibration run first
      (checked exactly too) times the input.  Then 12 rounds: target-pg is
      fed the SCHEMA lines and the input after the last STATE it emitted and
      is killed (SIGKILL to its process group) at a random moment (seeded
      RNG; the seed is printed; FAULTS_SEED=N repeats a run; the moments are
      spread so the rounds cover the input), or right after / shortly after
      its k-th STATE line in every fourth round.  After each kill the
      committed tables must cover the last STATE the round printed, and
      every row must be a record sent.  Finally a run from the last STATE to the end: exit
      0, last stdout line = the input's last STATE, keyed table exactly the
      newest record per key, every unkeyed record present (count >= sent).
      Duplicates are allowed only there, and only for rows committed before
      a kill but after the last STATE line the killed run printed (records
      after a STATE that went out with a full batch, or a commit whose STATE
      line the kill cut off): the next round starts at that STATE and sends
      them again; a keyed stream absorbs this, an unkeyed one cannot.
  (d) server stopped mid-run and not restarted (our own cluster,
      connect_retries 2, delay 100 ms) while target-pg has pending rows:
      exit 1 within a few seconds of the end of its input, an error line that
      says the connection was lost and how many attempts were made, and
      stdout holds only STATEs whose rows were committed (checked once the
      cluster is started again).

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line, notes
start with "#".  (b) and (d) need a cluster that may be restarted and
stopped, so they start their own with tests/pg.sh (under /tmp: as root the
cluster directory is handed to the postgres user, who cannot enter the
run_all.sh scratch directory) and remove it at the end.
"""

import array
import atexit
import fcntl
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
SLOW = 8.0 if os.environ.get("TARGET_PG_WRAPPER", "").strip() else 1.0
KEYED, UNKEYED = "fk", "fu"
PG_SH = os.path.join(harness.REPO_ROOT, "tests", "pg.sh")
TERMINATE_SQL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'target-pg' AND datname = current_database()")

_live = []  # every target-pg we started, killed at exit if still running
_clusters = []  # directories of clusters we started, stopped at exit
T0 = time.monotonic()


def problem(msg):
    problems.append(msg)


def note(msg):
    print("# [%5.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


# --- databases -------------------------------------------------------------------

class Db:
    """One database on one server, reached through psql with its own PG*
    variables (the shared cluster of run_all.sh or a cluster of our own)."""

    def __init__(self, host, port, dbname, user="postgres"):
        self.host, self.port, self.dbname, self.user = host, int(port), dbname, user

    def env(self, dbname=None):
        return dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user,
                    PGDATABASE=dbname or self.dbname, PGCONNECT_TIMEOUT="5")

    def psql(self, sql, dbname=None, timeout=30):
        try:
            r = subprocess.run([harness.pg_prog("psql"), "-X", "-q", "-A", "-t", "-v",
                                "ON_ERROR_STOP=1", "-c", sql], capture_output=True,
                               env=self.env(dbname), stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise harness.DbError("psql timed out after %d s: %s" % (timeout, sql[:200]))
        if r.returncode != 0:
            raise harness.DbError("psql failed (exit %d): %s" % (
                r.returncode, r.stderr.decode("utf-8", "replace").strip()))
        return r.stdout.decode("utf-8")

    def query(self, sql):
        return json.loads(self.psql("SELECT coalesce(json_agg(q), '[]'::json) FROM (%s) q"
                                    % sql))

    def scalar(self, sql):
        return self.psql(sql).rstrip("\n")

    def config(self, path, schema, **extra):
        cfg = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname,
               "default_target_schema": schema}
        cfg.update(extra)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        return path

    def terminate(self):
        """pg_terminate_backend of every target-pg session of this database;
        how many were signalled."""
        return self.scalar(TERMINATE_SQL).split().count("t")

    def target_pids(self):
        return set(self.scalar("SELECT pid FROM pg_stat_activity WHERE application_name = "
                               "'target-pg' AND datname = current_database()").split())


class Cluster:
    """A cluster of our own (tests/pg.sh start), which may be restarted and
    stopped; remove() stops it and deletes its directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tgt-faults-", dir="/tmp")
        _clusters.append(self.dir)
        r = subprocess.run(["bash", PG_SH, "start", self.dir], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        if r.returncode != 0:
            raise harness.DbError("tests/pg.sh start %s failed: %s" % (
                self.dir, r.stderr.decode("utf-8", "replace").strip()[-1500:]))
        env = dict(re.findall(r"(\w+)=(\S+)", r.stdout.decode()))
        self.host, self.port = env["PGHOST"], int(env["PGPORT"])
        bindir = harness.pg_bindir()
        self.pg_ctl = os.path.join(bindir, "pg_ctl")
        if not os.access(self.pg_ctl, os.X_OK):
            self.pg_ctl = "/usr/lib/postgresql/15/bin/pg_ctl"

    def db(self, dbname):
        d = Db(self.host, self.port, "postgres")
        d.psql("CREATE DATABASE %s" % harness.quote_ident(dbname))
        return Db(self.host, self.port, dbname)

    def ctl(self, *args, timeout=90):
        """Runs pg_ctl -D DIR/data args as the cluster owner; (ok, output).
        Output goes to a file: a started postmaster must not hold our pipes."""
        cmd = [self.pg_ctl, "-D", os.path.join(self.dir, "data")] + list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        out = os.path.join(self.dir, "pg_ctl.faults.log")
        with open(out, "wb") as f:
            try:
                r = subprocess.run(cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=timeout)
                ok = r.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
        with open(out, "rb") as f:
            return ok, f.read().decode("utf-8", "replace")

    def restart(self):
        return self.ctl("-m", "fast", "-l", os.path.join(self.dir, "log"), "-w", "-t", "60",
                        "restart")

    def stop(self):
        return self.ctl("-m", "fast", "-w", "-t", "60", "stop")

    def start(self):
        return self.ctl("-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start")

    def remove(self):
        stop_cluster(self.dir)


# --- input --------------------------------------------------------------------------

def schema_msg(stream, keys):
    props = {"id": {"type": "integer"}, "seq": {"type": "integer"},
             "v": {"type": ["null", "string"]}}
    return {"type": "SCHEMA", "stream": stream, "key_properties": keys,
            "schema": {"type": "object", "properties": props}}


class Feed:
    """A Singer input as lines plus what each line is: SCHEMAs of KEYED and
    UNKEYED first, then records (seq = running record number) and STATEs
    {"pos": line index}.  v = "s<seq>-" + pad x's (a pad makes rows big
    enough that COPY chunks go out mid-batch)."""

    def __init__(self, pad=0):
        self.pad = pad
        self.lines = [harness.jline(schema_msg(KEYED, ["id"])),
                      harness.jline(schema_msg(UNKEYED, []))]
        self.kind = ["schema", "schema"]  # "schema" | (stream, id, seq) | ("state", pos)
        self.seq = 0
        self.n_keyed = 0
        self.state_pos = []

    def v(self, seq):
        return "s%d-%s" % (seq, "x" * self.pad)

    def record(self, stream, key=None):
        self.seq += 1
        if stream == KEYED:
            rid = key
            self.n_keyed += 1
        else:
            rid = self.seq
        self.kind.append((stream, rid, self.seq))
        self.lines.append(harness.jline({"type": "RECORD", "stream": stream,
                                         "record": {"id": rid, "seq": self.seq,
                                                    "v": self.v(self.seq)}}))

    def state(self):
        pos = len(self.lines)
        self.kind.append(("state", pos))
        self.lines.append(harness.jline({"type": "STATE", "value": {"pos": pos}}))
        self.state_pos.append(pos)
        return pos

    def block(self, n, every=250, keys=600):
        """n records alternating keyed (ids cycling through `keys`) and
        unkeyed, a STATE after every `every`; returns the line range."""
        first = len(self.lines)
        for i in range(n):
            if i % 2 == 0:
                self.record(KEYED, (self.n_keyed * 7) % keys)
            else:
                self.record(UNKEYED)
            if (i + 1) % every == 0:
                self.state()
        return first, len(self.lines)

    def text(self, a, b):
        return "".join(line + "\n" for line in self.lines[a:b])

    def expected(self, upto):
        """({key: newest seq}, Counter(unkeyed seq)) of the records before line upto."""
        keyed, unkeyed = {}, Counter()
        for k in self.kind[:upto]:
            if k == "schema" or k[0] == "state":
                continue
            stream, rid, seq = k
            if stream == KEYED:
                keyed[rid] = seq
            else:
                unkeyed[seq] += 1
        return keyed, unkeyed

    def seq_info(self):
        """{seq: (stream, id)} of every record."""
        return {k[2]: (k[0], k[1]) for k in self.kind if k != "schema" and k[0] != "state"}


class Snapshot:
    def __init__(self, keyed, unkeyed, bad):
        self.keyed = keyed      # {id: seq}, committed
        self.unkeyed = unkeyed  # Counter(seq)
        self.bad = bad          # rows whose v does not match their seq


def snapshot(db, schema, feed, attempts=1):
    """The committed rows of both tables (empty when a table does not exist
    yet); None when the database could not be read in `attempts` tries."""
    for i in range(attempts):
        try:
            keyed, unkeyed, bad = {}, Counter(), []
            for stream in (KEYED, UNKEYED):
                t = harness.qualified(schema, harness.table_name(stream))
                if db.scalar("SELECT to_regclass(%s) IS NOT NULL"
                             % harness.sql_literal(t)) != "t":
                    continue
                rows = db.query("SELECT id, seq, v = 's' || seq || '-' || repeat('x', %d) AS ok "
                                "FROM %s" % (feed.pad, t))
                for r in rows:
                    if not r["ok"]:
                        bad.append((stream, r["id"], r["seq"]))
                    if stream == KEYED:
                        if r["id"] in keyed:
                            bad.append((stream, r["id"], "duplicate key"))
                        keyed[r["id"]] = r["seq"]
                    else:
                        unkeyed[r["seq"]] += 1
            return Snapshot(keyed, unkeyed, bad)
        except harness.DbError:
            if i + 1 < attempts:
                time.sleep(0.5)
    return None


def check_sane(label, snap, feed, sent_upto):
    """Every committed row is a record among the first sent_upto lines."""
    info = feed.seq_info()
    max_seq = max([k[2] for k in feed.kind[:sent_upto] if k != "schema" and k[0] != "state"],
                  default=0)
    if snap.bad:
        problem("%s: rows that are not records sent (v does not match seq, or a key twice): %r"
                % (label, snap.bad[:5]))
    wrong = [(i, s) for i, s in snap.keyed.items()
             if s > max_seq or info.get(s) != (KEYED, i)]
    if wrong:
        problem("%s: %d keyed rows (id, seq) that were never sent, e.g. %r"
                % (label, len(wrong), wrong[:5]))
    wrong = [s for s in snap.unkeyed if s > max_seq or info.get(s, (None,))[0] != UNKEYED]
    if wrong:
        problem("%s: %d unkeyed rows with a seq never sent, e.g. %r" % (label, len(wrong),
                                                                       wrong[:5]))


def check_covers(label, snap, feed, pos):
    """The committed rows hold every record before line pos (newest per key
    or newer, every unkeyed record at least once)."""
    keyed, unkeyed = feed.expected(pos)
    behind = [(i, s, snap.keyed.get(i)) for i, s in keyed.items()
              if snap.keyed.get(i) is None or snap.keyed[i] < s]
    missing = [s for s in unkeyed if snap.unkeyed[s] < 1]
    if behind or missing:
        problem("%s: STATE {\"pos\": %d} on stdout but not all records before it are committed: "
                "%d of %d keys missing or older than the newest record before it (e.g. (id, "
                "newest seq, committed seq) %r), %d of %d unkeyed records missing (e.g. seq %r)"
                % (label, pos, len(behind), len(keyed), behind[:3], len(missing), len(unkeyed),
                   missing[:5]))
        return False
    return True


def check_exact(label, snap, feed, upto, unkeyed_exact=True):
    """Keyed table = exactly the newest record per key; unkeyed table =
    every record exactly once (at least once when not unkeyed_exact)."""
    keyed, unkeyed = feed.expected(upto)
    if snap.keyed != keyed:
        extra = sorted(set(snap.keyed) - set(keyed))
        missing = sorted(set(keyed) - set(snap.keyed))
        differ = [(i, keyed[i], snap.keyed[i]) for i in keyed
                  if i in snap.keyed and snap.keyed[i] != keyed[i]]
        problem("%s: keyed table is not exactly the newest record per key: %d keys, expected "
                "%d; missing keys %r; unexpected keys %r; %d keys hold another record than the "
                "newest, e.g. (id, newest seq, table seq) %r"
                % (label, len(snap.keyed), len(keyed), missing[:5], extra[:5], len(differ),
                   differ[:5]))
    missing = [s for s in unkeyed if snap.unkeyed[s] < 1]
    dups = {s: n for s, n in snap.unkeyed.items() if n > 1}
    if missing:
        problem("%s: %d of %d unkeyed records lost, e.g. seq %r"
                % (label, len(missing), len(unkeyed), missing[:8]))
    n = sum(snap.unkeyed.values())
    if unkeyed_exact and dups:
        problem("%s: unkeyed table holds %d rows for %d records: %d records twice or more, "
                "e.g. seq %r" % (label, n, len(unkeyed), len(dups), sorted(dups)[:8]))
    if not unkeyed_exact and n < len(unkeyed):
        problem("%s: unkeyed table holds %d rows, fewer than the %d records sent"
                % (label, n, len(unkeyed)))
    return n, len(dups)


# --- target-pg through a pipe ---------------------------------------------------

class Live:
    """target-pg fed through a pipe we write to; stdout and stderr read by
    threads.  on_line(line) runs in the stdout thread for each stdout line as
    soon as it is read (used to snapshot the committed tables the moment a
    STATE appears).  A context manager: killed (process group) at the end of
    the block if it still runs."""

    def __init__(self, cfg, label, on_line=None):
        self.label = label
        self.on_line = on_line
        self.p = subprocess.Popen(harness.target_cmd() + ["--config", cfg],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        _live.append(self.p)
        self.out = []  # (monotonic time, line)
        self.err = []
        self.broken = False
        self.t_out = threading.Thread(target=self._pump, args=(self.p.stdout, self.out, True),
                                      daemon=True)
        self.t_err = threading.Thread(target=self._pump, args=(self.p.stderr, self.err, False),
                                      daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _pump(self, f, sink, is_stdout):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append((time.monotonic(), line))
            if is_stdout and self.on_line is not None:
                try:
                    self.on_line(line)
                except Exception as e:  # a bug here must not stop the pump
                    problem("%s: checking stdout line %r failed: %r" % (self.label, line, e))

    def write(self, text, complain=True):
        """Writes text; False (after a problem when complain) when target-pg
        closed its stdin."""
        if self.broken:
            return False
        try:
            self.p.stdin.write(text.encode("utf-8"))
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True
            if complain:
                time.sleep(0.3)
                problem("%s: target-pg stopped reading its input (exit %s): %s"
                        % (self.label, self.p.poll(), self.stderr_text()[-1500:]))
            return False

    def lines(self):
        return [line for _, line in list(self.out)]

    def state_positions(self):
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line)["pos"])
            except (ValueError, TypeError, KeyError):
                out.append(None)
        return out

    def wait_state_after(self, pos, timeout):
        """True once a STATE with pos > pos is on stdout."""
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end:
            if any(p is not None and p > pos for p in self.state_positions()):
                return True
            if self.p.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def running(self):
        return self.p.poll() is None

    def _waiting_for_input(self):
        """True when target-pg sleeps waiting for its stdin (a read of the
        pipe, or the reader's poll with its timeout of at most 200 ms - libpq
        waits for the server with poll without a timeout); False when it
        does something else; None when /proc cannot tell."""
        try:
            with open("/proc/%d/wchan" % self.p.pid) as f:
                wchan = f.read().strip()
            if wchan.endswith("pipe_read") or wchan == "pipe_wait":
                return True
            if os.uname().machine != "x86_64":
                return None
            with open("/proc/%d/syscall" % self.p.pid) as f:
                fields = f.read().split()
        except OSError:
            return None
        if not fields or fields[0] == "running":
            return False
        if fields[0] == "-1":  # not in a system call
            return False
        try:
            nr = int(fields[0])
            args = [int(x, 16) for x in fields[1:4]]
        except (ValueError, IndexError):
            return None
        if nr == 0:  # read(fd, ...)
            return args[0] == 0
        if nr == 7:  # poll(fds, nfds, timeout)
            return args[1] == 1 and args[2] <= 1000
        return False

    def wait_idle(self, db, timeout=10):
        """Waits until target-pg has read everything written to its stdin,
        waits for more, and its backends wait for it (ClientRead), three
        checks in a row: then it is not in the middle of a commit.  False
        after timeout; when /proc cannot tell, only the pipe and the server
        are watched."""
        end = time.monotonic() + timeout * SLOW
        quiet = 0
        while time.monotonic() < end and self.running():
            buf = array.array("i", [0])
            try:
                fcntl.ioctl(self.p.stdin.fileno(), termios.FIONREAD, buf)
            except (OSError, ValueError):
                return False
            client = self._waiting_for_input()
            try:
                server = db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name"
                                   " = 'target-pg' AND datname = current_database() AND "
                                   "wait_event IS DISTINCT FROM 'ClientRead'") == "0"
            except harness.DbError:
                server = False
            if buf[0] == 0 and client is not False and server:
                quiet += 1
            else:
                quiet = 0
            if quiet >= 3:
                return True
            time.sleep(0.03 if client is not None else 0.2)
        return False

    def stderr_text(self, metrics=False):
        """stderr so far; without the METRIC lines unless metrics."""
        return "\n".join(line for _, line in list(self.err)
                         if metrics or not line.startswith("METRIC: "))

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def finish(self, timeout=60):
        """Closes stdin and waits; the exit status (None after a timeout,
        when it was killed)."""
        self.close_stdin()
        try:
            self.p.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            problem("%s: target-pg did not exit %d s after its input ended"
                    % (self.label, timeout * SLOW))
            self.kill()
            self.join()
            return None
        self.join()
        return self.p.returncode

    def join(self):
        self.t_out.join(15)
        self.t_err.join(15)

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.running():
            self.kill()
        self.join()
        return False


class StateWatch:
    """on_line for Live: snapshots the committed tables the moment a stdout
    line appears and checks that the STATE it carries is covered."""

    def __init__(self, label, db, schema, feed, attempts=20):
        self.label, self.db, self.schema, self.feed = label, db, schema, feed
        self.attempts = attempts
        self.seen = []

    def __call__(self, line):
        try:
            v = json.loads(line)
            pos = v["pos"]
            if v != {"pos": pos} or pos not in self.feed.state_pos:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            problem("%s: stdout line is not a STATE that was sent: %r" % (self.label, line))
            return
        self.seen.append(pos)
        snap = snapshot(self.db, self.schema, self.feed, self.attempts)
        if snap is None:
            problem("%s: could not read the tables when STATE %d appeared" % (self.label, pos))
            return
        check_covers(self.label, snap, self.feed, pos)


def check_stdout(label, live, feed, want_last):
    """stdout = increasing STATE positions that were sent, the last want_last."""
    pos = live.state_positions()
    if any(p is None for p in pos):
        problem("%s: stdout holds lines that are not STATEs sent: %r" % (label, live.lines()))
        return
    if pos != sorted(set(pos)):
        problem("%s: STATEs on stdout not strictly increasing (each written once, in input "
                "order): %r" % (label, pos))
    if want_last is not None and (not pos or pos[-1] != want_last):
        problem("%s: last stdout line is %r, expected the last STATE sent {\"pos\": %d}"
                % (label, live.lines()[-1:] or "(nothing)", want_last))


def log_lines(live, *words):
    return [line for line in live.stderr_text().splitlines()
            if any(w in line.lower() for w in words)]


# --- (a) and (b): connection lost mid-batch, target-pg must recover ---------------

def pending_check(label, db, schema, feed, sent):
    """Notes how many unkeyed records sent are not committed yet (the fault
    should hit pending rows); a problem when none are pending."""
    snap = snapshot(db, schema, feed, 5)
    if snap is None:
        problem("%s: could not read the tables before the fault" % label)
        return
    _, unkeyed = feed.expected(sent)
    pending = len([s for s in unkeyed if snap.unkeyed[s] < 1])
    note("%s: %d of %d unkeyed records sent are pending at the fault" % (label, pending,
                                                                         len(unkeyed)))
    if pending == 0:
        problem("%s: test setup: no rows were pending when the fault was injected" % label)


def case_a(db, tmp):
    label = "(a) backend terminated"
    schema = "faults_a"
    cfg = db.config(os.path.join(tmp, "a.json"), schema, batch_size_rows=1000,
                    connect_retry_delay_ms=100)
    feed = Feed(pad=150)

    def terminate_once(live, step):
        n = db.terminate()
        note("%s: fault %d: pg_terminate_backend hit %d target-pg backend(s)" % (label, step, n))
        if n < 1:
            problem("%s: fault %d: no target-pg backend to terminate (is application_name "
                    "target-pg?)" % (label, step))

    def terminate_twice(live, step):
        """Terminate; then, once target-pg has a new backend and has
        committed its replay (a new STATE line), terminate again with a few
        new rows pending.  target-pg notices the first loss when its next
        COPY chunk goes out or at the commit: keep feeding small pieces
        meanwhile (at most 400 records, well under a batch).  Waiting for
        the replay's STATE keeps the second termination off that commit (a
        loss during COMMIT itself may duplicate unkeyed rows)."""
        before = db.target_pids()
        states_before = len(live.out)
        terminate_once(live, step)
        extra = feed.block(400, every=100)
        sent_to = extra[0]

        def send_some(n=40):
            nonlocal sent_to
            nxt = min(sent_to + n, extra[1])
            ok = live.write(feed.text(sent_to, nxt))
            sent_to = nxt
            return ok

        deadline = time.monotonic() + 10 * SLOW
        again = None
        while time.monotonic() < deadline and live.running():
            if sent_to < extra[1] and not send_some():
                return
            if db.target_pids() - before:
                t = time.monotonic()
                while len(live.out) <= states_before and time.monotonic() - t < 3 * SLOW:
                    time.sleep(0.01)
                if not send_some():
                    return
                live.wait_idle(db, 10)
                again = db.terminate()
                break
            time.sleep(0.05)
        if sent_to < extra[1] and not live.write(feed.text(sent_to, extra[1])):
            return
        if again is None:
            note("%s: fault %d: target-pg had no new backend within 10 s of the first "
                 "termination (it had not noticed yet); second termination skipped"
                 % (label, step))
        else:
            note("%s: fault %d: second termination hit %d backend(s) after target-pg "
                 "reconnected and committed its replay" % (label, step, again))

    run_recovery_twice(label, db, schema, cfg, feed, terminate_once, terminate_twice)


def run_recovery_twice(label, db, schema, cfg, feed, fault1, fault2):
    """Feeds target-pg (batch_size_rows 1000) through a pipe in steps and
    injects a fault at two moments with rows pending:
      1. SCHEMAs + 2500 records: a commit at 1000 rows; once its STATE is on
         stdout and the rest has been read (pending): fault1;
      2. 2500 more records (a commit mid-way), a newer STATE, the rest
         pending: fault2 (which may send records of its own);
      3. 1500 more records and a final STATE, then the end of input.
    Then: exit 0, stdout STATEs increasing and each covered when it
    appeared, the last the final STATE; tables exactly the input's."""
    watch = StateWatch(label, db, schema, feed)
    with Live(cfg, label, on_line=watch) as live:
        rc, final = drive_recovery(label, db, schema, feed, live, watch, fault1, fault2)
    after_recovery(label, db, schema, feed, live, rc, final)


def drive_recovery(label, db, schema, feed, live, watch, fault1, fault2):
    """The steps of run_recovery_twice: (exit status, final STATE position),
    (None, None) when the run could not be driven to its end."""
    sent = 0
    for step, fault in ((1, fault1), (2, fault2)):
        _, b = feed.block(2500)
        prev = watch.seen[-1] if watch.seen else 0
        if not live.write(feed.text(sent, b)):
            return None, None
        sent = b
        if not live.wait_state_after(prev, 20):
            problem("%s: no new STATE on stdout after block %d (a commit was due; stdout "
                    "%r): %s" % (label, step, live.lines(), live.stderr_text()[-1000:]))
            return None, None
        # the fault must hit pending rows, not a commit: wait until
        # target-pg has read the whole block and waits for more input
        if not live.wait_idle(db, 20):
            note("%s: could not see target-pg idle before fault %d" % (label, step))
        if not live.running():
            problem("%s: target-pg exited early (exit %s): %s"
                    % (label, live.p.returncode, live.stderr_text()[-1500:]))
            return None, None
        pending_check(label, db, schema, feed, sent)
        fault(live, step)
        sent = len(feed.lines)  # a fault may have sent records of its own
        if live.broken:
            return None, None
    feed.block(1500)
    final = feed.state()
    if not live.write(feed.text(sent, len(feed.lines))):
        return None, None
    return live.finish(60), final


def after_recovery(label, db, schema, feed, live, rc, final):
    """The checks at the end of a run that had to recover: exit 0, stdout
    STATEs increasing with the final STATE last, tables exactly the input.
    When the run could not be driven to its end (final None; the problem is
    already reported): every row a record sent and the last STATE on
    stdout covered."""
    if final is None:
        live.kill()
        live.join()
        snap = snapshot(db, schema, feed, 5)
        if snap is not None:
            check_sane(label + " (after the failure)", snap, feed, len(feed.lines))
            pos = [p for p in live.state_positions() if p is not None]
            if pos:
                check_covers(label + " (after the failure)", snap, feed, pos[-1])
        return
    if rc != 0:
        problem("%s: exit %s, expected 0 after recovering: %s"
                % (label, rc, live.stderr_text()[-2000:]))
    for line in log_lines(live, "lost", "reconnect", "retry", "attempt", "error"):
        note("%s stderr: %s" % (label, line[:300]))
    check_stdout(label, live, feed, final)
    snap = snapshot(db, schema, feed, 5)
    if snap is None:
        problem("%s: could not read the tables after the run" % label)
        return
    check_sane(label, snap, feed, len(feed.lines))
    if rc == 0:
        n, _ = check_exact(label, snap, feed, len(feed.lines))
        note("%s: %d keyed rows, %d unkeyed rows after the run, stdout STATEs %r"
             % (label, len(snap.keyed), n, live.state_positions()))


class LockSession:
    """A psql session holding `LOCK TABLE table IN SHARE MODE` in an open
    transaction (blocks COPY into the table) until release()."""

    def __init__(self, db, table, timeout=10):
        self.p = subprocess.Popen([harness.pg_prog("psql"), "-X", "-q", "-A", "-t", "-v",
                                   "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=db.env(), start_new_session=True)
        _live.append(self.p)
        self.p.stdin.write(("BEGIN;\nLOCK TABLE %s IN SHARE MODE;\nSELECT 'locked';\n"
                            % table).encode())
        self.p.stdin.flush()
        got = []
        t = threading.Thread(target=lambda: got.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout * SLOW)
        self.locked = bool(got) and got[0].strip() == b"locked"

    def release(self):
        try:
            self.p.stdin.write(b"COMMIT;\n")
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def case_a2(db, tmp):
    """(a2) the connection is lost again while target-pg replays: after a
    termination with rows pending, another session locks the unkeyed table
    (SHARE: blocks COPY), so the replay after the reconnect waits on the
    lock; its backend is terminated while it waits; then the lock goes.
    target-pg must reconnect again, replay again and carry on: exit 0,
    tables exact, STATEs honest (nothing was committed by the interrupted
    replay, so there is nothing to duplicate)."""
    label = "(a2) terminated again during the replay"
    schema = "faults_a2"
    cfg = db.config(os.path.join(tmp, "a2.json"), schema, batch_size_rows=1000,
                    connect_retry_delay_ms=100)
    feed = Feed(pad=150)
    watch = StateWatch(label, db, schema, feed)
    with Live(cfg, label, on_line=watch) as live:
        rc, final = drive_a2(label, db, schema, feed, live)
    after_recovery(label, db, schema, feed, live, rc, final)


def drive_a2(label, db, schema, feed, live):
    """The steps of case_a2: (exit status, final STATE position), (None,
    None) when the run could not be driven to its end."""
    _, b = feed.block(2500)
    if not live.write(feed.text(0, b)):
        return None, None
    if not live.wait_state_after(0, 20):
        problem("%s: no STATE after the first full batch (stdout %r): %s"
                % (label, live.lines(), live.stderr_text()[-1000:]))
        return None, None
    if not live.wait_idle(db, 20):
        note("%s: could not see target-pg idle before the fault" % label)
    pending_check(label, db, schema, feed, b)
    n = db.terminate()
    note("%s: first termination hit %d backend(s)" % (label, n))
    lock = LockSession(db, harness.qualified(schema, harness.table_name(UNKEYED)))
    try:
        if not lock.locked:
            problem("%s: test setup: could not lock the unkeyed table" % label)
            return None, None
        # more input until target-pg notices, reconnects and its replay
        # waits for the lock
        first, last = feed.block(800, every=200)
        sent, blocked = first, False
        deadline = time.monotonic() + 15 * SLOW
        while time.monotonic() < deadline and live.running():
            if sent < last:
                nxt = min(sent + 40, last)
                if not live.write(feed.text(sent, nxt)):
                    return None, None
                sent = nxt
            if db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                         "'target-pg' AND datname = current_database() AND "
                         "wait_event_type = 'Lock'") != "0":
                blocked = True
                break
            time.sleep(0.05)
        if blocked:
            n = db.terminate()
            note("%s: second termination hit %d backend(s) waiting for the lock during the "
                 "replay" % (label, n))
        else:
            problem("%s: test setup: target-pg's replay never waited for the lock on the "
                    "unkeyed table within %d s (stderr: %s)"
                    % (label, 15 * SLOW, live.stderr_text()[-800:]))
    finally:
        lock.release()
    if sent < last and not live.write(feed.text(sent, last)):
        return None, None
    feed.block(1500)
    final = feed.state()
    if not live.write(feed.text(last, len(feed.lines))):
        return None, None
    return live.finish(60), final


def case_b(cluster, tmp):
    label = "(b) server restarted"
    schema = "faults_b"
    db = cluster.db("faults_b")
    cfg = db.config(os.path.join(tmp, "b.json"), schema, batch_size_rows=1000,
                    connect_retry_delay_ms=100, connect_retries=8)
    feed = Feed(pad=150)

    def restart(live, step):
        t = time.monotonic()
        ok, out = cluster.restart()
        note("%s: fault %d: pg_ctl restart took %.1f s" % (label, step, time.monotonic() - t))
        if not ok:
            problem("%s: fault %d: pg_ctl restart failed: %s" % (label, step, out[-800:]))

    run_recovery_twice(label, db, schema, cfg, feed, restart, restart)


# --- (c): kill -9 loop ------------------------------------------------------------

def kill_feed():
    """20,000 keyed records over 3,000 keys (deterministic pseudo-random
    order) + 5,000 unkeyed, a STATE every 500 records, a STATE at the end."""
    feed = Feed(pad=0)
    rng = random.Random(20240605)
    for i in range(25000):
        if i % 5 == 4:
            feed.record(UNKEYED)
        else:
            feed.record(KEYED, rng.randrange(3000))
        if (i + 1) % 500 == 0 and i + 1 < 25000:
            feed.state()
    feed.state()
    return feed


def feed_round(cfg, feed, start, label, kill_at=None, kill_after_states=None, then=0.0,
               timeout=60):
    """One target-pg fed the SCHEMA lines and feed.lines[start:] from a
    writer thread; killed with SIGKILL kill_at seconds after its start or
    `then` seconds after its kill_after_states-th stdout line (when given).
    Returns (live, killed, elapsed)."""
    text = feed.text(0, 2) + feed.text(start, len(feed.lines))
    live = Live(cfg, label)
    t0 = time.monotonic()

    def writer():
        live.write(text, complain=False)
        live.close_stdin()

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    killed = False
    deadline = t0 + timeout * SLOW
    while live.running():
        now = time.monotonic()
        if kill_at is not None and now - t0 >= kill_at:
            break
        if kill_after_states is not None and len(live.out) >= kill_after_states:
            kill_after_states = None
            kill_at = now - t0 + then
        if now > deadline:
            problem("%s: target-pg still running after %d s" % (label, timeout * SLOW))
            break
        time.sleep(0.002)
    if live.running():
        live.kill()
        killed = True
    elapsed = time.monotonic() - t0
    live.join()
    w.join(10)
    return live, killed, elapsed


def case_c(db, tmp, seed):
    label = "(c) kill -9 loop (seed %d)" % seed
    rng = random.Random(seed)
    feed = kill_feed()
    info_end = len(feed.lines)

    # calibration: one uninterrupted run into its own schema, also exact
    cfg0 = db.config(os.path.join(tmp, "c0.json"), "faults_c0", batch_size_rows=700)
    live, killed, t_full = feed_round(cfg0, feed, 2, label + " calibration")
    rc = live.p.returncode
    if rc != 0:
        problem("%s calibration (no faults): exit %s: %s" % (label, rc,
                                                             live.stderr_text()[-1500:]))
        return
    check_stdout(label + " calibration", live, feed, feed.state_pos[-1])
    snap = snapshot(db, "faults_c0", feed, 3)
    if snap is not None:
        check_exact(label + " calibration", snap, feed, info_end)
    note("%s: uninterrupted run of %d lines took %.2f s" % (label, info_end, t_full))

    cfg = db.config(os.path.join(tmp, "c.json"), "faults_c", batch_size_rows=700)
    last = None  # position of the last STATE emitted by any round
    rounds = 12
    for r in range(1, rounds + 1):
        start = 2 if last is None else last + 1
        rl = "%s round %d (from line %d)" % (label, r, start)
        if r % 4 == 0:
            k = rng.randint(1, 3)
            then = rng.choice([0.0, rng.uniform(0.0, t_full / 50.0)])
            live, killed, elapsed = feed_round(cfg, feed, start, rl, kill_after_states=k,
                                               then=then)
            how = "%.4f s after its STATE line %d" % (then, k)
        else:
            # spread the kills over the input: on average the time the rest
            # of the input takes divided by the rounds left
            rest = (info_end - start) / float(info_end)
            delay = rng.uniform(0.0, max(0.005, 2.0 * t_full * rest / (rounds - r + 1)))
            live, killed, elapsed = feed_round(cfg, feed, start, rl, kill_at=delay)
            how = "at %.3f s" % delay
        pos = live.state_positions()
        if any(p is None for p in pos) or any(p not in feed.state_pos or p < start for p in pos) \
                or pos != sorted(set(pos)):
            problem("%s: stdout holds lines other than increasing STATEs of its input: %r"
                    % (rl, live.lines()[:20]))
            pos = [p for p in pos if p is not None and p in feed.state_pos and p >= start]
        if not killed:
            if live.p.returncode != 0:
                problem("%s: exit %s without a kill: %s" % (rl, live.p.returncode,
                                                           live.stderr_text()[-1500:]))
        snap = snapshot(db, "faults_c", feed, 3)
        if snap is None:
            problem("%s: could not read the table after the kill" % rl)
            return
        check_sane(rl, snap, feed, info_end)
        if pos:
            check_covers(rl + ", after the kill", snap, feed, pos[-1])
            last = pos[-1]
        note("%s: %s %s; %d STATE lines, last %s" % (
            rl, "killed" if killed else "finished (exit %s)" % live.p.returncode, how,
            len(pos), pos[-1] if pos else "-"))

    # to completion from the last STATE
    start = 2 if last is None else last + 1
    rl = "%s final run (from line %d)" % (label, start)
    live, killed, elapsed = feed_round(cfg, feed, start, rl, timeout=60)
    if killed or live.p.returncode != 0:
        problem("%s: exit %s%s: %s" % (rl, live.p.returncode, " (timed out)" if killed else "",
                                       live.stderr_text()[-1500:]))
    elif start <= feed.state_pos[-1]:
        check_stdout(rl, live, feed, feed.state_pos[-1])
    elif live.lines():
        problem("%s: an input of SCHEMAs only printed %r" % (rl, live.lines()))
    snap = snapshot(db, "faults_c", feed, 3)
    if snap is None:
        problem("%s: could not read the table" % rl)
        return
    check_sane(rl, snap, feed, info_end)
    n, dups = check_exact(rl, snap, feed, info_end, unkeyed_exact=False)
    note("%s: %d keyed rows; %d unkeyed rows for %d records (%d sent more than once after "
         "kills)" % (rl, len(snap.keyed), n, len(feed.expected(info_end)[1]), dups))


# --- (d): the server goes away for good ---------------------------------------------

def case_d(cluster, tmp):
    label = "(d) server stopped"
    schema = "faults_d"
    db = cluster.db("faults_d")
    cfg = db.config(os.path.join(tmp, "d.json"), schema, batch_size_rows=1000,
                    connect_retries=2, connect_retry_delay_ms=100)
    feed = Feed(pad=150)
    watch = StateWatch(label, db, schema, feed, attempts=2)
    rc = None
    with Live(cfg, label, on_line=watch) as live:
        _, b = feed.block(2500)
        if not live.write(feed.text(0, b)):
            return
        if not live.wait_state_after(0, 20):
            problem("%s: no STATE after the first full batch (stdout %r): %s"
                    % (label, live.lines(), live.stderr_text()[-1000:]))
            return
        if not live.wait_idle(db, 20):
            note("%s: could not see target-pg idle before the stop" % label)
        pending_check(label, db, schema, feed, b)
        committed = live.state_positions()
        ok, out = cluster.stop()
        if not ok:
            problem("%s: pg_ctl stop failed: %s" % (label, out[-800:]))
            return
        t_stop = time.monotonic()
        # more records (several COPY chunks) and STATEs, then the end of input
        feed.block(1200, every=300)
        feed.state()
        live.write(feed.text(b, len(feed.lines)), complain=False)
        t_close = time.monotonic()
        rc = live.finish(30)
        t_exit = time.monotonic()
    note("%s: exit %s %.1f s after the server stopped, %.1f s after the end of input"
         % (label, rc, t_exit - t_stop, t_exit - t_close))
    if rc != 1:
        problem("%s: exit %s, expected 1 (connection lost, retries exhausted): %s"
                % (label, rc, live.stderr_text()[-1500:]))
    if t_exit - t_close > 5.0 * SLOW:
        problem("%s: target-pg took %.1f s after the end of its input to give up (connect_retries"
                " 2, connect_retry_delay_ms 100: expected a few seconds)" % (label,
                                                                             t_exit - t_close))
    errors = [line for line in live.stderr_text().splitlines()
              if line.startswith("target-pg: error")]
    if not errors:
        problem("%s: no 'target-pg: error' line on stderr: %s" % (label,
                                                                  live.stderr_text()[-1500:]))
    else:
        e = errors[-1]
        note("%s: %s" % (label, e[:1500]))
        if not re.search(r"connection\b.*\blost|\blost\b.*connection", e, re.I):
            problem("%s: the error does not say the connection was lost: %s" % (label, e))
        m = re.search(r"\b(\d+) attempts?\b", e)
        if not m:
            problem("%s: the error does not say how many attempts were made: %s" % (label, e))
        elif int(m.group(1)) not in (2, 3):
            problem("%s: the error counts %s attempts; connect_retries 2 means 3 connection "
                    "attempts (the lost one's reconnect + 2 retries) or 2 retries: %s"
                    % (label, m.group(1), e))
    # stdout: only STATEs of commits made before the server stopped
    st = live.state_positions()
    extra = [p for p in st if p not in committed]
    if extra:
        problem("%s: STATEs %r on stdout after the server stopped (before it: %r); no commit "
                "could happen then" % (label, extra, committed))
    ok, out = cluster.start()
    if not ok:
        problem("%s: could not start the cluster again to check the tables: %s"
                % (label, out[-800:]))
        return
    snap = snapshot(db, schema, feed, 10)
    if snap is None:
        problem("%s: could not read the tables after the run" % label)
        return
    check_sane(label, snap, feed, len(feed.lines))
    if st:
        check_covers(label + ", after the run", snap, feed, st[-1])
    later = [s for s in snap.unkeyed if s > max(feed.expected(b)[1], default=0)]
    if later:
        problem("%s: %d unkeyed records sent after the server stopped are in the table"
                % (label, len(later)))


# --- main ---------------------------------------------------------------------------

def cleanup():
    for p in _live:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for d in list(_clusters):
        stop_cluster(d)


def stop_cluster(d):
    """tests/pg.sh stop d (stops the server, removes d); d itself too when
    pg.sh start failed before it marked d as its own."""
    try:
        subprocess.run(["bash", PG_SH, "stop", d], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.rmdir(d)
    except OSError:
        pass
    if d in _clusters:
        _clusters.remove(d)


def on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


def main():
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dbname, tmp = harness.integration_env()
    shared = Db(os.environ.get("PGHOST", "localhost"), os.environ.get("PGPORT", "5432"), dbname,
                os.environ.get("PGUSER", "postgres"))
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1, 10**9))
    note("(c) seed %d (FAULTS_SEED=%d repeats it)" % (seed, seed))
    only = set(os.environ.get("FAULTS_CASES", "abcd"))

    if "a" in only:
        case_a(shared, tmp)
        case_a2(shared, tmp)
    if "c" in only:
        case_c(shared, tmp, seed)
    if only & set("bd"):
        try:
            cluster = Cluster()
        except (harness.DbError, subprocess.TimeoutExpired) as e:
            problem("(b)/(d): could not start a cluster of our own: %s" % e)
            cluster = None
        if cluster is not None:
            try:
                if "b" in only:
                    case_b(cluster, tmp)
                if "d" in only:
                    case_d(cluster, tmp)
            finally:
                cluster.remove()
    note("done in %.1f s" % (time.monotonic() - T0))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
