-- Error messages name what was wrong and where, in words a user knows: the
-- public name of the function, the argument, the address. Calls go through
-- pcall(f, ...) on purpose: there the call site gives Lua no name, and the
-- message must still name the function.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local helper = require "helper"
local async = helper.async

local function message(f, ...)
    local ok, e = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return tostring(e)
end

local function has(s, needle)
    assert.truthy(s:find(needle, 1, true),
        ("expected %q in the message %q"):format(needle, s))
end

describe("error messages", function()
    it("lasio.trace names the function and the argument", function()
        has(message(lasio.trace.start, 1),
            "bad argument #1 to 'lasio.trace.start' (string expected, got number)")
        has(message(lasio.trace.start, "t.json", { ring = -1 }), "'lasio.trace.start' (ring must be an integer")
        has(message(lasio.trace.mark, nil), "bad argument #1 to 'lasio.trace.mark' (string expected, got nil)")
        has(message(lasio.trace.region, "r", 5),
            "bad argument #2 to 'lasio.trace.region' (table expected, got number)")
        has(message(lasio.trace.counter, "c", {}),
            "bad argument #2 to 'lasio.trace.counter' (number expected, got table)")
        local r = lasio.trace.region("r")
        has(message(r.close, {}), "'TraceRegion:close' (TraceRegion expected)")
        r:close()
    end)

    it("a NaN delay reads nan, and is refused", async(function()
        local m = message(lasio.sleep, 0 / 0)
        has(m, "lasio.sleep: delay must be >= 0, got nan")
        assert.falsy(m:find("-nan", 1, true), m)
        has(message(lasio.sleep, -1), "lasio.sleep: delay must be >= 0, got -1")
        has(message(lasio.wait_for, lasio.Future(), 0 / 0), "lasio.wait_for: timeout must not be NaN")
    end))

    it("signal methods name themselves and the argument", function()
        local loop = lasio.new_event_loop()
        local m = message(loop.add_signal_handler, loop, "NOPE", print)
        has(m, "bad argument #1 to 'loop:add_signal_handler' (unknown signal name 'NOPE')")
        m = message(loop.add_signal_handler, loop, "SIGUSR1", 42)
        has(m, "bad argument #2 to 'loop:add_signal_handler' (function expected, got number)")
        m = message(loop.add_signal_handler, loop, "KILL", print)
        has(m, "'loop:add_signal_handler' (SIGKILL and SIGSTOP cannot be handled)")
        m = message(loop.remove_signal_handler, loop, {})
        has(m, "bad argument #1 to 'loop:remove_signal_handler' "
            .. "(signal name or number expected, got table)")
        m = message(loop.add_signal_handler, loop, 1.5, print)
        has(m, "'loop:add_signal_handler' (invalid signal number 1.5)")
        assert.falsy(m:find("'?'", 1, true), m)
        loop:close()
    end)

    it("an await in a C function names it", async(function()
        local m = message(string.gsub, "a", "a", function() lasio.sleep(0) end)
        has(m, "lasio.sleep: cannot await here: attempt to yield across a C-call "
            .. "boundary (in string.gsub)")
        local gsub = string.gsub
        m = message(function() local r = gsub("a", "a", function() lasio.sleep(0) end) return r end)
        has(m, "(in string.gsub)")
        m = message(table.sort, { 3, 2, 1 }, function(a, b) lasio.sleep(0) return a < b end)
        has(m, "(in table.sort)")
        package.preload["error_messages_spec.awaits"] = function() lasio.sleep(0) end
        m = message(require, "error_messages_spec.awaits")
        package.preload["error_messages_spec.awaits"] = nil
        has(m, "(in require)")
    end))

    it("a refused connection names the address", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        server:close()
        local e = select(2, pcall(lasio.open_connection, "127.0.0.1", port))
        assert.are.equal("ECONNREFUSED", e.code)
        assert.are.equal("connect: Connection refused (while connecting to 127.0.0.1:"
            .. port .. ")", e.message)
        e = select(2, pcall(lasio.open_connection, "::1", port))
        has(e.message, "[::1]:" .. port)
    end))

    it("open_unix_connection names the path", async(function()
        local e = select(2, pcall(lasio.open_unix_connection, "/nonexistent/lasio.sock"))
        assert.are.equal("ENOENT", e.code)
        assert.are.equal("connect: No such file or directory (while connecting to "
            .. "/nonexistent/lasio.sock)", e.message)
    end))

    it("bind failures name the address, IPv6 in brackets", async(function()
        local e = select(2, pcall(lasio.open_datagram, { local_addr = { "192.0.2.1", 5000 } }))
        assert.are.equal("bind: Cannot assign requested address (while binding "
            .. "192.0.2.1:5000)", e.message)
        local server = lasio.start_server(function() end, "::1", 0)
        local port = server:sockets()[1].port
        e = select(2, pcall(lasio.start_server, function() end, "::1", port))
        assert.are.equal("bind: Address already in use (while binding [::1]:" .. port .. ")",
            e.message)
        server:close()
    end))

    it("open_connection(nil, 80) says lasio.open_connection on every run, "
        .. "tracebacks say lasio.taskgroup", function()
        -- the name came from a search of the loaded modules in hash order,
        -- which varies between processes: run a few
        local code = [[
            local lasio = require "lasio"
            local _, e = pcall(lasio.open_connection, nil, 80)
            local _, f = pcall(lasio.fs.read_file, {})
            io.write(e, "\n", f, "\n")
            lasio.run(function()
                lasio.taskgroup(function() io.write(debug.traceback(), "\n") end)
                local _, g = pcall(lasio.http.get, 1)
                io.write(g, "\n")
            end)
        ]]
        for _ = 1, 12 do
            local out, err, status = helper.run_child(code, { interp = helper.interp })
            assert.are.equal(0, status, err)
            has(out, "bad argument #1 to 'lasio.open_connection' (string expected, got nil)")
            has(out, "bad argument #1 to 'lasio.fs.read_file' (string expected, got table)")
            has(out, "in function 'lasio.taskgroup'")
            has(out, "lasio.http.get: url must be a string")
            assert.falsy(out:find("lasio.core", 1, true), out)
            assert.falsy(out:find("lasio.taskgroup.taskgroup", 1, true), out)
        end
    end)

    it("spawn and create_task each name themselves", async(function()
        has(message(lasio.spawn, 42), "bad argument #1 to 'lasio.spawn' (function expected, got number)")
        has(message(lasio.create_task, 42), "bad argument #1 to 'lasio.create_task'")
        assert.falsy(message(lasio.spawn, 42):find("create_task", 1, true))
    end))
end)

-- Every public function, called with bad arguments: the message names it.
-- Add a row for a new function; `name` is what the message must contain.
local functions = {
    { "sleep", { "x" } },
    { "spawn", { 1 } },
    { "create_task", { 1 } },
    { "await", { 1 } },
    { "run", { 1 } },
    { "gather", { 1 } },
    { "wait", { 1 } },
    { "as_completed", { 1 } },
    { "wait_for", { lasio.Future, "x" } },
    { "shield", { 1 } },
    { "timeout", { "x" } },
    { "timeout_at", { "x" } },
    { "taskgroup", { 1 } },
    { "set_event_loop", { 1 } },
    { "Lock", { 1 }, ok = true },
    { "Semaphore", { "x" } },
    { "BoundedSemaphore", { -1 } },
    { "Barrier", { 0 } },
    { "Condition", { 1 } },
    { "Queue", { -1 } },
    { "LifoQueue", { "x" } },
    { "PriorityQueue", { -1 } },
    { "open_connection", { nil, 80 } },
    { "open_connection", { "127.0.0.1", "x" } },
    { "open_connection", { "127.0.0.1", 80, { tiemout = 1 } } },
    { "open_unix_connection", { {} } },
    { "start_server", { 1 } },
    { "start_unix_server", { print, {} } },
    { "open_datagram", { 1 } },
    { "getaddrinfo", { {} } },
    { "getnameinfo", { 1 } },
    { "dns_configure", { 1 } },
    { "ssl_context", { 1 } },
    { "create_subprocess_exec", { {} } },
    { "create_subprocess_exec", { "true", {}, { stdinn = 1 } } },
    { "create_subprocess_shell", { {} } },
    { "to_thread", { 1 } },
    { "fs.read_file", { {} } },
    { "fs.write_file", { "/tmp/x", {} } },
    { "fs.stat", { {} } },
    { "fs.lstat", { {} } },
    { "fs.listdir", { {} } },
    { "fs.mkdir", { {} } },
    { "fs.remove", { {} } },
    { "fs.rename", { "a", {} } },
    { "fs.open", { {} } },
    { "http.serve", { 1 } },
    { "http.request", { 1 } },
    { "http.get", { 1 } },
    { "http.websocket", { 1 } },
    { "ensure_future", { 1 } },
    { "ensure_future", { function() end, 1 } },
    { "Runner", { 1 } },
    { "Runner", { { debug = 1 } } },
    { "TaskGroup", { 1 } },
    { "Timeout", { "x" } },
    { "wait_readable", { "x" } },
    { "wait_writable", { {} } },
    { "eager_task_factory", { 1 } },
    { "create_eager_task_factory", { 1 } },
    { "set_limits", { 1 } },
    { "set_limits", { { memory = -1 } } },
    { "set_limits", { { forced_yield = "x" } } },
    { "sandbox_env", { 1 } },
    { "testing.run", { 1 } },
    { "testing.run", { print, { seed = -1 } } },
    { "testing.run", { print, { bogus = 1 } } },
    { "testing.buggify", { "x" } },
    { "testing.pipe", { { latency = -1 } } },
    { "testing.listen", { 1 } },
    { "testing.listen", { "x", 1 } },
    { "testing.connect", { 1 } },
    { "testing.partition", { "a", 1 } },
    { "testing.hold", { 1 } },
    { "testing.release", { 1 } },
    { "pg.connect", { 1 } },
    { "pg.pool", { 1 } },
    { "pg.pool", { "dbname=x", { size = 0 } } },
    { "pg.bytea", { 1 } },
    { "pg.quote_ident", { 1 } },
}
-- lasio.redis, once it is part of the build
if pcall(require, "lasio.redis") then
    for _, row in ipairs({
        { "redis.connect", { 1 } },
        { "redis.connect", { "http://127.0.0.1" } },
        { "redis.connect", { { port = 0 } } },
        { "redis.connect", { { bogus = 1 } } },
        { "redis.pool", { 1 } },
        { "redis.pool", { "redis://127.0.0.1", { size = 0 } } },
    }) do functions[#functions + 1] = row end
end

describe("every public function names itself in its argument errors", function()
    for _, row in ipairs(functions) do
        local name, args = row[1], row[2]
        it(name, async(function()
            local f = lasio
            for part in name:gmatch("[^.]+") do f = f[part] end
            local n = select("#", table.unpack(args))
            local ok, e = pcall(f, table.unpack(args, 1, math.max(n, #args)))
            if row.ok then return end -- accepted: nothing to name
            assert.is_false(ok, name .. " accepted bad arguments")
            local m = tostring(e)
            local short = name:match("[^.]+$")
            has(m, short)
            assert.falsy(m:find("'?'", 1, true), m)
            assert.falsy(m:find("lasio.core", 1, true), m)
        end))
    end
end)

-- Methods: called with a bad argument through pcall(obj.method, obj, ...),
-- the message names the method.
describe("methods name themselves in their argument errors", function()
    local cases = {
        { "fut:add_done_callback", function() local f = lasio.Future() return f.add_done_callback, f, 1 end },
        { "fut:remove_done_callback", function() local f = lasio.Future() return f.remove_done_callback, f, 1 end },
        { "loop:add_signal_handler", function()
            local l = lasio.get_running_loop()
            return l.add_signal_handler, l, {}
        end },
        { "Condition:wait_for", function() local c = lasio.Condition() return c.wait_for, c, 1 end },
        { "reader:read", "read", {} },
        { "reader:readexactly", "readexactly", {} },
        { "reader:readuntil", "readuntil", {} },
        { "writer:write", "write", {} },
        { "writer:writelines", "writelines", 1 },
        { "writer:get_extra_info", "get_extra_info", {} },
        { "writer:set_write_buffer_limits", "set_write_buffer_limits", {} },
        { "file:read", "file_read", {} },
        { "file:write", "file_write", {} },
        { "file:seek", "file_seek", {} },
        { "endpoint:send", "dgram_send", {} },
        { "endpoint:get_extra_info", "dgram_get_extra_info", {} },
        { "loop:add_reader", function()
            local l = lasio.get_running_loop()
            return l.add_reader, l, "x"
        end },
        { "loop:add_writer", function()
            local l = lasio.get_running_loop()
            return l.add_writer, l, {}
        end },
        { "loop:remove_reader", function()
            local l = lasio.get_running_loop()
            return l.remove_reader, l, "x"
        end },
        { "loop:remove_writer", function()
            local l = lasio.get_running_loop()
            return l.remove_writer, l, "x"
        end },
        { "loop:run_in_executor", function()
            local l = lasio.get_running_loop()
            return l.run_in_executor, l, 1
        end },
        { "loop:call_soon_threadsafe", function()
            local l = lasio.get_running_loop()
            return l.call_soon_threadsafe, l, 1
        end },
        { "loop:set_task_factory", function()
            local l = lasio.get_running_loop()
            return l.set_task_factory, l, 1
        end },
        { "task:set_budget", function()
            local t = lasio.current_task()
            return t.set_budget, t, 1
        end },
        { "task:set_budget", function()
            local t = lasio.current_task()
            return t.set_budget, t, { cpu = -1 }
        end },
        { "tg:spawn", function()
            local tg
            lasio.taskgroup(function(g) tg = g end)
            return tg.spawn, tg, 1
        end },
        { "runner:run", function()
            local r = lasio.Runner()
            return r.run, r, 1
        end },
    }
    for _, c in ipairs(cases) do
        it(c[1], async(function()
            local f, obj, arg
            if type(c[2]) == "function" then
                f, obj, arg = c[2]()
            elseif c[2]:match("^file_") then
                obj = lasio.fs.open(helper.root .. "/spec/error_messages_spec.lua")
                f, arg = obj[c[2]:sub(6)], c[3]
            elseif c[2]:match("^dgram_") then
                obj = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
                f, arg = obj[c[2]:sub(7)], c[3]
            else
                local server = lasio.start_server(function() end, "127.0.0.1", 0)
                local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
                obj = c[1]:match("^reader") and r or w
                f, arg = obj[c[2]], c[3]
                server:close()
            end
            local m = message(f, obj, arg)
            has(m, c[1])
            -- the running loop stays open: closing it would refuse new
            -- tasks to every spec after this one
            if obj.close and obj ~= lasio.get_running_loop() then obj:close() end
        end))
    end
end)
