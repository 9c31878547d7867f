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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
APP="$HERE/smtp"
PASSWORD="mb-smtp-harness-secret-4c2e"  # a test-only password, shared by every test user
WAIT_SECONDS=30                         # bound on waiting for the server to start or stop

usage() { die "usage: $0 start DIR [OAUTH_DIR] | stop DIR"; }

do_stop() { stop_server "$1" MB_SMTP_PID; }

# The server's certificate (DNS:localhost and IP:127.0.0.1), one of the same CA for another name
# (mismatch.pem) and an unrelated CA (other-ca.pem), in TLS_DIR.
make_certs() {
  local tls=$1
  make_tls "$tls" "mailbridge SMTP test CA" "localhost,IP:127.0.0.1" "DNS:localhost,IP:127.0.0.1"
  (
    cd "$tls"
    make_ca other-ca "unrelated test CA"
    make_server_cert mismatch other-host.mailbridge.test DNS:other-host.mailbridge.test
  )
}

# Turns DIR/server.json into DIR/env (written to a temporary file, then renamed).
write_env() {
  local dir=$1 oauth_dir=$2
  write_env_json "$dir" "$oauth_dir" "$PASSWORD" <<'EOF'
const [oauthDir, password] = args;
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
EOF
}

# True when the submission port greets ("220 ").
probe() { greets "$2" "220 " 'QUIT\r\n'; }

do_start() {
  local dir=$1 oauth_dir=${2:-${MB_OAUTH_DIR:-}}
  if [ -n "$oauth_dir" ]; then
    oauth_dir=$(cd "$oauth_dir" 2>/dev/null && pwd) || die "no OAuth harness directory $oauth_dir"
    [ -s "$oauth_dir/env" ] ||
      die "no running OAuth server in $oauth_dir (start tests/harness/oauth.sh first)"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  need_node
  need_npm smtp-server
  rm -rf "$dir/tls" "$dir/logs" "$dir/spool"
  mkdir -p "$dir/logs" "$dir/spool"
  make_certs "$dir/tls"
  MB_SMTP_PASSWORD="$PASSWORD" spawn_server "$dir" "$dir/logs/server.out" "$oauth_dir"
  wait_ready "$dir" "$SERVER_PID" ports.submission probe ||
    start_failed "$SERVER_PID" "$dir/logs/server.out" "SMTP server" output
  write_env "$dir" "$oauth_dir"
  echo "smtp.sh: SMTP server $SERVER_PID on 127.0.0.1: submission" \
    "$(env_value "$dir" MB_SMTP_SUBMISSION_PORT), smtps $(env_value "$dir" MB_SMTP_SMTPS_PORT)," \
    "relay $(env_value "$dir" MB_SMTP_RELAY_PORT), admin $(env_value "$dir" MB_SMTP_ADMIN_URL)"
}

case "${1:-}" in
  start) { [ $# -eq 2 ] || [ $# -eq 3 ]; } || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(abs_dir "$2")" ;;
  *) usage ;;
esac
