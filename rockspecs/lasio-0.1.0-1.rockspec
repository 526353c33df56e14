-- LuaRocks: builds the C module lasio.core with CMake and installs it with
-- the Lua files (lasio, lasio.*) into the rocks tree. `luarocks make
-- rockspecs/lasio-0.1.0-1.rockspec` from a checkout. Needs cmake,
-- pkg-config and the development files of Lua 5.4, libevent 2.1, OpenSSL
-- (headers only: libssl is loaded on first use), hiredis (headers only:
-- libhiredis is loaded on the first Redis connection) and libedit (the
-- configure step also describes the lasio command).
-- SPDX-License-Identifier: MIT
rockspec_format = "3.0"
package = "lasio"
version = "0.1.0-1"
source = {
    url = "lasio-0.1.0.tar.gz",
    dir = "lasio-0.1.0",
}
description = {
    summary = "An async runtime for Lua 5.4 on libevent, with asyncio's semantics",
    detailed = [[
Event loop, Future, Task and cancellation as in Python asyncio, on Lua
coroutines: any function can wait without colouring the call chain.
Timers, task groups, timeouts, queues, locks, streams, subprocesses,
signals and worker threads.]],
    license = "MIT",
}
dependencies = {
    "lua >= 5.4, < 5.5",
}
external_dependencies = {
    LIBEVENT = { header = "event2/event.h", library = "event_core" },
    OPENSSL = { header = "openssl/ssl.h" },
    HIREDIS = { header = "hiredis/async.h" },
    LIBEDIT = { header = "histedit.h" },
    LIBPQ = { header = "postgresql/libpq-fe.h" },
}
build = {
    type = "cmake",
    variables = {
        CMAKE_BUILD_TYPE = "Release",
        CMAKE_INSTALL_PREFIX = "$(PREFIX)",
        LASIO_MODULE_ONLY = "ON",
        LASIO_INSTALL_CMOD = "$(LIBDIR)",
        LASIO_INSTALL_LMOD = "$(LUADIR)",
    },
}
