-- preempt_late: how late a timer is while tasks spin, with forced yields
-- every N instructions: two spinning tasks (one allocating) and a task
-- sleeping 5 ms 100 times; prints the lateness median, p99 and maximum.
-- usage: lasio bench/preempt_late.lua [N]  (N = 0: a sleeper alone)
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local n = C.arg(1, 10000)

lasio.run(function()
    if n > 0 then
        lasio.set_limits{ forced_yield = n }
        lasio.spawn(function() while true do end end)
        lasio.spawn(function() while true do local _ = {} end end)
    end
    local lates = {}
    for i = 1, 100 do
        local t0 = lasio.time()
        lasio.sleep(0.005)
        lates[i] = lasio.time() - t0 - 0.005
    end
    table.sort(lates)
    print(("forced_yield=%d: timer late median %.2f ms, p99 %.2f ms, max %.2f ms")
        :format(n, lates[50] * 1e3, lates[99] * 1e3, lates[100] * 1e3))
    io.stdout:flush()
    os.exit(0)
end)
