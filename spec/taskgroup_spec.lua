-- Specs for lasio.taskgroup: a port of asyncio's test_taskgroups.py (the
-- BaseException cases have no Lua counterpart). Covers F9 and
-- F11.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local ErrorGroup = lasio.ErrorGroup

local raises = helper.raises

local is_cancelled = helper.is_cancelled

-- Error objects of distinct kinds, like asyncio's exception classes.
local function kind(name)
    return function(arg) return { kind = name, arg = arg } end
end
local ZeroDivision, ValueErr, MyExc, RuntimeErr =
    kind("ZeroDivisionError"), kind("ValueError"), kind("MyExc"), kind("RuntimeError")

-- The set of kinds in an ErrorGroup, as a sorted list.
local function kinds(eg)
    assert.is_true(ErrorGroup:is(eg), tostring(eg))
    local set, list = {}, {}
    for _, e in ipairs(eg.errors) do
        local k = ErrorGroup:is(e) and "ErrorGroup" or (type(e) == "table" and e.kind) or tostring(e)
        if not set[k] then
            set[k] = true
            list[#list + 1] = k
        end
    end
    table.sort(list)
    return list
end

local function crash_after(t, err)
    return function()
        lasio.sleep(t)
        error(err, 0)
    end
end

describe("lasio.taskgroup", function()
    describe("success", function()
        it("waits for every child and returns the body's results", async(function()
            local t1, t2
            local r = table.pack(lasio.taskgroup(function(g)
                t1 = g:spawn(function() lasio.sleep(0.01) return 42 end)
                t2 = g:spawn(function() lasio.sleep(0.02) return 11 end)
                return "body", nil, 3
            end))
            assert.are.equal(42, t1:result())
            assert.are.equal(11, t2:result())
            assert.are.equal(3, r.n)
            assert.are.same({ "body", nil, 3 }, { r[1], r[2], r[3] })
        end))

        it("children spawned later in the body are waited for too", async(function()
            local t1, t2
            lasio.taskgroup(function(g)
                t1 = g:spawn(function() lasio.sleep(0.01) return 42 end)
                lasio.sleep(0.015)
                t2 = g:spawn(function() lasio.sleep(0.02) return 11 end)
            end)
            assert.are.equal(42, t1:result())
            assert.are.equal(11, t2:result())
        end))

        it("a child cancelled by hand is not an error", async(function()
            local t1, t2
            lasio.taskgroup(function(g)
                t1 = g:spawn(function() lasio.sleep(1) return 42 end)
                lasio.sleep(0.01)
                t1:cancel()
                t2 = g:spawn(function() lasio.sleep(0.01) return 11 end)
            end)
            assert.is_true(t1:cancelled())
            assert.are.equal(11, t2:result())
        end))

        it("spawn passes arguments and returns the task; body gets extra arguments",
            async(function()
                local t
                local r = lasio.taskgroup(function(g, x, y)
                    t = g:spawn(function(a, b) lasio.sleep(0) return a .. b end, "a", "b")
                    t:set_name("yolo")
                    assert.are.equal("yolo", t:get_name())
                    return x + y
                end, 1, 2)
                assert.are.equal(3, r)
                assert.are.equal("ab", t:result())
            end))

        it("children may spawn siblings, also while the group is exiting", async(function()
            local ran = {}
            local function coro1(delay)
                return function()
                    lasio.sleep(delay)
                    ran[#ran + 1] = delay
                end
            end
            lasio.taskgroup(function(g)
                g:spawn(function()
                    lasio.sleep(0.01)
                    g:spawn(coro1(0.01))
                    g:spawn(coro1(0.02))
                end)
            end)
            assert.are.same({ 0.01, 0.02 }, ran)
        end))

        it("finished children leave the group", async(function()
            lasio.taskgroup(function(g)
                for _ = 1, 10 do
                    lasio.sleep(0.002)
                    g:spawn(lasio.sleep, 0.005)
                end
                local n = tonumber(tostring(g):match("tasks=(%d+)"))
                assert.is_true(n ~= nil and n < 5, tostring(g))
                lasio.sleep(0.02)
                assert.is_nil(tostring(g):match("tasks="), tostring(g))
            end)
        end))

        it("hydra: children keep spawning until a sibling fails", async(function()
            local nhydras = 0
            local function hydra(g)
                nhydras = nhydras + 1
                lasio.sleep(0.002)
                g:spawn(hydra, g)
                g:spawn(hydra, g)
            end
            local function hercules()
                while nhydras < 10 do lasio.sleep(0.003) end
                error(ZeroDivision(), 0)
            end
            local e = raises(lasio.taskgroup, function(g)
                g:spawn(hydra, g)
                g:spawn(hercules)
            end)
            assert.are.same({ "ZeroDivisionError" }, kinds(e))
            assert.is_true(nhydras >= 10)
        end))

        it("an empty group returns at once", async(function()
            assert.are.equal("x", lasio.taskgroup(function() return "x" end))
            assert.are.equal(0, lasio.current_task():cancelling())
        end))
    end)

    describe("a failing child", function()
        it("cancels the siblings and raises an ErrorGroup; code after is not reached",
            async(function()
                local num, t2_cancel, t2 = 0, false, nil
                local function foo2()
                    local ok, e = pcall(lasio.sleep, 1)
                    if not ok then
                        t2_cancel = true
                        error(e, 0)
                    end
                    num = num + 1
                end
                local runner = lasio.spawn(function()
                    lasio.taskgroup(function(g)
                        g:spawn(crash_after(0.01, ZeroDivision()))
                        t2 = g:spawn(foo2)
                    end)
                    num = num + 10
                end)
                local e = raises(runner.await, runner)
                assert.are.same({ "ZeroDivisionError" }, kinds(e))
                assert.are.equal(0, num)
                assert.is_true(t2_cancel)
                assert.is_true(t2:cancelled())
            end))

        it("cancels the body too; only the real errors are collected", async(function()
            local num, t2_cancel, runner_cancel = 0, false, false
            local runner = lasio.spawn(function()
                lasio.taskgroup(function(g)
                    for _ = 1, 3 do g:spawn(crash_after(0.01, ZeroDivision())) end
                    g:spawn(function()
                        local ok, e = pcall(lasio.sleep, 5)
                        t2_cancel = not ok
                        if not ok then error(e, 0) end
                        num = num + 1
                    end)
                    local ok, e = pcall(lasio.sleep, 10)
                    runner_cancel = not ok
                    error(e, 0)
                end)
                num = num + 10
            end)
            local e = raises(runner.await, runner)
            assert.are.same({ "ZeroDivisionError" }, kinds(e))
            assert.is_true(#e.errors >= 1 and #e.errors <= 3)
            assert.are.equal(0, num)
            assert.is_true(t2_cancel)
            assert.is_true(runner_cancel)
        end))

        it("siblings are cancelled in spawn order; errors are kept in completion order",
            async(function()
                local order = {}
                local e = raises(lasio.taskgroup, function(g)
                    for i = 1, 4 do
                        g:spawn(function()
                            local _, c = pcall(lasio.sleep, 10)
                            order[#order + 1] = i
                            error(c, 0)
                        end)
                    end
                    local go = lasio.Future()
                    for i = 1, 2 do
                        g:spawn(function()
                            go:await() -- both wake in the same turn
                            error(ValueErr(i), 0)
                        end)
                    end
                    lasio.sleep(0.001)
                    go:set_result()
                end)
                assert.are.same({ 1, 2, 3, 4 }, order)
                assert.are.equal(2, #e.errors)
                assert.are.equal(1, e.errors[1].arg)
                assert.are.equal(2, e.errors[2].arg)
            end))

        it("the ErrorGroup names the errors and holds the very values", async(function()
            local err = { tag = "child" }
            local e = raises(lasio.taskgroup, function(g)
                g:spawn(function() error(err) end)
                g:spawn(function() error("text error", 0) end)
            end)
            assert.is_true(ErrorGroup:is(e))
            assert.are.equal(2, #e.errors)
            assert.are.equal(err, e.errors[1])
            assert.are.equal("text error", e.errors[2])
            assert.truthy(tostring(e):find("^ErrorGroup: unhandled errors in a task group %(2 sub%-errors%)"),
                tostring(e))
            assert.truthy(tostring(e):find("text error", 1, true), tostring(e))
        end))

        it("the parent's cancel count is restored after the group failed", async(function()
            local e = raises(lasio.taskgroup, function(g)
                g:spawn(crash_after(0, RuntimeErr()))
            end)
            assert.are.same({ "RuntimeError" }, kinds(e))
            assert.are.equal(0, lasio.current_task():cancelling())
            lasio.sleep(0) -- no cancellation leaks out of the group
            lasio.sleep(0.001)
        end))

        it("spawning while the group shuts down raises", async(function()
            local spawn_err
            local e = raises(lasio.taskgroup, function(g)
                g:spawn(crash_after(0.001, ZeroDivision()))
                g:spawn(function()
                    local _, c = pcall(lasio.sleep, 1)
                    spawn_err = select(2, pcall(g.spawn, g, crash_after(0, ZeroDivision())))
                    error(c, 0)
                end)
            end)
            assert.are.same({ "ZeroDivisionError" }, kinds(e))
            assert.are.equal(1, #e.errors)
            assert.truthy(tostring(spawn_err):find("shutting down", 1, true), tostring(spawn_err))
        end))

        it("a child failing on its first step cancels a sibling spawned in the same turn",
            async(function()
                local ran = false
                local e = raises(lasio.taskgroup, function(tg)
                    tg:spawn(function()
                        tg:spawn(function() error(MyExc("third task failed"), 0) end)
                        local ok, c = pcall(function()
                            lasio.sleep(0)
                            lasio.sleep(0)
                        end)
                        assert(not ok and is_cancelled(c))
                        ran = true
                    end)
                end)
                assert.is_true(ran)
                assert.are.same({ "MyExc" }, kinds(e))
            end))

        it("errors of the body and of a <close> in it are collected with the child's",
            async(function()
                -- asyncio's test_taskgroup_context_manager_exit_raises
                local task_cancelling
                local t = lasio.spawn(function()
                    local ok, e = pcall(lasio.taskgroup, function(tg)
                        local _ <close> = helper.closer(function() error(MyExc("database"), 0) end)
                        tg:spawn(function() error(MyExc("raise_exc"), 0) end)
                        lasio.sleep(1)
                    end)
                    task_cancelling = lasio.current_task():cancelling()
                    return ok, e
                end)
                local ok, e = t:await()
                assert.is_false(ok)
                assert.are.equal(0, task_cancelling)
                assert.are.equal(2, #e.errors)
                assert.are.same({ "MyExc" }, kinds(e))
            end))
    end)

    describe("a failing body", function()
        it("after an await: children cancelled, ErrorGroup of the body's error", async(function()
            local t1, t2
            local e = raises(lasio.taskgroup, function(g)
                t1 = g:spawn(function() lasio.sleep(1) return 42 end)
                t2 = g:spawn(function() lasio.sleep(2) return 11 end)
                lasio.sleep(0.01)
                error(ZeroDivision(), 0)
            end)
            assert.are.same({ "ZeroDivisionError" }, kinds(e))
            assert.is_true(t1:cancelled())
            assert.is_true(t2:cancelled())
        end))

        it("at once: children cancelled before they ran", async(function()
            local t1, t2
            local ran = false
            local e = raises(lasio.taskgroup, function(g)
                t1 = g:spawn(function() ran = true lasio.sleep(1) end)
                t2 = g:spawn(function() ran = true lasio.sleep(2) end)
                error(ZeroDivision(), 0)
            end)
            assert.are.same({ "ZeroDivisionError" }, kinds(e))
            assert.is_true(t1:cancelled())
            assert.is_true(t2:cancelled())
            assert.is_false(ran)
        end))

        it("the body's error comes after the children's errors", async(function()
            local e = raises(lasio.taskgroup, function(g)
                g:spawn(crash_after(0.01, ZeroDivision()))
                local _ <close> = helper.closer(function(err)
                    if is_cancelled(err) then error(MyExc(), 0) end
                end)
                lasio.sleep(10)
            end)
            assert.are.same({ "MyExc", "ZeroDivisionError" }, kinds(e))
            assert.are.equal("ZeroDivisionError", e.errors[1].kind)
            assert.are.equal("MyExc", e.errors[2].kind)
        end))

        it("nested: an inner group's ErrorGroup becomes an error of the outer", async(function()
            local r = lasio.spawn(function()
                lasio.taskgroup(function(g1)
                    g1:spawn(crash_after(10, ValueErr(10)))
                    lasio.taskgroup(function(g2)
                        g2:spawn(crash_after(0.01, ValueErr(0.01)))
                    end)
                end)
            end)
            local e = raises(r.await, r)
            assert.are.same({ "ErrorGroup" }, kinds(e))
            assert.are.same({ "ValueError" }, kinds(e.errors[1]))
        end))

        it("nested: an outer child failing cancels the inner group quietly", async(function()
            local r = lasio.spawn(function()
                lasio.taskgroup(function(g1)
                    g1:spawn(crash_after(0.01, ValueErr(0.01)))
                    lasio.taskgroup(function(g2)
                        g2:spawn(crash_after(10, ValueErr(10)))
                    end)
                end)
            end)
            local e = raises(r.await, r)
            assert.are.same({ "ValueError" }, kinds(e))
            assert.are.equal(0.01, e.errors[1].arg)
        end))

        it("nested groups failing together each report their own error", async(function()
            local inner_e
            local e = raises(lasio.taskgroup, function(outer_tg)
                inner_e = raises(lasio.taskgroup, function(inner_tg)
                    inner_tg:spawn(crash_after(0, RuntimeErr()))
                    outer_tg:spawn(crash_after(0, ValueErr()))
                end)
            end)
            assert.are.same({ "RuntimeError" }, kinds(inner_e))
            assert.are.same({ "ValueError" }, kinds(e))
            assert.are.equal(0, lasio.current_task():cancelling())
            lasio.sleep(0.001)
        end))
    end)

    -- covers F9
    describe("the parent cancelled from outside (F9)", function()
        it("5 children each observe CancelledError exactly once; the parent's propagates",
            async(function()
                local num = 0
                local function foo()
                    local ok, e = pcall(lasio.sleep, 5)
                    if not ok then num = num + 1 end
                    error(e, 0)
                end
                local r = lasio.spawn(function()
                    lasio.taskgroup(function(g)
                        for _ = 1, 5 do g:spawn(foo) end
                    end)
                end)
                lasio.sleep(0.01)
                assert.is_false(r:done())
                r:cancel()
                assert.is_true(is_cancelled(raises(r.await, r)))
                assert.is_true(r:cancelled())
                assert.are.equal(5, num)
            end))

        it("the body is cancelled too", async(function()
            local num = 0
            local function foo()
                local ok, e = pcall(lasio.sleep, 5)
                if not ok then num = num + 1 end
                error(e, 0)
            end
            local r = lasio.spawn(function()
                lasio.taskgroup(function(g)
                    for _ = 1, 5 do g:spawn(foo) end
                    local ok, e = pcall(lasio.sleep, 10)
                    if not ok then num = num + 10 end
                    error(e, 0)
                end)
            end)
            lasio.sleep(0.01)
            r:cancel()
            assert.is_true(is_cancelled(raises(r.await, r)))
            assert.are.equal(15, num)
        end))

        -- covers F11
        it("cancelled again while children clean up: they still see one CancelledError (F11)",
            async(function()
                local seen = {}
                local cleaned = 0
                local release = lasio.Future()
                local function child(i)
                    return function()
                        local _ <close> = helper.closer(function()
                            -- cleanup that awaits, while the parent is
                            -- cancelled a second time
                            local ok = pcall(release.await, release)
                            if ok then cleaned = cleaned + 1 end
                        end)
                        local ok, e = pcall(lasio.sleep, 5)
                        seen[i] = (seen[i] or 0) + (ok and 0 or 1)
                        error(e, 0)
                    end
                end
                local r = lasio.spawn(function()
                    lasio.taskgroup(function(g)
                        for i = 1, 5 do g:spawn(child(i)) end
                    end)
                end)
                lasio.sleep(0.005)
                r:cancel("first")
                lasio.sleep(0.005)
                assert.is_false(r:done())
                r:cancel("second")
                lasio.sleep(0.005)
                release:set_result()
                local e = raises(r.await, r)
                assert.is_true(is_cancelled(e))
                assert.are.same({ 1, 1, 1, 1, 1 }, seen)
                assert.are.equal(5, cleaned)
            end))

        it("a child failing in its cleanup does not cancel its siblings a second time",
            async(function()
                local b_cleanup
                local r = lasio.spawn(function()
                    lasio.taskgroup(function(g)
                        g:spawn(function()
                            local _ <close> = helper.closer(function() error(ZeroDivision(), 0) end)
                            lasio.sleep(10)
                        end)
                        g:spawn(function()
                            local _ <close> = helper.closer(function()
                                b_cleanup = pcall(lasio.sleep, 0.02) and "completed" or "interrupted"
                            end)
                            lasio.sleep(10)
                        end)
                        lasio.sleep(10)
                    end)
                end)
                lasio.sleep(0.005)
                r:cancel()
                local e = raises(r.await, r)
                assert.are.same({ "ZeroDivisionError" }, kinds(e))
                assert.are.equal("completed", b_cleanup)
            end))

        it("a body without children: CancelledError propagates", async(function()
            local num = 0
            local r = lasio.spawn(function()
                lasio.taskgroup(function()
                    local ok, e = pcall(lasio.sleep, 10)
                    if not ok then num = num + 10 end
                    error(e, 0)
                end)
            end)
            lasio.sleep(0.01)
            r:cancel()
            assert.is_true(is_cancelled(raises(r.await, r)))
            assert.are.equal(10, num)
        end))

        it("while children run: CancelledError propagates", async(function()
            local r = lasio.spawn(function()
                lasio.taskgroup(function(g)
                    g:spawn(lasio.sleep, 1)
                    g:spawn(lasio.sleep, 2)
                end)
            end)
            lasio.sleep(0.005)
            r:cancel()
            assert.is_true(is_cancelled(raises(r.await, r)))
        end))

        it("children failing in their cleanup turn the cancellation into an ErrorGroup",
            async(function()
                local function foo()
                    local _ <close> = helper.closer(function() error(ZeroDivision(), 0) end)
                    lasio.sleep(10)
                end
                local r = lasio.spawn(function()
                    lasio.taskgroup(function(g)
                        for _ = 1, 5 do g:spawn(foo) end
                        lasio.sleep(10)
                    end)
                end)
                lasio.sleep(0.01)
                r:cancel()
                local e = raises(r.await, r)
                assert.are.same({ "ZeroDivisionError" }, kinds(e))
                assert.are.equal(5, #e.errors)
                assert.is_false(r:cancelled())
            end))

        it("nested groups: children failing in cleanup give nested ErrorGroups", async(function()
            local function foo()
                local _ <close> = helper.closer(function() error(ZeroDivision(), 0) end)
                lasio.sleep(10)
            end
            for _, with_sibling in ipairs({ false, true }) do
                local r = lasio.spawn(function()
                    lasio.taskgroup(function(g1)
                        if with_sibling then g1:spawn(lasio.sleep, 10) end
                        lasio.taskgroup(function(g2)
                            for _ = 1, 5 do g2:spawn(foo) end
                            lasio.sleep(10)
                        end)
                    end)
                end)
                lasio.sleep(0.01)
                r:cancel()
                local e = raises(r.await, r)
                assert.are.same({ "ErrorGroup" }, kinds(e))
                assert.are.same({ "ZeroDivisionError" }, kinds(e.errors[1]))
            end
        end))

        it("a child failing while the cancelled body cleans up gives an ErrorGroup",
            async(function()
                local function crash_soon()
                    lasio.sleep(0.03)
                    error(ZeroDivision(), 0)
                end
                local function nested_runner()
                    lasio.taskgroup(function(g1)
                        g1:spawn(crash_soon)
                        local ok, e = pcall(lasio.sleep, 10)
                        if not ok then lasio.sleep(0.05) end
                        error(e, 0)
                    end)
                end
                for _, via_task in ipairs({ false, true }) do
                    local r = lasio.spawn(function()
                        if via_task then
                            lasio.spawn(nested_runner):await()
                        else
                            nested_runner()
                        end
                    end)
                    lasio.sleep(0.01)
                    assert.is_false(r:done())
                    r:cancel()
                    local e = raises(r.await, r)
                    assert.are.same({ "ZeroDivisionError" }, kinds(e))
                end
            end))

        it("a body that answers the cancellation with an error gives an ErrorGroup",
            async(function()
                local num = 0
                local r = lasio.spawn(function()
                    lasio.taskgroup(function()
                        local ok = pcall(lasio.sleep, 10)
                        if not ok then
                            num = num + 10
                            error(MyExc(), 0)
                        end
                    end)
                end)
                lasio.sleep(0.01)
                r:cancel()
                local e = raises(r.await, r)
                assert.are.same({ "MyExc" }, kinds(e))
                assert.are.equal(10, num)
            end))

        it("a child error and an outside cancel: the ErrorGroup, then the cancel at the next await",
            async(function()
                -- asyncio's test_error_and_cancel
                local event = lasio.Future()
                local log = {}
                local t = lasio.spawn(function()
                    local ok, e = pcall(lasio.taskgroup, function(tg)
                        tg:spawn(function()
                            event:set_result()
                            lasio.sleep(0)
                            error(RuntimeErr(), 0)
                        end)
                        lasio.sleep(1)
                        log[#log + 1] = "sleep in group not cancelled"
                    end)
                    log[#log + 1] = ok and "no error" or kinds(e)[1]
                    log[#log + 1] = lasio.current_task():cancelling()
                    lasio.sleep(1)
                    log[#log + 1] = "sleep after group not cancelled"
                end)
                event:await()
                assert.are.equal(0, t:cancelling())
                t:cancel()
                assert.are.equal(1, t:cancelling())
                assert.is_true(is_cancelled(raises(t.await, t)))
                assert.is_true(t:cancelled())
                assert.are.same({ "RuntimeError", 1 }, log)
            end))
    end)

    describe("with timeouts", function()
        it("a timeout around a group cancels body and children, then raises TimeoutError",
            async(function()
                local cancelled = 0
                local function worker()
                    local ok, e = pcall(lasio.sleep, 10)
                    if not ok then cancelled = cancelled + 1 end
                    error(e, 0)
                end
                local t0 = lasio.get_running_loop():time()
                local e = raises(lasio.timeout, 0.01, lasio.taskgroup, function(g)
                    for _ = 1, 3 do g:spawn(worker) end
                    lasio.sleep(10)
                end)
                assert.is_true(lasio.TimeoutError:is(e), tostring(e))
                assert.are.equal(3, cancelled)
                assert.is_true(lasio.get_running_loop():time() - t0 < helper.t(0.5))
                assert.are.equal(0, lasio.current_task():cancelling())
            end))

        it("a timeout inside a child is that child's own business", async(function()
            local a, b = lasio.taskgroup(function(g)
                local ta = g:spawn(function()
                    local _, e = pcall(lasio.timeout, 0.01, lasio.sleep, 10)
                    return lasio.TimeoutError:is(e) and "timed out" or tostring(e)
                end)
                local tb = g:spawn(function() lasio.sleep(0.02) return "b" end)
                return ta, tb
            end)
            assert.are.equal("timed out", a:result())
            assert.are.equal("b", b:result())
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

        it("wait_for around a group that finishes in time returns its results",
            async(function()
                local r = lasio.wait_for(function()
                    return lasio.taskgroup(function(g)
                        local t = g:spawn(function() lasio.sleep(0.005) return 5 end)
                        lasio.sleep(0)
                        return t
                    end):result() * 2
                end, 1)
                assert.are.equal(10, r)
            end))
    end)

    describe("misuse", function()
        it("spawning into a finished group raises", async(function()
            local tg
            lasio.taskgroup(function(g) tg = g end)
            local e = raises(tg.spawn, tg, function() end)
            assert.truthy(tostring(e):find("tg:spawn: the task group is finished", 1, true), tostring(e))
            -- also after a failure
            raises(lasio.taskgroup, function(g)
                tg = g
                error("body failed", 0)
            end)
            e = raises(tg.spawn, tg, function() end)
            assert.truthy(tostring(e):find("finished", 1, true), tostring(e))
        end))

        it("bad arguments raise at once", async(function()
            local e = raises(lasio.taskgroup, 42)
            assert.truthy(tostring(e):find("lasio.taskgroup: body must be a function, got number", 1, true))
            lasio.taskgroup(function(g)
                local e2 = raises(g.spawn, g, "not a function")
                assert.truthy(tostring(e2):find("tg:spawn: fn must be a function, got string", 1, true),
                    tostring(e2))
            end)
        end))

        it("outside a task, taskgroup raises", async(function()
            local got
            lasio.get_running_loop():call_soon(function()
                got = table.pack(pcall(lasio.taskgroup, function() end))
            end)
            lasio.sleep(0.001)
            assert.is_false(got[1])
            assert.truthy(tostring(got[2]):find("lasio.taskgroup: not inside a task", 1, true))
        end))

        it("tostring shows the state", async(function()
            local tg
            lasio.taskgroup(function(g)
                tg = g
                assert.are.equal("lasio.TaskGroup<entered>", tostring(g))
                g:spawn(lasio.sleep, 0.01)
                assert.are.equal("lasio.TaskGroup<tasks=1 entered>", tostring(g))
            end)
            assert.are.equal("lasio.TaskGroup<finished>", tostring(tg))
        end))
    end)
end)

describe("lasio.TaskGroup (the group as a to-be-closed variable)", function()
    it("closing the variable waits for every child", async(function()
        local log = {}
        do
            local tg <close> = lasio.TaskGroup()
            tg:spawn(function() lasio.sleep(0.02) log[#log + 1] = "slow" end)
            tg:spawn(function() log[#log + 1] = "fast" end)
            log[#log + 1] = "body"
        end
        log[#log + 1] = "after"
        assert.are.same({"body", "fast", "slow", "after"}, log)
    end))

    it("keeps the block's return values", async(function()
        local function f()
            local tg <close> = lasio.TaskGroup()
            local t = tg:spawn(function() return 7 end)
            return "r", t
        end
        local r, t = f()
        assert.are.equal("r", r)
        assert.are.equal(7, t:result())
    end))

    it("the first error cancels the other children and the block; errors come as one group",
        async(function()
            local cancelled, reached = false, false
            local err = raises(function()
                local tg <close> = lasio.TaskGroup()
                tg:spawn(function()
                    local ok, e = pcall(lasio.sleep, 10)
                    cancelled = not ok and is_cancelled(e)
                    error(e, 0)
                end)
                tg:spawn(crash_after(0.01, ZeroDivision()))
                tg:spawn(crash_after(0.01, ValueErr()))
                lasio.sleep(10)
                reached = true
            end)
            assert.are.same({"ValueError", "ZeroDivisionError"}, kinds(err))
            assert.is_true(cancelled)
            assert.is_false(reached)
            assert.are.equal(0, lasio.current_task():cancelling())
        end))

    it("an error of the block is raised in the group, after the children finished",
        async(function()
            local child_done = false
            local err = raises(function()
                local tg <close> = lasio.TaskGroup()
                tg:spawn(function()
                    local ok = pcall(lasio.sleep, 10)
                    child_done = not ok
                end)
                lasio.sleep(0)
                error(MyExc(), 0)
            end)
            assert.are.same({"MyExc"}, kinds(err))
            assert.is_true(child_done)
        end))

    it("an outside cancellation passes through as CancelledError", async(function()
        local started = lasio.Event()
        local t = lasio.spawn(function()
            local tg <close> = lasio.TaskGroup()
            tg:spawn(function() lasio.sleep(10) end)
            started:set()
            lasio.sleep(10)
        end)
        started:wait()
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
    end))

    it("refuses misuse: outside a task, arguments, spawning into a finished group", function()
        if helper.mode == "lua5.4" then
            assert.has_error(function() lasio.TaskGroup() end,
                "lasio.TaskGroup: not inside a task (use lasio.run or the lasio command)")
        end
        lasio.run(function()
            assert.has_error(function() lasio.TaskGroup(1) end,
                "lasio.TaskGroup: takes no arguments (use tg:spawn(fn, ...))")
            local kept
            do
                local tg <close> = lasio.TaskGroup()
                kept = tg
                assert.has_error(function() tg:spawn(42) end,
                    "tg:spawn: fn must be a function, got number")
            end
            assert.has_error(function() kept:spawn(function() end) end,
                "tg:spawn: the task group is finished")
            assert.are.equal("lasio.TaskGroup<finished>", tostring(kept))
        end)
    end)
end)
