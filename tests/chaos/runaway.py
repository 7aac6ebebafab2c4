"""The runaway-script fault: scripts and functions that never end, started through random nodes
while other faults go on, and ended the way an operator would (docs/testing.md, "Chaos").

Kinds of script (one at a time, each through a random node):
  ro-eval      EVAL_RO "while true do end" 0: a read, run by that node's Redis alone
  ro-fcall     FCALL_RO of a function flagged no-writes: the same
  log-eval     EVAL of a loop that only reads: a log entry, so every replica runs it
  log-fcall    FCALL of a function (no flags) that only reads in a loop: the same
  write-eval   EVAL "redis.call('incr', KEYS[1]) while true do end": it wrote, so it cannot be
               killed; SHUTDOWN NOSAVE through a node ends every replica's redis-server, which the
               cluster's supervisor starts again, and the killed entry is a no-op everywhere
A read-only script is killed through its own node (elsewhere SCRIPT KILL answers NOTBUSY); a
script in the log through any node. A kill that gets no reply, -TRYAGAIN, -CLUSTERDOWN or
-TIMEOUT (a leader killed or cut off meanwhile) is sent again, for at most KILL_SECONDS. Every
round ends with a drain: no running node's Redis busy, every redis-server up, every running
node applied past what was committed after the kill.
"""
import random
import threading
import time

import redis

from cluster import call

LIB = """#!lua name=chaosrun
redis.register_function{function_name='chaos_spin_ro', flags={'no-writes'},
  callback=function(keys, args) while true do end end}
redis.register_function('chaos_spin', function(keys, args)
  while true do redis.call('exists', keys[1]) end end)
"""
SPIN_READS = "while true do redis.call('get', KEYS[1]) end"
SPIN_WROTE = "redis.call('incr', KEYS[1]) while true do end"
RUNAWAY_KEY = "chaos:runaway:"  # the INCRs of killed scripts: no replica may ever hold one
KINDS = ("ro-eval", "ro-fcall", "log-eval", "log-fcall", "write-eval")
KILL_SECONDS = 30.0
DRAIN_SECONDS = 60.0
GRACE = 3.0  # seconds a node may stay busy in a drain before the drain kills what runs there
RETRY = ("TRYAGAIN", "CLUSTERDOWN", "TIMEOUT", "LOADING")


def err_text(e):
    return str(e) if isinstance(e, redis.ResponseError) else "%s: %s" % (type(e).__name__, e)


def ask(node, *args, timeout=3.0):
    """(reply, None) or (None, error text); an error reply's text starts with its code."""
    try:
        return call(node.addr, node.port, *args, timeout=timeout), None
    except Exception as e:  # noqa: BLE001 - every outcome is looked at by the caller
        return None, err_text(e)


class ScriptClient(threading.Thread):
    """One connection that sends one never-ending script and waits for its end."""

    def __init__(self, node, args, seconds):
        super().__init__(daemon=True, name="runaway-%s" % node)
        self.node = node
        self.args = args
        self.seconds = seconds
        self.reply = None
        self.err = None  # what ended it, as text
        self.err_reply = False  # ... and it was an error reply (not a lost connection)
        self.sent = threading.Event()

    def run(self):
        c = redis.connection.Connection(host=self.node.addr, port=self.node.port,
                                        socket_timeout=self.seconds, socket_connect_timeout=2.0)
        try:
            c.connect()
            c.send_command("CLIENT", "CONSISTENCY", "eventual")  # a read-only one starts at once
            c.read_response()
            c.send_command(*self.args)
            self.sent.set()
            self.reply = c.read_response()
        except redis.ResponseError as e:
            self.err, self.err_reply = str(e), True
        except Exception as e:  # noqa: BLE001 - the outcome is the point
            self.err = err_text(e)
        finally:
            self.sent.set()
            try:
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass

    def done(self):
        return not self.is_alive()

    def outcome(self):
        return "reply %r" % (self.reply,) if self.err is None else self.err


class Runaway:
    def __init__(self, faults):
        self.f = faults
        self.c = faults.c
        self.problems = []  # for the report: what must never happen
        self.left = []  # scripts a node kept running after every kill of them had committed
        self.counts = {}  # what happened, for the summary line
        self.replies = {}  # what the scripts' clients got
        self.next_key = 0
        self.lib_loaded = False

    def bump(self, d, k):
        d[k] = d.get(k, 0) + 1

    def say(self, msg):
        self.f.say("runaway-script: %s" % msg)

    def problem(self, msg):
        self.say("PROBLEM: %s" % msg)
        self.problems.append(msg)

    def any_node(self, rng):
        ns = self.c.up_nodes()
        return ns[int(rng.random() * len(ns)) % len(ns)] if ns else None

    def through_cluster(self, rng, seconds, *args):
        """A write through random nodes until one takes it (bounded); True if it did."""
        deadline = time.monotonic() + seconds
        last = None
        for _ in range(200):
            if time.monotonic() >= deadline:
                break
            n = self.any_node(rng)
            if n is not None:
                r, last = ask(n, *args, timeout=5.0)
                if last is None:
                    return True
            time.sleep(0.3)
        self.say("%s %s: gave up after %.0fs (%s)" % (args[0], args[1], seconds, last))
        return False

    # ---- an episode
    def episode(self, kind, dur, rnd):
        rng = random.Random(rnd[0])
        ms = rng.choice([50, 100, 250])
        self.through_cluster(rng, 10, "CONFIG", "SET", "busy-reply-threshold", ms)
        if not self.lib_loaded:
            self.lib_loaded = self.through_cluster(rng, 10, "FUNCTION", "LOAD", "REPLACE", LIB)
        self.say("busy-reply-threshold %d ms; scripts for %.1fs" % (ms, dur))
        end = time.monotonic() + dur
        rounds = 0
        while time.monotonic() < end and rounds < 20:
            rounds += 1
            sk = rng.choice(KINDS if self.lib_loaded else ("ro-eval", "log-eval", "write-eval"))
            self.round(sk, rng)
        why = self.drain(rng, DRAIN_SECONDS)
        if why:
            self.problem("after the episode: %s" % why)
        self.f.count(kind)

    def round(self, sk, rng):
        n = self.any_node(rng)
        if n is None:
            self.say("%s: no running node" % sk)
            return
        self.next_key += 1
        key = RUNAWAY_KEY + "%d:%d" % (self.c.seed, self.next_key)
        args = {"ro-eval": ("EVAL_RO", "while true do end", 0),
                "ro-fcall": ("FCALL_RO", "chaos_spin_ro", 0),
                "log-eval": ("EVAL", SPIN_READS, 1, key),
                "log-fcall": ("FCALL", "chaos_spin", 1, key),
                "write-eval": ("EVAL", SPIN_WROTE, 1, key)}[sk]
        cl = ScriptClient(n, args, KILL_SECONDS + DRAIN_SECONDS + 30)
        cl.start()
        cl.sent.wait(5)
        self.bump(self.counts, sk)
        t0 = time.monotonic()
        how = self.kill(sk, n, cl, rng)
        cl.join(15)
        out = "(still waiting)" if cl.is_alive() else cl.outcome()
        self.say("%s through %r: %s after %.1fs; its client: %s" % (
            sk, n, how, time.monotonic() - t0, out))
        self.bump(self.counts, how.split(" (")[0])
        if not cl.is_alive():
            self.bump(self.replies, out[:50])
            if cl.err is None:  # a loop without end cannot return
                self.problem("%s through %r ended with a reply, not an error: %s" % (sk, n, out))
        why = self.drain(rng, DRAIN_SECONDS)
        if why:
            self.problem("after %s through %r: %s" % (sk, n, why))

    def not_run(self, sk, cl):
        """The script's client was told it never ran (so nothing is left to kill)."""
        if not cl.done() or not cl.err_reply or cl.err.startswith("Script killed"):
            return False
        if sk.startswith("ro-"):
            return True  # a read answered with an error never ran
        return cl.err.startswith(("BUSY ", "TRYAGAIN ", "CLUSTERDOWN no leader; the write was not",
                             "CLUSTERDOWN this node is not part"))

    def kill(self, sk, n, cl, rng):
        """Kills cl's script; says how it ended."""
        fn = sk.endswith("fcall")
        deadline = time.monotonic() + KILL_SECONDS
        tries = 0
        wrong_done = rng.random() >= 0.15  # now and then the other kind first: -BUSY
        other_done = not sk.startswith("ro-") or rng.random() >= 0.3
        last = None
        while time.monotonic() < deadline and tries < 300:
            tries += 1
            if self.not_run(sk, cl):
                return "not run (%s)" % cl.err[:40]
            via = n if sk.startswith("ro-") else self.any_node(rng)
            if not other_done:
                other_done = True
                o = self.any_node(rng)
                if o is not None and o is not n:
                    r, e = ask(o, "SCRIPT", "KILL")
                    self.bump(self.counts, "ro kill elsewhere: %s" % (e or r)[:20])
            if via is None or not via.up():
                time.sleep(0.2)
                continue
            use_fn = fn if wrong_done else not fn
            r, e = ask(via, "FUNCTION" if use_fn else "SCRIPT", "KILL", timeout=5.0)
            last = e or r
            if e is None:
                if not wrong_done:
                    self.problem("%s: %s KILL of the other kind through %r answered %r" % (
                        sk, "FUNCTION" if use_fn else "SCRIPT", via, r))
                if sk == "write-eval":
                    self.problem("%s through %r: a script that wrote was killed via %r" % (
                        sk, n, via))
                return "killed (via %r, %d tries)" % (via, tries)
            if e.startswith("UNKILLABLE"):
                if sk != "write-eval":
                    self.problem("%s through %r: kill via %r answered %s" % (sk, n, via, e))
                return self.shutdown(rng, via, tries)
            if e.startswith("BUSY") and not wrong_done:
                wrong_done = True
                continue
            if e.startswith("NOTBUSY") and cl.done() and not cl.err_reply:
                # Its client lost its connection: the script may be in the log or not.
                return "unknown (%s; the drain ends it if it runs)" % cl.err[:40]
            if not e.startswith(RETRY + ("NOTBUSY", "BUSY")):
                self.bump(self.counts, "kill answered %s" % e[:30])
            time.sleep(0.1 if e.startswith("NOTBUSY") else 0.2)
        self.problem("%s through %r: not killed in %.0fs (last answer: %s)" % (
            sk, n, KILL_SECONDS, last))
        return "not killed"

    def shutdown(self, rng, first, tries):
        """SHUTDOWN NOSAVE through the cluster, retried while it gets no decision."""
        deadline = time.monotonic() + KILL_SECONDS
        via = first
        last = None
        for _ in range(100):
            if time.monotonic() >= deadline:
                break
            if via is not None and via.up():
                self.c.shutdown_sent()
                r, e = ask(via, "SHUTDOWN", "NOSAVE", timeout=10.0)
                last = e or r
                if e is None:
                    return "unkillable, shut down (via %r, %d kill tries)" % (via, tries)
                if e.startswith("SHUTDOWN is not allowed"):
                    # No script runs there any more: an earlier try that got no reply did it.
                    return "unkillable, shut down (via %r, %d kill tries, %s)" % (
                        via, tries, "an earlier try")
            time.sleep(0.3)
            via = self.any_node(rng)
        self.problem("SHUTDOWN NOSAVE: no decision in %.0fs (last answer: %s)" % (KILL_SECONDS,
                                                                                 last))
        return "unkillable, not shut down"

    # ---- nothing left running
    def drain(self, rng, seconds):
        """Until every running node's Redis is up and not busy, and each applied past what was
        committed when the drain began: kills what still runs (a node that came back and ran an
        entry, a script whose client lost its connection). None, or why not."""
        deadline = time.monotonic() + seconds
        target = 0
        why = ""
        kills = 0
        since = {}  # node -> when it was first seen busy in a row
        while time.monotonic() < deadline:
            ms = self.c.members()
            infos = {n: n.info_raft(timeout=1.0) if n.up() else None for n in ms}
            if not target:
                target = max([int(i.get("commit_index", 0) or 0) for i in infos.values() if i]
                             or [0])
            waiting = []
            for n, i in infos.items():
                if n.redis is None or not n.redis.alive():
                    if n.redis is not None and not n.redis.killed_by_us:
                        waiting.append("%r's redis-server is down" % n)
                    continue
                if i is None:
                    continue  # down or stopped by another fault: it kills on its own return
                st = i.get("local_redis")
                if st != "busy":
                    since.pop(n, None)
                elif time.monotonic() - since.setdefault(n, time.monotonic()) > GRACE \
                        and kills < 50:
                    # A node that re-runs a killed entry (its Redis came back empty) kills it
                    # itself, from the kill entry after it: only what it leaves is killed here.
                    kills += 1
                    since.pop(n, None)
                    self.bump(self.counts, "drain kills")
                    r, e = ask(n, "SCRIPT", "KILL", timeout=5.0)
                    chain = ["SCRIPT KILL: %s" % (e or r)]
                    if e and e.startswith("BUSY"):
                        r, e = ask(n, "FUNCTION", "KILL", timeout=5.0)
                        chain.append("FUNCTION KILL: %s" % (e or r))
                    if e and e.startswith("UNKILLABLE"):
                        self.c.shutdown_sent()
                        r, e = ask(n, "SHUTDOWN", "NOSAVE", timeout=10.0)
                        chain.append("SHUTDOWN NOSAVE: %s" % (e or r))
                    msg = "%r still busy %.0f s after the kills had committed (the drain's %s;" \
                        " see %s)" % (n, GRACE, ", ".join(c[:40] for c in chain), n.log_path())
                    self.say("drain: " + msg)
                    if not (e or "").startswith("NOTBUSY"):  # it ended by itself meanwhile
                        self.left.append(msg)
                if st != "up":
                    waiting.append("%r's redis is %s" % (n, st))
                elif int(i.get("applied_index", 0) or 0) < target:
                    waiting.append("%r applied %s < %d" % (n, i.get("applied_index"), target))
            if not waiting:
                return None
            why = ", ".join(waiting)
            time.sleep(0.2)
        return "not drained after %.0fs: %s" % (seconds, why)

    def summary(self):
        return "%s; clients got: %s" % (
            ", ".join("%s %d" % kv for kv in sorted(self.counts.items())) or "nothing",
            "; ".join("%dx %s" % (v, k) for k, v in sorted(self.replies.items(),
                                                          key=lambda kv: -kv[1])) or "nothing")
