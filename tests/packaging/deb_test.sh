#!/usr/bin/env bash
# File: tests/packaging/deb_test.sh — `cpack -G DEB` from the built tree (no second build):
# name, version, Depends, conffiles and maintainer scripts (dpkg-deb -I), contents
# (dpkg-deb -c), then the extracted binary run.
#   deb_test.sh BUILD_DIR PREFIX VERSION
source "$(dirname "$0")/lib.sh"
build=$1 prefix=$2 version=$3
need dpkg-deb dpkg
need dpkg-shlibdeps dpkg-dev
need readelf binutils
[ "$prefix" = /usr ] ||
  skip "this tree installs under $prefix; a .deb needs one configured with -DCMAKE_INSTALL_PREFIX=/usr"

start=$(date +%s)
(cd "$build" && cpack -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1 || fail "cpack: $(cat "$tmp/cpack.log")"
echo "cpack took $(($(date +%s) - start)) s"
deb=$(ls "$tmp"/out/mailbridge_"$version"_*.deb) || fail "no mailbridge_${version}_*.deb in $(ls "$tmp/out")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = mailbridge ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
depends=$(field Depends)
for dep in adduser libc6 libstdc++6 libssl3 libsqlite3-0 libgmime-3.0-0 libcpprest; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/mailbridge/mailbridge.toml ] ||
  fail "conffiles: $(dpkg-deb -I "$deb" conffiles)"
dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm postrm; do
  [ -x "$tmp/control/$script" ] || fail "$script missing or not executable"
  sh -n "$tmp/control/$script" || fail "$script: syntax error"
done
grep -q 'adduser --system' "$tmp/control/postinst" || fail "postinst does not create the user"

dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' >"$tmp/contents"
for entry in '-rwxr-xr-x root/root ./usr/bin/mailbridge' \
    '-rw-r--r-- root/root ./usr/lib/systemd/system/mailbridge.service' \
    '-rw-r----- root/root ./etc/mailbridge/mailbridge.toml' \
    '-rw-r--r-- root/root ./usr/share/doc/mailbridge/examples/mailbridge.toml' \
    '-rw-r--r-- root/root ./usr/share/doc/mailbridge/operations.md'; do
  grep -qxF -- "$entry" "$tmp/contents" || fail "not in the .deb: $entry"
done

dpkg-deb -x "$deb" "$tmp/x"
stripped "$tmp/x/usr/bin/mailbridge"
out=$("$tmp/x/usr/bin/mailbridge" --version) || fail "the extracted binary exited $?"
[ "$out" = "mailbridge $version" ] || fail "--version printed '$out'"
grep -qx 'ExecStart=/usr/bin/mailbridge run --config /etc/mailbridge/mailbridge.toml' \
  "$tmp/x/usr/lib/systemd/system/mailbridge.service" || fail "the packaged unit's ExecStart"
echo "built and checked: $(basename "$deb") ($(stat -c %s "$deb") bytes)"
