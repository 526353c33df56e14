-- spawn_eager: bench/spawn.lua with asyncio 3.12's eager task factory set
-- on the loop: each task runs at once up to its sleep(0), inside the spawn
-- call. Wall-clock time. usage: lasio bench/spawn_eager.lua [N]
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local n = C.arg(1, 200000)

local function task(i)
    lasio.sleep(0)
    return i
end

lasio.get_running_loop():set_task_factory(lasio.eager_task_factory)
local t0 = lasio.time()
local tasks = {}
for i = 1, n do tasks[i] = lasio.spawn(task, i) end
local results = lasio.gather(tasks)
local t1 = lasio.time()
assert(results.n == n and results[n] == n)
C.result({n = n, secs = C.fmt(t1 - t0), rate = C.fmt(n / (t1 - t0), 0),
          peak_kb = C.proc_kb("VmHWM")}, {"n", "secs", "rate", "peak_kb"})
