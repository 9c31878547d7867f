#!/usr/bin/env bash
# File: scripts/setup.sh
# Installs every dependency mailbridge needs to build, test, benchmark and run its demo on
# Debian 12. Idempotent: a second run installs nothing and exits quickly.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build pkg-config git
  libcpprest-dev libboost-system-dev libssl-dev openssl
  libcurl4-openssl-dev               # NTLM behind core/http (http_curl.cpp), for EWS
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgmime-3.0-dev libglib2.0-dev
  libsqlite3-dev sqlite3
  libcli11-dev libtomlplusplus-dev libpugixml-dev
  dovecot-core dovecot-imapd dovecot-pop3d
  isync
  fetchmail getmail6
  python3 procps time
  lld                                # the linker of the build (MAILBRIDGE_USE_LLD)
  clang libclang-rt-14-dev pmccabe   # fuzz targets (libFuzzer), scripts/top-length.sh
  nodejs curl
  systemd dpkg-dev                   # packaging tests: systemd-analyze verify, cpack's dpkg-shlibdeps
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

# The test OAuth 2.0 server (tests/harness/oauth/) is oidc-provider on Node.js, with the exact
# packages its package-lock.json pins. `npm ci` runs only when node_modules does not match
# that lock (a stamp holds the lock's hash), so a second run does nothing.
OAUTH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/harness/oauth"
if ! command -v npm >/dev/null; then
  echo "setup: installing npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
# oidc-provider 9 needs Node.js 20.19 or later (Debian 12's own nodejs is 18).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
              process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "setup: Node.js $(node --version) is too old for the test OAuth server;" \
    "install Node.js 20.19 or later" >&2
  exit 1
fi
lock_hash=$(sha256sum "$OAUTH_DIR/package-lock.json" | cut -d' ' -f1)
stamp="$OAUTH_DIR/node_modules/.mb-lock-sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then
  echo "setup: OAuth test server packages present"
else
  echo "setup: installing the OAuth test server's npm packages (npm ci)"
  (cd "$OAUTH_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$stamp"
fi

# The test SMTP server (tests/harness/smtp/) is npm smtp-server on Node.js, pinned the same
# way by its own package-lock.json and stamp.
SMTP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/harness/smtp"
lock_hash=$(sha256sum "$SMTP_DIR/package-lock.json" | cut -d' ' -f1)
stamp="$SMTP_DIR/node_modules/.mb-lock-sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then
  echo "setup: SMTP test server packages present"
else
  echo "setup: installing the SMTP test server's npm packages (npm ci)"
  (cd "$SMTP_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$stamp"
fi
