#!/usr/bin/env python3
"""ACTIVATE_VERSION, the _sdc metadata columns, hard_delete, load_method and
primary-key moves (issue #3).  Each case loads into its own target schema.

  (a) soft ACTIVATE_VERSION over three runs: v1 full load of a keyed and an
      unkeyed stream; v2 full load missing keys 2 and 4 -> those rows get
      _sdc_deleted_at (from the v2 run's server time), the re-sent rows stay
      or become unmarked; the keyed stream's log counts the rows marked; v3
      with no records marks the rest and rows marked by v2 keep their mark;
      column types _sdc_table_version bigint, _sdc_deleted_at timestamptz;
  (b) hard ACTIVATE_VERSION (hard_delete): the same two full loads -> the
      missing keys and the unkeyed v1 rows are deleted;
  (c) ACTIVATE_VERSION before its stream's SCHEMA: no table -> info log,
      nothing created, exit 0; an existing unversioned table -> untouched;
      an existing versioned table (soft and hard) -> older and NULL-version
      rows retired; ACTIVATE, SCHEMA, records, ACTIVATE un-marks what comes
      back; a stream first seen in an ACTIVATE_VERSION gets a versioned table;
  (d) ACTIVATE_VERSION commits everything pending (all streams) before it;
      a version that is not a 64-bit integer (ACTIVATE_VERSION 1.5,
      9223372036854775808, RECORD "version" "x" or 2.5) -> exit 1 naming the
      line, nothing of the failing run committed;
  (e) add_metadata_columns: the six _sdc_* columns and their types;
      _sdc_extracted_at = time_extracted (NULL when absent or invalid);
      _sdc_received_at = __loaded_at, non-decreasing in input order;
      _sdc_batched_at <= _sdc_received_at (also with batch_size_rows 1) and
      one value per batch;
      _sdc_sequence strictly increasing in input order across streams,
      batches and runs; _sdc_table_version = RECORD version; the record's
      own _sdc_deleted_at (a non-timestamp mark gets the receive time and a
      warning at the end); a declared property named like a metadata column
      gets its own suffixed column (a declared _sdc_deleted_at is the mark);
      the alias add_record_metadata;
  (f) hard_delete CDC: in one batch insert-then-delete -> absent,
      delete-then-insert -> present, a delete of a key never loaded is
      harmless, a null mark is no deletion; across batches and runs;
  (g) soft deletion marks (hard_delete off): a marked row comes back
      unmarked when its key is sent without a mark (same batch, next
      batch, next run, same data);
  (h) load_method append-only with key_properties: no primary key, every
      record a row (duplicates kept, across runs); a later auto run with
      keys cannot move the key onto the duplicates: from (none) to (id);
  (i) load_method upsert: keyed streams upsert; a stream without
      key_properties -> exit 1 naming the stream;
  (j) load_method overwrite: rows replaced by the run's rows, the STATE
      only after the swap (exactly the last), primary key named
      <table>_pkey, column comments kept, a leftover shadow table (other
      columns, junk row) dropped, a second overwrite run works, an unkeyed
      stream is replaced in the same run; a live table whose name has
      59+ bytes with a multibyte character across byte 58;
  (k) overwrite failure: a bad record after committed shadow batches ->
      exit 1 naming the line, no STATE, the live table identical (oid,
      rows with xmin/ctid, columns, constraints, comments); the next
      successful run holds only its own rows and leaves no shadow;
  (l) primary-key move: rows kept, upsert on the new key, log line, also
      within one run; a keyless SCHEMA never drops a live key (refused under auto);
  (m) refused moves: duplicates -> exit 1 with the message naming both keys,
      the PostgreSQL error and DETAIL naming the duplicated key; NULLs in the
      new key; the old key and rows stay, no STATE;
  (n) composite keys: (k1) -> (k1, k2); (k2, k1) is the same key (no move);
      (k2) refused (duplicates); then (v), a key of other columns;
  (o) the meltanolabs conformance files with hard_delete: deletes_data_properly
      then deletes_data_properly_2 -> 0 rows; activate_version_hard -> 7
      rows; soft then soft_with_delete (soft) -> 7 rows, South America
      marked.

Checks whose problem text starts with KNOWN BUG fail until the bug named
there is fixed: (e) _sdc_batched_at is read from the clock after the first
record of a batch got its receive time (src/batch.c tgt_batch_encode: update
loaded_at, then begin_batch), so that record has batched_at > received_at;
(j) drivers/postgres/pg_swap.c rename_key builds "<live>_pkey" with %.58s,
which can cut a UTF-8 character in two: the swap fails.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
# the corpus tests/conformance.py runs (CONFORMANCE_DIR, default <repo>/fixtures/conformance)
CONFORMANCE = os.path.join(
    os.environ.get("CONFORMANCE_DIR")
    or os.path.join(harness.REPO_ROOT, "fixtures", "conformance"),
    "meltanolabs")
TS = "timestamp with time zone"


def problem(msg):
    problems.append(msg)


# --- messages ----------------------------------------------------------------------

def schema_msg(stream, props, keys):
    m = {"type": "SCHEMA", "stream": stream,
         "schema": {"type": "object", "properties": props}}
    if keys is not None:
        m["key_properties"] = keys
    return m


def rec(stream, record, version=None, extracted=None):
    m = {"type": "RECORD", "stream": stream, "record": record}
    if version is not None:
        m["version"] = version
    if extracted is not None:
        m["time_extracted"] = extracted
    return m


def activate(stream, version):
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def state(value):
    return {"type": "STATE", "value": value}


IDV = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}
ICV = {"id": {"type": "integer"}, "code": {"type": ["null", "string"]},
       "v": {"type": ["null", "string"]}}


# --- running -----------------------------------------------------------------------

class Case:
    """One case: its target schema, a config writer and numbered input files."""

    def __init__(self, name, db, tmp, schema):
        self.name, self.db, self.tmp, self.schema = name, db, tmp, schema
        self.n = 0

    def config(self, **settings):
        self.n += 1
        return harness.write_config(os.path.join(self.tmp, "%s_%d.json" % (self.schema, self.n)),
                                    self.db, self.schema, **settings)

    def run(self, cfg, msgs):
        """Writes msgs (dicts, or str lines written as they are) and loads them."""
        self.n += 1
        path = os.path.join(self.tmp, "%s_%d.singer" % (self.schema, self.n))
        harness.write_lines(path, [m if isinstance(m, str) else harness.jline(m) for m in msgs])
        return harness.run_input(cfg, path)

    def ok(self, label, r, states=None):
        """Exit 0 (else a problem, False); with states, stdout must be exactly those."""
        if not harness.check_exit_0(problems, "(%s) %s" % (self.name, label), r):
            return False
        if states is not None:
            harness.check_states(problems, "(%s) %s" % (self.name, label), r.stdout, states)
        return True

    def fails(self, label, r, line=None, states=()):
        """Exit 1, the error naming input line `line`, stdout exactly `states`."""
        lab = "(%s) %s" % (self.name, label)
        if not harness.check_exit_1(problems, lab, r):
            return False
        if line is not None and not re.search(r"\bline %d\b" % line, r.stderr):
            problem("%s: the error does not name input line %d: %s"
                    % (lab, line, r.stderr.strip()[-800:]))
        harness.check_states(problems, lab, r.stdout, list(states))
        return True

    def q(self, sql):
        return harness.query_json(sql, self.db)

    def s(self, sql):
        return harness.scalar(sql, self.db)

    def t(self, table):
        return harness.qualified(self.schema, table)

    def exists(self, table):
        return harness.table_exists(self.schema, table, self.db)

    def rows(self, table, cols, order):
        """[tuple of cols] in ORDER BY order; [] (after a problem) without the table."""
        if not self.exists(table):
            problem("(%s) no table %s.%s" % (self.name, self.schema, table))
            return []
        sel = ", ".join("%s AS c%d" % (c, i) for i, c in enumerate(cols))
        return [tuple(r["c%d" % i] for i in range(len(cols)))
                for r in self.q("SELECT %s FROM %s ORDER BY %s" % (sel, self.t(table), order))]

    def expect_rows(self, label, table, cols, order, want):
        got = self.rows(table, cols, order)
        if got != want:
            problem("(%s) %s: %s (%s) holds %r, expected %r"
                    % (self.name, label, table, ", ".join(cols), got, want))
        return got

    def columns(self, table):
        return harness.columns(self.schema, table, self.db)

    def expect_types(self, label, table, want):
        """Every column of want has that type (other columns may exist)."""
        have = self.columns(table)
        for col, typ in want.items():
            if have.get(col) != typ:
                problem("(%s) %s: column %s.%s is %r, expected %r (columns: %r)"
                        % (self.name, label, table, col, have.get(col), typ, have))
        return have

    def pk(self, table):
        """(constraint name, [columns in key order]) or (None, [])."""
        rows = self.q(
            "SELECT con.conname AS name, a.attname AS col FROM pg_constraint con "
            "CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum "
            "WHERE con.contype = 'p' AND con.conrelid = to_regclass(%s) ORDER BY k.ord"
            % harness.sql_literal(self.t(table)))
        if not rows:
            return None, []
        return rows[0]["name"], [r["col"] for r in rows]

    def expect_pk(self, label, table, cols, name=None):
        have_name, have = self.pk(table)
        if have != cols:
            problem("(%s) %s: primary key of %s is %r, expected %r"
                    % (self.name, label, table, have, cols))
        if name is not None and have_name != name:
            problem("(%s) %s: primary key constraint of %s is named %r, expected %r"
                    % (self.name, label, table, have_name, name))

    def log_has(self, label, r, text):
        if text not in r.stderr:
            problem("(%s) %s: stderr lacks %r: %s" % (self.name, label, text,
                                                      r.stderr.strip()[-1200:]))

    def now_us(self):
        return int(self.s("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"))


def us(col):
    """SQL: a timestamptz column as integer microseconds since the epoch."""
    return "(extract(epoch FROM %s) * 1000000)::bigint" % col


# --- (a) soft ACTIVATE_VERSION across runs -----------------------------------------

def full_load(k, u, version, keyed_rows, unkeyed_ids, st):
    """ACTIVATE v, the records of version v, ACTIVATE v, STATE (a full-table sync)."""
    msgs = [schema_msg(k, IDV, ["id"]), schema_msg(u, IDV, []), activate(k, version),
            activate(u, version)]
    msgs += [rec(k, {"id": i, "v": v}, version=version) for i, v in keyed_rows]
    msgs += [rec(u, {"id": i, "v": "u%d" % version}, version=version) for i in unkeyed_ids]
    msgs += [activate(k, version), activate(u, version), state(st)]
    return msgs


def case_a(db, tmp):
    c = Case("a", db, tmp, "ver_soft")
    cfg = c.config()
    K, U = "vkeyed", "vlog"
    r = c.run(cfg, full_load(K, U, 1, [(1, "a"), (2, "b"), (3, "c"), (4, "d")], [1, 2, 3],
                             {"a": 1}))
    if not c.ok("run v1", r, [{"a": 1}]):
        return
    for t in (K, U):
        c.expect_types("run v1", t, {"id": "bigint", "v": "text", "_sdc_table_version": "bigint",
                                     "_sdc_deleted_at": TS})
    c.log_has("run v1", r, 'stream "%s" uses table versions: keeping _sdc_table_version and '
              '_sdc_deleted_at' % K)
    c.expect_rows("run v1", K, ["id", "v", "_sdc_table_version", "_sdc_deleted_at"], "id",
                  [(1, "a", 1, None), (2, "b", 1, None), (3, "c", 1, None), (4, "d", 1, None)])
    c.expect_rows("run v1", U, ["id", "_sdc_table_version", "_sdc_deleted_at"], "id",
                  [(1, 1, None), (2, 1, None), (3, 1, None)])
    c.expect_pk("run v1", K, ["id"])
    c.expect_pk("run v1", U, [])

    before = c.now_us()
    r = c.run(cfg, full_load(K, U, 2, [(1, "a2"), (3, "c")], [1, 2], {"a": 2}))
    after = c.now_us()
    if not c.ok("run v2", r, [{"a": 2}]):
        return
    # the opening ACTIVATE_VERSION 2 marks all four v1 rows; 1 and 3 come back
    c.log_has("run v2", r, 'stream "%s": version 2 activated; 4 rows of older versions marked '
              'in _sdc_deleted_at' % K)
    got = c.expect_rows("run v2", K, ["id", "v", "_sdc_table_version",
                                      "_sdc_deleted_at IS NOT NULL"], "id",
                        [(1, "a2", 2, False), (2, "b", 1, True), (3, "c", 2, False),
                         (4, "d", 1, True)])
    c.expect_rows("run v2", U, ["id", "v", "_sdc_table_version", "_sdc_deleted_at IS NOT NULL"],
                  "_sdc_table_version, id",
                  [(1, "u1", 1, True), (2, "u1", 1, True), (3, "u1", 1, True),
                   (1, "u2", 2, False), (2, "u2", 2, False)])
    marks = c.q("SELECT id, %s AS m FROM %s WHERE _sdc_deleted_at IS NOT NULL ORDER BY id"
                % (us("_sdc_deleted_at"), c.t(K)))
    for m in marks:
        if not before <= m["m"] <= after:
            problem("(a) run v2: row %s marked at %s us, not within the run (%s .. %s)"
                    % (m["id"], m["m"], before, after))
    # v3 without records: the rest is marked, earlier marks stay as they were
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), activate(K, 3), state({"a": 3})])
    if c.ok("run v3", r, [{"a": 3}]) and got:
        c.log_has("run v3", r, 'stream "%s": version 3 activated; 2 rows of older versions '
                  'marked in _sdc_deleted_at' % K)
        again = c.q("SELECT id, %s AS m FROM %s WHERE id IN (2, 4) ORDER BY id"
                    % (us("_sdc_deleted_at"), c.t(K)))
        if [(x["id"], x["m"]) for x in again] != [(m["id"], m["m"]) for m in marks]:
            problem("(a) run v3: rows 2 and 4 were marked again: %r, before %r (rows already "
                    "marked keep the time they were first marked)" % (again, marks))
        c.expect_rows("run v3", K, ["id", "_sdc_deleted_at IS NOT NULL"], "id",
                      [(1, True), (2, True), (3, True), (4, True)])


# --- (b) hard ACTIVATE_VERSION across runs -----------------------------------------

def case_b(db, tmp):
    c = Case("b", db, tmp, "ver_hard")
    cfg = c.config(hard_delete=True)
    K, U = "hkeyed", "hlog"
    r = c.run(cfg, full_load(K, U, 1, [(1, "a"), (2, "b"), (3, "c"), (4, "d")], [1, 2, 3],
                             {"b": 1}))
    if not c.ok("run v1", r, [{"b": 1}]):
        return
    c.expect_types("run v1", K, {"_sdc_table_version": "bigint", "_sdc_deleted_at": TS})
    c.expect_rows("run v1", K, ["id", "_sdc_table_version"], "id",
                  [(1, 1), (2, 1), (3, 1), (4, 1)])
    r = c.run(cfg, full_load(K, U, 2, [(1, "a2"), (3, "c")], [1, 2], {"b": 2}))
    if not c.ok("run v2", r, [{"b": 2}]):
        return
    c.log_has("run v2", r, 'stream "%s": version 2 activated; 4 rows of older versions deleted'
              % K)
    c.expect_rows("run v2", K, ["id", "v", "_sdc_table_version", "_sdc_deleted_at"], "id",
                  [(1, "a2", 2, None), (3, "c", 2, None)])
    c.expect_rows("run v2", U, ["id", "v", "_sdc_table_version", "_sdc_deleted_at"], "id",
                  [(1, "u2", 2, None), (2, "u2", 2, None)])


# --- (c) ACTIVATE_VERSION before SCHEMA --------------------------------------------

def case_c(db, tmp):
    c = Case("c", db, tmp, "ver_early")
    cfg = c.config()
    # no table at all
    r = c.run(cfg, [activate("ghost", 5), state({"c": 0})])
    if c.ok("no table", r, [{"c": 0}]):
        c.log_has("no table", r, 'stream "ghost": ACTIVATE_VERSION 5 before its SCHEMA, and '
                  '"ver_early"."ghost" has no older versions to retire')
        if c.exists("ghost"):
            problem("(c) ACTIVATE_VERSION of an unknown stream created a table")
    # an unversioned table from an earlier run: left alone
    P = "plain"
    r = c.run(cfg, [schema_msg(P, IDV, ["id"]), rec(P, {"id": 1, "v": "p"})])
    if c.ok("plain setup", r):
        cols = c.columns(P)
        r = c.run(cfg, [activate(P, 5), state({"c": 1})])
        if c.ok("plain table", r, [{"c": 1}]):
            c.log_has("plain table", r, 'stream "%s": ACTIVATE_VERSION 5 before its SCHEMA, and '
                      '"ver_early"."%s" has no older versions to retire' % (P, P))
            if c.columns(P) != cols:
                problem("(c) ACTIVATE_VERSION before SCHEMA changed the columns of an "
                        "unversioned table: %r -> %r" % (cols, c.columns(P)))
            c.expect_rows("plain table", P, ["id", "v"], "id", [(1, "p")])
    # a versioned table from an earlier run, soft: retired before the SCHEMA,
    # then what the new version sends comes back unmarked
    V = "versioned"
    r = c.run(cfg, [schema_msg(V, IDV, ["id"]), rec(V, {"id": 1, "v": "a"}, version=1),
                    rec(V, {"id": 2, "v": "b"}, version=1), rec(V, {"id": 3, "v": "c"})])
    if c.ok("versioned setup", r):
        c.expect_rows("versioned setup", V, ["id", "_sdc_table_version"], "id",
                      [(1, 1), (2, 1), (3, None)])
        r = c.run(cfg, [activate(V, 2), state({"c": 2})])
        if c.ok("versioned, ACTIVATE only", r, [{"c": 2}]):
            c.log_has("versioned, ACTIVATE only", r,
                      'stream "%s": version 2 activated; 3 rows of older versions marked in '
                      '_sdc_deleted_at' % V)
            c.expect_rows("versioned, ACTIVATE only", V, ["id", "_sdc_deleted_at IS NOT NULL"],
                          "id", [(1, True), (2, True), (3, True)])
        r = c.run(cfg, [activate(V, 3), schema_msg(V, IDV, ["id"]),
                        rec(V, {"id": 2, "v": "b3"}, version=3), activate(V, 3), state({"c": 3})])
        if c.ok("versioned, ACTIVATE then SCHEMA", r, [{"c": 3}]):
            c.expect_rows("versioned, ACTIVATE then SCHEMA", V,
                          ["id", "v", "_sdc_table_version", "_sdc_deleted_at IS NOT NULL"], "id",
                          [(1, "a", 1, True), (2, "b3", 3, False), (3, "c", None, True)])
    # hard: ACTIVATE_VERSION before SCHEMA deletes the older rows
    cfg_h = c.config(hard_delete=True)
    H = "versioned_hard"
    r = c.run(cfg_h, [schema_msg(H, IDV, ["id"]), rec(H, {"id": 1, "v": "a"}, version=1),
                      rec(H, {"id": 2, "v": "b"}, version=2)])
    if c.ok("hard setup", r):
        r = c.run(cfg_h, [activate(H, 2), state({"c": 4})])
        if c.ok("hard, ACTIVATE only", r, [{"c": 4}]):
            c.log_has("hard, ACTIVATE only", r, 'stream "%s": version 2 activated; 1 rows of '
                      'older versions deleted' % H)
            c.expect_rows("hard, ACTIVATE only", H, ["id", "_sdc_table_version"], "id", [(2, 2)])
    # a stream that only gets ACTIVATE_VERSION, then its SCHEMA: the table is versioned
    N = "fresh"
    r = c.run(cfg, [activate(N, 7), schema_msg(N, IDV, ["id"]), rec(N, {"id": 1, "v": "x"}),
                    state({"c": 5})])
    if c.ok("fresh table after ACTIVATE", r, [{"c": 5}]):
        c.expect_types("fresh table after ACTIVATE", N, {"_sdc_table_version": "bigint",
                                                          "_sdc_deleted_at": TS})
        c.expect_rows("fresh table after ACTIVATE", N, ["id", "_sdc_table_version",
                                                         "_sdc_deleted_at"], "id",
                      [(1, None, None)])


# --- (d) ACTIVATE_VERSION commits what is pending; bad versions --------------------

def case_d(db, tmp):
    c = Case("d", db, tmp, "ver_bad")
    cfg = c.config(batch_size_rows=1000)
    K, O = "pend_k", "pend_o"
    msgs = [schema_msg(K, IDV, ["id"]), schema_msg(O, IDV, []),          # 1, 2
            rec(K, {"id": 1, "v": "a"}, version=1), rec(O, {"id": 1}),     # 3, 4
            rec(K, {"id": 2, "v": "b"}, version=1), state({"d": 1}),       # 5, 6
            activate(K, 1),                                                # 7: commits all
            rec(O, {"id": 2}), state({"d": 2}),                            # 8, 9
            {"type": "ACTIVATE_VERSION", "stream": K, "version": 1.5}]     # 10
    r = c.run(cfg, msgs)
    if c.fails("ACTIVATE_VERSION 1.5", r, line=10, states=[{"d": 1}]):
        if "not a 64-bit integer" not in r.stderr:
            problem("(d) ACTIVATE_VERSION 1.5: the error does not say the version is not a "
                    "64-bit integer: %s" % r.stderr.strip()[-600:])
        c.expect_rows("pending rows committed by ACTIVATE_VERSION", K, ["id", "v"], "id",
                      [(1, "a"), (2, "b")])
        c.expect_rows("pending rows committed by ACTIVATE_VERSION", O, ["id"], "id", [(1,)])
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), activate(K, 9223372036854775807),
                    '{"type": "ACTIVATE_VERSION", "stream": "%s", "version": '
                    '9223372036854775808}' % K])
    c.fails("ACTIVATE_VERSION 2^63", r, line=3)
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), rec(K, {"id": 3, "v": "c"}, version=4),
                    rec(K, {"id": 4, "v": "d"}, version="x")])
    c.fails("RECORD version \"x\"", r, line=3)
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), rec(K, {"id": 5}, version=2.5)])
    c.fails("RECORD version 2.5", r, line=2)
    c.expect_rows("after the failing runs", K, ["id"], "id", [(1,), (2,)])


# --- (e) metadata columns ----------------------------------------------------------

META = {"_sdc_extracted_at": TS, "_sdc_received_at": TS, "_sdc_batched_at": TS,
        "_sdc_deleted_at": TS, "_sdc_table_version": "bigint", "_sdc_sequence": "bigint"}
NIV = {"n": {"type": "integer"}, "id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def case_e(db, tmp):
    c = Case("e", db, tmp, "meta")
    cfg = c.config(add_metadata_columns=True, batch_size_rows=3)
    K, U = "mk", "mu"
    t1, t2 = "2023-01-23T15:07:11.563063Z", "2024-02-29T23:59:59.5+02:00"
    bad_mark = "2019-12-18T13:19:44+00:00+00:00"
    msgs = [schema_msg(K, NIV, ["id"]), schema_msg(U, NIV, [])]
    n = 0
    # interleaved streams; n = input order; several batches of 3 rows per stream
    plan = [(K, {}, t1, None), (U, {}, t2, None), (K, {}, None, 7), (U, {}, "not a time", 7),
            (K, {"_sdc_deleted_at": "2024-05-01T00:00:00Z"}, t1, None), (U, {}, t1, None),
            (U, {"_sdc_deleted_at": bad_mark}, t1, None), (K, {}, t1, None), (K, {}, t1, None),
            (U, {}, t1, None), (K, {}, t1, None), (U, {}, t1, None)]
    for stream, extra, extracted, version in plan:
        n += 1
        record = {"n": n, "id": n, "v": "r%d" % n}
        record.update(extra)
        msgs.append(rec(stream, record, version=version, extracted=extracted))
    msgs.append(state({"e": 1}))
    r = c.run(cfg, msgs)
    if not c.ok("run 1", r, [{"e": 1}]):
        return
    for t in (K, U):
        c.expect_types("run 1", t, dict(META, __loaded_at=TS, n="bigint", id="bigint", v="text"))
    c.log_has("run 1", r, 'stream "%s": 1 _sdc_deleted_at values were not timestamps; those rows '
              'are marked with their receive time' % U)
    if not re.search(r"warning: stream \"%s\": 1 _sdc_deleted_at" % U, r.stderr):
        problem("(e) the bad deletion mark is not reported as a warning: %s"
                % r.stderr.strip()[-800:])
    sel = ("SELECT n, %s AS ext, %s AS rec, %s AS bat, %s AS seq, %s AS loaded, "
           "_sdc_table_version AS ver, %s AS del FROM %%s"
           % (us("_sdc_extracted_at"), us("_sdc_received_at"), us("_sdc_batched_at"),
              "_sdc_sequence", us("__loaded_at"), us("_sdc_deleted_at")))
    rows = sorted(c.q(sel % c.t(K)) + c.q(sel % c.t(U)), key=lambda x: x["n"])
    if [x["n"] for x in rows] != list(range(1, n + 1)):
        problem("(e) rows n %r, expected 1..%d" % ([x["n"] for x in rows], n))
        return
    want_ext = {t1: c.s("SELECT %s FROM (SELECT '%s'::timestamptz AS x) q" % (us("x"), t1)),
                t2: c.s("SELECT %s FROM (SELECT '%s'::timestamptz AS x) q" % (us("x"), t2))}
    for (stream, extra, extracted, version), x in zip(plan, rows):
        want = int(want_ext[extracted]) if extracted in want_ext else None
        if x["ext"] != want:
            problem("(e) n=%d: _sdc_extracted_at %s us, expected %s (time_extracted %r)"
                    % (x["n"], x["ext"], want, extracted))
        if x["ver"] != version:
            problem("(e) n=%d: _sdc_table_version %r, expected %r" % (x["n"], x["ver"], version))
        if x["rec"] is None or x["rec"] != x["loaded"]:
            problem("(e) n=%d: _sdc_received_at %r differs from __loaded_at %r"
                    % (x["n"], x["rec"], x["loaded"]))
        mark = extra.get("_sdc_deleted_at")
        if mark is None and x["del"] is not None:
            problem("(e) n=%d: _sdc_deleted_at %r, expected NULL" % (x["n"], x["del"]))
        elif mark == bad_mark and x["del"] != x["rec"]:
            problem("(e) n=%d: a deletion mark that is not a timestamp gave _sdc_deleted_at %r, "
                    "expected the receive time %r" % (x["n"], x["del"], x["rec"]))
        elif mark not in (None, bad_mark):
            want_del = int(c.s("SELECT %s FROM (SELECT '%s'::timestamptz AS x) q"
                               % (us("x"), mark)))
            if x["del"] != want_del:
                problem("(e) n=%d: _sdc_deleted_at %r, expected %r (%s)"
                        % (x["n"], x["del"], want_del, mark))
    seqs = [x["seq"] for x in rows]
    if any(b <= a for a, b in zip(seqs, seqs[1:])):
        problem("(e) _sdc_sequence is not strictly increasing in input order: %r" % seqs)
    recs = [x["rec"] for x in rows]
    if any(b < a for a, b in zip(recs, recs[1:])):
        problem("(e) _sdc_received_at decreases in input order: %r" % recs)
    late = [(x["n"], x["bat"], x["rec"]) for x in rows if x["bat"] is None or x["bat"] > x["rec"]]
    if late:
        problem("(e) KNOWN BUG (batched_at taken after the batch's first record is received, "
                "src/batch.c tgt_batch_encode): _sdc_batched_at > _sdc_received_at for "
                "(n, batched, received) %r" % late)
    off = [(x["n"], x["seq"], x["rec"]) for x in rows
           if not 0 <= x["seq"] - x["rec"] < 1000000]
    if off:
        problem("(e) _sdc_sequence is not the receive time in microseconds (or just above it) "
                "for (n, sequence, received us) %r" % off)
    bats = [x["bat"] for x in rows]
    if any(b < a for a, b in zip(bats, bats[1:])) or len(set(bats)) < 2:
        problem("(e) _sdc_batched_at in input order %r: expected non-decreasing with one value "
                "per batch (several batches)" % bats)
    # every record its own batch: each one's batch begins when it arrives
    B = "one_per_batch"
    r = c.run(c.config(add_metadata_columns=True, batch_size_rows=1),
              [schema_msg(B, NIV, [])] + [rec(B, {"n": i, "id": i}) for i in range(40)])
    if c.ok("batch_size_rows 1", r):
        late = [(x["n"], x["b"], x["r"]) for x in c.q(
            "SELECT n, %s AS b, %s AS r FROM %s WHERE _sdc_batched_at > _sdc_received_at "
            "ORDER BY n" % (us("_sdc_batched_at"), us("_sdc_received_at"), c.t(B)))]
        if late:
            problem("(e) KNOWN BUG (batched_at taken after the batch's first record is "
                    "received, src/batch.c tgt_batch_encode): batch_size_rows 1: _sdc_batched_at > "
                    "_sdc_received_at in %d of 40 rows, e.g. (n, batched, received) %r"
                    % (len(late), late[:3]))
    # run 2: sequences go on increasing; the alias add_record_metadata
    cfg2 = c.config(add_record_metadata=True)
    r = c.run(cfg2, [schema_msg(U, NIV, []), rec(U, {"n": 100, "id": 100}),
                     rec(U, {"n": 101, "id": 101})])
    if c.ok("run 2 (add_record_metadata)", r):
        s2 = [x["s"] for x in c.q("SELECT _sdc_sequence AS s FROM %s WHERE n >= 100 ORDER BY n"
                                  % c.t(U))]
        if len(s2) != 2 or s2[0] <= max(seqs) or s2[1] <= s2[0]:
            problem("(e) run 2: _sdc_sequence %r, expected increasing and above run 1's %r"
                    % (s2, max(seqs)))
        bad = c.s("SELECT count(*) FROM %s WHERE n >= 100 AND (_sdc_received_at IS NULL OR "
                  "_sdc_batched_at IS NULL OR _sdc_sequence IS NULL)" % c.t(U))
        if bad != "0":
            problem("(e) add_record_metadata: %s rows without metadata" % bad)
    # a new table with the alias gets the columns too
    A = "alias_new"
    r = c.run(cfg2, [schema_msg(A, IDV, ["id"]), rec(A, {"id": 1}, extracted=t1)])
    if c.ok("add_record_metadata, new table", r):
        c.expect_types("add_record_metadata, new table", A, META)
    # declared properties named like metadata columns get suffixed columns
    # (the target's own columns keep their meaning); a declared
    # _sdc_deleted_at is the deletion mark
    D = "declared"
    props = {"id": {"type": "integer"}, "_sdc_extracted_at": {"type": ["null", "string"]},
             "_sdc_sequence": {"type": ["null", "integer"]},
             "_sdc_deleted_at": {"type": ["null", "string"]}}
    r = c.run(cfg, [schema_msg(D, props, ["id"]),
                    rec(D, {"id": 1, "_sdc_extracted_at": "yesterday", "_sdc_sequence": 5,
                            "_sdc_deleted_at": "soon"}, extracted=t1),
                    rec(D, {"id": 2}, extracted=t1)])
    if c.ok("declared metadata names", r):
        xa, sq = harness.suffixed("_sdc_extracted_at"), harness.suffixed("_sdc_sequence")
        have = c.expect_types("declared metadata names", D,
                              dict(META, _sdc_deleted_at="text", **{xa: "text", sq: "bigint"}))
        if sorted(have) != sorted(["id", "__loaded_at", xa, sq] + list(META)):
            problem("(e) declared metadata names: columns %r" % sorted(have))
        c.expect_rows("declared metadata names", D,
                      ["id", xa, sq, "_sdc_deleted_at", "_sdc_extracted_at IS NOT NULL",
                       "_sdc_sequence > 5"], "id",
                      [(1, "yesterday", 5, "soon", True, True), (2, None, None, None, True, True)])
        c.log_has("declared metadata names", r, 'property "_sdc_sequence" is loaded into column '
                  '"%s"' % sq)


# --- (f) hard_delete CDC -----------------------------------------------------------

def mark(record, at="2024-06-01T12:00:00Z"):
    return dict(record, _sdc_deleted_at=at)


def case_f(db, tmp):
    c = Case("f", db, tmp, "cdc")
    cfg = c.config(hard_delete=True, batch_size_rows=1000)
    S = "orders"
    msgs = [schema_msg(S, IDV, ["id"]),
            rec(S, {"id": 1, "v": "one"}),
            rec(S, {"id": 2, "v": "two"}), rec(S, mark({"id": 2, "v": "two"})),  # -> absent
            rec(S, mark({"id": 3})), rec(S, {"id": 3, "v": "three"}),          # -> present
            rec(S, {"id": 4, "v": "four"}), rec(S, {"id": 4, "v": "four2"}),
            rec(S, mark({"id": 5})),                                            # never there
            rec(S, {"id": 6, "v": "six", "_sdc_deleted_at": None}),             # no deletion
            state({"f": 1})]
    r = c.run(cfg, msgs)
    if not c.ok("one batch", r, [{"f": 1}]):
        return
    have = c.expect_types("one batch", S, {"id": "bigint", "v": "text", "_sdc_deleted_at": TS})
    if "_sdc_table_version" in have:
        problem("(f) hard_delete alone added _sdc_table_version: %r" % have)
    c.expect_rows("one batch", S, ["id", "v", "_sdc_deleted_at"], "id",
                  [(1, "one", None), (3, "three", None), (4, "four2", None), (6, "six", None)])
    # across batches (batch_size_rows 2) and against rows of the earlier run
    cfg2 = c.config(hard_delete=True, batch_size_rows=2)
    msgs = [schema_msg(S, IDV, ["id"]),
            rec(S, mark({"id": 1})), rec(S, {"id": 7, "v": "seven"}),           # batch 1
            rec(S, {"id": 2, "v": "two again"}), rec(S, mark({"id": 7})),       # batch 2
            rec(S, mark({"id": 4}, at="2019-12-18T13:19:44+00:00+00:00")),     # batch 3
            rec(S, {"id": 8, "v": "eight"}),
            rec(S, {"id": 3, "v": "three2"}), state({"f": 2})]                  # batch 4
    r = c.run(cfg2, msgs)
    if c.ok("across batches", r, [{"f": 2}]):
        c.expect_rows("across batches", S, ["id", "v", "_sdc_deleted_at"], "id",
                      [(2, "two again", None), (3, "three2", None), (6, "six", None),
                       (8, "eight", None)])


# --- (g) soft marks and un-marking -------------------------------------------------

def case_g(db, tmp):
    c = Case("g", db, tmp, "unmark")
    cfg = c.config(add_metadata_columns=True, batch_size_rows=2)
    S = "items"
    at = "2024-06-01T12:00:00Z"
    r = c.run(cfg, [schema_msg(S, IDV, ["id"]),
                    rec(S, mark({"id": 1, "v": "a"}, at)), rec(S, {"id": 1, "v": "a"}),  # batch 1
                    rec(S, mark({"id": 2, "v": "b"}, at)), rec(S, mark({"id": 3, "v": "c"}, at)),
                    rec(S, {"id": 2, "v": "b"}),                                      # batch 3
                    state({"g": 1})])
    if not c.ok("run 1", r, [{"g": 1}]):
        return
    c.expect_rows("run 1", S, ["id", "v", "_sdc_deleted_at = '%s'::timestamptz" % at,
                               "_sdc_deleted_at IS NULL"], "id",
                  [(1, "a", None, True), (2, "b", None, True), (3, "c", True, False)])
    r = c.run(cfg, [schema_msg(S, IDV, ["id"]), rec(S, {"id": 3, "v": "c"}), state({"g": 2})])
    if c.ok("run 2", r, [{"g": 2}]):
        c.expect_rows("run 2: the row comes back with the same data", S,
                      ["id", "v", "_sdc_deleted_at"], "id",
                      [(1, "a", None), (2, "b", None), (3, "c", None)])


# --- (h) append-only ---------------------------------------------------------------

def case_h(db, tmp):
    c = Case("h", db, tmp, "append")
    cfg = c.config(load_method="append-only")
    S = "events"
    for run, ids in ((1, [1, 1, 2]), (2, [2, 3])):
        r = c.run(cfg, [schema_msg(S, IDV, ["id"])] +
                  [rec(S, {"id": i, "v": "run%d" % run}) for i in ids] + [state({"h": run})])
        if not c.ok("run %d" % run, r, [{"h": run}]):
            return
    c.expect_pk("append-only", S, [])
    c.expect_rows("append-only", S, ["id", "v"], "v, id",
                  [(1, "run1"), (1, "run1"), (2, "run1"), (2, "run2"), (3, "run2")])
    # auto with keys afterwards: the duplicates refuse the new key
    r = c.run(c.config(), [schema_msg(S, IDV, ["id"]), rec(S, {"id": 9}), state({"h": 3})])
    if c.fails("auto after append-only", r, line=1):
        c.log_has("auto after append-only", r, 'stream "%s": cannot move the primary key of '
                  '"append"."%s" from (none) to (id): PostgreSQL: could not create unique index'
                  % (S, S))
        c.expect_pk("auto after append-only", S, [])
        if harness.count_rows("append", S, db) != 5:
            problem("(h) the refused key move changed the rows")


# --- (i) upsert --------------------------------------------------------------------

def case_i(db, tmp):
    c = Case("i", db, tmp, "upsert")
    cfg = c.config(load_method="upsert")
    K, N, M = "keyed", "keyless", "nokeys"
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), rec(K, {"id": 1, "v": "a"}),
                    rec(K, {"id": 1, "v": "b"}), state({"i": 1})])
    if c.ok("keyed", r, [{"i": 1}]):
        c.expect_rows("keyed", K, ["id", "v"], "id", [(1, "b")])
        c.expect_pk("keyed", K, ["id"])
    r = c.run(cfg, [schema_msg(K, IDV, ["id"]), rec(K, {"id": 2, "v": "c"}), state({"i": 2}),
                    schema_msg(N, IDV, []), rec(N, {"id": 1})])
    # the STATE follows an uncommitted record: it is never written
    if c.fails("empty key_properties", r, line=4, states=[]):
        c.log_has("empty key_properties", r, 'stream "%s": load_method is upsert but its SCHEMA '
                  'has no key_properties' % N)
        c.expect_rows("empty key_properties", K, ["id", "v"], "id", [(1, "b")])
        if c.exists(N):
            problem("(i) the refused keyless stream got a table")
    r = c.run(cfg, [schema_msg(M, IDV, None), rec(M, {"id": 1})])
    if c.fails("no key_properties field", r, line=1):
        c.log_has("no key_properties field", r, 'stream "%s": load_method is upsert' % M)


# --- (j) overwrite -----------------------------------------------------------------

def shadow_of(schema, live):
    """The shadow of a live table short enough to be named in full (naming.h)."""
    assert len(("_tgt_overwrite_" + live).encode()) <= 63
    return "_tgt_overwrite_" + live


def comments(c, table):
    return {r["attname"]: r["d"] for r in c.q(
        "SELECT attname, col_description(attrelid, attnum) AS d FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        % harness.sql_literal(c.t(table)))}


def shadows_left(c):
    return [r["relname"] for r in c.q(
        "SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(%s) "
        "AND relname LIKE '\\_tgt\\_overwrite\\_%%' ORDER BY relname"
        % harness.sql_literal(c.schema))]


def case_j(db, tmp):
    c = Case("j", db, tmp, "ow")
    T, L = "accounts", "audit"
    r = c.run(c.config(), [schema_msg(T, ICV, ["id"]), schema_msg(L, IDV, [])] +
              [rec(T, {"id": i, "code": "c%d" % i, "v": "old"}) for i in (1, 2, 3)] +
              [rec(L, {"id": 1, "v": "old"})])
    if not c.ok("setup", r):
        return
    want_comments = comments(c, T)
    # a shadow left by a failed run, of another shape, with a row
    shadow = shadow_of("ow", T)
    c.s("CREATE TABLE %s (junk text, id text); INSERT INTO %s VALUES ('junk', 'x')"
        % (c.t(shadow), c.t(shadow)))
    cfg = c.config(load_method="overwrite", batch_size_rows=2)
    msgs = [schema_msg(T, ICV, ["id"]), schema_msg(L, IDV, []),
            rec(T, {"id": 10, "code": "a", "v": "new"}), state({"j": 1}),
            rec(T, {"id": 11, "code": "b", "v": "new"}), rec(L, {"id": 5, "v": "new"}),
            state({"j": 2}),
            rec(T, {"id": 12, "code": "c", "v": "new"}), rec(T, {"id": 10, "code": "a2"}),
            rec(L, {"id": 6}), state({"j": 3})]
    r = c.run(cfg, msgs)
    if not c.ok("overwrite", r, [{"j": 3}]):
        return
    c.log_has("overwrite", r, 'stream "%s": loading into "ow"."%s", which replaces "ow"."%s" when '
              'the run succeeds (load_method overwrite)' % (T, shadow, T))
    c.log_has("overwrite", r, 'overwrite: "ow"."%s" replaced by the rows of this run' % T)
    # id 10's second record omits v: absent keeps the value its first record stored
    c.expect_rows("overwrite", T, ["id", "code", "v"], "id",
                  [(10, "a2", "new"), (11, "b", "new"), (12, "c", "new")])
    c.expect_rows("overwrite", L, ["id", "v"], "id", [(5, "new"), (6, None)])
    c.expect_pk("overwrite", T, ["id"], name="%s_pkey" % T)
    idx = c.s("SELECT indexrelid::regclass::text FROM pg_index WHERE indisprimary AND "
              "indrelid = to_regclass(%s)" % harness.sql_literal(c.t(T)))
    if idx != "ow.%s_pkey" % T:
        problem("(j) the primary key index is %r, expected ow.%s_pkey" % (idx, T))
    if "junk" in c.columns(T):
        problem("(j) the leftover shadow was not dropped: %r" % c.columns(T))
    if comments(c, T) != want_comments:
        problem("(j) column comments after overwrite %r, expected %r"
                % (comments(c, T), want_comments))
    if shadows_left(c):
        problem("(j) shadow tables left after a successful overwrite: %r" % shadows_left(c))
    # a second overwrite run: the shadow takes its name again
    r = c.run(cfg, [schema_msg(T, ICV, ["id"]), rec(T, {"id": 20, "code": "z"}),
                    state({"j": 4})])
    if c.ok("second overwrite", r, [{"j": 4}]):
        c.expect_rows("second overwrite", T, ["id", "code"], "id", [(20, "z")])
        c.expect_pk("second overwrite", T, ["id"], name="%s_pkey" % T)
        c.expect_rows("second overwrite (other stream untouched)", L, ["id"], "id",
                      [(5,), (6,)])
        if shadows_left(c):
            problem("(j) shadow tables left after the second overwrite: %r" % shadows_left(c))
    # a live name of 63 bytes whose 58th byte is inside a character: the key
    # name must be cut where PostgreSQL cuts it (a character boundary)
    name = "x" + "\u00e4" * 31
    r = c.run(cfg, [schema_msg(name, IDV, ["id"]), rec(name, {"id": 1}), state({"j": 5})])
    if r.returncode != 0:
        problem("(j) KNOWN BUG (drivers/postgres/pg_swap.c rename_key cuts the name at byte 58 "
                "inside a UTF-8 character): overwrite of table %r: exit %s: %s"
                % (name, r.returncode, r.stderr.strip()[-400:]))
    else:
        harness.check_states(problems, "(j) long name", r.stdout, [{"j": 5}])
        c.expect_pk("long name", name, ["id"], name="x" + "\u00e4" * 28 + "_pkey")


# --- (k) overwrite failure ---------------------------------------------------------

def snapshot(c, table):
    reg = harness.sql_literal(c.t(table))
    return {
        "oid": c.s("SELECT to_regclass(%s)::oid" % reg),
        "rows": c.s("SELECT string_agg(ctid::text || ' ' || xmin::text || ' ' || t::text, "
                    "E'\\n' ORDER BY ctid) FROM %s t" % c.t(table)),
        "columns": c.q("SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull, "
                       "col_description(attrelid, attnum) AS comment FROM pg_attribute WHERE "
                       "attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum" % reg),
        "constraints": c.q("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
                           "WHERE conrelid = to_regclass(%s) ORDER BY conname" % reg),
    }


def case_k(db, tmp):
    c = Case("k", db, tmp, "ow_fail")
    T = "ledger"
    cfg = c.config(load_method="overwrite", batch_size_rows=2)
    r = c.run(cfg, [schema_msg(T, ICV, ["id"])] +
              [rec(T, {"id": i, "code": "k%d" % i, "v": "v1"}) for i in (1, 2, 3)] +
              [state({"k": 0})])
    if not c.ok("setup", r, [{"k": 0}]):
        return
    before = snapshot(c, T)
    msgs = [schema_msg(T, ICV, ["id"]),                                              # 1
            rec(T, {"id": 7, "code": "x"}), rec(T, {"id": 8, "code": "y"}),          # 2, 3
            state({"k": 1}),                                                         # 4
            rec(T, {"id": 9, "code": "z"}), rec(T, {"id": 10, "code": "w"}),         # 5, 6
            state({"k": 2}),                                                         # 7
            rec(T, {"id": "eleven", "code": "bad"}),                                 # 8
            rec(T, {"id": 12}), state({"k": 3})]
    r = c.run(cfg, msgs)
    if c.fails("bad record mid-run", r, line=8, states=[]):
        after = snapshot(c, T)
        if after != before:
            problem("(k) the live table changed in a failed overwrite run: %r -> %r"
                    % (before, after))
    r = c.run(cfg, [schema_msg(T, ICV, ["id"]), rec(T, {"id": 30, "code": "q"}),
                    state({"k": 4})])
    if c.ok("next run", r, [{"k": 4}]):
        c.expect_rows("next run", T, ["id", "code"], "id", [(30, "q")])
        c.expect_pk("next run", T, ["id"], name="%s_pkey" % T)
        if shadows_left(c):
            problem("(k) shadow tables left after the next successful run: %r" % shadows_left(c))


# --- (l) primary-key moves ---------------------------------------------------------

def case_l(db, tmp):
    c = Case("l", db, tmp, "keys")
    cfg = c.config(load_method="auto")
    T = "customers"
    r = c.run(cfg, [schema_msg(T, ICV, ["id"])] +
              [rec(T, {"id": i, "code": code, "v": "x"}) for i, code in ((1, "a"), (2, "b"),
                                                                       (3, "c"))])
    if not c.ok("setup", r):
        return
    c.expect_pk("setup", T, ["id"], name="%s_pkey" % T)
    r = c.run(cfg, [schema_msg(T, ICV, ["code"]), rec(T, {"id": 9, "code": "a", "v": "y"}),
                    rec(T, {"id": 4, "code": "d", "v": "y"}), state({"l": 1})])
    if c.ok("move (id) -> (code)", r, [{"l": 1}]):
        c.log_has("move (id) -> (code)", r, 'moved the primary key of "keys"."%s" from (id) to '
                  '(code)' % T)
        c.expect_pk("move (id) -> (code)", T, ["code"])
        c.expect_rows("move (id) -> (code)", T, ["code", "id", "v"], "code",
                      [("a", 9, "y"), ("b", 2, "x"), ("c", 3, "x"), ("d", 4, "y")])
        nn = c.s("SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s) AND "
                 "attname = 'code'" % harness.sql_literal(c.t(T)))
        if nn != "t":
            problem("(l) the new key column is not NOT NULL")
    # a stream without keys never drops the live key: under auto it is
    # refused (tests/integration/test_dropped_keys.py has the choices)
    r = c.run(cfg, [schema_msg(T, ICV, []), rec(T, {"id": 5, "code": "e"}), state({"l": 2})])
    if c.fails("keyless SCHEMA", r, line=1, states=[]):
        c.log_has("keyless SCHEMA", r, 'stream "%s" has no key_properties, but its table '
                  '"keys"."%s" has the primary key (code)' % (T, T))
        c.expect_pk("keyless SCHEMA", T, ["code"])
        c.expect_rows("keyless SCHEMA", T, ["code", "id"], "code",
                      [("a", 9), ("b", 2), ("c", 3), ("d", 4)])
    # within one run: rows of the old key are committed, then the key moves
    W = "inrun"
    r = c.run(cfg, [schema_msg(W, ICV, ["id"]), rec(W, {"id": 1, "code": "a", "v": "1"}),
                    rec(W, {"id": 1, "code": "b", "v": "2"}),
                    rec(W, {"id": 2, "code": "c", "v": "3"}),
                    schema_msg(W, ICV, ["code"]), rec(W, {"id": 7, "code": "b", "v": "4"}),
                    rec(W, {"id": 8, "code": "x", "v": "5"}), state({"l": 3})])
    if c.ok("move within a run", r, [{"l": 3}]):
        c.expect_pk("move within a run", W, ["code"])
        c.expect_rows("move within a run", W, ["code", "id", "v"], "code",
                      [("b", 7, "4"), ("c", 2, "3"), ("x", 8, "5")])


# --- (m) refused moves -------------------------------------------------------------

def case_m(db, tmp):
    c = Case("m", db, tmp, "keys_refused")
    cfg = c.config()
    T, N = "dupes", "nulls"
    r = c.run(cfg, [schema_msg(T, ICV, ["id"]), rec(T, {"id": 1, "code": "a"}),
                    rec(T, {"id": 2, "code": "a"}), rec(T, {"id": 3, "code": "b"}),
                    schema_msg(N, ICV, ["id"]), rec(N, {"id": 1, "code": "a"}),
                    rec(N, {"id": 2})])
    if not c.ok("setup", r):
        return
    before = c.rows(T, ["id", "code"], "id")
    r = c.run(cfg, [schema_msg(T, ICV, ["code"]), rec(T, {"id": 4, "code": "c"}),
                    state({"m": 1})])
    if c.fails("duplicates", r, line=1, states=[]):
        c.log_has("duplicates", r, 'stream "%s": cannot move the primary key of '
                  '"keys_refused"."%s" from (id) to (code): PostgreSQL: could not create unique '
                  'index' % (T, T))
        c.log_has("duplicates", r, "DETAIL: Key (code)=(a) is duplicated.")
        c.expect_pk("duplicates", T, ["id"], name="%s_pkey" % T)
        c.expect_rows("duplicates", T, ["id", "code"], "id", before)
        nn = c.s("SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s) AND "
                 "attname = 'code'" % harness.sql_literal(c.t(T)))
        if nn != "f":
            problem("(m) the refused move left code NOT NULL")
    r = c.run(cfg, [schema_msg(N, ICV, ["code"]), rec(N, {"id": 4, "code": "c"}),
                    state({"m": 2})])
    if c.fails("NULLs", r, line=1, states=[]):
        c.log_has("NULLs", r, 'stream "%s": cannot move the primary key of "keys_refused"."%s" '
                  'from (id) to (code): PostgreSQL:' % (N, N))
        c.expect_pk("NULLs", N, ["id"], name="%s_pkey" % N)
        c.expect_rows("NULLs", N, ["id", "code"], "id", [(1, "a"), (2, None)])
    # the old key still upserts
    r = c.run(cfg, [schema_msg(T, ICV, ["id"]), rec(T, {"id": 1, "code": "z"}), state({"m": 3})])
    if c.ok("old key after the refusal", r, [{"m": 3}]):
        c.expect_rows("old key after the refusal", T, ["id", "code"], "id",
                      [(1, "z"), (2, "a"), (3, "b")])


# --- (n) composite keys ------------------------------------------------------------

def case_n(db, tmp):
    c = Case("n", db, tmp, "keys_composite")
    cfg = c.config()
    T = "pairs"
    props = {"k1": {"type": "integer"}, "k2": {"type": ["null", "string"]},
             "v": {"type": ["null", "string"]}}
    r = c.run(cfg, [schema_msg(T, props, ["k1"]), rec(T, {"k1": 1, "k2": "x", "v": "a"}),
                    rec(T, {"k1": 2, "k2": "x", "v": "b"}),
                    rec(T, {"k1": 3, "k2": "y", "v": "c"})])
    if not c.ok("setup", r):
        return
    r = c.run(cfg, [schema_msg(T, props, ["k1", "k2"]), rec(T, {"k1": 1, "k2": "x", "v": "a2"}),
                    rec(T, {"k1": 1, "k2": "z", "v": "new"}), state({"n": 1})])
    if c.ok("(k1) -> (k1, k2)", r, [{"n": 1}]):
        c.log_has("(k1) -> (k1, k2)", r, 'moved the primary key of "keys_composite"."%s" from '
                  '(k1) to (k1, k2)' % T)
        c.expect_pk("(k1) -> (k1, k2)", T, ["k1", "k2"])
        c.expect_rows("(k1) -> (k1, k2)", T, ["k1", "k2", "v"], "k1, k2",
                      [(1, "x", "a2"), (1, "z", "new"), (2, "x", "b"), (3, "y", "c")])
    # the same key columns in another order are the same key: nothing moves
    r = c.run(cfg, [schema_msg(T, props, ["k2", "k1"]), rec(T, {"k1": 2, "k2": "x", "v": "b2"}),
                    state({"n": 2})])
    if c.ok("(k1, k2) as (k2, k1)", r, [{"n": 2}]):
        if "moved the primary key" in r.stderr:
            problem("(n) key_properties (k2, k1) moved the key (k1, k2): %s"
                    % r.stderr.strip()[-600:])
        c.expect_pk("(k1, k2) as (k2, k1)", T, ["k1", "k2"])
        c.expect_rows("(k1, k2) as (k2, k1)", T, ["k1", "k2", "v"], "k1, k2",
                      [(1, "x", "a2"), (1, "z", "new"), (2, "x", "b2"), (3, "y", "c")])
    r = c.run(cfg, [schema_msg(T, props, ["k2"]), rec(T, {"k1": 5, "k2": "q"}), state({"n": 3})])
    if c.fails("(k1, k2) -> (k2)", r, line=1, states=[]):
        c.log_has("(k1, k2) -> (k2)", r, 'stream "%s": cannot move the primary key of '
                  '"keys_composite"."%s" from (k1, k2) to (k2): PostgreSQL: could not create '
                  'unique index' % (T, T))
        c.log_has("(k1, k2) -> (k2)", r, "DETAIL: Key (k2)=(x) is duplicated.")
        c.expect_pk("(k1, k2) -> (k2)", T, ["k1", "k2"])
        if harness.count_rows("keys_composite", T, db) != 4:
            problem("(n) the refused move changed the rows")
    # a key of other columns entirely: (k1, k2) -> (v), allowed by the data
    r = c.run(cfg, [schema_msg(T, props, ["v"]), rec(T, {"k1": 9, "k2": "x", "v": "c"}),
                    state({"n": 4})])
    if c.ok("(k1, k2) -> (v)", r, [{"n": 4}]):
        c.log_has("(k1, k2) -> (v)", r, 'moved the primary key of "keys_composite"."%s" from '
                  '(k1, k2) to (v)' % T)
        c.expect_pk("(k1, k2) -> (v)", T, ["v"])
        c.expect_rows("(k1, k2) -> (v)", T, ["v", "k1", "k2"], "v",
                      [("a2", 1, "x"), ("b2", 2, "x"), ("c", 9, "x"), ("new", 1, "z")])


# --- (o) conformance files ---------------------------------------------------------

def conformance(name):
    return os.path.join(CONFORMANCE, "test_activate_version_%s.singer" % name)


def case_o(db, tmp):
    c = Case("o", db, tmp, "conf_hard")
    files = [conformance(n) for n in ("deletes_data_properly", "deletes_data_properly_2", "hard",
                                      "soft", "soft_with_delete")]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        problem("(o) conformance files missing: %r" % missing)
        return
    codes7 = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"]
    cfg = c.config(hard_delete=True)
    D = "test_activate_version_deletes_data_properly"
    r = harness.run_input(cfg, files[0])
    if c.ok("deletes_data_properly", r):
        c.expect_rows("deletes_data_properly", D, ["code"], "code", [(x,) for x in codes7])
        r = harness.run_input(cfg, files[1])
        if c.ok("deletes_data_properly_2", r):
            c.expect_rows("deletes_data_properly then _2", D, ["code"], "code", [])
    H = "test_activate_version_hard"
    r = harness.run_input(cfg, files[2])
    if c.ok("activate_version_hard", r):
        c.expect_rows("activate_version_hard", H, ["code", "_sdc_table_version",
                                                   "_sdc_deleted_at"], "code",
                      [(x, 1674486431563, None) for x in codes7])
    s = Case("o", db, tmp, "conf_soft")
    cfg = s.config()
    S = "test_activate_version_soft"
    r = harness.run_input(cfg, files[3])
    if s.ok("activate_version_soft", r):
        s.expect_rows("activate_version_soft", S, ["code", "_sdc_deleted_at"], "code",
                      [(x, None) for x in codes7])
        r = harness.run_input(cfg, files[4])
        if s.ok("soft_with_delete", r):
            s.expect_types("soft_with_delete", S, {"_sdc_table_version": "bigint",
                                                   "_sdc_deleted_at": TS})
            s.expect_rows("soft then soft_with_delete", S,
                          ["code", "_sdc_table_version", "_sdc_deleted_at IS NOT NULL"], "code",
                          [(x, 1674486431564, False) for x in codes7[:-1]] +
                          [("SA", 1674486431563, True)])


def main():
    db, tmp = harness.integration_env()
    for case in (case_a, case_b, case_c, case_d, case_e, case_f, case_g, case_h, case_i,
                 case_j, case_k, case_l, case_m, case_n, case_o):
        try:
            case(db, tmp)
        except harness.DbError as e:
            problem("(%s) database error: %s" % (case.__name__[-1], e))
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
