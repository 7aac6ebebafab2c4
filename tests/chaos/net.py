"""Network faults with iptables, confined to one chain of our own.

Every rule lives in the chain RDCHAOS-<pid>, jumped to from OUTPUT (loopback packets pass OUTPUT
once, so that is enough to drop them). A rule names the two node addresses and the run's cluster
bus port (either end: a node's packets to a peer go to the peer's bus port on the connections it
dialed and come from its own bus port on the ones it accepted), so concurrent runs, client
connections (from 127.0.0.1) and each node's link to its own redis-server are never touched.
Clean-up is one flush + delete of the chain; chains left by runs that were killed outright
(their pid is gone) are removed at the next start.
"""
import os
import re
import subprocess

CHAIN_PREFIX = "RDCHAOS-"


def ipt(*args, check=True):
    r = subprocess.run(["iptables", "-w", "5"] + list(args), capture_output=True, text=True,
                       timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("iptables %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def probe():
    """None if iptables can add and remove a rule on a chain of ours, else why not."""
    name = "RDCHAOS-probe-%d" % os.getpid()
    try:
        r = ipt("-N", name, check=False)
        if r.returncode != 0:
            return "iptables -N failed: %s" % (r.stderr.strip() or "status %d" % r.returncode)
        r = ipt("-A", name, "-s", "127.0.0.250", "-d", "127.0.0.251", "-p", "tcp", "-m",
                "statistic", "--mode", "random", "--probability", "0.5", "-j", "DROP", check=False)
        ok = r.returncode == 0
        why = r.stderr.strip()
        ipt("-F", name, check=False)
        ipt("-X", name, check=False)
        return None if ok else "iptables cannot add a rule: %s" % why
    except (OSError, subprocess.TimeoutExpired) as e:
        return "iptables unusable: %s" % e


def sweep_stale():
    """Removes chains of earlier runs whose process no longer exists."""
    r = ipt("-S", check=False)
    if r.returncode != 0:
        return []
    gone = []
    for name in sorted(set(re.findall(r"^-N (%s(?:probe-)?(\d+))$" % CHAIN_PREFIX, r.stdout,
                                      re.M))):
        chain, pid = name
        if os.path.exists("/proc/%s" % pid):
            continue
        ipt("-D", "OUTPUT", "-j", chain, check=False)
        ipt("-F", chain, check=False)
        ipt("-X", chain, check=False)
        gone.append(chain)
    return gone


class Firewall:
    def __init__(self, bus_port):
        self.chain = "%s%d" % (CHAIN_PREFIX, os.getpid())
        self.port = str(bus_port)
        self.active = False
        self.rules = 0

    def setup(self):
        ipt("-N", self.chain)
        self.active = True
        ipt("-I", "OUTPUT", "1", "-j", self.chain)

    def _rule(self, src, dst, extra=()):
        ipt("-A", self.chain, "-s", src, "-d", dst, "-p", "tcp", "-m", "multiport", "--ports",
            self.port, *extra, "-j", "DROP")
        self.rules += 1

    def block(self, src, dst, loss=None):
        """Drops src's packets to dst (all of them, or with probability `loss`)."""
        extra = ()
        if loss is not None:
            extra = ("-m", "statistic", "--mode", "random", "--probability", "%.3f" % loss)
        self._rule(src.addr, dst.addr, extra)

    def cut(self, a, b, loss=None):
        self.block(a, b, loss)
        self.block(b, a, loss)

    def partition(self, *groups):
        """No traffic between nodes of different groups."""
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        self.cut(a, b)

    def heal(self):
        if self.active:
            ipt("-F", self.chain)

    def teardown(self):
        if not self.active:
            return
        ipt("-D", "OUTPUT", "-j", self.chain, check=False)
        ipt("-F", self.chain, check=False)
        ipt("-X", self.chain, check=False)
        self.active = False
