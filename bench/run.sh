#!/bin/sh
# Runs the project's own workloads alone (no peers needed) and prints their
# RESULT lines: a quick check after a change. The comparison with peer
# runtimes uses the peer benchmark kit outside this repository (see
# bench/README.md). Usage: bench/run.sh [lasio binary]; the N sizes are the
# kit's defaults.
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/lasio}
"$bin" bench/spawn.lua "${SPAWN_N:-200000}"
"$bin" bench/spawn_eager.lua "${SPAWN_N:-200000}"
"$bin" bench/pingpong.lua "${PINGPONG_M:-1000000}"
"$bin" bench/timers.lua "${TIMERS_N:-200000}"
"$bin" bench/timers.lua "${TIMERS_PRECISION_N:-1000}"
"$bin" bench/idle.lua "${IDLE_N:-100000}"
bench/startup.sh "$bin"
# the realistic HTTP workload against its nginx+lua twin, where both exist
if command -v nginx >/dev/null && command -v wrk >/dev/null &&
    [ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ]; then
    bench/http_api.sh "$bin"
fi
