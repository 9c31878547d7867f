#!/usr/bin/env bash
# File: bench/run_pop3_bench.sh — mailbridge's whole POP3 ingest beside fetchmail and
# getmail6 downloading the same maildrop from the same private Dovecot over POP3S, in one run.
#
#   bench/run_pop3_bench.sh [N]        # N messages (default 10000), and N/10 for RSS growth
#
# The messages of bench/run_ingest_bench.sh (bench/gen_mail.py, same seed), leave-on-server
# for every tool so that each run sees the same maildrop: mailbridge's mb_ingest_bench
# (after = "leave", UIDL keys, parse + SQLite commit of every message), fetchmail
# (keep + fetchall, delivered by batch SMTP into one file: its cheapest delivery, no MDA
# process per message) and getmail6 (delete = false, read_all, its Maildir destination).
# One untimed warm-up of each tool, then MB_BENCH_REPEAT (3) timed runs, alternating, under
# /usr/bin/time -v; prints the Markdown table of medians (bench/bench_report.py), also in
# $MB_BENCH_DIR/results.md, and stops the Dovecot by its PID.
#
# Environment: MB_BENCH_DIR (default /tmp/mb-pop3-bench), MB_BENCH_BUILD (default
# <repo>/build-bench), MB_BENCH_DRIVER (a built mb_ingest_bench: skips the build),
# MB_BENCH_REPEAT (3), MB_BENCH_SEED (1), MB_BENCH_WARMUP (1), MB_BENCH_RUN_TIMEOUT (1800),
# MB_BENCH_SKIP_SETUP=1, MB_BENCH_TOOLS ("fetchmail getmail mailbridge"), MB_BENCH_CHECK=1
# (exit 1 unless every timed run of every tool got all N messages: the CTest smoke test).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
WORK=${MB_BENCH_DIR:-/tmp/mb-pop3-bench}
BUILD=${MB_BENCH_BUILD:-$ROOT/build-bench}
REPEAT=${MB_BENCH_REPEAT:-3}
SEED=${MB_BENCH_SEED:-1}
WARMUP=${MB_BENCH_WARMUP:-1}
RUN_TIMEOUT=${MB_BENCH_RUN_TIMEOUT:-1800}
TOOLS=${MB_BENCH_TOOLS:-fetchmail getmail mailbridge}
CHECK=${MB_BENCH_CHECK:-0}
HARNESS=$WORK/dovecot
RUNS=$WORK/runs.jsonl
REPORT="python3 $ROOT/bench/bench_report.py"
DRIVER=${MB_BENCH_DRIVER:-}
FAILED=0

die() { echo "run_pop3_bench.sh: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N < 10)); then die "N must be a number >= 10"; fi
SMALL=$((N / 10))

setup_check() {
  if [ "${MB_BENCH_SKIP_SETUP:-0}" != 1 ]; then "$ROOT/scripts/setup.sh" >&2; fi
  local cmd
  for cmd in fetchmail getmail dovecot doveadm python3 openssl timeout; do
    command -v "$cmd" >/dev/null || die "$cmd is missing (run scripts/setup.sh)"
  done
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package 'time')"
}

build() {
  if [ -n "$DRIVER" ]; then return 0; fi
  log "building mb_ingest_bench (Release) in $BUILD"
  # -O2: see run_ingest_bench.sh (GCC bug 105651 under -O3 with -Werror).
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" >/dev/null
  ninja -C "$BUILD" -j2 mb_ingest_bench >&2
  DRIVER=$BUILD/bench/mb_ingest_bench
}

stop_dovecot() { "$ROOT/tests/harness/dovecot.sh" stop "$HARNESS" >&2 || true; }

start_dovecot() {
  "$ROOT/tests/harness/dovecot.sh" start "$HARNESS" >&2
  trap stop_dovecot EXIT
  set -a
  # shellcheck disable=SC1091
  . "$HARNESS/env"
  set +a
}

fill_mailbox() {
  local user=$1 count=$2 home=$MB_MAIL_ROOT/$1
  log "generating $count messages for $user"
  rm -rf "$home"
  python3 "$ROOT/bench/gen_mail.py" --maildir "$home/Maildir" --count "$count" \
    --seed "$SEED" >"$WORK/gen-$user.json"
  chown -R "$MB_MAIL_UID:$MB_MAIL_GID" "$home"
  doveadm -c "$MB_DOVECOT_CONF" index -u "$user" INBOX
}

mailbox_vsize() {
  doveadm -c "$MB_DOVECOT_CONF" -f flow mailbox status -u "$1" vsize INBOX |
    sed -n 's/.*vsize=\([0-9]*\).*/\1/p'
}

write_configs() {
  local user getmail_user=""
  # getmail refuses to deliver as root; it then delivers as the mail user.
  if [ "$(id -u)" -eq 0 ]; then getmail_user="user = $(id -un "$MB_MAIL_UID")"; fi
  mkdir -p "$WORK/fetchmail-home"
  for user in bench bench-small; do
    # fetchmail refuses an rc file others can read (it holds the password).
    (
      umask 077
      cat >"$WORK/fetchmailrc-$user" <<EOF
set no bouncemail
set no syslog
poll localhost protocol pop3 port $MB_POP3S_PORT uidl
  user "$user" password "$MB_PASSWORD"
  ssl sslproto "TLS1.2+" sslcertck sslcertfile "$MB_CA_FILE"
  keep fetchall
EOF
      cat >"$WORK/getmailrc-$user" <<EOF
[retriever]
type = SimplePOP3SSLRetriever
server = localhost
port = $MB_POP3S_PORT
username = $user
password = $MB_PASSWORD
ca_certs = $MB_CA_FILE
ssl_cert_hostname = localhost

[destination]
type = Maildir
path = $WORK/getmail-mail/
$getmail_user

[options]
delete = false
read_all = true
verbose = 0
message_log_syslog = false
EOF
    )
  done
  {
    printf '[store]\npath = "%s/mailbridge.db"\n' "$WORK"
    for user in bench bench-small; do
      cat <<EOF

[[mailbox]]
name = "$user"
type = "pop3"
host = "localhost"
port = $MB_POP3S_PORT
security = "tls"
user = "$user"
password = "env:MB_PASSWORD"
after = "leave"
max_per_poll = 9999
tls = { ca_file = "$MB_CA_FILE" }
EOF
    done
  } >"$WORK/mailbridge.toml"
}

# Counts one timed run's messages; with MB_BENCH_CHECK=1 a short count fails the script.
check_count() {
  local tool=$1 size=$2 got=$3
  if [ "$got" != "$size" ]; then
    echo "run_pop3_bench.sh: $tool got $got of $size messages" >&2
    FAILED=1
  fi
}

run_fetchmail() {
  local user=$1 size=$2 run=$3 out=$WORK/out/fetchmail-$1-$3
  rm -f "$WORK/fetchmail.bsmtp" "$WORK/fetchmail-home/.fetchids"
  /usr/bin/time -v -o "$out.time" timeout "$RUN_TIMEOUT" env FETCHMAILHOME="$WORK/fetchmail-home" \
    fetchmail -N -s -f "$WORK/fetchmailrc-$user" --bsmtp "$WORK/fetchmail.bsmtp" \
    --idfile "$WORK/fetchmail-home/.fetchids" >"$out.log" 2>&1 || true
  local got=0
  [ -f "$WORK/fetchmail.bsmtp" ] && got=$(grep -c '^MAIL FROM:' "$WORK/fetchmail.bsmtp" || true)
  rm -f "$WORK/fetchmail.bsmtp"
  [ "$run" = warmup ] && return 0
  check_count fetchmail "$size" "$got"
  $REPORT record --tool fetchmail --size "$size" --run "$run" --time-file "$out.time" \
    --mailbox-bytes "$(mailbox_vsize "$user")" --messages "$got" >>"$RUNS"
}

run_getmail() {
  local user=$1 size=$2 run=$3 out=$WORK/out/getmail-$1-$3
  rm -rf "$WORK/getmail-mail" "$WORK/getmail-state"
  mkdir -p "$WORK/getmail-mail"/{cur,new,tmp} "$WORK/getmail-state"
  chown -R "$MB_MAIL_UID:$MB_MAIL_GID" "$WORK/getmail-mail"
  /usr/bin/time -v -o "$out.time" timeout "$RUN_TIMEOUT" \
    getmail --getmaildir "$WORK/getmail-state" --rcfile "$WORK/getmailrc-$user" -q \
    >"$out.log" 2>&1 || true
  local got
  got=$(find "$WORK/getmail-mail/new" "$WORK/getmail-mail/cur" -type f | wc -l)
  rm -rf "$WORK/getmail-mail"
  [ "$run" = warmup ] && return 0
  check_count getmail "$size" "$got"
  $REPORT record --tool getmail --size "$size" --run "$run" --time-file "$out.time" \
    --mailbox-bytes "$(mailbox_vsize "$user")" --messages "$got" >>"$RUNS"
}

run_mailbridge() {
  local user=$1 size=$2 run=$3 out=$WORK/out/mailbridge-$1-$3
  /usr/bin/time -v -o "$out.time" timeout "$RUN_TIMEOUT" \
    "$DRIVER" --config "$WORK/mailbridge.toml" --mailbox "$user" \
    --store "$WORK/store-$user.db" >"$out.json" 2>"$out.log" || true
  rm -f "$WORK/store-$user.db" "$WORK/store-$user.db-wal" "$WORK/store-$user.db-shm"
  [ "$run" = warmup ] && return 0
  local got
  got=$(python3 -c 'import json,sys; l=[x for x in open(sys.argv[1]) if x.startswith("{")]; print(json.loads(l[-1]).get("messages",0) if l else 0)' "$out.json")
  check_count mailbridge "$size" "$got"
  $REPORT record --tool mailbridge --size "$size" --run "$run" --time-file "$out.time" \
    --mailbox-bytes "$(mailbox_vsize "$user")" --driver-json "$out.json" >>"$RUNS"
}

bench_size() {
  local user=$1 size=$2 r tool
  if [ "$WARMUP" = 1 ]; then
    for tool in $TOOLS; do
      log "$user: warm-up (untimed): $tool"
      "run_$tool" "$user" "$size" warmup
    done
  fi
  for ((r = 1; r <= REPEAT; r++)); do
    for tool in $TOOLS; do
      log "$user: run $r/$REPEAT: $tool"
      "run_$tool" "$user" "$size" "$r"
    done
  done
}

machine() {
  echo "- machine: $(nproc) CPU ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1))," \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
    "$(uname -sr); $(fetchmail --version 2>/dev/null | head -n1 | cut -d' ' -f1-5)," \
    "getmail $(getmail --version 2>&1 | awk '{print $2}' | head -n1)," \
    "Dovecot $(dovecot --version | awk '{print $1}')"
}

main() {
  setup_check
  for tool in $TOOLS; do
    case "$tool" in
      fetchmail | getmail) ;;
      mailbridge) build ;;
      *) die "unknown tool '$tool' in MB_BENCH_TOOLS" ;;
    esac
  done
  mkdir -p "$WORK"
  rm -rf "$WORK/out" "$RUNS" && mkdir -p "$WORK/out"
  start_dovecot
  fill_mailbox bench "$N"
  fill_mailbox bench-small "$SMALL"
  write_configs
  local load_before
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  bench_size bench "$N"
  bench_size bench-small "$SMALL"
  {
    echo "POP3S ingest of $N and $SMALL messages ($(date -u +%Y-%m-%dT%H:%MZ)), median of $REPEAT:"
    echo
    $REPORT table "$RUNS"
    echo
    machine
    echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- mailboxes: $(cat "$WORK/gen-bench.json")"
  } | tee "$WORK/results.md"
  if [ "$CHECK" = 1 ] && [ "$FAILED" = 1 ]; then die "a tool did not get every message"; fi
}

main "$@"
