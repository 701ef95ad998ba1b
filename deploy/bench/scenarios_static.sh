# shellcheck shell=bash
# Static-site scenarios for deploy/bench.sh (issue 5): Portico vs nginx proxy_cache vs Varnish in
# front of the same files. Sourced by bench.sh after scenarios_cache.sh (it reuses its helpers:
# render_cache, cache_state, portico_metric, varnish_stat, VARNISHD) and before the main loop;
# defines functions only.
#
#   static_16k        a 16 KiB binary file (random bytes: nothing to compress)
#   static_1m         a 1 MiB binary file
#   static_gzip_64k   a 64 KiB stylesheet (generated CSS, compressible about 5x) requested with
#                     Accept-Encoding: gzip. Portico compresses (compress = true), nginx gzips
#                     each hit at level 6, Varnish stores the gzip once (beresp.do_gzip).
#
# The files live in $TMP/static-www, served by one upstream nginx (upstream-nginx-static.conf.in)
# per scenario; the peers' confs are portico-static.toml.in, proxy-nginx-static.conf.in and
# varnish-static.vcl.in. Each server starts cold, is warmed (the first answer must be a miss, then
# a hit must follow), and every warm-up answer is checked byte for byte against the file (gunzipped
# first when it came gzipped). For the gzip scenario each server must answer the hit with
# Content-Encoding: gzip: nginx or Varnish not doing so stops the run (their setup is broken);
# Portico not doing so skips the row (reported as such) and the run goes on. After the timed run
# the origin must have been asked once. Rows go to STATIC_ROWS / STATIC_CPU_ROWS, printed by
# print_static_tables.

STATIC_ROWS=()
STATIC_CPU_ROWS=()
STATIC_DIR=  # set by make_static_site

# -> $TMP/static-www with f16k.bin, f1m.bin (random) and site.css (65536 bytes of text), once
# per run. The stylesheet is rules over a vocabulary of selectors, properties and values with
# varying numbers and colors: the shape (and compressibility) of a real site's CSS, not one
# repeated byte. The seed is fixed so every run compresses the same text.
make_static_site() {
  STATIC_DIR="$TMP/static-www"
  [ -f "$STATIC_DIR/site.css" ] && return 0
  mkdir -p "$STATIC_DIR"
  head -c 16384 /dev/urandom >"$STATIC_DIR/f16k.bin"
  head -c 1048576 /dev/urandom >"$STATIC_DIR/f1m.bin"
  python3 - "$STATIC_DIR/site.css" <<'EOF'
import random, sys
rng = random.Random(5)
blocks = ["header", "nav", "card", "btn", "form", "modal", "footer", "grid", "list", "hero",
          "sidebar", "badge", "table", "alert", "tabs", "menu", "avatar", "toast", "field", "panel"]
elements = ["title", "body", "icon", "item", "link", "label", "input", "image", "text", "row"]
modifiers = ["", "", "", "--active", "--disabled", "--large", "--small", "--primary", "--dark"]
states = ["", "", "", ":hover", ":focus", "::before", ":first-child", ":not(:last-child)"]
units = ["px", "rem", "em", "%"]
def color():
    r = rng.random()
    if r < 0.6:
        return "#%06x" % rng.randrange(1 << 24)
    if r < 0.85:
        return "rgba(%d, %d, %d, %.2f)" % (rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.random())
    return rng.choice(["transparent", "inherit", "currentColor", "#fff", "#000"])
def length():
    return "%s%s" % (rng.choice([0, 1, 2, 4, 8, 12, 16, 24, 32, rng.randrange(1, 400)]), rng.choice(units))
props = [
    ("color", color), ("background-color", color), ("border-color", color),
    ("margin", lambda: " ".join(length() for _ in range(rng.randrange(1, 5)))),
    ("padding", lambda: " ".join(length() for _ in range(rng.randrange(1, 5)))),
    ("width", length), ("height", length), ("max-width", length), ("top", length), ("left", length),
    ("font-size", length), ("line-height", lambda: "%.2f" % rng.uniform(1, 2)),
    ("border-radius", length), ("gap", length), ("z-index", lambda: str(rng.randrange(1, 1000))),
    ("display", lambda: rng.choice(["block", "flex", "grid", "inline-block", "none"])),
    ("position", lambda: rng.choice(["relative", "absolute", "fixed", "sticky"])),
    ("font-weight", lambda: rng.choice(["400", "500", "600", "700", "bold"])),
    ("transition", lambda: "%s %dms ease-in-out" % (rng.choice(["opacity", "transform", "all"]), rng.randrange(50, 600))),
    ("box-shadow", lambda: "0 %s %s %s" % (length(), length(), color())),
    ("transform", lambda: "translate(%s, %s) rotate(%ddeg)" % (length(), length(), rng.randrange(360))),
    ("opacity", lambda: "%.2f" % rng.random()),
]
out = ["/* generated stylesheet for the Portico static-site bench */\n"]
size = len(out[0])
while size < 65536:
    if rng.random() < 0.05:
        out.append("@media (max-width: %dpx) {\n" % rng.choice([480, 640, 768, 1024, 1280]))
        inner = True
    else:
        inner = False
    sel = ".%s__%s%s%s" % (rng.choice(blocks), rng.choice(elements), rng.choice(modifiers), rng.choice(states))
    body = "".join("  %s: %s;\n" % (p, f()) for p, f in rng.sample(props, rng.randrange(2, 7)))
    out.append("%s {\n%s}\n" % (sel, body))
    if inner:
        out.append("}\n")
    size = sum(len(s) for s in out)
text = "".join(out).encode()[:65536]
open(sys.argv[1], "wb").write(text)
EOF
  chmod 755 "$STATIC_DIR"
  chmod 644 "$STATIC_DIR"/*
}

start_static_upstream() {  # -> UPSTREAM_PID, UPSTREAM_PORT (serving $STATIC_DIR)
  make_static_site
  UPSTREAM_PORT=$(free_ports 1)
  render upstream-nginx-static.conf.in "$TMP/upstream-static.conf"
  start_bg "$SERVER_CPU" "$TMP/upstream.log" nginx -p "$TMP/" -e "$TMP/upstream.error.log" \
    -c "$TMP/upstream-static.conf" -g 'daemon off;'
  UPSTREAM_PID=$LAST_PID
  wait_ready "http://127.0.0.1:$UPSTREAM_PORT/f16k.bin" 16384 "$TMP/upstream.error.log"
}

# kind(portico|nginx|varnish) -> PROXY_PID, PROXY_PORT (+ ADMIN_PORT, VARNISH_DIR): the same
# start as start_cache_proxy (cold every time, 256 MiB of memory), with the static templates.
start_static_proxy() {
  local kind=$1 ports
  ports=$(free_ports 2)
  PROXY_PORT=$(sed -n 1p <<<"$ports")
  # shellcheck disable=SC2034  # read by render_cache() through ${!name} and by portico_metric
  ADMIN_PORT=$(sed -n 2p <<<"$ports")
  case "$kind" in
    portico)
      # shellcheck disable=SC2034  # read by render_cache() through ${!name}
      CACHE_MEMORY=256MiB
      render_cache portico-static.toml.in "$TMP/portico-static.toml"
      start_bg "$SERVER_CPU" "$TMP/portico.log" "$PORTICO" -c "$TMP/portico-static.toml" ;;
    nginx)
      rm -rf "$TMP/nginx-cache"
      render_cache proxy-nginx-static.conf.in "$TMP/proxy-static.conf"
      start_bg "$SERVER_CPU" "$TMP/nginx.log" nginx -p "$TMP/" -e "$TMP/proxy.error.log" \
        -c "$TMP/proxy-static.conf" -g 'daemon off;' ;;
    varnish)
      [ -x "$VARNISHD" ] || { echo "bench: varnishd not found (bash deploy/install-deps.sh)" >&2; exit 1; }
      VARNISH_DIR="$TMP/varnish-$PROXY_PORT"
      render_cache varnish-static.vcl.in "$TMP/varnish-static.vcl"
      chmod 644 "$TMP/varnish-static.vcl"
      start_bg "$SERVER_CPU" "$TMP/varnish.log" "$VARNISHD" -F -a "127.0.0.1:$PROXY_PORT" \
        -T 127.0.0.1:0 -f "$TMP/varnish-static.vcl" -s malloc,256m -n "$VARNISH_DIR" \
        -p thread_pools=1 ;;
  esac
  PROXY_PID=$LAST_PID
}

# url file [curl args...] -> FETCH ("code"), FETCH_HEADERS, FETCH_BODY_OK (yes when the body,
# gunzipped if it came with Content-Encoding: gzip, equals the file), FETCH_GZIP (yes|no).
fetch_static() {
  local url=$1 file=$2 out
  shift 2
  out=$(curl -s -D - -o "$TMP/static.body" -w '\n@@%{http_code}' --max-time 2 "$@" "$url" || true)
  FETCH=${out##*@@}
  FETCH_HEADERS=${out%@@*}
  FETCH_GZIP=no
  grep -Eqi '^Content-Encoding: *gzip' <<<"$FETCH_HEADERS" && FETCH_GZIP=yes
  FETCH_BODY_OK=no
  if [ "$FETCH_GZIP" = yes ]; then
    gzip -dc <"$TMP/static.body" 2>/dev/null | cmp -s - "$file" && FETCH_BODY_OK=yes
  else
    cmp -s "$TMP/static.body" "$file" && FETCH_BODY_OK=yes
  fi
  return 0
}

# kind url file log [curl args...]: waits (bounded) for the first right answer, which must be a
# miss (it fills the cache), then (bounded) for a right answer that is a hit; FETCH_* describe it.
warm_static() {
  local kind=$1 url=$2 file=$3 log=$4 state=
  shift 4
  for _ in $(seq 100); do
    fetch_static "$url" "$file" "$@"
    [ "$FETCH" = 200 ] && [ "$FETCH_BODY_OK" = yes ] && break
    sleep 0.1
  done
  if [ "$FETCH" != 200 ] || [ "$FETCH_BODY_OK" != yes ]; then
    echo "bench: $kind: $url not ready or wrong body (last status '$FETCH'); log:" >&2
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
    fetch_static "$url" "$file" "$@"
    state=$(cache_state "$kind" "$FETCH_HEADERS")
    [ "$FETCH" = 200 ] && [ "$FETCH_BODY_OK" = yes ] && [ "$state" = hit ] && return 0
    sleep 0.1
  done
  echo "bench: $kind: $url never answered a right hit (last: '$FETCH' body_ok=$FETCH_BODY_OK $state):" >&2
  printf '%s\n' "$FETCH_HEADERS" >&2
  exit 1
}

# kind url file [curl args...] -> STATIC_HITS_NOTE: after the timed run, the origin was asked
# once (the warm-up miss) and the same request is still a hit.
check_static_hits() {
  local kind=$1 url=$2 file=$3 misses
  shift 3
  STATIC_HITS_NOTE=ok
  case "$kind" in
    portico)
      # Origin fetches, counted where they happen (the coalescer also leads the making of a
      # compressed variant, which is no origin fetch).
      misses=$(portico_metric 'portico_origin_duration_seconds_count{origin="upstream"}') ;;
    varnish)
      misses=$(varnish_stat MAIN.cache_miss) ;;
    nginx)  # no counters: one file in the cache dir, and the cache still answers HIT
      misses=$(find "$TMP/nginx-cache" -type f | wc -l) ;;
  esac
  fetch_static "$url" "$file" "$@"
  if [ "${misses:-x}" != 1 ] || [ "$(cache_state "$kind" "$FETCH_HEADERS")" != hit ]; then
    echo "bench: warning: $kind: origin fetches (or cache files) = '${misses:-?}', last answer" \
         "$(cache_state "$kind" "$FETCH_HEADERS"): the run was not hits only" >&2
    STATIC_HITS_NOTE=MISSES
  fi
}

# name path gzip(yes|no) -> one row of STATIC_ROWS: Portico, nginx and Varnish in turn, same wrk
# (plus Accept-Encoding: gzip when gzip=yes). With gzip=yes, a server whose hit is not gzipped:
# Portico -> the row is skipped (the peers are still started and checked, not timed); nginx or
# Varnish -> the run stops.
compare_static() {
  local name=$1 path=$2 gzip=$3 kind url file note=ok target skip='' gzip_problem=''
  local prps pp99 nrps np99 vrps vp99 pcpu ncpu vcpu
  local req=()
  [ "$gzip" = yes ] && req=(-H 'Accept-Encoding: gzip')
  file="$STATIC_DIR$path"
  for kind in portico nginx varnish; do
    start_static_proxy "$kind"
    url="http://127.0.0.1:$PROXY_PORT$path"
    warm_static "$kind" "$url" "$file" "$TMP/$kind.log" "${req[@]+"${req[@]}"}"
    # A server may store the compressed variant after its first hits: ask again (bounded, 2 s).
    gzip_problem=
    if [ "$gzip" = yes ]; then
      for _ in $(seq 20); do
        [ "$FETCH_GZIP" = yes ] && [ "$FETCH_BODY_OK" = yes ] && break
        sleep 0.1
        fetch_static "$url" "$file" "${req[@]}"
      done
      if [ "$FETCH_GZIP" != yes ]; then gzip_problem="no Content-Encoding: gzip"
      elif [ "$FETCH_BODY_OK" != yes ]; then gzip_problem="the gzip body does not gunzip to the file"
      fi
    fi
    if [ -n "$gzip_problem" ]; then
      if [ "$kind" != portico ]; then
        echo "bench: $kind: $gzip_problem on a hit of $url with Accept-Encoding: gzip" \
             "(its static conf is broken); answer:" >&2
        printf '%s\n' "$FETCH_HEADERS" >&2
        exit 1
      fi
      echo "bench: portico: $gzip_problem on a hit of $url with Accept-Encoding: gzip" \
           "(edge compression missing?): skipping the $name row" >&2
      skip="portico: $gzip_problem"
    fi
    if [ -n "$skip" ]; then
      stop_pid "$PROXY_PID"
      continue
    fi
    run_wrk "$url" "${req[@]+"${req[@]}"}"
    check_static_hits "$kind" "$url" "$file" "${req[@]+"${req[@]}"}"
    [ "$STATIC_HITS_NOTE" = ok ] || note="$kind-misses"
    stop_pid "$PROXY_PID"
    case "$kind" in
      portico) prps=$RPS pp99=$P99_MS pcpu=$CPU_US ;;
      nginx) nrps=$RPS np99=$P99_MS ncpu=$CPU_US ;;
      varnish) vrps=$RPS vp99=$P99_MS vcpu=$CPU_US ;;
    esac
  done
  if [ -n "$skip" ]; then
    STATIC_ROWS+=("$(printf '%-16s skipped (%s; nginx and Varnish checked, not timed)' "$name" "$skip")")
    return 0
  fi
  STATIC_CPU_ROWS+=("$(awk -v s="$name" -v p="$pcpu" -v n="$ncpu" -v v="$vcpu" 'BEGIN {
    printf "%-16s %10.1f %10.1f %10.1f %8.2f %8.2f", s, p, n, v, (p > 0 ? n / p : 0), (p > 0 ? v / p : 0) }')")
  # Issue 5's target: Portico >= nginx and >= Varnish in requests per second.
  target=$(awk -v p="$prps" -v n="$nrps" -v v="$vrps" 'BEGIN { print (p >= n && p >= v) ? "met" : "MISSED" }')
  STATIC_ROWS+=("$(awk -v s="$name" -v pr="$prps" -v pp="$pp99" -v nr="$nrps" -v np="$np99" \
      -v vr="$vrps" -v vp="$vp99" -v t="$target" -v note="$note" 'BEGIN {
    printf "%-16s %11.0f %7.2f %11.0f %7.2f %11.0f %7.2f %6.2f %6.2f %6.2f %6.2f  %-6s %s",
      s, pr, pp, nr, np, vr, vp, pr / nr, pp / np, pr / vr, pp / vp, t, note }')")
}

static_scenario() {  # name path gzip(yes|no)
  start_static_upstream
  compare_static "$1" "$2" "$3"
  stop_pid "$UPSTREAM_PID"
}
scenario_static_16k() { static_scenario static_16k /f16k.bin no; }
scenario_static_1m() { static_scenario static_1m /f1m.bin no; }
scenario_static_gzip_64k() { static_scenario static_gzip_64k /site.css yes; }

# Prints what the scenarios above collected (nothing if none of them ran).
print_static_tables() {
  [ ${#STATIC_ROWS[@]} -gt 0 ] || return 0
  echo
  echo "static site: portico vs nginx proxy_cache vs $("$VARNISHD" -V 2>&1 | sed -n '1s/^varnishd (\(varnish-[^ ]*\).*/\1/p');" \
       "wrk -t1 -c$CONNECTIONS -d${DURATION}s (static_gzip_64k: + Accept-Encoding: gzip)"
  printf '%-16s %11s %7s %11s %7s %11s %7s %6s %6s %6s %6s  %-6s %s\n' scenario "portico r/s" \
    "p99 ms" "nginx r/s" "p99 ms" "varnish r/s" "p99 ms" "r/s xN" "p99 xN" "r/s xV" "p99 xV" \
    target hits
  printf '%s\n' "${STATIC_ROWS[@]}"
  echo "(xN = Portico/nginx, xV = Portico/Varnish; r/s higher is better, p99 lower is better;" \
       "target: r/s xN >= 1 and r/s xV >= 1; hits: ok = one origin fetch, the rest hits)"
  if [ ${#STATIC_CPU_ROWS[@]} -gt 0 ]; then
    echo
    echo "server CPU per static hit (microseconds per request, same runs)"
    printf '%-16s %10s %10s %10s %8s %8s\n' scenario portico nginx varnish "N/P" "V/P"
    printf '%s\n' "${STATIC_CPU_ROWS[@]}"
    echo "(N/P, V/P = nginx's and Varnish's CPU per request over Portico's: higher is better for Portico)"
  fi
}
