-- Timers and callbacks on the running loop: call_soon, call_later,
-- call_at, and cancelling a timer. Prints the order things ran in.
local lasio = require "lasio"

local loop = lasio.get_running_loop()
local start = loop:time()
local log = {}
local function note(what)
    log[#log + 1] = what
end

loop:call_later(0.03, note, "later 30ms")
loop:call_at(start + 0.01, note, "at +10ms")
local cancelled = loop:call_later(0.02, note, "never")
loop:call_soon(note, "soon")
cancelled:cancel()
lasio.sleep(0.05)
print(table.concat(log, ", "))
print(("elapsed >= 50ms: %s"):format(loop:time() - start >= 0.05))
