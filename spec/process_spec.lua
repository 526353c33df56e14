-- Subprocesses (docs/API.md, Subprocesses): create_subprocess_exec/shell, stdio
-- redirection, the Process object, communicate, pipes, reaping, and the
-- reliability cases (docs/RELIABILITY.md) P2-P6, G4 (children) and C3 (SIGPIPE).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local sanitized = os.getenv("LASIO_SANITIZED") == "1"

local function readfile(path)
    local f = io.open(path)
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function mypid()
    return tonumber(readfile("/proc/self/stat"):match("^(%d+)"))
end

-- Our children (zombies included), from /proc.
local function children()
    local s = readfile(string.format("/proc/%d/task/%d/children", mypid(), mypid()))
    local list = {}
    for pid in (s or ""):gmatch("%d+") do list[#list + 1] = tonumber(pid) end
    return list
end

local function fdcount()
    collectgarbage()
    collectgarbage() -- pipes of earlier tests close when collected
    return require("net_helper").fds()
end

-- State letter of a process, or nil when it is gone.
local function pstate(pid)
    local s = readfile("/proc/" .. pid .. "/stat")
    return s and s:match("^%d+ %b() (%a)")
end

describe("create_subprocess_exec", function()
    it("runs a program found in PATH with its arguments and reads its stdout", async(function()
        local p = lasio.create_subprocess_exec("printf", {"%s-%s", "a b", 42},
            {stdout = lasio.PIPE})
        assert.is_number(p.pid)
        assert.is_nil(p.returncode)
        assert.is_nil(p.stdin)
        assert.are.equal("a b-42", p.stdout:read())
        assert.are.equal(0, p:wait())
        assert.are.equal(0, p.returncode)
        assert.truthy(tostring(p):find("returncode=0", 1, true))
    end))

    it("reports exit statuses and signals as asyncio does (-signal)", async(function()
        local p = lasio.create_subprocess_shell("exit 7")
        assert.are.equal(7, p:wait())
        p = lasio.create_subprocess_exec("sleep", {"30"})
        p:kill()
        assert.are.equal(-9, p:wait())
        p = lasio.create_subprocess_exec("sleep", {"30"})
        p:terminate()
        assert.are.equal(-15, p:wait())
        p = lasio.create_subprocess_exec("sleep", {"30"})
        p:send_signal("SIGUSR1")
        assert.are.equal(-10, p:wait())
    end))

    it("passes stdin, merges stderr into stdout with lasio.STDOUT, and discards with DEVNULL",
        async(function()
            local p = lasio.create_subprocess_shell("cat; echo to-err >&2",
                {stdin = lasio.PIPE, stdout = lasio.PIPE, stderr = lasio.STDOUT})
            local out, err = p:communicate("line 1\nline 2\n")
            assert.are.equal("line 1\nline 2\nto-err\n", out)
            assert.is_nil(err)
            p = lasio.create_subprocess_shell("echo out; echo err >&2",
                {stdout = lasio.DEVNULL, stderr = lasio.PIPE})
            out, err = p:communicate()
            assert.is_nil(out)
            assert.are.equal("err\n", err)
            assert.are.equal(0, p.returncode)
        end))

    it("takes a file descriptor or a Lua file for stdio", async(function()
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        local p = lasio.create_subprocess_shell("echo into-file", {stdout = f})
        assert.are.equal(0, p:wait())
        f:close()
        assert.are.equal("into-file\n", readfile(path))
        local r = assert(io.open(path))
        p = lasio.create_subprocess_exec("cat", {}, {stdin = r, stdout = lasio.PIPE})
        assert.are.equal("into-file\n", (p:communicate()))
        r:close()
        os.remove(path)
    end))

    it("runs in cwd with exactly the env given", async(function()
        local p = lasio.create_subprocess_exec("/bin/sh", {"-c", "pwd; echo \"$A|$B|$HOME\""},
            {stdout = lasio.PIPE, cwd = "/tmp", env = {A = "x y", B = 3}})
        local out = p:communicate()
        assert.are.equal("/tmp\nx y|3|\n", out)
    end))

    it("searches the PATH of the env option", async(function()
        local dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir " .. dir))
        local f = assert(io.open(dir .. "/lasio-test-prog", "w"))
        f:write("#!/bin/sh\necho found me\n")
        f:close()
        assert(os.execute("chmod +x " .. dir .. "/lasio-test-prog"))
        local p = lasio.create_subprocess_exec("lasio-test-prog", {},
            {stdout = lasio.PIPE, env = {PATH = "/nonexistent:" .. dir}})
        assert.are.equal("found me\n", (p:communicate()))
        os.execute("rm -rf " .. dir)
    end))

    it("start_new_session puts the child in a session and group of its own", async(function()
        local p = lasio.create_subprocess_exec("sh", {"-c", "read -r l < /proc/$$/stat; echo \"$l\""},
            {stdout = lasio.PIPE, start_new_session = true})
        local out = p:communicate()
        local pgid, sid = out:match("^%d+ %b() %a %d+ (%d+) (%d+)")
        assert.are.equal(p.pid, tonumber(sid))
        assert.are.equal(p.pid, tonumber(pgid))
    end))

    it("refuses bad arguments and unknown options at once", async(function()
        assert.has_error(function() lasio.create_subprocess_exec(nil, {}) end)
        assert.has_error(function() lasio.create_subprocess_exec("true", {{}}) end,
            "create_subprocess_exec: argument 1 is a table, not a string")
        assert.has_error(function() lasio.create_subprocess_exec("true", {}, {stdot = lasio.PIPE}) end,
            "create_subprocess_exec: unknown option 'stdot'")
        assert.has_error(function() lasio.create_subprocess_exec("true", {}, {stdin = lasio.STDOUT}) end,
            "stdin: lasio.STDOUT is only for stderr")
        assert.has_error(function() lasio.create_subprocess_exec("true", {}, {env = {A = {}}}) end,
            "create_subprocess_exec: env must map names to strings")
    end))
end)

describe("subprocess failures (P2)", function()
    -- covers P2
    it("a nonexistent program raises OSError ENOENT with no zombie and no leaked fd", async(function()
        local before, kids = fdcount(), #children()
        for _ = 1, 20 do
            local ok, err = pcall(lasio.create_subprocess_exec, "lasio-no-such-program",
                {}, {stdin = lasio.PIPE, stdout = lasio.PIPE, stderr = lasio.PIPE})
            assert.is_false(ok)
            assert.is_true(lasio.OSError:is(err))
            assert.are.equal("ENOENT", err.code)
            assert.are.equal("exec", err.op)
            assert.truthy(err.message:find("lasio-no-such-program", 1, true))
        end
        local ok, err = pcall(lasio.create_subprocess_exec, "/etc/passwd", {})
        assert.is_false(ok)
        assert.are.equal("EACCES", err.code)
        ok, err = pcall(lasio.create_subprocess_exec, "true", {}, {cwd = "/nonexistent-dir"})
        assert.is_false(ok)
        assert.are.equal("ENOENT", err.code)
        assert.are.equal("chdir", err.op)
        assert.are.equal(kids, #children())
        assert.is_true(fdcount() <= before) -- none left open (others may close)
    end))

    -- covers P2
    it("signals to an exited child raise ESRCH, an invalid signal EINVAL, no crash", async(function()
        local p = lasio.create_subprocess_exec("true", {})
        assert.are.equal(0, p:wait())
        for _, m in ipairs({"kill", "terminate"}) do
            local ok, err = pcall(p[m], p)
            assert.is_false(ok)
            assert.are.equal("ESRCH", err.code)
        end
        local ok, err = pcall(p.send_signal, p, 15)
        assert.is_false(ok)
        assert.are.equal("ESRCH", err.code)
        p = lasio.create_subprocess_exec("sleep", {"30"})
        ok, err = pcall(p.send_signal, p, 1000)
        assert.is_false(ok)
        assert.are.equal("EINVAL", err.code)
        assert.has_error(function() p:send_signal("SIGBOGUS") end)
        p:kill()
        assert.are.equal(-9, p:wait())
    end))
end)

describe("waiting and communicating", function()
    -- covers P3
    it("wait() returns when the child exits although a grandchild keeps its stdout open; "
        .. "communicate's timeout kills the process group (P3)", async(function()
        local p = lasio.create_subprocess_shell("sleep 60 & echo $!; exit 3",
            {stdout = lasio.PIPE, start_new_session = true})
        assert.are.equal(3, p:wait(helper.t(10)))
        local t0 = lasio.get_running_loop():time()
        local ok, err = pcall(p.communicate, p, nil, 0.2)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(err), tostring(err))
        assert.is_true(lasio.get_running_loop():time() - t0 >= 0.2)
        local grandchild = tonumber(err.stdout:match("%d+"))
        assert.is_number(grandchild)
        -- killed with its group: gone, or a zombie of whoever reaps orphans
        assert.is_true(helper.wait_until(function()
            local s = pstate(grandchild)
            return s == nil or s == "Z"
        end, 10))
    end))

    it("communicate's timeout kills and reaps the child itself", async(function()
        local p = lasio.create_subprocess_exec("sleep", {"60"}, {stdout = lasio.PIPE})
        local ok, err = pcall(p.communicate, p, nil, 0.05)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(err))
        assert.are.equal(-9, p.returncode)
        assert.is_nil(pstate(p.pid))
    end))

    it("wait(timeout) raises TimeoutError and leaves the child running", async(function()
        local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE})
        local ok, err = pcall(p.wait, p, 0.02)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(err))
        assert.is_nil(p.returncode)
        p.stdin:close()
        assert.are.equal(0, p:wait(helper.t(10)))
    end))

    it("wait rejects a bad timeout, naming the method and the value", async(function()
        local p = lasio.create_subprocess_exec("true")
        local ok, err = pcall(p.wait, p, "soon")
        assert.is_false(ok)
        assert.truthy(tostring(err):find("wait: timeout must be a number or nil, got string", 1, true))
        ok, err = pcall(p.wait, p, -1)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("wait: timeout must be >= 0, got -1", 1, true))
        assert.are.equal(0, p:wait())
    end))

    it("wait and communicate need no global require (the facade brings them)", async(function()
        local saved = require
        require = nil -- luacheck: ignore (a script that sandboxes itself)
        local ok, out, code = pcall(function()
            local p = lasio.create_subprocess_exec("echo", {"hi"}, {stdout = lasio.PIPE})
            local data = p:communicate(nil, helper.t(10))
            local q = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE})
            q.stdin:close()
            return data, q:wait(helper.t(10))
        end)
        require = saved -- luacheck: ignore
        assert.is_true(ok, out)
        assert.are.equal("hi\n", out)
        assert.are.equal(0, code)
    end))

    -- covers P4
    it("a child writing 1 MiB to stdout and to stderr at once does not deadlock (P4)", async(function()
        local script = "local s = string.rep('x', 1024) "
            .. "for i = 1, 1024 do io.stdout:write(s) io.stderr:write(s) end"
        local p = lasio.create_subprocess_exec("lua5.4", {"-e", script},
            {stdout = lasio.PIPE, stderr = lasio.PIPE})
        local out, err = p:communicate(nil, helper.t(30))
        assert.are.equal(1048576, #out)
        assert.are.equal(1048576, #err)
        assert.are.equal(0, p.returncode)
    end))

    it("communicate feeds 1 MiB of input while reading the output back", async(function()
        local data = string.rep("0123456789abcdef", 65536)
        local p = lasio.create_subprocess_exec("cat", {},
            {stdin = lasio.PIPE, stdout = lasio.PIPE})
        local out = p:communicate(data, helper.t(30))
        assert.are.equal(#data, #out)
        assert.is_true(out == data)
    end))

    -- covers P5
    it("cancelling a task waiting on wait() works and the child is still reaped later (P5)",
        async(function()
            local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE})
            local waiter = lasio.spawn(function() return p:wait() end)
            lasio.sleep(0.01)
            assert.is_true(waiter:cancel())
            local ok, err = pcall(waiter.await, waiter)
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(err))
            -- another waiter still gets the status
            local other = lasio.spawn(function() return p:wait() end)
            p.stdin:close()
            assert.are.equal(0, other:await())
            assert.is_nil(pstate(p.pid))
        end))

    -- covers P5
    it("lasio.run ends cleanly while tasks wait on pipes and a child still runs (P5)", function()
        if helper.mode ~= "lua5.4" then return end -- lasio.run nests in lasio mode
        local pid
        lasio.run(function()
            local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE, stdout = lasio.PIPE})
            pid = p.pid
            lasio.spawn(function() p.stdout:read() end)
            lasio.spawn(function() p:wait() end)
            lasio.sleep(0.01)
        end)
        -- the loop closed: the child was killed and reaped, not left a zombie
        assert.is_nil(pstate(pid))
    end)

    it("an unreferenced child that nobody waits for is reaped (and its Process collected)",
        async(function()
            local pid
            do
                local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE})
                pid = p.pid
                p.stdin:close()
            end
            assert.is_true(helper.wait_until(function()
                collectgarbage()
                return pstate(pid) == nil
            end, 10))
        end))
end)

describe("pipes", function()
    it("readline keeps the newline, lines() drops it, read(n) returns what is there", async(function()
        local p = lasio.create_subprocess_shell("printf 'a\\nbb\\nccc'", {stdout = lasio.PIPE})
        local r = p.stdout
        assert.are.equal("a\n", r:readline())
        local got = {}
        for line in r:lines() do got[#got + 1] = line end
        assert.are.same({"bb", "ccc"}, got)
        assert.is_true(r:at_eof())
        assert.are.equal("", r:read())
        assert.are.equal("", r:readline())
        p:wait()
    end))

    it("readexactly raises IncompleteReadError and readuntil LimitOverrunError (S1)", async(function()
        local p = lasio.create_subprocess_shell("printf 'abcdef'", {stdout = lasio.PIPE, limit = 3})
        assert.are.equal("ab", p.stdout:readexactly(2))
        local ok, err = pcall(p.stdout.readuntil, p.stdout, "!")
        assert.is_false(ok)
        assert.is_true(lasio.LimitOverrunError:is(err), tostring(err))
        ok, err = pcall(p.stdout.readexactly, p.stdout, 10)
        assert.is_false(ok)
        assert.is_true(lasio.IncompleteReadError:is(err))
        assert.are.equal("cdef", err.partial)
        assert.are.equal(10, err.expected)
        p:wait()
    end))

    it("a second reader gets an error while a task waits; settimeout bounds reads (S7, T6)",
        async(function()
            local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE, stdout = lasio.PIPE})
            local r = p.stdout
            local first = lasio.spawn(function() return r:readline() end)
            lasio.sleep(0.01)
            assert.has_error(function() r:readline() end,
                "readline: another task is already reading this stream (read already in progress)")
            p.stdin:write("hello\n")
            assert.are.equal("hello\n", first:await())
            r:settimeout(0.02)
            local ok, err = pcall(r.readline, r)
            assert.is_false(ok)
            assert.is_true(lasio.TimeoutError:is(err))
            -- the timed-out reader is reusable: a new waiter is woken by data
            r:settimeout(nil)
            local again = lasio.spawn(function() return r:readline() end)
            lasio.sleep(0.01)
            p.stdin:write("again\n")
            assert.are.equal("again\n", again:await())
            p.stdin:close()
            p:wait()
        end))

    it("closing a reader wakes the task blocked on it with an error (S6)", async(function()
        local p = lasio.create_subprocess_exec("cat", {}, {stdin = lasio.PIPE, stdout = lasio.PIPE})
        local t = lasio.spawn(function() return p.stdout:read() end)
        lasio.sleep(0.01)
        p.stdout:close()
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("closed", 1, true))
        p.stdin:close()
        p:wait()
    end))

    -- covers S5, C3 (SIGPIPE)
    it("writing to a child that exited raises EPIPE and the process is not killed by SIGPIPE (C3)",
        async(function()
            local p = lasio.create_subprocess_exec("true", {}, {stdin = lasio.PIPE})
            p:wait()
            local ok, err = pcall(function()
                for _ = 1, 10 do
                    p.stdin:write(string.rep("x", 100000))
                    p.stdin:drain()
                end
            end)
            assert.is_false(ok)
            assert.is_true(lasio.OSError:is(err), tostring(err))
            assert.are.equal("EPIPE", err.code)
        end))

    -- the stream's one behaviour (asyncio's); the pipe reader before it
    -- kept the line and raised on every later call
    it("readline drops a line longer than the limit, raises LimitOverrunError once, "
        .. "and the next readline returns the next line", async(function()
        -- one write at exit, below PIPE_BUF: both lines arrive together
        local p = lasio.create_subprocess_exec("lua5.4",
            {"-e", "io.write(string.rep('x', 100) .. '\\nshort\\n')"},
            {stdout = lasio.PIPE, limit = 10})
        local r = p.stdout
        local ok, err = pcall(r.readline, r)
        assert.is_false(ok)
        assert.is_true(lasio.LimitOverrunError:is(err), tostring(err))
        assert.are.equal(100, err.consumed)
        assert.are.equal("short\n", r:readline())
        assert.are.equal("", r:readline())
        assert.are.equal(0, p:wait())
    end))

    it("a child writing more than is read blocks: reading pauses at the high-water mark",
        async(function()
            local size = 8 * 1048576
            local p = lasio.create_subprocess_exec("head", {"-c", size, "/dev/zero"},
                {stdout = lasio.PIPE})
            local r = p.stdout
            lasio.sleep(0.2)
            -- 8 MiB fit neither in the pipe nor in the reader's buffer
            assert.is_nil(p.returncode)
            assert.is_true(r:buffered() >= 2 * r:get_limit(), tostring(r:buffered()))
            assert.is_true(r:buffered() <= 1048576, tostring(r:buffered()))
            assert.are.equal(size, #r:read())
            assert.are.equal(0, p:wait())
        end))

    it("pipes are a StreamWriter and StreamReaders; write_eof closes stdin (asyncio's pipes)",
        async(function()
            local p = lasio.create_subprocess_exec("cat", {},
                {stdin = lasio.PIPE, stdout = lasio.PIPE})
            assert.matches("^lasio.StreamWriter<fd=%d+ open buffered=0>$", tostring(p.stdin))
            assert.matches("^lasio.StreamReader<fd=%d+ open buffered=0>$", tostring(p.stdout))
            local fd = p.stdin:fileno()
            assert.is_true(fd >= 0)
            assert.are.equal(fd, p.stdin:get_extra_info("pipe"))
            assert.are.equal(fd, p.stdin:get_extra_info("fd"))
            assert.is_nil(p.stdin:get_extra_info("peername"))
            assert.is_true(p.stdin:can_write_eof())
            p.stdin:write("bye\n")
            p.stdin:write_eof()
            assert.is_true(p.stdin:is_closing())
            p.stdin:wait_closed()
            assert.are.equal(-1, p.stdin:fileno())
            assert.are.equal("bye\n", p.stdout:read())
            assert.is_true(p.stdout:at_eof())
            p.stdout:close()
            assert.are.equal(-1, p.stdout:fileno())
            assert.are.equal(0, p:wait())
        end))

    it("drain waits while a child reads slowly, then every byte arrives", async(function()
        local p = lasio.create_subprocess_exec("wc", {"-c"}, {stdin = lasio.PIPE, stdout = lasio.PIPE})
        local chunk = string.rep("y", 100000)
        for _ = 1, 20 do
            p.stdin:write(chunk)
            assert.is_true(p.stdin:get_write_buffer_size() <= 20 * 100000)
            p.stdin:drain()
            assert.is_true(p.stdin:get_write_buffer_size() <= 65536)
        end
        p.stdin:close()
        p.stdin:wait_closed()
        assert.are.equal("2000000", p.stdout:read():match("%d+"))
        p:wait()
    end))
end)

describe("children and the process (P6, G4)", function()
    -- covers P6
    it("starts children with default dispositions, an empty mask and only stdio, "
        .. "though the parent blocks and ignores signals and leaks an fd (P6)", function()
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write([[
local lasio = require "lasio"
lasio.run(function()
    local p = lasio.create_subprocess_exec("sh", {"-c",
        "grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/self/fd | wc -l"},
        {stdout = lasio.PIPE})
    io.write((p:communicate()))
end)
]])
        f:close()
        for _, interp in ipairs(helper.interps) do
            -- perl: SIGUSR2 blocked, SIGUSR1 and SIGCHLD ignored, fd 7
            -- inherited without close-on-exec, then exec the interpreter
            local cmd = "perl -MPOSIX -e 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR2));"
                .. " $SIG{USR1} = q(IGNORE); $SIG{CHLD} = q(IGNORE);"
                .. " open(my $f, q(<), q(/dev/null)); POSIX::dup2(fileno($f), 7);"
                .. " exec @ARGV or die' timeout -k 5 " .. math.ceil(helper.t(30)) .. " "
                .. helper.shell_quote(interp) .. " " .. script .. " 2>&1"
            local p = io.popen(cmd)
            local out = p:read("a")
            local ok = p:close()
            assert.is_true(ok, out)
            assert.truthy(out:find("SigBlk:\t0000000000000000", 1, true), out)
            assert.truthy(out:find("SigIgn:\t0000000000000000", 1, true), out)
            -- 0, 1, 2 and the fd of ls reading the directory
            assert.are.equal("4", out:match("(%d+)%s*$"), out)
        end
        os.remove(script)
    end)

    -- covers P6
    it("a host's SIGCHLD handler keeps working beside our children and their statuses are not lost",
        async(function()
            local loop = lasio.get_running_loop()
            local calls = 0
            loop:add_signal_handler("SIGCHLD", function() calls = calls + 1 end)
            for i = 1, 5 do
                local p = lasio.create_subprocess_shell("exit " .. i)
                assert.are.equal(i, p:wait())
            end
            lasio.sleep(0.01)
            loop:remove_signal_handler("SIGCHLD")
            assert.is_true(calls >= 1)
        end))

    -- covers G4
    it("lua_close with running children kills and reaps them and closes their fds (G4)", function()
        local script = [[
local lasio = require "lasio"
lasio.run(function()
    local pids = {}
    for i = 1, 3 do
        local p = lasio.create_subprocess_exec("sleep", {"60"},
            {stdin = lasio.PIPE, stdout = lasio.PIPE, start_new_session = i == 3})
        pids[#pids + 1] = p.pid
    end
    print(table.concat(pids, " "))
    io.stdout:flush()
    os.exit(0, true) -- lua_close from inside a task, children running
end)
]]
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child(script, {interp = interp})
            assert.are.equal(0, status, err)
            for pid in out:gmatch("%d+") do
                local s = pstate(pid)
                assert.is_true(s == nil or s == "Z", "child " .. pid .. " is " .. tostring(s))
            end
        end
    end)

    it("loop:close() with a child's pipes open (reading, output buffered) closes their fds",
        function()
        if helper.mode ~= "lua5.4" then return end -- needs a loop driven by hand
        local before = fdcount()
        local loop = lasio.new_event_loop()
        loop:run_until_complete(function()
            local p = lasio.create_subprocess_exec("sleep", {"60"},
                {stdin = lasio.PIPE, stdout = lasio.PIPE, stderr = lasio.PIPE})
            p.stdin:write(string.rep("x", 1048576)) -- more than the pipe takes
            assert.is_true(p.stdin:get_write_buffer_size() > 0)
            lasio.sleep(0.01)
        end)
        loop:close()
        assert.are.equal(before, fdcount())
    end)

    it("loop:close() reaps running children at once (no zombie left in this process)", function()
        if helper.mode ~= "lua5.4" then return end -- needs a loop driven by hand
        local loop = lasio.new_event_loop()
        local pid
        loop:run_until_complete(function()
            pid = lasio.create_subprocess_exec("sleep", {"60"}).pid
        end)
        assert.is_not_nil(pstate(pid))
        loop:close()
        assert.is_nil(pstate(pid))
    end)
end)

describe("many children", function()
    local cycles = sanitized and 200 or 1000
    it(cycles .. " spawn/exit cycles leave no zombie and a constant fd count", async(function()
        local before, kids = fdcount(), #children()
        for i = 1, cycles do
            local p = lasio.create_subprocess_exec("true", {},
                {stdin = lasio.PIPE, stdout = lasio.PIPE, stderr = lasio.DEVNULL})
            assert.are.equal("", p.stdout:read())
            assert.are.equal(0, p:wait())
            if i % 100 == 0 then collectgarbage() end
        end
        collectgarbage()
        assert.are.equal(kids, #children())
        -- the last objects' fds close in finalizers and loop callbacks:
        -- let them run, then the count must be back where it was
        local settled = helper.wait_until(function()
            collectgarbage()
            collectgarbage()
            return fdcount() <= before
        end, 2)
        assert.is_true(settled, ("fds before %d, after %d"):format(before, fdcount()))
    end))

    it("50 children at once, each with pipes, all reaped", async(function()
        local procs, kids = {}, #children()
        for i = 1, 50 do
            procs[i] = lasio.create_subprocess_shell("read x; echo $x-" .. i,
                {stdin = lasio.PIPE, stdout = lasio.PIPE})
        end
        local tasks = {}
        for i, p in ipairs(procs) do
            tasks[i] = lasio.spawn(function() return (p:communicate("hi\n")) end)
        end
        for i, t in ipairs(tasks) do assert.are.equal("hi-" .. i .. "\n", t:await()) end
        assert.are.equal(kids, #children())
    end))
end)
