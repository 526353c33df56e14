-- TCP echo server for the peer benchmark (bench/README.md, workload
-- "echo"): one task per connection on the streams API, as the asyncio
-- peer echo_streams.py does. Listens on 127.0.0.1:PORT, PORT = arg[1].
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local port = assert(tonumber(arg[1]), "usage: lasio bench/echo.lua PORT")

local function handle(reader, writer)
    while true do
        local data = reader:read(65536)
        if data == "" then break end
        writer:write(data)
        writer:drain()
    end
end

local server = lasio.start_server(function(reader, writer)
    local ok, err = pcall(handle, reader, writer)
    if not ok and not lasio.OSError:is(err) then error(err, 0) end
    writer:close()
end, "127.0.0.1", port, { backlog = 1024 })
server:serve_forever()
