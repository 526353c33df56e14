-- The application behind the nginx front of examples/deploy/: an HTTP
-- service that names the instance that answered. Run one per port (each
-- may itself be `lasio --workers N`); nginx balances them.
--   GET /         -> "hello from NAME"
--   GET /health   -> "ok" (for a load balancer's checks)
-- Usage: lasio examples/deploy/app.lua PORT NAME
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local port = tonumber(arg[1])
local name = arg[2]
if not port or not name then
    io.stderr:write("usage: lasio examples/deploy/app.lua PORT NAME\n")
    os.exit(2)
end

local server = lasio.http.serve(function(req, res)
    res:set_header("Content-Type", "text/plain")
    if req.path == "/health" then return res:finish("ok\n") end
    if req.path ~= "/" then
        res:set_status(404)
        return res:finish("not found\n")
    end
    res:finish("hello from " .. name .. "\n")
end, "127.0.0.1", port)
print(("%s listening on 127.0.0.1:%d"):format(name, port))
io.stdout:flush()
server:serve_forever()
