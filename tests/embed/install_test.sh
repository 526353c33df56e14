#!/bin/sh
# The installation test: `cmake --install` into a temporary prefix, then
# require "lasio" from stock lua5.4 with LUA_PATH/LUA_CPATH on the prefix,
# the installed lasio command, pkg-config --cflags --libs lasio, and the
# embed example compiled against the installed header and libraries
# (shared and static) with its output checked; the man page renders.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
# SPDX-License-Identifier: MIT
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; fail "cmake --install failed"; }
libdir=$prefix/lib
[ -d "$libdir/pkgconfig" ] || libdir=$(dirname "$(find "$prefix" -name lasio.pc)")/..
for f in bin/lasio include/lasio.h share/lua/5.4/lasio/init.lua \
    share/man/man1/lasio.1; do
    [ -f "$prefix/$f" ] || fail "missing $f"
done
for f in liblasio.a liblasio.so pkgconfig/lasio.pc lua/5.4/lasio/core.so; do
    [ -e "$libdir/$f" ] || fail "missing lib/$f"
done

# Under the sanitizers the installed objects are instrumented.
cflags=""
if [ -f "$build/sanitized" ]; then
    LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    export LD_PRELOAD
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
    cflags="-fsanitize=address,undefined"
fi

# stock lua5.4 with the module from the prefix only
out=$(cd "$tmp" && env -u LUA_INIT \
    LUA_PATH="$prefix/share/lua/5.4/?.lua;$prefix/share/lua/5.4/?/init.lua" \
    LUA_CPATH="$libdir/lua/5.4/?.so" lua5.4 -e '
local lasio = require "lasio"
assert(package.searchpath("lasio.core", package.cpath):find("prefix", 1, true))
print(lasio.run(function()
    local t = lasio.spawn(function() lasio.sleep(0.01) return 40 end)
    return t:await() + 2
end))')
[ "$out" = 42 ] || fail "lua5.4 printed '$out'"

# the installed command, from elsewhere
out=$(cd "$tmp" && "$prefix/bin/lasio" -e 'lasio.sleep(0.001) print("cli")')
[ "$out" = cli ] || fail "lasio printed '$out'"
unset LD_PRELOAD

# pkg-config, and the example against the installed header and libraries
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs lasio) || fail "pkg-config failed"
found=
for f in $flags; do
    case $f in -I*) [ -f "${f#-I}/lasio.h" ] && found=yes ;; esac
done
[ -n "$found" ] || fail "no -I with lasio.h in: $flags"
# OpenSSL is loaded on first use (src/net/tls_dl.c): neither lasio.pc nor the
# installed objects ask for it
case $(pkg-config --print-requires --print-requires-private lasio) in
*ssl*) fail "lasio.pc requires OpenSSL" ;;
esac
for f in "$libdir/liblasio.so" "$libdir/lua/5.4/lasio/core.so" \
    "$prefix/bin/lasio"; do
    if readelf -d "$f" | grep NEEDED | grep -q -e libssl -e libcrypto; then
        fail "$f links OpenSSL"
    fi
done
expected="kitchen: 13.5
garage: 29.5
attic: 22.5
read in parallel: yes
sum of 1..1000000 = 500000500000
host heartbeats seen: yes
host: sensors.lua finished
host: heartbeat still armed: yes"
cp "$src/examples/embed/sensors.lua" "$tmp/"
# shared library
cc $cflags -o "$tmp/host" "$src/examples/embed/host.c" $flags -lpthread ||
    fail "cannot build the example (shared)"
out=$(cd "$tmp" && LD_LIBRARY_PATH="$libdir" ./host sensors.lua)
[ "$out" = "$expected" ] || fail "example (shared) printed: $out"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/host" | grep -q "liblasio.so.0 => $prefix" ||
    fail "not linked to the installed liblasio.so"
# static library
cc $cflags -o "$tmp/host_static" "$src/examples/embed/host.c" \
    $(pkg-config --cflags lasio) "$libdir/liblasio.a" \
    $(pkg-config --libs $(pkg-config --print-requires lasio | cut -d' ' -f1)) \
    -lpthread -lresolv -lm ||
    fail "cannot build the example (static)"
out=$(cd "$tmp" && ./host_static sensors.lua)
[ "$out" = "$expected" ] || fail "example (static) printed: $out"

# the man page renders and names every option of --help (rendered with
# man or groff where installed, else read from its source)
page=$prefix/share/man/man1/lasio.1
if command -v man >/dev/null 2>&1 &&
    MANPAGER=cat man -l "$page" >"$tmp/man.raw" 2>/dev/null; then :
elif command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 "$page" >"$tmp/man.raw" 2>/dev/null
else
    sed 's/\\//g' "$page" >"$tmp/man.raw"
fi
sed 's/.\x08//g' "$tmp/man.raw" >"$tmp/man.txt"
grep -q "asyncio" "$tmp/man.txt" || fail "the man page did not render"
for opt in $("$build/lasio" --help | grep -o '^  -[-a-zA-Z]*' | sort -u); do
    grep -q -- "$opt" "$tmp/man.txt" || fail "man page lacks $opt"
done
echo "install_test: ok ($prefix)"
