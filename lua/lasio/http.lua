-- lasio.http: the HTTP/1.1 server and client and WebSocket (docs/API.md,
-- HTTP/1.1 and WebSocket). Each part loads on first use.
-- SPDX-License-Identifier: MIT
local M = {}

local where = {serve = "lasio.http_server", request = "lasio.http_client",
    get = "lasio.http_client", websocket = "lasio.http_client"}

return setmetatable(M, {
    __index = function(t, k)
        local part = where[k]
        if not part then return nil end
        local v = require(part)[k]
        require("lasio.loaded").view(part) -- "lasio.http.get" in messages
        rawset(t, k, v)
        return v
    end,
    -- pairs lists every name (the reference manual's check reads them)
    __pairs = function(t)
        for k in pairs(where) do
            local _ = t[k] -- loads it
        end
        return next, t, nil
    end,
})
