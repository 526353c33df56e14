#!/bin/sh
# The http_api workload: bench/http_api.lua on lasio against its nginx+lua
# twin (bench/peers/http_api_nginx.conf.in), one after the other, A B A B,
# under the same wrk load (bench/peers/http_api_wrk.lua). Before timing,
# both must give the same status and JSON for every route. Prints one
# RESULT line per run: requests per second, the server's CPU use (1.00 =
# one core busy for the whole run) and requests per server CPU-second.
# Usage: bench/http_api.sh [lasio binary]
# Env: REPS (2), SECS (10), CONNS (64), PORT (18095), NGINX (nginx).
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/lasio}
reps=${REPS:-2}
secs=${SECS:-10}
conns=${CONNS:-64}
port=${PORT:-18095}
nginx=${NGINX:-nginx}
hz=$(getconf CLK_TCK)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cpath="$(dirname "$(find /usr/lib -path '*/lua/5.1/cjson.so' | head -1)")/?.so"

# CPU ticks of a process and its children still running.
ticks() {
    total=0
    for pid in "$1" $(pgrep -P "$1" || true); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

start() { # which
    if [ "$1" = lasio ]; then
        "$bin" bench/http_api.lua "$port" &
    else
        mkdir -p "$dir/logs" "$dir/tmp"
        sed -e "s|@PORT@|$port|" -e "s|@CPATH@|$cpath|" \
            bench/peers/http_api_nginx.conf.in >"$dir/nginx.conf"
        "$nginx" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    fi
    server=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/api/health"; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "$1 did not start" >&2; exit 1; }
        sleep 0.05
    done
}

stop() {
    kill -TERM "$server"
    wait "$server" || true
}

# status and body of each route, as a JSON-insensitive-to-key-order line
answers() {
    for req in "GET /api/users/42" "GET /api/health" "GET /nope" \
        "POST /api/echo" "POST /api/users/1"; do
        set -- $req
        data=""
        [ "$1" = POST ] && data='{"a":1,"b":[2]}'
        curl -s -X "$1" -H 'X-Request-Id: r1' -H 'Content-Type: application/json' \
            ${data:+--data-binary "$data"} \
            -w ' %{http_code} %{content_type}\n' "http://127.0.0.1:$port$2" |
            lua5.4 -e 'local l = io.read("a"); local t = {}
                for c in l:gmatch(".") do t[#t + 1] = c end
                table.sort(t); io.write(table.concat(t), "\n")'
    done
}

start lasio
answers >"$dir/lasio.txt"
stop
start nginx
answers >"$dir/nginx.txt"
stop
if ! cmp -s "$dir/lasio.txt" "$dir/nginx.txt"; then
    echo "http_api: lasio and its nginx twin answer differently" >&2
    diff "$dir/lasio.txt" "$dir/nginx.txt" >&2 || true
    exit 1
fi

url="http://127.0.0.1:$port"
for rep in $(seq "$reps"); do
    for which in lasio nginx; do
        start "$which"
        wrk -t1 -c"$conns" -d1s -s bench/peers/http_api_wrk.lua "$url" >/dev/null
        t0=$(ticks "$server")
        out=$(wrk -t1 -c"$conns" -d"${secs}s" -s bench/peers/http_api_wrk.lua "$url")
        t1=$(ticks "$server")
        stop
        echo "$out" | awk -v w="$which" -v rep="$rep" -v t0="$t0" -v t1="$t1" \
            -v hz="$hz" -v s="$secs" '
            /Requests\/sec:/ { rate = $2 }
            /Non-2xx/ { bad = $NF }
            END {
                cpu = (t1 - t0) / hz / s
                printf "RESULT workload=http_api server=%s rep=%d req_per_s=%.0f server_cpu=%.2f per_server_cpu_s=%.0f non2xx=%d\n",
                    w, rep, rate, cpu, (cpu > 0 ? rate / cpu : 0), bad }'
    done
done
