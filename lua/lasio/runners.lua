-- lasio.Runner and lasio.ensure_future: asyncio's runners.py (a loop kept
-- across several run calls) and tasks.ensure_future. A Runner owns the loop
-- it made; under a loop that is already running (the lasio command, a
-- task) it borrows that loop and never closes it.
-- Invariant: after close(), no task the Runner's own loop ran is pending.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local type, error, select, pcall = type, error, select, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local isfuture = core.isfuture

local function isloop(v)
    local mt = type(v) == "userdata" and getmetatable(v)
    return type(mt) == "table" and mt.__name == "lasio.Loop"
end

local M = {}

-- lasio.ensure_future(aw [, loop]) -> aw if it is a Future or a Task, else
-- a Task running the function aw on loop (default: the event loop)
function M.ensure_future(aw, loop)
    if loop ~= nil and not isloop(loop) then
        error("lasio.ensure_future: loop must be a loop or nil, got " .. type(loop), 2)
    end
    if isfuture(aw) then
        if loop ~= nil and aw:get_loop() ~= loop then
            error("lasio.ensure_future: the Future belongs to another loop", 2)
        end
        return aw
    end
    if type(aw) ~= "function" then
        error("lasio.ensure_future: expected an awaitable (a Future, Task or function), got "
            .. type(aw), 2)
    end
    return (loop or core.get_event_loop()):create_task(aw)
end

local Runner = {}
Runner.__index = Runner
Runner.__name = "lasio.Runner"

-- The loop, made (or borrowed) on first use (asyncio's _lazy_init).
local function lazy_init(self, what)
    if self._state == "closed" then
        error(what .. ": the Runner is closed", 3)
    end
    if self._state == "initialized" then return self._loop end
    local ok, running = pcall(core.get_running_loop)
    if ok then
        self._loop, self._borrowed = running, true
    else
        self._loop = core.new_event_loop()
        core.set_event_loop(self._loop)
    end
    if self._debug ~= nil then self._loop:set_debug(self._debug) end
    self._state = "initialized"
    return self._loop
end

-- runner:run(fn, ...) -> fn(...)'s results, run as a task of the loop
function Runner:run(fn, ...)
    if type(fn) ~= "function" then
        error("runner:run: fn must be a function, got " .. type(fn), 2)
    end
    local loop = lazy_init(self, "runner:run")
    if self._borrowed then return core.run(fn, ...) end
    local ok = pcall(core.get_running_loop)
    if ok then
        error("runner:run: cannot be called from a running event loop", 2)
    end
    local n, args = select("#", ...), {...}
    return loop:run_until_complete(loop:create_task(function()
        return fn(table.unpack(args, 1, n))
    end))
end

-- runner:get_loop() -> the Runner's loop (made on first use)
function Runner:get_loop()
    return lazy_init(self, "runner:get_loop")
end

-- Cancels every task left on the loop and waits for them (asyncio's
-- _cancel_all_tasks), from a task of the loop.
local function cancel_all()
    local me = core.current_task()
    local left = {}
    for _, t in ipairs(core.all_tasks()) do
        if t ~= me then
            t:cancel()
            left[#left + 1] = t
        end
    end
    for _, t in ipairs(left) do pcall(t.await, t) end
end

-- runner:close(): finishes the tasks left and closes the loop (a borrowed
-- loop stays open). Closing twice does nothing.
function Runner:close()
    if self._state ~= "initialized" then
        self._state = "closed"
        return
    end
    self._state = "closed"
    local loop = self._loop
    if self._borrowed or loop:is_closed() then return end
    local ok, err = pcall(loop.run_until_complete, loop, cancel_all)
    loop:close()
    if core.get_event_loop() == loop then core.set_event_loop(nil) end
    if not ok then error(err, 0) end
end

Runner.__close = Runner.close

function Runner:__tostring()
    return "lasio.Runner<" .. self._state .. ">"
end

-- lasio.Runner([{debug = bool}]) -> a Runner for `local r <close> = ...`
function M.Runner(opts)
    if opts ~= nil and type(opts) ~= "table" then
        error("lasio.Runner: opts must be a table or nil, got " .. type(opts), 2)
    end
    local debug = opts and opts.debug
    if debug ~= nil and type(debug) ~= "boolean" then
        error("lasio.Runner: opts.debug must be a boolean or nil, got " .. type(debug), 2)
    end
    return setmetatable({_state = "created", _debug = debug}, Runner)
end

return M
