-- A client with retries and exponential backoff against a flaky server on
-- the in-process network: the server (testing.listen) drops a request
-- when buggify() says so, the client gives each attempt 1 s, then waits
-- 0.1, 0.2, 0.4 ... s (capped at 5 s) before the next one. Each seed is a
-- different, reproducible run.
-- usage: lasio --virtual-time --seed=3 examples/vt_retry.lua
--        lua5.4 examples/vt_retry.lua [seed ...]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local testing = require "lasio.testing"

local function server(reader, writer)
    while true do
        local line = reader:readline()
        if line == "" then return end
        if not testing.buggify(0.4) then -- else: the request is lost
            lasio.sleep(0.05)
            writer:write("ok " .. line)
        end
    end
end

-- One request, retried with exponential backoff; returns the reply and
-- the number of attempts.
local function request(what)
    local backoff = 0.1
    for attempt = 1, 10 do
        local reader, writer = testing.connect("api", {latency = 0.02})
        writer:write(what .. "\n")
        local ok, reply = pcall(lasio.wait_for, function() return reader:readline() end, 1)
        writer:close()
        if ok then return reply, attempt end
        lasio.sleep(backoff)
        backoff = math.min(backoff * 2, 5)
    end
    error("gave up on " .. what)
end

local function flow()
    local loop = lasio.get_running_loop()
    testing.listen("api", server)
    local attempts = 0
    for i = 1, 5 do
        local reply, n = request("job" .. i)
        attempts = attempts + n
        io.write(("%.2f %s"):format(loop:time(), reply))
    end
    print(("seed %d: 5 requests in %d attempts, %.2f s"):format(testing.seed(), attempts, loop:time()))
    testing.reset()
end

if testing.virtual() then
    flow()
else
    for _, seed in ipairs(#arg > 0 and arg or {"1", "2", "3"}) do
        testing.run(flow, {seed = math.tointeger(tonumber(seed))})
    end
end
