#!/usr/bin/env bash
# File: bench/run_ews_bench.sh — mailbridge's ingest over Exchange Web Services against the EWS
# stand-in (tests/harness/ews.sh): N messages of bench/gen_mail.py delivered to one mailbox,
# `mailbridge sync --once` (NTLM, the service account impersonating the mailbox, after =
# "leave") until every message is processed, MB_BENCH_REPEAT times, each into a fresh store
# (so each run synchronizes the whole folder from the start). Reports the SOAP requests per
# message from the stand-in's counters (total, SyncFolderItems, GetItem, the rest), msgs/s and
# peak RSS; then, unless MB_BENCH_GRAPH=0, runs bench/run_graph_bench.sh on the same N with
# after = "leave" as many times and prints both side by side.
#
#   bench/run_ews_bench.sh [N]      # N messages (default 10000)
#
# Exits 1 unless every run processed exactly N messages and the store holds each message
# exactly once: one ledger row and one email-in note per message, and a ticket for every
# message that is not a reply (gen_mail.py makes ~15 % replies, which become notes on their
# ticket). A small N works as a smoke test (CTest bench.ews_smoke, with MB_BENCH_GRAPH=0).
#
# Environment: MB_BENCH_MAILBRIDGE (the binary; default: a Release `-O2` build in
# MB_BENCH_BUILD, default <repo>/build-bench), MB_EWS_BENCH_DIR (work dir, default
# /tmp/mb-ews-bench), MB_BENCH_SEED (1), MB_BENCH_BIG_PERCENT (share of messages with a
# 1–2 MB attachment, default 0), MB_BENCH_REPEAT (runs of each, default 1; the table shows the
# median), MB_BENCH_AUTH ("ntlm" or "password", default ntlm), MB_BENCH_GRAPH (1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
WORK=${MB_EWS_BENCH_DIR:-/tmp/mb-ews-bench}
SEED=${MB_BENCH_SEED:-1}
BIG=${MB_BENCH_BIG_PERCENT:-0}
REPEAT=${MB_BENCH_REPEAT:-1}
AUTH=${MB_BENCH_AUTH:-ntlm}
WITH_GRAPH=${MB_BENCH_GRAPH:-1}
EWS=$WORK/ews

die() { echo "run_ews_bench.sh: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N < 10)); then die "N must be a number >= 10"; fi
if ! [[ "$REPEAT" =~ ^[1-9][0-9]*$ ]]; then die "MB_BENCH_REPEAT must be a number >= 1"; fi
case "$AUTH" in ntlm | password) ;; *) die "MB_BENCH_AUTH must be ntlm or password" ;; esac
for cmd in node openssl curl python3; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (run scripts/setup.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package 'time')"
mkdir -p "$WORK"

. "$ROOT/bench/mailbridge_binary.sh"  # sets BIN
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

stop_servers() { "$ROOT/tests/harness/ews.sh" stop "$EWS" >&2 || true; }
trap stop_servers EXIT
"$ROOT/tests/harness/ews.sh" start "$EWS" >&2
set -a
# shellcheck disable=SC1091
. "$EWS/env"
set +a

MAILDIR=$WORK/maildir-$N-$SEED-$BIG
if [ ! -f "$MAILDIR/.complete" ]; then
  log "generating $N messages"
  rm -rf "$MAILDIR"
  python3 "$ROOT/bench/gen_mail.py" --maildir "$MAILDIR" --count "$N" --seed "$SEED" \
    --big-percent "$BIG" >"$MAILDIR.json"
  touch "$MAILDIR/.complete"
fi
BYTES=$(find "$MAILDIR/new" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
REPLIES=$(python3 -c "import json; print(json.load(open('$MAILDIR.json'))['kinds'].get('reply', 0))")

admin() { curl -sS --fail-with-body --max-time 600 -H 'Content-Type: application/json' \
  "$MB_EWS_ADMIN_URL$1" ${2:+-d "$2"}; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
admin /settings '{"log_size": 50000}' >/dev/null

mailbox="bench-$(date +%s)-$$@$MB_EWS_DOMAIN"
log "delivering $N messages to $mailbox"
admin /deliver/maildir "{\"mailbox\": \"$mailbox\", \"path\": \"$MAILDIR\"}" >/dev/null

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
status=0
for rep in $(seq 1 "$REPEAT"); do
  run=$WORK/run-$rep
  rm -rf "$run"
  mkdir -p "$run"
  # The user in a literal string: "CORP\svc-ews" has a backslash.
  cat >"$run/mailbridge.toml" <<EOF
[store]
path = "$run/mailbridge.db"

[[mailbox]]
name = "bench"
type = "ews"
endpoint = "$MB_EWS_URL"
auth = "$AUTH"
user = '$MB_EWS_NETBIOS\\svc-ews'
password = "env:MB_BENCH_EWS_PASSWORD"
address = "$mailbox"
access = "impersonation"
after = "leave"
max_per_poll = 9999
tls = { ca_file = "$MB_EWS_CA_FILE" }
timeouts = { connect = "15s", response = "120s" }
EOF
  admin /stats/reset '{}' >/dev/null
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  wall=0 rss=0 runs=0 processed=0
  # Up to a SyncFolderItems page (512) per run more than max_per_poll needs, in case a
  # connector stops at each page.
  while ((processed < N && runs < N / 512 + 5)); do
    runs=$((runs + 1))
    log "ews run $rep: sync --once ($runs)"
    MB_BENCH_EWS_PASSWORD=$MB_EWS_PASSWORD /usr/bin/time -v -o "$run/time-$runs.txt" \
      "$BIN" --config "$run/mailbridge.toml" sync --once >"$run/sync-$runs.out" 2>"$run/sync-$runs.err" ||
      { tail -n 20 "$run/sync-$runs.err" >&2; die "sync --once failed (run $rep, $runs)"; }
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
      for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$run/time-$runs.txt")
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$run/time-$runs.txt")
    wall=$(python3 -c "print($wall + $w)")
    rss=$((r > rss ? r : rss))
    # "bench: 180 imported (172 tickets, 8 notes), 20 skipped"
    processed=$((processed + $(sed -n 's/^bench: \([0-9]*\) imported.*, \([0-9]*\) skipped.*/\1 + \2/p' \
      "$run/sync-$runs.out" | head -n1 | awk '{s = $1 + $3} END {print s + 0}')))
  done
  load_after=$(cut -d' ' -f1 /proc/loadavg)
  admin /stats >"$run/stats.json"
  line=$(python3 - "$run" <<PY
import json, sqlite3, sys
run = sys.argv[1]
s = json.load(open(f"{run}/stats.json"))
db = sqlite3.connect(f"file:{run}/mailbridge.db?mode=ro", uri=True)
one = lambda q: db.execute(q).fetchone()[0]
n, wall, ops = $N, $wall, s["by_operation"]
total = s["requests"]
sync, get = ops.get("SyncFolderItems", 0), ops.get("GetItem", 0)
print(json.dumps({"connector": "ews", "run": $rep, "messages": n, "processed": $processed,
  "tickets": one("select count(*) from tickets"), "replies": $REPLIES,
  "ledger": one("select count(*) from ledger"),
  "notes_in": one("select count(distinct message_id) from notes where kind = 'email-in'"),
  "runs": $runs, "wall_s": round(wall, 2), "msgs_per_s": round($processed / wall, 1) if wall else None,
  "mb_per_s": round($BYTES * $processed / n / 1e6 / wall, 2) if wall else None, "peak_rss_mb": round($rss / 1024, 1),
  "requests": total, "sync_pages": sync, "get_item": get, "other": total - sync - get,
  "requests_per_msg": round(total / n, 4), "by_operation": ops, "status": s["by_status"],
  "auth": s["auth"], "load": "$load_before-$load_after"}))
PY
)
  echo "$line" >>"$RESULTS"
  log "ews run $rep: $(echo "$line" | json "d['tickets'], 'tickets', d['msgs_per_s'], 'msgs/s', d['requests_per_msg'], 'requests/msg'")"
  bad=$(echo "$line" | json "' '.join(k for k, ok in [('processed', d['processed'] == d['messages']),
    ('ledger rows', d['ledger'] == d['messages']), ('email-in notes', d['notes_in'] == d['messages']),
    ('tickets', d['tickets'] == d['messages'] - d['replies'])] if not ok)")
  if [ -n "$bad" ]; then
    echo "run_ews_bench.sh: run $rep: wrong count of $bad (see $RESULTS)" >&2
    status=1
  fi
done
stop_servers
trap - EXIT

if [ "$WITH_GRAPH" = 1 ]; then
  log "the Graph benchmark on the same $N messages, after = leave, $REPEAT time(s)"
  afters=$(for _ in $(seq 1 "$REPEAT"); do printf 'leave '; done)
  GRAPH_WORK=${MB_GRAPH_BENCH_DIR:-$WORK/graph-bench}
  graph_load=$(cut -d' ' -f1 /proc/loadavg)
  MB_BENCH_MAILBRIDGE=$BIN MB_BENCH_AFTERS=$afters MB_GRAPH_BENCH_DIR=$GRAPH_WORK \
    MB_BENCH_SEED=$SEED MB_BENCH_BIG_PERCENT=$BIG "$ROOT/bench/run_graph_bench.sh" "$N" >&2 || status=1
  graph_load="$graph_load-$(cut -d' ' -f1 /proc/loadavg)"
  python3 - "$GRAPH_WORK/results.jsonl" "$RESULTS" "$graph_load" <<'PY'
import json, sys
out = open(sys.argv[2], "a")
for i, l in enumerate(open(sys.argv[1]), 1):
    g = json.loads(l)
    out.write(json.dumps({"connector": "graph", "run": i, **{k: g[k] for k in (
        "messages", "processed", "tickets", "runs", "wall_s", "msgs_per_s", "mb_per_s",
        "peak_rss_mb", "requests", "requests_per_msg", "by_route")}, "load": sys.argv[3]}) + "\n")
PY
fi

python3 - "$RESULTS" "$BYTES" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{rows[0]['messages']} messages, {int(sys.argv[2]) / 1e6:.1f} MB, after = leave\n")
print("| connector | run | processed | tickets | sync runs | wall s | msgs/s | MB/s | peak RSS MB | requests | requests/msg | load average |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    print(f"| {r['connector']} | {r['run']} | {r['processed']} | {r['tickets']} | {r['runs']} | {r['wall_s']} | "
          f"{r['msgs_per_s']} | {r['mb_per_s']} | {r['peak_rss_mb']} | {r['requests']} | {r['requests_per_msg']} | {r['load']} |")
for c in ("ews", "graph"):
    rs = [r for r in rows if r["connector"] == c]
    if len(rs) > 1:
        med = statistics.median(r["wall_s"] for r in rs)
        print(f"\n{c}: median wall {med} s, {round(rs[0]['messages'] / med, 1)} msgs/s over {len(rs)} runs")
for r in rows:
    counts = r.get("by_operation") or r.get("by_route")
    status = ", HTTP status " + ", ".join(f"{k}: {v}" for k, v in sorted(r["status"].items())) if "status" in r else ""
    print(f"\n{r['connector']} run {r['run']}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + status)
PY
exit $status
