#!/usr/bin/env bash
# Static checks of contrib/ (no Docker engine or Kubernetes cluster runs here):
# - the Dockerfile's build stage installs exactly the -dev packages scripts/deps.sh installs,
#   and builds with make;
# - compose.yaml and the Kubernetes manifests parse as YAML and hold what they must;
# - the Kubernetes entrypoint picks init/join by pod ordinal;
# - the systemd unit passes systemd-analyze verify (but for the binary's absence).
# Prints PASS/FAIL/SKIP lines.
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
pass() { echo "PASS contrib: $*"; }
fail() { echo "FAIL contrib: $*"; }
skip() { echo "SKIP contrib: $*"; }

# The -dev packages of deps.sh's PKGS=( ... ) list.
deps_dev=$(sed -n '/^PKGS=(/,/)/p' scripts/deps.sh | tr ' ()' '\n\n\n' | grep -E -- '-dev$' | sort -u)
# The -dev packages the build stage (from FROM ... AS build to the next FROM) installs.
df=contrib/docker/Dockerfile
build_stage=$(awk '/^FROM .* AS build/{b=1; next} /^FROM /{b=0} b' "$df" | grep -v '^ *#')
docker_dev=$(echo "$build_stage" | tr ' \\' '\n\n' | grep -E -- '-dev$' | sort -u)
if [ -n "$deps_dev" ] && [ "$deps_dev" = "$docker_dev" ]; then
    pass "Dockerfile build stage installs deps.sh's -dev packages ($(echo $deps_dev))"
else
    fail "Dockerfile -dev packages ($(echo $docker_dev)) differ from scripts/deps.sh's ($(echo $deps_dev))"
fi
for p in build-essential pkg-config; do
    echo "$build_stage" | grep -qw "$p" && grep -qw "$p" scripts/deps.sh ||
        fail "Dockerfile build stage or deps.sh lacks $p"
done
if echo "$build_stage" | grep -qE '^RUN .*\bmake\b'; then
    pass "Dockerfile build stage runs make"
else
    fail "Dockerfile build stage does not run make"
fi
runtime=$(awk '/^FROM /{n++} n==2' "$df" | grep -v '^ *#')
ok=1
for want in 'USER [0-9]' 'EXPOSE 7379 17379' 'VOLUME \["/data"\]' 'HEALTHCHECK' 'COPY --from=build /src/build/redraft'; do
    echo "$runtime" | grep -qE "$want" || { fail "Dockerfile runtime stage lacks: $want"; ok=0; }
done
echo "$runtime" | grep -qE -- '-dev\b' && { fail "Dockerfile runtime stage installs -dev packages"; ok=0; }
[ $ok = 1 ] && pass "Dockerfile runtime stage: non-root, ports, volume, health check, no -dev packages"
# Every library the built binary links is in a package the runtime stage installs (or in their
# dependencies: checked on this machine with dpkg).
if [ -x build/redraft ] && command -v ldd >/dev/null && command -v dpkg >/dev/null; then
    rt_pkgs=$(echo "$runtime" | grep -oE '\blib[a-z0-9.+-]+[0-9]\b' | sort -u)
    direct=$(ldd build/redraft | awk '/=>/{print $3}' | xargs -r -n1 readlink -f | xargs -r dpkg -S 2>/dev/null |
        cut -d: -f1 | sort -u | grep -vE '^(libc6|libgcc-s1|libstdc\+\+6)$')
    missing=""
    for pkg in $direct; do
        echo "$rt_pkgs" | grep -qx "$pkg" && continue
        # Pulled in by a package the stage installs?
        found=0
        for r in $rt_pkgs; do
            apt-cache depends --recurse --no-recommends --no-suggests "$r" 2>/dev/null | grep -qE "^ *Depends: $pkg\$|^$pkg\$" && { found=1; break; }
        done
        [ $found = 1 ] || missing="$missing $pkg"
    done
    if [ -z "$missing" ]; then pass "runtime stage provides every shared library build/redraft links"
    else fail "runtime stage lacks the packages of:$missing"; fi
else
    skip "shared library check: needs build/redraft, ldd and dpkg"
fi

if [ -x "$PY" ] && "$PY" -c 'import yaml' 2>/dev/null; then
    if out=$("$PY" - <<'PYEOF' 2>&1
import yaml
c = yaml.safe_load(open("contrib/compose.yaml"))
s = c["services"]
assert sorted(s) == ["redis1", "redis2", "redis3", "redraft1", "redraft2", "redraft3"], sorted(s)
for i in (1, 2, 3):
    r = s["redraft%d" % i]
    cmd = r["command"]
    assert r["network_mode"] == "service:redis%d" % i, r["network_mode"]
    assert cmd[cmd.index("--cluster-announce") + 1] == "redis%d:17379" % i
    assert cmd[cmd.index("--redis") + 1] == "127.0.0.1:6379"
    assert cmd[cmd.index("--bind") + 1] == "0.0.0.0"
    # other containers join through the client port: protected mode would refuse them
    assert cmd[cmd.index("--protected-mode") + 1] == "no"
    if i == 1:
        assert cmd[cmd.index("--cluster-init") + 1] == "yes"
    else:
        assert cmd[cmd.index("--cluster-join") + 1] == "redis1:7379"
    assert r["build"]["dockerfile"] == "contrib/docker/Dockerfile"
docs = [d for d in yaml.safe_load_all(open("contrib/kubernetes/redraft.yaml")) if d]
kinds = {d["kind"]: d for d in docs}
for k in ("Service", "StatefulSet", "PodDisruptionBudget", "ConfigMap"):
    assert k in kinds, k
ss = kinds["StatefulSet"]
assert ss["spec"]["replicas"] == 3
assert ss["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
names = [c["name"] for c in ss["spec"]["template"]["spec"]["containers"]]
assert names == ["redis", "redraft"], names
rd = ss["spec"]["template"]["spec"]["containers"][1]
assert "readinessProbe" in rd and "livenessProbe" in rd
assert any(e.get("valueFrom", {}).get("secretKeyRef") for e in rd["env"])
headless = [d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"]
assert headless and headless[0]["spec"]["publishNotReadyAddresses"] is True
assert kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
open("/dev/stdout", "w").write(kinds["ConfigMap"]["data"]["entrypoint.sh"])
yaml.safe_load(open("contrib/kubernetes/secret.example.yaml"))
PYEOF
    ); then
        pass "compose.yaml and kubernetes/*.yaml parse and hold the expected services, commands and probes"
        ep=$(mktemp)
        echo "$out" > "$ep"
        a=$(sed 's#^exec /usr/local/bin/redraft#echo redraft#' "$ep" | HOSTNAME=redraft-0 SERVICE_NAME=redraft REDRAFT_CLUSTER_SECRET=s sh)
        b=$(sed 's#^exec /usr/local/bin/redraft#echo redraft#' "$ep" | HOSTNAME=redraft-2 SERVICE_NAME=redraft REDRAFT_CLUSTER_SECRET=s sh)
        rm -f "$ep"
        if echo "$a" | grep -q -- '--cluster-announce redraft-0.redraft:17379 --cluster-init yes$' &&
           echo "$b" | grep -q -- '--cluster-announce redraft-2.redraft:17379 --cluster-join redraft-0.redraft:7379$'; then
            pass "kubernetes entrypoint: pod 0 inits, pod 2 joins redraft-0.redraft:7379"
        else
            fail "kubernetes entrypoint gave: '$a' / '$b'"
        fi
    else
        fail "YAML: $out"
    fi
else
    skip "YAML checks: $PY cannot import yaml (Debian package python3-yaml)"
fi

if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify contrib/systemd/redraft.service 2>&1 | grep -v 'is not executable: No such file' | grep -v '^$')
    if [ -z "$out" ]; then pass "systemd unit verifies (the binary's absence aside)"
    else fail "systemd-analyze verify: $out"; fi
else
    skip "systemd unit: systemd-analyze missing"
fi
