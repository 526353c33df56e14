-- The old asyncio style, the loop driven by hand. Runs unchanged with
-- `lasio examples/seed_run_until_complete.lua` and with stock
-- `lua5.4 examples/seed_run_until_complete.lua` (lasio installed).
local lasio = require "lasio"
local function slow_operation()
    lasio.sleep(1)
    return "Future is done!"
end
local loop = lasio.get_event_loop()
local task = loop:create_task(slow_operation)
task:add_done_callback(function(fut) print(fut:result()) end)
loop:run_until_complete(task)
