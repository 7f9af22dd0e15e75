#!/bin/sh
# Installs the Debian 12 packages OpenExec builds, tests and runs with.
# Idempotent and quick when everything is already there; needs root (or sudo)
# only when something is missing.
set -eu

PACKAGES="make build-essential nodejs cmake pkg-config clang libclang-rt-14-dev
libh2o-evloop-dev libssl-dev libjansson-dev libsodium-dev libsqlite3-dev
libpq-dev postgresql postgresql-contrib python3 python3-cryptography curl wrk
openssl sqlite3"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
