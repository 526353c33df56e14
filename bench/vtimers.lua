-- vtimers: the timers workload in virtual time: N one-shot timers
-- (loop:call_later) spread over a virtual day with the peers' random
-- delays scaled to 0..86400 s, scheduled in one burst from a task; waits
-- until all fired. rate is timers per real second, to compare with
-- timers.lua's rate (real time, delays of 0-100 ms) in the same run.
-- usage: lasio --virtual-time bench/vtimers.lua [N [distinct]]   (or plain lasio /
-- lua5.4: the script then runs itself on lasio.testing.run)
-- SPDX-License-Identifier: MIT
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local testing = require "lasio.testing"
local n = C.arg(1, 1000000)
local distinct = arg and arg[2] == "distinct"

local function wall()
    local p = io.popen("date +%s.%N")
    local t = tonumber(p:read("a"))
    p:close()
    return t
end

local function bench()
    local loop = lasio.get_running_loop()
    local rand = C.rng(12345)
    local fired, late = 0, 0
    local done = lasio.Future()
    local function fire(due)
        if loop:time() ~= due then late = late + 1 end
        fired = fired + 1
        if fired == n then done:set_result() end
    end
    local c0, w0 = os.clock(), wall()
    local t0 = loop:time()
    for _ = 1, n do
        -- the peers' 0..100 scaled to the day (101 instants, as timers.lua
        -- has 101 distinct delays); "distinct": nearly every deadline its own
        local delay = rand() * 864
        if distinct then delay = delay + rand() / 100 end
        loop:call_later(delay, fire, t0 + delay)
    end
    done:await()
    local secs, cpu = wall() - w0, os.clock() - c0
    local kv = {n = n, secs = C.fmt(secs), rate = C.fmt(n / secs, 0),
                cpu_secs = C.fmt(cpu), cpu_rate = C.fmt(n / cpu, 0),
                virtual_secs = C.fmt(loop:time() - t0, 3), off_time = late}
    C.result(kv, {"n", "secs", "rate", "cpu_secs", "cpu_rate", "virtual_secs", "off_time"})
end

if testing.virtual() then bench() else testing.run(bench, {seed = 1}) end
