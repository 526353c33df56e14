-- Redis GET/SET from one connection: requests per client CPU-second,
-- plain (one command in flight) and pipelined (batches of DEPTH commands
-- in flight). Usage: lasio bench/redis.lua PORT [N [DEPTH]]. The peers
-- (bench/peers/redis_asyncio.py, bench/peers/redis_ioredis.js) run the
-- same workload; bench/redis.sh runs all three against one server.
-- SPDX-License-Identifier: MIT
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local common = require "common"
local lasio = require "lasio"

local port = common.arg(1, 6379)
local n = common.arg(2, 100000)
local depth = common.arg(3, 100)

lasio.run(function()
    local client = lasio.redis.connect("redis://127.0.0.1:" .. port)
    local value = string.rep("v", 16)
    client:call("SET", "bench:k", value)

    -- plain: one command at a time, SET and GET in turn
    local cpu0, t0 = os.clock(), lasio.get_running_loop():time()
    for i = 1, n do
        if i % 2 == 0 then
            client:call("SET", "bench:k", value)
        else
            client:call("GET", "bench:k")
        end
    end
    local cpu_plain = os.clock() - cpu0
    local wall_plain = lasio.get_running_loop():time() - t0

    -- pipelined: DEPTH commands sent, then their replies awaited
    local futs = {}
    cpu0, t0 = os.clock(), lasio.get_running_loop():time()
    for b = 1, n // depth do
        for i = 1, depth do
            if i % 2 == 0 then
                futs[i] = client:send("SET", "bench:k", value)
            else
                futs[i] = client:send("GET", "bench:k")
            end
        end
        for i = 1, depth do futs[i]:await() end
        futs[b % depth + 1] = nil
    end
    local cpu_pipe = os.clock() - cpu0
    local wall_pipe = lasio.get_running_loop():time() - t0
    client:close()

    local total = n // depth * depth
    common.result({client = "lasio", n = n, depth = depth,
        plain_per_cpu_s = math.floor(n / cpu_plain),
        plain_per_s = math.floor(n / wall_plain),
        pipelined_per_cpu_s = math.floor(total / cpu_pipe),
        pipelined_per_s = math.floor(total / wall_pipe)},
        {"client", "n", "depth", "plain_per_cpu_s", "plain_per_s",
            "pipelined_per_cpu_s", "pipelined_per_s"})
end)
