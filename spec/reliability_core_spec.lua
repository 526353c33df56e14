-- Reliability cases (docs/RELIABILITY.md) of the core not covered in the
-- per-module specs:
-- object lifetime under GC (G1, G3, G6, G7) and deep chains without C stack
-- overflow (E6). F1-F7, F10-F12, T4/T5 live in future_spec, task_spec,
-- diagnostics_spec, coroutine_spec and timer_spec.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

describe("object lifetime", function()
    -- covers G1
    it("an unreferenced fire-and-forget task runs to completion under constant GC (G1)",
        async(function()
            local steps, finished = 0, false
            do
                lasio.spawn(function()
                    local fut = lasio.Future()
                    lasio.get_running_loop():call_later(0.01, function() fut:set_result() end)
                    fut:await()
                    for _ = 1, 20 do
                        steps = steps + 1
                        lasio.sleep(0.001)
                    end
                    finished = true
                end)
            end
            -- a full collection per turn can be slow with a big heap (all
            -- the specs in one process): the task has vanished only when it
            -- makes no progress for a while
            local loop = lasio.get_running_loop()
            local last, deadline = -1, 0
            while not finished do
                if steps ~= last then
                    last, deadline = steps, loop:time() + helper.t(5)
                elseif loop:time() > deadline then
                    break
                end
                collectgarbage()
                lasio.sleep(0)
            end
            assert.is_true(finished, "task vanished after " .. steps .. " steps")
        end))

    it("many unreferenced tasks waiting on unreferenced futures all finish (G1)",
        async(function()
            local n = 0
            for _ = 1, 200 do
                lasio.spawn(function()
                    local fut = lasio.Future()
                    lasio.spawn(function()
                        lasio.sleep(0.001)
                        collectgarbage("step")
                        fut:set_result(1)
                    end)
                    local r = fut:await() -- read n after the await
                    n = n + r
                end)
            end
            for _ = 1, 5 do collectgarbage() lasio.sleep(0.001) end
            assert.is_true(helper.wait_until(function()
                collectgarbage()
                return n == 200
            end, 5))
        end))

    -- covers G3
    it("callbacks still run after the coroutine that created them died and was collected (G3)",
        async(function()
            local loop = lasio.get_running_loop()
            local got = {}
            local fut = lasio.Future()
            do
                local t = lasio.spawn(function()
                    loop:call_soon(function(x) got.soon = x end, "soon-arg")
                    loop:call_later(0.01, function(x) got.later = x end, "later-arg")
                    loop:call_at(loop:time() + 0.01, function(x) got.at = x end, "at-arg")
                    fut:add_done_callback(function(f) got.done = f:result() end)
                    return "creator-done"
                end)
                assert.are.equal("creator-done", t:await())
            end
            -- and a user coroutine that schedules, finishes and is dropped
            do
                local co = coroutine.wrap(function()
                    loop:call_later(0.005, function() got.from_co = true end)
                end)
                co()
            end
            for _ = 1, 3 do collectgarbage() end
            fut:set_result("resolved")
            assert.is_true(helper.wait_until(function()
                collectgarbage()
                return got.soon and got.later and got.at and got.done and got.from_co
            end, 5))
            assert.are.equal("soon-arg", got.soon)
            assert.are.equal("later-arg", got.later)
            assert.are.equal("at-arg", got.at)
            assert.are.equal("resolved", got.done)
        end))

    it("a task resumed after its creator was collected gets the right values (G3)",
        async(function()
            local fut = lasio.Future()
            local waiter
            do
                local creator = lasio.spawn(function()
                    waiter = lasio.spawn(function() return "w:" .. fut:await() end)
                end)
                creator:await()
            end
            for _ = 1, 3 do collectgarbage() end
            lasio.sleep(0)
            fut:set_result("x")
            assert.are.equal("w:x", waiter:await())
        end))

    -- covers G6
    it("finalizers that spawn, cancel and collect during dispatch do not break the loop (G6)",
        async(function()
            local loop = lasio.get_running_loop()
            local spawned_ran = 0
            local victim = lasio.spawn(function() lasio.sleep(1000) end)
            local function make_garbage(i)
                setmetatable({}, { __gc = function()
                    collectgarbage()
                    collectgarbage("step")
                    if i % 3 == 0 then
                        lasio.spawn(function() spawned_ran = spawned_ran + 1 end)
                    elseif i % 3 == 1 then
                        victim:cancel()
                        loop:call_soon(function() spawned_ran = spawned_ran + 1 end)
                    else
                        local t = lasio.spawn(function() lasio.sleep(1000) end)
                        t:cancel()
                    end
                end })
            end
            local order = {}
            for i = 1, 300 do
                make_garbage(i)
                loop:call_soon(function()
                    order[#order + 1] = i
                    make_garbage(i + 1000)
                    if i % 10 == 0 then collectgarbage() end
                end)
            end
            collectgarbage()
            assert.is_true(helper.wait_until(function() return #order == 300 end, 5))
            for i = 1, 300 do assert.are.equal(i, order[i]) end
            collectgarbage()
            collectgarbage()
            lasio.sleep(0.005)
            assert.is_true(victim:done())
            assert.is_true(victim:cancelled())
            assert.is_true(spawned_ran > 100, "finalizer work ran " .. spawned_ran)
            assert.are.equal("alive", lasio.sleep(0, "alive"))
        end))

    -- covers G7
    it("cancelling handles twice, from their own callback and from a finalizer is idempotent (G7)",
        async(function()
            local loop = lasio.get_running_loop()
            local calls = 0
            local seen = helper.capture_exceptions(function()
                local h1 = loop:call_soon(function() calls = calls + 100 end)
                h1:cancel()
                h1:cancel()
                local h2
                h2 = loop:call_soon(function()
                    calls = calls + 1
                    h2:cancel()
                    h2:cancel()
                end)
                local h3 = loop:call_later(0.001, function() calls = calls + 100 end)
                do
                    setmetatable({}, { __gc = function() h3:cancel() h3:cancel() end })
                end
                collectgarbage()
                collectgarbage()
                local h4
                h4 = loop:call_later(0.001, function()
                    calls = calls + 1
                    h4:cancel()
                end)
                lasio.sleep(0.02)
                h2:cancel()
                h4:cancel()
                assert.is_true(h1:cancelled())
                assert.is_true(h3:cancelled())
            end)
            assert.are.equal(2, calls)
            assert.are.equal(0, #seen)
        end))

    it("futures and tasks cancelled twice, from callbacks and finalizers (G7)",
        async(function()
            local fut = lasio.Future()
            assert.is_true(fut:cancel())
            assert.is_false(fut:cancel())
            local fut2 = lasio.Future()
            fut2:add_done_callback(function(f) f:cancel() end)
            fut2:set_result(1)
            lasio.sleep(0)
            assert.are.equal(1, fut2:result())
            local t = lasio.spawn(function() lasio.sleep(1000) end)
            lasio.sleep(0)
            do
                setmetatable({}, { __gc = function() t:cancel() t:cancel() end })
            end
            collectgarbage()
            collectgarbage()
            t:cancel()
            assert.is_false(pcall(t.await, t))
            assert.is_true(t:cancelled())
            assert.is_false(t:cancel())
            local self_cancel = lasio.spawn(function()
                local me = lasio.current_task()
                me:cancel()
                me:cancel()
                lasio.sleep(0)
            end)
            assert.is_false(pcall(self_cancel.await, self_cancel))
            assert.is_true(self_cancel:cancelled())
        end))

    it("handles and futures survive being collected while scheduled", async(function()
        local n = 0
        local loop = lasio.get_running_loop()
        for _ = 1, 1000 do
            loop:call_soon(function() n = n + 1 end)
            loop:call_later(0.001, function() n = n + 1 end)
            local f = lasio.Future()
            f:add_done_callback(function() n = n + 1 end)
            f:set_result()
        end
        collectgarbage()
        collectgarbage()
        assert.is_true(helper.wait_until(function() return n == 3000 end, 5))
    end))
end)

describe("shutdown and closing with work pending", function()
    for _, interp in ipairs(helper.interps) do
        it("os.exit(code, true) from a callback of a running loop with tasks and timers pending ("
            .. interp .. ")", function()
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    for _ = 1, 10 do lasio.spawn(function() lasio.sleep(100) end) end
    local loop = lasio.get_running_loop()
    loop:call_later(100, print, "never")
    local f = lasio.Future()
    f:add_done_callback(print)
    loop:call_soon(function() io.stdout:write("exiting\n") os.exit(3, true) end)
    f:await()
end)
print("not reached")
]], { interp = interp })
            assert.are.equal(3, status, err)
            assert.are.equal("exiting\n", out)
            assert.is_nil(err:find("AddressSanitizer", 1, true), err)
        end)

        it("os.exit(code, true) from inside a task (" .. interp .. ")", function()
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    lasio.spawn(function() lasio.sleep(100) end)
    lasio.sleep(0.001)
    os.exit(0, true)
end)
print("not reached")
]], { interp = interp })
            assert.are.equal(0, status, err)
            assert.are.equal("", out)
        end)
    end

    it("loops dropped or closed with timers, callbacks and tasks pending", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
for i = 1, 200 do
    local l = lasio.new_event_loop()
    l:call_later(0.5, print, "never")
    l:call_soon(print, "never")
    local f = l:create_future()
    f:add_done_callback(print)
    f:set_result(1)
    if i % 2 == 0 then l:close() end
end
collectgarbage()
collectgarbage()
local l = lasio.new_event_loop()
local ran = false
l:call_soon(function() ran = true end)
local h = l:call_later(10, function() ran = true end)
l:close()
h:cancel()
h:cancel()
collectgarbage()
print("ok", ran)
]], { interp = "lua5.4" })
        assert.are.equal(0, status, err)
        assert.are.equal("ok\tfalse\n", out)
    end)
end)

describe("deep chains (E6)", function()
    -- covers E6
    it("1 000 000 awaits of an already-done future", async(function()
        local fut = lasio.Future()
        fut:set_result(1)
        local sum = 0
        for _ = 1, 1000000 do
            sum = sum + fut:await()
        end
        assert.are.equal(1000000, sum)
    end))

    it("a chain of 100 000 futures, each callback resolving the next", async(function()
        local N = 100000
        local futs = {}
        for i = 1, N do futs[i] = lasio.Future() end
        for i = 1, N - 1 do
            local nxt = futs[i + 1]
            futs[i]:add_done_callback(function(f) nxt:set_result(f:result() + 1) end)
        end
        futs[1]:set_result(1)
        assert.are.equal(N, futs[N]:await())
    end))

    it("100 000 done callbacks, each adding the next to the same done future", async(function()
        local f = lasio.Future()
        f:set_result(0)
        local n = 0
        local done = lasio.Future()
        local function cb(x)
            n = n + 1
            if n < 100000 then x:add_done_callback(cb) else done:set_result(n) end
        end
        f:add_done_callback(cb)
        assert.are.equal(100000, done:await())
    end))

    it("a chain of 100 000 tasks, each awaiting the previous one", async(function()
        local N = 100000
        local first = lasio.Future()
        local prev = first
        for _ = 1, N do
            local p = prev
            prev = lasio.spawn(function() return p:await() + 1 end)
        end
        lasio.sleep(0)
        first:set_result(0)
        assert.are.equal(N, prev:await())
    end))

    it("a chain of 100 000 futures resolved from task to task", async(function()
        local N = 100000
        local futs = {}
        for i = 1, N + 1 do futs[i] = lasio.Future() end
        -- 1000 tasks, each forwarding 100 links of the chain
        local workers = {}
        for w = 0, 999 do
            workers[#workers + 1] = lasio.spawn(function()
                for k = 1, 100 do
                    local i = w * 100 + k
                    futs[i + 1]:set_result(futs[i]:await() + 1)
                end
            end)
        end
        futs[1]:set_result(0)
        assert.are.equal(N, futs[N + 1]:await())
    end))
end)
