-- The loop's task factory and eager tasks (docs/API.md, Loop: task
-- factory): asyncio's set_task_factory / get_task_factory and 3.12's
-- eager_task_factory / create_eager_task_factory.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"

local raises = helper.raises

-- Runs fn as a task with the factory set on the running loop, and the
-- factory taken off again afterwards (also when fn fails).
local function with_factory(factory, fn)
    return helper.async(function()
        local loop = lasio.get_running_loop()
        loop:set_task_factory(factory)
        local ok, err = pcall(fn, loop)
        loop:set_task_factory(nil)
        if not ok then error(err, 0) end
    end)
end

describe("eager_task_factory", function()
    it("runs a new task at once, up to its first suspension", with_factory(
        lasio.eager_task_factory, function()
            local log = {}
            local t = lasio.spawn(function(x)
                log[#log + 1] = "start " .. x
                lasio.sleep(0)
                log[#log + 1] = "resumed"
                return x * 2
            end, 21)
            log[#log + 1] = "spawn returned"
            assert.is_false(t:done())
            assert.are.equal(42, t:await())
            assert.are.same({"start 21", "spawn returned", "resumed"}, log)
        end))

    it("finishes a task that never suspends inside the spawn; done callbacks still wait for the loop",
        with_factory(lasio.eager_task_factory, function()
            local log = {}
            local t = lasio.spawn(function() return "now", 2 end)
            assert.is_true(t:done())
            assert.are.same({"now", 2}, {t:result()})
            t:add_done_callback(function() log[#log + 1] = "callback" end)
            log[#log + 1] = "after add_done_callback"
            lasio.sleep(0)
            assert.are.same({"after add_done_callback", "callback"}, log)
        end))

    it("makes the new task the current one while it runs, then the spawner again",
        with_factory(lasio.eager_task_factory, function()
            local me = lasio.current_task()
            local inside
            local t = lasio.spawn(function() inside = lasio.current_task() end)
            assert.are.equal(t, inside)
            assert.are.equal(me, lasio.current_task())
        end))

    it("keeps a task's error in the task; the spawner goes on", with_factory(
        lasio.eager_task_factory, function()
            local t = lasio.spawn(function() error("boom", 0) end)
            assert.is_true(t:done())
            assert.are.equal("boom", raises(function() t:await() end))
        end))

    it("is cancelled like any task once it suspended", with_factory(
        lasio.eager_task_factory, function()
            local cleaned = false
            local t = lasio.spawn(function()
                local _ <close> = setmetatable({}, {__close = function() cleaned = true end})
                lasio.sleep(10)
            end)
            assert.is_true(t:cancel())
            assert.is_true(helper.is_cancelled(raises(function() t:await() end)))
            assert.is_true(t:cancelled())
            assert.is_true(cleaned)
        end))

    it("starts nested eager tasks depth first", with_factory(
        lasio.eager_task_factory, function()
            local log = {}
            local outer = lasio.spawn(function()
                log[#log + 1] = "outer"
                local inner = lasio.spawn(function()
                    log[#log + 1] = "inner"
                    lasio.sleep(0)
                    log[#log + 1] = "inner resumed"
                end)
                log[#log + 1] = "outer after inner"
                inner:await()
            end)
            log[#log + 1] = "main"
            outer:await()
            assert.are.same({"outer", "inner", "outer after inner", "main",
                "inner resumed"}, log)
        end))

    it("applies to loop:create_task and to lasio.await of a function", with_factory(
        lasio.eager_task_factory, function(loop)
            local ran = false
            local t = loop:create_task(function() ran = true end)
            assert.is_true(ran and t:done())
            assert.are.equal(7, lasio.await(function() return 7 end))
        end))

    it("schedules the task normally on a loop that is not running", function()
        local out, err, status = helper.run_child([[
            local lasio = require "lasio"
            local loop = lasio.new_event_loop()
            loop:set_task_factory(lasio.eager_task_factory)
            local ran = false
            local t = loop:create_task(function() ran = true; return 5 end)
            print(ran, t:done())
            print(loop:run_until_complete(t), ran)
            loop:close()
        ]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.are.equal("false\tfalse\n5\ttrue\n", out)
    end)

    it("refuses a bad loop or function with the function's name", function()
        local msg = raises(function() lasio.eager_task_factory(42, print) end)
        assert.matches("bad argument #1 to 'eager_task_factory'", msg)
        msg = raises(function()
            lasio.eager_task_factory(lasio.get_event_loop(), 42)
        end)
        assert.matches("bad argument #2 to 'eager_task_factory'", msg)
    end)
end)

describe("set_task_factory", function()
    it("routes spawn, create_task and await of a function through the factory",
        with_factory(function(loop, fn, ...)
            local t = loop:create_task(fn, ...) -- no recursion: a plain task
            t:set_name("made-by-factory")
            return t
        end, function(loop)
            local t = lasio.spawn(function(a, b) return a + b end, 1, 2)
            assert.are.equal("made-by-factory", t:get_name())
            assert.are.equal(3, t:await())
            assert.are.equal("made-by-factory", loop:create_task(function() end):get_name())
            assert.are.equal(4, lasio.await(function() return 4 end))
        end))

    it("is read back by get_task_factory; nil restores the default", helper.async(function()
        local loop = lasio.get_running_loop()
        assert.is_nil(loop:get_task_factory())
        loop:set_task_factory(lasio.eager_task_factory)
        assert.are.equal(lasio.eager_task_factory, loop:get_task_factory())
        loop:set_task_factory(nil)
        assert.is_nil(loop:get_task_factory())
        local ran = false
        local t = lasio.spawn(function() ran = true end)
        assert.is_false(ran) -- scheduled again, not eager
        t:await()
    end))

    it("refuses a factory that is not callable, naming the method", helper.async(function()
        local loop = lasio.get_running_loop()
        local msg = raises(function() loop:set_task_factory(42) end)
        assert.matches("loop:set_task_factory: factory must be a function or nil, got number", msg)
        local callable = setmetatable({}, {__call = function(_, l, fn)
            return l:create_task(fn)
        end})
        loop:set_task_factory(callable)
        assert.are.equal(1, lasio.spawn(function() return 1 end):await())
        loop:set_task_factory(nil)
    end))

    it("reports a factory that returns no Task, or fails, to the caller", with_factory(
        function(_, fn)
            if fn == print then error("factory refused", 0) end
            return 42
        end, function()
            local msg = raises(function() lasio.spawn(function() end) end)
            assert.matches("lasio.spawn: the loop's task factory returned number, not a Task", msg)
            assert.are.equal("factory refused", raises(function() lasio.spawn(print) end))
        end))
end)

describe("create_eager_task_factory", function()
    it("starts the task its constructor made at once", helper.async(function()
        local loop = lasio.get_running_loop()
        local seen
        loop:set_task_factory(lasio.create_eager_task_factory(function(l, fn, ...)
            seen = {l, select("#", ...)}
            local t = l:create_task(fn, ...)
            t:set_name("eager-named")
            return t
        end))
        local ran_in
        local t = lasio.spawn(function(a) ran_in = lasio.current_task():get_name(); return a end, 9)
        loop:set_task_factory(nil)
        assert.are.same({loop, 1}, seen)
        assert.are.equal("eager-named", ran_in)
        assert.is_true(t:done())
        assert.are.equal(9, t:result())
    end))

    it("refuses a constructor that returns something else; the task it made never runs",
        helper.async(function()
            local loop = lasio.get_running_loop()
            local made
            local ran = false
            loop:set_task_factory(lasio.create_eager_task_factory(function(l, fn)
                made = l:create_task(fn)
                return "not the task"
            end))
            local msg = raises(function() lasio.spawn(function() ran = true end) end)
            loop:set_task_factory(nil)
            assert.matches("create_eager_task_factory: the constructor must return "
                .. "the task it made on the loop, got string", msg)
            assert.is_true(helper.is_cancelled(raises(function() made:await() end)))
            assert.is_false(ran)
            assert.matches("bad argument #1 to 'create_eager_task_factory'",
                raises(function() lasio.create_eager_task_factory(1) end))
        end))
end)
