-- Specs for timeout scopes (lasio.timeout, lasio.timeout_at) and
-- lasio.wait_for: a port of asyncio's test_timeouts.py and test_waitfor.py.
-- Covers T1, T2, T3, T4 and F11.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local TimeoutError = lasio.TimeoutError
local EPSILON = 0.0001

local raises = helper.raises

local function is_timeout(e) return TimeoutError:is(e) end
local is_cancelled = helper.is_cancelled

local function now() return lasio.get_running_loop():time() end

describe("lasio.timeout", function()
    describe("expiry", function()
        -- covers T1
        it("turns the expiry into TimeoutError outside, CancelledError inside (T1)",
            async(function()
                local cm, inside
                local t0 = now()
                local e = raises(function()
                    local t <close> = lasio.timeout(0.01)
                    cm = t
                    local _, err = pcall(lasio.sleep, 10)
                    inside = err
                    error(err, 0)
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.is_true(is_cancelled(inside), tostring(inside))
                assert.is_true(cm:expired())
                assert.is_true(now() - t0 < helper.t(0.5))
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("the TimeoutError's cause is the CancelledError", async(function()
            local e = raises(function()
                local _ <close> = lasio.timeout(0)
                lasio.sleep(1)
            end)
            assert.is_true(is_timeout(e))
            assert.is_true(is_cancelled(e.cause), tostring(e.cause))
            assert.are.equal("TimeoutError", tostring(e))
        end))

        it("timeout_at expires at its deadline and when() is that deadline",
            async(function()
                local deadline = now() + 0.01
                local cm
                local e = raises(function()
                    local t <close> = lasio.timeout_at(deadline)
                    cm = t
                    lasio.sleep(10)
                end)
                assert.is_true(is_timeout(e))
                assert.is_true(cm:expired())
                assert.are.equal(deadline, cm:when())
                assert.is_true(now() >= deadline)
            end))

        -- covers T1
        it("two nested scopes with the same deadline: only the outer raises TimeoutError (T1)",
            async(function()
                local deadline = now() + 0.01
                local cm1, cm2, inner_err
                local e = raises(function()
                    local t1 <close> = lasio.timeout_at(deadline)
                    cm1 = t1
                    local _, err = pcall(function()
                        local t2 <close> = lasio.timeout_at(deadline)
                        cm2 = t2
                        lasio.sleep(10)
                    end)
                    inner_err = err
                    error(err, 0)
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.is_true(is_cancelled(inner_err), tostring(inner_err))
                assert.is_true(cm1:expired())
                assert.is_true(cm2:expired())
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("a scope that does not expire changes nothing", async(function()
            local cm
            do
                local t <close> = lasio.timeout(10)
                cm = t
                lasio.sleep(0.01)
            end
            assert.is_false(cm:expired())
            assert.is_true(cm:when() > now())
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("delay nil never expires (timeout and timeout_at)", async(function()
            for _, make in ipairs({ lasio.timeout, lasio.timeout_at }) do
                local cm
                do
                    local t <close> = make(nil)
                    cm = t
                    lasio.sleep(0.01)
                end
                assert.is_false(cm:expired())
                assert.is_nil(cm:when())
            end
        end))

        it("math.huge never expires", async(function()
            local cm
            do
                local t <close> = lasio.timeout(math.huge)
                cm = t
                lasio.sleep(0.001)
            end
            assert.is_false(cm:expired())
            assert.are.equal(math.huge, cm:when())
        end))

        -- covers T4
        it("timeout(0) around sleep(10) raises TimeoutError at once (T4)", async(function()
            local t0 = now()
            local cm
            local e = raises(function()
                local t <close> = lasio.timeout(0)
                cm = t
                lasio.sleep(10)
            end)
            local t1 = now()
            assert.is_true(is_timeout(e))
            assert.is_true(cm:expired())
            assert.is_true(t0 <= cm:when() and cm:when() <= t1)
            assert.is_true(t1 - t0 < helper.t(1))
        end))

        -- covers T4
        it("timeout(0) with a body doing sleep(0) raises TimeoutError (T4)", async(function()
            local t0 = now()
            local cm
            local e = raises(function()
                local t <close> = lasio.timeout(0)
                cm = t
                lasio.sleep(0)
            end)
            assert.is_true(is_timeout(e))
            assert.is_true(cm:expired())
            assert.is_true(t0 <= cm:when() and cm:when() <= now())
        end))

        -- covers T4
        it("a deadline in the past with a body doing sleep(0) raises TimeoutError (T4)",
            async(function()
                local t0 = now()
                local cm
                local e = raises(function()
                    local t <close> = lasio.timeout(-11)
                    cm = t
                    lasio.sleep(0)
                end)
                assert.is_true(is_timeout(e))
                assert.is_true(cm:expired())
                assert.is_true(cm:when() <= t0)
                e = raises(function()
                    local _ <close> = lasio.timeout_at(now() - 5)
                    lasio.sleep(0)
                end)
                assert.is_true(is_timeout(e))
            end))

        it("a body that ends without awaiting is not interrupted, even at timeout(0)",
            async(function()
                local cm
                local r = (function()
                    local t <close> = lasio.timeout(0)
                    cm = t
                    return "quick"
                end)()
                assert.are.equal("quick", r)
                assert.is_false(cm:expired())
                lasio.sleep(0.001) -- the cancelled timer must not fire later
                assert.are.equal(0, lasio.current_task():cancelling())
            end))
    end)

    describe("other errors and cancellations", function()
        it("an error of the body passes unchanged and the scope does not expire",
            async(function()
                local err = { tag = "mine" }
                local cm
                local e = raises(function()
                    local t <close> = lasio.timeout(0.01)
                    cm = t
                    error(err)
                end)
                assert.are.equal(err, e)
                assert.is_false(cm:expired())
            end))

        it("an expiry while cleaning up after another error still gives TimeoutError",
            async(function()
                -- the CancelledError raised in the cleanup replaces the
                -- error in flight (asyncio's test_timeout_exception_context)
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.01)
                    local _ <close> = helper.closer(function() lasio.sleep(1) end)
                    error("ZeroDivisionError", 0)
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.is_true(is_cancelled(e.cause))
            end))

        it("an error raised while handling the expiry wins over TimeoutError",
            async(function()
                local function crash()
                    local _ <close> = helper.closer(function() error("crash", 0) end)
                    lasio.sleep(1)
                end
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.01)
                    crash()
                end)
                assert.are.equal("crash", e)
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        -- covers T1
        it("an external cancel inside an unexpired scope stays a CancelledError (T1)",
            async(function()
                local cm
                local e = raises(function()
                    local t <close> = lasio.timeout(10)
                    cm = t
                    lasio.current_task():cancel()
                    lasio.sleep(10)
                end)
                assert.is_true(is_cancelled(e), tostring(e))
                assert.is_false(cm:expired())
                assert.are.equal(1, lasio.current_task():cancelling())
                lasio.current_task():uncancel()
            end))

        -- covers T1
        it("another task's cancel inside an unexpired scope ends the task cancelled (T1)",
            async(function()
                local seen, cm
                local t = lasio.spawn(function()
                    local _, e = pcall(function()
                        local s <close> = lasio.timeout(10)
                        cm = s
                        lasio.sleep(10)
                    end)
                    seen = e
                    error(e, 0)
                end)
                lasio.sleep(0.01)
                t:cancel("outside")
                local e = raises(t.await, t)
                assert.is_true(is_cancelled(e))
                assert.is_true(is_cancelled(seen))
                assert.are.equal("outside", seen.message)
                assert.is_true(t:cancelled())
                assert.is_false(cm:expired())
            end))

        it("the task itself is not cancelled by an expiry it handled", async(function()
            local t = lasio.spawn(function()
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.001)
                    lasio.sleep(10)
                end)
                assert(is_timeout(e))
                return lasio.current_task():cancelling()
            end)
            assert.are.equal(0, t:await())
            assert.is_false(t:cancelled())
            assert.is_true(t:done())
        end))

        it("a body that catches the expiry's CancelledError ends normally, expired",
            async(function()
                local cm
                local r = (function()
                    local t <close> = lasio.timeout(0.01)
                    cm = t
                    local ok = pcall(lasio.sleep, 10)
                    assert(not ok)
                    return "caught"
                end)()
                assert.are.equal("caught", r)
                assert.is_true(cm:expired())
                assert.are.equal(0, lasio.current_task():cancelling())
                lasio.sleep(0) -- no cancellation left behind
            end))

        it("an outer scope still fires after a short inner one raised (busy loop)",
            async(function()
                local t0 = now()
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.1)
                    local _, err = pcall(function()
                        local _ <close> = lasio.timeout(0.01)
                        helper.busy(0.1) -- the loop is busy past both deadlines
                        lasio.sleep(1)
                    end)
                    -- both expired in one turn: the inner scope passes the
                    -- CancelledError on; had it raised TimeoutError, the outer
                    -- scope would interrupt the sleep below
                    if not is_timeout(err) then error(err, 0) end
                    lasio.sleep(10)
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.is_true(now() - t0 < helper.t(1))
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("an outer scope that expires first wins over a longer inner one", async(function()
            local inner_err
            local e = raises(function()
                local _ <close> = lasio.timeout(0.002)
                local _, err = pcall(function()
                    local _ <close> = lasio.timeout(0.1)
                    helper.busy(0.01)
                    lasio.sleep(1)
                end)
                inner_err = err
                error(err, 0)
            end)
            assert.is_true(is_timeout(e))
            assert.is_true(is_cancelled(inner_err), tostring(inner_err))
        end))

        it("after a cancellation was caught, a new scope still times out",
            async(function()
                lasio.current_task():cancel()
                assert.is_false(pcall(lasio.sleep, 1))
                -- the request is still counted (nobody uncancelled it)
                assert.are.equal(1, lasio.current_task():cancelling())
                local e = raises(function()
                    local _ <close> = lasio.timeout(0)
                    lasio.sleep(1)
                end)
                assert.is_true(is_timeout(e))
                assert.are.equal(1, lasio.current_task():cancelling())
                lasio.current_task():uncancel()
            end))

        it("after a cancellation was caught, a new cancel inside a scope stays CancelledError",
            async(function()
                lasio.current_task():cancel()
                assert.is_false(pcall(lasio.sleep, 1))
                local e = raises(function()
                    local _ <close> = lasio.timeout(1)
                    lasio.current_task():cancel()
                    lasio.sleep(2)
                end)
                assert.is_true(is_cancelled(e))
                assert.are.equal(2, lasio.current_task():cancelling())
                lasio.current_task():uncancel()
                lasio.current_task():uncancel()
            end))

        -- covers F11
        it("a scope inside cleanup code of an expired scope times out on its own (F11)",
            async(function()
                local inner_err, cleanup_saw
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.01)
                    local _ <close> = helper.closer(function(err)
                        cleanup_saw = err
                        local _, e2 = pcall(function()
                            local _ <close> = lasio.timeout(0.01)
                            lasio.sleep(10)
                        end)
                        inner_err = e2
                    end)
                    lasio.sleep(1)
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.is_true(is_cancelled(cleanup_saw))
                assert.is_true(is_timeout(inner_err), tostring(inner_err))
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        -- covers F11
        it("a task cancelled again while its cleanup awaits inside a scope sees the second cancel (F11)",
            async(function()
                local log = {}
                local started = lasio.Future()
                local t = lasio.spawn(function()
                    local _ <close> = lasio.timeout(10)
                    local _ <close> = helper.closer(function(err)
                        log[#log + 1] = "cleanup:" .. tostring(err)
                        started:set_result()
                        local _, e = pcall(lasio.sleep, 10)
                        log[#log + 1] = "second:" .. tostring(e)
                    end)
                    lasio.sleep(10)
                end)
                lasio.sleep(0.001)
                t:cancel("first")
                started:await()
                t:cancel("second")
                local e = raises(t.await, t)
                assert.is_true(is_cancelled(e))
                assert.are.same({ "cleanup:CancelledError: first",
                    "second:CancelledError: second" }, log)
            end))

        it("an expiry inside a task group gives the group's ErrorGroup, not TimeoutError",
            async(function()
                local e = raises(function()
                    local _ <close> = lasio.timeout(0.01)
                    lasio.taskgroup(function(tg)
                        tg:spawn(function()
                            local _ <close> = helper.closer(function() error("crash in cleanup", 0) end)
                            lasio.sleep(2)
                        end)
                        local _ <close> = helper.closer(function() lasio.sleep(1) end)
                        error("value error", 0)
                    end)
                end)
                assert.is_true(lasio.ErrorGroup:is(e), tostring(e))
                assert.are.equal(1, #e.errors)
                assert.are.equal("crash in cleanup", e.errors[1])
                assert.are.equal(0, lasio.current_task():cancelling())
            end))
    end)

    -- covers T3
    describe("completion in the same loop turn as the expiry (T3)", function()
        it("completion woken first, expiry after: the result is returned", async(function()
            local loop = lasio.get_running_loop()
            local fut = lasio.Future()
            local scope
            loop:call_soon(function()
                fut:set_result("value")
                scope:reschedule(loop:time() - 1) -- queued behind the wake-up
            end)
            local r = (function()
                local t <close> = lasio.timeout(10)
                scope = t
                return fut:await()
            end)()
            assert.are.equal("value", r)
            assert.is_false(scope:expired())
            lasio.sleep(0.001)
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("expiry first, then the completion: TimeoutError", async(function()
            local loop = lasio.get_running_loop()
            local fut = lasio.Future()
            local deadline = loop:time() + 0.01
            local ok, e = pcall(function()
                local _ <close> = lasio.timeout_at(deadline)
                -- same deadline, armed after the scope's timer
                loop:call_at(deadline, function()
                    if not fut:done() then fut:set_result("late") end
                end)
                return fut:await()
            end)
            assert.is_false(ok)
            assert.is_true(is_timeout(e), tostring(e))
            assert.is_true(fut:cancelled())
        end))

        it("completion woken, expiry before the task ran: TimeoutError, consistently",
            async(function()
                local loop = lasio.get_running_loop()
                local fut = lasio.Future()
                local deadline = loop:time() + 0.01
                -- resolve at the deadline, armed before the scope's timer
                loop:call_at(deadline, function() fut:set_result("value") end)
                local e = raises(function()
                    local _ <close> = lasio.timeout_at(deadline)
                    return fut:await()
                end)
                assert.is_true(is_timeout(e), tostring(e))
                assert.are.equal("value", fut:result())
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("a third party's cancel in that same turn is never swallowed", async(function()
            local loop = lasio.get_running_loop()
            local reached_end = false
            local fut = lasio.Future()
            local deadline = loop:time() + 0.01
            local t = lasio.spawn(function()
                local _ <close> = lasio.timeout_at(deadline)
                fut:await()
                lasio.sleep(0)
                reached_end = true
            end)
            loop:call_at(deadline, function() fut:set_result("value") end)
            lasio.sleep(0) -- t is waiting; its scope's timer is armed now
            loop:call_at(deadline, function() t:cancel("third party") end)
            local e = raises(t.await, t)
            assert.is_true(is_cancelled(e), tostring(e))
            assert.is_true(t:cancelled())
            assert.is_false(reached_end)
        end))

        it("a third party's cancel when the scope expires in the same turn is not swallowed",
            async(function()
                local loop = lasio.get_running_loop()
                local deadline = loop:time() + 0.01
                local seen
                local t = lasio.spawn(function()
                    local _, e = pcall(function()
                        local _ <close> = lasio.timeout_at(deadline)
                        lasio.sleep(10)
                    end)
                    seen = e
                    error(e, 0)
                end)
                lasio.sleep(0)
                loop:call_at(deadline, function() t:cancel("third party") end)
                local e = raises(t.await, t)
                assert.is_true(is_cancelled(e), tostring(e))
                assert.is_true(is_cancelled(seen), tostring(seen))
                assert.is_true(t:cancelled())
            end))
    end)

    describe("the scope object", function()
        it("reschedule moves the deadline; nil disables it", async(function()
            local fut = lasio.Future()
            local deadline1 = now() + 10
            local deadline2 = deadline1 + 20
            local t = lasio.spawn(function()
                local cm <close> = lasio.timeout_at(deadline1)
                fut:set_result(cm)
                lasio.sleep(50)
            end)
            local cm = fut:await()
            assert.are.equal(deadline1, cm:when())
            cm:reschedule(deadline2)
            assert.are.equal(deadline2, cm:when())
            cm:reschedule(nil)
            assert.is_nil(cm:when())
            t:cancel()
            assert.is_true(is_cancelled(raises(t.await, t)))
            assert.is_false(cm:expired())
        end))

        it("reschedule to a nearer deadline makes it expire then", async(function()
            local t0 = now()
            local e = raises(function()
                local cm <close> = lasio.timeout(100)
                cm:reschedule(now() + 0.01)
                lasio.sleep(10)
            end)
            assert.is_true(is_timeout(e))
            assert.is_true(now() - t0 < helper.t(1))
        end))

        it("reschedule of an expiring, expired or finished scope raises", async(function()
            local cm
            do
                local t <close> = lasio.timeout(0.01)
                cm = t
            end
            local e = raises(cm.reschedule, cm, 0.02)
            assert.truthy(tostring(e):find("finished", 1, true), tostring(e))
            raises(function()
                local t <close> = lasio.timeout(0.01)
                cm = t
                lasio.sleep(1)
            end)
            e = raises(cm.reschedule, cm, 0.02)
            assert.truthy(tostring(e):find("expired", 1, true), tostring(e))
            e = raises(function()
                local t <close> = lasio.timeout(0.01)
                assert.is_false(pcall(lasio.sleep, 1))
                local e2 = raises(t.reschedule, t, 0.02)
                assert.truthy(tostring(e2):find("expiring", 1, true), tostring(e2))
                error("done", 0)
            end)
            assert.are.equal("done", e)
        end))

        it("tostring names the state and the deadline", async(function()
            do
                local cm <close> = lasio.timeout(10)
                assert.truthy(tostring(cm):find("^lasio%.Timeout<active when=%d+%.%d+>$"),
                    tostring(cm))
            end
            do
                local cm <close> = lasio.timeout(nil)
                assert.are.equal("lasio.Timeout<active when=nil>", tostring(cm))
            end
            local cm
            do
                local t <close> = lasio.timeout(10)
                cm = t
                lasio.sleep(0)
            end
            assert.are.equal("lasio.Timeout<finished>", tostring(cm))
            raises(function()
                local t <close> = lasio.timeout(0.01)
                cm = t
                lasio.sleep(10)
            end)
            assert.are.equal("lasio.Timeout<expired>", tostring(cm))
        end))

        it("timeout(delay, fn, ...) runs fn inside a scope and returns its results",
            async(function()
                local r = table.pack(lasio.timeout(1, function(a, b)
                    lasio.sleep(0)
                    return a + b, nil, "x"
                end, 2, 3))
                assert.are.equal(3, r.n)
                assert.are.equal(5, r[1])
                assert.are.equal("x", r[3])
                local e = raises(lasio.timeout, 0.01, function() lasio.sleep(10) end)
                assert.is_true(is_timeout(e))
                e = raises(lasio.timeout_at, now() + 0.01, lasio.sleep, 10)
                assert.is_true(is_timeout(e))
                assert.are.equal("v", lasio.timeout_at(nil, function() return "v" end))
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("misuse raises at once with a clear message", async(function()
            local function msg(...) return tostring(raises(...)) end
            assert.truthy(msg(lasio.timeout, "1"):find("delay must be a number or nil, got string", 1, true))
            assert.truthy(msg(lasio.timeout, 0 / 0):find("NaN", 1, true))
            assert.truthy(msg(lasio.timeout_at, {}):find("when must be a number or nil, got table", 1, true))
            assert.truthy(msg(lasio.timeout, 1, 42):find("fn must be a function", 1, true))
            local cm <close> = lasio.timeout(10)
            assert.truthy(msg(cm.reschedule, cm, "soon"):find("when must be a number or nil", 1, true))
            assert.truthy(msg(cm.reschedule, cm, 0 / 0):find("NaN", 1, true))
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("outside a task, timeout raises", async(function()
            local loop = lasio.get_running_loop()
            local got
            loop:call_soon(function()
                got = table.pack(pcall(lasio.timeout, 1))
            end)
            lasio.sleep(0.001)
            assert.is_false(got[1])
            assert.truthy(tostring(got[2]):find("lasio.timeout: not inside a task", 1, true),
                tostring(got[2]))
        end))
    end)
end)

-- A task that runs for `duration` seconds, ignoring cancel requests.
local function slow_task(duration)
    local st = { exited = false }
    function st.run()
        local exit_at = lasio.get_running_loop():time() + duration
        while true do
            local left = exit_at - lasio.get_running_loop():time()
            if left <= 0 then break end
            pcall(lasio.sleep, left)
        end
        st.exited = true
    end
    return st
end

describe("lasio.wait_for", function()
    it("returns the results of a function, a task and a future", async(function()
        local r = table.pack(lasio.wait_for(function() return 1, nil, 3 end, 1))
        assert.are.equal(3, r.n)
        assert.are.same({ 1, nil, 3 }, { r[1], r[2], r[3] })
        local t = lasio.spawn(function() lasio.sleep(0.01) return "task" end)
        assert.are.equal("task", lasio.wait_for(t, 1))
        local fut = lasio.Future()
        lasio.get_running_loop():call_soon(function() fut:set_result("ok") end)
        assert.are.equal("ok", lasio.wait_for(fut, 0.2))
        assert.are.equal(0, lasio.current_task():cancelling())
    end))

    it("timeout nil waits as long as it takes", async(function()
        assert.are.equal("done", lasio.wait_for(function()
            lasio.sleep(0.01)
            return "done"
        end, nil))
    end))

    it("cancels the task on timeout and raises TimeoutError", async(function()
        local running
        local fut = lasio.spawn(function()
            running = true
            local _ <close> = helper.closer(function() running = false end)
            lasio.sleep(10)
            return "done"
        end)
        local t0 = now()
        local e = raises(lasio.wait_for, fut, 0.05)
        assert.is_true(is_timeout(e))
        assert.is_true(fut:done())
        assert.is_true(fut:cancelled())
        assert.is_false(running)
        assert.is_true(now() - t0 < helper.t(1))
        assert.are.equal(0, lasio.current_task():cancelling())
    end))

    it("an error of the awaitable passes unchanged", async(function()
        local err = { tag = "E" }
        assert.are.equal(err, raises(lasio.wait_for, function() error(err) end, 1))
        local f = lasio.Future()
        f:set_exception("done-error")
        assert.are.equal("done-error", raises(lasio.wait_for, f, 1))
    end))

    -- covers T4
    describe("timeout <= 0 (T4)", function()
        it("a done future gives its value", async(function()
            local fut = lasio.Future()
            fut:set_result("done")
            local other_ran = false
            local t = lasio.spawn(function() other_ran = true end)
            assert.are.equal("done", lasio.wait_for(fut, 0))
            assert.are.equal("done", lasio.wait_for(fut, -1))
            assert.is_true(fut:done())
            assert.is_false(other_ran) -- returned without suspending
            t:await()
        end))

        it("a done future's error is raised", async(function()
            local fut = lasio.Future()
            fut:set_exception("bad")
            assert.are.equal("bad", raises(lasio.wait_for, fut, 0))
        end))

        it("a function is never started", async(function()
            local started = false
            for _, timeout in ipairs({ 0, -1 }) do
                local e = raises(lasio.wait_for, function() started = true end, timeout)
                assert.is_true(is_timeout(e), tostring(e))
            end
            lasio.sleep(0.001)
            assert.is_false(started)
        end))

        it("a running task is cancelled, finishes cancelling, then TimeoutError",
            async(function()
                for _, timeout in ipairs({ 0, -1 }) do
                    local running
                    local started = lasio.Future()
                    local fut = lasio.spawn(function()
                        running = true
                        started:set_result()
                        local _ <close> = helper.closer(function() running = false end)
                        lasio.sleep(10)
                        return "done"
                    end)
                    started:await()
                    local t0 = now()
                    local e = raises(lasio.wait_for, fut, timeout)
                    assert.is_true(is_timeout(e))
                    assert.is_true(is_cancelled(e.cause))
                    assert.is_true(fut:cancelled())
                    assert.is_false(running)
                    assert.is_true(now() - t0 < helper.t(1))
                end
            end))

        it("a pending future is cancelled", async(function()
            local fut = lasio.Future()
            assert.is_true(is_timeout(raises(lasio.wait_for, fut, 0)))
            assert.is_true(fut:cancelled())
        end))

        -- covers T2
        it("waits for the task's cancellation handler before raising (T2)", async(function()
            local task_done = false
            local inner = lasio.spawn(function()
                local _ <close> = helper.closer(function() task_done = true end)
                local _, e = pcall(lasio.sleep, 10)
                lasio.sleep(EPSILON)
                error(e, 0)
            end)
            lasio.sleep(EPSILON)
            local e = raises(lasio.wait_for, inner, 0)
            assert.is_true(is_timeout(e))
            assert.is_true(task_done)
            assert.is_true(is_cancelled(e.cause))
        end))

        it("a task that catches the cancel and returns gives its value", async(function()
            local started = lasio.Future()
            local inner = lasio.spawn(function()
                started:set_result()
                local ok = pcall(lasio.sleep, 10)
                return ok and "slept" or "caught"
            end)
            started:await()
            assert.are.equal("caught", lasio.wait_for(inner, 0))
        end))

        it("cancelling the caller while it waits for the cancellation raises CancelledError",
            async(function()
                local release = lasio.Future()
                local inner = lasio.spawn(function()
                    local _, e = pcall(lasio.sleep, 10)
                    release:await() -- a slow cancellation handler
                    error(e, 0)
                end)
                lasio.sleep(0)
                local caller = lasio.spawn(lasio.wait_for, inner, 0)
                lasio.sleep(0.001)
                assert.is_false(caller:done())
                caller:cancel()
                assert.is_true(is_cancelled(raises(caller.await, caller)))
                assert.is_false(inner:done())
                release:set_result()
                assert.is_true(is_cancelled(raises(inner.await, inner)))
            end))
    end)

    -- covers T2
    describe("waiting for the cancelled awaitable (T2)", function()
        it("returns only after the task finished cancelling", async(function()
            local task_done = false
            local inner = lasio.spawn(function()
                local _ <close> = helper.closer(function() task_done = true end)
                local _, e = pcall(lasio.sleep, 10)
                lasio.sleep(EPSILON)
                error(e, 0)
            end)
            lasio.sleep(0) -- inner is running
            local e = raises(lasio.wait_for, inner, EPSILON)
            assert.is_true(task_done)
            assert.is_true(is_timeout(e))
            assert.is_true(is_cancelled(e.cause))
        end))

        it("raises the error the cancelled task raised", async(function()
            local err = { tag = "FooException" }
            local inner = lasio.spawn(function()
                local _ <close> = helper.closer(function() error(err) end)
                lasio.sleep(0.2)
            end)
            lasio.sleep(0)
            assert.are.equal(err, raises(lasio.wait_for, inner, EPSILON))
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("a task that ignores cancellation is waited for (slow task)", async(function()
            local st = slow_task(0.2)
            local ok, e = pcall(lasio.wait_for, st.run, 0.1)
            assert.is_true(ok or is_timeout(e))
            assert.is_true(st.exited)
        end))

        it("cancelling wait_for waits for the slow task too", async(function()
            local st = slow_task(0.2)
            local waiter = lasio.spawn(lasio.wait_for, st.run, 0.4)
            lasio.sleep(0.01) -- st.run runs in a task of its own: let it start
            waiter:cancel()
            lasio.wait({ waiter })
            assert.is_true(st.exited)
            assert.is_true(waiter:done())
        end))

        it("a task that catches the cancellation and returns 42 gives 42", async(function()
            local r = lasio.wait_for(function()
                local ok = pcall(lasio.sleep, 10)
                assert(not ok)
                return 42
            end, 0.1)
            assert.are.equal(42, r)
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("an inner cancellation caught by the task gives its result (race)", async(function()
            local r = lasio.wait_for(function()
                local ok, e = pcall(lasio.sleep, 1)
                assert(not ok and is_cancelled(e))
                return 1
            end, 0.01)
            assert.are.equal(1, r)
        end))
    end)

    describe("cancelling wait_for", function()
        for _, timeout in ipairs({ false, 60 }) do
            it("cancels the awaited task (timeout " .. tostring(timeout or "nil") .. ")",
                async(function()
                    local loop = lasio.get_running_loop()
                    local task = lasio.spawn(function() lasio.Future():await() end)
                    local wait = lasio.spawn(lasio.wait_for, task, timeout or nil)
                    loop:call_soon(function() wait:cancel() end)
                    assert.is_true(is_cancelled(raises(wait.await, wait)))
                    assert.is_true(task:cancelled())
                end))
        end

        -- covers T3
        it("the awaited task completing in the same turn does not swallow the cancel (T3, cpython#86296)",
            async(function()
                local inner = lasio.spawn(function() return "done" end)
                local reached_end = false
                local t = lasio.spawn(function()
                    lasio.wait_for(inner, 100)
                    lasio.sleep(1)
                    reached_end = true
                end)
                assert.is_false(t:done())
                lasio.sleep(0)
                t:cancel()
                assert.is_true(is_cancelled(raises(t.await, t)))
                assert.is_true(inner:done())
                assert.are.equal("done", inner:await())
                assert.is_false(reached_end)
            end))

        -- covers T3
        it("a cancel arriving when the awaited future just completed is delivered (T3)",
            async(function()
                local loop = lasio.get_running_loop()
                local fut = lasio.Future()
                local after = false
                local t = lasio.spawn(function()
                    local v = lasio.wait_for(fut, 10)
                    after = v
                end)
                lasio.sleep(0)
                loop:call_soon(function()
                    fut:set_result("value") -- t is woken ...
                    t:cancel()              -- ... and cancelled in the same turn
                end)
                assert.is_true(is_cancelled(raises(t.await, t)))
                assert.is_true(t:cancelled())
                assert.is_false(after)
            end))
    end)

    describe("with shield", function()
        it("timeout 0: the shield is cancelled, the task keeps running", async(function()
            local task = lasio.spawn(function() lasio.sleep(0.01) return "done" end)
            local shielded = lasio.shield(task)
            assert.is_true(is_timeout(raises(lasio.wait_for, shielded, 0)))
            assert.is_false(task:done())
            assert.is_false(task:cancelled())
            assert.is_true(shielded:cancelled())
            assert.are.equal("done", task:await())
        end))

        it("timeout nil: runs to completion", async(function()
            local task = lasio.spawn(function() lasio.sleep(0.01) return "done" end)
            assert.are.equal("done", lasio.wait_for(lasio.shield(task), nil))
            assert.is_true(task:done())
        end))

        it("a timeout does not cancel the shielded task", async(function()
            local task = lasio.spawn(function() lasio.sleep(0.1) return "done" end)
            assert.is_true(is_timeout(raises(lasio.wait_for, lasio.shield(task), 0.01)))
            assert.is_false(task:done())
            assert.is_false(task:cancelled())
            assert.are.equal("done", task:await())
        end))
    end)

    it("misuse raises at once with a clear message", async(function()
        local function msg(...) return tostring(raises(...)) end
        assert.truthy(msg(lasio.wait_for, 42, 1):find("expected an awaitable", 1, true))
        assert.truthy(msg(lasio.wait_for, lasio.Future(), "1"):find(
            "timeout must be a number or nil, got string", 1, true))
        assert.truthy(msg(lasio.wait_for, lasio.Future(), 0 / 0):find("NaN", 1, true))
        local other = lasio.new_event_loop()
        local f = other:create_future()
        assert.truthy(msg(lasio.wait_for, f, 1):find("another loop", 1, true))
        other:close()
    end))

    it("outside a task, wait_for raises", async(function()
        local got
        lasio.get_running_loop():call_soon(function()
            got = table.pack(pcall(lasio.wait_for, lasio.Future(), 1))
        end)
        lasio.sleep(0.001)
        assert.is_false(got[1])
        assert.truthy(tostring(got[2]):find("not inside a task", 1, true))
    end))
end)

describe("lasio.Timeout (asyncio.Timeout)", function()
    it("expires at its deadline and turns the cancellation into TimeoutError", async(function()
        local seen
        local err = raises(function()
            local t <close> = lasio.Timeout(now() + 0.01)
            seen = t
            lasio.sleep(10)
        end)
        assert.is_true(is_timeout(err))
        assert.is_true(seen:expired())
    end))

    it("nil never expires until rescheduled; reschedule moves the deadline", async(function()
        do
            local t <close> = lasio.Timeout(nil)
            assert.is_nil(t:when())
            lasio.sleep(0.01)
            assert.is_false(t:expired())
        end
        local err = raises(function()
            local t <close> = lasio.Timeout(nil)
            t:reschedule(now() + 0.01)
            lasio.sleep(10)
        end)
        assert.is_true(is_timeout(err))
        do
            local t <close> = lasio.Timeout(now() + 0.005)
            t:reschedule(now() + 10)
            lasio.sleep(0.02)
            assert.is_false(t:expired())
        end
    end))

    it("refuses bad arguments", async(function()
        assert.has_error(function() lasio.Timeout("soon") end,
            "lasio.Timeout: when must be a number or nil, got string")
        assert.has_error(function() lasio.Timeout(0 / 0) end,
            "lasio.Timeout: when must not be NaN")
        assert.has_error(function() lasio.Timeout(1, function() end) end,
            "lasio.Timeout: takes one argument, the deadline (use lasio.timeout_at(when, fn) to run fn)")
        local t = lasio.Timeout(nil)
        t:__close()
        local e = raises(t.reschedule, t, 1)
        assert.truthy(tostring(e):find("timeout:reschedule: cannot reschedule", 1, true))
    end))
end)
