#!/usr/bin/env bash
# File: bench/run_service_bench.sh — one `mailbridge run` holding N mailboxes of a private
# Dovecot with IMAP IDLE: resident memory per mailbox, idle CPU, append → ticket latency
# (p50, p99) and the time SIGTERM takes, measured by bench/service_bench.py.
#
#   bench/run_service_bench.sh [N]      # N mailboxes (default 1000), and a run with N/100
#
# Memory per mailbox is reported two ways: RSS / N, and the growth from the small run to the
# large one divided by the mailboxes added (what one more mailbox costs). The binary is the
# one the README builds (Release -O2 here, as run_ingest_bench.sh builds its driver).
# Prints a Markdown table; the JSON of each run is in $MB_BENCH_DIR/small.json and large.json.
#
# Environment: MB_BENCH_DIR (default /tmp/mb-service-bench), MB_BENCH_BUILD (default
# <repo>/build-bench), MB_BENCH_MAILBRIDGE (a built mailbridge: skips the build),
# MB_BENCH_APPENDS (200), MB_BENCH_IDLE_SECONDS (60), MB_BENCH_SKIP_SETUP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000}
WORK=${MB_BENCH_DIR:-/tmp/mb-service-bench}
BUILD=${MB_BENCH_BUILD:-$ROOT/build-bench}
BIN=${MB_BENCH_MAILBRIDGE:-}
APPENDS=${MB_BENCH_APPENDS:-200}
IDLE_SECONDS=${MB_BENCH_IDLE_SECONDS:-60}
HARNESS=$WORK/dovecot

die() { echo "run_service_bench.sh: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N < 100)); then die "N must be a number >= 100"; fi
SMALL=$((N / 100))

if [ "${MB_BENCH_SKIP_SETUP:-0}" != 1 ]; then "$ROOT/scripts/setup.sh" >&2; fi
if [ -z "$BIN" ]; then
  log "building mailbridge (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" >/dev/null
  ninja -C "$BUILD" -j2 mailbridge >&2
  BIN=$BUILD/cli/mailbridge
fi
# One descriptor per connection and a few per store connection: raise the soft limit.
ulimit -n "$(ulimit -Hn)"

mkdir -p "$WORK"
stop_dovecot() { "$ROOT/tests/harness/dovecot.sh" stop "$HARNESS" >&2 || true; }
MB_DOVECOT_MAX_CLIENTS=$((N + 20)) "$ROOT/tests/harness/dovecot.sh" start "$HARNESS" >&2
trap stop_dovecot EXIT

run() {  # run NAME MAILBOXES
  log "$1: $2 mailboxes"
  python3 "$ROOT/bench/service_bench.py" --mailbridge "$BIN" --dovecot-env "$HARNESS/env" \
    --work "$WORK/$1" --mailboxes "$2" --appends "$APPENDS" --idle-seconds "$IDLE_SECONDS" \
    >"$WORK/$1.json"
  cat "$WORK/$1.json" >&2
}
run small "$SMALL"
run large "$N"

python3 - "$WORK/small.json" "$WORK/large.json" <<'PY'
import json, sys
s, l = (json.load(open(p)) for p in sys.argv[1:3])
growth = (l["rss_bytes"] - s["rss_bytes"]) / (l["mailboxes"] - s["mailboxes"])
print("| mailboxes | start-up s | RSS MiB | RSS / mailbox KiB | idle CPU % | threads "
      "| append→ticket p50 s | p99 s | max s | not imported | SIGTERM exit s |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in (s, l):
    print(f"| {r['mailboxes']} | {r['startup_s']} | {r['rss_bytes'] / 2**20:.1f} "
          f"| {r['rss_per_mailbox_bytes'] / 1024:.0f} | {r['idle_cpu_percent']} "
          f"| {r['threads']} | {r['latency_p50_s']} | {r['latency_p99_s']} "
          f"| {r['latency_max_s']} | {r['not_imported_within_30s']} | {r['sigterm_exit_s']} |")
print(f"\nGrowth from {s['mailboxes']} to {l['mailboxes']} mailboxes: "
      f"{growth / 1024:.0f} KiB of RSS per mailbox added.")
PY
