#!/usr/bin/env bash
# Smoke test of the benchmark harness, for `make test`: runs contrib/bench/bench.sh with
# BENCH_QUICK=1 (a few thousand requests, one round, a subset of the tests; about 20 s) and
# checks only that it produced its report: the harness works. The figures themselves are not
# judged here (a shared, loaded test machine says nothing about performance).
# Ends with "N passed, M failed" as scripts/run-tests.sh expects of a group.
set -u
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

BENCH_QUICK=1 timeout -k 10 300 contrib/bench/bench.sh > "$out" 2>&1
rc=$?
fail() {
    cat "$out"
    echo "bench smoke: $*"
    echo "0 passed, 1 failed"
    exit 1
}
[ "$rc" -eq 0 ] || fail "bench.sh exited with status $rc"
grep -q '^test  *target  *ops/s' "$out" || fail "no table header in the report"
rows=$(grep -cE '^(SET|GET|MIX|MSET|LPUSH|LRANGE|  +)[^|]* (raw|aof|single|cluster) +[0-9]+ ' "$out")
[ "$rows" -ge 12 ] || fail "the table has $rows rows with figures, expected at least 12"
grep -q '^writes: 3-node cluster against Redis with appendfsync always' "$out" ||
    fail "no comparison with the appendfsync-always Redis"
grep -q '^issue targets' "$out" || fail "no targets section"
grep -q '^bench: report complete' "$out" || fail "the report did not complete"
echo "bench smoke: the harness produced its table ($rows rows)"
echo "1 passed, 0 failed"
