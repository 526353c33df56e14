-- The fixed three-task flow whose trace spec/golden/trace_three.jsonl
-- holds (trace_spec.lua): a producer, a consumer renamed after spawn, and
-- the main task awaiting both, in virtual time.
local lasio = require "lasio"
local q = lasio.Queue()
local producer = lasio.spawn(function()
    for i = 1, 3 do
        lasio.sleep(0.5)
        q:put(i)
    end
end)
local consumer = lasio.spawn(function()
    local sum = 0
    for _ = 1, 3 do sum = sum + q:get() end
    lasio.trace.mark("sum", { value = sum })
end)
consumer:set_name("consumer")
lasio.sleep(0.2)
lasio.await(producer)
lasio.await(consumer)
