#!/bin/sh
# Soak run: a mixed workload with faults against a lasio server process
# for MINUTES, reporting its fds, RSS and Lua heap every INTERVAL seconds
# (default 5) and failing on drift (scripts/soak.lua says what drift is).
# Usage: scripts/soak.sh MINUTES [INTERVAL [CLIENTS]]; LASIO_BIN names the
# lasio binary (default build/lasio). CI runs two minutes (ctest: soak).
# For hours: scripts/soak.sh 240 60
# SPDX-License-Identifier: MIT
set -eu
if [ $# -lt 1 ]; then
    echo "usage: scripts/soak.sh MINUTES [INTERVAL [CLIENTS]]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LASIO_BIN:-$root/build/lasio}
cd "$root"
exec "$bin" scripts/soak.lua "$@"
