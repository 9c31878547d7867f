#!/usr/bin/env bash
# File: tests/harness/graph.sh — starts and stops the test-only Microsoft Graph stand-in
# (tests/harness/graph/server.mjs, plain Node.js) on loopback for the integration tests and
# the Graph benchmark.
#
#   tests/harness/graph.sh start DIR [ENTRA_DIR]   # (re)creates DIR, starts, writes DIR/env
#   tests/harness/graph.sh stop DIR                # stops exactly that server (by its PID)
#
# The stand-in accepts the access tokens of the Entra stand-in (tests/harness/entra.sh) that
# runs for ENTRA_DIR (or $MB_ENTRA_DIR): it verifies them with that server's JWKS, fetched over
# HTTPS with its CA. `start` makes a private test CA with a server certificate for
# DNS:localhost only, runs the server, which picks its own free ports, and writes DIR/env:
# MB_GRAPH_URL (the `endpoint` of a graph mailbox), MB_GRAPH_ADMIN_URL, MB_GRAPH_CA_FILE,
# MB_GRAPH_USER, MB_GRAPH_DOMAIN, MB_GRAPH_PID, ... (tests/harness/README.md lists them all).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP="$HERE/graph"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

die() { echo "graph.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR [ENTRA_DIR] | stop DIR"; }

env_value() {
  local dir=$1 key=$2
  [ -f "$dir/env" ] || return 0
  sed -n "s/^$key=//p" "$dir/env" | head -n1
}

# True while PID is a live (non-zombie) process.
alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != "Z" ]
}

# True when PID runs our server.mjs (so a stale, reused PID is never signalled).
is_ours() {
  local pid=$1
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "graph/server.mjs"
}

wait_gone() {
  local pid=$1 i
  for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  return 1
}

stop_pid() {
  local pid=$1
  [ -n "$pid" ] && is_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid"; then
    echo "graph.sh: server $pid ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || die "server $pid did not exit"
  fi
}

do_stop() {
  local dir=$1 pid
  pid=$(env_value "$dir" MB_GRAPH_PID)
  if [ -z "$pid" ] && [ -f "$dir/server.pid" ]; then pid=$(cat "$dir/server.pid"); fi
  stop_pid "$pid"
  rm -f "$dir/env" "$dir/server.pid" "$dir/server.json"
  return 0
}

make_certs() {
  local dir=$1
  mkdir -p "$dir/tls"
  (
    cd "$dir/tls"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mailbridge Graph stand-in test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
EXT
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 825 -extfile server.ext 2>/dev/null
    chmod 600 ca.key server.key
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  local dir=$1  # $2: the Entra stand-in's DIR
  node - "$dir" "$2" <<'JS'
const fs = require('node:fs');
const dir = process.argv[2];
const s = JSON.parse(fs.readFileSync(`${dir}/server.json`, 'utf8'));
const base = `https://localhost:${s.port}`;
const lines = {
  MB_GRAPH_URL: base,
  MB_GRAPH_HOST: 'localhost',
  MB_GRAPH_PORT: s.port,
  MB_GRAPH_ADMIN_URL: `http://127.0.0.1:${s.admin_port}`,
  MB_GRAPH_ADMIN_PORT: s.admin_port,
  MB_GRAPH_CA_FILE: `${dir}/tls/ca.pem`,
  MB_GRAPH_TENANT_ID: s.tenant_id,
  MB_GRAPH_DOMAIN: s.domain,
  MB_GRAPH_USER: s.user,
  MB_GRAPH_ENTRA_DIR: process.argv[3],
  MB_GRAPH_PID: s.pid,
  MB_GRAPH_LOG: `${dir}/logs/graph.log`,
  MB_GRAPH_HARNESS_DIR: dir,
};
const text = Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join('');
fs.writeFileSync(`${dir}/env.tmp`, text, { mode: 0o600 });
fs.renameSync(`${dir}/env.tmp`, `${dir}/env`);
JS
}

# Waits until the key endpoint is served over TLS with the test CA, bounded.
wait_ready() {
  local dir=$1 pid=$2 i port
  for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
    [ -s "$dir/server.json" ] && break
    alive "$pid" || return 1
    sleep 0.05
  done
  [ -s "$dir/server.json" ] || return 1
  port=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).port)' \
    "$dir/server.json")
  for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
    if curl -s -o /dev/null --max-time 2 --cacert "$dir/tls/ca.pem" \
      "https://localhost:$port/v1.0/\$metadata" >/dev/null 2>&1; then
      return 0
    fi
    alive "$pid" || return 1
    sleep 0.25
  done
  return 1
}

do_start() {
  local dir=$1 entra=${2:-${MB_ENTRA_DIR:-}} pid jwks ca tenant domain
  [ -n "$entra" ] || die "name the Entra stand-in's DIR (second argument or MB_ENTRA_DIR)"
  [ -f "$entra/env" ] || die "no Entra stand-in running for $entra (tests/harness/entra.sh start)"
  entra=$(cd "$entra" && pwd)
  jwks=$(env_value "$entra" MB_ENTRA_JWKS_URL)
  ca=$(env_value "$entra" MB_ENTRA_CA_FILE)
  tenant=$(env_value "$entra" MB_ENTRA_TENANT_ID)
  domain=$(env_value "$entra" MB_ENTRA_TENANT_DOMAIN)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  command -v node >/dev/null || die "node is not installed (run scripts/setup.sh)"
  rm -rf "$dir/tls" "$dir/logs"
  mkdir -p "$dir/logs"
  make_certs "$dir"
  # Its own session and no terminal, output to the log: the caller (ctest) must not wait
  # for it, and it must not die with the caller's shell.
  (cd "$APP" && MB_GRAPH_JWKS_URL=$jwks MB_GRAPH_JWKS_CA=$ca MB_GRAPH_TENANT_ID=$tenant \
    MB_GRAPH_DOMAIN=$domain exec setsid node "$APP/server.mjs" "$dir" </dev/null \
    >>"$dir/logs/graph.log" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  if ! wait_ready "$dir" "$pid"; then
    echo "graph.sh: the server did not start; log:" >&2
    tail -n 30 "$dir/logs/graph.log" >&2 || true
    stop_pid "$pid"
    die "Graph stand-in did not start (see $dir/logs/graph.log)"
  fi
  write_env "$dir" "$entra"
  echo "graph.sh: Graph stand-in $pid: $(env_value "$dir" MB_GRAPH_URL)," \
    "admin $(env_value "$dir" MB_GRAPH_ADMIN_URL), tokens of $entra"
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -ge 2 ] && [ $# -le 3 ] || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")" ;;
  *) usage ;;
esac
