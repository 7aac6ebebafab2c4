#!/usr/bin/env bash
# Installs the pinned Node.js clients (package.json + package-lock.json beside this script) into
# a cache folder, default .cache/node-clients (gitignored), with `npm ci`. Does nothing when the
# folder already holds exactly this lockfile's install.
# Usage: tests/clients/node/install.sh [folder]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-$HERE/../../../.cache/node-clients}
mkdir -p "$DEST"
if [ -d "$DEST/node_modules" ] && cmp -s "$HERE/package-lock.json" "$DEST/package-lock.json" &&
   cmp -s "$HERE/package.json" "$DEST/package.json" && [ -e "$DEST/node_modules/.installed" ]; then
    exit 0
fi
cp "$HERE/package.json" "$HERE/package-lock.json" "$DEST/"
rm -f "$DEST/node_modules/.installed"
# Bounded: without a registry, fail fast so the tests skip these clients instead of stalling.
timeout 60 npm ci --prefix "$DEST" --no-audit --no-fund --loglevel=error --prefer-offline \
    --fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=3000 --fetch-timeout=15000
touch "$DEST/node_modules/.installed"
