-- The lasio command (docs/API.md, The lasio command; C1-C3): options,
-- exit statuses, binary chunks, stdout closed early, signals and the REPL.
-- Every spec runs the built binary in a child process, so the file passes
-- the same under busted --lua=lasio and --lua=lua5.4.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local q = helper.shell_quote
local bin = helper.lasio_bin

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. q(tmp)))

local function write(name, data)
    local path = tmp .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    return path
end

local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

-- Runs a shell command line under a timeout (a hang fails the spec instead
-- of blocking the suite); returns stdout, stderr, exit status.
local function sh(cmd, stdin_text)
    local out, err = tmp .. "/out", tmp .. "/err"
    os.remove(out)
    os.remove(err)
    local full = string.format("timeout %d sh -c %s >%s 2>%s",
        math.ceil(helper.t(30)), q(cmd), q(out), q(err))
    if stdin_text then
        full = full .. " <" .. q(write("stdin.txt", stdin_text))
    end
    local _, _, status = os.execute(full)
    return slurp(out), slurp(err), status
end

-- Runs `lasio ARGS` (ARGS already quoted for the shell). opts.env: prefix
-- of assignments; opts.stdin: text given as a regular file; opts.pipe:
-- text given through a pipe.
local function lasio(args, opts)
    opts = opts or {}
    local cmd = (opts.env and (opts.env .. " ") or "") .. q(bin) .. " " .. args
    if opts.pipe then
        cmd = "cat " .. q(write("pipe.txt", opts.pipe)) .. " | " .. cmd
    end
    return sh(cmd, opts.stdin)
end

-- Runs the Lua code as a script file with the binary.
local function script(code, opts)
    opts = opts or {}
    local path = write(opts.name or "script.lua", code)
    return lasio((opts.flags or "") .. " " .. q(path) .. " " ..
        (opts.args or ""), opts)
end

-- Drops the REPL's prompts ("> ", ">> ") from its output.
local function unprompt(s)
    return (s:gsub(">> ", ""):gsub("> ", ""))
end

teardown(function()
    os.execute("rm -rf " .. q(tmp))
end)

describe("lasio command", function()
    it("runs a script as the main task with the lasio global", function()
        local out, err, status = script([[
            lasio.sleep(0.01)
            local t = lasio.spawn(function(x) lasio.sleep(0.01) return x end, 7)
            print("slept", t:await(), lasio.current_task() ~= nil)
        ]])
        assert.are.equal("slept\t7\ttrue\n", out, err)
        assert.are.equal(0, status)
    end)

    -- The facade is compiled in as bytecode with its debug information
    -- (src/cli/facade_dump.c): names, lines and tracebacks as from the source.
    it("keeps the facade's sources and lines in errors and tracebacks", function()
        local out, err, status = script([[
            local info = debug.getinfo(lasio.wait_for, "S")
            print(info.source, info.what, info.linedefined > 0)
            local ok, tb = xpcall(lasio.wait_for, debug.traceback, 1, 1)
            print(ok, tb:match("lasio/timeouts%.lua:%d+:") ~= nil)
        ]])
        assert.are.equal("@lasio/timeouts.lua\tLua\ttrue\nfalse\ttrue\n", out, err)
        assert.are.equal(0, status)
    end)

    describe("options", function()
        it("-e runs a statement", function()
            local out, _, status = lasio("-e " .. q("print(6 * 7)"))
            assert.are.equal("42\n", out)
            assert.are.equal(0, status)
        end)

        it("-e, -l and the script run in command-line order", function()
            write("order_mod.lua", "order = (order or '') .. 'l' return {}")
            local out, err, status = script("print(order .. 's')", {
                env = "LUA_PATH=" .. q(tmp .. "/?.lua"),
                flags = "-e " .. q("order = 'e1'") .. " -l order_mod -e " ..
                    q("order = order .. 'e2'"),
            })
            assert.are.equal("e1le2s\n", out, err)
            assert.are.equal(0, status)
        end)

        it("-l mod sets the global mod", function()
            write("mymod.lua", "return {answer = 42}")
            local out, err, status = lasio("-l mymod -e " ..
                q("print(mymod.answer)"),
                {env = "LUA_PATH=" .. q(tmp .. "/?.lua")})
            assert.are.equal("42\n", out, err)
            assert.are.equal(0, status)
        end)

        it("-l g=mod sets the global g", function()
            write("mymod2.lua", "return {answer = 43}")
            local out, err, status = lasio("-l g=mymod2 -e " ..
                q("print(g.answer, mymod2)"),
                {env = "LUA_PATH=" .. q(tmp .. "/?.lua")})
            assert.are.equal("43\tnil\n", out, err)
            assert.are.equal(0, status)
        end)

        it("-l of a missing module fails with status 1", function()
            local _, err, status = lasio("-l no_such_module_xyz -e " ..
                q("print('not reached')"))
            assert.matches("module 'no_such_module_xyz' not found", err)
            assert.are.equal(1, status)
        end)

        it("-v shows the version and runs nothing else", function()
            local out, _, status = lasio("-v", {pipe = "print('no')"})
            assert.matches("^lasio %d+%.%d+%.%d+ %(Lua 5%.4%.%d+", out)
            assert.is_nil(out:find("no\n", 1, true))
            assert.are.equal(0, status)
        end)

        it("-W turns warnings on", function()
            local _, err = lasio("-W -e " .. q("warn('hello warn')"))
            assert.matches("Lua warning: hello warn", err)
            local _, err2 = lasio("-e " .. q("warn('hello warn')"))
            assert.are.equal("", err2)
        end)

        it("-E ignores LUA_INIT and LUA_PATH", function()
            local env = "LUA_INIT=" .. q("print('init ran')") ..
                " LUA_PATH=" .. q("/nonexistent/?.lua")
            local out = lasio("-E -e " .. q("print(package.path)"),
                {env = env})
            assert.is_nil(out:find("init ran", 1, true))
            assert.is_nil(out:find("/nonexistent/", 1, true))
            local out2 = lasio("-e " .. q("print(package.path)"), {env = env})
            assert.matches("init ran\n/nonexistent/%?%.lua\n", out2)
        end)

        it("LUA_INIT runs first; LUA_INIT_5_4 wins; @file runs a file",
            function()
                local out = script("print(x)", {env = "LUA_INIT=" .. q("x = 1")})
                assert.are.equal("1\n", out)
                out = script("print(x)", {env = "LUA_INIT=" .. q("x = 1") ..
                    " LUA_INIT_5_4=" .. q("x = 2")})
                assert.are.equal("2\n", out)
                local init = write("init.lua", "x = 3")
                out = script("print(x)", {env = "LUA_INIT=" .. q("@" .. init)})
                assert.are.equal("3\n", out)
            end)

        it("-- stops options; the script gets the rest", function()
            local path = write("dash.lua", "print(select('#', ...), ...)")
            local out, err, status = lasio("-- " .. q(path) .. " -e -v")
            assert.are.equal("2\t-e\t-v\n", out, err)
            assert.are.equal(0, status)
        end)

        it("- runs stdin as the script, with arguments", function()
            local out, err, status = lasio("- a b",
                {pipe = "print('stdin', ...) print(arg[0], arg[1])"})
            assert.are.equal("stdin\ta\tb\n-\ta\n", out, err)
            assert.are.equal(0, status)
        end)

        it("runs stdin as a script when it is not a terminal", function()
            local out, _, status = lasio("", {pipe = "lasio.sleep(0) print('piped')"})
            assert.are.equal("piped\n", out)
            assert.are.equal(0, status)
        end)

        it("builds the arg table with negative indices", function()
            local out, err, status = script([[
                for i = -2, #arg do io.write(i, "=", tostring(arg[i]), " ") end
                print(...)
            ]], {flags = "-W", args = "a b", name = "args.lua"})
            assert.are.equal("-2=" .. bin .. " -1=-W 0=" .. tmp ..
                "/args.lua 1=a 2=b a\tb\n", out, err)
            assert.are.equal(0, status)
        end)

        it("--help documents every option", function()
            local out, _, status = lasio("--help")
            for _, opt in ipairs {"-e stat", "-i ", "-l mod", "-l g=mod",
                "-v ", "-E ", "-W ", "-- ", "-  ", "--allow-bytecode",
                "--help", "LUA_INIT", "Exit status"} do
                assert.truthy(out:find("\n  " .. opt, 1, true) or
                    out:find(opt, 1, true), opt)
            end
            assert.matches("\n  %-%-allow%-bytecode", out)
            assert.are.equal(0, status)
        end)

        it("os.exit sets the status, also from a task", function()
            local _, _, status = script("io.write('x') os.exit(7)")
            assert.are.equal(7, status)
            local out, _, status2 = script([[
                lasio.spawn(function() print("bye") os.exit(9, true) end)
                lasio.sleep(10)
            ]])
            assert.are.equal("bye\n", out)
            assert.are.equal(9, status2)
        end)
    end)

    describe("exit statuses and messages", function()
        -- covers C1
        it("bad command line: status 2 and usage", function()
            local _, err, status = lasio("-x")
            assert.matches("lasio: unrecognized option '%-x'", err)
            assert.matches("usage: lasio", err)
            assert.are.equal(2, status)
            _, err, status = lasio("-e")
            assert.matches("'%-e' needs argument", err)
            assert.are.equal(2, status)
        end)

        -- covers C1
        it("missing or unreadable script: status 2", function()
            local out, err, status = lasio("-e " .. q("print('not run')") ..
                " /nonexistent/x.lua")
            assert.matches("lasio: cannot open /nonexistent/x.lua", err)
            assert.are.equal("", out) -- nothing ran
            assert.are.equal(2, status)
            out, err, status = lasio(q(tmp))
            assert.are.equal("", out)
            assert.matches("cannot read", err)
            assert.are.equal(2, status)
        end)

        -- covers C1
        it("syntax error: status 3 before anything runs", function()
            local out, err, status = script("print('before')\nx = = 1\n",
                {flags = "-e " .. q("print('e ran')")})
            assert.matches("lasio: .*script%.lua:2: unexpected symbol", err)
            assert.are.equal("", out)
            assert.are.equal(3, status)
            out, err, status = lasio("-e " .. q("x = = 1"))
            assert.are.equal("", out)
            assert.matches("%(command line%):1:", err)
            assert.are.equal(3, status)
        end)

        -- covers C1
        it("runtime error: status 1, message and traceback, stdout flushed",
            function()
                local out, err, status = script([[
                    io.write("partial output")
                    local function inner() error("boom in script") end
                    inner()
                ]])
                assert.are.equal("partial output", out)
                assert.matches("script%.lua:2: boom in script", err)
                assert.matches("stack traceback:", err)
                assert.truthy(err:find("'inner'", 1, true), err)
                assert.are.equal(1, status)
            end)

        -- A real memory error (the address space limited with ulimit -v;
        -- not under the sanitizers, whose runtime reserves far more): it
        -- has no traceback, and the message still names the main task.
        local oom_it = os.getenv("LASIO_SANITIZED") == "1" and pending or it
        oom_it("out of memory in the main task: status 1, the task named",
            function()
                local path = write("oom.lua", [[
                    lasio.sleep(0)
                    local s = string.rep("x", 1 << 30)
                    print("not reached", #s)
                ]])
                local out, err, status = sh("ulimit -v 400000; exec " ..
                    q(bin) .. " " .. q(path))
                assert.are.equal("", out)
                assert.are.equal(
                    "lasio: error in task Task-1 (main):\nnot enough memory\n",
                    err)
                assert.are.equal(1, status)
            end)

        -- covers C1
        it("unhandled task error never retrieved: status 4", function()
            local out, err, status = script([[
                lasio.spawn(function() error("lost error") end)
                lasio.sleep(0.01)
                print("main done")
            ]])
            assert.are.equal("main done\n", out)
            assert.matches("lost error", err)
            assert.are.equal(4, status)
        end)

        it("deadlock: status 5 with the stuck task on stderr", function()
            local _, err, status = script([[
                local function stuck() lasio.Future():await() end
                stuck()
            ]])
            assert.matches("script%.lua:1", err)
            assert.are.equal(5, status)
        end)
    end)

    describe("binary chunks", function()
        local luac = write("bytes.luac",
            string.dump(load("print('bytecode ran') return 'bc', ...")))

        -- covers C2
        it("are refused as the script with status 3", function()
            local out, err, status = lasio(q(luac))
            assert.are.equal("", out)
            assert.matches("bytes%.luac: attempt to load a binary chunk", err)
            assert.matches("%-%-allow%-bytecode", err)
            assert.are.equal(3, status)
            out, err, status = lasio("-", {stdin = slurp(luac)})
            assert.are.equal("", out)
            assert.matches("binary chunk", err)
            assert.are.equal(3, status)
        end)

        -- covers C2
        it("are refused by load, loadfile, dofile and require", function()
            write("bcmod.lua", slurp(luac))
            local out, err, status = script([[
                local path = ...
                local f = io.open(path, "rb") local bytes = f:read("a") f:close()
                print("load", load(bytes))
                print("load b", load(bytes, "x", "b"))
                print("load text b", load("return 1", "x", "b"))
                print("loadfile", loadfile(path))
                print("dofile", pcall(dofile, path))
                print("require", pcall(require, "bcmod"))
                local ok = loadfile((path:gsub("bytes%.luac$", "ok.lua")))
                print("text ok", load("return 1 + 1")(), ok())
            ]], {args = q(luac), env = "LUA_PATH=" .. q(tmp .. "/?.lua")})
            assert.are.equal(0, status, err)
            assert.is_nil(out:find("bytecode ran", 1, true))
            assert.matches("load\tnil\tattempt to load a binary chunk %(refused", out)
            assert.matches("load b\tnil\tattempt to load a binary chunk", out)
            assert.matches("load text b\tnil\tattempt to load a text chunk %(mode is 'b'%)", out)
            assert.matches("loadfile\tnil\t[^\n]*bytes%.luac: attempt to load a binary chunk", out)
            assert.matches("dofile\tfalse\t[^\n]*binary chunk", out)
            assert.matches("require\tfalse\terror loading module 'bcmod'[^\n]*\n[^\n]*binary chunk", out)
            assert.matches("text ok\t2\tfile\n", out)
        end)
        write("ok.lua", "return 'file'")

        -- covers C2
        it("are allowed with --allow-bytecode", function()
            local out, err, status = lasio("--allow-bytecode " .. q(luac) .. " z")
            assert.are.equal("bytecode ran\n", out, err)
            assert.are.equal(0, status)
            out, err, status = script([[
                local f = io.open(..., "rb") local bytes = f:read("a") f:close()
                print(load(bytes)())
                print(dofile(...))
            ]], {flags = "--allow-bytecode", args = q(luac)})
            assert.are.equal("bytecode ran\nbc\nbytecode ran\nbc\n", out, err)
            assert.are.equal(0, status)
        end)
    end)

    describe("stdout closed early", function()
        local function head1(code)
            local path = write("head.lua", code)
            local statusfile = tmp .. "/head.status"
            os.remove(statusfile)
            local out, err, status = sh(string.format(
                "(%s %s; echo $? >%s) | head -1", q(bin), q(path),
                q(statusfile)))
            return out, err, status, slurp(statusfile)
        end

        -- covers C3
        it("exits 0 when a reader such as head closes the pipe", function()
            local out, err, status, lstatus = head1([[
                for i = 1, 200000 do print("line " .. i) end
            ]])
            assert.are.equal("line 1\n", out)
            assert.are.equal(0, status)
            assert.are.equal("0\n", lstatus, err)
            assert.are.equal("", err)
        end)

        -- covers C3
        it("does not busy-loop writing to the closed pipe", function()
            local out, err, _, lstatus = head1("while true do print('y') end")
            assert.are.equal("y\n", out)
            assert.are.equal("0\n", lstatus, err)
            out, err, _, lstatus = head1([[
                while true do io.write("z\n") io.stdout:write("w\n") end
            ]])
            assert.are.equal("z\n", out)
            assert.are.equal("0\n", lstatus, err)
        end)
    end)

    describe("signals", function()
        -- Starts the script, waits for it to print "ready", sends the
        -- signal; returns stdout, stderr, status, milliseconds to exit.
        local function signal(code, sig)
            local path = write("sig.lua", code)
            local out, err = tmp .. "/sig.out", tmp .. "/sig.err"
            os.remove(out)
            local res = sh(string.format([[
%s %s >%s 2>%s &
pid=$!
i=0
while ! grep -q ready %s 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 400 ] && break; sleep 0.05
done
sleep 0.2
t0=$(date +%%s%%N)
kill -%s $pid
(sleep %g; kill -KILL $pid 2>/dev/null) >/dev/null 2>&1 &
w=$!
wait $pid
st=$?
t1=$(date +%%s%%N)
kill $w 2>/dev/null
echo $st $(( (t1 - t0) / 1000000 ))
]], q(bin), q(path), q(out), q(err), q(out), sig, helper.t(10)))
            local st, ms = res:match("(%d+) (%d+)")
            return slurp(out), slurp(err), tonumber(st), tonumber(ms)
        end
        local sleeper = [[
            local guard <close> = setmetatable({}, {__close = function()
                print("cleanup ran")
            end})
            print("ready") io.stdout:flush()
            lasio.sleep(30)
            print("not reached")
        ]]

        it("SIGINT cancels a sleeping main task: 130, <close> runs",
            function()
                local out, err, status = signal(sleeper, "INT")
                assert.are.equal("ready\ncleanup ran\n", out, err)
                assert.are.equal(130, status)
            end)

        it("SIGTERM cancels a sleeping main task: 143, <close> runs",
            function()
                local out, err, status = signal(sleeper, "TERM")
                assert.are.equal("ready\ncleanup ran\n", out, err)
                assert.are.equal(143, status)
            end)

        -- covers C3
        it("SIGINT interrupts a CPU-bound loop: 130, <close> runs", function()
            local out, err, status, ms = signal([[
                local guard <close> = setmetatable({}, {__close = function()
                    print("cleanup ran")
                end})
                print("ready") io.stdout:flush()
                while true do end
            ]], "INT")
            assert.are.equal("ready\ncleanup ran\n", out, err)
            assert.are.equal(130, status)
            assert.is_true(ms < helper.t(5000), ms .. " ms")
        end)

        -- A task other than the main one spins: the signal interrupts it
        -- where it runs (its <close> runs) and cancels the main task.
        local spinner = [[
            local t = lasio.spawn(function()
                local guard <close> = setmetatable({}, {__close = function()
                    print("spinner cleanup ran") io.stdout:flush()
                end})
                print("ready") io.stdout:flush()
                while true do end
            end)
            local guard <close> = setmetatable({}, {__close = function()
                print("main cleanup ran") io.stdout:flush()
            end})
            t:await()
        ]]
        for _, case in ipairs({{"TERM", 143}, {"INT", 130}}) do
            it("SIG" .. case[1] .. " interrupts a spinning spawned task: " ..
                case[2] .. ", its <close> runs", function()
                local out, err, status, ms = signal(spinner, case[1])
                assert.matches("^ready\n", out, 1, err)
                assert.matches("\nspinner cleanup ran\n", out, 1, err)
                assert.matches("\nmain cleanup ran\n", out, 1, err)
                assert.are.equal(case[2], status, err)
                assert.is_true(ms < helper.t(5000), ms .. " ms")
            end)
        end
    end)

    -- SIGTERM drains the HTTP servers of lasio.http.serve: the request in
    -- flight gets its answer, a new connection is refused, exit 143.
    describe("SIGTERM and HTTP servers", function()
        local server = string.format([[
            local srv = lasio.http.serve(function(req, res)
                lasio.sleep(%g)
                res:finish("slow answer")
            end, "127.0.0.1", 0)
            local f = assert(io.open(arg[1], "w"))
            f:write(srv:sockets()[1].port) f:close()
            srv:serve_forever()
            print("served") io.stdout:flush()
        ]], helper.t(0.5))
        local client = [[
            local ok, res = pcall(lasio.http.get,
                "http://127.0.0.1:" .. arg[1] .. "/")
            if not ok then print("failed", res) return end
            print(res.status, res:body())
        ]]
        local refused = [[
            local ok, err = pcall(lasio.open_connection, "127.0.0.1", arg[1])
            print(ok and "connected" or "refused", ok or err.errno_name)
        ]]

        -- Starts the server, the client, then `signals` (shell commands
        -- using $pid, the server's process); returns the outputs of server,
        -- client and refused probe and the server's status.
        local function run(signals)
            local sp, cp, rp = write("srv.lua", server), write("cli.lua", client),
                write("ref.lua", refused)
            local port, so, co, ro = tmp .. "/port", tmp .. "/srv.out",
                tmp .. "/cli.out", tmp .. "/ref.out"
            os.remove(port)
            local res = sh(string.format([[
%s %s %s >%s 2>&1 &
pid=$!
i=0
while [ ! -s %s ]; do
    i=$((i + 1)); [ $i -gt 400 ] && break; sleep 0.05
done
port=$(cat %s)
%s %s $port >%s 2>&1 &
c=$!
sleep %g
%s
sleep %g
%s %s $port >%s 2>&1
(sleep %g; kill -KILL $pid 2>/dev/null) >/dev/null 2>&1 &
w=$!
wait $pid
st=$?
kill $w 2>/dev/null
wait $c
echo $st
]], q(bin), q(sp), q(port), q(so), q(port), q(port), q(bin), q(cp), q(co),
                helper.t(0.2), signals, helper.t(0.1), q(bin), q(rp), q(ro),
                helper.t(10)))
            return slurp(so), slurp(co), slurp(ro), tonumber(res:match("%d+"))
        end

        it("the request in flight is answered, new connections refused, 143",
            function()
                local sout, cout, rout, status = run("kill -TERM $pid")
                assert.are.equal("200\tslow answer\n", cout, sout)
                assert.matches("^refused", rout)
                assert.are.equal("served\n", sout)
                assert.are.equal(143, status)
            end)

        it("a second SIGTERM during the drain cancels at once", function()
            local sout, cout, _, status = run(
                "kill -TERM $pid; sleep 0.05; kill -TERM $pid")
            assert.is_nil(cout:match("slow answer"), cout)
            assert.are.equal("served\n", sout)
            assert.are.equal(143, status)
        end)

        it("SIGINT cancels at once", function()
            local sout, cout, _, status = run("kill -INT $pid")
            assert.is_nil(cout:match("slow answer"), cout)
            assert.are.equal("", sout)
            assert.are.equal(130, status)
        end)
    end)

    describe("REPL", function()
        it("runs lines from a pipe: results, multi-line chunks, errors",
            function()
                local out, err, status = lasio("-i", {pipe = table.concat({
                    "1 + 1",
                    "'a', nil, 3",
                    "=6 * 7",
                    "function double(x)",
                    "  return x * 2",
                    "end",
                    "double(50)",
                    "error('boom at prompt')",
                    "x = = 1",
                    "print('still here')",
                }, "\n") .. "\n"})
                assert.matches("^lasio %d", out)
                out = unprompt(out)
                assert.matches("\n2\na\tnil\t3\n42\n100\nstill here\n", out)
                assert.matches("stdin:1: boom at prompt\nstack traceback:", err)
                assert.matches("stdin:1: unexpected symbol", err)
                assert.are.equal(0, status)
            end)

        it("reports a failed task that is still referenced when it fails, not at exit",
            function()
                local out, err, status = lasio("-i", {pipe = table.concat({
                    "t = lasio.spawn(function() lasio.sleep(0.02) error('late boom') end)",
                    "lasio.sleep(0.2)",
                    "io.stderr:write('-- after the sleep --\\n')",
                    "a = lasio.spawn(function() error('awaited boom') end)",
                    "print(pcall(a.await, a))",
                    "t:done()",
                }, "\n") .. "\n"})
                out = unprompt(out)
                assert.matches("false\tstdin:1: awaited boom\ntrue\n", out, 1)
                local report = err:find("Task exception was never retrieved", 1, true)
                local after = err:find("-- after the sleep --", 1, true)
                assert.truthy(report and after and report < after, err)
                assert.truthy(err:find("late boom", 1, true))
                assert.are.equal(1, helper.count(err, "never retrieved"), err)
                assert.is_nil(err:find("awaited boom", 1, true), err)
                -- seen by the user: the session ends with success
                assert.are.equal(0, status)
            end)

        it("awaits at the prompt; tasks keep running between lines",
            function()
                local out, err, status = lasio("-i", {pipe = table.concat({
                    "lasio.sleep(0.01)",
                    "print('slept')",
                    "n = 0",
                    "ticker = lasio.spawn(function() while true do " ..
                        "n = n + 1 lasio.sleep(0.005) end end)",
                    "t = lasio.spawn(function() lasio.sleep(0.05) " ..
                        "return 'task result' end)",
                    "t:done()",
                    "lasio.sleep(0.2)",
                    "n > 3, ticker:done()",
                    "t:result()",
                }, "\n") .. "\n"})
                out = unprompt(out)
                assert.matches("\nslept\nfalse\ntrue\tfalse\ntask result\n",
                    out, 1)
                assert.are.equal("", err)
                -- the end of input cancelled the ticker: the process ended
                assert.are.equal(0, status)
            end)

        -- libedit is loaded by the REPL on a terminal only (src/cli/edit_dl.c):
        -- not by scripts, not for piped input; on a pseudo-terminal (made
        -- by util-linux's `script`) lines are edited with it.
        it("loads libedit on a terminal only", function()
            local probe = "print('edit', io.open('/proc/self/maps')" ..
                ":read('a'):find('libedit', 1, true) ~= nil)"
            local out, err, status = lasio("-e " .. q(probe))
            assert.are.equal("edit\tfalse\n", out, err)
            assert.are.equal(0, status)
            out, err, status = lasio("-i", {pipe = probe .. "\n"})
            assert.matches("\nedit\tfalse\n", unprompt(out))
            assert.are.equal("", err)
            assert.are.equal(0, status)
            out, err, status = sh(string.format(
                "(sleep 0.3; echo %s; sleep 0.3; echo 'os.exit(0)'; sleep 0.3)" ..
                " | script -qec %s /dev/null", q(probe), q(q(bin) .. " -i")))
            assert.matches("edit\ttrue\r?\n", out, 1, err)
            assert.are.equal("", err)
            assert.are.equal(0, status)
        end)

        -- Feeds the REPL through a pipe with `feed` (shell commands that
        -- echo lines and sleep) while `signals` (shell commands using $pid)
        -- run; returns stdout, stderr, status.
        local function repl_with_signals(feed, signals)
            local out, err = tmp .. "/repl.out", tmp .. "/repl.err"
            local res = sh(string.format([[
(%s) | %s -i >%s 2>%s &
pid=$!
%s
wait $pid
echo $?
]], feed, q(bin), q(out), q(err), signals))
            return slurp(out), slurp(err), tonumber(res:match("%d+"))
        end
        local d = helper.t(0.3)

        it("SIGINT cancels the line being run, not the REPL", function()
            local out, err, status = repl_with_signals(string.format(
                "echo 'lasio.sleep(30)'; sleep %g; echo 'print(\"after\")'",
                3 * d), string.format("sleep %g; kill -INT $pid", d))
            assert.matches("CancelledError: interrupted", err)
            assert.matches("\nafter\n", unprompt(out))
            assert.are.equal(0, status)
        end)

        it("SIGINT at the prompt is handled, again and again", function()
            local out, err, status = repl_with_signals(string.format(
                "sleep %g; echo 'print(\"after\")'", 4 * d), string.format(
                "sleep %g; kill -INT $pid; sleep %g; kill -INT $pid",
                d, d))
            assert.matches("\nafter\n", unprompt(out))
            assert.are.equal("", err)
            assert.are.equal(0, status)
        end)

        it("SIGTERM ends the REPL with status 143", function()
            local _, _, status = repl_with_signals(string.format(
                "sleep %g; echo 'print(\"after\")'", 3 * d),
                string.format("sleep %g; kill -TERM $pid", d))
            assert.are.equal(143, status)
        end)

        it("reads a regular file too and runs after the script", function()
            local path = write("pre.lua", "preset = 'from script'")
            local out, err, status = lasio("-i " .. q(path),
                {stdin = "preset\nlasio.sleep(0.01) print('ok')\n"})
            out = unprompt(out)
            assert.matches("\nfrom script\nok\n", out)
            assert.are.equal("", err)
            assert.are.equal(0, status)
        end)
    end)
end)
