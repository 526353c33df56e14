-- lasio.to_thread (docs/API.md): worker threads with their own Lua
-- states, copied arguments and results, errors, bad arguments,
-- cancellation, wake-up sources and shutdown.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async
local raises = helper.raises

describe("lasio.to_thread", function()
    it("runs fn in a worker with copied arguments and results (all copyable types)", async(function()
        local a, b, c, d, e, f = lasio.to_thread(function(x, t, s, n)
            return x + 1, t, s .. "!", n, 2.0, math.type(x)
        end, 41, {1, {deep = {true, false}}, k = "v", [3.5] = "f"}, "str", nil)
        assert.are.equal(42, a)
        assert.are.same({1, {deep = {true, false}}, k = "v", [3.5] = "f"}, b)
        assert.are.equal("str!", c)
        assert.is_nil(d)
        assert.are.equal("float", math.type(e))
        assert.are.equal("integer", f)
        local big = string.rep("\0xyz", 250000)
        assert.is_true(big == lasio.to_thread(function(s) return s end, big))
    end))

    it("uses the worker's own globals, not the caller's", async(function()
        rawset(_G, "lasio_spec_global", "caller")
        local seen = lasio.to_thread(function()
            local before = lasio_spec_global -- luacheck: ignore
            lasio_spec_global = "worker" -- luacheck: ignore
            return before
        end)
        assert.is_nil(seen)
        assert.are.equal("caller", rawget(_G, "lasio_spec_global"))
        rawset(_G, "lasio_spec_global", nil)
    end))

    it("brings errors back as errors, with the worker's message and value", async(function()
        local ok, err = pcall(lasio.to_thread, function() error("boom") end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("boom", 1, true))
        ok, err = pcall(lasio.to_thread, function() error({code = 7, why = "x"}) end)
        assert.is_false(ok)
        assert.are.same({code = 7, why = "x"}, err)
        -- a table error comes back without its metatable (not copied)
        ok, err = pcall(lasio.to_thread, function()
            error(setmetatable({}, {__tostring = function() return "obj" end}))
        end)
        assert.is_false(ok)
        assert.are.same({}, err)
        assert.is_nil(getmetatable(err))
        ok, err = pcall(lasio.to_thread, function() error(io.stdout) end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("file", 1, true))
        -- a result that cannot be copied fails the call
        ok, err = pcall(lasio.to_thread, function() return print end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("result 1: cannot copy a function value", 1, true))
    end))

    it("refuses bad arguments with clear errors, at once", async(function()
        local function f() end
        local up = 1
        local cycle = {}
        cycle.me = {cycle}
        local deep = {}
        for _ = 1, 200 do deep = {deep} end
        local cases = {
            {{f, print}, "argument 2: cannot copy a function value"},
            {{f, 1, io.stdout}, "argument 3: cannot copy a userdata value"},
            {{f, {co = coroutine.create(f)}}, "argument 2: cannot copy a thread value"},
            {{f, {[{}] = 1}}, "argument 2: cannot copy a table key"},
            {{f, cycle}, "argument 2: cannot copy a table that contains itself"},
            {{f, deep}, "argument 2: tables nested too deeply"},
            {{function() return up end}, "must not use local variables of its caller (upvalue 'up')"},
            {{print}, "a C function cannot run in a thread"},
            {{42}, "function expected"},
        }
        for _, c in ipairs(cases) do
            local ok, err = pcall(lasio.to_thread, table.unpack(c[1]))
            assert.is_false(ok)
            assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
        end
    end))

    it("keeps worker states text-only: binary chunks are refused there", async(function()
        local ok, msg = lasio.to_thread(function()
            local f, err = load(string.dump(function() return 1 end))
            return f == nil, err
        end)
        assert.is_true(ok)
        assert.truthy(msg:find("binary chunk", 1, true))
    end))

    it("needs a task", function()
        if helper.mode ~= "lua5.4" then return end -- specs run in a task there
        assert.has_error(function() lasio.to_thread(function() end) end,
            "lasio.to_thread: not inside a task (use lasio.run or the lasio command)")
    end)

    it("cancelling the awaiting task does not corrupt the worker; later jobs run normally",
        async(function()
            local flag = os.tmpname()
            os.remove(flag)
            local function wait_for_file(path)
                while true do
                    local f = io.open(path)
                    if f then f:close() return "released" end
                end
            end
            local t = lasio.spawn(lasio.to_thread, wait_for_file, flag)
            lasio.sleep(0.02)
            assert.is_true(t:cancel())
            local ok, err = pcall(t.await, t)
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(err))
            -- a job still queued behind busy workers is dropped when cancelled
            local busy = {}
            for i = 1, 4 do busy[i] = lasio.spawn(lasio.to_thread, wait_for_file, flag) end
            local queued = lasio.spawn(lasio.to_thread, function() return "ran" end)
            lasio.sleep(0.02)
            queued:cancel()
            io.open(flag, "w"):close()
            for i = 1, 4 do assert.are.equal("released", busy[i]:await()) end
            os.remove(flag)
            -- every worker still works
            local results = {}
            for i = 1, 8 do results[i] = lasio.spawn(lasio.to_thread, function(x) return x * 2 end, i) end
            for i = 1, 8 do assert.are.equal(2 * i, results[i]:await()) end
        end))

    it("a burst after the first job runs in parallel: the pool grows past an idle worker",
        async(function()
            lasio.to_thread(function() end) -- the pool now has one idle worker
            local base = os.tmpname()
            -- each job marks its arrival, then waits for the other two: run
            -- one after the other, the first one would give up
            local function meet(prefix, me, n, limit)
                io.open(prefix .. me, "w"):close()
                local deadline = os.time() + limit
                repeat
                    local all = true
                    for i = 1, n do
                        local f = io.open(prefix .. i)
                        if f then f:close() else all = false end
                    end
                    if all then return true end
                until os.time() > deadline
                return false
            end
            local jobs = {}
            for i = 1, 3 do
                jobs[i] = lasio.spawn(lasio.to_thread, meet, base, i, 3, math.ceil(helper.t(10)))
            end
            for i = 1, 3 do assert.is_true(jobs[i]:await(), "job " .. i .. " met the others") end
            for i = 1, 3 do os.remove(base .. i) end
            os.remove(base)
        end))

    it("runs 1000 jobs from 100 tasks and delivers each result to its caller", async(function()
        local tasks = {}
        for i = 1, 100 do
            tasks[i] = lasio.spawn(function()
                local sum = 0
                for j = 1, 10 do
                    sum = sum + lasio.to_thread(function(a, b) return a * b end, i, j)
                end
                return sum
            end)
        end
        for i = 1, 100 do assert.are.equal(55 * i, tasks[i]:await()) end
    end))
end)

describe("lasio.to_thread and the loop", function()
    it("a pending job is a wake-up source: no deadlock report while it runs", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
print(lasio.to_thread(function()
    local t = os.time() + 1
    local n = 0
    while os.time() < t do n = n + 1 end
    return "done"
end))
]])
        assert.are.equal(0, status, err)
        assert.are.equal("done\n", out)
    end)

    it("closing the state stops a worker stuck in a Lua loop (lua_close, os.exit(0, true))", function()
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    lasio.spawn(lasio.to_thread, function() while true do end end)
    lasio.sleep(0.05)
    print("closing")
    io.stdout:flush()
    os.exit(0, true)
end)
]], {interp = interp, timeout = helper.t(20)})
            assert.are.equal(0, status, err)
            assert.are.equal("closing\n", out)
        end
    end)

    it("loop:close() joins the workers", function()
        if helper.mode ~= "lua5.4" then return end -- needs a loop driven by hand
        local loop = lasio.new_event_loop()
        assert.are.equal(6, loop:run_until_complete(function()
            return lasio.to_thread(function() return 6 end)
        end))
        loop:run_until_complete(function()
            lasio.spawn(lasio.to_thread, function() while true do end end)
            lasio.sleep(0.02)
        end)
        loop:close() -- returns: the running job was interrupted
        assert.is_true(loop:is_closed())
    end)
end)

describe("loop:run_in_executor", function()
    it("returns a Future of fn's results, run in the worker pool", async(function()
        local loop = lasio.get_running_loop()
        local fut = loop:run_in_executor(nil, function(a, b) return a * b, "w" end, 6, 7)
        assert.is_true(lasio.isfuture(fut))
        local x, y = fut:await()
        assert.are.equal(42, x)
        assert.are.equal("w", y)
        local failing = loop:run_in_executor(nil, function() error("bad", 0) end)
        assert.are.equal("bad", raises(failing.await, failing))
    end))

    it("checks its arguments at once with to_thread's rules", async(function()
        local loop = lasio.get_running_loop()
        local up = 1
        assert.has_error(function() loop:run_in_executor({}, function() end) end,
            "loop:run_in_executor: executor must be nil (the loop's worker pool), got table")
        assert.has_error(function() loop:run_in_executor(nil, 42) end,
            "loop:run_in_executor: fn: function expected, got number")
        local e = raises(loop.run_in_executor, loop, nil, print)
        assert.truthy(tostring(e):find("a C function cannot run in a thread", 1, true))
        e = raises(loop.run_in_executor, loop, nil, function() return up end)
        assert.truthy(tostring(e):find("upvalue 'up'", 1, true))
        e = raises(loop.run_in_executor, loop, nil, function() end, 1, io.stdout)
        assert.truthy(tostring(e):find("loop:run_in_executor: argument 5: cannot copy a userdata value", 1, true))
        local closed = lasio.new_event_loop()
        closed:close()
        assert.has_error(function() closed:run_in_executor(nil, function() end) end,
            "loop:run_in_executor: the loop is closed")
    end))
end)

describe("loop:call_soon_threadsafe", function()
    it("lets Lua code in a worker post calls to the loop, before the job's result", async(function()
        local loop = lasio.get_running_loop()
        rawset(_G, "lasio_spec_progress", {})
        local got = lasio.to_thread(function(lp, n)
            for i = 1, n do
                lp:call_soon_threadsafe(function(k, t)
                    local p = lasio_spec_progress -- luacheck: ignore
                    p[#p + 1] = k .. t.mark
                end, i, {mark = "!"})
            end
            return tostring(lp)
        end, loop, 3)
        assert.are.equal("lasio.Loop<handle in a worker thread>", got)
        assert.are.same({"1!", "2!", "3!"}, rawget(_G, "lasio_spec_progress"))
        -- the same through run_in_executor, the loop nested in a table
        rawset(_G, "lasio_spec_progress", {})
        loop:run_in_executor(nil, function(t)
            t.loop:call_soon_threadsafe(function() lasio_spec_progress[1] = "posted" end) -- luacheck: ignore
        end, {loop = loop}):await()
        assert.are.same({"posted"}, rawget(_G, "lasio_spec_progress"))
        rawset(_G, "lasio_spec_progress", nil)
    end))

    it("is call_soon on the loop's own thread", async(function()
        local loop = lasio.get_running_loop()
        local got = lasio.Future()
        local h = loop:call_soon_threadsafe(function(v) got:set_result(v) end, 5)
        assert.truthy(tostring(h):find("lasio.Handle", 1, true))
        assert.are.equal(5, got:await())
    end))

    it("an error in a posted call reaches the loop's exception handler", async(function()
        helper.capture_exceptions(function(seen)
            lasio.to_thread(function(lp)
                lp:call_soon_threadsafe(function() error("posted failed", 0) end)
            end, lasio.get_running_loop())
            lasio.sleep(0)
            assert.are.equal("posted failed", seen[1].exception)
        end)
    end))

    it("a loop closed for the script drops posted calls; the job's result still comes", function()
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    loop:close() -- the loop is running: closed for the script, for good at its end
    print(lasio.to_thread(function(lp)
        lp:call_soon_threadsafe(function() print("posted call ran") end)
        return "job done"
    end, loop))
    lasio.sleep(0.01)
end)
]], {interp = interp})
            assert.are.equal(0, status, err)
            assert.are.equal("job done\n", out)
            assert.are.equal("", err)
        end
    end)

    it("refuses what cannot cross, in the worker and at the call", async(function()
        local loop = lasio.get_running_loop()
        local cases = {
            {function(lp) lp:call_soon_threadsafe(print) end,
                "loop:call_soon_threadsafe: fn: a C function cannot run in a thread"},
            {function(lp) local x = 1; lp:call_soon_threadsafe(function() return x end) end,
                "loop:call_soon_threadsafe: fn: the function must not use local variables of its caller (upvalue 'x')"},
            {function(lp) lp:call_soon_threadsafe(function() end, 1, io.stdout) end,
                "loop:call_soon_threadsafe: argument 4: cannot copy a userdata value"},
            {function(lp) lp:call_soon_threadsafe(42) end,
                "loop:call_soon_threadsafe: fn: function expected, got number"},
            {function(lp) return lp end, "result 1: cannot copy a userdata value"},
        }
        for _, c in ipairs(cases) do
            local e = raises(lasio.to_thread, c[1], loop)
            assert.truthy(tostring(e):find(c[2], 1, true), tostring(e))
        end
        local other = lasio.new_event_loop()
        local e = raises(lasio.to_thread, function() end, other)
        assert.truthy(tostring(e):find(
            "lasio.to_thread: argument 2: cannot copy a loop other than the one the job belongs to", 1, true),
            tostring(e))
        other:close()
        -- the loop still takes posts afterwards
        lasio.to_thread(function(lp) lp:call_soon_threadsafe(function() end) end, loop)
    end))
end)
