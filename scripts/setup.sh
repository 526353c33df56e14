#!/bin/sh
# Installs the Debian 12 packages lasio needs to build and test, builds it,
# and runs an example. Idempotent: packages already present are left alone.
# Usage: scripts/setup.sh [--no-build]
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential cmake pkg-config liblua5.4-dev lua5.4 libevent-dev
libedit-dev libssl-dev node-llhttp lua-busted openssl ca-certificates curl lua-cjson
lua-check nginx"
# the PostgreSQL client's specs and benchmark peer
PACKAGES="$PACKAGES postgresql libpq-dev python3-asyncpg"
# the Redis client's specs
PACKAGES="$PACKAGES libhiredis-dev redis-server"
# the fuzz targets (scripts/fuzz.sh): clang and its libFuzzer runtime
PACKAGES="$PACKAGES clang libclang-rt-14-dev"
# the peers of the interoperability specs (spec/interop_*_spec.lua)
PACKAGES="$PACKAGES python3 python3-websockets dnsmasq-base nodejs"
# the trace viewer's page, opened headless by spec/trace_view_spec.lua
PACKAGES="$PACKAGES chromium"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
# npm: Debian's, unless the installed nodejs brings its own
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # The tests start their own servers (nginx, ...) on free ports: keep
    # the packages' install scripts from starting system services, as on
    # a container, unless the machine already has a policy for that.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        trap "$SUDO rm -f $policy" EXIT
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# node-postgres, the peer of bench/pg.sh (project-local, when npm exists)
if command -v npm >/dev/null 2>&1 && [ ! -d bench/peers/node_modules ]; then
    (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "setup: npm install in bench/peers failed (bench/pg.sh needs it)" >&2
fi

# the node peers of the interoperability specs, into tests/interop/node_modules
[ -d tests/interop/node_modules/ws ] ||
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
build/lasio examples/hello.lua
