#!/usr/bin/env python3
"""An unusable $TMPDIR (README "Failure behaviour", src/tempfile.h): the
replay spool is an unlinked file in $TMPDIR; when that is missing or not a
directory the spool goes to /tmp with a warning naming $TMPDIR, and the run
loads as usual (before: exit 1, "cannot create the spool").

  (a) TMPDIR names a directory that does not exist;
  (b) TMPDIR names a regular file;
  (c) TMPDIR is a usable directory: no warning.

Run by tests/run_all.sh (PG* env, TARGET_PG, TARGET_PG_WRAPPER, TEST_DB,
TEST_TMPDIR).  Exit 0 = pass; each problem is printed on its own line.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SCHEMA = "tmpdir"
problems = []
DB, TMP = harness.integration_env()


def run_case(label, table, tmpdir, want_warning):
    src = os.path.join(TMP, table + ".singer")
    harness.write_messages(src, [
        {"type": "SCHEMA", "stream": table, "key_properties": ["id"],
         "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}]
        + [{"type": "RECORD", "stream": table, "record": {"id": i}} for i in range(100)]
        + [{"type": "STATE", "value": {table: 1}}])
    cfg = harness.write_config(os.path.join(TMP, "cfg.json"), DB, SCHEMA)
    r = harness.run_target(["--config", cfg, "--input", src],
                           env=dict(os.environ, TMPDIR=tmpdir))
    if not harness.check_exit_0(problems, label, r):
        return
    harness.check_states(problems, label, r.stdout, [{table: 1}])
    n = harness.count_rows(SCHEMA, table, DB) if harness.table_exists(SCHEMA, table, DB) else None
    if n != 100:
        problems.append("%s: table holds %r rows, expected 100" % (label, n))
    warned = [w for w in harness.lines_mentioning(r.stderr, "warning")
              if tmpdir in w and "/tmp" in w]
    if want_warning and not warned:
        problems.append("%s: no warning naming TMPDIR %s and /tmp: %s"
                        % (label, tmpdir, r.stderr.strip()[-800:]))
    if not want_warning and [w for w in harness.lines_mentioning(r.stderr, "warning")
                             if "TMPDIR" in w]:
        problems.append("%s: a TMPDIR warning for a usable directory: %s"
                        % (label, r.stderr.strip()[-800:]))


missing = os.path.join(TMP, "no-such-dir", "deeper")
run_case("(a) TMPDIR missing", "a_missing", missing, True)
plain_file = os.path.join(TMP, "a-file")
harness.write_text(plain_file, "not a directory\n")
run_case("(b) TMPDIR a file", "b_file", plain_file, True)
usable = os.path.join(TMP, "scratch")
os.makedirs(usable, exist_ok=True)
run_case("(c) TMPDIR usable", "c_usable", usable, False)
if os.listdir(usable):
    problems.append("(c) TMPDIR usable: files left in it: %r" % os.listdir(usable))

sys.exit(harness.report(problems))
