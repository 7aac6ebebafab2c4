#!/usr/bin/env bash
# Runs redraft's test groups and prints one closing line "N passed, M failed" for the whole run.
# Usage: scripts/run-tests.sh [unit|sim|integration ...]   (no argument: all groups, in that order)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(unit sim integration)

passed=0
failed=0
failed_names=()

record() { # name status
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else
        failed=$((failed + 1)); failed_names+=("$1")
    fi
}

run_unit() {
    local t
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        echo "=== unit: $(basename "$t")"
        "$t"
        record "unit:$(basename "$t")" $?
    done
}

run_sim() {
    echo "=== sim: ${SIM_TEST_COUNT:-300} seeds"
    "$BUILD"/raft-sim --start 1 --count "${SIM_TEST_COUNT:-300}"
    record "sim" $?
}

run_integration() {
    echo "=== integration (tcl)"
    tclsh tests/integration/run.tcl --build "$BUILD"
    record "integration" $?
}

start=$(date +%s)
for g in "${groups[@]}"; do
    case "$g" in
        unit) run_unit ;;
        sim) run_sim ;;
        integration) run_integration ;;
        *) echo "unknown test group: $g" >&2; exit 2 ;;
    esac
done
echo
echo "test groups took $(( $(date +%s) - start ))s"
[ $failed -gt 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
