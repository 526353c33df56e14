-- lasio.queues: Queue (FIFO), LifoQueue and PriorityQueue (API.md section
-- 5), asyncio's queues.py of Python 3.13 (task_done/join, shutdown) on
-- Futures. Each queue owns its items and FIFOs of getter and putter Futures,
-- made only when a call must wait. Invariant: an item or a free slot is never
-- lost: a waiter woken but leaving passes the wake-up on to the next one.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"
local locks = require "lasio.locks"

local current_task = core.current_task
local QueueEmpty, QueueFull, QueueShutDown = core.QueueEmpty, core.QueueFull, core.QueueShutDown
local error, pcall, setmetatable, getmetatable = error, pcall, setmetatable, getmetatable
local type, tostring, rawget = type, tostring, rawget
local string_format, table_move = string.format, table.move

local M = {}

-- {====== Waiter FIFO (head index h, tail index t; empty: h > t) ======

local function wq_push(q, v)
    local t = q.t + 1
    q.t = t
    q[t] = v
end

local function wq_remove(q, v)
    local h, t = q.h, q.t
    for i = h, t do
        if q[i] == v then
            table_move(q, i + 1, t, i)
            q[t] = nil
            if t - 1 < h then
                q.h, q.t = 1, 0
            else
                q.t = t - 1
            end
            return true
        end
    end
    return false
end

-- Pops waiters until one that is not done, and wakes it.
local function wakeup_next(q)
    local h, t = q.h, q.t
    while h <= t do
        local fut = q[h]
        q[h] = nil
        h = h + 1
        if not fut:done() then
            fut:set_result()
            break
        end
    end
    if h > t then
        q.h, q.t = 1, 0
    else
        q.h = h
    end
end

-- Wakes every waiter (shutdown), emptying the FIFO.
local function wakeup_all(q)
    for i = q.h, q.t do
        local fut = q[i]
        q[i] = nil
        if not fut:done() then fut:set_result() end
    end
    q.h, q.t = 1, 0
end

-- ====== }

-- A new waiter Future on the running loop; a queue binds to the loop of its
-- first wait, as asyncio's do.
local function new_waiter(self, what)
    local task = current_task()
    if task == nil then
        error(what .. ": not inside a task (use lasio.run or the lasio command)", 3)
    end
    local loop = task:get_loop()
    local bound = rawget(self, "_loop")
    if bound ~= loop then
        if bound ~= nil then
            error(what .. ": " .. tostring(self) ..
                " is bound to a different event loop", 3)
        end
        self._loop = loop
    end
    return loop:create_future()
end

-- {====== The three orders ======
-- _put(self, item) and _get(self) keep self._n, the item count; items live
-- in self._items. Queue: a FIFO from index _head; nils are items too, since
-- the count, not a nil, tells where the items end.

local Queue = { __name = "lasio.Queue" }
Queue.__index = Queue

local LifoQueue = setmetatable({ __name = "lasio.LifoQueue" }, { __index = Queue })
LifoQueue.__index = LifoQueue

local PriorityQueue = setmetatable({ __name = "lasio.PriorityQueue" }, { __index = Queue })
PriorityQueue.__index = PriorityQueue

-- Names of the methods that may wait, for error messages.
Queue._what_get, Queue._what_put = "lasio.Queue:get", "lasio.Queue:put"
LifoQueue._what_get, LifoQueue._what_put = "lasio.LifoQueue:get", "lasio.LifoQueue:put"
PriorityQueue._what_get, PriorityQueue._what_put =
    "lasio.PriorityQueue:get", "lasio.PriorityQueue:put"

function Queue._put(self, item)
    local n = self._n
    self._items[self._head + n] = item
    self._n = n + 1
end

function Queue._get(self)
    local items, h = self._items, self._head
    local item = items[h]
    items[h] = nil
    local n = self._n - 1
    self._n = n
    self._head = n == 0 and 1 or h + 1
    return item
end

function LifoQueue._put(self, item)
    local n = self._n + 1
    self._items[n] = item
    self._n = n
end

function LifoQueue._get(self)
    local items, n = self._items, self._n
    local item = items[n]
    items[n] = nil
    self._n = n - 1
    return item
end

-- A binary heap ordered by `<`. Both operations first find the final place
-- of the moving item by comparisons alone, then move the items on its path,
-- so a comparison that raises leaves the heap as it was.
function PriorityQueue._put(self, item)
    local items, n = self._items, self._n + 1
    local i = n
    while i > 1 do
        local p = i // 2
        if item < items[p] then i = p else break end
    end
    local j = n
    while j > i do
        local p = j // 2
        items[j] = items[p]
        j = p
    end
    items[i] = item
    self._n = n
end

function PriorityQueue._get(self)
    local items, n = self._items, self._n
    local top = items[1]
    if n == 1 then
        items[1] = nil
        self._n = 0
        return top
    end
    local last = items[n]
    local m = n - 1 -- heap size after the removal
    local hole = 1
    while true do
        local c = 2 * hole
        if c > m then break end
        if c < m and items[c + 1] < items[c] then c = c + 1 end
        if items[c] < last then hole = c else break end
    end
    -- move up every item on the path from the root to `hole`
    local depth = 0
    while (hole >> depth) > 1 do depth = depth + 1 end
    for level = depth - 1, 0, -1 do
        local child = hole >> level
        items[child >> 1] = items[child]
    end
    items[hole] = last
    items[n] = nil
    self._n = m
    return top
end

-- ====== }

local function new_queue(cls, maxsize, what)
    if maxsize == nil then
        maxsize = 0
    elseif type(maxsize) ~= "number" or maxsize ~= maxsize or maxsize < 0 then
        error(string_format("%s: maxsize must be a number >= 0 (0: unbounded), got %s",
            what, tostring(maxsize)), 3)
    end
    return setmetatable({
        maxsize = maxsize,
        _items = {},
        _head = 1,
        _n = 0,
        _getters = { h = 1, t = 0 },
        _putters = { h = 1, t = 0 },
        _unfinished = 0,
        _finished = false, -- an Event made by the first join that waits
        _shutdown = false,
    }, cls)
end

function M.Queue(maxsize)
    return new_queue(Queue, maxsize, "lasio.Queue")
end

function M.LifoQueue(maxsize)
    return new_queue(LifoQueue, maxsize, "lasio.LifoQueue")
end

function M.PriorityQueue(maxsize)
    return new_queue(PriorityQueue, maxsize, "lasio.PriorityQueue")
end

function Queue:qsize()
    return self._n
end

function Queue:empty()
    return self._n == 0
end

local function full(self)
    local maxsize = self.maxsize
    return maxsize > 0 and self._n >= maxsize
end

function Queue:full()
    return full(self)
end

function Queue:put_nowait(item)
    if self._shutdown then error(QueueShutDown("the queue is shut down")) end
    if full(self) then error(QueueFull("the queue is full")) end
    self:_put(item)
    self._unfinished = self._unfinished + 1
    local finished = self._finished
    if finished then finished:clear() end
    local getters = self._getters
    if getters.t >= getters.h then wakeup_next(getters) end
end

function Queue:get_nowait()
    if self._n == 0 then
        if self._shutdown then error(QueueShutDown("the queue is shut down")) end
        error(QueueEmpty("the queue is empty"))
    end
    local item = self:_get()
    local putters = self._putters
    if putters.t >= putters.h then wakeup_next(putters) end
    return item
end

-- Waits on a new Future in `q` (the getters or the putters). A waiter that
-- leaves with an error after put_nowait or get_nowait woke it passes the
-- wake-up on while what it was woken for is still there.
local function wait_in(self, q, what, still_there)
    local fut = new_waiter(self, what)
    wq_push(q, fut)
    local ok, err = pcall(fut.await, fut)
    if not ok then
        fut:cancel() -- in case it is not done yet (an error before the wait)
        wq_remove(q, fut)
        if still_there(self) and not fut:cancelled() then wakeup_next(q) end
        error(err, 0)
    end
end

local function not_full(self) return not full(self) end
local function not_empty(self) return self._n > 0 end

function Queue:put(item)
    while full(self) do
        if self._shutdown then error(QueueShutDown("the queue is shut down")) end
        wait_in(self, self._putters, self._what_put, not_full)
    end
    return self:put_nowait(item)
end

function Queue:get()
    while self._n == 0 do
        if self._shutdown then error(QueueShutDown("the queue is shut down")) end
        wait_in(self, self._getters, self._what_get, not_empty)
    end
    return self:get_nowait()
end

function Queue:task_done()
    local u = self._unfinished
    if u <= 0 then
        error(getmetatable(self).__name .. ":task_done: called more times than "
            .. "there were items put", 2)
    end
    u = u - 1
    self._unfinished = u
    if u == 0 and self._finished then self._finished:set() end
end

function Queue:join()
    if self._unfinished > 0 then
        local finished = self._finished
        if not finished then
            finished = locks.Event() -- unset: there are unfinished items
            self._finished = finished
        end
        finished:wait()
    end
end

function Queue:shutdown(immediate)
    self._shutdown = true
    if immediate then
        local n = self._n
        self._items, self._head, self._n = {}, 1, 0
        local u = self._unfinished
        u = u > n and u - n or 0
        self._unfinished = u
        if u == 0 and self._finished then self._finished:set() end
    end
    -- every getter re-checks the queue, and raises if it is empty
    wakeup_all(self._getters)
    wakeup_all(self._putters)
end

local function queue_tostring(self)
    local s = string_format("%s<maxsize=%s qsize=%d", getmetatable(self).__name,
        tostring(self.maxsize), self._n)
    local g, p = self._getters, self._putters
    if g.t >= g.h then s = s .. string_format(" getters=%d", g.t - g.h + 1) end
    if p.t >= p.h then s = s .. string_format(" putters=%d", p.t - p.h + 1) end
    if self._unfinished > 0 then s = s .. string_format(" tasks=%d", self._unfinished) end
    if self._shutdown then s = s .. " shutdown" end
    return s .. ">"
end

Queue.__tostring = queue_tostring
LifoQueue.__tostring = queue_tostring
PriorityQueue.__tostring = queue_tostring

return M
