-- The host of the hostile corpus (spec/untrusted_spec.lua): runs the
-- script named by arg[1] in the sandbox as a task with budgets, beside a
-- ticker task whose timers must stay on time, and prints what happened.
-- The error object is read by its fields only: tostring of an untrusted
-- value could run its code outside any budget.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local path = assert(arg[1], "usage: host.lua SCRIPT")

local function describe(e)
    if type(e) == "string" then return e end
    if lasio.BudgetExceeded:is(e) then
        return "BudgetExceeded " .. rawget(e, "budget") .. " " .. rawget(e, "scope")
    end
    if type(e) == "table" and type(rawget(e, "message")) == "string" then
        return rawget(e, "message")
    end
    return "error object of type " .. type(e)
end

lasio.run(function()
    lasio.set_limits{ memory = 24 * 1024 * 1024, forced_yield = 10000,
                      max_tasks = 200, max_timers = 200 }
    local ticks, late = 0, 0
    local ticker = lasio.spawn(function()
        for _ = 1, 30 do
            local t0 = lasio.time()
            lasio.sleep(0.01)
            late = math.max(late, lasio.time() - t0 - 0.01)
            ticks = ticks + 1
        end
    end)
    local f = assert(io.open(path))
    local src = f:read("a")
    f:close()
    local env = lasio.sandbox_env{ output = 4096 }
    local fn, err = load(src, "=" .. path, "t", env)
    local result
    if not fn then
        result = "load error: " .. err
    else
        local t = lasio.spawn(fn)
        t:set_budget{ cpu = 0.5, instructions = 2e7, memory = 64 * 1024 * 1024 }
        local ok, e = pcall(lasio.wait_for, t, 30)
        result = ok and "returned" or describe(e)
    end
    ticker:await()
    collectgarbage()
    -- the host's own library is intact
    assert(string.rep("ab", 2) == "abab" and type(os.execute) == "function"
        and type(string.dump) == "function" and getmetatable("").__index == string)
    io.write("RESULT ", result, "\nTICKS ", ticks, "\nLATE ", late, "\n")
    io.stdout:flush()
    os.exit(0) -- what the script left pending is not the host's
end)
