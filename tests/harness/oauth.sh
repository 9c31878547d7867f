#!/usr/bin/env bash
# File: tests/harness/oauth.sh — starts and stops the test-only OAuth 2.0 server
# (tests/harness/oauth/server.mjs, built on oidc-provider) on loopback for the integration
# tests, and approves device codes for them.
#
#   tests/harness/oauth.sh start DIR                    # (re)creates DIR, starts, writes DIR/env
#   tests/harness/oauth.sh stop DIR                     # stops exactly that server (by its PID)
#   tests/harness/oauth.sh approve DIR USER_CODE [ACCOUNT]   # what the user does in a browser
#
# `start` makes a private test CA with a server certificate for DNS:localhost only, an RSA key
# and self-signed certificate for the private_key_jwt client, then runs the server, which
# picks its own free ports (so no other process can take them in between) and reports them in
# DIR/server.json. DIR/env then holds KEY=value lines: MB_OAUTH_ISSUER, MB_OAUTH_TOKEN_URL,
# MB_OAUTH_DEVICE_URL, MB_OAUTH_INTROSPECT_URL, MB_OAUTH_REVOKE_URL, MB_OAUTH_ADMIN_URL,
# MB_OAUTH_CA_FILE, the client ids and secrets, MB_OAUTH_JWT_KEY, MB_OAUTH_JWT_CERT,
# MB_OAUTH_PID, ... (tests/harness/README.md lists them all).
#
# Lifetimes come from the environment of `start` (MB_OAUTH_ACCESS_TTL, MB_OAUTH_REFRESH_TTL,
# MB_OAUTH_DEVICE_TTL, MB_OAUTH_DEVICE_INTERVAL, seconds) and can be changed while it runs
# through the admin port (POST /settings).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
APP="$HERE/oauth"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

usage() { die "usage: $0 start|stop DIR | approve DIR USER_CODE [ACCOUNT]"; }

do_stop() { stop_server "$1" MB_OAUTH_PID; }

make_certs() {
  local dir=$1
  make_tls "$dir/tls" "mailbridge OAuth test CA"
  (
    # PS256 needs RSA; the certificate is what an Entra app registration would hold.
    mkdir -p "$dir/jwt"
    cd "$dir/jwt"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout client.key -out client.pem \
      -days 825 -subj "/CN=mailbridge OAuth test app" 2>/dev/null
    chmod 600 client.key
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  write_env_json "$1" <<'EOF'
const issuer = `https://localhost:${s.port}`;
const admin = `http://127.0.0.1:${s.admin_port}`;
const lines = {
  MB_OAUTH_ISSUER: issuer,
  MB_OAUTH_HOST: 'localhost',
  MB_OAUTH_PORT: s.port,
  MB_OAUTH_TOKEN_URL: `${issuer}/token`,
  MB_OAUTH_DEVICE_URL: `${issuer}/device/auth`,
  MB_OAUTH_INTROSPECT_URL: `${issuer}/token/introspection`,
  MB_OAUTH_REVOKE_URL: `${issuer}/token/revocation`,
  MB_OAUTH_ADMIN_URL: admin,
  MB_OAUTH_ADMIN_PORT: s.admin_port,
  MB_OAUTH_CA_FILE: `${dir}/tls/ca.pem`,
  MB_OAUTH_CLIENT_ID: 'mb-secret-client',
  MB_OAUTH_CLIENT_SECRET: s.clients['mb-secret-client'],
  MB_OAUTH_JWT_CLIENT_ID: 'mb-jwt-client',
  MB_OAUTH_JWT_KEY: `${dir}/jwt/client.key`,
  MB_OAUTH_JWT_CERT: `${dir}/jwt/client.pem`,
  MB_OAUTH_JWT_X5T_S256: s.jwt_x5t_s256,
  MB_OAUTH_PUBLIC_CLIENT_ID: 'mb-device-client',
  MB_OAUTH_INTROSPECT_CLIENT_ID: 'mb-introspect',
  MB_OAUTH_INTROSPECT_SECRET: s.clients['mb-introspect'],
  MB_OAUTH_TEST_ACCOUNT: s.test_account,
  MB_OAUTH_MAIL_RESOURCE: 'https://mail.mailbridge.test',
  MB_OAUTH_MAIL_SCOPE: 'https://mail.mailbridge.test/.default',
  MB_OAUTH_GRAPH_RESOURCE: 'https://graph.mailbridge.test',
  MB_OAUTH_PID: s.pid,
  MB_OAUTH_LOG: `${dir}/logs/oauth.log`,
  MB_OAUTH_HARNESS_DIR: dir,
};
EOF
}

# True when the discovery document is served over TLS with the test CA.
probe() { https_probe "$1" "$2" /.well-known/openid-configuration -sf; }

do_start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  need_node
  need_npm oidc-provider
  rm -rf "$dir/tls" "$dir/jwt" "$dir/logs"
  mkdir -p "$dir/logs"
  make_certs "$dir"
  spawn_server "$dir" "$dir/logs/oauth.log"
  wait_ready "$dir" "$SERVER_PID" port probe ||
    start_failed "$SERVER_PID" "$dir/logs/oauth.log" "OAuth server"
  write_env "$dir"
  echo "oauth.sh: OAuth server $SERVER_PID: $(env_value "$dir" MB_OAUTH_ISSUER)," \
    "admin $(env_value "$dir" MB_OAUTH_ADMIN_URL)"
}

do_approve() { approve_device "$1" MB_OAUTH_ADMIN_URL "OAuth server" "$2" account "$3"; }

case "${1:-}" in
  start) [ $# -eq 2 ] || usage; do_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(abs_dir "$2")" ;;
  approve) [ $# -ge 3 ] && [ $# -le 4 ] || usage; do_approve "$(cd "$2" && pwd)" "$3" "${4:-}" ;;
  *) usage ;;
esac
