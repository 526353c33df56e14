-- Debug mode (docs/API.md, Loop): slow callbacks and task steps are
-- reported, and tasks record where they were created.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"

describe("debug mode", function()
    -- a child process: the error is left unretrieved on purpose, which
    -- would make the lasio command running the specs exit 4
    it("records where a task was created in the never-retrieved context", function()
        local out, err, status = helper.run_script([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    local seen
    loop:set_exception_handler(function(_, ctx)
        if ctx.message == "Task exception was never retrieved" then seen = ctx end
    end)
    loop:set_debug(true)
    local t = lasio.spawn(function() error("boom") end)
    lasio.sleep(0)
    lasio.sleep(0)
    t = nil
    for _ = 1, 3 do collectgarbage() lasio.sleep(0) end
    print(seen and seen.source_traceback)
end)
]], {interp = "lua5.4"})
        assert.are.equal(0, status, err)
        assert.truthy(out:find("script.lua:9:", 1, true), out)
    end)

    it("lists the creation site of stuck tasks in the deadlock report", function()
        local out, err, status = helper.run_script([[
local lasio = require "lasio"
lasio.get_running_loop():set_debug(true)
local t = lasio.spawn(function() lasio.Future():await() end)
t:await()
]])
        assert.are.equal(5, status, err)
        assert.are.equal("", out)
        assert.truthy(err:find("created at:", 1, true), err)
        assert.truthy(err:find("script.lua:3:", 1, true), err)
    end)

    it("reports a slow task step through the exception handler", helper.async(function()
        local loop = lasio.get_running_loop()
        local got = {}
        local old = loop:get_exception_handler()
        loop:set_exception_handler(function(_, ctx) got[#got + 1] = ctx end)
        loop:set_debug(true)
        local saved = loop.slow_callback_duration
        loop.slow_callback_duration = 0.01
        local t = lasio.spawn(function()
            local t0 = os.clock()
            while os.clock() - t0 < 0.05 do end
        end)
        t:await()
        loop.slow_callback_duration = saved
        loop:set_debug(false)
        loop:set_exception_handler(old)
        local found
        for _, ctx in ipairs(got) do
            if tostring(ctx.message):find("^Executing lasio.Task<") then found = ctx end
        end
        assert.is_not_nil(found)
        assert.are.equal(t, found.task)
    end))

    it("is off by default and slow_callback_duration defaults to 0.1", function()
        local loop = lasio.new_event_loop()
        assert.is_false(loop:get_debug())
        assert.are.equal(0.1, loop.slow_callback_duration)
        assert.has_error(function() loop.slow_callback_duration = -1 end)
        assert.has_error(function() loop.no_such_field = 1 end)
        loop:close()
    end)
end)

describe("debug mode from the outside", function()
    local probe = [[
local lasio = require "lasio"
print(lasio.get_event_loop():get_debug(), lasio.new_event_loop():get_debug())
]]
    it("LASIO_DEBUG turns it on for every loop (any value but '' and '0')", function()
        for _, interp in ipairs(helper.interps) do
            for env, want in pairs({["LASIO_DEBUG=1"] = "true\ttrue\n",
                                    ["LASIO_DEBUG=yes"] = "true\ttrue\n",
                                    ["LASIO_DEBUG=0"] = "false\tfalse\n",
                                    ["LASIO_DEBUG="] = "false\tfalse\n",
                                    ["LASIO_UNRELATED=1"] = "false\tfalse\n"}) do
                local out, err, status = helper.run_child(probe, {interp = interp, env = env})
                assert.are.equal(0, status, err)
                assert.are.equal(want, out, interp .. " " .. env)
            end
        end
    end)

    it("the command's --debug does the same, and debug mode reports slow steps", function()
        local out, err, status = helper.run_child(probe, {flags = "--debug"})
        assert.are.equal(0, status, err)
        assert.are.equal("true\ttrue\n", out)
        local _, err2, status2 = helper.run_child([[
local lasio = require "lasio"
lasio.get_running_loop().slow_callback_duration = 0.01
local t = os.clock() + 0.05
while os.clock() < t do end
lasio.sleep(0)
]], {flags = "--debug"})
        assert.are.equal(0, status2, err2)
        assert.truthy(err2:find("Executing lasio.Task<", 1, true), err2)
    end)
end)
