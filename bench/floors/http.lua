-- The floor under the HTTP target (issue 9), in plain Lua 5.4: the Lua
-- objects one request needs under lasio's HTTP API (docs/API.md, Server:
-- a request table with its headers table, a response object whose methods
-- the handler calls, and a coroutine for the handler's task), with no
-- parsing, no I/O, no event loop and no scheduler. "nocoro" leaves the
-- coroutine out. Prints the CPU microseconds per request.
-- usage: lua5.4 bench/floors/http.lua [N [nocoro]]   (or under build/lasio)
-- SPDX-License-Identifier: MIT
local n = tonumber(arg[1]) or 1000000
local nocoro = arg[2] == "nocoro"
local create, resume = coroutine.create, coroutine.resume

local Response = {}
Response.__index = Response
function Response:set_header(name, value)
    local h = self.headers
    h[#h + 1], h[#h + 2] = name, value
end
function Response:finish(body)
    self.body, self.finished = body, true
end

local function handler(_, res)
    res:set_header("Content-Type", "text/plain")
    res:finish("hello")
end

local t0 = os.clock()
for _ = 1, n do
    local req = {method = "GET", target = "/", path = "/", query = "",
        version = "1.1", headers = {host = "127.0.0.1:8080"},
        keep_alive = true}
    local res = setmetatable({status = 200, headers = {}, finished = false},
        Response)
    if nocoro then
        handler(req, res)
    else
        resume(create(handler), req, res)
    end
end
local secs = os.clock() - t0
print(("RESULT n=%d mode=%s us_per_request=%.3f"):format(n,
    nocoro and "nocoro" or "coroutine", secs / n * 1e6))
