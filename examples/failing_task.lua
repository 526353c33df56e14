-- A task that fails: the lasio command prints the error with a traceback
-- that names the task, and exits with status 1.
local lasio = require "lasio"

local function parse(line)
    local n = tonumber(line)
    if not n then error("not a number: " .. line) end
    return n
end

local worker = lasio.spawn(function()
    lasio.sleep(0.01)
    return parse("forty-two")
end)
worker:set_name("parser")
print("sum:", worker:await() + 1)
