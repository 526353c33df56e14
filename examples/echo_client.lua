-- A TCP echo client: sends each argument as a line and prints what comes
-- back. Usage: lasio examples/echo_client.lua host port message...
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local host, port = arg[1], tonumber(arg[2])
local reader, writer = lasio.open_connection(host, port, { timeout = 5 })
reader:settimeout(5) -- never wait forever for an answer
for i = 3, #arg do
    writer:write(arg[i] .. "\n")
    io.write("echo: ", reader:readline())
end
writer:close()
writer:wait_closed()
