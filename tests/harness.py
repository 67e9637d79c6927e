"""tests/harness.py - helpers shared by tests/conformance.py and the Python
integration tests (tests/integration/test_*.py).

Standard library only.  Talks to PostgreSQL through the psql/createdb client
programs with the PG* variables written by tests/pg.sh (PGHOST, PGPORT,
PGUSER); never through a driver module.

What is here:
  * the stream-name -> table-name rule of target-pg (docs/contract.md "Names"),
    reimplemented so tests can find the tables target-pg creates;
  * running target-pg (with $TARGET_PG_WRAPPER) on a file with a config, and
    the checks of its exit status every integration test makes;
  * small database helpers: createdb/dropdb, scalar and JSON queries;
  * writing Singer input files and reading STATE values back from stdout;
  * the integration-test frame: $TEST_DB / $TEST_TMPDIR and the report of
    problems (one per line, exit status 1 when there is any).
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from decimal import Decimal

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IDENT_MAX = 63  # PostgreSQL NAMEDATALEN - 1
IDENT_CUT = 54  # bytes kept before "_" + 8 hex digits
PATH_SEPARATOR = b"\x1f"  # joins source path parts for hashing (src/naming.h)


# --- naming (docs/contract.md "Names", src/naming.h) -------------------------------

def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def normalize_part(name: str) -> str:
    """One name part: ASCII letters lower-cased, other ASCII characters
    outside [a-z0-9_] become '_', non-ASCII kept, a leading digit gets a '_'
    prefix, an empty name becomes '_'.  No length rule."""
    out = []
    for ch in name:
        if ord(ch) >= 0x80:
            out.append(ch)
        elif "A" <= ch <= "Z":
            out.append(ch.lower())
        elif "a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_":
            out.append(ch)
        else:
            out.append("_")
    s = "".join(out)
    if not s:
        return "_"
    if "0" <= s[0] <= "9":
        s = "_" + s
    return s


def cut_utf8(s: str, max_bytes: int) -> str:
    """The longest prefix of s that is at most max_bytes in UTF-8."""
    out, n = [], 0
    for ch in s:
        w = len(ch.encode("utf-8", "surrogatepass"))
        if n + w > max_bytes:
            break
        out.append(ch)
        n += w
    return "".join(out)


def identifier(parts) -> str:
    """An identifier from a source path (list of original names): parts
    normalised and joined with '__'; over 63 bytes it is cut to at most 54
    bytes at a character boundary + '_' + 8 hex digits of FNV-1a 32 over the
    original parts joined by 0x1F."""
    if isinstance(parts, str):
        parts = [parts]
    ident = "__".join(normalize_part(p) for p in parts)
    if len(ident.encode("utf-8", "surrogatepass")) <= IDENT_MAX:
        return ident
    h = fnv1a32(PATH_SEPARATOR.join(p.encode("utf-8", "surrogatepass") for p in parts))
    return "%s_%08x" % (cut_utf8(ident, IDENT_CUT), h)


def suffixed(parts) -> str:
    """The clash form of a source path's identifier (src/naming.h): the
    normalised name cut to <= 54 bytes + '_' + 8 hex digits of FNV-1a 32 over
    the original parts joined by 0x1F."""
    if isinstance(parts, str):
        parts = [parts]
    ident = "__".join(normalize_part(p) for p in parts)
    h = fnv1a32(PATH_SEPARATOR.join(p.encode("utf-8", "surrogatepass") for p in parts))
    return "%s_%08x" % (cut_utf8(ident, IDENT_CUT), h)


def split_stream(stream: str):
    """(source_schema or None, table part) per docs/contract.md: a name that splits
    on '-' into two or three non-empty parts is source-table / db-source-table."""
    parts = stream.split("-")
    if len(parts) in (2, 3) and all(parts):
        return parts[-2], parts[-1]
    return None, stream


def table_name(stream: str) -> str:
    """The PostgreSQL table target-pg loads stream `stream` into."""
    return identifier([split_stream(stream)[1]])


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return quote_ident(schema) + "." + quote_ident(table)


# --- PostgreSQL client programs ---------------------------------------------

def pg_bindir() -> str:
    d = ""
    if shutil.which("pg_config"):
        try:
            d = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            d = ""
    if not d or not os.access(os.path.join(d, "psql"), os.X_OK):
        d = "/usr/lib/postgresql/15/bin"
    return d


def pg_prog(name: str) -> str:
    p = os.path.join(pg_bindir(), name)
    return p if os.access(p, os.X_OK) else name


class DbError(Exception):
    pass


def _run_client(args, dbname="postgres"):
    env = dict(os.environ, PGDATABASE=dbname, PGCONNECT_TIMEOUT="10")
    r = subprocess.run(args, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    if r.returncode != 0:
        raise DbError("%s failed (exit %d): %s" % (os.path.basename(args[0]), r.returncode,
                                                   r.stderr.decode("utf-8", "replace").strip()))
    return r.stdout.decode("utf-8")


def psql(sql: str, dbname: str) -> str:
    """Runs sql (one statement) and returns unaligned, tuples-only output."""
    return _run_client([pg_prog("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-c", sql], dbname)


def query_json(sql: str, dbname: str):
    """Rows of a SELECT as a list of dicts, exact: numeric values come back as
    Decimal (never through a float), text byte for byte."""
    out = psql("SELECT coalesce(json_agg(q), '[]'::json) FROM (%s) q" % sql, dbname)
    return json.loads(out, parse_float=Decimal)


def scalar(sql: str, dbname: str) -> str:
    return psql(sql, dbname).rstrip("\n")


def createdb(dbname: str) -> None:
    _run_client([pg_prog("createdb"), "-T", "template0", "-E", "UTF8", dbname])


def dropdb(dbname: str) -> None:
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % quote_ident(dbname), "postgres")


def table_exists(schema: str, table: str, dbname: str) -> bool:
    return scalar("SELECT to_regclass(%s) IS NOT NULL"
                  % sql_literal(qualified(schema, table)), dbname) == "t"


def count_rows(schema: str, table: str, dbname: str) -> int:
    return int(scalar("SELECT count(*) FROM %s" % qualified(schema, table), dbname))


def columns(schema: str, table: str, dbname: str):
    """{column name: data type} in ordinal order."""
    rows = query_json("SELECT column_name, data_type FROM information_schema.columns "
                      "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
                      % (sql_literal(schema), sql_literal(table)), dbname)
    return {r["column_name"]: r["data_type"] for r in rows}


def column_values(schema: str, table: str, column: str, dbname: str, order_by=None):
    """The values of one column as a list, in ORDER BY order_by (SQL text)
    when given; [] when the table does not exist."""
    if not table_exists(schema, table, dbname):
        return []
    sql = "SELECT %s AS v FROM %s" % (quote_ident(column), qualified(schema, table))
    if order_by:
        sql += " ORDER BY " + order_by
    return [r["v"] for r in query_json(sql, dbname)]


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# --- target-pg ---------------------------------------------------------------

def target_cmd():
    """argv prefix: $TARGET_PG_WRAPPER (split like a shell would) + $TARGET_PG."""
    target = os.environ.get("TARGET_PG") or os.path.join(REPO_ROOT, "target-pg")
    return shlex.split(os.environ.get("TARGET_PG_WRAPPER", "")) + [target]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connection(dbname: str, **extra) -> dict:
    """Connection settings (host, port, user, dbname) for the throwaway
    server in the PG* environment, followed by extra."""
    cfg = {
        "host": os.environ.get("PGHOST", "localhost"),
        "port": int(os.environ.get("PGPORT", "5432")),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": dbname,
    }
    cfg.update(extra)
    return cfg


def odbc_config(cfg: dict) -> dict:
    """The libpq settings of cfg (host, port, user, dbname) as an
    odbc_connection_string for psqlODBC, the other settings kept; points
    unixODBC at a private odbcinst.ini (tests/warehouse.py)."""
    import warehouse  # here: warehouse imports this module
    scratch = os.environ.get("TEST_TMPDIR") or os.path.join(REPO_ROOT, "build")
    os.environ.update(warehouse.odbc_env(os.path.join(scratch, "odbc")))
    out = {k: v for k, v in cfg.items() if k not in ("host", "port", "user", "dbname")}
    out["driver"] = "odbc"
    out["odbc_connection_string"] = (
        "DRIVER={PostgreSQL Unicode};Servername=%s;Port=%s;Database=%s;UID=%s;"
        % (cfg["host"], cfg["port"], cfg["dbname"], cfg["user"]))
    return out


def write_config(path: str, dbname: str, schema: str = "public", **extra) -> str:
    """Writes a config for the throwaway server in the PG* environment (with
    default_target_schema = schema, then extra) to path; returns path.  With
    TEST_TARGET_DRIVER=psqlodbc the same server is reached through the ODBC
    driver and psqlODBC instead of libpq (tests/integration/
    test_psqlodbc_suite.py runs integration tests so)."""
    cfg = connection(dbname, default_target_schema=schema)
    cfg.update(extra)
    if os.environ.get("TEST_TARGET_DRIVER") == "psqlodbc":
        cfg = odbc_config(cfg)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return path


class Run:
    def __init__(self, returncode, stdout, stderr, timed_out):
        self.returncode = returncode
        self.stdout = stdout  # str (UTF-8, errors replaced)
        self.stderr = stderr
        self.timed_out = timed_out


class LiveTarget:
    """target-pg reading a pipe the test writes to (self.p.stdin), in a
    session of its own so that a kill reaches its whole process group (a
    wrapper such as valgrind too).  Threads collect its stdout and stderr
    lines into out and err while it runs: str, or (monotonic time, line)
    with stamped=True.  A context manager: still running when the block
    ends, it is killed."""

    def __init__(self, cfg, env=None, stamped=False):
        self.stamped = stamped
        self.p = subprocess.Popen(target_cmd() + ["--config", cfg], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True, env=env)
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._collect, args=(f, sink), daemon=True)
                        for f, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _collect(self, f, sink):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append((time.monotonic(), line) if self.stamped else line)

    def stderr(self):
        return "\n".join(e[1] if self.stamped else e for e in list(self.err))

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def join(self):
        """Waits (10 s each at most) for the threads: after the exit, every
        line is collected."""
        for t in self.threads:
            t.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.kill()
        self.close_stdin()
        self.join()
        return False


def run_target(args, timeout=120, stdin_path=None, env=None) -> Run:
    """Runs target-pg with args; stdin from stdin_path or /dev/null; in env
    (default: this process's environment).  The run's wall time is in
    .seconds."""
    cmd = target_cmd() + list(args)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    started = time.monotonic()
    try:
        p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            # the whole group: the wrapper (valgrind) and anything it started
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            out, err = p.communicate()
            timed_out = True
    finally:
        if stdin_path:
            stdin.close()
    r = Run(p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
            timed_out)
    r.seconds = time.monotonic() - started
    return r


def run_input(cfg: str, path: str, timeout=120) -> Run:
    """Runs target-pg --config cfg --input path."""
    return run_target(["--config", cfg, "--input", path], timeout=timeout)


def check_exit_0(problems, label: str, r: Run, tail=1500) -> bool:
    """True when run r exited 0 in time; otherwise appends "label: target-pg
    exit N[ (timed out)]: <last tail characters of stderr>" to problems and
    returns False."""
    if r.timed_out or r.returncode != 0:
        problems.append("%s: target-pg exit %s%s: %s" % (label, r.returncode,
                                                          " (timed out)" if r.timed_out else "",
                                                          r.stderr.strip()[-tail:]))
        return False
    return True


def check_exit_1(problems, label: str, r: Run) -> bool:
    """For a run that must fail with exit 1 (a data or input error): False
    after appending "label: timed out" when it timed out; otherwise True,
    after appending a problem when its exit status is not 1."""
    if r.timed_out:
        problems.append("%s: timed out" % label)
        return False
    if r.returncode != 1:
        problems.append("%s: exit %s, expected 1 (stderr: %s)" % (label, r.returncode,
                                                                r.stderr.strip()[-1000:]))
    return True


def lines_mentioning(text: str, word: str):
    """The lines of text that contain word (lower case), ignoring case:
    lines_mentioning(stderr, "error") are the error lines."""
    return [line for line in text.splitlines() if word in line.lower()]


# --- Singer input --------------------------------------------------------------

def jline(obj) -> str:
    """One JSON line (without newline), non-ASCII characters written raw."""
    return json.dumps(obj, ensure_ascii=False)


def write_text(path: str, text: str) -> None:
    """Writes text to path as UTF-8, byte for byte (no newline translation)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_lines(path: str, lines) -> None:
    """Writes each line of lines (str) to path followed by a newline."""
    write_text(path, "".join(line + "\n" for line in lines))


def write_messages(path: str, msgs) -> None:
    """Writes each message (dict) of msgs to path as one JSON line."""
    write_lines(path, [jline(m) for m in msgs])


def read_messages(path: str):
    """(line number, message dict) for every line of path that parses as a
    JSON object; other lines are skipped."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                msg = json.loads(raw.decode("utf-8"), parse_float=Decimal)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(msg, dict):
                yield n, msg


def last_state(path: str):
    """(found, value) of the last STATE message of path."""
    found, value = False, None
    for _, msg in read_messages(path):
        if msg.get("type") == "STATE":
            found, value = True, msg.get("value")
    return found, value


def stdout_states(stdout: str):
    """Parses every non-empty stdout line as JSON; raises ValueError naming the
    first line that is not JSON (stdout must carry STATE values only)."""
    values = []
    for i, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line, parse_float=Decimal))
        except ValueError:
            raise ValueError("stdout line %d is not JSON: %.200s" % (i, line))
    return values


def parse_states(problems, label: str, stdout: str):
    """stdout_states(stdout); None after appending "label: <which line is not
    JSON>" to problems."""
    try:
        return stdout_states(stdout)
    except ValueError as e:
        problems.append("%s: %s" % (label, e))
        return None


def check_states(problems, label: str, stdout: str, want) -> None:
    """Appends a problem unless stdout holds exactly the STATE values want."""
    st = parse_states(problems, label, stdout)
    if st is not None and st != want:
        problems.append("%s: stdout STATEs %r, expected %r" % (label, st, want))


# --- integration tests (tests/integration/test_*.py) ----------------------------

class Scratch:
    """Numbered config and input files under `tmp` for one test file:
    config(schema, **settings) writes a config, run(cfg, msgs) writes the
    messages and runs target-pg on them."""

    def __init__(self, dbname: str, tmp: str, prefix: str):
        self.dbname, self.tmp, self.prefix, self.n = dbname, tmp, prefix, 0

    def _path(self, ext: str) -> str:
        self.n += 1
        return os.path.join(self.tmp, "%s-%d.%s" % (self.prefix, self.n, ext))

    def config(self, schema: str, **extra) -> str:
        return write_config(self._path("json"), self.dbname, schema, **extra)

    def run(self, cfg: str, msgs, timeout=60) -> Run:
        path = self._path("singer")
        write_messages(path, msgs)
        return run_input(cfg, path, timeout=timeout)


def integration_env():
    """(database, scratch directory) that tests/run_all.sh gives an
    integration test: $TEST_DB and $TEST_TMPDIR (default /tmp)."""
    return os.environ["TEST_DB"], os.environ.get("TEST_TMPDIR") or "/tmp"


def report(problems, limit=60) -> int:
    """Prints the first limit problems one per line (a newline in one shown
    as \\n) and how many more there are; returns the exit status: 1 when
    there is any problem, else 0."""
    for p in problems[:limit]:
        print(p.replace("\n", "\\n"))
    if len(problems) > limit:
        print("... and %d more problems" % (len(problems) - limit))
    return 1 if problems else 0
