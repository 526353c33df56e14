-- The embedding API seen from outside: examples/embed/host.c, a C program
-- with its own libevent work that runs Lua scripts on its event_base, is
-- built by CMake and run here with its output checked. The API's own C
-- tests (tests/embed) run under ctest.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local function slurp(p)
    local h = io.open(p)
    if not h then return nil end
    local s = h:read("a")
    h:close()
    return s
end

describe("examples/embed", function()
    local host = helper.build .. "/examples/embed/host"

    it("host.c runs sensors.lua on its own event_base", function()
        assert.is_truthy(slurp(host), "not built: " .. host)
        local tmp = os.tmpname()
        local cmd = string.format("cd %s && timeout 30 %s %s >%s 2>%s.err",
            helper.shell_quote(helper.root), helper.shell_quote(host),
            "examples/embed/sensors.lua", tmp, tmp)
        local _, _, status = os.execute(cmd)
        local out, err = slurp(tmp), slurp(tmp .. ".err")
        os.remove(tmp)
        os.remove(tmp .. ".err")
        assert.are.equal(0, status, err)
        assert.are.equal("", err)
        assert.are.equal(table.concat({
            "kitchen: 13.5",
            "garage: 29.5",
            "attic: 22.5",
            "read in parallel: yes",
            "sum of 1..1000000 = 500000500000",
            "host heartbeats seen: yes",
            "host: examples/embed/sensors.lua finished",
            "host: heartbeat still armed: yes",
            "" }, "\n"), out)
    end)

    it("host.c reports a failing script and still frees everything",
        function()
            local dir = os.tmpname()
            local f = assert(io.open(dir, "w"))
            f:write("host.sensor('x', 1)\nerror('broken sensor')\n")
            f:close()
            local tmp = os.tmpname()
            local _, _, status = os.execute(string.format(
                "timeout 30 %s %s >%s 2>&1", helper.shell_quote(host),
                helper.shell_quote(dir), tmp))
            local out = slurp(tmp)
            os.remove(tmp)
            os.remove(dir)
            assert.are.equal(0, status, out)
            assert.is_truthy(out:find("failed: .*broken sensor"), out)
            assert.is_truthy(out:find("heartbeat still armed: yes", 1, true),
                out)
        end)

    it("untrusted.c runs several sandboxed scripts with their own budgets "
        .. "on one loop, its ticker on time", function()
        local bin = helper.build .. "/examples/embed/untrusted"
        assert.is_truthy(slurp(bin), "not built: " .. bin)
        local tmp = os.tmpname()
        local cmd = string.format("cd %s/examples/embed && timeout 60 %s "
            .. "untrusted/fib.lua:1000000:1:1000000 "
            .. "untrusted/spin.lua:5000000:1:1000000 "
            .. "untrusted/hog.lua:100000000:2:4000000 "
            .. "untrusted/escape.lua:1000000:1:1000000 >%s 2>%s.err",
            helper.shell_quote(helper.root), helper.shell_quote(bin), tmp, tmp)
        local _, _, status = os.execute(cmd)
        local out, err = slurp(tmp), slurp(tmp .. ".err")
        os.remove(tmp)
        os.remove(tmp .. ".err")
        assert.are.equal(0, status, err)
        assert.are.equal("", err)
        assert.are.equal(table.concat({
            "fib.lua: returned 6765",
            "spin.lua: stopped by its instructions budget",
            "hog.lua: stopped by its memory budget",
            "escape.lua: failed: escape.lua:2: attempt to call a nil value "
                .. "(field 'execute')",
            "ticker: 20 ticks, on time: yes",
            "memory: peak under the cap: yes",
            "" }, "\n"), out)
    end)
end)
