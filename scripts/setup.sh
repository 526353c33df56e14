#!/bin/sh
# Installs the Debian 12 packages lasio needs to build and test, builds it,
# and runs an example. Idempotent: packages already present are left alone.
# Usage: scripts/setup.sh [--no-build]
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential cmake pkg-config liblua5.4-dev lua5.4 libevent-dev
libedit-dev libssl-dev node-llhttp lua-busted openssl ca-certificates curl lua-cjson
lua-check libhiredis-dev redis-server"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
build/lasio examples/hello.lua
