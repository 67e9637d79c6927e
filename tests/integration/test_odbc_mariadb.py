#!/usr/bin/env python3
"""The ODBC driver's MariaDB dialect (drivers/odbc/odbc_mariadb*.c) end to
end, through MariaDB Connector/ODBC and a private odbcinst.ini
(tests/warehouse.py), on the throwaway server tests/run_all.sh started
(MARIADB_SOCKET); run alone, this file starts and stops its own
(tests/mariadb.sh).  Each case loads into its own databases.

  (a) create + append: the column types of README "MariaDB" (DECIMAL(65,30),
      DATETIME(6), JSON with its JSON_VALID check, LONGTEXT, BIGINT), numbers
      to the 30th digit after the point, timestamps moved to UTC, JSON text as
      sent, UTF-8 (emoji) kept, the source path as the column comment, the
      schema as a database;
  (b) add column: a later SCHEMA with one more property -> the column is
      added (ALTER TABLE ... ADD), older rows NULL;
  (c) widen: integer -> number and date -> date-time in one SCHEMA -> ALTER
      TABLE ... MODIFY, every value kept, the comments (source paths) and
      the primary key kept;
  (d) upsert: newest record per key wins inside a batch, across batches and
      runs; an unchanged row keeps its __loaded_at (not rewritten), a
      changed one gets a new one; a record omitting a property keeps the
      stored value (presence mask); string keys 'a', 'A' and 'a ' stay three
      keys (binary NO PAD collation);
  (e) overwrite: the second run's rows replace the first's (RENAME swap);
  (f) ACTIVATE_VERSION: soft (older rows get _sdc_deleted_at) and hard
      (older rows deleted);
  (g) invalid records: a number MariaDB's DECIMAL(65,30) cannot hold (31
      digits after the point, which MariaDB would round; 36 before it) and a
      string key longer than its VARCHAR are skipped with invalid_records
      skip, the others loaded; with invalid_records fail the run exits 1
      naming the input line, and nothing of the batch is committed;
  (h) STATE only after commit: the failing run of (g) writes no STATE; a good
      run's last STATE is the input's last;
  (i) long values: a 12 MB string between rounds of 1 MB ones arrives intact.

On a second server of this file's own (max_allowed_packet 1 MiB, also on
TCP):
  (j) a value too big for one command: the row is an invalid record (skip:
      dropped naming the column, the run goes on, no reconnect; fail: exit 1
      at once), the rows around it loaded, those that do not fit one
      command together sent in smaller ones; unkeyed and keyed streams;
  (k) a lost COMMIT through the TCP proxy of test_lost_commit.py, cut after
      forwarding COMMIT (the marker row says committed: not sent again) and
      before it (rolled back: sent again): every row exactly once, the STATEs
      ending with the last, the one invalid record dead-lettered once.
"""

import atexit
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import test_lost_commit  # noqa: E402  (its proxy and input; runs no case)
import warehouse  # noqa: E402

problems = []
_, TMP = harness.integration_env()


def start_server(**env):
    """Starts tests/mariadb.sh (env: its TGT_MARIADB_* settings), stopped at
    exit; returns the variables of its env file."""
    # not under TMP: as root the server runs as mysql, which must reach the directory
    d = tempfile.mkdtemp(prefix="tgt-mdb.", dir="/tmp")
    script = os.path.join(harness.REPO_ROOT, "tests", "mariadb.sh")
    r = subprocess.run([script, "start", d], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, **env))
    atexit.register(subprocess.run, [script, "stop", d], capture_output=True,
                    stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit("tests/mariadb.sh start failed: %s" % r.stderr)
    out = {}
    for word in r.stdout.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v.strip("'")
    return out


def own_server():
    """Starts tests/mariadb.sh when no server is in the environment."""
    if not os.environ.get("MARIADB_SOCKET"):
        os.environ.update(start_server())


def fresh(name, socket=None):
    """A warehouse on the shared server, or on the one at `socket`."""
    wh = warehouse.make("mariadb", TMP, "itm_" + name)
    if socket is not None:
        wh.socket = socket
    wh.create()
    return wh


def run(wh, msgs, schema="public", **extra):
    return wh.load(TMP, msgs, schema, **extra)


schema = warehouse.schema_message
rec = warehouse.record_message


def expect(label, got, want):
    if got != want:
        problems.append("%s: got %r, expected %r" % (label, got, want))


def zeros(digits, n=30):
    """A DECIMAL(65,30) value as MariaDB prints it: n digits after the point."""
    whole, _, frac = digits.partition(".")
    return whole + "." + frac.ljust(n, "0")


own_server()

# (a) create + append ----------------------------------------------------------
wh = fresh("append")
props = {"n": {"type": "number"}, "at": {"type": "string", "format": "date-time"},
         "doc": {"type": "object"}, "s": {"type": "string"}, "i": {"type": "integer"}}
r = run(wh, [schema("ev", props),
             '{"type": "RECORD", "stream": "ev", "record": {"n": 1.50, "at": '
             '"2020-01-01T10:00:00.123456+05:00", "doc": {"a": [1, 2.0]}, '
             '"s": "caf\\u00e9 \\"q\\" \\ud83d\\ude00", "i": 9007199254740993}}',
             '{"type": "RECORD", "stream": "ev", "record": {"n": '
             '-1234567890123456789012345678901234.1234567890123456789012345678901e1, '
             '"at": "2020-01-01T00:00:00Z", "doc": {}, "s": "x", "i": -1}}',
             {"type": "STATE", "value": {"p": 1}}])
if harness.check_exit_0(problems, "(a) first run", r):
    harness.check_states(problems, "(a)", r.stdout, [{"p": 1}])
    cols = wh.columns("public", "ev")
    expect("(a) types", [cols.get(c) for c in ("n", "at", "doc", "s", "i", "__loaded_at")],
           ["decimal(65,30)", "datetime(6)", "longtext", "longtext", "bigint(20)",
            "datetime(6)"])
    expect("(a) JSON check on doc only",
           wh.query("SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS "
                    "WHERE CONSTRAINT_SCHEMA = '%s' AND TABLE_NAME = 'ev'" % wh.database("public")),
           [["doc"]])
    expect("(a) comment", wh.query("SELECT COLUMN_COMMENT FROM information_schema.COLUMNS "
                                   "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = 'ev' AND "
                                   "COLUMN_NAME = 'n'" % wh.database("public")),
           [['source: ["n"]']])
    expect("(a) values", wh.query("SELECT n, at, doc, s, i FROM %s ORDER BY i DESC"
                                  % wh.table("public", "ev")),
           [[zeros("1.5"), "2020-01-01 05:00:00.123456", '{"a": [1, 2.0]}',
             'caf\u00e9 "q" \U0001F600', "9007199254740993"],
            ["-12345678901234567890123456789012341.234567890123456789012345678901",
             "2020-01-01 00:00:00.000000", "{}", "x", "-1"]])
r = run(wh, [schema("ev", props), rec("ev", {"n": 2, "s": "y"}), rec("ev", {"n": 2, "s": "y"})])
if harness.check_exit_0(problems, "(a) second run", r):
    expect("(a) rows after two runs", wh.count("public", "ev"), 4)

# (b) add column ---------------------------------------------------------------
r = run(wh, [schema("ev", dict(props, extra={"type": "integer"})),
             rec("ev", {"n": 3, "extra": 7})])
if harness.check_exit_0(problems, "(b) add column", r):
    expect("(b) last column", list(wh.columns("public", "ev"))[-1], "extra")
    expect("(b) values", wh.query("SELECT extra FROM %s ORDER BY extra IS NULL, n"
                                  % wh.table("public", "ev")),
           [["7"], [None], [None], [None], [None]])

# (c) widen -----------------------------------------------------------------------
wh = fresh("widen")
p1 = {"id": {"type": "integer"}, "q": {"type": "integer"},
      "d": {"type": "string", "format": "date"}, "t": {"type": "string"}}
r = run(wh, [schema("w", p1, ["id"]), rec("w", {"id": 1, "q": 10, "d": "2021-03-04", "t": "a"}),
             rec("w", {"id": 2, "q": None, "d": None, "t": "b"})])
harness.check_exit_0(problems, "(c) first run", r)
p2 = dict(p1, q={"type": "number"}, d={"type": "string", "format": "date-time"})
r = run(wh, [schema("w", p2, ["id"]), rec("w", {"id": 3, "q": 2.25, "d": "2021-01-01T01:02:03Z",
                                                "t": "c"})])
if harness.check_exit_0(problems, "(c) widening run", r):
    if "altering" not in r.stderr:
        problems.append("(c) no 'altering' in the log: %s" % r.stderr[-500:])
    cols = wh.columns("public", "w")
    expect("(c) column order and types", list(cols.items())[:4],
           [("id", "bigint(20)"), ("q", "decimal(65,30)"), ("d", "datetime(6)"),
            ("t", "longtext")])
    expect("(c) rows", wh.query("SELECT id, q, d, t FROM %s ORDER BY id" % wh.table("public", "w")),
           [["1", zeros("10"), "2021-03-04 00:00:00.000000", "a"], ["2", None, None, "b"],
            ["3", zeros("2.25"), "2021-01-01 01:02:03.000000", "c"]])
    expect("(c) comments kept", wh.query(
        "SELECT COLUMN_NAME, COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA "
        "= '%s' AND TABLE_NAME = 'w' AND COLUMN_NAME IN ('q', 'd') ORDER BY ORDINAL_POSITION"
        % wh.database("public")), [["q", 'source: ["q"]'], ["d", 'source: ["d"]']])
    expect("(c) primary key kept", wh.query(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = '%s' "
        "AND TABLE_NAME = 'w' AND CONSTRAINT_NAME = 'PRIMARY'" % wh.database("public")), [["id"]])

# (d) upsert ------------------------------------------------------------------------
wh = fresh("upsert")
pu = {"id": {"type": "string"}, "a": {"type": ["null", "string"]},
      "b": {"type": ["null", "string"]}}
r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": "k1", "a": "x", "b": "b1"}),
             rec("u", {"id": "k2", "a": "y", "b": "b2"}),
             rec("u", {"id": "k1", "a": "x2", "b": "b1"}),
             rec("u", {"id": "a", "a": "lower"}), rec("u", {"id": "A", "a": "upper"}),
             rec("u", {"id": "a ", "a": "space"})])
U = wh.table("public", "u")
if harness.check_exit_0(problems, "(d) first run", r):
    expect("(d) newest wins in the batch; a, A, 'a ' distinct",
           wh.query("SELECT CONCAT('[', id, ']'), a, b FROM %s ORDER BY id" % U),
           [["[A]", "upper", None], ["[a]", "lower", None], ["[a ]", "space", None],
            ["[k1]", "x2", "b1"], ["[k2]", "y", "b2"]])
    expect("(d) key column type", wh.columns("public", "u").get("id"), "varchar(255)")
    before = dict(wh.query("SELECT id, __loaded_at FROM %s" % U))
    r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": "k1", "a": "x2", "b": "b1"}),
                 rec("u", {"id": "k2", "a": "y3", "b": "b2"}), rec("u", {"id": "k3", "a": "z"})],
            batch_size_rows=2)
    if harness.check_exit_0(problems, "(d) second run", r):
        after = dict(wh.query("SELECT id, __loaded_at FROM %s" % U))
        expect("(d) unchanged row not rewritten", after.get("k1"), before.get("k1"))
        if after.get("k2") == before.get("k2"):
            problems.append("(d) the changed row k2 kept its __loaded_at %r" % after.get("k2"))
        expect("(d) values", wh.query("SELECT id, a, b FROM %s WHERE id LIKE 'k%%' ORDER BY id"
                                      % U),
               [["k1", "x2", "b1"], ["k2", "y3", "b2"], ["k3", "z", None]])
    r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": "k2", "a": "y4"}),
                 rec("u", {"id": "k4", "b": "only b"})])
    if harness.check_exit_0(problems, "(d) partial records", r):
        expect("(d) absent property keeps the stored value",
               wh.query("SELECT id, a, b FROM %s WHERE id IN ('k2', 'k4') ORDER BY id" % U),
               [["k2", "y4", "b2"], ["k4", None, "only b"]])

# (e) overwrite ---------------------------------------------------------------------
wh = fresh("overwrite")
po = {"id": {"type": "integer"}, "v": {"type": "string"}}
r = run(wh, [schema("o", po, ["id"]), rec("o", {"id": 1, "v": "old"}),
             rec("o", {"id": 2, "v": "old"})], load_method="overwrite")
harness.check_exit_0(problems, "(e) first run", r)
r = run(wh, [schema("o", po, ["id"]), rec("o", {"id": 3, "v": "new"})], load_method="overwrite")
if harness.check_exit_0(problems, "(e) second run", r):
    expect("(e) rows replaced", wh.query("SELECT id, v FROM %s" % wh.table("public", "o")),
           [["3", "new"]])
    expect("(e) no table left besides o", wh.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s'"
        % wh.database("public")), [["o"]])

# (f) ACTIVATE_VERSION ----------------------------------------------------------------
for hard in (False, True):
    wh = fresh("activate_%s" % ("hard" if hard else "soft"))
    pa = {"id": {"type": "integer"}}
    r = run(wh, [schema("a", pa, ["id"]), {"type": "ACTIVATE_VERSION", "stream": "a", "version": 1},
                 rec("a", {"id": 1}, version=1), rec("a", {"id": 2}, version=1),
                 {"type": "ACTIVATE_VERSION", "stream": "a", "version": 1}],
            hard_delete=hard)
    harness.check_exit_0(problems, "(f) first version", r)
    r = run(wh, [schema("a", pa, ["id"]), {"type": "ACTIVATE_VERSION", "stream": "a", "version": 2},
                 rec("a", {"id": 2}, version=2),
                 {"type": "ACTIVATE_VERSION", "stream": "a", "version": 2}],
            hard_delete=hard)
    if harness.check_exit_0(problems, "(f) second version", r):
        rows = wh.query("SELECT id, _sdc_table_version, _sdc_deleted_at IS NOT NULL FROM %s "
                        "ORDER BY id" % wh.table("public", "a"))
        expect("(f) %s" % ("hard" if hard else "soft"), rows,
               [["2", "2", "0"]] if hard else [["1", "1", "1"], ["2", "2", "0"]])

# (g, h) invalid records and STATE -------------------------------------------------------
wh = fresh("invalid")
pi = {"id": {"type": "string"}, "n": {"type": "number"}}
good = '{"type": "RECORD", "stream": "v", "record": {"id": "ok", "n": 0.%s}}' % ("1" * 30)
bad_frac = '{"type": "RECORD", "stream": "v", "record": {"id": "f", "n": 0.%s}}' % ("1" * 31)
bad_int = '{"type": "RECORD", "stream": "v", "record": {"id": "i", "n": 1%s}}' % ("0" * 35)
bad_key = harness.jline(rec("v", {"id": "k" * 256, "n": 1}))
msgs = [schema("v", pi, ["id"]), good, bad_frac, bad_int, bad_key,
        {"type": "STATE", "value": {"s": 1}}]
r = run(wh, msgs)
if harness.check_exit_1(problems, "(g) invalid_records fail", r):
    if "line 3" not in r.stderr:
        problems.append("(g) the error does not name input line 3: %s" % r.stderr[-600:])
    expect("(h) no STATE after a failed batch", r.stdout.strip(), "")
    if wh.table_exists("public", "v"):
        expect("(g) nothing of the batch committed", wh.count("public", "v"), 0)
r = run(wh, msgs, invalid_records="skip")
if harness.check_exit_0(problems, "(g) invalid_records skip", r):
    harness.check_states(problems, "(h)", r.stdout, [{"s": 1}])
    expect("(g) only the good row", wh.query("SELECT id, n FROM %s" % wh.table("public", "v")),
           [["ok", "0." + "1" * 30]])
    for line, why in ((3, "after the point"), (4, "before the point"), (5, "Data too long")):
        if not any("line %d: v record dropped" % line in x and why in x
                   for x in r.stderr.splitlines()):
            problems.append("(g) input line %d is not reported as dropped (%s): %s"
                            % (line, why, r.stderr[-1200:]))

# (i) long values ------------------------------------------------------------------------
# a round with one 12 MB value between rounds of 1 MB values: every value arrives
# intact (Connector/ODBC once sent garbage for the round after the long one)
wh = fresh("long")
MB = 1000 * 1000
sizes = [MB] * 5 + [12 * MB] + [MB] * 2
r = run(wh, [schema("l", {"id": {"type": "integer"}, "s": {"type": "string"}}, ["id"])] +
        [rec("l", {"id": i, "s": chr(ord("a") + i) * n}) for i, n in enumerate(sizes)])
if harness.check_exit_0(problems, "(i) long values", r):
    expect("(i) lengths and contents", wh.query(
        "SELECT id, LENGTH(s), s = REPEAT(CHAR(97 + id), LENGTH(s)) FROM %s ORDER BY id"
        % wh.table("public", "l")), [[str(i), str(n), "1"] for i, n in enumerate(sizes)])

# (j) a value too big for one command ------------------------------------------------------
SMALL = start_server(TGT_MARIADB_TCP="1", TGT_MARIADB_SERVER_OPTS="--max-allowed-packet=1M")
wh = fresh("packet", SMALL["MARIADB_SOCKET"])
KB = 1000
sizes = [10, 600 * KB, 2000 * KB, 500 * KB, 5]  # 600 + 500 KB: two commands
ps = {"id": {"type": "integer"}, "s": {"type": "string"}}
msgs = [schema("u", ps), schema("k", ps, ["id"])]
for i, n in enumerate(sizes):
    msgs += [rec("u", {"id": i, "s": "u" * n}), rec("k", {"id": i, "s": "k" * n})]
msgs.append({"type": "STATE", "value": {"j": 1}})
r = run(wh, msgs, invalid_records="skip")
if harness.check_exit_0(problems, "(j) too big, invalid_records skip", r):
    harness.check_states(problems, "(j)", r.stdout, [{"j": 1}])
    for stream, line in (("u", 7), ("k", 8)):
        expect("(j) %s: the rows that fit, intact" % stream, wh.query(
            "SELECT id, LENGTH(s), s = REPEAT('%s', LENGTH(s)) FROM %s ORDER BY id"
            % (stream, wh.table("public", stream))),
            [[str(i), str(n), "1"] for i, n in enumerate(sizes) if n < 1000 * KB])
        if not any("line %d: %s record dropped" % (line, stream) in x and '"s"' in x
                   and "too big" in x for x in r.stderr.splitlines()):
            problems.append("(j) input line %d is not reported as dropped naming column s: %s"
                            % (line, r.stderr[-1200:]))
    if "gone away" in r.stderr or "reconnecting" in r.stderr:
        problems.append("(j) the too big value made target-pg reconnect: %s" % r.stderr[-1200:])
r = run(fresh("packet", SMALL["MARIADB_SOCKET"]), msgs, invalid_records="fail",
        connect_retries=0)
if harness.check_exit_1(problems, "(j) too big, invalid_records fail", r):
    if "line 7" not in r.stderr or "too big" not in r.stderr:
        problems.append("(j) the error does not name input line 7 and the size: %s"
                        % r.stderr[-600:])

# (k) a lost COMMIT ------------------------------------------------------------------------
for mode in ("after", "before"):
    label = "(k) COMMIT cut %s it reached the server" % mode
    wh = fresh("lost_" + mode, SMALL["MARIADB_SOCKET"])
    proxy = test_lost_commit.MysqlCommitCutter(int(SMALL["MARIADB_PORT"]), mode, cut_at=2)
    try:
        path = os.path.join(TMP, "lost_%s.singer" % mode)
        states = test_lost_commit.make_input(path)
        dl = os.path.join(TMP, "lost_%s.dead.zst" % mode)
        cfg = wh.write_config(
            os.path.join(TMP, "lost_%s.json" % mode), "public",
            odbc_connection_string="DRIVER={MariaDB};SERVER=127.0.0.1;PORT=%d;UID=root"
            % proxy.port, batch_size_rows=test_lost_commit.BATCH, connect_retries=3,
            connect_retry_delay_ms=100, invalid_records="dead_letter", dead_letter_path=dl)
        r = harness.run_input(cfg, path, timeout=120)
    finally:
        proxy.close()
    if proxy.cuts != 1:
        problems.append("%s: the proxy cut %d connections (expected 1): the test is broken"
                        % (label, proxy.cuts))
        continue
    if not harness.check_exit_0(problems, label, r):
        continue
    want = [i for i in range(test_lost_commit.N_EVENTS) if i != 150]
    events = [int(x) for (x,) in wh.query("SELECT seq FROM %s ORDER BY seq"
                                          % wh.table("public", "events"))]
    if events != want:
        problems.append("%s: events holds %d rows (%d distinct), expected each of %d records "
                        "exactly once" % (label, len(events), len(set(events)), len(want)))
    expect("%s: items" % label, wh.count("public", "items"), test_lost_commit.N_ITEMS)
    got = harness.parse_states(problems, label, r.stdout)
    if got is not None and (not got or got[-1] != states[-1]
                            or any(x not in states for x in got)):
        problems.append("%s: stdout STATEs %r do not end with %r" % (label, got, states[-1]))
    letters = test_lost_commit.dead_letters(dl)
    expect("%s: dead letters" % label, [x.get("record", {}).get("seq") for x in letters], [150])
    said = r.stderr.lower()
    why = "committed that transaction" if mode == "after" else "rolled that transaction back"
    if why not in said:
        problems.append("%s: no log line says the server %s: %s"
                        % (label, why, r.stderr.strip()[-800:]))

sys.exit(harness.report(problems))
