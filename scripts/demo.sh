#!/usr/bin/env bash
# `make demo`: starts redis-server and redraft on loopback and says how to connect;
# `make demo-stop`: stops exactly the processes the demo started (by the PIDs it recorded).
# Everything lives under ./demo/ (logs, data, pid files).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo
NODES=${DEMO_NODES:-3}
REDIS_BASE=${DEMO_REDIS_PORT:-16379}
RAFT_BASE=${DEMO_PORT:-7379}

# shellcheck source=scripts/ports.sh
. "$ROOT/scripts/ports.sh"

wait_ping() { # port
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    return 1
}

# Running, as opposed to gone or a zombie: the demo's processes are not our children, and
# `kill -0` succeeds on a zombie until init reaps it (about a second in some containers),
# which made every process of make demo-stop look as if it lingered after its "bye".
alive() { # pid
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

stop() {
    [ -d "$DEMO" ] || { echo "no demo running"; return 0; }
    for f in "$DEMO"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if alive "$pid"; then
            kill -TERM "$pid"
            for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
            alive "$pid" && kill -KILL "$pid"
        fi
        rm -f "$f"
    done
    echo "demo stopped (data kept in $DEMO; remove it for a fresh start)"
}

start() {
    if ls "$DEMO"/*.pid >/dev/null 2>&1; then
        echo "a demo is already running; 'make demo-stop' first" >&2
        exit 1
    fi
    mkdir -p "$DEMO"
    # One secret for the demo's cluster bus, kept with its data.
    [ -s "$DEMO/cluster-secret" ] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$DEMO/cluster-secret"
    secret=$(cat "$DEMO/cluster-secret")
    for i in $(seq 1 "$NODES"); do
        rp=$((REDIS_BASE + i - 1))
        pp=$((RAFT_BASE + i - 1))
        for p in "$rp" "$pp" $((pp + 10000)); do
            rd_port_free "$p" || { echo "port $p is in use; set DEMO_PORT/DEMO_REDIS_PORT" >&2; stop; exit 1; }
        done
        mkdir -p "$DEMO/redis$i" "$DEMO/node$i"
        # setsid: the servers outlive `make` and its terminal; nothing holds make's output open.
        # Each redis-server runs under a small supervisor, as systemd or a container runtime
        # runs it in production: one that exits (SHUTDOWN NOSAVE of a script that cannot be
        # killed, docs/scripts.md) is started again, empty, and redraft refills it. At most
        # 1000 restarts; SIGTERM (make demo-stop) stops the supervisor and its redis-server.
        setsid bash -c 'trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM
            for _ in $(seq 1 1000); do
                redis-server --port "$0" --bind 127.0.0.1 --save "" --appendonly no \
                    --dir "$1" --daemonize no < /dev/null & child=$!
                wait $child
                sleep 0.2
            done' "$rp" "$DEMO/redis$i" > "$DEMO/redis$i.log" 2>&1 < /dev/null &
        echo $! > "$DEMO/redis$i.pid"
        # Node 1 forms the cluster; the others join it through its client port. Both options
        # act only on a first start: after that each node's log knows the cluster.
        if [ "$i" -eq 1 ]; then form=(--cluster-init yes); else form=(--cluster-join "127.0.0.1:$RAFT_BASE"); fi
        setsid "$ROOT/build/redraft" --port "$pp" --bind 127.0.0.1 --redis "127.0.0.1:$rp" \
            --dir "$DEMO/node$i" --logfile "$DEMO/node$i.log" --cluster-secret "$secret" \
            "${form[@]}" > "$DEMO/node$i.out" 2>&1 < /dev/null &
        echo $! > "$DEMO/node$i.pid"
    done
    for i in $(seq 1 "$NODES"); do
        pp=$((RAFT_BASE + i - 1))
        wait_ping "$pp" || { echo "redraft on port $pp did not answer; see $DEMO/node$i.log" >&2; stop; exit 1; }
    done
    # Wait (bounded) until every node is a voter and a write goes through.
    for _ in $(seq 1 100); do
        voters=$(redis-cli -p "$RAFT_BASE" raft.info 2>/dev/null | tr -d '\r' | sed -n 's/^num_voters://p')
        [ "${voters:-0}" -eq "$NODES" ] && redis-cli -p "$RAFT_BASE" set demo:ready 1 2>/dev/null | grep -q OK && break
        sleep 0.1
    done
    if [ "${voters:-0}" -ne "$NODES" ]; then
        echo "the cluster did not form (voters: ${voters:-0}); see $DEMO/node*.log" >&2
        stop
        exit 1
    fi
    echo
    echo "redraft is running: a $NODES-node cluster"
    for i in $(seq 1 "$NODES"); do
        echo "  node $i: redraft on 127.0.0.1:$((RAFT_BASE + i - 1)), its redis-server on 127.0.0.1:$((REDIS_BASE + i - 1))"
    done
    echo
    echo "try (any node takes writes; every node reads them):"
    echo "  redis-cli -p $RAFT_BASE set greeting hello"
    echo "  redis-cli -p $((RAFT_BASE + 1)) get greeting"
    echo "  redis-cli -p $((RAFT_BASE + 2)) incr visits"
    echo "  redis-cli -p $RAFT_BASE raft.info"
    echo "  kill -9 \$(cat demo/node1.pid)   # the others elect a leader; restart with make demo-stop && make demo"
    echo
    echo "logs and data: $DEMO/    stop with: make demo-stop"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
