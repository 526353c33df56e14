-- Specs for lasio.sleep and loop timers: never early, sleep(0) ordering,
-- extra return values, bad and huge durations (T5), timers
-- cancelled or re-armed from their own callbacks, past deadlines (T4's
-- loop part). Durations are hang detectors scaled by helper.t.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

describe("sleep", function()
    it("returns its extra arguments, nils included", async(function()
        local r = table.pack(lasio.sleep(0, "a", nil, 3, nil))
        assert.are.equal(4, r.n)
        assert.are.equal("a", r[1])
        assert.is_nil(r[2])
        assert.are.equal(3, r[3])
        r = table.pack(lasio.sleep(0.001, "x"))
        assert.are.equal(1, r.n)
        assert.are.equal("x", r[1])
        assert.are.equal(0, select("#", lasio.sleep(0)))
    end))

    it("never wakes early", async(function()
        local loop = lasio.get_running_loop()
        for _, d in ipairs({ 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.0001, 0.0123 }) do
            local t0 = loop:time()
            lasio.sleep(d)
            local dt = loop:time() - t0
            assert.is_true(dt >= d, ("sleep(%g) woke after %g"):format(d, dt))
            assert.is_true(dt < d + helper.t(2), ("sleep(%g) took %g"):format(d, dt))
        end
    end))

    it("accepts integer delays", async(function()
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        assert.are.equal("i", lasio.sleep(0, "i"))
        local t = lasio.spawn(function() lasio.sleep(1) return "one" end)
        lasio.sleep(0)
        assert.is_false(t:done())
        assert.are.equal("one", t:await())
        assert.is_true(loop:time() - t0 >= 1)
    end))

    it("sleep(0) lets every ready callback and task run first", async(function()
        local loop = lasio.get_running_loop()
        local log = {}
        local t = lasio.spawn(function() log[#log + 1] = "task" end)
        loop:call_soon(function() log[#log + 1] = "cb" end)
        lasio.sleep(0)
        assert.are.same({ "task", "cb" }, log)
        t:await()
    end))

    it("concurrent sleeps finish in deadline order", async(function()
        local log = {}
        local tasks = {}
        for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
            tasks[#tasks + 1] = lasio.spawn(function()
                lasio.sleep(d)
                log[#log + 1] = d
            end)
        end
        for _, t in ipairs(tasks) do t:await() end
        assert.are.same({ 0.01, 0.02, 0.03 }, log)
    end))

    it("many sleeping tasks all wake, none early", async(function()
        local loop = lasio.get_running_loop()
        local early, done = 0, 0
        local tasks = {}
        for i = 1, 200 do
            local d = (i % 20) * 0.001
            tasks[i] = lasio.spawn(function()
                local t0 = loop:time()
                lasio.sleep(d)
                if loop:time() - t0 < d then early = early + 1 end
                done = done + 1
            end)
        end
        for _, t in ipairs(tasks) do t:await() end
        assert.are.equal(200, done)
        assert.are.equal(0, early)
    end))

    -- covers T5
    describe("bad and huge durations (T5)", function()
        local function bad(delay, needles)
            local ok, e = pcall(lasio.sleep, delay)
            assert.is_false(ok, "sleep(" .. tostring(delay) .. ") did not raise")
            local m = tostring(e):lower()
            local hit = false
            for _, n in ipairs(needles) do
                if m:find(n, 1, true) then hit = true end
            end
            assert.is_true(hit, "message does not name the bad delay: " .. tostring(e))
            return e
        end

        it("sleep(-1) raises naming the delay", async(function()
            bad(-1, { "-1" })
            bad(-0.5, { "-0.5" })
        end))

        it("sleep(0/0) raises naming NaN", async(function()
            bad(0 / 0, { "nan" })
        end))

        it("sleep of a non-number raises", async(function()
            bad("soon", { "soon", "number expected", "string" })
            bad({}, { "table", "number expected" })
            bad(true, { "boolean", "number expected" })
        end))

        it("sleep() without a delay raises", async(function()
            assert.is_false(pcall(lasio.sleep))
        end))

        it("a bad delay raises at once and leaves the task usable", async(function()
            local loop = lasio.get_running_loop()
            local t = lasio.spawn(function()
                assert(not pcall(lasio.sleep, -1))
                assert(not pcall(lasio.sleep, 0 / 0))
                return lasio.sleep(0.001, "usable")
            end)
            assert.are.equal("usable", t:await())
            assert.is_true(loop:is_running())
        end))

        for _, case in ipairs({
            { "math.huge", math.huge },
            { "2^53 ms", 2 ^ 53 / 1000 },
            { "2^53 s", 2 ^ 53 },
            { "1e18 s (overflows int64 microseconds)", 1e18 },
            { "2^63 s", 2 ^ 63 },
            { "1e300 s", 1e300 },
            { "math.maxinteger", math.maxinteger },
        }) do
            it("sleep(" .. case[1] .. ") does not wake; cancelling ends it", async(function()
                local loop = lasio.get_running_loop()
                local woke = false
                local t = lasio.spawn(function()
                    lasio.sleep(case[2])
                    woke = true
                end)
                lasio.sleep(0.05)
                assert.is_false(woke, "woke at once (overflow?)")
                assert.is_false(t:done(), t:done() and tostring(t:exception()) or "")
                local t0 = loop:time()
                assert.is_true(t:cancel())
                local ok, e = pcall(t.await, t)
                assert.is_false(ok)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(loop:time() - t0 < helper.t(1))
            end))
        end
    end)
end)

describe("timers", function()
    it("no timer callback runs before its when()", async(function()
        local loop = lasio.get_running_loop()
        local fired = {}
        local seed = 12345
        local function rnd()
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed / 2147483648
        end
        for i = 1, 100 do
            local h
            h = loop:call_later(rnd() * 0.03, function()
                fired[#fired + 1] = { at = loop:time(), when = h:when(), i = i }
            end)
        end
        assert.is_true(helper.wait_until(function() return #fired == 100 end, 5))
        for k, f in ipairs(fired) do
            assert.is_true(f.at >= f.when, "timer " .. f.i .. " fired early")
            if k > 1 then
                assert.is_true(f.when >= fired[k - 1].when, "out of deadline order")
            end
        end
    end))

    -- covers T5
    it("a timer cancelled from its own callback is called once, no error (T5)",
        async(function()
            local loop = lasio.get_running_loop()
            local n = 0
            local h
            local seen = helper.capture_exceptions(function()
                h = loop:call_later(0.001, function()
                    n = n + 1
                    h:cancel()
                    h:cancel()
                end)
                lasio.sleep(0.03)
            end)
            assert.are.equal(1, n)
            assert.are.equal(0, #seen)
        end))

    it("a timer re-armed from its own callback runs exactly that often (T5)",
        async(function()
            local loop = lasio.get_running_loop()
            local n = 0
            local function tick()
                n = n + 1
                if n < 5 then loop:call_later(0.001, tick) end
            end
            loop:call_later(0.001, tick)
            assert.is_true(helper.wait_until(function() return n >= 5 end, 5))
            lasio.sleep(0.02)
            assert.are.equal(5, n)
        end))

    it("a timer cancelled by another timer due at the same time does not run",
        async(function()
            -- Both are due in the same batch; whichever runs first cancels
            -- the other, so exactly one runs (the order of equal deadlines
            -- is not part of the contract).
            local loop = lasio.get_running_loop()
            for _ = 1, 20 do
                local ran = {}
                local when = loop:time() + 0.003
                local ha, hb
                ha = loop:call_at(when, function() ran[#ran + 1] = "A" hb:cancel() end)
                hb = loop:call_at(when, function() ran[#ran + 1] = "B" ha:cancel() end)
                lasio.sleep(0.01)
                assert.are.equal(1, #ran, table.concat(ran, ","))
                assert.is_true(ha:cancelled() or hb:cancelled())
            end
        end))

    it("timers 10 microseconds apart fire in deadline order", async(function()
        local loop = lasio.get_running_loop()
        for _ = 1, 20 do
            local log = {}
            local when = loop:time() + 0.003
            loop:call_at(when + 1e-5, function() log[#log + 1] = "B" end)
            loop:call_at(when, function() log[#log + 1] = "A" end)
            lasio.sleep(0.01)
            assert.are.same({ "A", "B" }, log)
        end
    end))

    it("cancelling a timer after it fired is harmless", async(function()
        local loop = lasio.get_running_loop()
        local n = 0
        local h = loop:call_later(0, function() n = n + 1 end)
        assert.is_true(helper.wait_until(function() return n == 1 end, 2))
        h:cancel()
        h:cancel()
        lasio.sleep(0.005)
        assert.are.equal(1, n)
    end))

    -- the loop's timer stays armed for the earliest deadline when that
    -- one is cancelled: it fires early then, and must run nothing
    it("after the earliest timer is cancelled, the next fires at its own time",
        async(function()
            local loop = lasio.get_running_loop()
            local fired = {}
            local t0 = loop:time()
            local early = loop:call_later(0.01, function() fired[#fired + 1] = "early" end)
            loop:call_later(0.04, function() fired[#fired + 1] = loop:time() - t0 end)
            local sleeper = lasio.spawn(function()
                lasio.sleep(0.03)
                return loop:time() - t0
            end)
            lasio.sleep(0)
            early:cancel()
            local slept = sleeper:await()
            assert.is_true(slept >= 0.03, ("the sleep woke after %g"):format(slept))
            assert.is_true(helper.wait_until(function() return #fired == 1 end, helper.t(2)))
            assert.is_true(fired[1] >= 0.04, ("the timer ran after %s"):format(fired[1]))
            lasio.sleep(0.02)
            assert.are.equal(1, #fired)
        end))

    -- covers T5
    describe("bad durations for call_later (T5)", function()
        it("NaN and non-numbers raise, or at least never fire at once",
            async(function()
                local loop = lasio.get_running_loop()
                for _, d in ipairs({ 0 / 0, "x", {} }) do
                    local fired = false
                    local ok, h = pcall(loop.call_later, loop, d, function() fired = true end)
                    if ok then
                        lasio.sleep(0.02)
                        assert.is_false(fired, "call_later(" .. tostring(d) .. ") fired")
                        h:cancel()
                    end
                    if type(d) ~= "number" then
                        assert.is_false(ok, "call_later(" .. tostring(d) .. ") accepted")
                    end
                end
            end))

        it("huge delays never fire", async(function()
            local loop = lasio.get_running_loop()
            local fired = 0
            local hs = {}
            for _, d in ipairs({ math.huge, 2 ^ 53 / 1000, 1e18, 2 ^ 63, 1e300 }) do
                hs[#hs + 1] = loop:call_later(d, function() fired = fired + 1 end)
            end
            hs[#hs + 1] = loop:call_at(math.huge, function() fired = fired + 1 end)
            lasio.sleep(0.05)
            assert.are.equal(0, fired)
            for _, h in ipairs(hs) do h:cancel() end
        end))

        it("a negative delay runs soon (like asyncio) or raises, never hangs or crashes",
            async(function()
                local loop = lasio.get_running_loop()
                local fired = false
                local ok = pcall(loop.call_later, loop, -1, function() fired = true end)
                if ok then
                    assert.is_true(helper.wait_until(function() return fired end, 2))
                end
            end))
    end)

    it("tasks spinning on sleep(0) do not starve timers", async(function()
        local loop = lasio.get_running_loop()
        local spinning = true
        local spins = 0
        local spinners = {}
        for i = 1, 2 do
            spinners[i] = lasio.spawn(function()
                while spinning do
                    spins = spins + 1
                    lasio.sleep(0)
                end
            end)
        end
        local t0 = loop:time()
        local fired_after
        loop:call_later(0.01, function() fired_after = loop:time() - t0 end)
        local sleeper_done
        local sleeper = lasio.spawn(function()
            lasio.sleep(0.02)
            sleeper_done = loop:time() - t0
        end)
        -- this task spins too, without yielding to the kernel
        while (not fired_after or not sleeper_done) and loop:time() - t0 < helper.t(3) do
            lasio.sleep(0)
        end
        spinning = false
        for _, t in ipairs(spinners) do t:await() end
        sleeper:await()
        assert.is_not_nil(fired_after, "timer starved")
        assert.is_not_nil(sleeper_done, "sleep starved")
        assert.is_true(fired_after < helper.t(1), "timer late by " .. tostring(fired_after))
        assert.is_true(spins > 100)
    end))

    it("a callback rescheduling itself with call_soon does not starve timers",
        async(function()
            local loop = lasio.get_running_loop()
            local running = true
            local n = 0
            local give_up = loop:time() + helper.t(3) -- hang guard
            local function again()
                n = n + 1
                if running and loop:time() < give_up then loop:call_soon(again) end
            end
            loop:call_soon(again)
            local fired = false
            loop:call_later(0.005, function() fired = true; running = false end)
            local t0 = loop:time()
            lasio.sleep(0.02)
            assert.is_true(fired)
            assert.is_false(running)
            assert.is_true(loop:time() - t0 < helper.t(2))
            assert.is_true(n > 10)
        end))

    -- asyncio's _run_once collects due timers on every turn: a due
    -- callback waits for the batch in front of it, not a whole budget
    it("call_later(0) runs within two turns of a sleep(0) loop", async(function()
        local loop = lasio.get_running_loop()
        local turns, ran_at = 0, nil
        loop:call_later(0, function() ran_at = turns end)
        while not ran_at and turns < 10000 do
            turns = turns + 1
            lasio.sleep(0)
        end
        assert.is_not_nil(ran_at)
        assert.is_true(ran_at <= 2, "ran after " .. tostring(ran_at) .. " turns")
    end))

    it("a due timer runs on the next turn among several busy tasks", async(function()
        local loop = lasio.get_running_loop()
        local running, turns = true, 0
        local spinners = {}
        for i = 1, 3 do
            spinners[i] = lasio.spawn(function()
                while running do lasio.sleep(0) end
            end)
        end
        lasio.sleep(0)
        local ran_at
        loop:call_later(0, function() ran_at = turns end)
        while not ran_at and turns < 10000 do
            turns = turns + 1
            lasio.sleep(0)
        end
        running = false
        for _, t in ipairs(spinners) do t:await() end
        assert.is_true(ran_at <= 2, "ran after " .. tostring(ran_at) .. " turns")
    end))

    -- covers T4 (the loop part: a deadline already in the past)
    it("a deadline in the past runs on a later turn, not inline (T4)", async(function()
        local loop = lasio.get_running_loop()
        local log = {}
        loop:call_at(loop:time() - 10, function() log[#log + 1] = "past" end)
        loop:call_later(0, function() log[#log + 1] = "zero" end)
        assert.are.same({}, log)
        assert.is_true(helper.wait_until(function() return #log == 2 end, 2))
        assert.are.same({ "past", "zero" }, log)
    end))
end)
