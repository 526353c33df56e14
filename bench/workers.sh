#!/bin/sh
# The HTTP workload (bench/http.lua) under `lasio --workers N`, for each N
# given: wrk's requests per second, and the CPU the workers used (the sum
# over the worker processes, in cores: 1.00 = one core busy for the whole
# run) with requests per server CPU-second. Shows how far the workers
# scale on this machine; the load generator runs on the same machine, so
# on two cores it takes part of the second one.
# Usage: bench/workers.sh [lasio binary] [N...]   (default N: 1 2)
# Env: SECS (10), CONNS (128), THREADS (2), PORT (18090).
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/lasio}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 1 2
secs=${SECS:-10}
conns=${CONNS:-128}
threads=${THREADS:-2}
port=${PORT:-18090}
hz=$(getconf CLK_TCK)

# CPU ticks (user + system) of the supervisor's children so far.
worker_ticks() {
    total=0
    for pid in $(pgrep -P "$1"); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

for n in "$@"; do
    "$bin" --workers "$n" bench/http.lua "$port" &
    sup=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "workers=$n: the server did not start" >&2; exit 1; }
        sleep 0.05
    done
    wrk -t"$threads" -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null # warm-up
    t0=$(worker_ticks $sup)
    rate=$(wrk -t"$threads" -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/" |
        awk '/Requests\/sec:/ {print $2}')
    t1=$(worker_ticks $sup)
    kill -TERM $sup
    wait $sup || true
    awk -v n="$n" -v r="$rate" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v s="$secs" 'BEGIN {
        cpu = (t1 - t0) / hz / s
        printf "RESULT workers=%d req_per_s=%.0f server_cpu=%.2f per_server_cpu_s=%.0f\n",
            n, r, cpu, (cpu > 0 ? r / cpu : 0) }'
done
