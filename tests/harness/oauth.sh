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

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP="$HERE/oauth"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

die() { echo "oauth.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop DIR | approve DIR USER_CODE [ACCOUNT]"; }

# Reads KEY from DIR/env (empty if absent).
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
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "oauth/server.mjs"
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
    echo "oauth.sh: server $pid ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || die "server $pid did not exit"
  fi
}

do_stop() {
  local dir=$1 pid
  pid=$(env_value "$dir" MB_OAUTH_PID)
  if [ -z "$pid" ] && [ -f "$dir/server.pid" ]; then pid=$(cat "$dir/server.pid"); fi
  stop_pid "$pid"
  rm -f "$dir/env" "$dir/server.pid" "$dir/server.json"
  return 0
}

make_certs() {
  local dir=$1
  mkdir -p "$dir/tls" "$dir/jwt"
  (
    cd "$dir/tls"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mailbridge OAuth test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    cat >server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
EOF
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 825 -extfile server.ext 2>/dev/null
    chmod 600 ca.key server.key
  )
  (
    # PS256 needs RSA; the certificate is what an Entra app registration would hold.
    cd "$dir/jwt"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout client.key -out client.pem \
      -days 825 -subj "/CN=mailbridge OAuth test app" 2>/dev/null
    chmod 600 client.key
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  local dir=$1
  node - "$dir" <<'EOF'
const fs = require('node:fs');
const dir = process.argv[2];
const s = JSON.parse(fs.readFileSync(`${dir}/server.json`, 'utf8'));
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
const text = Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join('');
fs.writeFileSync(`${dir}/env.tmp`, text, { mode: 0o600 });
fs.renameSync(`${dir}/env.tmp`, `${dir}/env`);
EOF
}

# Waits until the discovery document is served over TLS with the test CA, bounded.
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
    if curl -sf --max-time 2 --cacert "$dir/tls/ca.pem" \
      "https://localhost:$port/.well-known/openid-configuration" >/dev/null 2>&1; then
      return 0
    fi
    alive "$pid" || return 1
    sleep 0.25
  done
  return 1
}

do_start() {
  local dir=$1 pid
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  command -v node >/dev/null || die "node is not installed (run scripts/setup.sh)"
  [ -d "$APP/node_modules/oidc-provider" ] ||
    die "oidc-provider is not installed in $APP (run scripts/setup.sh)"
  rm -rf "$dir/tls" "$dir/jwt" "$dir/logs"
  mkdir -p "$dir/logs"
  make_certs "$dir"
  # Its own session and no terminal, output to the log: the caller (ctest) must not wait
  # for it, and it must not die with the caller's shell.
  (cd "$APP" && exec setsid node "$APP/server.mjs" "$dir" </dev/null \
    >>"$dir/logs/oauth.log" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  if ! wait_ready "$dir" "$pid"; then
    echo "oauth.sh: the server did not start; log:" >&2
    tail -n 30 "$dir/logs/oauth.log" >&2 || true
    stop_pid "$pid"
    die "OAuth server did not start (see $dir/logs/oauth.log)"
  fi
  write_env "$dir"
  echo "oauth.sh: OAuth server $pid: $(env_value "$dir" MB_OAUTH_ISSUER)," \
    "admin $(env_value "$dir" MB_OAUTH_ADMIN_URL)"
}

do_approve() {
  local dir=$1 code=$2 account=${3:-} admin
  admin=$(env_value "$dir" MB_OAUTH_ADMIN_URL)
  [ -n "$admin" ] || die "no OAuth server running for $dir"
  curl -sS --fail-with-body --max-time 10 -X POST "$admin/device/approve" \
    --data-urlencode "user_code=$code" ${account:+--data-urlencode "account=$account"}
  echo
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -eq 2 ] || usage; do_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")" ;;
  approve) [ $# -ge 3 ] && [ $# -le 4 ] || usage; do_approve "$(cd "$2" && pwd)" "$3" "${4:-}" ;;
  *) usage ;;
esac
