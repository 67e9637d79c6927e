#!/usr/bin/env python3
"""Database errors give a clear error and exit 1 (issue #5 item 3), and no
STATE is written past the last commit.

  * permission denied, as a role made here: no CREATE on the database (new
    schema), no CREATE on schema public (new table), a table owned by another
    role with only SELECT granted (unkeyed: COPY; keyed: the merge).  The error
    line says "permission denied" and names the schema or table, SQLSTATE
    42501, and a HINT names the role;
  * statement timeout: another session holds ACCESS EXCLUSIVE locks on the
    target tables (psql in the background: BEGIN; LOCK ...; SELECT pg_sleep)
    and target-pg runs with PGOPTIONS='-c statement_timeout=500'.  Exit 1
    within seconds, "statement timeout" and the table in the error line,
    SQLSTATE 57014, a HINT about statement_timeout; after the lock is gone the
    same input loads;
  * disk full, for real: a 2 MB tmpfs mounted here is a tablespace and the
    database's default_tablespace; a keyed stream of ~4.6 MB fails with
    "could not extend file ...: No space left on device" (SQLSTATE 53100);
    every STATE written is covered by committed rows; after the tmpfs is
    remounted larger, a rerun from the last STATE written completes and loses
    no row.  Needs root and a kernel that lets us mount tmpfs; otherwise the
    case is reported as a note and skipped.  Always unmounted;
  * temp_file_limit (a resource limit that needs no mount): the merge of a
    5,000-row batch (loading the same rows a second time, each after a changed
    record of its key:
    a first load into a new table is not merged, and a batch that repeats no
    key is merged without a sort) spills past temp_file_limit = 256kB, exit 1
    with SQLSTATE 53400 and a hint; after the limit is lifted a rerun
    completes.

Every case starts with a stream that commits one batch (batch_size_rows 2) in
a schema the failure does not touch: its rows stay, and stdout holds only the
STATEs of committed records.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

problems = []
RUN_TIMEOUT = 30


def problem(msg):
    problems.append(msg)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("TARGET_PG_") or k.startswith("MELTANO_") or k == "PGOPTIONS")}
    env.update(extra)
    return env


def run(args, env=None, timeout=RUN_TIMEOUT):
    """target-pg args in env (default: ours without PGOPTIONS); a harness.Run
    with .seconds."""
    return harness.run_target(args, timeout=timeout,
                              env=env if env is not None else clean_env())


def write_config(path, db, **extra):
    cfg = harness.connection(db, default_target_schema="dbe_default", batch_size_rows=2,
                             connect_retries=0)
    cfg.update(extra)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    os.chmod(path, 0o600)
    return path


def error_block(stderr):
    """(first error line, {"HINT": ..., "SQLSTATE": ..., "DETAIL": ...})."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("target-pg: error"):
            extra = {}
            for follow in lines[i + 1:i + 4]:
                key, _, val = follow.partition(": ")
                if key in ("DETAIL", "HINT", "SQLSTATE"):
                    extra[key] = val
            return line, extra
    return None, {}


def check_failure(label, r, sqlstate, says, names, hint_words=()):
    """Exit 1, an error line saying every one of says (any case) and naming
    every one of names, the SQLSTATE and a HINT holding hint_words.  Returns
    the error line (or None)."""
    if r.timed_out:
        problem("%s: timed out after %d s" % (label, RUN_TIMEOUT))
        return None
    if r.returncode != 1:
        problem("%s: exit %s, expected 1 (stderr: %s)" % (label, r.returncode,
                                                          r.stderr.strip()[-800:]))
    line, extra = error_block(r.stderr)
    if line is None:
        problem("%s: no 'target-pg: error' line (stderr: %s)" % (label, r.stderr.strip()[-800:]))
        return None
    for w in says:
        if w.lower() not in line.lower():
            problem("%s: the error line does not say %r: %s" % (label, w, line))
    for n in names:
        if n not in line:
            problem("%s: the error line does not name %s: %s" % (label, n, line))
    if extra.get("SQLSTATE") != sqlstate:
        problem("%s: SQLSTATE %r, expected %s (stderr: %s)"
                % (label, extra.get("SQLSTATE"), sqlstate, r.stderr.strip()[-600:]))
    for w in hint_words:
        if w not in extra.get("HINT", ""):
            problem("%s: no HINT mentioning %r (HINT: %r)" % (label, w, extra.get("HINT")))
    print("# %s: exit %s in %.1f s: %s" % (label, r.returncode, r.seconds, line))
    return line


# --- the input every case shares: a committed batch, then the failing stream ------

def keyed_schema(stream):
    return {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"}}}}


def unkeyed_schema(stream):
    return {"type": "SCHEMA", "stream": stream, "key_properties": [],
            "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                        "v": {"type": "string"}}}}


def rec(stream, i):
    return {"type": "RECORD", "stream": stream, "record": {"id": i, "v": "row %d" % i}}


def state(n):
    return {"type": "STATE", "value": {"n": n}}


def staged_input(path, ok_stream, bad_schema):
    """ok_stream (keyed) gets two records, which batch_size_rows 2 commits
    (writing STATE 1); then bad_schema's stream gets one record; STATE 3 and 4
    follow records that can never be committed."""
    bad = bad_schema["stream"]
    harness.write_messages(path, [
        keyed_schema(ok_stream), rec(ok_stream, 1), state(1), rec(ok_stream, 2), state(2),
        bad_schema, rec(bad, 1), state(3), rec(ok_stream, 3), state(4)])
    return path


def check_committed(label, r, db, ok_schema, ok_table):
    """stdout holds STATE 1 (or 1, 2): never 3 or 4; the ok table holds the
    two committed rows and not the third."""
    st = harness.parse_states(problems, label, r.stdout)
    if st is not None and st not in ([{"n": 1}], [{"n": 1}, {"n": 2}]):
        problem("%s: stdout STATEs %r, expected [{'n': 1}] (or 1, 2): a STATE past the last "
                "commit" % (label, st))
    ids = harness.column_values(ok_schema, ok_table, "id", db, order_by="id")
    if ids != [1, 2]:
        problem("%s: %s.%s holds ids %r, expected the committed [1, 2]"
                % (label, ok_schema, ok_table, ids))


def setup_load(tmp, db, name, schema_mapping, msgs):
    """Loads msgs as postgres (tables for later cases); a problem if it fails."""
    path = os.path.join(tmp, "%s.singer" % name)
    harness.write_messages(path, msgs)
    cfg = write_config(os.path.join(tmp, "%s.json" % name), db, schema_mapping=schema_mapping)
    return harness.check_exit_0(problems, "setup load %s" % name,
                                run(["--config", cfg, "--input", path]))


# =============================================================================
# permission denied
# =============================================================================

def permission_denied(db, tmp):
    role = "tgt_noperm_%d" % os.getpid()
    mapping = {"ok": "dbe_ok", "new": "dbe_new", "pub": "public", "ro": "dbe_ro"}
    if not setup_load(tmp, db, "perm-setup", mapping,
                      [unkeyed_schema("ro-t"), rec("ro-t", 100), keyed_schema("ro-k"),
                       rec("ro-k", 100)]):
        return
    harness.psql("CREATE ROLE %s LOGIN" % role, "postgres")
    try:
        # the role owns dbe_ok; it may read dbe_ro's tables but not write them;
        # PostgreSQL 15 gives PUBLIC no CREATE on public nor on the database
        harness.psql("CREATE SCHEMA dbe_ok AUTHORIZATION %s" % role, db)
        harness.psql("GRANT USAGE ON SCHEMA dbe_ro TO %s" % role, db)
        harness.psql("GRANT SELECT ON dbe_ro.t, dbe_ro.k TO %s" % role, db)
        cfg = write_config(os.path.join(tmp, "perm.json"), db, user=role,
                           schema_mapping=mapping)
        for case, bad_schema, says, names in (
                ("no CREATE on the database (new schema)", keyed_schema("new-b"),
                 ["permission denied for database"], ['"dbe_new"']),
                ("no CREATE on schema public (new table)", keyed_schema("pub-b"),
                 ["permission denied for schema public"], ['"public"."b"']),
                ("no INSERT on another role's table (unkeyed, COPY)", unkeyed_schema("ro-t"),
                 ["permission denied for table t"], ['"dbe_ro"."t"']),
                ("no INSERT on another role's table (keyed, merge)", keyed_schema("ro-k"),
                 ["permission denied for table k"], ['"dbe_ro"."k"'])):
            ok_stream = "ok-" + bad_schema["stream"].replace("-", "")  # one table per case
            path = staged_input(os.path.join(tmp, "perm.singer"), ok_stream, bad_schema)
            r = run(["--config", cfg, "--input", path])
            label = "permission denied: " + case
            check_failure(label, r, "42501", says, names, hint_words=['"%s"' % role])
            check_committed(label, r, db, "dbe_ok", harness.table_name(ok_stream))
        for t in ("t", "k"):
            got = harness.column_values("dbe_ro", t, "id", db)
            if got != [100]:
                problem("permission denied: dbe_ro.%s holds ids %r, expected [100]" % (t, got))
        if harness.table_exists("public", "b", db) or harness.scalar(
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'dbe_new'", db) != "0":
            problem("permission denied: public.b or schema dbe_new exists after all")
    finally:
        try:
            harness.psql("DROP OWNED BY %s" % role, db)
            harness.psql("DROP ROLE IF EXISTS %s" % role, "postgres")
        except harness.DbError as e:
            problem("cleanup of role %s failed: %s" % (role, e))


# =============================================================================
# statement timeout while another session holds a lock
# =============================================================================

def statement_timeout(db, tmp):
    mapping = {"ok": "dbe_tok", "lk": "dbe_lock"}
    if not setup_load(tmp, db, "lock-setup", mapping,
                      [unkeyed_schema("lk-l"), rec("lk-l", 100), keyed_schema("lk-lk"),
                       rec("lk-lk", 100)]):
        return
    app = "tgt_locker_%d" % os.getpid()
    locker = subprocess.Popen(
        [harness.pg_prog("psql"), "-X", "-q", "-d", db, "-c",
         "BEGIN; LOCK TABLE dbe_lock.l, dbe_lock.lk IN ACCESS EXCLUSIVE MODE; "
         "SELECT pg_sleep(60)"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=clean_env(PGAPPNAME=app), start_new_session=True)
    try:
        held = False
        for _ in range(100):
            n = harness.scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.application_name = %s AND l.mode = 'AccessExclusiveLock' "
                "AND l.granted AND l.relation IS NOT NULL" % harness.sql_literal(app), db)
            if int(n) >= 2:
                held = True
                break
            time.sleep(0.1)
        if not held:
            problem("statement timeout: the background psql did not get its locks in 10 s")
            return
        cfg = write_config(os.path.join(tmp, "lock.json"), db, schema_mapping=mapping)
        env = clean_env(PGOPTIONS="-c statement_timeout=500")
        for case, bad_schema, names in (
                ("unkeyed table (COPY)", unkeyed_schema("lk-l"), ['"dbe_lock"."l"']),
                ("keyed table (staging)", keyed_schema("lk-lk"), ['"dbe_lock"."lk"'])):
            ok_stream = "ok-t" + bad_schema["stream"][3:]
            path = staged_input(os.path.join(tmp, "lock-%s.singer" % ok_stream), ok_stream,
                                bad_schema)
            r = run(["--config", cfg, "--input", path], env)
            label = "statement timeout: " + case
            check_failure(label, r, "57014", ["statement timeout"], names,
                          hint_words=["statement_timeout"])
            if r.seconds > 10:
                problem("%s: took %.1f s; statement_timeout is 500 ms" % (label, r.seconds))
            check_committed(label, r, db, "dbe_tok", harness.table_name(ok_stream))
    finally:
        try:
            harness.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = %s" % harness.sql_literal(app), db)
        except harness.DbError as e:
            problem("statement timeout: could not end the locking session: %s" % e)
        try:
            locker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            locker.kill()
            locker.wait()

    # the lock is gone: the same input loads (STATE 4 last, the third row there)
    for ok_stream, bad in (("ok-tl", "l"), ("ok-tlk", "lk")):
        path = os.path.join(tmp, "lock-%s.singer" % ok_stream)
        r = run(["--config", cfg, "--input", path])
        label = "statement timeout, rerun after the lock is released (%s)" % bad
        if harness.check_exit_0(problems, label, r):
            st = harness.parse_states(problems, label, r.stdout)
            if st is not None and (not st or st[-1] != {"n": 4}):
                problem("%s: STATEs %r, expected the last to be {'n': 4}" % (label, st))
            ids = harness.column_values("dbe_lock", bad, "id", db, order_by="id")
            if ids != [1, 100]:
                problem("%s: dbe_lock.%s holds ids %r, expected [1, 100]" % (label, bad, ids))


# =============================================================================
# disk full (tmpfs tablespace) and temp_file_limit
# =============================================================================

N_BIG = 20000
BIG_BATCH = 1000


def big_input(path, stream, first=1, state_every=1000, twice=False):
    """Keyed stream, ids first..N_BIG of ~230 bytes each (with twice, each
    record follows another of its key with a changed value), STATE {"n": i}
    after every state_every-th id and at the end."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(harness.jline(keyed_schema(stream)) + "\n")
        pad = "x" * 200
        for i in range(first, N_BIG + 1):
            for p in (["y" * 200] if twice else []) + [pad]:
                f.write(harness.jline({"type": "RECORD", "stream": stream,
                                       "record": {"id": i, "v": "%d %s" % (i, p)}}) + "\n")
            if i % state_every == 0 or i == N_BIG:
                f.write(harness.jline(state(i)) + "\n")
    return path


def check_no_state_past_commit(label, r, db, schema, table, batch):
    """Every STATE {"n": k} written has ids 1..k committed; the committed rows
    are whole batches.  Returns the last n written (0 when none)."""
    st = harness.parse_states(problems, label, r.stdout) or []
    ids = harness.scalar("SELECT count(*) || ' ' || coalesce(max(id), 0) FROM %s"
                         % harness.qualified(schema, table), db) \
        if harness.table_exists(schema, table, db) else "0 0"
    count, top = (int(x) for x in ids.split())
    if count != top:
        problem("%s: %d rows committed but the highest id is %d" % (label, count, top))
    if count % batch != 0:
        problem("%s: %d rows committed, not a whole number of %d-row batches"
                % (label, count, batch))
    last = 0
    for s in st:
        n = s.get("n") if isinstance(s, dict) else None
        if not isinstance(n, int) or n > count:
            problem("%s: STATE %r written but only %d rows are committed" % (label, s, count))
        else:
            last = n
    if any(s == state(N_BIG)["value"] for s in st):
        problem("%s: the final STATE was written although the run failed" % label)
    print("# %s: %d rows committed, last STATE written %r" % (label, count, st[-1] if st else None))
    return last


def rerun_from(label, tmp, cfg, db, schema, table, stream, last):
    """Reruns from the last STATE written: everything loads, nothing is lost."""
    path = big_input(os.path.join(tmp, "%s-rerun.singer" % stream), stream, first=last + 1)
    r = run(["--config", cfg, "--input", path], timeout=60)
    if not harness.check_exit_0(problems, label, r):
        return
    st = harness.parse_states(problems, label, r.stdout)
    if st is not None and (not st or st[-1] != {"n": N_BIG}):
        problem("%s: STATEs end with %r, expected {'n': %d}" % (label, st[-1:], N_BIG))
    got = harness.scalar("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || min(id) || ' ' "
                         "|| max(id) FROM %s" % harness.qualified(schema, table), db)
    if got != "%d %d 1 %d" % (N_BIG, N_BIG, N_BIG):
        problem("%s: count, distinct ids, min, max = %s, expected %d %d 1 %d"
                % (label, got, N_BIG, N_BIG, N_BIG))


def cluster_owner(db):
    st = os.stat(harness.scalar("SHOW data_directory", db))
    return st.st_uid, st.st_gid


def disk_full(db, tmp):
    if os.geteuid() != 0:
        print("# note: disk full case skipped: mounting a tmpfs needs root")
        return
    mnt = tempfile.mkdtemp(prefix="tgt-tiny.", dir="/tmp")
    mounted = False
    space = "tgt_tiny_%d" % os.getpid()
    dbq = harness.quote_ident(db)
    try:
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M,mode=0700", "tmpfs", mnt],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=20)
        if m.returncode != 0:
            print("# note: disk full case skipped: mount -t tmpfs failed: %s"
                  % m.stderr.decode("utf-8", "replace").strip())
            return
        mounted = True
        os.chown(mnt, *cluster_owner(db))
        harness.psql("CREATE TABLESPACE %s LOCATION %s" % (space, harness.sql_literal(mnt)), db)
        harness.psql("ALTER DATABASE %s SET default_tablespace = %s" % (dbq, space), db)

        cfg = write_config(os.path.join(tmp, "full.json"), db, batch_size_rows=BIG_BATCH,
                           schema_mapping={"df": "dbe_full"})
        path = big_input(os.path.join(tmp, "full.singer"), "df-big")
        r = run(["--config", cfg, "--input", path], timeout=60)
        label = "disk full (2 MB tmpfs tablespace)"
        check_failure(label, r, "53100", ["could not extend file", "No space left on device"],
                      ['"dbe_full"."big"'])
        last = check_no_state_past_commit(label, r, db, "dbe_full", "big", BIG_BATCH)

        # free space: the same tmpfs, larger
        m = subprocess.run(["mount", "-o", "remount,size=64M", mnt], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=20)
        if m.returncode != 0:
            problem("disk full: remount with more space failed: %s"
                    % m.stderr.decode("utf-8", "replace").strip())
            return
        rerun_from("disk full, rerun from the last STATE after freeing space", tmp, cfg, db,
                   "dbe_full", "big", "df-big", last)
    finally:
        for sql in ("DROP SCHEMA IF EXISTS dbe_full CASCADE",
                    "ALTER DATABASE %s RESET default_tablespace" % dbq,
                    "DROP TABLESPACE IF EXISTS %s" % space):
            try:
                harness.psql(sql, db)
            except harness.DbError as e:
                problem("disk full cleanup: %s: %s" % (sql, e))
        if mounted:
            u = subprocess.run(["umount", mnt], capture_output=True, stdin=subprocess.DEVNULL,
                               timeout=20)
            if u.returncode != 0:
                problem("disk full cleanup: umount %s failed (%s); detaching it"
                        % (mnt, u.stderr.decode("utf-8", "replace").strip()))
                subprocess.run(["umount", "-l", mnt], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=20)
        try:
            os.rmdir(mnt)
        except OSError as e:
            problem("disk full cleanup: rmdir %s: %s" % (mnt, e))


def temp_file_limit(db, tmp):
    dbq = harness.quote_ident(db)
    batch = 5000
    try:
        harness.psql("ALTER DATABASE %s SET temp_file_limit = '256kB'" % dbq, db)
        harness.psql("ALTER DATABASE %s SET work_mem = '64kB'" % dbq, db)
        cfg = write_config(os.path.join(tmp, "tfl.json"), db, batch_size_rows=batch,
                           schema_mapping={"tf": "dbe_tfl"})
        path = big_input(os.path.join(tmp, "tfl.singer"), "tf-big")
        # a first load into the new table needs no merge (no sort): it goes
        # through under the limit, and the same rows again, each after a
        # changed one of its key, are merged newest per key: a sort
        r = run(["--config", cfg, "--input", path], timeout=60)
        harness.check_exit_0(problems, "temp_file_limit: first load (no merge)", r)
        twice = big_input(os.path.join(tmp, "tfl-twice.singer"), "tf-big", twice=True)
        r = run(["--config", cfg, "--input", twice], timeout=60)
        label = "temp_file_limit 256kB (merge sort spills)"
        check_failure(label, r, "53400", ["temp_file_limit"], ['"dbe_tfl"."big"'],
                      hint_words=["batch_size_rows"])
        last = check_no_state_past_commit(label, r, db, "dbe_tfl", "big", batch)
    finally:
        harness.psql("ALTER DATABASE %s RESET temp_file_limit" % dbq, db)
        harness.psql("ALTER DATABASE %s RESET work_mem" % dbq, db)
    rerun_from("temp_file_limit, rerun from the last STATE after lifting the limit", tmp, cfg,
               db, "dbe_tfl", "big", "tf-big", last)


def main():
    # run_all.sh's timeout sends TERM first: leave through the finally blocks
    # (unmount, drop the role, end the locking session)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    db, tmp = harness.integration_env()
    permission_denied(db, tmp)
    statement_timeout(db, tmp)
    temp_file_limit(db, tmp)
    disk_full(db, tmp)
    return harness.report(problems)


if __name__ == "__main__":
    sys.exit(main())
