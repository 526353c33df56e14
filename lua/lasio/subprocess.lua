-- lasio.subprocess: the methods of the Process object (src/sys/process.c)
-- that run helper tasks: proc:communicate([input [, timeout]]) drains
-- stdout and stderr concurrently while it feeds stdin, and
-- proc:wait([timeout]). The facade (init.lua) adds them to the object's
-- method table on first use; its names are not in the lasio table.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local M = {}

-- Awaits fut until the monotonic `deadline` (nil: none). Raises
-- TimeoutError when it passes (fut is then cancelled), else fut's outcome.
local function await_until(fut, deadline, what)
    if deadline == nil or fut:done() then return fut:await() end
    local loop = fut:get_loop()
    local timed_out = false
    local timer = loop:call_at(deadline, function()
        if not fut:done() then
            timed_out = true
            fut:cancel()
        end
    end)
    local ok, a = pcall(fut.await, fut)
    timer:cancel()
    if ok then return a end
    -- our own cancel, not one of the task: a timeout
    if timed_out and lasio.CancelledError:is(a)
        and lasio.current_task():cancelling() == 0 then
        error(lasio.TimeoutError(what .. ": timed out"), 0)
    end
    error(a, 0)
end

-- proc:wait([timeout]) -> returncode; with a timeout, asyncio's
-- wait_for(proc.wait(), timeout).
function M.wait(proc, timeout)
    if timeout ~= nil then
        if type(timeout) ~= "number" then
            error(("proc:wait: timeout must be a number or nil, got %s"):format(
                type(timeout)), 2)
        elseif timeout ~= timeout or timeout < 0 then
            -- NaN prints as "-nan" with %f: name it plainly
            error(("proc:wait: timeout must be >= 0, got %s"):format(
                timeout ~= timeout and "nan" or ("%f"):format(timeout)), 2)
        end
    end
    if timeout == nil or proc.returncode ~= nil then return proc:_wait() end
    local loop = lasio.get_running_loop()
    return await_until(proc:_exit_future(), loop:time() + timeout, "wait")
end

function M.communicate(proc, input, timeout)
    if input ~= nil and type(input) ~= "string" then
        error("communicate: input must be a string or nil", 3)
    end
    if input ~= nil and input ~= "" and not proc.stdin then
        error("communicate: input given but stdin is not lasio.PIPE", 3)
    end
    if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout
        or timeout < 0) then
        error("communicate: timeout must be a number >= 0 or nil", 3)
    end
    local loop = lasio.get_running_loop()
    local deadline = timeout and loop:time() + timeout
    local out = { stdout = {}, stderr = {} }
    local function drain(name)
        local reader, chunks = proc[name], out[name]
        while true do
            local data = reader:read(65536)
            if data == "" then return end
            chunks[#chunks + 1] = data
        end
    end
    local function feed()
        local writer = proc.stdin
        if input and input ~= "" then
            local ok, err = pcall(function()
                writer:write(input)
                writer:drain()
            end)
            -- a child that exits without reading all its input is fine
            -- (asyncio ignores BrokenPipeError here too)
            if not ok and not (lasio.OSError:is(err) and err.code == "EPIPE") then
                writer:close()
                error(err, 0)
            end
        end
        writer:close()
    end
    local helpers = {}
    if proc.stdin then helpers[#helpers + 1] = lasio.spawn(feed) end
    if proc.stdout then helpers[#helpers + 1] = lasio.spawn(drain, "stdout") end
    if proc.stderr then helpers[#helpers + 1] = lasio.spawn(drain, "stderr") end
    local ok, err = pcall(function()
        for _, t in ipairs(helpers) do
            await_until(t, deadline, "communicate")
        end
        await_until(proc:_exit_future(), deadline, "communicate")
    end)
    if ok then
        return proc.stdout and table.concat(out.stdout) or nil,
            proc.stderr and table.concat(out.stderr) or nil
    end
    for _, t in ipairs(helpers) do t:cancel() end
    if lasio.TimeoutError:is(err) then
        -- the timeout ends the child (its whole group with
        -- start_new_session) and reaps it before raising
        pcall(proc.kill, proc)
        proc:_exit_future():await()
        err.stdout = proc.stdout and table.concat(out.stdout) or nil
        err.stderr = proc.stderr and table.concat(out.stderr) or nil
    end
    error(err, 0)
end

return M
