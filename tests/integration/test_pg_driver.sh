#!/usr/bin/env bash
# tests/integration/test_pg_driver.sh - builds tests/integration/pg_driver_check.c
# with the PostgreSQL driver and the core objects it needs, and runs it
# against the server named by PGHOST/PGPORT/PGUSER in the database TEST_DB
# (both provided by tests/run_all.sh).  Exit 0 when every check passes.
#
# The check runs under $TARGET_PG_WRAPPER when set (make valgrind), and is
# built with AddressSanitizer/UBSan when $TARGET_PG is an asan build (make
# asan) or PG_DRIVER_CHECK_ASAN=1.  Build products go to $TEST_TMPDIR (or a
# temporary directory removed at exit); nothing is written to the repository.
set -euo pipefail

ROOT=${REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${TEST_DB:?TEST_DB must name a database to use}"
export TEST_DB

if [ -n "${TEST_TMPDIR:-}" ]; then
    OUT=$TEST_TMPDIR/pg_driver_check
    mkdir -p "$OUT"
else
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/pg_driver_check.XXXXXX")
    trap 'rm -rf "$OUT"' EXIT
fi

CC=${CC:-cc}
CFLAGS=(-std=c11 -g -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wformat=2 -Wwrite-strings -Wvla -Wswitch-enum
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT/src" -I"$ROOT/drivers")
if pkg-config --exists libpq 2>/dev/null; then
    read -r -a pq_cflags <<<"$(pkg-config --cflags libpq)"
    CFLAGS+=(${pq_cflags[@]+"${pq_cflags[@]}"})
else
    CFLAGS+=(-I/usr/include/postgresql)
fi
LDFLAGS=()
case "${TARGET_PG:-}" in */build/asan/*) PG_DRIVER_CHECK_ASAN=1 ;; esac
if [ "${PG_DRIVER_CHECK_ASAN:-0}" = 1 ]; then
    CFLAGS+=(-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
    LDFLAGS+=(-fsanitize=address,undefined)
else
    CFLAGS+=(-O2)
fi

# The core objects the driver may use.  They go into an archive, so the
# linker takes only those actually referenced (config.c, for one, is listed
# for completeness but nothing here calls it).
core=(error sbuf log types naming table config utf8 datetime)
objs=()
for c in "${core[@]}"; do
    src=$ROOT/src/$c.c
    if [ ! -f "$src" ]; then
        echo "# $src missing, not built"
        continue
    fi
    "$CC" "${CFLAGS[@]}" -c -o "$OUT/$c.o" "$src"
    objs+=("$OUT/$c.o")
done
for src in "$ROOT"/drivers/postgres/*.c; do
    o=$OUT/drv_$(basename "${src%.c}").o
    "$CC" "${CFLAGS[@]}" -c -o "$o" "$src"
    objs+=("$o")
done
rm -f "$OUT/libcore.a"
ar rcs "$OUT/libcore.a" "${objs[@]}"
"$CC" "${CFLAGS[@]}" -pthread -o "$OUT/pg_driver_check" \
    "$ROOT/tests/integration/pg_driver_check.c" "$OUT/libcore.a" \
    ${LDFLAGS[@]+"${LDFLAGS[@]}"} -lpq -ljansson -lpthread

read -r -a wrap <<<"${TARGET_PG_WRAPPER:-}"
PG_DRIVER_CHECK_QUIET=${PG_DRIVER_CHECK_QUIET:-1} \
    ${wrap[@]+"${wrap[@]}"} "$OUT/pg_driver_check"
