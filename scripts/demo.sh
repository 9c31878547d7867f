#!/usr/bin/env bash
# File: scripts/demo.sh — the README's first command: mailbridge's main job on a local default.
#
# Installs what is missing, builds mailbridge into build/, starts a private Dovecot on
# loopback (demo-run/dovecot, via tests/harness/dovecot.sh), delivers the sample mail of
# tests/data/demo/ (a new request, a follow-up to it by "[Ticket - 1]", an HTML mail with an
# attachment and an inline image) into the mailbox "support", writes demo-run/mailbridge.toml
# (SQLite store demo-run/mailbridge.db), runs `mailbridge sync --once` and shows the tickets
# it made. The Dovecot is stopped on exit, whatever happens. Each run starts from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
run="$root/demo-run"
harness="$root/tests/harness/dovecot.sh"
build="${MB_BUILD_DIR:-$root/build}"   # MB_BUILD_DIR: build elsewhere (default build/)
bin="$build/cli/mailbridge"

bash scripts/setup.sh

echo "== building mailbridge ($build) =="
cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target mailbridge -j "$(nproc)"

echo "== starting a private Dovecot (demo-run/dovecot) =="
mkdir -p "$run"
rm -f "$run"/mailbridge.db "$run"/mailbridge.db-wal "$run"/mailbridge.db-shm
trap 'bash "$harness" stop "$run/dovecot" >/dev/null 2>&1 || true' EXIT
bash "$harness" start "$run/dovecot"
# shellcheck disable=SC1091
. "$run/dovecot/env"

echo "== delivering the sample mail into the mailbox \"support\" =="
maildir="$MB_MAIL_ROOT/support/Maildir"
mkdir -p "$maildir/tmp" "$maildir/new" "$maildir/cur"
i=0
for eml in "$root"/tests/data/demo/*.eml; do
  # Dovecot orders new mail by the time in the file name: keep the files' order.
  name="$(date +%s).M$((100000 + i))P$$.demo"
  cp "$eml" "$maildir/tmp/$name"
  mv "$maildir/tmp/$name" "$maildir/new/$name"
  echo "  $(basename "$eml")"
  i=$((i + 1))
done
# Dovecot reads and moves the mail as its mail user (not root).
chown -R "$MB_MAIL_UID:$MB_MAIL_GID" "$MB_MAIL_ROOT/support"

cat >"$run/mailbridge.toml" <<EOF
# Written by scripts/demo.sh: one IMAP mailbox on the private Dovecot, SQLite store.
[store]
path = "mailbridge.db"

[[mailbox]]
name = "support"
type = "imap"
host = "localhost"
port = $MB_IMAPS_PORT
security = "tls"
auth = "password"
user = "support"
password = "env:MB_DEMO_PASSWORD"
folder = "INBOX"
after = "move:Processed"
max_per_poll = 50
project = "IT"
tls = { verify = true, ca_file = "$MB_CA_FILE", min_version = "1.2" }
timeouts = { connect = "15s", response = "30s" }
EOF
export MB_DEMO_PASSWORD="$MB_PASSWORD"

echo "== mailbridge sync --once =="
"$bin" --config "$run/mailbridge.toml" sync --once

echo
echo "== mailbridge tickets list =="
"$bin" --config "$run/mailbridge.toml" tickets list

echo
echo "Configuration: demo-run/mailbridge.toml   store: demo-run/mailbridge.db"
echo "Look closer:   $bin --config $run/mailbridge.toml tickets show 1"
