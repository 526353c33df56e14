-- lasio.Runner (asyncio.Runner) and lasio.ensure_future: a loop kept
-- across runs, closed with its tasks finished; bad arguments.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async
local raises = helper.raises

describe("lasio.ensure_future", function()
    it("returns a Future or Task unchanged and starts a function as a Task", async(function()
        local fut = lasio.Future()
        assert.are.equal(fut, lasio.ensure_future(fut))
        local t = lasio.spawn(function() return 1 end)
        assert.are.equal(t, lasio.ensure_future(t, lasio.get_running_loop()))
        local made = lasio.ensure_future(function() return "ran" end)
        assert.is_true(lasio.isfuture(made))
        assert.are.equal("ran", made:await())
    end))

    it("refuses what is not awaitable, a bad loop and a Future of another loop", async(function()
        assert.has_error(function() lasio.ensure_future(42) end,
            "lasio.ensure_future: expected an awaitable (a Future, Task or function), got number")
        assert.has_error(function() lasio.ensure_future(function() end, "loop") end,
            "lasio.ensure_future: loop must be a loop or nil, got string")
        local other = lasio.new_event_loop()
        assert.has_error(function() lasio.ensure_future(lasio.Future(), other) end,
            "lasio.ensure_future: the Future belongs to another loop")
        other:close()
    end))
end)

describe("lasio.Runner", function()
    it("runs several functions on one loop, then closes it with its tasks finished", function()
        if helper.mode ~= "lua5.4" then return end -- the command's loop is borrowed
        local cleaned = false
        local loop
        do
            local runner <close> = lasio.Runner({debug = true})
            loop = runner:get_loop()
            assert.is_true(loop:get_debug())
            assert.are.equal(3, runner:run(function(a, b) return a + b end, 1, 2))
            runner:run(function()
                assert.are.equal(loop, lasio.get_running_loop())
                lasio.spawn(function()
                    local ok = pcall(lasio.sleep, 10)
                    cleaned = not ok
                end)
                lasio.sleep(0)
            end)
            assert.are.equal(loop, runner:get_loop())
            assert.are.equal(loop, lasio.get_event_loop())
            -- an error passes out of run, the runner stays usable
            local err = raises(runner.run, runner, function() error("boom", 0) end)
            assert.are.equal("boom", err)
            assert.are.equal("lasio.Runner<initialized>", tostring(runner))
        end
        assert.is_true(cleaned)
        assert.is_true(loop:is_closed())
        assert.are_not.equal(loop, lasio.get_event_loop())
    end)

    it("borrows a running loop and leaves it open", async(function()
        local runner = lasio.Runner()
        assert.are.equal(lasio.get_running_loop(), runner:get_loop())
        assert.are.equal("x", runner:run(function(v) lasio.sleep(0) return v end, "x"))
        runner:close()
        assert.is_false(lasio.get_running_loop():is_closed())
    end))

    it("refuses misuse: closed runner, bad arguments, a run inside another loop's run", function()
        assert.has_error(function() lasio.Runner(1) end,
            "lasio.Runner: opts must be a table or nil, got number")
        assert.has_error(function() lasio.Runner({debug = "yes"}) end,
            "lasio.Runner: opts.debug must be a boolean or nil, got string")
        local r = lasio.Runner()
        assert.has_error(function() r:run(42) end, "runner:run: fn must be a function, got number")
        r:close()
        r:close() -- twice is fine
        assert.has_error(function() r:run(function() end) end, "runner:run: the Runner is closed")
        assert.has_error(function() r:get_loop() end, "runner:get_loop: the Runner is closed")
        if helper.mode ~= "lua5.4" then return end
        local outer = lasio.Runner()
        local inner = lasio.Runner()
        inner:get_loop() -- a loop of its own, made while none runs
        local err = raises(outer.run, outer, function()
            inner:run(function() end)
        end)
        assert.truthy(tostring(err):find("runner:run: cannot be called from a running event loop", 1, true))
        inner:close()
        outer:close()
    end)
end)
