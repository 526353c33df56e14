-- pattern bomb through gsub and gmatch, by method call on a string (the
-- string metatable's library, not the sandbox's copy)
local s = ("x"):rep(200000)
for _ in s:gmatch("x-x-x-y") do end
return s:gsub(".-.-.-y", "z")
