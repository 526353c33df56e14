-- escapes through metatables: the string metatable and lasio's tables
pcall(function() getmetatable("").__index.rep = nil end)
pcall(function() getmetatable("").__index = {} end)
pcall(function() lasio.BudgetExceeded.is = function() return false end end)
string.rep = nil -- the sandbox's own copy only
local mt = getmetatable("")
error(mt == nil and "no string metatable here" or "escaped")
