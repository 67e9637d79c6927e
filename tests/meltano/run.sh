#!/usr/bin/env bash
# tests/meltano/run.sh - target-pg as a loader under real Meltano (`make test-meltano`).
#
# Uses Meltano 2.20 from $MELTANO_HOME (default ../shared/meltano beside the
# repository: its README, Debian packages, `meltano` launcher).  Without it
# the test prints one "skip meltano (...)" line and exits 0.
#
# In a throwaway PostgreSQL (tests/pg.sh) and a fresh Meltano project whose
# meltano.yml takes the loader from meltano/target-pg.yml (the checked-in
# plugin definition; only `executable` is set to $TARGET_PG) and a custom
# extractor tests/meltano/tap-fixture (namespace tap_fixture, capability
# state), it runs `meltano run tap-fixture target-pg` and checks:
#   1. first run: settings from the definition (host, port, user in
#      meltano.yml config) and from TARGET_PG_* (dbname, log_format json);
#      exit 0; the table lands in schema tap_fixture (the load-schema
#      default, $MELTANO_EXTRACT__LOAD_SCHEMA); the STATE is stored; no
#      config-file permission warning; target-pg's lines are JSON
#   2. second run: the tap is handed the stored STATE, and the new STATE is
#      stored
#   3. a bad record: the run fails, the stored STATE is unchanged, nothing of
#      the batch is committed
#   4. the same with TARGET_PG_INVALID_RECORDS=skip: the run passes, the good
#      record is loaded, the STATE advances
# Output protocol of tests/run_all.sh: "ok   meltano/<step>", "FAIL ..." with
# details, or "skip meltano (reason)"; exit 1 when a step failed.
set -uo pipefail
exec </dev/null

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
MELTANO_HOME=${MELTANO_HOME:-$ROOT/../shared/meltano}
if [ ! -x "$MELTANO_HOME/meltano" ]; then
    echo "skip meltano (no Meltano at $MELTANO_HOME: see the README, \"Use with Meltano\")"
    exit 0
fi
MELTANO_HOME=$(cd "$MELTANO_HOME" && pwd)
# the Python the launcher runs on (Debian's, with the packages Meltano needs)
MPY=$(sed -n '1s/^#! *//p' "$MELTANO_HOME/meltano")
MPY=${MPY:-python3}
if ! $MPY -c 'import sqlalchemy, alembic, structlog, click, yaml' 2>/dev/null; then
    echo "FAIL meltano/setup"
    echo "    Meltano's Debian packages are missing: apt-get install \$(cat $MELTANO_HOME/apt-packages.txt)"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tgt-meltano.XXXXXX")
PGDIR=
cleanup() {
    [ -z "$PGDIR" ] || "$ROOT/tests/pg.sh" stop "$PGDIR" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
n_fail=0
ok() { echo "ok   meltano/$1"; }
fail() {
    echo "FAIL meltano/$1"
    shift
    printf '%s\n' "$@" | sed -e 's/^/    /' | tail -n 40
    n_fail=$((n_fail + 1))
}

PGDIR=$(mktemp -d /tmp/tgt-meltano-pg.XXXXXX)
if ! "$ROOT/tests/pg.sh" start "$PGDIR" >"$work/pg.out" 2>&1; then
    fail setup "tests/pg.sh start failed:" "$(cat "$work/pg.out")"
    exit 1
fi
# shellcheck source=/dev/null
. "$PGDIR/env"
PSQL=("$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)/psql" -X -q -A -t)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE meltano_it" >/dev/null || { fail setup "createdb failed"; exit 1; }
sql() { "${PSQL[@]}" -d meltano_it -c "$1"; }

# --- the project -------------------------------------------------------------------
proj=$work/proj
mkdir -p "$proj"
TARGET_PG=$TARGET_PG TAP="$ROOT/tests/meltano/tap-fixture" DEF="$ROOT/meltano/target-pg.yml" \
    OUT="$proj/meltano.yml" $MPY - <<'PY' || { fail setup "cannot write meltano.yml"; exit 1; }
import json, os, yaml
loader = yaml.safe_load(open(os.environ["DEF"]))
loader["executable"] = os.environ["TARGET_PG"]
# settings from the definition, given in meltano.yml (the rest from TARGET_PG_*)
loader["config"] = {"host": os.environ["PGHOST"], "port": int(os.environ["PGPORT"]),
                    "user": os.environ["PGUSER"],
                    # Meltano writes it into its 0644 per-run config file (the
                    # throwaway server trusts local connections and ignores it)
                    "password": "unused-by-trust-auth"}
project = {
    "version": 1, "default_environment": "dev", "project_id": "target-pg-meltano-test",
    "send_anonymous_usage_stats": False, "environments": [{"name": "dev"}],
    "plugins": {"extractors": [{"name": "tap-fixture", "namespace": "tap_fixture",
                                "executable": os.environ["TAP"], "capabilities": ["state"]}],
                "loaders": [loader]}}
yaml.safe_dump(project, open(os.environ["OUT"], "w"), sort_keys=False)
PY

export PATH=$MELTANO_HOME:$PATH MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_DISABLE_TRACKING=true TARGET_PG_DBNAME=meltano_it TARGET_PG_LOG_FORMAT=json
export TAP_FIXTURE_SEEN=$work/seen.json
unset TARGET_PG_INVALID_RECORDS MELTANO_EXTRACT__LOAD_SCHEMA
STATE_ID=dev:tap-fixture-to-target-pg

run() { # LOG: meltano run; its exit status
    (cd "$proj" && timeout 120 meltano --log-level=info run tap-fixture target-pg) >"$1" 2>&1
}
stored_state() {
    (cd "$proj" && meltano state get "$STATE_ID" 2>/dev/null) | tail -n 1 |
        python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["singer_state"], sort_keys=True))' 2>/dev/null
}

# 1. first run
if ! run "$work/run1.log"; then
    fail first-run "meltano run failed:" "$(tail -n 30 "$work/run1.log")"
    exit 1
fi
problems=()
got=$(sql "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM tap_fixture.items" 2>&1)
[ "$got" = "1:item 1,2:item 2,3:item 3" ] || problems+=("tap_fixture.items holds '$got'")
st=$(stored_state)
[ "$st" = '{"bookmark": 3}' ] || problems+=("stored STATE is '$st', expected {\"bookmark\": 3}")
grep -q 'chmod 600\|can be read by group' "$work/run1.log" && problems+=("the permission warning was raised for Meltano's config file")
grep -q '"logger_name":"target-pg"' "$work/run1.log" || problems+=("no JSON log line of target-pg (log_format json from TARGET_PG_LOG_FORMAT)")
if [ ${#problems[@]} = 0 ]; then ok first-run; else fail first-run "${problems[@]}" "$(tail -n 20 "$work/run1.log")"; fi

# 2. second run: the stored STATE goes back to the tap
problems=()
if run "$work/run2.log"; then
    seen=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' "$TAP_FIXTURE_SEEN" 2>&1)
    [ "$seen" = '{"bookmark": 3}' ] || problems+=("the tap was given state '$seen', expected {\"bookmark\": 3}")
    n=$(sql "SELECT count(*) FROM tap_fixture.items")
    [ "$n" = 5 ] || problems+=("tap_fixture.items holds $n rows, expected 5")
    st=$(stored_state)
    [ "$st" = '{"bookmark": 5}' ] || problems+=("stored STATE is '$st', expected {\"bookmark\": 5}")
else
    problems+=("meltano run failed: $(tail -n 20 "$work/run2.log")")
fi
if [ ${#problems[@]} = 0 ]; then ok state-handed-back; else fail state-handed-back "${problems[@]}"; fi

# 3. a bad record fails the run and leaves the stored STATE alone
problems=()
if TAP_FIXTURE_BAD=1 run "$work/run3.log"; then
    problems+=("meltano run passed with an invalid record")
fi
st=$(stored_state)
[ "$st" = '{"bookmark": 5}' ] || problems+=("stored STATE is '$st' after the failed run, expected {\"bookmark\": 5}")
n=$(sql "SELECT count(*) FROM tap_fixture.items")
[ "$n" = 5 ] || problems+=("tap_fixture.items holds $n rows after the failed run, expected 5")
grep -q '"level":"error"' "$work/run3.log" || problems+=("no JSON error line from target-pg in Meltano's log")
if [ ${#problems[@]} = 0 ]; then ok bad-record-fails; else fail bad-record-fails "${problems[@]}" "$(tail -n 20 "$work/run3.log")"; fi

# 4. invalid_records skip (from TARGET_PG_INVALID_RECORDS) passes
problems=()
if TAP_FIXTURE_BAD=1 TARGET_PG_INVALID_RECORDS=skip run "$work/run4.log"; then
    got=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM tap_fixture.items")
    [ "$got" = "1,2,3,4,5,6" ] || problems+=("tap_fixture.items holds ids $got, expected 1-6 (7 skipped)")
    st=$(stored_state)
    [ "$st" = '{"bookmark": 7}' ] || problems+=("stored STATE is '$st', expected {\"bookmark\": 7}")
else
    problems+=("meltano run failed: $(tail -n 20 "$work/run4.log")")
fi
if [ ${#problems[@]} = 0 ]; then ok invalid-records-skip; else fail invalid-records-skip "${problems[@]}"; fi

[ "$n_fail" = 0 ]
