-- lasio.queues: Queue (FIFO), LifoQueue and PriorityQueue (API.md section
-- 5), asyncio's queues.py of Python 3.13 (task_done/join, shutdown). Each
-- queue owns its items and two core WaitQueues (getters, putters), in which a
-- waiting task allocates nothing. Invariant: an item or a free slot is never
-- lost: a waiter woken but leaving passes the wake-up on to the next one.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"
local locks = require "lasio.locks"

local WaitQueue = core.WaitQueue
local QueueEmpty, QueueFull, QueueShutDown = core.QueueEmpty, core.QueueFull, core.QueueShutDown
local error, setmetatable, getmetatable = error, setmetatable, getmetatable
local type, tostring = type, tostring
local string_format = string.format

local M = {}

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
        _getters = WaitQueue(),
        _putters = WaitQueue(),
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
    if #getters > 0 then getters:wake() end
end

function Queue:get_nowait()
    if self._n == 0 then
        if self._shutdown then error(QueueShutDown("the queue is shut down")) end
        error(QueueEmpty("the queue is empty"))
    end
    local item = self:_get()
    local putters = self._putters
    if #putters > 0 then putters:wake() end
    return item
end

-- Waits in `q` (the getters or the putters, core WaitQueues: waiting
-- allocates nothing). A waiter that leaves with an error after put_nowait
-- or get_nowait woke it passes the wake-up on while what it was woken for
-- is still there.
local function wait_in(self, q, what, still_there)
    local ok, err, woken = q:wait(what)
    if not ok then
        if woken and still_there(self) then q:wake() end
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
    self._getters:wake_all()
    self._putters:wake_all()
end

local function queue_tostring(self)
    local s = string_format("%s<maxsize=%s qsize=%d", getmetatable(self).__name,
        tostring(self.maxsize), self._n)
    local g, p = #self._getters, #self._putters
    if g > 0 then s = s .. string_format(" getters=%d", g) end
    if p > 0 then s = s .. string_format(" putters=%d", p) end
    if self._unfinished > 0 then s = s .. string_format(" tasks=%d", self._unfinished) end
    if self._shutdown then s = s .. " shutdown" end
    return s .. ">"
end

Queue.__tostring = queue_tostring
LifoQueue.__tostring = queue_tostring
PriorityQueue.__tostring = queue_tostring

return M
