-- Specs for the event loop (docs/API.md, Module functions and Loop): call_soon,
-- call_later, call_at and their handles, time, run_until_complete,
-- run_forever, stop, close (fresh loops run in child processes), lasio.run,
-- the exception handler and its context, debug mode.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local LUA = "lua5.4"

-- Runs code in a child with the given interpreter; asserts a clean exit.
local function child(code, interp)
    local out, err, status = helper.run_child(code, { interp = interp })
    return out, err, status
end

describe("loop", function()
    describe("call_soon", function()
        it("runs the callback later, with its arguments (nils too)", async(function()
            local loop = lasio.get_running_loop()
            local got
            local h = loop:call_soon(function(...) got = table.pack(...) end, 1, nil, 3, nil)
            assert.is_nil(got)
            assert.is_false(h:cancelled())
            lasio.sleep(0)
            assert.is_not_nil(got)
            assert.are.equal(4, got.n)
            assert.are.equal(1, got[1])
            assert.is_nil(got[2])
            assert.are.equal(3, got[3])
        end))

        it("runs callbacks in FIFO order; one scheduled from a callback runs after those already queued",
            async(function()
                local loop = lasio.get_running_loop()
                local log = {}
                loop:call_soon(function()
                    log[#log + 1] = "A"
                    loop:call_soon(function() log[#log + 1] = "C" end)
                end)
                loop:call_soon(function() log[#log + 1] = "B" end)
                -- sleep(0) puts this task behind A and B, which were ready
                -- when it yielded; C was queued after it.
                lasio.sleep(0)
                assert.are.same({ "A", "B" }, log)
                lasio.sleep(0)
                assert.are.same({ "A", "B", "C" }, log)
            end))

        it("a cancelled handle never runs", async(function()
            local loop = lasio.get_running_loop()
            local ran = false
            local h = loop:call_soon(function() ran = true end)
            h:cancel()
            assert.is_true(h:cancelled())
            lasio.sleep(0.005)
            assert.is_false(ran)
            h:cancel()
            assert.is_true(h:cancelled())
        end))

        it("a handle cancelled by an earlier callback of the same batch does not run",
            async(function()
                local loop = lasio.get_running_loop()
                local ran = false
                local h2
                loop:call_soon(function() h2:cancel() end)
                h2 = loop:call_soon(function() ran = true end)
                lasio.sleep(0.005)
                assert.is_false(ran)
            end))

        it("callbacks and task steps share one FIFO", async(function()
            local loop = lasio.get_running_loop()
            local log = {}
            loop:call_soon(function() log[#log + 1] = "cb1" end)
            local t = lasio.spawn(function() log[#log + 1] = "task" end)
            loop:call_soon(function() log[#log + 1] = "cb2" end)
            lasio.sleep(0)
            assert.are.same({ "cb1", "task", "cb2" }, log)
            t:await()
        end))

        it("rejects a non-callable", async(function()
            local loop = lasio.get_running_loop()
            assert.is_false(pcall(loop.call_soon, loop, "nope"))
        end))

        it("works with a callable table", async(function()
            local loop = lasio.get_running_loop()
            local got
            local obj = setmetatable({}, { __call = function(_, x) got = x end })
            loop:call_soon(obj, "called")
            lasio.sleep(0)
            assert.are.equal("called", got)
        end))
    end)

    describe("call_later / call_at", function()
        it("passes any number of arguments, nils included", async(function()
            local loop = lasio.get_running_loop()
            local args = {}
            for i = 1, 300 do args[i] = i % 7 ~= 0 and i or nil end
            local got = lasio.Future()
            loop:call_later(0, function(...) got:set_result(table.pack(...)) end,
                table.unpack(args, 1, 300))
            local p = got:await()
            assert.are.equal(300, p.n)
            for i = 1, 300 do assert.are.equal(args[i], p[i]) end
            local soon = lasio.Future()
            loop:call_soon(function(...) soon:set_result(select("#", ...)) end)
            assert.are.equal(0, soon:await())
        end))

        it("call_later returns a TimerHandle whose when() is time()+delay",
            async(function()
                local loop = lasio.get_running_loop()
                local t0 = loop:time()
                local fired_at, args
                local h = loop:call_later(0.02, function(...)
                    fired_at = loop:time()
                    args = table.pack(...)
                end, "x", nil)
                local t1 = loop:time()
                assert.is_true(h:when() >= t0 + 0.02 - 1e-9)
                assert.is_true(h:when() <= t1 + 0.02 + 1e-9)
                assert.is_false(h:cancelled())
                assert.is_true(helper.wait_until(function() return fired_at end, 5))
                assert.is_true(fired_at >= h:when(), "fired early")
                assert.are.equal(2, args.n)
                assert.are.equal("x", args[1])
            end))

        it("timers fire in deadline order", async(function()
            local loop = lasio.get_running_loop()
            local log = {}
            loop:call_later(0.03, function() log[#log + 1] = 30 end)
            loop:call_later(0.01, function() log[#log + 1] = 10 end)
            loop:call_later(0.02, function() log[#log + 1] = 20 end)
            assert.is_true(helper.wait_until(function() return #log == 3 end, 5))
            assert.are.same({ 10, 20, 30 }, log)
        end))

        it("call_at fires at or after its time, and at once for a past time",
            async(function()
                local loop = lasio.get_running_loop()
                local fired, past_fired
                local when = loop:time() + 0.015
                local h = loop:call_at(when, function() fired = loop:time() end)
                assert.are.equal(when, h:when())
                local hp = loop:call_at(loop:time() - 1, function() past_fired = true end)
                assert.is_nil(past_fired, "call_at must not run inline")
                assert.is_true(helper.wait_until(function() return fired end, 5))
                assert.is_true(fired >= when)
                assert.is_true(past_fired)
                assert.is_false(hp:cancelled())
            end))

        it("a cancelled timer never fires", async(function()
            local loop = lasio.get_running_loop()
            local ran = false
            local h = loop:call_later(0.005, function() ran = true end)
            h:cancel()
            assert.is_true(h:cancelled())
            lasio.sleep(0.03)
            assert.is_false(ran)
        end))

        it("a due timer cancelled before its turn never fires, and due timers keep their order",
            async(function()
                -- both fall due in one pass; the first cancels the second
                -- while it waits in the ready queue
                local loop = lasio.get_running_loop()
                local log, h2 = {}, nil
                local when = loop:time() + 0.01
                loop:call_at(when, function() log[#log + 1] = 1; h2:cancel() end)
                h2 = loop:call_at(when, function() log[#log + 1] = 2 end)
                loop:call_at(when, function() log[#log + 1] = 3 end)
                lasio.sleep(0.05)
                assert.are.same({1, 3}, log)
                h2:cancel() -- again, after the fact: nothing happens
                assert.is_true(h2:cancelled())
            end))

        it("rejects a non-callable", async(function()
            local loop = lasio.get_running_loop()
            assert.is_false(pcall(loop.call_later, loop, 0.01, 42))
            assert.is_false(pcall(loop.call_at, loop, loop:time(), {}))
        end))
    end)

    describe("time", function()
        it("is a monotonic float that follows sleeps", async(function()
            local loop = lasio.get_running_loop()
            local a = loop:time()
            assert.are.equal("number", type(a))
            assert.are.equal("float", math.type(a))
            lasio.sleep(0.03)
            local b = loop:time()
            assert.is_true(b - a >= 0.03, "slept " .. (b - a))
            assert.is_true(b - a < helper.t(5))
            local prev = loop:time()
            for _ = 1, 1000 do
                local now = loop:time()
                assert.is_true(now >= prev)
                prev = now
            end
        end))
    end)

    describe("running state and lookup", function()
        it("inside a task the loop is running and is the event loop", async(function()
            local loop = lasio.get_running_loop()
            assert.is_true(loop:is_running())
            assert.is_false(loop:is_closed())
            assert.are.equal(loop, lasio.get_event_loop())
            assert.are.equal(loop, lasio.current_task():get_loop())
        end))

        it("new_event_loop makes a different loop", async(function()
            local loop = lasio.get_running_loop()
            local other = lasio.new_event_loop()
            assert.are_not.equal(loop, other)
            assert.is_false(other:is_running())
            other:close()
            assert.is_true(other:is_closed())
        end))

        it("set_debug / get_debug and slow_callback_duration default", async(function()
            local loop = lasio.get_running_loop()
            local old = loop:get_debug()
            loop:set_debug(true)
            assert.is_true(loop:get_debug())
            loop:set_debug(false)
            assert.is_false(loop:get_debug())
            loop:set_debug(old)
            assert.are.equal(0.1, loop.slow_callback_duration)
        end))
    end)

    describe("run_until_complete / run_forever / stop inside a running loop", function()
        it("run_until_complete(aw) in a task waits for aw", async(function()
            local loop = lasio.get_running_loop()
            local fut = loop:create_future()
            loop:call_later(0.01, function() fut:set_result("r1", nil, "r3") end)
            local r = table.pack(loop:run_until_complete(fut))
            assert.are.equal(3, r.n)
            assert.are.equal("r1", r[1])
            assert.are.equal("r3", r[3])
            assert.are.equal("fn", loop:run_until_complete(function()
                lasio.sleep(0)
                return "fn"
            end))
            assert.is_true(loop:is_running())
        end))

        it("run_forever() in a task waits for stop()", async(function()
            local loop = lasio.get_running_loop()
            local stopped = false
            loop:call_later(0.01, function()
                stopped = true
                loop:stop()
            end)
            loop:run_forever()
            assert.is_true(stopped)
            assert.is_true(loop:is_running())
        end))
    end)

    describe("lasio.run", function()
        it("returns fn's results (nils included) and passes arguments", async(function()
            local r = table.pack(lasio.run(function(a, b) return a + b, nil, "z" end, 1, 2))
            assert.are.equal(3, r.n)
            assert.are.equal(3, r[1])
            assert.is_nil(r[2])
            assert.are.equal("z", r[3])
        end))

        it("re-raises fn's error", async(function()
            local err = { "e" }
            local ok, e = pcall(lasio.run, function() error(err) end)
            assert.is_false(ok)
            assert.are.equal(err, e)
        end))

        it("from a plain callback raises", async(function()
            local loop = lasio.get_running_loop()
            local res
            loop:call_soon(function()
                res = table.pack(pcall(lasio.run, function() return 1 end))
            end)
            assert.is_true(helper.wait_until(function() return res end, 2))
            assert.is_false(res[1])
        end))
    end)

    describe("exception handler", function()
        it("a callback error reaches the handler with message, exception, handle, traceback; the loop keeps running",
            async(function()
                local loop = lasio.get_running_loop()
                local h, after
                local seen = helper.capture_exceptions(function(seen)
                    local function raising_callback() error("cb-boom") end
                    h = loop:call_soon(raising_callback)
                    loop:call_soon(function() after = true end)
                    helper.wait_until(function() return #seen > 0 and after end, 2)
                end)
                assert.is_true(after)
                assert.are.equal(1, #seen)
                local ctx = seen[1]
                assert.are.equal(loop, seen.loop)
                assert.are.equal("string", type(ctx.message))
                assert.truthy(tostring(ctx.exception):find("cb-boom", 1, true))
                assert.are.equal(h, ctx.handle)
                assert.are.equal("string", type(ctx.traceback))
                assert.truthy(ctx.traceback:find("loop_spec", 1, true), ctx.traceback)
            end))

        it("a timer callback error reaches the handler too", async(function()
            local loop = lasio.get_running_loop()
            local seen = helper.capture_exceptions(function(seen)
                loop:call_later(0.001, function() error({ tag = "timer-err" }) end)
                helper.wait_until(function() return #seen > 0 end, 2)
            end)
            assert.are.equal(1, #seen)
            assert.are.equal("timer-err", seen[1].exception.tag)
        end))

        it("get_exception_handler returns the handler; nil restores the default",
            async(function()
                local loop = lasio.get_running_loop()
                local old = loop:get_exception_handler()
                local function h() end
                loop:set_exception_handler(h)
                assert.are.equal(h, loop:get_exception_handler())
                loop:set_exception_handler(nil)
                assert.is_nil(loop:get_exception_handler())
                loop:set_exception_handler(old)
                assert.is_false(pcall(loop.set_exception_handler, loop, 42))
            end))

        it("call_exception_handler calls the handler with loop and context",
            async(function()
                local loop = lasio.get_running_loop()
                local seen = helper.capture_exceptions(function()
                    loop:call_exception_handler({ message = "by hand", exception = "x" })
                end)
                assert.are.equal(1, #seen)
                assert.are.equal("by hand", seen[1].message)
                assert.are.equal("x", seen[1].exception)
                assert.are.equal(loop, seen.loop)
            end))

        it("a task whose step raises into the handler does not stop others",
            async(function()
                local loop = lasio.get_running_loop()
                local ok_task
                local seen = helper.capture_exceptions(function(seen)
                    loop:call_soon(function() error("one") end)
                    loop:call_soon(function() error("two") end)
                    ok_task = lasio.spawn(function() lasio.sleep(0.005) return "fine" end)
                    assert.are.equal("fine", ok_task:await())
                    helper.wait_until(function() return #seen >= 2 end, 2)
                end)
                assert.are.equal(2, #seen)
                assert.truthy(tostring(seen[1].exception):find("one", 1, true))
                assert.truthy(tostring(seen[2].exception):find("two", 1, true))
            end))

        for _, interp in ipairs(helper.interps) do
            it("the default handler prints message and traceback to stderr (" .. interp .. ")",
                function()
                    local out, err, status = child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    local function failing_callback_fn() error("default-handler-boom") end
    loop:call_soon(failing_callback_fn)
    lasio.sleep(0.01)
    loop:default_exception_handler({ message = "direct-message-xyz" })
    print("still-running")
end)
]], interp)
                    assert.are.equal(0, status, err)
                    assert.truthy(out:find("still-running", 1, true))
                    assert.truthy(err:find("default-handler-boom", 1, true), err)
                    assert.truthy(err:find("traceback", 1, true), err)
                    assert.truthy(err:find("direct-message-xyz", 1, true), err)
                end)

            it("a handler that raises does not break the loop (" .. interp .. ")", function()
                local out, err, status = child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    loop:set_exception_handler(function() error("handler-itself-failed") end)
    loop:call_soon(function() error("original") end)
    lasio.sleep(0.01)
    loop:set_exception_handler(nil)
    print("survived")
end)
]], interp)
                assert.are.equal(0, status, err)
                assert.truthy(out:find("survived", 1, true))
            end)

            it("debug mode reports a slow callback and a slow task step (" .. interp .. ")",
                function()
                    local code = [[
local lasio = require "lasio"
local DEBUG = %s
lasio.run(function()
    local loop = lasio.get_running_loop()
    loop:set_debug(DEBUG)
    loop.slow_callback_duration = 0.05
    local function busy() local t = os.clock() while os.clock() - t < 0.15 do end end
    loop:call_soon(busy)
    lasio.sleep(0.01)
    lasio.spawn(function() busy() end):await()
    print("ok")
end)
]]
                    local out, err, status = child(code:format("true"), interp)
                    assert.are.equal(0, status, err)
                    assert.truthy(out:find("ok", 1, true))
                    assert.are_not.equal("", err, "nothing reported in debug mode")
                    assert.is_true(helper.count(err, "\n") >= 2 or #err > 40, err)
                    local out2, err2, status2 = child(code:format("false"), interp)
                    assert.are.equal(0, status2, err2)
                    assert.truthy(out2:find("ok", 1, true))
                    assert.are.equal("", err2, "reported without debug mode")
                end)
        end

        it("debug mode: tasks record where they were created (shown in reports)",
            function()
                local code = [[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
loop:set_debug(%s)
local function spawn_site_fn()
    return loop:create_task(function() lasio.sleep(1000) end)
end
local stuck = spawn_site_fn()
loop:run_until_complete(function() lasio.sleep(0.001) end)
loop:close()
]]
                local _, err, status = child(code:format("true"), LUA)
                assert.are.equal(0, status, err)
                assert.truthy(err:find("Task was destroyed but it is pending!", 1, true), err)
                assert.truthy(err:find("spawn_site_fn", 1, true), err)
                local _, err2 = child(code:format("false"), LUA)
                assert.truthy(err2:find("Task was destroyed but it is pending!", 1, true), err2)
                assert.is_nil(err2:find("spawn_site_fn", 1, true), err2)
            end)

        it("debug mode slow-callback report goes through the exception handler",
            function()
                local out, err, status = child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    local got = {}
    loop:set_exception_handler(function(_, ctx) got[#got + 1] = ctx end)
    loop:set_debug(true)
    loop.slow_callback_duration = 0.05
    local function busy() local t = os.clock() while os.clock() - t < 0.15 do end end
    loop:call_soon(busy)
    lasio.sleep(0.01)
    print("reports", #got)
end)
]], LUA)
                assert.are.equal(0, status, err)
                -- asyncio logs a warning instead; either channel is fine,
                -- but something must be said.
                local n = tonumber(out:match("reports\t(%d+)"))
                assert.is_not_nil(n, out)
                assert.is_true(n >= 1 or err ~= "", "no report: " .. err)
            end)
    end)

    describe("fresh loops (child process, stock lua5.4)", function()
        it("run_until_complete returns the results and re-raises errors", function()
            local out, err, status = child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local r = table.pack(loop:run_until_complete(function(a) lasio.sleep(0.01) return a, nil, 3 end))
print("n", r.n, r[1], r[2], r[3])
local t = loop:create_task(function() return "task-result" end)
print("task", loop:run_until_complete(t))
local ok, e = pcall(loop.run_until_complete, loop, function() error({tag="E"}) end)
print("err", ok, type(e) == "table" and e.tag)
print("running-after", loop:is_running())
local fut = loop:create_future()
loop:call_later(0.01, function() fut:set_result("fut-done") end)
print("fut", loop:run_until_complete(fut))
loop:close()
print("closed", loop:is_closed())
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("n\t3\tnil\tnil\t3", 1, true), out)
            assert.truthy(out:find("task\ttask-result", 1, true), out)
            assert.truthy(out:find("err\tfalse\tE", 1, true), out)
            assert.truthy(out:find("running-after\tfalse", 1, true), out)
            assert.truthy(out:find("fut\tfut-done", 1, true), out)
            assert.truthy(out:find("closed\ttrue", 1, true), out)
        end)

        it("run_forever runs until stop() from a callback; is_running inside", function()
            local out, err, status = child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local inside
loop:call_later(0.01, function() inside = loop:is_running(); loop:stop() end)
loop:run_forever()
print("stopped", inside, loop:is_running())
-- stop() before run_forever: already-scheduled callbacks run, then it returns
local ran = false
loop:call_soon(function() ran = true end)
loop:stop()
loop:run_forever()
print("prestop", ran)
-- the loop can run again after a stop
print("again", loop:run_until_complete(function() return "again-ok" end))
loop:close()
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("stopped\ttrue\tfalse", 1, true), out)
            assert.truthy(out:find("prestop\ttrue", 1, true), out)
            assert.truthy(out:find("again\tagain-ok", 1, true), out)
        end)

        it("close: idempotent; a closed loop refuses work", function()
            local out, err, status = child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
loop:close()
loop:close()
print("closed", loop:is_closed())
print("call_soon", pcall(loop.call_soon, loop, function() end))
print("ruc", (pcall(loop.run_until_complete, loop, function() end)))
print("rf", (pcall(loop.run_forever, loop)))
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("closed\ttrue", 1, true), out)
            assert.truthy(out:find("call_soon\tfalse", 1, true), out)
            assert.truthy(out:find("ruc\tfalse", 1, true), out)
            assert.truthy(out:find("rf\tfalse", 1, true), out)
        end)

        it("close() of the running loop from a task takes effect when it stops", function()
            local out, err, status = child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local r = loop:run_until_complete(function()
    loop:close()
    lasio.sleep(0.005)
    return "finished-after-close", loop:is_closed()
end)
print(r, loop:is_closed())
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("finished-after-close\ttrue", 1, true), out)
        end)

        it("run_until_complete from a plain callback of the running loop raises", function()
            local out, err, status = child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local res
loop:call_soon(function()
    local f = loop:create_future()
    res = table.pack(pcall(loop.run_until_complete, loop, f))
    local ok2 = pcall(loop.run_forever, loop)
    res.rf = ok2
    loop:stop()
end)
loop:run_forever()
print("ruc", res[1], "rf", res.rf)
print("after", loop:run_until_complete(function() return "alive" end))
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("ruc\tfalse\trf\tfalse", 1, true), out)
            assert.truthy(out:find("after\talive", 1, true), out)
        end)

        it("get_running_loop raises outside a running loop; get_event_loop is stable", function()
            local out, err, status = child([[
local lasio = require "lasio"
print("grl", (pcall(lasio.get_running_loop)))
local a, b = lasio.get_event_loop(), lasio.get_event_loop()
print("same", rawequal(a, b), a:is_running())
print("task-outside", lasio.current_task())
print("new", rawequal(lasio.new_event_loop(), a))
print("inside", lasio.run(function() return lasio.get_running_loop():is_running() end))
print("spawn-outside", (pcall(lasio.spawn, function() end)))
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("grl\tfalse", 1, true), out)
            assert.truthy(out:find("same\ttrue\tfalse", 1, true), out)
            assert.truthy(out:find("task-outside\tnil", 1, true), out)
            assert.truthy(out:find("new\tfalse", 1, true), out)
            assert.truthy(out:find("inside\ttrue", 1, true), out)
            -- spawn starts a task "on the running loop": with none, it
            -- raises like asyncio.create_task
            assert.truthy(out:find("spawn-outside\tfalse", 1, true), out)
        end)

        it("lasio.run cancels and finishes remaining tasks, then closes its loop", function()
            local out, err, status = child([[
local lasio = require "lasio"
local log = {}
local loop
local r = lasio.run(function()
    loop = lasio.get_running_loop()
    lasio.spawn(function()
        local _ <close> = setmetatable({}, {__close = function()
            log[#log + 1] = "cleanup"
        end})
        local ok, e = pcall(lasio.sleep, 100)
        log[#log + 1] = lasio.CancelledError:is(e) and "cancelled" or tostring(e)
        error(e, 0)
    end)
    lasio.sleep(0.005)
    return "main-done"
end)
print(r, table.concat(log, ","), loop:is_closed())
]], LUA)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("main-done\tcancelled,cleanup\ttrue", 1, true), out)
        end)

        it("lasio.run: a failing main task still cancels and finishes the others; "
            .. "a leftover that delays its end is awaited",
            function()
                local out, err, status = child([[
local lasio = require "lasio"
local log = {}
local ok, e = pcall(lasio.run, function()
    lasio.spawn(function()
        local _ <close> = setmetatable({}, {__close = function() log[#log+1] = "cleanup" end})
        lasio.sleep(100)
    end)
    lasio.sleep(0)
    error("main-err")
end)
print("failed", ok, tostring(e):find("main-err", 1, true) ~= nil, table.concat(log, ","))
local flag = false
print("slow-leftover", lasio.run(function()
    lasio.spawn(function()
        pcall(lasio.sleep, 100)
        lasio.sleep(0.02)
        flag = true
    end)
    lasio.sleep(0)
    return "main"
end), flag)
]], LUA)
                assert.are.equal(0, status, err)
                assert.truthy(out:find("failed\tfalse\ttrue\tcleanup", 1, true), out)
                assert.truthy(out:find("slow-leftover\tmain\ttrue", 1, true), out)
            end)

        it("a deadlock raises instead of hanging (library mode)", function()
            local out, err, status = child([[
local lasio = require "lasio"
local ok, e = pcall(lasio.run, function() lasio.Future():await() end)
print("run", ok, tostring(e):lower():find("deadlock") ~= nil)
local loop = lasio.new_event_loop()
ok, e = pcall(loop.run_until_complete, loop, loop:create_future())
print("ruc", ok, tostring(e):lower():find("deadlock") ~= nil)
]], LUA)
            assert.are_not.equal(124, status, "hung: " .. err)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("run\tfalse\ttrue", 1, true), out)
            assert.truthy(out:find("ruc\tfalse\ttrue", 1, true), out)
        end)
    end)

    describe("inside the lasio command and any running loop", function()
        for _, interp in ipairs(helper.interps) do
            it("stop() with nobody in run_forever does nothing (" .. interp .. ")", function()
                local out, err, status = child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    loop:stop()
    lasio.sleep(0.01)
    loop:stop()
    lasio.spawn(function() print("spawned-ran") end):await()
    print("after-stop", loop:is_running())
end)
]], interp)
                assert.are.equal(0, status, err)
                assert.truthy(out:find("spawned-ran", 1, true), out)
                assert.truthy(out:find("after-stop\ttrue", 1, true), out)
            end)

            it("the old asyncio style with run_until_complete runs unchanged (" .. interp .. ")",
                function()
                    local out, err, status = child([[
local lasio = require "lasio"
local function slow_operation()
    lasio.sleep(0.01)
    return "Future is done!"
end
local loop = lasio.get_event_loop()
local task = loop:create_task(slow_operation)
task:add_done_callback(function(fut) print(fut:result()) end)
loop:run_until_complete(task)
print("end")
]], interp)
                    assert.are.equal(0, status, err)
                    assert.truthy(out:find("Future is done!\n", 1, true), out)
                    assert.truthy(out:find("end", 1, true), out)
                end)

            it("the old asyncio style with run_forever and stop runs unchanged (" .. interp .. ")",
                function()
                    local out, err, status = child([[
local lasio = require "lasio"
local function slow_operation()
    lasio.sleep(0.01)
    return "Future is done!"
end
local loop = lasio.get_event_loop()
local task = loop:create_task(slow_operation)
task:add_done_callback(function(fut)
    print(fut:result())
    loop:stop()
end)
loop:run_forever()
print("end")
]], interp)
                    assert.are.equal(0, status, err)
                    assert.truthy(out:find("Future is done!\nend", 1, true), out)
                end)

            it("a script ending in lasio.run(main) works (" .. interp .. ")", function()
                local out, err, status = child([[
local lasio = require "lasio"
local function main(x)
    lasio.sleep(0.005)
    return x * 2
end
print("result", lasio.run(main, 21))
]], interp)
                assert.are.equal(0, status, err)
                assert.truthy(out:find("result\t42", 1, true), out)
            end)
        end

        it("the lasio command runs the main chunk as a task", function()
            local out, err, status = child([[
local t = lasio.current_task()
print("task", t ~= nil, lasio.get_running_loop():is_running())
local t0 = lasio.get_running_loop():time()
lasio.sleep(0.01)
print("slept", lasio.get_running_loop():time() - t0 >= 0.01)
]], helper.lasio_bin)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("task\ttrue\ttrue", 1, true), out)
            assert.truthy(out:find("slept\ttrue", 1, true), out)
        end)

        it("the lasio command waits for pending tasks before exiting", function()
            local out, err, status = child([[
lasio.spawn(function() lasio.sleep(0.02) print("late-task") end)
print("main-end")
]], helper.lasio_bin)
            assert.are.equal(0, status, err)
            assert.truthy(out:find("main-end\nlate-task", 1, true), out)
        end)
    end)
end)

describe("a seed-style script behaves the same under the command and stock Lua", function()
    it("stop() before run_forever() returns after one turn; close() closes for the script", function()
        local script = [[
local lasio = require "lasio"
local loop = lasio.get_event_loop()
loop:call_soon(function() print("ready callback ran") end)
loop:stop()
loop:run_forever()
print("returned")
loop:close()
print("closed", loop:is_closed())
print(pcall(loop.create_task, loop, function() print("never") end))
print(pcall(loop.call_soon, loop, print, "never"))
print(pcall(loop.call_later, loop, 0, print, "never"))
]]
        local want = "ready callback ran\nreturned\nclosed\ttrue\n"
            .. "false\tcannot create a task: the loop is closed\n"
            .. "false\tthe loop is closed\nfalse\tthe loop is closed\n"
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child(script, {interp = interp})
            assert.are.equal(0, status, interp .. ": " .. err)
            assert.are.equal(want, out, interp)
            assert.are.equal("", err, interp)
        end
    end)

    it("inside a task, stop() then run_forever() runs one turn; a later stop() is still awaited",
        helper.async(function()
            local loop = lasio.get_running_loop()
            local order = {}
            loop:call_soon(function() order[#order + 1] = "callback" end)
            loop:stop()
            loop:run_forever()
            order[#order + 1] = "returned"
            assert.are.same({"callback", "returned"}, order)
            loop:call_later(0.01, function() loop:stop() end)
            loop:run_forever() -- waits for that stop()
            assert.is_false(loop:is_closed())
        end))
end)
