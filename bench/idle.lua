-- idle: N tasks each blocked forever on its own unresolved Future; bytes
-- per blocked task = RSS delta / N, full GC before both readings.
-- usage: lasio bench/idle.lua [N]
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local n = C.arg(1, 100000)

C.full_gc()
local rss0 = C.proc_kb("VmRSS")
-- futs is never read: it holds the futures the way the peers' idle.lua
-- (shared/bench) do, so that the bytes per task compare alike
local futs, tasks = {}, {} -- luacheck: ignore 241
for i = 1, n do
    local f = lasio.Future()
    futs[i] = f
    tasks[i] = lasio.spawn(f.await, f)
end
lasio.sleep(0) -- every task has run its first step and waits
C.full_gc()
local rss1 = C.proc_kb("VmRSS")
assert(not tasks[n]:done())
C.result({n = n, rss0_kb = rss0, rss1_kb = rss1,
          bytes_per_task = C.fmt((rss1 - rss0) * 1024 / n, 1),
          lua_kb = C.fmt(collectgarbage("count"), 0)},
         {"n", "rss0_kb", "rss1_kb", "bytes_per_task", "lua_kb"})
for i = 1, n do tasks[i]:cancel() end
