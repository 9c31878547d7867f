#!/usr/bin/env bash
# File: tests/harness/ews.sh — starts and stops the test-only Exchange Web Services stand-in
# (tests/harness/ews/server.mjs, plain Node.js) on loopback for the integration tests.
#
#   tests/harness/ews.sh start DIR [ENTRA_DIR]   # (re)creates DIR, starts, writes DIR/env
#   tests/harness/ews.sh stop DIR                # stops exactly that server (by its PID)
#
# With ENTRA_DIR (or $MB_ENTRA_DIR) the stand-in also accepts that Entra stand-in's access
# tokens for https://outlook.office365.com (verified with its JWKS, fetched over HTTPS with
# its CA); without it, bearer tokens are refused and Basic and NTLM still work. `start` makes
# a private test CA with a server certificate for localhost and autodiscover's host names, a password for the
# accounts, runs the server, which picks its own free ports, and writes DIR/env (mode 0600):
# MB_EWS_URL (the `endpoint` of an ews mailbox), MB_EWS_ADMIN_URL, MB_EWS_CA_FILE,
# MB_EWS_USER, MB_EWS_PASSWORD, ... (tests/harness/README.md lists them all).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
APP="$HERE/ews"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

usage() { die "usage: $0 start DIR [ENTRA_DIR] | stop DIR"; }

do_stop() { stop_server "$1" MB_EWS_PID; }

write_env() {
  write_env_json "$1" "$2" <<'JS'
const base = `https://localhost:${s.port}`;
const lines = {
  MB_EWS_URL: `${base}/EWS/Exchange.asmx`,
  MB_EWS_HOST: 'localhost',
  MB_EWS_PORT: s.port,
  MB_EWS_ADMIN_URL: `http://127.0.0.1:${s.admin_port}`,
  MB_EWS_ADMIN_PORT: s.admin_port,
  MB_EWS_CA_FILE: `${dir}/tls/ca.pem`,
  MB_EWS_DOMAIN: s.domain,
  MB_EWS_NETBIOS: s.netbios,
  MB_EWS_USER: s.user,
  MB_EWS_SERVICE_ACCOUNT: s.service_account,
  MB_EWS_DELEGATE: s.delegate,
  MB_EWS_PASSWORD: s.password,
  MB_EWS_BEARER: s.bearer ? 1 : 0,
  MB_EWS_ENTRA_DIR: args[0] ?? '',
  MB_EWS_PID: s.pid,
  MB_EWS_LOG: `${dir}/logs/ews.log`,
  MB_EWS_HARNESS_DIR: dir,
};
JS
}

# True when the EWS URL gets any HTTP answer over TLS with the test CA (a 401 without
# credentials).
probe() { https_probe "$1" "$2" "/EWS/Exchange.asmx" -s -o /dev/null; }

do_start() {
  local dir=$1 entra=${2:-${MB_ENTRA_DIR:-}} jwks="" ca=""
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  need_node
  if [ -n "$entra" ]; then
    [ -f "$entra/env" ] || die "no Entra stand-in running for $entra (tests/harness/entra.sh start)"
    entra=$(cd "$entra" && pwd)
    jwks=$(env_value "$entra" MB_ENTRA_JWKS_URL)
    ca=$(env_value "$entra" MB_ENTRA_CA_FILE)
  fi
  rm -rf "$dir/tls" "$dir/logs"
  mkdir -p "$dir/logs"
  # Autodiscover's documented host names too, which the tests map to loopback (curl
  # CONNECT_TO) while TLS checks them: autodiscover.<domain>, <domain>, mail.<domain>, and
  # another domain's for redirects.
  local d=${MB_EWS_DOMAIN:-corp.example}
  make_tls "$dir/tls" "mailbridge EWS stand-in test CA" localhost \
    "DNS:localhost,DNS:$d,DNS:autodiscover.$d,DNS:mail.$d,DNS:other.example,DNS:autodiscover.other.example"
  MB_EWS_JWKS_URL=$jwks MB_EWS_JWKS_CA=$ca MB_EWS_PASSWORD=$(openssl rand -hex 12) \
    spawn_server "$dir" "$dir/logs/ews.log"
  wait_ready "$dir" "$SERVER_PID" port probe ||
    start_failed "$SERVER_PID" "$dir/logs/ews.log" "EWS stand-in"
  write_env "$dir" "$entra"
  echo "ews.sh: EWS stand-in $SERVER_PID: $(env_value "$dir" MB_EWS_URL)," \
    "admin $(env_value "$dir" MB_EWS_ADMIN_URL)${entra:+, tokens of $entra}"
}

case "${1:-}" in
  start) [ $# -ge 2 ] && [ $# -le 3 ] || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(abs_dir "$2")" ;;
  *) usage ;;
esac
