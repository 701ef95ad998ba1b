#!/usr/bin/env bash
# Installs s3rver (the S3-compatible store the integration tests start on loopback) into
# deploy/s3rver/node_modules, exactly as pinned by package-lock.json.
# Idempotent and quiet: prints nothing when node_modules is already up to date with the lock.
# Safe to run concurrently (ctest -j): installs are serialised by a lock file.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK="$DIR/package-lock.json"
# npm writes node_modules/.package-lock.json at the end of a successful install: it marks a
# complete tree, and its mtime says which lock it was installed from.
MARK="$DIR/node_modules/.package-lock.json"
ENTRY="$DIR/node_modules/s3rver/bin/s3rver.js"

up_to_date() {
  [ -f "$MARK" ] && [ -f "$ENTRY" ] && [ ! "$LOCK" -nt "$MARK" ]
}

up_to_date && exit 0

command -v npm >/dev/null 2>&1 || { echo "s3rver setup: npm is not installed (deploy/install-deps.sh installs it)" >&2; exit 1; }

# The lock lives outside node_modules (npm ci deletes that) and outside the work tree.
LOCKFILE="${TMPDIR:-/tmp}/portico-s3rver-setup.$(id -u).lock"
exec 9>"$LOCKFILE"
flock -w 300 9 || { echo "s3rver setup: another install still holds $LOCKFILE after 300 s" >&2; exit 1; }
up_to_date && exit 0  # another process installed it while we waited

echo "s3rver setup: npm ci in $DIR" >&2
npm ci --no-audit --no-fund --loglevel=error --prefix "$DIR" >&2
# npm ci keeps the lock's mtime; make the mark strictly fresher so the next run is a no-op.
touch "$MARK"
