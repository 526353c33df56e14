-- loop:add_signal_handler / remove_signal_handler (docs/API.md) and
-- the signal hub: bursts, handlers on the loop and never inside a Lua
-- frame, restored dispositions, several loops, the command's defaults
-- replaced by a script's own handlers. SIGINT/SIGTERM cases run in a child
-- process: the spec runner itself must not receive them.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local function mypid()
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("n")
    f:close()
    return pid
end

-- The bit of sig in a /proc/self/status mask line (SigCgt, SigIgn...).
local function has_bit(field, sig)
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    local hex = assert(s:match(field .. ":%s*(%x+)"))
    return (tonumber(hex, 16) >> (sig - 1)) & 1 == 1
end

local SIGUSR1, SIGUSR2 = 10, 12

describe("loop:add_signal_handler", function()
    -- covers P1
    it("runs the handler on the loop after a burst of 1000 signals sent during a blocking call (P1)",
        async(function()
            local loop = lasio.get_running_loop()
            local calls, in_syscall, seen = 0, false, {}
            local fired = lasio.Future()
            loop:add_signal_handler("SIGUSR1", function(a, b)
                calls = calls + 1
                seen.during_syscall = seen.during_syscall or in_syscall
                seen.task = lasio.current_task()
                seen.a, seen.b = a, b
                if not fired:done() then fired:set_result() end
            end, "first", 2)
            in_syscall = true
            -- the signals arrive while os.execute waits for its shell:
            -- SA_RESTART retries the wait, no spurious error
            local ok, how, code = os.execute(string.format(
                "for i in $(seq 1000); do kill -USR1 %d; done", mypid()))
            in_syscall = false
            assert.are.same({true, "exit", 0}, {ok, how, code})
            fired:await()
            assert.is_true(calls >= 1 and calls <= 1000)
            assert.is_false(seen.during_syscall) -- never inside a Lua frame
            assert.is_nil(seen.task)              -- a callback, not a task
            assert.are.equal("first", seen.a)
            assert.are.equal(2, seen.b)
            assert.is_true(loop:remove_signal_handler("SIGUSR1"))
        end))

    it("accepts names with or without SIG and numbers, and replaces an earlier handler",
        async(function()
            local loop = lasio.get_running_loop()
            local got = lasio.Future()
            loop:add_signal_handler("USR2", function() got:set_result("old") end)
            loop:add_signal_handler(SIGUSR2, function() got:set_result("new") end)
            os.execute("kill -USR2 " .. mypid())
            assert.are.equal("new", got:await())
            assert.is_true(loop:remove_signal_handler("SIGUSR2"))
            assert.is_false(loop:remove_signal_handler(SIGUSR2))
        end))

    it("installs the hub's handler only while a handler exists and restores the disposition",
        async(function()
            local loop = lasio.get_running_loop()
            assert.is_false(has_bit("SigCgt", SIGUSR2))
            loop:add_signal_handler("SIGUSR2", function() end)
            assert.is_true(has_bit("SigCgt", SIGUSR2))
            loop:remove_signal_handler("SIGUSR2")
            assert.is_false(has_bit("SigCgt", SIGUSR2))
            assert.is_false(has_bit("SigIgn", SIGUSR2))
        end))

    it("refuses unknown names, bad numbers, SIGKILL, fault signals, real-time signals and non-functions",
        async(function()
            local loop = lasio.get_running_loop()
            local function f() end
            local cases = {
                {"SIGNOPE", "unknown signal name 'SIGNOPE'"},
                {0, "invalid signal number"},
                {1.5, "invalid signal number"},
                {"SIGKILL", "cannot be handled"},
                {"SIGSTOP", "cannot be handled"},
                {"SIGSEGV", "fault signal"},
                {40, "real-time signals"},
            }
            for _, c in ipairs(cases) do
                local ok, err = pcall(loop.add_signal_handler, loop, c[1], f)
                assert.is_false(ok)
                assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
            end
            assert.has_error(function() loop:add_signal_handler("SIGUSR1", 42) end)
            assert.has_error(function() loop:remove_signal_handler("SIGWHAT") end)
        end))

    it("sends a handler's error to the exception handler and keeps running",
        async(function()
            local loop = lasio.get_running_loop()
            local after = lasio.Future()
            local seen = helper.capture_exceptions(function()
                loop:add_signal_handler("SIGUSR1", function()
                    loop:call_soon(function() after:set_result(true) end)
                    error("handler failed")
                end)
                os.execute("kill -USR1 " .. mypid())
                assert.is_true(after:await())
                lasio.sleep(0)
                loop:remove_signal_handler("SIGUSR1")
            end)
            assert.are.equal(1, #seen)
            assert.truthy(tostring(seen[1].exception):find("handler failed", 1, true))
        end))

    it("refuses a closed loop", function()
        local loop = lasio.new_event_loop()
        loop:close()
        assert.has_error(function() loop:add_signal_handler("SIGUSR1", print) end,
            "loop:add_signal_handler: the loop is closed")
        assert.is_false(loop:remove_signal_handler("SIGUSR1"))
    end)
end)

describe("signals and several loops", function()
    -- covers P1 (one signal, every loop that watches it)
    it("forwards one signal to every loop that handles it, also when it was not running", function()
        if helper.mode ~= "lua5.4" then return end -- needs loops driven by hand
        local a, b = lasio.new_event_loop(), lasio.new_event_loop()
        local got = {}
        a:add_signal_handler("SIGUSR1", function() got[#got + 1] = "a" end)
        b:add_signal_handler("SIGUSR1", function() got[#got + 1] = "b" end)
        os.execute("kill -USR1 " .. mypid())
        a:run_until_complete(function() lasio.sleep(0.01) end)
        assert.are.same({"a"}, got)
        b:run_until_complete(function() lasio.sleep(0.01) end)
        assert.are.same({"a", "b"}, got)
        a:close()
        -- b still handles it: the hub keeps its handler for b
        assert.is_true(has_bit("SigCgt", SIGUSR1))
        b:close() -- closing removes the handler and restores the default
        assert.is_false(has_bit("SigCgt", SIGUSR1))
    end)
end)

describe("signal handlers and the lasio command", function()
    local function run(code)
        return helper.run_child(code, {timeout = helper.t(20)})
    end
    local prologue = [[
local lasio = require "lasio"
local loop = lasio.get_running_loop()
local pid = io.open("/proc/self/stat"):read("n")
-- io.popen, not os.execute: system() ignores SIGINT while it waits
local function send(sig) io.popen("kill -" .. sig .. " " .. pid):close() end
]]

    it("a script's SIGTERM handler replaces the default: the script goes on and chooses its status",
        function()
            local out, err, status = run(prologue .. [[
local got = lasio.Future()
loop:add_signal_handler("SIGTERM", function() got:set_result("term") end)
send("TERM")
print(got:await())
lasio.sleep(0.01)
print("still running")
os.exit(7)
]])
            assert.are.equal("term\nstill running\n", out, err)
            assert.are.equal(7, status)
        end)

    it("a script's SIGINT handler sees two SIGINTs and the process is not ended by the second", function()
        local out, err, status = run(prologue .. [[
local n, f = 0, lasio.Future()
loop:add_signal_handler("SIGINT", function() n = n + 1; f:set_result() end)
send("INT")
f:await()
f = lasio.Future()
send("INT")
f:await()
print("handled " .. n)
]])
        assert.are.equal("handled 2\n", out, err)
        assert.are.equal(0, status)
    end)

    it("after remove_signal_handler the default is back: SIGTERM cancels the main task, status 143",
        function()
            local out, err, status = run(prologue .. [[
loop:add_signal_handler("SIGTERM", function() end)
assert(loop:remove_signal_handler("SIGTERM"))
local ok, e = pcall(function()
    send("TERM")
    lasio.sleep(30)
end)
print(lasio.CancelledError:is(e))
error(e, 0)
]])
            assert.are.equal("true\n", out, err)
            assert.are.equal(143, status)
        end)

    it("an installed handler is a wake-up source: no deadlock report while it can still fire", function()
        local out, err, status = run(prologue .. [[
local f = lasio.Future()
loop:add_signal_handler("SIGUSR1", function() f:set_result("woken") end)
os.execute("(sleep 0.05; kill -USR1 " .. pid .. ") >/dev/null 2>&1 &")
print(f:await())
loop:remove_signal_handler("SIGUSR1")
]])
        assert.are.equal("woken\n", out, err)
        assert.are.equal(0, status)
    end)

    it("without a handler the same wait is reported as a deadlock (status 5)", function()
        local out, err, status = run(prologue .. [[
loop:add_signal_handler("SIGUSR1", function() end)
loop:remove_signal_handler("SIGUSR1")
lasio.Future():await()
]])
        assert.are.equal("", out)
        assert.are.equal(5, status, err)
        assert.truthy(err:find("deadlock", 1, true), err)
    end)
end)
