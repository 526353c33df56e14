-- Specs for diagnostics: errors never retrieved (F10), tasks
-- destroyed while pending, the main task's uncaught error and the exit
-- statuses of the lasio command, and the deadlock report.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local LUA = "lua5.4"

-- Counts the "never retrieved" reports in seen; with `needle`, only those
-- whose error is `needle` or whose text contains it (under the lasio command
-- the loop is shared with every other spec file).
local function never_retrieved(seen, needle)
    local n, ctx = 0, nil
    for _, c in ipairs(seen) do
        local mine = needle == nil or c.exception == needle
            or (type(needle) == "string"
                and tostring(c.exception):find(needle, 1, true))
        if mine and tostring(c.message):lower():find("never retrieved", 1, true) then
            n, ctx = n + 1, c
        end
    end
    return n, ctx
end

-- Collects garbage and lets the loop turn a few times, so reports made by
-- finalizers (directly or through call_soon) are delivered.
local function settle()
    for _ = 1, 4 do
        collectgarbage()
        collectgarbage()
        lasio.sleep(0.001)
    end
end

describe("never retrieved errors (F10)", function()
    -- These leave errors truly unretrieved, which makes the lasio command
    -- exit 4 at the end; so they run in a child, not in the spec process.
    local GC_REPORTS = [[
local lasio = require "lasio"
local function settle()
    for _ = 1, 4 do
        collectgarbage()
        collectgarbage()
        lasio.sleep(0.001)
    end
end
lasio.run(function()
    local loop = lasio.get_running_loop()
    local seen = {}
    loop:set_exception_handler(function(l, ctx) seen[#seen + 1] = ctx end)
    local err = { tag = "lost-task-error" }
    local finished = false
    do
        lasio.spawn(function()
            finished = true
            local function failing_body_fn() error(err) end
            failing_body_fn()
        end)
    end
    while not finished do lasio.sleep(0.001) end
    settle()
    settle()
    do
        local fut = lasio.Future()
        fut:set_exception("lost-future-error")
    end
    settle()
    settle()
    loop:set_exception_handler(nil)
    print("reports", #seen)
    for i, c in ipairs(seen) do
        local f = c.future or c.task
        print(("report %d|%s|%s|%s|%s|%s"):format(i,
            tostring(c.message):lower():find("never retrieved", 1, true) and "never-retrieved" or tostring(c.message),
            rawequal(c.exception, err) and "task-error" or tostring(c.exception),
            f and tostring(f):match("^lasio%.(%a+)<") or "nil",
            type(c.traceback) == "string" and c.traceback:find("failing_body_fn", 1, true) and "tb-ok" or "tb-missing",
            (f and f.get_name) and f:get_name() or "-"))
    end
end)
]]

    for _, interp in ipairs(helper.interps) do
        -- covers F10
        it("a failed task and a failed Future nobody retrieves are reported once each when collected ("
            .. interp .. ")", function()
            local out, err, status = helper.run_child(GC_REPORTS, { interp = interp })
            -- exit 4 (an error never retrieved) is the lasio command's
            -- business, checked below; here only the reports count.
            assert.is_true(status == 0 or (interp ~= "lua5.4" and status == 4),
                "status " .. tostring(status) .. ": " .. err)
            assert.truthy(out:find("reports\t2\n"), out)
            assert.truthy(out:find("|never-retrieved|task-error|Task|tb-ok|", 1, true), out)
            assert.truthy(out:find("|never-retrieved|lost-future-error|Future|", 1, true), out)
        end)
    end

    it("no report when the task was awaited", async(function()
        local seen = helper.capture_exceptions(function()
            do
                local t = lasio.spawn(function() error("awaited-error") end)
                assert.is_false(pcall(t.await, t))
            end
            settle()
        end)
        assert.are.equal(0, (never_retrieved(seen, "awaited-error")))
    end))

    it("no report when result() or exception() retrieved the error", async(function()
        local seen = helper.capture_exceptions(function()
            do
                local a = lasio.Future()
                a:set_exception("e1")
                assert.is_false(pcall(a.result, a))
                local b = lasio.Future()
                b:set_exception("e2")
                assert.are.equal("e2", b:exception())
                local t = lasio.spawn(function() error("e3") end)
                lasio.sleep(0)
                lasio.sleep(0)
                assert.is_true(t:done())
                assert.truthy(tostring(t:exception()):find("e3", 1, true))
            end
            settle()
        end)
        assert.are.equal(0, (never_retrieved(seen, "e1")))
        assert.are.equal(0, (never_retrieved(seen, "e2")))
        assert.are.equal(0, (never_retrieved(seen, "e3")))
    end))

    -- Reports that are wrong whoever made the object: about a cancelled or
    -- successful future or task, or carrying a CancelledError.
    local function reports_about(seen)
        local n = 0
        for _, c in ipairs(seen) do
            local f = c.future or c.task
            if lasio.CancelledError:is(c.exception) then
                n = n + 1
            elseif f and f.done and f:done()
                and (f:cancelled() or f:exception() == nil) then
                n = n + 1
            end
        end
        return n
    end

    it("no report when the task was cancelled", async(function()
        local seen = helper.capture_exceptions(function()
            do
                local t = lasio.spawn(function() lasio.sleep(10) end)
                lasio.sleep(0)
                t:cancel()
                lasio.sleep(0)
                lasio.sleep(0)
                assert.is_true(t:cancelled())
                local f = lasio.Future()
                f:cancel()
                local never_started = lasio.spawn(function() end)
                never_started:cancel()
            end
            settle()
        end)
        assert.are.equal(0, reports_about(seen))
    end))

    it("no report for successful tasks and futures", async(function()
        local seen = helper.capture_exceptions(function()
            do
                lasio.spawn(function() return 1 end)
                local f = lasio.Future()
                f:set_result(1)
            end
            lasio.sleep(0)
            settle()
        end)
        assert.are.equal(0, reports_about(seen))
    end))

    do
        it("at loop close, once, through the default handler", function()
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
KEEP = loop:create_task(function() error("close-time-lost-error") end)
loop:run_until_complete(function() lasio.sleep(0.005) end)
loop:close()
collectgarbage()
collectgarbage()
print("closed")
]], { interp = LUA })
            assert.are.equal(0, status, err)
            assert.truthy(out:find("closed", 1, true))
            assert.are.equal(1, helper.count(err:lower(), "never retrieved"), err)
            assert.truthy(err:find("close-time-lost-error", 1, true), err)
        end)
    end

    it("at loop close, through a custom handler with the task in the context", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local reports = {}
loop:set_exception_handler(function(l, ctx) reports[#reports + 1] = ctx end)
KEEP = loop:create_task(function() error({ tag = "lost" }) end)
loop:run_until_complete(function() lasio.sleep(0.005) end)
loop:close()
collectgarbage()
collectgarbage()
print("n", #reports)
local c = reports[1] or {}
print("msg", c.message)
print("exc", type(c.exception) == "table" and c.exception.tag)
print("task", rawequal(c.future or c.task, KEEP))
]], { interp = LUA })
        assert.are.equal(0, status, err)
        assert.truthy(out:find("n\t1\n", 1, true), out)
        assert.truthy(out:lower():find("never retrieved", 1, true), out)
        assert.truthy(out:find("exc\tlost", 1, true), out)
        assert.truthy(out:find("task\ttrue", 1, true), out)
    end)
end)

describe("pending tasks at loop close", function()
    it("are reported: Task was destroyed but it is pending!", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local reports = {}
loop:set_exception_handler(function(l, ctx) reports[#reports + 1] = ctx end)
local stuck = loop:create_task(function() lasio.sleep(1000) end)
loop:run_until_complete(function() lasio.sleep(0.005) end)
loop:close()
collectgarbage()
print("n", #reports)
local c = reports[1] or {}
print("msg", c.message)
print("task", rawequal(c.task or c.future, stuck))
]], { interp = LUA })
        assert.are.equal(0, status, err)
        assert.truthy(out:find("n\t1\n", 1, true), out)
        assert.truthy(out:find("msg\tTask was destroyed but it is pending!", 1, true), out)
        assert.truthy(out:find("task\ttrue", 1, true), out)
    end)

    it("the default handler prints it to stderr", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local stuck = loop:create_task(function() lasio.sleep(1000) end)
loop:run_until_complete(function() lasio.sleep(0.005) end)
loop:close()
print("closed")
]], { interp = LUA })
        assert.are.equal(0, status, err)
        assert.are.equal("closed\n", out)
        assert.are.equal(1, helper.count(err, "Task was destroyed but it is pending!"), err)
    end)

    it("lasio.run cancels leftovers, so nothing is reported", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    lasio.spawn(function() lasio.sleep(1000) end)
    lasio.sleep(0.005)
end)
print("done")
]], { interp = LUA })
        assert.are.equal(0, status, err)
        assert.truthy(out:find("done", 1, true))
        assert.are.equal("", err)
    end)
end)

describe("the lasio command", function()
    it("an uncaught error in the main task: exit 1, message, traceback and task name", function()
        local out, err, status = helper.run_child([[
print("name=" .. lasio.current_task():get_name())
io.stdout:flush()
local function failing_function_name()
    error("main-task-kaboom")
end
failing_function_name()
]])
        assert.are.equal(1, status, err)
        local name = out:match("name=([^\n]+)")
        assert.is_not_nil(name, out)
        assert.truthy(err:find("main-task-kaboom", 1, true), err)
        assert.truthy(err:find("traceback", 1, true), err)
        assert.truthy(err:find("failing_function_name", 1, true), err)
        assert.truthy(err:find(name, 1, true), "task name missing: " .. err)
    end)

    it("the report uses a name set by the script", function()
        local _, err, status = helper.run_child([[
lasio.current_task():set_name("my-main-task")
error("named-failure")
]])
        assert.are.equal(1, status, err)
        assert.truthy(err:find("my-main-task", 1, true), err)
        assert.truthy(err:find("named-failure", 1, true), err)
    end)

    it("an error object (table with __tostring) is printed readably", function()
        local _, err, status = helper.run_child([[
error(lasio.TimeoutError("timed-out-obj"))
]])
        assert.are.equal(1, status, err)
        assert.truthy(err:find("TimeoutError: timed-out-obj", 1, true), err)
    end)

    it("when the main task fails, other tasks are cancelled and cleaned up", function()
        local out, err, status = helper.run_child([[
lasio.spawn(function()
    local _ <close> = setmetatable({}, { __close = function()
        print("cleanup-ran")
    end })
    lasio.sleep(1000)
end)
lasio.sleep(0.005)
error("main-failed")
]])
        assert.are.equal(1, status, err)
        assert.truthy(out:find("cleanup-ran", 1, true), out)
    end)

    it("exit 4 when a task's error was never retrieved", function()
        local out, err, status = helper.run_child([[
KEEP = lasio.spawn(function() error("exit4-lost") end)
lasio.sleep(0.005)
print("main-ok")
]])
        assert.are.equal(4, status, err)
        assert.truthy(out:find("main-ok", 1, true))
        assert.truthy(err:find("exit4-lost", 1, true), err)
        assert.are.equal(1, helper.count(err:lower(), "never retrieved"), err)
    end)

    it("exit 4 also when the failed task was collected before the end", function()
        local out, err, status = helper.run_child([[
do lasio.spawn(function() error("collected-lost") end) end
lasio.sleep(0.005)
for _ = 1, 3 do collectgarbage() lasio.sleep(0.001) end
print("main-ok")
]])
        assert.are.equal(4, status, err)
        assert.are.equal("main-ok\n", out)
        assert.are.equal(1, helper.count(err:lower(), "never retrieved"), err)
    end)

    it("exit 0 when every error was retrieved", function()
        local out, err, status = helper.run_child([[
local t = lasio.spawn(function() error("retrieved") end)
print(pcall(t.await, t))
]])
        assert.are.equal(0, status, err)
        assert.matches("^false\t.*retrieved\n$", out)
        assert.are.equal("", err)
    end)

    -- the deadlock report
    it("a main task blocked forever: exit 5, deadlock report with name and stack", function()
        local _, err, status = helper.run_child([[
lasio.current_task():set_name("main-stuck")
local function waiting_forever_here()
    lasio.Future():await()
end
waiting_forever_here()
]])
        assert.are_not.equal(124, status, "hung instead of reporting: " .. err)
        assert.are.equal(5, status, err)
        assert.truthy(err:lower():find("deadlock", 1, true), err)
        assert.truthy(err:find("main-stuck", 1, true), err)
        assert.truthy(err:find("waiting_forever_here", 1, true), err)
    end)

    it("lists every stuck task, also after the main task finished", function()
        local out, err, status = helper.run_child([[
local f = lasio.Future()
local a = lasio.spawn(function()
    local function stuck_in_worker_a() f:await() end
    stuck_in_worker_a()
end)
a:set_name("worker-a")
local b = lasio.spawn(function()
    local function stuck_in_worker_b() a:await() end
    stuck_in_worker_b()
end)
b:set_name("worker-b")
lasio.sleep(0.005)
print("main-done")
]])
        assert.are_not.equal(124, status, "hung instead of reporting: " .. err)
        assert.are.equal(5, status, err)
        assert.truthy(out:find("main-done", 1, true))
        assert.truthy(err:lower():find("deadlock", 1, true), err)
        assert.truthy(err:find("worker-a", 1, true), err)
        assert.truthy(err:find("worker-b", 1, true), err)
        assert.truthy(err:find("stuck_in_worker_a", 1, true), err)
        assert.truthy(err:find("stuck_in_worker_b", 1, true), err)
    end)

    it("a cancelled timer or a cancelled sleeper does not hide a deadlock", function()
        local _, err, status = helper.run_child([[
local loop = lasio.get_running_loop()
loop:call_later(100, print):cancel()
local sleeper = lasio.spawn(function() lasio.sleep(100) end)
lasio.sleep(0)
sleeper:cancel()
lasio.Future():await()
]], { timeout = helper.t(20) })
        assert.are_not.equal(124, status, "hung instead of reporting: " .. err)
        assert.are.equal(5, status, err)
        assert.truthy(err:lower():find("deadlock", 1, true), err)
    end)

    it("tasks waiting on a timer are not a deadlock", function()
        local out, err, status = helper.run_child([[
local f = lasio.Future()
lasio.get_running_loop():call_later(0.05, function() f:set_result("woken") end)
print(f:await())
]])
        assert.are.equal(0, status, err)
        assert.truthy(out:find("woken", 1, true))
    end)
end)

describe("lasio.run on a deadlock", function()
    it("raises the list of stuck tasks once: no second report as destroyed", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
local ok, e = pcall(lasio.run, function()
    local f = lasio.Future()
    lasio.spawn(function() f:await() end)
    local failed = lasio.spawn(function() error("never retrieved", 0) end)
    lasio.sleep(0)
    failed = nil -- luacheck: ignore
    f:await()
end)
print(ok, (tostring(e):gsub("\n.*", "")))
]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.truthy(out:find("^false\tlasio: deadlock: 2 task%(s%)"), out)
        assert.are.equal(0, helper.count(err, "destroyed but it is pending"), err)
        -- other diagnostics are still given
        assert.truthy(err:find("Task exception was never retrieved", 1, true), err)
    end)
end)
