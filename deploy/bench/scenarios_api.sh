# shellcheck shell=bash
# API-stage scenarios for deploy/bench.sh (issue 6): Portico's API stages vs nginx in front of
# the same function host (deploy/function-host/server.js, node), function json1k (the same
# 1024-byte JSON body on every call, its invocation count in X-Invocation).
# Sourced by bench.sh after its helpers (free_ports, start_bg, stop_pid, wait_ready, wrk_bg,
# run_wrk, cpu_ticks_tree) and after scenarios_cache.sh, whose render_cache, fetch_head,
# cache_state and warm_cache these reuse; defines functions only.
#
#   api_hit   stage-cache hits, throughput: Portico (stage "prod", cache ttl_s = 300, route
#             GET /item/{id} -> lambda origin json1k over the Invoke API, cache_key = id) vs
#             nginx proxy_cache (200 kept 300 s, keepalive upstream) in front of the host's HTTP
#             interface (/http/json1k/item/1), both at /prod/item/1 with the same
#             `wrk -t1 -c64`. Each is warmed (first answer a miss, then a hit), checked to answer
#             a hit after the timed run, and the function host is asked (one direct call before
#             and after) how often it ran json1k meanwhile: exactly once (the warm-up miss), so
#             the numbers are hits only. Target: Portico r/s >= 1.2x nginx.
#   api_miss  a stage-cache miss, latency: p50 of `wrk -t1 -c1 --latency` (one request at a time;
#             wrk's histogram has 1 us steps) for (a) the host's HTTP interface called directly,
#             (b) Portico, stage "live" (cache = { enabled = false }: every request invokes the
#             function; checked with the host's count and X-Cache: Miss), and for reference
#             (c) nginx proxy_pass (no cache) in front of the HTTP interface, and (d) the host's
#             Invoke API called directly with the very event Portico sends in (b) (obtained
#             through the host's echo function). Target: a miss adds < 100 us at p50 over
#             calling the host directly: (b) - (d) is the same function call with and without
#             Portico; (b) - (a) is reported too. (a) and (c) run the handler behind the host's
#             HTTP interface (event built in JS), (b) and (d) behind its Invoke API (the host
#             parses the event JSON and encodes the result as JSON): the same handler in the
#             same node process either way.
#
# The function host is pinned to the servers' core like the upstream nginx of the other
# scenarios, so in api_miss (b) and (c) the proxy and the host share core 0 (a miss is two
# processes taking turns on one core; wrk is on core 1). Results go to API_HIT_ROWS /
# API_MISS_ROWS, printed by print_api_tables.

API_HIT_ROWS=()
API_CPU_ROWS=()
API_MISS_ROWS=()
API_MISS_NOTE=
API_BYTES=1024
API_FUNCTION_HOST="$ROOT/deploy/function-host/server.js"

start_function_host() {  # -> UPSTREAM_PORT, FN_PID: a fresh host (json1k's count starts at 0)
  command -v node >/dev/null 2>&1 || { echo "bench: node not found (bash deploy/install-deps.sh)" >&2; exit 1; }
  UPSTREAM_PORT=$(free_ports 1)
  start_bg "$SERVER_CPU" "$TMP/function-host.log" node "$API_FUNCTION_HOST" --port "$UPSTREAM_PORT"
  FN_PID=$LAST_PID
  wait_ready "http://127.0.0.1:$UPSTREAM_PORT/http/json1k/item/1" "$API_BYTES" "$TMP/function-host.log"
}

# -> JSON1K_COUNT: json1k's invocation count, read from one direct call (which itself counts:
# callers subtract it). Exits on a bad answer: every later check depends on it.
json1k_count() {
  local n
  fetch_head "http://127.0.0.1:$UPSTREAM_PORT/http/json1k/item/1"
  n=$(awk 'tolower($1) == "x-invocation:" { sub(/\r$/, "", $2); print $2 }' <<<"$FETCH_HEADERS")
  if [ "$FETCH" != "200 $API_BYTES" ] || ! [[ "$n" =~ ^[0-9]+$ ]]; then
    echo "bench: function host: bad answer to a direct call ('$FETCH', X-Invocation '$n')" >&2
    exit 1
  fi
  JSON1K_COUNT=$n
}

start_api_proxy() {  # kind(portico|nginx) -> PROXY_PID, PROXY_PORT, ADMIN_PORT (cold caches)
  local ports
  ports=$(free_ports 2)
  PROXY_PORT=$(sed -n 1p <<<"$ports")
  # shellcheck disable=SC2034  # read by render_cache() through ${!name}
  ADMIN_PORT=$(sed -n 2p <<<"$ports")
  case "$1" in
    portico)
      render_cache portico-api.toml.in "$TMP/portico-api.toml"
      start_bg "$SERVER_CPU" "$TMP/portico.log" "$PORTICO" -c "$TMP/portico-api.toml" ;;
    nginx)
      rm -rf "$TMP/nginx-api-cache"
      render_cache proxy-nginx-api.conf.in "$TMP/proxy-api.conf"
      start_bg "$SERVER_CPU" "$TMP/nginx.log" nginx -p "$TMP/" -e "$TMP/proxy.error.log" \
        -c "$TMP/proxy-api.conf" -g 'daemon off;' ;;
  esac
  PROXY_PID=$LAST_PID
}

# ---- api_hit --------------------------------------------------------------------------------

scenario_api_hit() {
  local kind url n0 calls state note=ok target prps pp99 pcpu nrps np99 ncpu
  start_function_host
  for kind in portico nginx; do
    json1k_count
    n0=$JSON1K_COUNT
    start_api_proxy "$kind"
    url="http://127.0.0.1:$PROXY_PORT/prod/item/1"
    warm_cache "$kind" "$url" "$API_BYTES" "$TMP/$kind.log"
    run_wrk "$url"
    fetch_head "$url"
    state=$(cache_state "$kind" "$FETCH_HEADERS")
    json1k_count
    calls=$(( JSON1K_COUNT - n0 - 1 ))
    if [ "$calls" != 1 ] || [ "$state" != hit ]; then
      echo "bench: warning: $kind: json1k ran $calls times behind it (1 expected), last answer" \
           "$state: the run was not hits only" >&2
      note="$kind-misses"
    fi
    stop_pid "$PROXY_PID"
    if [ "$kind" = portico ]; then prps=$RPS pp99=$P99_MS pcpu=$CPU_US; else nrps=$RPS np99=$P99_MS ncpu=$CPU_US; fi
  done
  stop_pid "$FN_PID"
  target=$(awk -v p="$prps" -v n="$nrps" 'BEGIN { print (p >= 1.2 * n) ? "met" : "MISSED" }')
  API_HIT_ROWS+=("$(awk -v pr="$prps" -v pp="$pp99" -v nr="$nrps" -v np="$np99" -v t="$target" \
      -v note="$note" 'BEGIN {
    printf "%-10s %11.0f %7.2f %11.0f %7.2f %6.2f %6.2f  %-6s %s", "api_hit", pr, pp, nr, np,
      pr / nr, pp / np, t, note }')")
  API_CPU_ROWS+=("$(awk -v p="$pcpu" -v n="$ncpu" 'BEGIN {
    printf "%-10s %10.1f %10.1f %8.2f", "api_hit", p, n, (p > 0 ? n / p : 0) }')")
}

# ---- api_miss -------------------------------------------------------------------------------

wrk_percentile_us() {  # "50%" wrk-output -> that latency percentile in microseconds
  awk -v p="$1" '$1 == p {
      v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
      if (unit == "ms") v *= 1000; else if (unit == "s") v *= 1e6; else if (unit == "m") v *= 6e7;
      printf "%.1f", v }' <<<"$2"
}

# label url [wrk args...] -> one API_MISS_ROWS row: one connection, one request at a time, warmed. Server CPU
# per request for PROXY_PID (empty: none, the direct call) and the function host separately.
# Sets API_REQUESTS (completed in the timed run), API_P50_US.
miss_latency() {
  local label=$1 url=$2 out p0 p1 f0 f1 p50 p90 p99 rps hz proxy_us fn_us
  local CONNECTIONS=1  # wrk_bg reads it (dynamic scope): -c1 for these runs only
  wrk_bg "$WARMUP" "$url" "$TMP/warmup.out" "${@:3}"
  if [ -n "$PROXY_PID" ]; then p0=$(cpu_ticks_tree "$PROXY_PID"); fi
  f0=$(cpu_ticks_tree "$FN_PID")
  wrk_bg "$DURATION" "$url" "$TMP/wrk.out" --latency "${@:3}"
  if [ -n "$PROXY_PID" ]; then p1=$(cpu_ticks_tree "$PROXY_PID"); fi
  f1=$(cpu_ticks_tree "$FN_PID")
  out=$(cat "$TMP/wrk.out")
  printf '%s\n' "$out" >>"$TMP/wrk.log"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "bench: warning: errors during the run of $url:" >&2
    grep -E 'Non-2xx|Socket errors' <<<"$out" >&2
  fi
  API_REQUESTS=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(wrk_percentile_us 50% "$out")
  p90=$(wrk_percentile_us 90% "$out")
  p99=$(wrk_percentile_us 99% "$out")
  if [ -z "$p50" ] || [ -z "$p99" ] || [ -z "$rps" ] || [ -z "$API_REQUESTS" ]; then
    echo "bench: could not parse wrk output:" >&2
    echo "$out" >&2
    exit 1
  fi
  API_P50_US=$p50
  hz=$(getconf CLK_TCK)
  proxy_us=-
  if [ -n "$PROXY_PID" ]; then
    proxy_us=$(awk -v d=$((p1 - p0)) -v hz="$hz" -v n="$API_REQUESTS" \
      'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
  fi
  fn_us=$(awk -v d=$((f1 - f0)) -v hz="$hz" -v n="$API_REQUESTS" \
    'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
  API_MISS_ROWS+=("$(printf '%-34s %8s %8s %8s %9.0f %10s %10s' "$label" "$p50" "$p90" "$p99" \
    "$rps" "$proxy_us" "$fn_us")")
}

scenario_api_miss() {
  local url n0 calls direct_p50 portico_p50 invoke_p50 note=ok
  start_function_host

  # (a) the HTTP interface, nothing in front.
  PROXY_PID=
  miss_latency "(a) direct: host HTTP interface" "http://127.0.0.1:$UPSTREAM_PORT/http/json1k/item/1"
  direct_p50=$API_P50_US

  # (b) Portico, stage without a cache: each request one Invoke call.
  start_api_proxy portico
  url="http://127.0.0.1:$PROXY_PORT/live/item/1"
  wait_ready "$url" "$API_BYTES" "$TMP/portico.log"
  fetch_head "$url"
  if [ "$(cache_state portico "$FETCH_HEADERS")" != miss ]; then
    echo "bench: portico: $url is not answered as a miss:" >&2
    printf '%s\n' "$FETCH_HEADERS" >&2
    exit 1
  fi
  # The event Portico builds for /live/item/1 (echoed back by the host's echo function, asked
  # for through the same stage with the resource renamed), for baseline (d) below.
  curl -sf --max-time 2 -o "$TMP/event.json" "http://127.0.0.1:$PROXY_PORT/live/event/1" ||
    { echo "bench: portico: no event from /live/event/1" >&2; exit 1; }
  python3 - "$TMP/event.json" "$TMP/invoke.lua" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
for k in ("path", "resource"):
    event[k] = event[k].replace("/event/", "/item/")
event["requestContext"]["path"] = event["requestContext"]["path"].replace("/event/", "/item/")
event["requestContext"]["resourcePath"] = event["requestContext"]["resourcePath"].replace("/event/", "/item/")
body = json.dumps(event, separators=(",", ":"))
open(sys.argv[2], "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
    % json.dumps(body))
PY
  json1k_count
  n0=$JSON1K_COUNT
  miss_latency "(b) portico: stage live, Invoke API" "$url"
  portico_p50=$API_P50_US
  json1k_count
  calls=$(( JSON1K_COUNT - n0 - 1 ))  # warm-up + timed run (+ at most one cut off at its end)
  if [ "$calls" -lt "$API_REQUESTS" ]; then
    echo "bench: warning: portico: json1k ran $calls times for at least $API_REQUESTS requests:" \
         "some answers did not invoke the function" >&2
    note="portico-hits"
  fi
  stop_pid "$PROXY_PID"

  # (c) reference: nginx proxy_pass, no cache, in front of the HTTP interface.
  start_api_proxy nginx
  url="http://127.0.0.1:$PROXY_PORT/live/item/1"
  wait_ready "$url" "$API_BYTES" "$TMP/nginx.log"
  miss_latency "(c) nginx proxy_pass: HTTP iface" "$url"
  stop_pid "$PROXY_PID"

  # (d) the host's Invoke API called directly with the event Portico sends for this request:
  # the same function call as (b), without Portico.
  PROXY_PID=
  miss_latency "(d) direct: host Invoke API, same event" \
    "http://127.0.0.1:$UPSTREAM_PORT/2015-03-31/functions/json1k/invocations" -s "$TMP/invoke.lua"
  invoke_p50=$API_P50_US
  stop_pid "$FN_PID"

  API_MISS_NOTE=$(awk -v a="$direct_p50" -v b="$portico_p50" -v d4="$invoke_p50" -v note="$note" 'BEGIN {
    printf "a Portico miss adds %.1f us at p50 over calling the function host HTTP interface (a)" \
      " and %.1f us over calling its Invoke API with the same event (d)" \
      " (target < 100 us over a direct call: %s against (d), %s against (a))%s", b - a, b - d4,
      (b - d4 < 100 ? "met" : "MISSED"), (b - a < 100 ? "met" : "MISSED"),
      (note == "ok" ? "" : "; check: " note) }')
}

# Prints what the scenarios above collected (nothing if neither ran).
print_api_tables() {
  if [ ${#API_HIT_ROWS[@]} -gt 0 ]; then
    echo
    echo "API stage cache hits (json1k, 1 KiB JSON): portico vs nginx proxy_cache in front of" \
         "the function host; wrk -t1 -c$CONNECTIONS -d${DURATION}s"
    printf '%-10s %11s %7s %11s %7s %6s %6s  %-6s %s\n' scenario "portico r/s" "p99 ms" \
      "nginx r/s" "p99 ms" "r/s x" "p99 x" target hits
    printf '%s\n' "${API_HIT_ROWS[@]}"
    echo "(x = Portico/nginx; r/s higher is better, p99 lower is better; target: r/s x >= 1.2;" \
         "hits: ok = json1k ran once behind each server, the rest hits)"
    printf '%-10s %10s %10s %8s\n' "CPU/hit" "portico us" "nginx us" "N/P"
    printf '%s\n' "${API_CPU_ROWS[@]}"
  fi
  if [ ${#API_MISS_ROWS[@]} -gt 0 ]; then
    echo
    echo "API stage miss latency (json1k, 1 KiB JSON): one request at a time," \
         "wrk -t1 -c1 -d${DURATION}s --latency"
    printf '%-34s %8s %8s %8s %9s %10s %10s\n' path "p50 us" "p90 us" "p99 us" "r/s" \
      "proxy us" "host us"
    printf '%s\n' "${API_MISS_ROWS[@]}"
    echo "(proxy us, host us = CPU microseconds per request of the proxy and of the function host)"
    echo "$API_MISS_NOTE"
  fi
}
