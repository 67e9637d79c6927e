"""tests/warehouse.py - the warehouses the tests load into, behind one
interface, so a check can run against each: libpq PostgreSQL, SQLite through
ODBC, and (added by their dialects' tests) MariaDB and PostgreSQL through
psqlODBC.

Standard library only.  An adapter is made for one fresh database:

    wh = warehouse.make("sqlite", tmpdir)     # or "postgres", ...
    wh.create()                               # a fresh, empty database
    cfg = wh.config(schema="public", batch_size_rows=10)   # target config dict
    wh.write_config(path, schema="public")    # the same, written to a file
    wh.load(tmpdir, msgs, schema="public")    # target-pg over messages: a harness.Run
    wh.query("SELECT ...")                    # rows as lists of values
    wh.columns("public", "orders")            # {column: declared type}, in order
    wh.count("public", "orders")              # rows in the table
    wh.table_exists("public", "orders")
    wh.table("public", "orders")              # the table's name in SQL text
    wh.drop()

Values come back exact: PostgreSQL numerics as Decimal (never a float),
SQLite as stored (int, float, str, None; numeric columns hold their digits as
text, see README "SQLite").  Identifiers in SQL text go through
wh.table()/wh.ident(), which know each warehouse's quoting and where a
target schema lives (PostgreSQL: a schema; SQLite: the table-name prefix
"<schema>.").

ODBC: odbc_env(dir) writes a private odbcinst.ini naming every installed
ODBC driver by absolute path and returns the ODBCSYSINI/ODBCINI variables
that point unixODBC at it; make() puts them into os.environ, so target-pg
runs started afterwards see them.  Nothing under /etc is read or written.
"""

import itertools
import json
import os
import sqlite3
import subprocess
import tempfile
from decimal import Decimal
from xml.etree import ElementTree

import harness

ODBC_LIB_DIRS = ["/usr/lib/x86_64-linux-gnu/odbc", "/usr/lib/aarch64-linux-gnu/odbc",
                 "/usr/lib/odbc", "/usr/local/lib"]

# driver name in odbcinst.ini -> library file name
ODBC_DRIVERS = {
    "SQLite3": "libsqlite3odbc.so",
    "MariaDB": "libmaodbc.so",
    "PostgreSQL Unicode": "psqlodbcw.so",
}


def odbc_library(filename: str):
    """Absolute path of an installed ODBC driver library, or None."""
    for d in ODBC_LIB_DIRS:
        p = os.path.join(d, filename)
        if os.path.exists(p):
            return p
    return None


def odbc_env(directory: str) -> dict:
    """Writes odbcinst.ini (every installed driver of ODBC_DRIVERS) and an
    empty odbc.ini into directory; returns the environment that selects them."""
    os.makedirs(directory, exist_ok=True)
    lines = []
    for name, filename in ODBC_DRIVERS.items():
        lib = odbc_library(filename)
        if lib:
            lines += ["[%s]" % name, "Driver = %s" % lib, ""]
    _write_if_changed(os.path.join(directory, "odbcinst.ini"), "\n".join(lines))
    ini = os.path.join(directory, "odbc.ini")
    _write_if_changed(ini, "")
    return {"ODBCSYSINI": directory, "ODBCINI": ini}


def _write_if_changed(path: str, text: str) -> None:
    """Writes path whole (a new file renamed over it) unless it holds text
    already: a target-pg a test left running may be reading the file at that
    moment, and a truncated odbcinst.ini is "Can't open lib"."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=os.path.dirname(path),
                                     prefix=".odbc-", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


class Error(Exception):
    """A query or set-up step of a warehouse failed (PostgreSQL's client
    programs raise harness.DbError instead)."""


def identifier(parts, ident_max: int) -> str:
    """harness.identifier at another identifier limit (bytes): the
    normalised, '__'-joined parts, cut to ident_max - 9 bytes + '_' + 8 hex
    digits when longer (src/naming.h)."""
    if isinstance(parts, str):
        parts = [parts]
    ident = "__".join(harness.normalize_part(p) for p in parts)
    if len(ident.encode("utf-8", "surrogatepass")) <= ident_max:
        return ident
    h = harness.fnv1a32(harness.PATH_SEPARATOR.join(p.encode("utf-8", "surrogatepass")
                                                    for p in parts))
    return "%s_%08x" % (harness.cut_utf8(ident, ident_max - 9), h)


# numbers the config and input files of Warehouse.load within one test run
_LOADS = itertools.count(1)


def schema_message(stream, props, keys=()):
    """A SCHEMA message whose schema has the JSON Schema `props`."""
    return {"type": "SCHEMA", "stream": stream, "schema": {"properties": props},
            "key_properties": list(keys)}


def record_message(stream, record, **extra):
    """A RECORD message; extra envelope members (version, time_extracted)."""
    m = {"type": "RECORD", "stream": stream, "record": record}
    m.update(extra)
    return m


class Warehouse:
    """The interface; see the module docstring."""
    name = "?"
    ident_max = 63         # the driver's identifier limit as the core clamps it (naming.h)
    needs_pg_server = False  # the throwaway PostgreSQL of tests/pg.sh must run

    def table_name(self, stream: str) -> str:
        """The table target-pg loads `stream` into (docs/contract.md "Names")."""
        return identifier([harness.split_stream(stream)[1]], self.ident_max)

    def create(self):
        raise NotImplementedError

    def drop(self):
        raise NotImplementedError

    def config(self, schema="public", **extra) -> dict:
        raise NotImplementedError

    def write_config(self, path, schema="public", **extra) -> str:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.config(schema, **extra), f, indent=2)
            f.write("\n")
        return path

    def load(self, tmpdir, msgs, schema="public", **extra):
        """Runs target-pg over msgs (message objects, or lines of JSON text
        kept as written, for exact numbers) with this warehouse's config for
        `schema` plus the extra settings, both written into tmpdir."""
        n = next(_LOADS)
        cfg = self.write_config(os.path.join(tmpdir, "cfg%d.json" % n), schema, **extra)
        path = os.path.join(tmpdir, "in%d.singer" % n)
        harness.write_lines(path, [m if isinstance(m, str) else harness.jline(m) for m in msgs])
        return harness.run_input(cfg, path)

    def ident(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def table(self, schema: str, table: str) -> str:
        raise NotImplementedError

    def query(self, sql: str):
        raise NotImplementedError

    def columns(self, schema: str, table: str) -> dict:
        raise NotImplementedError

    def table_exists(self, schema: str, table: str) -> bool:
        raise NotImplementedError

    def count(self, schema: str, table: str) -> int:
        return int(self.query("SELECT count(*) FROM %s" % self.table(schema, table))[0][0])

    def column_values(self, schema, table, column, order_by=None):
        """One column's values in ORDER BY order_by; [] without the table."""
        if not self.table_exists(schema, table):
            return []
        sql = "SELECT %s FROM %s" % (self.ident(column), self.table(schema, table))
        if order_by:
            sql += " ORDER BY " + order_by
        return [r[0] for r in self.query(sql)]


class Postgres(Warehouse):
    """libpq: the throwaway server of tests/pg.sh (PG* variables)."""
    name = "postgres"
    needs_pg_server = True

    def __init__(self, tmpdir: str, dbname: str):
        self.tmpdir = tmpdir
        self.dbname = dbname

    def create(self):
        harness.createdb(self.dbname)

    def drop(self):
        harness.dropdb(self.dbname)

    def config(self, schema="public", **extra) -> dict:
        cfg = harness.connection(self.dbname, default_target_schema=schema)
        cfg.update(extra)
        return cfg

    def table(self, schema, table):
        return harness.qualified(schema, table)

    def query(self, sql):
        rows = harness.query_json("SELECT row_to_json(q)::text AS r FROM (%s) q" % sql,
                                  self.dbname)
        # each row's values in column order (json keeps the order)
        return [list(json.loads(r["r"], parse_float=Decimal).values()) for r in rows]

    def columns(self, schema, table):
        return harness.columns(schema, table, self.dbname)

    def table_exists(self, schema, table):
        return harness.table_exists(schema, table, self.dbname)


class Sqlite(Warehouse):
    """SQLite through target-pg's ODBC driver (libsqliteodbc); one file per
    database, read back with python's sqlite3 module."""
    name = "sqlite"
    ident_max = 127  # no limit of its own: the core's TGT_IDENT_MAX

    def __init__(self, tmpdir: str, dbname: str):
        self.tmpdir = tmpdir
        self.path = os.path.join(tmpdir, dbname + ".sqlite")

    def create(self):
        self.drop()
        sqlite3.connect(self.path).close()

    def drop(self):
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)

    def config(self, schema="public", **extra) -> dict:
        cfg = {"driver": "odbc",
               "odbc_connection_string": "DRIVER={SQLite3};Database=%s" % self.path,
               "default_target_schema": schema}
        cfg.update(extra)
        return cfg

    def table(self, schema, table):
        return self.ident(schema + "." + table)

    def _rows(self, sql, params=()):
        try:
            con = sqlite3.connect(self.path, timeout=60)
            try:
                return [list(r) for r in con.execute(sql, params).fetchall()]
            finally:
                con.close()
        except sqlite3.Error as e:
            raise Error("sqlite3 %s: %s" % (self.path, e)) from e

    def query(self, sql):
        return self._rows(sql)

    def columns(self, schema, table):
        rows = self._rows("SELECT name, type FROM pragma_table_info(?)", (schema + "." + table,))
        return {name: typ for name, typ in rows}

    def table_exists(self, schema, table):
        return self._rows("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (schema + "." + table,))[0][0] > 0


class Mariadb(Warehouse):
    """MariaDB through target-pg's ODBC driver (MariaDB Connector/ODBC), on
    the throwaway server of tests/mariadb.sh (MARIADB_SOCKET in the
    environment).  A target schema is a MariaDB database; each adapter's
    schemas are the databases "<dbname>_<schema>" (cut to 64 characters),
    so tests sharing the server do not meet.  Read back with the `mariadb`
    client's XML output: every value is a str (DECIMAL with its 30 digits
    after the point, DATETIME(6) as "YYYY-MM-DD HH:MM:SS.ffffff"), NULL is
    None."""
    name = "mariadb"
    ident_max = 64

    def __init__(self, tmpdir: str, dbname: str):
        self.tmpdir = tmpdir
        self.dbname = dbname
        self.socket = os.environ.get("MARIADB_SOCKET")
        if not self.socket:
            raise Error("no MariaDB server: start one with tests/mariadb.sh and source its env")

    def database(self, schema: str) -> str:
        return ("%s_%s" % (self.dbname[:63 - len(schema)], schema))[:64]

    def _client(self, sql: str, xml: bool):
        cmd = ["mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-S", self.socket,
               "-u", "root", "--batch"]
        if xml:
            cmd.append("--xml")
        r = subprocess.run(cmd + ["-e", sql], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        if r.returncode != 0:
            raise Error("mariadb: %s" % r.stderr.strip())
        return r.stdout

    def create(self):
        self.drop()

    def drop(self):
        # every database of this adapter: "<dbname, cut>_<schema>"
        for (name,) in self.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"):
            if name.startswith(self.dbname[:10]) and any(
                    name == self.database(name[i + 1:]) for i in range(len(name))
                    if name[i] == "_"):
                self._client("DROP DATABASE %s" % self.ident(name), False)

    def config(self, schema="public", **extra) -> dict:
        cfg = {"driver": "odbc",
               "odbc_connection_string": "DRIVER={MariaDB};SOCKET=%s;UID=root" % self.socket,
               "default_target_schema": self.database(schema)}
        cfg.update(extra)
        return cfg

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def table(self, schema, table):
        return self.ident(self.database(schema)) + "." + self.ident(table)

    def query(self, sql):
        root = ElementTree.fromstring(self._client(sql, True))
        rows = []
        for row in root.iter("row"):
            rows.append([None if f.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
                         else (f.text or "") for f in row.iter("field")])
        return rows

    def columns(self, schema, table):
        rows = self.query("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                          "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION"
                          % (self.database(schema).replace("'", "''"), table.replace("'", "''")))
        return {name: typ for name, typ in rows}

    def table_exists(self, schema, table):
        return int(self.query("SELECT COUNT(*) FROM information_schema.TABLES "
                              "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s'"
                              % (self.database(schema).replace("'", "''"),
                                 table.replace("'", "''")))[0][0]) > 0


class PsqlOdbc(Postgres):
    """The same throwaway server as Postgres, loaded through target-pg's ODBC
    driver and psqlODBC (docs/warehouses.md): the checks read back over
    libpq, only the target's connection differs.  Servername takes the unix
    socket directory in PGHOST (psqlODBC hands it to libpq as host);
    odbc_host/odbc_port in config() point it elsewhere (a TCP proxy)."""
    name = "psqlodbc"

    def config(self, schema="public", odbc_host=None, odbc_port=None, **extra) -> dict:
        conn = "DRIVER={PostgreSQL Unicode};Servername=%s;Port=%s;Database=%s;UID=%s;" % (
            odbc_host or os.environ.get("PGHOST", "localhost"),
            odbc_port or os.environ.get("PGPORT", "5432"), self.dbname,
            os.environ.get("PGUSER", "postgres"))
        cfg = {"driver": "odbc", "odbc_connection_string": conn,
               "default_target_schema": schema}
        cfg.update(extra)
        return cfg


ADAPTERS = {"postgres": Postgres, "sqlite": Sqlite, "mariadb": Mariadb, "psqlodbc": PsqlOdbc}


def names():
    """The warehouses this machine can test: postgres always, the ODBC ones
    whose ODBC driver is installed."""
    out = ["postgres"]
    if odbc_library(ODBC_DRIVERS["SQLite3"]):
        out.append("sqlite")
    if odbc_library(ODBC_DRIVERS["MariaDB"]) and os.environ.get("MARIADB_SOCKET"):
        out.append("mariadb")
    if odbc_library(ODBC_DRIVERS["PostgreSQL Unicode"]):
        out.append("psqlodbc")
    return out


def make(name: str, tmpdir: str, dbname: str = "target_pg_test") -> Warehouse:
    """An adapter for warehouse `name` whose database is `dbname` (a file in
    tmpdir for SQLite).  Sets up the private ODBC configuration in
    tmpdir/odbc for the ODBC warehouses (os.environ)."""
    if name not in ADAPTERS:
        raise ValueError("unknown warehouse %r (known: %s)" % (name, ", ".join(ADAPTERS)))
    if name != "postgres":
        os.environ.update(odbc_env(os.path.join(tmpdir, "odbc")))
    return ADAPTERS[name](tmpdir, dbname)
