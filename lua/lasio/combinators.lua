-- lasio.combinators: waiting on several awaitables at once (docs/API.md,
-- Combinators, timeouts and task groups): gather, wait, as_completed and
-- shield, ported from asyncio's tasks.py.
-- Owns only the done callbacks, waiter Futures and timers it registers.
-- Invariant: a cancellation of the calling task is never lost: gather
-- passes it on to its children or raises it, wait and as_completed raise it.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local CancelledError, TimeoutError = core.CancelledError, core.TimeoutError
local current_task = core.current_task
local await_link = core.internal.await_link
local select, type, error, pcall = select, type, error, pcall
local unpack, pack = table.unpack, table.pack

local M = {}

-- {====== Argument checks (shared by the functions below) ======

-- Is v a lasio Future or Task?
local is_future = core.isfuture

-- Did the done, not cancelled future fail? (exception() returns no value
-- on success and the error, which may be nil, on failure.)
local function failed(fut)
    return select("#", fut:exception()) > 0
end

-- Raises "what: message" at the user's call site, `depth` facade frames
-- above the function calling misuse (1: a public function, 2: a helper).
local function misuse(depth, what, fmt, ...)
    error(what .. ": " .. fmt:format(...), depth + 2)
end

local function check_options(what, opts, allowed)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        misuse(2, what, "options must be a table, got %s", type(opts))
    end
    for k in pairs(opts) do
        if not allowed[k] then misuse(2, what, "unknown option '%s'", tostring(k)) end
    end
    return opts
end

local function check_timeout(what, v)
    if v == nil then return nil end
    if type(v) ~= "number" then
        misuse(2, what, "timeout must be a number or nil, got %s", type(v))
    end
    if v ~= v then misuse(2, what, "timeout must not be NaN") end
    return v
end

-- The sequence a list argument holds: n = list.n or #list.
local function check_list(what, list)
    if type(list) ~= "table" then
        misuse(2, what, "expected a list of awaitables, got %s",
            is_future(list) and "a single " .. tostring(list) or type(list))
    end
    local n = list.n
    if n == nil then
        n = #list
    elseif math.type(n) ~= "integer" or n < 0 then
        misuse(2, what, "list.n must be a non-negative integer")
    end
    return n
end

-- Checks items 1..n of list: awaitables of the running loop. Returns the
-- calling task.
local function check_items(what, list, n)
    local task = current_task()
    if task == nil then
        misuse(2, what, "not inside a task (use lasio.run or the lasio command)")
    end
    local loop = task:get_loop()
    for i = 1, n do
        local v = list[i]
        if type(v) ~= "function" then
            if not is_future(v) then
                misuse(2, what, "item %d is not awaitable (a Future, Task or "
                    .. "function), got %s", i, type(v))
            end
            if v:get_loop() ~= loop then
                misuse(2, what, "item %d belongs to another loop", i)
            end
        end
    end
    return task, loop
end

-- Futures for items 1..n, functions started as tasks: `children` per
-- position, `uniq` the distinct ones in order of first appearance. A Future
-- given twice is one child; a function given twice runs twice.
local function start_all(loop, list, n)
    local children, uniq, seen, spawned = {}, {}, {}, {}
    for i = 1, n do
        local v = list[i]
        if type(v) == "function" then
            v = loop:create_task(v)
            spawned[#spawned + 1] = v
        end
        if not seen[v] then
            seen[v] = true
            uniq[#uniq + 1] = v
        end
        children[i] = v
    end
    return children, uniq, spawned
end

-- A done callback that resolves waiter unless it is done.
local function releaser(waiter)
    return function()
        if not waiter:done() then waiter:set_result() end
    end
end

-- ====== }

-- {====== gather ======
-- asyncio's gather with its _GatheringFuture folded into the waiting task.
-- Children report in done callbacks; the waiting task wakes only when the
-- outcome is known (the first failure, or the last child). A cancel of the
-- waiting task reaches us as our waiter Future being cancelled: then every
-- child still running is cancelled (asyncio's _GatheringFuture.cancel) and
-- the gather goes on waiting for them; when no child can take the cancel
-- (all have finished), the CancelledError is raised at once, so a
-- successful cancel() is never dropped (bpo-26923).

-- The per-child work (checks, starting functions, counting the children
-- in a C done callback, marking late errors retrieved) is gather_ops
-- (gather.c); this loop runs once per wake-up of the gathering task.
local gops = core.internal.gather_ops

local function gather_wait(loop, g, n)
    local cancel_err
    while gops.pending(g) do
        local wake = gops.waiter(g, loop)
        local ok, e = pcall(wake.await, wake)
        if not ok then
            local woken = wake:done() and not wake:cancelled()
            if woken or not CancelledError:is(e) then
                -- a cancel that came after the outcome was known, or an
                -- await that could not happen (misuse): the tasks gather
                -- started are cancelled in the second case
                gops.close(g, not CancelledError:is(e))
                error(e, 0)
            end
            if not gops.cancel(g, e.message) then
                gops.close(g)
                error(e, 0)
            end
            cancel_err = e
        end
    end
    local decisive, children = gops.close(g)

    if decisive then
        decisive:result() -- raises its error, or its CancelledError
    end
    if cancel_err then error(cancel_err, 0) end
    -- every child is done: their first results (errors in their places
    -- with return_exceptions), gathered in C
    return core.internal.gather_results(children, n)
end

-- lasio.gather(aw, ...) -> the first result of each
-- lasio.gather(list [, {return_exceptions=}]) -> {n=#list, ...}
function M.gather(...)
    local what = "lasio.gather"
    local list, n, opts, table_form
    if type((...)) == "table" then
        if select("#", ...) > 2 then
            misuse(1, what, "the table form takes (list [, options]), got %d arguments",
                select("#", ...))
        end
        list = ...
        n = check_list(what, list)
        opts = check_options(what, (select(2, ...)), { return_exceptions = true })
        table_form = true
    else
        list = pack(...)
        n = list.n
        opts = {}
    end
    local rex = opts.return_exceptions
    if rex ~= nil and type(rex) ~= "boolean" then
        misuse(1, what, "return_exceptions must be a boolean, got %s", type(rex))
    end
    local task = current_task()
    if task == nil then
        misuse(1, what, "not inside a task (use lasio.run or the lasio command)")
    end
    local loop = task:get_loop()
    if n == 0 then
        if table_form then return { n = 0 } end
        return
    end
    local g, bad, why = gops.start(loop, list, n, rex)
    if not g then
        if why == "loop" then
            misuse(1, what, "item %d belongs to another loop", bad)
        end
        misuse(1, what, "item %d is not awaitable (a Future, Task or "
            .. "function), got %s", bad, type(list[bad]))
    end
    local res = gather_wait(loop, g, n)
    if table_form then return res end
    return unpack(res, 1, n)
end

-- ====== }

-- {====== wait ======

local RETURN_WHEN = {
    ALL_COMPLETED = true, FIRST_COMPLETED = true, FIRST_EXCEPTION = true,
}
M.ALL_COMPLETED = "ALL_COMPLETED"
M.FIRST_COMPLETED = "FIRST_COMPLETED"
M.FIRST_EXCEPTION = "FIRST_EXCEPTION"

-- lasio.wait(list [, {timeout=, return_when=}]) -> done, pending
function M.wait(list, opts)
    local what = "lasio.wait"
    local n = check_list(what, list)
    opts = check_options(what, opts, { timeout = true, return_when = true })
    local timeout = check_timeout(what, opts.timeout)
    local return_when = opts.return_when
    if return_when == nil then return_when = "ALL_COMPLETED" end
    if not RETURN_WHEN[return_when] then
        misuse(1, what, "return_when must be \"ALL_COMPLETED\", \"FIRST_COMPLETED\" "
            .. "or \"FIRST_EXCEPTION\", got %s", tostring(return_when))
    end
    local _, loop = check_items(what, list, n)
    if n == 0 then misuse(1, what, "the list of awaitables is empty") end
    local _, futs = start_all(loop, list, n)

    local waiter = loop:create_future()
    await_link(waiter, futs, "wait " .. #futs)
    local release = releaser(waiter)
    local handle
    if timeout ~= nil and timeout < math.huge then
        handle = loop:call_later(timeout, release)
    end
    local counter = #futs
    local function on_completion(f)
        counter = counter - 1
        if counter <= 0 or return_when == "FIRST_COMPLETED"
            or (return_when == "FIRST_EXCEPTION" and not f:cancelled() and failed(f)) then
            if handle then handle:cancel() end
            release()
        end
    end
    for _, f in ipairs(futs) do f:add_done_callback(on_completion) end
    local ok, e = pcall(waiter.await, waiter)
    if handle then handle:cancel() end
    for _, f in ipairs(futs) do f:remove_done_callback(on_completion) end
    if not ok then error(e, 0) end

    local done, pending = {}, {}
    for _, f in ipairs(futs) do
        if f:done() then done[#done + 1] = f else pending[#pending + 1] = f end
    end
    return done, pending
end

-- ====== }

-- {====== as_completed ======

-- for fut in lasio.as_completed(list [, {timeout=}]) do ... end
-- The fourth value closes the iteration when the loop is left early
-- (callbacks removed, timer cancelled).
function M.as_completed(list, opts)
    local what = "lasio.as_completed"
    local n = check_list(what, list)
    opts = check_options(what, opts, { timeout = true })
    local timeout = check_timeout(what, opts.timeout)
    local _, loop = check_items(what, list, n)
    local _, futs = start_all(loop, list, n)

    local todo, ntodo = {}, #futs
    local queue, qhead, qtail = {}, 1, 0
    local remaining = #futs -- values still to hand out
    local timed_out = false
    local waiter, handle

    local function wake()
        if waiter and not waiter:done() then waiter:set_result() end
    end
    local on_completion
    local function stop()
        if handle then handle:cancel() end
        handle = nil
        for f in pairs(todo) do f:remove_done_callback(on_completion) end
        todo, ntodo = {}, 0
    end
    on_completion = function(f)
        if not todo[f] then return end
        todo[f] = nil
        ntodo = ntodo - 1
        qtail = qtail + 1
        queue[qtail] = f
        if ntodo == 0 and handle then
            handle:cancel()
            handle = nil
        end
        wake()
    end
    for _, f in ipairs(futs) do
        todo[f] = true
        f:add_done_callback(on_completion)
    end
    if ntodo > 0 and timeout ~= nil and timeout < math.huge then
        handle = loop:call_later(timeout, function()
            handle = nil
            timed_out = true
            stop()
            wake()
        end)
    end

    local function next_done()
        while true do
            if qhead <= qtail then
                local f = queue[qhead]
                queue[qhead] = nil
                qhead = qhead + 1
                remaining = remaining - 1
                return f
            end
            if remaining == 0 then return nil end
            if timed_out then
                remaining = remaining - 1
                error(TimeoutError(), 2)
            end
            if waiter == nil or waiter:done() then
                waiter = loop:create_future()
                await_link(waiter, todo, "as_completed")
            end
            waiter:await()
        end
    end
    local closer = setmetatable({}, { __close = stop })
    return next_done, nil, nil, closer
end

-- ====== }

-- {====== shield ======

-- lasio.shield(aw) -> a Future whose cancellation does not reach aw
function M.shield(aw)
    local what = "lasio.shield"
    local inner = aw
    if type(aw) == "function" then
        if not pcall(core.get_running_loop) then
            misuse(1, what, "no running loop to start the function on")
        end
        inner = core.spawn(aw)
    elseif not is_future(aw) then
        misuse(1, what, "expected an awaitable (a Future, Task or function), got %s", type(aw))
    end
    if inner:done() then return inner end
    local outer = inner:get_loop():create_future()
    await_link(outer, inner, "shield")
    local function inner_done(f)
        if outer:cancelled() then
            if not f:cancelled() then f:exception() end -- mark it retrieved
            return
        end
        if f:cancelled() then
            outer:cancel()
        elseif failed(f) then
            local e = f:exception()
            if e == nil then e = "nil error" end
            outer:set_exception(e)
        else
            outer:set_result(f:result())
        end
    end
    inner:add_done_callback(inner_done)
    outer:add_done_callback(function()
        if not inner:done() then inner:remove_done_callback(inner_done) end
    end)
    return outer
end

-- ====== }

return M
