-- Specs for awaits in awkward places (docs/API.md, Module functions; F12):
-- the forwarding coroutine library (user coroutines that await suspend the
-- whole task), plain coroutine.yield at task level, non-yieldable places
-- (table.sort, string.gsub, require, __gc), awaits outside a task, and
-- places where Lua 5.4 can yield (metamethods, pcall, __close).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local NOT_IN_TASK = "lasio.sleep: not inside a task (use lasio.run or the lasio command)"

describe("coroutine forwarding (F12)", function()
    -- covers F12
    it("a coroutine.wrap generator that awaits yields only its own values",
        async(function()
            local gen = coroutine.wrap(function()
                for i = 1, 3 do
                    lasio.sleep(0.001)
                    coroutine.yield(i)
                    lasio.sleep(0)
                end
                return "end"
            end)
            local got = {}
            for _ = 1, 4 do got[#got + 1] = gen() end
            assert.are.same({ 1, 2, 3, "end" }, got)
        end))

    it("a generic for over a generator that awaits", async(function()
        local fut = lasio.Future()
        lasio.get_running_loop():call_later(0.005, function() fut:set_result("late") end)
        local got = {}
        for v in coroutine.wrap(function()
            coroutine.yield("a")
            coroutine.yield(fut:await())
            coroutine.yield("c")
        end) do
            got[#got + 1] = v
        end
        assert.are.same({ "a", "late", "c" }, got)
    end))

    it("an await inside a user coroutine suspends the whole task; other tasks run",
        async(function()
            local ticks = 0
            local ticker = lasio.spawn(function()
                for _ = 1, 1000 do
                    ticks = ticks + 1
                    lasio.sleep(0.001)
                end
            end)
            local ticks_during
            local co = coroutine.wrap(function()
                local before = ticks
                lasio.sleep(0.03)
                ticks_during = ticks - before
                coroutine.yield("after-sleep")
            end)
            assert.are.equal("after-sleep", co())
            assert.is_true(ticks_during > 0, "nothing ran while the generator slept")
            ticker:cancel()
            pcall(ticker.await, ticker)
        end))

    it("coroutine.resume passes values both ways around awaits", async(function()
        local co = coroutine.create(function(a)
            local b = coroutine.yield(a + 1)
            lasio.sleep(0.001)
            local c = coroutine.yield(b * 2)
            return c, nil, "last"
        end)
        local r = table.pack(coroutine.resume(co, 1))
        assert.are.same({ n = 2, true, 2 }, r)
        assert.are.equal("suspended", coroutine.status(co))
        r = table.pack(coroutine.resume(co, 10))
        assert.are.same({ n = 2, true, 20 }, r)
        r = table.pack(coroutine.resume(co, "c"))
        assert.are.equal(4, r.n)
        assert.is_true(r[1])
        assert.are.equal("c", r[2])
        assert.is_nil(r[3])
        assert.are.equal("last", r[4])
        assert.are.equal("dead", coroutine.status(co))
        local ok, e = coroutine.resume(co)
        assert.is_false(ok)
        assert.truthy(tostring(e):find("dead", 1, true))
    end))

    it("nested user coroutines forward awaits through every level", async(function()
        local fut = lasio.Future()
        lasio.get_running_loop():call_later(0.005, function() fut:set_result("deep") end)
        local outer = coroutine.wrap(function()
            local inner = coroutine.wrap(function()
                local v = fut:await()
                coroutine.yield("inner:" .. v)
            end)
            coroutine.yield("outer:" .. inner())
        end)
        assert.are.equal("outer:inner:deep", outer())
    end))

    it("running, isyieldable and status inside a user coroutine are as usual",
        async(function()
            local co
            co = coroutine.create(function()
                local me, ismain = coroutine.running()
                lasio.sleep(0)
                coroutine.yield(me == co, ismain, coroutine.isyieldable(),
                    coroutine.status(co))
            end)
            local ok, same, ismain, yieldable, status = coroutine.resume(co)
            assert.is_true(ok)
            assert.is_true(same)
            assert.is_false(ismain)
            assert.is_true(yieldable)
            assert.are.equal("running", status)
            assert.are.equal("suspended", coroutine.status(co))
        end))

    it("errors in user coroutines behave like the originals", async(function()
        local co = coroutine.create(function()
            lasio.sleep(0)
            error("gen-failed")
        end)
        local ok, e = coroutine.resume(co)
        assert.is_false(ok)
        assert.truthy(tostring(e):find("gen-failed", 1, true))
        assert.are.equal("dead", coroutine.status(co))
        local gen = coroutine.wrap(function() lasio.sleep(0) error({ tag = 1 }) end)
        local ok2, e2 = pcall(gen)
        assert.is_false(ok2)
        assert.are.equal(1, e2.tag)
    end))

    it("coroutine.close runs pending <close> variables", async(function()
        local closed = false
        local co = coroutine.create(function()
            local _ <close> = helper.closer(function() closed = true end)
            lasio.sleep(0)
            coroutine.yield(1)
        end)
        assert.is_true((coroutine.resume(co)))
        assert.is_true(coroutine.close(co))
        assert.is_true(closed)
        assert.are.equal("dead", coroutine.status(co))
    end))

    it("a CancelledError ending a user coroutine is re-raised by resume",
        async(function()
            local reached = false
            local t = lasio.spawn(function()
                local co = coroutine.create(function() lasio.sleep(10) end)
                local ok, e = coroutine.resume(co)
                reached = true
                return ok, e
            end)
            lasio.sleep(0.005)
            t:cancel()
            local ok, e = pcall(t.await, t)
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(e), tostring(e))
            assert.is_false(reached)
        end))

    -- covers F12
    it("a user coroutine suspended in a forwarded await cannot be resumed by another task",
        async(function()
            -- In the original library the coroutine is "normal" while the
            -- task that resumed it waits: nobody else may resume it, and a
            -- resume value must never reach the await inside it.
            local fut = lasio.Future()
            local co = coroutine.create(function()
                local v = fut:await()
                coroutine.yield("from-gen:" .. tostring(v))
                return "end"
            end)
            local a_got
            local A = lasio.spawn(function() a_got = table.pack(coroutine.resume(co)) end)
            lasio.sleep(0)
            local a_waiting = not A:done()
            local status_while_waiting = coroutine.status(co)
            local ok, err = coroutine.resume(co, "intruder")
            local fut_untouched = not fut:done()
            if not fut:done() then fut:set_result("real") end
            local a_ok = pcall(A.await, A)
            assert.is_true(a_waiting)
            assert.are_not.equal("suspended", status_while_waiting)
            assert.are_not.equal("dead", status_while_waiting)
            assert.is_false(ok)
            assert.truthy(tostring(err):find("non%-suspended"), tostring(err))
            assert.is_true(fut_untouched)
            assert.is_true(a_ok)
            assert.are.same({ n = 2, true, "from-gen:real" }, a_got)
            assert.are.equal("suspended", coroutine.status(co))
            assert.are.same({ true, "end" }, { coroutine.resume(co) })
        end))

    it("a generator suspended in a forwarded await cannot be called from another task",
        async(function()
            local fut = lasio.Future()
            local gen = coroutine.wrap(function()
                coroutine.yield("first:" .. fut:await())
            end)
            local a_got
            local A = lasio.spawn(function() a_got = gen() end)
            lasio.sleep(0)
            local ok, err = pcall(gen, "intruder")
            if not fut:done() then fut:set_result("real") end
            local a_ok, a_err = pcall(A.await, A)
            assert.is_false(ok)
            assert.truthy(tostring(err):find("non%-suspended"), tostring(err))
            assert.is_true(a_ok, tostring(a_err))
            assert.are.equal("first:real", a_got)
        end))

    it("plain generators work outside any task", function()
        local gen = coroutine.wrap(function()
            coroutine.yield(1)
            coroutine.yield(2)
        end)
        assert.are.equal(1, gen())
        assert.are.equal(2, gen())
        local co = coroutine.create(function(x) return coroutine.yield(x) + 1 end)
        assert.are.same({ true, 5 }, { coroutine.resume(co, 5) })
        assert.are.same({ true, 8 }, { coroutine.resume(co, 7) })
    end)
end)

describe("plain coroutine.yield at task level", function()
    it("raises at the call site; the task goes on", async(function()
        local t = lasio.spawn(function()
            local ok, e = pcall(coroutine.yield, "stray")
            lasio.sleep(0)
            return ok, tostring(e)
        end)
        local ok, e = t:await()
        assert.is_false(ok)
        assert.are.equal("string", type(e))
        assert.is_true(#e > 0)
    end))

    it("uncaught, it becomes the task's error; the loop is intact", async(function()
        local t = lasio.spawn(function()
            coroutine.yield(1, 2, 3)
            return "not reached"
        end)
        local ok = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(t:done())
        assert.is_false(t:cancelled())
        assert.are.equal("after", lasio.sleep(0.001, "after"))
    end))

    it("raises in the main chunk under the lasio command", function()
        local out, err, status = helper.run_child([[
local ok, e = pcall(coroutine.yield, 1)
print("yield", ok)
lasio.sleep(0)
print("alive")
]], { interp = helper.lasio_bin })
        assert.are.equal(0, status, err)
        assert.truthy(out:find("yield\tfalse\nalive", 1, true), out)
    end)
end)

describe("non-yieldable places (F12)", function()
    local function expect_cannot_await(e)
        local m = tostring(e)
        assert.truthy(m:find("cannot await here", 1, true), m)
    end

    -- covers F12
    it("table.sort comparator: a clear error, the task and loop go on",
        async(function()
            local ok, e = pcall(table.sort, { 3, 1, 2 }, function(a, b)
                lasio.sleep(0)
                return a < b
            end)
            assert.is_false(ok)
            expect_cannot_await(e)
            assert.truthy(tostring(e):find("sleep", 1, true), tostring(e))
            assert.are.equal("ok", lasio.sleep(0.001, "ok"))
        end))

    it("string.gsub callback: a clear error", async(function()
        local fut = lasio.Future()
        fut:set_result("X")
        local pending = lasio.Future()
        local ok, e = pcall(string.gsub, "abc", "b", function()
            return pending:await()
        end)
        assert.is_false(ok)
        expect_cannot_await(e)
        assert.is_false(pending:done())
        pending:cancel()
    end))

    it("uncaught in a task, it becomes the task's error", async(function()
        local t = lasio.spawn(function()
            table.sort({ 2, 1 }, function(a, b) lasio.sleep(0) return a < b end)
        end)
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        expect_cannot_await(e)
        assert.is_false(t:cancelled())
        local t2 = lasio.spawn(function() return lasio.sleep(0, "fine") end)
        assert.are.equal("fine", t2:await())
    end))

    it("require of a module that awaits while loading", async(function()
        package.preload["spec_await_on_load"] = function()
            lasio.sleep(0)
            return {}
        end
        local ok, e = pcall(require, "spec_await_on_load")
        package.preload["spec_await_on_load"] = nil
        package.loaded["spec_await_on_load"] = nil
        assert.is_false(ok)
        expect_cannot_await(e)
    end))

    it("a C function without continuation (load reader)", async(function()
        local called = false
        local f, e = load(function()
            if called then return nil end
            called = true
            lasio.sleep(0)
            return "return 1"
        end)
        assert.is_nil(f)
        expect_cannot_await(e)
    end))

    it("lasio.await from table.sort names the reason too", async(function()
        local fut = lasio.Future()
        local ok, e = pcall(table.sort, { 2, 1 }, function(a, b)
            lasio.await(fut)
            return a < b
        end)
        assert.is_false(ok)
        expect_cannot_await(e)
        fut:cancel()
    end))

    for _, interp in ipairs(helper.interps) do
        it("in __gc: a warning, and the task goes on (" .. interp .. ")", function()
            local out, err, status = helper.run_child([[
warn("@on")
local lasio = require "lasio"
lasio.run(function()
    do
        setmetatable({}, { __gc = function() lasio.sleep(0) end })
    end
    collectgarbage()
    collectgarbage()
    lasio.sleep(0.001)
    print("task-went-on")
end)
]], { interp = interp })
            assert.are.equal(0, status, err)
            assert.truthy(out:find("task-went-on", 1, true), out)
            assert.truthy(err:find("cannot await here", 1, true), err)
        end)
    end
end)

describe("yieldable places that are awkward but allowed", function()
    it("__index and __lt metamethods may await", async(function()
        local proxy = setmetatable({}, {
            __index = function(_, k) return lasio.sleep(0.001, k .. "!") end,
        })
        assert.are.equal("foo!", proxy.foo)
        local mt = { __lt = function(a, b) lasio.sleep(0) return a.v < b.v end }
        local a, b = setmetatable({ v = 1 }, mt), setmetatable({ v = 2 }, mt)
        assert.is_true(a < b)
    end))

    it("pcall and xpcall may await", async(function()
        local r = table.pack(pcall(lasio.sleep, 0.001, "p"))
        assert.are.same({ n = 2, true, "p" }, r)
        r = table.pack(xpcall(function() return lasio.sleep(0, "x") end, debug.traceback))
        assert.are.same({ n = 2, true, "x" }, r)
        local ok, e = xpcall(function()
            lasio.sleep(0)
            error("after-await")
        end, function(m) return "handled:" .. tostring(m) end)
        assert.is_false(ok)
        assert.truthy(e:find("^handled:"))
    end))

    it("a <close> handler may await on normal block exit", async(function()
        local log = {}
        do
            local _ <close> = helper.closer(function()
                lasio.sleep(0.001)
                log[#log + 1] = "closed"
            end)
            log[#log + 1] = "body"
        end
        log[#log + 1] = "after"
        assert.are.same({ "body", "closed", "after" }, log)
    end))

    it("a <close> handler that awaits on return keeps the returned values",
        async(function()
            local t = lasio.spawn(function()
                local _ <close> = helper.closer(function() lasio.sleep(0.001) end)
                return 1, nil, 3
            end)
            local r = table.pack(t:await())
            assert.are.equal(3, r.n)
            assert.are.equal(1, r[1])
            assert.are.equal(3, r[3])
        end))

    it("a <close> handler may await while an error unwinds through pcall",
        async(function()
            local log = {}
            local ok, e = pcall(function()
                local _ <close> = helper.closer(function()
                    lasio.sleep(0.001)
                    log[#log + 1] = "closed"
                end)
                error("unwinding")
            end)
            assert.is_false(ok)
            assert.truthy(tostring(e):find("unwinding", 1, true))
            assert.are.same({ "closed" }, log)
        end))
end)

describe("deeply nested user coroutines", function()
    it("an await 150 user coroutines deep suspends the task and returns", async(function()
        local fut = lasio.Future()
        lasio.get_running_loop():call_later(0.001, function() fut:set_result("deep") end)
        local function level(d)
            if d == 0 then return fut:await() end
            local co = coroutine.wrap(function() return level(d - 1) end)
            return co()
        end
        assert.are.equal("deep", level(150))
    end))

    it("a generator yielding 10000 times with awaits in between", async(function()
        local gen = coroutine.wrap(function()
            for i = 1, 10000 do
                if i % 100 == 0 then lasio.sleep(0) end
                coroutine.yield(i)
            end
        end)
        local sum = 0
        for _ = 1, 10000 do sum = sum + gen() end
        assert.are.equal(10000 * 10001 // 2, sum)
    end))
end)

describe("awaiting outside a task", function()
    it("lasio.sleep in a plain callback raises the documented message",
        async(function()
            local loop = lasio.get_running_loop()
            local res
            loop:call_soon(function() res = table.pack(pcall(lasio.sleep, 0)) end)
            assert.is_true(helper.wait_until(function() return res end, 2))
            assert.is_false(res[1])
            assert.truthy(tostring(res[2]):find(NOT_IN_TASK, 1, true), tostring(res[2]))
        end))

    it("await in a plain callback says it is not inside a task", async(function()
        local loop = lasio.get_running_loop()
        local fut = lasio.Future()
        local res
        loop:call_soon(function() res = table.pack(pcall(fut.await, fut)) end)
        assert.is_true(helper.wait_until(function() return res end, 2))
        assert.is_false(res[1])
        assert.truthy(tostring(res[2]):find("not inside a task", 1, true), tostring(res[2]))
        assert.is_false(fut:done())
    end))

    it("a generator that awaits, resumed from a plain callback, raises the same",
        async(function()
            local loop = lasio.get_running_loop()
            local res
            loop:call_soon(function()
                local gen = coroutine.wrap(function() lasio.sleep(0) coroutine.yield(1) end)
                res = table.pack(pcall(gen))
            end)
            assert.is_true(helper.wait_until(function() return res end, 2))
            assert.is_false(res[1])
            assert.truthy(tostring(res[2]):find("not inside a task", 1, true), tostring(res[2]))
        end))

    it("lasio.sleep at the top level of stock lua5.4 raises the documented message",
        function()
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
local ok, e = pcall(lasio.sleep, 0)
print(ok)
print(tostring(e))
local co = coroutine.wrap(function() lasio.sleep(0) end)
local ok2, e2 = pcall(co)
print(ok2)
print(tostring(e2))
]], { interp = "lua5.4" })
            assert.are.equal(0, status, err)
            local lines = {}
            for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
            assert.are.equal("false", lines[1])
            assert.truthy(lines[2]:find(NOT_IN_TASK, 1, true), lines[2])
            assert.are.equal("false", lines[3])
            assert.truthy((lines[4] or ""):find("not inside a task", 1, true), out)
        end)
end)
