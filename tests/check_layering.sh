#!/usr/bin/env bash
# The include-direction rule of style.md §4.1: no layer includes one above it or beside it.
#   proxy/core : nothing of ours outside proxy/core
#   conf       : nothing of ours outside conf
#   cache      : proxy/core, conf, cache
#   origin     : proxy/core, conf, origin
#   proxy      : anything
# Only proxy/ (minus proxy/core) may include llhttp or OpenSSL headers.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
fail=0
check() {  # dir allowed-regex
  local dir=$1 allowed=$2
  while IFS= read -r line; do
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    if ! grep -Eq "^($allowed)/" <<<"$inc"; then
      echo "layering: ${line%%:*} includes \"$inc\" (allowed: $allowed)"; fail=1
    fi
  done < <(grep -HE '^#include "(proxy|conf|cache|origin|tests)/' $(find "$dir" -name '*.h' -o -name '*.cc' | grep -v '^proxy/core/' ) 2>/dev/null | grep -v "^$dir/.*#include \"$dir/")
}
# proxy/core: only itself
while IFS= read -r line; do
  echo "layering: $line (proxy/core includes only proxy/core)"; fail=1
done < <(grep -HE '^#include "(conf|cache|origin|tests)/|^#include "proxy/(io|h1|pipeline|stats)' proxy/core/*.h proxy/core/*.cc 2>/dev/null)
check conf 'conf'
check cache 'proxy/core|conf|cache'
check origin 'proxy/core|conf|origin'
while IFS= read -r line; do
  echo "layering: $line (only proxy/ outside proxy/core may use llhttp or OpenSSL)"; fail=1
done < <(grep -HE '^#include [<"](llhttp|openssl/)' $(find conf cache origin proxy/core -name '*.h' -o -name '*.cc') 2>/dev/null)
[ $fail = 0 ] && echo "layering: ok"
exit $fail
