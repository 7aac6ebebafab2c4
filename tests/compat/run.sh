#!/usr/bin/env bash
# Redis's own test suite (7.0, from Debian's source package) run through redraft.
#
#   tests/compat/run.sh [--fast] [--target redraft|redis|both] [--single unit/x]...
#                       [--keep] [--verbose]
#
# Starts a 3-node redraft cluster on loopback (3 redis-servers, 3 build/redraft), runs
# Redis's suite in external-server mode (`runtest --host --port`) against node 1, then the
# same units with the same flags against a plain redis-server, and prints both counts.
# The last line is redraft's: "N passed, M failed" (skipped tests count in neither).
#
#   --fast           the fast subset (FAST_UNITS below), redraft only; exit 0 only if
#                    redraft has no failure other than what tests/compat/skip.txt skips
#   --target T       redraft (default with --fast), redis, or both (default otherwise)
#   --single U       run only unit U (repeatable), e.g. --single unit/type/string
#   --keep           keep the temporary folder (logs of every unit and server)
#   --verbose        print every runtest line, not only the failures
#
# Environment: BUILD (default build) or REDRAFT_BIN (the binary to test),
# COMPAT_TIMEOUT (seconds for the whole run; default 5400, or 300 with --fast),
# COMPAT_UNIT_TIMEOUT (runtest --timeout: seconds without progress; default 120),
# COMPAT_NOSKIP=1 (ignore tests/compat/skip.txt: every test runs, and every gap it admits
# counts as the failure it is; docs/compat.md gives both counts).
#
# What is skipped and why is in tests/compat/skip.txt (see the header there); every
# process this script starts is killed by pid when it exits, and its temporary folder
# is removed (unless --keep).
set -u
# (All in main(): bash parses the whole file first, so editing it during a run is safe.)
main() {
cd "$(dirname "$0")/../.."
root=$(pwd)

FAST_UNITS="unit/type/string unit/keyspace unit/type/list unit/type/hash unit/type/set
unit/type/zset unit/multi unit/scripting unit/pubsub unit/expire unit/info-command unit/protocol"

fast=0
target=
keep=0
verbose=0
singles=()
while [ $# -gt 0 ]; do
	case "$1" in
	--fast) fast=1 ;;
	--target) target=${2:?--target needs redraft, redis or both}; shift ;;
	--single) singles+=("${2:?--single needs a unit}"); shift ;;
	--keep) keep=1 ;;
	--verbose) verbose=1 ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$target" ]; then
	if [ $fast = 1 ]; then target=redraft; else target=both; fi
fi
case "$target" in redraft | redis | both) ;; *) echo "run.sh: bad --target $target" >&2; exit 2 ;; esac

if [ $fast = 1 ]; then
	total_timeout=${COMPAT_TIMEOUT:-300}
else
	total_timeout=${COMPAT_TIMEOUT:-5400}
fi
unit_timeout=${COMPAT_UNIT_TIMEOUT:-120}
start_time=$(date +%s)
deadline=$((start_time + total_timeout))

log() { echo "compat: $*"; }
die() { echo "compat: $*" >&2; exit 2; }

bin=${REDRAFT_BIN:-$root/${BUILD:-build}/redraft}
[ -x "$bin" ] || die "no redraft binary at $bin (run make, or set BUILD / REDRAFT_BIN)"
command -v redis-server >/dev/null || die "redis-server is not installed"
command -v redis-cli >/dev/null || die "redis-cli is not installed"
command -v tclsh >/dev/null || die "tclsh is not installed"

src=$(scripts/fetch-redis-src.sh) || die "cannot fetch Redis's source (scripts/fetch-redis-src.sh)"
[ -f "$src/tests/test_helper.tcl" ] || die "no tests/test_helper.tcl in $src"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redraft-compat.XXXXXX")
pids=()     # servers we started
groups=()   # process groups of runtest runs (timeout makes one per run)

cleanup() {
	local p
	for p in "${groups[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${pids[@]}" "${groups[@]}"; do wait "$p" 2>/dev/null; done
	if [ $keep = 1 ]; then
		echo "compat: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'echo "compat: interrupted"; exit 130' INT TERM

# Our own copy of the binary: a rebuild during the run does not change what we test.
cp "$bin" "$tmp/redraft"
bin=$tmp/redraft

# ---------------------------------------------------------------------------------------
# The skip list.  Lines: `<entry>  # <reason>` (two or more blanks before the #), where
# <entry> is a test name, `/regexp` over test names, `tag:<tag>` (tests with that tag are
# not run: runtest --tags -<tag>), `unit:<unit>` (that unit is not run), or any of these
# prefixed `fast:` (only in --fast runs).  Blank lines and lines starting with # are
# comments.  An entry without a reason is an error.
skipfile=$tmp/skipfile   # test names and regexps, as runtest --skipfile reads them
: >"$skipfile"
denytags=()
skipunits=()
nskip_entries=0
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
	lineno=$((lineno + 1))
	case "$line" in '' | '#'*) continue ;; esac
	entry=$(printf '%s\n' "$line" | sed -E 's/[[:space:]]{2,}#[[:space:]].*$//')
	reason=$(printf '%s\n' "$line" | sed -nE 's/^.*[[:space:]]{2,}#[[:space:]]+(.*)$/\1/p')
	[ -n "$entry" ] && [ "$entry" != "$line" ] && [ -n "$reason" ] ||
		die "tests/compat/skip.txt:$lineno: an entry needs a reason: '<entry>  # <reason>'"
	case "$entry" in
	fast:*)
		[ $fast = 1 ] || continue
		entry=${entry#fast:} ;;
	esac
	nskip_entries=$((nskip_entries + 1))
	case "$entry" in
	tag:*) denytags+=("-${entry#tag:}") ;;
	unit:*) skipunits+=("${entry#unit:}") ;;
	*) printf '%s\n' "$entry" >>"$skipfile" ;;
	esac
done < <(if [ "${COMPAT_NOSKIP:-0}" = 1 ]; then :; else cat tests/compat/skip.txt; fi)

# The units: the suite's own list (runtest --list-tests), or the fast subset, or --single.
if [ ${#singles[@]} -gt 0 ]; then
	units=("${singles[@]}")
elif [ $fast = 1 ]; then
	units=()
	for u in $FAST_UNITS; do [ -f "$src/tests/$u.tcl" ] && units+=("$u"); done
else
	mapfile -t units < <(cd "$src" && tclsh tests/test_helper.tcl --list-tests)
fi
run_units=()
skipped_units=()
for u in "${units[@]}"; do
	skip=0
	for s in "${skipunits[@]}"; do [ "$s" = "$u" ] && skip=1; done
	if [ $skip = 1 ]; then skipped_units+=("$u"); else run_units+=("$u"); fi
done

# ---------------------------------------------------------------------------------------
# Servers.

# Free loopback ports (port and port+10000 both free), away from runtest's own range, and both
# below the kernel's ephemeral ports (from 32768), which any outgoing connection may take.
# free_ports N: N free ports; free_ports N block: the first of N consecutive free ones.
free_ports() { # count [block]
	tclsh /dev/stdin "$1" "${2:-}" "$$" <<'EOF'
lassign $argv n block seed
set base [expr {12000 + ($seed * 13) % 8000}]
proc free {p} {
    foreach q [list $p [expr {$p + 10000}]] {
        if {[catch {socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 $q} s]} {return 0}
        close $s
    }
    return 1
}
set out {}
for {set p $base} {[llength $out] < $n && $p < 22700} {incr p} {
    if {![free $p]} {
        if {$block ne {}} {set out {}}
        continue
    }
    lappend out $p
}
if {$block ne {}} {set out [lindex $out 0]}
puts $out
EOF
}

# Wait until `redis-cli -p port <cmd...>` prints something matching pattern.
wait_for() { # seconds port pattern cmd...
	local secs=$1 port=$2 pat=$3
	shift 3
	local end=$(($(date +%s) + secs))
	while [ "$(date +%s)" -lt $end ]; do
		# A command that hangs (a node held by CLIENT PAUSE, ...) must not hang the run.
		if timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null | grep -qE "$pat"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

start_redis() { # dir port
	mkdir -p "$1"
	redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
		--dir "$1" >"$1/redis.log" 2>&1 &
	last_pid=$!
	pids+=($!)
	wait_for 10 "$2" PONG ping || die "redis-server on port $2 did not start ($1/redis.log)"
}

# A 3-node cluster: node i has redis on rport[i], redraft on cport[i], bus on cport[i]+10000.
cluster_n=0
start_cluster() {
	cluster_n=$((cluster_n + 1))
	local base=$tmp/cluster$cluster_n ports i
	ports=($(free_ports 6))
	[ ${#ports[@]} = 6 ] || die "no free ports"
	rport=("${ports[@]:0:3}")
	cport=("${ports[@]:3:3}")
	cpids=()
	crpids=()
	for i in 0 1 2; do
		start_redis "$base/n$i" "${rport[$i]}"
		crpids+=("$last_pid")
	done
	for i in 0 1 2; do
		local args=(--port "${cport[$i]}" --bind 127.0.0.1 --redis "127.0.0.1:${rport[$i]}"
			--dir "$base/n$i/raft" --logfile "$base/n$i/redraft.log"
			--cluster-port $((cport[i] + 10000)) --cluster-secret x)
		if [ $i = 0 ]; then
			args+=(--cluster-init yes)
		else
			args+=(--cluster-join "127.0.0.1:${cport[0]}")
		fi
		"$bin" "${args[@]}" >"$base/n$i/redraft.out" 2>&1 &
		pids+=($!)
		cpids+=($!)
		wait_for 20 "${cport[$i]}" PONG ping ||
			die "redraft node $((i + 1)) did not start ($base/n$i/redraft.log)"
	done
	wait_for 60 "${cport[0]}" '^num_voters:3' raft.info ||
		die "the cluster did not reach 3 voters ($base/n*/redraft.log)"
	wait_for 30 "${cport[0]}" '^OK$' set compat:probe 1 ||
		die "the cluster does not take writes ($base/n*/redraft.log)"
	redis-cli -p "${cport[0]}" del compat:probe >/dev/null
	cluster_dir=$base
	log "cluster $cluster_n up: redraft ports ${cport[*]} (redis ${rport[*]}), logs in $base"
}

stop_cluster() {
	local p
	for p in "${cpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${cpids[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${crpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	# A redis-server busy in a script that never ends (a test that failed before its
	# SCRIPT KILL) ignores SIGTERM until the script ends: 5 s, then SIGKILL.
	local tries
	for p in "${crpids[@]}"; do
		for tries in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${crpids[@]}"; do wait "$p" 2>/dev/null; done
	# They are gone: forget their pids, which may be reused.
	local left=() q
	for p in "${pids[@]}"; do
		for q in "${cpids[@]}" "${crpids[@]}"; do [ "$p" = "$q" ] && continue 2; done
		left+=("$p")
	done
	pids=("${left[@]}")
}

# Is the cluster still serving (node 1 answers and takes a write)?
cluster_ok() {
	local p
	for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
	# A unit that failed before its CLIENT UNPAUSE leaves node 1 pausing writes: a fresh
	# server per unit would not carry it over either.
	timeout 5 redis-cli -p "${cport[0]}" client unpause >/dev/null 2>&1
	wait_for 15 "${cport[0]}" '^OK$' set compat:probe 1 || return 1
	timeout 5 redis-cli -p "${cport[0]}" del compat:probe >/dev/null
	return 0
}

# ---------------------------------------------------------------------------------------
# Running the suite.

# One runtest per unit, so that an exception (which ends a runtest) costs one unit only.
# Prints a line per unit and appends its counts to $tmp/<name>.counts.
run_suite() { # name port
	local name=$1 port=$2 u
	local work=$tmp/$name-suite
	mkdir -p "$work"
	cp -r "$src/tests" "$work/tests"
	rm -rf "$work/tests/tmp" && mkdir -p "$work/tests/tmp"
	# Some units run src/redis-cli, src/redis-benchmark...: the installed ones.
	mkdir -p "$work/src"
	for b in redis-cli redis-server redis-benchmark redis-check-aof redis-check-rdb; do
		command -v "$b" >/dev/null && ln -s "$(command -v "$b")" "$work/src/$b"
	done
	: >"$tmp/$name.counts"
	: >"$tmp/$name.failures"
	# runtest's own test server listens in [baseport-32, baseport): ours, so that two
	# runs at once do not collide.
	local baseport
	baseport=$(( $(free_ports 40 block) + 32 ))
	local flags=(--host 127.0.0.1 --port "$port" --durable --timeout "$unit_timeout"
		--skipfile "$skipfile" --baseport "$baseport" --portcount 8)
	[ ${#denytags[@]} -gt 0 ] && flags+=(--tags "${denytags[*]}")
	echo "$name: runtest ${flags[*]} --single <unit>" >"$tmp/$name.flags"
	for u in "${run_units[@]}"; do
		local now left out t0 rc
		out=$tmp/$name-$(echo "$u" | tr / _).log
		now=$(date +%s)
		left=$((deadline - now))
		if [ $left -le 5 ]; then
			log "$name: out of time (COMPAT_TIMEOUT=$total_timeout); $u and later units not run"
			echo "$u timeout 0 1 0 0" >>"$tmp/$name.counts"
			echo "[err]: $u not run: out of time" >>"$tmp/$name.failures"
			continue
		fi
		if [ "$name" = redraft ] && ! cluster_ok; then
			log "redraft: the cluster stopped serving before $u; its logs:"
			tail -n 5 "$cluster_dir"/n*/redraft.log "$cluster_dir"/n*/redraft.out 2>/dev/null | sed 's/^/    /'
			stop_cluster
			start_cluster
			port=${cport[0]}
			flags[3]=$port
			echo "[err]: cluster stopped serving before $u (restarted)" >>"$tmp/$name.failures"
			echo "restart restart 0 1 0 0" >>"$tmp/$name.counts"
		fi
		t0=$(date +%s)
		(cd "$work" && exec timeout -k 5 "$left" tclsh tests/test_helper.tcl "${flags[@]}" \
			--single "$u" </dev/null >"$out" 2>&1) &
		local g=$!
		groups=("$g")
		wait "$g"
		rc=$?
		groups=()   # finished: its pid may be reused, never signal it again
		# strip colours; runtest colours only on a terminal, but be safe
		sed -i -E 's/\x1b\[[0-9;]*m//g' "$out"
		local ok err exc skip ign tmo
		ok=$(grep -c '^\[ok\]:' "$out")
		err=$(grep -c '^\[err\]:' "$out")
		exc=$(grep -c '^\[exception\]:' "$out")
		skip=$(grep -c '^\[skip\]:' "$out")
		ign=$(grep -c '^\[ignore\]:' "$out")
		tmo=$(grep -c '^\[TIMEOUT\]:' "$out")
		local failed=$((err + exc + tmo))
		# A runtest that failed without saying why counts as one failure.
		if [ $rc -ne 0 ] && [ $failed = 0 ]; then
			failed=1
			echo "[err]: $u: runtest exited $rc without a test failure (see $out)" >>"$tmp/$name.failures"
		fi
		echo "$u $ok $failed $skip $ign $(( $(date +%s) - t0 ))" >>"$tmp/$name.counts"
		grep -E '^\[(err|exception|TIMEOUT)\]:' "$out" | sed "s|\$| [$u]|" >>"$tmp/$name.failures"
		printf '%s: %-28s %4d ok %4d failed %4d skipped %4d ignored  (%ds)\n' "$name" "$u" \
			"$ok" "$failed" "$skip" "$ign" $(( $(date +%s) - t0 ))
		if [ $verbose = 1 ]; then
			sed 's/^/    /' "$out"
		elif [ $failed -gt 0 ]; then
			# The failures with the first lines of their detail.
			awk '/^\[(err|exception|TIMEOUT)\]:/ {n = 4} n > 0 {print "    " $0; n--}' "$out"
		fi
	done
}

totals() { # name -> "passed failed skipped ignored"
	awk '{p += $2; f += $3; s += $4; i += $5} END {print p+0, f+0, s+0, i+0}' "$tmp/$1.counts"
}

# ---------------------------------------------------------------------------------------

log "Redis suite from $src"
log "units: ${#run_units[@]} to run${skipped_units[*]:+, skipped: ${skipped_units[*]}}"
if [ "${COMPAT_NOSKIP:-0}" = 1 ]; then
	log "COMPAT_NOSKIP=1: tests/compat/skip.txt ignored, nothing is skipped"
else
	log "skip.txt: $nskip_entries entries in force; runtest --tags '${denytags[*]}'"
fi

if [ "$target" = redis ] || [ "$target" = both ]; then
	ports=($(free_ports 1))
	start_redis "$tmp/plain" "${ports[0]}"
	log "plain redis-server $(redis-server --version | awk '{print $3}') on port ${ports[0]}"
	run_suite redis "${ports[0]}"
fi
if [ "$target" = redraft ] || [ "$target" = both ]; then
	start_cluster
	run_suite redraft "${cport[0]}"
fi

echo
end=$(date +%s)
log "took $((end - start_time))s"
for name in redis redraft; do
	[ -f "$tmp/$name.counts" ] || continue
	read -r p f s i <<<"$(totals $name)"
	log "$name: $p passed, $f failed, $s skipped (skip.txt), $i ignored (tags)"
done
if [ -f "$tmp/redraft.failures" ] && [ -s "$tmp/redraft.failures" ]; then
	echo
	echo "redraft failures:"
	sed 's/^/  /' "$tmp/redraft.failures"
fi
if [ -f "$tmp/redraft.counts" ]; then
	read -r p f s i <<<"$(totals redraft)"
elif [ -f "$tmp/redis.counts" ]; then
	read -r p f s i <<<"$(totals redis)"
fi
echo "$p passed, $f failed"
[ "$f" = 0 ]
}

main "$@"; exit $?
