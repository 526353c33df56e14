-- collectgarbage switches and a finalizer that would spin with hooks off
pcall(collectgarbage, "stop")
pcall(setmetatable, {}, { __gc = function() while true do end end })
assert(collectgarbage("isrunning"))
collectgarbage("stop")
