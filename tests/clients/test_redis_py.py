#!/usr/bin/python3
"""redis-py against a redraft cluster started by tests/clients/run.sh (ports in RD_* variables).

Prints "PASS name" or "FAIL name: why" for every check; run.sh counts them.
"""
import os
import subprocess
import sys
import time
import traceback

import redis

TMP = os.environ["RD_TMP"]
LEADER = int(os.environ["RD_LEADER_PORT"])
FOLLOWER = int(os.environ["RD_FOLLOWER_PORT"])
FOLLOWER_NODE = os.environ["RD_FOLLOWER_NODE"]
AUTH_PORT = int(os.environ["RD_AUTH_PORT"])
KW = dict(host="127.0.0.1", socket_timeout=10, socket_connect_timeout=5)


def check(name, fn):
    try:
        fn()
        print("PASS redis-py: " + name, flush=True)
    except Exception as e:  # noqa: BLE001 - any failure is reported, the run goes on
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        print("FAIL redis-py: %s: %s" % (name, detail), flush=True)


def eq(got, want):
    if got != want:
        raise AssertionError("got %r, want %r" % (got, want))


def retry(fn, seconds=15):
    """Calls fn until it stops raising connection/TRYAGAIN errors, for at most `seconds`."""
    deadline = time.time() + seconds
    while True:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
            transient = not isinstance(e, redis.ResponseError) or str(e).startswith(
                ("TRYAGAIN", "CLUSTERDOWN", "LOADING"))
            if not transient or time.time() > deadline:
                raise
            time.sleep(0.2)


def suite(where, port):
    r = redis.Redis(port=port, decode_responses=True, **KW)
    p = "py:%s:" % where

    def plain():
        eq(r.set(p + "k", "v1"), True)
        eq(r.get(p + "k"), "v1")
        eq(r.incr(p + "n"), 1)
        eq(r.incrby(p + "n", 5), 6)
        eq(r.hset(p + "h", mapping={"a": "1", "b": "2"}), 2)
        eq(r.hgetall(p + "h"), {"a": "1", "b": "2"})
        eq(r.rpush(p + "l", "x", "y"), 2)
        eq(r.lrange(p + "l", 0, -1), ["x", "y"])
        eq(r.set(p + "e", "1", ex=100), True)
        ttl = r.ttl(p + "e")
        if not 90 <= ttl <= 100:
            raise AssertionError("ttl %r" % ttl)
        eq(r.delete(p + "k", p + "missing"), 1)
        eq(r.exists(p + "k"), 0)
    check("%s: plain commands" % where, plain)

    def pipeline_plain():
        pipe = r.pipeline(transaction=False)
        for i in range(50):
            pipe.set("%spipe:%d" % (p, i), i)
        pipe.incr(p + "pc")
        pipe.get(p + "pipe:49")
        res = pipe.execute()
        eq(res[:50], [True] * 50)
        eq(res[50:], [1, "49"])
    check("%s: pipeline(transaction=False)" % where, pipeline_plain)

    def pipeline_tx():
        pipe = r.pipeline(transaction=True)
        pipe.set(p + "tx", "a").append(p + "tx", "b").get(p + "tx").incr(p + "txn")
        eq(pipe.execute(), [True, 2, "ab", 1])
        # An error inside EXEC is that command's reply; the others still apply.
        r.set(p + "str", "x")
        pipe = r.pipeline(transaction=True)
        pipe.incr(p + "str").set(p + "after", "1")
        res = pipe.execute(raise_on_error=False)
        if not isinstance(res[0], redis.ResponseError) or res[1] is not True:
            raise AssertionError("EXEC replies %r" % (res,))
        eq(r.get(p + "after"), "1")
    check("%s: pipeline(transaction=True) MULTI/EXEC" % where, pipeline_tx)

    def lua():
        eq(r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, p + "lua", "v"), "OK")
        eq(r.eval("return redis.call('GET', KEYS[1])", 1, p + "lua"), "v")
        script = r.register_script(
            "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) return n * 2")
        eq(script(keys=[p + "lua:n"], args=[3]), 6)
        eq(script(keys=[p + "lua:n"], args=[1]), 8)  # EVALSHA now that the script is loaded
        eq(r.script_exists(script.sha), [True])
    check("%s: Lua eval and register_script" % where, lua)

    def setname():
        c = redis.Redis(port=port, decode_responses=True, client_name="pyname", **KW)
        eq(c.client_getname(), "pyname")
        eq(c.client_setname("renamed"), True)
        eq(c.client_getname(), "renamed")
        c.close()
    check("%s: client_name= and CLIENT SETNAME/GETNAME" % where, setname)

    def select_db():
        c = redis.Redis(port=port, db=3, decode_responses=True, **KW)
        eq(c.set(p + "db3", "three"), True)
        eq(c.get(p + "db3"), "three")
        eq(r.get(p + "db3"), None)  # db 0 does not see it
        # Every node applied it in db 3.
        for other in (LEADER, FOLLOWER):
            o = redis.Redis(port=other, db=3, decode_responses=True, **KW)
            eq(o.get(p + "db3"), "three")
            o.close()
        c.close()
    check("%s: db=3 (SELECT at connect), replicated in db 3" % where, select_db)

    def consistency():
        c = redis.Redis(port=port, decode_responses=True, **KW)
        eq(c.execute_command("CLIENT", "CONSISTENCY", "EVENTUAL"), "OK")
        got = c.execute_command("CLIENT", "CONSISTENCY")
        if str(got).lower() != "eventual":
            raise AssertionError("CLIENT CONSISTENCY says %r" % got)
        c.set(p + "ev", "1")
        eq(c.get(p + "ev"), "1")  # a write waited for is applied here
        c.close()
    check("%s: CLIENT CONSISTENCY EVENTUAL" % where, consistency)

    def publish():
        n = r.publish(p + "chan", "hello")
        if not isinstance(n, int):
            raise AssertionError("PUBLISH gave %r" % n)
    check("%s: PUBLISH" % where, publish)

    def subscribe():
        c = redis.Redis(port=port, decode_responses=True, **KW)
        ps = c.pubsub()
        try:
            ps.subscribe(p + "chan")
            msg = ps.get_message(timeout=5)
            if not msg or msg["type"] != "subscribe":
                raise AssertionError("no subscribe confirmation: %r" % (msg,))
            # PUBLISH goes through the log; this node's Redis delivers it to the subscriber
            r.publish(p + "chan", "hello")
            deadline = time.time() + 5
            while time.time() < deadline:
                msg = ps.get_message(timeout=1)
                if msg and msg["type"] == "message":
                    break
            if not msg or msg.get("data") != "hello":
                raise AssertionError("message not received: %r" % (msg,))
        finally:
            ps.close()
            c.close()
    check("%s: SUBSCRIBE receives what PUBLISH sends" % where, subscribe)

    def watch():
        r.set(p + "w", "1")

        def bump(pipe):
            v = int(pipe.get(p + "w"))
            pipe.multi()
            pipe.set(p + "w", v + 1)

        eq(r.transaction(bump, p + "w"), [True])
        eq(r.get(p + "w"), "2")
        # a write by another connection between WATCH and EXEC: WatchError
        other = redis.Redis(port=port, decode_responses=True, **KW)
        with r.pipeline() as pipe:
            pipe.watch(p + "w")
            other.set(p + "w", "x")
            pipe.multi()
            pipe.set(p + "w", "lost")
            try:
                pipe.execute()
                raise AssertionError("EXEC ran although the watched key changed")
            except redis.WatchError:
                pass
        eq(r.get(p + "w"), "x")
        other.close()

    check("%s: WATCH with transaction() and WatchError" % where, watch)

    def blocking():
        r.delete(p + "bl")
        eq(r.blpop(p + "bl", timeout=0.2), None)  # times out: None
        pusher = redis.Redis(port=port, decode_responses=True, **KW)

        def push_later():
            time.sleep(0.3)
            pusher.rpush(p + "bl", "x")

        import threading
        t = threading.Thread(target=push_later)
        t.start()
        eq(r.blpop(p + "bl", timeout=5), (p + "bl", "x"))
        t.join()
        pusher.close()

    check("%s: BLPOP times out with None and wakes on a push" % where, blocking)
    r.close()


def auth():
    c = redis.Redis(port=AUTH_PORT, username="default", password="pw", **KW)
    eq(c.ping(), True)
    eq(c.set("py:auth", "1"), True)
    c.close()
    c = redis.Redis(port=AUTH_PORT, password="pw", **KW)  # AUTH <password> alone
    eq(c.ping(), True)
    c.close()
    c = redis.Redis(port=AUTH_PORT, **KW)
    try:
        c.ping()
        raise AssertionError("PING without AUTH was answered")
    except redis.AuthenticationError:
        pass
    except redis.ResponseError as e:
        if "NOAUTH" not in str(e):
            raise
    c.close()
    c = redis.Redis(port=AUTH_PORT, username="default", password="wrong", **KW)
    try:
        c.ping()
        raise AssertionError("a wrong password was accepted")
    except (redis.AuthenticationError, redis.ResponseError):
        pass
    c.close()


def reconnect():
    r = redis.Redis(port=FOLLOWER, decode_responses=True, **KW)
    eq(r.set("py:re", "before"), True)
    subprocess.run([TMP + "/restart.sh", FOLLOWER_NODE], check=True)
    t0 = time.time()
    eq(retry(lambda: r.get("py:re")), "before")
    eq(retry(lambda: r.set("py:re", "after")), True)
    eq(r.get("py:re"), "after")
    print("  (served again %.1fs after kill -9 and restart)" % (time.time() - t0), flush=True)
    r.close()


def leader_restart():
    """kill -9 the leader and restart it: the client retries (CLUSTERDOWN/TRYAGAIN/connection
    errors) until a write goes through, then reads it on every node."""
    r = redis.Redis(port=LEADER, decode_responses=True, **KW)
    eq(r.set("py:lr", "before"), True)
    subprocess.run([TMP + "/restart.sh", os.environ["RD_LEADER_NODE"]], check=True)
    t0 = time.time()
    eq(retry(lambda: r.set("py:lr", "after"), 20), True)
    eq(retry(lambda: r.get("py:lr"), 20), "after")
    for port in map(int, os.environ["RD_PORTS"].split()):
        eq(retry(lambda: redis.Redis(port=port, decode_responses=True, **KW).get("py:lr"), 20),
           "after")
    print("  (writes through the restarted leader's port again after %.1fs)" % (time.time() - t0),
          flush=True)
    r.close()


if sys.argv[1:] == ["--leader-restart"]:
    check("the client rides out its leader's kill -9 and restart", leader_restart)
    sys.exit(0)

for where, port in (("follower", FOLLOWER), ("leader", LEADER)):
    suite(where, port)
check("AUTH default/pw on a requirepass node (and NOAUTH, wrong password)", auth)
check("the client reconnects after its node is killed -9 and restarted", reconnect)
sys.exit(0)
