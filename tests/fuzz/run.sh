#!/usr/bin/env bash
# File: tests/fuzz/run.sh — runs every libFuzzer target of tests/fuzz/ for DURATION seconds
# each, one after the other, seeded from tests/data/ and tests/fuzz/seeds/. scripts/test.sh
# calls it with a few seconds; give it minutes or hours for a real campaign.
#
#   tests/fuzz/run.sh DURATION [BUILD_DIR]    # BUILD_DIR defaults to build-fuzz/
#   MB_FUZZ_TARGETS="message_fuzz" tests/fuzz/run.sh 600   # only some targets
#
# BUILD_DIR must be configured with clang and -DMAILBRIDGE_FUZZ=ON (scripts/test.sh does it;
# see README.md). New inputs go to BUILD_DIR/fuzz-corpus/TARGET/ (kept between runs, so a
# campaign goes on where the last one stopped); a crashing input is written to
# BUILD_DIR/fuzz-artifacts/ and the script exits 1 with the fuzzer's report.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=${1:?usage: tests/fuzz/run.sh DURATION_SECONDS [BUILD_DIR]}
build=${2:-$root/build-fuzz}
build=$(cd "$build" && pwd)
targets=${MB_FUZZ_TARGETS:-message_fuzz rfc2047_fuzz imap_parser_fuzz sasl_fuzz}

# Seeds per target (read only: libFuzzer writes only into the first corpus directory).
seeds_of() {
  case $1 in
    message_fuzz) echo "$root/tests/data/mail $root/tests/data/demo" ;;
    rfc2047_fuzz) echo "$root/tests/data/mail $root/tests/data/demo" ;;
    imap_parser_fuzz) echo "$here/seeds/imap_parser $root/tests/data/imap/dovecot $root/tests/data/imap/exchange $root/tests/data/imap/gmail" ;;
    sasl_fuzz) echo "$here/seeds/sasl $root/tests/data/entra/token-errors" ;;
    *) echo "tests/fuzz/run.sh: no seeds listed for $1" >&2; return 1 ;;
  esac
}

# The same sanitizer settings as the ASan test build; GLib's process-lifetime allocations are
# not leaks (tests/lsan.supp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}

mkdir -p "$build/fuzz-artifacts"
status=0
for t in $targets; do
  bin=$build/tests/fuzz/$t
  if [ ! -x "$bin" ]; then
    echo "tests/fuzz/run.sh: $bin is not built (cmake --build $build --target fuzz)" >&2
    exit 2
  fi
  corpus=$build/fuzz-corpus/$t
  mkdir -p "$corpus"
  log=$build/fuzz-artifacts/$t.log
  # shellcheck disable=SC2046  # the seed directories are words
  if "$bin" -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
       "$corpus" $(seeds_of "$t") >"$log" 2>&1; then
    echo "fuzz: $t ${duration}s: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
         "corpus $(find "$corpus" -type f | wc -l) inputs"
  else
    echo "fuzz: $t FAILED (input in $build/fuzz-artifacts/, log $log):"
    tail -n 60 "$log"
    status=1
  fi
done
exit $status
