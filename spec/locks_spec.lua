-- Specs for the synchronisation primitives (docs/API.md, Synchronisation
-- and queues): Lock, Event,
-- Condition, Semaphore, BoundedSemaphore, Barrier. A port of the behaviours
-- CPython's test_locks.py checks, plus cancellation at every await, timeouts
-- around each wait, FIFO wake-up order and the cancelled-just-after-woken
-- cases. Covers F4 and F11 for these primitives.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local raises = helper.raises

local is_cancelled = helper.is_cancelled

-- Number of waiters a primitive keeps in `field`: a core WaitQueue of
-- tasks (Lock, Event) or a FIFO of waiter Futures (the others).
local function nwaiters(obj, field)
    local q = obj[field or "_waiters"]
    if not q then return 0 end
    if type(q) == "userdata" then return #q end
    return q.t - q.h + 1
end

-- Runs fn(...) in the current task with a deadline: a helper task cancels
-- this task after `delay` seconds (a stand-in for lasio.timeout). Returns
-- ok, result-or-error, timed_out.
local function within(delay, fn, ...)
    local me = lasio.current_task()
    local fired = false
    local killer = lasio.spawn(function()
        lasio.sleep(delay)
        fired = true
        me:cancel("deadline")
    end)
    local ok, res = pcall(fn, ...)
    killer:cancel()
    if fired then
        me:uncancel()
        if not ok and is_cancelled(res) then return false, res, true end
    end
    return ok, res, false
end

-- Awaits every task; returns a table of {ok, first result or error}.
local function settle(tasks)
    local out = {}
    for i, t in ipairs(tasks) do
        local ok, v = pcall(t.await, t)
        out[i] = { ok = ok, v = v }
    end
    return out
end

-- Awaits every task and returns their first results; raises the first error.
local function gather(tasks)
    local out = {}
    for i, t in ipairs(tasks) do out[i] = t:await() end
    return out
end

local function spawn_n(n, fn)
    local tasks = {}
    for i = 1, n do tasks[i] = lasio.spawn(fn, i) end
    return tasks
end

-- Bytes allocated while running fn with the collector stopped.
local function allocated_kb(fn)
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    fn()
    local after = collectgarbage("count")
    collectgarbage("restart")
    return after - before
end

describe("Lock", function()
    it("tostring shows the state and the waiters", async(function()
        local lock = lasio.Lock()
        assert.are.equal("lasio.Lock<unlocked>", tostring(lock))
        lock:acquire()
        assert.are.equal("lasio.Lock<locked>", tostring(lock))
        local t = lasio.spawn(lock.acquire, lock)
        lasio.sleep(0)
        assert.are.equal("lasio.Lock<locked waiters=1>", tostring(lock))
        lock:release()
        t:await()
        lock:release()
        assert.are.equal("lasio.Lock<unlocked>", tostring(lock))
    end))

    it("a new lock is unlocked; acquire returns the lock itself", async(function()
        local lock = lasio.Lock()
        assert.is_false(lock:locked())
        assert.are.equal(lock, lock:acquire())
        assert.is_true(lock:locked())
    end))

    it("acquire: waiters get the lock one release at a time, in order", async(function()
        local lock = lasio.Lock()
        local result = {}
        assert.are.equal(lock, lock:acquire())
        local function c(i)
            if lock:acquire() then result[#result + 1] = i end
            return true
        end
        local t1 = lasio.spawn(c, 1)
        local t2 = lasio.spawn(c, 2)
        lasio.sleep(0)
        assert.are.same({}, result)
        lock:release()
        lasio.sleep(0)
        assert.are.same({ 1 }, result)
        lasio.sleep(0)
        assert.are.same({ 1 }, result)
        local t3 = lasio.spawn(c, 3)
        lock:release()
        lasio.sleep(0)
        assert.are.same({ 1, 2 }, result)
        lock:release()
        lasio.sleep(0)
        assert.are.same({ 1, 2, 3 }, result)
        for _, t in ipairs({ t1, t2, t3 }) do
            assert.is_true(t:done())
            assert.is_true(t:result())
        end
    end))

    it("FIFO: ten waiters get the lock in the order they came", async(function()
        local lock = lasio.Lock()
        local order = {}
        lock:acquire()
        local tasks = {}
        for i = 1, 10 do
            tasks[i] = lasio.spawn(function()
                local _ <close> = lock:acquire()
                order[#order + 1] = i
                lasio.sleep(0)
            end)
            lasio.sleep(0) -- each one queues before the next starts
        end
        assert.are.equal(10, nwaiters(lock))
        lock:release()
        gather(tasks)
        assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, order)
        assert.is_false(lock:locked())
    end))

    it("a newcomer does not jump the queue of a lock just released", async(function()
        local lock = lasio.Lock()
        local order = {}
        lock:acquire()
        local waiter = lasio.spawn(function()
            lock:acquire()
            order[#order + 1] = "waiter"
            lock:release()
        end)
        lasio.sleep(0)
        lock:release() -- the waiter is woken but has not run yet
        local newcomer = lasio.spawn(function()
            lock:acquire()
            order[#order + 1] = "newcomer"
            lock:release()
        end)
        gather({ waiter, newcomer })
        assert.are.same({ "waiter", "newcomer" }, order)
    end))

    it("cancelling a waiting acquire removes its waiter (F4)", async(function()
        local lock = lasio.Lock()
        assert.are.equal(lock, lock:acquire())
        local task = lasio.spawn(lock.acquire, lock)
        lasio.get_running_loop():call_soon(task.cancel, task)
        assert.is_true(is_cancelled(raises(task.await, task)))
        assert.are.equal(0, nwaiters(lock))
        lock:release()
        assert.is_false(lock:locked())
    end))

    it("cancel race: a cancelled first waiter passes the lock on", async(function()
        local lock = lasio.Lock()
        local function lockit(_, blocker)
            local _ <close> = lock:acquire()
            if blocker then blocker:await() end
        end
        local fa = lasio.Future()
        local ta = lasio.spawn(lockit, "A", fa)
        lasio.sleep(0)
        assert.is_true(lock:locked())
        local tb = lasio.spawn(lockit, "B")
        lasio.sleep(0)
        assert.are.equal(1, nwaiters(lock))
        local tc = lasio.spawn(lockit, "C")
        lasio.sleep(0)
        assert.are.equal(2, nwaiters(lock))

        fa:set_result()
        tb:cancel()
        assert.are.equal(1, nwaiters(lock)) -- B left the queue at once
        lasio.sleep(0)
        assert.is_false(lock:locked())
        assert.is_true(ta:done())
        assert.is_true(tb:cancelled())
        tc:await()
        assert.is_false(lock:locked())
    end))

    it("cancel and release in the same turn take the lock only once", async(function()
        local loop = lasio.get_running_loop()
        local lock = lasio.Lock()
        local lock_count, call_count = 0, 0
        local function lockit()
            call_count = call_count + 1
            lock:acquire()
            lock_count = lock_count + 1
        end
        lock:acquire()
        local t1 = lasio.spawn(lockit)
        local t2 = lasio.spawn(lockit)
        local t3 = lasio.spawn(lockit)
        lasio.sleep(0)
        loop:call_soon(function()
            t1:cancel()
            lock:release()
        end)
        assert.is_true(is_cancelled(raises(t1.await, t1)))
        assert.are.equal(1, lock_count)
        assert.are.equal(3, call_count)
        assert.is_true(t1:cancelled() and t2:done())
        t3:cancel()
        lasio.sleep(0)
        assert.is_true(t3:cancelled())
    end))

    it("a waiter cancelled before the release does not keep the next one waiting",
        async(function()
            local lock = lasio.Lock()
            lock:acquire()
            local tb = lasio.spawn(lock.acquire, lock)
            lasio.sleep(0)
            assert.are.equal(1, nwaiters(lock))
            local tc = lasio.spawn(lock.acquire, lock)
            tb:cancel()
            lock:release()
            lasio.sleep(0)
            assert.is_true(lock:locked())
            assert.is_true(tb:cancelled())
            assert.are.equal(lock, tc:await())
        end))

    it("a waiter cancelled just after being woken hands the lock to the next",
        async(function()
            local lock = lasio.Lock()
            lock:acquire()
            local got = {}
            local a = lasio.spawn(function() lock:acquire() got[#got + 1] = "a" end)
            local b = lasio.spawn(function() lock:acquire() got[#got + 1] = "b" end)
            lasio.sleep(0)
            lock:release()          -- a is woken and leaves the queue
            assert.are.equal(1, nwaiters(lock))
            assert.is_true(a:cancel()) -- and cancelled before it runs
            assert.is_true(is_cancelled(raises(a.await, a)))
            b:await()
            assert.are.same({ "b" }, got)
            assert.is_true(lock:locked())
            assert.are.equal(0, nwaiters(lock))
            lock:release()
            assert.is_false(lock:locked())
        end))

    it("a lone waiter cancelled just after being woken leaves the lock free",
        async(function()
            local lock = lasio.Lock()
            lock:acquire()
            local a = lasio.spawn(lock.acquire, lock)
            lasio.sleep(0)
            lock:release()
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            assert.is_false(lock:locked())
            assert.are.equal(0, nwaiters(lock))
            assert.are.equal(lock, lock:acquire())
        end))

    it("acquire jumps a queue of cancelled waiters only", async(function()
        local lock = lasio.Lock()
        lock:acquire()
        local t = lasio.spawn(lock.acquire, lock)
        lasio.sleep(0)
        t:cancel()
        lock:release()
        -- the cancelled waiter left the queue at once: nobody is skipped
        assert.are.equal(0, nwaiters(lock))
        assert.are.equal(lock, lock:acquire())
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.is_true(lock:locked())
    end))

    it("release of an unlocked lock raises", async(function()
        local lock = lasio.Lock()
        local e = raises(lock.release, lock)
        assert.truthy(tostring(e):find("lasio.Lock:release: the lock is not acquired", 1, true),
            tostring(e))
    end))

    it("release with no waiters unlocks", async(function()
        local lock = lasio.Lock()
        lock:acquire()
        assert.is_true(lock:locked())
        lock:release()
        assert.is_false(lock:locked())
    end))

    it("<close> releases at block exit, on errors too", async(function()
        local lock = lasio.Lock()
        do
            local l <close> = lock:acquire()
            assert.are.equal(lock, l)
            assert.is_true(lock:locked())
        end
        assert.is_false(lock:locked())
        local ok = pcall(function()
            local _ <close> = lock:acquire()
            error("boom")
        end)
        assert.is_false(ok)
        assert.is_false(lock:locked())
    end))

    it("a cancelled task leaves a <close> block with the lock released", async(function()
        local lock = lasio.Lock()
        local t = lasio.spawn(function()
            local _ <close> = lock:acquire()
            lasio.sleep(10)
        end)
        lasio.sleep(0)
        assert.is_true(lock:locked())
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.is_false(lock:locked())
    end))

    it("a timeout around a contended acquire leaves nothing behind", async(function()
        local lock = lasio.Lock()
        lock:acquire()
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local ok, e, timed_out = within(0.01, lock.acquire, lock)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.is_true(loop:time() - t0 < helper.t(1))
        assert.are.equal(0, nwaiters(lock))
        lock:release()
        assert.is_false(lock:locked())
        -- and an acquire that succeeds within the deadline keeps the lock
        ok = within(1, lock.acquire, lock)
        assert.is_true(ok)
        assert.is_true(lock:locked())
    end))

    -- covers F11
    it("an acquire inside cleanup gets a second cancel and leaves no waiter (F11)",
        async(function()
            local lock = lasio.Lock()
            lock:acquire()
            local log = {}
            local t = lasio.spawn(function()
                local _ <close> = helper.closer(function()
                    log[#log + 1] = "cleanup"
                    local ok, e = pcall(lock.acquire, lock)
                    log[#log + 1] = ok and "acquired" or
                        (is_cancelled(e) and "cancelled-again" or tostring(e))
                end)
                lasio.sleep(10)
            end)
            lasio.sleep(0)
            t:cancel("first")
            assert.is_true(helper.wait_until(function() return #log >= 1 end, 2))
            assert.are.equal(1, nwaiters(lock))
            t:cancel("second")
            assert.is_true(is_cancelled(raises(t.await, t)))
            assert.are.same({ "cleanup", "cancelled-again" }, log)
            assert.are.equal(0, nwaiters(lock))
            lock:release()
            assert.is_false(lock:locked())
        end))

    it("a contended acquire outside a task raises a clear error", async(function()
        local lock = lasio.Lock()
        local loop = lasio.get_running_loop()
        local err, got
        loop:call_soon(function()
            got = lock:acquire() -- uncontended: no wait needed
            err = select(2, pcall(lock.acquire, lock))
        end)
        lasio.sleep(0)
        assert.are.equal(lock, got)
        assert.truthy(tostring(err):find("lasio.Lock:acquire: not inside a task", 1, true),
            tostring(err))
        assert.are.equal(0, nwaiters(lock))
    end))

    it("a contended acquire where no await is possible raises and leaves no waiter",
        async(function()
            local lock = lasio.Lock()
            lock:acquire()
            local ok, e = pcall(table.sort, { 2, 1 }, function(a, b)
                lock:acquire()
                return a < b
            end)
            assert.is_false(ok)
            assert.truthy(tostring(e):find("cannot await here", 1, true), tostring(e))
            assert.are.equal(0, nwaiters(lock))
            lock:release()
            assert.is_false(lock:locked())
        end))

    it("uncontended acquire/release allocate nothing", async(function()
        local lock = lasio.Lock()
        lock:acquire()
        lock:release()
        local kb = allocated_kb(function()
            for _ = 1, 10000 do
                lock:acquire()
                lock:release()
            end
        end)
        assert.is_true(kb < 1, kb .. " KiB")
    end))
end)

describe("Event", function()
    it("tostring shows the state and the waiters", async(function()
        local ev = lasio.Event()
        assert.are.equal("lasio.Event<unset>", tostring(ev))
        ev:set()
        assert.are.equal("lasio.Event<set>", tostring(ev))
        ev:clear()
        local t = lasio.spawn(ev.wait, ev)
        lasio.sleep(0)
        assert.are.equal("lasio.Event<unset waiters=1>", tostring(ev))
        ev:set()
        t:await()
    end))

    it("wait: set wakes every waiter; a later waiter does not block", async(function()
        local ev = lasio.Event()
        assert.is_false(ev:is_set())
        local result = {}
        local function c(i)
            if ev:wait() then result[#result + 1] = i end
        end
        local t1 = lasio.spawn(c, 1)
        local t2 = lasio.spawn(c, 2)
        lasio.sleep(0)
        assert.are.same({}, result)
        local t3 = lasio.spawn(c, 3)
        ev:set()
        lasio.sleep(0)
        assert.are.same({ 3, 1, 2 }, result)
        for _, t in ipairs({ t1, t2, t3 }) do
            assert.is_true(t:done())
            assert.are.equal(0, select("#", t:result()))
        end
    end))

    it("waiters wake in the order they waited", async(function()
        local ev = lasio.Event()
        local order = {}
        local tasks = {}
        for i = 1, 8 do
            tasks[i] = lasio.spawn(function() ev:wait() order[#order + 1] = i end)
        end
        lasio.sleep(0)
        ev:set()
        gather(tasks)
        assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, order)
    end))

    it("wait on a set event returns true without suspending", async(function()
        local ev = lasio.Event()
        ev:set()
        local other_ran = false
        lasio.spawn(function() other_ran = true end)
        assert.is_true(ev:wait())
        assert.is_false(other_ran)
        lasio.sleep(0)
        assert.is_true(other_ran)
    end))

    it("cancelling a wait removes its waiter (F4)", async(function()
        local ev = lasio.Event()
        local w = lasio.spawn(ev.wait, ev)
        lasio.get_running_loop():call_soon(w.cancel, w)
        assert.is_true(is_cancelled(raises(w.await, w)))
        assert.are.equal(0, nwaiters(ev))
    end))

    it("clear resets the flag", async(function()
        local ev = lasio.Event()
        assert.is_false(ev:is_set())
        ev:set()
        assert.is_true(ev:is_set())
        ev:clear()
        assert.is_false(ev:is_set())
    end))

    it("set, clear, set again wakes a waiter once", async(function()
        local ev = lasio.Event()
        local result = {}
        local t = lasio.spawn(function()
            if ev:wait() then result[#result + 1] = 1 end
            return true
        end)
        lasio.sleep(0)
        assert.are.same({}, result)
        ev:set()
        ev:clear()
        assert.is_false(ev:is_set())
        ev:set()
        ev:set()
        -- the first set() woke the waiter and took it off the queue
        assert.are.equal(0, nwaiters(ev))
        assert.is_false(t:done())
        lasio.sleep(0)
        assert.are.same({ 1 }, result)
        assert.are.equal(0, nwaiters(ev))
        assert.is_true(t:done())
        assert.is_true(t:result())
    end))

    it("a waiter cancelled just after set raises Cancelled; the others still wake",
        async(function()
            local ev = lasio.Event()
            local woke = {}
            local a = lasio.spawn(function() ev:wait() woke[#woke + 1] = "a" end)
            local b = lasio.spawn(function() ev:wait() woke[#woke + 1] = "b" end)
            lasio.sleep(0)
            ev:set()
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            b:await()
            assert.are.same({ "b" }, woke)
            assert.are.equal(0, nwaiters(ev))
            assert.is_true(ev:is_set())
        end))

    it("a timeout around wait leaves no waiter", async(function()
        local ev = lasio.Event()
        local ok, e, timed_out = within(0.01, ev.wait, ev)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.are.equal(0, nwaiters(ev))
        lasio.get_running_loop():call_later(0.001, function() ev:set() end)
        assert.is_true(within(1, ev.wait, ev))
    end))

    -- covers F11
    it("a wait inside cleanup gets a second cancel (F11)", async(function()
        local ev = lasio.Event()
        local log = {}
        local t = lasio.spawn(function()
            local _ <close> = helper.closer(function()
                local ok, e = pcall(ev.wait, ev)
                log[#log + 1] = ok and "woke" or (is_cancelled(e) and "cancelled-again")
            end)
            ev:wait()
        end)
        lasio.sleep(0)
        t:cancel()
        lasio.sleep(0)
        assert.are.equal(1, nwaiters(ev))
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.same({ "cancelled-again" }, log)
        assert.are.equal(0, nwaiters(ev))
    end))

    it("set and wait on a set event allocate nothing", async(function()
        local ev = lasio.Event()
        ev:set()
        local kb = allocated_kb(function()
            for _ = 1, 10000 do
                ev:wait()
                ev:set()
                ev:clear()
                ev:set()
            end
        end)
        assert.is_true(kb < 1, kb .. " KiB")
    end))
end)

describe("Condition", function()
    it("wait releases the lock; notify wakes, re-acquire orders the wake-ups",
        async(function()
            local cond = lasio.Condition()
            local result = {}
            local function c(i)
                cond:acquire()
                if cond:wait() then result[#result + 1] = i end
                return true
            end
            local t1 = lasio.spawn(c, 1)
            local t2 = lasio.spawn(c, 2)
            local t3 = lasio.spawn(c, 3)
            lasio.sleep(0)
            assert.are.same({}, result)
            assert.is_false(cond:locked())

            assert.are.equal(cond, cond:acquire())
            cond:notify()
            lasio.sleep(0)
            assert.are.same({}, result)
            assert.is_true(cond:locked())

            cond:release()
            lasio.sleep(0)
            assert.are.same({ 1 }, result)
            assert.is_true(cond:locked())

            cond:notify(2)
            lasio.sleep(0)
            assert.are.same({ 1 }, result)
            assert.is_true(cond:locked())

            cond:release()
            lasio.sleep(0)
            assert.are.same({ 1, 2 }, result)
            assert.is_true(cond:locked())

            cond:release()
            lasio.sleep(0)
            assert.are.same({ 1, 2, 3 }, result)
            assert.is_true(cond:locked())
            for _, t in ipairs({ t1, t2, t3 }) do
                assert.is_true(t:done())
                assert.is_true(t:result())
            end
        end))

    it("cancelling a wait re-acquires the lock and removes the waiter (F4)",
        async(function()
            local cond = lasio.Condition()
            cond:acquire()
            local w = lasio.spawn(cond.wait, cond)
            lasio.get_running_loop():call_soon(w.cancel, w)
            assert.is_true(is_cancelled(raises(w.await, w)))
            assert.are.equal(0, nwaiters(cond))
            assert.is_true(cond:locked())
        end))

    it("a wait notified then cancelled while contesting the lock ends holding it",
        async(function()
            local loop = lasio.get_running_loop()
            local cond = lasio.Condition()
            cond:acquire()
            assert.is_true(cond:locked())
            local wait_task = lasio.spawn(cond.wait, cond)
            lasio.sleep(0)
            assert.is_false(cond:locked())
            cond:acquire()
            assert.is_true(cond:locked())
            cond:notify()
            loop:call_soon(wait_task.cancel, wait_task)
            loop:call_soon(cond.release, cond)
            pcall(wait_task.await, wait_task)
            assert.is_true(cond:locked())
            assert.are.equal(0, nwaiters(cond))
            assert.are.equal(0, nwaiters(cond._lock))
        end))

    it("a wait cancelled after notify, while re-acquiring, ends cancelled", async(function()
        local cond = lasio.Condition()
        local waited = false
        local waiter = lasio.spawn(function()
            local _ <close> = cond:acquire()
            waited = true
            cond:wait()
        end)
        lasio.sleep(0)
        cond:acquire()
        cond:notify()
        lasio.sleep(0) -- the waiter is now in the re-acquire
        waiter:cancel()
        lasio.sleep(0)
        cond:release()
        lasio.sleep(0)
        assert.is_true(waiter:cancelled())
        assert.is_true(waited)
        assert.is_false(cond:locked())
    end))

    it("cancelling a waiting acquire leaves the lock to its holder (F4)", async(function()
        local cond = lasio.Condition()
        cond:acquire()
        local t = lasio.spawn(cond.acquire, cond)
        lasio.sleep(0)
        assert.are.equal(1, nwaiters(cond._lock))
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.equal(0, nwaiters(cond._lock))
        assert.is_true(cond:locked())
        cond:release()
        assert.is_false(cond:locked())
    end))

    it("wait without the lock raises", async(function()
        local cond = lasio.Condition()
        local e = raises(cond.wait, cond)
        assert.truthy(tostring(e):find("lasio.Condition:wait: the lock is not acquired", 1, true),
            tostring(e))
        assert.are.equal(0, nwaiters(cond))
    end))

    it("wait_for returns once the predicate is true", async(function()
        local cond = lasio.Condition()
        local presult = false
        local function predicate() return presult end
        local result = {}
        local t = lasio.spawn(function()
            cond:acquire()
            if cond:wait_for(predicate) then
                result[#result + 1] = 1
                cond:release()
            end
            return true
        end)
        lasio.sleep(0)
        assert.are.same({}, result)
        cond:acquire()
        cond:notify()
        cond:release()
        lasio.sleep(0)
        assert.are.same({}, result)
        presult = true
        cond:acquire()
        cond:notify()
        cond:release()
        lasio.sleep(0)
        assert.are.same({ 1 }, result)
        assert.is_true(t:done())
        assert.is_true(t:result())
    end))

    it("wait_for returns the predicate's value; without the lock it raises only if it must wait",
        async(function()
            local cond = lasio.Condition()
            local v = { 1, 2, 3 }
            assert.are.equal(v, cond:wait_for(function() return v end))
            local e = raises(cond.wait_for, cond, function() return false end)
            assert.truthy(tostring(e):find("not acquired", 1, true), tostring(e))
        end))

    it("notify(n) wakes n waiters, in order; more than waiting is fine", async(function()
        local cond = lasio.Condition()
        local result = {}
        local function c(i)
            cond:acquire()
            if cond:wait() then
                result[#result + 1] = i
                cond:release()
            end
            return true
        end
        local tasks = { lasio.spawn(c, 1), lasio.spawn(c, 2), lasio.spawn(c, 3) }
        lasio.sleep(0)
        assert.are.same({}, result)
        cond:acquire()
        cond:notify(1)
        cond:release()
        lasio.sleep(0)
        assert.are.same({ 1 }, result)
        cond:acquire()
        cond:notify(1)
        cond:notify(2048)
        cond:release()
        lasio.sleep(0)
        assert.are.same({ 1, 2, 3 }, result)
        for _, t in ipairs(tasks) do assert.is_true(t:result()) end
    end))

    it("notify_all wakes every waiter", async(function()
        local cond = lasio.Condition()
        local result = {}
        local function c(i)
            cond:acquire()
            if cond:wait() then
                result[#result + 1] = i
                cond:release()
            end
            return true
        end
        local t1, t2 = lasio.spawn(c, 1), lasio.spawn(c, 2)
        lasio.sleep(0)
        assert.are.same({}, result)
        cond:acquire()
        cond:notify_all()
        cond:release()
        lasio.sleep(0)
        assert.are.same({ 1, 2 }, result)
        assert.is_true(t1:result())
        assert.is_true(t2:result())
    end))

    it("notify and notify_all without the lock raise; a bad n raises", async(function()
        local cond = lasio.Condition()
        assert.truthy(tostring(raises(cond.notify, cond)):find("not acquired", 1, true))
        assert.truthy(tostring(raises(cond.notify_all, cond)):find("not acquired", 1, true))
        cond:acquire()
        assert.truthy(tostring(raises(cond.notify, cond, "x")):find("n must be a number", 1, true))
    end))

    it("tostring shows the lock state and the waiters", async(function()
        local cond = lasio.Condition()
        assert.are.equal("lasio.Condition<unlocked>", tostring(cond))
        cond:acquire()
        assert.are.equal("lasio.Condition<locked>", tostring(cond))
        local t = lasio.spawn(function() cond:acquire() cond:wait() cond:release() end)
        cond:release()
        lasio.sleep(0)
        assert.are.equal("lasio.Condition<unlocked waiters=1>", tostring(cond))
        cond:acquire()
        cond:notify()
        cond:release()
        t:await()
    end))

    it("<close> releases the lock at block exit", async(function()
        local cond = lasio.Condition()
        assert.is_false(cond:locked())
        do
            local c <close> = cond:acquire()
            assert.are.equal(cond, c)
            assert.is_true(cond:locked())
        end
        assert.is_false(cond:locked())
    end))

    it("an explicit lock is shared with the condition", async(function()
        local function f(lock, cond)
            lock = lock or lasio.Lock()
            cond = cond or lasio.Condition(lock)
            assert.are.equal(lock, cond._lock)
            assert.is_false(lock:locked())
            assert.is_false(cond:locked())
            do
                local _ <close> = cond:acquire()
                assert.is_true(lock:locked())
                assert.is_true(cond:locked())
            end
            assert.is_false(lock:locked())
            assert.is_false(cond:locked())
            do
                local _ <close> = lock:acquire()
                assert.is_true(lock:locked())
                assert.is_true(cond:locked())
            end
            assert.is_false(lock:locked())
            assert.is_false(cond:locked())
        end
        f()
        f(lasio.Lock())
        local lock = lasio.Lock()
        f(lock, lasio.Condition(lock))
    end))

    it("a wait where no await is possible raises and keeps the lock", async(function()
        local cond = lasio.Condition()
        cond:acquire()
        local ok, e = pcall(table.sort, { 2, 1 }, function(a, b)
            cond:wait()
            return a < b
        end)
        assert.is_false(ok)
        assert.truthy(tostring(e):find("cannot await here", 1, true), tostring(e))
        assert.is_true(cond:locked())
        assert.are.equal(0, nwaiters(cond))
        assert.are.equal(0, nwaiters(cond._lock))
    end))

    it("Condition with something that is not a lasio.Lock raises", async(function()
        local e = raises(lasio.Condition, {})
        assert.truthy(tostring(e):find("lock must be a lasio.Lock", 1, true), tostring(e))
    end))

    it("a timeout around wait re-acquires the lock before raising", async(function()
        local cond = lasio.Condition()
        local _ <close> = cond:acquire()
        local ok, e, timed_out = within(0.01, cond.wait, cond)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.is_true(cond:locked())
        assert.are.equal(0, nwaiters(cond))
    end))

    it("a cancel received while waiting is re-raised unchanged", async(function()
        local cond = lasio.Condition()
        local raised
        local task = lasio.spawn(function()
            local _ <close> = cond:acquire()
            local ok, e = pcall(cond.wait_for, cond, function() return false end)
            assert(not ok and is_cancelled(e))
            raised = e
            error(e, 0)
        end)
        lasio.sleep(0)
        task:cancel("foo")
        local e = raises(task.await, task)
        assert.is_true(is_cancelled(e))
        assert.are.equal("foo", e.message)
        assert.are.equal("foo", raised.message)
        assert.is_false(cond:locked())
    end))

    it("a cancel received while re-acquiring is re-raised unchanged", async(function()
        local cond = lasio.Condition()
        local wake = false
        local raised
        local task = lasio.spawn(function()
            local _ <close> = cond:acquire()
            local ok, e = pcall(cond.wait_for, cond, function() return wake end)
            assert(not ok and is_cancelled(e))
            assert(cond:locked())
            raised = e
            error(e, 0)
        end)
        lasio.sleep(0)
        cond:acquire()
        wake = true
        cond:notify()
        lasio.sleep(0) -- the task is re-acquiring the lock
        task:cancel("foo")
        cond:release()
        local e = raises(task.await, task)
        assert.is_true(is_cancelled(e))
        assert.are.equal("foo", e.message)
        assert.are.equal("foo", raised.message)
        assert.is_false(cond:locked())
    end))

    -- consumer of the two "cancelled wake-up" specs below
    local function consumer(cond, st)
        local _ <close> = cond:acquire()
        while true do
            cond:wait_for(function() return st.state ~= 0 end)
            if st.state < 0 then return end
            st.state = st.state - 1
        end
    end

    it("a waiter cancelled just after notify does not lose the wake-up", async(function()
        local cond = lasio.Condition()
        local st = { state = 0 }
        local c = { lasio.spawn(consumer, cond, st), lasio.spawn(consumer, cond, st) }
        lasio.sleep(0)
        do
            local _ <close> = cond:acquire()
            st.state = st.state + 1
            cond:notify(1)
            c[1]:cancel() -- woken, cancelled before it runs
            within(0.05, cond.wait_for, cond, function() return st.state == 0 end)
            assert.are.equal(0, st.state)
            st.state = -1
            cond:notify_all()
        end
        c[2]:await()
        assert.is_true(c[1]:cancelled())
    end))

    it("a waiter cancelled while re-acquiring does not lose the wake-up", async(function()
        local cond = lasio.Condition()
        local st = { state = 0 }
        local c = { lasio.spawn(consumer, cond, st), lasio.spawn(consumer, cond, st) }
        lasio.sleep(0)
        do
            local _ <close> = cond:acquire()
            st.state = st.state + 1
            cond:notify(1)
            lasio.sleep(0) -- c[1] wakes and waits for the lock
            c[1]:cancel()
            within(0.05, cond.wait_for, cond, function() return st.state == 0 end)
            assert.are.equal(0, st.state)
            st.state = -1
            cond:notify_all()
        end
        c[2]:await()
        assert.is_true(c[1]:cancelled())
    end))

    -- covers F11
    it("a wait inside cleanup gets a second cancel and still re-acquires (F11)",
        async(function()
            local cond = lasio.Condition()
            local log = {}
            local t = lasio.spawn(function()
                local _ <close> = helper.closer(function()
                    local _ <close> = cond:acquire()
                    local ok, e = pcall(cond.wait, cond)
                    log[#log + 1] = ok and "woke" or (is_cancelled(e) and "cancelled-again")
                    log[#log + 1] = cond:locked() and "locked" or "unlocked"
                end)
                lasio.sleep(10)
            end)
            lasio.sleep(0)
            t:cancel()
            lasio.sleep(0)
            assert.are.equal(1, nwaiters(cond))
            t:cancel()
            assert.is_true(is_cancelled(raises(t.await, t)))
            assert.are.same({ "cancelled-again", "locked" }, log)
            assert.is_false(cond:locked())
            assert.are.equal(0, nwaiters(cond))
        end))
end)

describe("Semaphore", function()
    it("with value 0 is locked", async(function()
        assert.is_true(lasio.Semaphore(0):locked())
    end))

    it("tostring shows the state, the value and the waiters", async(function()
        local sem = lasio.Semaphore()
        assert.are.equal("lasio.Semaphore<unlocked value=1>", tostring(sem))
        sem:acquire()
        assert.are.equal("lasio.Semaphore<locked>", tostring(sem))
        local t1 = lasio.spawn(sem.acquire, sem)
        local t2 = lasio.spawn(sem.acquire, sem)
        lasio.sleep(0)
        assert.are.equal("lasio.Semaphore<locked waiters=2>", tostring(sem))
        t1:cancel()
        t2:cancel()
        settle({ t1, t2 })
        assert.are.equal("lasio.BoundedSemaphore<unlocked value=3>",
            tostring(lasio.BoundedSemaphore(3)))
    end))

    it("defaults to 1; acquire returns the semaphore", async(function()
        local sem = lasio.Semaphore()
        assert.are.equal(1, sem._value)
        assert.is_false(sem:locked())
        assert.are.equal(sem, sem:acquire())
        assert.is_true(sem:locked())
    end))

    it("a negative or non-integer value raises", async(function()
        assert.truthy(tostring(raises(lasio.Semaphore, -1)):find("must be >= 0", 1, true))
        assert.truthy(tostring(raises(lasio.BoundedSemaphore, -1)):find("must be >= 0", 1, true))
        assert.truthy(tostring(raises(lasio.Semaphore, 1.5)):find("must be an integer", 1, true))
        assert.truthy(tostring(raises(lasio.Semaphore, "2")):find("must be an integer", 1, true))
        assert.are.equal(2, lasio.Semaphore(2.0)._value)
    end))

    it("acquire: value counts down, waiters queue, releases hand units over",
        async(function()
            local sem = lasio.Semaphore(3)
            local result = {}
            assert.are.equal(sem, sem:acquire())
            assert.are.equal(sem, sem:acquire())
            assert.is_false(sem:locked())
            local function c(i)
                sem:acquire()
                result[#result + 1] = i
                return true
            end
            local t1, t2, t3 = lasio.spawn(c, 1), lasio.spawn(c, 2), lasio.spawn(c, 3)
            lasio.sleep(0)
            assert.are.same({ 1 }, result)
            assert.is_true(sem:locked())
            assert.are.equal(2, nwaiters(sem))
            assert.are.equal(0, sem._value)
            local t4 = lasio.spawn(c, 4)
            sem:release()
            sem:release()
            assert.are.equal(0, sem._value)
            lasio.sleep(0)
            assert.are.equal(0, sem._value)
            assert.are.equal(3, #result)
            assert.is_true(sem:locked())
            assert.are.equal(1, nwaiters(sem))
            assert.are.equal(0, sem._value)
            assert.is_true(t1:done())
            assert.is_true(t1:result())
            local done = 0
            for _, t in ipairs({ t2, t3, t4 }) do
                if t:done() and t:result() then done = done + 1 end
            end
            assert.are.equal(2, done)
            sem:release()
            gather({ t2, t3, t4 })
        end))

    it("cancelling a waiting acquire leaves no live waiter (F4)", async(function()
        local sem = lasio.Semaphore()
        sem:acquire()
        local t = lasio.spawn(sem.acquire, sem)
        lasio.get_running_loop():call_soon(t.cancel, t)
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.equal(0, nwaiters(sem))
        sem:release()
        assert.are.equal(1, sem._value)
    end))

    it("waiters cancelled before being woken are skipped", async(function()
        local sem = lasio.Semaphore(0)
        local t = {}
        for i = 1, 4 do t[i] = lasio.spawn(sem.acquire, sem) end
        lasio.sleep(0)
        t[1]:cancel()
        t[2]:cancel()
        sem:release()
        lasio.sleep(0)
        lasio.sleep(0)
        assert.is_true(t[3]:done())
        assert.is_false(t[4]:done())
        t[3]:cancel()
        t[4]:cancel()
        lasio.sleep(0)
        assert.is_true(t[4]:cancelled())
    end))

    it("a cancelled first waiter does not hang the second", async(function()
        local sem = lasio.Semaphore(0)
        local t1 = lasio.spawn(sem.acquire, sem)
        local t2 = lasio.spawn(sem.acquire, sem)
        lasio.sleep(0)
        t1:cancel()
        sem:release()
        lasio.sleep(0)
        lasio.sleep(0)
        assert.is_true(sem:locked())
        assert.is_true(t2:done())
    end))

    it("a task cancelled while queued behind a holder does not hang later acquires",
        async(function()
            local sem = lasio.Semaphore(1)
            local t2
            local t1 = lasio.spawn(function()
                local _ <close> = sem:acquire()
                lasio.sleep(0)
                t2:cancel()
            end)
            t2 = lasio.spawn(function()
                local _ <close> = sem:acquire()
                error("never reached")
            end)
            local r = settle({ t1, t2 })
            assert.is_true(r[1].ok)
            assert.is_true(is_cancelled(r[2].v))
            local ok = within(1, sem.acquire, sem)
            assert.is_true(ok)
        end))

    it("a waiter cancelled just after being woken gives its unit to the next",
        async(function()
            local sem = lasio.Semaphore(0)
            local got = {}
            local a = lasio.spawn(function() sem:acquire() got[#got + 1] = "a" end)
            local b = lasio.spawn(function() sem:acquire() got[#got + 1] = "b" end)
            lasio.sleep(0)
            sem:release() -- a is woken, holding the unit
            assert.are.equal(0, sem._value)
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            b:await()
            assert.are.same({ "b" }, got)
            assert.are.equal(0, sem._value)
            assert.are.equal(0, nwaiters(sem))
            sem:release()
            assert.are.equal(1, sem._value)
        end))

    it("a lone waiter cancelled just after being woken gives the unit back",
        async(function()
            local sem = lasio.Semaphore(0)
            local a = lasio.spawn(sem.acquire, sem)
            lasio.sleep(0)
            sem:release()
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            assert.are.equal(1, sem._value)
            assert.is_false(sem:locked())
        end))

    it("BoundedSemaphore: release beyond the initial value raises", async(function()
        local sem = lasio.BoundedSemaphore()
        local e = raises(sem.release, sem)
        assert.truthy(tostring(e):find("released too many times", 1, true), tostring(e))
        sem:acquire()
        sem:release()
        assert.is_false(pcall(sem.release, sem))
        assert.are.equal(1, sem._value)
    end))

    it("release with no waiters unlocks", async(function()
        local sem = lasio.Semaphore()
        sem:acquire()
        assert.is_true(sem:locked())
        sem:release()
        assert.is_false(sem:locked())
    end))

    it("FIFO: acquirers alternate in arrival order", async(function()
        local sem = lasio.Semaphore(1)
        local result = {}
        local function coro(tag)
            sem:acquire()
            result[#result + 1] = tag .. "_1"
            lasio.sleep(0.01)
            sem:release()
            sem:acquire()
            result[#result + 1] = tag .. "_2"
            lasio.sleep(0.01)
            sem:release()
        end
        gather({ lasio.spawn(coro, "c1"), lasio.spawn(coro, "c2"), lasio.spawn(coro, "c3") })
        assert.are.same({ "c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2" }, result)
    end))

    it("FIFO: a task that releases and re-acquires goes to the back", async(function()
        local sem = lasio.Semaphore(1)
        local result = {}
        local t1 = lasio.spawn(function() sem:acquire() result[#result + 1] = 1 return true end)
        local t2 = lasio.spawn(function()
            sem:acquire()
            result[#result + 1] = 2
            sem:release()
            sem:acquire()
            result[#result + 1] = 4
            return true
        end)
        local t3 = lasio.spawn(function() sem:acquire() result[#result + 1] = 3 return true end)
        lasio.sleep(0)
        sem:release()
        sem:release()
        gather({ t1, t2, t3 })
        assert.are.same({ 1, 2, 3, 4 }, result)
    end))

    it("FIFO: a cancelled waiter's turn goes to the next", async(function()
        local sem = lasio.Semaphore(0)
        local result = {}
        local function c(i) sem:acquire() result[#result + 1] = i return true end
        local t1, t2, t3 = lasio.spawn(c, 1), lasio.spawn(c, 2), lasio.spawn(c, 3)
        lasio.sleep(0)
        t1:cancel()
        lasio.sleep(0)
        sem:release()
        sem:release()
        settle({ t1, t2, t3 })
        assert.are.same({ 2, 3 }, result)
    end))

    it("FIFO: a successful acquire wakes the waiters held back by FIFO order",
        async(function()
            local sem = lasio.Semaphore(0)
            local result = {}
            local t4
            local function c4() result[#result + 1] = 4 return true end
            local t1 = lasio.spawn(function()
                assert(sem._value == 0)
                sem:acquire()
                assert(sem._value == 0)
                t4 = lasio.spawn(c4)
                result[#result + 1] = 1
                return true
            end)
            local t2 = lasio.spawn(function()
                sem:release()
                sem:release()
                sem:release()
                assert(sem._value == 2)
                assert(sem:locked())
                sem:acquire()
                result[#result + 1] = 2
                return true
            end)
            local t3 = lasio.spawn(function()
                sem:acquire()
                assert(sem:locked())
                result[#result + 1] = 3
                return true
            end)
            lasio.sleep(0)
            assert.are.equal(2, sem._value)
            assert.are.equal(3, nwaiters(sem))
            lasio.sleep(0)
            gather({ t1, t2, t3, t4 })
            assert.are.same({ 1, 2, 3, 4 }, result)
        end))

    it("<close> releases, for both kinds", async(function()
        for _, make in ipairs({ lasio.Semaphore, lasio.BoundedSemaphore }) do
            local sem = make(1)
            do
                local s <close> = sem:acquire()
                assert.are.equal(sem, s)
                assert.is_true(sem:locked())
            end
            assert.is_false(sem:locked())
            assert.are.equal(1, sem._value)
        end
    end))

    it("a timeout around a blocked acquire leaves the value unchanged", async(function()
        local sem = lasio.Semaphore(0)
        local ok, e, timed_out = within(0.01, sem.acquire, sem)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.are.equal(0, sem._value)
        assert.are.equal(0, nwaiters(sem))
        sem:release()
        assert.is_true(within(1, sem.acquire, sem))
        assert.are.equal(0, sem._value)
    end))

    -- covers F11
    it("an acquire inside cleanup gets a second cancel (F11)", async(function()
        local sem = lasio.Semaphore(0)
        local log = {}
        local t = lasio.spawn(function()
            local _ <close> = helper.closer(function()
                local ok, e = pcall(sem.acquire, sem)
                log[#log + 1] = ok and "acquired" or (is_cancelled(e) and "cancelled-again")
            end)
            lasio.sleep(10)
        end)
        lasio.sleep(0)
        t:cancel()
        lasio.sleep(0)
        assert.are.equal(1, nwaiters(sem))
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.same({ "cancelled-again" }, log)
        assert.are.equal(0, nwaiters(sem))
        assert.are.equal(0, sem._value)
    end))
end)

describe("Barrier", function()
    local N = 5

    it("tostring shows the state and the waiters", async(function()
        local barrier = lasio.Barrier(N)
        assert.are.equal("lasio.Barrier<filling waiters=0/5>", tostring(barrier))
        local waiters = {}
        local function wait() barrier:wait() end
        for _ = 1, 2 do waiters[#waiters + 1] = lasio.spawn(wait) end
        lasio.sleep(0)
        assert.are.equal("lasio.Barrier<filling waiters=2/5>", tostring(barrier))
        for _ = 1, barrier.parties - barrier.n_waiting do
            waiters[#waiters + 1] = lasio.spawn(wait)
        end
        lasio.sleep(0)
        assert.truthy(tostring(barrier):find("^lasio%.Barrier<draining"), tostring(barrier))
        for _ = 1, 2 do waiters[#waiters + 1] = lasio.spawn(wait) end
        lasio.sleep(0)
        barrier:reset()
        assert.truthy(tostring(barrier):find("^lasio%.Barrier<resetting"), tostring(barrier))
        for _ = 1, 2 do waiters[#waiters + 1] = lasio.spawn(wait) end
        lasio.sleep(0)
        barrier:abort()
        assert.are.equal("lasio.Barrier<broken>", tostring(barrier))
        assert.is_true(barrier.broken)
        settle(waiters)
    end))

    it("parties must be an integer >= 1", async(function()
        assert.truthy(tostring(raises(lasio.Barrier, 0)):find("parties must be >= 1", 1, true))
        assert.truthy(tostring(raises(lasio.Barrier, -4)):find("parties must be >= 1", 1, true))
        assert.truthy(tostring(raises(lasio.Barrier)):find("parties must be an integer", 1, true))
        assert.truthy(tostring(raises(lasio.Barrier, 2.5))
            :find("parties must be an integer", 1, true))
        assert.are.equal(N, lasio.Barrier(N).parties)
    end))

    it("parties, n_waiting and broken are read-only fields", async(function()
        local barrier = lasio.Barrier(2)
        assert.are.equal(2, barrier.parties)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
        local e = raises(function() barrier.parties = 3 end)
        assert.truthy(tostring(e):find("read-only", 1, true), tostring(e))
        e = raises(function() barrier.broken = true end)
        assert.truthy(tostring(e):find("read-only", 1, true), tostring(e))
        assert.are.equal(2, barrier.parties)
    end))

    it("wait returns every arrival index 0 .. parties-1 once", async(function()
        local barrier = lasio.Barrier(3)
        local results = {}
        gather(spawn_n(3, function()
            local i = barrier:wait()
            results[#results + 1] = i
        end))
        table.sort(results)
        assert.are.same({ 0, 1, 2 }, results)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("one party passes at once", async(function()
        local barrier = lasio.Barrier(1)
        assert.are.equal(0, barrier:wait())
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("one party, twice", async(function()
        local barrier = lasio.Barrier(1)
        local t1 = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        assert.are.equal(0, barrier.n_waiting)
        local t2 = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        assert.are.equal(t1:result(), t2:result())
        assert.are.equal(t1:done(), t2:done())
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("fills task by task", async(function()
        local barrier = lasio.Barrier(3)
        local t1 = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        assert.are.equal(1, barrier.n_waiting)
        assert.truthy(tostring(barrier):find("filling", 1, true))
        local t2 = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        assert.are.equal(2, barrier.n_waiting)
        local t3 = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        gather({ t1, t2, t3 })
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("tasks pass twice; the second round's indices are complete too", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2 = {}, {}
        local res = gather(spawn_n(N, function()
            barrier:wait()
            results1[#results1 + 1] = true
            local i = barrier:wait()
            results2[#results2 + 1] = true
            return i
        end))
        assert.are.equal(N, #results1)
        assert.are.equal(N, #results2)
        table.sort(res)
        assert.are.same({ 0, 1, 2, 3, 4 }, res)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("the barrier drains until its last task leaves", async(function()
        local barrier = lasio.Barrier(N)
        local results = {}
        gather(spawn_n(N, function()
            barrier:wait()
            results[#results + 1] = tostring(barrier):find("draining", 1, true) ~= nil
        end))
        assert.are.equal(N, #results)
        assert.is_false(results[N])
        for i = 1, N - 1 do assert.is_true(results[i]) end
        assert.are.equal(0, barrier.n_waiting)
    end))

    it("new arrivals wait while the barrier drains", async(function()
        local rewait = 2
        local barrier = lasio.Barrier(N)
        local barrier_nowaiting = lasio.Barrier(N - rewait)
        local rewait_n = rewait
        gather(spawn_n(N, function()
            barrier:wait()
            if rewait_n > 0 then
                rewait_n = rewait_n - 1
                barrier:wait()
            else
                barrier_nowaiting:wait()
                barrier:wait()
            end
        end))
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("a cancelled waiter leaves the barrier (F4)", async(function()
        local barrier = lasio.Barrier(3)
        local results = {}
        local function coro()
            barrier:wait()
            results[#results + 1] = true
        end
        local t1 = lasio.spawn(coro)
        lasio.sleep(0)
        assert.are.equal(1, barrier.n_waiting)
        local t2 = lasio.spawn(coro)
        lasio.sleep(0)
        assert.are.equal(2, barrier.n_waiting)
        t1:cancel()
        lasio.sleep(0)
        assert.are.equal(1, barrier.n_waiting)
        assert.is_true(is_cancelled(raises(t1.await, t1)))
        assert.is_true(t1:cancelled())
        local t3 = lasio.spawn(coro)
        lasio.sleep(0)
        assert.are.equal(2, barrier.n_waiting)
        local t4 = lasio.spawn(coro)
        gather({ t2, t3, t4 })
        assert.are.equal(3, #results)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
        assert.is_false(barrier._cond:locked())
    end))

    it("reset with nobody waiting keeps it filling", async(function()
        local barrier = lasio.Barrier(1)
        lasio.spawn(barrier.reset, barrier)
        lasio.sleep(0)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier.broken)
    end))

    it("reset breaks the current waiters, then fills again", async(function()
        local barrier = lasio.Barrier(N)
        local results = {}
        local tasks = spawn_n(N - 1, function()
            local ok, e = pcall(barrier.wait, barrier)
            if not ok and lasio.BrokenBarrierError:is(e) then results[#results + 1] = true end
        end)
        lasio.sleep(0)
        lasio.spawn(barrier.reset, barrier)
        gather(tasks)
        assert.are.equal(N - 1, #results)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_nil(tostring(barrier):find("resetting", 1, true))
        assert.is_false(barrier.broken)
    end))

    it("reset while half the tasks drain", async(function()
        local barrier = lasio.Barrier(N)
        local results1 = {}
        local rest_of_tasks = N // 2
        gather(spawn_n(N, function()
            local ok, e = pcall(barrier.wait, barrier)
            if not ok then
                assert(lasio.BrokenBarrierError:is(e), tostring(e))
                results1[#results1 + 1] = true
            elseif rest_of_tasks == barrier._count then
                barrier:reset()
            end
        end))
        -- the tasks still inside when it was reset break
        assert.are.equal(rest_of_tasks, #results1)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_nil(tostring(barrier):find("resetting", 1, true))
        assert.is_false(barrier.broken)
    end))

    it("reset while half the tasks drain and half block", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2 = {}, {}
        local blocking_tasks = N // 2
        local count = 0
        gather(spawn_n(N, function()
            local ok, e = pcall(barrier.wait, barrier)
            if not ok then
                assert(lasio.BrokenBarrierError:is(e), tostring(e))
                results1[#results1 + 1] = true
                barrier:wait()
            else
                count = count + 1
                if count > blocking_tasks then
                    barrier:reset()
                    barrier:wait()
                else
                    local ok2 = pcall(barrier.wait, barrier)
                    if not ok2 then results2[#results2 + 1] = true end
                end
            end
        end))
        assert.are.equal(blocking_tasks, #results1)
        assert.are.same({}, results2)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_nil(tostring(barrier):find("resetting", 1, true))
        assert.is_false(barrier.broken)
    end))

    it("reset while tasks wait, and they wait again", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2 = {}, {}
        local tasks = spawn_n(N - 1, function()
            local ok, e = pcall(barrier.wait, barrier)
            if not ok and lasio.BrokenBarrierError:is(e) then results1[#results1 + 1] = true end
            barrier:wait()
            results2[#results2 + 1] = true
        end)
        lasio.spawn(barrier.reset, barrier)
        lasio.sleep(0)
        lasio.spawn(function()
            barrier:wait()
            results2[#results2 + 1] = true
        end)
        gather(tasks)
        lasio.sleep(0)
        assert.is_false(barrier.broken)
        assert.are.equal(N - 1, #results1)
        assert.are.equal(N, #results2)
        assert.are.equal(0, barrier.n_waiting)
    end))

    it("reset by the last task to leave a drained barrier", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2, results3 = {}, {}, {}
        local count = 0
        gather(spawn_n(N, function()
            barrier:wait()
            count = count + 1
            if count == N then
                barrier:reset()
                barrier:wait()
            else
                if pcall(barrier.wait, barrier) then
                    results1[#results1 + 1] = true
                else
                    results2[#results2 + 1] = true
                end
            end
            barrier:wait()
            results3[#results3 + 1] = true
        end))
        assert.is_false(barrier.broken)
        assert.are.equal(N - 1, #results1)
        assert.are.equal(0, #results2)
        assert.are.equal(N, #results3)
        assert.are.equal(0, barrier.n_waiting)
    end))

    it("abort breaks the barrier", async(function()
        local barrier = lasio.Barrier(1)
        lasio.spawn(barrier.abort, barrier)
        lasio.sleep(0)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_true(barrier.broken)
        local e = raises(barrier.wait, barrier)
        assert.is_true(lasio.BrokenBarrierError:is(e), tostring(e))
    end))

    it("abort while half the tasks drain and half block", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2 = {}, {}
        local blocking_tasks = N // 2
        local count = 0
        gather(spawn_n(N, function()
            local ok, e = pcall(barrier.wait, barrier)
            if not ok then
                assert(lasio.BrokenBarrierError:is(e), tostring(e))
                results1[#results1 + 1] = true
            else
                count = count + 1
                if count > blocking_tasks then
                    barrier:abort()
                else
                    local ok2, e2 = pcall(barrier.wait, barrier)
                    if not ok2 and lasio.BrokenBarrierError:is(e2) then
                        results2[#results2 + 1] = true
                    end
                end
            end
        end))
        assert.is_true(barrier.broken)
        assert.are.equal(blocking_tasks, #results1)
        assert.are.equal(N - blocking_tasks - 1, #results2)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_nil(tostring(barrier):find("resetting", 1, true))
    end))

    it("abort on an error: the others get BrokenBarrierError", async(function()
        local barrier = lasio.Barrier(N)
        local results1, results2 = {}, {}
        gather(spawn_n(N, function()
            local ok, e = pcall(function()
                local i = barrier:wait()
                if i == N // 2 then error("boom", 0) end
                barrier:wait()
                results1[#results1 + 1] = true
            end)
            if not ok then
                if lasio.BrokenBarrierError:is(e) then
                    results2[#results2 + 1] = true
                else
                    barrier:abort()
                end
            end
        end))
        assert.is_true(barrier.broken)
        assert.are.equal(0, #results1)
        assert.are.equal(N - 1, #results2)
        assert.are.equal(0, barrier.n_waiting)
    end))

    it("abort on an error, then reset: the barrier works again", async(function()
        local barrier1, barrier2 = lasio.Barrier(N), lasio.Barrier(N)
        local results1, results2, results3 = {}, {}, {}
        gather(spawn_n(N, function()
            local ok, e = pcall(function()
                local i = barrier1:wait()
                if i == N // 2 then error("boom", 0) end
                barrier1:wait()
                results1[#results1 + 1] = true
            end)
            if not ok then
                if lasio.BrokenBarrierError:is(e) then
                    results2[#results2 + 1] = true
                else
                    barrier1:abort()
                end
            end
            local i = barrier2:wait()
            if i == N // 2 then barrier1:reset() end
            barrier2:wait()
            barrier1:wait()
            results3[#results3 + 1] = true
        end))
        assert.is_false(barrier1.broken)
        assert.are.equal(0, #results1)
        assert.are.equal(N - 1, #results2)
        assert.are.equal(N, #results3)
        assert.are.equal(0, barrier1.n_waiting)
    end))

    it("a timeout around wait lets the barrier fill again later", async(function()
        local barrier = lasio.Barrier(2)
        local ok, e, timed_out = within(0.01, barrier.wait, barrier)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier._cond:locked())
        local other = lasio.spawn(barrier.wait, barrier)
        local ok2, i = within(1, barrier.wait, barrier)
        assert.is_true(ok2)
        local j = other:await()
        assert.are.same({ 0, 1 }, { math.min(i, j), math.max(i, j) })
    end))

    it("a wait cancelled while blocked by draining leaves the count alone", async(function()
        local barrier = lasio.Barrier(2)
        local a = lasio.spawn(barrier.wait, barrier)
        local b = lasio.spawn(barrier.wait, barrier)
        local late = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0) -- a waits, b releases the round, late blocks (draining)
        assert.is_true(tostring(barrier):find("draining", 1, true) ~= nil)
        late:cancel()
        assert.is_true(is_cancelled(raises(late.await, late)))
        gather({ a, b })
        assert.are.equal(0, barrier._count)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier._cond:locked())
        assert.are.equal("lasio.Barrier<filling waiters=0/2>", tostring(barrier))
    end))

    it("a wait cancelled while taking the barrier's lock leaves no trace", async(function()
        local barrier = lasio.Barrier(2)
        barrier._cond:acquire() -- hold the barrier's internal lock
        local t = lasio.spawn(barrier.wait, barrier)
        lasio.sleep(0)
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        barrier._cond:release()
        assert.are.equal(0, barrier._count)
        assert.are.equal(0, nwaiters(barrier._cond._lock))
        local t1, t2 = lasio.spawn(barrier.wait, barrier), lasio.spawn(barrier.wait, barrier)
        gather({ t1, t2 })
    end))

    it("reset and abort cancelled while taking the barrier's lock change nothing",
        async(function()
            local barrier = lasio.Barrier(2)
            local w = lasio.spawn(barrier.wait, barrier)
            lasio.sleep(0)
            barrier._cond:acquire()
            local r = lasio.spawn(barrier.reset, barrier)
            local a = lasio.spawn(barrier.abort, barrier)
            lasio.sleep(0)
            r:cancel()
            a:cancel()
            assert.is_true(is_cancelled(raises(r.await, r)))
            assert.is_true(is_cancelled(raises(a.await, a)))
            barrier._cond:release()
            assert.are.equal(1, barrier.n_waiting)
            assert.is_false(barrier.broken)
            assert.are.equal(1, barrier:wait())
            assert.are.equal(0, w:await())
        end))

    -- covers F11
    it("a wait inside cleanup gets a second cancel (F11)", async(function()
        local barrier = lasio.Barrier(2)
        local log = {}
        local t = lasio.spawn(function()
            local _ <close> = helper.closer(function()
                local ok, e = pcall(barrier.wait, barrier)
                log[#log + 1] = ok and "passed" or (is_cancelled(e) and "cancelled-again")
            end)
            lasio.sleep(10)
        end)
        lasio.sleep(0)
        t:cancel()
        lasio.sleep(0)
        assert.are.equal(1, barrier.n_waiting)
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.same({ "cancelled-again" }, log)
        assert.are.equal(0, barrier.n_waiting)
        assert.is_false(barrier._cond:locked())
    end))
end)

describe("loop binding", function()
    it("a primitive waited on in one loop raises when waited on in another", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
local lock = lasio.Lock()
local function contend()
    lock:acquire()
    local t = lasio.spawn(lock.acquire, lock)
    lasio.sleep(0)
    lock:release()
    t:await()
    lock:release()
end
local loop1 = lasio.new_event_loop()
loop1:run_until_complete(contend)
loop1:close()
local loop2 = lasio.new_event_loop()
local ok, e = pcall(loop2.run_until_complete, loop2, contend)
print(ok, e)
]], { interp = "lua5.4" })
        assert.are.equal(0, status, err)
        assert.truthy(out:find("^false\t"), out .. err)
        assert.truthy(out:find("lasio.Lock:acquire: bound to a different event loop",
            1, true), out .. err)
    end)
end)

-- The real timeouts (docs/API.md, Combinators, timeouts and task groups)
-- around every wait of every primitive: the
-- wait ends with TimeoutError, the task keeps no cancel request, and the
-- primitive is left as if the wait had never started.
describe("timeouts around each wait", function()
    local cases = {
        { "Lock:acquire", function()
            local lock = lasio.Lock()
            lock:acquire()
            return function() return lock:acquire() end, function()
                assert.are.equal(0, nwaiters(lock))
                lock:release()
                assert.is_false(lock:locked())
            end
        end },
        { "Event:wait", function()
            local ev = lasio.Event()
            return function() return ev:wait() end, function()
                assert.are.equal(0, nwaiters(ev))
                assert.is_false(ev:is_set())
            end
        end },
        { "Condition:wait", function()
            local cond = lasio.Condition()
            cond:acquire()
            return function() return cond:wait() end, function()
                assert.are.equal(0, nwaiters(cond))
                assert.is_true(cond:locked()) -- re-acquired before raising
                cond:release()
            end
        end },
        { "Condition:wait_for", function()
            local cond = lasio.Condition()
            cond:acquire()
            return function() return cond:wait_for(function() return false end) end, function()
                assert.are.equal(0, nwaiters(cond))
                assert.is_true(cond:locked())
                cond:release()
            end
        end },
        { "Semaphore:acquire", function()
            local sem = lasio.Semaphore(0)
            return function() return sem:acquire() end, function()
                assert.are.equal(0, nwaiters(sem))
                assert.are.equal(0, sem._value)
            end
        end },
        { "BoundedSemaphore:acquire", function()
            local sem = lasio.BoundedSemaphore(1)
            sem:acquire()
            return function() return sem:acquire() end, function()
                assert.are.equal(0, nwaiters(sem))
                sem:release()
                assert.are.equal(1, sem._value)
            end
        end },
        { "Barrier:wait", function()
            local barrier = lasio.Barrier(3)
            return function() return barrier:wait() end, function()
                assert.are.equal(0, barrier.n_waiting)
                assert.is_false(barrier.broken)
                assert.is_false(barrier._cond:locked())
            end
        end },
    }
    for _, case in ipairs(cases) do
        local name, setup = case[1], case[2]

        it(name .. " in a lasio.timeout scope raises TimeoutError", async(function()
            local call, check = setup()
            local loop = lasio.get_running_loop()
            local t0 = loop:time()
            local ok, e = pcall(function()
                local _ <close> = lasio.timeout(0.01)
                call()
            end)
            assert.is_false(ok)
            assert.is_true(lasio.TimeoutError:is(e), tostring(e))
            assert.is_true(loop:time() - t0 < helper.t(1))
            assert.are.equal(0, lasio.current_task():cancelling())
            check()
            lasio.sleep(0)
        end))

        it(name .. " under lasio.wait_for raises TimeoutError", async(function()
            local call, check = setup()
            local e = raises(lasio.wait_for, call, 0.01)
            assert.is_true(lasio.TimeoutError:is(e), tostring(e))
            check()
        end))
    end
end)
