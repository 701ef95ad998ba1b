#!/usr/bin/env bash
# Load test, run by hand (never by CI): Portico and nginx side by side on the same machine.
#
#   bash deploy/bench.sh [--portico PATH] [--duration S] [--scenario NAME]... [NAME]...
#
# Scenarios (default: all): passthrough tls_keepalive tls_handshake hit_1k hit_16k hit_256k
# cache_memory static_16k static_1m static_gzip_64k api_hit api_miss. The Portico binary is
# --portico, else $PORTICO, else build/proxy/portico.
#
# Every server runs on loopback, on free ports, from confs rendered into a temp dir
# (deploy/bench/*.in): an upstream nginx serving static files, then each proxy in turn in front
# of it. Pinning: the proxy under test and the upstream share core 0 and wrk runs on core 1, so
# each proxy gets the same single core (one at a time). Both proxies get the same wrk command:
#   wrk -t1 -c64 -d${DURATION}s --latency URL   (after a warm-up run)
# and the script prints requests/s, p99 latency and the Portico/nginx ratio per scenario.
#
# TLS scenarios (tls_keepalive, tls_handshake): Portico and nginx each terminate TLS with the
# same ECDSA P-256 certificate (made for the run), protocols, cipher suites and groups, and answer
# a 1 KiB body from memory; tls_handshake adds -H 'Connection: close' (a full handshake per
# request: new connections per second).
#
# Static-site scenarios (static_16k, static_1m, static_gzip_64k; deploy/bench/scenarios_static.sh):
# Portico, nginx proxy_cache and Varnish in front of the same files; the gzip one adds
# -H 'Accept-Encoding: gzip' and checks that each server answers it gzipped.
#
# API-stage scenarios (api_hit, api_miss; deploy/bench/scenarios_api.sh), in front of the
# function host (node) running json1k, a 1 KiB JSON answer: api_hit is stage-cache hits, Portico
# vs nginx proxy_cache on the host's HTTP interface, same wrk command (target >= 1.2x nginx);
# api_miss is the p50 latency of one connection (wrk -t1 -c1) calling the host directly vs
# through a Portico stage without a cache (target: a miss adds < 100 us).
#
# Shared-tier scenarios (l2_hit_1k, l2_hit_16k, l1_hit_1k, l1_hit_16k, redis_get_1k,
# redis_get_16k; deploy/bench/scenarios_shared.sh): Portico's hits from Redis (a memory tier too
# small for the working set) vs from memory, and redis-benchmark GET on the same redis-server
# (needs redis-server and redis-tools).
#
# Scenarios are functions named scenario_<name>; add one (cache hits of several sizes,
# Varnish as a third column) by writing a function that calls `compare` and listing it in
# ALL_SCENARIOS. Needs only Debian packages: nginx(-light), varnish, wrk, curl, openssl, python3
# (and nodejs for the API-stage scenarios).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEMPLATES="$ROOT/deploy/bench"
PORTICO=${PORTICO:-"$ROOT/build/proxy/portico"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=64
ALL_SCENARIOS=(passthrough tls_keepalive tls_handshake hit_1k hit_16k hit_256k cache_memory
               static_16k static_1m static_gzip_64k api_hit api_miss
               l2_hit_1k l2_hit_16k l1_hit_1k l1_hit_16k redis_get_1k redis_get_16k)
SCENARIOS=()

usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --portico) PORTICO=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --scenario) SCENARIOS+=("$2"); shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "bench: unknown argument $1" >&2; usage 2 >&2 ;;
    *) SCENARIOS+=("$1"); shift ;;
  esac
done
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=("${ALL_SCENARIOS[@]}")
if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -eq 0 ]; then
  echo "bench: --duration needs whole seconds > 0" >&2
  exit 2
fi

for tool in nginx wrk curl python3 taskset openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (bash deploy/install-deps.sh)" >&2; exit 1; }
done
[ -x "$PORTICO" ] || { echo "bench: no Portico binary at $PORTICO (build it, or pass --portico)" >&2; exit 1; }

# Cores: servers on 0, wrk on 1. With a single core everything shares it (numbers then only
# compare the proxies with each other, not with anything measured elsewhere).
if [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU=0 CLIENT_CPU=1
else
  echo "bench: only one core: wrk shares core 0 with the servers" >&2
  SERVER_CPU=0 CLIENT_CPU=0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
chmod 755 "$TMP"  # nginx workers may run as another user and must read www/
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ------------------------------------------------------------------------------

free_ports() {  # N -> N distinct free loopback ports, one per line
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

render() {  # template output: replace @NAME@ with the value of the variable NAME
  local text name
  text=$(cat "$TEMPLATES/$1")
  for name in TMP UPSTREAM_PORT PROXY_PORT UPSTREAM_CACHE_CONTROL BODY_1K; do
    text=${text//@$name@/${!name:-}}
  done
  printf '%s\n' "$text" >"$2"
}

start_bg() {  # cpu log command... -> starts pinned in the background, sets LAST_PID
  local cpu=$1 log=$2
  shift 2
  taskset -c "$cpu" "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=()
  for i in "${PIDS[@]}"; do [ "$i" != "$pid" ] && keep+=("$i"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

wait_ready() {  # url expected-bytes log -> waits (bounded) until url answers 200 with that size
  local url=$1 bytes=$2 log=$3 got i
  for i in $(seq 100); do
    got=$(curl -sk -o /dev/null -w '%{http_code} %{size_download}' --max-time 1 "$url" || true)
    [ "$got" = "200 $bytes" ] && return 0
    sleep 0.1
  done
  echo "bench: $url not ready (last answer: '$got'); log:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

start_upstream() {  # body-bytes cache-control -> UPSTREAM_PORT, a file /f.bin of that size
  mkdir -p "$TMP/www"
  head -c "$1" /dev/zero | tr '\0' 'p' >"$TMP/www/f.bin"
  chmod 644 "$TMP/www/f.bin"
  # shellcheck disable=SC2034  # read by render() through ${!name}
  UPSTREAM_CACHE_CONTROL=$2
  UPSTREAM_PORT=$(free_ports 1)
  render upstream-nginx.conf.in "$TMP/upstream.conf"
  start_bg "$SERVER_CPU" "$TMP/upstream.log" nginx -p "$TMP/" -e "$TMP/upstream.error.log" \
    -c "$TMP/upstream.conf" -g 'daemon off;'
  UPSTREAM_PID=$LAST_PID
  wait_ready "http://127.0.0.1:$UPSTREAM_PORT/f.bin" "$1" "$TMP/upstream.error.log"
}

start_proxy() {  # kind(portico|nginx) portico-template [nginx-template] -> PROXY_PID, PROXY_PORT
  PROXY_PORT=$(free_ports 1)
  case "$1" in
    portico)
      render "$2" "$TMP/portico.toml"
      start_bg "$SERVER_CPU" "$TMP/portico.log" "$PORTICO" -c "$TMP/portico.toml" ;;
    nginx)
      render "${3:-proxy-nginx.conf.in}" "$TMP/proxy.conf"
      start_bg "$SERVER_CPU" "$TMP/proxy.log" nginx -p "$TMP/" -e "$TMP/proxy.error.log" \
        -c "$TMP/proxy.conf" -g 'daemon off;' ;;
  esac
  PROXY_PID=$LAST_PID
}

wrk_bg() {  # seconds url output-file [--latency]: wrk in the background, waited for so that a
            # signal runs the cleanup trap at once instead of after wrk's run
  local secs=$1 url=$2 file=$3
  shift 3
  start_bg "$CLIENT_CPU" "$file" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" "$@" "$url"
  local pid=$LAST_PID
  wait "$pid" || { echo "bench: wrk failed:" >&2; cat "$file" >&2; exit 1; }
  stop_pid "$pid"
}

# CPU time (clock ticks) of a process, its threads and all its descendants (nginx and Varnish
# serve from child processes).
cpu_ticks_tree() {  # pid -> ticks
  local pid=$1 total=0 t child
  for t in /proc/"$pid"/task/*/stat; do
    [ -r "$t" ] && total=$((total + $(awk '{print $14 + $15}' "$t" 2>/dev/null || echo 0)))
  done
  for child in $(pgrep -P "$pid" 2>/dev/null); do
    total=$((total + $(cpu_ticks_tree "$child")))
  done
  echo "$total"
}

# The server's CPU microseconds per request during the timed run (PROXY_PID and its children):
# on a shared, noisy machine this is steadier than requests/s, which also measures how much of
# core 0 the machine's other load left us and, for big bodies, how fast wrk can read.
run_wrk() {  # url [wrk args...] -> RPS, P99_MS, CPU_US (and warnings on errors)
  local out before after requests
  wrk_bg "$WARMUP" "$1" "$TMP/warmup.out" "${@:2}"
  before=$(cpu_ticks_tree "$PROXY_PID")
  wrk_bg "$DURATION" "$1" "$TMP/wrk.out" --latency "${@:2}"
  after=$(cpu_ticks_tree "$PROXY_PID")
  out=$(cat "$TMP/wrk.out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  CPU_US=$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="${requests:-0}" \
    'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
  printf '%s\n' "$out" >>"$TMP/wrk.log"
  RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P99_MS=$(awk '$1 == "99%" {
      v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
      if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000;
      printf "%.2f", v }' <<<"$out")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "bench: warning: errors during the run of $1:" >&2
    grep -E 'Non-2xx|Socket errors' <<<"$out" >&2
  fi
  if [ -z "$RPS" ] || [ -z "$P99_MS" ]; then
    echo "bench: could not parse wrk output:" >&2
    echo "$out" >&2
    exit 1
  fi
}

ROWS=()
compare() {  # scenario portico-template path body-bytes [scheme nginx-template wrk-args...] -> one table row
  local name=$1 template=$2 path=$3 bytes=$4 scheme=${5:-http} nginx_template=${6:-proxy-nginx.conf.in}
  local kind prps pp99 nrps np99 pcpu ncpu
  shift $(( $# < 6 ? $# : 6 ))
  for kind in portico nginx; do
    start_proxy "$kind" "$template" "$nginx_template"
    wait_ready "$scheme://127.0.0.1:$PROXY_PORT$path" "$bytes" "$TMP/$kind.log"
    run_wrk "$scheme://127.0.0.1:$PROXY_PORT$path" "$@"
    stop_pid "$PROXY_PID"
    if [ "$kind" = portico ]; then prps=$RPS pp99=$P99_MS pcpu=$CPU_US; else nrps=$RPS np99=$P99_MS ncpu=$CPU_US; fi
  done
  ROWS+=("$(awk -v n="$name" -v pr="$prps" -v pp="$pp99" -v nr="$nrps" -v np="$np99" -v pc="$pcpu" \
      -v nc="$ncpu" 'BEGIN {
    printf "%-22s %12.0f %10.2f %12.0f %10.2f %8.2f %8.2f %9.1f %9.1f %8.2f", n, pr, pp, nr, np,
      pr / nr, pp / np, pc, nc, (pc > 0 ? nc / pc : 0) }')")
}

# ---- scenarios ----------------------------------------------------------------------------

# A 1 KiB static file through each proxy, nothing cached: the cost of a miss / pass.
scenario_passthrough() {
  start_upstream 1024 "no-store"
  compare passthrough portico-passthrough.toml.in /f.bin 1024
  stop_pid "$UPSTREAM_PID"
}

# TLS termination, keep-alive: the cost of TLS records on top of a 1 KiB in-memory answer.
scenario_tls_keepalive() {
  make_tls_material
  compare tls_keepalive portico-tls.toml.in /prod/hit 1024 https nginx-tls.conf.in
}

# TLS termination, a new connection (full handshake, ECDHE + ECDSA P-256) per request.
scenario_tls_handshake() {
  make_tls_material
  compare tls_handshake portico-tls.toml.in /prod/hit 1024 https nginx-tls.conf.in -H 'Connection: close'
}

make_tls_material() {  # -> $TMP/tls.crt, $TMP/tls.key (once per run), BODY_1K
  if [ ! -f "$TMP/tls.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/tls.key" \
      -out "$TMP/tls.crt" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
    chmod 644 "$TMP/tls.crt" "$TMP/tls.key"
  fi
  # shellcheck disable=SC2034  # read by render() through ${!name}
  BODY_1K=$(head -c 1024 /dev/zero | tr '\0' 'h')
}

# Cache-hit scenarios (Portico vs nginx proxy_cache vs Varnish) and memory per cached object.
# shellcheck source=deploy/bench/scenarios_cache.sh
source "$ROOT/deploy/bench/scenarios_cache.sh"

# Static-site scenarios (Portico vs nginx vs Varnish on 16 KiB, 1 MiB and gzipped 64 KiB files).
# shellcheck source=deploy/bench/scenarios_static.sh
source "$ROOT/deploy/bench/scenarios_static.sh"

# API-stage scenarios (stage-cache hits vs nginx proxy_cache, miss latency vs a direct call).
# shellcheck source=deploy/bench/scenarios_api.sh
source "$ROOT/deploy/bench/scenarios_api.sh"

# Shared-tier scenarios (L2 hits from Redis vs L1 hits, redis-benchmark GET for reference).
# shellcheck source=deploy/bench/scenarios_shared.sh
source "$ROOT/deploy/bench/scenarios_shared.sh"

# ---- main ---------------------------------------------------------------------------------

echo "bench: $("$PORTICO" --version) vs $(nginx -v 2>&1 | sed 's/^nginx version: //'); wrk -t1 -c$CONNECTIONS" \
     "-d${DURATION}s; servers on core $SERVER_CPU, wrk on core $CLIENT_CPU"
for s in "${SCENARIOS[@]}"; do
  declare -F "scenario_$s" >/dev/null || { echo "bench: no scenario '$s' (have: ${ALL_SCENARIOS[*]})" >&2; exit 2; }
  echo "bench: scenario $s ..." >&2
  "scenario_$s"
done

if [ ${#ROWS[@]} -gt 0 ]; then
  printf '\n%-22s %12s %10s %12s %10s %8s %8s %9s %9s %8s\n' scenario "portico r/s" "p99 ms" \
    "nginx r/s" "p99 ms" "r/s x" "p99 x" "P us/req" "N us/req" "cpu x"
  printf '%s\n' "${ROWS[@]}"
  echo "(r/s x = Portico/nginx requests per second, higher is better; p99 x = Portico/nginx p99, lower is better;"
  echo " us/req = server CPU microseconds per request; cpu x = nginx/Portico CPU per request, higher is better)"
fi
print_cache_tables
print_static_tables
print_api_tables
print_shared_tables
