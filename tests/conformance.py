#!/usr/bin/env python3
"""tests/conformance.py - runs target-pg over the Singer conformance corpus
(fixtures/conformance/, see its README.md) and checks the outcomes in
expectations.json.

    tests/conformance.py                      every entry of expectations.json
    tests/conformance.py sdk/camelcase.singer  only the named file(s)
    tests/conformance.py --include-skipped     also run files listed in
                                               tests/conformance_skip.txt
    tests/conformance.py --print-names         stream -> table mapping of the corpus
    tests/conformance.py --warehouse sqlite    load into another warehouse
                                               (tests/warehouse.py; default postgres)

Each file is loaded on its own into a fresh database (schema public) of the
chosen warehouse (tests/warehouse.py: the checks below go through its adapter) with
`$TARGET_PG_WRAPPER $TARGET_PG --config cfg.json --input FILE`, then:
  expect ok:    exit 0; every listed table (stream name mapped with target-pg's
                naming rule) holds exactly the listed rows; stdout is only JSON
                lines, and when the file has STATE messages the last one equals
                the last STATE value of the file (none: stdout is empty).
  expect error: exit 1 (the documented status for data/input errors; a crash,
                timeout, usage error or internal error does not count) and
                stderr contains "error".

Output protocol (shared with tests/run_all.sh): one line per file,
"ok   conformance/<file>", "FAIL conformance/<file>" followed by indented
detail lines, or "skip conformance/<file> (reason)"; lines starting with "#"
are notes.  Exit status 1 when any file failed.

Environment: PGHOST/PGPORT/PGUSER from tests/pg.sh (without them a throwaway
server is started and stopped here); TARGET_PG (default ./target-pg),
TARGET_PG_WRAPPER, CONFORMANCE_DIR (default <repo>/fixtures/conformance),
CONFORMANCE_TIMEOUT (seconds per file, default 120), KEEP_DBS=1 keeps the
databases for inspection.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import warehouse  # noqa: E402

ROOT = harness.REPO_ROOT
SKIP_FILE = os.path.join(ROOT, "tests", "conformance_skip.txt")
DETAIL_LINES = 30


def conformance_dir() -> str:
    return os.environ.get("CONFORMANCE_DIR") or os.path.join(ROOT, "fixtures", "conformance")


def load_skips():
    """{path: reason} from tests/conformance_skip.txt ("path  reason" lines)."""
    skips = {}
    if not os.path.exists(SKIP_FILE):
        return skips
    with open(SKIP_FILE, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            skips[parts[0]] = parts[1] if len(parts) > 1 else "(no reason given)"
    return skips


def tail(text: str, n: int = DETAIL_LINES) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) > n:
        lines = ["... (%d earlier lines)" % (len(lines) - n)] + lines[-n:]
    return "\n".join(lines)


def check_entry(entry, path, wh, workdir, timeout):
    """Returns a list of problems (empty: passed)."""
    cfg = os.path.join(workdir, "config.json")
    wh.write_config(cfg, "public")
    run = harness.run_target(["--config", cfg, "--input", path], timeout=timeout)
    problems = []
    out_err = "stderr:\n" + tail(run.stderr) if run.stderr.strip() else "stderr: (empty)"

    if run.timed_out:
        return ["timed out after %d s" % timeout, out_err]
    if run.returncode < 0:
        return ["killed by signal %d" % -run.returncode, out_err]

    if entry["expect"] == "error":
        if run.returncode != 1:
            problems.append("expected exit 1 (data/input error), got %d" % run.returncode)
        if "error" not in run.stderr:
            problems.append('stderr does not contain "error"')
        if problems:
            problems.append(out_err)
        return problems

    if run.returncode != 0:
        return ["expected exit 0, got %d" % run.returncode, out_err]

    try:
        states = harness.stdout_states(run.stdout)
    except ValueError as e:
        problems.append(str(e))
        states = None
    has_state, want = harness.last_state(path)
    if states is not None:
        if has_state:
            if not states:
                problems.append("no STATE on stdout; expected %s" % json.dumps(want, default=str))
            elif states[-1] != want:
                problems.append("last stdout line is %s; expected %s"
                                % (json.dumps(states[-1], default=str)[:300],
                                   json.dumps(want, default=str)[:300]))
        elif states:
            problems.append("input has no STATE but stdout has %d line(s)" % len(states))

    for stream, spec in sorted((entry.get("tables") or {}).items()):
        table = wh.table_name(stream)
        try:
            if not wh.table_exists("public", table):
                problems.append("table public.%s (stream %r) does not exist" % (
                    harness.quote_ident(table), stream))
                continue
            n = wh.count("public", table)
        except (harness.DbError, warehouse.Error) as e:
            problems.append("query on %s: %s" % (table, e))
            continue
        if n != spec["rows"]:
            problems.append("table %s (stream %r): %d rows, expected %d"
                            % (harness.quote_ident(table), stream, n, spec["rows"]))
    if problems:
        problems.append(out_err)
    return problems


def db_name_for(i: int, rel: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", rel.lower()).strip("_")
    return ("conf_%03d_%s" % (i, slug))[:60]


def print_names(cdir: str) -> int:
    streams = set()
    for root, _, files in os.walk(cdir):
        for fn in files:
            if fn.endswith((".singer", ".json")) and fn != "expectations.json":
                for _, msg in harness.read_messages(os.path.join(root, fn)):
                    if isinstance(msg.get("stream"), str):
                        streams.add(msg["stream"])
    for s in sorted(streams):
        print("%-60s -> %s" % (s, harness.table_name(s)))
    return 0


def ensure_server():
    """Starts a throwaway server when the PG* environment has none.
    Returns the pg.sh directory to stop, or None."""
    if os.environ.get("PGHOST") and os.environ.get("PGPORT"):
        return None
    pgsh = os.path.join(ROOT, "tests", "pg.sh")
    r = subprocess.run([pgsh, "start"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit("conformance.py: could not start PostgreSQL with tests/pg.sh")
    for m in re.finditer(r"(\w+)=(\S+)", r.stdout):
        os.environ[m.group(1)] = m.group(2)
    return os.environ["TGT_PG_DIR"]


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the Singer conformance corpus.")
    ap.add_argument("files", nargs="*", help="corpus paths like sdk/camelcase.singer")
    ap.add_argument("--include-skipped", action="store_true",
                    help="also run files listed in tests/conformance_skip.txt")
    ap.add_argument("--warehouse", default="postgres", choices=sorted(warehouse.ADAPTERS),
                    help="the warehouse to load into (default postgres)")
    ap.add_argument("--print-names", action="store_true",
                    help="print the stream -> table mapping for the corpus and exit")
    args = ap.parse_args()

    cdir = conformance_dir()
    if args.print_names:
        return print_names(cdir)
    try:
        with open(os.path.join(cdir, "expectations.json"), encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        print("FAIL conformance/expectations.json\n    cannot read it (set CONFORMANCE_DIR?): %s"
              % e, flush=True)
        return 1
    by_file = {e["file"]: e for e in entries}
    if args.files:
        wanted = []
        for a in args.files:
            rel = a
            if rel not in by_file and os.path.exists(a):
                rel = os.path.relpath(os.path.abspath(a), cdir)
            if rel not in by_file:
                print("FAIL conformance/%s\n    not in expectations.json" % rel, flush=True)
                return 1
            wanted.append(by_file[rel])
        entries = wanted
    skips = load_skips()
    timeout = int(os.environ.get("CONFORMANCE_TIMEOUT", "120"))

    started = ensure_server() if warehouse.ADAPTERS[args.warehouse].needs_pg_server else None
    scratch = tempfile.TemporaryDirectory(prefix="tgt-conf-wh-")
    label = "conformance/" if args.warehouse == "postgres" else "conformance-%s/" % args.warehouse
    n_ok = n_fail = n_skip = 0
    try:
        for i, entry in enumerate(entries, 1):
            rel = entry["file"]
            name = label + rel
            if rel in skips and not args.include_skipped:
                print("skip %s (%s)" % (name, skips[rel]), flush=True)
                n_skip += 1
                continue
            path = os.path.join(cdir, rel)
            dbname = db_name_for(i, rel)
            wh = warehouse.make(args.warehouse, scratch.name, dbname)
            with tempfile.TemporaryDirectory(prefix="tgt-conf-") as workdir:
                try:
                    wh.drop()
                    wh.create()
                    problems = check_entry(entry, path, wh, workdir, timeout)
                except (harness.DbError, warehouse.Error, OSError,
                        subprocess.SubprocessError) as e:
                    problems = ["harness error: %s" % e]
                finally:
                    if os.environ.get("KEEP_DBS") != "1":
                        try:
                            wh.drop()
                        except (harness.DbError, warehouse.Error):
                            pass
            if problems:
                n_fail += 1
                print("FAIL %s" % name)
                for p in problems:
                    for line in p.splitlines():
                        print("    " + line)
                sys.stdout.flush()
            else:
                n_ok += 1
                print("ok   %s" % name, flush=True)
    finally:
        scratch.cleanup()
        if started:
            subprocess.run([os.path.join(ROOT, "tests", "pg.sh"), "stop", started],
                           stdin=subprocess.DEVNULL)
    print("# conformance (%s): %d passed, %d failed, %d skipped"
          % (args.warehouse, n_ok, n_fail, n_skip), flush=True)
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
