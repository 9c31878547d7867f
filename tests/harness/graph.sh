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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
APP="$HERE/graph"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

usage() { die "usage: $0 start DIR [ENTRA_DIR] | stop DIR"; }

do_stop() { stop_server "$1" MB_GRAPH_PID; }

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  # $2: the Entra stand-in's DIR
  write_env_json "$1" "$2" <<'JS'
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
  MB_GRAPH_ENTRA_DIR: args[0],
  MB_GRAPH_PID: s.pid,
  MB_GRAPH_LOG: `${dir}/logs/graph.log`,
  MB_GRAPH_HARNESS_DIR: dir,
};
JS
}

# True when the service document's URL gets any HTTP answer over TLS with the test CA.
probe() { https_probe "$1" "$2" "/v1.0/\$metadata" -s -o /dev/null; }

do_start() {
  local dir=$1 entra=${2:-${MB_ENTRA_DIR:-}} jwks ca tenant domain
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
  need_node
  rm -rf "$dir/tls" "$dir/logs"
  mkdir -p "$dir/logs"
  make_tls "$dir/tls" "mailbridge Graph stand-in test CA"
  MB_GRAPH_JWKS_URL=$jwks MB_GRAPH_JWKS_CA=$ca MB_GRAPH_TENANT_ID=$tenant MB_GRAPH_DOMAIN=$domain \
    spawn_server "$dir" "$dir/logs/graph.log"
  wait_ready "$dir" "$SERVER_PID" port probe ||
    start_failed "$SERVER_PID" "$dir/logs/graph.log" "Graph stand-in"
  write_env "$dir" "$entra"
  echo "graph.sh: Graph stand-in $SERVER_PID: $(env_value "$dir" MB_GRAPH_URL)," \
    "admin $(env_value "$dir" MB_GRAPH_ADMIN_URL), tokens of $entra"
}

case "${1:-}" in
  start) [ $# -ge 2 ] && [ $# -le 3 ] || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(abs_dir "$2")" ;;
  *) usage ;;
esac
