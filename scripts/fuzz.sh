#!/usr/bin/env bash
# Runs redraft's libFuzzer targets (built by `make fuzz`; docs/testing.md).
#   scripts/fuzz.sh check                      is the compiler there, can it link libFuzzer?
#   scripts/fuzz.sh run SECONDS TARGET...      fuzz each target in turn for SECONDS, from its
#                                              committed seeds; prints executions per target
#   scripts/fuzz.sh replay TARGET...           each target once over its committed corpus
# One target at a time: libFuzzer uses one core, and the machine may have only two.
set -u
cd "$(dirname "$0")/.."
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_CC=${FUZZ_CC:-clang}

check() {
    if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
        echo "make fuzz needs clang with libFuzzer, and '$FUZZ_CC' is not installed." >&2
        echo "On Debian: apt-get install clang libclang-rt-14-dev (or run 'scripts/deps.sh fuzz' as root)." >&2
        exit 1
    fi
    local probe
    probe=$(mktemp -d)
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return (int)(n && d[0] == 1); }\n' \
        > "$probe/p.c"
    if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" 2> "$probe/err"; then
        echo "make fuzz: '$FUZZ_CC' cannot link a libFuzzer target:" >&2
        sed 's/^/  /' "$probe/err" >&2
        echo "On Debian the runtime is in libclang-rt-14-dev." >&2
        rm -rf "$probe"
        exit 1
    fi
    rm -rf "$probe"
}

run() {
    local secs=$1
    shift
    local summary=() failed=0
    mkdir -p "$FUZZ_BUILD/crashes"
    for t in "$@"; do
        local work="$FUZZ_BUILD/corpus/$t" log="$FUZZ_BUILD/fuzz_$t.log"
        mkdir -p "$work"
        echo "=== fuzz_$t for ${secs}s (log: $log)"
        # Inputs up to 4 KiB (libFuzzer's default for an empty corpus, fixed here so that a
        # corpus with a larger seed does not change it); a 2 GiB RSS limit like libFuzzer's.
        "$FUZZ_BUILD/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
            -artifact_prefix="$FUZZ_BUILD/crashes/$t-" "$work" "tests/fuzz/corpus/$t" > "$log" 2>&1
        local rc=$?
        local execs corpus
        execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')
        corpus=$(grep -aE '^#[0-9]+' "$log" | tail -1 | grep -aoE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' |
                 awk '{print $2}')
        if [ "$rc" -ne 0 ]; then
            failed=1
            tail -40 "$log"
            summary+=("fuzz_$t: FAILED (exit $rc) after ${execs:-?} executions; input in $FUZZ_BUILD/crashes/")
        else
            summary+=("fuzz_$t: ${execs:-?} executions in ${secs}s, corpus ${corpus:-?} inputs/bytes")
        fi
    done
    echo
    printf '%s\n' "${summary[@]}"
    return $failed
}

replay() {
    local failed=0
    for t in "$@"; do
        echo "=== fuzz_$t over tests/fuzz/corpus/$t"
        "$FUZZ_BUILD/fuzz_$t" -runs=0 "tests/fuzz/corpus/$t" 2>&1 | grep -aE 'INITED|DONE|ERROR|Done' ||
            true
        [ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
    done
    return $failed
}

case "${1:-}" in
    check) check ;;
    run) shift; run "$@" ;;
    replay) shift; replay "$@" ;;
    *) echo "usage: scripts/fuzz.sh check | run SECONDS TARGET... | replay TARGET..." >&2; exit 2 ;;
esac
