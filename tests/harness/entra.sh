#!/usr/bin/env bash
# File: tests/harness/entra.sh — starts and stops the test-only Entra ID stand-in
# (tests/harness/entra/server.mjs, plain Node.js) on loopback for the integration tests, and
# approves device codes for them.
#
#   tests/harness/entra.sh start DIR                     # (re)creates DIR, starts, writes DIR/env
#   tests/harness/entra.sh stop DIR                      # stops exactly that server (by its PID)
#   tests/harness/entra.sh approve DIR USER_CODE [UPN]   # what the user does in a browser
#
# `start` makes a private test CA with a server certificate for DNS:localhost only and an RSA
# key with a self-signed certificate for the certificate-credential app, then runs the
# server, which picks its own free ports and reports them (and the tenant, app ids and
# secrets it made) in DIR/server.json. DIR/env then holds KEY=value lines: MB_ENTRA_AUTHORITY,
# MB_ENTRA_TENANT_ID, MB_ENTRA_ADMIN_URL, MB_ENTRA_CA_FILE, the app ids and secrets,
# MB_ENTRA_PID, ... (tests/harness/README.md lists them all).
#
# Lifetimes come from the environment of `start` (MB_ENTRA_ACCESS_TTL, MB_ENTRA_REFRESH_TTL,
# MB_ENTRA_DEVICE_TTL, MB_ENTRA_DEVICE_INTERVAL, seconds) and can be changed while it runs
# through the admin port (POST /settings).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
APP="$HERE/entra"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

usage() { die "usage: $0 start|stop DIR | approve DIR USER_CODE [UPN]"; }

do_stop() { stop_server "$1" MB_ENTRA_PID; }

make_certs() {
  local dir=$1
  make_tls "$dir/tls" "mailbridge Entra stand-in test CA"
  (
    # The certificate credential of an app registration: RSA for PS256. mailbridge's
    # `certificate = "file:…"` wants the certificate and its key in one PEM: client-bundle.pem.
    # other.pem/other-bundle.pem: a second certificate the stand-in does not know.
    mkdir -p "$dir/jwt"
    cd "$dir/jwt"
    for name in client other; do
      openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.pem" \
        -days 825 -subj "/CN=mailbridge Entra test app ($name)" 2>/dev/null
      cat "$name.pem" "$name.key" >"$name-bundle.pem"
      chmod 600 "$name.key" "$name-bundle.pem"
    done
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  write_env_json "$1" <<'JS'
const authority = `https://localhost:${s.port}`;
const lines = {
  MB_ENTRA_AUTHORITY: authority,
  MB_ENTRA_HOST: 'localhost',
  MB_ENTRA_PORT: s.port,
  MB_ENTRA_TENANT_ID: s.tenant_id,
  MB_ENTRA_TENANT_DOMAIN: s.tenant_domain,
  MB_ENTRA_OTHER_TENANT_ID: s.other_tenant_id,
  MB_ENTRA_TOKEN_URL: `${authority}/${s.tenant_id}/oauth2/v2.0/token`,
  MB_ENTRA_DEVICE_URL: `${authority}/${s.tenant_id}/oauth2/v2.0/devicecode`,
  MB_ENTRA_JWKS_URL: `${authority}/discovery/v2.0/keys`,
  MB_ENTRA_ADMIN_URL: `http://127.0.0.1:${s.admin_port}`,
  MB_ENTRA_ADMIN_PORT: s.admin_port,
  MB_ENTRA_CA_FILE: `${dir}/tls/ca.pem`,
  MB_ENTRA_APP_ID: s.apps.secret.client_id,
  MB_ENTRA_APP_SECRET: s.apps.secret.secret,
  MB_ENTRA_APP_SP_ID: s.apps.secret.sp_object_id,
  MB_ENTRA_CERT_APP_ID: s.apps.cert.client_id,
  MB_ENTRA_CERT_PEM: `${dir}/jwt/client-bundle.pem`,
  MB_ENTRA_CERT_FILE: `${dir}/jwt/client.pem`,
  MB_ENTRA_KEY_FILE: `${dir}/jwt/client.key`,
  MB_ENTRA_CERT_X5T_S256: s.apps.cert.x5t_s256,
  MB_ENTRA_OTHER_CERT_PEM: `${dir}/jwt/other-bundle.pem`,
  MB_ENTRA_NOIMAP_APP_ID: s.apps.noimap.client_id,
  MB_ENTRA_NOIMAP_APP_SECRET: s.apps.noimap.secret,
  MB_ENTRA_PUBLIC_APP_ID: s.apps.public.client_id,
  MB_ENTRA_USER: s.user,
  MB_ENTRA_EXCHANGE: s.resources.exchange,
  MB_ENTRA_GRAPH: s.resources.graph,
  MB_ENTRA_PID: s.pid,
  MB_ENTRA_LOG: `${dir}/logs/entra.log`,
  MB_ENTRA_HARNESS_DIR: dir,
};
JS
}

# True when the key endpoint is served over TLS with the test CA.
probe() { https_probe "$1" "$2" /discovery/v2.0/keys -sf; }

do_start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  need_node
  rm -rf "$dir/tls" "$dir/jwt" "$dir/logs"
  mkdir -p "$dir/logs"
  make_certs "$dir"
  spawn_server "$dir" "$dir/logs/entra.log"
  wait_ready "$dir" "$SERVER_PID" port probe ||
    start_failed "$SERVER_PID" "$dir/logs/entra.log" "Entra stand-in"
  write_env "$dir"
  echo "entra.sh: Entra stand-in $SERVER_PID: $(env_value "$dir" MB_ENTRA_AUTHORITY)," \
    "tenant $(env_value "$dir" MB_ENTRA_TENANT_ID), admin $(env_value "$dir" MB_ENTRA_ADMIN_URL)"
}

do_approve() { approve_device "$1" MB_ENTRA_ADMIN_URL "Entra stand-in" "$2" user "$3"; }

case "${1:-}" in
  start) [ $# -eq 2 ] || usage; do_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(abs_dir "$2")" ;;
  approve) [ $# -ge 3 ] && [ $# -le 4 ] || usage; do_approve "$(cd "$2" && pwd)" "$3" "${4:-}" ;;
  *) usage ;;
esac
