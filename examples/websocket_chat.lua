-- A WebSocket chat: GET / serves a small page, GET /ws upgrades to a
-- WebSocket; every text message a client sends goes to all the clients as
-- "name: message", where name is the ?name= of the connection. Joins and
-- leaves are announced. Ctrl-C stops it.
-- Usage: lasio examples/websocket_chat.lua [port]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local page = [[<!doctype html><title>lasio chat</title>
<pre id=log></pre><input id=msg autofocus>
<script>
const ws = new WebSocket(`ws://${location.host}/ws?name=${Math.random().toString(36).slice(2, 6)}`);
ws.onmessage = e => { log.textContent += e.data + "\n"; };
msg.onkeydown = e => { if (e.key === "Enter") { ws.send(msg.value); msg.value = ""; } };
</script>
]]

local members = {} -- socket -> name

local function broadcast(text)
    for sock in pairs(members) do
        -- a member that is leaving meanwhile is skipped
        pcall(sock.send, sock, text)
    end
end

local function chat(req)
    local name = req.query:match("name=([%w_-]+)") or "anonymous"
    local sock = req:upgrade_websocket()
    members[sock] = name
    broadcast("* " .. name .. " joined")
    while true do
        local msg, kind = sock:recv()
        if msg == nil then break end
        if kind == "text" then broadcast(name .. ": " .. msg) end
    end
    members[sock] = nil
    broadcast("* " .. name .. " left")
end

local server = lasio.http.serve(function(req, res)
    if req.path == "/ws" then return chat(req) end
    if req.path == "/" then
        res:set_header("Content-Type", "text/html; charset=utf-8")
        return res:finish(page)
    end
    res:set_status(404)
    res:finish("not found\n")
end, "127.0.0.1", tonumber(arg[1]) or 0)
print("listening on 127.0.0.1:" .. server:sockets()[1].port)
io.stdout:flush()
-- Ctrl-C stops at once; SIGTERM (the lasio command) closes the server
-- gracefully: serve_forever returns once the requests in flight are
-- answered, within the server's shutdown_timeout.
server:serve_forever()
