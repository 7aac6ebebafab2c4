#!/usr/bin/env bash
# scripts/deps.sh against stub dpkg-query, apt-get and id (on PATH before the real ones), in a
# temporary folder: what it prints and its exit status when nothing is missing, when a package
# is missing and it is not root, and when it installs as root with /usr/sbin/policy-rc.d
# already there (every Debian container image) or not. Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/lists"
passed=0
failed=0

# Stubs. $tmp/installed lists installed packages; $tmp/uid is what `id -u` says; apt-get
# records its calls, and whether the policy file existed while it installed.
cat >"$tmp/bin/dpkg-query" <<'STUB'
#!/bin/sh
pkg=$(eval echo \${$#})
grep -qx "$pkg" "$STUB_DIR/installed" && printf 'install ok installed' && exit 0
exit 1
STUB
cat >"$tmp/bin/apt-get" <<'STUB'
#!/bin/sh
echo "apt-get $*" >>"$STUB_DIR/calls"
case "$1" in
update) exit 0 ;;
install)
    [ -e "$DEPS_POLICY_RC" ] && echo "policy present during install" >>"$STUB_DIR/calls"
    [ -e "$STUB_DIR/fail" ] && exit 100
    for a in "$@"; do case "$a" in -*|install) ;; *) echo "$a" >>"$STUB_DIR/installed" ;; esac; done
    exit 0 ;;
esac
exit 0
STUB
cat >"$tmp/bin/id" <<'STUB'
#!/bin/sh
cat "$STUB_DIR/uid"
STUB
chmod +x "$tmp/bin/"*

# Every package deps.sh asks for, so that one can be left out.
all_pkgs() {
    sed -n 's/^PKGS=(\(.*\)/\1/p; s/^      \(.*\))$/\1/p; s/^CHAOS_PKGS=(\(.*\))$/\1/p' \
        "$root/scripts/deps.sh" | tr ' ' '\n' | tr -d '()' | grep -v '^$'
}

# run <name> <uid> <missing package or ""> <policy: present|absent> <want status> <want text>
check() {
    local name=$1 uid=$2 missing=$3 policy=$4 want_rc=$5 want_text=$6
    rm -f "$tmp/calls" "$tmp/policy" "$tmp/fail"
    all_pkgs | grep -vx "$missing" >"$tmp/installed"
    echo "$uid" >"$tmp/uid"
    [ "$policy" = present ] && printf '#!/bin/sh\nexit 101\n' >"$tmp/policy"
    local out rc
    out=$(env PATH="$tmp/bin:$PATH" STUB_DIR="$tmp" DEPS_POLICY_RC="$tmp/policy" \
        DEPS_APT_LISTS="$tmp/lists" bash "$root/scripts/deps.sh" 2>&1)
    rc=$?
    local ok=1
    [ "$rc" -eq "$want_rc" ] || { ok=0; echo "  exit status $rc, wanted $want_rc"; }
    if [ -n "$want_text" ] && ! printf '%s\n' "$out" | grep -qF -- "$want_text"; then
        ok=0
        echo "  output lacks '$want_text': $out"
    fi
    if [ -z "$want_text" ] && [ -n "$out" ]; then
        ok=0
        echo "  unexpected output: $out"
    fi
    # The policy file deps.sh made is gone; one that was there stays.
    if [ "$policy" = present ] && [ ! -e "$tmp/policy" ]; then
        ok=0
        echo "  the policy-rc.d that was there was removed"
    fi
    if [ "$policy" = absent ] && [ -e "$tmp/policy" ]; then
        ok=0
        echo "  the policy-rc.d deps.sh made was left behind"
    fi
    if [ "$uid" = 0 ] && [ -n "$missing" ]; then
        grep -q "policy present during install" "$tmp/calls" 2>/dev/null ||
            { ok=0; echo "  packages were installed without a policy-rc.d in place"; }
        grep -qx "$missing" "$tmp/installed" || { ok=0; echo "  $missing not installed"; }
    fi
    if [ $ok = 1 ]; then
        echo "[ok]: $name"
        passed=$((passed + 1))
    else
        echo "[err]: $name"
        failed=$((failed + 1))
    fi
}

check "nothing missing: silent, exit 0" 0 "" present 0 ""
check "missing, not root: the apt-get line, exit 1" 1000 libev-dev absent 1 \
    "sudo apt-get install -y libev-dev"
check "missing, root, policy-rc.d already there: installs, exit 0" 0 libev-dev present 0 \
    "installing: libev-dev"
check "missing, root, no policy-rc.d: made for the install, removed, exit 0" 0 tcl absent 0 \
    "installing: tcl"
# apt-get failing: the failure is the status.
rm -f "$tmp/fail"
all_pkgs | grep -vx tcl >"$tmp/installed"
echo 0 >"$tmp/uid"
touch "$tmp/fail"
env PATH="$tmp/bin:$PATH" STUB_DIR="$tmp" DEPS_POLICY_RC="$tmp/policy" DEPS_APT_LISTS="$tmp/lists" \
    bash "$root/scripts/deps.sh" >/dev/null 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ ! -e "$tmp/policy" ]; then
    echo "[ok]: apt-get failing: a failing status, no policy-rc.d left"
    passed=$((passed + 1))
else
    echo "[err]: apt-get failing: status $rc"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
