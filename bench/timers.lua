-- timers: N one-shot timers (loop:call_later) with the peers' random
-- integer delays of 0..100 ms, scheduled in one burst from a running task;
-- waits until all fired. Overshoot = fire time - (schedule time + delay).
-- usage: lasio bench/timers.lua [N]
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local n = C.arg(1, 200000)

local loop = lasio.get_running_loop()
local now = lasio.time
local rand = C.rng(12345)
local over, fired = {}, 0
local done = lasio.Future()
local function fire(i, due)
    over[i] = now() - due
    fired = fired + 1
    if fired == n then done:set_result() end
end

local c0 = os.clock()
local t0 = now()
for i = 1, n do
    local delay = rand() / 1000
    loop:call_later(delay, fire, i, now() + delay)
end
local t_sched = now()
done:await()
local t1 = now()
local cpu = os.clock() - c0
local secs = t1 - t0
local kv = {n = n, secs = C.fmt(secs), rate = C.fmt(n / secs, 0),
            sched_secs = C.fmt(t_sched - t0), cpu_secs = C.fmt(cpu),
            cpu_rate = C.fmt(n / cpu, 0)}
local order = {"n", "secs", "rate", "sched_secs", "cpu_secs", "cpu_rate"}
C.overshoot(over, kv, order)
C.result(kv, order)
