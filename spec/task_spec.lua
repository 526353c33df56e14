-- Specs for lasio.Task (docs/API.md, Module functions and Task): spawning,
-- results and
-- errors, names, stacks, current_task/all_tasks, and cancellation.
-- Covers F3, F4, F5, F6, F7, F11.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local raises = helper.raises

describe("Task", function()
    describe("spawn", function()
        it("returns a pending Task that starts on a later loop turn",
            async(function()
                local ran = false
                local t = lasio.spawn(function() ran = true end)
                assert.truthy(tostring(t):find("^lasio%.Task<"), tostring(t))
                assert.is_false(ran)
                assert.is_false(t:done())
                lasio.sleep(0)
                assert.is_true(ran)
                assert.is_true(t:done())
            end))

        it("passes arguments, nils included, and returns all results",
            async(function()
                local t = lasio.spawn(function(...)
                    return select("#", ...), ...
                end, 1, nil, 3, nil)
                local r = table.pack(t:await())
                assert.are.equal(5, r.n)
                assert.are.equal(4, r[1])
                assert.are.equal(1, r[2])
                assert.is_nil(r[3])
                assert.are.equal(3, r[4])
                local r2 = table.pack(t:result())
                assert.are.equal(5, r2.n)
            end))

        it("create_task is an alias of spawn", async(function()
            local ran = false
            local t = lasio.create_task(function(x) ran = true return x * 2 end, 21)
            assert.is_false(ran)
            assert.are.equal(42, lasio.await(t))
        end))

        it("loop:create_task runs a task on that loop", async(function()
            local loop = lasio.get_running_loop()
            local t = loop:create_task(function(a, b) return a + b end, 2, 3)
            assert.are.equal(loop, t:get_loop())
            assert.are.equal(5, t:await())
        end))

        it("lasio.await(fn) starts fn as a task and returns its results",
            async(function()
                local outer = lasio.current_task()
                local inner
                local r = table.pack(lasio.await(function()
                    inner = lasio.current_task()
                    lasio.sleep(0)
                    return "x", nil
                end))
                assert.are.equal(2, r.n)
                assert.are.equal("x", r[1])
                assert.is_not_nil(inner)
                assert.are_not.equal(outer, inner)
            end))

        it("a task's error is raised by await, result and exception",
            async(function()
                local err = { tag = "task-error" }
                local t = lasio.spawn(function() error(err) end)
                assert.are.equal(err, raises(t.await, t))
                assert.are.equal(err, raises(t.result, t))
                assert.are.equal(err, t:exception())
                assert.is_false(t:cancelled())
            end))

        it("a string error keeps its position information", async(function()
            local t = lasio.spawn(function() error("positioned") end)
            local e = raises(lasio.await, t)
            assert.truthy(tostring(e):find("task_spec.lua:%d+: positioned"), tostring(e))
        end))

        it("tasks run concurrently", async(function()
            local log = {}
            local a = lasio.spawn(function()
                for i = 1, 3 do log[#log + 1] = "a" .. i; lasio.sleep(0) end
            end)
            local b = lasio.spawn(function()
                for i = 1, 3 do log[#log + 1] = "b" .. i; lasio.sleep(0) end
            end)
            a:await()
            b:await()
            assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
        end))

        it("set_result and set_exception are not allowed on tasks", async(function()
            local t = lasio.spawn(function() lasio.sleep(0) end)
            assert.is_false(pcall(t.set_result, t, 1))
            assert.is_false(pcall(t.set_exception, t, "x"))
            t:await()
            assert.is_false(pcall(t.set_result, t, 1))
        end))

        it("spawn rejects a non-callable", async(function()
            assert.is_false(pcall(lasio.spawn, 42))
        end))
    end)

    describe("misuse", function()
        it("a task awaiting itself raises at once", async(function()
            local t = lasio.spawn(function()
                local me = lasio.current_task()
                return pcall(me.await, me)
            end)
            local guard = lasio.spawn(function() lasio.sleep(5) t:cancel() end)
            local ok, e = t:await()
            guard:cancel()
            assert.is_false(ok)
            assert.are.equal("string", type(tostring(e)))
        end))

        it("awaiting a future of another loop raises at once", async(function()
            local other = lasio.new_event_loop()
            local f = other:create_future()
            local t = lasio.spawn(function() return pcall(f.await, f) end)
            local guard = lasio.spawn(function() lasio.sleep(5) t:cancel() end)
            local ok = t:await()
            guard:cancel()
            other:close()
            assert.is_false(ok)
        end))

        it("done callbacks of a task get the task", async(function()
            local got
            local t = lasio.spawn(function() return "v" end)
            t:add_done_callback(function(x) got = x end)
            t:await()
            lasio.sleep(0)
            assert.are.equal(t, got)
        end))
    end)

    -- A thousand values through every path that moves arguments or results
    -- between stacks (a missing lua_checkstack corrupts the heap), each in a
    -- child process so a crash is reported as a failure of its own.
    describe("1000 arguments and results", function()
        local SCRIPT = [[
local lasio = require "lasio"
local which = arg[1]
local t = {}
for i = 1, 1000 do t[i] = i end
local function count(...) return select("#", ...) end
local r
if which == "run" then
    r = count(lasio.run(function(...) return ... end, table.unpack(t)))
else
    lasio.run(function()
        local loop = lasio.get_running_loop()
        if which == "spawn" then
            r = count(lasio.spawn(function(...) return ... end, table.unpack(t)):await())
        elseif which == "create_task" then
            r = count(loop:create_task(function(...) return ... end, table.unpack(t)):await())
        elseif which == "results" then
            r = count(lasio.spawn(function() lasio.sleep(0) return table.unpack(t) end):await())
        elseif which == "await_fn" then
            r = count(lasio.await(function() return table.unpack(t) end))
        elseif which == "nested_run" then
            r = count(lasio.run(function(...) lasio.sleep(0) return ... end, table.unpack(t)))
        elseif which == "run_until_complete" then
            r = count(loop:run_until_complete(function() lasio.sleep(0) return table.unpack(t) end))
        elseif which == "future" then
            local f = lasio.Future()
            loop:call_soon(function() f:set_result(table.unpack(t)) end)
            r = count(f:await()) + count(f:result()) - 1000
        elseif which == "sleep" then
            r = count(lasio.sleep(0.001, table.unpack(t)))
        elseif which == "call_soon" then
            loop:call_soon(function(...) r = count(...) end, table.unpack(t))
            lasio.sleep(0.001)
        elseif which == "call_later" then
            loop:call_later(0, function(...) r = count(...) end, table.unpack(t))
            lasio.sleep(0.01)
        elseif which == "wrap" then
            local g = coroutine.wrap(function(...) lasio.sleep(0) coroutine.yield(...) end)
            r = count(g(table.unpack(t)))
        elseif which == "resume" then
            local co = coroutine.create(function(...)
                lasio.sleep(0)
                local x = table.pack(coroutine.yield(...))
                return table.unpack(x, 1, x.n)
            end)
            r = count(select(2, coroutine.resume(co, table.unpack(t))))
                + count(select(2, coroutine.resume(co, table.unpack(t)))) - 1000
        end
    end)
end
print("count", r)
]]
        for _, which in ipairs({ "spawn", "create_task", "run", "nested_run", "results",
            "await_fn", "run_until_complete", "future", "sleep", "call_soon",
            "call_later", "wrap", "resume" }) do
            for _, interp in ipairs(helper.interps) do
                it(which .. " (" .. interp .. ")", function()
                    local out, err, status = helper.run_child(SCRIPT,
                        { interp = interp, args = which })
                    assert.are.equal(0, status, err)
                    assert.are.equal("count\t1000\n", out)
                end)
            end
        end
    end)

    describe("names, coroutine and stack", function()
        it("default names are Task-<n>, increasing", async(function()
            local a = lasio.spawn(function() end)
            local b = lasio.spawn(function() end)
            local na = a:get_name():match("^Task%-(%d+)$")
            local nb = b:get_name():match("^Task%-(%d+)$")
            assert.is_not_nil(na, a:get_name())
            assert.is_not_nil(nb, b:get_name())
            assert.is_true(tonumber(nb) > tonumber(na))
            a:await()
            b:await()
        end))

        it("set_name changes the name", async(function()
            local t = lasio.spawn(function() end)
            t:set_name("worker-7")
            assert.are.equal("worker-7", t:get_name())
            t:await()
        end))

        it("get_coro is the coroutine the body runs in", async(function()
            local co
            local t = lasio.spawn(function() co = coroutine.running() end)
            assert.are.equal("thread", type(t:get_coro()))
            t:await()
            assert.are.equal(t:get_coro(), co)
        end))

        -- A finished task's coroutine runs later tasks unless user code
        -- saw it (coroutine.running at task level, get_coro).
        local function coroutine_of(t) -- through the debug library, which
            -- does not count as seeing it
            for i = 1, 16 do
                local v = debug.getuservalue(t, i)
                if type(v) == "thread" then return v end
            end
        end

        it("a finished task's coroutine that nobody saw runs the next task",
            async(function()
                local a = lasio.spawn(function() return 1 end)
                local co = coroutine_of(a)
                assert.are.equal(1, a:await())
                assert.is_nil(a:get_coro()) -- given away
                local b = lasio.spawn(function() return coroutine.running() end)
                assert.are.equal(co, b:await())
            end))

        -- a (done) saw its coroutine `seen`: later tasks run elsewhere
        local function assert_kept(a, seen)
            for _ = 1, 10 do
                local t = lasio.spawn(function() return coroutine.running() end)
                assert.are_not.equal(seen, t:await())
            end
            assert.are.equal("dead", coroutine.status(seen))
            assert.are.equal(seen, a:get_coro())
        end

        it("never reuses a coroutine seen through coroutine.running",
            async(function()
                local seen
                local a = lasio.spawn(function() seen = coroutine.running() end)
                a:await()
                assert_kept(a, seen)
            end))

        it("never reuses a coroutine seen through get_coro", async(function()
            local a = lasio.spawn(function() lasio.sleep(0) end)
            local seen = a:get_coro()
            a:await()
            assert_kept(a, seen)
        end))

        it("a reused coroutine does not keep the hook of its last task",
            async(function()
                local hits = 0
                local a = lasio.spawn(function()
                    debug.sethook(function() hits = hits + 1 end, "", 1)
                    local x = 0
                    for i = 1, 10 do x = x + i end
                    debug.sethook()
                    debug.sethook(function() hits = hits + 1 end, "", 1)
                    return x
                end)
                local co = coroutine_of(a)
                a:await()
                local before = hits
                assert.is_true(before > 0)
                local b = lasio.spawn(function()
                    local x = 0
                    for i = 1, 1000 do x = x + i end
                    return coroutine.running()
                end)
                assert.are.equal(co, b:await()) -- the same coroutine
                assert.are.equal(before, hits) -- without a's hook
            end))

        it("get_stack shows where a suspended task waits", async(function()
            local fut = lasio.Future()
            local function deep_wait_here()
                local v = fut:await()
                return v
            end
            local t = lasio.spawn(function()
                local v = deep_wait_here()
                return v
            end)
            lasio.sleep(0)
            local stack = t:get_stack()
            assert.are.equal("string", type(stack))
            assert.truthy(stack:find("deep_wait_here", 1, true), stack)
            fut:set_result(1)
            assert.are.equal(1, t:await())
        end))
    end)

    describe("current_task and all_tasks", function()
        it("current_task is the running task", async(function()
            local seen
            local t = lasio.spawn(function() seen = lasio.current_task() end)
            t:await()
            assert.are.equal(t, seen)
        end))

        it("current_task is nil in a plain callback", async(function()
            local loop = lasio.get_running_loop()
            local got, called = "unset", false
            loop:call_soon(function()
                got = lasio.current_task()
                called = true
            end)
            lasio.sleep(0)
            assert.is_true(called)
            assert.is_nil(got)
        end))

        it("all_tasks lists the tasks that are not done", async(function()
            local fut = lasio.Future()
            local t = lasio.spawn(function() fut:await() end)
            local finished = lasio.spawn(function() end)
            lasio.sleep(0)
            local function has(list, x)
                for _, v in ipairs(list) do if v == x then return true end end
                return false
            end
            local all = lasio.all_tasks()
            assert.is_true(has(all, t))
            assert.is_true(has(all, lasio.current_task()))
            assert.is_false(has(all, finished))
            fut:set_result()
            t:await()
            assert.is_false(has(lasio.all_tasks(), t))
        end))

        it("all_tasks leaves out a done task whose gather callback is still queued", async(function()
            local function has(list, x)
                for _, v in ipairs(list) do if v == x then return true end end
                return false
            end
            local child = lasio.spawn(function() lasio.sleep(0) return 1 end)
            local gathering = lasio.spawn(lasio.gather, child)
            local seen
            local observer = lasio.spawn(function()
                lasio.sleep(0)
                -- child ended one step ago; the gather has not heard yet
                seen = { child_done = child:done(), gathered = gathering:done(),
                         all = lasio.all_tasks() }
            end)
            observer:await()
            assert.is_true(seen.child_done)
            assert.is_false(seen.gathered)
            assert.is_false(has(seen.all, child))
            assert.is_true(has(seen.all, gathering))
            assert.is_true(has(seen.all, observer))
            assert.are.equal(1, gathering:await())
            assert.is_false(has(lasio.all_tasks(), gathering))
        end))
    end)

    describe("cancellation", function()
        it("cancelling a task of an await cycle ends the cycle, not the process",
            async(function()
                -- a awaits b, b awaits a: the request goes a -> b, finds a
                -- being cancelled, and wakes b with it; b's end wakes a
                local a, b, seen
                a = lasio.spawn(function() lasio.sleep(0); b:await() end)
                b = lasio.spawn(function()
                    lasio.sleep(0)
                    local ok, e = pcall(a.await, a)
                    seen = e
                    assert(not ok)
                    error(e, 0)
                end)
                lasio.sleep(0)
                lasio.sleep(0)
                assert.is_true(a:cancel("stop"))
                lasio.wait({ a, b })
                assert.is_true(lasio.CancelledError:is(seen), tostring(seen))
                assert.are.equal("stop", seen.message)
                assert.is_true(b:cancelled())
                assert.is_true(a:cancelled())
            end))

        -- covers F3
        it("cancel before the first step: body never runs (F3)", async(function()
            local ran = false
            local t = lasio.spawn(function() ran = true end)
            assert.is_true(t:cancel("m"))
            local e = raises(t.await, t)
            assert.is_true(lasio.CancelledError:is(e), tostring(e))
            assert.are.equal("m", e.message)
            assert.is_false(ran)
            assert.is_true(t:cancelled())
            assert.is_true(t:done())
            assert.is_false(t:cancel())
            e = raises(t.result, t)
            assert.is_true(lasio.CancelledError:is(e))
            assert.are.equal("m", e.message)
        end))

        -- covers F4
        it("cancelling a task waiting on a future cancels the future (F4)",
            async(function()
                local fut = lasio.Future()
                local seen
                local t = lasio.spawn(function()
                    local _, e = pcall(fut.await, fut)
                    seen = e
                    error(e, 0)
                end)
                lasio.sleep(0)
                assert.is_false(fut:done())
                assert.is_true(t:cancel())
                assert.is_true(t:cancel(), "cancel of a pending task is true again")
                local e = raises(t.await, t)
                assert.is_true(lasio.CancelledError:is(e))
                assert.is_true(lasio.CancelledError:is(seen), tostring(seen))
                assert.is_true(fut:cancelled())
                assert.is_true(t:cancelled())
                assert.is_false(t:cancel())
            end))

        it("the cancel message reaches the await point", async(function()
            local got
            local t = lasio.spawn(function()
                local _, e = pcall(lasio.sleep, 10)
                got = e
            end)
            lasio.sleep(0)
            t:cancel("reason-x")
            t:await()
            assert.is_true(lasio.CancelledError:is(got), tostring(got))
            assert.are.equal("reason-x", got.message)
            assert.are.equal("string", type(got.traceback))
        end))

        it("cancelling a task that waits in sleep wakes it at once", async(function()
            local loop = lasio.get_running_loop()
            local t = lasio.spawn(function() lasio.sleep(100) end)
            lasio.sleep(0)
            local t0 = loop:time()
            t:cancel()
            assert.is_false(pcall(t.await, t))
            assert.is_true(loop:time() - t0 < helper.t(1))
            assert.is_true(t:cancelled())
        end))

        -- covers F5
        it("a task that catches CancelledError and returns 42 is not cancelled (F5)",
            async(function()
                local t = lasio.spawn(function()
                    local ok, e = pcall(lasio.sleep, 10)
                    assert(not ok and lasio.CancelledError:is(e))
                    return 42
                end)
                lasio.sleep(0)
                t:cancel()
                assert.are.equal(42, t:await())
                assert.is_false(t:cancelled())
                assert.is_true(t:done())
            end))

        it("after catching CancelledError a second await is not cancelled (F5)",
            async(function()
                local fut = lasio.Future()
                local t = lasio.spawn(function()
                    local ok = pcall(lasio.sleep, 10)
                    assert(not ok)
                    return "second:" .. fut:await()
                end)
                lasio.sleep(0)
                t:cancel()
                lasio.sleep(0.01)
                assert.is_false(t:done())
                fut:set_result("ok")
                assert.are.equal("second:ok", t:await())
                assert.is_false(t:cancelled())
            end))

        -- covers F6
        it("a task that cancels itself raises at its next await (F6)",
            async(function()
                local loop = lasio.get_running_loop()
                local elapsed, err
                local t = lasio.spawn(function()
                    lasio.current_task():cancel("self")
                    local t0 = loop:time()
                    local _, e = pcall(lasio.sleep, 10)
                    elapsed, err = loop:time() - t0, e
                    return "caught"
                end)
                assert.are.equal("caught", t:await())
                assert.is_true(lasio.CancelledError:is(err), tostring(err))
                assert.are.equal("self", err.message)
                assert.is_true(elapsed < helper.t(1))
            end))

        it("a task that cancels itself and returns ends cancelled (F6)",
            async(function()
                local t = lasio.spawn(function()
                    lasio.current_task():cancel()
                    return 1
                end)
                local e = raises(t.await, t)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(t:cancelled())
            end))

        -- covers F7
        it("outer awaiting inner: inner's cleanup runs before outer sees Cancelled (F7)",
            async(function()
                local log = {}
                local inner_task
                local inner_done_when_outer_saw
                local outer = lasio.spawn(function()
                    inner_task = lasio.spawn(function()
                        local _ <close> = helper.closer(function()
                            log[#log + 1] = "inner-close"
                        end)
                        lasio.sleep(10)
                    end)
                    local _, e = pcall(inner_task.await, inner_task)
                    log[#log + 1] = "outer-cancelled"
                    inner_done_when_outer_saw = inner_task:done()
                    assert(lasio.CancelledError:is(e))
                    error(e, 0)
                end)
                lasio.sleep(0.01)
                outer:cancel()
                assert.is_false(pcall(outer.await, outer))
                assert.are.same({ "inner-close", "outer-cancelled" }, log)
                assert.is_true(inner_task:cancelled())
                assert.is_true(inner_done_when_outer_saw)
                assert.is_true(outer:cancelled())
            end))

        it("outer waits until inner finished an awaiting cleanup (F7)",
            async(function()
                local log = {}
                local inner
                local outer = lasio.spawn(function()
                    inner = lasio.spawn(function()
                        local _ <close> = helper.closer(function()
                            lasio.sleep(0.02)
                            log[#log + 1] = "inner-cleanup-finished"
                        end)
                        lasio.sleep(10)
                    end)
                    pcall(inner.await, inner)
                    log[#log + 1] = "outer-saw"
                end)
                lasio.sleep(0.01)
                outer:cancel()
                pcall(outer.await, outer)
                assert.are.same({ "inner-cleanup-finished", "outer-saw" }, log)
            end))

        -- covers F11
        it("a second cancel is delivered at an await inside cleanup (F11)",
            async(function()
                local loop = lasio.get_running_loop()
                local cleanup = {}
                local t = lasio.spawn(function()
                    local _ <close> = helper.closer(function()
                        cleanup[#cleanup + 1] = "start"
                        local ok, e = pcall(lasio.sleep, 10)
                        cleanup[#cleanup + 1] = ok and "slept" or
                            (lasio.CancelledError:is(e) and "cancelled-again" or tostring(e))
                    end)
                    lasio.sleep(10)
                end)
                lasio.sleep(0.005)
                local t0 = loop:time()
                t:cancel("first")
                assert.is_true(helper.wait_until(function() return #cleanup >= 1 end, 2))
                assert.is_false(t:done())
                t:cancel("second")
                local e = raises(t.await, t)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.are.same({ "start", "cancelled-again" }, cleanup)
                assert.is_true(t:cancelled())
                assert.is_true(loop:time() - t0 < helper.t(2))
            end))

        it("cancelling a task suspended inside a nested user coroutine (F11)",
            async(function()
                local closed = false
                local after = false
                local t = lasio.spawn(function()
                    local gen = coroutine.wrap(function()
                        local _ <close> = helper.closer(function() closed = true end)
                        lasio.sleep(10)
                        coroutine.yield("never")
                    end)
                    gen()
                    after = true
                end)
                lasio.sleep(0.005)
                t:cancel()
                local e = raises(t.await, t)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(t:cancelled())
                assert.is_true(closed)
                assert.is_false(after)
                lasio.sleep(0.01)
            end))

        it("cancelling a task suspended in a coroutine.resume'd coroutine: resume re-raises (F11)",
            async(function()
                local after_resume = false
                local t = lasio.spawn(function()
                    local co = coroutine.create(function()
                        lasio.sleep(10)
                        return "done"
                    end)
                    local ok, e = coroutine.resume(co)
                    after_resume = true
                    return ok, e
                end)
                lasio.sleep(0.005)
                t:cancel()
                local e = raises(t.await, t)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_false(after_resume)
                assert.is_true(t:cancelled())
            end))

        -- covers F4
        it("after a caught cancel, a new cancel goes to the new waiter (F4)",
            async(function()
                local f1, f2 = lasio.Future(), lasio.Future()
                local t = lasio.spawn(function()
                    assert(not pcall(f1.await, f1))
                    return f2:await()
                end)
                lasio.sleep(0)
                t:cancel()
                lasio.sleep(0)
                lasio.sleep(0)
                assert.is_true(f1:cancelled())
                assert.is_false(f2:done())
                assert.is_false(t:done())
                assert.is_true(t:cancel())
                local ok, e = pcall(t.await, t)
                assert.is_false(ok)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(f2:cancelled())
                assert.is_true(t:cancelled())
            end))

        it("cancel after the awaited future finished, before the task resumed: Cancelled at that await",
            async(function()
                -- asyncio: the wake-up is scheduled but the task has not run;
                -- cancel() is still true and the await raises CancelledError.
                local f = lasio.Future()
                local t = lasio.spawn(function() return f:await() end)
                lasio.sleep(0)
                f:set_result(1)
                assert.is_true(t:cancel())
                local ok, e = pcall(t.await, t)
                assert.is_false(ok)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(t:cancelled())
            end))

        it("a close handler that raises during cancellation replaces the CancelledError",
            async(function()
                local t = lasio.spawn(function()
                    local _ <close> = helper.closer(function() error("close-failed") end)
                    lasio.sleep(10)
                end)
                lasio.sleep(0)
                t:cancel()
                local ok, e = pcall(t.await, t)
                assert.is_false(ok)
                assert.truthy(tostring(e):find("close-failed", 1, true), tostring(e))
                assert.is_false(t:cancelled())
            end))

        it("a task raising CancelledError itself ends cancelled", async(function()
            local t = lasio.spawn(function() error(lasio.CancelledError("own")) end)
            local ok, e = pcall(t.await, t)
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(e))
            assert.is_true(t:cancelled())
        end))

        it("cancelling() counts requests and uncancel decrements", async(function()
            local t = lasio.spawn(function()
                pcall(lasio.sleep, 10)
                return lasio.current_task():cancelling()
            end)
            lasio.sleep(0)
            assert.are.equal(0, t:cancelling())
            t:cancel()
            assert.are.equal(1, t:cancelling())
            t:cancel()
            assert.are.equal(2, t:cancelling())
            assert.are.equal(1, t:uncancel())
            assert.are.equal(1, t:cancelling())
            t:await()
        end))

        it("a done task cannot be cancelled", async(function()
            local t = lasio.spawn(function() return 1 end)
            t:await()
            assert.is_false(t:cancel())
            assert.is_false(t:cancelled())
            assert.are.equal(1, t:result())
        end))

        it("cancelling a task awaiting another task cancels that task too",
            async(function()
                local inner = lasio.spawn(function() lasio.sleep(10) end)
                local outer = lasio.spawn(function() inner:await() end)
                lasio.sleep(0.005)
                outer:cancel()
                pcall(outer.await, outer)
                assert.is_true(outer:cancelled())
                assert.is_true(inner:done())
                assert.is_true(inner:cancelled())
            end))
    end)
end)
