#!/usr/bin/python3
"""The chaos harness: a redraft cluster under a seeded schedule of faults, with clients at every
consistency level whose histories are checked afterwards. docs/testing.md ("Chaos") tells how to
run it, what it injects and what it checks.

Usage: tests/chaos/chaos.py [--seconds N] [--seed S] [--nodes 3|5] [--build DIR] [--short]
                            [--faults kind,kind] [--keep] [--scripts-random]
Environment: CHAOS_SECONDS, CHAOS_SEED, CHAOS_NODES, CHAOS_FAULTS, BUILD, CHAOS_KEEP=1,
             CHAOS_SCRIPTS_RANDOM=1, CHAOS_LINCHECK (another checker binary, for development
             only).
Ends with one "PASS ..." or "FAIL ...: why" line per check and "N passed, M failed".
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks  # noqa: E402
import net  # noqa: E402
from cluster import FAKETIME_LIBS, Cluster, call, log  # noqa: E402
from faults import KINDS, SHORT_KINDS, Faults, make_schedule  # noqa: E402
from runaway import RUNAWAY_KEY  # noqa: E402
from workload import LEVELS, Workload, history_lines  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


class Report:
    def __init__(self):
        self.results = []

    def check(self, name, problems, note=""):
        self.results.append((name, list(problems), note))

    def print(self):
        passed = failed = 0
        for name, probs, note in self.results:
            if probs:
                failed += 1
                print("FAIL %s: %s" % (name, probs[0]), flush=True)
                for p in probs[1:10]:
                    print("     %s" % p)
                if len(probs) > 10:
                    print("     ... %d more" % (len(probs) - 10))
            else:
                passed += 1
                print("PASS %s%s" % (name, " (%s)" % note if note else ""), flush=True)
        return passed, failed


# ---- facilities --------------------------------------------------------------------------------

def probe_faketime():
    lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    if lib is None:
        return None, "libfaketime is not installed (Debian package faketime)"
    env = dict(os.environ, LD_PRELOAD=lib, FAKETIME="+1000d")
    try:
        out = subprocess.run(["date", "+%s"], env=env, capture_output=True, text=True, timeout=10)
        faked = int(out.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return None, "libfaketime does not work here: %s" % e
    if faked - time.time() < 500 * 86400:
        return None, "libfaketime did not change the clock of a test process"
    return lib, None


def powerfs_selftest(binary, tmp):
    """Mounts powerfs, writes synced and unsynced data, crashes it, and checks what is left.
    Returns (None, problems) when it cannot mount at all (the facility is missing)."""
    if not os.path.exists(binary):
        return "%s is missing (make %s needs libfuse3-dev and pkg-config)" % (
            binary, os.path.relpath(binary, ROOT)), []
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist", []
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3)", []
    back, mnt = os.path.join(tmp, "pf-back"), os.path.join(tmp, "pf-mnt")
    os.makedirs(back)
    os.makedirs(mnt)
    p = subprocess.Popen([binary, back, mnt], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "pf-selftest.log"), "wb"),
                         start_new_session=True)
    probs = []
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.ismount(mnt):
            return "a FUSE mount failed here (see %s/pf-selftest.log)" % tmp, []

        def put(name, data, sync, flags=os.O_CREAT | os.O_WRONLY | os.O_APPEND):
            fd = os.open(os.path.join(mnt, name), flags, 0o644)
            os.write(fd, data)
            if sync:
                os.fsync(fd)
            os.close(fd)

        def dirsync():
            fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)

        put("kept", b"synced", True)
        put("renamed", b"r", True)
        put("gone", b"x", True)
        dirsync()
        put("kept", b"+unsynced", False)
        put("new", b"never synced", False)
        put("newsynced", b"data synced, name not", True)
        os.rename(os.path.join(mnt, "renamed"), os.path.join(mnt, "renamed2"))
        os.unlink(os.path.join(mnt, "gone"))
        with open(os.path.join(mnt, ".powerfs"), "w") as f:
            f.write("crash\n")
        names = sorted(os.listdir(mnt))
        if names != ["gone", "kept", "renamed"]:
            probs.append("after a crash the directory holds %s, want gone kept renamed" % names)
        with open(os.path.join(mnt, "kept"), "rb") as f:
            got = f.read()
        if got != b"synced":
            probs.append("after a crash 'kept' holds %r, want b'synced'" % got)
    except OSError as e:
        probs.append("powerfs self-test: %s" % e)
    finally:
        subprocess.run(["fusermount3", "-uz", mnt], capture_output=True, timeout=10)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    return None, probs


def sweep_stale_mounts():
    """Unmounts powerfs mounts of earlier runs that died (their pid is in the folder name)."""
    try:
        with open("/proc/mounts") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or parts[0] != "powerfs" or "/redraft-chaos-" not in parts[1]:
            continue
        pid = parts[1].split("/redraft-chaos-")[1].split("-")[0]
        if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
            subprocess.run(["fusermount3", "-uz", parts[1]], capture_output=True, timeout=10)
            log("unmounted %s, left by run %s" % (parts[1], pid))


# ---- reading the replicas ----------------------------------------------------------------------

def redis_conn(n, timeout=5.0):
    import redis
    c = redis.connection.Connection(host=n.addr, port=n.c.redis_port, socket_timeout=timeout,
                                    socket_connect_timeout=timeout)
    c.connect()
    return c


def dataset(n):
    """Every key of the user databases of n's redis-server (not redraft's hidden last one):
    {(db, key): (DUMP, PEXPIRETIME)}."""
    c = redis_conn(n)
    try:
        c.send_command("CONFIG", "GET", "databases")
        dbs = int(c.read_response()[1])
        out = {}
        for db in range(dbs - 1):
            c.send_command("SELECT", db)
            c.read_response()
            keys, cursor = [], b"0"
            for _ in range(100000):
                c.send_command("SCAN", cursor, "COUNT", 1000)
                cursor, batch = c.read_response()
                keys.extend(batch)
                if cursor in (b"0", 0):
                    break
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                cmds = []
                for k in chunk:
                    cmds += [("DUMP", k), ("PEXPIRETIME", k)]
                c.send_packed_command(c.pack_commands(cmds))
                for k in chunk:
                    out[(db, k)] = (c.read_response(), c.read_response())
        return out
    finally:
        c.disconnect()


def final_state(n, keys):
    """The workload's keys as they are on n's redis-server: lists as lists of ints, counters and
    registers as ints (None for a register never written)."""
    c = redis_conn(n)
    out = {}
    try:
        for k in sorted(keys):
            if ":l" in k:
                c.send_command("LRANGE", k, 0, -1)
                out[k] = [int(x) for x in c.read_response()]
            else:
                c.send_command("GET", k)
                v = c.read_response()
                out[k] = None if v is None else int(v)
                if ":c" in k and out[k] is None:
                    out[k] = 0
    finally:
        c.disconnect()
    return out


def quiesce(cluster, seconds):
    """Waits until every member has applied everything the leader committed; returns why not."""
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        infos = {n: n.info_raft() for n in cluster.members()}
        commits = [int(i.get("commit_index", -1)) for i in infos.values()]
        applied = [int(i.get("applied_index", -1)) for i in infos.values()]
        if min(commits) >= 0 and min(applied) == max(commits) == min(commits):
            time.sleep(0.5)
            again = [int(n.info_raft().get("applied_index", -1)) for n in cluster.members()]
            if again == applied:
                return None
        last = ", ".join("%r commit %s applied %s" % (n, i.get("commit_index"),
                                                     i.get("applied_index"))
                         for n, i in infos.items())
        time.sleep(0.3)
    return "not quiet after %ds: %s" % (seconds, last)


def final_write_read(cluster, seed):
    """One write through every member, each read back (linearizable) through every member."""
    probs = []
    for n in cluster.members():
        key, val = "chaos:final:%d" % n.slot, "%d-%d" % (seed, n.slot)
        try:
            r = call(n.addr, n.port, "SET", key, val, timeout=10)
            if r != b"OK":
                probs.append("SET through %r answered %r" % (n, r))
                continue
        except Exception as e:  # noqa: BLE001
            probs.append("SET through %r: %s" % (n, e))
            continue
        for m in cluster.members():
            try:
                got = call(m.addr, m.port, "GET", key, timeout=10)
                if got != val.encode():
                    probs.append("GET %s through %r answered %r, want %r" % (key, m, got, val))
            except Exception as e:  # noqa: BLE001
                probs.append("GET %s through %r: %s" % (key, m, e))
    return probs


# ---- the run -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--faults", default=os.environ.get("CHAOS_FAULTS", ""))
    ap.add_argument("--short", action="store_true", help="the short run of make test")
    ap.add_argument("--selftest", action="store_true",
                    help="every disk lies about fsync, then loses power: the run must notice "
                         "lost acknowledged writes")
    ap.add_argument("--keep", action="store_true", default=os.environ.get("CHAOS_KEEP") == "1")
    ap.add_argument("--scripts-random", action="store_true",
                    default=os.environ.get("CHAOS_SCRIPTS_RANDOM", "1") != "0",
                    help="clients also run scripts that call TIME and random commands and "
                         "write what they got (on by default; CHAOS_SCRIPTS_RANDOM=0 turns it "
                         "off)")
    a = ap.parse_args()
    asan = "asan" in a.build
    seconds = a.seconds or float(os.environ.get("CHAOS_SECONDS") or
                                 ((45 if asan else 70) if a.short else 300))
    if a.selftest:
        seconds = a.seconds or 10.0
    seed = a.seed if a.seed is not None else int(os.environ.get("CHAOS_SEED") or
                                                 random.SystemRandom().randrange(1, 10**9))
    nodes = a.nodes or int(os.environ.get("CHAOS_NODES") or 3)
    if nodes not in (3, 5):
        ap.error("--nodes must be 3 or 5")
    build = a.build if os.path.isabs(a.build) else os.path.join(ROOT, a.build)
    t_start = time.monotonic()
    if a.selftest:
        log("seed %d (replay: tests/chaos/chaos.py --selftest --seed %d)" % (seed, seed))
    else:
        log("seed %d (replay: make chaos CHAOS_SEED=%d CHAOS_SECONDS=%g CHAOS_NODES=%d%s%s)" % (
            seed, seed, seconds, nodes, " BUILD=%s" % a.build if a.build != "build" else "",
            " CHAOS_FAULTS=%s" % a.faults if a.faults else (
                " CHAOS_FAULTS=%s" % ",".join(SHORT_KINDS) if a.short else "")))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    rep = Report()
    tmp = tempfile.mkdtemp(prefix="redraft-chaos-%d-" % os.getpid())
    cluster = fw = wl = None
    keep = a.keep
    try:
        if not os.path.exists(os.path.join(build, "redraft")):
            rep.check("redraft binary", ["%s/redraft is missing (run make)" % build])
            return rep
        if shutil.which("redis-server") is None:
            rep.check("redis-server", ["redis-server is not on PATH (make deps)"])
            return rep

        # Which faults this machine can produce.
        have = {"": True}
        why = {}
        stale = net.sweep_stale()
        if stale:
            log("removed iptables chains of dead runs: %s" % " ".join(stale))
        sweep_stale_mounts()
        if os.geteuid() != 0:
            have["iptables"] = False
            why["iptables"] = "not root"
        else:
            why["iptables"] = net.probe()
            have["iptables"] = why["iptables"] is None
        lib, why["faketime"] = probe_faketime()
        have["faketime"] = lib is not None
        missing, pf_probs = powerfs_selftest(os.path.join(build, "powerfs"), tmp)
        have["powerfs"] = missing is None
        why["powerfs"] = missing
        if missing is None:
            rep.check("powerfs keeps what was synced and drops the rest", pf_probs)
            have["powerfs"] = not pf_probs

        if a.selftest and not have["powerfs"]:
            log("SKIPPED the lying-disk self-test: %s" % why["powerfs"])
            return rep
        wanted = [k for k in (a.faults.split(",") if a.faults else
                              (SHORT_KINDS if a.short else list(KINDS))) if k]
        if a.selftest:
            wanted = []
        bad = [k for k in wanted if k not in KINDS]
        if bad:
            ap.error("unknown fault kinds: %s (known: %s)" % (", ".join(bad), ", ".join(KINDS)))
        kinds = []
        for k in wanted:
            lacking = [x for x in KINDS[k][0].split(",") if x and not have.get(x, False)]
            if not lacking:
                kinds.append(k)
            else:
                log("SKIPPED fault kind %s: %s" % (k, why.get(lacking[0])))
        if "kill-leader" in kinds and not have["iptables"]:
            kinds.remove("kill-leader")
            kinds.insert(0, "kill-leader")
        log("fault kinds: %s" % (" ".join(kinds) or "(none: the lying-disk self-test)"))

        # The cluster: nodes 2 and 3 run under libfaketime (2: CLOCK_REALTIME only, 3: every
        # clock, at a rate), every node's log on its own powerfs.
        cluster = Cluster(tmp, build, nodes, seed,
                          powerfs_bin=os.path.join(build, "powerfs") if have["powerfs"] else None,
                          faketime_lib=lib, election_ms=500)
        clocks = (None, "realtime", "rate") if have["faketime"] else ()
        log("starting %d nodes at 127.0.0.11-%d (redis %d, redraft %d, bus %d) in %s" % (
            nodes, 10 + nodes, cluster.redis_port, cluster.port, cluster.bus_port, tmp))
        cluster.start(clocks=clocks)
        fw = net.Firewall(cluster.bus_port)
        if have["iptables"]:
            fw.setup()
        scripts = "runaway-script" in kinds
        if scripts:
            cluster.start_supervisor()
        ld = cluster.leader()
        log("cluster up in %.1fs, leader %r" % (time.monotonic() - t_start, ld))

        # Faults from a seeded schedule while the clients run; then healing.
        warm, heal_after = 3.0, 5.0
        sched = make_schedule(seed, kinds, warm, max(warm + 5, seconds - heal_after)) if kinds \
            else []
        if a.selftest:
            sched = [(warm, "lying-disks", 3.0, [0.5] * 8)]
        log("schedule (%d episodes): %s" % (len(sched), ", ".join(
            "%.1fs %s %.1fs" % (t, k, d) for t, k, d, _ in sched)))
        wl = Workload(cluster, seed, per_level=2 if a.short else 3,
                      scripts_random=a.scripts_random)
        t0 = time.monotonic()
        wl.start(seconds + 90)  # stopped explicitly once healed; this only bounds the threads
        fl = Faults(cluster, fw, t0)
        crashes = []
        for t, kind, dur, rnd in sched:
            delay = t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() - t0 > seconds:
                break
            fl.run_episode(kind, dur, rnd)
            for p in cluster.unexpected_exits():
                crashes.append(p)
                fl.say("CRASH: %s (pid %d) exited by itself with status %s" % (
                    p.what, p.pid, p.p.returncode))
        rest = t0 + seconds - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        script_probs = ["%s did not end in 120 s" % k for k in fl.wait_background(120)]
        fl.say("healing")
        fl.heal()
        ld = cluster.wait_leader(30)
        heal_probs = []
        try:
            cluster.wait_voters(len(cluster.members()), 30)
        except RuntimeError as e:
            heal_probs.append(str(e))
        if ld is None:
            heal_probs.append("no leader 30 s after healing")
        if scripts:
            left = fl.runaway.drain(random.Random(seed), 30)
            if left:
                script_probs.append("after healing: %s" % left)
        fl.say("healed: leader %r; clients run 5 s more" % ld)
        time.sleep(5)
        stuck = wl.finish()
        if stuck:
            heal_probs.append("client threads did not stop: %s" % stuck)
        quiet = quiesce(cluster, 30)
        if quiet:
            heal_probs.append(quiet)
        rep.check("cluster healed: a leader, every member a voter, all applied", heal_probs)
        rep.check("final write and read through every node", final_write_read(cluster, seed))
        for p in cluster.unexpected_exits():
            crashes.append(p)
        quiesce(cluster, 10)

        # Replicas: every key of every user database, straight from each redis-server.
        datasets, dprobs = {}, []
        for n in cluster.members():
            try:
                datasets[repr(n)] = dataset(n)
            except Exception as e:  # noqa: BLE001
                dprobs.append("cannot read %r's redis-server: %s" % (n, e))
        dprobs += checks.compare_datasets(datasets)
        nkeys = len(next(iter(datasets.values()))) if datasets else 0
        rep.check("replicas identical (DUMP and PEXPIRETIME of every key, %d members)" %
                  len(datasets), dprobs, "%d keys" % nkeys)
        if scripts:
            rep.check("runaway scripts: every one killed, nothing left running, every "
                      "redis-server back", script_probs + fl.runaway.problems,
                      fl.runaway.summary())
            rep.check("runaway scripts: every node ended each script through the log alone "
                      "(no kill by the drain)", fl.runaway.left)
            rep.check("no killed script's write is in any replica", checks.runaway_writes(
                datasets, RUNAWAY_KEY.encode()), "%d SHUTDOWN NOSAVE sent, %d redis-servers "
                "restarted by the supervisor" % (cluster.shutdowns_sent, cluster.supervised))

        # Histories.
        ops = list(wl.ops)
        keys = {op.key for op in ops}
        ref = cluster.members()[0]
        final = final_state(ref, keys)
        allw = checks.writers(ops)
        for level in LEVELS:
            lops = [op for op in ops if op.level == level]
            path = os.path.join(tmp, "history-%s.txt" % level)
            with open(path, "w") as f:
                f.write("# redraft chaos history, seed %d, level %s, %d operations\n" % (
                    seed, level, len(lops)))
                f.write("# the run's second 0 (the fault log's times) is %d ns\n" % (t0 * 1e9))
                f.write("\n".join(history_lines(lops)) + "\n")
            # The same operations with what the format has no room for: the node and the
            # connection, and times in the fault log's seconds.
            with open(os.path.join(tmp, "ops-%s.txt" % level), "w") as f:
                for op in sorted(lops, key=lambda o: o.t0):
                    f.write("%9.3fs %9.3fs %r\n" % (op.t0 / 1e9 - t0, op.t1 / 1e9 - t0, op))
            if level == "linearizable":
                probs, note = run_lincheck(build, path)
                probs += checks.committed_reads(lops, final, allw)
            elif level == "session":
                probs, note = checks.committed_reads(lops, final, allw) + checks.session(
                    lops, allw), ""
            else:
                probs, note = checks.committed_reads(lops, final, allw), ""
            counts = {}
            for op in lops:
                counts[op.type] = counts.get(op.type, 0) + 1
            rep.check("%s history (%d ops: %s)" % (level, len(lops), " ".join(
                "%d %s" % (counts[t], t) for t in ("ok", "fail", "info") if t in counts)),
                probs, note)
        lost = checks.lost_writes(ops, final)
        rep.check("no acknowledged write lost", lost)
        rep.check("no write applied twice", checks.double_applied(ops, final))
        rep.check("no write reported as not applied was applied",
                  checks.failed_not_applied(ops, final, allw, ops))
        rep.check("every reply reached the client that asked", checks.wrong_client(
            wl.violations))
        rep.check("no process crashed", ["%s (pid %d) exited by itself with status %s; last "
                                         "log lines:\n%s" % (p.what, p.pid, p.p.returncode,
                                                             tail_of(cluster, p))
                                         for p in crashes])
        rep.check("no node found its Redis ahead of its own log after a crash",
                  redis_ahead(cluster))

        if a.selftest:
            # Only what the self-test is about: the cluster came back, and the writes the lying
            # disks lost were noticed. (Lincheck and the other checks fail too, as they may.)
            keep_names = ("powerfs", "cluster healed", "final write")
            rep.results = [r for r in rep.results if r[0].startswith(keep_names)]
            n_ok = sum(1 for op in ops if op.f == "append" and op.type == "ok")
            rep.check("self-test: with every disk lying about fsync, lost acknowledged writes "
                      "are noticed", [] if lost else [
                          "no lost write noticed (%d acknowledged appends)" % n_ok],
                      "%d problems, e.g. %s" % (len(lost), lost[0][:100]) if lost else "")

        # What happened.
        log("operations: %d (%s); other writes: %d" % (len(ops), ", ".join(
            "%s %d" % (lv, sum(1 for o in ops if o.level == lv)) for lv in LEVELS),
            wl.misc_writes))
        log("faults injected: %s" % (", ".join("%s %d" % kv for kv in sorted(
            fl.injected.items())) or "none"))
        if fl.skipped:
            log("episodes skipped: %s" % ", ".join("%s %d" % kv for kv in sorted(
                fl.skipped.items())))
        top = sorted(wl.errors.items(), key=lambda kv: -kv[1])[:8]
        log("errors clients saw: %s" % ("; ".join("%dx %s" % (n, m) for m, n in top) or
                                        "none"))
        if scripts:
            log("runaway scripts: %s" % fl.runaway.summary())
        if a.scripts_random:
            log("random scripts: %s" % wl.random_summary())
    except Interrupted as e:
        rep.check("run completed", ["interrupted by %s" % e])
    except Exception as e:  # noqa: BLE001 - reported as a failure, cleanup still runs
        import traceback
        traceback.print_exc()
        rep.check("run completed", ["%s: %s" % (type(e).__name__, e)])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Each step on its own: one failing must not leave rules, mounts or processes behind.
        for what, step in (("stopping the clients", wl and (lambda: wl.finish(5))),
                           ("stopping the supervisor", cluster and cluster.stop_supervisor),
                           ("stopping the processes", cluster and cluster.stop_all),
                           ("removing the iptables chain", fw and fw.teardown),
                           ("unmounting powerfs", cluster and cluster.unmount_all)):
            if not step:
                continue
            try:
                step()
            except Exception as e:  # noqa: BLE001
                rep.check("clean-up: " + what, ["%s: %s" % (type(e).__name__, e)])
        failed = any(p for _, p, _ in rep.results)
        if failed or keep:
            log("kept %s (node logs in n*/, histories history-*.txt)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        log("took %.0fs" % (time.monotonic() - t_start))
    return rep


def redis_ahead(cluster):
    """Each time a node came back to a Redis holding more than its own log ('applied index ...
    beyond redraft's log'), so that it refused to serve. (It did while redraft let Redis load
    a snapshot before making that snapshot its own; a regression check now.)"""
    out = []
    for n in cluster.nodes.values():
        try:
            with open(n.log_path(), errors="replace") as f:
                lines = [ln.strip() for ln in f if "beyond redraft's log" in ln]
        except OSError:
            continue
        if lines:
            out.append("%r refused to serve %d time(s), first: %s" % (n, len(lines), lines[0]))
    return out


def tail_of(cluster, proc):
    for n in cluster.nodes.values():
        if proc in (n.redraft, n.redis):
            return n.log_tail(15)
    return ""


def run_lincheck(build, path):
    """Runs build/lincheck on a history: 0 linearizable, 1 violation, 2 unknown, 3 bad input."""
    binary = os.environ.get("CHAOS_LINCHECK") or os.path.join(build, "lincheck")
    if not os.path.exists(binary):
        return ["%s is missing: the linearizable history (%s) cannot be checked" % (
            binary, path)], ""
    try:
        with open(path) as f:
            r = subprocess.run([binary, path], stdin=f, capture_output=True, text=True,
                               timeout=300)
    except subprocess.TimeoutExpired:
        return [], "INCONCLUSIVE: lincheck ran out of its 300 s"
    out = (r.stdout + r.stderr).strip()
    tail = "\n".join(out.splitlines()[-15:])
    if r.returncode == 0:
        return [], "lincheck: linearizable"
    if r.returncode == 2:
        log("lincheck could not decide:\n%s" % tail)
        return [], "INCONCLUSIVE: lincheck could not decide"
    if r.returncode == 1:
        return ["lincheck found a violation in %s:\n%s" % (path, tail)], ""
    return ["lincheck exited %d on %s:\n%s" % (r.returncode, path, tail)], ""


if __name__ == "__main__":
    report = main()
    p, f = report.print()
    print("%d passed, %d failed" % (p, f), flush=True)
    sys.exit(1 if f else 0)
