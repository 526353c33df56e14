-- http_api: a small JSON API on lasio.http.serve, the realistic twin of
-- http.lua's hello (bench/README.md). Its nginx+lua twin answers the same
-- requests the same way (bench/peers/http_api_nginx.conf.in); the load is
-- bench/peers/http_api_wrk.lua. Routes:
--   GET  /api/users/<id>  -> {"id", "name", "roles", "active", "request_id"}
--                            (request_id: the X-Request-Id request header)
--   GET  /api/health      -> {"status": "ok"}
--   POST /api/echo        -> {"received": <number of fields of the JSON body>}
--   anything else         -> 404 {"error": "not found"}
-- Listens on 127.0.0.1:PORT, PORT = arg[1].
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local json = require "cjson"
local port = assert(tonumber(arg[1]), "usage: lasio bench/http_api.lua PORT")

local ROLES = {"reader", "writer"}

local function reply(res, status, value)
    res:set_status(status)
    res:set_header("Content-Type", "application/json")
    res:finish(json.encode(value))
end

local function user(req, res, id)
    reply(res, 200, {id = tonumber(id), name = "user" .. id, roles = ROLES,
        active = true, request_id = req.headers["x-request-id"]})
end

local function echo(req, res)
    local ok, body = pcall(json.decode, req:body())
    if not ok or type(body) ~= "table" then
        return reply(res, 400, {error = "expected a JSON object"})
    end
    local n = 0
    for _ in pairs(body) do n = n + 1 end
    reply(res, 200, {received = n})
end

local server = lasio.http.serve(function(req, res)
    local path, method = req.path, req.method
    local id = path:match("^/api/users/(%d+)$")
    if id and method == "GET" then return user(req, res, id) end
    if path == "/api/health" and method == "GET" then
        return reply(res, 200, {status = "ok"})
    end
    if path == "/api/echo" and method == "POST" then return echo(req, res) end
    reply(res, 404, {error = "not found"})
end, "127.0.0.1", port, {backlog = 1024})
server:serve_forever()
