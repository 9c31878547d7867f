#!/usr/bin/env bash
# File: tests/packaging/unit_test.sh — the systemd unit (packaging/mailbridge.service as
# configured in the build tree): every hardening directive docs/operations.md promises, and
# `systemd-analyze verify` without a single warning (it exits 0 on unknown keys and bad values,
# so its output must be empty). ExecStart is pointed at the built binary, because verify checks
# that it exists.
#   unit_test.sh BUILD_UNIT BUILT_BINARY
source "$(dirname "$0")/lib.sh"
unit=$1 binary=$2
need systemd-analyze systemd

for line in 'User=mailbridge' 'Group=mailbridge' 'StateDirectory=mailbridge' \
    'ProtectSystem=strict' 'ProtectHome=true' 'PrivateTmp=true' 'PrivateDevices=true' \
    'NoNewPrivileges=true' 'ProtectKernelTunables=true' 'ProtectKernelModules=true' \
    'ProtectKernelLogs=true' 'ProtectControlGroups=true' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'RestrictNamespaces=true' \
    'LockPersonality=true' 'MemoryDenyWriteExecute=true' 'SystemCallFilter=@system-service' \
    'CapabilityBoundingSet=' 'Restart=on-failure' 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$line" "$unit" || fail "$unit lacks the line: $line"
done
grep -Eqx 'TimeoutStopSec=[0-9]+s?' "$unit" || fail "$unit lacks TimeoutStopSec="
grep -Eqx 'LimitNOFILE=[0-9]{5,}' "$unit" || fail "$unit lacks LimitNOFILE= of at least 10000"
grep -Eqx 'ExecStart=/[^ ]*/mailbridge run --config /[^ ]*/mailbridge/mailbridge.toml' "$unit" ||
  fail "$unit: ExecStart is not '<bindir>/mailbridge run --config <sysconfdir>/mailbridge/mailbridge.toml'"

verify() {
  sed "s|^ExecStart=[^ ]*|ExecStart=$binary|" "$1" >"$tmp/mailbridge.service"
  systemd-analyze verify "$tmp/mailbridge.service" 2>&1
}
out=$(verify "$unit") || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
# The check can fail: a value systemd cannot parse is reported.
sed 's/^ProtectSystem=strict$/ProtectSystem=stricter/' "$unit" >"$tmp/broken.service"
out=$(verify "$tmp/broken.service") || true
[ -n "$out" ] || fail "systemd-analyze verify did not report ProtectSystem=stricter"
echo "unit verified: $unit"
