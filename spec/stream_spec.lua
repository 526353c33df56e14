-- Specs for TCP and Unix streams (docs/API.md): open_connection,
-- start_server, Reader, Writer, Server. Ports asyncio's test_streams.py
-- behaviours that apply (the reader is fed by a real peer socket instead
-- of feed_data), and covers S1-S7, T6, G2, G5, L1, L6.
-- Everything on loopback; durations are hang detectors scaled by helper.t.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"
-- every async spec runs under a hang guard
local async = helper.async_guarded

local DATA = "line1\nline2\nline3\n"

-- Waits until the reader has n bytes buffered (the peer's writes arrived).
local function buffered(r, n)
    assert(helper.wait_until(function() return r:buffered() >= n end),
        "data did not arrive")
end

describe("open_connection and start_server", function()
    it("round-trips a line over TCP", async(function()
        local server, port = net.echo_server()
        local r, w = lasio.open_connection("127.0.0.1", port)
        w:write("hello world!\n")
        assert.are.equal("hello world!\n", r:readline())
        w:close()
        w:wait_closed()
        assert.is_true(w:is_closing())
        server:close()
        server:wait_closed()
        assert.is_false(server:is_serving())
    end))

    it("round-trips over IPv6 loopback", async(function()
        if not net.has_ipv6() then return end
        local server = lasio.start_server(function(r, w)
            w:write(r:readline())
        end, "::1", 0)
        local addr = server:sockets()[1]
        assert.are.equal("inet6", addr.family)
        assert.are.equal("::1", addr.addr)
        local r, w = lasio.open_connection("::1", addr.port)
        w:write("six\n")
        assert.are.equal("six\n", r:readline())
        assert.are.equal("inet6", w:get_extra_info("peername").family)
        w:close()
        server:close()
    end))

    it("round-trips over a Unix socket and removes its file", async(function()
        local dir = net.tmpdir()
        local path = dir .. "/s.sock"
        local server = lasio.start_unix_server(function(r, w)
            w:write(r:readline())
            w:close()
            w:wait_closed()
        end, path)
        assert.are.same({ family = "unix", addr = path }, server:sockets()[1])
        local r, w = lasio.open_unix_connection(path)
        w:write("unix!\n")
        assert.are.equal("unix!\n", r:readline())
        assert.are.equal("", r:read())
        assert.are.equal("unix", w:get_extra_info("peername").family)
        w:close()
        server:close()
        server:wait_closed()
        assert.is_nil(io.open(path))
        net.rmdir(dir)
    end))

    it("replaces a stale socket file", async(function()
        local dir = net.tmpdir()
        local path = dir .. "/s.sock"
        local s1 = lasio.start_unix_server(function() end, path)
        s1:close() -- removes it; make a stale one by hand below
        local s2 = lasio.start_unix_server(function() end, path)
        -- a second server on the same path takes the file over
        local s3 = lasio.start_unix_server(function(_, w) w:write("3") end, path)
        local r, w = lasio.open_unix_connection(path)
        assert.are.equal("3", r:read(1))
        w:close()
        s2:close()
        s3:close()
        net.rmdir(dir)
    end))

    it("port 0 picks a free port; sockets() lists the bound addresses", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local s = server:sockets()
        assert.are.equal(1, #s)
        assert.are.equal("inet", s[1].family)
        assert.are.equal("127.0.0.1", s[1].addr)
        assert.is_true(s[1].port > 0)
        assert.matches("lasio.Server<127.0.0.1:%d+ serving>", tostring(server))
        server:close()
        assert.matches("closed", tostring(server))
        assert.are.same({}, server:sockets())
    end))

    it("binds every host of a table, and all interfaces for nil", async(function()
        local server = lasio.start_server(function() end, { "127.0.0.1", "127.0.0.2" }, 0)
        local s = server:sockets()
        assert.are.equal(2, #s)
        assert.are.equal("127.0.0.2", s[2].addr)
        server:close()
        server = lasio.start_server(function() end, nil, 0)
        assert.is_true(#server:sockets() >= 1)
        assert.are.equal("0.0.0.0", server:sockets()[1].addr)
        server:close()
    end))

    it("reuse_port lets two servers share a port", async(function()
        local a = lasio.start_server(function(_, w) w:write("a") end, "127.0.0.1", 0,
            { reuse_port = true })
        local port = a:sockets()[1].port
        local b = lasio.start_server(function(_, w) w:write("b") end, "127.0.0.1", port,
            { reuse_port = true })
        local r, w = lasio.open_connection("127.0.0.1", port)
        local got = r:read(1)
        assert.is_truthy(got == "a" or got == "b")
        w:close()
        a:close()
        b:close()
    end))

    it("refuses a port that is taken, naming the address", async(function()
        local a = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = a:sockets()[1].port
        local ok, e = pcall(lasio.start_server, function() end, "127.0.0.1", port)
        assert.is_false(ok)
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("EADDRINUSE", e.code)
        assert.are.equal("bind", e.op)
        assert.matches("127.0.0.1:" .. port, e.message, 1, true)
        a:close()
    end))

    it("connection refused is an OSError with code, errno and op", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        server:close()
        local ok, e = pcall(lasio.open_connection, "127.0.0.1", port)
        assert.is_false(ok)
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("ECONNREFUSED", e.code)
        assert.are.equal(111, e.errno)
        assert.are.equal("connect", e.op)
        assert.are.equal("OSError: connect: Connection refused (while connecting to "
            .. "127.0.0.1:" .. port .. ")", tostring(e))
    end))

    it("localhost tries its addresses in turn", async(function()
        local server = lasio.start_server(function(_, w) w:write("ok") end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        -- ::1 (if any) refuses, 127.0.0.1 answers, whatever the order
        local r, w = lasio.open_connection("localhost", port)
        assert.are.equal("ok", r:readexactly(2))
        w:close()
        server:close()
    end))

    it("connects from local_addr", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        local _, w = lasio.open_connection("127.0.0.1", port,
            { local_addr = { "127.0.0.2", 0 } })
        assert.are.equal("127.0.0.2", w:get_extra_info("sockname").addr)
        assert.are.equal(port, w:get_extra_info("peername").port)
        assert.are.equal("dflt", w:get_extra_info("nonsense", "dflt"))
        assert.is_number(w:get_extra_info("fd"))
        w:close()
        server:close()
    end))

    it("a connect to a blackholed port times out and releases its socket", async(function()
        local fds0 = net.fds()
        local hold = lasio.Future()
        -- a server that stops accepting after one connection: the
        -- kernel's accept queue fills up, then SYNs are dropped
        local busy = lasio.start_server(function() hold:await() end, "127.0.0.1", 0,
            { backlog = 0, max_connections = 1 })
        local port = busy:sockets()[1].port
        local loop = lasio.get_running_loop()
        local writers, err, dt = {}, nil, nil
        for _ = 1, 8 do
            local t0 = loop:time()
            local ok, r, w = pcall(lasio.open_connection, "127.0.0.1", port,
                { timeout = 0.2 })
            if not ok then
                err, dt = r, loop:time() - t0
                break
            end
            writers[#writers + 1] = w
        end
        assert.is_true(lasio.TimeoutError:is(err), tostring(err))
        assert.are.equal("connect: timed out", err.message)
        assert.is_true(dt >= 0.2 and dt < helper.t(5))
        hold:set_result()
        for _, w in ipairs(writers) do w:close() end
        busy:close()
        busy:wait_closed()
        assert.is_true(net.fds_back_to(fds0))
    end))
end)

describe("StreamReader", function()
    it("read(0) returns '' and leaves the buffer", async(function()
        local p = net.pair()
        p.sw:write(DATA)
        buffered(p.cr, #DATA)
        assert.are.equal("", p.cr:read(0))
        assert.are.equal(#DATA, p.cr:buffered())
        p.done()
    end))

    it("read(n) waits for data and returns what is there", async(function()
        local p = net.pair()
        local t = lasio.spawn(function() return p.cr:read(30) end)
        lasio.sleep(0.01)
        assert.is_false(t:done())
        p.sw:write(DATA)
        local first = t:await()
        assert.is_true(#first > 0)
        -- what was there when it woke: all of it here, a part under the
        -- one-byte shim
        assert.are.equal(DATA, first .. p.cr:readexactly(#DATA - #first))
        assert.are.equal(0, p.cr:buffered())
        p.done()
    end))

    it("read(n) returns at most n bytes", async(function()
        local p = net.pair()
        p.sw:write("line1line2")
        buffered(p.cr, 10)
        assert.are.equal("line1", p.cr:read(5))
        assert.are.equal("line2", p.cr:read(100))
        p.done()
    end))

    it("read(n) at EOF returns ''", async(function()
        local p = net.pair()
        local t = lasio.spawn(function() return p.cr:read(1024) end)
        lasio.sleep(0)
        p.sw:write_eof()
        assert.are.equal("", t:await())
        assert.is_true(p.cr:at_eof())
        assert.are.equal("", p.cr:read(10))
        p.done()
    end))

    it("read() and read(-1) read until EOF, beyond the limit", async(function()
        local p = net.pair({ limit = 3 })
        local t = lasio.spawn(function() return p.cr:read() end)
        p.sw:write("chunk1\n")
        lasio.sleep(0.01)
        p.sw:write("chunk2")
        p.sw:write_eof()
        assert.are.equal("chunk1\nchunk2", t:await())
        assert.are.equal("", p.cr:read(-1))
        p.done()
    end))

    it("read(n) ignores the limit", async(function()
        local p = net.pair({ limit = 3 })
        p.sw:write("chunk")
        buffered(p.cr, 5)
        assert.are.equal("chunk", p.cr:read(5))
        p.done()
    end))

    it("readline waits for a whole line and keeps its \\n", async(function()
        local p = net.pair()
        p.sw:write("chunk1 ")
        local t = lasio.spawn(function() return p.cr:readline() end)
        lasio.sleep(0.01)
        p.sw:write("chunk2 ")
        p.sw:write("chunk3 ")
        p.sw:write("\n chunk4")
        assert.are.equal("chunk1 chunk2 chunk3 \n", t:await())
        buffered(p.cr, 7)
        assert.are.equal(" chunk4", p.cr:read(100))
        p.done()
    end))

    it("readline with everything buffered, then read counts bytes", async(function()
        local p = net.pair()
        p.sw:write(DATA)
        buffered(p.cr, #DATA)
        assert.are.equal("line1\n", p.cr:readline())
        assert.are.equal("line2\nl", p.cr:read(7))
        assert.are.equal("ine3\n", p.cr:read(100))
        p.done()
    end))

    it("readline at EOF returns the partial line, then ''", async(function()
        local p = net.pair()
        p.sw:write("some data")
        p.sw:write_eof()
        assert.are.equal("some data", p.cr:readline())
        assert.are.equal("", p.cr:readline())
        assert.is_true(p.cr:at_eof())
        p.done()
    end))

    it("at_eof is true only once EOF came and the buffer is empty", async(function()
        local p = net.pair()
        assert.is_false(p.cr:at_eof())
        p.sw:write("some data\n")
        buffered(p.cr, 10)
        assert.is_false(p.cr:at_eof())
        p.cr:readline()
        assert.is_false(p.cr:at_eof())
        p.sw:write("some data\n")
        p.sw:write_eof()
        p.cr:readline()
        assert.is_true(helper.wait_until(function() return p.cr:at_eof() end))
        p.done()
    end))

    -- covers S1
    it("readline over the limit raises LimitOverrunError and drops the line", async(function()
        local p = net.pair({ limit = 3 })
        p.sw:write("line1\nline2\n")
        buffered(p.cr, 12)
        local ok, e = pcall(p.cr.readline, p.cr)
        assert.is_false(ok)
        assert.is_true(lasio.LimitOverrunError:is(e))
        assert.are.equal("Separator is found, but chunk is longer than limit", e.message)
        assert.are.equal(5, e.consumed)
        -- the rest stays (asyncio: buffer == b'line2\n')
        assert.are.equal(6, p.cr:buffered())
        assert.are.equal("line2\n", p.cr:read(100))

        p.sw:write("line1li")
        buffered(p.cr, 7)
        ok, e = pcall(p.cr.readline, p.cr)
        assert.is_false(ok)
        assert.are.equal("Separator is not found, and chunk exceed the limit", e.message)
        assert.are.equal(0, p.cr:buffered()) -- cleared, as asyncio's readline
        p.done()
    end))

    it("readline's limit is strict", async(function()
        local p = net.pair({ limit = 7 })
        assert.are.equal(7, p.cr:get_limit())
        p.sw:write("1234567\n")
        assert.are.equal("1234567\n", p.cr:readline())
        p.sw:write("12345678\n")
        buffered(p.cr, 9)
        assert.has_error(function() p.cr:readline() end)
        assert.are.equal(0, p.cr:buffered())
        p.sw:write("12345678")
        buffered(p.cr, 8)
        assert.has_error(function() p.cr:readline() end)
        assert.are.equal(0, p.cr:buffered())
        p.done()
    end))

    it("readline over the limit while waiting", async(function()
        local p = net.pair({ limit = 7 })
        local t = lasio.spawn(function() return p.cr:readline() end)
        lasio.sleep(0)
        p.sw:write("chunk1chunk2chunk3\n")
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(lasio.LimitOverrunError:is(e))
        p.done()
    end))

    it("readuntil with a multi-byte separator across chunks", async(function()
        local p = net.pair()
        p.sw:write("lineAAA")
        assert.are.equal("lineAAA", p.cr:readuntil("AAA"))
        p.sw:write("lineAAAxxx")
        assert.are.equal("lineAAA", p.cr:readuntil("AAA"))
        buffered(p.cr, 3)
        assert.are.equal("xxx", p.cr:read(3))
        local t = lasio.spawn(function() return p.cr:readuntil("aaa") end)
        for _, c in ipairs({ "QWEaa", "XYa", "aa" }) do
            lasio.sleep(0.005)
            p.sw:write(c)
        end
        assert.are.equal("QWEaaXYaaa", t:await())
        t = lasio.spawn(function() return p.cr:readuntil("aaa") end)
        for _, c in ipairs({ "XXX", "a", "a", "a" }) do
            lasio.sleep(0.005)
            p.sw:write(c)
        end
        assert.are.equal("XXXaaa", t:await())
        p.done()
    end))

    it("readuntil defaults to \\n and refuses an empty separator", async(function()
        local p = net.pair()
        p.sw:write("a\nb")
        assert.are.equal("a\n", p.cr:readuntil())
        local ok, e = pcall(p.cr.readuntil, p.cr, "")
        assert.is_false(ok)
        assert.matches("separator should be at least one%-byte string", e)
        assert.has_error(function() p.cr:readuntil(5) end)
        p.done()
    end))

    -- covers S1
    it("readuntil at EOF raises IncompleteReadError with the partial data", async(function()
        local p = net.pair()
        p.sw:write("some dataAA")
        p.sw:write_eof()
        local ok, e = pcall(p.cr.readuntil, p.cr, "AAA")
        assert.is_false(ok)
        assert.is_true(lasio.IncompleteReadError:is(e))
        assert.are.equal("some dataAA", e.partial)
        assert.is_nil(e.expected)
        assert.matches("undefined expected bytes", e.message)
        assert.are.equal(0, p.cr:buffered())
        p.done()
    end))

    -- covers S1
    it("readuntil over the limit keeps the buffer (asyncio's states)", async(function()
        local p = net.pair({ limit = 3 })
        p.sw:write("some dataAA")
        buffered(p.cr, 11)
        local ok, e = pcall(p.cr.readuntil, p.cr, "AAA")
        assert.is_false(ok)
        assert.is_true(lasio.LimitOverrunError:is(e))
        assert.matches("not found", e.message)
        assert.are.equal(9, e.consumed)
        assert.are.equal(11, p.cr:buffered())
        assert.are.equal("some dataAA", p.cr:read(100))
        p.sw:write("some dataAAA")
        buffered(p.cr, 12)
        ok, e = pcall(p.cr.readuntil, p.cr, "AAA")
        assert.is_false(ok)
        assert.matches("is found", e.message)
        assert.are.equal(9, e.consumed)
        assert.are.equal(12, p.cr:buffered())
        p.done()
    end))

    it("readexactly(0) returns '', negative sizes raise", async(function()
        local p = net.pair()
        p.sw:write(DATA)
        buffered(p.cr, #DATA)
        assert.are.equal("", p.cr:readexactly(0))
        local ok, e = pcall(p.cr.readexactly, p.cr, -1)
        assert.is_false(ok)
        assert.matches("less than zero", e)
        assert.are.equal(#DATA, p.cr:buffered())
        p.done()
    end))

    it("readexactly waits for n bytes, beyond the limit", async(function()
        local p = net.pair({ limit = 3 })
        local t = lasio.spawn(function() return p.cr:readexactly(2 * #DATA) end)
        for _ = 1, 3 do
            lasio.sleep(0.005)
            p.sw:write(DATA)
        end
        assert.are.equal(DATA .. DATA, t:await())
        buffered(p.cr, #DATA)
        assert.are.equal(DATA, p.cr:read(100))
        p.done()
    end))

    -- covers S1
    it("readexactly at EOF raises IncompleteReadError", async(function()
        local p = net.pair()
        local t = lasio.spawn(function() return p.cr:readexactly(2 * #DATA) end)
        lasio.sleep(0)
        p.sw:write(DATA)
        p.sw:write_eof()
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(lasio.IncompleteReadError:is(e))
        assert.are.equal(DATA, e.partial)
        assert.are.equal(36, e.expected)
        assert.are.equal("IncompleteReadError: 18 bytes read on a total of 36 expected bytes",
            tostring(e))
        assert.are.equal(0, p.cr:buffered())
        p.done()
    end))

    it("lines() iterates lines without their \\n until EOF", async(function()
        local p = net.pair()
        p.sw:write("a\nbb\r\n\nlast")
        p.sw:write_eof()
        local got = {}
        for line in p.cr:lines() do got[#got + 1] = line end
        assert.are.same({ "a", "bb\r", "", "last" }, got)
        p.done()
    end))

    it("a reset peer makes reads raise after the buffered data", async(function()
        -- limit 1: the server side stops reading at once, so data stays
        -- unread in its kernel buffer and its close sends an RST
        local p = net.pair({ limit = 1 })
        p.sw:write("tail")
        buffered(p.cr, 4)
        p.cw:write(string.rep("x", 100000))
        -- once the server side paused, more bytes wait in its kernel
        assert.is_true(helper.wait_until(function() return p.sr:buffered() >= 16384 end))
        lasio.sleep(0.01)
        p.sw:close()
        assert.are.equal("tail", p.cr:readexactly(4))
        local ok, e = pcall(p.cr.read, p.cr, 10)
        assert.is_false(ok)
        assert.are.equal("ECONNRESET", e.code)
        assert.are.equal("read", e.op)
        assert.are.equal("read: Connection reset by peer", e.message)
        p.done()
    end))

    it("tostring names the state and the buffered bytes", async(function()
        local p = net.pair()
        p.sw:write("abc")
        buffered(p.cr, 3)
        assert.matches("^lasio.StreamReader<fd=%d+ open buffered=3>$", tostring(p.cr))
        assert.matches("^lasio.StreamWriter<fd=%d+ open buffered=0>$", tostring(p.cw))
        p.cw:close()
        assert.matches("closed", tostring(p.cw))
        p.done()
    end))
end)

describe("StreamWriter", function()
    it("write sends at once; drain returns without waiting below the mark", async(function()
        local p = net.pair()
        p.cw:write("abc")
        p.cw:drain()
        assert.are.equal("abc", p.sr:readexactly(3))
        p.cw:writelines({ "a", "b", "c" })
        assert.are.equal("abc", p.sr:readexactly(3))
        p.done()
    end))

    it("writelines checks every item before writing any", async(function()
        local p = net.pair()
        local ok, e = pcall(p.cw.writelines, p.cw, { "a", 2 })
        assert.is_false(ok)
        assert.matches("item 2 is a number", e)
        p.cw:write("z")
        assert.are.equal("z", p.sr:read(10))
        assert.has_error(function() p.cw:write(42) end)
        assert.has_error(function() p.cw:write() end)
        p.done()
    end))

    -- covers S3
    it("drain suspends above the high-water mark until below the low one", async(function()
        local p = net.pair({ limit = 1 })
        p.cw:set_write_buffer_limits(1000, 100)
        local chunk = string.rep("x", 65536)
        -- fill the kernel buffers until writes get buffered
        while p.cw:get_write_buffer_size() == 0 do
            p.cw:write(chunk)
            lasio.sleep(0)
        end
        while p.cw:get_write_buffer_size() <= 1000 do p.cw:write(chunk) end
        local drained = false
        local t = lasio.spawn(function() p.cw:drain() drained = true end)
        lasio.sleep(0.02)
        assert.is_false(drained)
        -- the peer reads: the buffer comes down, drain returns
        local total = 0
        while not drained do
            total = total + #p.sr:read(1 << 20)
        end
        t:await()
        assert.is_true(p.cw:get_write_buffer_size() <= 100)
        assert.is_true(total > 0)
        p.done()
    end))

    -- covers S3
    it("50 tasks awaiting drain on the same stream all resume", async(function()
        local p = net.pair({ limit = 1 })
        local chunk = string.rep("y", 65536)
        while p.cw:get_write_buffer_size() <= 65536 do
            p.cw:write(chunk)
            lasio.sleep(0)
        end
        local resumed = 0
        local tasks = {}
        for i = 1, 50 do
            tasks[i] = lasio.spawn(function() p.cw:drain() resumed = resumed + 1 end)
        end
        lasio.sleep(0.01)
        assert.are.equal(0, resumed)
        local reader = lasio.spawn(function()
            while resumed < 50 do p.sr:read(1 << 20) end
        end)
        for i = 1, 50 do tasks[i]:await() end
        assert.are.equal(50, resumed)
        reader:await()
        p.done()
    end))

    -- covers S7
    it("write_eof half-closes: the peer reads EOF and can still write", async(function()
        local p = net.pair()
        assert.is_true(p.cw:can_write_eof())
        p.cw:write("bye")
        p.cw:write_eof()
        p.cw:write_eof() -- twice is fine
        assert.are.equal("bye", p.sr:read())
        assert.is_true(p.sr:at_eof())
        p.sw:write("still here")
        p.sw:write_eof()
        assert.are.equal("still here", p.cr:read())
        local ok, e = pcall(p.cw.write, p.cw, "more")
        assert.is_false(ok)
        assert.matches("cannot write after write_eof", e)
        p.done()
    end))

    it("close flushes what is buffered, then wait_closed returns", async(function()
        local p = net.pair({ limit = 1 })
        local chunk = string.rep("z", 65536)
        while p.cw:get_write_buffer_size() == 0 do
            p.cw:write(chunk)
            lasio.sleep(0)
        end
        local sent = 0
        local reader = lasio.spawn(function()
            local n = 0
            while true do
                local d = p.sr:read(1 << 20)
                if d == "" then return n end
                n = n + #d
            end
        end)
        p.cw:close()
        assert.is_true(p.cw:is_closing())
        p.cw:wait_closed()
        assert.is_true(reader:await() > 0)
        sent = sent + 1
        assert.are.equal(1, sent)
        p.done()
    end))

    it("write and drain after close raise OSError, as asyncio's drain", async(function()
        local p = net.pair()
        p.cw:close()
        local ok, e = pcall(p.cw.write, p.cw, "data")
        assert.is_false(ok)
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("write: the stream is closed", e.message)
        ok, e = pcall(p.cw.drain, p.cw)
        assert.is_false(ok)
        assert.are.equal("EBADF", e.code)
        p.cw:close() -- idempotent
        p.cw:wait_closed()
        p.done()
    end))

    -- covers S5
    it("a peer reset mid-write makes drain raise EPIPE or ECONNRESET", async(function()
        local p = net.pair({ limit = 1 })
        local chunk = string.rep("r", 65536)
        local ok, e = pcall(function()
            for _ = 1, 1000 do
                p.cw:write(chunk)
                p.cw:drain()
                -- the peer resets once we started writing
                if not p.sw:is_closing() then p.sw:close() end
            end
        end)
        assert.is_false(ok)
        assert.is_true(lasio.OSError:is(e), tostring(e))
        assert.is_truthy(e.code == "EPIPE" or e.code == "ECONNRESET", e.code)
        p.done()
    end))

    -- covers S5
    it("the peer closing its read side ends our writes with an error", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        local r, w = lasio.open_connection("127.0.0.1", port)
        -- the server's callback returned: its side is closed
        assert.are.equal("", r:read())
        local ok, e = pcall(function()
            for _ = 1, 1000 do
                w:write("foo\n")
                w:drain()
                lasio.sleep(0.001)
            end
        end)
        assert.is_false(ok)
        assert.is_truthy(e.code == "EPIPE" or e.code == "ECONNRESET", tostring(e))
        w:close()
        server:close()
    end))

    it("set_write_buffer_limits checks its arguments", async(function()
        local p = net.pair()
        assert.has_error(function() p.cw:set_write_buffer_limits(10, 20) end)
        assert.has_error(function() p.cw:set_write_buffer_limits(-1) end)
        p.cw:set_write_buffer_limits(400)
        p.done()
    end))
end)

describe("Server", function()
    it("runs each connection in its own task and closes it when the callback returns",
        async(function()
            local seen = {}
            local server = lasio.start_server(function(r, w)
                seen[#seen + 1] = lasio.current_task()
                w:write(r:readline())
            end, "127.0.0.1", 0)
            local port = server:sockets()[1].port
            local conns = {}
            for i = 1, 3 do
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(i .. "\n")
                conns[i] = { r, w }
            end
            for i = 1, 3 do
                assert.are.equal(i .. "\n", conns[i][1]:readline())
                -- the callback returned: the server closed its side
                assert.are.equal("", conns[i][1]:read())
                conns[i][2]:close()
            end
            assert.are.equal(3, #seen)
            assert.are_not.equal(seen[1], seen[2])
            server:close()
            server:wait_closed()
        end))

    it("reports an error of the client callback and closes the connection", async(function()
        local seen = helper.capture_exceptions(function()
            local server = lasio.start_server(function()
                error("handler broke")
            end, "127.0.0.1", 0)
            local port = server:sockets()[1].port
            local r, w = lasio.open_connection("127.0.0.1", port)
            assert.are.equal("", r:read())
            w:close()
            server:close()
            server:wait_closed()
        end)
        assert.are.equal(1, #seen)
        assert.are.equal("Unhandled error in client_connected_cb", seen[1].message)
        assert.matches("handler broke", seen[1].exception)
        assert.is_string(seen[1].traceback)
        assert.is_truthy(seen[1].task)
    end))

    it("wait_closed waits for the connections to finish", async(function()
        local release = lasio.Future()
        local server = lasio.start_server(function() release:await() end, "127.0.0.1", 0)
        local port = server:sockets()[1].port
        local _, w = lasio.open_connection("127.0.0.1", port)
        lasio.sleep(0.01)
        server:close()
        local waiter = lasio.spawn(function() server:wait_closed() end)
        lasio.sleep(0.01)
        assert.is_false(waiter:done())
        release:set_result()
        waiter:await()
        w:close()
    end))

    it("close_clients and abort_clients close the live connections", async(function()
        local server = lasio.start_server(function(r) pcall(r.read, r) end,
            "127.0.0.1", 0)
        local port = server:sockets()[1].port
        local r1, w1 = lasio.open_connection("127.0.0.1", port)
        local r2, w2 = lasio.open_connection("127.0.0.1", port)
        lasio.sleep(0.01)
        server:close_clients()
        assert.are.equal("", r1:read())
        assert.are.equal("", r2:read())
        -- still serving: a new connection is accepted, then aborted
        local r3, w3 = lasio.open_connection("127.0.0.1", port)
        lasio.sleep(0.01)
        server:abort_clients()
        assert.are.equal("", r3:read())
        server:close()
        for _, w in ipairs({ w1, w2, w3 }) do w:close() end
    end))

    it("serve_forever returns once closed; cancelling it closes the server", async(function()
        local server = lasio.start_server(function() end, "127.0.0.1", 0)
        local t = lasio.spawn(function() server:serve_forever() return "back" end)
        lasio.sleep(0.01)
        assert.is_false(t:done())
        server:close()
        assert.are.equal("back", t:await())
        assert.has_error(function() server:serve_forever() end)

        server = lasio.start_server(function() end, "127.0.0.1", 0)
        t = lasio.spawn(function() server:serve_forever() end)
        lasio.sleep(0.01)
        t:cancel()
        assert.has_error(function() t:await() end)
        assert.is_true(t:cancelled())
        assert.is_false(server:is_serving())
    end))

    it("a server is a to-be-closed value", async(function()
        local port
        do
            local server <close> = lasio.start_server(function() end, "127.0.0.1", 0)
            port = server:sockets()[1].port
            assert.is_true(server:is_serving())
        end
        local ok, e = pcall(lasio.open_connection, "127.0.0.1", port)
        assert.is_false(ok)
        assert.are.equal("ECONNREFUSED", e.code)
    end))

    -- covers L5's stream part
    it("max_connections pauses accepting until a connection ends", async(function()
        local release = lasio.Future()
        local active, peak = 0, 0
        local server = lasio.start_server(function(_, w)
            active = active + 1
            peak = math.max(peak, active)
            w:write("hi")
            if active == 1 then release:await() end
            active = active - 1
        end, "127.0.0.1", 0, { max_connections = 1 })
        local port = server:sockets()[1].port
        local r1, w1 = lasio.open_connection("127.0.0.1", port)
        assert.are.equal("hi", r1:readexactly(2))
        -- the second connection completes (backlog) but is not served yet
        local r2, w2 = lasio.open_connection("127.0.0.1", port)
        r2:settimeout(0.05)
        local ok, e = pcall(r2.read, r2, 2)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        release:set_result()
        r2:settimeout(nil)
        assert.are.equal("hi", r2:readexactly(2))
        assert.are.equal(1, peak)
        w1:close(); w2:close()
        server:close()
        server:wait_closed()
    end))

    it("serves a connection made while a callback has not run yet", async(function()
        local server, port = net.echo_server()
        local tasks = {}
        for i = 1, 20 do
            tasks[i] = lasio.spawn(function()
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(("x"):rep(i))
                w:write_eof()
                local got = r:read()
                w:close()
                return #got
            end)
        end
        for i = 1, 20 do assert.are.equal(i, tasks[i]:await()) end
        server:close()
        server:wait_closed()
    end))
end)

describe("stream reliability", function()
    -- covers S7
    it("a second task reading the same stream gets an immediate error", async(function()
        local p = net.pair()
        local first = lasio.spawn(function() return p.cr:readline() end)
        lasio.sleep(0)
        for _, call in ipairs({
            function() return p.cr:read(10) end,
            function() return p.cr:readline() end,
            function() return p.cr:readexactly(2) end,
            function() return p.cr:readuntil("x") end,
            function() return p.cr:read() end,
        }) do
            local ok, e = pcall(call)
            assert.is_false(ok)
            assert.matches("already reading this stream %(read already in progress%)", e)
        end
        p.sw:write("one\n")
        assert.are.equal("one\n", first:await())
        p.done()
    end))

    -- covers S6
    it("close while one task reads and another drains wakes both with 'closed'",
        async(function()
            local p = net.pair({ limit = 1 })
            local chunk = string.rep("w", 65536)
            while p.cw:get_write_buffer_size() <= 65536 do
                p.cw:write(chunk)
                lasio.sleep(0)
            end
            local fds0 = net.fds()
            local reader = lasio.spawn(function() return p.cr:read(10) end)
            local drainer = lasio.spawn(function() return p.cw:drain() end)
            lasio.sleep(0.01)
            assert.is_false(reader:done())
            assert.is_false(drainer:done())
            p.cw:close()
            local ok, e = pcall(reader.await, reader)
            assert.is_false(ok)
            assert.are.equal("read: the stream is closed", e.message)
            assert.are.equal("EBADF", e.code)
            ok, e = pcall(drainer.await, drainer)
            assert.is_false(ok)
            assert.are.equal("drain: the stream is closed", e.message)
            assert.is_true(p.cr:at_eof())
            -- closing with unsent output flushes it in the background;
            -- aborting through a cancelled wait_closed releases at once
            local waiter = lasio.spawn(function() p.cw:wait_closed() end)
            lasio.sleep(0)
            waiter:cancel()
            assert.has_error(function() waiter:await() end)
            -- (connections of earlier specs may close meanwhile: at most)
            assert.is_true(net.fds() <= fds0 - 1)
            p.done()
        end))

    -- covers S6: the loop can still end
    it("a script whose streams were closed under waiting tasks exits", function()
        local code = [[
local lasio = require "lasio"
package.path = "spec/?.lua;" .. package.path
local net = require "net_helper"
local p = net.pair()
local t = lasio.spawn(function() return pcall(p.cr.read, p.cr, 10) end)
lasio.sleep(0)
p.cw:close()
print(t:await())
p.done()
]]
        for _, interp in ipairs(helper.interps) do
            local src = interp == "lua5.4" and ("require('lasio').run(function() " .. code .. " end)")
                or code
            local out, err, status = helper.run_child(src, { interp = interp })
            assert.are.equal(0, status, err)
            assert.matches("^false\tOSError: read: the stream is closed\n$", out)
        end
    end)

    -- covers S4
    it("a handler that never reads pauses the read side at the high-water mark",
        async(function()
            local limit = 1024
            local p = net.pair({ limit = limit })
            local chunk = string.rep("p", 16384)
            -- the sender fills everything: our input buffer stops at the
            -- mark and the rest stays in the kernel, then in its buffer
            local sent = 0
            while (p.cw:get_write_buffer_size() == 0 or sent < 8) and sent < 4096 do
                p.cw:write(chunk)
                sent = sent + 1
                lasio.sleep(0)
            end
            -- the mark: 2 * limit, but at least 16 KiB (one first read)
            local mark = math.max(2 * limit, 16384)
            assert.is_true(sent * 16384 > mark)
            assert.is_true(helper.wait_until(function()
                return p.sr:buffered() >= mark
            end))
            lasio.sleep(0.02)
            local held = p.sr:buffered()
            assert.is_true(held <= mark + 262144, tostring(held))
            assert.is_true(p.cw:get_write_buffer_size() > 0)
            lasio.sleep(0.02)
            assert.are.equal(held, p.sr:buffered()) -- nothing more is read
            -- reading resumes below the low mark and everything arrives
            local total = 0
            while total < sent * 16384 do
                total = total + #p.sr:read(65536)
            end
            assert.are.equal(sent * 16384, total)
            assert.are.equal(0, p.cw:get_write_buffer_size())
            p.done()
        end))

    -- covers S3
    it("a reader that stalls 2 s while lots are offered keeps RSS bounded", function()
        local size = net.scale(1 << 30, 1 << 16)
        local stall = net.shim and 0.2 or 2
        local code = ([[
local lasio = require "lasio"
local SIZE, STALL = %d, %f
local function kb(field)
    local f = io.open("/proc/self/status")
    local s = f:read("a")
    f:close()
    return tonumber(s:match(field .. ":%%s*(%%d+)"))
end
lasio.run(function()
    local got = lasio.Future()
    local server = lasio.start_server(function(r, w)
        lasio.sleep(STALL) -- reads nothing for a while
        local n = 0
        while true do
            local d = r:read(1 << 20)
            if d == "" then break end
            n = n + #d
        end
        got:set_result(n)
    end, "127.0.0.1", 0)
    local port = server:sockets()[1].port
    local r, w = lasio.open_connection("127.0.0.1", port)
    local chunk = string.rep("s", 65536)
    collectgarbage()
    local rss0 = kb("VmRSS")
    local peak = 0
    local sent = 0
    while sent < SIZE do
        w:write(chunk)
        w:drain()
        sent = sent + #chunk
        local b = w:get_write_buffer_size()
        if b > peak then peak = b end
    end
    w:write_eof()
    local n = got:await()
    w:close()
    server:close()
    print(n == sent, peak <= 65536 + 65536, kb("VmHWM") - rss0)
end)
]]):format(size, stall)
        -- ASan's quarantine would hold freed memory: keep it small
        local out, err, status = helper.run_child(code, { interp = "lua5.4",
            timeout = helper.t(120),
            env = net.sanitized and "ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=1" or nil })
        assert.are.equal(0, status, err)
        local ok, bounded, growth = out:match("^(%a+)\t(%a+)\t(%-?%d+)")
        assert.are.equal("true", ok, out .. err)
        assert.are.equal("true", bounded, out)
        -- RSS grows by the water marks plus a constant, not by the size
        assert.is_true(tonumber(growth) < 32 * 1024, out)
    end)

    -- covers T6
    it("a read that timed out leaves the stream usable by another task", async(function()
        local p = net.pair()
        p.cr:settimeout(0.02)
        assert.are.equal(0.02, p.cr:gettimeout())
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local ok, e = pcall(p.cr.readline, p.cr)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.are.equal("readline: timed out", e.message)
        assert.is_true(loop:time() - t0 >= 0.02)
        p.sw:write("par")
        buffered(p.cr, 3)
        ok, e = pcall(p.cr.readline, p.cr)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.are.equal(3, p.cr:buffered()) -- nothing lost
        p.cr:settimeout(nil)
        local other = lasio.spawn(function() return p.cr:readline() end)
        lasio.sleep(0.01)
        p.sw:write("tial\n")
        assert.are.equal("partial\n", other:await())
        -- and the drain timeout
        p.cw:settimeout(0.02)
        local chunk = string.rep("t", 65536)
        ok, e = pcall(function()
            for _ = 1, 1000 do p.cw:write(chunk) p.cw:drain() end
        end)
        assert.is_false(ok)
        assert.are.equal("drain: timed out", e.message)
        p.done()
    end))

    it("settimeout checks its argument", async(function()
        local p = net.pair()
        assert.has_error(function() p.cr:settimeout(-1) end)
        assert.has_error(function() p.cr:settimeout(0 / 0) end)
        assert.has_error(function() p.cw:settimeout("x") end)
        assert.is_nil(p.cr:gettimeout())
        p.cw:settimeout(1) -- one timeout per stream, set from either side
        assert.are.equal(1, p.cw:gettimeout())
        assert.are.equal(1, p.cr:gettimeout())
        p.done()
    end))

    it("cancelling a task at each await point releases what it held", async(function()
        local p = net.pair()
        local ops = {
            function() return p.cr:read(10) end,
            function() return p.cr:read() end,
            function() return p.cr:readline() end,
            function() return p.cr:readexactly(5) end,
            function() return p.cr:readuntil("!") end,
            function() for _ in p.cr:lines() do end end,
        }
        for _, op in ipairs(ops) do
            local t = lasio.spawn(op)
            lasio.sleep(0)
            t:cancel("stop")
            local ok, e = pcall(t.await, t)
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(e))
            assert.is_true(t:cancelled())
        end
        -- the stream is still usable: no stale reader left behind
        p.sw:write("fine\n")
        assert.are.equal("fine\n", p.cr:readline())
        -- drain
        local chunk = string.rep("c", 65536)
        while p.cw:get_write_buffer_size() <= 65536 do
            p.cw:write(chunk)
            lasio.sleep(0)
        end
        local t = lasio.spawn(function() p.cw:drain() end)
        lasio.sleep(0)
        t:cancel()
        assert.has_error(function() t:await() end)
        p.done()
    end))

    it("cancelling a connect releases its socket", async(function()
        local fds0 = net.settle()
        local hold = lasio.Future()
        local busy = lasio.start_server(function() hold:await() end, "127.0.0.1", 0,
            { backlog = 0, max_connections = 1 })
        local port = busy:sockets()[1].port
        local writers = {}
        local blocked
        for _ = 1, 8 do
            local t = lasio.spawn(lasio.open_connection, "127.0.0.1", port)
            lasio.sleep(0.05)
            if not t:done() then blocked = t break end
            writers[#writers + 1] = select(2, t:result())
        end
        assert.is_truthy(blocked)
        blocked:cancel()
        assert.has_error(function() blocked:await() end)
        hold:set_result()
        for _, w in ipairs(writers) do w:close() end
        busy:close()
        busy:wait_closed()
        assert.is_true(net.fds_back_to(fds0))
    end))

    -- covers G2
    it("streams that become garbage with events pending are freed safely", async(function()
        local fds0 = net.settle()
        local server, port = net.echo_server()
        -- under the one-byte shim every byte is a turn of the loop: 10 kB
        -- keep the output pending there too, in seconds instead of a minute
        local size = net.shim and 10000 or 100000
        -- (the streams are dropped by setting r and w to nil, which
        -- luacheck takes for unused values, so that the collection right
        -- after frees them)
        for _ = 1, 20 do
            local r, w = lasio.open_connection("127.0.0.1", port) -- luacheck: ignore 231
            w:write(string.rep("g", size)) -- output pending, echo coming
            r, w = nil, nil -- luacheck: ignore 311
            collectgarbage()
        end
        -- explicitly closed, then collected, with data still arriving
        for _ = 1, 20 do
            local r, w = lasio.open_connection("127.0.0.1", port) -- luacheck: ignore 231
            w:write(string.rep("h", size))
            lasio.sleep(0)
            w:close()
            r, w = nil, nil -- luacheck: ignore 311
            collectgarbage()
            lasio.sleep(0)
        end
        lasio.sleep(0.05)
        collectgarbage()
        collectgarbage()
        server:close()
        server:wait_closed()
        assert.is_true(net.fds_back_to(fds0))
    end))

    -- covers G5
    it("connect/use/close cycles return fds, heap and registry to baseline",
        async(function()
            local n = net.scale(10000, 200)
            local active = 0
            local server = lasio.start_server(function(r, w)
                active = active + 1
                w:write(r:readexactly(4))
                r:read() -- until the client closes
                active = active - 1
            end, "127.0.0.1", 0)
            local port = server:sockets()[1].port
            local function cycle()
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write("ping")
                assert(r:readexactly(4) == "ping")
                w:close()
                w:wait_closed()
            end
            for _ = 1, 20 do cycle() end
            assert(helper.wait_until(function() return active == 0 end))
            local fds0 = net.settle()
            collectgarbage()
            collectgarbage()
            local heap0 = collectgarbage("count")
            local reg0 = 0
            for _ in pairs(debug.getregistry()) do reg0 = reg0 + 1 end
            for _ = 1, n do cycle() end
            assert(helper.wait_until(function() return active == 0 end))
            assert.is_true(net.fds_back_to(fds0))
            collectgarbage()
            collectgarbage()
            local reg1 = 0
            for _ in pairs(debug.getregistry()) do reg1 = reg1 + 1 end
            assert.is_true(collectgarbage("count") < heap0 + 256, collectgarbage("count") - heap0)
            assert.is_true(reg1 <= reg0 + 2, reg1 - reg0)
            server:close()
            server:wait_closed()
        end))

    -- covers L1
    it("out of fds, accept pauses without spinning and resumes when fds free", function()
        local code = [[
local lasio = require "lasio"
lasio.run(function()
    local server = lasio.start_server(function(r, w)
        local line = r:readline()
        w:write(line)
        w:drain()
    end, "127.0.0.1", 0)
    local port = server:sockets()[1].port
    -- connect until the fds run out (both ends live in this process)
    local conns = {}
    while true do
        local ok, r, w = pcall(lasio.open_connection, "127.0.0.1", port, { timeout = 1 })
        if not ok then break end
        conns[#conns + 1] = { r, w }
    end
    lasio.sleep(0.3) -- the listener stays readable: it must not spin
    local c0 = os.clock()
    lasio.sleep(0.3)
    local spin = os.clock() - c0
    -- free fds: the waiting connections get served
    for i = 1, 10 do conns[i][2]:close() end
    local answered = 0
    for i = 11, #conns do
        conns[i][2]:write("x\n")
    end
    for i = 11, #conns do
        conns[i][1]:settimeout(5)
        if conns[i][1]:readline() == "x\n" then answered = answered + 1 end
        conns[i][2]:close()
    end
    print(#conns > 10, spin < 0.1, answered == #conns - 10)
    server:close()
end)
]]
        local out, err, status = helper.run_child(code,
            { interp = "lua5.4", env = "prlimit --nofile=64:64", timeout = helper.t(60) })
        assert.are.equal(0, status, err)
        assert.are.equal("true\ttrue\ttrue\n", out, err)
    end)

    -- covers L6 (the stream part: an upstream read)
    it("a client that aborts while its handler awaits an upstream read releases the upstream",
        async(function()
            local upstream = lasio.start_server(function(r) r:read() end,
                "127.0.0.1", 0)
            local uport = upstream:sockets()[1].port
            local fds0
            local outcome = lasio.Future()
            local front = lasio.start_server(function(r)
                local ur, uw = lasio.open_connection("127.0.0.1", uport)
                -- the upstream read runs beside a watch of the client
                local up = lasio.spawn(function() return ur:read(10) end)
                local watch = lasio.spawn(function()
                    pcall(r.read, r, 1) -- EOF or reset: the client left
                    up:cancel("client left")
                end)
                local ok, e = pcall(up.await, up)
                uw:close()
                watch:cancel()
                outcome:set_result(ok, e)
            end, "127.0.0.1", 0)
            local port = front:sockets()[1].port
            fds0 = net.settle()
            local _, w = lasio.open_connection("127.0.0.1", port)
            lasio.sleep(0.02)
            w:close() -- the client aborts
            local ok, e = outcome:await()
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(e))
            assert.is_true(net.fds_back_to(fds0))
            front:close()
            upstream:close()
        end))

    it("a task reading a socket is not reported as a deadlock", function()
        local code = [[
local lasio = require "lasio"
local server = lasio.start_server(function(r, w)
    lasio.sleep(0.05)
    w:write("late\n")
end, "127.0.0.1", 0)
local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
io.write(r:readline())
w:close()
server:close()
]]
        local out, err, status = helper.run_child(code)
        assert.are.equal(0, status, err)
        assert.are.equal("late\n", out)
    end)

    -- covers G4
    it("exits cleanly with servers, streams and waiting tasks left open", function()
        local code = [[
local lasio = require "lasio"
local server = lasio.start_server(function(r, w) r:read() end, "127.0.0.1", 0)
local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
w:write(string.rep("x", 1 << 20))
lasio.spawn(function() r:read(1) end)
local u = lasio.start_unix_server(function() end, os.tmpname() .. ".sock")
lasio.sleep(0.01)
io.write("bye\n")
os.exit(0, true)
]]
        local env = net.sanitized and "env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1" or nil
        local out, err, status = helper.run_child(code, { env = env })
        assert.are.equal(0, status, err)
        assert.are.equal("bye\n", out)
        assert.falsy(err:find("Sanitizer", 1, true), err)
    end)
end)

describe("bad arguments", function()
    it("raise at once with clear messages", async(function()
        local function msg(f, ...)
            local ok, e = pcall(f, ...)
            assert.is_false(ok)
            return tostring(e)
        end
        assert.matches("port must be in 0..65535", msg(lasio.open_connection, "127.0.0.1", 70000))
        assert.matches("port must be an integer", msg(lasio.open_connection, "127.0.0.1", 1.5))
        assert.matches("port must be an integer", msg(lasio.open_connection, "127.0.0.1", {}))
        assert.matches("unknown option 'tiemout'",
            msg(lasio.open_connection, "127.0.0.1", 1, { tiemout = 1 }))
        assert.matches("timeout must be >= 0",
            msg(lasio.open_connection, "127.0.0.1", 1, { timeout = -1 }))
        assert.matches("option 'limit' must be >= 1",
            msg(lasio.open_connection, "127.0.0.1", 1, { limit = 0 }))
        assert.matches("option 'nodelay' must be a boolean",
            msg(lasio.open_connection, "127.0.0.1", 1, { nodelay = 1 }))
        assert.matches("local_addr", msg(lasio.open_connection, "127.0.0.1", 1,
            { local_addr = "127.0.0.1" }))
        assert.matches("string expected", msg(lasio.open_connection, nil, 1))
        assert.matches("function expected", msg(lasio.start_server, "x", "127.0.0.1", 0))
        assert.matches("option 'backlog' must be an integer",
            msg(lasio.start_server, print, "127.0.0.1", 0, { backlog = "x" }))
        assert.matches("socket path too long",
            msg(lasio.open_unix_connection, string.rep("a", 200)))
        assert.matches("empty socket path", msg(lasio.start_unix_server, print, ""))
        assert.matches("NUL byte", msg(lasio.open_unix_connection, "a\0b"))
        local p = net.pair()
        assert.matches("StreamReader expected", msg(p.cr.read, p.cw, 1))
        assert.matches("StreamWriter expected", msg(p.cw.write, p.cr, "x"))
        assert.matches("number expected", msg(p.cr.read, p.cr, "x"))
        p.done()
    end))

    it("awaiting from a plain callback raises 'not inside a task'", async(function()
        local p = net.pair()
        local done = lasio.Future()
        lasio.get_running_loop():call_soon(function()
            done:set_result(pcall(p.cr.read, p.cr, 1))
        end)
        local ok, e = done:await()
        assert.is_false(ok)
        assert.matches("read: not inside a task", e)
        p.done()
    end))
end)
