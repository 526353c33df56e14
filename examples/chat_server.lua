-- A line-based chat server: a client first sends its name, then every
-- line it sends goes to all the others as "name: line". Joins and leaves
-- are announced. Usage: lasio examples/chat_server.lua [port]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local clients = {} -- writer -> name

local function broadcast(line, except)
    for writer in pairs(clients) do
        if writer ~= except then
            -- a client that left meanwhile is skipped; drain keeps a slow
            -- client from piling up output
            pcall(function()
                writer:write(line .. "\n")
                writer:drain()
            end)
        end
    end
end

local function session(reader, writer)
    writer:write("name? ")
    local name = reader:readline():gsub("%s+$", "")
    if name == "" then return end
    clients[writer] = name
    broadcast("* " .. name .. " joined", writer)
    for line in reader:lines() do
        broadcast(name .. ": " .. line:gsub("\r$", ""), writer)
    end
end

local server = lasio.start_server(function(reader, writer)
    reader:settimeout(300) -- idle clients are let go
    local ok = pcall(session, reader, writer)
    local name = clients[writer]
    clients[writer] = nil
    if name then broadcast("* " .. name .. " left" .. (ok and "" or " (error)")) end
end, "127.0.0.1", tonumber(arg[1]) or 0, { max_connections = 100 })

print(("chat server listening on 127.0.0.1:%d"):format(server:sockets()[1].port))
io.stdout:flush()
server:serve_forever()
