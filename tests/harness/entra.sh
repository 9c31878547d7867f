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

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP="$HERE/entra"
WAIT_SECONDS=30  # bound on waiting for the server to start or stop

die() { echo "entra.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop DIR | approve DIR USER_CODE [UPN]"; }

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
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "entra/server.mjs"
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
    echo "entra.sh: server $pid ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || die "server $pid did not exit"
  fi
}

do_stop() {
  local dir=$1 pid
  pid=$(env_value "$dir" MB_ENTRA_PID)
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
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mailbridge Entra stand-in test CA" \
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
  (
    # The certificate credential of an app registration: RSA for PS256. mailbridge's
    # `certificate = "file:…"` wants the certificate and its key in one PEM: client-bundle.pem.
    # other.pem/other-bundle.pem: a second certificate the stand-in does not know.
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
  local dir=$1
  node - "$dir" <<'JS'
const fs = require('node:fs');
const dir = process.argv[2];
const s = JSON.parse(fs.readFileSync(`${dir}/server.json`, 'utf8'));
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
    if curl -sf --max-time 2 --cacert "$dir/tls/ca.pem" \
      "https://localhost:$port/discovery/v2.0/keys" >/dev/null 2>&1; then
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
  rm -rf "$dir/tls" "$dir/jwt" "$dir/logs"
  mkdir -p "$dir/logs"
  make_certs "$dir"
  # Its own session and no terminal, output to the log: the caller (ctest) must not wait
  # for it, and it must not die with the caller's shell.
  (cd "$APP" && exec setsid node "$APP/server.mjs" "$dir" </dev/null \
    >>"$dir/logs/entra.log" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  if ! wait_ready "$dir" "$pid"; then
    echo "entra.sh: the server did not start; log:" >&2
    tail -n 30 "$dir/logs/entra.log" >&2 || true
    stop_pid "$pid"
    die "Entra stand-in did not start (see $dir/logs/entra.log)"
  fi
  write_env "$dir"
  echo "entra.sh: Entra stand-in $pid: $(env_value "$dir" MB_ENTRA_AUTHORITY)," \
    "tenant $(env_value "$dir" MB_ENTRA_TENANT_ID), admin $(env_value "$dir" MB_ENTRA_ADMIN_URL)"
}

do_approve() {
  local dir=$1 code=$2 upn=${3:-} admin
  admin=$(env_value "$dir" MB_ENTRA_ADMIN_URL)
  [ -n "$admin" ] || die "no Entra stand-in running for $dir"
  curl -sS --fail-with-body --max-time 10 -X POST "$admin/device/approve" \
    --data-urlencode "user_code=$code" ${upn:+--data-urlencode "user=$upn"}
  echo
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -eq 2 ] || usage; do_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")" ;;
  approve) [ $# -ge 3 ] && [ $# -le 4 ] || usage; do_approve "$(cd "$2" && pwd)" "$3" "${4:-}" ;;
  *) usage ;;
esac
