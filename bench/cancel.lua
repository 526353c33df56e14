-- cancel: N tasks, each blocked on a Future that is never resolved; all
-- are cancelled and gathered (return_exceptions). Wall-clock time of the
-- cancel-and-gather part. usage: lasio bench/cancel.lua [N]
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local n = C.arg(1, 100000)

local fut = lasio.get_running_loop():create_future()
local function task() return fut:await() end

local tasks = {}
for i = 1, n do tasks[i] = lasio.spawn(task) end
lasio.sleep(0) -- every task is now blocked on fut
local t0 = lasio.time()
for i = 1, n do tasks[i]:cancel() end
local results = lasio.gather(tasks, {return_exceptions = true})
local t1 = lasio.time()
assert(results.n == n and lasio.CancelledError:is(results[n]))
C.result({n = n, secs = C.fmt(t1 - t0), rate = C.fmt(n / (t1 - t0), 0),
          peak_kb = C.proc_kb("VmHWM")}, {"n", "secs", "rate", "peak_kb"})
