-- Scripts under the lasio command free everything they used: in the
-- sanitizer build LeakSanitizer checks the whole run (lua_close included);
-- in both builds the exit status and output are checked.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local sanitized = os.getenv("LASIO_SANITIZED") == "1"
-- children of this process inherit LD_PRELOAD for stock lua5.4; the
-- lasio binary links the sanitizer itself and gets leak checking on
local env = sanitized and "env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1" or nil

local scripts = {
    ["tasks, timers and cancellation"] = {[[
local lasio = require "lasio"
local loop = lasio.get_running_loop()
local t = {}
for i = 1, 500 do
    t[i] = lasio.spawn(function() lasio.sleep(i % 7 == 0 and 100 or 0.001) return i end)
    loop:call_later(0.001 * (i % 5), function() end)
end
local h = loop:call_later(100, function() end)
h:cancel()
lasio.sleep(0.02)
for i = 1, 500 do if not t[i]:done() then t[i]:cancel() end end
lasio.sleep(0)
local n = 0
for i = 1, 500 do if not t[i]:cancelled() then n = n + t[i]:result() end end
print(n)
]], "107358\n", 0},
    ["a failing main task"] = {[[
local lasio = require "lasio"
lasio.spawn(function() lasio.sleep(100) end)
error("boom")
]], "", 1},
    ["a deadlock"] = {[[
local lasio = require "lasio"
lasio.spawn(function() lasio.Future():await() end)
lasio.Future():await()
]], "", 5},
    ["a child's pipes open at the end, both buffers full"] = {[[
local lasio = require "lasio"
local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE, stdout = lasio.PIPE})
p.stdin:write(string.rep("x", 1048576))
lasio.sleep(0.01)
print(p.stdin:get_write_buffer_size() > 0, p.stdout:buffered() > 0)
]], "true\ttrue\n", 0},
    ["os.exit from a task with work pending"] = {[[
local lasio = require "lasio"
lasio.spawn(function() lasio.sleep(100) end)
lasio.get_running_loop():call_later(100, print)
lasio.sleep(0)
io.write("bye\n")
os.exit(3, true)
]], "bye\n", 3},
}

describe("no leaks" .. (sanitized and " (LeakSanitizer)" or ""), function()
    for name, case in pairs(scripts) do
        it(name, function()
            local out, err, status = helper.run_script(case[1], {env = env})
            assert.are.equal(case[3], status, err)
            assert.are.equal(case[2], out)
            assert.falsy(err:find("LeakSanitizer", 1, true), err)
            assert.falsy(err:find("AddressSanitizer", 1, true), err)
        end)
    end
end)
