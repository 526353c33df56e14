#!/bin/sh
# Builds lasio and runs the whole test suite with ctest: the busted specs
# inside the lasio binary and under stock lua5.4, the examples, and
# luacheck over the Lua sources.
# LASIO_SANITIZE=1 builds with ASan + UBSan into build-san instead.
# SPDX-License-Identifier: MIT
set -eu
cd "$(dirname "$0")/.."
if [ "${LASIO_SANITIZE:-0}" = 1 ]; then
    dir=build-san
    opts="-DLASIO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
else
    dir=build
    opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
fi
cmake -S . -B "$dir" $opts -DLASIO_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure --timeout 1500
