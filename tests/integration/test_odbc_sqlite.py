#!/usr/bin/env python3
"""The ODBC driver's SQLite dialect (drivers/odbc/odbc_sqlite.c) end to end,
through libsqliteodbc and a private odbcinst.ini (tests/warehouse.py); no
server.  Each case loads into its own SQLite file.

  (a) append: a keyless stream over two runs -> every record a row (and
      one commit marker per run in "target-pg.commits"), the
      declared types of README "SQLite" (numeric NUMERIC TEXT, objects JSONB
      TEXT, times TIMESTAMPTZ), numbers exactly as written (1.50, 1e400),
      timestamps in UTC (10:00+05:00 -> 05:00:00), JSON text as sent, the
      table named "<schema>.<stream>";
  (b) add column: a later SCHEMA with one more property -> the column is
      added at the end, older rows NULL;
  (c) widen by rebuild: integer -> number and date -> date-time in one
      SCHEMA -> the column types change, every row and value kept, column
      order and primary key kept, a date becomes its midnight;
  (d) upsert: newest record per key wins inside a batch, across batches and
      runs; rows whose data did not change are not rewritten (an UPDATE
      trigger counts rewrites); a record omitting a property keeps the
      stored value (presence mask);
  (e) overwrite: the second run's rows replace the first's;
  (f) ACTIVATE_VERSION: soft (older rows get _sdc_deleted_at) and hard
      (older rows deleted);
  (g) invalid records: a row SQLite itself refuses (a CHECK constraint of a
      table the user made) is skipped with invalid_records skip, in an
      append and in a keyed stream, the others loaded;
  (h) STATE only after commit: a failing run (a refused row, invalid_records
      fail) exits 1 with no STATE, committing nothing; a good run's last STATE is the
      input's last;
  (i) a secret connection string never reaches the log, a missing ODBC
      driver is a clear error (exit 1);
  (j) primary-key moves by rebuild: (id) -> (id, k) keeps the rows and
      upserts on the new key; a move onto duplicates fails, changing
      nothing;
  (k) three loaders upserting into one file at once all succeed (they take
      turns on SQLite's write lock) and leave the newest rows;
  (l) speed: the bulk INSERT is compiled once per write, not once per row
      or group of rows (libsqliteodbc's trace file counts sqlite3_prepare),
      appending and staging 2,500 rows, every value loaded;
  (m) names are cut to SQLite's limit from the first SCHEMA on: a 100-byte
      property in a stream's first SCHEMA and again in a second one that
      adds a property is one column, not a 63-byte cut one and a full one
      (the ODBC driver learns the dialect's limit only when it connects).
"""

import os
import sqlite3
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import warehouse  # noqa: E402

problems = []
_, TMP = harness.integration_env()


def fresh(name):
    wh = warehouse.make("sqlite", TMP, name)
    wh.create()
    return wh


def run(wh, msgs, schema="public", **extra):
    return wh.load(TMP, msgs, schema, **extra)


schema = warehouse.schema_message
rec = warehouse.record_message


def expect(label, got, want):
    if got != want:
        problems.append("%s: got %r, expected %r" % (label, got, want))


# (a) append ---------------------------------------------------------------
wh = fresh("append")
props = {"n": {"type": "number"}, "at": {"type": "string", "format": "date-time"},
         "doc": {"type": "object"}, "s": {"type": "string"}}
r = run(wh, [schema("ev", props),
             '{"type": "RECORD", "stream": "ev", "record": {"n": 1.50, "at": '
             '"2020-01-01T10:00:00+05:00", "doc": {"a": [1, 2.0]}, "s": "caf\\u00e9 \\"q\\""}}',
             '{"type": "RECORD", "stream": "ev", "record": {"n": 1e400, "at": '
             '"2020-01-01T00:00:00Z", "doc": {}, "s": "x"}}',
             {"type": "STATE", "value": {"p": 1}}])
if harness.check_exit_0(problems, "(a) first run", r):
    harness.check_states(problems, "(a)", r.stdout, [{"p": 1}])
    cols = wh.columns("public", "ev")
    expect("(a) types", [cols.get(c) for c in ("n", "at", "doc", "s", "__loaded_at")],
           ["NUMERIC TEXT", "TIMESTAMPTZ", "JSONB TEXT", "TEXT", "TIMESTAMPTZ"])
    expect("(a) values", wh.query('SELECT n, at, doc, s FROM "public.ev" ORDER BY rowid'),
           [["1.50", "2020-01-01 05:00:00", '{"a": [1, 2.0]}', 'caf\u00e9 "q"'],
            ["1e400", "2020-01-01 00:00:00", "{}", "x"]])
r = run(wh, [schema("ev", props), rec("ev", {"n": 2, "s": "y"}), rec("ev", {"n": 2, "s": "y"})])
if harness.check_exit_0(problems, "(a) second run", r):
    expect("(a) rows after two runs", wh.count("public", "ev"), 4)
    # commit markers (commit_status): one per run, the session's latest
    markers = wh.query('SELECT id FROM "target-pg.commits"')
    expect("(a) commit markers after two runs", len(markers), 2)
    if any(len(m[0]) != 32 for m in markers):
        problems.append("(a) commit marker ids are not 32 hex digits: %r" % markers)

# (b) add column -----------------------------------------------------------
r = run(wh, [schema("ev", dict(props, extra={"type": "integer"})),
             rec("ev", {"n": 3, "extra": 7})])
if harness.check_exit_0(problems, "(b) add column", r):
    expect("(b) columns", list(wh.columns("public", "ev"))[-1], "extra")
    expect("(b) values", wh.query('SELECT extra FROM "public.ev" ORDER BY rowid'),
           [[None], [None], [None], [None], [7]])

# (c) widen by rebuild -------------------------------------------------------
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
    cols = wh.columns("public", "w")
    expect("(c) column order and types", list(cols.items())[:4],
           [("id", "BIGINT"), ("q", "NUMERIC TEXT"), ("d", "TIMESTAMPTZ"), ("t", "TEXT")])
    expect("(c) rows", wh.query('SELECT id, q, d, t FROM "public.w" ORDER BY id'),
           [[1, "10", "2021-03-04 00:00:00", "a"], [2, None, None, "b"],
            [3, "2.25", "2021-01-01 01:02:03", "c"]])
    expect("(c) primary key kept",
           wh.query("SELECT name FROM pragma_table_info('public.w') WHERE pk > 0"), [["id"]])
    r = run(wh, [schema("w", p2, ["id"]), rec("w", {"id": 1, "q": 11, "d": None, "t": "a2"})])
    if harness.check_exit_0(problems, "(c) upsert after the rebuild", r):
        expect("(c) upserted", wh.query('SELECT count(*), max(t) FROM "public.w"'), [[3, "c"]])

# (d) upsert -------------------------------------------------------------------
wh = fresh("upsert")
pu = {"id": {"type": "integer"}, "a": {"type": ["null", "string"]},
      "b": {"type": ["null", "string"]}}
r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": 1, "a": "x", "b": "b1"}),
             rec("u", {"id": 2, "a": "y", "b": "b2"}), rec("u", {"id": 1, "a": "x2", "b": "b1"})])
if harness.check_exit_0(problems, "(d) first run", r):
    expect("(d) newest wins in the batch", wh.query('SELECT id, a, b FROM "public.u" ORDER BY id'),
           [[1, "x2", "b1"], [2, "y", "b2"]])
    # from here on a trigger counts rewritten rows
    con = sqlite3.connect(wh.path)
    con.executescript('CREATE TABLE rewrites (id INTEGER);'
                      'CREATE TRIGGER count_rewrites AFTER UPDATE ON "public.u" '
                      'BEGIN INSERT INTO rewrites VALUES (new.id); END;')
    con.close()
    r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": 1, "a": "x2", "b": "b1"}),
                 rec("u", {"id": 2, "a": "y3", "b": "b2"}), rec("u", {"id": 3, "a": "z"})],
            batch_size_rows=2)
    if harness.check_exit_0(problems, "(d) second run", r):
        expect("(d) only changed rows rewritten", wh.query("SELECT id FROM rewrites"), [[2]])
        expect("(d) rows", wh.query('SELECT id, a, b FROM "public.u" ORDER BY id'),
               [[1, "x2", "b1"], [2, "y3", "b2"], [3, "z", None]])
    r = run(wh, [schema("u", pu, ["id"]), rec("u", {"id": 2, "a": "y4"}),
                 rec("u", {"id": 4, "b": "new"}), rec("u", {"id": 2, "b": "b5"})])
    if harness.check_exit_0(problems, "(d) partial records", r):
        expect("(d) absent properties keep stored values",
               wh.query('SELECT id, a, b FROM "public.u" ORDER BY id'),
               [[1, "x2", "b1"], [2, "y4", "b5"], [3, "z", None], [4, None, "new"]])

# (e) overwrite ---------------------------------------------------------------
wh = fresh("overwrite")
po = {"id": {"type": "integer"}, "v": {"type": "string"}}
for i, rows in enumerate(([1, 2, 3], [7, 8])):
    r = run(wh, [schema("o", po, ["id"])] + [rec("o", {"id": k, "v": "r%d" % i}) for k in rows]
            + [{"type": "STATE", "value": {"run": i}}], load_method="overwrite")
    if harness.check_exit_0(problems, "(e) overwrite run %d" % i, r):
        harness.check_states(problems, "(e) run %d" % i, r.stdout, [{"run": i}])
        expect("(e) rows of run %d" % i,
               [x[0] for x in wh.query('SELECT id FROM "public.o" ORDER BY id')], rows)
expect("(e) no shadow left", wh.query("SELECT count(*) FROM sqlite_master WHERE name LIKE "
                                      "'%shadow%' OR name LIKE '%tgt%'"), [[0]])

# (f) ACTIVATE_VERSION ---------------------------------------------------------------
for hard in (False, True):
    wh = fresh("version_%s" % hard)
    msgs = [schema("v", po, ["id"]), {"type": "ACTIVATE_VERSION", "stream": "v", "version": 1}]
    msgs += [rec("v", {"id": k, "v": "a"}, version=1) for k in (1, 2, 3)]
    msgs += [{"type": "ACTIVATE_VERSION", "stream": "v", "version": 2}]
    msgs += [rec("v", {"id": k, "v": "a"}, version=2) for k in (1, 2)]
    msgs += [{"type": "ACTIVATE_VERSION", "stream": "v", "version": 2}]
    r = run(wh, msgs, hard_delete=hard)
    if harness.check_exit_0(problems, "(f) hard=%s" % hard, r):
        got = wh.query('SELECT id, _sdc_table_version, _sdc_deleted_at IS NOT NULL '
                       'FROM "public.v" ORDER BY id')
        want = [[1, 2, 0], [2, 2, 0]] + ([] if hard else [[3, 1, 1]])
        expect("(f) hard=%s rows" % hard, got, want)

# (g) invalid records refused by SQLite --------------------------------------------
for keyed in (False, True):
    wh = fresh("refused_%s" % keyed)
    con = sqlite3.connect(wh.path)
    con.execute('CREATE TABLE "public.g" (id BIGINT NOT NULL%s, v TEXT CHECK (v <> \'bad\'), '
                '__loaded_at TIMESTAMPTZ)' % (" PRIMARY KEY" if keyed else ""))
    con.commit()
    con.close()
    keys = ["id"] if keyed else []
    msgs = [schema("g", po, keys)] + [rec("g", {"id": k, "v": "bad" if k == 5 else "ok"})
                                      for k in range(1, 9)]
    msgs.append({"type": "STATE", "value": {"g": keyed}})
    r = run(wh, msgs, invalid_records="skip")
    if harness.check_exit_0(problems, "(g) keyed=%s" % keyed, r):
        expect("(g) keyed=%s loaded" % keyed,
               [x[0] for x in wh.query('SELECT id FROM "public.g" ORDER BY id')],
               [1, 2, 3, 4, 6, 7, 8])
        harness.check_states(problems, "(g) keyed=%s" % keyed, r.stdout, [{"g": keyed}])

# (h) STATE only after commit -------------------------------------------------------
    if not keyed:
        r = run(wh, msgs[:3] + [{"type": "STATE", "value": {"h": 1}}] + msgs[3:])
        if harness.check_exit_1(problems, "(h) refused row, invalid_records fail", r):
            expect("(h) no STATE", r.stdout.strip(), "")
            expect("(h) nothing more committed", wh.count("public", "g"), 7)

# (j) primary-key moves ---------------------------------------------------------------
wh = fresh("rekey")
pk = {"id": {"type": "integer"}, "k": {"type": "integer"}, "v": {"type": "string"}}
r = run(wh, [schema("k", pk, ["id"]), rec("k", {"id": 1, "k": 1, "v": "a"}),
             rec("k", {"id": 2, "k": 1, "v": "b"})])
harness.check_exit_0(problems, "(j) first run", r)
r = run(wh, [schema("k", pk, ["id", "k"]), rec("k", {"id": 1, "k": 2, "v": "c"})])
if harness.check_exit_0(problems, "(j) key (id) -> (id, k)", r):
    expect("(j) new key", wh.query("SELECT name FROM pragma_table_info('public.k') WHERE pk > 0 "
                                   "ORDER BY pk"), [["id"], ["k"]])
    expect("(j) rows kept, upsert on the new key",
           wh.query('SELECT id, k, v FROM "public.k" ORDER BY id, k'),
           [[1, 1, "a"], [1, 2, "c"], [2, 1, "b"]])
r = run(wh, [schema("k", pk, ["k"]), rec("k", {"id": 3, "k": 3, "v": "d"}),
             {"type": "STATE", "value": {"j": 1}}])
if harness.check_exit_1(problems, "(j) key (k) over duplicates", r):
    expect("(j) refused move: no STATE", r.stdout.strip(), "")
    expect("(j) refused move: key and rows stay",
           [wh.query("SELECT name FROM pragma_table_info('public.k') WHERE pk > 0 ORDER BY pk"),
            wh.count("public", "k")], [[["id"], ["k"]], 3])

# (k) two loaders on one file take turns (BEGIN IMMEDIATE, busy_timeout) -----------------
wh = fresh("concurrent")
msgs = [schema("c", po, ["id"])]
for i in range(3000):
    msgs.append(rec("c", {"id": i % 700, "v": "v%05d" % i}))
    if i % 300 == 0:
        msgs.append({"type": "STATE", "value": {"i": i}})
cfg = wh.write_config(os.path.join(TMP, "concurrent.json"), "public", batch_size_rows=100)
path = os.path.join(TMP, "concurrent.singer")
harness.write_lines(path, [harness.jline(m) for m in msgs])
procs = [subprocess.Popen(harness.target_cmd() + ["--config", cfg, "--input", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
for i, p in enumerate(procs):
    _, err_text = p.communicate(timeout=120)
    if p.returncode != 0:
        problems.append("(k) concurrent run %d: exit %d: %s"
                        % (i, p.returncode, err_text.decode("utf-8", "replace")[-800:]))
expect("(k) rows after three concurrent runs",
       wh.query('SELECT count(*), min(v), max(v) FROM "public.c"'), [[700, "v02300", "v02999"]])

# (l) one compiled INSERT per write --------------------------------------------------------
wh = fresh("compiled")
trace = os.path.join(TMP, "sqliteodbc.trace")
conn = "DRIVER={SQLite3};Database=%s;TraceFile=%s" % (wh.path, trace)
msgs = [schema("many", po), schema("keyed", po, ["id"])]
for i in range(2500):
    msgs.append(rec("many", {"id": i, "v": "v%d" % i}))
    msgs.append(rec("keyed", {"id": i, "v": "k%d" % i}))
r = run(wh, msgs, odbc_connection_string=conn)
if harness.check_exit_0(problems, "(l) 2,500 rows per stream", r):
    expect("(l) appended rows", wh.query('SELECT count(*), sum(id), max(v) FROM "public.many"'),
           [[2500, 3123750, "v999"]])
    expect("(l) upserted rows", wh.query('SELECT count(*), sum(id), max(v) FROM "public.keyed"'),
           [[2500, 3123750, "k999"]])
    with open(trace, encoding="utf-8", errors="replace") as f:
        compiled = [ln for ln in f if ln.startswith("-- sqlite3_prepare") and "VALUES" in ln
                    and ('"public.many"' in ln or 'public.keyed"' in ln)]
    # one statement per write (batches, append and stage); before: one per 100 rows
    if not 2 <= len(compiled) <= 10:
        problems.append("(l) the bulk INSERT was compiled %d times for 5,000 rows"
                        % len(compiled))

# (m) one name for a long property across SCHEMAs ---------------------------------------------
wh = fresh("longnames")
long_prop = "p" * 100
r = run(wh, [schema("ln", {"id": {"type": "integer"}, long_prop: {"type": "string"}}, ["id"]),
             rec("ln", {"id": 1, long_prop: "first"}),
             schema("ln", {"id": {"type": "integer"}, long_prop: {"type": "string"},
                           "w": {"type": "string"}}, ["id"]),
             rec("ln", {"id": 2, long_prop: "second", "w": "x"})])
if harness.check_exit_0(problems, "(m) a 100-byte property in two SCHEMAs", r):
    long_cols = sorted(c for c in wh.columns("public", "ln") if c.startswith("ppp"))
    if len(long_cols) != 1:
        problems.append("(m) the long property became %d columns: %s"
                        % (len(long_cols), [len(c) for c in long_cols]))
    else:
        expect("(m) both records in the one column",
               wh.query('SELECT id, "%s" FROM "public.ln" ORDER BY id' % long_cols[0]),
               [[1, "first"], [2, "second"]])

# (i) secrets and a missing driver ---------------------------------------------------------
wh = fresh("secret")
r = run(wh, [schema("s", po), rec("s", {"id": 1, "v": "a"})],
        odbc_connection_string="DRIVER={NoSuchDriver};Database=%s;PWD=sekr1t-value" % wh.path)
if harness.check_exit_1(problems, "(i) unknown ODBC driver", r):
    if "sekr1t" in r.stderr:
        problems.append("(i) the connection string's password is in the log: %s" % r.stderr[-500:])
    if "odbc_connection_string" not in r.stderr:
        problems.append("(i) the error does not say which setting failed: %s" % r.stderr[-500:])

sys.exit(harness.report(problems))
