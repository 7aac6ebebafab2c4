#!/usr/bin/env bash
# Installs the Debian packages redraft needs to build and test, when run as root; otherwise
# prints the exact apt-get line and fails. Installing redis-server must not leave the packaged
# service running: only the servers the tests and the demo start should be up.
# `scripts/deps.sh fuzz` adds what `make fuzz` needs (clang and its libFuzzer runtime); the
# plain run leaves them out, since `make test` replays the fuzz corpus with the normal compiler.
set -eu

PKGS=(build-essential pkg-config libev-dev libhiredis-dev librocksdb-dev libcmocka-dev
      redis-server redis-tools tcl dpkg-dev python3-redis python3-yaml)
# The chaos harness's faults (tests/chaos): partitions, clock faults, the power-loss filesystem.
# Kept apart from PKGS, which is also what the Docker build stage must install (check-contrib.sh).
CHAOS_PKGS=(iptables faketime libfuse3-dev fuse3)
for group in "$@"; do
    case "$group" in
        fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
        *) echo "deps.sh: unknown group '$group' (known: fuzz)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${PKGS[@]}" "${CHAOS_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "redraft needs these Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "installing: ${missing[*]}"
redis_was_installed=1
dpkg-query -W -f='${Status}' redis-server 2>/dev/null | grep -q "install ok installed" || redis_was_installed=0

# Keep package scripts from starting services while we install (policy-rc.d exit 101 = deny).
policy=${DEPS_POLICY_RC:-/usr/sbin/policy-rc.d} # overridden only by tests/tools/test_deps.sh
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
# An if, not `[ ] && rm`: the trap's last status becomes the script's exit status, and a
# policy-rc.d that was already there (every Debian container image) would make it 1.
cleanup() {
    if [ "$made_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once when they are missing or older than a day.
lists=${DEPS_APT_LISTS:-/var/lib/apt/lists}
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"

if [ "$redis_was_installed" -eq 0 ] && command -v systemctl >/dev/null 2>&1 &&
   systemctl is-system-running >/dev/null 2>&1; then
    # We brought the package in: its service is not ours to run.
    systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
exit 0
