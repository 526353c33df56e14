-- lasio.core.WaitQueue: the allocation-free FIFO of waiting tasks under the
-- synchronisation primitives and queues.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local core = require "lasio.core"
local async = helper.async

describe("WaitQueue", function()
    it("wakes waiters one at a time in FIFO order", async(function()
        local wq = core.WaitQueue()
        local order = {}
        for i = 1, 3 do
            lasio.spawn(function()
                assert.is_true(wq:wait())
                order[#order + 1] = i
            end)
        end
        lasio.sleep(0)
        assert.are.equal(3, #wq)
        assert.is_true(wq:wake())
        lasio.sleep(0)
        assert.are.same({1}, order)
        assert.are.equal(2, wq:wake_all())
        lasio.sleep(0)
        assert.are.same({1, 2, 3}, order)
        assert.are.equal(0, #wq)
        assert.is_false(wq:wake())
    end))

    it("reports a cancellation, and whether a wake-up came first", async(function()
        local wq = core.WaitQueue()
        local results = {}
        local function waiter(i)
            results[i] = table.pack(wq:wait())
        end
        local a = lasio.spawn(waiter, 1)
        local b = lasio.spawn(waiter, 2)
        lasio.sleep(0)
        a:cancel("while waiting") -- never woken
        wq:wake() -- wakes b (a left the queue)
        b:cancel("after the wake-up")
        lasio.sleep(0)
        assert.is_false(results[1][1])
        assert.is_true(lasio.CancelledError:is(results[1][2]))
        assert.are.equal("while waiting", results[1][2].message)
        assert.is_false(results[1][3])
        assert.is_false(results[2][1])
        assert.are.equal("after the wake-up", results[2][2].message)
        assert.is_true(results[2][3])
        assert.are.equal(0, #wq)
    end))

    it("refuses a wait outside a task and names the caller", async(function()
        local wq = core.WaitQueue()
        local res
        lasio.get_running_loop():call_soon(function()
            res = table.pack(pcall(wq.wait, wq, "lasio.Thing:get"))
        end)
        lasio.sleep(0)
        assert.is_false(res[1])
        assert.truthy(tostring(res[2]):find("lasio.Thing:get: not inside a task", 1, true),
            tostring(res[2]))
        assert.are.equal(0, #wq)
    end))

    it("binds to the loop of its first wait", function()
        local out, err, status = helper.run_script([[
local lasio = require "lasio"
local core = require "lasio.core"
local wq = core.WaitQueue()
lasio.run(function()
    local t = lasio.spawn(function() return wq:wait() end)
    lasio.sleep(0)
    wq:wake()
    print("first", t:await())
end)
print(lasio.run(function() return pcall(wq.wait, wq, "x") end))
]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.truthy(out:find("first\ttrue", 1, true), out)
        assert.truthy(out:find("false\tx: bound to a different event loop", 1, true), out)
    end)

    it("closes the state cleanly with tasks waiting on an unclosed loop", function()
        -- tasks carry no finalizer (only failed ones do): at lua_close the
        -- loop's finalizer and the queue's both unlink them before any
        -- memory is freed (the sanitizer build checks the order)
        local out, err, status = helper.run_script([[
local lasio = require "lasio"
local core = require "lasio.core"
wq = core.WaitQueue()
loop = lasio.new_event_loop()
for _ = 1, 3 do loop:create_task(function() wq:wait() end) end
loop:call_soon(function() loop:stop() end)
loop:run_forever()
loop:set_exception_handler(function() end)
for _ = 1, 4 do collectgarbage() end
print("waiters", #wq)
]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.truthy(out:find("waiters\t3", 1), out)
    end)

    it("leaves no dangling task when collected while a task waits (closed loop)", function()
        local out, err, status = helper.run_script([[
local lasio = require "lasio"
local core = require "lasio.core"
local loop = lasio.new_event_loop()
local wq = core.WaitQueue()
local t = loop:create_task(function() wq:wait() end)
loop:call_soon(function() loop:stop() end)
loop:run_forever()
loop:set_exception_handler(function() end)
loop:close()
print("waiters after close", #wq)
wq, t, loop = nil, nil, nil
collectgarbage()
collectgarbage()
print("ok")
]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.truthy(out:find("waiters after close\t0", 1, true), out)
        assert.truthy(out:find("ok", 1, true), out)
    end)
end)
