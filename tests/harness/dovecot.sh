#!/usr/bin/env bash
# File: tests/harness/dovecot.sh — starts and stops a private Dovecot on loopback for the
# integration tests and the demo.
#
#   tests/harness/dovecot.sh start DIR [OAUTH_DIR]  # (re)creates DIR, starts, writes DIR/env
#   tests/harness/dovecot.sh stop DIR               # stops exactly that Dovecot (by its PID)
#
# With OAUTH_DIR (or MB_OAUTH_DIR in the environment) — the DIR of a running
# tests/harness/oauth.sh — Dovecot also accepts that server's bearer tokens: SASL XOAUTH2 and
# OAUTHBEARER go to an `oauth2` passdb that validates each token by RFC 7662 introspection
# (POST, as client mb-introspect, over HTTPS verified with the OAuth server's CA) and signs in
# the token's `username`; PLAIN and LOGIN keep the static password. Without it, Dovecot is
# password-only (the demo). DIR/env then also holds MB_OAUTH2=1 and MB_OAUTH_DIR.
#
# `start` makes a private test CA with a server certificate for the DNS name localhost only
# (no IP SAN: connecting to 127.0.0.1 is a hostname mismatch), a second unrelated CA (for the
# "untrusted CA" tests), a dovecot.conf that accepts one password for any user name, and
# picks free ports for IMAPS, IMAP+STARTTLS, POP3S and POP3+STLS. DIR/env then holds
# KEY=value lines (MB_IMAPS_PORT, MB_IMAP_PORT, MB_POP3S_PORT, MB_POP3_PORT, MB_CA_FILE,
# MB_OTHER_CA_FILE, MB_PASSWORD, MB_MAIL_ROOT, MB_DOVECOT_PID, ...).
#
# Dovecot's sockets live in a short directory under /tmp (a unix socket path is limited to
# 108 bytes, and a deep build directory would exceed it), together with the mail, so that the
# unprivileged mail user can reach it whatever the permissions of DIR's parents are (a
# checkout under /root is not traversable by other users). DIR/mail links to that mail root.
#
# Run as root (CI), Dovecot refuses uid 0 for mail access, so mail belongs to `nobody`
# (first_valid_uid lowered to match); run as another user, everything runs as that user.
# The system's own Dovecot configuration and service are never touched.
set -euo pipefail

PASSWORD="mb-harness-secret-7d1f"  # a test-only password, shared by every test user
WAIT_SECONDS=20                    # bound on waiting for Dovecot to start or stop
# /usr/sbin is not on an unprivileged user's PATH on Debian.
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)

die() { echo "dovecot.sh: $*" >&2; exit 1; }

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

# True when PID is a dovecot master process (so a stale, reused PID is never signalled).
is_dovecot() {
  local pid=$1
  alive "$pid" && grep -q dovecot "/proc/$pid/comm" 2>/dev/null
}

do_stop() {
  local dir=$1 pid runtime i
  pid=$(env_value "$dir" MB_DOVECOT_PID)
  runtime=$(env_value "$dir" MB_RUNTIME_DIR)
  if [ -z "$pid" ] && [ -n "$runtime" ] && [ -f "$runtime/run/master.pid" ]; then
    pid=$(cat "$runtime/run/master.pid")
  fi
  if [ -n "$pid" ] && is_dovecot "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then
      echo "dovecot.sh: Dovecot $pid ignored SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
        alive "$pid" || break
        sleep 0.05
      done
    fi
    alive "$pid" && die "Dovecot $pid did not exit"
  fi
  # Only ever remove a runtime directory this script created.
  if [ -n "$runtime" ] && [[ "$runtime" == /tmp/mb-dovecot.* ]] && [ -d "$runtime" ]; then
    rm -rf "$runtime"
  fi
  rm -f "$dir/env"
  return 0
}

# Prints N free TCP ports on 127.0.0.1, one per line (bound together, so all distinct).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

ipv6_loopback() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
}

make_certs() {
  local tls=$1
  mkdir -p "$tls"
  (
    cd "$tls"
    local ca_ext="basicConstraints=critical,CA:TRUE"
    local ca_ku="keyUsage=critical,keyCertSign,cRLSign"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mailbridge test CA" \
      -addext "$ca_ext" -addext "$ca_ku" 2>/dev/null
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout other-ca.key -out other-ca.pem -days 3650 -subj "/CN=unrelated test CA" \
      -addext "$ca_ext" -addext "$ca_ku" 2>/dev/null
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
    chmod 600 ca.key other-ca.key server.key
  )
}

# Writes the Dovecot configuration. Globals in: dir runtime mail_root listen ports, mail_uid
# mail_gid, run_user.
write_conf() {
  local conf=$1 privileged_settings="" oauth_mechanisms="" oauth_passdb="" anvil_chroot=""
  if [ -n "$oauth_dir" ]; then
    oauth_mechanisms=" xoauth2 oauthbearer"
    oauth_passdb="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $runtime/oauth2/dovecot-oauth2.conf.ext
}"
  fi
  if [ "$(id -u)" -ne 0 ]; then
    anvil_chroot="chroot ="
    # Unprivileged: every process runs as the invoking user, and nothing can chroot.
    privileged_settings="default_internal_user = $run_user
default_internal_group = $(id -gn)
default_login_user = $run_user
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}"
  fi
  cat >"$conf" <<EOF
# Generated by tests/harness/dovecot.sh — a private test instance, not the system's.
instance_name = mb-harness-$(basename "$runtime")
base_dir = $runtime/run
state_dir = $runtime/state
log_path = $dir/logs/dovecot.log
info_log_path = $dir/logs/dovecot.log
protocols = imap pop3
listen = $listen
ssl = required
ssl_cert = <$dir/tls/server.pem
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login$oauth_mechanisms
# Tests sign in with a wrong password or a refused token on purpose; do not slow them down:
# no failure delay, and no per-IP auth penalty (anvil would hold every later sign-in from
# 127.0.0.1 for up to 15 s, longer than a short-lived test token lives).
auth_failure_delay = 0
service anvil {
  $anvil_chroot
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = static
  args = password=$PASSWORD
  mechanisms = plain login
}
$oauth_passdb
# allow_all_users: doveadm's user lookups (the benchmarks' `doveadm index`) reach no passdb,
# since each passdb is limited to its SASL mechanisms; every user name exists anyway.
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$mail_root/%u allow_all_users=yes
}
first_valid_uid = $mail_uid
first_valid_gid = $mail_gid
mail_location = maildir:~/Maildir
mail_plugins =
namespace inbox {
  inbox = yes
  separator = /
}
$privileged_settings
service imap-login {
  inet_listener imap {
    port = ${ports[1]}
  }
  inet_listener imaps {
    port = ${ports[0]}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports[3]}
  }
  inet_listener pop3s {
    port = ${ports[2]}
    ssl = yes
  }
}
EOF
}

# Writes the oauth2 passdb's settings for the OAuth server of $oauth_dir, with a copy of its
# CA, under $runtime (the auth process, an unprivileged user when run as root, must read
# them; DIR's parents may not be traversable). The file holds the introspection secret: it
# is readable by the auth process's user only.
write_oauth2_conf() {
  local d="$runtime/oauth2" url id secret ca auth_user
  url=$(env_value "$oauth_dir" MB_OAUTH_INTROSPECT_URL)
  id=$(env_value "$oauth_dir" MB_OAUTH_INTROSPECT_CLIENT_ID)
  secret=$(env_value "$oauth_dir" MB_OAUTH_INTROSPECT_SECRET)
  ca=$(env_value "$oauth_dir" MB_OAUTH_CA_FILE)
  [ -n "$url" ] && [ -n "$id" ] && [ -n "$secret" ] && [ -f "$ca" ] ||
    die "no running OAuth server in $oauth_dir (start tests/harness/oauth.sh first)"
  mkdir -p "$d"
  cp "$ca" "$d/ca.pem"
  (
    umask 077
    cat >"$d/dovecot-oauth2.conf.ext" <<EOF
# Generated by tests/harness/dovecot.sh: bearer tokens of $oauth_dir, by introspection.
introspection_mode = post
introspection_url = ${url/https:\/\//https://$id:$secret@}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
tls_ca_cert_file = $d/ca.pem
EOF
  )
  auth_user=$run_user
  if [ "$(id -u)" -eq 0 ]; then auth_user=$(id -un dovecot 2>/dev/null || echo root); fi
  chown -R "$auth_user" "$d"
  chmod 755 "$d"
  chmod 644 "$d/ca.pem"
}

# Waits until PORT on 127.0.0.1 accepts a connection, bounded by WAIT_SECONDS.
wait_port() {
  local port=$1 i
  for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# Waits until the plain IMAP port greets ("* OK"), which proves the login processes work.
wait_greeting() {
  local port=$1 i line
  for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
    line=""
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      IFS= read -r -t 2 line <&3 || true
      exec 3<&- 3>&-
      [[ "$line" == "* OK"* ]] && return 0
    fi
    sleep 0.25
  done
  return 1
}

write_env() {
  local pid=$1 tmp="$dir/env.tmp"
  cat >"$tmp" <<EOF
MB_IMAPS_PORT=${ports[0]}
MB_IMAP_PORT=${ports[1]}
MB_POP3S_PORT=${ports[2]}
MB_POP3_PORT=${ports[3]}
MB_CA_FILE=$dir/tls/ca.pem
MB_OTHER_CA_FILE=$dir/tls/other-ca.pem
MB_PASSWORD=$PASSWORD
MB_MAIL_ROOT=$mail_root
MB_MAIL_UID=$mail_uid
MB_MAIL_GID=$mail_gid
MB_DOVECOT_PID=$pid
MB_DOVECOT_CONF=$dir/dovecot.conf
MB_RUNTIME_DIR=$runtime
MB_HARNESS_DIR=$dir
MB_OAUTH2=$([ -n "$oauth_dir" ] && echo 1 || echo 0)
MB_OAUTH_DIR=$oauth_dir
EOF
  mv "$tmp" "$dir/env"
}

# One attempt at starting Dovecot on freshly picked ports; returns non-zero if it did not
# come up (e.g. a port was taken in between).
try_start() {
  local pid="" i
  mapfile -t ports < <(free_ports 4)
  write_conf "$dir/dovecot.conf"
  : >"$dir/logs/dovecot.log"
  if ! "$DOVECOT" -c "$dir/dovecot.conf" 2>>"$dir/logs/dovecot.log"; then
    return 1
  fi
  for ((i = 0; i < WAIT_SECONDS * 20; i++)); do
    [ -s "$runtime/run/master.pid" ] && break
    sleep 0.05
  done
  [ -s "$runtime/run/master.pid" ] && pid=$(cat "$runtime/run/master.pid")
  if [ -z "$pid" ] || ! alive "$pid"; then return 1; fi
  for p in "${ports[@]}"; do
    wait_port "$p" || { kill -TERM "$pid" 2>/dev/null; return 1; }
  done
  wait_greeting "${ports[1]}" || { kill -TERM "$pid" 2>/dev/null; return 1; }
  write_env "$pid"
}

do_start() {
  dir=$1
  oauth_dir=${2:-${MB_OAUTH_DIR:-}}
  if [ -n "$oauth_dir" ]; then
    oauth_dir=$(cd "$oauth_dir" 2>/dev/null && pwd) || die "no OAuth harness directory $oauth_dir"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  do_stop "$dir"
  rm -rf "$dir/tls" "$dir/logs" "$dir/mail" "$dir/dovecot.conf"
  mkdir -p "$dir/logs"
  [ -x "$DOVECOT" ] || die "dovecot is not installed (run scripts/setup.sh)"
  run_user=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    mail_uid=$(id -u nobody)
    mail_gid=$(id -g nobody)
  else
    mail_uid=$(id -u)
    mail_gid=$(id -g)
  fi
  runtime=$(mktemp -d /tmp/mb-dovecot.XXXXXX)
  chmod 755 "$runtime"
  mail_root="$runtime/mail"
  mkdir -p "$mail_root" "$runtime/state"
  chown "$mail_uid:$mail_gid" "$mail_root"
  ln -sfn "$mail_root" "$dir/mail"
  listen="127.0.0.1"
  if ipv6_loopback; then listen="127.0.0.1, ::1"; fi
  make_certs "$dir/tls"
  if [ -n "$oauth_dir" ]; then write_oauth2_conf; fi
  local attempt
  for attempt in 1 2 3; do
    if try_start; then
      echo "dovecot.sh: Dovecot $(env_value "$dir" MB_DOVECOT_PID) on 127.0.0.1:" \
        "imaps ${ports[0]}, imap ${ports[1]}, pop3s ${ports[2]}, pop3 ${ports[3]}"
      return 0
    fi
    echo "dovecot.sh: start attempt $attempt failed; log:" >&2
    tail -n 20 "$dir/logs/dovecot.log" >&2 || true
    if [ -s "$runtime/run/master.pid" ]; then
      local stale
      stale=$(cat "$runtime/run/master.pid")
      if is_dovecot "$stale"; then kill -TERM "$stale" 2>/dev/null || true; fi
      for ((i = 0; i < WAIT_SECONDS * 20; i++)); do alive "$stale" || break; sleep 0.05; done
      rm -f "$runtime/run/master.pid"
    fi
  done
  rm -rf "$runtime"
  die "Dovecot did not start (see $dir/logs/dovecot.log)"
}

case "${1:-}" in
  start) { [ $# -eq 2 ] || [ $# -eq 3 ]; } || usage; do_start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop "$(cd "$2" 2>/dev/null && pwd || echo "$2")" ;;
  *) usage ;;
esac
