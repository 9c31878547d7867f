#!/usr/bin/env bash
# File: tests/harness/smtp.sh — starts and stops the test-only SMTP server
# (tests/harness/smtp/server.mjs, built on npm smtp-server) on loopback for the integration
# tests, the outbox round trip and the SMTP benchmark.
#
#   tests/harness/smtp.sh start DIR [OAUTH_DIR]   # (re)creates DIR, starts, writes DIR/env
#   tests/harness/smtp.sh stop DIR                # stops exactly that server (by its PID)
#
# `start` makes a private test CA (DIR/tls/ca.pem) with a server certificate for
# DNS:localhost and IP:127.0.0.1, a certificate of the same CA for another name (the
# "mismatch" listener), and an unrelated CA (DIR/tls/other-ca.pem). The server picks its own
# free ports: submission (STARTTLS, required before AUTH), smtps (implicit TLS), relay (no
# AUTH) and mismatch (implicit TLS, wrong name), plus a plain-HTTP admin port. Every accepted
# message lands in DIR/spool/<seq>.eml with its envelope in DIR/spool/<seq>.json.
#
# With OAUTH_DIR (or MB_OAUTH_DIR in the environment) — the DIR of a running
# tests/harness/oauth.sh — AUTH XOAUTH2 is offered too and each bearer token is validated by
# RFC 7662 introspection at that server (as client mb-introspect), as Dovecot's oauth2 passdb
# does; the SMTP user name must equal the token's `username`. PLAIN and LOGIN take one
# test-only password for any user name. tests/harness/README.md lists DIR/env's keys.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP="$HERE/smtp"
PASSWORD="mb-smtp-harness-secret-4c2e"  # a test-only password, shared by every test user
WAIT_SECONDS=30                         # bound on waiting for the server to start or stop

die() { echo "smtp.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR [OAUTH_DIR] | stop DIR"; }

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
  alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "smtp/server.mjs"
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
    echo "smtp.sh: server $pid ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || die "server $pid did not exit"
  fi
}

do_stop() {
  local dir=$1 pid
  pid=$(env_value "$dir" MB_SMTP_PID)
  if [ -z "$pid" ] && [ -f "$dir/server.pid" ]; then pid=$(cat "$dir/server.pid"); fi
  stop_pid "$pid"
  rm -f "$dir/env" "$dir/server.pid" "$dir/server.json"
  return 0
}

make_certs() {
  local tls=$1
  mkdir -p "$tls"
  (
    cd "$tls"
    local ca_ext="basicConstraints=critical,CA:TRUE"
    local ca_ku="keyUsage=critical,keyCertSign,cRLSign"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mailbridge SMTP test CA" \
      -addext "$ca_ext" -addext "$ca_ku" 2>/dev/null
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout other-ca.key -out other-ca.pem -days 3650 -subj "/CN=unrelated test CA" \
      -addext "$ca_ext" -addext "$ca_ku" 2>/dev/null
    local name san
    for name in server mismatch; do
      san="DNS:localhost,IP:127.0.0.1"
      [ "$name" = mismatch ] && san="DNS:other-host.mailbridge.test"
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$name.key" -out "$name.csr" -subj "/CN=${san#DNS:}" 2>/dev/null
      printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
        "subjectAltName=$san" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out "$name.pem" -days 825 -extfile "$name.ext" 2>/dev/null
    done
    chmod 600 ca.key other-ca.key server.key mismatch.key
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  local dir=$1 oauth_dir=$2
  node - "$dir" "$oauth_dir" "$PASSWORD" <<'EOF'
const fs = require('node:fs');
const [dir, oauthDir, password] = process.argv.slice(2);
const s = JSON.parse(fs.readFileSync(`${dir}/server.json`, 'utf8'));
const lines = {
  MB_SMTP_HOST: 'localhost',
  MB_SMTP_SUBMISSION_PORT: s.ports.submission,
  MB_SMTP_SMTPS_PORT: s.ports.smtps,
  MB_SMTP_RELAY_PORT: s.ports.relay,
  MB_SMTP_MISMATCH_PORT: s.ports.mismatch,
  MB_SMTP_ADMIN_URL: `http://127.0.0.1:${s.admin_port}`,
  MB_SMTP_ADMIN_PORT: s.admin_port,
  MB_SMTP_CA_FILE: `${dir}/tls/ca.pem`,
  MB_SMTP_OTHER_CA_FILE: `${dir}/tls/other-ca.pem`,
  MB_SMTP_PASSWORD: password,
  MB_SMTP_SPOOL: `${dir}/spool`,
  MB_SMTP_OAUTH: s.oauth ? 1 : 0,
  MB_SMTP_OAUTH_DIR: oauthDir,
  MB_SMTP_PID: s.pid,
  MB_SMTP_LOG: `${dir}/logs/smtp.log`,
  MB_SMTP_HARNESS_DIR: dir,
};
const text = Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join('');
fs.writeFileSync(`${dir}/env.tmp`, text, { mode: 0o600 });
fs.renameSync(`${dir}/env.tmp`, `${dir}/env`);
EOF
}

# Waits until the submission port greets ("220 "), bounded.
wait_ready() {
  local dir=$1 pid=$2 i port line
  for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
    [ -s "$dir/server.json" ] && break
    alive "$pid" || return 1
    sleep 0.05
  done
  [ -s "$dir/server.json" ] || return 1
  port=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).ports.submission)' \
    "$dir/server.json")
  for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
    line=""
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      IFS= read -r -t 2 line <&3 || true
      printf 'QUIT\r\n' >&3 2>/dev/null || true
      exec 3<&- 3>&-
      [[ "$line" == "220 "* ]] && return 0
    fi
    alive "$pid" || return 1
    sleep 0.25
  done
  return 1
}

do_start() {
  local dir=$1 oauth_dir=${2:-${MB_OAUTH_DIR:-}} pid
  if [ -n "$oauth_dir" ]; then
    oauth_dir=$(cd "$oauth_dir" 2>/dev/null && pwd) || die "no OAuth harness directory $oauth_dir"
    [ -s "$oauth_dir/env" ] ||
      die "no running OAuth server in $oauth_dir (start tests/harness/oauth.sh first)"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  command -v node >/dev/null || die "node is not installed (run scripts/setup.sh)"
  [ -d "$APP/node_modules/smtp-server" ] ||
    die "smtp-server is not installed in $APP (run scripts/setup.sh)"
  rm -rf "$dir/tls" "$dir/logs" "$dir/spool"
  mkdir -p "$dir/logs" "$dir/spool"
  make_certs "$dir/tls"
  # Its own session and no terminal, output to the log: the caller (ctest) must not wait
  # for it, and it must not die with the caller's shell.
  (cd "$APP" && MB_SMTP_PASSWORD="$PASSWORD" exec setsid node "$APP/server.mjs" "$dir" \
    "$oauth_dir" </dev/null >>"$dir/logs/server.out" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  if ! wait_ready "$dir" "$pid"; then
    echo "smtp.sh: the server did not start; output:" >&2
    tail -n 30 "$dir/logs/server.out" >&2 || true
    stop_pid "$pid"
    die "SMTP server did not start (see $dir/logs/server.out)"
  fi
  write_env "$dir" "$oauth_dir"
  echo "smtp.sh: SMTP server $pid on 127.0.0.1: submission" \
    "$(env_value "$dir" MB_SMTP_SUBMISSION_PORT), smtps $(env_value "$dir" MB_SMTP_SMTPS_PORT)," \
    "relay $(env_value "$dir" MB_SMTP_RELAY_PORT), admin $(env_value "$dir" MB_SMTP_ADMIN_URL)"
}

case "${1:-}" in
  start) { [ $# -eq 2 ] || [ $# -eq 3 ]; } || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")" ;;
  *) usage ;;
esac
