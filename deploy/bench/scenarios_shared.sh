# shellcheck shell=bash
# Shared-tier (L2, Redis) scenarios for deploy/bench.sh: what a hit costs when it comes from
# Redis instead of the memory tier, and what Redis itself does on the same core. Sourced by
# bench.sh after scenarios_cache.sh (it reuses its portico_metric and the helpers of bench.sh:
# free_ports, render, start_bg, stop_pid, wait_ready, start_upstream, run_wrk, cpu_ticks_tree);
# defines functions only.
#
#   l2_hit_1k, l2_hit_16k    SHARED_OBJECTS (4000) distinct objects f.bin?i=N of 1 KiB / 16 KiB,
#                            Portico with a memory tier of 64 KiB (a few objects: almost every
#                            request misses L1) and the shared tier on: Redis is filled first by
#                            one walk over every URL (each an origin fetch, written to Redis),
#                            then wrk requests random URLs of the set (a Lua script), so the
#                            requests are L2 hits (GET from Redis, L1 fill, answer).
#   l1_hit_1k, l1_hit_16k    the same URLs, conf and Redis, but a 256 MiB memory tier: after the
#                            walk every object is in L1, so the requests are L1 hits.
#   redis_get_1k, redis_get_16k
#                            `redis-benchmark -t get -d 1024|16384 -c 64 --csv` against the same
#                            kind of redis-server (one key of that size, set first): the ceiling
#                            an L2 hit is bounded by. n is sized from a warm-up run to last about
#                            --duration seconds.
#
# Pinning as everywhere in bench.sh: the servers (upstream nginx, Portico, redis-server) on core
# 0, the load generator (wrk, redis-benchmark, the walk) on core 1; so in l2_hit_* Portico and
# Redis take turns on one core, and the CPU per request is reported for both. After each wrk run
# Portico's own counters say where the answers came from (portico_cache_requests_total by result,
# portico_l2_hits_total): the L1 / L2 hit shares and the origin fetches are printed next to the
# figures, so an "L2" row that was really served from L1 (or the origin) shows. Rows go to
# SHARED_ROWS, printed by print_shared_tables.

SHARED_ROWS=()
SHARED_OBJECTS=${SHARED_OBJECTS:-4000}

need_redis_tools() {
  local tool
  for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
  done
}

redis_cli() {  # args... -> redis-cli against the run's redis-server (raw output)
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"
}

# -> REDIS_PORT, REDIS_PID: a fresh redis-server (no persistence) pinned to the servers' core,
# waited for (bounded) until it answers PING.
start_redis() {
  REDIS_PORT=$(free_ports 1)
  rm -rf "$TMP/redis"
  mkdir -p "$TMP/redis"
  start_bg "$SERVER_CPU" "$TMP/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --dir "$TMP/redis"
  REDIS_PID=$LAST_PID
  for _ in $(seq 100); do
    [ "$(redis_cli ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  echo "bench: redis-server on port $REDIS_PORT did not answer PING; log:" >&2
  tail -n 20 "$TMP/redis.log" >&2 || true
  exit 1
}

render_shared() {  # template output: render(), plus the placeholders only these scenarios use
  local name text
  render "$1" "$2"
  text=$(cat "$2")
  for name in ADMIN_PORT CACHE_MEMORY MAX_OBJECT REDIS_PORT; do
    text=${text//@$name@/${!name:-}}
  done
  printf '%s\n' "$text" >"$2"
}

# memory -> PROXY_PID, PROXY_PORT, ADMIN_PORT: Portico (portico-shared.toml.in) on the run's
# upstream and redis-server, waited for until it answers and its shared tier is ready.
start_shared_portico() {
  local ports
  # shellcheck disable=SC2034  # read by render_shared() through ${!name}
  CACHE_MEMORY=$1 MAX_OBJECT=32KiB
  ports=$(free_ports 2)
  PROXY_PORT=$(sed -n 1p <<<"$ports")
  ADMIN_PORT=$(sed -n 2p <<<"$ports")
  render_shared portico-shared.toml.in "$TMP/portico-shared.toml"
  start_bg "$SERVER_CPU" "$TMP/portico.log" "$PORTICO" -c "$TMP/portico-shared.toml"
  PROXY_PID=$LAST_PID
  for _ in $(seq 100); do
    [ "$(portico_metric portico_l2_ready)" = 1 ] && return 0
    sleep 0.1
  done
  echo "bench: Portico's shared tier never became ready (portico_l2_ready); log:" >&2
  tail -n 20 "$TMP/portico.log" >&2 || true
  exit 1
}

# name [label-substring] -> the sum of the samples of metric `name` (with that label text)
metric_sum() {
  curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v n="$1" -v f="${2:-}" '
    ($1 == n || index($1, n "{") == 1) && (f == "" || index($1, f) > 0) { s += $NF }
    END { printf "%.0f", s }' || true
}

# bytes -> WALK ("hits misses"): GET every f.bin?i=0..SHARED_OBJECTS-1 once on one keep-alive
# connection (pinned to the client core), each answer checked (200, the right size).
shared_walk() {
  WALK=$(taskset -c "$CLIENT_CPU" python3 - "$PROXY_PORT" "$SHARED_OBJECTS" "$1" <<'EOF'
import http.client, sys
port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
hits = misses = 0
for i in range(n):
    conn.request("GET", "/f.bin?i=%d" % i)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or len(body) != size:
        sys.exit("bench: walk: f.bin?i=%d answered %d with %d bytes" % (i, r.status, len(body)))
    if (r.getheader("X-Cache") or "").startswith("Hit"):
        hits += 1
    else:
        misses += 1
print(hits, misses)
EOF
  ) || exit 1
}

# -> $TMP/shared-random.lua: every request a uniformly random URL of the set (fixed seed).
write_random_script() {
  cat >"$TMP/shared-random.lua" <<EOF
math.randomseed(4242)
local n = $SHARED_OBJECTS
function request()
  return wrk.format("GET", "/f.bin?i=" .. math.random(0, n - 1))
end
EOF
}

wrk_requests() {  # wrk output file -> the number of requests it made
  awk '/requests in/ {print $1}' "$1"
}

# name bytes tier(l1|l2) -> one SHARED_ROWS row
shared_hit_scenario() {
  local name=$1 bytes=$2 tier=$3 memory keys walk_hits walk_misses
  local req0 req1 l2h0 l2h1 l1h0 l1h1 miss0 miss1 rcpu0 rcpu1 n rcpu total
  need_redis_tools
  start_upstream "$bytes" "max-age=3600"
  start_redis
  if [ "$tier" = l2 ]; then memory=64KiB; else memory=256MiB; fi
  start_shared_portico "$memory"
  wait_ready "http://127.0.0.1:$PROXY_PORT/f.bin?i=0" "$bytes" "$TMP/portico.log"
  # Fill Redis (and, for l1_hit_*, L1): one walk over the set. Every object must reach Redis.
  shared_walk "$bytes"
  read -r walk_hits walk_misses <<<"$WALK"
  for _ in $(seq 50); do
    keys=$(redis_cli --scan --pattern 'ptc:[0-9]*|site|*' | wc -l)
    [ "$keys" -ge "$SHARED_OBJECTS" ] && break
    sleep 0.1
  done
  if [ "$keys" -lt "$SHARED_OBJECTS" ]; then
    echo "bench: $name: only $keys of $SHARED_OBJECTS objects reached Redis" \
         "(walk: $walk_hits hits, $walk_misses misses)" >&2
    exit 1
  fi
  write_random_script
  req0=$(metric_sum portico_cache_requests_total)
  l2h0=$(metric_sum portico_cache_requests_total 'result="l2_hit"')
  l1h0=$(metric_sum portico_cache_requests_total 'result="hit"')
  miss0=$(metric_sum portico_cache_requests_total 'result="miss"')
  rcpu0=$(cpu_ticks_tree "$REDIS_PID")
  run_wrk "http://127.0.0.1:$PROXY_PORT/" -s "$TMP/shared-random.lua"
  rcpu1=$(cpu_ticks_tree "$REDIS_PID")
  req1=$(metric_sum portico_cache_requests_total)
  l2h1=$(metric_sum portico_cache_requests_total 'result="l2_hit"')
  l1h1=$(metric_sum portico_cache_requests_total 'result="hit"')
  miss1=$(metric_sum portico_cache_requests_total 'result="miss"')
  # Redis CPU over the warm-up and the timed run, per request of both.
  n=$(( $(wrk_requests "$TMP/warmup.out") + $(wrk_requests "$TMP/wrk.out") ))
  rcpu=$(awk -v d=$((rcpu1 - rcpu0)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
  total=$((req1 - req0))
  echo "bench: $name: $total cache requests during the runs: $((l1h1 - l1h0)) L1 hits," \
       "$((l2h1 - l2h0)) L2 hits ($(portico_metric portico_l2_hits_total) L2 hits in all)," \
       "$((miss1 - miss0)) origin fetches" >&2
  stop_pid "$PROXY_PID"
  stop_pid "$REDIS_PID"
  stop_pid "$UPSTREAM_PID"
  SHARED_ROWS+=("$(awk -v s="$name" -v r="$RPS" -v p="$P99_MS" -v pc="$CPU_US" -v rc="$rcpu" \
      -v t="$total" -v h1=$((l1h1 - l1h0)) -v h2=$((l2h1 - l2h0)) -v o=$((miss1 - miss0)) 'BEGIN {
    printf "%-14s %11.0f %8.2f %10.1f %10.1f %7.1f%% %7.1f%% %8d", s, r, p, pc, rc,
      (t > 0 ? 100 * h1 / t : 0), (t > 0 ? 100 * h2 / t : 0), o }')")
}
scenario_l2_hit_1k() { shared_hit_scenario l2_hit_1k 1024 l2; }
scenario_l2_hit_16k() { shared_hit_scenario l2_hit_16k 16384 l2; }
scenario_l1_hit_1k() { shared_hit_scenario l1_hit_1k 1024 l1; }
scenario_l1_hit_16k() { shared_hit_scenario l1_hit_16k 16384 l1; }

# n bytes output-file -> redis-benchmark GET (pinned to the client core, --csv), waited for.
redis_benchmark_bg() {
  start_bg "$CLIENT_CPU" "$3" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t get -d "$2" \
    -c "$CONNECTIONS" -n "$1" --csv
  local pid=$LAST_PID
  wait "$pid" || { echo "bench: redis-benchmark failed:" >&2; cat "$3" >&2; exit 1; }
  stop_pid "$pid"
}

csv_field() {  # file column-name -> the value of that column in the GET row of a --csv output
  awk -F',' -v c="$2" '{ gsub(/"/, "") } NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
    $1 == "GET" && k { print $k }' "$1"
}

# name bytes -> one SHARED_ROWS row: redis-benchmark GET of one key of that size.
redis_get_scenario() {
  local name=$1 bytes=$2 len warm_rps n cpu0 cpu1 rps p99 cpu
  need_redis_tools
  start_redis
  redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t set -d "$bytes" -n 1 -c 1 -q >/dev/null
  len=$(redis_cli strlen 'key:__rand_int__')
  if [ "$len" != "$bytes" ]; then
    echo "bench: $name: the benchmark key holds '$len' bytes, not $bytes" >&2
    exit 1
  fi
  # Warm-up, also the estimate of the rate: the timed run lasts about DURATION seconds.
  redis_benchmark_bg 50000 "$bytes" "$TMP/redis-warmup.csv"
  warm_rps=$(csv_field "$TMP/redis-warmup.csv" rps)
  n=$(awk -v r="${warm_rps:-0}" -v d="$DURATION" 'BEGIN { n = int(r * d); print (n < 50000 ? 50000 : n) }')
  cpu0=$(cpu_ticks_tree "$REDIS_PID")
  redis_benchmark_bg "$n" "$bytes" "$TMP/redis-bench.csv"
  cpu1=$(cpu_ticks_tree "$REDIS_PID")
  cat "$TMP/redis-bench.csv" >>"$TMP/wrk.log"
  rps=$(csv_field "$TMP/redis-bench.csv" rps)
  p99=$(csv_field "$TMP/redis-bench.csv" p99_latency_ms)
  if [ -z "$rps" ]; then
    echo "bench: could not parse redis-benchmark output:" >&2
    cat "$TMP/redis-bench.csv" >&2
    exit 1
  fi
  cpu=$(awk -v d=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
  stop_pid "$REDIS_PID"
  SHARED_ROWS+=("$(awk -v s="$name" -v r="$rps" -v p="${p99:--1}" -v rc="$cpu" 'BEGIN {
    printf "%-14s %11.0f %8s %10s %10.1f %8s %8s %8s", s, r, (p < 0 ? "-" : sprintf("%.2f", p)), "-", rc,
      "-", "-", "-" }')")
}
scenario_redis_get_1k() { redis_get_scenario redis_get_1k 1024; }
scenario_redis_get_16k() { redis_get_scenario redis_get_16k 16384; }

# Prints what the scenarios above collected (nothing if none of them ran).
print_shared_tables() {
  [ ${#SHARED_ROWS[@]} -gt 0 ] || return 0
  echo
  echo "shared tier (Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')):" \
       "$SHARED_OBJECTS objects, random URLs, wrk -t1 -c$CONNECTIONS -d${DURATION}s;" \
       "redis-benchmark -c$CONNECTIONS"
  printf '%-14s %11s %8s %10s %10s %8s %8s %8s\n' scenario "r/s" "p99 ms" "P us/req" "R us/req" \
    "L1 hits" "L2 hits" origin
  printf '%s\n' "${SHARED_ROWS[@]}"
  echo "(P / R us/req = Portico's / redis-server's CPU microseconds per request (R: warm-up and" \
       "timed run); L1 / L2 hits = share of Portico's cache requests during the runs (warm-up" \
       "included) answered from each tier; origin = fetches from the origin meanwhile)"
}
