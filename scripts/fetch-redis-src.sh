#!/bin/sh
# Fetch Debian's source package of redis, for the exact redis-server version
# installed here, into .cache/redis-src/ and print the path of the unpacked tree.
#
# Why: the integration tests use Redis's own Tcl client (tests/support/redis.tcl)
# and the compat tests run Redis's own suite through the proxy.  Both must match
# the redis-server we run against, so we take the source of that very version
# from Debian instead of copying Redis's code into this repository.
#
# Idempotent: if the tree for this version is already unpacked, only prints it.
# Needs root the first time (it may add a deb-src entry, run apt-get update and
# install dpkg-dev).  Everything it prints besides the path goes to stderr.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/redis-src"

log() { echo "fetch-redis-src: $*" >&2; }
die() { log "$*"; exit 1; }

version=$(dpkg-query -W -f='${source:Version}' redis-server 2>/dev/null) ||
	die "redis-server is not installed (apt-get install redis-server)"
[ -n "$version" ] || die "cannot tell the version of redis-server"
upstream=${version#*:}    # 5:7.0.15-1~deb12u10 -> 7.0.15-1~deb12u10
upstream=${upstream%-*}   # -> 7.0.15
stamp="$cache/$version.done"
tree="$cache/redis-$upstream"

have_tree() {
	[ -f "$stamp" ] && [ -f "$tree/tests/support/redis.tcl" ] &&
		[ -f "$tree/tests/test_helper.tcl" ]
}

if have_tree; then
	echo "$tree"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root once to fetch the redis source (needs apt)"

# deb-src: present when a one-line entry starts with deb-src or a deb822 stanza
# lists deb-src in its Types.
has_deb_src() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && grep -Eiq '^[[:space:]]*Types:.*deb-src' "$f" && return 0
	done
	return 1
}

# The URLs of active (not commented out) apt entries, one a line.
apt_urls() {
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -e 's/#.*//' | grep -Eo 'https?://[^ ]+' || true
}

updated=0
if ! has_deb_src; then
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell the Debian codename from /etc/os-release"
	# Use the same mirror the system uses for its binaries, if we can see it.
	mirror=$(apt_urls | grep -E '/debian/?$' | head -n1 || true)
	mirror=${mirror:-http://deb.debian.org/debian}
	mirror=${mirror%/}
	security=$(apt_urls | grep -E '/debian-security/?$' | head -n1 || true)
	security=${security:-http://deb.debian.org/debian-security}
	security=${security%/}
	# apt refuses two entries for one source with different Signed-By, so
	# reuse the keyring the system's own entries name, if any.
	signed=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | sed -e 's/#.*//' |
		grep -Eio '(signed-by[:=][[:space:]]*)[^] ]+' | head -n1 |
		sed -E 's/^[Ss]igned-[Bb]y[:=][[:space:]]*//' || true)
	opt=
	[ -n "$signed" ] && opt="[signed-by=$signed] "
	list=/etc/apt/sources.list.d/redraft-src.list
	log "adding $list (deb-src for $codename)"
	cat >"$list" <<EOF
# Added by redraft's scripts/fetch-redis-src.sh: source packages, so that
# 'apt-get source redis' can fetch the source of the installed redis-server.
deb-src $opt$mirror $codename main
deb-src $opt$mirror $codename-updates main
deb-src $opt$security $codename-security main
EOF
	log "apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
	updated=1
fi

if ! command -v dpkg-source >/dev/null 2>&1; then
	if [ "$updated" = 0 ]; then
		apt-get update -qq >&2 || die "apt-get update failed"
		updated=1
	fi
	log "installing dpkg-dev (apt-get source needs dpkg-source)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >&2 ||
		die "cannot install dpkg-dev"
fi

mkdir -p "$cache"
# Fetch into a scratch folder first so a half-done fetch never looks done.
work="$cache/.fetch.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT INT TERM

# The exact Debian revision may have left the archive after a newer security
# update; then any revision of the same upstream version has the same tests/.
fetch() {
	(cd "$work" && apt-get source -qq "redis=$version" >&2) && return 0
	log "redis=$version is not in the archive; trying the newest redis source"
	rm -rf "$work"/*
	(cd "$work" && apt-get source -qq redis >&2) || return 1
	[ -d "$work/redis-$upstream" ] && return 0
	log "the archive's redis source is not upstream $upstream"
	return 1
}
if ! fetch; then
	if [ "$updated" = 0 ]; then
		# The source lists may be stale (a newer security update); refresh once.
		log "apt-get source failed; apt-get update and retry"
		apt-get update -qq >&2 || die "apt-get update failed"
		rm -rf "$work"/*
		fetch || die "apt-get source redis=$version failed"
	else
		die "apt-get source redis=$version failed"
	fi
fi

unpacked=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' | head -n1)
[ -n "$unpacked" ] && [ -f "$unpacked/tests/support/redis.tcl" ] ||
	die "apt-get source did not leave a redis tree with tests/support/redis.tcl"
rm -rf "$tree"
mv "$unpacked" "$tree"
touch "$stamp"
log "redis $version source in $tree"
echo "$tree"
