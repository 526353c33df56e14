-- A script that eats memory: its memory budget ends it.
local t = {}
while true do t[#t + 1] = ("x"):rep(64) .. #t end
