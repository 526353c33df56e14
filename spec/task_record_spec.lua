-- Specs for the compact task and Future records: the fields that share
-- room (a Future's result and callback counts, a task's WaitQueue links
-- and its timer and I/O fields), the loop kept in the extra user value,
-- the table of creation sites, budgets found through the coroutine, C done
-- callbacks run as a Future completes, and the ready queue's ring given
-- back after a burst.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local core = require "lasio.core"
local async = helper.async

local waiting_on = core.internal.task_waiting_on
local SMALL = os.getenv("LASIO_SANITIZED") and 0.1 or 1

describe("a Future done", function()
    it("keeps no callback to remove, whatever its count of results",
        async(function()
            local f = lasio.Future()
            local ran = 0
            local function cb() ran = ran + 1 end
            f:add_done_callback(cb)
            f:add_done_callback(cb)
            f:set_result(1, 2, 3)
            -- the callbacks were scheduled: nothing is left to remove, and
            -- the count of results is not read as a count of callbacks
            assert.equal(0, f:remove_done_callback(cb))
            assert.same({1, 2, 3}, {f:result()})
            lasio.sleep(0)
            assert.equal(2, ran)
            local e = lasio.Future()
            e:set_exception("boom")
            assert.equal(0, e:remove_done_callback(cb))
            assert.is_false(pcall(e.result, e))
        end))

    it("still removes callbacks while pending", async(function()
        local f = lasio.Future()
        local function cb() end
        f:add_done_callback(cb)
        f:add_done_callback(print)
        assert.equal(1, f:remove_done_callback(cb))
        assert.equal(1, f:remove_done_callback(print))
        f:set_result()
    end))

    it("gives its loop before and after an extra field is set",
        async(function()
            local loop = lasio.get_running_loop()
            local f = lasio.Future()
            assert.equal(loop, f:get_loop())
            local t = lasio.spawn(function() lasio.sleep(0) end)
            assert.equal(loop, t:get_loop())
            t:set_name("renamed") -- the extra table takes the loop in
            assert.equal(loop, t:get_loop())
            assert.equal("renamed", t:get_name())
            t:await()
            collectgarbage()
            assert.equal(loop, t:get_loop())
        end))
end)

describe("a task that waited in a WaitQueue", function()
    it("sleeps, shows its sleep and is cancelled in it afterwards",
        async(function()
            local q = lasio.Queue()
            local phase
            local t = lasio.spawn(function()
                local ok, e = pcall(q.get, q)
                assert(not ok and helper.is_cancelled(e))
                lasio.current_task():uncancel()
                phase = "sleeping"
                lasio.sleep(30)
                phase = "woke"
            end)
            lasio.sleep(0)
            assert.equal("Queue.get", (waiting_on(t)))
            t:cancel() -- takes it out of the queue
            lasio.sleep(0)
            assert.equal("sleeping", phase)
            assert.equal("sleep 30", (waiting_on(t)))
            t:cancel() -- takes its timer out of the heap
            assert.is_true(helper.is_cancelled(select(2, pcall(t.await, t))))
            assert.is_nil(phase == "woke" or nil)
            -- the heap is sound: a later timer fires alone
            local fired = 0
            lasio.get_running_loop():call_later(0.01, function()
                fired = fired + 1
            end)
            lasio.sleep(0.05)
            assert.equal(1, fired)
        end))

    it("keeps the order of the others when one leaves from the middle",
        async(function()
            local q = lasio.Queue()
            local got, tasks = {}, {}
            for i = 1, 50 do
                tasks[i] = lasio.spawn(function()
                    local v = q:get()
                    got[#got + 1] = {i, v}
                end)
            end
            lasio.sleep(0)
            for i = 2, 50, 2 do tasks[i]:cancel() end
            lasio.sleep(0)
            for k = 1, 25 do q:put_nowait(k) end
            for i = 1, 49, 2 do tasks[i]:await() end
            assert.equal(25, #got)
            for k = 1, 25 do
                assert.same({2 * k - 1, k}, got[k])
            end
        end))
end)

describe("creation sites", function()
    it("names each of hundreds of distinct lines, and the same line alike",
        async(function()
            -- a chunk with 300 lines that each make a task: more sites
            -- than the table's first sizes
            local src = {"local lasio = ...", "local ts = {}"}
            for i = 1, 300 do
                src[#src + 1] = ("ts[%d] = lasio.spawn(function() end)"):format(i)
            end
            src[#src + 1] = "return ts"
            local ts = assert(load(table.concat(src, "\n"), "=sites.lua"))(lasio)
            for i = 1, 300 do
                assert.equal("sites.lua:" .. (i + 2), (ts[i]:created_at()))
            end
            local again = {}
            for i = 1, 3 do again[i] = lasio.spawn(function() end) end
            local site = again[1]:created_at()
            assert.equal(site, again[2]:created_at())
            assert.equal(site, again[3]:created_at())
            assert.not_equal(site, ts[1]:created_at())
            lasio.gather(ts)
            lasio.gather(again)
            -- a done task keeps its site
            assert.equal("sites.lua:3", (ts[1]:created_at()))
        end))
end)

describe("budgets", function()
    it("are found again after the task's coroutine changed hands",
        async(function()
            -- finished tasks give their coroutines to new ones: a budget
            -- belongs to the task, not to the coroutine it ran on
            for _ = 1, 3 do lasio.spawn(function() end):await() end
            local free = lasio.spawn(function() lasio.sleep(0) return "free" end)
            local t = lasio.spawn(function()
                lasio.sleep(0)
                local x = 0
                while true do x = x + 1 end
            end)
            t:set_budget{ instructions = 200000 }
            assert.equal("free", free:await())
            local ok, e = pcall(t.await, t)
            assert.is_false(ok)
            assert.equal("instructions", e.budget)
            assert.equal("task", e.scope)
            local used = t:get_budget()
            assert.equal(200000, used.instructions)
            assert.is_true(used.instructions_used >= 200000)
            assert.is_nil(free:get_budget().instructions)
            -- a new task on a reused coroutine has none
            local n = lasio.spawn(function()
                local x = 0
                for _ = 1, 300000 do x = x + 1 end
                return x
            end)
            assert.equal(300000, n:await())
            assert.is_nil(n:get_budget().instructions)
        end))
end)

describe("budgets of tasks that take turns", function()
    it("charge each its own", async(function()
        local function spin()
            local x = 0
            while true do
                for _ = 1, 1000 do x = x + 1 end
                lasio.sleep(0) -- the other runs between our steps
            end
        end
        local a, b = lasio.spawn(spin), lasio.spawn(spin)
        local free = lasio.spawn(function()
            for _ = 1, 50 do lasio.sleep(0) end
            return "free"
        end)
        a:set_budget{ instructions = 100000 }
        b:set_budget{ instructions = 300000 }
        local _, ea = pcall(a.await, a)
        local _, eb = pcall(b.await, b)
        assert.equal("instructions", ea.budget)
        assert.equal(100000, ea.limit)
        assert.equal("instructions", eb.budget)
        assert.equal(300000, eb.limit)
        local ua, ub = a:get_budget(), b:get_budget()
        assert.is_true(ua.instructions_used >= 100000)
        assert.is_true(ua.instructions_used < 200000)
        assert.is_true(ub.instructions_used >= 300000)
        assert.equal("free", free:await())
    end))
end)

describe("a gather", function()
    it("counts a child at its end, after the child's other callbacks were queued",
        async(function()
            local order = {}
            local f = lasio.Future()
            local g = lasio.spawn(function()
                lasio.gather(f)
                order[#order + 1] = "gathered"
            end)
            lasio.sleep(0)
            f:add_done_callback(function() order[#order + 1] = "callback" end)
            f:set_result(1)
            g:await()
            assert.same({"callback", "gathered"}, order)
        end))

    it("gathers many children that end in one turn", async(function()
        local n = math.floor(2000 * SMALL)
        local fs = {}
        for i = 1, n do fs[i] = lasio.Future() end
        local g = lasio.spawn(function() return lasio.gather(fs) end)
        lasio.sleep(0)
        for i = 1, n do fs[i]:set_result(i) end
        local r = g:await()
        assert.equal(n, r.n)
        assert.equal(n, r[n])
    end))
end)

describe("the ready queue after a burst", function()
    it("runs every entry of bursts larger than its ring, again and again",
        async(function()
            local n = math.floor(20000 * SMALL)
            for round = 1, 3 do
                local ts = {}
                for i = 1, n do
                    ts[i] = lasio.spawn(function()
                        lasio.sleep(0)
                        lasio.sleep(0)
                        return i * round
                    end)
                end
                local r = lasio.gather(ts)
                assert.equal(n, r.n)
                assert.equal(n * round, r[n])
                -- small turns after the burst
                for _ = 1, 10 do lasio.sleep(0) end
            end
        end))
end)
