#!/bin/sh
# Builds the fuzz targets of fuzz/ with clang (libFuzzer, ASan + UBSan)
# into build-fuzz and runs each for SECONDS (default 60), starting from
# its seed corpus fuzz/corpus/<target>/ and the inputs earlier runs kept
# in build-fuzz/corpus/<target>/. Leaks are not checked here: the Lua
# states live across inputs, so every input would look like a leak (the
# sanitizer build's suite checks leaks). Prints the executions of each target;
# exits non-zero when one crashed, hung or broke an invariant (the
# input is saved as build-fuzz/artifacts/<target>-crash-...).
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]] (SECONDS 0: build only)
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
dir=build-fuzz
cc=$(command -v clang || command -v clang-14)
cmake -S . -B "$dir" -DLASIO_FUZZ=ON -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLASIO_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" --target fuzz_targets >"$dir/build.log" ||
    { cat "$dir/build.log"; exit 1; }

[ "$secs" = 0 ] && exit 0 # built only

targets=${*:-$(for f in "$dir"/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] && basename "$f" | sed 's/^fuzz_//'
done)}
mkdir -p "$dir/artifacts"
failed=""
for t in $targets; do
    mkdir -p "$dir/corpus/$t"
    # the parser targets parse each input once per split, the WebSocket
    # ones send it twice, in pieces: smaller inputs
    case $t in
    http_request | http_response) maxlen=2048 ;;
    websocket_*) maxlen=1024 ;;
    *) maxlen=4096 ;;
    esac
    log="$dir/fuzz-$t.log"
    if "$dir/fuzz_$t" -max_total_time="$secs" -max_len="$maxlen" \
        -timeout=30 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$t-" \
        "$dir/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed="$failed $t"
        tail -n 60 "$log"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    printf '%-18s %s  %s executions, %s/s\n' "$t" "$status" "${runs:-?}" \
        "${rate:-?}"
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (inputs in $dir/artifacts/)"
    exit 1
fi
