-- WebSocket throughput over loopback, in one process: a client
-- (lasio.websocket with client = true, so it masks) sends N messages of
-- SIZE bytes to a server that echoes them; the client sends them all and
-- reads the echoes back in a second task. Reports messages and MiB per
-- second of round trips. Usage: lasio bench/websocket.lua [N [SIZE]]
-- SPDX-License-Identifier: MIT
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require "common"
local lasio = require "lasio"
local ws = require "lasio.websocket"

local n = common.arg(1, 100000)
local size = common.arg(2, 16)

lasio.run(function()
    local server = lasio.start_server(function(r, w)
        local s <close> = ws.wrap(r, w, { max_message = 64 * 1024 * 1024 })
        while true do
            local m, kind = s:recv()
            if m == nil then return end
            s:send(m, kind)
        end
    end, "127.0.0.1", 0)
    local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
    local c = ws.wrap(r, w, { client = true, max_message = 64 * 1024 * 1024 })
    local msg = string.rep("x", size)
    local t0 = lasio.time()
    local reader = lasio.spawn(function()
        for _ = 1, n do assert(#c:recv() == size) end
    end)
    for _ = 1, n do c:send(msg, "binary") end
    reader:await()
    local dt = lasio.time() - t0
    c:close()
    server:close()
    common.result({ workload = "websocket", messages = n, size = size,
        msgs_per_s = common.fmt(n / dt, 0),
        mib_per_s = common.fmt(n * size / dt / 1048576, 1) },
        { "workload", "messages", "size", "msgs_per_s", "mib_per_s" })
end)
