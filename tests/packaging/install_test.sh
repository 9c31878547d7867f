#!/usr/bin/env bash
# File: tests/packaging/install_test.sh — `cmake --install --strip` of the build tree into a
# temporary DESTDIR: the expected files where packaging/CMakeLists.txt says, the binary without
# debug sections and running (--version, check-config on the installed example and on the
# installed configuration), and a second install that keeps an edited configuration.
#   install_test.sh BUILD_DIR PREFIX SYSCONFDIR VERSION
source "$(dirname "$0")/lib.sh"
build=$1 prefix=$2 sysconfdir=$3 version=$4
need readelf binutils

root=$tmp/root
DESTDIR=$root cmake --install "$build" --strip >"$tmp/install.log" 2>&1 ||
  fail "cmake --install: $(cat "$tmp/install.log")"
bin=$root$prefix/bin/mailbridge
doc=$root$prefix/share/doc/mailbridge
conf=$root$sysconfdir/mailbridge/mailbridge.toml
for f in "$bin" "$root$prefix/lib/systemd/system/mailbridge.service" \
    "$root$prefix/lib/sysusers.d/mailbridge.conf" "$conf" "$doc/README.md" \
    "$doc/configuration.md" "$doc/operations.md" "$doc/examples/mailbridge.toml"; do
  [ -f "$f" ] || fail "not installed: ${f#"$root"}"
done
[ -x "$bin" ] || fail "$bin is not executable"
stripped "$bin"
cmp -s "$root$prefix/lib/systemd/system/mailbridge.service" "$build/packaging/mailbridge.service" ||
  fail "the installed unit differs from the build tree's"
grep -qx "ExecStart=$prefix/bin/mailbridge run --config $sysconfdir/mailbridge/mailbridge.toml" \
  "$root$prefix/lib/systemd/system/mailbridge.service" || fail "the unit's ExecStart names other paths"
[ "$(stat -c %a "$conf")" = 640 ] || fail "$conf has mode $(stat -c %a "$conf"), not 640"

out=$("$bin" --version) || fail "--version exited $?"
[ "$out" = "mailbridge $version" ] || fail "--version printed '$out'"
# The example names file:secrets/pop.pw beside it.
mkdir -p "$doc/examples/secrets" && echo pw >"$doc/examples/secrets/pop.pw"
out=$(cd "$tmp" && env -u MAILBRIDGE_CONFIG "$bin" --config "$doc/examples/mailbridge.toml" check-config 2>&1) ||
  fail "check-config on the installed example: $out"
grep -q '^OK: 4 mailboxes' <<<"$out" || fail "check-config on the installed example: $out"
# The installed configuration, with its state directory here instead of /var/lib/mailbridge.
mkdir -p "$tmp/state"
sed "s|/var/lib/mailbridge|$tmp/state|" "$conf" >"$tmp/etc.toml"
out=$(MAILBRIDGE_CONFIG=$tmp/etc.toml "$bin" check-config 2>&1) ||
  fail "check-config on the installed configuration: $out"
grep -q "^OK: 0 mailboxes.*; store $tmp/state/mailbridge.db" <<<"$out" || fail "check-config: $out"

echo "# edited by the operator" >>"$conf"
DESTDIR=$root cmake --install "$build" >"$tmp/install2.log" 2>&1 || fail "second cmake --install"
grep -q 'edited by the operator' "$conf" || fail "a second install overwrote $conf"
echo "installed and ran: $bin"
