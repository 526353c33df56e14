-- lasio.taskgroup / lasio.TaskGroup: structured concurrency, asyncio's
-- taskgroups.py, with a body function or a to-be-closed variable for the
-- `async with` block. A group owns its children and
-- one cancel request on its parent. Invariant: when taskgroup() returns or
-- raises, every child has finished and the parent's cancelling() count is
-- back where it was, unless someone else cancelled the parent.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local CancelledError, ErrorGroup = core.CancelledError, core.ErrorGroup
local current_task = core.current_task
local await_link, await_unlink = core.internal.await_link, core.internal.await_unlink
local select, type, error, pcall = select, type, error, pcall

local M = {}

local TaskGroup = {}
TaskGroup.__index = TaskGroup
TaskGroup.__name = "lasio.TaskGroup"

-- Cancels every child still running (asyncio's _abort).
local function abort(self)
    self._aborting = true
    for _, t in ipairs(self._order) do
        if self._tasks[t] and not t:done() then t:cancel() end
    end
end

-- Done callback of every child (asyncio's _on_task_done).
local function on_task_done(self, task)
    self._tasks[task] = nil
    self._ntasks = self._ntasks - 1
    local waiter = self._on_completed
    if waiter and self._ntasks == 0 and not waiter:done() then
        waiter:set_result(true)
    end
    if task:cancelled() or select("#", task:exception()) == 0 then return end
    local err = task:exception()
    self._errors[#self._errors + 1] = err
    local parent = self._parent
    if parent:done() then
        parent:get_loop():call_exception_handler({
            message = ("Task %s has errored out but its parent task %s is "
                .. "already completed"):format(tostring(task), tostring(parent)),
            exception = err,
            task = task,
        })
        return
    end
    if not self._aborting and not self._parent_cancel_requested then
        -- stop the body and the siblings; the cancel of the parent is ours
        -- and is taken back when the group exits
        abort(self)
        self._parent_cancel_requested = true
        parent:cancel()
    end
end

-- tg:spawn(fn, ...) -> the child Task running fn(...)
function TaskGroup:spawn(fn, ...)
    if type(fn) ~= "function" then
        error("tg:spawn: fn must be a function, got " .. type(fn), 2)
    end
    if self._exiting and self._ntasks == 0 then
        error("tg:spawn: the task group is finished", 2)
    end
    if self._aborting then
        error("tg:spawn: the task group is shutting down", 2)
    end
    local t = self._loop:create_task(fn, ...)
    self._tasks[t] = true
    self._ntasks = self._ntasks + 1
    local order = self._order
    if #order > 32 and #order > 2 * self._ntasks then
        -- forget finished children so a long-lived group stays small
        local kept = {}
        for _, c in ipairs(order) do
            if self._tasks[c] then kept[#kept + 1] = c end
        end
        order = kept
        self._order = kept
    end
    order[#order + 1] = t
    t:add_done_callback(self._on_done)
    return t
end

function TaskGroup:__tostring()
    local info = {}
    if self._ntasks > 0 then info[#info + 1] = "tasks=" .. self._ntasks end
    if #self._errors > 0 then info[#info + 1] = "errors=" .. #self._errors end
    if self._finished then
        info[#info + 1] = "finished"
    elseif self._aborting then
        info[#info + 1] = "cancelling"
    else
        info[#info + 1] = "entered"
    end
    return "lasio.TaskGroup<" .. table.concat(info, " ") .. ">"
end

-- The ErrorGroup raised for errs: its message names each error's first line.
local function error_group(errs)
    local parts = {}
    for i = 1, math.min(#errs, 3) do
        local oks, s = pcall(tostring, errs[i])
        s = oks and tostring(s):match("^[^\n]*") or "(error object)"
        if #s > 120 then s = s:sub(1, 117) .. "..." end
        parts[i] = s
    end
    if #errs > 3 then parts[#parts + 1] = "..." end
    return ErrorGroup(("unhandled errors in a task group (%d sub-error%s): %s")
        :format(#errs, #errs == 1 and "" or "s", table.concat(parts, "; ")), errs)
end

-- The end of the group: the body finished (ok, or failed with exc); wait
-- for the children, then return or raise (asyncio's _aexit).
local function exit(self, ok, exc)
    self._exiting = true
    local body_cancelled = not ok and CancelledError:is(exc)
    local propagate = body_cancelled and exc or nil
    if not ok and not self._aborting then abort(self) end

    -- a loop: the wait can be cancelled several times, by the parent's
    -- cancellation or by our own request from on_task_done
    while self._ntasks > 0 do
        if self._on_completed == nil then
            self._on_completed = self._loop:create_future()
        end
        local waiter = self._on_completed
        await_link(waiter, self._tasks, "TaskGroup " .. self._ntasks)
        local wok, e = pcall(waiter.await, waiter)
        if not wok then
            if not CancelledError:is(e) then
                -- the wait itself was impossible (misuse): do not leave
                -- children running behind the error
                abort(self)
                self._finished = true
                error(e, 0)
            end
            if not self._aborting then
                -- the parent is being cancelled while children still run
                propagate = e
                abort(self)
            end
        end
        self._on_completed = nil
    end
    self._finished = true
    await_unlink(self._parent, self._tasks)

    if self._parent_cancel_requested then
        -- the cancel we made is taken back; a CancelledError is passed
        -- on only when someone else asked too
        if self._parent:uncancel() == 0 then propagate = nil end
    end
    local errors = self._errors
    if propagate ~= nil and #errors == 0 then error(propagate, 0) end
    if not ok and not body_cancelled then errors[#errors + 1] = exc end
    if #errors > 0 then
        -- an outside cancellation of the parent is kept for its next await
        -- (uncancel then cancel keeps the count stable)
        if self._parent:cancelling() > 0 then
            self._parent:uncancel()
            self._parent:cancel()
        end
        error(error_group(errors))
    end
end

-- The end of the block of `local tg <close> = lasio.TaskGroup()`: err is
-- the error leaving the block, if any. Raising here replaces it, which is
-- how the ErrorGroup (or the TimeoutError of an outer scope) gets out.
function TaskGroup:__close(err)
    if self._exiting then return end
    exit(self, err == nil, err)
end

-- A group entered in the current task (what names the caller in errors).
local function new_group(what)
    local parent = current_task()
    if parent == nil then
        error(what .. ": not inside a task (use lasio.run or the lasio command)", 3)
    end
    local self = setmetatable({
        _parent = parent,
        _loop = parent:get_loop(),
        _tasks = {},  -- set of running children
        _order = {},  -- children in spawn order (may hold finished ones)
        _ntasks = 0,
        _errors = {},
        _exiting = false,
        _aborting = false,
        _finished = false,
        _parent_cancel_requested = false,
        _on_completed = nil,
    }, TaskGroup)
    self._on_done = function(t) on_task_done(self, t) end
    -- the parent awaits its running children (asyncio 3.14's awaited-by)
    await_link(parent, self._tasks)
    return self
end

-- lasio.taskgroup(body, ...) -> body(tg, ...)'s results once every child
-- spawned with tg:spawn has finished
function M.taskgroup(body, ...)
    if type(body) ~= "function" then
        error("lasio.taskgroup: body must be a function, got " .. type(body), 2)
    end
    local self = new_group("lasio.taskgroup")
    local r = table.pack(pcall(body, self, ...))
    exit(self, r[1], r[2])
    return table.unpack(r, 2, r.n)
end

-- lasio.TaskGroup() -> a group for `local tg <close> = lasio.TaskGroup()`:
-- closing it waits for the children (asyncio.TaskGroup)
function M.TaskGroup(...)
    if select("#", ...) > 0 then
        error("lasio.TaskGroup: takes no arguments (use tg:spawn(fn, ...))", 2)
    end
    return new_group("lasio.TaskGroup")
end

return M
