#!/bin/sh
# PostgreSQL client benchmark (bench/README.md, "PostgreSQL"): starts a
# throw-away server (spec/pg_server.lua), fills the table kv, then runs
# lasio (bench/pg.lua), asyncpg and node-postgres (bench/peers/) in turn,
# plain (1 in flight) and concurrent (100), REPS rounds each, one RESULT
# line per run. Peers: python3-asyncpg (Debian) and the npm package pg
# (scripts/setup.sh installs both; node's into bench/peers/node_modules).
# Usage: bench/pg.sh [lasio binary]   env: N (20000), REPS (3)
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/lasio}
n=${N:-20000}
reps=${REPS:-3}
export LUA_PATH="./bench/?.lua;./spec/?.lua;./lua/?.lua;./lua/?/init.lua;;"
info=$(mktemp)
# the server outlives this lua5.4 process: pg_server.stop runs at the end
lua5.4 -e '
local P = require("pg_server")
local s = P.start()
P.psql(s, "CREATE TABLE kv (id int PRIMARY KEY, v text); "
    .. "INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
io.write(s.dir, " ", s.port, " ", s.data, "\n")' >"$info"
read -r dir port data <"$info"
rm -f "$info"
stop() {
    lua5.4 -e "require('pg_server').stop({dir = '$dir', data = '$data',
        bindir = require('pg_server').bindir(),
        run = (io.popen('id -u'):read('l') == '0')
            and 'env -u LD_PRELOAD runuser -u nobody -- '
            or 'env -u LD_PRELOAD '})"
}
trap stop EXIT
conninfo="host=$dir port=$port user=postgres dbname=postgres"
for inflight in 1 100; do
    for _ in $(seq "$reps"); do
        "$bin" bench/pg.lua "$conninfo" "$n" "$inflight"
        /usr/bin/python3 bench/peers/pg_asyncpg.py "$dir" "$port" "$n" "$inflight"
        (cd bench/peers && node pg_node.js "$dir" "$port" "$n" "$inflight")
    done
done
