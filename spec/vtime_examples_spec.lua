-- The virtual-time examples run as tests, under the lasio command with
-- --virtual-time and under stock lua5.4 (where they call
-- lasio.testing.run themselves): the same output every run and seed.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local function run(args, interp)
    return helper.run_in_root(args, interp, 60)
end

local function both(path, lasio_flags, extra)
    local a, ea, sa = run(lasio_flags .. " " .. path .. " " .. (extra or ""), helper.lasio_bin)
    local b, eb, sb = run(path .. " " .. (extra or ""), "lua5.4")
    assert.are.equal(0, sa, ea)
    assert.are.equal(0, sb, eb)
    return a, b
end

describe("virtual-time examples", function()
    it("vt_pipeline.lua covers an hour, the same in both interpreters", function()
        local a, b = both("examples/vt_pipeline.lua", "--virtual-time --seed=1")
        assert.are.equal(a, b)
        assert.matches("01:00:00  60 min: 3604 jobs done, 100 queued", a, 1, true)
        assert.matches("pipeline finished at 3701.25 s of virtual time: 3706 jobs", a, 1, true)
    end)

    it("vt_retry.lua is reproducible under several seeds, and seeds differ", function()
        local outs = {}
        for _, seed in ipairs({"1", "2", "3"}) do
            local a = run("--virtual-time --seed=" .. seed .. " examples/vt_retry.lua", helper.lasio_bin)
            local again = run("--virtual-time --seed=" .. seed .. " examples/vt_retry.lua", helper.lasio_bin)
            assert.are.equal(a, again)
            assert.matches("seed " .. seed .. ": 5 requests in %d+ attempts", a)
            outs[#outs + 1] = a
        end
        assert.are_not.equal(outs[1], outs[2])
        local _, b = both("examples/vt_retry.lua", "--virtual-time --seed=1", "1 2 3")
        assert.are.equal(table.concat(outs), b)
    end)

    it("vt_failover.lua promotes the backup across the partition", function()
        local a, b = both("examples/vt_failover.lua", "--virtual-time")
        assert.are.equal(a, b)
        assert.are.equal(table.concat({
            " 10.0  network: partition primary | watcher",
            " 12.0  watcher: no heartbeat for 3 s, backup promoted",
            " 20.0  network: healed",
            " 20.0  watcher: late heartbeat beat11 ignored",
            " 25.0  leader is backup; 15 heartbeats came too late", ""}, "\n"), a)
    end)
end)
