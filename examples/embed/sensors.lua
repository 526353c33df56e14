-- sensors.lua: run by examples/embed/host.c as a task on the host's own
-- event_base. host.sensor and host.count are C functions that return
-- Futures (a host timer, a worker thread resolves them); they are async
-- functions, so calling one waits for its result.
-- SPDX-License-Identifier: MIT
local rooms = { "kitchen", "garage", "attic" }

-- three slow readings at once: about 30 ms, not 90
local t0 = lasio.get_running_loop():time()
local readings = {lasio.gather(
    function() return host.sensor(rooms[1], 30) end,
    function() return host.sensor(rooms[2], 20) end,
    function() return host.sensor(rooms[3], 30) end)}
local took = lasio.get_running_loop():time() - t0
for i, room in ipairs(rooms) do
    print(("%s: %.1f"):format(room, readings[i]))
end
print(("read in parallel: %s"):format(took < 0.080 and "yes" or "no"))

-- a sum computed by a worker thread, while the loop goes on
print("sum of 1..1000000 = " .. host.count(1000000))

-- the host's own timer kept running while the script waited
print("host heartbeats seen: " .. (host.heartbeats() > 0 and "yes" or "no"))
