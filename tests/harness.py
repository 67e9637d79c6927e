"""tests/harness.py - helpers shared by tests/conformance.py and the Python
integration tests (tests/integration/test_*.py).

Standard library only.  Talks to PostgreSQL through the psql/createdb client
programs with the PG* variables written by tests/pg.sh (PGHOST, PGPORT,
PGUSER); never through a driver module.

What is here:
  * the stream-name -> table-name rule of target-pg (DESIGN.md "Names"),
    reimplemented so tests can find the tables target-pg creates;
  * running target-pg (with $TARGET_PG_WRAPPER) on a file with a config;
  * small database helpers: createdb/dropdb, scalar and JSON queries.
"""

import json
import os
import shlex
import shutil
import subprocess
from decimal import Decimal

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IDENT_MAX = 63  # PostgreSQL NAMEDATALEN - 1
IDENT_CUT = 54  # bytes kept before "_" + 8 hex digits
PATH_SEPARATOR = b"\x1f"  # joins source path parts for hashing (src/naming.h)


# --- naming (DESIGN.md "Names", src/naming.h) -------------------------------

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


def split_stream(stream: str):
    """(source_schema or None, table part) per DESIGN.md: a name that splits
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


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# --- target-pg ---------------------------------------------------------------

def target_cmd():
    """argv prefix: $TARGET_PG_WRAPPER (split like a shell would) + $TARGET_PG."""
    target = os.environ.get("TARGET_PG") or os.path.join(REPO_ROOT, "target-pg")
    return shlex.split(os.environ.get("TARGET_PG_WRAPPER", "")) + [target]


def write_config(path: str, dbname: str, schema: str = "public", **extra) -> None:
    """A config for the throwaway server in the PG* environment."""
    cfg = {
        "host": os.environ.get("PGHOST", "localhost"),
        "port": int(os.environ.get("PGPORT", "5432")),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": dbname,
        "default_target_schema": schema,
    }
    cfg.update(extra)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


class Run:
    def __init__(self, returncode, stdout, stderr, timed_out):
        self.returncode = returncode
        self.stdout = stdout  # str (UTF-8, errors replaced)
        self.stderr = stderr
        self.timed_out = timed_out


def run_target(args, timeout=120, stdin_path=None) -> Run:
    """Runs target-pg with args; stdin from stdin_path or /dev/null."""
    cmd = target_cmd() + list(args)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
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
    return Run(p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
               timed_out)


# --- Singer input --------------------------------------------------------------

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
