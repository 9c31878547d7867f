#!/usr/bin/env bash
# File: bench/run_graph_bench.sh — mailbridge's ingest over Microsoft Graph against the Graph
# stand-in (tests/harness/graph.sh, tokens from tests/harness/entra.sh): N messages, each
# post-action in turn, `mailbridge sync --once` until every message is processed. Reports the
# HTTP requests per message from the stand-in's counters (total, $value, post-action, and the
# rest: delta pages, folder lookups, tokens' checks), msgs/s and peak RSS.
#
#   bench/run_graph_bench.sh [N]      # N messages (default 10000)
#
# Exits 1 when a run does not process exactly N messages (imported as tickets or notes, or
# skipped by the filters) or needs more than one request per
# message beyond the $value download and the post-action (the target of issue 5), so a small
# N works as a smoke test (CTest bench.graph_smoke).
#
# Environment: MB_BENCH_MAILBRIDGE (the binary; default: a Release `-O2` build in
# MB_BENCH_BUILD, default <repo>/build-bench), MB_GRAPH_BENCH_DIR (work dir, default
# /tmp/mb-graph-bench), MB_BENCH_SEED (1), MB_BENCH_BIG_PERCENT (share of messages with a
# 1–2 MB attachment, default 0), MB_BENCH_AFTERS ("mark-read move:Processed"),
# MB_BENCH_LATENCY_MS (added by the stand-in to each request, default 0).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
WORK=${MB_GRAPH_BENCH_DIR:-/tmp/mb-graph-bench}
SEED=${MB_BENCH_SEED:-1}
BIG=${MB_BENCH_BIG_PERCENT:-0}
AFTERS=${MB_BENCH_AFTERS:-mark-read move:Processed}
LATENCY=${MB_BENCH_LATENCY_MS:-0}
ENTRA=$WORK/entra
GRAPH=$WORK/graph

die() { echo "run_graph_bench.sh: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N < 10)); then die "N must be a number >= 10"; fi
for cmd in node openssl curl python3; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (run scripts/setup.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package 'time')"
mkdir -p "$WORK"

. "$ROOT/bench/mailbridge_binary.sh"  # sets BIN

stop_servers() {
  "$ROOT/tests/harness/graph.sh" stop "$GRAPH" >&2 || true
  "$ROOT/tests/harness/entra.sh" stop "$ENTRA" >&2 || true
}
trap stop_servers EXIT
"$ROOT/tests/harness/entra.sh" start "$ENTRA" >&2
"$ROOT/tests/harness/graph.sh" start "$GRAPH" "$ENTRA" >&2
set -a
# shellcheck disable=SC1091
. "$ENTRA/env"
# shellcheck disable=SC1091
. "$GRAPH/env"
set +a

MAILDIR=$WORK/maildir-$N-$SEED-$BIG
if [ ! -f "$MAILDIR/.complete" ]; then
  log "generating $N messages"
  rm -rf "$MAILDIR"
  python3 "$ROOT/bench/gen_mail.py" --maildir "$MAILDIR" --count "$N" --seed "$SEED" \
    --big-percent "$BIG" >"$WORK/gen.json"
  touch "$MAILDIR/.complete"
fi
BYTES=$(find "$MAILDIR/new" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')

admin() { curl -sS --fail-with-body --max-time 600 -H 'Content-Type: application/json' \
  "$MB_GRAPH_ADMIN_URL$1" ${2:+-d "$2"}; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
admin /settings "{\"latency_ms\": $LATENCY, \"log_size\": 50000}" >/dev/null

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
status=0
for after in $AFTERS; do
  run=$WORK/run-${after//[^a-z]/_}
  rm -rf "$run"
  mkdir -p "$run"
  user="bench-${after//[^a-z]/-}-$(date +%s)-$$@$MB_GRAPH_DOMAIN"
  log "$after: delivering $N messages to $user"
  admin /deliver/maildir "{\"user\": \"$user\", \"path\": \"$MAILDIR\"}" >/dev/null
  cat >"$run/mailbridge.toml" <<EOF
[store]
path = "$run/mailbridge.db"

[[app]]
name = "bench"
token_endpoint = "$MB_ENTRA_TOKEN_URL"
client_id = "$MB_ENTRA_APP_ID"
client_secret = "env:MB_BENCH_GRAPH_SECRET"
tls = { ca_file = "$MB_ENTRA_CA_FILE" }

[[mailbox]]
name = "bench"
type = "graph"
app = "bench"
user = "$user"
endpoint = "$MB_GRAPH_URL"
after = "$after"
max_per_poll = 9999
tls = { ca_file = "$MB_GRAPH_CA_FILE" }
timeouts = { connect = "15s", response = "120s" }
EOF
  admin /stats/reset '{}' >/dev/null
  wall=0
  rss=0
  runs=0
  tickets=0
  processed=0
  while ((processed < N && runs < 5)); do
    runs=$((runs + 1))
    log "$after: sync --once (run $runs)"
    MB_BENCH_GRAPH_SECRET=$MB_ENTRA_APP_SECRET /usr/bin/time -v -o "$run/time-$runs.txt" \
      "$BIN" --config "$run/mailbridge.toml" sync --once >"$run/sync-$runs.out" 2>"$run/sync-$runs.err" ||
      { tail -n 20 "$run/sync-$runs.err" >&2; die "sync --once failed ($after, run $runs)"; }
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
      for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$run/time-$runs.txt")
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$run/time-$runs.txt")
    wall=$(python3 -c "print($wall + $w)")
    rss=$((r > rss ? r : rss))
    # "bench: 180 imported (172 tickets, 8 notes), 20 skipped": replies become notes and
    # auto-replies are skipped; every message must be one of them.
    processed=$((processed + $(sed -n 's/^bench: \([0-9]*\) imported.*, \([0-9]*\) skipped.*/\1 + \2/p' \
      "$run/sync-$runs.out" | head -n1 | awk '{s = $1 + $3} END {print s + 0}')))
    tickets=$(python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$run/mailbridge.db?mode=ro', uri=True).execute('select count(*) from tickets').fetchone()[0])")
  done
  stats=$(admin /stats)
  echo "$stats" >"$run/stats.json"
  # The requests other than $value and the post-action (delta pages with their Prefer, folders).
  admin /requests | python3 -c "import json, sys
r = [x for x in json.load(sys.stdin)['requests'] if '\$value' not in x['route'] and
     not x['route'].startswith('PATCH ') and not x['route'].endswith('/move')]
json.dump(r, sys.stdout, indent=1)" >"$run/other-requests.json"
  line=$(echo "$stats" | python3 -c "
import json, sys
s = json.load(sys.stdin)
n, wall = $N, $wall
routes = s['by_route']
value = sum(v for k, v in routes.items() if k.endswith('/\$value'))
post = sum(v for k, v in routes.items() if k.startswith('PATCH ') or k.endswith('/move') or k.startswith('DELETE '))
total = s['requests']
other = total - value - post
print(json.dumps({'after': '$after', 'messages': n, 'processed': $processed, 'tickets': $tickets, 'runs': $runs,
  'wall_s': round(wall, 2), 'msgs_per_s': round(n / wall, 1) if wall else None,
  'mb_per_s': round($BYTES / 1e6 / wall, 2) if wall else None, 'peak_rss_mb': round($rss / 1024, 1),
  'requests': total, 'value': value, 'post_action': post, 'other': other,
  'requests_per_msg': round(total / n, 3), 'other_per_msg': round(other / n, 4),
  'by_route': routes, 'status': s['by_status'], 'max_in_flight': max(s['max_in_flight'].values() or [0])}))
")
  echo "$line" >>"$RESULTS"
  log "$after: $(echo "$line" | json "d['tickets'], 'tickets', d['msgs_per_s'], 'msgs/s', d['requests_per_msg'], 'requests/msg'")"
  if [ "$processed" -ne "$N" ]; then
    echo "run_graph_bench.sh: $after processed $processed messages, not $N" >&2
    status=1
  fi
  if [ "$(echo "$line" | json "int(d['other'] > d['messages'])")" != 0 ]; then
    echo "run_graph_bench.sh: $after needed more than one request per message beyond \$value and the post-action" >&2
    status=1
  fi
done

python3 - "$RESULTS" "$BYTES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{rows[0]['messages']} messages, {int(sys.argv[2]) / 1e6:.1f} MB\n")
print("| after | processed | tickets | runs | wall s | msgs/s | MB/s | peak RSS MB | requests | $value | post-action | other | requests/msg | other/msg | max in flight |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['after']} | {r['processed']} | {r['tickets']} | {r['runs']} | {r['wall_s']} | {r['msgs_per_s']} | {r['mb_per_s']} | "
          f"{r['peak_rss_mb']} | {r['requests']} | {r['value']} | {r['post_action']} | {r['other']} | "
          f"{r['requests_per_msg']} | {r['other_per_msg']} | {r['max_in_flight']} |")
for r in rows:
    print(f"\n{r['after']}: " + ", ".join(f"{k} {v}" for k, v in sorted(r['by_route'].items())))
PY
exit $status
