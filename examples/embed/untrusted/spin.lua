-- A script that never awaits: forced yields keep the loop going, and its
-- instruction budget ends it.
local n = 0
while true do n = n + 1 end
