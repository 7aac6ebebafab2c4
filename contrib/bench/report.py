#!/usr/bin/env python3
"""Turns contrib/bench/bench.sh's results.tsv into the report: a table of medians over the
rounds, each figure with its ratio to raw Redis measured in the same round, the resource
figures of the redraft processes, and the issue's targets marked met or missed.

Usage: report.py results.tsv clk_tck rounds n n1 np elapsed quick

results.tsv lines (tab-separated):
  idle  node  rss_kb
  peak  phase node role hwm_kb
  run   phase round test target rps p50 p99 seconds cpu_ticks fsyncs extra
"""
import statistics
import sys
from collections import OrderedDict, defaultdict

path, clk, rounds, n, n1, np_, elapsed, quick = sys.argv[1:9]
clk = float(clk)

idle = OrderedDict()
peaks = []
runs = OrderedDict()  # (phase, test) -> target -> round -> record
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if f[0] == "idle":
        idle[f[1]] = int(f[2]) if f[2].isdigit() else None
    elif f[0] == "peak":
        peaks.append((f[1], f[2], f[3], int(f[4]) if f[4].isdigit() else None))
    elif f[0] == "run":
        phase, rnd, test, target, rps, p50, p99, secs, ticks, fsyncs, extra = f[1:12]
        rec = {"secs": float(secs), "ticks": int(ticks), "fsyncs": int(fsyncs), "extra": extra}
        if rps != "FAIL":
            rec.update(rps=float(rps), p50=float(p50), p99=float(p99))
        runs.setdefault((phase, test), {}).setdefault(target, {})[int(rnd)] = rec

TARGETS = ["raw", "aof", "single", "cluster"]
REDRAFT = ("single", "cluster")  # CPU% and fsyncs/s are measured for these


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def label(phase, test):
    if test.startswith("GET"):
        return "%s [%s]" % (test, phase.upper())
    if test.startswith("MIX"):
        return "%s [GET %s]" % (test, phase.upper())
    return test


def figures(phase, test, target):
    """Medians over the rounds of each figure and of its per-round ratio to raw."""
    mine = runs.get((phase, test), {}).get(target, {})
    raw = runs.get((phase, test), {}).get("raw", {})
    out = {"ok": sum(1 for r in mine.values() if "rps" in r), "n": len(mine)}
    for k in ("rps", "p50", "p99"):
        out[k] = med([r.get(k) for r in mine.values()])
        ratios = []
        for rnd, r in mine.items():
            b = raw.get(rnd, {})
            if k in r and b.get(k):
                ratios.append(r[k] / b[k])
        out[k + "_x"] = med(ratios)
    out["cpu"] = med([100.0 * r["ticks"] / clk / r["secs"] for r in mine.values()
                      if r["secs"] > 0 and "rps" in r])
    out["fps"] = med([r["fsyncs"] / r["secs"] for r in mine.values()
                      if r["secs"] > 0 and "rps" in r])
    out["moved"] = any("leader-changed" in r["extra"] for r in mine.values())
    return out


def fmt(v, spec, width):
    return ("%" + spec) % v if v is not None else "-".rjust(width)


print()
print("redraft benchmark (contrib/bench/bench.sh)%s" % ("   *** QUICK SMOKE RUN ***" if quick == "1" else ""))
print("rounds: %s   requests: %s per -c50 run, %s per -P16 run, %s per -c1 run   wall time: %ss"
      % (rounds, n, np_, n1, elapsed))
print("figures are medians over the rounds; (x) is the median of the per-round ratio to raw Redis")
print("measured in the same round. CPU% and fsyncs/s are of the redraft the client talks to (the")
print("single node, or the cluster's leader) over the run; 100% = one core.")
print()
hdr = "%-44s %-8s %10s %6s %8s %6s %8s %6s %6s %8s" % (
    "test", "target", "ops/s", "(x)", "p50 ms", "(x)", "p99 ms", "(x)", "CPU%", "fsyncs/s")
print(hdr)
print("-" * len(hdr))
mix_detail = []
for (phase, test) in runs:
    first = True
    for target in TARGETS:
        if target not in runs[(phase, test)]:
            continue
        f = figures(phase, test, target)
        name = label(phase, test) if first else ""
        first = False
        if f["rps"] is None:
            print("%-44s %-8s %10s" % (name, target, "FAILED"))
            continue
        note = ""
        if f["ok"] < f["n"]:
            note += "  (%d of %d rounds failed)" % (f["n"] - f["ok"], f["n"])
        if f["moved"]:
            note += "  (leader changed during a run)"
        print("%-44s %-8s %10.0f %6s %8.3f %6s %8.3f %6s %6s %8s%s" % (
            name, target, f["rps"], fmt(f["rps_x"], ".2f", 6), f["p50"],
            fmt(f["p50_x"], ".2f", 6), f["p99"], fmt(f["p99_x"], ".2f", 6),
            fmt(f["cpu"] if target in REDRAFT else None, ".0f", 6),
            fmt(f["fps"] if target in REDRAFT else None, ".0f", 8), note))
        if test.startswith("MIX"):
            parts = defaultdict(list)
            for r in runs[(phase, test)][target].values():
                for kv in r["extra"].split(","):
                    if "=" in kv:
                        k, v = kv.split("=", 1)
                        parts[k].append(float(v))
            if parts:
                mix_detail.append((target, {k: med(v) for k, v in parts.items()}))
print("-" * len(hdr))
print("MIX: two redis-benchmark processes at once on the same target, GET with 45 clients and")
print("9/10 of the requests, SET with 5 clients and 1/10; ops/s is all requests over the wall time")
print("until both finished; p50/p99 in the table are the GET process's. Each part on its own:")
for target, d in mix_detail:
    print("  %-8s GET %8.0f ops/s p50 %.3f p99 %.3f ms | SET %8.0f ops/s p50 %.3f p99 %.3f ms" % (
        target, d.get("get_rps", 0), d.get("get_p50", 0), d.get("get_p99", 0),
        d.get("set_rps", 0), d.get("set_p50", 0), d.get("set_p99", 0)))
print()

# ---------------------------------------------------------------- resources
print("resources of the redraft processes")
for node, kb in idle.items():
    print("  idle RSS after start   %-8s %6.1f MB" % (node, kb / 1024.0 if kb else float("nan")))
idle_max = max([kb for kb in idle.values() if kb] or [0]) / 1024.0
for phase, node, role, kb in peaks:
    if role in ("leader", "single"):
        print("  peak RSS (VmHWM)       %-8s %6.1f MB  (%s, during the %s phase)" % (
            node, (kb or 0) / 1024.0, role, phase))
for target in ("single", "cluster"):
    ticks = secs = fs = 0
    for (phase, test), by in runs.items():
        for r in by.get(target, {}).values():
            if "rps" in r:
                ticks += r["ticks"]
                secs += r["secs"]
                fs += r["fsyncs"]
    if secs > 0:
        who = "leader" if target == "cluster" else "single"
        print("  %-7s over all its runs (%.0f s): CPU %.0f%%, %.0f fsyncs/s" % (
            who, secs, 100.0 * ticks / clk / secs, fs / secs))
print()

# ---------------------------------------------------------------- against a durable Redis
# The one durable alternative that runs here: a single redis-server with appendfsync always
# (durable on one disk, not replicated). Median of the per-round ratio, same round.
print("writes: 3-node cluster against Redis with appendfsync always (ops/s, median of the")
print("per-round ratios, same round)")
for (phase, test) in runs:
    if phase != "linearizable" or "aof" not in runs[(phase, test)] or \
            test.startswith(("GET", "LRANGE")):
        continue  # writes only: for reads both are Redis answering from memory
    mine = runs[(phase, test)].get("cluster", {})
    aof = runs[(phase, test)]["aof"]
    ratios = [r["rps"] / aof[rnd]["rps"] for rnd, r in mine.items()
              if "rps" in r and aof.get(rnd, {}).get("rps")]
    v = med(ratios)
    print("  %-46s %s" % (label(phase, test), "-" if v is None else "%.2fx" % v))
print()

# ---------------------------------------------------------------- targets
print("issue targets (3-node cluster vs raw Redis in the same round; reported, not enforced)")


def target_line(desc, phase, test, key, op, goal):
    if (phase, test) not in runs or "cluster" not in runs[(phase, test)]:
        print("  %-46s not measured in this run" % desc)
        return
    f = figures(phase, test, "cluster")
    v = f[key]
    if v is None:
        print("  %-46s MISSED  (the runs failed)" % desc)
        return
    met = v >= goal if op == ">=" else v <= goal
    unit = "x" if key.endswith("_x") else " ms"
    print("  %-46s %-7s %.2f%s (goal %s %.2f%s)" % (desc, "met" if met else "MISSED", v, unit, op,
                                                     goal, unit))


target_line("SET -c50 -P1 throughput", "linearizable", "SET -c50 -P1", "rps_x", ">=", 0.5)
target_line("SET -c50 -P16 throughput", "linearizable", "SET -c50 -P16", "rps_x", ">=", 0.3)
target_line("GET LINEARIZABLE -c50 -P1 throughput", "linearizable", "GET -c50 -P1", "rps_x", ">=", 0.8)
target_line("GET LINEARIZABLE -c50 -P16 throughput", "linearizable", "GET -c50 -P16", "rps_x", ">=", 0.5)
target_line("GET EVENTUAL -c50 -P16 throughput", "eventual", "GET -c50 -P16", "rps_x", ">=", 0.6)
target_line("SET -c1 -P1 p50 latency", "linearizable", "SET -c1 -P1", "p50", "<=", 0.4)
print("  %-46s %-7s %.1f MB (goal < 20 MB, largest of the 4 redrafts)" % (
    "idle RSS after start", "met" if 0 < idle_max < 20 else "MISSED", idle_max))
print()
print("bench: report complete")
