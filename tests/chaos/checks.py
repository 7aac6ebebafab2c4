"""What a chaos run checks once it is over, apart from lincheck.

Every function returns a list of problems (strings); empty means the check passed. They read the
recorded operations (workload.Op) and the final state read straight from a redis-server.

What each consistency level promises (docs/consistency.md), and how it is checked here:
  every level   a value read was committed at some point: a register read returns nil or a value
                some write to that key sent (not one known to have failed) before the read ended;
                a list read is a prefix of the key's final list (lists only grow, and every
                replica applies the same order); a counter read lies between 0 and the final
                value.
  SESSION       per connection, read-your-writes and monotonic reads: a read never returns a
                value older than this connection's own last acknowledged write, or than what
                it read before. "Older" is only claimed when it is certain: the other write was
                acknowledged before the newer one was sent (writes are linearizable at every
                level). Lists: a read holds every element this connection appended, and is never
                shorter than its previous read. Counters: never below the last value this
                connection's INCR returned or its previous read.
  EVENTUAL      the every-level rules above; replicas converging is the dataset comparison.
  LINEARIZABLE  build/lincheck, on the history file.
"""


def writers(ops):
    """value -> the operation that tried to write it (write, cas's new value, append)."""
    w = {}
    for op in ops:
        if op.f == "write" or op.f == "append":
            w[op.value] = op
        elif op.f == "cas":
            w[op.value[1]] = op
    return w


def applied_maybe(op):
    """Could this write have taken effect? (cas 'fail' is a cas that found another value.)"""
    return op.type in ("ok", "info")


def committed_reads(ops, final, allw):
    """The every-level rules; allw = writers() over every level's operations."""
    probs = []
    invoked_incr = {}
    for op in sorted(ops, key=lambda o: o.t0):
        if op.f == "incr":
            invoked_incr.setdefault(op.key, []).append(op.t0)
    for op in ops:
        if op.type != "ok":
            continue
        if op.f == "read" and ":r" in op.key and op.out is not None:
            w = allw.get(op.out)
            if w is None:
                probs.append("read a value nobody wrote: %r" % op)
            elif w.key != op.key:
                probs.append("read a value written to %s (a reply meant for another request?):"
                             " %r" % (w.key, op))
            elif not applied_maybe(w):
                probs.append("read the value of a write that was reported as not applied: %r "
                             "(the write: %r)" % (op, w))
            elif w.t0 > op.t1:
                probs.append("read a value written only after the read ended: %r (the write: "
                             "%r)" % (op, w))
        elif op.f == "readlist":
            fl = final.get(op.key) or []
            if op.out != fl[:len(op.out)]:
                probs.append("list read is not a prefix of the final list %s: %r" % (
                    short(fl), op))
            for v in op.out:
                w = allw.get(v)
                if w is None or w.key != op.key:
                    probs.append("list read holds %d, which was not appended to %s: %r" % (
                        v, op.key, op))
                    break
        elif op.f == "read" and ":c" in op.key:
            fv = final.get(op.key) or 0
            sent = sum(1 for t in invoked_incr.get(op.key, []) if t < op.t1)
            if not 0 <= op.out <= min(fv, sent):
                probs.append("counter read %d outside [0, min(final %d, INCRs sent %d)]: %r" % (
                    op.out, fv, sent, op))
    return probs


def short(lst, n=8):
    if len(lst) <= n:
        return str(lst)
    return "[%s ... %s] (%d)" % (", ".join(map(str, lst[:3])), ", ".join(map(str, lst[-3:])),
                                 len(lst))


def session(ops, allw):
    """Read-your-writes and monotonic reads per connection (SESSION clients)."""
    probs = []
    by_conn = {}
    for op in ops:
        by_conn.setdefault(op.conn, []).append(op)

    def older(u, v):
        """True if the write of u certainly took effect before the write of v (u != v):
        u's write was acknowledged before v's was sent; None (nil) is older than any write."""
        if u == v:
            return False
        if u is None:
            return True
        if v is None:
            return False
        wu, wv = allw.get(u), allw.get(v)
        return wu is not None and wv is not None and wu.type == "ok" and wu.t1 < wv.t0

    for conn, cops in by_conn.items():
        cops.sort(key=lambda o: o.t0)
        own = {}  # register key -> (value, op) of our last acknowledged write
        seen = {}  # register/counter key -> (value, op) we last read
        appended = {}  # list key -> values we appended (acknowledged)
        last_list = {}  # list key -> (length, op) of our last list read
        incr_max = {}  # counter key -> (value, op) of our last INCR
        for op in cops:
            if op.type != "ok":
                continue
            k = op.key
            if op.f == "write":
                own[k] = (op.value, op)
            elif op.f == "cas":
                own[k] = (op.value[1], op)
            elif op.f == "append":
                appended.setdefault(k, set()).add(op.value)
            elif op.f == "incr":
                incr_max[k] = (op.out, op)
            elif op.f == "read" and ":r" in k:
                v = op.out
                if k in own and older(v, own[k][0]):
                    probs.append("read-your-writes: %r after this connection's %r" % (
                        op, own[k][1]))
                if k in seen and older(v, seen[k][0]):
                    probs.append("monotonic reads: %r after this connection read %r" % (
                        op, seen[k][1]))
                seen[k] = (v, op)
            elif op.f == "read" and ":c" in k:
                if k in incr_max and op.out < incr_max[k][0]:
                    probs.append("read-your-writes: %r after this connection's %r" % (
                        op, incr_max[k][1]))
                if k in seen and op.out < seen[k][0]:
                    probs.append("monotonic reads: %r after %r" % (op, seen[k][1]))
                seen[k] = (op.out, op)
            elif op.f == "readlist":
                missing = appended.get(k, set()) - set(op.out)
                if missing:
                    probs.append("read-your-writes: %r lacks this connection's appends %s" % (
                        op, sorted(missing)[:5]))
                if k in last_list and len(op.out) < last_list[k][0]:
                    probs.append("monotonic reads: %r is shorter than %r" % (op,
                                                                             last_list[k][1]))
                last_list[k] = (len(op.out), op)
    return probs


def lost_writes(ops, final):
    """Acknowledged appends and INCRs are all in the final state."""
    probs = []
    ok_incr = {}
    for op in ops:
        if op.f == "append" and op.type == "ok" and op.value not in (final.get(op.key) or []):
            probs.append("acknowledged append lost: %r (final %s)" % (op, short(
                final.get(op.key) or [])))
        elif op.f == "incr" and op.type == "ok":
            ok_incr.setdefault(op.key, []).append(op.out)
    for k, outs in ok_incr.items():
        fv = final.get(k) or 0
        if fv < len(outs) or fv < max(outs):
            probs.append("counter %s is %d after %d acknowledged INCRs (highest reply %d)" % (
                k, fv, len(outs), max(outs)))
    return probs


def double_applied(ops, final):
    """No list holds a value twice; no counter counts more INCRs than were sent; no two INCRs
    got the same reply."""
    probs = []
    for k, v in final.items():
        if isinstance(v, list) and len(set(v)) != len(v):
            dup = sorted({x for x in v if v.count(x) > 1})
            probs.append("list %s holds %s more than once" % (k, dup[:5]))
    sent = {}
    replies = {}
    for op in ops:
        if op.f == "incr":
            if op.type in ("ok", "info"):
                sent[op.key] = sent.get(op.key, 0) + 1
            if op.type == "ok":
                if op.out in replies.setdefault(op.key, {}):
                    probs.append("two INCRs of %s got %d: %r and %r" % (
                        op.key, op.out, replies[op.key][op.out], op))
                replies[op.key][op.out] = op
    for k, n in sent.items():
        if (final.get(k) or 0) > n:
            probs.append("counter %s is %d but only %d INCRs may have been applied" % (
                k, final.get(k), n))
    return probs


def failed_not_applied(ops, final, allw, reads):
    """A write answered 'not applied' (CLUSTERDOWN before proposal, TRYAGAIN, a cas that found
    another value) is never seen: not in a final list, not read by anyone."""
    probs = []
    for op in ops:
        if op.type != "fail" or op.f not in ("write", "append", "cas"):
            continue
        if op.f == "append" and op.value in (final.get(op.key) or []):
            probs.append("a write reported as not applied is in the final list: %r" % op)
    for op in reads:
        if op.type == "ok" and op.f == "read" and ":r" in op.key and op.out is not None:
            w = allw.get(op.out)
            if w is not None and w.type == "fail":
                probs.append("read the value of a write reported as not applied: %r (the write:"
                             " %r)" % (op, w))
    return probs


def wrong_client(violations):
    return ["%s: %s" % v for v in violations]


def compare_datasets(datasets):
    """datasets: node name -> {(db, key): (dump, pexpiretime)}. Problems: every difference."""
    probs = []
    names = sorted(datasets)
    if not names:
        return ["no replica to compare"]
    ref = names[0]
    for n in names[1:]:
        a, b = datasets[ref], datasets[n]
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        diff = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        if only_a:
            probs.append("%d keys on %s but not on %s, e.g. %s" % (len(only_a), ref, n,
                                                                   only_a[:3]))
        if only_b:
            probs.append("%d keys on %s but not on %s, e.g. %s" % (len(only_b), n, ref,
                                                                   only_b[:3]))
        for k in diff[:3]:
            probs.append("%s differs between %s and %s: %r vs %r" % (
                k, ref, n, (a[k][0][:40], a[k][1]), (b[k][0][:40], b[k][1])))
        if len(diff) > 3:
            probs.append("... and %d more keys differ" % (len(diff) - 3))
    return probs


def runaway_writes(datasets, prefix):
    """The INCR of a script that wrote and ran away until SHUTDOWN NOSAVE ended it: its entry
    is a no-op everywhere, so no replica holds its key (runaway-script)."""
    probs = []
    for name in sorted(datasets):
        keys = sorted(k for (db, k) in datasets[name] if k.startswith(prefix))
        if keys:
            probs.append("%s holds %d keys of killed scripts, e.g. %s" % (name, len(keys),
                                                                         keys[:3]))
    return probs
