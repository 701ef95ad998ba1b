# shellcheck shell=bash
# Cache-hit scenarios for deploy/bench.sh (issue 4): Portico vs nginx proxy_cache vs Varnish.
# Sourced by bench.sh after its helpers (free_ports, render, start_bg, stop_pid, wait_ready,
# start_upstream, run_wrk) and before its main loop; defines functions only.
#
#   hit_1k, hit_16k, hit_256k  one object of that size, served from each cache in turn with the
#                              same wrk command as every other scenario; each server is warmed
#                              (the first request must be a miss), checked to answer hits before
#                              the timed run, and checked after it to have fetched from the origin
#                              only once (so the numbers are hits only).
#   cache_memory               RSS growth per cached object: 100k distinct 1 KiB objects
#                              (f.bin?i=N) into Portico, then into Varnish (nginx keeps its
#                              bodies on disk: not measured).
#
# Peers: nginx from Debian with proxy_cache (deploy/bench/proxy-nginx-cache.conf.in) and
# varnishd from Debian (deploy/bench/varnish.vcl.in) in the foreground, malloc storage,
# -p thread_pools=1: Varnish's default is two pools (meant as one per CPU); every server here gets
# one core, so one pool is the setting fit for it (its 100 minimum threads cover the 64
# connections, so no thread is created during the run). Portico runs one worker, nginx one
# worker process. The results go to CACHE_ROWS / MEM_ROWS, printed by print_cache_tables.

CACHE_ROWS=()
CPU_ROWS=()
MEM_ROWS=()
MEM_OBJECTS=${MEM_OBJECTS:-100000}
VARNISHD=$(command -v varnishd 2>/dev/null || echo /usr/sbin/varnishd)
VARNISHSTAT=$(command -v varnishstat 2>/dev/null || echo /usr/bin/varnishstat)

render_cache() {  # template output: render(), plus the placeholders only these scenarios use
  local name text
  render "$1" "$2"
  text=$(cat "$2")
  for name in ADMIN_PORT CACHE_MEMORY; do
    text=${text//@$name@/${!name:-}}
  done
  printf '%s\n' "$text" >"$2"
}

# kind(portico|nginx|varnish) memory -> PROXY_PID, PROXY_PORT (+ ADMIN_PORT for Portico,
# VARNISH_DIR for Varnish). Every start is cold: an empty nginx cache dir, a new Varnish workdir.
start_cache_proxy() {
  local kind=$1 ports
  # shellcheck disable=SC2034  # read by render_cache() through ${!name}
  CACHE_MEMORY=$2
  ports=$(free_ports 2)
  PROXY_PORT=$(sed -n 1p <<<"$ports")
  ADMIN_PORT=$(sed -n 2p <<<"$ports")
  case "$kind" in
    portico)
      render_cache portico-cache.toml.in "$TMP/portico-cache.toml"
      start_bg "$SERVER_CPU" "$TMP/portico.log" "$PORTICO" -c "$TMP/portico-cache.toml" ;;
    nginx)
      rm -rf "$TMP/nginx-cache"
      render_cache proxy-nginx-cache.conf.in "$TMP/proxy-cache.conf"
      start_bg "$SERVER_CPU" "$TMP/nginx.log" nginx -p "$TMP/" -e "$TMP/proxy.error.log" \
        -c "$TMP/proxy-cache.conf" -g 'daemon off;' ;;
    varnish)
      [ -x "$VARNISHD" ] || { echo "bench: varnishd not found (bash deploy/install-deps.sh)" >&2; exit 1; }
      VARNISH_DIR="$TMP/varnish-$PROXY_PORT"
      render_cache varnish.vcl.in "$TMP/varnish.vcl"
      chmod 644 "$TMP/varnish.vcl"
      # malloc storage of the same size as Portico's memory tier; -T on loopback (ephemeral).
      start_bg "$SERVER_CPU" "$TMP/varnish.log" "$VARNISHD" -F -a "127.0.0.1:$PROXY_PORT" \
        -T 127.0.0.1:0 -f "$TMP/varnish.vcl" -s "malloc,$CACHE_MEMORY" -n "$VARNISH_DIR" \
        -p thread_pools=1 ;;
  esac
  PROXY_PID=$LAST_PID
}

fetch_head() {  # url -> FETCH ("code size"), FETCH_HEADERS (the response head)
  local out
  out=$(curl -s -D - -o /dev/null -w '\n@@%{http_code} %{size_download}' --max-time 2 "$1" || true)
  FETCH=${out##*@@}
  FETCH_HEADERS=${out%@@*}
}

cache_state() {  # kind headers -> hit | miss | other, from the header each server sets
  local kind=$1 h=$2
  case "$kind" in
    portico)
      if grep -qi '^X-Cache: Hit from portico' <<<"$h"; then echo hit
      elif grep -qi '^X-Cache: Miss from portico' <<<"$h"; then echo miss
      else echo other; fi ;;
    nginx)
      if grep -qi '^X-Cache-Status: HIT' <<<"$h"; then echo hit
      elif grep -qi '^X-Cache-Status: MISS' <<<"$h"; then echo miss
      else echo other; fi ;;
    varnish)  # X-Varnish: "<id>" on a miss, "<id> <id that filled the object>" (+ Age) on a hit
      if grep -Eqi '^X-Varnish: [0-9]+ [0-9]+' <<<"$h" && grep -qi '^Age:' <<<"$h"; then echo hit
      elif grep -Eqi '^X-Varnish: [0-9]+'$'\r''?$' <<<"$h"; then echo miss
      else echo other; fi ;;
  esac
}

# kind url bytes log: waits (bounded) for the first 200 of the right size, which must be a miss
# (it fills the cache), then (bounded) for a hit.
warm_cache() {
  local kind=$1 url=$2 bytes=$3 log=$4 state=
  for _ in $(seq 100); do
    fetch_head "$url"
    [ "$FETCH" = "200 $bytes" ] && break
    sleep 0.1
  done
  if [ "$FETCH" != "200 $bytes" ]; then
    echo "bench: $kind: $url not ready (last answer: '$FETCH'); log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  state=$(cache_state "$kind" "$FETCH_HEADERS")
  if [ "$state" != miss ]; then
    echo "bench: $kind: the first answer for $url was not a miss ($state):" >&2
    printf '%s\n' "$FETCH_HEADERS" >&2
    exit 1
  fi
  for _ in $(seq 50); do
    fetch_head "$url"
    state=$(cache_state "$kind" "$FETCH_HEADERS")
    [ "$FETCH" = "200 $bytes" ] && [ "$state" = hit ] && return 0
    sleep 0.1
  done
  echo "bench: $kind: $url never answered a hit (last: '$FETCH' $state):" >&2
  printf '%s\n' "$FETCH_HEADERS" >&2
  exit 1
}

portico_metric() {  # name -> value from Portico's admin /metrics (empty if absent)
  curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}' || true
}

varnish_stat() {  # counter -> value (MAIN.cache_miss, MAIN.n_object, ...)
  "$VARNISHSTAT" -n "$VARNISH_DIR" -1 -f "$1" 2>/dev/null | awk -v n="$1" '$1 == n {print $2}' || true
}

# kind url -> HITS_NOTE: after the timed run, proof that the origin was asked once (the warm-up
# miss) and everything else was a hit. A failed check is reported and marks the table row.
check_hits_only() {
  local kind=$1 url=$2 misses files
  HITS_NOTE=ok
  case "$kind" in
    portico)
      misses=$(portico_metric portico_coalesce_leaders_total)
      misses=$(( misses + $(portico_metric portico_coalesce_passes_total) )) ;;
    varnish)
      misses=$(varnish_stat MAIN.cache_miss) ;;
    nginx)  # no counters: one file in the cache dir, and the cache still answers HIT
      files=$(find "$TMP/nginx-cache" -type f | wc -l)
      misses=$files ;;
  esac
  fetch_head "$url"
  if [ "${misses:-x}" != 1 ] || [ "$(cache_state "$kind" "$FETCH_HEADERS")" != hit ]; then
    echo "bench: warning: $kind: origin fetches (or cache files) = '${misses:-?}', last answer" \
         "$(cache_state "$kind" "$FETCH_HEADERS"): the run was not hits only" >&2
    HITS_NOTE=MISSES
  fi
}

# name path body-bytes -> one row of CACHE_ROWS: Portico, nginx and Varnish in turn, same wrk.
compare_cache() {
  local name=$1 path=$2 bytes=$3 kind url note=ok target
  local prps pp99 nrps np99 vrps vp99 pcpu ncpu vcpu
  for kind in portico nginx varnish; do
    if [ "$kind" = portico ]; then start_cache_proxy "$kind" 256MiB; else start_cache_proxy "$kind" 256m; fi
    url="http://127.0.0.1:$PROXY_PORT$path"
    warm_cache "$kind" "$url" "$bytes" "$TMP/$kind.log"
    run_wrk "$url"
    check_hits_only "$kind" "$url"
    [ "$HITS_NOTE" = ok ] || note="$kind-misses"
    stop_pid "$PROXY_PID"
    case "$kind" in
      portico) prps=$RPS pp99=$P99_MS pcpu=$CPU_US ;;
      nginx) nrps=$RPS np99=$P99_MS ncpu=$CPU_US ;;
      varnish) vrps=$RPS vp99=$P99_MS vcpu=$CPU_US ;;
    esac
  done
  CPU_ROWS+=("$(awk -v s="$name" -v p="$pcpu" -v n="$ncpu" -v v="$vcpu" 'BEGIN {
    printf "%-10s %10.1f %10.1f %10.1f %8.2f %8.2f", s, p, n, v, (p > 0 ? n / p : 0), (p > 0 ? v / p : 0) }')")
  # Issue 4's target: Portico >= 1.2x nginx and >= Varnish in requests per second.
  target=$(awk -v p="$prps" -v n="$nrps" -v v="$vrps" 'BEGIN {
    print (p >= 1.2 * n && p >= v) ? "met" : "MISSED" }')
  CACHE_ROWS+=("$(awk -v s="$name" -v pr="$prps" -v pp="$pp99" -v nr="$nrps" -v np="$np99" \
      -v vr="$vrps" -v vp="$vp99" -v t="$target" -v note="$note" 'BEGIN {
    printf "%-10s %11.0f %7.2f %11.0f %7.2f %11.0f %7.2f %6.2f %6.2f %6.2f %6.2f  %-6s %s",
      s, pr, pp, nr, np, vr, vp, pr / nr, pp / np, pr / vr, pp / vp, t, note }')")
}

# A single object of the given size, Cache-Control: max-age=3600 from the origin.
cache_hit_scenario() {  # name bytes
  start_upstream "$2" "max-age=3600"
  compare_cache "$1" /f.bin "$2"
  stop_pid "$UPSTREAM_PID"
}
scenario_hit_1k() { cache_hit_scenario hit_1k 1024; }
scenario_hit_16k() { cache_hit_scenario hit_16k 16384; }
scenario_hit_256k() { cache_hit_scenario hit_256k 262144; }

rss_bytes() {  # pid -> VmRSS in bytes
  awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"
}

# port -> runs wrk once over f.bin?i=1..MEM_OBJECTS (64 connections, bounded at 300 s): every
# request a new key. A wrk run lasts its whole -d even when its thread stops, so the lua script
# writes walk.done once it has MEM_OBJECTS + 64 answers (at most 64 are in flight at once, so by
# then every distinct URL has been answered) and the walk ends wrk there. wrk calls request()
# once before the run to check the script (that answer is never sent), hence the walk's i starts
# at 0: the checked request takes f.bin?i=0 (cached already), the run takes 1..MEM_OBJECTS.
walk_objects() {
  local pid
  rm -f "$TMP/walk.done"
  cat >"$TMP/walk.lua" <<EOF
local n, i, got = $MEM_OBJECTS, -1, 0
function request()
  if i < n then i = i + 1 end
  return wrk.format("GET", "/f.bin?i=" .. i)
end
function response(status, headers, body)
  got = got + 1
  if got == n + $CONNECTIONS then
    local f = io.open("$TMP/walk.done", "w")
    f:write(got)
    f:close()
    wrk.thread:stop()
  end
end
EOF
  start_bg "$CLIENT_CPU" "$TMP/walk.out" wrk -t1 -c"$CONNECTIONS" -d300s -s "$TMP/walk.lua" \
    "http://127.0.0.1:$1/"
  pid=$LAST_PID
  for _ in $(seq 3000); do
    [ -f "$TMP/walk.done" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$pid"
  if [ ! -f "$TMP/walk.done" ]; then
    echo "bench: the walk over $MEM_OBJECTS URLs did not finish:" >&2
    cat "$TMP/walk.out" >&2
    exit 1
  fi
}

# kind pid -> one MEM_ROWS row: RSS before and after MEM_OBJECTS distinct 1 KiB objects. The
# baseline is taken after a run of hits on one object over 64 connections, so connection
# buffers and allocator arenas are already in it; the divisor is the server's own object count.
measure_memory() {
  local kind=$1 pid=$2 n0 n1 rss0 rss1 charged=
  wrk_bg 1 "http://127.0.0.1:$PROXY_PORT/f.bin?i=0" "$TMP/warmup.out"
  sleep 0.5
  if [ "$kind" = portico ]; then n0=$(portico_metric portico_cache_objects); else n0=$(varnish_stat MAIN.n_object); fi
  rss0=$(rss_bytes "$pid")
  walk_objects "$PROXY_PORT"
  sleep 0.5
  if [ "$kind" = portico ]; then
    n1=$(portico_metric portico_cache_objects)
    charged=$(portico_metric portico_cache_bytes)
  else
    n1=$(varnish_stat MAIN.n_object)
  fi
  rss1=$(rss_bytes "$pid")
  if [ -z "$n0" ] || [ -z "$n1" ] || [ "$n1" -le "$n0" ]; then
    echo "bench: $kind: object count did not grow ('$n0' -> '$n1')" >&2
    exit 1
  fi
  if [ $(( n1 - n0 )) -lt $(( MEM_OBJECTS * 99 / 100 )) ]; then
    echo "bench: warning: $kind: only $(( n1 - n0 )) of $MEM_OBJECTS objects were cached" >&2
  fi
  MEM_ROWS+=("$(awk -v k="$kind" -v n0="$n0" -v n1="$n1" -v r0="$rss0" -v r1="$rss1" -v c="$charged" 'BEGIN {
    printf "%-8s %9d %10.1f %10.1f %10.1f %9.0f %s", k, n1 - n0, r0 / 1048576, r1 / 1048576,
      (r1 - r0) / 1048576, (r1 - r0) / (n1 - n0), (c == "" ? "-" : sprintf("%.0f", c / n1)) }')")
}

# Memory per cached object (RSS growth / objects) for MEM_OBJECTS small (1 KiB) objects.
scenario_cache_memory() {
  local child
  start_upstream 1024 "max-age=3600"
  start_cache_proxy portico 1GiB
  warm_cache portico "http://127.0.0.1:$PROXY_PORT/f.bin?i=0" 1024 "$TMP/portico.log"
  measure_memory portico "$PROXY_PID"
  stop_pid "$PROXY_PID"

  start_cache_proxy varnish 1g
  warm_cache varnish "http://127.0.0.1:$PROXY_PORT/f.bin?i=0" 1024 "$TMP/varnish.log"
  # The cache lives in varnishd's child (the -F process is the manager).
  child=$(ps -o pid= --ppid "$PROXY_PID" | awk 'NR == 1 {print $1}')
  [ -n "$child" ] || { echo "bench: varnish: no child process under $PROXY_PID" >&2; exit 1; }
  measure_memory varnish "$child"
  stop_pid "$PROXY_PID"
  stop_pid "$UPSTREAM_PID"
}

# Prints what the scenarios above collected (nothing if none of them ran).
print_cache_tables() {
  if [ ${#CACHE_ROWS[@]} -gt 0 ]; then
    echo
    echo "cache hits: portico vs nginx proxy_cache vs $("$VARNISHD" -V 2>&1 | sed -n '1s/^varnishd (\(varnish-[^ ]*\).*/\1/p');" \
         "wrk -t1 -c$CONNECTIONS -d${DURATION}s"
    printf '%-10s %11s %7s %11s %7s %11s %7s %6s %6s %6s %6s  %-6s %s\n' scenario "portico r/s" \
      "p99 ms" "nginx r/s" "p99 ms" "varnish r/s" "p99 ms" "r/s xN" "p99 xN" "r/s xV" "p99 xV" \
      target hits
    printf '%s\n' "${CACHE_ROWS[@]}"
    echo "(xN = Portico/nginx, xV = Portico/Varnish; r/s higher is better, p99 lower is better;" \
         "target: r/s xN >= 1.2 and r/s xV >= 1; hits: ok = one origin fetch, the rest hits)"
    echo
    echo "server CPU per cache hit (microseconds per request, same runs)"
    printf '%-10s %10s %10s %10s %8s %8s\n' scenario portico nginx varnish "N/P" "V/P"
    printf '%s\n' "${CPU_ROWS[@]}"
    echo "(N/P, V/P = nginx's and Varnish's CPU per request over Portico's: higher is better for Portico)"
  fi
  if [ ${#MEM_ROWS[@]} -gt 0 ]; then
    echo
    echo "memory per cached object: $MEM_OBJECTS distinct 1 KiB objects (f.bin?i=N)"
    printf '%-8s %9s %10s %10s %10s %9s %s\n' server objects "RSS0 MiB" "RSS1 MiB" "growth MiB" \
      "B/object" "charged B/object"
    printf '%s\n' "${MEM_ROWS[@]}"
  fi
}
