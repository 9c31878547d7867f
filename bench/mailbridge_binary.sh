# File: bench/mailbridge_binary.sh — sourced by the benchmark scripts (run_graph_bench.sh,
# run_ews_bench.sh): sets BIN to the mailbridge binary to measure — $MB_BENCH_MAILBRIDGE when
# set, else a Release `-O2` build in $MB_BENCH_BUILD (default build-bench/) made now. Uses the
# caller's ROOT, log and die.
if [ -n "${MB_BENCH_MAILBRIDGE:-}" ]; then
  BIN=$MB_BENCH_MAILBRIDGE
else
  BUILD=${MB_BENCH_BUILD:-$ROOT/build-bench}
  log "building mailbridge (Release) in $BUILD"
  # -O2, not -O3: see run_ingest_bench.sh (GCC bug 105651 under -Werror).
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" >/dev/null
  ninja -C "$BUILD" -j2 mailbridge >&2
  BIN=$BUILD/cli/mailbridge
  [ -x "$BIN" ] || BIN=$(find "$BUILD" -name mailbridge -type f -perm -u+x | head -n1)
fi
[ -x "$BIN" ] || die "no mailbridge binary at $BIN"
