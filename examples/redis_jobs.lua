-- A job queue on a Redis stream with a consumer group: a producer adds
-- jobs with XADD, three workers share them with XREADGROUP (each job goes
-- to one worker) and acknowledge each with XACK once its result is
-- stored. The workers block in XREADGROUP on connections of their own;
-- cancelling them at the end makes the server let go at once.
-- Usage: lasio examples/redis_jobs.lua [redis://127.0.0.1:6379]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local redis = lasio.redis

local url = arg and arg[1] or "redis://127.0.0.1:6379"
local STREAM, GROUP, RESULTS = "example:jobs", "squarers", "example:results"
local JOBS, WORKERS = 20, 3

local function worker(name)
    local conn <close> = redis.connect(url)
    while true do
        -- up to 5 new jobs, waiting at most 1 s for some
        local batch = conn:call("XREADGROUP", "GROUP", GROUP, name,
            "COUNT", 5, "BLOCK", 1000, "STREAMS", STREAM, ">")
        for _, stream in ipairs(batch or {}) do
            for _, entry in ipairs(stream[2]) do
                local id, fields = entry[1], entry[2]
                local n = tonumber(fields[2]) -- fields: {"n", "<number>"}
                conn:call("HSET", RESULTS, n, n * n)
                conn:call("XACK", STREAM, GROUP, id)
            end
        end
    end
end

lasio.run(function()
    local client <close> = redis.connect(url)
    client:call("DEL", STREAM, RESULTS)
    client:call("XGROUP", "CREATE", STREAM, GROUP, "$", "MKSTREAM")

    local workers = {}
    for i = 1, WORKERS do workers[i] = lasio.spawn(worker, "worker-" .. i) end
    for n = 1, JOBS do client:call("XADD", STREAM, "*", "n", n) end

    -- done when every job has a result and none is left unacknowledged
    while client:call("HLEN", RESULTS) < JOBS
        or client:call("XPENDING", STREAM, GROUP)[1] > 0 do
        lasio.sleep(0.01)
    end
    for _, w in ipairs(workers) do w:cancel() end
    lasio.wait(workers)

    local sum = 0
    for _, v in ipairs(client:call("HVALS", RESULTS)) do sum = sum + tonumber(v) end
    print(("%d jobs done by %d workers, sum of squares = %d"):format(
        JOBS, WORKERS, sum))
    client:call("DEL", STREAM, RESULTS)
end)
