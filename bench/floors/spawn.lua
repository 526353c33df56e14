-- The floor under the spawn target (issue 5), in plain Lua 5.4: what the
-- workload's coroutines alone cost with no event loop, no Task objects and
-- no scheduler. N coroutines are created first and resumed afterwards
-- (lasio.spawn schedules, it does not start the task: asyncio's model),
-- each yields once (its sleep(0)) and returns a value that is collected.
-- "eager" starts each coroutine as it is created (what the luv peer does).
-- usage: lua5.4 bench/floors/spawn.lua [N [eager]]   (or under build/lasio)
-- SPDX-License-Identifier: MIT
local n = tonumber(arg[1]) or 200000
local eager = arg[2] == "eager"
local create, resume, yield = coroutine.create, coroutine.resume,
    coroutine.yield
local clock = os.clock

local function task(i)
    yield()
    return i
end

local t0 = clock()
local cos, results = {}, {}
if eager then
    for i = 1, n do
        local co = create(task)
        resume(co, i)
        cos[i] = co
    end
else
    for i = 1, n do cos[i] = create(task) end
    for i = 1, n do resume(cos[i], i) end
end
for i = 1, n do
    local _, r = resume(cos[i])
    results[i] = r
end
local secs = clock() - t0
assert(results[n] == n)
print(("RESULT n=%d mode=%s secs=%.6f rate=%.0f"):format(n,
    eager and "eager" or "scheduled", secs, n / secs))
