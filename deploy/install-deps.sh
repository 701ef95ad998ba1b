#!/usr/bin/env bash
# Installs every Debian package Portico needs to build, test, run the demo and benchmark.
# Idempotent and quiet: prints nothing when nothing is missing. Run as root on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates python3
  libuv1-dev node-llhttp libssl-dev openssl libcurl4-openssl-dev libhiredis-dev libtoml11-dev
  nlohmann-json3-dev libsimdjson-dev zlib1g-dev libbrotli-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server wrk nginx-light varnish
)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${PACKAGES[@]}"; exit 0; fi

missing=()
for p in "${PACKAGES[@]}"; do
  # A package counts as present only when dpkg says it is fully installed.
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
    missing+=("$p")
  fi
done
# Node.js (the demo's function host, s3rver): any installed node/npm will do (some images ship
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
$SUDO apt-get update -qq >/dev/null
# policy-rc.d keeps the packages' own services (nginx, redis, varnish) from starting: the
# project's scripts start their own instances on loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e $policy ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod +x $policy && created_policy=1
fi
trap '[ $created_policy = 1 ] && $SUDO rm -f $policy' EXIT
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
