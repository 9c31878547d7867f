# File: tests/packaging/lib.sh — what the packaging tests share: a temporary directory removed
# on exit, fail and skip (ctest's SKIP_RETURN_CODE 77, tests/CMakeLists.txt).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
need() { command -v "$1" >/dev/null || skip "$1 not found (Debian package $2; scripts/setup.sh installs it)"; }
# stripped BINARY — fails when BINARY still has debug sections or a symbol table.
stripped() {
  local sections
  sections=$(readelf -S --wide "$1") || fail "readelf $1"
  if grep -Eq '\.debug_|\.symtab' <<<"$sections"; then fail "$1 is not stripped"; fi
}
