"""The processes of a chaos run: redis-server + redraft pairs, each on its own loopback address.

Node i (from 1) lives at 127.0.0.(10+i): its redis-server, its redraft's client port and its
cluster bus all listen there, on the same three ports as every other node (the address tells
them apart, so that iptables rules can name the link between two nodes). Every process is
started here and remembered; only those are ever signalled.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

import redis

FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1")
MAX_SLOTS = 40  # 127.0.0.11 .. 127.0.0.50: the first nodes plus the ones added later


def addr_of(slot):
    return "127.0.0.%d" % (10 + slot)


def log(msg):
    print("chaos: %s" % msg, flush=True)


def call(host, port, *args, timeout=2.0):
    """One command on a fresh connection with a deadline; raises on any error."""
    c = redis.connection.Connection(host=host, port=port, socket_timeout=timeout,
                                    socket_connect_timeout=timeout)
    try:
        c.connect()
        c.send_command(*args)
        return c.read_response()
    finally:
        c.disconnect()


def parse_info(text):
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def members_of(info):
    """The nodeN: lines of RAFT.INFO as dicts (id, addr, voter, ...)."""
    res = []
    for k, v in info.items():
        if k.startswith("node") and k[4:].isdigit():
            res.append(dict(kv.split("=", 1) for kv in v.split(",") if "=" in kv))
    return res


def port_free(addr, port):
    s = socket.socket()
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports(rng_seed):
    """Three consecutive ports, below the kernel's ephemeral range, free on every address."""
    rng = random.Random(rng_seed ^ os.getpid())
    for _ in range(200):
        base = rng.randrange(20000, 32000, 3)
        if all(port_free(addr_of(s), base + k) for s in (1, 2, 3, 4, 5, 6) for k in range(3)):
            return base, base + 1, base + 2
    raise RuntimeError("no free ports found")


class Proc:
    """A process we started: its Popen, and whether its end was our doing."""

    def __init__(self, popen, what):
        self.p = popen
        self.what = what
        self.killed_by_us = False
        self.reported = False

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def send(self, sig):
        if self.alive():
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, sig=signal.SIGKILL, wait=5.0):
        self.killed_by_us = True
        self.send(signal.SIGCONT)
        self.send(sig)
        try:
            self.p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log("WARNING: %s (pid %d) did not exit after SIGKILL" % (self.what, self.p.pid))


class Node:
    def __init__(self, cluster, slot):
        self.c = cluster
        self.slot = slot
        self.addr = addr_of(slot)
        self.dir = os.path.join(cluster.tmp, "n%d" % slot)
        os.makedirs(self.dir, exist_ok=True)
        self.redis = None
        self.redraft = None
        self.stopped = False  # SIGSTOPped
        self.removed = False  # taken out of the cluster (RAFT.NODE REMOVE)
        self.node_id = None
        self.clock = None  # None, "realtime" or "rate": how libfaketime runs this node
        self.clock_spec = (0.0, 1.0)  # offset s, rate
        self.clock_t0 = None  # when the faked process started (monotonic)
        self.powerfs = None
        self.mnt = None
        # Both processes' files, on the node's powerfs when there is one: a power loss takes
        # what Redis did not fsync too (the dump.rdb it writes after loading a snapshot).
        self.raft_dir = os.path.join(self.dir, "raft")
        self.redis_dir = os.path.join(self.dir, "redis")
        self.restarts = 0
        self.lock = threading.Lock()  # one start of its redis-server at a time
        self.shutdowns = 0  # redis-server exits that SHUTDOWN NOSAVE asked for

    # ---- where things are
    @property
    def port(self):
        return self.c.port

    def __repr__(self):
        return "n%d" % self.slot

    def log_path(self):
        return os.path.join(self.dir, "redraft.log")

    # ---- power-loss filesystem
    def mount_powerfs(self):
        back = os.path.join(self.dir, "back")
        self.mnt = os.path.join(self.dir, "mnt")
        for sub in ("raft", "redis"):  # made before mounting: durable from the start
            os.makedirs(os.path.join(back, sub), exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)
        out = open(os.path.join(self.dir, "powerfs.log"), "ab")
        p = subprocess.Popen([self.c.powerfs_bin, back, self.mnt], stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.powerfs = Proc(p, "powerfs of %r" % self)
        self.c.procs.append(self.powerfs)  # watched for crashes; stopped by unmounting
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.ismount(self.mnt):
                self.raft_dir = os.path.join(self.mnt, "raft")
                self.redis_dir = os.path.join(self.mnt, "redis")
                return
            if not self.powerfs.alive():
                break
            time.sleep(0.05)
        raise RuntimeError("powerfs did not mount at %s (see %s/powerfs.log)" % (self.mnt,
                                                                                 self.dir))

    def powerfs_cmd(self, cmd):
        with open(os.path.join(self.mnt, ".powerfs"), "w") as f:
            f.write(cmd + "\n")

    def powerfs_stats(self):
        try:
            with open(os.path.join(self.mnt, ".powerfs")) as f:
                return dict(line.split() for line in f.read().splitlines() if line.strip())
        except OSError:
            return {}

    def unmount_powerfs(self):
        if self.mnt is None or self.powerfs is None:
            return
        self.powerfs.killed_by_us = True
        if os.path.ismount(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, timeout=10)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True, timeout=10)
        try:
            self.powerfs.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.powerfs.kill()

    # ---- processes
    def start_redis(self):
        """Starts its redis-server, unless one runs (the supervisor may have been first)."""
        with self.lock:
            if self.redis is not None and self.redis.alive():
                return
            self._start_redis()

    def _start_redis(self):
        logf = os.path.join(self.dir, "redis.log")
        rdir = self.redis_dir
        os.makedirs(rdir, exist_ok=True)
        out = open(os.path.join(self.dir, "redis.out"), "ab")
        p = subprocess.Popen(["redis-server", "--port", str(self.c.redis_port), "--bind", self.addr,
                              "--save", "", "--appendonly", "no", "--dir", rdir, "--logfile", logf,
                              "--daemonize", "no"],
                             stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        out.close()
        self.redis = Proc(p, "redis-server of %r" % self)
        self.c.procs.append(self.redis)
        self.wait_ping(self.c.redis_port, 10)

    def redraft_cmd(self, join=None, init=False):
        c = self.c
        cmd = [c.redraft_bin, "--bind", self.addr, "--port", str(c.port),
               "--redis", "%s:%d" % (self.addr, c.redis_port), "--dir", self.raft_dir,
               "--logfile", self.log_path(), "--loglevel", "verbose",
               "--cluster-port", str(c.bus_port),
               "--cluster-announce", "%s:%d" % (self.addr, c.bus_port),
               "--cluster-secret", c.secret] + c.timing_args
        if init:
            cmd += ["--cluster-init", "yes"]
        if join:
            cmd += ["--cluster-join", join]
        return cmd

    def faketime_env(self):
        env = dict(os.environ)
        if self.clock is None:
            return env
        spec = os.path.join(self.dir, "faketime.spec")
        self.write_clock_spec(spec, 0.0, 1.0)
        env.update(LD_PRELOAD=self.c.faketime_lib, FAKETIME_TIMESTAMP_FILE=spec,
                   FAKETIME_NO_CACHE="1")
        if self.clock == "realtime":
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        # A sanitizer build must accept a preloaded library ahead of its runtime.
        env["ASAN_OPTIONS"] = "verify_asan_link_order=0:" + env.get("ASAN_OPTIONS", "")
        return env

    def write_clock_spec(self, path, offset, rate):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+.6f x%g\n" % (offset, rate))
        os.replace(tmp, path)
        self.clock_spec = (offset, rate)

    def set_clock(self, offset=None, rate=None):
        """Changes the faked clock. A rate change keeps the faked time continuous (libfaketime
        multiplies the time since the process started, so the offset makes up the difference)."""
        o, r = self.clock_spec
        if rate is not None and rate != r:
            e = time.monotonic() - self.clock_t0
            o = o + e * (r - rate)
            r = rate
        if offset is not None:
            o = offset
        self.write_clock_spec(os.path.join(self.dir, "faketime.spec"), o, r)

    def start_redraft(self, join=None, init=False, wait=True):
        cmd = self.redraft_cmd(join=join, init=init)
        out = open(os.path.join(self.dir, "redraft.out"), "ab")
        env = self.faketime_env()
        self.clock_t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        out.close()
        self.redraft = Proc(p, "redraft of %r" % self)
        self.c.procs.append(self.redraft)
        self.stopped = False
        if wait:
            self.wait_ping(self.c.port, 20)

    def wait_ping(self, port, seconds):
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            try:
                if call(self.addr, port, "PING", timeout=1.0) in (b"PONG", "PONG"):
                    return True
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(0.05)
        raise RuntimeError("%r did not answer on %s:%d within %ds (%s)" % (self, self.addr, port,
                                                                          seconds, last))

    def redraft_alive(self):
        return self.redraft is not None and self.redraft.alive()

    def kill_redraft(self, sig=signal.SIGKILL):
        if self.redraft is not None:
            self.redraft.kill(sig)
        self.stopped = False

    def kill_redis(self):
        if self.redis is not None:
            self.redis.kill(signal.SIGKILL)

    def wipe_redis(self):
        """Removes what Redis keeps in its dir (a dump.rdb written after a snapshot load), for a
        restart that must come up empty; durably, so that a later power loss keeps it gone."""
        for name in os.listdir(self.redis_dir):
            os.unlink(os.path.join(self.redis_dir, name))
        fd = os.open(self.redis_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def stop(self):
        if self.redraft_alive() and not self.stopped:
            self.redraft.send(signal.SIGSTOP)
            self.stopped = True

    def cont(self):
        if self.redraft is not None and self.stopped:
            self.redraft.send(signal.SIGCONT)
        self.stopped = False

    def up(self):
        """Running, not stopped, not removed: a node clients and checks may use."""
        return self.redraft_alive() and not self.stopped and not self.removed

    # ---- queries
    def raft_info(self, timeout=1.0):
        try:
            return parse_info(call(self.addr, self.c.port, "RAFT.INFO", timeout=timeout))
        except Exception:  # noqa: BLE001 - down, stopped or cut off
            return {}

    def info_raft(self, timeout=1.0):
        try:
            return parse_info(call(self.addr, self.c.port, "INFO", "raft", timeout=timeout))
        except Exception:  # noqa: BLE001
            return {}

    def shutdown_lines(self):
        """How often its redis.log says a SHUTDOWN command asked it to exit."""
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return sum(1 for ln in f if "User requested shutdown" in ln)
        except OSError:
            return 0

    def log_tail(self, n=25):
        try:
            with open(self.log_path(), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"


class Cluster:
    def __init__(self, tmp, build, nodes, seed, powerfs_bin=None, faketime_lib=None,
                 election_ms=500):
        self.tmp = tmp
        self.redraft_bin = os.path.join(build, "redraft")
        self.powerfs_bin = powerfs_bin
        self.faketime_lib = faketime_lib
        self.size = nodes
        self.seed = seed
        self.secret = "chaos-%d" % seed
        self.port, self.redis_port, self.bus_port = pick_ports(seed)
        self.election_ms = election_ms
        self.timing_args = ["--election-timeout", str(election_ms),
                            "--heartbeat-interval", str(max(20, election_ms // 10)),
                            "--write-timeout", "4000", "--read-timeout", "2000",
                            "--leader-wait-timeout", "2000",
                            # Snapshots every few thousand entries, pulled slowly, so that runs
                            # take, send and install them (snapshot-install needs them).
                            "--snapshot-log-entries", "2000", "--snapshot-fetch-rate", "32kb"]
        self.nodes = {}  # slot -> Node
        self.procs = []
        self.next_slot = 1
        self.lock = threading.Lock()
        self.shutdowns_sent = 0  # SHUTDOWN NOSAVE sent through redraft (runaway-script)
        self.supervisor = None
        self.supervisor_stop = threading.Event()
        self.supervised = 0  # redis-servers the supervisor started again

    def new_node(self):
        if self.next_slot > MAX_SLOTS:
            raise RuntimeError("out of node addresses")
        n = Node(self, self.next_slot)
        self.nodes[n.slot] = n
        self.next_slot += 1
        if self.powerfs_bin:
            n.mount_powerfs()
        return n

    def members(self):
        return [n for n in self.nodes.values() if not n.removed]

    def up_nodes(self):
        return [n for n in self.members() if n.up()]

    def start(self, clocks=()):
        """Starts `size` pairs: the first initializes the cluster, the rest join it."""
        first = None
        for i in range(self.size):
            n = self.new_node()
            if i < len(clocks):
                n.clock = clocks[i]
            n.start_redis()
            if first is None:
                n.start_redraft(init=True)
                first = n
            else:
                n.start_redraft(join="%s:%d" % (first.addr, self.port))
        self.wait_voters(self.size, 30)
        for n in self.members():
            n.node_id = n.raft_info().get("node_id")

    def leader(self, nodes=None):
        """The node that says it is leader with the highest term, or None."""
        best, term = None, -1
        for n in nodes or self.up_nodes():
            info = n.raft_info(timeout=0.5)
            if info.get("role") == "leader" and int(info.get("term", 0)) > term:
                best, term = n, int(info.get("term", 0))
        return best

    def by_id(self, node_id):
        for n in self.nodes.values():
            if n.node_id == node_id:
                return n
        return None

    def wait_leader(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ld = self.leader()
            if ld is not None:
                lid = ld.raft_info().get("node_id")
                if all(n.raft_info(timeout=0.5).get("leader_id") == lid for n in self.up_nodes()):
                    return ld
            time.sleep(0.1)
        return None

    def wait_voters(self, k, seconds):
        deadline = time.monotonic() + seconds
        info = {}
        while time.monotonic() < deadline:
            ld = self.leader()
            if ld is not None:
                info = ld.raft_info()
                ms = members_of(info)
                if (len(ms) == k and all(m.get("voter") == "1" for m in ms)
                        and all(m.get("link") in ("up", "self") for m in ms)):
                    return ld
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach %d voters with links up in %ds: %s"
                           % (k, seconds, info))

    def stop_all(self):
        """Every process we started: redrafts first (TERM, then KILL), then redis-servers."""
        for n in self.nodes.values():
            n.cont()
        for p in self.procs:
            if p.what.startswith("redraft") and p.alive():
                p.killed_by_us = True
                p.send(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            if p.what.startswith("redraft"):
                while p.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if p.alive():
                    p.kill()
        for p in self.procs:
            if p.alive() and not p.what.startswith("powerfs"):
                try:
                    p.kill(signal.SIGTERM, wait=3)
                except Exception as e:  # noqa: BLE001 - go on with the others
                    log("WARNING: stopping %s (pid %d): %s" % (p.what, p.pid, e))

    def unmount_all(self):
        for n in self.nodes.values():
            n.unmount_powerfs()

    def shutdown_sent(self):
        with self.lock:
            self.shutdowns_sent += 1

    def shut_down(self, n, p):
        """Did redis-server p of node n end because a SHUTDOWN NOSAVE the harness sent through
        redraft asked it to? (Status 0 and one more "User requested shutdown" in its log than
        the exits counted so far.) Counts it once; caller holds self.lock."""
        if getattr(p, "shut_down", False):
            return True
        if self.shutdowns_sent == 0 or p.p.returncode != 0 or p is not n.redis:
            return False
        if n.shutdown_lines() <= n.shutdowns:
            return False
        n.shutdowns += 1
        p.shut_down = True
        p.reported = True
        return True

    def node_of(self, p):
        for n in self.nodes.values():
            if p is n.redis:
                return n
        return None

    def unexpected_exits(self):
        """Processes that ended without us killing them (crashes), each reported once. A
        redis-server that SHUTDOWN NOSAVE ended (runaway-script) is not one."""
        out = []
        with self.lock:
            for p in list(self.procs):
                if not p.alive() and not p.killed_by_us and not p.reported:
                    n = self.node_of(p)
                    if n is not None and self.shut_down(n, p):
                        continue
                    p.reported = True
                    out.append(p)
        return out

    # ---- the redis-servers' supervisor (as systemd, compose or Kubernetes are in production)
    def start_supervisor(self):
        self.supervisor = threading.Thread(target=self.supervise, name="supervisor", daemon=True)
        self.supervisor.start()

    def supervise(self):
        """Starts again, as it is (not wiped), each redis-server that SHUTDOWN NOSAVE ended."""
        for _ in range(10**7):
            if self.supervisor_stop.wait(0.1):
                return
            for n in list(self.nodes.values()):
                p = n.redis
                if p is None or p.alive() or p.killed_by_us or n.removed:
                    continue
                with self.lock:
                    ok = self.shut_down(n, p)
                if not ok:
                    continue
                try:
                    n.start_redis()
                    with self.lock:
                        self.supervised += 1
                    log("supervisor: %r's redis-server exited (SHUTDOWN NOSAVE); started "
                        "again" % n)
                except RuntimeError as e:
                    log("supervisor: WARNING: %s" % e)

    def stop_supervisor(self):
        self.supervisor_stop.set()
        if self.supervisor is not None:
            self.supervisor.join(15)

    def remove_tmp(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
