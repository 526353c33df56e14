-- A producer/consumer pipeline: one producer fills a bounded queue, a pool
-- of workers under a task group squares the numbers into a results queue,
-- and the whole run sits in a timeout scope. Prints the sum and how the
-- work was shared.
local lasio = require "lasio"

local N, WORKERS = 100, 4
local jobs = lasio.Queue(8) -- bounded: the producer waits when it is full
local results = lasio.Queue()
local done_by = {}

local function producer()
    for i = 1, N do jobs:put(i) end
    jobs:shutdown() -- workers drain what is left, then get() raises
end

local function worker(id)
    done_by[id] = 0
    while true do
        local ok, n = pcall(jobs.get, jobs)
        if not ok then
            if lasio.QueueShutDown:is(n) then return end
            error(n, 0)
        end
        lasio.sleep(0.001) -- pretend to work
        results:put(n * n)
        done_by[id] = done_by[id] + 1
    end
end

do
    local _ <close> = lasio.timeout(10)
    lasio.taskgroup(function(tg)
        tg:spawn(producer)
        for id = 1, WORKERS do tg:spawn(worker, id) end
    end)
end

local sum = 0
while not results:empty() do sum = sum + results:get_nowait() end
local total, busy = 0, 0
for id = 1, WORKERS do
    total = total + done_by[id]
    if done_by[id] > 0 then busy = busy + 1 end
end
print(("sum of squares 1..%d = %d"):format(N, sum))
print(("%d jobs done by %d busy workers of %d"):format(total, busy, WORKERS))
