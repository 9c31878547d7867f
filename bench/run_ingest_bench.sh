#!/usr/bin/env bash
# File: bench/run_ingest_bench.sh — mailbridge's whole ingest beside mbsync (isync) downloading
# the same mailbox from the same private Dovecot over IMAPS, in one run.
#
#   bench/run_ingest_bench.sh [N]        # N messages (default 10000), and N/10 for RSS growth
#
# Steps: setup check, Release build of mb_ingest_bench, a private Dovecot (tests/harness),
# N and N/10 generated messages (bench/gen_mail.py, seeded), one untimed warm-up of each
# tool, then MB_BENCH_REPEAT (3) timed runs of each, alternating, under /usr/bin/time -v.
# Prints a Markdown table of medians (also in $MB_BENCH_DIR/results.md; every run's record
# in runs.jsonl) and stops the Dovecot by its PID.
#
# Environment: MB_BENCH_DIR (work dir, default /tmp/mb-bench), MB_BENCH_BUILD (build dir,
# default <repo>/build-bench), MB_BENCH_REPEAT (3), MB_BENCH_SEED (1), MB_BENCH_WARMUP (1),
# MB_BENCH_RUN_TIMEOUT (seconds per run, default 1800), MB_BENCH_SKIP_SETUP=1,
# MB_BENCH_TOOLS ("mbsync mbsync_nofsync mailbridge"; mbsync_nofsync is mbsync with
# "FSync no", for mailbridge's after = "leave", which needs no fsync per message).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
WORK=${MB_BENCH_DIR:-/tmp/mb-bench}
BUILD=${MB_BENCH_BUILD:-$ROOT/build-bench}
REPEAT=${MB_BENCH_REPEAT:-3}
SEED=${MB_BENCH_SEED:-1}
WARMUP=${MB_BENCH_WARMUP:-1}
RUN_TIMEOUT=${MB_BENCH_RUN_TIMEOUT:-1800}
TOOLS=${MB_BENCH_TOOLS:-mbsync mbsync_nofsync mailbridge}
HARNESS=$WORK/dovecot
RUNS=$WORK/runs.jsonl
REPORT="python3 $ROOT/bench/bench_report.py"

die() { echo "run_ingest_bench.sh: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N < 10)); then die "N must be a number >= 10"; fi
SMALL=$((N / 10))

setup_check() {
  if [ "${MB_BENCH_SKIP_SETUP:-0}" != 1 ]; then "$ROOT/scripts/setup.sh" >&2; fi
  local cmd
  for cmd in mbsync dovecot doveadm python3 cmake ninja openssl timeout; do
    command -v "$cmd" >/dev/null || die "$cmd is missing (run scripts/setup.sh)"
  done
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package 'time')"
}

build() {
  log "building mb_ingest_bench (Release) in $BUILD"
  # -O2, not CMake's -O3: g++ 12 at -O3 reports false -Wrestrict errors on std::string
  # concatenation (GCC bug 105651), and -Werror turns them into a failed build.
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

# Fills user $1's INBOX with $2 messages and lets Dovecot index it once.
fill_mailbox() {
  local user=$1 count=$2 home=$MB_MAIL_ROOT/$1
  log "generating $count messages for $user"
  rm -rf "$home"
  python3 "$ROOT/bench/gen_mail.py" --maildir "$home/Maildir" --count "$count" \
    --seed "$SEED" >"$WORK/gen-$user.json"
  chown -R "$MB_MAIL_UID:$MB_MAIL_GID" "$home"
  doveadm -c "$MB_DOVECOT_CONF" index -u "$user" INBOX
}

# The mailbox's size as IMAP serves it (CRLF line ends): the byte figure both tools get.
mailbox_vsize() {
  doveadm -c "$MB_DOVECOT_CONF" -f flow mailbox status -u "$1" vsize INBOX |
    sed -n 's/.*vsize=\([0-9]*\).*/\1/p'
}

write_configs() {
  local user
  for user in bench bench-small; do
    cat >"$WORK/mbsyncrc-$user" <<EOF
FSync yes

IMAPAccount $user
Host localhost
Port $MB_IMAPS_PORT
User $user
PassCmd "printenv MB_PASSWORD"
SSLType IMAPS
SSLVersions TLSv1.2 TLSv1.3
CertificateFile $MB_CA_FILE

IMAPStore $user-far
Account $user

MaildirStore $user-near
Path $WORK/mbsync-mail/
Inbox $WORK/mbsync-mail/INBOX
SubFolders Verbatim

Channel $user
Far :$user-far:
Near :$user-near:
Patterns INBOX
Sync Pull
Create Near
Expunge None
SyncState *
EOF
    sed 's/^FSync yes$/FSync no/' "$WORK/mbsyncrc-$user" >"$WORK/mbsyncrc-nofsync-$user"
  done
  {
    printf '[store]\npath = "%s/mailbridge.db"\n' "$WORK"
    for user in bench bench-small; do
      cat <<EOF

[[mailbox]]
name = "$user"
type = "imap"
host = "localhost"
port = $MB_IMAPS_PORT
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

# One timed mbsync pull of user $1 into an empty local Maildir; $4 picks the config variant.
run_mbsync() {
  local user=$1 size=$2 run=$3 variant=${4:-} tool=mbsync${4:+_$4}
  local out=$WORK/out/$tool-$1-$3
  rm -rf "$WORK/mbsync-mail" && mkdir -p "$WORK/mbsync-mail"
  /usr/bin/time -v -o "$out.time" timeout "$RUN_TIMEOUT" \
    mbsync -q -c "$WORK/mbsyncrc${variant:+-$variant}-$user" "$user" >"$out.log" 2>&1 || true
  local got
  got=$(find "$WORK/mbsync-mail/INBOX/cur" "$WORK/mbsync-mail/INBOX/new" -type f 2>/dev/null |
    wc -l)
  [ "$run" = warmup ] && return 0
  $REPORT record --tool "$tool" --size "$size" --run "$run" --time-file "$out.time" \
    --mailbox-bytes "$(mailbox_vsize "$user")" --messages "$got" >>"$RUNS"
  rm -rf "$WORK/mbsync-mail"
}

run_mbsync_nofsync() { run_mbsync "$1" "$2" "$3" nofsync; }

# One timed mailbridge ingest of user $1 into a fresh store.
run_mailbridge() {
  local user=$1 size=$2 run=$3 out=$WORK/out/mailbridge-$1-$3
  /usr/bin/time -v -o "$out.time" timeout "$RUN_TIMEOUT" \
    "$DRIVER" --config "$WORK/mailbridge.toml" --mailbox "$user" \
    --store "$WORK/store-$user.db" >"$out.json" 2>"$out.log" || true
  rm -f "$WORK/store-$user.db" "$WORK/store-$user.db-wal" "$WORK/store-$user.db-shm"
  [ "$run" = warmup ] && return 0
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
    "$(uname -sr); mbsync $(mbsync --version | awk '{print $2}')," \
    "Dovecot $(dovecot --version | awk '{print $1}')"
}

main() {
  setup_check
  for tool in $TOOLS; do
    case "$tool" in
      mbsync | mbsync_nofsync) ;;
      mailbridge) build ;;
      *) die "unknown tool '$tool' in MB_BENCH_TOOLS" ;;
    esac
  done
  rm -rf "$WORK/out" "$RUNS" && mkdir -p "$WORK/out"
  start_dovecot
  fill_mailbox bench "$N"
  fill_mailbox bench-small "$SMALL"
  write_configs
  local load_before tool
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  bench_size bench "$N"
  bench_size bench-small "$SMALL"
  {
    echo "Ingest of $N and $SMALL messages ($(date -u +%Y-%m-%dT%H:%MZ)), median of $REPEAT:"
    echo
    $REPORT table "$RUNS"
    echo
    machine
    echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- mailboxes: $(cat "$WORK/gen-bench.json")"
  } | tee "$WORK/results.md"
}

main "$@"
