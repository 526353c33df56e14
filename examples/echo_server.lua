-- A TCP echo server: every connection runs in its own task and gets back
-- what it sends. Usage: lasio examples/echo_server.lua [port]
-- (port 0 or none: a free one). Ctrl-C stops it.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local server = lasio.start_server(function(reader, writer)
    local peer = writer:get_extra_info("peername")
    print(("connection from %s:%d"):format(peer.addr, peer.port))
    while true do
        local data = reader:read(4096)
        if data == "" then break end -- the client closed its side
        writer:write(data)
        writer:drain()
    end
    print("connection closed")
end, "127.0.0.1", tonumber(arg[1]) or 0)

print(("echo server listening on 127.0.0.1:%d"):format(server:sockets()[1].port))
io.stdout:flush()
server:serve_forever() -- until Ctrl-C cancels the main task
