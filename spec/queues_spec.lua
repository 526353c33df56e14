-- Specs for Queue, LifoQueue and PriorityQueue (docs/API.md, Synchronisation
-- and queues): a port of
-- the behaviours CPython 3.13's test_queues.py checks (order, maxsize,
-- blocking get/put, task_done/join, shutdown), plus cancellation at every
-- await, timeouts around each, FIFO wake-up order, the getter or putter
-- cancelled just after being woken, and allocation-free fast paths.
-- Covers F4 and F11 for queues.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local raises = helper.raises

local is_cancelled = helper.is_cancelled

local function is_shutdown(e)
    return lasio.QueueShutDown:is(e)
end

-- Number of tasks waiting in a queue's getters or putters.
local function nwaiting(q, field)
    return q[field]
end

-- Runs fn(...) in the current task; a helper task cancels this task after
-- `delay` seconds (a stand-in for lasio.timeout). Returns ok,
-- result-or-error, timed_out.
local function within(delay, fn, ...)
    local me = lasio.current_task()
    local fired = false
    local killer = lasio.spawn(function()
        lasio.sleep(delay)
        fired = true
        me:cancel("deadline")
    end)
    local ok, res = pcall(fn, ...)
    killer:cancel()
    if fired then
        me:uncancel()
        if not ok and is_cancelled(res) then return false, res, true end
    end
    return ok, res, false
end

local function gather(tasks)
    local out = {}
    for i, t in ipairs(tasks) do out[i] = t:await() end
    return out
end

local function settle(tasks)
    local out = {}
    for i, t in ipairs(tasks) do
        local ok, v = pcall(t.await, t)
        out[i] = { ok = ok, v = v }
    end
    return out
end

local function allocated_kb(fn)
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    fn()
    local after = collectgarbage("count")
    collectgarbage("restart")
    return after - before
end

local kinds = {
    { name = "Queue", make = lasio.Queue },
    { name = "LifoQueue", make = lasio.LifoQueue },
    { name = "PriorityQueue", make = lasio.PriorityQueue },
}

describe("Queue basics", function()
    it("tostring shows maxsize, size, waiters, unfinished tasks", async(function()
        local q = lasio.Queue()
        assert.are.equal("lasio.Queue<maxsize=0 qsize=0>", tostring(q))
        local getter = lasio.spawn(q.get, q)
        lasio.sleep(0)
        assert.are.equal("lasio.Queue<maxsize=0 qsize=0 getters=1>", tostring(q))
        q:put_nowait(0)
        assert.are.equal(0, getter:await())

        q = lasio.Queue(1)
        q:put_nowait(1)
        local putter = lasio.spawn(q.put, q, 2)
        lasio.sleep(0)
        assert.are.equal("lasio.Queue<maxsize=1 qsize=1 putters=1 tasks=1>", tostring(q))
        q:get_nowait()
        putter:await()
        assert.are.equal("lasio.Queue<maxsize=1 qsize=1 tasks=2>", tostring(q))
        assert.are.equal("lasio.LifoQueue<maxsize=0 qsize=0>", tostring(lasio.LifoQueue()))
        assert.are.equal("lasio.PriorityQueue<maxsize=3 qsize=0>",
            tostring(lasio.PriorityQueue(3)))
    end))

    it("empty", async(function()
        local q = lasio.Queue()
        assert.is_true(q:empty())
        q:put(1)
        assert.is_false(q:empty())
        assert.are.equal(1, q:get())
        assert.is_true(q:empty())
    end))

    it("full", async(function()
        local q = lasio.Queue()
        assert.is_false(q:full())
        q = lasio.Queue(1)
        q:put(1)
        assert.is_true(q:full())
    end))

    it("FIFO order", async(function()
        local q = lasio.Queue()
        for _, i in ipairs({ 1, 3, 2 }) do q:put(i) end
        assert.are.same({ 1, 3, 2 }, { q:get(), q:get(), q:get() })
    end))

    it("each queue's fields are its own; unknown fields are nil", async(function()
        -- every queue has a metatable of its own (fast method lookup)
        local a, b = lasio.Queue(1), lasio.LifoQueue(3)
        assert.are.equal(1, a.maxsize)
        assert.are.equal(3, b.maxsize)
        assert.is_nil(a.nonexistent)
        assert.is_nil(a.maxsize_int)
        local waiter = lasio.spawn(function() return b:get() end)
        lasio.sleep(0)
        assert.are.equal(0, a._getters)
        assert.are.equal(1, b._getters)
        b:put("x")
        assert.are.equal("x", waiter:await())
        assert.are.equal(a.put, lasio.Queue().put)
    end))

    it("a dropped queue is collected (its metatable refers back to it)", async(function()
        local gone = setmetatable({}, { __mode = "k" })
        do
            local q = lasio.Queue()
            q:put(1)
            gone[q] = true
        end
        collectgarbage()
        collectgarbage()
        assert.is_nil(next(gone))
    end))

    it("maxsize is a field; put blocks while the queue is full", async(function()
        local q = lasio.Queue(2)
        assert.are.equal(2, q.maxsize)
        assert.are.equal(0, lasio.Queue().maxsize)
        local have_been_put = {}
        local t = lasio.spawn(function()
            for i = 0, 2 do
                q:put(i)
                have_been_put[#have_been_put + 1] = i
            end
            return true
        end)
        lasio.sleep(0)
        lasio.sleep(0)
        assert.are.same({ 0, 1 }, have_been_put)
        assert.are.equal(0, q:get())
        lasio.sleep(0)
        assert.are.same({ 0, 1, 2 }, have_been_put)
        assert.are.equal(1, q:get())
        assert.are.equal(2, q:get())
        assert.is_true(t:done())
        assert.is_true(t:result())
    end))

    it("a bad maxsize raises", async(function()
        for _, make in ipairs({ lasio.Queue, lasio.LifoQueue, lasio.PriorityQueue }) do
            for _, bad in ipairs({ -1, "2", 0 / 0, {} }) do
                local e = raises(make, bad)
                assert.truthy(tostring(e):find("maxsize must be a number >= 0", 1, true),
                    tostring(e))
            end
        end
    end))

    it("a fractional maxsize counts as its ceiling", async(function()
        local q = lasio.Queue(1.3)
        q:put_nowait(1)
        q:put_nowait(2)
        assert.is_true(q:full())
        assert.is_true(lasio.QueueFull:is(raises(q.put_nowait, q, 3)))
        q = lasio.Queue(1.3)
        q:put(1)
        q:put(2)
        assert.is_true(q:full())
    end))

    it("nil is an item like any other (Queue and LifoQueue)", async(function()
        for _, make in ipairs({ lasio.Queue, lasio.LifoQueue }) do
            local q = make()
            q:put(nil)
            q:put_nowait(nil)
            assert.are.equal(2, q:qsize())
            local r = table.pack(q:get())
            assert.are.equal(1, r.n)
            assert.is_nil(r[1])
            assert.is_nil(q:get_nowait())
            assert.is_true(q:empty())
        end
        local q = lasio.Queue()
        local t = lasio.spawn(function() return "got", q:get() end)
        lasio.sleep(0)
        q:put(nil)
        local r = table.pack(t:await())
        assert.are.equal(2, r.n)
        assert.are.equal("got", r[1])
        assert.is_nil(r[2])
    end))

    it("a FIFO that never empties keeps its order over many items", async(function()
        local q = lasio.Queue()
        for i = 1, 10 do q:put_nowait(i) end
        for i = 1, 5000 do
            assert.are.equal(i, q:get_nowait())
            q:put_nowait(i + 10)
        end
        assert.are.equal(10, q:qsize())
        assert.are.equal(5001, q:get_nowait())
    end))
end)

describe("Queue get", function()
    it("get of an available item", async(function()
        local q = lasio.Queue()
        q:put_nowait(1)
        assert.are.equal(1, q:get())
    end))

    it("get wakes the first putter", async(function()
        local q = lasio.Queue(1)
        q:put(1)
        local first = lasio.spawn(function() q:put(2) end)
        local second = lasio.spawn(function() q:put(3) end)
        lasio.sleep(0)
        assert.are.equal(2, nwaiting(q, "_putters"))
        assert.are.equal(1, q:get())
        assert.are.equal(1, nwaiting(q, "_putters"))
        lasio.sleep(0)
        assert.is_true(first:done())
        assert.is_false(second:done())
        assert.are.equal(2, q:get())
        lasio.sleep(0)
        assert.is_true(second:done())
        assert.are.equal(3, q:get())
    end))

    it("a blocked get returns the item put later", async(function()
        local loop = lasio.get_running_loop()
        local q = lasio.Queue()
        local started = lasio.Event()
        local finished = false
        local t = lasio.spawn(function()
            started:set()
            local res = q:get()
            finished = true
            return res
        end)
        started:wait()
        assert.is_false(finished)
        loop:call_later(0.01, q.put_nowait, q, 1)
        assert.are.equal(1, t:await())
        assert.is_true(finished)
    end))

    it("get_nowait", async(function()
        local q = lasio.Queue()
        q:put_nowait(1)
        assert.are.equal(1, q:get_nowait())
    end))

    it("get_nowait on an empty queue raises QueueEmpty", async(function()
        local q = lasio.Queue()
        local e = raises(q.get_nowait, q)
        assert.is_true(lasio.QueueEmpty:is(e), tostring(e))
    end))

    it("a getter cancelled before the put is skipped", async(function()
        local q = lasio.Queue()
        local t1 = lasio.spawn(q.get, q)
        local t2 = lasio.spawn(q.get, q)
        lasio.sleep(0)
        t1:cancel()
        lasio.sleep(0)
        assert.is_true(t1:done())
        q:put("a")
        lasio.sleep(0)
        assert.are.equal("a", t2:await())
    end))

    it("get with waiting putters takes their items in order", async(function()
        local q = lasio.Queue(1)
        lasio.spawn(q.put, q, "a")
        lasio.spawn(q.put, q, "b")
        assert.are.equal("a", q:get())
        assert.are.equal("b", q:get())
    end))

    it("producer and consumer through a queue of one slot", async(function()
        local q = lasio.Queue(1)
        local got = {}
        local consumer = lasio.spawn(function()
            for _ = 1, 5 do got[#got + 1] = q:get() end
        end)
        local producer = lasio.spawn(function()
            for i = 0, 4 do q:put(i) end
        end)
        gather({ producer, consumer })
        assert.are.same({ 0, 1, 2, 3, 4 }, got)
    end))

    it("a timeout around get leaves no getter behind", async(function()
        local q = lasio.Queue(5)
        local ok, e, timed_out = within(0.01, q.get, q)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.are.equal(0, nwaiting(q, "_getters"))
        q:put_nowait("x")
        local ok2, v = within(1, q.get, q)
        assert.is_true(ok2)
        assert.are.equal("x", v)
    end))

    it("getters are served in the order they came", async(function()
        local q = lasio.Queue()
        local got = {}
        local tasks = {}
        for i = 1, 6 do
            tasks[i] = lasio.spawn(function()
                local v = q:get()
                got[#got + 1] = { i, v }
            end)
        end
        lasio.sleep(0)
        for i = 1, 6 do q:put_nowait(i * 10) end
        gather(tasks)
        for i = 1, 6 do assert.are.same({ i, i * 10 }, got[i]) end
    end))
end)

describe("Queue put", function()
    it("put into an unbounded queue does not block", async(function()
        local q = lasio.Queue()
        q:put(1)
        assert.are.equal(1, q:get())
    end))

    it("a blocked put finishes once a slot frees", async(function()
        local q = lasio.Queue(1)
        local started = lasio.Event()
        local finished = false
        local loop = lasio.get_running_loop()
        loop:call_later(0.01, q.get_nowait, q)
        local t = lasio.spawn(function()
            started:set()
            q:put(1)
            q:put(2)
            finished = true
        end)
        started:wait()
        assert.is_false(finished)
        t:await()
        assert.is_true(finished)
    end))

    it("put_nowait", async(function()
        local q = lasio.Queue()
        q:put_nowait(1)
        assert.are.equal(1, q:get_nowait())
    end))

    it("a reader cancelled just after being woken does not drop the item", async(function()
        local q = lasio.Queue()
        local reader = lasio.spawn(q.get, q)
        lasio.sleep(0)
        q:put_nowait(1)
        q:put_nowait(2)
        reader:cancel()
        local ok = pcall(reader.await, reader)
        if not ok then
            reader = lasio.spawn(q.get, q)
            reader:await()
        end
        -- 2 would mean that 1 was dropped
        assert.are.equal(1, reader:result())
    end))

    it("a reader cancelled just after being woken passes the wake-up on", async(function()
        local q = lasio.Queue()
        local reader1 = lasio.spawn(q.get, q)
        local reader2 = lasio.spawn(q.get, q)
        local reader3 = lasio.spawn(q.get, q)
        lasio.sleep(0)
        q:put_nowait(1)
        q:put_nowait(2)
        reader1:cancel()
        assert.is_true(is_cancelled(raises(reader1.await, reader1)))
        reader3:await()
        local got = { reader2:await(), reader3:result() }
        table.sort(got)
        assert.are.same({ 1, 2 }, got)
        assert.are.equal(0, nwaiting(q, "_getters"))
    end))

    it("the one getter cancelled just after being woken leaves the item queued",
        async(function()
            local q = lasio.Queue()
            local a = lasio.spawn(q.get, q)
            lasio.sleep(0)
            q:put_nowait("item")
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            assert.are.equal(1, q:qsize())
            assert.are.equal(0, nwaiting(q, "_getters"))
            assert.are.equal("item", q:get_nowait())
        end))

    it("a writer cancelled just after being woken can retry and put", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(1)
        local writer = lasio.spawn(q.put, q, 2)
        lasio.sleep(0)
        assert.are.equal(1, q:get_nowait())
        writer:cancel()
        if not pcall(writer.await, writer) then
            writer = lasio.spawn(q.put, q, 2)
            writer:await()
        end
        assert.are.equal(2, q:get_nowait())
        assert.are.equal(0, q:qsize())
    end))

    it("a writer cancelled just after being woken passes the free slot on",
        async(function()
            local q = lasio.Queue(1)
            q:put_nowait("first")
            local a = lasio.spawn(q.put, q, "a")
            local b = lasio.spawn(q.put, q, "b")
            lasio.sleep(0)
            assert.are.equal(2, nwaiting(q, "_putters"))
            assert.are.equal("first", q:get_nowait()) -- wakes a
            a:cancel()
            assert.is_true(is_cancelled(raises(a.await, a)))
            b:await()
            assert.are.equal("b", q:get_nowait())
            assert.are.equal(0, nwaiting(q, "_putters"))
        end))

    it("put_nowait on a full queue raises QueueFull", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(1)
        local e = raises(q.put_nowait, q, 2)
        assert.is_true(lasio.QueueFull:is(e), tostring(e))
        assert.are.equal(1, q:qsize())
    end))

    it("a put with no room to wait for finishes at once", async(function()
        local q = lasio.Queue()
        local t = lasio.spawn(function() q:put(1) return true end)
        assert.are.equal(1, q:get())
        assert.is_true(t:done())
        assert.is_true(t:result())
    end))

    it("a putter cancelled while waiting loses its turn, not the others'", async(function()
        local q = lasio.Queue(1)
        local put_a = lasio.spawn(q.put, q, "a")
        local put_b = lasio.spawn(q.put, q, "b")
        local put_c = lasio.spawn(q.put, q, "X")
        lasio.sleep(0)
        assert.is_true(put_a:done())
        assert.is_false(put_b:done())
        put_c:cancel()
        lasio.sleep(0)
        assert.is_true(put_c:done())
        assert.are.equal("a", q:get_nowait())
        lasio.sleep(0)
        assert.are.equal("b", q:get_nowait())
        put_b:await()
        assert.is_true(q:empty())
    end))

    it("put with a waiting getter hands the item over", async(function()
        local q = lasio.Queue()
        local t = lasio.spawn(q.get, q)
        lasio.sleep(0)
        q:put("a")
        assert.are.equal("a", t:await())
    end))

    it("putters beyond maxsize wait for a getter", async(function()
        local q = lasio.Queue(2)
        local getter = lasio.spawn(function()
            lasio.sleep(0)
            for _ = 1, q:qsize() do q:get_nowait() end
        end)
        local putters = {}
        for i = 0, 3 do putters[#putters + 1] = lasio.spawn(q.put, q, i) end
        gather({ getter })
        gather(putters)
        assert.are.equal(2, q:qsize())
        assert.are.same({ 2, 3 }, { q:get_nowait(), q:get_nowait() })
    end))

    it("a cancelled putter is removed from the putters", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(1)
        local put_task = lasio.spawn(q.put, q, 1)
        lasio.sleep(0)
        assert.are.equal(1, nwaiting(q, "_putters"))
        put_task:cancel()
        assert.is_true(is_cancelled(raises(put_task.await, put_task)))
        assert.are.equal(0, nwaiting(q, "_putters"))
    end))

    it("a putter cancelled after get_nowait popped it still raises Cancelled",
        async(function()
            local q = lasio.Queue(1)
            q:put_nowait(1)
            local put_task = lasio.spawn(q.put, q, 1)
            lasio.sleep(0)
            q:get_nowait()
            put_task:cancel()
            assert.is_true(is_cancelled(raises(put_task.await, put_task)))
            assert.are.equal(0, q:qsize())
        end))

    it("putters are served in the order they came", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(0)
        local tasks = {}
        for i = 1, 5 do tasks[i] = lasio.spawn(q.put, q, i) end
        lasio.sleep(0)
        local got = {}
        for _ = 1, 6 do got[#got + 1] = q:get() end
        assert.are.same({ 0, 1, 2, 3, 4, 5 }, got)
        gather(tasks)
    end))

    it("a timeout around put leaves no putter behind", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(1)
        local ok, e, timed_out = within(0.01, q.put, q, 2)
        assert.is_false(ok)
        assert.is_true(timed_out)
        assert.is_true(is_cancelled(e))
        assert.are.equal(0, nwaiting(q, "_putters"))
        assert.are.equal(1, q:qsize())
        q:get_nowait()
        assert.is_true(within(1, q.put, q, 3))
        assert.are.equal(3, q:get_nowait())
    end))

    it("a get where no await is possible raises and leaves no getter", async(function()
        local q = lasio.Queue()
        local ok, e = pcall(table.sort, { 2, 1 }, function(a, b)
            q:get()
            return a < b
        end)
        assert.is_false(ok)
        assert.truthy(tostring(e):find("cannot await here", 1, true), tostring(e))
        assert.are.equal(0, nwaiting(q, "_getters"))
        q:put_nowait(1)
        assert.are.equal(1, q:get())
    end))

    it("get and put that must wait, outside a task, raise a clear error", async(function()
        local q = lasio.Queue(1)
        local loop = lasio.get_running_loop()
        local eget, eput
        loop:call_soon(function()
            eget = select(2, pcall(q.get, q))
            q:put_nowait(1)
            eput = select(2, pcall(q.put, q, 2))
        end)
        lasio.sleep(0)
        assert.truthy(tostring(eget):find("lasio.Queue:get: not inside a task", 1, true),
            tostring(eget))
        assert.truthy(tostring(eput):find("lasio.Queue:put: not inside a task", 1, true),
            tostring(eput))
        assert.are.equal(0, nwaiting(q, "_getters"))
        assert.are.equal(0, nwaiting(q, "_putters"))
    end))
end)

describe("LifoQueue and PriorityQueue", function()
    it("LifoQueue: last in, first out", async(function()
        local q = lasio.LifoQueue()
        for _, i in ipairs({ 1, 3, 2 }) do q:put(i) end
        assert.are.same({ 2, 3, 1 }, { q:get(), q:get(), q:get() })
    end))

    it("PriorityQueue: smallest first", async(function()
        local q = lasio.PriorityQueue()
        for _, i in ipairs({ 1, 3, 2 }) do q:put(i) end
        assert.are.same({ 1, 2, 3 }, { q:get(), q:get(), q:get() })
    end))

    it("PriorityQueue sorts a thousand random items, duplicates included", async(function()
        local q = lasio.PriorityQueue()
        local items = {}
        local seed = 12345
        for i = 1, 1000 do
            seed = (seed * 1103515245 + 12345) % 2147483648
            local v = seed % 300
            items[#items + 1] = v
            q:put_nowait(v)
            if i % 7 == 0 then
                -- interleave removals: the smallest so far comes out
                local got = q:get_nowait()
                table.sort(items)
                assert.are.equal(items[1], got)
                table.remove(items, 1)
            end
        end
        table.sort(items)
        local out = {}
        while not q:empty() do out[#out + 1] = q:get_nowait() end
        assert.are.same(items, out)
    end))

    it("PriorityQueue compares items with <, metamethods included", async(function()
        local mt = { __lt = function(a, b) return a.prio < b.prio end }
        local function item(p, name) return setmetatable({ prio = p, name = name }, mt) end
        local q = lasio.PriorityQueue()
        q:put(item(5, "e"))
        q:put(item(1, "a"))
        q:put(item(3, "c"))
        assert.are.same({ "a", "c", "e" }, { q:get().name, q:get().name, q:get().name })
    end))

    it("PriorityQueue: an item that cannot be compared raises and changes nothing",
        async(function()
            local q = lasio.PriorityQueue()
            for _, v in ipairs({ 4, 1, 3, 2 }) do q:put_nowait(v) end
            local e = raises(q.put_nowait, q, {})
            assert.truthy(tostring(e):find("compare", 1, true), tostring(e))
            assert.are.equal(4, q:qsize())
            assert.truthy(tostring(q):find("tasks=4", 1, true), tostring(q))
            assert.are.same({ 1, 2, 3, 4 },
                { q:get_nowait(), q:get_nowait(), q:get_nowait(), q:get_nowait() })
        end))
end)

for _, kind in ipairs(kinds) do
    describe(kind.name .. " task_done and join", function()
        it("task_done without an unfinished item raises", async(function()
            local q = kind.make()
            local e = raises(q.task_done, q)
            assert.truthy(tostring(e):find(kind.name .. ":task_done: called more times", 1, true),
                tostring(e))
        end))

        it("join waits until every item is marked done", async(function()
            local q = kind.make()
            for i = 0, 99 do q:put_nowait(i) end
            local accumulator = 0
            local running = true
            local function worker()
                while running do
                    local item = q:get()
                    accumulator = accumulator + item
                    q:task_done()
                end
            end
            local tasks = { lasio.spawn(worker), lasio.spawn(worker) }
            q:join()
            assert.are.equal(4950, accumulator)
            running = false
            for _ = 1, #tasks do q:put_nowait(0) end
            gather(tasks)
        end))

        it("join on an empty queue returns at once, twice", async(function()
            local q = kind.make()
            local other_ran = false
            lasio.spawn(function() other_ran = true end)
            q:join()
            q:join()
            assert.is_false(other_ran)
        end))

        it("tostring counts the unfinished items", async(function()
            local q = kind.make()
            q:put_nowait(1)
            q:put_nowait(2)
            q:get_nowait()
            q:get_nowait()
            assert.are.equal("lasio." .. kind.name .. "<maxsize=0 qsize=0 tasks=2>", tostring(q))
        end))

        it("cancelling a join leaves the queue joinable", async(function()
            local q = kind.make()
            q:put_nowait(1)
            local j = lasio.spawn(q.join, q)
            lasio.sleep(0)
            j:cancel()
            assert.is_true(is_cancelled(raises(j.await, j)))
            local j2 = lasio.spawn(q.join, q)
            lasio.sleep(0)
            assert.is_false(j2:done())
            q:get_nowait()
            q:task_done()
            j2:await()
        end))

        it("a timeout around join", async(function()
            local q = kind.make()
            q:put_nowait(1)
            local ok, e, timed_out = within(0.01, q.join, q)
            assert.is_false(ok)
            assert.is_true(timed_out)
            assert.is_true(is_cancelled(e))
            lasio.get_running_loop():call_later(0.001, function()
                q:get_nowait()
                q:task_done()
            end)
            assert.is_true(within(1, q.join, q))
        end))
    end)

    describe(kind.name .. " shutdown", function()
        it("tostring says shutdown", async(function()
            local q = kind.make()
            q:shutdown()
            assert.are.equal("lasio." .. kind.name .. "<maxsize=0 qsize=0 shutdown>", tostring(q))
        end))

        it("shutdown of an empty queue", async(function()
            local q = kind.make()
            local get_task = lasio.spawn(q.get, q)
            lasio.sleep(0)
            q:shutdown(false)
            assert.are.equal(0, q:qsize())
            q:join()
            lasio.sleep(0)
            assert.is_true(get_task:done())
            assert.is_true(is_shutdown(raises(get_task.await, get_task)))
            assert.is_true(is_shutdown(raises(q.put, q, "data")))
            assert.is_true(is_shutdown(raises(q.put_nowait, q, "data")))
            assert.is_true(is_shutdown(raises(q.get, q)))
            assert.is_true(is_shutdown(raises(q.get_nowait, q)))
        end))

        it("shutdown of a non-empty queue: gets drain it first", async(function()
            local q = kind.make(1)
            q:put_nowait("data")
            local join_task = lasio.spawn(q.join, q)
            local put_task = lasio.spawn(q.put, q, "data2")
            lasio.sleep(0)
            assert.is_false(put_task:done())
            q:shutdown(false)
            assert.are.equal(1, q:qsize())
            lasio.sleep(0)
            assert.is_true(put_task:done())
            assert.is_true(is_shutdown(raises(put_task.await, put_task)))
            assert.are.equal("data", q:get())
            lasio.sleep(0)
            assert.is_false(join_task:done())
            assert.is_true(is_shutdown(raises(q.put, q, "data")))
            assert.is_true(is_shutdown(raises(q.put_nowait, q, "data")))
            assert.is_true(is_shutdown(raises(q.get, q)))
            assert.is_true(is_shutdown(raises(q.get_nowait, q)))
            q:task_done()
            lasio.sleep(0)
            assert.is_true(join_task:done())
            join_task:await()
            assert.is_false(pcall(q.task_done, q))
        end))

        it("immediate shutdown drops the items and marks them done", async(function()
            local q = kind.make()
            q:put_nowait("data")
            local join_task = lasio.spawn(q.join, q)
            lasio.sleep(0)
            q:shutdown(true)
            assert.are.equal(0, q:qsize())
            lasio.sleep(0)
            assert.is_true(join_task:done())
            join_task:await()
            assert.is_true(is_shutdown(raises(q.put, q, "data")))
            assert.is_true(is_shutdown(raises(q.put_nowait, q, "data")))
            assert.is_true(is_shutdown(raises(q.get, q)))
            assert.is_true(is_shutdown(raises(q.get_nowait, q)))
            assert.is_false(pcall(q.task_done, q))
        end))

        it("immediate shutdown with an item still being processed", async(function()
            local q = kind.make()
            q:put_nowait("data")
            q:put_nowait("data")
            local join_task = lasio.spawn(q.join, q)
            assert.are.equal("data", q:get())
            q:shutdown(true)
            assert.are.equal(0, q:qsize())
            lasio.sleep(0)
            assert.is_false(join_task:done())
            assert.is_true(is_shutdown(raises(q.put, q, "data")))
            assert.is_true(is_shutdown(raises(q.put_nowait, q, "data")))
            assert.is_true(is_shutdown(raises(q.get, q)))
            assert.is_true(is_shutdown(raises(q.get_nowait, q)))
            q:task_done()
            assert.is_false(pcall(q.task_done, q))
            lasio.sleep(0)
            assert.is_true(join_task:done())
            join_task:await()
        end))

        it("shutdown wakes every blocked getter and putter", async(function()
            local q = kind.make(1)
            local e = kind.make()
            q:put_nowait(1)
            local putters = { lasio.spawn(q.put, q, 2), lasio.spawn(q.put, q, 3) }
            local getters = { lasio.spawn(e.get, e), lasio.spawn(e.get, e) }
            lasio.sleep(0)
            q:shutdown()
            e:shutdown()
            for _, r in ipairs(settle(putters)) do
                assert.is_false(r.ok)
                assert.is_true(is_shutdown(r.v), tostring(r.v))
            end
            for _, r in ipairs(settle(getters)) do
                assert.is_false(r.ok)
                assert.is_true(is_shutdown(r.v), tostring(r.v))
            end
            assert.are.equal(0, nwaiting(q, "_putters"))
            assert.are.equal(0, nwaiting(e, "_getters"))
            assert.are.equal(1, q:get_nowait())
        end))

        it("immediate shutdown makes a blocked put raise even though room appeared",
            async(function()
                local q = kind.make(1)
                q:put_nowait(1)
                local putter = lasio.spawn(q.put, q, 2)
                lasio.sleep(0)
                q:shutdown(true)
                assert.is_true(is_shutdown(raises(putter.await, putter)))
                assert.are.equal(0, q:qsize())
            end))
    end)
end

describe("Queue cancellation", function()
    -- covers F11
    it("a get inside cleanup gets a second cancel and loses no item (F11)",
        async(function()
            local q = lasio.Queue()
            local log = {}
            local t = lasio.spawn(function()
                local _ <close> = helper.closer(function()
                    local ok, e = pcall(q.get, q)
                    log[#log + 1] = ok and "got" or (is_cancelled(e) and "cancelled-again")
                end)
                lasio.sleep(10)
            end)
            lasio.sleep(0)
            t:cancel()
            lasio.sleep(0)
            assert.are.equal(1, nwaiting(q, "_getters"))
            q:put_nowait("kept") -- woken, then cancelled before it runs
            t:cancel()
            assert.is_true(is_cancelled(raises(t.await, t)))
            assert.are.same({ "cancelled-again" }, log)
            assert.are.equal(0, nwaiting(q, "_getters"))
            assert.are.equal("kept", q:get_nowait())
        end))

    -- covers F11
    it("a put inside cleanup gets a second cancel (F11)", async(function()
        local q = lasio.Queue(1)
        q:put_nowait(0)
        local log = {}
        local t = lasio.spawn(function()
            local _ <close> = helper.closer(function()
                local ok, e = pcall(q.put, q, 1)
                log[#log + 1] = ok and "put" or (is_cancelled(e) and "cancelled-again")
            end)
            lasio.sleep(10)
        end)
        lasio.sleep(0)
        t:cancel()
        lasio.sleep(0)
        assert.are.equal(1, nwaiting(q, "_putters"))
        t:cancel()
        assert.is_true(is_cancelled(raises(t.await, t)))
        assert.are.same({ "cancelled-again" }, log)
        assert.are.equal(0, nwaiting(q, "_putters"))
        assert.are.equal(1, q:qsize())
    end))

    it("many getters, some cancelled after being woken: every item is received once",
        async(function()
            local q = lasio.Queue()
            local received = {}
            local getters = {}
            for i = 1, 20 do
                getters[i] = lasio.spawn(function()
                    local v = q:get()
                    received[#received + 1] = v
                end)
            end
            lasio.sleep(0)
            for i = 1, 10 do q:put_nowait(i) end
            for i = 1, 20, 2 do getters[i]:cancel() end -- half, woken or not
            settle(getters)
            for i = #received + 1, 10 do received[i] = q:get_nowait() end
            table.sort(received)
            assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, received)
            assert.is_true(q:empty())
            assert.are.equal(0, nwaiting(q, "_getters"))
        end))
end)

describe("Queue fast paths", function()
    it("put_nowait/get_nowait, and get/put that need not wait, allocate nothing",
        async(function()
            for _, kind in ipairs(kinds) do
                local q = kind.make(4)
                for i = 1, 4 do q:put_nowait(i) end -- grow the item table once
                for _ = 1, 4 do q:get_nowait() end
                local kb = allocated_kb(function()
                    for i = 1, 10000 do
                        q:put_nowait(i)
                        q:put(i)
                        q:get_nowait()
                        q:get()
                        q:task_done()
                        q:task_done()
                    end
                end)
                assert.is_true(kb < 1, kind.name .. ": " .. kb .. " KiB")
            end
        end))

    it("pingpong: two tasks hand a token through two queues", async(function()
        local q1, q2 = lasio.Queue(), lasio.Queue()
        local n = 2000
        local a = lasio.spawn(function()
            local token = 0
            for _ = 1, n do
                q1:put(token + 1)
                token = q2:get()
            end
            return token
        end)
        local b = lasio.spawn(function()
            for _ = 1, n do q2:put(q1:get() + 1) end
        end)
        assert.are.equal(2 * n, a:await())
        b:await()
        assert.is_true(q1:empty() and q2:empty())
        assert.are.equal(0, nwaiting(q1, "_getters") + nwaiting(q2, "_getters"))
    end))
end)

-- The real timeouts (docs/API.md, Combinators, timeouts and task groups)
-- around every wait of every queue kind.
describe("timeouts around each wait", function()
    for _, kind in ipairs(kinds) do
        local cases = {
            { "get", function()
                local q = kind.make()
                return function() return q:get() end, function()
                    assert.are.equal(0, nwaiting(q, "_getters"))
                    q:put_nowait(1)
                    assert.are.equal(1, q:get_nowait())
                end
            end },
            { "put", function()
                local q = kind.make(1)
                q:put_nowait(1)
                return function() return q:put(2) end, function()
                    assert.are.equal(0, nwaiting(q, "_putters"))
                    assert.are.equal(1, q:qsize())
                end
            end },
            { "join", function()
                local q = kind.make()
                q:put_nowait(1)
                return function() return q:join() end, function()
                    q:get_nowait()
                    q:task_done()
                    q:join()
                end
            end },
        }
        for _, case in ipairs(cases) do
            local name, setup = kind.name .. ":" .. case[1], case[2]

            it(name .. " in a lasio.timeout scope raises TimeoutError", async(function()
                local call, check = setup()
                local ok, e = pcall(function()
                    local _ <close> = lasio.timeout(0.01)
                    call()
                end)
                assert.is_false(ok)
                assert.is_true(lasio.TimeoutError:is(e), tostring(e))
                assert.are.equal(0, lasio.current_task():cancelling())
                check()
            end))

            it(name .. " under lasio.wait_for raises TimeoutError", async(function()
                local call, check = setup()
                local e = raises(lasio.wait_for, call, 0.01)
                assert.is_true(lasio.TimeoutError:is(e), tostring(e))
                check()
            end))
        end
    end
end)
