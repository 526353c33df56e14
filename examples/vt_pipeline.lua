-- A rate-limited producer/consumer pipeline over an hour of virtual time:
-- a producer offers a job every 0.5 s into a bounded queue (and waits when
-- it is full), a token bucket lets the consumer take at most one job a
-- second with bursts of 5, and a reporter prints a summary
-- every 15 minutes. In virtual time the hour takes well under a second and
-- prints the same every run.
-- usage: lasio --virtual-time examples/vt_pipeline.lua
--        lua5.4 examples/vt_pipeline.lua   (runs itself on lasio.testing.run)
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local testing = require "lasio.testing"

local HOUR = 3600

local function pipeline()
    local loop = lasio.get_running_loop()
    local queue = lasio.Queue(100)
    local done, waited = 0, 0

    -- a token bucket: `rate` tokens a second, at most `burst` saved up
    local rate, burst, tokens, last = 1, 5, 5, loop:time()
    local function take_token()
        while true do
            local now = loop:time()
            tokens = math.min(burst, tokens + (now - last) * rate)
            last = now
            if tokens >= 1 then
                tokens = tokens - 1
                return
            end
            local wait = (1 - tokens) / rate
            waited = waited + wait
            lasio.sleep(wait)
        end
    end

    local producer = lasio.spawn(function()
        local i = 0
        while loop:time() < HOUR do
            i = i + 1
            queue:put({id = i, at = loop:time()})
            lasio.sleep(0.5)
        end
        queue:put(false)
    end)
    local consumer = lasio.spawn(function()
        while true do
            local job = queue:get()
            if not job then return end
            take_token()
            lasio.sleep(0.25) -- the work itself
            done = done + 1
        end
    end)
    local reporter = lasio.spawn(function()
        for quarter = 1, 4 do
            lasio.sleep(HOUR / 4)
            print(("%s  %2d min: %4d jobs done, %2d queued"):format(
                os.date("!%H:%M:%S"), quarter * 15, done, queue:qsize()))
        end
    end)
    lasio.gather(producer, consumer, reporter)
    print(("pipeline finished at %.2f s of virtual time: %d jobs, %.0f s waiting for tokens")
        :format(loop:time(), done, waited))
end

if testing.virtual() then
    pipeline()
else
    testing.run(pipeline, {seed = 1})
end
