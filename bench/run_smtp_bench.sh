#!/usr/bin/env bash
# File: bench/run_smtp_bench.sh — the SMTP benchmark of docs/performance.md: N messages
# (default 10,000) through the test SMTP server of tests/harness/smtp.sh, by mailbridge's
# outbox (queued first, then one flush) with and without one_message_per_connection, by the
# SMTP Sender alone, and by Python's smtplib as a peer, each printing one JSON line.
#
#   bench/run_smtp_bench.sh [N]        # MB_SMTP_BENCH=path/to/mb_smtp_bench (default build/)
#
# The server runs in MB_SMTP_BENCH_DIR (default build/smtp-bench) and is stopped at exit.
# Its pause before each greeting is 0 here (smtp-server's own is 100 ms per connection).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=${1:-10000}
bench=${MB_SMTP_BENCH:-$root/build/bench/mb_smtp_bench}
dir=${MB_SMTP_BENCH_DIR:-$root/build/smtp-bench}
[ -x "$bench" ] || { echo "run_smtp_bench.sh: build mb_smtp_bench first ($bench)" >&2; exit 2; }

"$root/tests/harness/smtp.sh" start "$dir" >/dev/null
trap '"$root/tests/harness/smtp.sh" stop "$dir"' EXIT
env_file="$dir/env"
status=0
run() { "$bench" --smtp-env "$env_file" --messages "$n" "$@" || status=1; }

run --mode outbox
run --mode outbox --one-per-connection
run --mode sender
run --mode sender --one-per-connection

# The peer: Python's smtplib (STARTTLS, AUTH PLAIN, one message per sendmail), same server,
# same pause, same message size.
admin=$(sed -n 's/^MB_SMTP_ADMIN_URL=//p' "$env_file")
for per_connection in 0 1; do
  curl -sf -X POST "$admin/reset" >/dev/null
  curl -sf -X POST -H 'Content-Type: application/json' -d '{"greet_delay_ms":0}' \
    "$admin/faults" >/dev/null
  python3 - "$env_file" "$n" "$per_connection" <<'PY' || status=1
import json, os, smtplib, ssl, sys, time
env = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
n, per_connection = int(sys.argv[2]), sys.argv[3] == "1"
ctx = ssl.create_default_context(cafile=env["MB_SMTP_CA_FILE"])
port = int(env["MB_SMTP_SUBMISSION_PORT"])
body = "".join("A line of ordinary text to give the message a usual size.\r\n" for _ in range(20))
def connect():
    s = smtplib.SMTP("localhost", port, local_hostname="bench.mailbridge.test")
    s.starttls(context=ctx)
    s.login("support@bench.test", env["MB_SMTP_PASSWORD"])
    return s
t0 = time.monotonic()
s = None
for i in range(n):
    if s is None:
        s = connect()
    msg = (f"From: support@bench.test\r\nTo: customer{i % 100}@example.test\r\n"
           f"Subject: Your request\r\nMessage-ID: <py{i}@bench.test>\r\n\r\n"
           f"Hello,\r\n\r\nthis is message {i} of the SMTP benchmark.\r\n{body}")
    s.sendmail("support@bench.test", [f"customer{i % 100}@example.test"], msg.encode())
    if per_connection:
        s.quit()
        s = None
if s is not None:
    s.quit()
secs = time.monotonic() - t0
print(json.dumps({"mode": "python-smtplib", "one_message_per_connection": per_connection,
                  "messages": n, "send_seconds": secs, "msgs_per_second": n / secs}))
PY
done
curl -sf -X POST "$admin/reset" >/dev/null
exit $status
