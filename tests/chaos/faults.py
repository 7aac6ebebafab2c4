"""The fault schedule of a chaos run and the code that injects each kind.

The schedule is a list of episodes (start time, kind, duration, random numbers for the kind's
choices) made from the seed alone, so the same seed gives the same schedule. Which node is leader
when an episode starts depends on timing, so a replay hits the same kinds at the same times but
not always the same nodes; every action is printed with the node it hit.
"""
import random
import signal
import threading
import time

from cluster import call, log, members_of
from runaway import Runaway

# kind: (needs, shortest, longest episode in seconds)
KINDS = {
    "partition-leader": ("iptables", 2.0, 5.0),  # the leader (with 5 nodes: and one more) alone
    "partition-split": ("iptables", 2.0, 5.0),  # a random minority | majority
    "partition-bridge": ("iptables", 2.0, 5.0),  # two sides that only one node links (ring: 5)
    "partition-oneway": ("iptables", 2.0, 5.0),  # the leader's packets out, or in, dropped
    "partition-flap": ("iptables", 3.0, 6.0),  # partitions switched on and off every 0.2-1 s
    "packet-loss": ("iptables", 2.0, 5.0),  # every link drops 5-30% of its packets
    "kill-leader": ("", 1.0, 4.0),  # kill -9 of the leader's redraft, restarted after
    "kill-majority": ("", 1.0, 3.0),  # kill -9 of a majority of redrafts
    "kill-all": ("", 0.5, 2.0),  # kill -9 of every redraft
    "pause": ("", 1.0, 4.0),  # SIGSTOP (longer than an election timeout), then SIGCONT
    "redis-restart": ("", 0.3, 2.0),  # kill -9 of a redis-server, restarted empty
    "clock-jump": ("faketime", 2.0, 5.0),  # one node's CLOCK_REALTIME jumps by +-30..600 s
    "clock-rate": ("faketime", 2.0, 5.0),  # one node's clocks run 0.25..4 times as fast
    "stale-leader": ("iptables,faketime", 3.0, 6.0),  # a leader cut off, its clocks slowed
    "member-replace": ("", 4.0, 8.0),  # RAFT.NODE REMOVE a follower, then a fresh node joins
    "member-remove-leader": ("", 4.0, 8.0),  # RAFT.NODE REMOVE of the leader, then a new node
    "member-during-fault": ("iptables", 4.0, 8.0),  # a replacement under packet loss
    "power-loss": ("powerfs", 0.5, 2.0),  # one node loses what it did not fsync
    "power-loss-all": ("powerfs", 0.5, 2.0),  # every node at once
    "snapshot-install": ("", 1.0, 3.0),  # a follower far behind gets a snapshot; a fault hits it
    "runaway-script": ("", 4.0, 10.0),  # scripts that never end, killed (runaway.py)
}
# Kinds that run beside the episodes after them: the next one starts 1-3 s after this one did,
# so that they hit a cluster busy with it (a kill while the leader is killed or cut off). One
# of each at a time: a second one that comes while the first runs is skipped.
BACKGROUND = ("runaway-script",)
# What the short run of `make test` draws from; the first two always come first.
SHORT_KINDS = ["partition-leader", "kill-leader", "partition-split", "partition-oneway",
               "packet-loss", "pause", "redis-restart", "power-loss", "clock-rate", "stale-leader"]


def make_schedule(seed, kinds, start, end):
    """Episodes [(t, kind, duration, rnd)] from start to end: every kind of `kinds` once first
    (in an order the seed picks; the first two of `kinds` stay first), then random ones."""
    rng = random.Random(seed)
    head, rest = list(kinds[:2]), list(kinds[2:])
    rng.shuffle(rest)
    order = head + rest
    sched = []
    t = start
    while True:
        kind = order.pop(0) if order else rng.choice(kinds)
        _, lo, hi = KINDS[kind]
        dur = round(rng.uniform(lo, hi), 2)
        rnd = [rng.random() for _ in range(8)]
        if t + dur > end:
            break
        sched.append((round(t, 2), kind, dur, rnd))
        t += (0 if kind in BACKGROUND else dur) + rng.uniform(1.0, 3.0)
    return sched


def pick(seq, r):
    seq = list(seq)
    return seq[int(r * len(seq)) % len(seq)] if seq else None


class Faults:
    def __init__(self, cluster, firewall, t0):
        self.c = cluster
        self.fw = firewall
        self.t0 = t0
        self.injected = {}
        self.skipped = {}
        self.notes = []
        self.runaway = Runaway(self)
        self.background = {}  # kind -> its thread
        self.lock = threading.Lock()

    def say(self, msg):
        log("[%6.1fs] %s" % (time.monotonic() - self.t0, msg))

    def count(self, kind, done=True, why=""):
        d = self.injected if done else self.skipped
        with self.lock:
            d[kind] = d.get(kind, 0) + 1
        if not done:
            self.say("%s: skipped (%s)" % (kind, why))

    def run_episode(self, kind, dur, rnd):
        fn = getattr(self, "f_" + kind.replace("-", "_"))
        if kind not in BACKGROUND:
            return fn(kind, dur, rnd)
        prev = self.background.get(kind)
        if prev is not None and prev.is_alive():
            # Waiting here would push the whole schedule back (and past the run's end).
            return self.count(kind, False, "the one before still runs")

        def run():
            try:
                fn(kind, dur, rnd)
            except Exception as e:  # noqa: BLE001 - reported, the run goes on
                self.runaway.problem("%s: %s: %s" % (kind, type(e).__name__, e))

        t = threading.Thread(target=run, name=kind, daemon=True)
        self.background[kind] = t
        t.start()

    def wait_background(self, seconds):
        """Waits for the episodes still running beside; the kinds that did not end."""
        deadline = time.monotonic() + seconds
        for t in self.background.values():
            t.join(max(0.1, deadline - time.monotonic()))
        return [k for k, t in self.background.items() if t.is_alive()]

    # ---- helpers
    def leader(self, wait=3.0):
        """The leader; an episode that needs one waits a little for an election to finish."""
        deadline = time.monotonic() + wait
        while True:
            ld = self.c.leader()
            if ld is not None or time.monotonic() >= deadline:
                return ld
            time.sleep(0.1)

    def others(self, nodes):
        return [n for n in self.c.members() if n not in nodes]

    def hold(self, dur):
        time.sleep(max(0.0, dur))

    def restart(self, nodes, redis_too=False):
        for n in nodes:
            if redis_too and (n.redis is None or not n.redis.alive()):
                n.start_redis()
            if not n.redraft_alive():
                try:
                    n.start_redraft(wait=True)
                    n.restarts += 1
                except RuntimeError as e:
                    self.say("WARNING: %s" % e)

    # ---- partitions
    def held(self, kind, dur):
        """The rules just added stay for dur seconds, then go."""
        self.count(kind)
        self.hold(dur)
        self.fw.heal()

    def partition(self, kind, dur, groups):
        self.say("%s: %s for %.1fs" % (kind, " | ".join(" ".join(map(repr, g)) for g in groups),
                                       dur))
        self.fw.partition(*groups)
        self.held(kind, dur)

    def f_partition_leader(self, kind, dur, rnd):
        ld = self.leader()
        if ld is None:
            return self.count(kind, False, "no leader")
        side = [ld]
        rest = self.others(side)
        if len(self.c.members()) >= 5:
            side.append(pick(rest, rnd[0]))
            rest = self.others(side)
        self.partition(kind, dur, [side, rest])

    def f_partition_split(self, kind, dur, rnd):
        ms = list(self.c.members())
        random.Random(rnd[0]).shuffle(ms)
        k = len(ms) // 2
        self.partition(kind, dur, [ms[:k], ms[k:]])

    def f_partition_bridge(self, kind, dur, rnd):
        ms = list(self.c.members())
        random.Random(rnd[0]).shuffle(ms)
        if len(ms) >= 5 and rnd[1] < 0.5:
            self.say("%s: ring %s for %.1fs" % (kind, " - ".join(map(repr, ms)), dur))
            for i, a in enumerate(ms):
                for j, b in enumerate(ms):
                    if i < j and (j - i) not in (1, len(ms) - 1):
                        self.fw.cut(a, b)
        else:
            bridge, k = ms[0], (len(ms) - 1) // 2
            left, right = ms[1:1 + k], ms[1 + k:]
            self.say("%s: %s - bridge %r - %s for %.1fs" % (
                kind, " ".join(map(repr, left)), bridge, " ".join(map(repr, right)), dur))
            self.fw.partition(left, right)
        self.held(kind, dur)

    def f_partition_oneway(self, kind, dur, rnd):
        ld = self.leader()
        if ld is None:
            return self.count(kind, False, "no leader")
        out = rnd[0] < 0.5
        for n in self.others([ld]):
            if out:
                self.fw.block(ld, n)
            else:
                self.fw.block(n, ld)
        self.say("%s: %r's packets %s dropped for %.1fs" % (kind, ld, "out" if out else "in",
                                                             dur))
        self.held(kind, dur)

    def f_partition_flap(self, kind, dur, rnd):
        rng = random.Random(rnd[0])
        end = time.monotonic() + dur
        flips = 0
        self.say("%s: for %.1fs" % (kind, dur))
        while time.monotonic() < end:
            ms = list(self.c.members())
            rng.shuffle(ms)
            k = max(1, len(ms) // 2)
            self.fw.partition(ms[:k], ms[k:])
            flips += 1
            time.sleep(min(rng.uniform(0.2, 1.0), max(0.0, end - time.monotonic())))
            self.fw.heal()
            time.sleep(min(rng.uniform(0.1, 0.6), max(0.0, end - time.monotonic())))
        self.say("%s: %d partitions" % (kind, flips))
        self.count(kind)

    def f_packet_loss(self, kind, dur, rnd):
        p = 0.05 + rnd[0] * 0.25
        ms = self.c.members()
        for i, a in enumerate(ms):
            for b in ms[i + 1:]:
                self.fw.cut(a, b, loss=p)
        self.say("%s: %.0f%% on every link for %.1fs" % (kind, p * 100, dur))
        self.held(kind, dur)

    # ---- processes
    def kill(self, kind, dur, nodes):
        self.say("%s: kill -9 %s, down for %.1fs" % (kind, " ".join(map(repr, nodes)), dur))
        for n in nodes:
            n.kill_redraft()
        self.count(kind)
        self.hold(dur)
        self.restart(nodes)
        self.say("%s: %s restarted" % (kind, " ".join(map(repr, nodes))))

    def f_kill_leader(self, kind, dur, rnd):
        ld = self.leader()
        if ld is None:
            return self.count(kind, False, "no leader")
        self.kill(kind, dur, [ld])

    def f_kill_majority(self, kind, dur, rnd):
        ms = [n for n in self.c.members() if n.redraft_alive()]
        random.Random(rnd[0]).shuffle(ms)
        self.kill(kind, dur, ms[:len(self.c.members()) // 2 + 1])

    def f_kill_all(self, kind, dur, rnd):
        self.kill(kind, dur, [n for n in self.c.members() if n.redraft_alive()])

    def f_pause(self, kind, dur, rnd):
        ld = self.leader()
        n = ld if (rnd[0] < 0.6 and ld is not None) else pick(self.c.up_nodes(), rnd[1])
        if n is None:
            return self.count(kind, False, "no running node")
        dur = max(dur, 2 * self.c.election_ms / 1000.0)
        self.say("%s: SIGSTOP %r%s for %.1fs" % (kind, n, " (leader)" if n is ld else "", dur))
        n.stop()
        self.count(kind)
        self.hold(dur)
        n.cont()

    def f_redis_restart(self, kind, dur, rnd):
        ld = self.leader()
        n = ld if (rnd[0] < 0.4 and ld is not None) else pick(self.c.up_nodes(), rnd[1])
        if n is None:
            return self.count(kind, False, "no running node")
        self.say("%s: kill -9 the redis-server of %r, restarted empty after %.1fs" % (kind, n,
                                                                                     dur))
        n.kill_redis()
        n.wipe_redis()
        self.count(kind)
        self.hold(dur)
        n.start_redis()

    # ---- clocks
    def clock_node(self, mode):
        for n in self.c.members():
            if n.clock == mode and n.redraft_alive():
                return n
        return None

    def f_clock_jump(self, kind, dur, rnd):
        n = self.clock_node("realtime")
        if n is None:
            return self.count(kind, False, "the node with a faked CLOCK_REALTIME is gone")
        off = (30 + rnd[0] * 570) * (1 if rnd[1] < 0.5 else -1)
        self.say("%s: %r's CLOCK_REALTIME jumps %+.0fs for %.1fs" % (kind, n, off, dur))
        n.set_clock(offset=off)
        self.count(kind)
        self.hold(dur)
        n.set_clock(offset=0.0)

    def f_clock_rate(self, kind, dur, rnd):
        n = self.clock_node("rate")
        if n is None:
            return self.count(kind, False, "the node with faked clocks is gone")
        rate = pick([0.25, 0.5, 2.0, 4.0], rnd[0])
        self.say("%s: %r's clocks run x%g for %.1fs" % (kind, n, rate, dur))
        n.set_clock(rate=rate)
        self.count(kind)
        self.hold(dur)
        n.set_clock(rate=1.0)

    def f_stale_leader(self, kind, dur, rnd):
        """The node with faked clocks is made leader, its clocks slowed to a quarter, and it is
        cut off from the other nodes (not from clients). The others elect a leader and take
        writes long before its check-quorum notices, so for seconds it believes it still leads
        while its clients keep sending to it: whatever it answers must not be stale (a leader
        that read its Redis without a read-index round would answer old values here)."""
        n = self.clock_node("rate")
        if n is None or not n.up():
            return self.count(kind, False, "the node with faked clocks is not running")
        ld = self.leader()
        if ld is not n:
            if ld is None or n.node_id is None:
                return self.count(kind, False, "no leader")
            try:
                call(ld.addr, self.c.port, "RAFT.TRANSFER-LEADER", n.node_id, timeout=2.0)
            except Exception as e:  # noqa: BLE001 - refused now: skip the episode
                return self.count(kind, False, "transfer to %r: %s" % (n, e))
            deadline = time.monotonic() + 3.0
            while self.c.leader() is not n and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.c.leader() is not n:
                return self.count(kind, False, "%r did not take the leadership" % n)
        n.set_clock(rate=0.25)
        self.partition(kind, dur, [[n], self.others([n])])
        n.set_clock(rate=1.0)

    # ---- membership
    def remove(self, kind, target, via, seconds):
        """RAFT.NODE REMOVE target through via; True once the leader no longer lists it."""
        tid = target.node_id
        try:
            r = call(via.addr, via.port, "RAFT.NODE", "REMOVE", tid, timeout=6.0)
            self.say("%s: RAFT.NODE REMOVE %s (%r) via %r: %r" % (kind, tid, target, via, r))
        except Exception as e:  # noqa: BLE001 - the outcome is read back below
            self.say("%s: RAFT.NODE REMOVE %s (%r) via %r: %s" % (kind, tid, target, via, e))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ld = self.c.leader([n for n in self.c.up_nodes() if n is not target])
            if ld is not None:
                ids = [m.get("id") for m in members_of(ld.raft_info())]
                if ids and tid not in ids:
                    return True
            time.sleep(0.2)
        return False

    def forget(self, node):
        node.removed = True
        node.kill_redraft(signal.SIGKILL)
        node.kill_redis()

    def add_node(self, kind, seconds, clock=None):
        via = pick([n for n in self.c.up_nodes()], random.random())
        if via is None:
            self.say("%s: no node to join through" % kind)
            return None
        n = self.c.new_node()
        n.clock = clock  # a replacement takes over the clock fault of the node it replaces
        n.start_redis()
        try:
            n.start_redraft(join="%s:%d" % (via.addr, via.port), wait=True)
        except RuntimeError as e:
            self.say("%s: WARNING: %s" % (kind, e))
            return n
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            info = n.raft_info()
            if info.get("node_id") and info.get("state") == "up":
                n.node_id = info["node_id"]
                ld = self.c.leader()
                if ld is not None:
                    m = [x for x in members_of(ld.raft_info()) if x.get("id") == n.node_id]
                    if m and m[0].get("voter") == "1":
                        self.say("%s: %r (%s) joined through %r and is a voter" % (
                            kind, n, n.node_id, via))
                        return n
            time.sleep(0.2)
        n.node_id = n.raft_info().get("node_id") or n.node_id
        self.say("%s: %r joined through %r but is not a voter yet" % (kind, n, via))
        return n

    def replace(self, kind, target, seconds):
        vias = [n for n in self.c.up_nodes() if n is not target]
        via = target if target is self.c.leader() else pick(vias, random.random())
        if via is None or target.node_id is None:
            return self.count(kind, False, "no node to send the removal through")
        self.count(kind)
        if self.remove(kind, target, via, seconds / 2):
            self.say("%s: %r is out of the configuration; stopping it" % (kind, target))
            self.forget(target)
            self.add_node(kind, seconds / 2, clock=target.clock)
        else:
            self.say("%s: %r is still a member after %.1fs; leaving it" % (kind, target,
                                                                            seconds / 2))

    def f_member_replace(self, kind, dur, rnd):
        ld = self.leader()
        fs = [n for n in self.c.up_nodes() if n is not ld]
        fs = [n for n in fs if n.clock is None] or fs  # keep the clock faults' nodes if we can
        if ld is None or not fs:
            return self.count(kind, False, "no leader or follower")
        self.replace(kind, pick(fs, rnd[0]), max(dur, 8.0))

    def f_member_remove_leader(self, kind, dur, rnd):
        ld = self.leader()
        if ld is None:
            return self.count(kind, False, "no leader")
        self.replace(kind, ld, max(dur, 8.0))

    def f_member_during_fault(self, kind, dur, rnd):
        ld = self.leader()
        fs = [n for n in self.c.up_nodes() if n is not ld]
        fs = [n for n in fs if n.clock is None] or fs
        if ld is None or not fs:
            return self.count(kind, False, "no leader or follower")
        p = 0.05 + rnd[1] * 0.15
        ms = self.c.members()
        for i, a in enumerate(ms):
            for b in ms[i + 1:]:
                self.fw.cut(a, b, loss=p)
        self.say("%s: %.0f%% packet loss while a node is replaced" % (kind, p * 100))
        try:
            self.replace(kind, pick(fs + [ld], rnd[0]), max(dur, 10.0))
        finally:
            self.fw.heal()

    def f_snapshot_install(self, kind, dur, rnd):
        """A follower stops until the leader's log no longer holds what it lacks, so that it is
        sent a snapshot when it comes back; while it fetches or loads it, a fault: it is killed
        again, the leader (the sender) is killed, or it is cut off for a while."""
        ld = self.leader()
        fs = [n for n in self.c.up_nodes() if n is not ld]
        if ld is None or not fs:
            return self.count(kind, False, "no leader or follower")
        f = pick(fs, rnd[0])
        behind = int(f.raft_info().get("last_index", 0) or 0)
        f.kill_redraft()
        self.say("%s: %r stopped at index %d; waiting for the log to be trimmed past it" % (
            kind, f, behind))
        deadline = time.monotonic() + 30
        first = 0
        while time.monotonic() < deadline:
            cur = self.c.leader()
            first = int((cur.raft_info() if cur else {}).get("first_index", 0) or 0)
            if first > behind + 1:
                break
            time.sleep(0.3)
        if first <= behind + 1:
            self.restart([f])
            return self.count(kind, False, "the leader's log still reached index %d after 30 s"
                              % behind)
        self.restart([f])
        state = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = f.raft_info(timeout=0.5).get("snapshot_state", "")
            if state in ("fetching", "loading"):
                break
            time.sleep(0.02)
        self.count(kind)
        if state not in ("fetching", "loading"):
            self.say("%s: %r caught up (snapshot state %r) before a fault could hit the install"
                     % (kind, f, state))
            return
        cur = self.c.leader()
        if rnd[1] < 0.4 or cur is None:
            self.say("%s: kill -9 %r while %s its snapshot, down for %.1fs" % (kind, f, state,
                                                                                dur))
            f.kill_redraft()
            self.hold(dur)
            self.restart([f])
        elif rnd[1] < 0.7:
            self.say("%s: kill -9 the leader %r while %r is %s its snapshot, down for %.1fs" % (
                kind, cur, f, state, dur))
            cur.kill_redraft()
            self.hold(dur)
            self.restart([cur])
        elif self.fw.active:
            self.say("%s: %r cut off while %s its snapshot, for %.1fs" % (kind, f, state, dur))
            self.fw.partition([f], self.others([f]))
            self.hold(dur)
            self.fw.heal()
        else:
            self.say("%s: %r's install left alone (no iptables to cut it off)" % (kind, f))
        self.say("%s: %r's snapshot state now %r" % (kind, f, f.raft_info().get(
            "snapshot_state")))

    # ---- power loss
    def power_loss(self, kind, dur, nodes, rnd):
        torn = rnd[0] < 0.5
        self.say("%s: %s lose power (%s), back after %.1fs" % (
            kind, " ".join(map(repr, nodes)), "torn writes" if torn else "unsynced data lost",
            dur))
        for n in nodes:
            n.kill_redraft()
            n.kill_redis()
        for n in nodes:
            n.powerfs_cmd("torn %d" % int(rnd[1] * 1e9) if torn else "crash")
            st = n.powerfs_stats()
            self.say("%s: %r's powerfs: lost %s bytes, %s files, %s name changes so far" % (
                kind, n, st.get("lost_bytes"), st.get("lost_files"), st.get("lost_names")))
        self.count(kind)
        self.hold(dur)
        self.restart(nodes, redis_too=True)
        self.say("%s: %s restarted" % (kind, " ".join(map(repr, nodes))))

    def f_power_loss(self, kind, dur, rnd):
        n = pick([n for n in self.c.members() if n.mnt], rnd[2])
        if n is None:
            return self.count(kind, False, "no node on powerfs")
        self.power_loss(kind, dur, [n], rnd)

    def f_lying_disks(self, kind, dur, rnd):
        """The harness's self-test (not in KINDS): every disk acknowledges fsync without
        keeping anything for dur seconds, then every node loses power. Acknowledged writes are
        lost for real, and the checks must say so."""
        ns = [n for n in self.c.members() if n.mnt]
        for n in ns:
            n.powerfs_cmd("lie")
        self.say("%s: the disks of %s lie about fsync for %.1fs" % (kind, " ".join(map(repr, ns)),
                                                                     dur))
        self.hold(dur)
        self.power_loss(kind, 0.5, ns, [0.9] + list(rnd[1:]))

    def f_power_loss_all(self, kind, dur, rnd):
        ns = [n for n in self.c.members() if n.mnt]
        if not ns:
            return self.count(kind, False, "no node on powerfs")
        self.power_loss(kind, dur, ns, rnd)

    # ---- scripts
    def f_runaway_script(self, kind, dur, rnd):
        self.runaway.episode(kind, dur, rnd)

    # ---- healing
    def heal(self):
        """Everything back: rules gone, nodes running, clocks true, the cluster at full size."""
        self.fw.heal()
        for n in self.c.members():
            n.cont()
            if n.clock == "rate" and n.redraft_alive() and n.clock_spec[1] != 1.0:
                n.set_clock(rate=1.0)
            if n.clock == "realtime" and n.redraft_alive() and n.clock_spec[0] != 0.0:
                n.set_clock(offset=0.0)
        for n in self.c.members():
            if n.redis is None or not n.redis.alive():
                n.start_redis()
        self.restart([n for n in self.c.members() if not n.redraft_alive()])
        for _ in range(self.c.size):
            if len(self.c.members()) >= self.c.size:
                break
            self.say("heal: the cluster has %d members; adding one" % len(self.c.members()))
            if self.add_node("heal", 20) is None:
                break
