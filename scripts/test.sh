#!/usr/bin/env bash
# File: scripts/test.sh — installs what is missing, checks the length limits, builds and runs
# every test: the fuzz targets briefly, then the suite under AddressSanitizer and
# UndefinedBehaviorSanitizer, then the normal build. The last line printed is ctest's summary
# of the normal build.
#
#   scripts/test.sh                      # everything
#   MB_SKIP_SANITIZE=1 scripts/test.sh   # without the sanitizer build (a quicker local loop)
#   MB_SKIP_FUZZ=1 scripts/test.sh       # without the fuzz build and runs
#   MB_FUZZ_SECONDS=60 scripts/test.sh   # each fuzz target longer (default 5 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
jobs=$(nproc)
status=0

# Function and file lengths (pmccabe; well under a second): scripts/top-length.sh has the limits.
echo "== length limits (scripts/top-length.sh) =="
bash scripts/top-length.sh || status=1

# The test builds keep line tables only (-g1): sanitizer reports and backtraces still name
# file:line, and the build is a third faster (see MAILBRIDGE_LINE_TABLES_ONLY). The libraries
# compile in unity batches (MAILBRIDGE_UNITY), about half their compile time.
build_and_test() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja -DMAILBRIDGE_LINE_TABLES_ONLY=ON -DMAILBRIDGE_UNITY=ON \
    "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

if [ -z "${MB_SKIP_FUZZ:-}" ]; then
  # A small clang build of the fuzz targets and only the sources they exercise (libFuzzer,
  # ASan, UBSan), each run for a few seconds from tests/data/ so that none can rot.
  echo "== fuzz targets, ${MB_FUZZ_SECONDS:-5} s each (build-fuzz/, tests/fuzz/README.md) =="
  if cmake -S "$root" -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
       -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only" \
       -DMAILBRIDGE_FUZZ=ON -DMAILBRIDGE_WERROR=OFF -DMAILBRIDGE_BUILD_TESTS=OFF \
       -DMAILBRIDGE_BUILD_BENCH=OFF >/dev/null &&
     cmake --build build-fuzz -j "$jobs" --target fuzz; then
    bash tests/fuzz/run.sh "${MB_FUZZ_SECONDS:-5}" build-fuzz || status=1
  else
    status=1
  fi
fi

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
