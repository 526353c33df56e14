-- A Future nobody resolves: instead of hanging, the lasio command reports
-- the stuck tasks with their stacks and exits with status 5.
local lasio = require "lasio"

local reply = lasio.Future()
local waiter = lasio.spawn(function()
    return reply:await() -- nobody ever calls reply:set_result()
end)
waiter:set_name("waiting-for-reply")
print("got", waiter:await())
