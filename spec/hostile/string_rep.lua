-- C-level allocation: one call asks for a gigabyte
local s = string.rep("x", 2 ^ 30)
return #s
