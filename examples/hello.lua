-- Spawns 10 000 tasks that sleep, then gathers their results.
-- Run: build/lasio examples/hello.lua
local lasio = require "lasio"

local function worker(i)
    lasio.sleep(0.01 * (i % 10))
    return i * i
end

local tasks = {}
for i = 1, 10000 do
    tasks[i] = lasio.spawn(worker, i)
end
local sum = 0
for _, t in ipairs(tasks) do
    sum = sum + t:await()
end
print(("10000 tasks done, sum of squares = %d"):format(sum))
