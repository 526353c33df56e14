-- lasio.locks: Lock, Event, Condition, Semaphore, BoundedSemaphore and
-- Barrier (docs/API.md, Synchronisation and queues), ported from asyncio's
-- locks.py. The hot ones,
-- Lock and Event, wait in core WaitQueues (no allocation per wait); the
-- others keep a FIFO of waiter Futures, made only when a call must wait.
-- Invariant: a waiter that leaves (woken, cancelled, failed) passes on any
-- wake-up it got but cannot use, so no wake-up is lost and no lock held.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local current_task = core.current_task
local WaitQueue = core.WaitQueue
local await_link = core.internal.await_link
local CancelledError = core.CancelledError
local BrokenBarrierError = core.BrokenBarrierError
local error, pcall, setmetatable, getmetatable = error, pcall, setmetatable, getmetatable
local type, tostring, rawget = type, tostring, rawget
local math_type, math_tointeger = math.type, math.tointeger
local string_format, table_move = string.format, table.move

local M = {}

-- {====== Waiter FIFO ======
-- A sequence with a head index `h` and a tail index `t` (empty: h > t).
-- Removing from the middle is O(n); it happens only when a waiter leaves
-- without having been popped (cancellation), which is rare.

local function wq_new()
    return { h = 1, t = 0 }
end

local function wq_push(q, v)
    local t = q.t + 1
    q.t = t
    q[t] = v
end

local function wq_len(q)
    return q.t - q.h + 1
end

-- Removes v; returns whether it was there.
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

-- ====== }

-- A new waiter Future for `self` on the running loop. A primitive binds to
-- the loop of its first wait, as asyncio's do; `what` names the method.
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
    local fut = loop:create_future()
    await_link(fut, nil, what) -- what a task waiting on it shows
    return fut
end

-- q: a WaitQueue (Lock, Event), a waiter FIFO (the others) or nil.
local function waiters_suffix(q)
    local n = q and (type(q) == "userdata" and #q or wq_len(q)) or 0
    if n > 0 then
        return string_format(" waiters=%d", n)
    end
    return ""
end

-- An integer >= min (an integral float is accepted), else a misuse error.
local function check_count(value, what, name, min)
    if math_type(value) ~= "integer" then
        local i = type(value) == "number" and math_tointeger(value)
        if not i then
            error(string_format("%s: %s must be an integer, got %s", what, name,
                type(value) == "number" and tostring(value) or type(value)), 3)
        end
        value = i
    end
    if value < min then
        error(string_format("%s: %s must be >= %d, got %d", what, name, min, value), 3)
    end
    return value
end

-- {====== Lock ======
-- Waiters wait in a core WaitQueue (no allocation per wait). release()
-- wakes the first waiter and marks the lock handed off: until that waiter
-- runs and takes the lock, newcomers queue behind it (asyncio keeps the
-- woken waiter's Future in its deque for the same fairness).

local Lock = { __name = "lasio.Lock" }
Lock.__index = Lock

function M.Lock()
    return setmetatable({ _locked = false, _waiters = nil, _handoff = false }, Lock)
end

-- Wakes the first waiter for the free lock, unless one is on its way.
local function lock_wake_up_first(self)
    local q = self._waiters
    if q and not self._handoff and q:wake() then
        self._handoff = true
    end
end

local function lock_acquire(self)
    if not self._locked and not self._handoff then
        local q = self._waiters
        if q == nil or #q == 0 then
            self._locked = true
            return self
        end
    end
    local q = self._waiters
    if q == nil then
        q = WaitQueue()
        self._waiters = q
    end
    local ok, err, woken = q:wait("lasio.Lock:acquire")
    if not ok then
        if woken then
            -- handed the free lock, but leaving (cancelled just after the
            -- wake-up): the next waiter must get it
            self._handoff = false
            if not self._locked then lock_wake_up_first(self) end
        end
        error(err, 0)
    end
    self._handoff = false
    self._locked = true
    return self
end

local function lock_release(self, what)
    if not self._locked then
        error((what or "lasio.Lock:release") .. ": the lock is not acquired", 3)
    end
    self._locked = false
    lock_wake_up_first(self)
end

Lock.acquire = lock_acquire

function Lock:release()
    lock_release(self)
end

function Lock:locked()
    return self._locked
end

function Lock:__close()
    lock_release(self, "lasio.Lock (closing)")
end

function Lock:__tostring()
    return string_format("lasio.Lock<%s%s>", self._locked and "locked" or "unlocked",
        waiters_suffix(self._waiters))
end

-- ====== }

-- {====== Event ======

local Event = { __name = "lasio.Event" }
Event.__index = Event

function M.Event()
    return setmetatable({ _value = false, _waiters = nil }, Event)
end

function Event:is_set()
    return self._value
end

function Event:set()
    if not self._value then
        self._value = true
        local q = self._waiters
        if q then q:wake_all() end
    end
end

function Event:clear()
    self._value = false
end

function Event:wait()
    if self._value then return true end
    local q = self._waiters
    if q == nil then
        q = WaitQueue()
        self._waiters = q
    end
    local ok, err = q:wait("lasio.Event:wait")
    if not ok then error(err, 0) end
    return true
end

function Event:__tostring()
    return string_format("lasio.Event<%s%s>", self._value and "set" or "unset",
        waiters_suffix(self._waiters))
end

-- ====== }

-- {====== Condition ======

local Condition = { __name = "lasio.Condition" }
Condition.__index = Condition

function M.Condition(lock)
    if lock == nil then
        lock = M.Lock()
    elseif getmetatable(lock) ~= Lock then
        error("lasio.Condition: lock must be a lasio.Lock, got " .. tostring(lock), 2)
    end
    return setmetatable({ _lock = lock, _waiters = wq_new() }, Condition)
end

function Condition:acquire()
    lock_acquire(self._lock)
    return self
end

function Condition:release()
    lock_release(self._lock, "lasio.Condition:release")
end

function Condition:locked()
    return self._lock._locked
end

function Condition:__close()
    lock_release(self._lock, "lasio.Condition (closing)")
end

-- Wakes up to n waiters that are not done yet.
local function cond_notify(self, n)
    local q = self._waiters
    local woken = 0
    for i = q.h, q.t do
        if woken >= n then break end
        local fut = q[i]
        if not fut:done() then
            woken = woken + 1
            fut:set_result(false)
        end
    end
end

-- Releases the lock, waits for a notify, re-acquires the lock even when
-- cancelled (re-acquiring keeps the most recent CancelledError). Leaving with
-- an error passes a possible notification on: a spurious wake-up for
-- someone, never a lost one.
local function cond_wait(self, what)
    local lock = self._lock
    if not lock._locked then
        error(what .. ": the lock is not acquired", 3)
    end
    local fut = new_waiter(self, what)
    lock_release(lock)
    local q = self._waiters
    wq_push(q, fut)
    local ok, err = pcall(fut.await, fut)
    wq_remove(q, fut)
    while true do
        local ok2, err2 = pcall(lock_acquire, lock)
        if ok2 then break end
        ok, err = false, err2
        if not CancelledError:is(err2) then break end
    end
    if not ok then
        cond_notify(self, 1)
        error(err, 0)
    end
    return true
end

function Condition:wait()
    return cond_wait(self, "lasio.Condition:wait")
end

function Condition:wait_for(predicate)
    local mt = getmetatable(predicate)
    if type(predicate) ~= "function" and not (type(mt) == "table" and mt.__call) then
        error(("lasio.Condition:wait_for: predicate must be a function, got %s")
            :format(type(predicate)), 2)
    end
    local result = predicate()
    while not result do
        cond_wait(self, "lasio.Condition:wait_for")
        result = predicate()
    end
    return result
end

function Condition:notify(n)
    if n == nil then
        n = 1
    elseif type(n) ~= "number" or n ~= n then
        error("lasio.Condition:notify: n must be a number, got " .. tostring(n), 2)
    end
    if not self._lock._locked then
        error("lasio.Condition:notify: the lock is not acquired", 2)
    end
    cond_notify(self, n)
end

function Condition:notify_all()
    if not self._lock._locked then
        error("lasio.Condition:notify_all: the lock is not acquired", 2)
    end
    cond_notify(self, wq_len(self._waiters))
end

function Condition:__tostring()
    return string_format("lasio.Condition<%s%s>",
        self._lock._locked and "locked" or "unlocked", waiters_suffix(self._waiters))
end

-- ====== }

-- {====== Semaphore and BoundedSemaphore ======

local Semaphore = { __name = "lasio.Semaphore" }
Semaphore.__index = Semaphore

local BoundedSemaphore = setmetatable({ __name = "lasio.BoundedSemaphore" },
    { __index = Semaphore })
BoundedSemaphore.__index = BoundedSemaphore

function M.Semaphore(value)
    if value == nil then value = 1 end
    value = check_count(value, "lasio.Semaphore", "value", 0)
    return setmetatable({ _value = value, _waiters = nil }, Semaphore)
end

function M.BoundedSemaphore(value)
    if value == nil then value = 1 end
    value = check_count(value, "lasio.BoundedSemaphore", "value", 0)
    return setmetatable({ _value = value, _bound = value, _waiters = nil },
        BoundedSemaphore)
end

-- Cannot be acquired at once: no value left, or FIFO order (a waiter that is
-- not cancelled, woken ones included, goes first).
local function sem_locked(self)
    if self._value == 0 then return true end
    local q = self._waiters
    if q then
        for i = q.h, q.t do
            if not q[i]:cancelled() then return true end
        end
    end
    return false
end

-- Wakes the first waiter that is not done, handing it one unit.
local function sem_wake_up_next(self)
    local q = self._waiters
    if q then
        for i = q.h, q.t do
            local fut = q[i]
            if not fut:done() then
                self._value = self._value - 1
                fut:set_result(true)
                return true
            end
        end
    end
    return false
end

local function sem_acquire(self)
    if not sem_locked(self) then
        self._value = self._value - 1
        return self
    end
    local fut = new_waiter(self, getmetatable(self).__name .. ":acquire")
    local q = self._waiters
    if q == nil then
        q = wq_new()
        self._waiters = q
    end
    wq_push(q, fut)
    local ok, err = pcall(fut.await, fut)
    wq_remove(q, fut)
    if not ok and fut:done() and not fut:cancelled() then
        -- woken (a unit was handed to us) but leaving: give it back
        self._value = self._value + 1
    end
    -- Waiters that came while FIFO order held them back: wake as many as
    -- there are units.
    while self._value > 0 do
        if not sem_wake_up_next(self) then break end
    end
    if not ok then error(err, 0) end
    return self
end

Semaphore.acquire = sem_acquire

function Semaphore:release()
    self._value = self._value + 1
    sem_wake_up_next(self)
end

function BoundedSemaphore:release()
    if self._value >= self._bound then
        error("lasio.BoundedSemaphore:release: released too many times", 2)
    end
    self._value = self._value + 1
    sem_wake_up_next(self)
end

function Semaphore:locked()
    return sem_locked(self)
end

function Semaphore:__close()
    self:release()
end

BoundedSemaphore.__close = Semaphore.__close

local function sem_tostring(self)
    local state = sem_locked(self) and "locked"
        or string_format("unlocked value=%d", self._value)
    return string_format("%s<%s%s>", getmetatable(self).__name, state,
        waiters_suffix(self._waiters))
end

Semaphore.__tostring = sem_tostring
BoundedSemaphore.__tostring = sem_tostring

-- ====== }

-- {====== Barrier ======
-- asyncio's design: a Condition guards `_state` and `_count`; the tasks of
-- one round leave while the barrier drains, and new arrivals wait for that.

local FILLING, DRAINING, RESETTING, BROKEN = "filling", "draining", "resetting", "broken"

local Barrier = { __name = "lasio.Barrier" }

-- parties, n_waiting and broken are read-only fields computed on access.
local barrier_fields = {
    parties = function(self) return self._parties end,
    n_waiting = function(self)
        if self._state == FILLING then return self._count end
        return 0
    end,
    broken = function(self) return self._state == BROKEN end,
}

function Barrier.__index(self, k)
    local f = barrier_fields[k]
    if f then return f(self) end
    return Barrier[k]
end

function Barrier.__newindex(_, k)
    error("lasio.Barrier: field " .. tostring(k) .. " is read-only", 2)
end

function M.Barrier(parties)
    parties = check_count(parties, "lasio.Barrier", "parties", 1)
    return setmetatable({
        _cond = M.Condition(),
        _parties = parties,
        _state = FILLING,
        _count = 0,
    }, Barrier)
end

local function not_draining_or_resetting(self)
    local s = self._state
    return s ~= DRAINING and s ~= RESETTING
end

local function not_filling(self)
    return self._state ~= FILLING
end

-- Like Condition:wait_for, with a predicate taking the barrier (no closure).
local function cond_wait_until(cond, pred, self)
    while not pred(self) do
        cond_wait(cond, "lasio.Barrier:wait")
    end
end

-- If the last task leaves, a draining or resetting barrier fills again.
local function barrier_exit(self)
    if self._count == 0 then
        local s = self._state
        if s == RESETTING or s == DRAINING then self._state = FILLING end
        cond_notify(self._cond, wq_len(self._cond._waiters))
    end
end

-- Inside the condition: wait (or release the others) for one round.
local function barrier_pass(self, index)
    local cond = self._cond
    if index + 1 == self._parties then
        self._state = DRAINING
        cond_notify(cond, wq_len(cond._waiters))
    else
        cond_wait_until(cond, not_filling, self)
        local s = self._state
        if s == BROKEN or s == RESETTING then
            error(BrokenBarrierError("Abort or reset of barrier"))
        end
    end
    return index
end

local function barrier_wait_locked(self)
    -- block while the barrier drains or resets
    cond_wait_until(self._cond, not_draining_or_resetting, self)
    if self._state == BROKEN then
        error(BrokenBarrierError("Barrier aborted"))
    end
    local index = self._count
    self._count = index + 1
    local ok, res = pcall(barrier_pass, self, index)
    self._count = self._count - 1
    barrier_exit(self)
    if not ok then error(res, 0) end
    return res
end

-- Runs fn(self) holding the barrier's condition, releasing it on any exit.
local function with_cond(self, fn)
    local cond = self._cond
    lock_acquire(cond._lock)
    local ok, res = pcall(fn, self)
    lock_release(cond._lock)
    if not ok then error(res, 0) end
    return res
end

function Barrier:wait()
    return with_cond(self, barrier_wait_locked)
end

local function barrier_reset_locked(self)
    if self._count > 0 then
        if self._state ~= RESETTING then self._state = RESETTING end
    else
        self._state = FILLING
    end
    cond_notify(self._cond, wq_len(self._cond._waiters))
end

local function barrier_abort_locked(self)
    self._state = BROKEN
    cond_notify(self._cond, wq_len(self._cond._waiters))
end

function Barrier:reset()
    with_cond(self, barrier_reset_locked)
end

function Barrier:abort()
    with_cond(self, barrier_abort_locked)
end

function Barrier:__tostring()
    if self._state == BROKEN then return "lasio.Barrier<broken>" end
    return string_format("lasio.Barrier<%s waiters=%d/%d>", self._state,
        barrier_fields.n_waiting(self), self._parties)
end

-- ====== }

return M
