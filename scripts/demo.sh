#!/usr/bin/env bash
# `make demo`: starts redis-server and redraft on loopback and says how to connect;
# `make demo-stop`: stops exactly the processes the demo started (by the PIDs it recorded).
# Everything lives under ./demo/ (logs, data, pid files).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo
NODES=${DEMO_NODES:-1}
REDIS_BASE=${DEMO_REDIS_PORT:-16379}
RAFT_BASE=${DEMO_PORT:-7379}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ping() { # port
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    return 1
}

stop() {
    [ -d "$DEMO" ] || { echo "no demo running"; return 0; }
    for f in "$DEMO"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
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
    for i in $(seq 1 "$NODES"); do
        rp=$((REDIS_BASE + i - 1))
        pp=$((RAFT_BASE + i - 1))
        for p in "$rp" "$pp"; do
            port_free "$p" || { echo "port $p is in use; set DEMO_PORT/DEMO_REDIS_PORT" >&2; stop; exit 1; }
        done
        mkdir -p "$DEMO/redis$i" "$DEMO/node$i"
        # setsid: the servers outlive `make` and its terminal; nothing holds make's output open.
        setsid redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$DEMO/redis$i" --daemonize no > "$DEMO/redis$i.log" 2>&1 < /dev/null &
        echo $! > "$DEMO/redis$i.pid"
        setsid "$ROOT/build/redraft" --port "$pp" --bind 127.0.0.1 --redis "127.0.0.1:$rp" \
            --dir "$DEMO/node$i" --node-id "$i" --logfile "$DEMO/node$i.log" \
            > "$DEMO/node$i.out" 2>&1 < /dev/null &
        echo $! > "$DEMO/node$i.pid"
    done
    for i in $(seq 1 "$NODES"); do
        pp=$((RAFT_BASE + i - 1))
        wait_ping "$pp" || { echo "redraft on port $pp did not answer; see $DEMO/node$i.log" >&2; stop; exit 1; }
    done
    echo
    echo "redraft is running:"
    for i in $(seq 1 "$NODES"); do
        echo "  node $i: redraft on 127.0.0.1:$((RAFT_BASE + i - 1)), its redis-server on 127.0.0.1:$((REDIS_BASE + i - 1))"
    done
    echo
    echo "try:"
    echo "  redis-cli -p $RAFT_BASE set greeting hello"
    echo "  redis-cli -p $RAFT_BASE get greeting"
    echo "  redis-cli -p $RAFT_BASE incr visits"
    echo
    echo "logs and data: $DEMO/    stop with: make demo-stop"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
