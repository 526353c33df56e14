#!/bin/sh
# Runs the Redis GET/SET benchmark (bench/redis.lua) and its peers
# (bench/peers/redis_asyncio.py, bench/peers/redis_ioredis.js) one after
# the other against one redis-server started here on a free port, without
# persistence, and stops it. SETUP=1 installs the peers first (Debian's
# python3-redis and python3-hiredis, ioredis from npm into
# bench/peers/node_modules).
# Usage: bench/redis.sh [LASIO_BINARY [N [DEPTH [ROUNDS]]]]
# SPDX-License-Identifier: MIT
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
lasio=$(cd "$(dirname "${1:-$root/build/lasio}")" && pwd)/$(basename "${1:-build/lasio}")
n=${2:-100000}
depth=${3:-100}
rounds=${4:-3}
py=/usr/bin/python3 # Debian's, which python3-redis is for

if [ "${SETUP:-0}" = 1 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq redis-server python3-redis python3-hiredis nodejs npm
    npm install --prefix "$root/bench/peers" --no-audit --no-fund
fi

dir=$(mktemp -d)
port=$((20000 + $$ % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize yes \
    --pidfile "$dir/redis.pid"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done

# interleaved rounds: the machine is shared, so each round measures all
# three within seconds of each other
for r in $(seq "$rounds"); do
    echo "round $r"
    "$lasio" "$root/bench/redis.lua" "$port" "$n" "$depth"
    $py "$root/bench/peers/redis_asyncio.py" "$port" "$((n / 5))" "$depth"
    node "$root/bench/peers/redis_ioredis.js" "$port" "$n" "$depth"
done
