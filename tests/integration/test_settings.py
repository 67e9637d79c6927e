#!/usr/bin/env python3
"""Settings (docs/contract.md "Invocation", "Settings").

  * --config ENV with TARGET_PG_HOST/PORT/USER/DBNAME/DEFAULT_TARGET_SCHEMA
    (and no PG* variables) loads;
  * two --config files: the second overrides default_target_schema;
  * the aliases `database` and `schema` work (no PGDATABASE to fall back on);
  * timestamp_column "received_at" names the receive-time column (filled,
    timestamptz, no __loaded_at);
  * default_target_schema unset -> $MELTANO_EXTRACT__LOAD_SCHEMA;
  * a password (role made with one, TCP to 127.0.0.1): successful and failing
    runs, from a file, a conninfo string and URI and TARGET_PG_PASSWORD, never
    show the password on stdout or stderr;
  * a config file of mode 0644 holding a password warns, mentioning chmod; a
    0600 one does not;
  * an unknown setting gives a warning naming it (and the run still works);
  * a setting of the wrong type is an error (exit 2) naming it;
  * conninfo works (key=value and URI) and wins over the fields.

The throwaway cluster of tests/pg.sh trusts every connection, so a password is
never checked; the failing runs fail on a database that does not exist.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

PASSWORD = "S3cr3t-pa55"
problems = []


def problem(msg):
    problems.append(msg)


def clean_env(**extra):
    """The environment without PG* and TARGET_PG_* connection variables (so
    nothing falls back on them), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PG") or k.startswith("TARGET_PG_") or k.startswith("MELTANO_"))}
    # TARGET_PG and TARGET_PG_WRAPPER are read by harness.target_cmd() from
    # os.environ before this env is used, so dropping them here is harmless
    env.update(extra)
    return env


def run(args, env=None, stdin_path=None, timeout=60):
    """harness.run_target with an environment of our choosing."""
    cmd = harness.target_cmd() + list(args)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.run(cmd, stdin=stdin, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return harness.Run(None, (e.stdout or b"").decode("utf-8", "replace"),
                           (e.stderr or b"").decode("utf-8", "replace"), True)
    finally:
        if stdin_path:
            stdin.close()
    return harness.Run(p.returncode, p.stdout.decode("utf-8", "replace"),
                       p.stderr.decode("utf-8", "replace"), False)


def write_json(path, obj, mode=0o600):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.chmod(path, mode)


def singer(tmp, stream, rid=1):
    path = os.path.join(tmp, "%s-%d.singer" % (stream, rid))
    harness.write_messages(path, [
        {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
         "schema": {"type": "object",
                    "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}},
        {"type": "RECORD", "stream": stream, "record": {"id": rid, "v": "r%d" % rid}},
        {"type": "STATE", "value": {stream: rid}}])
    return path


def ok(label, r):
    """False (after a problem) when run r did not exit 0."""
    return harness.check_exit_0(problems, label, r)


def landed(label, schema, table, db, n=1):
    if not harness.table_exists(schema, table, db):
        where = harness.query_json(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
            "WHERE table_name = %s" % harness.sql_literal(table), db)
        problem("%s: no table %s.%s (found: %s)" % (label, schema, table,
                                                   ", ".join(r["t"] for r in where) or "none"))
        return False
    got = harness.count_rows(schema, table, db)
    if got != n:
        problem("%s: %s.%s has %d rows, expected %d" % (label, schema, table, got, n))
    return True


def no_secret(label, r):
    for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        if PASSWORD in text:
            problem("%s: the password appears on %s: %s" % (label, name, text.strip()[-800:]))
        # a URI-encoded or partially masked form would still be a leak
        if "S3cr3t" in text or "pa55" in text:
            if PASSWORD not in text:
                problem("%s: part of the password appears on %s: %s"
                        % (label, name, text.strip()[-800:]))


def warnings(stderr):
    return harness.lines_mentioning(stderr, "warn")


def main():
    db, tmp = harness.integration_env()
    env0 = clean_env()

    # --- --config ENV -----------------------------------------------------------
    env = clean_env(TARGET_PG_HOST=os.environ["PGHOST"], TARGET_PG_PORT=os.environ["PGPORT"],
                    TARGET_PG_USER=os.environ.get("PGUSER", "postgres"), TARGET_PG_DBNAME=db,
                    TARGET_PG_DEFAULT_TARGET_SCHEMA="from_env")
    r = run(["--config", "ENV", "--input", singer(tmp, "envrun")], env=env)
    if ok("--config ENV", r):
        landed("--config ENV", "from_env", "envrun", db)
        if r.stdout != '{"envrun":1}\n' and r.stdout.replace(" ", "") != '{"envrun":1}\n':
            problem("--config ENV: stdout %r, expected the one STATE" % r.stdout)

    # --- two config files --------------------------------------------------------
    a = os.path.join(tmp, "a.json")
    b = os.path.join(tmp, "b.json")
    write_json(a, harness.connection(db, default_target_schema="first_file", batch_size_rows=10))
    write_json(b, {"default_target_schema": "second_file"})
    r = run(["--config", a, "--config", b, "--input", singer(tmp, "layered")], env=env0)
    if ok("two --config files", r):
        landed("two --config files (second overrides default_target_schema)", "second_file",
               "layered", db)
        if harness.table_exists("first_file", "layered", db):
            problem("two --config files: the table went to the first file's schema too")
    # and the other order
    r = run(["--config", b, "--config", a, "--input", singer(tmp, "layered2")], env=env0)
    if ok("two --config files, other order", r):
        landed("two --config files, other order", "first_file", "layered2", db)

    # --- aliases database / schema -----------------------------------------------
    c = os.path.join(tmp, "alias.json")
    cfg = harness.connection(db)
    del cfg["dbname"]
    cfg.update(database=db, schema="aliased")
    write_json(c, cfg)
    r = run(["--config", c, "--input", singer(tmp, "aliasrun")], env=env0)
    if ok("aliases database/schema", r):
        landed("aliases database/schema", "aliased", "aliasrun", db)

    # --- timestamp_column ----------------------------------------------------------
    c = os.path.join(tmp, "ts.json")
    write_json(c, harness.connection(db, default_target_schema="tscol",
                                     timestamp_column="received_at"))
    r = run(["--config", c, "--input", singer(tmp, "tsrun")], env=env0)
    if ok("timestamp_column", r) and landed("timestamp_column", "tscol", "tsrun", db):
        cols = harness.columns("tscol", "tsrun", db)
        if cols.get("received_at") != "timestamp with time zone":
            problem("timestamp_column=received_at: column received_at is %s (columns: %s)"
                    % (cols.get("received_at"), ", ".join(cols)))
        else:
            n = harness.scalar("SELECT count(*) FROM tscol.tsrun WHERE received_at IS NULL OR "
                               "received_at < now() - interval '10 minutes'", db)
            if n != "0":
                problem("timestamp_column=received_at: %s rows without a receive time" % n)
        if "__loaded_at" in cols:
            problem("timestamp_column=received_at: the table has __loaded_at as well")

    # --- MELTANO_EXTRACT__LOAD_SCHEMA default --------------------------------------
    c = os.path.join(tmp, "noschema.json")
    write_json(c, harness.connection(db))
    r = run(["--config", c, "--input", singer(tmp, "meltano")],
            env=clean_env(MELTANO_EXTRACT__LOAD_SCHEMA="from_meltano"))
    if ok("MELTANO_EXTRACT__LOAD_SCHEMA", r):
        landed("default_target_schema from $MELTANO_EXTRACT__LOAD_SCHEMA", "from_meltano",
               "meltano", db)
    r = run(["--config", c, "--input", singer(tmp, "publicrun")], env=env0)
    if ok("default schema public", r):
        landed("no default_target_schema and no MELTANO_EXTRACT__LOAD_SCHEMA", "public",
               "publicrun", db)

    # --- unknown setting -------------------------------------------------------------
    c = os.path.join(tmp, "unknown.json")
    write_json(c, harness.connection(db, default_target_schema="unknown_s", bogus_setting_xyz=1))
    r = run(["--config", c, "--input", singer(tmp, "unknownrun")], env=env0)
    if ok("unknown setting", r):
        landed("unknown setting", "unknown_s", "unknownrun", db)
    if not any("bogus_setting_xyz" in w for w in warnings(r.stderr)):
        problem("unknown setting bogus_setting_xyz: no warning naming it (stderr: %s)"
                % r.stderr.strip()[-800:])

    # --- wrong type --------------------------------------------------------------------
    c = os.path.join(tmp, "wrongtype.json")
    write_json(c, harness.connection(db, batch_size_rows="many"))
    r = run(["--config", c, "--input", singer(tmp, "wrongtype")], env=env0)
    if r.returncode != 2:
        problem("batch_size_rows=\"many\": exit %s, expected 2 (stderr: %s)"
                % (r.returncode, r.stderr.strip()[-600:]))
    if "batch_size_rows" not in r.stderr:
        problem("batch_size_rows=\"many\": the error does not name the setting: %s"
                % r.stderr.strip()[-600:])

    # --- conninfo ------------------------------------------------------------------------
    ci = "host=%s port=%s user=%s dbname=%s" % (os.environ["PGHOST"], os.environ["PGPORT"],
                                                os.environ.get("PGUSER", "postgres"), db)
    c = os.path.join(tmp, "conninfo.json")
    write_json(c, {"conninfo": ci, "default_target_schema": "conninfo_s"})
    r = run(["--config", c, "--input", singer(tmp, "conninforun")], env=env0)
    if ok("conninfo", r):
        landed("conninfo", "conninfo_s", "conninforun", db)
    # conninfo wins over the fields (which point nowhere)
    c = os.path.join(tmp, "conninfo-wins.json")
    write_json(c, {"conninfo": ci, "default_target_schema": "conninfo_s", "host": "127.0.0.1",
                   "port": 1, "dbname": "no_such_database_here"})
    r = run(["--config", c, "--input", singer(tmp, "conninforun", 2)], env=env0)
    if ok("conninfo wins over host/port/dbname", r):
        landed("conninfo wins over host/port/dbname", "conninfo_s", "conninforun", db, n=2)
    uri = "postgresql://%s@127.0.0.1:%s/%s" % (os.environ.get("PGUSER", "postgres"),
                                              os.environ["PGPORT"], db)
    c = os.path.join(tmp, "conninfo-uri.json")
    write_json(c, {"conninfo": uri, "default_target_schema": "conninfo_uri"})
    r = run(["--config", c, "--input", singer(tmp, "urirun")], env=env0)
    if ok("conninfo URI", r):
        landed("conninfo URI", "conninfo_uri", "urirun", db)

    # --- password -------------------------------------------------------------------------
    role = "tgt_pw_%d" % os.getpid()
    harness.psql("CREATE ROLE %s LOGIN PASSWORD %s" % (role, harness.sql_literal(PASSWORD)), db)
    try:
        harness.psql("GRANT ALL ON DATABASE %s TO %s" % (harness.quote_ident(db), role), db)
        password_cases(tmp, db, role, env0)
    finally:
        try:
            harness.psql("DROP OWNED BY %s" % role, db)
            harness.psql("DROP ROLE IF EXISTS %s" % role, db)
        except harness.DbError as e:
            problem("cleanup of role %s failed: %s" % (role, e))
    return harness.report(problems)


def password_cases(tmp, db, role, env0):
    port = int(os.environ["PGPORT"])
    tcp = {"host": "127.0.0.1", "port": port, "user": role, "password": PASSWORD}

    # success over TCP with a password, config file 0600: no chmod warning
    c = os.path.join(tmp, "pw-ok.json")
    write_json(c, dict(tcp, dbname=db, default_target_schema="pw_s"), mode=0o600)
    r = run(["--config", c, "--input", singer(tmp, "pwrun")], env=env0)
    no_secret("password, successful run", r)
    if ok("password over TCP", r):
        landed("password over TCP", "pw_s", "pwrun", db)
    if any("chmod" in w for w in warnings(r.stderr)):
        problem("a config file of mode 0600 holding a password gives a chmod warning: %s"
                % warnings(r.stderr))

    # failing run: a database that does not exist
    c = os.path.join(tmp, "pw-fail.json")
    write_json(c, dict(tcp, dbname="no_such_db_for_pw", default_target_schema="pw_s"))
    r = run(["--config", c, "--input", singer(tmp, "pwfail")], env=env0)
    no_secret("password, failing run", r)
    if r.returncode in (0, None):
        problem("password, failing run (database does not exist): exit %s, expected non-zero"
                % r.returncode)
    elif "no_such_db_for_pw" not in r.stderr:
        problem("failing connection: the error does not name the database: %s"
                % r.stderr.strip()[-600:])

    # mode 0644 with a password: a warning mentioning chmod
    c = os.path.join(tmp, "pw-0644.json")
    write_json(c, dict(tcp, dbname="no_such_db_for_pw"), mode=0o644)
    r = run(["--config", c, "--input", singer(tmp, "pw0644")], env=env0)
    no_secret("password in a 0644 file", r)
    if not any("chmod" in w for w in warnings(r.stderr)):
        problem("a config file of mode 0644 holding a password gives no warning mentioning "
                "chmod (stderr: %s)" % r.stderr.strip()[-600:])

    # conninfo with a password, key=value and URI, failing
    for label, ci in (
            ("conninfo key=value with password",
             "host=127.0.0.1 port=%d user=%s password=%s dbname=no_such_db_ci"
             % (port, role, PASSWORD)),
            ("conninfo URI with password",
             "postgresql://%s:%s@127.0.0.1:%d/no_such_db_uri" % (role, PASSWORD, port))):
        c = os.path.join(tmp, "pw-ci.json")
        write_json(c, {"conninfo": ci}, mode=0o644)
        r = run(["--config", c, "--input", singer(tmp, "pwci")], env=env0)
        no_secret(label + ", failing run", r)
        if r.returncode in (0, None):
            problem("%s, failing run: exit %s, expected non-zero" % (label, r.returncode))
        if not any("chmod" in w for w in warnings(r.stderr)):
            problem("%s in a 0644 config file: no warning mentioning chmod" % label)

    # a password from the environment, failing
    env = dict(env0, TARGET_PG_HOST="127.0.0.1", TARGET_PG_PORT=str(port), TARGET_PG_USER=role,
               TARGET_PG_PASSWORD=PASSWORD, TARGET_PG_DBNAME="no_such_db_env")
    r = run(["--config", "ENV", "--input", singer(tmp, "pwenv")], env=env)
    no_secret("TARGET_PG_PASSWORD, failing run", r)
    if r.returncode in (0, None):
        problem("TARGET_PG_PASSWORD, failing run: exit %s, expected non-zero" % r.returncode)
    # and succeeding
    env["TARGET_PG_DBNAME"] = db
    env["TARGET_PG_DEFAULT_TARGET_SCHEMA"] = "pw_env"
    r = run(["--config", "ENV", "--input", singer(tmp, "pwenv")], env=env)
    no_secret("TARGET_PG_PASSWORD, successful run", r)
    if ok("TARGET_PG_PASSWORD", r):
        landed("TARGET_PG_PASSWORD", "pw_env", "pwenv", db)


if __name__ == "__main__":
    sys.exit(main())
