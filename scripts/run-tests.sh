#!/usr/bin/env bash
# Runs redraft's test groups and ends with one line "N passed, M failed" that adds up every
# test of every group (cmocka tests, simulator seeds, integration tests).
# Usage: scripts/run-tests.sh [unit|sim|integration|clients|compat|bench|chaos ...]   (no argument: all, in order)
#   clients: real clients (redis-py, node-redis, ioredis, redis-cli, redis-benchmark) against a
#           3-node cluster (tests/clients), and static checks of contrib/
#   compat: the fast subset of Redis's own test suite through a 3-node cluster (tests/compat)
#   bench:  a few-second smoke run of make bench (the harness works; no targets enforced)
#   chaos:  the chaos harness's own checks, its lying-disk self-test and a short run under faults
#           (tests/chaos/run.sh; make chaos runs the long one)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(unit sim integration clients compat bench chaos)

passed=0
failed=0
failures=()
times=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Adds the counts a group printed; a group that failed without printing counts counts as one.
tally() { # name status
    local p f
    p=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$out" | awk '{s+=$4} END {print s+0}')
    f=$(grep -aoE '^\[  FAILED  \] [0-9]+' "$out" | awk '{s+=$4} END {print s+0}')
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        local line
        line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | awk '{print $1}')
            f=$(echo "$line" | awk '{print $3}')
        fi
    fi
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$2" -ne 0 ] && failures+=("$1")
}

run() { # name command...
    local name=$1
    shift
    echo "=== $name"
    "$@" 2>&1 | tee "$out"
    tally "$name" "${PIPESTATUS[0]}"
}

# Sanitizer reports of every process (redraft under the integration tests included) go to
# files; any report fails the run, even when the process that wrote it was killed later.
sanlogs=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$sanlogs"' EXIT
export ASAN_OPTIONS="detect_leaks=1:log_path=$sanlogs/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$sanlogs/ubsan:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:${LSAN_OPTIONS:-}"

start=$(date +%s)
for g in "${groups[@]}"; do
    t0=$SECONDS
    case "$g" in
        unit)
            for t in "$BUILD"/tests/test_*; do
                [ -x "$t" ] && run "unit:$(basename "$t")" "$t"
            done
            run "unit:deps.sh" tests/tools/test_deps.sh ;;
        sim)
            run "sim" "$BUILD"/raft-sim --start 1 --count "${SIM_TEST_COUNT:-300}" ;;
        integration)
            run "integration" tclsh tests/integration/run.tcl --build "$BUILD" ;;
        clients) run "clients" tests/clients/run.sh ;;
        compat)
            run "compat" env BUILD="$BUILD" tests/compat/run.sh --fast ;;
        bench)
            run "bench-smoke" env BUILD="$BUILD" contrib/bench/smoke.sh ;;
        chaos)
            run "chaos" env BUILD="$BUILD" tests/chaos/run.sh ;;
        *) echo "unknown test group: $g" >&2; exit 2 ;;
    esac
    times+=("$g $((SECONDS - t0))s")
done
if compgen -G "$sanlogs/*" >/dev/null; then
    echo "=== sanitizer reports"
    cat "$sanlogs"/*
    failed=$((failed + 1))
    failures+=("sanitizer")
fi
echo
echo "time per group: ${times[*]}"
echo "tests took $(( $(date +%s) - start ))s"
[ ${#failures[@]} -gt 0 ] && printf 'failed group: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ] && [ "$failed" -eq 0 ]
