#!/bin/sh
# scripts/run-tests' counting (scripts/test-results) on made-up automake results: a skip
# is counted as skipped, never as passed, and says why; a program with some skipped tests
# passes and lists them; a failure or a make check that failed without a result makes the
# exit status non-zero; the last line is exactly "N passed, N failed, N skipped" (issue 9,
# defect 6).
set -u
top_srcdir=${top_srcdir:-.}
results="$top_srcdir/scripts/test-results"
dir=$(mktemp -d /tmp/pv-results-XXXXXX)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
result() { # name result log-text
    mkdir -p "$dir/$4/tests"
    printf ':test-result: %s\n' "$2" >"$dir/$4/tests/$1.trs"
    printf '%s\n' "$3" >"$dir/$4/tests/$1.log"
}
result a PASS "all good" mixed
result b PASS "SKIP: suite::partly: reason-b" mixed
result c SKIP "SKIP: reason-c" mixed
result d FAIL "boom-d" mixed
result e SKIP "nothing said" mixed
out=$("$results" "$dir/mixed")
code=$?
[ "$code" -ne 0 ] || fail "a failed test gave exit status 0"
[ "$(printf '%s\n' "$out" | tail -n 1)" = "2 passed, 1 failed, 2 skipped" ] ||
    fail "mixed counts: $(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$out" | grep -q "^    SKIP: suite::partly: reason-b" || fail "partial skip not listed"
printf '%s\n' "$out" | grep -q "^    SKIP: reason-c" || fail "skip reason not listed"
printf '%s\n' "$out" | grep -q "printed no reason" || fail "a skip without reason not flagged"
printf '%s\n' "$out" | grep -q "boom-d" || fail "the failure's log is not shown"

result a PASS "ok" clean
result c SKIP "SKIP: reason-c" clean
out=$("$results" "$dir/clean") || fail "no failure, yet exit status $?"
[ "$(printf '%s\n' "$out" | tail -n 1)" = "1 passed, 0 failed, 1 skipped" ] ||
    fail "clean counts: $(printf '%s\n' "$out" | tail -n 1)"

mkdir -p "$dir/broken/tests"
out=$("$results" "$dir/broken" 2) && fail "make check failed, yet exit status 0"
[ "$(printf '%s\n' "$out" | tail -n 1)" = "0 passed, 1 failed, 0 skipped" ] ||
    fail "broken counts: $(printf '%s\n' "$out" | tail -n 1)"
[ "$status" -eq 0 ] && echo "ok: passed, failed and skipped counted apart, reasons listed"
exit $status
