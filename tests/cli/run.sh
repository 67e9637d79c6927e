#!/usr/bin/env bash
# tests/cli/run.sh - golden command-line cases that need no database.
#
#   tests/cli/run.sh [CASE...]     all cases, or only the named ones
#
# Every directory tests/cli/<case>/ with an `args` file is one case:
#   args             one argument per line; @DIR@ is replaced by the case directory
#   stdin            optional, fed as standard input (else /dev/null)
#   env              optional, KEY=VALUE lines added to the environment
#   expected_exit    the exit status (a number)
#   expected_stdout  optional, stdout must equal it byte for byte
#   stdout_pattern   optional, like stderr_pattern but for stdout
#   stderr_pattern   optional, each line an extended regex (grep -E) that must
#                    match somewhere in stderr; a line starting with `!` must
#                    NOT match; empty lines are ignored
#   check            optional executable, run as `check STDOUT_FILE STDERR_FILE`
#                    from the case directory; must exit 0
#
# TARGET_PG (default ./target-pg) is the binary, prefixed by
# $TARGET_PG_WRAPPER when set.  TARGET_PG_* settings and MELTANO_* variables of
# the caller's environment are removed so they cannot leak into a case.
# Output protocol (see tests/run_all.sh): "ok   cli/<case>" or "FAIL cli/<case>"
# followed by indented details.  Exit status 1 when a case failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_PG=${TARGET_PG:-$ROOT/target-pg}
read -r -a WRAPPER <<<"${TARGET_PG_WRAPPER:-}"
CLI_TIMEOUT=${CLI_TIMEOUT:-60}

work=$(mktemp -d "${TMPDIR:-/tmp}/tgt-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Environment for a case: the caller's minus anything target-pg would read as settings.
clean_env=(env)
while IFS= read -r var; do
    case "$var" in
    TARGET_PG_* | MELTANO_*) clean_env+=(-u "$var") ;;
    esac
done < <(compgen -e)

indent() { sed -e 's/^/    /' | head -n 40; }

run_case() {
    local dir=$1 name=$2 out=$work/stdout err=$work/stderr msgs=$work/msgs
    local -a args=() envs=()
    local line rc want stdin_file=/dev/null
    : >"$msgs"

    while IFS= read -r line || [ -n "$line" ]; do
        args+=("${line//@DIR@/$dir}")
    done <"$dir/args"
    if [ -f "$dir/env" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            [ -n "$line" ] && envs+=("${line//@DIR@/$dir}")
        done <"$dir/env"
    fi
    [ -f "$dir/stdin" ] && stdin_file=$dir/stdin

    (cd "$dir" && timeout -k 5 "$CLI_TIMEOUT" "${clean_env[@]}" "${envs[@]}" \
        ${WRAPPER[@]+"${WRAPPER[@]}"} "$TARGET_PG" "${args[@]}") <"$stdin_file" >"$out" 2>"$err"
    rc=$?

    want=$(tr -d ' \n\t' <"$dir/expected_exit")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "timed out after ${CLI_TIMEOUT}s (exit $rc)" >>"$msgs"
    elif [ "$rc" != "$want" ]; then
        echo "exit status $rc, expected $want" >>"$msgs"
    fi
    if [ -f "$dir/expected_stdout" ] && ! cmp -s "$dir/expected_stdout" "$out"; then
        echo "stdout differs from expected_stdout:" >>"$msgs"
        diff -u --label expected "$dir/expected_stdout" --label actual "$out" | head -n 20 >>"$msgs"
    fi
    check_patterns "$dir/stdout_pattern" "$out" stdout
    check_patterns "$dir/stderr_pattern" "$err" stderr
    if [ -x "$dir/check" ] && ! (cd "$dir" && ./check "$out" "$err") >>"$msgs" 2>&1 </dev/null; then
        echo "check script failed" >>"$msgs"
    fi

    if [ -s "$msgs" ]; then
        echo "FAIL cli/$name"
        {
            cat "$msgs"
            if [ -s "$err" ]; then echo "stderr:"; head -n 15 "$err"; else echo "stderr: (empty)"; fi
            if [ ! -f "$dir/expected_stdout" ] && [ -s "$out" ]; then echo "stdout:"; head -n 10 "$out"; fi
        } | indent
        return 1
    fi
    echo "ok   cli/$name"
}

check_patterns() {
    local file=$1 text=$2 what=$3 pat
    [ -f "$file" ] || return 0
    while IFS= read -r pat || [ -n "$pat" ]; do
        [ -n "$pat" ] || continue
        if [ "${pat:0:1}" = "!" ]; then
            if grep -E -q -e "${pat:1}" "$text"; then
                echo "$what matches forbidden pattern: ${pat:1}" >>"$msgs"
            fi
        elif ! grep -E -q -e "$pat" "$text"; then
            echo "$what does not match: $pat" >>"$msgs"
        fi
    done <"$file"
}

failed=0
if [ $# -gt 0 ]; then
    cases=("$@")
else
    cases=()
    for d in "$HERE"/*/; do
        [ -f "$d/args" ] && cases+=("$(basename "$d")")
    done
fi
for c in "${cases[@]}"; do
    if [ ! -f "$HERE/$c/args" ] || [ ! -f "$HERE/$c/expected_exit" ]; then
        echo "FAIL cli/$c"
        echo "    no such case (needs args and expected_exit)"
        failed=1
        continue
    fi
    run_case "$HERE/$c" "$c" || failed=1
done
exit "$failed"
