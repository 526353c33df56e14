-- Every program under examples/ runs as a test, and its output is checked.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

-- Runs examples/<path> from the project root, so messages name the file.
local function run(path, interp)
    return helper.run_in_root(path, interp)
end

describe("examples", function()
    it("hello.lua spawns 10 000 sleeping tasks and sums their results", function()
        local out, err, status = run("examples/hello.lua")
        assert.are.equal(0, status, err)
        assert.are.equal("10000 tasks done, sum of squares = 333383335000\n", out)
    end)

    for _, name in ipairs({"seed_run_until_complete", "seed_run_forever"}) do
        for _, interp in ipairs({helper.lasio_bin, "lua5.4"}) do
            it(name .. ".lua prints the result under " .. interp, function()
                local out, err, status = run("examples/" .. name .. ".lua", interp)
                assert.are.equal(0, status, err)
                assert.are.equal("Future is done!\n", out)
                assert.are.equal("", err)
            end)
        end
    end

    it("failing_task.lua: status 1, the message and both tracebacks name the tasks", function()
        local out, err, status = run("examples/failing_task.lua")
        assert.are.equal(1, status)
        assert.are.equal("", out)
        assert.truthy(err:find("error in task Task-1 (main)", 1, true), err)
        assert.truthy(err:find("not a number: forty-two", 1, true), err)
        assert.truthy(err:find("raised in task parser", 1, true), err)
        assert.truthy(err:find("stack traceback:", 1, true), err)
    end)

    it("forgotten_future.lua: status 5 and the stuck tasks with their stacks", function()
        local out, err, status = run("examples/forgotten_future.lua")
        assert.are.equal(5, status)
        assert.are.equal("", out)
        assert.truthy(err:find("deadlock", 1, true), err)
        -- the one report format: what it waits on, its stack, where it was
        -- created and by whom, and who awaits it with the await site
        assert.truthy(err:find("task waiting-for-reply waits on Future (for ", 1, true), err)
        assert.truthy(err:find("forgotten_future.lua:7:", 1, true), err)
        assert.truthy(err:find("created at examples/forgotten_future.lua:", 1, true), err)
        assert.truthy(err:find("awaited by Task(name='Task-1 (main)', id=1) at "
            .. "examples/forgotten_future.lua:10, in main chunk", 1, true), err)
        -- listed once, not again as "destroyed but pending"
        assert.falsy(err:find("destroyed", 1, true), err)
    end)

    it("pipeline.lua shares a bounded queue's work among a pool under a task group", function()
        local out, err, status = run("examples/pipeline.lua")
        assert.are.equal(0, status, err)
        assert.are.equal("sum of squares 1..100 = 338350\n"
            .. "100 jobs done by 4 busy workers of 4\n", out)
    end)

    it("timers.lua runs callbacks in deadline order and skips the cancelled one", function()
        local out, err, status = run("examples/timers.lua")
        assert.are.equal(0, status, err)
        assert.are.equal("soon, at +10ms, later 30ms\nelapsed >= 50ms: true\n", out)
    end)
end)
