-- Specs for lasio.gather, lasio.wait, lasio.as_completed and lasio.shield:
-- a port of the gather, wait, as_completed and shield parts of asyncio's
-- test_tasks.py. Covers F8 and F11.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local TimeoutError = lasio.TimeoutError

local raises = helper.raises

local is_cancelled = helper.is_cancelled

local function now() return lasio.get_running_loop():time() end

-- Lets the loop run `n` turns (ready work only).
local function turns(n)
    for _ = 1, n or 3 do lasio.sleep(0) end
end

-- Cancels the tasks that are still running and waits until they finished.
local function finish(...)
    for i = 1, select("#", ...) do
        local t = select(i, ...)
        if not t:done() then t:cancel() end
    end
    for i = 1, select("#", ...) do
        local t = select(i, ...)
        pcall(t.await, t)
    end
end

-- Futures made on the running loop.
local function futures(n)
    local r = {}
    for i = 1, n do r[i] = lasio.Future() end
    return table.unpack(r, 1, n)
end

-- The "never retrieved" reports about errors containing needle.
local function never_retrieved(seen, needle)
    local n = 0
    for _, c in ipairs(seen) do
        if tostring(c.message):lower():find("never retrieved", 1, true)
            and tostring(c.exception):find(needle, 1, true) then
            n = n + 1
        end
    end
    return n
end

local function settle()
    for _ = 1, 3 do
        collectgarbage()
        collectgarbage()
        lasio.sleep(0.001)
    end
end

describe("lasio.gather", function()
    describe("results", function()
        it("varargs: the first result of each, in input order, once all are done",
            async(function()
                local a, b, c = futures(3)
                local g = lasio.spawn(lasio.gather, a, b, c)
                turns()
                b:set_result(1)
                a:set_result(2)
                turns()
                assert.is_false(g:done())
                c:set_result(3, "second value")
                local r = table.pack(g:await())
                assert.are.equal(3, r.n)
                assert.are.same({ 2, 1, 3 }, { r[1], r[2], r[3] })
            end))

        it("table form: {n=#list, ...}, with and without return_exceptions",
            async(function()
                for _, opts in ipairs({ false, { return_exceptions = false },
                    { return_exceptions = true } }) do
                    local a, b, c = futures(3)
                    local loop = lasio.get_running_loop()
                    loop:call_soon(function()
                        b:set_result(1)
                        a:set_result(2)
                    end)
                    loop:call_later(0.001, function() c:set_result(3) end)
                    local r = lasio.gather({ a, b, c }, opts or nil)
                    assert.are.same({ n = 3, 2, 1, 3 }, r)
                end
            end))

        it("nil results keep their places", async(function()
            local r = table.pack(lasio.gather(function() return nil end,
                function() return 2 end, function() end))
            assert.are.equal(3, r.n)
            assert.is_nil(r[1])
            assert.are.equal(2, r[2])
            assert.is_nil(r[3])
            local t = lasio.gather({ function() return nil end, function() return 5 end })
            assert.are.equal(2, t.n)
            assert.is_nil(t[1])
            assert.are.equal(5, t[2])
        end))

        it("a list with an n field uses it (holes allowed)", async(function()
            local f = lasio.Future()
            f:set_result("x")
            local r = lasio.gather(table.pack(f, f))
            assert.are.same({ n = 2, "x", "x" }, r)
        end))

        it("nothing to gather: no values, or {n=0}", async(function()
            assert.are.equal(0, select("#", lasio.gather()))
            assert.are.same({ n = 0 }, lasio.gather({}))
        end))

        it("functions are started as tasks on a later turn, in input order", async(function()
            local log = {}
            local function job(name)
                return function()
                    log[#log + 1] = name
                    lasio.sleep(0)
                    return name
                end
            end
            local g = lasio.spawn(lasio.gather, job("a"), job("b"), job("c"))
            assert.are.same({}, log)
            assert.are.same({ "a", "b", "c" }, { g:await() })
            assert.are.same({ "a", "b", "c" }, log)
        end))

        it("a Future given twice is one child; a function given twice runs twice",
            async(function()
                local c = lasio.spawn(function() return "abc" end)
                local d = lasio.spawn(function() return "def" end)
                assert.are.same({ "abc", "abc", "def", "abc" },
                    { lasio.gather(c, c, d, c) })
                local runs = 0
                local function job() runs = runs + 1 return runs end
                local r = { lasio.gather(job, job) }
                assert.are.equal(2, runs)
                table.sort(r)
                assert.are.same({ 1, 2 }, r)
            end))

        it("a pending Future given twice, then gathered again and by two gathers at once",
            async(function()
                -- the C side marks children to find duplicates: the marks
                -- must be gone once a gather has started
                local f = lasio.Future()
                local first = lasio.spawn(function() return lasio.gather(f, f) end)
                local second = lasio.spawn(function() return lasio.gather({ f, f }) end)
                lasio.sleep(0)
                f:set_result("x")
                assert.are.same({ "x", "x" }, { first:await() })
                assert.are.same({ n = 2, "x", "x" }, second:await())
                assert.are.same({ "x" }, { lasio.gather(f) })
                local g = lasio.Future()
                local third = lasio.spawn(function() return lasio.gather(g, f, g) end)
                lasio.sleep(0)
                g:set_result("y")
                assert.are.same({ "y", "x", "y" }, { third:await() })
            end))

        it("already finished children give their results without suspending", async(function()
            local a, b = futures(2)
            a:set_result(1)
            b:set_result(2)
            local other_ran = false
            local t = lasio.spawn(function() other_ran = true end)
            assert.are.same({ 1, 2 }, { lasio.gather(a, b) })
            assert.is_false(other_ran)
            t:await()
        end))
    end)

    describe("errors", function()
        it("the first error is raised at once; the others keep running", async(function()
            local a, b, c, d, e = futures(5)
            local err = { tag = "ZeroDivisionError" }
            local g = lasio.spawn(lasio.gather, a, b, c, d, e)
            turns()
            a:set_result(1)
            b:set_exception(err)
            assert.are.equal(err, raises(g.await, g))
            assert.is_false(c:done())
            assert.is_false(d:done())
            -- later outcomes change nothing and are not reported
            local seen = helper.capture_exceptions(function()
                c:set_result(3)
                d:cancel()
                e:set_exception("late RuntimeError")
                settle()
            end)
            assert.are.equal(0, never_retrieved(seen, "late RuntimeError"))
            assert.are.equal("late RuntimeError", e:exception())
        end))

        it("a child task ending after the gather raised: its gather callback, "
            .. "queued while nothing else holds the gather, runs safely", async(function()
            -- the gather's done callback is a C entry of the ready queue
            -- pointing at the gather and the child: both must stay alive
            -- until it ran, though the gathering task is gone
            local release = lasio.Future()
            local b = lasio.spawn(function()
                release:await()
                error("late", 0)
            end)
            local t = lasio.spawn(lasio.gather, function() error("boom", 0) end, b)
            assert.are.equal("boom", raises(t.await, t))
            -- drops the gathering task for the collection below
            t = nil -- luacheck: ignore 311
            local collected = false
            local seen = helper.capture_exceptions(function()
                release:set_result()
                -- runs after b's last step and before the gather's entry
                lasio.get_running_loop():call_soon(function()
                    collectgarbage()
                    collectgarbage()
                    collected = true
                end)
                settle()
            end)
            assert.is_true(collected)
            -- the gather's callback ran: b's error counts as retrieved
            assert.are.equal(0, never_retrieved(seen, "late"))
            assert.are.equal("late", raises(b.await, b))
        end))

        it("the first error in completion order wins, not in input order", async(function()
            local r = table.pack(pcall(lasio.gather,
                function() lasio.sleep(0.02) error("slow", 0) end,
                function() lasio.sleep(0.001) error("fast", 0) end))
            assert.is_false(r[1])
            assert.are.equal("fast", r[2])
            lasio.sleep(0.03)
        end))

        it("two failures in one turn: the first to finish is raised", async(function()
            local a, b = futures(2)
            local g = lasio.spawn(lasio.gather, a, b)
            turns()
            lasio.get_running_loop():call_soon(function()
                b:set_exception("b first")
                a:set_exception("a second")
            end)
            assert.are.equal("b first", raises(g.await, g))
            assert.are.equal("a second", a:exception())
        end))

        it("an error of a child task is raised as the very value", async(function()
            local err = setmetatable({}, { __tostring = function() return "custom" end })
            assert.are.equal(err, raises(lasio.gather, function() error(err) end))
            local e = raises(lasio.gather, function() error("positioned") end)
            assert.truthy(tostring(e):find("combinators_spec.lua:%d+: positioned"), tostring(e))
        end))

        it("a second failing child is marked retrieved (no report)", async(function()
            local a, b = futures(2)
            local function inner(f, msg)
                return function()
                    f:await()
                    error(msg, 0)
                end
            end
            local seen = helper.capture_exceptions(function()
                local outer = lasio.spawn(lasio.gather, inner(a, "first-marking"),
                    inner(b, "second-marking"))
                turns()
                a:set_result()
                turns()
                b:set_result()
                turns()
                assert.are.equal("first-marking", raises(outer.await, outer))
                settle()
            end)
            assert.are.equal(0, never_retrieved(seen, "second-marking"))
        end))

        it("return_exceptions: errors take their places; nothing is raised", async(function()
            local a, b, c, d = futures(4)
            local exc, exc2 = { "ZeroDivisionError" }, { "RuntimeError" }
            local g = lasio.spawn(lasio.gather, { a, b, c, d }, { return_exceptions = true })
            turns()
            b:set_result(1)
            c:set_exception(exc)
            a:set_result(3)
            turns()
            assert.is_false(g:done())
            d:set_exception(exc2)
            assert.are.same({ n = 4, 3, 1, exc, exc2 }, g:await())
            assert.are.equal(exc, c:exception())
        end))

        it("a cancelled child raises CancelledError, but the gathering task is not cancelled",
            async(function()
                local a, b, c, d, e = futures(5)
                local t = lasio.spawn(function()
                    local ok, err = pcall(lasio.gather, a, b, c, d, e)
                    return ok, err, lasio.current_task():cancelling()
                end)
                turns()
                a:set_result(1)
                b:cancel("child b")
                local ok, err, cancelling = t:await()
                assert.is_false(ok)
                assert.is_true(is_cancelled(err), tostring(err))
                assert.are.equal("child b", err.message)
                assert.are.equal(0, cancelling)
                assert.is_false(t:cancelled())
                c:set_result(3)
                d:cancel()
                e:set_exception("e")
                e:exception()
            end))

        it("return_exceptions: cancelled children give CancelledError objects", async(function()
            local a, b, c, d, e, f = futures(6)
            local g = lasio.spawn(lasio.gather, { a, b, c, d, e, f }, { return_exceptions = true })
            turns()
            a:set_result(1)
            local zde = { "ZeroDivisionError" }
            b:set_exception(zde)
            c:cancel("c-msg")
            turns()
            assert.is_false(g:done())
            d:set_result(3)
            e:cancel()
            local rte = { "RuntimeError" }
            f:set_exception(rte)
            local res = g:await()
            assert.is_true(is_cancelled(res[3]))
            assert.are.equal("c-msg", res[3].message)
            assert.is_true(is_cancelled(res[5]))
            res[3], res[5] = nil, nil
            assert.are.same({ n = 6, 1, zde, nil, 3, nil, rte }, res)
        end))
    end)

    -- covers F8
    describe("cancellation (F8)", function()
        it("cancelling the gathering task cancels every child", async(function()
            local proof = 0
            local waiter = lasio.Future()
            local function inner()
                waiter:await()
                proof = proof + 1
            end
            local child1, child2 = lasio.spawn(inner), lasio.spawn(inner)
            local outer = lasio.spawn(function()
                lasio.gather(child1, child2)
                proof = proof + 100
            end)
            turns()
            assert.is_true(outer:cancel())
            assert.is_true(is_cancelled(raises(outer.await, outer)))
            assert.is_true(outer:cancelled())
            assert.is_true(waiter:cancelled())
            assert.is_true(child1:cancelled())
            assert.is_true(child2:cancelled())
            turns()
            assert.are.equal(0, proof)
        end))

        it("the cancel message reaches the children and the caller", async(function()
            local seen = {}
            local function child(i)
                return function()
                    local _, e = pcall(lasio.sleep, 10)
                    seen[i] = e
                    error(e, 0)
                end
            end
            local g = lasio.spawn(lasio.gather, child(1), child(2))
            turns()
            g:cancel("stop now")
            local e = raises(g.await, g)
            assert.are.equal("stop now", e.message)
            assert.are.equal("stop now", seen[1].message)
            assert.are.equal("stop now", seen[2].message)
        end))

        it("the gather raises once a child finished cancelling; with return_exceptions, once all did",
            async(function()
                for _, rex in ipairs({ false, true }) do
                    local log = {}
                    local release = lasio.Future()
                    local function child(i, slow)
                        return function()
                            local _ <close> = helper.closer(function()
                                if slow then release:await() else lasio.sleep(0) end
                                log[#log + 1] = "child" .. i .. " cleaned up"
                            end)
                            lasio.sleep(10)
                        end
                    end
                    local g = lasio.spawn(function()
                        local _, e = pcall(lasio.gather, { child(1), child(2, true) },
                            { return_exceptions = rex })
                        log[#log + 1] = "gather raised"
                        error(e, 0)
                    end)
                    turns()
                    g:cancel()
                    if rex then
                        lasio.get_running_loop():call_later(0.005, function()
                            release:set_result()
                        end)
                        assert.is_true(is_cancelled(raises(g.await, g)))
                        assert.are.same({ "child1 cleaned up", "child2 cleaned up",
                            "gather raised" }, log)
                    else
                        -- asyncio: the first cancelled child decides
                        assert.is_true(is_cancelled(raises(g.await, g)))
                        assert.are.same({ "child1 cleaned up", "gather raised" }, log)
                        release:set_result()
                        turns()
                        assert.are.equal("child2 cleaned up", log[3])
                    end
                end
            end))

        it("return_exceptions: a cancel of the caller still raises CancelledError",
            async(function()
                -- asyncio's test_cancel_gather_2
                local qwe = lasio.spawn(function()
                    local time = 0
                    while true do
                        time = time + 0.005
                        lasio.gather({ function() lasio.sleep(0.005) end },
                            { return_exceptions = true })
                        if time > 1 then return "finished" end
                    end
                end)
                lasio.sleep(0.02)
                qwe:cancel("my message")
                local e = raises(qwe.await, qwe)
                assert.is_true(is_cancelled(e))
                assert.are.equal("my message", e.message)
            end))

        it("a child that catches the cancel and returns still makes the gather raise",
            async(function()
                local g = lasio.spawn(lasio.gather, {
                    function()
                        pcall(lasio.sleep, 10)
                        return "caught"
                    end,
                }, { return_exceptions = true })
                turns()
                g:cancel()
                assert.is_true(is_cancelled(raises(g.await, g)))
            end))

        -- covers F11
        it("a second cancel while the children finish cancelling reaches them again (F11)",
            async(function()
                local log = {}
                local release = lasio.Future()
                local child = lasio.spawn(function()
                    local _, e = pcall(lasio.sleep, 10)
                    log[#log + 1] = "first:" .. tostring(e.message)
                    local _, e2 = pcall(release.await, release)
                    log[#log + 1] = "second:" .. tostring(e2.message)
                    error(e2, 0)
                end)
                local g = lasio.spawn(lasio.gather, child)
                turns()
                g:cancel("one")
                turns()
                assert.is_false(g:done())
                g:cancel("two")
                local e = raises(g.await, g)
                assert.is_true(is_cancelled(e))
                assert.are.same({ "first:one", "second:two" }, log)
                assert.is_true(child:cancelled())
                assert.is_true(release:cancelled())
            end))

        it("a task that cancelled itself before gathering cancels the children", async(function()
            local started = false
            local g = lasio.spawn(function()
                lasio.current_task():cancel()
                return lasio.gather(function() started = true end)
            end)
            assert.is_true(is_cancelled(raises(g.await, g)))
            assert.is_true(g:cancelled())
            assert.is_false(started)
        end))

        it("a cancel after the gather finished returns false and keeps the result",
            async(function()
                local fut = lasio.Future()
                local g = lasio.spawn(lasio.gather, function() return fut:await() end)
                turns()
                fut:set_result(42)
                assert.are.equal(42, g:await())
                assert.is_false(g:cancel())
                assert.is_false(g:cancelled())
                assert.are.equal(42, g:result())
            end))

        it("a cancel once every child finished, before the gather resumed, is honoured",
            async(function()
                -- asyncio's test_cancel_gather_1 window: the children are
                -- done, the gathering task has not run yet. Its cancel()
                -- returns true, so the task ends cancelled; the children
                -- keep their results.
                local fut = lasio.Future()
                local child = lasio.spawn(function() return fut:await() end)
                local g = lasio.spawn(lasio.gather, child)
                turns()
                local cancel_result
                child:add_done_callback(function() cancel_result = g:cancel() end)
                fut:set_result(42)
                assert.is_true(is_cancelled(raises(g.await, g)))
                assert.is_true(cancel_result)
                assert.is_true(g:cancelled())
                assert.are.equal(42, child:result())
            end))

        it("a cancel between the last child's end and the gather's callback is honoured",
            async(function()
                -- the window of asyncio's test_cancel_gather_1: the cancel
                -- runs in a done callback of what the child awaited
                local fut = lasio.Future()
                local child = lasio.spawn(function() return fut:await() end)
                local g = lasio.spawn(lasio.gather, child)
                turns()
                local cancel_result
                fut:add_done_callback(function() cancel_result = g:cancel() end)
                fut:set_result(42)
                assert.is_true(is_cancelled(raises(g.await, g)))
                assert.is_true(cancel_result)
                assert.are.equal(42, child:result())
                -- the same with a failing child: the cancel, not its error
                fut = lasio.Future()
                child = lasio.spawn(function() fut:await() error("child error", 0) end)
                g = lasio.spawn(lasio.gather, child)
                turns()
                fut:add_done_callback(function() cancel_result = g:cancel() end)
                fut:set_result()
                assert.is_true(is_cancelled(raises(g.await, g)))
                assert.is_true(cancel_result)
                assert.are.equal("child error", child:exception())
            end))

        it("cancelling a child by hand does not cancel its siblings", async(function()
            local a = lasio.spawn(function() lasio.sleep(10) end)
            local b = lasio.spawn(function() lasio.sleep(0.01) return "b" end)
            local g = lasio.spawn(lasio.gather, { a, b }, { return_exceptions = true })
            turns()
            a:cancel()
            local r = g:await()
            assert.is_true(is_cancelled(r[1]))
            assert.are.equal("b", r[2])
        end))

        it("cancelling the gather cancels shields, not what they shield", async(function()
            local child1, child2 = futures(2)
            local inner1, inner2 = lasio.shield(child1), lasio.shield(child2)
            local g = lasio.spawn(lasio.gather, inner1, inner2)
            turns()
            g:cancel()
            assert.is_true(is_cancelled(raises(g.await, g)))
            assert.is_true(inner1:cancelled())
            assert.is_true(inner2:cancelled())
            assert.is_false(child1:done())
            child1:set_result(1)
            child2:set_result(2)
            turns()
        end))
    end)

    it("misuse raises at once with a clear message", async(function()
        local function msg(...) return tostring(raises(...)) end
        assert.truthy(msg(lasio.gather, function() end, 42):find(
            "lasio.gather: item 2 is not awaitable (a Future, Task or function), got number", 1, true))
        assert.truthy(msg(lasio.gather, { lasio.Future(), "x" }):find("item 2 is not awaitable", 1, true))
        -- items checked one by one after others of the same or another
        -- type: a userdata that is not a Future, a Future of another loop
        local fut, other_fut = lasio.Future(), lasio.new_event_loop():create_future()
        assert.truthy(msg(lasio.gather, { fut, lasio.Future(), io.stdout }):find(
            "item 3 is not awaitable (a Future, Task or function), got userdata", 1, true))
        assert.truthy(msg(lasio.gather, { io.stdout, fut }):find("item 1 is not awaitable", 1, true))
        assert.truthy(msg(lasio.gather, { fut, lasio.Future(), other_fut }):find(
            "item 3 belongs to another loop", 1, true))
        assert.is_false(fut:done())
        assert.truthy(msg(lasio.gather, {}, { return_exception = true }):find(
            "unknown option 'return_exception'", 1, true))
        assert.truthy(msg(lasio.gather, {}, { return_exceptions = 1 }):find(
            "return_exceptions must be a boolean", 1, true))
        assert.truthy(msg(lasio.gather, {}, "x"):find("options must be a table", 1, true))
        assert.truthy(msg(lasio.gather, {}, {}, {}):find("table form takes (list [, options])", 1, true))
        assert.truthy(msg(lasio.gather, { n = -1 }):find("list.n", 1, true))
        local other = lasio.new_event_loop()
        assert.truthy(msg(lasio.gather, other:create_future()):find("item 1 belongs to another loop", 1, true))
        other:close()
        -- nothing was started by a call that raised
        local ran = false
        assert.is_false(pcall(lasio.gather, function() ran = true end, 1))
        turns()
        assert.is_false(ran)
    end))

    it("outside a task, gather raises", async(function()
        local got
        lasio.get_running_loop():call_soon(function()
            got = table.pack(pcall(lasio.gather, function() end))
        end)
        lasio.sleep(0.001)
        assert.is_false(got[1])
        assert.truthy(tostring(got[2]):find("lasio.gather: not inside a task", 1, true))
    end))

    it("where a task cannot suspend, gather raises and stops the tasks it started",
        async(function()
            local ran = false
            local e
            table.sort({ 1, 2 }, function(x, y)
                if not e then
                    e = select(2, pcall(lasio.gather, function() ran = true end))
                end
                return x < y
            end)
            assert.truthy(tostring(e):find("cannot await here", 1, true), tostring(e))
            turns()
            assert.is_false(ran)
        end))
end)

describe("lasio.wait", function()
    it("ALL_COMPLETED: every awaitable done, in input order", async(function()
        local a = lasio.spawn(lasio.sleep, 0.01)
        local b = lasio.spawn(lasio.sleep, 0.015)
        local done, pending = lasio.wait({ b, a })
        assert.are.same({ b, a }, done)
        assert.are.same({}, pending)
        -- again: nothing to wait for
        local t0 = now()
        done, pending = lasio.wait({ b, a })
        assert.are.same({ b, a }, done)
        assert.are.same({}, pending)
        assert.is_true(now() - t0 < helper.t(0.5))
    end))

    it("a Future given twice is listed once", async(function()
        local c = lasio.spawn(function() return "test" end)
        local d = lasio.spawn(function() return "spam" end)
        local done, pending = lasio.wait({ c, c, d })
        assert.are.same({ c, d }, done)
        assert.are.same({}, pending)
    end))

    it("FIRST_COMPLETED returns when one is done", async(function()
        local a = lasio.spawn(lasio.sleep, 10)
        local b = lasio.spawn(lasio.sleep, 0.01)
        local done, pending = lasio.wait({ b, a }, { return_when = "FIRST_COMPLETED" })
        assert.are.same({ b }, done)
        assert.are.same({ a }, pending)
        assert.is_false(a:done())
        finish(a)
    end))

    it("FIRST_COMPLETED lists every awaitable done when it resumes", async(function()
        -- a's completion wakes the wait; b finishes before the wait runs
        local a = lasio.spawn(function() lasio.sleep(0) end)
        local b = lasio.spawn(function() lasio.sleep(0) lasio.sleep(0) end)
        local done, pending = lasio.wait({ b, a }, { return_when = lasio.FIRST_COMPLETED })
        assert.are.same({ b, a }, done)
        assert.are.same({}, pending)
        assert.is_nil(a:result())
        assert.is_nil(b:result())
    end))

    it("FIRST_EXCEPTION with an error already there", async(function()
        local a = lasio.spawn(lasio.sleep, 10)
        local b = lasio.spawn(function() error("err", 0) end)
        local t0 = now()
        local done, pending = lasio.wait({ b, a }, { return_when = "FIRST_EXCEPTION" })
        assert.are.same({ b }, done)
        assert.are.same({ a }, pending)
        assert.is_true(now() - t0 < helper.t(0.5))
        assert.are.equal("err", b:exception())
        finish(a)
    end))

    it("FIRST_EXCEPTION with an error while waiting", async(function()
        local a = lasio.spawn(lasio.sleep, 10)
        local b = lasio.spawn(function() lasio.sleep(0.01) error("err", 0) end)
        local done, pending = lasio.wait({ b, a }, { return_when = "FIRST_EXCEPTION" })
        assert.are.same({ b }, done)
        assert.are.same({ a }, pending)
        assert.are.equal("err", b:exception())
        finish(a)
    end))

    it("FIRST_EXCEPTION waits for all when none fails; a cancelled one is no error",
        async(function()
            local a = lasio.spawn(lasio.sleep, 0.01)
            local b = lasio.spawn(lasio.sleep, 10)
            b:cancel()
            local done, pending = lasio.wait({ a, b }, { return_when = "FIRST_EXCEPTION" })
            assert.are.same({ a, b }, done)
            assert.are.same({}, pending)
        end))

    it("FIRST_EXCEPTION: successes do not end the wait", async(function()
        local a = lasio.spawn(lasio.sleep, 0.001)
        local c = lasio.spawn(lasio.sleep, 0.02)
        local done, pending = lasio.wait({ a, c }, { return_when = "FIRST_EXCEPTION" })
        assert.are.same({ a, c }, done)
        assert.are.same({}, pending)
    end))

    it("ALL_COMPLETED with an error: all done, nothing raised", async(function()
        local a = lasio.spawn(lasio.sleep, 0.01)
        local b = lasio.spawn(function() lasio.sleep(0.015) error("really", 0) end)
        local done, pending = lasio.wait({ b, a })
        assert.are.equal(2, #done)
        assert.are.equal(0, #pending)
        assert.are.equal("really", b:exception())
        assert.is_nil(a:exception())
    end))

    it("a timeout returns what is done; nothing is cancelled or raised", async(function()
        local a = lasio.spawn(lasio.sleep, 0.01)
        local b = lasio.spawn(lasio.sleep, 0.3)
        local t0 = now()
        local done, pending = lasio.wait({ b, a }, { timeout = 0.1 })
        assert.are.same({ a }, done)
        assert.are.same({ b }, pending)
        assert.is_false(b:cancelled())
        assert.is_true(now() - t0 >= 0.1 - 0.005)
        assert.is_true(now() - t0 < helper.t(0.3))
        finish(b)
    end))

    it("timeout 0 returns without waiting for anything pending", async(function()
        local f = lasio.Future()
        local done, pending = lasio.wait({ f }, { timeout = 0 })
        assert.are.same({}, done)
        assert.are.same({ f }, pending)
        assert.is_false(f:done())
    end))

    it("functions are started as tasks and returned", async(function()
        local done, pending = lasio.wait({ function() return 7 end })
        assert.are.equal(1, #done)
        assert.are.equal(0, #pending)
        assert.are.equal(7, done[1]:result())
    end))

    it("cancelling the waiting task leaves the awaitables running", async(function()
        local proof = 0
        local waiter = lasio.Future()
        local inner = lasio.spawn(function()
            waiter:await()
            proof = proof + 1
        end)
        local outer = lasio.spawn(function()
            lasio.wait({ inner })
            proof = proof + 100
        end)
        turns()
        outer:cancel()
        assert.is_true(is_cancelled(raises(outer.await, outer)))
        waiter:set_result()
        inner:await()
        assert.are.equal(1, proof)
    end))

    it("misuse raises at once with a clear message", async(function()
        local function msg(...) return tostring(raises(...)) end
        local f = lasio.Future()
        assert.truthy(msg(lasio.wait, {}):find("lasio.wait: the list of awaitables is empty", 1, true))
        assert.truthy(msg(lasio.wait, f):find("expected a list of awaitables, got a single lasio.Future", 1, true))
        assert.truthy(msg(lasio.wait, { f }, { return_when = -1 }):find("return_when must be", 1, true))
        assert.truthy(msg(lasio.wait, { f }, { return_when = "first_completed" }):find("return_when must be", 1, true))
        assert.truthy(msg(lasio.wait, { f }, { timeout = "1" }):find(
            "timeout must be a number or nil, got string", 1, true))
        assert.truthy(msg(lasio.wait, { f }, { timeout = 0 / 0 }):find("NaN", 1, true))
        assert.truthy(msg(lasio.wait, { f, true }):find("item 2 is not awaitable", 1, true))
        assert.truthy(msg(lasio.wait, { f }, { timeot = 1 }):find("unknown option 'timeot'", 1, true))
    end))
end)

describe("lasio.as_completed", function()
    it("yields the futures in the order they finish", async(function()
        local function sleeper(dt, x)
            return function() lasio.sleep(dt) return x end
        end
        local values = {}
        for f in lasio.as_completed({ sleeper(0.02, "b"), sleeper(0.1, "c"), sleeper(0.01, "a") }) do
            values[#values + 1] = f:result()
        end
        assert.are.same({ "a", "b", "c" }, values)
    end))

    it("yields the given futures themselves; their errors stay in them", async(function()
        local a = lasio.Future()
        local b = lasio.Future()
        local loop = lasio.get_running_loop()
        loop:call_soon(function() b:set_exception("b-err") end)
        loop:call_later(0.005, function() a:set_result("a") end)
        local got = {}
        for f in lasio.as_completed({ a, b }) do got[#got + 1] = f end
        assert.are.same({ b, a }, got)
        assert.are.equal("b-err", b:exception())
    end))

    it("a timeout raises TimeoutError from the iterator after what was done", async(function()
        local a = lasio.spawn(lasio.sleep, 0.01, "a")
        local b = lasio.spawn(lasio.sleep, 0.5, "b")
        local values = {}
        local t0 = now()
        local ok, e = pcall(function()
            for f in lasio.as_completed({ a, b }, { timeout = 0.1 }) do
                values[#values + 1] = f:result()
            end
        end)
        assert.is_false(ok)
        assert.is_true(TimeoutError:is(e), tostring(e))
        assert.are.same({ "a" }, values)
        assert.is_true(now() - t0 < helper.t(0.4))
        assert.is_false(b:done())
        finish(b)
    end))

    it("everything done in time: a slow consumer gets no TimeoutError", async(function()
        local got = {}
        for f in lasio.as_completed({ function() lasio.sleep(0.001) return "a" end,
            function() lasio.sleep(0.002) return "b" end }, { timeout = 0.05 }) do
            got[#got + 1] = f:result()
            lasio.sleep(0.1) -- past the deadline
        end
        assert.are.same({ "a", "b" }, got)
    end))

    it("a Future given twice is yielded once", async(function()
        local c = lasio.spawn(function() return "ham" end)
        local result = {}
        for f in lasio.as_completed({ c, c, function() return "spam" end }) do
            result[#result + 1] = f:result()
        end
        table.sort(result)
        assert.are.same({ "ham", "spam" }, result)
    end))

    it("an empty list yields nothing", async(function()
        for _ in lasio.as_completed({}) do error("yielded") end
    end))

    it("cancelling the iterating task raises CancelledError and leaves the futures",
        async(function()
            local f = lasio.Future()
            local t = lasio.spawn(function()
                for _ in lasio.as_completed({ f }) do end
            end)
            turns()
            t:cancel()
            assert.is_true(is_cancelled(raises(t.await, t)))
            assert.is_false(f:done())
        end))

    it("misuse raises at once", async(function()
        local f = lasio.Future()
        assert.truthy(tostring(raises(lasio.as_completed, f)):find("expected a list of awaitables", 1, true))
        assert.truthy(tostring(raises(lasio.as_completed, { 1 })):find("item 1 is not awaitable", 1, true))
        assert.truthy(tostring(raises(lasio.as_completed, { f }, { timeout = {} })):find(
            "timeout must be a number or nil", 1, true))
    end))
end)

describe("lasio.shield", function()
    it("passes the result through", async(function()
        local inner = lasio.Future()
        local outer = lasio.shield(inner)
        inner:set_result(42, nil, "x")
        assert.are.same({ 42, nil, "x" }, { outer:await() })
        assert.are.equal(3, select("#", outer:await()))
    end))

    it("passes the error through", async(function()
        local inner = lasio.Future()
        local outer = lasio.shield(inner)
        turns()
        local exc = { "RuntimeError" }
        inner:set_exception(exc)
        turns()
        assert.are.equal(exc, outer:exception())
    end))

    it("a cancelled inner cancels the outer", async(function()
        local inner = lasio.Future()
        local outer = lasio.shield(inner)
        turns()
        inner:cancel()
        turns()
        assert.is_true(outer:cancelled())
    end))

    -- covers F8
    it("cancelling the outer leaves the inner running (F8)", async(function()
        local inner = lasio.Future()
        local outer = lasio.shield(inner)
        turns()
        outer:cancel()
        turns()
        assert.is_true(outer:cancelled())
        assert.is_false(inner:done())
        inner:set_result(1)
        turns()
    end))

    it("the outer cancelled in the turn the inner completes: no error anywhere",
        async(function()
            local inner = lasio.Future()
            local outer = lasio.shield(inner)
            turns()
            local seen = helper.capture_exceptions(function()
                lasio.get_running_loop():call_soon(function()
                    inner:set_result("v")
                    outer:cancel()
                end)
                turns()
            end)
            assert.are.equal(0, #seen, seen[1] and tostring(seen[1].exception))
            assert.is_true(outer:cancelled())
            assert.are.equal("v", inner:result())
        end))

    it("a done awaitable is returned as is", async(function()
        local fut = lasio.Future()
        fut:set_result(42)
        assert.are.equal(fut, lasio.shield(fut))
        assert.are.equal(42, lasio.shield(fut):await())
    end))

    -- covers F8
    it("a task awaiting a shield is cancelled; the shielded work completes (F8)",
        async(function()
            local proof = 0
            local waiter = lasio.Future()
            local function inner()
                waiter:await()
                proof = proof + 1
            end
            local f = lasio.spawn(function()
                lasio.shield(inner):await()
                proof = proof + 100
            end)
            turns()
            f:cancel()
            assert.is_true(is_cancelled(raises(f.await, f)))
            waiter:set_result()
            turns()
            assert.are.equal(1, proof)
        end))

    it("shielding a gather keeps the gather going", async(function()
        local child1, child2 = futures(2)
        local parent = lasio.spawn(lasio.gather, child1, child2)
        local outer = lasio.shield(parent)
        turns()
        outer:cancel()
        turns()
        assert.is_true(outer:cancelled())
        child1:set_result(1)
        child2:set_result(2)
        assert.are.same({ 1, 2 }, { parent:await() })
    end))

    it("misuse raises at once", async(function()
        assert.truthy(tostring(raises(lasio.shield, 42)):find(
            "lasio.shield: expected an awaitable", 1, true))
        assert.truthy(tostring(raises(lasio.shield, nil)):find("got nil", 1, true))
    end))
end)
