#!/usr/bin/env bash
# The chaos group of make test (scripts/run-tests.sh chaos): the checks' own tests, the
# lying-disk self-test (the harness must notice lost acknowledged writes), and a short chaos
# run (tests/chaos/chaos.py --short: 3 nodes, about 70 s of faults, 45 s in an ASan build).
# CHAOS_SEED replays the short run's schedule. Each part prints PASS/FAIL lines; this adds them
# up and ends with "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
PY=/usr/bin/python3 # Debian's python3 (python3-redis); a pyenv python3 on PATH lacks it
passed=0
failed=0

part() { # seconds name command...
    local limit=$1 name=$2 out rc p f
    shift 2
    echo "=== chaos: $name"
    out=$(mktemp)
    timeout -k 30 "$limit" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    rm -f "$out"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL chaos: $name exited with status $rc"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

part 60 "checks" "$PY" tests/chaos/test_checks.py --build "$BUILD"
part 150 "lying-disk self-test" "$PY" tests/chaos/chaos.py --selftest --build "$BUILD"
part 400 "short run" "$PY" tests/chaos/chaos.py --short --build "$BUILD"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
