#!/bin/sh
# Runs the busted specs either inside the lasio binary (MODE=lasio) or with
# stock lua5.4 loading the C module lasio/core.so (MODE=lua5.4).
# Usage: spec/run.sh MODE BUILD_DIR [busted args...]
# SPDX-License-Identifier: MIT
set -eu
mode=$1
build=$(cd "$2" && pwd)
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
export LUA_CPATH="$build/lua/?.so;;"
export LASIO_BUILD="$build"
export LASIO_ROOT="$root"
case $mode in
lasio) interp="$build/lasio" ;;
lua5.4) interp=lua5.4 ;;
*) echo "spec/run.sh: unknown mode '$mode' (lasio or lua5.4)" >&2; exit 2 ;;
esac
# Under the sanitizers stock lua5.4 needs the ASan runtime loaded first, and
# time-based hang detectors get more slack.
if [ -f "$build/sanitized" ]; then
    export LASIO_TEST_TIME_FACTOR="${LASIO_TEST_TIME_FACTOR:-5}"
    export LASIO_SANITIZED=1
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    # stock lua5.4 (this mode, and children the specs start) loads the
    # instrumented module: the sanitizer runtimes must come first
    LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    export LD_PRELOAD
fi
export LASIO_TEST_LUA="$interp"
export LASIO_TEST_MODE="$mode"
# spec files or folders among the arguments replace the default "spec"
targets=spec
for a in "$@"; do
    case $a in *.lua | */) targets= ;; esac
    [ -d "$a" ] && targets=
done
exec busted --lua="$interp" "$@" $targets
