#!/usr/bin/env bash
# webdeps.sh: what the browser tests and the app's type check need.
# Installs Debian's chromium when /usr/bin/chromium is missing (as testenv.sh
# installs MariaDB) and runs `npm ci` in e2e/ when its node_modules is missing
# or older than package-lock.json. Under CI=true a failure here fails the run;
# elsewhere it warns and the browser tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "webdeps: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
}

if [ ! -x /usr/bin/chromium ]; then
  echo "webdeps: installing chromium" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } ||
    fail "could not install chromium"
fi

command -v npm >/dev/null 2>&1 || fail "npm is missing (install nodejs and npm)"
if [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules ]; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in e2e/ failed"
  touch e2e/node_modules
fi

# The app's JSDoc types, checked by TypeScript (no build step: the checker only reads).
(cd static && ../e2e/node_modules/.bin/tsc -p jsconfig.json) || { echo "webdeps: tsc --checkJs failed" >&2; exit 1; }
