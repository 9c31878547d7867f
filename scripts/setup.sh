#!/usr/bin/env bash
# File: scripts/setup.sh
# Installs every dependency mailbridge needs to build, test, benchmark and run its demo on
# Debian 12. Idempotent: a second run installs nothing and exits quickly.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build pkg-config git
  libcpprest-dev libboost-system-dev libssl-dev openssl
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgmime-3.0-dev libglib2.0-dev
  libsqlite3-dev sqlite3
  libcli11-dev libtomlplusplus-dev libpugixml-dev
  dovecot-core dovecot-imapd dovecot-pop3d
  isync
  python3 procps time
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Dovecot's package starts a system-wide service on install; we never use it (our tests run
  # a private instance on loopback), so keep the package scripts from starting it.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
