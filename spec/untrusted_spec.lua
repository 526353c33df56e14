-- Untrusted scripts (docs/UNTRUSTED.md): the memory cap, budgets, forced
-- yields, caps and the sandbox, covering R1-R5, and the hostile corpus of
-- spec/hostile/. Each case runs in a child process (both interpreters),
-- so its limits never reach the spec runner's own state.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local function child(code, opts)
    return helper.run_child(code, opts)
end

-- Runs body (Lua source run inside lasio.run) under interp.
local function in_loop(interp, body, opts)
    opts = opts or {}
    opts.interp = interp
    return child("local lasio = require 'lasio'\nlasio.run(function()\n"
        .. body .. "\nend)\n", opts)
end

for _, interp in ipairs(helper.interps) do
    local name = interp:match("[^/]+$")

    describe("untrusted scripts (" .. name .. ")", function()
        it("R1: a capped state fails the allocation that passes the cap; "
            .. "the other tasks go on and the peak stays under the cap", function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ memory = 16 * 1024 * 1024 }
                local ticks = 0
                local ticker = lasio.spawn(function()
                    for _ = 1, 5 do lasio.sleep(0.01) ticks = ticks + 1 end
                end)
                local bomb = lasio.spawn(function()
                    local s = "x" while true do s = s .. s end
                end)
                local ok, e = pcall(bomb.await, bomb)
                ticker:await()
                local used, peak, cap = lasio.memory()
                print(ok, e, ticks, peak <= cap, cap, used < cap)
            ]])
            assert.equal(0, status, err)
            assert.equal("false\tnot enough memory\t5\ttrue\t16777216\ttrue\n", out)
        end)

        it("R1: a cap below what the state holds is refused", function()
            local out, err, status = in_loop(interp, [[
                print(pcall(lasio.set_limits, { memory = 1000 }))
                print(pcall(lasio.set_limits, { memory = -1 }))
            ]])
            assert.equal(0, status, err)
            assert.matches("false\t[^\n]*lasio.set_limits: option 'memory' is below", out)
            assert.matches("option 'memory' must be a number >= 0, got %-1", out)
        end)

        it("R2: a task past its instruction budget gets BudgetExceeded naming it, "
            .. "also through pcall; other tasks go on", function()
            local out, err, status = in_loop(interp, [[
                local t = lasio.spawn(function()
                    while true do pcall(function() while true do end end) end
                end)
                t:set_budget{ instructions = 1e6 }
                local other = lasio.spawn(function() lasio.sleep(0.01) return "other" end)
                local ok, e = pcall(t.await, t)
                print(ok, lasio.BudgetExceeded:is(e), e.budget, e.scope, e.limit)
                print(other:await(), t:get_budget().exceeded,
                    t:get_budget().instructions_used >= 1e6)
            ]])
            assert.equal(0, status, err)
            assert.equal("false\ttrue\tinstructions\ttask\t1000000.0\n"
                .. "other\tinstructions\ttrue\n", out)
        end)

        it("R2: a task past its CPU budget, and one past its memory budget", function()
            local out, err, status = in_loop(interp, [[
                local c = lasio.spawn(function() while true do end end)
                c:set_budget{ cpu = 0.05 }
                local m = lasio.spawn(function()
                    local t = {} while true do t[#t + 1] = {} end
                end)
                m:set_budget{ memory = 1e6 }
                local _, e1 = pcall(c.await, c)
                local _, e2 = pcall(m.await, m)
                print(e1.budget, e2.budget, m:get_budget().memory_used <= 1e6)
            ]])
            assert.equal(0, status, err)
            assert.equal("cpu\tmemory\ttrue\n", out)
        end)

        it("R2: bad budgets raise naming the function and the option", function()
            local out, err, status = in_loop(interp, [[
                local t = lasio.spawn(function() end)
                print(pcall(t.set_budget, t, { cpu = "x" }))
                print(pcall(t.set_budget, t, 5))
            ]])
            assert.equal(0, status, err)
            assert.matches("task:set_budget: option 'cpu' must be a number >= 0, got string", out)
            assert.matches("task:set_budget: options must be a table, got number", out, 1, true)
        end)

        it("misspelt options of set_limits and sandbox_env are refused, naming them", function()
            local out, err, status = in_loop(interp, [[
                print(pcall(lasio.set_limits, { forced_yeild = 100 }))
                print(pcall(lasio.sandbox_env, { outptu = 1 }))
            ]])
            assert.equal(0, status, err)
            assert.matches("lasio.set_limits: unknown option 'forced_yeild'", out, 1, true)
            assert.matches("lasio.sandbox_env: unknown option 'outptu'", out, 1, true)
        end)

        it("R2: the run's instruction and CPU budgets end a spinning run", function()
            local _, err, status = child("while true do end",
                { interp = helper.lasio_bin, flags = "--max-instructions=1000000" })
            assert.equal(1, status)
            assert.matches("BudgetExceeded: the run's instructions budget is exceeded "
                .. "%(1000000 instructions%)", err)
            _, err, status = child("while true do end",
                { interp = helper.lasio_bin, flags = "--max-cpu=0.05" })
            assert.equal(1, status)
            assert.matches("the run's cpu budget is exceeded %(0.05 s%)", err)
        end)

        it("R3: with forced yields a spinning task lets timers and tasks run", function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ forced_yield = 10000 }
                local spinning = true
                local ticks, late = 0, 0
                local ticker = lasio.spawn(function()
                    for _ = 1, 10 do
                        local t0 = lasio.time()
                        lasio.sleep(0.01)
                        late = math.max(late, lasio.time() - t0 - 0.01)
                        if spinning then ticks = ticks + 1 end
                    end
                end)
                local spin = lasio.spawn(function()
                    local t0 = os.clock()
                    while os.clock() - t0 < 0.3 and not ticker:done() do end
                    spinning = false
                    return "spun"
                end)
                print(spin:await(), ticks >= 5, late < ]] .. helper.t(0.25) .. [[)
                ticker:await()
            ]])
            assert.equal(0, status, err)
            assert.equal("spun\ttrue\ttrue\n", out)
        end)

        it("R3: forced yields alone hook no task until it runs for a time slice", function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ forced_yield = 10000 }
                local short = lasio.spawn(function() return debug.gethook() end)
                local hook_of_short = short:await()
                -- a step that runs long is hooked, then suspended
                local steps, spun = 0, 0
                local spin = lasio.spawn(function()
                    local t0 = os.clock()
                    while os.clock() - t0 < 0.2 do spun = spun + 1 end
                end)
                local other = lasio.spawn(function()
                    while not spin:done() do steps = steps + 1 lasio.sleep(0) end
                end)
                spin:await()
                other:await()
                print(hook_of_short, steps >= 2)
                -- budgets count every instruction: the hook is on again
                lasio.set_limits{ instructions = 1e12 }
                print(lasio.spawn(function() return debug.gethook() ~= nil end):await())
            ]])
            assert.equal(0, status, err)
            assert.equal("nil\ttrue\ntrue\n", out)
        end)

        it("R2: the budgeted pattern functions answer as the string library's", function()
            local out, err, status = in_loop(interp, [[
                local host = { find = string.find, match = string.match,
                    gmatch = string.gmatch, gsub = string.gsub }
                local env = lasio.sandbox_env{}
                assert(env.string.find ~= host.find and env.string.gsub ~= host.gsub)
                assert(string.find == env.string.find) -- the state's library has them too
                local function same(fn, ...)
                    local a = table.pack(pcall(host[fn], ...))
                    local b = table.pack(pcall(env.string[fn], ...))
                    if fn == "gmatch" and a[1] and b[1] then
                        a = table.pack(pcall(a[2])) b = table.pack(pcall(b[2]))
                    end
                    assert(a.n == b.n, fn)
                    for i = 1, a.n do -- the name in an argument error aside
                        if type(a[i]) == "string" then
                            a[i] = a[i]:gsub("to '[^']*'", "to F") b[i] = b[i]:gsub("to '[^']*'", "to F")
                        end assert(a[i] == b[i], fn .. " " .. tostring(a[i])
                        .. " ~= " .. tostring(b[i])) end
                end
                local cases = { { "hello world", "o w" }, { "hello", "l+" },
                    { "key = value", "(%w+)%s*=%s*(%w+)" }, { "THE (quick) fox", "%((%a+)%)" },
                    { "abc", "()b()" }, { "aaa", "a-b" }, { "f(a(b)c)", "%b()" },
                    { "THE END", "%f[%a]%a+" }, { "x", "[" }, { "x", "(()" }, { "x", "%1" },
                    { "a.b", ".", 1, true }, { "abc", "b", -1 }, { "abc", "^b" },
                    { "abab", "(ab)%1$" }, { "x", "%" } }
                for _, c in ipairs(cases) do
                    same("find", table.unpack(c, 1, 4))
                    same("match", c[1], c[2], c[3])
                    same("gmatch", c[1], c[2])
                    same("gsub", c[1], c[2], "<%0>")
                end
                same("gsub", "hello world", "%w+", { hello = "HI" })
                same("gsub", "hello world", "%w+", function(w) return #w end, 1)
                same("gsub", "abc", "b", "%2")
                same("gsub", "abc", "b", true)
                print("same")
            ]])
            assert.equal(0, status, err)
            assert.equal("same\n", out)
        end)

        it("R2: a pattern's work counts against the budgets, a task's and the run's", function()
            local out, err, status = in_loop(interp, [[
                local ticks = 0
                local ticker = lasio.spawn(function()
                    for _ = 1, 5 do lasio.sleep(0.01) ticks = ticks + 1 end
                end)
                local t = lasio.spawn(function()
                    return ("a"):rep(100):match(("a?"):rep(100) .. ("a"):rep(100) .. "$")
                end)
                t:set_budget{ cpu = 0.2 }
                local ok, e = pcall(t.await, t)
                ticker:await()
                print(ok, lasio.BudgetExceeded:is(e) and e.budget, ticks)
                print(("x"):rep(10):find("x-y"))
            ]])
            assert.equal(0, status, err)
            assert.equal("false\tcpu\t5\nnil\n", out)
            _, err, status = child("return ('a'):rep(100):match(('a?'):rep(100) .. ('a'):rep(100))",
                { interp = helper.lasio_bin, flags = "--max-instructions=1000000" })
            assert.equal(1, status)
            assert.matches("the run's instructions budget is exceeded", err)
        end)

        it("R5: the cap of sockets counts servers, connections both ways and UDP", function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ max_sockets = 3 }
                local accepted, gone = 0, 0
                local server = lasio.start_server(function(r, w)
                    accepted = accepted + 1
                    r:read() -- until the client closes
                    w:close()
                    gone = gone + 1
                end, "127.0.0.1", 0)
                local port = server:sockets()[1].port
                local _, w1 = lasio.open_connection("127.0.0.1", port)
                while accepted < 1 do lasio.sleep(0.01) end
                print(pcall(lasio.open_connection, "127.0.0.1", port))
                print(pcall(lasio.open_datagram, { local_addr = { "127.0.0.1", 0 } }))
                print(pcall(lasio.start_server, function() end, "127.0.0.1", 0))
                w1:close()
                while gone < 1 do lasio.sleep(0.01) end
                local _, w2 = lasio.open_connection("127.0.0.1", port)
                print(w2 ~= nil, accepted)
                w2:close() server:close()
                print(pcall(lasio.set_limits, { max_sockets = -1 }))
            ]])
            assert.equal(0, status, err)
            assert.equal("false\tconnect: too many sockets: the loop's cap is 3\n"
                .. "false\topen_datagram: too many sockets: the loop's cap is 3\n"
                .. "false\tstart_server: too many sockets: the loop's cap is 3\n"
                .. "true\t2\n"
                .. "false\tlasio.set_limits: option 'max_sockets' must be a number >= 0, got -1\n",
                out)
        end)

        it("R5: the TCP retry of a truncated DNS reply counts as a socket", function()
            local out, err, status = in_loop(interp, [[
                local dns = require "fake_dns"
                local srv = dns.start(dns.truncated, nil, function(q)
                    return dns.answer(q, { "10.7.0.1" })
                end)
                lasio.dns_configure{ nameservers = { srv.nameserver },
                    hosts = false, timeout = 0.3, attempts = 1 }
                -- the fake server's UDP endpoint and TCP server
                lasio.set_limits{ max_sockets = 2 }
                print(pcall(lasio.getaddrinfo, "big.test", 9, { family = "inet" }))
                -- the lookup's socket, and the server's end of it
                lasio.set_limits{ max_sockets = 4 }
                print(lasio.getaddrinfo("big.test", 9, { family = "inet" })[1].addr)
                srv.close()
            ]])
            assert.equal(0, status, err)
            assert.equal("false\tgetaddrinfo: too many sockets: the loop's cap is 2\n"
                .. "10.7.0.1\n", out)
        end)

        it("R5: the output cap counts print, io.write and writes to stdout and stderr", function()
            local out, err, status = in_loop(interp, [[
                local path = os.tmpname()
                lasio.set_limits{ max_output = 16 }
                print("12345")              -- 6 bytes
                io.write("abc", 1, "\n")   -- 5
                local f = assert(io.open(path, "w"))
                f:write(("f"):rep(100))     -- a file: not counted
                f:close()
                os.remove(path)
                io.stdout:write("xy\n")    -- 3
                local ok, e = pcall(io.stderr.write, io.stderr, ("z"):rep(3))
                local ok2, e2 = pcall(print, "too long")
                lasio.set_limits{ max_output = 0 }
                print(ok, e)
                print(ok2, e2)
                print(pcall(lasio.set_limits, { max_output = "lots" }))
            ]])
            assert.equal(0, status, err)
            assert.equal("12345\nabc1\nxy\n"
                .. "false\tfile:write: the output cap is reached (16 bytes)\n"
                .. "false\tprint: the output cap is reached (16 bytes)\n"
                .. "false\tlasio.set_limits: option 'max_output' must be a number >= 0, got string\n",
                out)
            assert.equal("", err)
        end)

        it("R3: a task cancelled while preempted gets its CancelledError where it stopped",
            function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ forced_yield = 1000 }
                local closed = false
                local t = lasio.spawn(function()
                    local _ <close> = setmetatable({}, { __close = function() closed = true end })
                    while true do end
                end)
                lasio.spawn(function() lasio.sleep(0.02) t:cancel("enough") end)
                local ok, e = pcall(t.await, t)
                print(ok, e, t:cancelled(), closed)
            ]])
            assert.equal(0, status, err)
            assert.equal("false\tCancelledError: enough\ttrue\ttrue\n", out)
        end)

        it("R4: the sandbox leaves out what reaches the process or the host", function()
            local out, err, status = in_loop(interp, [[
                local env = lasio.sandbox_env{}
                local names = { "io", "require", "package", "loadfile", "dofile",
                    "debug", "module" }
                for _, n in ipairs(names) do assert(env[n] == nil, n) end
                assert(env.os.execute == nil and env.os.exit == nil and env.os.getenv == nil)
                assert(env.string.dump == nil and env.getmetatable("") == nil)
                assert(env.lasio.open_connection == nil and env.lasio.fs == nil)
                assert(env.lasio.sleep and env.lasio.spawn)
                local io_env = lasio.sandbox_env{ io = true }
                assert(io_env.lasio.open_connection and io_env.io == nil)
                local f, e = env.load(string.dump(function() end))
                print(f, e:match("binary chunk") ~= nil)
                print(pcall(env.load, "return 1", "x", "b"))
                print(pcall(function() io_env.lasio.fs.x = 1 end))
                print(pcall(env.setmetatable, {}, { __gc = print }))
                print(pcall(env.collectgarbage, "stop"))
                print(load("return x", "c", "t", env)(), env.load("return _G")() == env)
            ]])
            assert.equal(0, status, err)
            assert.equal("nil\ttrue\n"
                .. "false\tload: binary chunks are not allowed here (mode 'b')\n"
                .. "false\tattempt to change a read-only table of lasio\n"
                .. "false\tsetmetatable: __gc is not allowed here\n"
                .. "false\tbad argument #1 to '?' (invalid option 'stop')\n"
                .. "nil\ttrue\n", (out:gsub("%S*:%d+: ", ""):gsub("'collectgarbage'", "'?'")))
        end)

        it("R5: caps on tasks and timers raise instead of growing", function()
            local out, err, status = in_loop(interp, [[
                lasio.set_limits{ max_tasks = 10, max_timers = 5 }
                local mine = {}
                local ok, e = pcall(function()
                    for i = 1, 20 do mine[i] = lasio.spawn(function() lasio.sleep(1) end) end
                end)
                print(ok, e)
                local loop = lasio.get_running_loop()
                ok, e = pcall(function()
                    for _ = 1, 20 do loop:call_later(1, print) end
                end)
                print(ok, e)
                lasio.set_limits{ max_tasks = 0, max_timers = 0 }
                for _, t in ipairs(mine) do t:cancel() end
            ]])
            assert.equal(0, status, err)
            assert.matches("false\t[^\n]*too many tasks: the loop's cap is 10\n"
                .. "false\t[^\n]*too many timers: the loop's cap is 5\n", out)
        end)

        it("R5: print in the sandbox stops at the output cap", function()
            local out, err, status = in_loop(interp, [[
                local env = lasio.sandbox_env{ output = 10 }
                print(pcall(env.print, "12345"), pcall(env.print, "123456"))
            ]])
            assert.equal(0, status, err)
            assert.equal("12345\ntrue\tfalse\tprint: the sandbox's output cap is reached\n", out)
        end)

        -- The hostile corpus: each script ends in an error, the host lives,
        -- the ticker's timers stay on time (late at most the script's budget).
        local dir = helper.root .. "/spec/hostile"
        local h = io.popen("ls " .. helper.shell_quote(dir))
        for file in h:lines() do
            if file ~= "host.lua" and file:match("%.lua$") then
                it("hostile: " .. file, function()
                    local out, err, status = child(
                        "arg = { [0] = 'host', ... }\n"
                        .. "dofile(" .. string.format("%q", dir .. "/host.lua") .. ")\n",
                        { interp = interp, args = helper.shell_quote(dir .. "/" .. file),
                          timeout = helper.t(60) })
                    assert.equal(0, status, err)
                    local result = out:match("RESULT ([^\n]*)")
                    assert.is_truthy(result, out .. err)
                    assert.are_not.equal("returned", result)
                    assert.equal("30", out:match("TICKS (%d+)"))
                    assert.is_true(tonumber(out:match("LATE ([%d.e-]+)")) < helper.t(5))
                end)
            end
        end
        h:close()
    end)
end

describe("untrusted scripts: the command's options", function()
    it("--max-output and --max-sockets cap the script's output and sockets", function()
        local out, err, status = child("print('12345') print(('x'):rep(20))",
            { flags = "--max-output=10" })
        assert.equal(1, status)
        assert.equal("12345\n", out)
        assert.matches("print: the output cap is reached %(10 bytes%)", err)
        out, err, status = child([[
            local lasio = require "lasio"
            local server = lasio.start_server(function() end, "127.0.0.1", 0)
            print(pcall(lasio.open_datagram, {}))
            server:close()
        ]], { flags = "--max-sockets=1" })
        assert.equal(0, status, err)
        assert.equal("false\topen_datagram: too many sockets: the loop's cap is 1\n", out)
    end)

    it("bad values exit 2 naming the option", function()
        for _, flag in ipairs{ "--max-memory=12Q", "--max-memory=", "--forced-yield=-1",
            "--max-cpu=abc", "--max-tasks=1.5", "--forced-yield=10K", "--max-sockets=-2",
            "--max-sockets=1K", "--max-output=x" } do
            local _, err, status = child("print(1)", { flags = flag })
            assert.equal(2, status, flag)
            assert.matches("bad value in option '" .. flag:gsub("%-", "%%-") .. "'", err)
        end
        local _, err, status = child("print(1)", { flags = "--max-memory=100" })
        assert.equal(2, status)
        assert.matches("the cap is below what the state holds", err)
    end)

    it("--max-memory takes K, M and G; the script sees the cap", function()
        for flag, cap in pairs{ ["--max-memory=65536K"] = 67108864,
            ["--max-memory=64M"] = 67108864, ["--max-memory=1G"] = 1073741824 } do
            local out, err, status = child("print(select(3, lasio.memory()))",
                { flags = flag })
            assert.equal(0, status, err)
            assert.equal(cap .. "\n", out)
        end
    end)

    it("--sandbox runs the script without io, binary chunks refused even with "
        .. "--allow-bytecode", function()
        local out, err, status = child("print(io, os.execute, lasio.sleep ~= nil)",
            { flags = "--sandbox" })
        assert.equal(0, status, err)
        assert.equal("nil\tnil\ttrue\n", out)
        local dir = os.tmpname()
        local f = assert(io.open(dir, "wb"))
        f:write(string.dump(function() print("ran") end))
        f:close()
        local _, err2, status2 = child("", { flags = "--sandbox --allow-bytecode "
            .. helper.shell_quote(dir) .. " --" })
        os.remove(dir)
        assert.are_not.equal(0, status2)
        assert.matches("binary chunk", err2)
    end)

    it("--forced-yield lets the script's timers run beside a spinning task", function()
        local out, err, status = child([[
            local ticks = 0
            lasio.spawn(function() while true do end end)
            for _ = 1, 5 do lasio.sleep(0.01) ticks = ticks + 1 end
            print(ticks)
            os.exit(0)
        ]], { flags = "--forced-yield=10000" })
        assert.equal(0, status, err)
        assert.equal("5\n", out)
    end)
end)
