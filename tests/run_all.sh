#!/usr/bin/env bash
# tests/run_all.sh - the one test entry point (`make test`, `make valgrind`).
#
#   tests/run_all.sh [unit] [cli] [integration] [conformance] [conformance-psqlodbc]
#                    [conformance-sqlite] [conformance-mariadb]   (default: all)
#
# Environment (the Makefile sets the first two):
#   TARGET_PG          absolute path of the binary under test (default ./target-pg)
#   UNIT_DIR           directory of the cmocka unit test binaries test_*
#   TARGET_PG_WRAPPER  optional command prefixed to every target-pg run (valgrind ...)
#   UNIT_WRAPPER       optional command prefixed to every unit test binary
#   FUZZ_DIR           directory of the fuzz replay binaries replay_<name>
#                      (default: the fuzz/ directory next to UNIT_DIR)
#   LOG_LINES          lines of output shown under a failing test (default 40)
#   INTEGRATION_TIMEOUT, UNIT_TIMEOUT  seconds per test (default 600 / 300)
#
# Runs, in order: every executable $UNIT_DIR/test_* (one test per binary); each
# fuzz corpus fixtures/fuzz/<name>/ replayed by $FUZZ_DIR/replay_<name>; the
# golden CLI cases (tests/cli/run.sh); then, against one throwaway PostgreSQL
# started with tests/pg.sh, every tests/integration/test_*.sh and test_*.py
# (each with the PG* env, TARGET_PG, TARGET_PG_WRAPPER, REPO_ROOT, a scratch
# TEST_TMPDIR and a fresh database TEST_DB; exit 0 passes) and the conformance
# corpus (tests/conformance.py), and the corpus again on the same server
# through the ODBC driver and psqlODBC (skipped when odbc-postgresql is
# missing); then the conformance corpus again on SQLite through the ODBC
# driver (no server: skipped when libsqliteodbc is missing) and on MariaDB (a
# throwaway server of tests/mariadb.sh, started before the integration tests,
# whose MariaDB cases find it by MARIADB_SOCKET; skipped when mariadbd or
# MariaDB Connector/ODBC is missing).
#
# Output: one line per test, "ok   name" or "FAIL name" followed by the
# failing output indented; "skip name (reason)" for skipped ones; "#" lines
# are notes.  Sub-runners print the same protocol and their lines are counted
# here.  The last line is exactly "N passed, M failed"; exit status 1 when
# M > 0.  Needs no stdin and no terminal.
set -uo pipefail
exec </dev/null

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export REPO_ROOT=$ROOT
export TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
export TARGET_PG_WRAPPER=${TARGET_PG_WRAPPER:-}
UNIT_DIR=${UNIT_DIR:-$ROOT/build/release/tests}
LOG_LINES=${LOG_LINES:-40}
read -r -a UNIT_WRAP <<<"${UNIT_WRAPPER:-}"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(unit cli integration conformance conformance-psqlodbc conformance-sqlite
                                 conformance-mariadb)
want() {
    local p
    for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
    return 1
}

n_pass=0 n_fail=0 n_skip=0
work=$(mktemp -d "${TMPDIR:-/tmp}/tgt-tests.XXXXXX")
PGDIR=
MDBDIR=

cleanup() {
    if [ -n "$MDBDIR" ]; then
        tests/mariadb.sh stop "$MDBDIR" >/dev/null 2>&1 || echo "# warning: tests/mariadb.sh stop $MDBDIR failed"
    fi
    if [ -n "$PGDIR" ]; then
        tests/pg.sh stop "$PGDIR" >/dev/null 2>&1 || echo "# warning: tests/pg.sh stop $PGDIR failed"
        [ ! -d "$PGDIR" ] || rmdir "$PGDIR" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass NAME | fail NAME [OUTPUT_FILE]
pass() {
    echo "ok   $1"
    n_pass=$((n_pass + 1))
}
fail() {
    echo "FAIL $1"
    n_fail=$((n_fail + 1))
    if [ -n "${2:-}" ] && [ -s "$2" ]; then
        local n
        n=$(wc -l <"$2")
        [ "$n" -le "$LOG_LINES" ] || echo "    ... ($((n - LOG_LINES)) earlier lines)"
        tail -n "$LOG_LINES" "$2" | sed -e 's/^/    /'
    fi
}

# Runs a sub-runner that speaks the same protocol; passes its lines through
# and counts them.  A runner that fails without reporting a failure is one.
run_counted() {
    local name=$1 line saw_fail=0 rc
    shift
    while IFS= read -r line; do
        case "$line" in
        "ok   "*) n_pass=$((n_pass + 1)) ;;
        "FAIL "*) n_fail=$((n_fail + 1)) saw_fail=1 ;;
        "skip "*) n_skip=$((n_skip + 1)) ;;
        esac
        printf '%s\n' "$line"
    done < <("$@" 2>&1)
    wait $!
    rc=$?
    if [ "$rc" != 0 ] && [ "$saw_fail" = 0 ]; then
        echo "$name exited with status $rc" >"$work/runner.out"
        fail "$name" "$work/runner.out"
    fi
}

target_ok=1
if [ ! -x "$TARGET_PG" ] || [ -d "$TARGET_PG" ]; then
    echo "no executable at $TARGET_PG (run make first); CLI, integration and conformance tests not run" \
        >"$work/target.out"
    fail "target-pg binary" "$work/target.out"
    target_ok=0
fi

# --- unit tests: one test per cmocka binary -------------------------------------
if want unit; then
    if [ -d "$UNIT_DIR" ]; then
        found=0
        for t in "$UNIT_DIR"/test_*; do
            if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
            found=1
            name="unit/$(basename "$t")"
            if (cd "$work" && timeout -k 5 "${UNIT_TIMEOUT:-300}" \
                ${UNIT_WRAP[@]+"${UNIT_WRAP[@]}"} "$t") >"$work/unit.out" 2>&1; then
                pass "$name"
            else
                echo "exit status $?" >>"$work/unit.out"
                fail "$name" "$work/unit.out"
            fi
        done
        [ "$found" = 1 ] || echo "# no unit test binaries in $UNIT_DIR"
    else
        echo "# no unit test directory $UNIT_DIR"
    fi

    # --- fuzz corpus replay: fixtures/fuzz/<name>/ through $FUZZ_DIR/replay_<name> ---
    # (tests/fuzz/replay_main.c; a broken invariant or a sanitizer report fails it)
    FUZZ_DIR=${FUZZ_DIR:-$(dirname "$UNIT_DIR")/fuzz}
    if [ -d "$FUZZ_DIR" ]; then
        for corpus in "$ROOT"/fixtures/fuzz/*/; do
            name=$(basename "$corpus")
            bin=$FUZZ_DIR/replay_$name
            if [ ! -x "$bin" ]; then
                echo "no replay binary $bin for $corpus" >"$work/fuzz.out"
                fail "fuzz-replay $name" "$work/fuzz.out"
            elif (cd "$work" && timeout -k 5 "${UNIT_TIMEOUT:-300}" \
                ${UNIT_WRAP[@]+"${UNIT_WRAP[@]}"} "$bin" "$corpus") >"$work/fuzz.out" 2>&1; then
                pass "fuzz-replay $name"
            else
                echo "exit status $?" >>"$work/fuzz.out"
                fail "fuzz-replay $name" "$work/fuzz.out"
            fi
        done
    else
        echo "# no fuzz replay directory $FUZZ_DIR"
    fi
fi

# --- golden CLI cases ------------------------------------------------------------
if want cli && [ "$target_ok" = 1 ]; then
    run_counted "cli (tests/cli/run.sh)" tests/cli/run.sh
fi

# --- a throwaway MariaDB for its conformance run and integration cases -------------
if { want integration || want conformance-mariadb; } && [ "$target_ok" = 1 ] &&
    [ -x /usr/sbin/mariadbd ] && python3 -c 'import sys; sys.path.insert(0, "tests")
import warehouse; sys.exit(0 if warehouse.odbc_library("libmaodbc.so") else 1)'; then
    MDBDIR=$(mktemp -d /tmp/tgt-test-mdb.XXXXXX)
    if tests/mariadb.sh start "$MDBDIR" >"$work/mdb.out" 2>&1; then
        # shellcheck source=/dev/null
        . "$MDBDIR/env"
    else
        fail "mariadb (tests/mariadb.sh start)" "$work/mdb.out"
        MDBDIR=
    fi
fi

# --- everything that needs PostgreSQL ---------------------------------------------
if { want integration || want conformance || want conformance-psqlodbc; } &&
    [ "$target_ok" = 1 ]; then
    PGDIR=$(mktemp -d /tmp/tgt-test-pg.XXXXXX)
    if tests/pg.sh start "$PGDIR" >"$work/pg.out" 2>&1; then
        # shellcheck source=/dev/null
        . "$PGDIR/env"
        pg_bin=$(pg_config --bindir 2>/dev/null || true)
        [ -x "$pg_bin/createdb" ] || pg_bin=/usr/lib/postgresql/15/bin

        if want integration; then
            i=0
            for t in tests/integration/test_*.sh tests/integration/test_*.py; do
                [ -f "$t" ] || continue
                i=$((i + 1))
                name="integration/$(basename "$t")"
                base=$(basename "$t")
                db="itest_${i}_$(echo "${base%.*}" | tr -c 'a-zA-Z0-9_\n' '_' | cut -c1-40)"
                tmp="$work/itest.$i"
                mkdir -p "$tmp"
                case "$t" in *.py) runner=(python3) ;; *) runner=(bash) ;; esac
                if ! "$pg_bin/createdb" "$db" >"$work/it.out" 2>&1; then
                    fail "$name" "$work/it.out"
                    continue
                fi
                if TEST_DB=$db TEST_TMPDIR=$tmp timeout -k 5 "${INTEGRATION_TIMEOUT:-600}" \
                    "${runner[@]}" "$t" >"$work/it.out" 2>&1; then
                    pass "$name"
                else
                    echo "exit status $?" >>"$work/it.out"
                    fail "$name" "$work/it.out"
                fi
                "$pg_bin/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
                    >/dev/null 2>&1 || true
                rm -rf "$tmp"
            done
            [ "$i" -gt 0 ] || echo "# no integration tests in tests/integration"
        fi

        if want conformance; then
            run_counted "conformance (tests/conformance.py)" python3 tests/conformance.py
        fi

        # the same server and corpus through drivers/odbc and psqlODBC
        if want conformance-psqlodbc; then
            if python3 -c 'import sys; sys.path.insert(0, "tests"); import warehouse
sys.exit(0 if "psqlodbc" in warehouse.names() else 1)'; then
                run_counted "conformance through psqlODBC (tests/conformance.py --warehouse psqlodbc)" \
                    python3 tests/conformance.py --warehouse psqlodbc
            else
                echo "skip conformance-psqlodbc (odbc-postgresql is not installed)"
                n_skip=$((n_skip + 1))
            fi
        fi
    else
        fail "postgres (tests/pg.sh start)" "$work/pg.out"
    fi
fi

# --- the conformance corpus on SQLite (drivers/odbc, no server) ------------------
if want conformance-sqlite && [ "$target_ok" = 1 ]; then
    if python3 -c 'import sys; sys.path.insert(0, "tests"); import warehouse
sys.exit(0 if "sqlite" in warehouse.names() else 1)'; then
        run_counted "conformance on SQLite (tests/conformance.py --warehouse sqlite)" \
            python3 tests/conformance.py --warehouse sqlite
    else
        echo "skip conformance-sqlite (libsqliteodbc is not installed)"
        n_skip=$((n_skip + 1))
    fi
fi

# --- the conformance corpus on MariaDB (drivers/odbc) -----------------------------
if want conformance-mariadb && [ "$target_ok" = 1 ]; then
    if [ -n "${MARIADB_SOCKET:-}" ]; then
        run_counted "conformance on MariaDB (tests/conformance.py --warehouse mariadb)" \
            python3 tests/conformance.py --warehouse mariadb
    else
        echo "skip conformance-mariadb (no MariaDB server: mariadb-server or odbc-mariadb missing)"
        n_skip=$((n_skip + 1))
    fi
fi

[ "$n_skip" = 0 ] || echo "$n_skip skipped"
echo "$n_pass passed, $n_fail failed"
[ "$n_fail" = 0 ]
