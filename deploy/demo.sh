#!/usr/bin/env bash
# README command 1: install what is missing, build, and start the demo: the embedded default
# conf (deploy/demo/portico.toml) -- a static site from deploy/demo/site and an API stage with a
# mock route and a function backend served by deploy/function-host. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

# A self-signed certificate for localhost, for the [server.tls] block of
# deploy/portico.example.toml (private keys are never committed: made here, git-ignored).
if [ ! -f deploy/demo/tls/localhost.key ]; then
  mkdir -p deploy/demo/tls
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -keyout deploy/demo/tls/localhost.key -out deploy/demo/tls/localhost.crt \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
fi

node deploy/function-host/server.js --port 9001 >/tmp/portico-demo-function-host.log 2>&1 &
fn_pid=$!
trap 'kill $fn_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q listening /tmp/portico-demo-function-host.log 2>/dev/null && break
  sleep 0.1
done

cat <<'TXT'

Portico demo: try these (admin: http://127.0.0.1:9901/metrics)
  curl -i http://localhost:8080/                     static site, index document (dir origin)
  curl -i http://localhost:8080/docs/                index document of a folder
  curl -i http://localhost:8080/nope                 the site's 404 error page
  curl -i http://api.localhost:8080/prod/status      API stage, mock route
  curl -i http://api.localhost:8080/prod/hello/you   API stage, function backend (Lambda Invoke API)
  curl -i http://api.localhost:8080/dev/hello/you    same route, dev stage variables
  curl -i http://api.localhost:8080/prod/nothing     403 Missing Authentication Token
Access log (JSON lines) follows. Ctrl-C to stop.

TXT
./build/proxy/portico
