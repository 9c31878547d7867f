#!/usr/bin/env bash
# File: scripts/test.sh — installs what is missing, builds, and runs every test: first the
# normal build, then the same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
# The last line printed is ctest's summary of the whole run.
#
#   scripts/test.sh              # both builds
#   MB_SKIP_SANITIZE=1 scripts/test.sh   # the normal build only (a quicker local loop)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
jobs=$(nproc)

build_and_test() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

status=0
if [ -z "${MB_SKIP_SANITIZE:-}" ]; then
  echo "== build and test with AddressSanitizer + UBSan (build-asan/) =="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # GLib keeps process-lifetime allocations (type system) that LeakSanitizer reports.
  export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
  build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DMAILBRIDGE_SANITIZE=ON \
    -DMAILBRIDGE_BUILD_BENCH=OFF || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi

echo "== build and test (build/) =="
build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1
exit $status
