"""Client threads that drive redraft during a chaos run, and the history they record.

Each worker is one client at one consistency level. It runs one operation at a time, recording
when it was invoked and when it completed, and how: ok, fail (certainly not applied) or info
(unknown: the write may have happened). A worker whose operation ended in info continues as a new
process id, since the old one may still be "in flight" for the checker.

Operations (values are unique integers across the whole run, so a value read tells which write
it came from and which key that write was for):
  register keys  read (GET), write (SET), cas (a Lua compare-and-set: 1 = done, 0 = fail)
  list keys      append (RPUSH), readlist (LRANGE, half of them inside MULTI/EXEC)
  counter keys   incr (INCR); SESSION and EVENTUAL workers also read them (GET)
A -BUSY reply (a runaway script on that node) is a fail: the write was not proposed.
With scripts_random (CHAOS_SCRIPTS_RANDOM=1), one more client runs scripts that call TIME and
the random commands and write what they got (no history: for the replica comparison).
Keys move to a new generation every KEY_OPS operations, so each key's history stays short
enough to check.
"""
import random
import threading
import time

import redis

CAS_LUA = ("if redis.call('get',KEYS[1])==ARGV[1] then redis.call('set',KEYS[1],ARGV[2]) "
           "return 1 else return 0 end")
LEVELS = ("linearizable", "session", "eventual")
SHORT = {"linearizable": "lin", "session": "ses", "eventual": "evt"}
KEY_OPS = 150  # operations per key before the workload moves to the next generation
SLOTS = {"r": 3, "l": 2, "c": 2}
# Replies that promise the write was not applied (docs/consistency.md, proxy/route.c). BUSY
# is one: while its Redis runs a script past busy-reply-threshold a node answers every data
# command with Redis's own -BUSY before it routes it (proxy/server.c), so such a write was
# never proposed; one proposed before the node saw the script waits for it instead (the apply
# path retries BUSY), and ends ok, or info on a timeout.
NOT_APPLIED = ("CLUSTERDOWN no leader; the write was not applied",
               "CLUSTERDOWN this node is not part of a cluster yet", "TRYAGAIN ", "BUSY ")
WRITES = ("write", "cas", "incr", "append")


class Op:
    __slots__ = ("pid", "conn", "node", "level", "f", "key", "value", "type", "out", "t0",
                 "t1", "err")

    def __init__(self, pid, conn, node, level, f, key, value):
        self.pid, self.conn, self.node, self.level = pid, conn, node, level
        self.f, self.key, self.value = f, key, value
        self.type = None
        self.out = None
        self.t0 = self.t1 = 0
        self.err = None

    def __repr__(self):
        return "%s %s %s %s in=%s out=%s [%d..%d] pid=%d conn=%d node=%s%s" % (
            self.level, self.type, self.f, self.key, fmt_value(self.f, self.value),
            fmt_value(self.f, self.out), self.t0, self.t1, self.pid, self.conn, self.node,
            " err=%r" % self.err if self.err else "")


def fmt_value(f, v):
    if v is None:
        return "_" if f in ("read", "incr", "readlist") else "nil"
    if f == "cas":
        return "%s:%s" % v
    if f == "readlist":
        return ",".join(str(x) for x in v) if v else "[]"
    return str(v)


def history_lines(ops):
    """The history file's lines for ops, ordered by time (an invoke before a completion at the
    same instant, which only makes the checker more lenient)."""
    events = []
    for op in ops:
        inv = "_" if op.f in ("read", "incr", "readlist") else fmt_value(op.f, op.value)
        events.append((op.t0, 0, "%d invoke %s %s %s %d" % (op.pid, op.f, op.key, inv, op.t0)))
        if op.type == "ok":
            out = fmt_value(op.f, op.out) if op.f in ("read", "incr", "readlist") else inv
            if op.f == "read" and op.out is None:
                out = "nil"
        else:
            out = inv
        events.append((op.t1, 1, "%d %s %s %s %s %d" % (op.pid, op.type, op.f, op.key, out,
                                                        op.t1)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


class Workload:
    def __init__(self, cluster, seed, per_level=3, timeout=5.0, scripts_random=False):
        self.cluster = cluster
        self.scripts_random = scripts_random
        self.random_counts = {}  # script name -> {"ok": n, error text: n}
        self.seed = seed
        self.timeout = timeout
        self.per_level = per_level
        self.lock = threading.Lock()
        self.ops = []
        self.next_value = 0
        self.next_pid = 0
        self.next_conn = 0
        self.key_ops = {}
        self.stop = threading.Event()
        self.violations = []  # (what, detail) seen while running: wrong replies, echo mismatch
        self.errors = {}  # error message -> count
        self.threads = []
        self.misc_writes = 0

    # ---- shared counters
    def value(self):
        with self.lock:
            self.next_value += 1
            return self.next_value

    def pid(self):
        with self.lock:
            self.next_pid += 1
            return self.next_pid

    def conn_id(self):
        with self.lock:
            self.next_conn += 1
            return self.next_conn

    def key(self, level, kind, slot):
        with self.lock:
            k = (level, kind, slot)
            n = self.key_ops.get(k, 0)
            self.key_ops[k] = n + 1
        return "%s:%s%d:g%d" % (SHORT[level], kind, slot, n // KEY_OPS)

    def record(self, op):
        with self.lock:
            self.ops.append(op)

    def violation(self, what, detail):
        with self.lock:
            self.violations.append((what, detail))

    def count_error(self, msg):
        msg = msg[:60]
        with self.lock:
            self.errors[msg] = self.errors.get(msg, 0) + 1

    def targets(self):
        """Nodes a client may connect to: members whose redraft runs (stopped ones included:
        clients of a paused node time out, as real ones would)."""
        return [n for n in self.cluster.members() if n.redraft_alive()]

    # ---- running
    def start(self, seconds):
        deadline = time.monotonic() + seconds
        k = 0
        for level in LEVELS:
            for i in range(self.per_level):
                k += 1
                t = Worker(self, level, random.Random(self.seed * 1000 + k), deadline)
                t.name = "%s-%d" % (SHORT[level], i)
                self.threads.append(t)
        m = MiscWriter(self, random.Random(self.seed * 1000 + 999), deadline)
        self.threads.append(m)
        if self.scripts_random:
            self.threads.append(RandomScripts(self, random.Random(self.seed * 1000 + 998),
                                              deadline))
        for t in self.threads:
            t.daemon = True
            t.start()

    def finish(self, seconds=15):
        self.stop.set()
        deadline = time.monotonic() + seconds
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def count_random(self, name, outcome):
        with self.lock:
            d = self.random_counts.setdefault(name, {})
            d[outcome] = d.get(outcome, 0) + 1

    def random_summary(self):
        with self.lock:
            return "; ".join("%s: %s" % (name, ", ".join("%d %s" % (n, o) for o, n in sorted(
                d.items(), key=lambda kv: -kv[1])[:3])) for name, d in sorted(
                    self.random_counts.items())) or "none ran"

    def by_level(self, level):
        with self.lock:
            return [op for op in self.ops if op.level == level]


class Worker(threading.Thread):
    def __init__(self, wl, level, rng, deadline):
        super().__init__()
        self.wl = wl
        self.level = level
        self.rng = rng
        self.deadline = deadline
        self.conn = None
        self.conn_id = 0
        self.node = None
        self.pid = wl.pid()
        self.ops_left = 0
        self.known = {}  # register key -> a value this client last saw there

    def running(self):
        return not self.wl.stop.is_set() and time.monotonic() < self.deadline

    def disconnect(self):
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass
        self.conn = None

    def connect(self):
        nodes = self.wl.targets()
        if not nodes:
            return False
        n = self.rng.choice(nodes)
        c = redis.connection.Connection(host=n.addr, port=n.port, socket_timeout=self.wl.timeout,
                                        socket_connect_timeout=1.0)
        try:
            c.connect()
            c.send_command("CLIENT", "CONSISTENCY", self.level)
            if c.read_response() not in (b"OK", "OK"):
                raise redis.ResponseError("CLIENT CONSISTENCY refused")
        except Exception:  # noqa: BLE001 - that node is down or cut off: try another later
            try:
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass
            return False
        self.conn, self.node = c, n
        self.conn_id = self.wl.conn_id()
        self.ops_left = self.rng.randrange(30, 120)
        return True

    def run(self):
        while self.running():
            if self.conn is None or self.ops_left <= 0:
                self.disconnect()
                if not self.connect():
                    time.sleep(0.1)
                    continue
            self.ops_left -= 1
            self.one()
            time.sleep(self.rng.uniform(0.002, 0.02))
        self.disconnect()

    def choose(self):
        r = self.rng.random()
        if r < 0.45:
            key = self.wl.key(self.level, "r", self.rng.randrange(SLOTS["r"]))
            x = self.rng.random()
            if x < 0.45:
                return "read", key, None
            if x < 0.8 or key not in self.known:
                return "write", key, self.wl.value()
            return "cas", key, (self.known[key], self.wl.value())
        if r < 0.8:
            key = self.wl.key(self.level, "l", self.rng.randrange(SLOTS["l"]))
            if self.rng.random() < 0.6:
                return "append", key, self.wl.value()
            return "readlist", key, None
        key = self.wl.key(self.level, "c", self.rng.randrange(SLOTS["c"]))
        if self.level != "linearizable" and self.rng.random() < 0.4:
            return "read", key, None
        return "incr", key, None

    def one(self):
        f, key, value = self.choose()
        op = Op(self.pid, self.conn_id, self.node.slot, self.level, f, key, value)
        echo = None
        if f != "readlist" and self.rng.random() < 0.3:
            echo = "echo-%d-%d" % (self.conn_id, self.wl.value())
        multi = f == "readlist" and self.rng.random() < 0.5
        op.t0 = time.monotonic_ns()
        try:
            reply = self.send(f, key, value, echo, multi)
            op.t1 = time.monotonic_ns()
            self.interpret(op, reply)
        except redis.ResponseError as e:
            op.t1 = time.monotonic_ns()
            msg = str(e)
            op.err = msg
            self.wl.count_error(msg)
            if f in WRITES and not msg.startswith(NOT_APPLIED):
                op.type = "info"
            else:
                op.type = "fail"
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            op.t1 = time.monotonic_ns()
            op.err = "%s: %s" % (type(e).__name__, e)
            self.wl.count_error(type(e).__name__)
            op.type = "info" if f in WRITES else "fail"
            self.disconnect()
        except BadReply as e:
            op.t1 = time.monotonic_ns()
            op.err = str(e)
            self.wl.violation("wrong reply", "%r: %s" % (op, e))
            op.type = "info" if f in WRITES else "fail"
            self.disconnect()
        if op.type == "ok" and f in ("write", "cas"):
            self.known[key] = value if f == "write" else value[1]
        elif op.type == "ok" and f == "read" and op.out is not None and ":r" in key:
            self.known[key] = op.out
        self.wl.record(op)
        if op.type == "info":
            self.pid = self.wl.pid()

    def send(self, f, key, value, echo, multi):
        c = self.conn
        if f == "read":
            cmds = [("GET", key)]
        elif f == "write":
            cmds = [("SET", key, value)]
        elif f == "cas":
            cmds = [("EVAL", CAS_LUA, 1, key, value[0], value[1])]
        elif f == "incr":
            cmds = [("INCR", key)]
        elif f == "append":
            cmds = [("RPUSH", key, value)]
        elif multi:
            cmds = [("MULTI",), ("LRANGE", key, 0, -1), ("EXEC",)]
        else:
            cmds = [("LRANGE", key, 0, -1)]
        if echo:
            cmds.append(("ECHO", echo))
        c.send_packed_command(c.pack_commands(cmds))
        replies = []
        first_err = None
        for _ in cmds:
            try:
                replies.append(c.read_response())
            except redis.ResponseError as e:
                replies.append(e)
                if first_err is None:
                    first_err = e
        if echo:
            got = replies.pop()
            if got != echo.encode():
                raise BadReply("ECHO %s answered %r" % (echo, got))
        if multi:
            if replies[0] != b"OK" or not (replies[1] == b"QUEUED"
                                           or isinstance(replies[1], Exception)):
                raise BadReply("MULTI/LRANGE answered %r" % replies[:2])
            reply = replies[2]
            if isinstance(reply, Exception):
                raise reply
            if isinstance(reply, list) and len(reply) == 1:
                reply = reply[0]
                if isinstance(reply, Exception):
                    raise reply
            else:
                raise BadReply("EXEC answered %r" % (reply,))
            return reply
        if first_err is not None:
            raise first_err
        return replies[0]

    def interpret(self, op, reply):
        f = op.f
        op.type = "ok"
        if f == "read":
            op.out = None if reply is None else as_int(reply, op)
            if op.out is None and ":c" in op.key:
                op.out = 0
        elif f == "write":
            if reply != b"OK":
                raise BadReply("SET answered %r" % (reply,))
        elif f == "cas":
            if reply == 0:
                op.type = "fail"
            elif reply != 1:
                raise BadReply("CAS answered %r" % (reply,))
        elif f == "incr":
            if not isinstance(reply, int):
                raise BadReply("INCR answered %r" % (reply,))
            op.out = reply
        elif f == "append":
            if not isinstance(reply, int) or reply < 1:
                raise BadReply("RPUSH answered %r" % (reply,))
        elif f == "readlist":
            if not isinstance(reply, list):
                raise BadReply("LRANGE answered %r" % (reply,))
            op.out = [as_int(x, op) for x in reply]


class BadReply(Exception):
    pass


def as_int(b, op):
    try:
        return int(b)
    except (TypeError, ValueError):
        raise BadReply("%s %s answered a non-integer %r" % (op.f, op.key, b)) from None


class MiscWriter(threading.Thread):
    """Writes other types and expiring keys (no history): more for the replicas to agree on,
    including absolute expiry times made from the leader's (possibly faked) clock."""

    def __init__(self, wl, rng, deadline):
        super().__init__(name="misc")
        self.wl = wl
        self.rng = rng
        self.deadline = deadline

    def run(self):
        conn = None
        while not self.wl.stop.is_set() and time.monotonic() < self.deadline:
            try:
                if conn is None:
                    nodes = self.wl.targets()
                    if not nodes:
                        time.sleep(0.2)
                        continue
                    n = self.rng.choice(nodes)
                    conn = redis.connection.Connection(host=n.addr, port=n.port,
                                                       socket_timeout=self.wl.timeout,
                                                       socket_connect_timeout=1.0)
                    conn.connect()
                self.one(conn)
            except redis.ResponseError as e:
                self.refused(e)
            except Exception as e:  # noqa: BLE001 - node down: another one next time
                self.lost(e)
                try:
                    if conn is not None:
                        conn.disconnect()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            time.sleep(self.rng.uniform(0.02, 0.08))
        if conn is not None:
            conn.disconnect()

    def one(self, conn):
        i = self.rng.randrange(20)
        v = self.wl.value()
        cmd = self.rng.choice([
            ("SET", "misc:ttl:%d" % i, v, "PX", 3600000),
            ("HSET", "misc:h:%d" % (i % 5), "f%d" % (v % 7), v),
            ("ZADD", "misc:z:%d" % (i % 3), v % 101, "m%d" % (v % 13)),
            ("SADD", "misc:s:%d" % (i % 3), v % 50),
            ("EXPIRE", "misc:h:%d" % (i % 5), 7200),
            ("SETEX", "misc:ex:%d" % i, 5400, v),
            ("DEL", "misc:ttl:%d" % ((i + 7) % 20)),
        ])
        conn.send_command(*cmd)
        conn.read_response()
        self.wl.misc_writes += 1

    def refused(self, e):
        pass

    def lost(self, e):
        pass


# name -> (script, number of keys): each calls TIME or a random command and writes what it got,
# so that a replica that got something else holds something else.
RANDOM_SCRIPTS = {
    "time": ("local t = redis.call('TIME') redis.call('SET', KEYS[1], t[1] .. '.' .. t[2]) "
             "return t[1]", 1),
    "srandmember": ("redis.call('SADD', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) "
                    "local m = redis.call('SRANDMEMBER', KEYS[1]) "
                    "return redis.call('RPUSH', KEYS[2], m)", 2),
    "spop": ("redis.call('SADD', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) "
             "local m = redis.call('SPOP', KEYS[1]) return redis.call('RPUSH', KEYS[2], m)", 2),
    "hrandfield": ("redis.call('HSET', KEYS[1], 'f' .. ARGV[1], ARGV[1], 'g' .. ARGV[2], 1) "
                   "local f = redis.call('HRANDFIELD', KEYS[1]) "
                   "return redis.call('RPUSH', KEYS[2], f)", 2),
    "zrandmember": ("redis.call('ZADD', KEYS[1], ARGV[1], 'm' .. ARGV[1], ARGV[2], 'n' .. ARGV[2]) "
                    "local m = redis.call('ZRANDMEMBER', KEYS[1]) "
                    "return redis.call('RPUSH', KEYS[2], m)", 2),
    "randomkey": ("local k = redis.call('RANDOMKEY') "
                  "return redis.call('RPUSH', KEYS[1], k or '(none)')", 1),
    "xadd": ("local id = redis.call('XADD', KEYS[1], '*', 'v', ARGV[1]) "
             "return redis.call('RPUSH', KEYS[2], id)", 2),
    "expire": ("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('EXPIRE', KEYS[1], 3600)",
               1),
}


class RandomScripts(MiscWriter):
    """EVALs of RANDOM_SCRIPTS (and the bare SPOP and XADD *), each outcome counted: every
    replica must end up with the same keys, whatever each replica's Redis computed."""

    NAMES = sorted(RANDOM_SCRIPTS) + ["bare-spop", "bare-xadd"]

    def __init__(self, wl, rng, deadline):
        super().__init__(wl, rng, deadline)
        self.name = "random-scripts"
        self.last = None

    def command(self, name, i, v):
        if name == "bare-spop":
            return ("SPOP", "rnd:s:%d" % i)
        if name == "bare-xadd":
            return ("XADD", "rnd:xs:%d" % i, "*", "v", v)
        script, nkeys = RANDOM_SCRIPTS[name]
        keys = ["rnd:%s:%d" % (name, i), "rnd:%s:out:%d" % (name, i)][:nkeys]
        return ("EVAL", script, nkeys) + tuple(keys) + (v, v + 1, v + 2)

    def one(self, conn):
        self.last = name = self.rng.choice(self.NAMES)
        if name == "bare-spop" and self.rng.random() < 0.5:
            conn.send_command("SADD", "rnd:s:%d" % (self.rng.randrange(5)), 1, 2, 3)
            conn.read_response()
        conn.send_command(*self.command(name, self.rng.randrange(5), self.wl.value()))
        conn.read_response()
        self.wl.count_random(name, "ok")

    def refused(self, e):
        self.wl.count_random(self.last or "(connect)", str(e)[:50])

    def lost(self, e):
        self.wl.count_random(self.last or "(connect)", type(e).__name__)
