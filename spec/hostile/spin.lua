-- a loop that never awaits
while true do end
