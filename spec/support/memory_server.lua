-- The server of spec/server_memory_spec.lua, in a process of its own so
-- that its memory is the server's alone: lasio.http.serve at its defaults
-- on a free port, printed on stdout. Routes:
--   POST /upload  reads the whole body with req:body() and answers its size
--   GET  /ws      upgrades, then never receives (the queue fills)
--   GET  /mem     a full collection, then "<Lua heap KiB> <RSS KiB>"
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local function rss_kb()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- lasio.run: under stock lua5.4 as under the lasio command
lasio.run(function()
    local srv = lasio.http.serve(function(req, res)
        if req.path == "/upload" then
            res:finish(tostring(#req:body()))
        elseif req.path == "/ws" then
            req:upgrade_websocket() -- its reader task keeps it
            lasio.sleep(3600)
        elseif req.path == "/mem" then
            collectgarbage()
            collectgarbage()
            res:finish(("%d %d"):format(math.floor(collectgarbage("count")),
                rss_kb()))
        else
            res:set_status(404)
            res:finish()
        end
    end, "127.0.0.1", 0)
    io.stdout:write(srv:sockets()[1].port, "\n")
    io.stdout:flush()
    srv:serve_forever()
end)
