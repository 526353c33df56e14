-- The old asyncio style with run_forever: the done callback stops the
-- loop. Runs unchanged under `lasio` and under stock `lua5.4`.
local lasio = require "lasio"
local function slow_operation()
    lasio.sleep(1)
    return "Future is done!"
end
local loop = lasio.get_event_loop()
local task = loop:create_task(slow_operation)
task:add_done_callback(function(fut)
    print(fut:result())
    loop:stop()
end)
loop:run_forever()
