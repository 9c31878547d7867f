# shellcheck shell=bash
# File: tests/harness/lib.sh — what the server scripts (dovecot.sh, oauth.sh, entra.sh,
# graph.sh, smtp.sh, ews.sh) share: messages, DIR/env, process checks, PID-exact stopping, the private
# CA, starting a Node.js server and waiting for it. Sourced, never run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script sets WAIT_SECONDS (the bound on waiting for its server to start or
# stop) and, for a Node.js server, APP (the directory of its server.mjs). Nothing here ever
# signals a process by name: only a PID the script recorded, and only after checking that the
# PID still runs the server it started.

# shellcheck disable=SC2034  # HERE is for the sourcing scripts
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # tests/harness
HARNESS=$(basename "${BASH_SOURCE[1]}")              # the sourcing script's name, for messages
SERVER_PID=""                                        # set by spawn_server

# Prints "<script>: MESSAGE" on stderr and exits 1.
die() { echo "$HARNESS: $*" >&2; exit 1; }

# Reads KEY from DIR/env (empty if absent).
env_value() {
  local dir=$1 key=$2
  [ -f "$dir/env" ] || return 0
  sed -n "s/^$key=//p" "$dir/env" | head -n1
}

# Prints DIR as an absolute path, or as given when it cannot be entered (for `stop`).
abs_dir() { (cd "$1" 2>/dev/null && pwd) || echo "$1"; }

# True while PID is a live (non-zombie) process.
alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ -n "$state" ] && [ "$state" != "Z" ]
}

# True when PID is gone (or a zombie).
dead() { ! alive "$1"; }

# Runs CMD... up to TRIES times, INTERVAL seconds apart, until it succeeds; status 1 when the
# tries run out or, if PID is not empty, as soon as PID has exited.
poll() {
  local pid=$1 tries=$2 interval=$3 i
  shift 3
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    if [ -n "$pid" ]; then alive "$pid" || return 1; fi
    sleep "$interval"
  done
  return 1
}

# Waits, bounded by WAIT_SECONDS, until PID has exited; status 1 if it has not.
wait_gone() { poll "" $((WAIT_SECONDS * 20)) 0.05 dead "$1" || dead "$1"; }

# True when PID runs our $APP/server.mjs (so a stale, reused PID is never signalled).
is_ours() {
  local pid=$1
  alive "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$(basename "$APP")/server.mjs"
}

# Stops PID if CHECK PID holds (default is_ours): SIGTERM, then SIGKILL after WAIT_SECONDS;
# WHAT (default "server") names it in messages. Dies if it still does not exit.
stop_pid() {
  local pid=$1 what=${2:-server} check=${3:-is_ours}
  [ -n "$pid" ] && "$check" "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid"; then
    echo "$HARNESS: $what $pid ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || die "$what $pid did not exit"
  fi
}

# Stops the Node.js server of DIR (PID from DIR/env's KEY, else DIR/server.pid) and removes
# DIR/env, DIR/server.pid and DIR/server.json.
stop_server() {
  local dir=$1 key=$2 pid
  pid=$(env_value "$dir" "$key")
  if [ -z "$pid" ] && [ -f "$dir/server.pid" ]; then pid=$(cat "$dir/server.pid"); fi
  stop_pid "$pid"
  rm -f "$dir/env" "$dir/server.pid" "$dir/server.json"
}

# Makes a self-signed P-256 CA, NAME.pem and NAME.key (mode 0600), in the current directory.
make_ca() {
  local name=$1 cn=$2
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$name.key" -out "$name.pem" -days 3650 -subj "/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$name.key"
}

# Makes NAME.pem and NAME.key (mode 0600) in the current directory: a P-256 server
# certificate with subject CN and subjectAltName SAN, signed by ca.pem/ca.key there.
make_server_cert() {
  local name=$1 cn=$2 san=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$san" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days 825 -extfile "$name.ext" 2>/dev/null
  chmod 600 "$name.key"
}

# Makes TLS_DIR with a private CA (ca.pem, subject CA_CN) and its server certificate
# (server.pem/server.key; subject CN and subjectAltName SAN, default localhost / DNS:localhost).
make_tls() {
  local tls=$1 ca_cn=$2 cn=${3:-localhost} san=${4:-DNS:localhost}
  mkdir -p "$tls"
  (
    cd "$tls" || exit
    make_ca ca "$ca_cn"
    make_server_cert server "$cn" "$san"
  )
}

# Dies unless node is installed.
need_node() { command -v node >/dev/null || die "node is not installed (run scripts/setup.sh)"; }

# Dies unless the npm MODULE is installed in $APP/node_modules.
need_npm() { [ -d "$APP/node_modules/$1" ] || die "$1 is not installed in $APP (run scripts/setup.sh)"; }

# Starts node $APP/server.mjs DIR ARG... in its own session with no terminal, output appended
# to LOG (NAME=value words before the call reach it as environment); sets SERVER_PID and
# writes it to DIR/server.pid.
spawn_server() {
  local dir=$1 log=$2
  shift 2
  # Its own session and no terminal, output to the log: the caller (ctest) must not wait
  # for it, and it must not die with the caller's shell.
  (cd "$APP" && exec setsid node "$APP/server.mjs" "$dir" "$@" </dev/null >>"$log" 2>&1) &
  SERVER_PID=$!
  echo "$SERVER_PID" >"$dir/server.pid"
}

# Prints FIELD (a dotted path such as ports.submission) of the JSON file FILE.
json_field() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1]));
console.log(process.argv[2].split(".").reduce((o, k) => o[k], j))' "$1" "$2"
}

# Waits, bounded by WAIT_SECONDS, until server PID has written DIR/server.json and then
# PROBE DIR PORT ARG... succeeds, PORT being server.json's FIELD; status 1 if PID exits first.
wait_ready() {
  local dir=$1 pid=$2 field=$3 probe=$4 port
  shift 4
  poll "$pid" $((WAIT_SECONDS * 20)) 0.05 test -s "$dir/server.json" || return 1
  port=$(json_field "$dir/server.json" "$field")
  poll "$pid" $((WAIT_SECONDS * 4)) 0.25 "$probe" "$dir" "$port" "$@"
}

# True when curl OPTION... gets https://localhost:PORT/PATH verified with DIR/tls/ca.pem
# (-sf: a 2xx answer; -s: any HTTP answer), within 2 s.
https_probe() {
  local dir=$1 port=$2 path=$3
  shift 3
  curl "$@" --max-time 2 --cacert "$dir/tls/ca.pem" "https://localhost:$port$path" >/dev/null 2>&1
}

# True when 127.0.0.1:PORT greets with a line starting with PREFIX within 2 s (one attempt);
# BYE (e.g. 'QUIT\r\n'), if given, is sent before closing.
greets() {
  local port=$1 prefix=$2 bye=${3:-} line=""
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  IFS= read -r -t 2 line <&3 || true
  if [ -n "$bye" ]; then printf '%b' "$bye" >&3 2>/dev/null || true; fi
  exec 3<&- 3>&-
  [[ "$line" == "$prefix"* ]]
}

# Shows LOG's last 30 lines (NOUN names LOG, default "log"), stops the server PID and dies
# with "WHAT did not start (see LOG)".
start_failed() {
  local pid=$1 log=$2 what=$3 noun=${4:-log}
  echo "$HARNESS: the server did not start; $noun:" >&2
  tail -n 30 "$log" >&2 || true
  stop_pid "$pid"
  die "$what did not start (see $log)"
}

# Turns DIR/server.json into DIR/env (mode 0600, written to a temporary file, then renamed).
# Standard input is JavaScript that sets `const lines = {KEY: value, ...}` from `s` (the
# parsed server.json), `dir` and `args` (the ARGs).
write_env_json() {
  {
    cat <<'JS'
const fs = require('node:fs');
const [dir, ...args] = process.argv.slice(2);
const s = JSON.parse(fs.readFileSync(`${dir}/server.json`, 'utf8'));
JS
    cat
    cat <<'JS'
const text = Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join('');
fs.writeFileSync(`${dir}/env.tmp`, text, { mode: 0o600 });
fs.renameSync(`${dir}/env.tmp`, `${dir}/env`);
JS
  } | node - "$@"
}

# POSTs the approval of device code CODE (and FIELD=WHO when WHO is not empty) to the admin URL
# in DIR/env's KEY, printing the answer; WHAT names the server when none runs for DIR.
approve_device() {
  local dir=$1 key=$2 what=$3 code=$4 field=$5 who=$6 admin
  admin=$(env_value "$dir" "$key")
  [ -n "$admin" ] || die "no $what running for $dir"
  curl -sS --fail-with-body --max-time 10 -X POST "$admin/device/approve" \
    --data-urlencode "user_code=$code" ${who:+--data-urlencode "$field=$who"}
  echo
}
