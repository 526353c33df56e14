-- Heartbeats and failover across a network partition: a primary sends a
-- heartbeat to a watcher every second; the watcher promotes the backup
-- after 3 s without one. At t = 10 s the primary is cut off from the
-- watcher (testing.partition); at t = 20 s the network heals and the
-- primary's delayed heartbeats arrive, too late.
-- usage: lasio --virtual-time examples/vt_failover.lua
--        lua5.4 examples/vt_failover.lua
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local testing = require "lasio.testing"

local function flow()
    local loop = lasio.get_running_loop()
    local function log(fmt, ...) print(("%5.1f  " .. fmt):format(loop:time(), ...)) end
    local leader, late = "primary", 0

    testing.listen("watcher", function(reader)
        while true do
            local ok, line = pcall(lasio.wait_for, function() return reader:readline() end, 3)
            if not ok then
                if leader == "primary" then
                    leader = "backup"
                    log("watcher: no heartbeat for 3 s, backup promoted")
                end
            elseif line == "" then
                return
            elseif leader ~= "primary" then
                late = late + 1
                if late == 1 then log("watcher: late heartbeat %s ignored", line:sub(1, -2)) end
            end
        end
    end)

    local primary = lasio.spawn(function()
        local _, writer = testing.connect("watcher", {from = "primary", latency = 0.01})
        for beat = 1, 25 do
            writer:write("beat" .. beat .. "\n")
            lasio.sleep(1)
        end
        writer:close()
    end)

    lasio.sleep(10)
    log("network: partition primary | watcher")
    testing.partition("primary", "watcher")
    lasio.sleep(10)
    log("network: healed")
    testing.heal()
    primary:await()
    testing.wait_idle()
    log("leader is %s; %d heartbeats came too late", leader, late)
    testing.reset()
end

if testing.virtual() then
    flow()
else
    testing.run(flow, {seed = 1})
end
