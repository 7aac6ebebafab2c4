#!/usr/bin/python3
"""Each check of the chaos harness, fed a small history it must accept and one it must reject.

A check that cannot fail proves nothing: this shows every one of them failing on the violation
it is for (a lost append, a double INCR, a stale session read, a read of a failed write, a
diverged replica, ...), and passing on a correct history. With build/lincheck present it also
gives lincheck a linearizable and a non-linearizable history in our file format.
Prints "PASS name" / "FAIL name: why" per case and "N passed, M failed".
Usage: tests/chaos/test_checks.py [--build DIR]
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks  # noqa: E402
from workload import Op, history_lines  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
results = []


def case(name, got_problems, want_fail):
    ok = bool(got_problems) == want_fail
    detail = got_problems[0] if got_problems else "no problem found"
    results.append((ok, name, detail))


class H:
    """Builds a history: ops on connection/process ids, times in steps of 10."""

    def __init__(self, level="session"):
        self.ops = []
        self.t = 0
        self.level = level

    def op(self, f, key, value=None, typ="ok", out=None, conn=1, pid=None, t0=None, t1=None):
        if t0 is None:
            self.t += 10
            t0 = self.t
        if t1 is None:
            t1 = t0 + 5
        self.t = max(self.t, t1)
        o = Op(pid if pid is not None else conn, conn, 1, self.level, f, key, value)
        o.type, o.out, o.t0, o.t1 = typ, out, t0, t1
        self.ops.append(o)
        return o


def session_cases():
    # Read-your-writes on a register.
    h = H()
    h.op("write", "ses:r0:g0", 1, conn=2)
    h.op("write", "ses:r0:g0", 2, conn=1)
    h.op("read", "ses:r0:g0", out=2, conn=1)
    case("session: reading one's own write passes", checks.session(h.ops, checks.writers(h.ops)),
         False)
    h.ops[-1].out = 1
    case("session: reading an older value than one's own write fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    h.ops[-1].out = None
    case("session: reading nil after one's own write fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    # A concurrent write may legitimately be read after one's own.
    h = H()
    w1 = h.op("write", "ses:r0:g0", 1, conn=2, t0=10, t1=40)
    h.op("write", "ses:r0:g0", 2, conn=1, t0=20, t1=30)
    h.op("read", "ses:r0:g0", out=1, conn=1, t0=50, t1=55)
    case("session: a concurrent write read after one's own passes",
         checks.session(h.ops, checks.writers(h.ops)), False)
    w1.t1 = 15  # now it was acknowledged before ours was sent: older
    case("session: a write older than one's own read after it fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    # Monotonic reads.
    h = H()
    h.op("write", "ses:r1:g0", 5, conn=2)
    h.op("write", "ses:r1:g0", 6, conn=2)
    h.op("read", "ses:r1:g0", out=6, conn=1)
    h.op("read", "ses:r1:g0", out=5, conn=1)
    case("session: going back to an older value fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    h.ops[-1].out = 6
    case("session: reading the same value again passes",
         checks.session(h.ops, checks.writers(h.ops)), False)
    # Lists and counters.
    h = H()
    h.op("append", "ses:l0:g0", 7)
    h.op("readlist", "ses:l0:g0", out=[])
    case("session: a list read without one's own append fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    h.ops[-1].out = [7]
    h.op("readlist", "ses:l0:g0", out=[])
    case("session: a list read shorter than the previous one fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    h = H()
    h.op("incr", "ses:c0:g0", out=3)
    h.op("read", "ses:c0:g0", out=2)
    case("session: a counter read below one's own INCR fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    h.ops[-1].out = 3
    h.op("read", "ses:c0:g0", out=4)
    h.op("read", "ses:c0:g0", out=3)
    case("session: a counter read going down fails",
         checks.session(h.ops, checks.writers(h.ops)), True)
    # Another connection is another session.
    h = H()
    h.op("write", "ses:r0:g0", 1, conn=1)
    h.op("write", "ses:r0:g0", 2, conn=1)
    h.op("read", "ses:r0:g0", out=1, conn=3)
    case("session: a stale read on another connection is not a session violation",
         checks.session(h.ops, checks.writers(h.ops)), False)


def committed_cases():
    h = H("eventual")
    h.op("write", "evt:r0:g0", 1)
    h.op("read", "evt:r0:g0", out=1)
    h.op("read", "evt:r0:g0", out=None)
    final = {"evt:r0:g0": 1}
    case("every level: reading written values (or nil) passes",
         checks.committed_reads(h.ops, final, checks.writers(h.ops)), False)
    h.op("read", "evt:r0:g0", out=99)
    case("every level: reading a value nobody wrote fails",
         checks.committed_reads(h.ops, final, checks.writers(h.ops)), True)
    h = H("eventual")
    h.op("write", "evt:r1:g0", 4)
    h.op("read", "evt:r0:g0", out=4)
    case("every level: reading another key's value (a misrouted reply) fails",
         checks.committed_reads(h.ops, {}, checks.writers(h.ops)), True)
    h = H("eventual")
    h.op("write", "evt:r0:g0", 4, typ="fail")
    h.op("read", "evt:r0:g0", out=4)
    case("every level: reading a write reported as not applied fails",
         checks.committed_reads(h.ops, {}, checks.writers(h.ops)), True)
    h = H("eventual")
    h.op("read", "evt:r0:g0", out=4, t0=10, t1=20)
    h.op("write", "evt:r0:g0", 4, t0=30, t1=40)
    case("every level: reading a value from the future fails",
         checks.committed_reads(h.ops, {}, checks.writers(h.ops)), True)
    h = H("eventual")
    h.op("append", "evt:l0:g0", 1)
    h.op("append", "evt:l0:g0", 2)
    h.op("readlist", "evt:l0:g0", out=[1])
    case("every level: a list read that is a prefix of the final list passes",
         checks.committed_reads(h.ops, {"evt:l0:g0": [1, 2]}, checks.writers(h.ops)), False)
    h.ops[-1].out = [2]
    case("every level: a list read in another order than the final list fails",
         checks.committed_reads(h.ops, {"evt:l0:g0": [1, 2]}, checks.writers(h.ops)), True)
    h = H("eventual")
    h.op("incr", "evt:c0:g0", out=1)
    h.op("read", "evt:c0:g0", out=2)
    case("every level: a counter read above the INCRs sent fails",
         checks.committed_reads(h.ops, {"evt:c0:g0": 5}, checks.writers(h.ops)), True)


def global_cases():
    h = H("linearizable")
    h.op("append", "lin:l0:g0", 1)
    h.op("append", "lin:l0:g0", 2, typ="info")
    h.op("append", "lin:l0:g0", 3, typ="fail")
    h.op("incr", "lin:c0:g0", out=1)
    h.op("incr", "lin:c0:g0", typ="info")
    case("lost writes: all acknowledged writes present passes",
         checks.lost_writes(h.ops, {"lin:l0:g0": [1], "lin:c0:g0": 1}), False)
    case("lost writes: an acknowledged append missing fails",
         checks.lost_writes(h.ops, {"lin:l0:g0": [2], "lin:c0:g0": 1}), True)
    case("lost writes: a counter below its acknowledged INCRs fails",
         checks.lost_writes(h.ops, {"lin:l0:g0": [1], "lin:c0:g0": 0}), True)
    case("applied twice: a counter within sent INCRs passes",
         checks.double_applied(h.ops, {"lin:l0:g0": [1, 2], "lin:c0:g0": 2}), False)
    case("applied twice: a list holding a value twice fails",
         checks.double_applied(h.ops, {"lin:l0:g0": [1, 2, 1], "lin:c0:g0": 1}), True)
    case("applied twice: a counter above the INCRs sent fails",
         checks.double_applied(h.ops, {"lin:l0:g0": [1], "lin:c0:g0": 3}), True)
    h.op("incr", "lin:c0:g0", out=1)
    case("applied twice: two INCRs with the same reply fail",
         checks.double_applied(h.ops, {"lin:l0:g0": [1], "lin:c0:g0": 3}), True)
    allw = checks.writers(h.ops)
    case("failed writes: a failed append absent passes",
         checks.failed_not_applied(h.ops, {"lin:l0:g0": [1, 2]}, allw, h.ops), False)
    case("failed writes: a failed append in the final list fails",
         checks.failed_not_applied(h.ops, {"lin:l0:g0": [1, 3]}, allw, h.ops), True)
    case("wrong client: no violation passes", checks.wrong_client([]), False)
    case("wrong client: an ECHO mismatch fails",
         checks.wrong_client([("wrong reply", "ECHO x answered b'y'")]), True)
    a = {(0, b"k"): (b"dump1", -1), (1, b"j"): (b"d", 5)}
    case("replicas: equal datasets pass", checks.compare_datasets({"n1": a, "n2": dict(a)}),
         False)
    case("replicas: a value that differs fails", checks.compare_datasets(
        {"n1": a, "n2": {(0, b"k"): (b"dump2", -1), (1, b"j"): (b"d", 5)}}), True)
    case("replicas: an expiry time that differs fails", checks.compare_datasets(
        {"n1": a, "n2": {(0, b"k"): (b"dump1", -1), (1, b"j"): (b"d", 6)}}), True)
    case("replicas: a key on one replica only fails", checks.compare_datasets(
        {"n1": a, "n2": {(0, b"k"): (b"dump1", -1)}}), True)
    ra = {(0, b"chaos:runaway:1:1"): (b"d", -1)}
    case("runaway: no killed script's key passes", checks.runaway_writes(
        {"n1": a, "n2": dict(a)}, b"chaos:runaway:"), False)
    case("runaway: a killed script's INCR on a replica fails", checks.runaway_writes(
        {"n1": a, "n2": dict(list(a.items()) + list(ra.items()))}, b"chaos:runaway:"), True)


def lincheck_cases(build):
    binary = os.environ.get("CHAOS_LINCHECK") or os.path.join(build, "lincheck")
    if not os.path.exists(binary):
        print("SKIP lincheck on known histories: %s is missing" % binary)
        return
    good = H("linearizable")
    good.op("write", "lin:r0:g0", 1, pid=1, t0=10, t1=20)
    good.op("read", "lin:r0:g0", out=1, pid=2, t0=30, t1=40)
    good.op("append", "lin:l0:g0", 5, pid=1, t0=50, t1=60)
    good.op("readlist", "lin:l0:g0", out=[5], pid=2, t0=70, t1=80)
    good.op("incr", "lin:c0:g0", out=1, pid=3, t0=10, t1=90)
    good.op("cas", "lin:r0:g0", (1, 2), pid=3, t0=100, t1=110)
    good.op("write", "lin:r0:g0", 9, typ="info", pid=4, t0=100, t1=120)
    good.op("read", "lin:r0:g0", out=9, pid=5, t0=130, t1=140)
    stale = H("linearizable")
    stale.op("write", "lin:r0:g0", 1, pid=1, t0=10, t1=20)
    stale.op("write", "lin:r0:g0", 2, pid=1, t0=30, t1=40)
    stale.op("read", "lin:r0:g0", out=1, pid=2, t0=50, t1=60)
    with tempfile.TemporaryDirectory() as d:
        for name, h, want in (("a linearizable history", good, 0),
                              ("a stale read", stale, 1)):
            path = os.path.join(d, "h.txt")
            with open(path, "w") as f:
                f.write("# test\n" + "\n".join(history_lines(h.ops)) + "\n")
            with open(path) as f:
                r = subprocess.run([binary, path], stdin=f, capture_output=True, text=True,
                                   timeout=60)
            ok = r.returncode == want
            results.append((ok, "lincheck on %s exits %d" % (name, want),
                            "exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-300:])))


def main():
    build = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--build" else \
        os.environ.get("BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    session_cases()
    committed_cases()
    global_cases()
    lincheck_cases(build)
    passed = failed = 0
    for ok, name, detail in results:
        if ok:
            passed += 1
            print("PASS checks: %s" % name)
        else:
            failed += 1
            print("FAIL checks: %s: %s" % (name, detail))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
