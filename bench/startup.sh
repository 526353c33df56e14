#!/bin/sh
# Startup: `lasio -e ''` against `lua5.4 -e ''`, ROUNDS interleaved rounds
# of N runs each (the peer kit's method: wall time of N runs in a row);
# prints each per-run time, the medians and their ratio. The machine is
# noisy: compare ratios from one run, not absolute figures across runs.
# Usage: bench/startup.sh [lasio binary] ; STARTUP_N [500] ROUNDS [5]
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/lasio}
n=${STARTUP_N:-500}
rounds=${ROUNDS:-5}
LUA54=${LUA54:-lua5.4}
per_run() { # per_run CMD...: ms per run of N runs in a row
    t0=$(date +%s%N)
    i=0
    while [ $i -lt "$n" ]; do
        "$@" -e '' >/dev/null 2>&1 </dev/null
        i=$((i + 1))
    done
    t1=$(date +%s%N)
    echo "$t0 $t1 $n" | awk '{ printf "%.3f", ($2 - $1) / 1e6 / $3 }'
}
lua_ms="" lasio_ms=""
r=0
while [ $r -lt "$rounds" ]; do
    lua_ms="$lua_ms $(per_run "$LUA54")"
    lasio_ms="$lasio_ms $(per_run "$bin")"
    r=$((r + 1))
done
median() { echo "$@" | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ml=$(median $lua_ms)
mb=$(median $lasio_ms)
echo "lua5.4 ms/run:$lua_ms"
echo "lasio  ms/run:$lasio_ms"
echo "$ml $mb $n $rounds" | awk '{ printf "RESULT n=%d rounds=%d lua54_ms=%.3f lasio_ms=%.3f ratio=%.2f\n", $3, $4, $1, $2, $2 / $1 }'
