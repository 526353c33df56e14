-- lasio.timeouts: timeout scopes for to-be-closed variables (timeout,
-- timeout_at) and wait_for, ported from asyncio's timeouts.py and tasks.py.
-- A scope owns one loop timer and its task's cancellation request.
-- Invariant: a scope turns only its own expiry into TimeoutError: it
-- uncancels what it cancelled, and a third party's cancellation stays.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local CancelledError, TimeoutError = core.CancelledError, core.TimeoutError
local current_task = core.current_task
local type, error, pcall, select = type, error, pcall, select

local M = {}

local function misuse(depth, what, fmt, ...)
    error(what .. ": " .. fmt:format(...), depth + 2)
end

local is_future = core.isfuture

-- Checks a delay or deadline argument: nil or a number that is not NaN.
local function check_time(depth, what, name, v)
    if v == nil then return nil end
    if type(v) ~= "number" then
        misuse(depth + 1, what, "%s must be a number or nil, got %s", name, type(v))
    end
    if v ~= v then misuse(depth + 1, what, "%s must not be NaN", name) end
    return v
end

local function require_task(depth, what)
    local task = current_task()
    if task == nil then
        misuse(depth + 1, what, "not inside a task (use lasio.run or the lasio command)")
    end
    return task
end

-- {====== Timeout scopes ======
-- States (asyncio's): "active" (created: lasio has no separate enter),
-- "expiring" (the timer fired and cancelled the task), "expired" (closed
-- after expiring), "finished" (closed before expiring).
--
-- The conversion. Lua has no `with`: the CancelledError that ends the
-- block reaches __close(self, err) as its error argument, and __close
-- cannot swallow or replace it by returning. But an error raised inside
-- __close replaces the error in flight (Lua 5.4.3 and later), so when the
-- scope sees its own expiry's CancelledError it raises TimeoutError
-- itself. Asyncio's bookkeeping decides "its own": the task's cancelling()
-- count is taken when the scope is made; on close the scope uncancels its
-- request, and converts only when the count is back at that level (no
-- other request, such as an outer scope's with the same deadline or a
-- third party's cancel, is pending).

local Timeout = {}
Timeout.__index = Timeout
Timeout.__name = "lasio.Timeout"

-- The timer of an active scope fired (closing or rescheduling the scope
-- cancels its timer, so the scope is active here).
local function on_timeout(self)
    self._handle = nil
    self._state = "expiring"
    self._task:cancel()
end

local function arm(self, when)
    if self._handle then self._handle:cancel() end
    self._handle = nil
    self._when = when
    if when == nil or when == math.huge then return end
    local loop = self._task:get_loop()
    if when <= loop:time() then
        self._handle = loop:call_soon(on_timeout, self)
    else
        self._handle = loop:call_at(when, on_timeout, self)
    end
end

-- The deadline (loop:time() clock), or nil when the scope never expires.
function Timeout:when()
    return self._when
end

-- Did the deadline pass while the scope was open?
function Timeout:expired()
    return self._state == "expiring" or self._state == "expired"
end

-- Moves the deadline (nil: never); only while the scope is active.
function Timeout:reschedule(when)
    check_time(1, "timeout:reschedule", "when", when)
    if self._state ~= "active" then
        misuse(1, "timeout:reschedule", "cannot reschedule an %s timeout", self._state)
    end
    arm(self, when)
end

function Timeout:__close(err)
    local state = self._state
    if state ~= "active" and state ~= "expiring" then return end
    if self._handle then self._handle:cancel() end
    self._handle = nil
    if state == "active" then
        self._state = "finished"
        return
    end
    self._state = "expired"
    if self._task:uncancel() <= self._cancelling and err ~= nil
        and CancelledError:is(err) then
        -- nothing else asked for this cancellation: it was ours
        error(TimeoutError(nil, { cause = err }))
    end
end

function Timeout:__tostring()
    if self._state == "active" then
        local w = self._when
        return ("lasio.Timeout<active when=%s>"):format(
            w == nil and "nil" or ("%.3f"):format(w))
    end
    return ("lasio.Timeout<%s>"):format(self._state)
end

-- The scope for `when`, entered at once in the current task.
local function new_scope(depth, what, when)
    local task = require_task(depth + 1, what)
    local self = setmetatable({
        _state = "active",
        _task = task,
        _cancelling = task:cancelling(),
    }, Timeout)
    arm(self, when)
    return self
end

-- Runs fn(...) inside scope and returns its results.
local function run_in(scope, fn, ...)
    local _ <close> = scope
    return fn(...)
end

local function check_fn(what, fn)
    if fn ~= nil and type(fn) ~= "function" then
        misuse(2, what, "fn must be a function or nil, got %s", type(fn))
    end
end

-- lasio.timeout(delay) -> scope for `local t <close> = ...`
-- lasio.timeout(delay, fn, ...) -> fn(...)'s results, run inside a scope
function M.timeout(delay, fn, ...)
    local what = "lasio.timeout"
    check_time(1, what, "delay", delay)
    check_fn(what, fn)
    local when
    if delay ~= nil then
        when = require_task(1, what):get_loop():time() + delay
    end
    local scope = new_scope(1, what, when)
    if fn == nil then return scope end
    return run_in(scope, fn, ...)
end

-- lasio.timeout_at(when [, fn, ...]): same with a deadline on loop:time().
function M.timeout_at(when, fn, ...)
    local what = "lasio.timeout_at"
    check_time(1, what, "when", when)
    check_fn(what, fn)
    local scope = new_scope(1, what, when)
    if fn == nil then return scope end
    return run_in(scope, fn, ...)
end

-- lasio.Timeout(when) -> a scope for `local t <close> = lasio.Timeout(when)`
-- (asyncio.Timeout): the deadline on loop:time(), nil for none until
-- t:reschedule(when); t:expired() tells whether it fired.
function M.Timeout(when, ...)
    local what = "lasio.Timeout"
    check_time(1, what, "when", when)
    if select("#", ...) > 0 then
        misuse(1, what, "takes one argument, the deadline (use lasio.timeout_at(when, fn) to run fn)")
    end
    return new_scope(1, what, when)
end

-- ====== }

-- {====== wait_for ======

-- Cancels fut and waits until it is done, through a waiter of our own so
-- that this wait can itself be cancelled (asyncio's _cancel_and_wait).
local function cancel_and_wait(fut)
    local waiter = fut:get_loop():create_future()
    local function release()
        if not waiter:done() then waiter:set_result() end
    end
    fut:add_done_callback(release)
    fut:cancel()
    local ok, e = pcall(waiter.await, waiter)
    fut:remove_done_callback(release)
    if not ok then error(e, 0) end
end

local function await_in(scope, fut)
    local _ <close> = scope
    return fut:await()
end

-- lasio.wait_for(aw, timeout) -> aw's results, or TimeoutError
function M.wait_for(aw, timeout)
    local what = "lasio.wait_for"
    check_time(1, what, "timeout", timeout)
    if type(aw) ~= "function" and not is_future(aw) then
        misuse(1, what, "expected an awaitable (a Future, Task or function), got %s",
            type(aw))
    end
    local task = require_task(1, what)
    local loop = task:get_loop()
    local fut = aw
    if type(aw) == "function" then
        fut = loop:create_task(aw)
    elseif fut:get_loop() ~= loop then
        misuse(1, what, "the Future belongs to another loop")
    end
    if timeout ~= nil and timeout <= 0 then
        -- asyncio: a done future gives its outcome; anything else is
        -- cancelled (a function's task before its first step, so it never
        -- runs) and awaited
        if fut:done() then return fut:result() end
        cancel_and_wait(fut)
        local r = table.pack(pcall(fut.result, fut))
        if r[1] then return table.unpack(r, 2, r.n) end
        if CancelledError:is(r[2]) then
            error(TimeoutError(nil, { cause = r[2] }))
        end
        error(r[2], 0)
    end
    local when
    if timeout ~= nil then when = loop:time() + timeout end
    return await_in(new_scope(1, what, when), fut)
end

-- ====== }

return M
