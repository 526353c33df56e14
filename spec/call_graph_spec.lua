-- Specs for await chains: task:created_at(), what a task waits on,
-- lasio.capture_call_graph / format_call_graph / print_call_graph
-- (asyncio 3.14's names and output shape) through gather, wait, wait_for,
-- shield and task groups, await cycles, and the one report format of
-- "never retrieved", "destroyed but pending" and deadlocks.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local core = require "lasio.core"
local async = helper.async

local waiting_on = core.internal.task_waiting_on
local THIS = debug.getinfo(1, "S").short_src

-- "file:line" of the caller's current line.
local function here()
    return THIS .. ":" .. debug.getinfo(2, "l").currentline
end

-- The task of each node of a graph, by following awaited_by[1].
local function chain(graph)
    local out = {}
    while graph do
        out[#out + 1] = graph.future
        graph = graph.awaited_by[1]
    end
    return out
end

-- The id of a task not renamed yet (its default name is Task-<id>).
local function id_of(t)
    return assert(tonumber(t:get_name():match("^Task%-(%d+)")), t:get_name())
end

-- Lets every task started so far run to its first await.
local function settle()
    for _ = 1, 5 do lasio.sleep(0) end
end

describe("task:created_at()", function()
    it("names the line of lasio.spawn and the task that ran it", async(function()
        local me = lasio.current_task()
        local t, line = lasio.spawn(function() end), here()
        local site, parent = t:created_at()
        assert.are.equal(line, site)
        assert.are.equal(me, parent)
        t:await()
    end))

    it("names the line of create_task and loop:create_task", async(function()
        local t1, l1 = lasio.create_task(function() end), here()
        local t2, l2 = lasio.get_running_loop():create_task(function() end), here()
        assert.are.equal(l1, (t1:created_at()))
        assert.are.equal(l2, (t2:created_at()))
        lasio.gather(t1, t2)
    end))

    it("names the user's tg:spawn line, never a line inside lasio", async(function()
        local me = lasio.current_task()
        local t, line
        do
            local tg <close> = lasio.TaskGroup()
            t, line = tg:spawn(function() end), here()
        end
        local site, parent = t:created_at()
        assert.are.equal(line, site)
        -- the group's parent task was still pending: the Task itself
        assert.are.equal(me, parent)
    end))

    it("names the user's line for tasks the combinators start", async(function()
        local seen = {}
        local function record() seen[#seen + 1] = lasio.current_task() end
        local line = here(); lasio.gather(record, record)
        local wline = here(); lasio.wait_for(record, 10)
        local sline = here(); lasio.shield(record):await()
        assert.are.equal(line, (seen[1]:created_at()))
        assert.are.equal(line, (seen[2]:created_at()))
        assert.are.equal(wline, (seen[3]:created_at()))
        assert.are.equal(sline, (seen[4]:created_at()))
    end))

    it("names the user's line for tasks of the eager factory", async(function()
        local loop = lasio.get_running_loop()
        loop:set_task_factory(lasio.eager_task_factory)
        local ok, err = pcall(function()
            local t, line = lasio.spawn(function() lasio.sleep(0) end), here()
            assert.are.equal(line, (t:created_at()))
            t:await()
        end)
        loop:set_task_factory(nil)
        assert(ok, err)
    end))

    it("names a finished parent by its id", async(function()
        local child
        local parent = lasio.spawn(function()
            child = lasio.spawn(function() lasio.sleep(0.01) end)
        end)
        parent:await()
        local _, p = child:created_at()
        assert.are.equal("Task #" .. id_of(parent), p)
        child:await()
    end))

    it("refuses what is not a task", async(function()
        local t = lasio.spawn(function() end)
        local e = helper.raises(t.created_at, 42)
        assert.truthy(tostring(e):find("created_at", 1, true), tostring(e))
        assert.truthy(tostring(e):find("Task expected, got number", 1, true), tostring(e))
        t:await()
    end))
end)

describe("what a task waits on", function()
    it("describes sleeps, queues, locks, gathers and tasks, with since when",
        async(function()
            local loop = lasio.get_running_loop()
            local q, lock = lasio.Queue(), lasio.Lock()
            lock:acquire()
            local before = loop:time()
            local sleeper = lasio.spawn(function() lasio.sleep(1.5) end)
            local getter = lasio.spawn(function() q:get() end)
            local locker = lasio.spawn(function() lock:acquire() end)
            local gatherer = lasio.spawn(function()
                lasio.gather(function() lasio.sleep(5) end, function() lasio.sleep(5) end)
            end)
            local awaiter = lasio.spawn(function() sleeper:await() end)
            awaiter:set_name("awaiter")
            local sem, ev = lasio.Semaphore(0), lasio.Event()
            local others = {
                lasio.spawn(function() sem:acquire() end),
                lasio.spawn(function() ev:wait() end),
                lasio.spawn(function() lasio.sleep(math.huge) end),
            }
            settle()
            assert.are.equal("Semaphore.acquire", (waiting_on(others[1])))
            assert.are.equal("Event.wait", (waiting_on(others[2])))
            assert.are.equal("sleep inf", (waiting_on(others[3])))
            for _, t in ipairs(others) do t:cancel() end
            lasio.wait(others)
            assert.are.equal("sleep 1.5", (waiting_on(sleeper)))
            assert.are.equal("Queue.get", (waiting_on(getter)))
            assert.are.equal("Lock.acquire", (waiting_on(locker)))
            assert.are.equal("gather 2", (waiting_on(gatherer)))
            assert.are.equal("Task #" .. id_of(sleeper) .. " " .. sleeper:get_name(),
                (waiting_on(awaiter)))
            local _, since = waiting_on(getter)
            assert.is_true(since >= before - 0.5 and since <= loop:time(), tostring(since))
            -- running or done: nothing
            assert.is_nil(waiting_on(lasio.current_task()))
            for _, t in ipairs({ sleeper, getter, locker, gatherer, awaiter }) do t:cancel() end
            lasio.wait({ sleeper, getter, locker, gatherer, awaiter })
            assert.is_nil(waiting_on(sleeper))
            lock:release()
        end))

    it("describes a read on a TCP socket with its fd and peer", async(function()
        local server = lasio.start_server(function(_, w)
            lasio.sleep(10)
            w:close()
        end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        local reader = lasio.spawn(function()
            local r, w = lasio.open_connection("127.0.0.1", port)
            local _ <close> = helper.closer(function() w:close() end)
            r:read(10)
        end)
        assert.is_true(helper.wait_until(function()
            return (waiting_on(reader) or ""):find("^read") ~= nil
        end))
        local what = waiting_on(reader)
        assert.truthy(what:match("^read fd %d+ tcp 127%.0%.0%.1:" .. port .. "$"), what)
        reader:cancel()
        pcall(reader.await, reader)
        server:close()
    end))
end)

describe("lasio.capture_call_graph", function()
    it("follows gather up to the awaiting task", async(function()
        local main = lasio.current_task()
        local leaf
        local mid = lasio.spawn(function()
            leaf = lasio.spawn(function() lasio.sleep(5) end)
            lasio.gather(leaf, function() lasio.sleep(5) end)
        end)
        local awaiting = lasio.spawn(function() mid:await() end)
        settle()
        local g = lasio.capture_call_graph(leaf)
        assert.are.same({ leaf, mid, awaiting }, chain(g))
        -- each task's call stack: the user's frames, innermost first
        assert.are.equal(THIS, g.awaited_by[1].call_stack[1].file)
        assert.is_number(g.awaited_by[1].call_stack[1].line)
        assert.is_nil(main.awaited_by)
        mid:cancel()
        awaiting:cancel()
        lasio.wait({ mid, awaiting })
    end))

    it("follows wait, wait_for and shield", async(function()
        local inner = {}
        local function sleeper(i)
            return function()
                inner[i] = lasio.current_task()
                lasio.sleep(5)
            end
        end
        local w = lasio.spawn(function() lasio.wait({ sleeper(1), sleeper(2) }) end)
        local wf = lasio.spawn(function() lasio.wait_for(sleeper(3), 10) end)
        local sh = lasio.spawn(function() lasio.shield(sleeper(4)):await() end)
        settle()
        assert.are.same({ inner[1], w }, chain(lasio.capture_call_graph(inner[1])))
        assert.are.same({ inner[2], w }, chain(lasio.capture_call_graph(inner[2])))
        assert.are.same({ inner[3], wf }, chain(lasio.capture_call_graph(inner[3])))
        assert.are.same({ inner[4], sh }, chain(lasio.capture_call_graph(inner[4])))
        assert.are.equal("wait 2", (waiting_on(w)))
        assert.are.equal("shield", (waiting_on(sh)))
        for _, t in ipairs({ w, wf, sh, inner[1], inner[2], inner[3], inner[4] }) do t:cancel() end
        lasio.wait({ w, wf, sh, inner[1], inner[2], inner[3], inner[4] })
    end))

    it("shows task group children awaited by the group's task", async(function()
        local children = {}
        local parent = lasio.spawn(function()
            local tg <close> = lasio.TaskGroup()
            children[1] = tg:spawn(function() lasio.sleep(5) end)
            lasio.sleep(0)
            -- in the body, before the group's end is awaited
            local g = lasio.capture_call_graph(children[1])
            assert.are.same({ children[1], lasio.current_task() }, chain(g))
            children[2] = tg:spawn(function() lasio.sleep(5) end)
        end)
        settle()
        assert.are.equal("TaskGroup 2", (waiting_on(parent)))
        local g = lasio.capture_call_graph(children[2])
        assert.are.same({ children[2], parent }, chain(g))
        -- once the group is over, the link is gone
        children[1]:cancel()
        children[2]:cancel()
        parent:await()
        assert.are.same({}, lasio.capture_call_graph(children[2]).awaited_by)
    end))

    it("captures the current task from the caller's frame, depth and limit applied",
        async(function()
            local function inner()
                local g, line = lasio.capture_call_graph(), here()
                return g, line
            end
            local function outer()
                local g, line = inner()
                return g, line
            end
            local g, line = outer()
            assert.are.equal(lasio.current_task(), g.future)
            local top = g.call_stack[1]
            assert.are.equal(line, top.file .. ":" .. top.line)
            assert.are.equal("inner", top.name)
            local n = #g.call_stack
            assert.is_true(n >= 2)
            local function deeper()
                local dg = lasio.capture_call_graph({ depth = 2 })
                return dg
            end
            local function caller()
                local dg = deeper()
                return dg
            end
            assert.are.equal("caller", caller().call_stack[1].name)
            local cut = lasio.capture_call_graph(nil, { limit = 1 })
            assert.are.equal(1, #cut.call_stack)
            local last = lasio.capture_call_graph(nil, { limit = -1 })
            assert.are.equal(1, #last.call_stack)
            assert.are.same({}, lasio.capture_call_graph(nil, { limit = 0 }).call_stack)
        end))

    it("shows an await cycle as such, without looping", async(function()
        local a, b
        -- b waits through lasio.wait, so cancelling b breaks the cycle
        -- (a cancel never travels around it)
        a = lasio.spawn(function() lasio.sleep(0); b:await() end)
        b = lasio.spawn(function() lasio.sleep(0); lasio.wait({ a }) end)
        local aid = id_of(a)
        a:set_name("a")
        b:set_name("b")
        settle()
        local g = lasio.capture_call_graph(a)
        assert.are.same({ a, b, a }, chain(g))
        assert.is_true(g.awaited_by[1].awaited_by[1].cycle)
        local text = lasio.format_call_graph(a)
        assert.truthy(text:find("* Task(name='a', id=" .. aid .. ") (await cycle)", 1, true), text)
        b:cancel()
        lasio.wait({ a, b })
    end))

    it("needs a loop or a Future, and refuses bad input", function()
        if not pcall(lasio.get_running_loop) then -- stock lua5.4: no loop runs
            local e = helper.raises(lasio.capture_call_graph)
            assert.truthy(tostring(e):find("lasio.capture_call_graph: no running loop", 1, true),
                tostring(e))
        end
        lasio.run(function()
            local function msg(...)
                return tostring(helper.raises(lasio.capture_call_graph, ...))
            end
            assert.truthy(msg(42):find("bad argument #1 to 'lasio.capture_call_graph' "
                .. "(Future or Task expected, got number)", 1, true), msg(42))
            assert.truthy(msg(nil, { depth = -1 }):find("depth must be an integer >= 0", 1, true))
            assert.truthy(msg(nil, { limit = 1.5 }):find("limit must be an integer", 1, true))
            assert.truthy(msg(nil, { bogus = 1 }):find("unknown option 'bogus'", 1, true))
            assert.truthy(msg(nil, 7):find("options must be a table", 1, true))
            assert.truthy(tostring(helper.raises(lasio.format_call_graph, nil, { file = io.stderr }))
                :find("unknown option 'file'", 1, true))
            -- the process goes on
            assert.is_table(lasio.capture_call_graph())
        end)
        -- a task of a closed loop: its graph, with no one awaiting it
        local loop = lasio.new_event_loop()
        loop:set_exception_handler(function() end)
        local t = loop:create_task(function() end)
        loop:close()
        assert.truthy(lasio.format_call_graph(t):find("^%* Task%(name='Task%-1', id=1%)$"),
            lasio.format_call_graph(t))
        assert.are.same({}, lasio.capture_call_graph(t).awaited_by)
    end)
end)

describe("lasio.format_call_graph and print_call_graph", function()
    it("render asyncio's layout", async(function()
        local leaf
        local parent = lasio.spawn(function()
            leaf = lasio.spawn(function() lasio.sleep(5) end)
            leaf:await()
        end)
        local pid = id_of(parent)
        parent:set_name("parent")
        settle()
        local lid = id_of(leaf)
        leaf:set_name("leaf")
        local text = lasio.format_call_graph(leaf)
        local lines = {}
        for l in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
        assert.are.equal("* Task(name='leaf', id=" .. lid .. ")", lines[1])
        assert.are.equal("  + Call stack:", lines[2])
        assert.truthy(lines[3]:find("^  |   File '" .. THIS:gsub("%p", "%%%0")
            .. "', line %d+, in "), lines[3])
        assert.are.equal("  + Awaited by:", lines[4])
        assert.are.equal("    * Task(name='parent', id=" .. pid .. ")", lines[5])
        assert.are.equal("      + Call stack:", lines[6])
        assert.truthy(lines[7]:find("^      |   File '"), lines[7])
        -- print_call_graph writes the same text to a file
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        lasio.print_call_graph(leaf, { file = f })
        f:close()
        f = assert(io.open(path))
        local printed = f:read("a")
        f:close()
        os.remove(path)
        assert.are.equal(text .. "\n", printed)
        parent:cancel()
        leaf:cancel()
        lasio.wait({ parent, leaf })
    end))

    it("shows a plain Future awaited by a task", async(function()
        local fut = lasio.Future()
        local t = lasio.spawn(function() fut:await() end)
        settle()
        local text = lasio.format_call_graph(fut)
        assert.truthy(text:find("^%* Future%(id=0x%x+%)\n  %+ Awaited by:\n    %* Task%(name='"),
            text)
        fut:set_result(1)
        t:await()
    end))
end)

describe("the one report format", function()
    it("an error never retrieved says where the task was created and by whom",
        function()
            -- a loop of its own in a child: under the command an error
            -- reported as never retrieved makes the run's status 1
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local origin
loop:set_exception_handler(function(_, ctx)
    if ctx.message == "Task exception was never retrieved" then origin = ctx.origin end
end)
loop:run_until_complete(function()
    lasio.current_task():set_name("parent")
    local function start() lasio.spawn(function() error("boom", 0) end) end
    start()
    for _ = 1, 3 do
        lasio.sleep(0)
        collectgarbage()
    end
end)
loop:close()
io.write(origin or "none")
]], { interp = "lua5.4" })
            assert.are.equal(0, status, err)
            assert.truthy(out:find("^created at [^\n]*script.lua:9 by Task #%d+ 'parent'\n$"), out)
        end)

    it("a task destroyed but pending says where it was created and who awaits it",
        function()
            do -- a loop of its own: stock lua5.4 (the command runs one already)
                local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local reports = {}
loop:set_exception_handler(function(_, ctx) reports[#reports + 1] = ctx end)
local inner
local outer = loop:create_task(function()
    inner = lasio.spawn(function() lasio.sleep(1000) end)
    inner:await()
end)
loop:run_until_complete(function() lasio.sleep(0.005) end)
loop:close()
for _, c in ipairs(reports) do
    if rawequal(c.task, inner) then io.write(c.origin) end
end
]], { interp = "lua5.4" })
                assert.are.equal(0, status, err)
                assert.truthy(out:find("^created at [^\n]*script.lua:7 by Task #%d+ 'Task%-%d+'\n"
                    .. "awaited by Task%(name='Task%-%d+', id=%d+%) at [^\n]*script.lua:8, in "),
                    out)
            end
        end)

    it("a deadlock lists each task's wait, stack, creation and awaited-by chain",
        function()
            for _, interp in ipairs(helper.interps) do
                local _, err, status = helper.run_child([[
local lasio = require "lasio"
local q = lasio.Queue()
local function consume() q:get() end
local function work()
    local c = lasio.spawn(consume)
    c:set_name("consumer")
    lasio.gather(c)
end
local function main()
    local w = lasio.spawn(work)
    w:set_name("worker")
    w:await()
end
if lasio.get_running_loop and pcall(lasio.get_running_loop) then main() else lasio.run(main) end
]], { interp = interp })
                assert.are_not.equal(0, status, err)
                assert.truthy(err:find("task consumer waits on Queue.get (for ", 1, true), err)
                assert.truthy(err:find("script.lua:3: in function", 1, true), err)
                assert.truthy(err:find("created at [^\n]*script.lua:5 by Task #%d+ 'worker'"), err)
                assert.truthy(err:find("\nawaited by Task%(name='worker', id=%d+%) at "
                    .. "[^\n]*script.lua:7, in [^\n]*\n    awaited by Task%(name='[^']*', "
                    .. "id=%d+%) at [^\n]*script.lua:12"), err)
                assert.truthy(err:find("task worker waits on gather 1 (for ", 1, true), err)
            end
        end)
end)
