#!/usr/bin/env bash
# Real Redis clients against a real redraft cluster: redis-py, node-redis, ioredis, redis-cli and
# redis-benchmark, plus a static check of contrib/ (check-contrib.sh). Starts a 3-node cluster
# (and one single node with requirepass) on free loopback ports in a temp dir, and stops exactly
# the processes it started. A client whose runtime is missing is skipped with a message.
# Prints "PASS name" / "FAIL name: why" per check and ends with "N passed, M failed".
# Usage: tests/clients/run.sh   (BUILD=build-asan to use another build tree)
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
REDRAFT=$ROOT/$BUILD/redraft
HERE=$ROOT/tests/clients
PY=/usr/bin/python3 # Debian's python3 (python3-redis); a pyenv python3 on PATH lacks it
T0=$(date +%s)

passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
skip() { echo "SKIP $*"; }
finish() {
    echo "clients took $(($(date +%s) - T0))s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# Counts the PASS/FAIL lines a client script printed (its output is shown as it is).
tally_file() { # file
    local p f
    p=$(grep -c '^PASS ' "$1")
    f=$(grep -c '^FAIL ' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
}

run_client() { # name command...  (a script that dies without FAIL lines counts as one failure)
    local name=$1 out rc
    shift
    out=$TMP/$name.out
    echo "=== $name"
    timeout 60 "$@" > "$out" 2>&1
    rc=$?
    cat "$out"
    tally_file "$out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
        fail "$name: exited with status $rc"
    fi
}

# The static check of contrib/ needs no servers.
echo "=== contrib"
out=$(mktemp)
"$HERE/check-contrib.sh" > "$out" 2>&1
cat "$out"
passed=$((passed + $(grep -c '^PASS ' "$out")))
failed=$((failed + $(grep -c '^FAIL ' "$out")))
rm -f "$out"

if [ ! -x "$REDRAFT" ]; then
    fail "redraft binary missing: $REDRAFT (run make first)"
    finish
fi
for t in redis-server redis-cli; do
    command -v "$t" >/dev/null || { fail "$t missing (make deps)"; finish; }
done

TMP=$(mktemp -d /tmp/redraft-clients.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    # Processes restarted by restart.sh recorded their PIDs in files.
    for f in "$TMP"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null && sleep 0.2
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

# Until PING answers exactly PONG (up to 30 s: a loaded CI machine starts slowly). With a
# password, redis-cli's AUTH must be accepted as well: a node that has not reached its local Redis
# yet answers a bare PING (a liveness probe) but nothing else, and redis-cli goes on to PING after
# printing "AUTH failed".
wait_ping() { # port [password]
    for _ in $(seq 1 300); do
        [ "$(redis-cli -p "$1" ${2:+--no-auth-warning -a "$2"} ping 2>&1 | tr -d '\r')" = PONG ] && return 0
        sleep 0.1
    done
    return 1
}

SECRET=clients-test-$RANDOM$RANDOM
# Node i: redis on RPORT[i], redraft on PORT[i], bus on BPORT[i]. Its start command is written
# to $TMP/node$i.cmd so restart.sh can start it again after a kill -9.
declare -a RPORT PORT BPORT
start_node() { # i redraft-args...
    local i=$1
    shift
    mkdir -p "$TMP/redis$i" "$TMP/node$i"
    redis-server --port "${RPORT[$i]}" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$TMP/redis$i" --daemonize no > "$TMP/redis$i.log" 2>&1 < /dev/null &
    PIDS+=($!)
    printf '%q ' "$REDRAFT" --port "${PORT[$i]}" --bind 127.0.0.1 --redis "127.0.0.1:${RPORT[$i]}" \
        --dir "$TMP/node$i" --logfile "$TMP/node$i.log" --cluster-port "${BPORT[$i]}" \
        --cluster-announce "127.0.0.1:${BPORT[$i]}" --cluster-secret "$SECRET" "$@" > "$TMP/node$i.cmd"
    bash -c "exec $(cat "$TMP/node$i.cmd")" > "$TMP/node$i.out" 2>&1 < /dev/null &
    echo $! > "$TMP/node$i.pid"
    disown $! # killed by its pid file; no "Killed" notice from this shell
}

for i in 1 2 3 4; do
    for v in RPORT PORT BPORT; do rd_pick_port "$v[$i]" || { fail "no free port"; finish; }; done
done
start_node 1 --cluster-init yes
start_node 2 --cluster-join "127.0.0.1:${PORT[1]}"
start_node 3 --cluster-join "127.0.0.1:${PORT[1]}"
start_node 4 --cluster-init yes --requirepass pw # the AUTH tests' single node

# restart.sh <i>: kill -9 redraft node i and start it again (same data); prints nothing.
cat > "$TMP/restart.sh" <<EOF
#!/usr/bin/env bash
i=\$1
kill -KILL "\$(cat "$TMP/node\$i.pid")" 2>/dev/null
sleep 0.3
bash -c "exec \$(cat "$TMP/node\$i.cmd")" >> "$TMP/node\$i.out" 2>&1 < /dev/null &
echo \$! > "$TMP/node\$i.pid"
EOF
chmod +x "$TMP/restart.sh"
# kill.sh <i> / start.sh <i>: the same in two steps, for tests that act while the node is down.
cat > "$TMP/kill.sh" <<EOF
#!/usr/bin/env bash
kill -KILL "\$(cat "$TMP/node\$1.pid")" 2>/dev/null
EOF
cat > "$TMP/start.sh" <<EOF
#!/usr/bin/env bash
bash -c "exec \$(cat "$TMP/node\$1.cmd")" >> "$TMP/node\$1.out" 2>&1 < /dev/null &
echo \$! > "$TMP/node\$1.pid"
EOF
chmod +x "$TMP/kill.sh" "$TMP/start.sh"

# Shows why node i did not come up: whether it still runs, and the ends of its logs.
explain_node() { # i
    local i=$1 pid
    pid=$(cat "$TMP/node$i.pid")
    if kill -0 "$pid" 2>/dev/null; then echo "node $i (pid $pid) is running"; else echo "node $i (pid $pid) has exited"; fi
    echo "--- node$i.log (last 20 lines)"
    tail -n 20 "$TMP/node$i.log" 2>/dev/null
    echo "--- node$i.out"
    tail -n 20 "$TMP/node$i.out" 2>/dev/null
    echo "--- redis$i.log (last 10 lines)"
    tail -n 10 "$TMP/redis$i.log" 2>/dev/null
    echo "--- listening sockets on its ports"
    ss -ltnp 2>/dev/null | grep -E ":(${PORT[$i]}|${BPORT[$i]}|${RPORT[$i]})\b" || echo "(none)"
}
for i in 1 2 3; do
    if ! wait_ping "${PORT[$i]}"; then
        fail "cluster: node $i did not answer on port ${PORT[$i]} within 30 s"
        explain_node "$i"
        KEEP_TMP=1
        finish
    fi
done
if ! wait_ping "${PORT[4]}" pw; then
    fail "auth node: no PONG after AUTH within 30 s"
    explain_node 4
fi
formed=0
for _ in $(seq 1 150); do
    voters=$(redis-cli -p "${PORT[1]}" raft.info 2>/dev/null | tr -d '\r' | sed -n 's/^num_voters://p')
    if [ "${voters:-0}" -eq 3 ] && redis-cli -p "${PORT[3]}" set clients:ready 1 2>/dev/null | grep -q OK; then
        formed=1
        break
    fi
    sleep 0.1
done
if [ "$formed" -ne 1 ]; then
    fail "cluster: did not reach 3 voters (voters: ${voters:-0})"
    KEEP_TMP=1
    finish
fi
pass "cluster: 3 voters after $(($(date +%s) - T0))s"

role_of() { redis-cli -p "$1" raft.info 2>/dev/null | tr -d '\r' | sed -n 's/^role://p'; }
# The leader and one follower (node numbers).
find_roles() {
    LEADER=""
    FOLLOWER=""
    for _ in $(seq 1 50); do
        for i in 1 2 3; do
            case "$(role_of "${PORT[$i]}")" in
                leader) LEADER=$i ;;
                follower) FOLLOWER=$i ;;
            esac
        done
        [ -n "$LEADER" ] && [ -n "$FOLLOWER" ] && return 0
        sleep 0.1
    done
    return 1
}
find_roles || { fail "cluster: no leader/follower found"; finish; }
echo "leader: node $LEADER (port ${PORT[$LEADER]}), follower: node $FOLLOWER (port ${PORT[$FOLLOWER]})"

export RD_TMP=$TMP RD_LEADER_PORT=${PORT[$LEADER]} RD_FOLLOWER_PORT=${PORT[$FOLLOWER]} \
    RD_FOLLOWER_NODE=$FOLLOWER RD_LEADER_NODE=$LEADER RD_AUTH_PORT=${PORT[4]} \
    RD_PORTS="${PORT[1]} ${PORT[2]} ${PORT[3]}"

# ---- redis-cli and redis-benchmark
echo "=== redis-cli"
rc_check() { # name expected command...
    local name=$1 want=$2 got
    shift 2
    got=$(redis-cli -p "$RD_FOLLOWER_PORT" "$@" 2>&1 | tr -d '\r')
    if [ "$got" = "$want" ]; then pass "redis-cli: $name"; else fail "redis-cli: $name: got '$got', want '$want'"; fi
}
rc_check "set on a follower" OK set cli:k hello
rc_check "get" hello get cli:k
rc_check "incr" 1 incr cli:n
rc_check "rpush" 3 rpush cli:l a b c
rc_check "lrange" "$(printf 'a\nb\nc')" lrange cli:l 0 -1
rc_check "ping" PONG ping
rc_check "db 2 (-n 2)" OK -n 2 set cli:db2 x
rc_check "db 2 read back" x -n 2 get cli:db2
got=$(redis-cli -p "$RD_FOLLOWER_PORT" raft.info 2>&1 | tr -d '\r' | grep -c '^state:up$')
[ "$got" = 1 ] && pass "redis-cli: raft.info says state:up" || fail "redis-cli: raft.info state: $got"
got=$(redis-cli -p "$RD_LEADER_PORT" info raft 2>&1 | tr -d '\r' | grep -c '^role:leader$')
[ "$got" = 1 ] && pass "redis-cli: INFO raft on the leader says role:leader" || fail "redis-cli: INFO raft role"
got=$(printf 'set cli:pipe 1\nincr cli:pipe\nget cli:pipe\n' | redis-cli -p "$RD_FOLLOWER_PORT" 2>&1 | tr -d '\r' | tail -1)
[ "$got" = 2 ] && pass "redis-cli: commands from stdin" || fail "redis-cli: commands from stdin: '$got'"
got=$(printf '*3\r\n$3\r\nSET\r\n$6\r\ncli:pp\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$6\r\ncli:pp\r\n' |
    redis-cli -p "$RD_FOLLOWER_PORT" --pipe 2>&1 | tr -d '\r' | grep -c 'errors: 0, replies: 2')
[ "$got" = 1 ] && pass "redis-cli: --pipe mass insert" || fail "redis-cli: --pipe"
# node-redis sends CLIENT SETINFO at connect and ignores an error reply (Redis 7.0 has no
# SETINFO); what matters is an answer and a usable connection after it.
got=$(printf 'client setinfo lib-name x\nping\n' | redis-cli -p "$RD_FOLLOWER_PORT" 2>&1 | tr -d '\r')
echo "  (CLIENT SETINFO answers: $(echo "$got" | head -1))"
[ "$(echo "$got" | tail -1)" = PONG ] && pass "redis-cli: CLIENT SETINFO answered, connection usable" ||
    fail "redis-cli: CLIENT SETINFO: '$got'"
got=$(redis-cli -p "$RD_FOLLOWER_PORT" hello 3 2>&1 | tr -d '\r' | head -1)
echo "  (HELLO 3 answers: $got)"
got=$(redis-cli -p "$RD_AUTH_PORT" ping 2>&1 | tr -d '\r')
case "$got" in NOAUTH*) pass "redis-cli: NOAUTH without a password" ;; *) fail "redis-cli: no password: '$got'" ;; esac
got=$(redis-cli -p "$RD_AUTH_PORT" --no-auth-warning --user default --pass pw ping 2>&1 | tr -d '\r')
[ "$got" = PONG ] && pass "redis-cli: --user default --pass pw" || fail "redis-cli: auth with user: '$got'"

echo "=== redis-benchmark"
if command -v redis-benchmark >/dev/null; then
    for node in LEADER FOLLOWER; do
        p=${PORT[${!node}]}
        out=$(timeout 40 redis-benchmark -p "$p" -n 2000 -q -t set,get,incr,lpush -c 10 2>&1 | tr '\r' '\n')
        rc=$?
        n=$(echo "$out" | grep -cE '^(SET|GET|INCR|LPUSH).*requests per second')
        if [ "$rc" -eq 0 ] && [ "$n" -eq 4 ]; then
            pass "redis-benchmark -n 2000 -q against the ${node,,}: $(echo "$out" | grep -E 'requests per second' | tr '\n' ' ')"
        else
            fail "redis-benchmark against the ${node,,} (rc $rc): $out"
        fi
    done
    out=$(timeout 40 redis-benchmark -p "$RD_FOLLOWER_PORT" -n 2000 -q -t set -P 16 2>&1 | tr '\r' '\n')
    echo "$out" | grep -q 'requests per second' && pass "redis-benchmark -P 16 (pipelined) completes" ||
        fail "redis-benchmark -P 16: $out"
else
    skip "redis-benchmark: not installed (Debian package redis-tools)"
fi

# ---- redis-py
if [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null; then
    run_client redis-py "$PY" "$HERE/test_redis_py.py"
else
    echo "=== redis-py"
    skip "redis-py: $PY cannot import redis (Debian package python3-redis)"
fi

# ---- node-redis and ioredis
echo "=== node clients"
NODE_DIR=$ROOT/.cache/node-clients
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    skip "node-redis, ioredis: node or npm missing (Debian packages nodejs, npm)"
elif ! "$HERE/node/install.sh" "$NODE_DIR" > "$TMP/npm.out" 2>&1; then
    cat "$TMP/npm.out"
    skip "node-redis, ioredis: npm ci failed (no network to the npm registry?)"
else
    export NODE_PATH=$NODE_DIR/node_modules
    run_client node-redis node "$HERE/node/test_node_redis.js"
    run_client ioredis node "$HERE/node/test_ioredis.js"
fi

# Last, as it moves the leadership: the leader killed -9 under a redis-py client.
if [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null; then
    run_client redis-py-leader "$PY" "$HERE/test_redis_py.py" --leader-restart
fi

# Every node still answers after the clients' restarts.
for i in 1 2 3; do
    wait_ping "${PORT[$i]}" || fail "cluster: node $i down at the end (log: $TMP/node$i.log)"
done
[ "$failed" -gt 0 ] && KEEP_TMP=1
finish
