#!/usr/bin/env bash
# `make bench`: measures what redraft costs next to a plain redis-server, on loopback.
#
# Starts four targets side by side:
#   raw      one redis-server
#   aof      one redis-server with appendfsync always (durable, not replicated)
#   single   one redraft (--cluster-init yes) in front of its own redis-server
#   cluster  three redraft nodes, each with its own redis-server, formed into one Raft group
# and runs redis-benchmark against them in turn (raw, aof, single, cluster, raw, ...) so that
# drift of the machine hits all four alike. Every redraft fsyncs its log on every
# write batch (it cannot be turned off); the redis-servers but aof's run with --save ''
# --appendonly no.
# Clients of the cluster connect to the leader.
#
# The results are a table of medians over the rounds, each figure also given as a ratio to raw
# Redis measured in the same round, and the issue's targets marked met or missed. Targets are
# reported, not enforced: the script fails only when the harness itself does.
#
# Environment:
#   BENCH_N       requests of each -c 50 run (default 200000)
#   BENCH_NP      requests of each -c 50 -P 16 run (default 5 x BENCH_N)
#   BENCH_N1      requests of each -c 1 run (default BENCH_N / 10)
#   BENCH_ROUNDS  rounds (default 3)
#   BENCH_QUICK=1 a smoke run: a few thousand requests, one round, a subset of the tests
#   BENCH_OUT     also write the report to this file
#   BUILD         build directory holding redraft (default build); REDRAFT overrides the path
#   BENCH_TIMEOUT seconds one redis-benchmark run may take before it is killed (default 900)
#   BENCH_KEEP=1  keep the temporary directory (logs, data) for inspection
set -eu -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
REDRAFT=${REDRAFT:-$ROOT/$BUILD/redraft}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    N=${BENCH_N:-4000}
    N1=${BENCH_N1:-400}
    ROUNDS=${BENCH_ROUNDS:-1}
else
    N=${BENCH_N:-200000}
    N1=${BENCH_N1:-$((N / 10))}
    ROUNDS=${BENCH_ROUNDS:-3}
fi
# Pipelined runs are fast (raw Redis does ~1M ops/s at -P 16): give them more requests so the
# raw run lasts more than a moment.
NP=${BENCH_NP:-$((N * 5))}
TIMEOUT=${BENCH_TIMEOUT:-900}
KEYSPACE=100000
SECRET=x
CLK_TCK=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for tool in redis-server redis-cli redis-benchmark python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done
[ -x "$REDRAFT" ] || die "$REDRAFT is missing; run make"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/redraft-bench.XXXXXX")
RESULTS=$WORK/results.tsv
: > "$RESULTS"

# ---------------------------------------------------------------- processes and cleanup
PIDS=()           # every process this script started and that still runs, killed by pid on exit
forget_pid() { # pid: drop a stopped process from PIDS (its pid may be reused by anyone later)
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done   # newest first
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        if [ "$rc" -ne 0 ]; then
            for f in "$WORK"/*.log; do
                [ -e "$f" ] || continue
                echo "--- last lines of $f" >&2
                tail -n 5 "$f" >&2 || true
            done
        fi
        if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- ports
# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

wait_ping() { # port pid: until the port answers PONG (bounded) and the process still lives
    for _ in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || return 1
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    return 1
}

start_redis() { # name port [redis-server options...] -> pid in LAST_PID
    local name=$1 port=$2
    shift 2
    mkdir -p "$WORK/$name"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/$name" \
        --daemonize no --logfile "$WORK/$name.log" "$@" < /dev/null > /dev/null 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_ping "$port" "$LAST_PID" || die "redis-server $name on port $port did not start"
}

# redraft nodes: arrays indexed by a node name
declare -A RD_PORT RD_BUS RD_REDIS RD_FORM RD_PID
start_redraft() { # name consistency
    local n=$1 form
    read -r -a form <<< "${RD_FORM[$n]}"
    "$REDRAFT" --port "${RD_PORT[$n]}" --bind 127.0.0.1 --redis "127.0.0.1:${RD_REDIS[$n]}" \
        --cluster-port "${RD_BUS[$n]}" --dir "$WORK/$n" --logfile "$WORK/$n.log" \
        --cluster-secret "$SECRET" --consistency "$2" "${form[@]}" \
        < /dev/null >> "$WORK/$n.out" 2>&1 &
    RD_PID[$n]=$!
    PIDS+=("${RD_PID[$n]}")
    wait_ping "${RD_PORT[$n]}" "${RD_PID[$n]}" || die "redraft $n on port ${RD_PORT[$n]} did not start"
}

raft_field() { # port field
    redis-cli -p "$1" raft.info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

wait_group() { # voters node... : until the group has the voters, a leader and takes a write
    local voters=$1 n leader=
    shift
    for _ in $(seq 1 300); do
        leader=
        for n in "$@"; do
            kill -0 "${RD_PID[$n]}" 2>/dev/null || die "redraft $n exited; see $WORK/$n.log"
            [ "$(raft_field "${RD_PORT[$n]}" role)" = leader ] && leader=$n
        done
        if [ -n "$leader" ] && [ "$(raft_field "${RD_PORT[$leader]}" num_voters)" = "$voters" ] &&
            redis-cli -p "${RD_PORT[$leader]}" set bench:ready 1 2>/dev/null | grep -q OK; then
            LEADER=$leader
            return 0
        fi
        sleep 0.1
    done
    die "the group of $* did not get $voters voters, a leader and a write in 30 s"
}

proc_ticks() { # pid: utime+stime in clock ticks
    [ -r "/proc/$1/stat" ] || die "process $1 (a redraft) is gone; see the logs in $WORK"
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
proc_kb() { # pid field (VmRSS, VmHWM)
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

# ---------------------------------------------------------------- start everything
log "work directory $WORK"
rd_pick_port RAW_PORT || die "no free port"
start_redis raw "$RAW_PORT"
rd_pick_port AOF_PORT || die "no free port"
start_redis aof "$AOF_PORT" --appendonly yes --appendfsync always

NODES_SINGLE=(single)
NODES_CLUSTER=(node1 node2 node3)
for n in "${NODES_SINGLE[@]}" "${NODES_CLUSTER[@]}"; do
    rd_pick_port "RD_REDIS[$n]" || die "no free port"
    rd_pick_port "RD_PORT[$n]" || die "no free port"
    rd_pick_port "RD_BUS[$n]" || die "no free port"
    start_redis "redis-$n" "${RD_REDIS[$n]}"
done
RD_FORM[single]="--cluster-init yes"
RD_FORM[node1]="--cluster-init yes"
RD_FORM[node2]="--cluster-join 127.0.0.1:${RD_PORT[node1]}"
RD_FORM[node3]="--cluster-join 127.0.0.1:${RD_PORT[node1]}"

start_redraft single linearizable
wait_group 1 single
for n in "${NODES_CLUSTER[@]}"; do start_redraft "$n" linearizable; done
wait_group 3 "${NODES_CLUSTER[@]}"
sleep 1    # let the freshly started processes settle before reading their idle RSS
for n in "${NODES_SINGLE[@]}" "${NODES_CLUSTER[@]}"; do
    printf 'idle\t%s\t%s\n' "$n" "$(proc_kb "${RD_PID[$n]}" VmRSS)" >> "$RESULTS"
done
log "raw redis :$RAW_PORT; aof redis :$AOF_PORT; single redraft :${RD_PORT[single]}; cluster :${RD_PORT[node1]} :${RD_PORT[node2]} :${RD_PORT[node3]} (leader $LEADER)"

# Restarts every redraft (same dirs: each rejoins from its own log) with another default read
# consistency; redis-benchmark cannot send CLIENT CONSISTENCY.
restart_redrafts() { # consistency previous-phase
    local n
    record_peaks "$2"
    for n in "${NODES_SINGLE[@]}" "${NODES_CLUSTER[@]}"; do
        stop_pid "${RD_PID[$n]}"
        forget_pid "${RD_PID[$n]}"
    done
    start_redraft single "$1"
    wait_group 1 single
    for n in "${NODES_CLUSTER[@]}"; do start_redraft "$n" "$1"; done
    wait_group 3 "${NODES_CLUSTER[@]}"
    log "redrafts restarted with consistency $1 (cluster leader $LEADER)"
}

PHASE=linearizable
record_peaks() { # phase: peak RSS of every redraft in it (VmHWM dies with the process)
    local n
    for n in "${NODES_SINGLE[@]}" "${NODES_CLUSTER[@]}"; do
        local role=follower
        [ "$n" = "$LEADER" ] && role=leader
        [ "$n" = single ] && role=single
        printf 'peak\t%s\t%s\t%s\t%s\n' "$1" "$n" "$role" "$(proc_kb "${RD_PID[$n]}" VmHWM)" >> "$RESULTS"
    done
}

# ---------------------------------------------------------------- one measurement
# Runs one test against one target and appends a line to results.tsv:
#   run phase round test target rps p50 p99 seconds cpu_ticks fsyncs extra
# A failed run is recorded with rps "FAIL" (redraft's failure is a result, not the harness's).
csv_row() { # file name-prefix: prints "rps p50 p99" of the first matching CSV row
    python3 - "$1" "$2" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for r in rows[1:]:
    if len(r) >= 7 and r[0].upper().startswith(sys.argv[2].upper()):
        print(r[1], r[4], r[6]); break
EOF
}

bench_start() { # port out-file args...: starts one redis-benchmark, bounded in time; pid in LAST_PID
    # In the background and waited for with `wait`, so a signal to this script is handled at
    # once (the EXIT trap kills the benchmark too: timeout passes the TERM on).
    local port=$1 out=$2
    shift 2
    timeout -k 5 "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -r "$KEYSPACE" --csv \
        --precision 3 "$@" < /dev/null > "$out" 2> "$out.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
bench_wait() { # pid: its exit status
    local rc=0
    wait "$1" || rc=$?
    forget_pid "$1"
    return "$rc"
}

measure() { # round test target args... (args: redis-benchmark options; MIX for the mixed load)
    local round=$1 test=$2 target=$3
    shift 3
    local port pid= t0 t1 c0=0 c1=0 f0=0 f1=0 out=$WORK/run.csv ok=1 row extra=-
    case "$target" in
        raw) port=$RAW_PORT ;;
        aof) port=$AOF_PORT ;;
        single) port=${RD_PORT[single]}; pid=${RD_PID[single]} ;;
        cluster) port=${RD_PORT[$LEADER]}; pid=${RD_PID[$LEADER]} ;;
    esac
    if [ -n "$pid" ]; then c0=$(proc_ticks "$pid"); f0=$(raft_field "$port" fsyncs); fi
    t0=$(date +%s.%N)
    if [ "$1" = MIX ]; then
        # 90% GET / 10% SET: two redis-benchmark processes at once, requests in a 9:1 ratio
        # and clients 45:5; throughput is all requests over the wall time of both.
        local mn=$2 gp sp
        bench_start "$port" "$out.get" -c 45 -n $((mn * 9 / 10)) -t get
        gp=$LAST_PID
        bench_start "$port" "$out.set" -c 5 -n $((mn / 10)) -t set
        sp=$LAST_PID
        bench_wait "$gp" || ok=0
        bench_wait "$sp" || ok=0
        t1=$(date +%s.%N)
        if [ "$ok" = 1 ]; then
            local g s
            g=$(csv_row "$out.get" GET) s=$(csv_row "$out.set" SET)
            if [ -n "$g" ] && [ -n "$s" ]; then
                read -r gr g50 g99 <<< "$g"
                read -r sr s50 s99 <<< "$s"
                row="$(awk -v n="$mn" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", n / (b - a)}') $g50 $g99"
                extra="get_rps=$gr,get_p50=$g50,get_p99=$g99,set_rps=$sr,set_p50=$s50,set_p99=$s99"
            else
                ok=0
            fi
        fi
    else
        local name=$1
        shift
        bench_start "$port" "$out" "$@"
        bench_wait "$LAST_PID" || ok=0
        t1=$(date +%s.%N)
        if [ "$ok" = 1 ]; then row=$(csv_row "$out" "$name"); [ -n "$row" ] || ok=0; fi
    fi
    if [ -n "$pid" ]; then c1=$(proc_ticks "$pid"); f1=$(raft_field "$port" fsyncs); fi
    if [ "$target" = cluster ] && [ "$(raft_field "$port" role)" != leader ]; then
        # Leadership moved during the run (an election on an overloaded machine): note it and
        # follow the new leader from the next run on.
        if [ "$extra" = - ]; then extra=leader-changed; else extra="$extra,leader-changed"; fi
        log "leadership moved away from $LEADER during $test; finding the new leader"
        wait_group 3 "${NODES_CLUSTER[@]}"
    fi
    if [ "$ok" != 1 ]; then
        log "FAILED: $test on $target (round $round): $(cat "$out"*.err 2>/dev/null | tail -n 3 | tr '\n' ' ')"
        row="FAIL - -"
    fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$PHASE" "$round" "$test" "$target" \
        "$(echo "$row" | tr ' ' '\t')" "$secs" "$((c1 - c0))" "$((${f1:-0} - ${f0:-0}))" "$extra" >> "$RESULTS"
    log "$(printf '%-26s %-8s %s  (%ss)' "$test" "$target" "${row%% *}" "$secs")"
}

# ---------------------------------------------------------------- the tests
# name|redis-benchmark row prefix|options   (MIX: the mixed load)
TESTS_LIN=(
    "SET -c50 -P1|SET|-t set -c 50 -P 1 -n $N"
    "SET -c50 -P16|SET|-t set -c 50 -P 16 -n $NP"
    "SET -c1 -P1|SET|-t set -c 1 -P 1 -n $N1"
    "GET -c50 -P1|GET|-t get -c 50 -P 1 -n $N"
    "GET -c50 -P16|GET|-t get -c 50 -P 16 -n $NP"
    "GET -c1 -P1|GET|-t get -c 1 -P 1 -n $N1"
    "MIX 90% GET 10% SET -c50|MIX|$N"
    "MSET (10 keys) -c50|MSET|-t mset -c 50 -n $N"
    "LPUSH -c50|LPUSH|-t lpush -c 50 -n $N"
    "LRANGE_100 -c50|lrange|-c 50 -n $N lrange mylist 0 99"
)
TESTS_READ=(
    "GET -c50 -P1|GET|-t get -c 50 -P 1 -n $N"
    "GET -c50 -P16|GET|-t get -c 50 -P 16 -n $NP"
)
PHASES=(linearizable session eventual)
if [ "$QUICK" = 1 ]; then
    TESTS_LIN=("${TESTS_LIN[0]}" "${TESTS_LIN[2]}" "${TESTS_LIN[4]}" "${TESTS_LIN[6]}")
    TESTS_READ=("${TESTS_READ[1]}")
    PHASES=(linearizable eventual)
fi

run_tests() { # test-spec...
    local round spec name prefix opts target
    for round in $(seq 1 "$ROUNDS"); do
        for spec in "$@"; do
            IFS='|' read -r name prefix opts <<< "$spec"
            for target in raw aof single cluster; do
                # shellcheck disable=SC2086  # opts is a list of words on purpose
                if [ "$prefix" = MIX ]; then
                    measure "$round" "$name" "$target" MIX "$opts"
                else
                    measure "$round" "$name" "$target" "$prefix" $opts
                fi
            done
        done
    done
}

# The list for LRANGE must exist on every target before its run.
for p in "$RAW_PORT" "$AOF_PORT" "${RD_PORT[single]}" "${RD_PORT[$LEADER]}"; do
    timeout 300 redis-benchmark -p "$p" -c 50 -n 10000 -t lpush -q > /dev/null 2>&1 ||
        die "could not fill mylist on port $p"
done

START=$(date +%s)
PREV=
for PHASE in "${PHASES[@]}"; do
    if [ "$PHASE" = linearizable ]; then
        log "phase $PHASE: ${#TESTS_LIN[@]} tests x $ROUNDS rounds x 4 targets"
        run_tests "${TESTS_LIN[@]}"
    else
        restart_redrafts "$PHASE" "$PREV"
        log "phase $PHASE: ${#TESTS_READ[@]} tests x $ROUNDS rounds x 4 targets"
        run_tests "${TESTS_READ[@]}"
    fi
    PREV=$PHASE
done
record_peaks "$PREV"
ELAPSED=$(( $(date +%s) - START ))

python3 "$ROOT/contrib/bench/report.py" "$RESULTS" "$CLK_TCK" "$ROUNDS" "$N" "$N1" "$NP" \
    "$ELAPSED" "$QUICK" | tee "${BENCH_OUT:-/dev/null}"
