#!/usr/bin/env python3
"""Security (issue #5 item 4): identifiers are always quoted, values are never
spliced into SQL, secrets are never written out.

test_names.py covers hostile names in general and test_settings.py the chmod
warning of a 0644/0600 file and a password the (trusting) server never
checks; this file adds what an attacker would try and a server that really
asks for the password:

  * injection through every name that reaches SQL text: stream names, top-level,
    nested (flattened a__b__c) and long (> 63 bytes, hashed) property names,
    composite key property names, timestamp_column, default_target_schema and
    schema_mapping targets (one of them > 63 bytes), built from ", ', $$,
    $q$, backslashes, E'' strings and non-ASCII.  Run twice, the second time
    adding a column and widening one (ALTER TABLE paths), and upserting.  A
    sentinel table public.victim must survive, the database must hold exactly
    the expected tables and columns (names from harness.identifier), each
    column comment must be "source: <path>" byte for byte, and values holding
    SQL text ('); DROP ..., $$, \\., \\N, backslashes) arrive verbatim.  With
    log_statement = all for the database, no value ever appears in the server
    log: values travel only in COPY data.
  * secrets: a role whose password the server checks (a pg_hba.conf line for
    that one role over 127.0.0.1, scram-sha-256, removed afterwards), runs at
    log_level debug with a unique marker in the password: success, wrong
    password, unreachable port, conninfo key=value and URI (success), malformed
    conninfo URIs that libpq quotes back in its error (bad percent-encoding in
    the password, unterminated IPv6 host, bad ?password=), --config ENV with
    TARGET_PG_PASSWORD / TARGET_PG_CONNINFO, a password of the wrong type and
    a config file that is not valid JSON.  The marker must never appear on
    stdout or stderr.
  * the permission warning for other modes than test_settings.py checks: 0640
    and 0604 with a password warn (naming the file, not the password), 0400
    and 0600 do not, 0644 without a password does not.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR, TGT_PG_DIR).  Exit 0 = pass; each problem is printed on its own
line.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
RUN_TIMEOUT = 30  # seconds per target-pg run; a connection that hangs fails the case


def problem(msg):
    problems.append(msg)


# --- running target-pg with an environment of our choosing ----------------------

def clean_env(**extra):
    """os.environ without PG*, TARGET_PG_* and MELTANO_* (so nothing falls back
    on them, and ~/.pgpass is not read), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PG") or k.startswith("TARGET_PG_") or k.startswith("MELTANO_"))}
    env["PGPASSFILE"] = os.devnull
    env.update(extra)
    return env


def run(args, env, timeout=RUN_TIMEOUT):
    """target-pg args (stdin /dev/null) in env; a harness.Run."""
    return harness.run_target(args, timeout=timeout, env=env)


def write_json(path, obj, mode=0o600):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.chmod(path, mode)
    return path


def first_error(stderr):
    errs = [line for line in stderr.splitlines() if line.startswith("target-pg: error")]
    return errs[0] if errs else "(no error line; stderr ends: %s)" % stderr.strip()[-300:]


# =============================================================================
# 1. injection through names; values never spliced
# =============================================================================

HOSTILE = [
    ("dq", 'x"; DROP TABLE victim; --'),
    ("sq", "'; DROP TABLE victim; --"),
    ("dollar", "$$; DROP TABLE victim; $$"),
    ("tag", "$q$; DROP TABLE victim; $q$"),
    ("bs_sq", "\\'; DROP TABLE victim; --"),
    ("bs_dq", '\\"; DROP TABLE victim; --'),
    ("estr", "E'\\x27; DROP TABLE victim; --"),
    ("uni", "ü\"ñ'; DROP TABLE victim; --"),
    ("long", 'L"; DROP TABLE victim; --' + "é" * 40),  # 104 bytes: hashed
]

K1 = 'k1"; DROP TABLE victim; --'
K2 = "k2'; DROP TABLE victim; $$"
NEST = 'n"; DROP TABLE victim; --'
NEST_B = "'; DROP TABLE victim; --"
NEST_C = "$$x\\$$"
NEST_D = '\\"; --'
LONG_PARENT = 'lp"; DROP TABLE victim; ' + "é" * 20
LONG_CHILD = "lc'; DROP TABLE victim; " + "ß" * 20
WIDEN = 'w"; DROP TABLE victim; --'  # integer, then string in run 2 (ALTER COLUMN TYPE)
ADDED = "added'; DROP TABLE victim; --"  # only in run 2's SCHEMA (ADD COLUMN)
TS_COL = 'ts"; DROP TABLE victim; --'

DEFAULT_SCHEMA = 'ds"; DROP TABLE victim; --$$\\'
MAPPED_SCHEMA = "ms'; DROP TABLE victim; --"
LONG_SCHEMA = 'ls"; DROP TABLE victim; --' + "ö" * 30  # 86 bytes: cut to 63 with a hash
MAPPED_STREAM = 'src-t"; DROP TABLE victim; /*x'
LONG_STREAM = "long-t2$$"

# "#v<n>" marks the values to look for in the server log (no name holds "#v")
VALUES = [
    "'); DROP TABLE victim; -- #v1",
    '"); DROP TABLE victim; -- #v2',
    "$$; DROP TABLE victim; $$ #v3",
    "\\'; DROP TABLE victim; -- #v4",
    "\\.",
    "\\N",
    "a\tb\nc\\\\d\\ #v5",
    "E'\\x27'; SELECT pg_sleep(30); -- #v6",
    "ü'\"$$\\ 😀 #v7",
    "",
]


def value_columns():
    """[(source path, value index)] of the string properties of stream props."""
    paths = [["p_%s%s" % (tag, h)] for tag, h in HOSTILE]
    paths += [[NEST, NEST_B], [NEST, NEST_C, NEST_D], [LONG_PARENT, LONG_CHILD]]
    return [(p, i) for i, p in enumerate(paths)]


def props_schema(run_no):
    props = {K1: {"type": "integer"}, K2: {"type": "string"}}
    for tag, h in HOSTILE:
        props["p_%s%s" % (tag, h)] = {"type": ["null", "string"]}
    props[NEST] = {"type": ["null", "object"], "properties": {
        NEST_B: {"type": ["null", "string"]},
        NEST_C: {"type": ["null", "object"],
                 "properties": {NEST_D: {"type": ["null", "string"]}}}}}
    props[LONG_PARENT] = {"type": ["null", "object"],
                          "properties": {LONG_CHILD: {"type": ["null", "string"]}}}
    props[WIDEN] = {"type": ["null", "integer"]} if run_no == 1 else {"type": ["null", "string"]}
    if run_no == 2:
        props[ADDED] = {"type": ["null", "string"]}
    return {"type": "SCHEMA", "stream": "props", "key_properties": [K1, K2],
            "schema": {"type": "object", "properties": props}}


def props_record(k1, k2, shift, widen, added=None):
    """A record whose value columns hold VALUES rotated by shift."""
    rec = {K1: k1, K2: k2, NEST: {NEST_C: {}}, LONG_PARENT: {}, WIDEN: widen}
    for path, i in value_columns():
        v = VALUES[(i + shift) % len(VALUES)]
        node = rec
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = v
    if added is not None:
        rec[ADDED] = added
    return rec


def expected_props_rows():
    """{(k1, k2): {column: value}} after both runs."""
    rows = {}
    for (k1, k2), shift, widen, added in (((1, "a'b"), 5, "x'); DROP TABLE victim; -- #v8", "r2"),
                                          ((2, "$$"), 1, "7", None),
                                          ((3, "\\"), 3, None, "'; --")):
        row = {}
        for path, i in value_columns():
            row[harness.identifier(path)] = VALUES[(i + shift) % len(VALUES)]
        row[harness.identifier([WIDEN])] = widen
        row[harness.identifier([ADDED])] = added
        rows[(k1, k2)] = row
    return rows


def injection_messages(run_no):
    msgs = [props_schema(run_no)]
    if run_no == 1:
        # the first record of key (1, a'b) is replaced by the second (newest wins)
        msgs.append({"type": "RECORD", "stream": "props", "record": props_record(1, "a'b", 0, 1)})
        msgs.append({"type": "RECORD", "stream": "props", "record": props_record(1, "a'b", 2, 5)})
        msgs.append({"type": "RECORD", "stream": "props", "record": props_record(2, "$$", 1, 7)})
        for tag, h in HOSTILE:
            stream = "s_%s%s" % (tag, h)
            msgs.append({"type": "SCHEMA", "stream": stream, "key_properties": [],
                         "schema": {"type": "object", "properties": {"v": {"type": "string"}}}})
            msgs.append({"type": "RECORD", "stream": stream, "record": {"v": h}})
        for stream in (MAPPED_STREAM, LONG_STREAM):
            msgs.append({"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
                         "schema": {"type": "object", "properties": {
                             "id": {"type": "integer"}, "v": {"type": "string"}}}})
            msgs.append({"type": "RECORD", "stream": stream, "record": {"id": 1, "v": stream}})
    else:
        # run 2: new column, widened column, an update of an existing key and a new key
        msgs.append({"type": "RECORD", "stream": "props", "record": props_record(
            1, "a'b", 5, "x'); DROP TABLE victim; -- #v8", added="r2")})
        msgs.append({"type": "RECORD", "stream": "props", "record": props_record(
            3, "\\", 3, None, added="'; --")})
    msgs.append({"type": "STATE", "value": {"run": run_no, "note": "'); DROP TABLE victim; --"}})
    return msgs


def server_log():
    """(path, size now) of the throwaway server's log, or (None, 0)."""
    d = os.environ.get("TGT_PG_DIR")
    path = os.path.join(d, "log") if d else None
    if path and os.access(path, os.R_OK):
        return path, os.path.getsize(path)
    return None, 0


def read_log_from(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def user_tables(db):
    rows = harness.query_json(
        "SELECT n.nspname AS s, c.relname AS t FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'", db)
    return {(r["s"], r["t"]) for r in rows}


def comments(schema, table, db):
    rows = harness.query_json(
        "SELECT a.attname AS c, col_description(a.attrelid, a.attnum) AS d FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        % harness.sql_literal(harness.qualified(schema, table)), db)
    return {r["c"]: r["d"] for r in rows}


def injection(db, tmp):
    harness.psql("CREATE TABLE public.victim (id int)", db)
    harness.psql("INSERT INTO public.victim VALUES (1), (2)", db)
    # every statement target-pg sends is logged: values must not be among them
    harness.psql("ALTER DATABASE %s SET log_statement = 'all'" % harness.quote_ident(db), db)
    log_path, log_start = server_log()

    cfg = write_json(os.path.join(tmp, "inject.json"), harness.connection(
        db, default_target_schema=DEFAULT_SCHEMA, timestamp_column=TS_COL,
        schema_mapping={"src": MAPPED_SCHEMA, "long": {"target_schema": LONG_SCHEMA}},
        log_level="debug"))
    env = clean_env()
    try:
        for run_no in (1, 2):
            path = os.path.join(tmp, "inject-%d.singer" % run_no)
            harness.write_messages(path, injection_messages(run_no))
            r = run(["--config", cfg, "--input", path], env)
            if not harness.check_exit_0(problems, "injection run %d" % run_no, r, tail=2500):
                return
            harness.check_states(problems, "injection run %d" % run_no, r.stdout,
                                 [{"run": run_no, "note": "'); DROP TABLE victim; --"}])
    finally:
        harness.psql("ALTER DATABASE %s RESET log_statement" % harness.quote_ident(db), db)

    if not harness.table_exists("public", "victim", db) or \
            harness.count_rows("public", "victim", db) != 2:
        problem("injection: the sentinel table public.victim was dropped or changed")

    ts = harness.identifier([TS_COL])
    # schema names are normalised like every identifier (only their quoting
    # on the way there is under test)
    DS, MS = harness.identifier([DEFAULT_SCHEMA]), harness.identifier([MAPPED_SCHEMA])
    long_schema = harness.identifier([LONG_SCHEMA])
    want_tables = {("public", "victim"), (DS, "props"),
                   (MS, harness.table_name(MAPPED_STREAM)),
                   (long_schema, harness.table_name(LONG_STREAM))}
    stream_tables = {}
    for tag, h in HOSTILE:
        stream = "s_%s%s" % (tag, h)
        stream_tables[stream] = harness.table_name(stream)
        want_tables.add((DS, stream_tables[stream]))
    if len(want_tables) != 4 + len(HOSTILE):
        problem("test bug: expected table names collide: %r" % sorted(want_tables))
    got_tables = user_tables(db)
    if got_tables != want_tables:
        problem("injection: tables %r, expected %r (missing %r, unexpected %r)"
                % (sorted(got_tables), sorted(want_tables), sorted(want_tables - got_tables),
                   sorted(got_tables - want_tables)))

    for tag, h in HOSTILE:
        stream = "s_%s%s" % (tag, h)
        table = stream_tables[stream]
        if (DS, table) not in got_tables:
            continue
        cols = harness.columns(DS, table, db)
        if set(cols) != {"v", ts}:
            problem("stream %r: columns %r, expected v and %r" % (stream, sorted(cols), ts))
        got = harness.column_values(DS, table, "v", db)
        if got != [h]:
            problem("stream %r: table %r holds %r, expected [%r]" % (stream, table, got, h))
    for schema, stream in ((MS, MAPPED_STREAM), (long_schema, LONG_STREAM)):
        table = harness.table_name(stream)
        if (schema, table) in got_tables:
            got = harness.column_values(schema, table, "v", db)
            if got != [stream]:
                problem("stream %r: %r.%r holds %r, expected [%r]"
                        % (stream, schema, table, got, stream))

    check_props(db, ts)
    if log_path:
        logged = read_log_from(log_path, log_start)
        if "statement:" not in logged:
            problem("log_statement = all logged no statement (server log %s); cannot check "
                    "that values stay out of SQL text" % log_path)
        i = logged.find("#v")
        if i >= 0:
            problem("a record value appears in the server log: it was sent as SQL text, not as "
                    "COPY data: ...%s..." % logged[max(0, i - 300):i + 100])
    else:
        print("# note: no readable server log ($TGT_PG_DIR/log): value-splicing log check skipped")


def check_props(db, ts):
    table = (harness.identifier([DEFAULT_SCHEMA]), "props")
    if not harness.table_exists(*table, db):
        return
    paths = [p for p, _ in value_columns()] + [[K1], [K2], [WIDEN], [ADDED]]
    want = {harness.identifier(p): p for p in paths}
    if len(want) != len(paths):
        problem("test bug: expected column names of props collide")
    cols = harness.columns(*table, db)
    if set(cols) != set(want) | {ts}:
        problem("props: columns %r, expected %r (missing %r, unexpected %r)"
                % (sorted(cols), sorted(set(want) | {ts}), sorted(set(want) | {ts} - set(cols)),
                   sorted(set(cols) - set(want) - {ts})))
    wcol = harness.identifier([WIDEN])
    if cols.get(wcol) != "text":
        problem("props: widened column %r is %s, expected text" % (wcol, cols.get(wcol)))
    # the primary key is (K1, K2), in that order
    pk = harness.query_json(
        "SELECT a.attname AS c FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)"
        % harness.sql_literal(harness.qualified(*table)), db)
    if [r["c"] for r in pk] != [harness.identifier([K1]), harness.identifier([K2])]:
        problem("props: primary key %r, expected %r" % ([r["c"] for r in pk],
                                                        [harness.identifier([K1]),
                                                         harness.identifier([K2])]))
    got_comments = comments(*table, db)
    for col, path in want.items():
        recorded = "source: " + json.dumps(path, ensure_ascii=False, separators=(",", ":"))
        if col in got_comments and got_comments[col] != recorded:
            problem("props: comment on %r is %r, expected %r" % (col, got_comments[col], recorded))
    present = [c for c in want if c in cols]
    if not present:
        return
    sel = ", ".join("%s AS %s" % (harness.quote_ident(c), harness.quote_ident("c%d" % i))
                    for i, c in enumerate(present))
    rows = harness.query_json("SELECT %s FROM %s" % (sel, harness.qualified(*table)), db)
    k1c, k2c = harness.identifier([K1]), harness.identifier([K2])
    got = {}
    for r in rows:
        row = {c: r["c%d" % i] for i, c in enumerate(present)}
        got[(row.get(k1c), row.get(k2c))] = row
    want_rows = expected_props_rows()
    if set(got) != set(want_rows):
        problem("props: keys %r, expected %r" % (sorted(got, key=str), sorted(want_rows, key=str)))
    for key, wrow in want_rows.items():
        grow = got.get(key)
        if grow is None:
            continue
        for col, v in wrow.items():
            if col in grow and grow[col] != v:
                problem("props key %r: column %r holds %r, expected %r" % (key, col, grow[col], v))


# =============================================================================
# 2. secrets never written out
# =============================================================================

def psql_as(role, password, db, port):
    """exit status of psql -c 'SELECT 1' as role over 127.0.0.1 (no prompt)."""
    env = clean_env(PGCONNECT_TIMEOUT="5")
    if password is not None:
        env["PGPASSWORD"] = password
    r = subprocess.run([harness.pg_prog("psql"), "-X", "-w", "-q", "-h", "127.0.0.1", "-p",
                        str(port), "-U", role, "-d", db, "-c", "SELECT 1"],
                       stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=20)
    return r.returncode, r.stderr.decode("utf-8", "replace")


class HbaLine:
    """Puts `host all ROLE 127.0.0.1/32 scram-sha-256` first in pg_hba.conf so
    the server checks ROLE's password (the cluster trusts everyone else);
    restores the file on exit.  .ok is False when the file cannot be changed."""

    def __init__(self, role, db):
        self.role, self.db, self.path, self.orig, self.ok = role, db, None, None, False

    def __enter__(self):
        try:
            self.path = harness.scalar("SHOW hba_file", self.db)
            with open(self.path, encoding="utf-8") as f:
                self.orig = f.read()
            with open(self.path, "w", encoding="utf-8") as f:
                f.write("# test_security.py (removed when it ends)\n"
                        "host all %s 127.0.0.1/32 scram-sha-256\n%s" % (self.role, self.orig))
            harness.scalar("SELECT pg_reload_conf()", self.db)
            self.ok = True
        except (OSError, harness.DbError) as e:
            print("# note: cannot change pg_hba.conf (%s): the runs that need the server to "
                  "check the password are skipped" % e)
        return self

    def __exit__(self, *exc):
        if self.orig is not None:
            try:
                with open(self.path, "w", encoding="utf-8") as f:
                    f.write(self.orig)
                harness.scalar("SELECT pg_reload_conf()", self.db)
            except (OSError, harness.DbError) as e:
                problem("could not restore %s: %s" % (self.path, e))
        return False


def secrets_cases(db, tmp):
    marker = "mRk" + secrets.token_hex(8)  # letters and digits: percent-encoding keeps it
    password = marker + "ok"
    wrong = marker + "bad"
    role = "tgt_sec_%d" % os.getpid()
    port = int(os.environ["PGPORT"])
    harness.psql("CREATE ROLE %s LOGIN PASSWORD %s" % (role, harness.sql_literal(password)),
                 "postgres")
    try:
        harness.psql("GRANT CREATE ON DATABASE %s TO %s" % (harness.quote_ident(db), role), db)
        with HbaLine(role, db) as hba:
            checked = False
            if hba.ok:
                # the reload is asynchronous: wait until a password is really required
                for _ in range(50):
                    rc, _err = psql_as(role, None, db, port)
                    if rc != 0:
                        checked = True
                        break
                    time.sleep(0.1)
                if not checked:
                    problem("the pg_hba.conf line did not make the server ask %s for a password"
                            % role)
                elif psql_as(role, password, db, port)[0] != 0:
                    problem("psql as %s with the right password fails: %s"
                            % (role, psql_as(role, password, db, port)[1]))
                    checked = False
            password_runs(db, tmp, role, password, wrong, marker, port, checked)
    finally:
        try:
            harness.psql("DROP OWNED BY %s" % role, db)
            harness.psql("DROP ROLE IF EXISTS %s" % role, "postgres")
        except harness.DbError as e:
            problem("cleanup of role %s failed: %s" % (role, e))


def password_runs(db, tmp, role, password, wrong, marker, port, checked):
    env0 = clean_env()
    n = [0]
    n_cases = [0]

    def singer(stream):
        n[0] += 1
        path = os.path.join(tmp, "sec-%d.singer" % n[0])
        harness.write_messages(path, [
            {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
             "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                         "v": {"type": "string"}}}},
            {"type": "RECORD", "stream": stream, "record": {"id": n[0], "v": "row"}},
            {"type": "STATE", "value": {"n": n[0]}}])
        return path

    def case(label, args, env, want_exit, want_in_error=None, landed=None):
        n_cases[0] += 1
        r = run(args, env)
        for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
            if marker in text:
                i = text.find(marker)
                problem("%s: the password appears on %s: ...%s..."
                        % (label, name, text[max(0, i - 200):i + 60]))
        if r.timed_out:
            problem("%s: timed out after %d s" % (label, RUN_TIMEOUT))
            return
        if r.returncode != want_exit:
            problem("%s: exit %s, expected %d: %s" % (label, r.returncode, want_exit,
                                                      r.stderr.strip()[-800:]))
            return
        if want_exit == 0 and "debug" not in r.stderr:
            problem("%s: no debug lines on stderr although log_level is debug" % label)
        if want_in_error is not None:
            line = first_error(r.stderr)
            if not any(w.lower() in line.lower() for w in want_in_error):
                problem("%s: the error line does not say %s: %s"
                        % (label, " or ".join(repr(w) for w in want_in_error), line))
        if landed is not None and want_exit == 0:
            schema, table = landed
            if not harness.table_exists(schema, table, db):
                problem("%s: no table %s.%s" % (label, schema, table))
        return r

    tcp = {"host": "127.0.0.1", "port": port, "user": role, "log_level": "debug",
           "connect_retries": 0}
    uri = "postgresql://%s:%s@127.0.0.1:%d/%s" % (role, password, port, db)
    if checked:
        # the server checks the password: these succeed only with the right one
        c = write_json(os.path.join(tmp, "ok.json"),
                       dict(tcp, password=password, dbname=db, default_target_schema="sec_ok"))
        case("right password, log_level debug", ["--config", c, "--input", singer("pw")], env0,
             0, landed=("sec_ok", "pw"))
        for label, ci in (("conninfo key=value with the password",
                           "host=127.0.0.1 port=%d user=%s password='%s' dbname=%s"
                           % (port, role, password, db)),
                          ("conninfo URI with the password", uri)):
            c = write_json(os.path.join(tmp, "ci-ok.json"),
                           {"conninfo": ci, "default_target_schema": "sec_ci",
                            "log_level": "debug"})
            case(label, ["--config", c, "--input", singer("ci")], env0, 0,
                 landed=("sec_ci", "ci"))
        env = dict(env0, TARGET_PG_HOST="127.0.0.1", TARGET_PG_PORT=str(port),
                   TARGET_PG_USER=role, TARGET_PG_PASSWORD=password, TARGET_PG_DBNAME=db,
                   TARGET_PG_DEFAULT_TARGET_SCHEMA="sec_env", TARGET_PG_LOG_LEVEL="debug",
                   TARGET_PG_CONNECT_RETRIES="0")
        case("--config ENV, TARGET_PG_PASSWORD", ["--config", "ENV", "--input", singer("env")],
             env, 0, landed=("sec_env", "env"))
        env = dict(env0, TARGET_PG_CONNINFO=uri, TARGET_PG_LOG_LEVEL="debug",
                   TARGET_PG_DEFAULT_TARGET_SCHEMA="sec_env")
        case("--config ENV, TARGET_PG_CONNINFO URI", ["--config", "ENV", "--input",
                                                      singer("envci")],
             env, 0, landed=("sec_env", "envci"))

        c = write_json(os.path.join(tmp, "wrong.json"), dict(tcp, password=wrong, dbname=db))
        case("wrong password", ["--config", c, "--input", singer("wrong")], env0, 1,
             ["password authentication failed"])
        env = dict(env0, TARGET_PG_HOST="127.0.0.1", TARGET_PG_PORT=str(port),
                   TARGET_PG_USER=role, TARGET_PG_PASSWORD=wrong, TARGET_PG_DBNAME=db,
                   TARGET_PG_LOG_LEVEL="debug", TARGET_PG_CONNECT_RETRIES="0")
        case("--config ENV, wrong TARGET_PG_PASSWORD", ["--config", "ENV", "--input",
                                                        singer("wrongenv")],
             env, 1, ["password authentication failed"])
        c = write_json(os.path.join(tmp, "wrong-uri.json"), {
            "conninfo": uri.replace(password, wrong), "log_level": "debug",
            "connect_retries": 0})
        case("conninfo URI with a wrong password", ["--config", c, "--input", singer("wu")],
             env0, 1, ["password authentication failed"])

    # failure paths that need no password check
    dead = harness.free_port()
    c = write_json(os.path.join(tmp, "dead.json"),
                   dict(tcp, port=dead, password=password, dbname=db))
    case("unreachable port, password set", ["--config", c, "--input", singer("dead")], env0, 1,
         ["connection refused", "could not connect", "cannot connect"])
    for label, ci in (
            ("conninfo URI, password with a bad percent-encoding",
             "postgresql://%s:%s%%zz@127.0.0.1:%d/%s" % (role, password, port, db)),
            ("conninfo URI, unterminated IPv6 host",
             "postgresql://%s:%s@[::1:%d/%s" % (role, password, port, db)),
            ("conninfo URI, ?password= with a bad percent-encoding",
             "postgresql://%s@127.0.0.1:%d/%s?password=%s%%G1" % (role, port, db, password)),
            ("conninfo URI, forbidden %00 in the password",
             "postgresql://%s:%s%%00@127.0.0.1:%d/%s" % (role, password, port, db)),
            ("conninfo key=value, unknown option after the password",
             "host=127.0.0.1 port=%d password=%s bogus_option=1" % (port, password)),
            ("conninfo URI to an unreachable port",
             "postgresql://%s:%s@127.0.0.1:%d/%s" % (role, password, dead, db))):
        c = write_json(os.path.join(tmp, "bad-ci.json"),
                       {"conninfo": ci, "log_level": "debug", "connect_retries": 0})
        case(label, ["--config", c, "--input", singer("badci")], env0, 1)
        # a retried failure is logged as a warning per attempt: masked as well
        c = write_json(os.path.join(tmp, "bad-ci-retry.json"),
                       {"conninfo": ci, "log_level": "debug", "connect_retries": 1,
                        "connect_retry_delay_ms": 10})
        case(label + " (connect_retries 1)", ["--config", c, "--input", singer("badci")], env0,
             1)
        env = dict(env0, TARGET_PG_CONNINFO=ci, TARGET_PG_LOG_LEVEL="debug",
                   TARGET_PG_CONNECT_RETRIES="0")
        case(label + " (--config ENV)", ["--config", "ENV", "--input", singer("badcienv")],
             env, 1)

    # configuration errors around a password: exit 2, the value not echoed
    for label, text in (("password of the wrong type", '{"password": ["%s"]}' % marker),
                        ("conninfo of the wrong type", '{"conninfo": {"%s": 1}}' % marker),
                        ("config file that is not JSON", '{"password": "%s", }' % marker),
                        ("config file with a bare word", '{"password": %s}' % marker)):
        p = os.path.join(tmp, "bad-cfg.json")
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(p, 0o600)
        case(label, ["--config", p, "--input", singer("badcfg")], env0, 2)
    print("# %d runs with a password; the server %s it" % (n_cases[0], "checked" if checked
                                                          else "did not check"))


# =============================================================================
# 3. the permission warning, modes test_settings.py does not try
# =============================================================================

def mode_warnings(db, tmp):
    env0 = clean_env()
    marker = "mRk" + secrets.token_hex(8)
    dead = harness.free_port()  # nothing listens: the run fails after reading the settings
    for mode, has_password, want_warning in ((0o644, True, True), (0o640, True, True),
                                             (0o604, True, True),
                                             (0o600, True, False), (0o400, True, False),
                                             (0o644, False, False)):
        cfg = {"host": "127.0.0.1", "port": dead, "dbname": db, "connect_retries": 0}
        if has_password:
            cfg["password"] = marker
        path = write_json(os.path.join(tmp, "mode-%03o.json" % mode), cfg, mode)
        r = run(["--config", path], env0)
        label = "config file mode %03o %s a password" % (mode, "with" if has_password else
                                                         "without")
        warned = [w for w in harness.lines_mentioning(r.stderr, "warn") if "password" in w]
        if want_warning and not warned:
            problem("%s: no warning (stderr: %s)" % (label, r.stderr.strip()[-500:]))
        if want_warning and warned and path not in warned[0]:
            problem("%s: the warning does not name the file: %s" % (label, warned[0]))
        if not want_warning and warned:
            problem("%s: unexpected warning: %s" % (label, warned))
        if marker in r.stderr or marker in r.stdout:
            problem("%s: the password appears in the output" % label)


def main():
    # run_all.sh's timeout sends TERM first: leave through the finally blocks
    # (pg_hba.conf restored, role dropped)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    db, tmp = harness.integration_env()
    injection(db, tmp)
    secrets_cases(db, tmp)
    mode_warnings(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
