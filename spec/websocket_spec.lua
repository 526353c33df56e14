-- Specs for lasio.websocket (RFC 6455): the handshake helpers, a client and
-- a server talking over a real loopback connection after a raw HTTP
-- upgrade written here, and one WebSocket end fed hand-built frames by a
-- raw peer for framing, fragmentation, the close handshake and every
-- protocol error (with the exact close code the socket sends).
-- Durations are hang detectors scaled by helper.t.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"
local ws = require "lasio.websocket"

local async = helper.async_guarded

-- {====== Raw frames, built and parsed here independently of the module

local function xor(data, key)
    local out = {}
    for i = 1, #data do
        out[i] = string.char(data:byte(i) ~ key:byte((i - 1) % 4 + 1))
    end
    return table.concat(out)
end

-- A frame: f.op (opcode), f.payload, f.fin (default true), f.rsv (bits
-- 0x70), f.key (4 bytes: masked), f.len64 / f.len16 (force that length
-- form).
local function mkframe(f)
    local payload = f.payload or ""
    local b1 = (f.fin == false and 0 or 0x80) | (f.rsv or 0) | f.op
    local n = #payload
    local mbit = f.key and 0x80 or 0
    local head
    if f.len64 or n > 65535 then
        head = string.pack(">BBI8", b1, mbit | 127, n)
    elseif f.len16 or n > 125 then
        head = string.pack(">BBI2", b1, mbit | 126, n)
    else
        head = string.pack(">BB", b1, mbit | n)
    end
    if f.key then return head .. f.key .. xor(payload, f.key) end
    return head .. payload
end

local KEY = "\x12\x34\x56\x78"
-- frames a client sends (masked)
local function cframe(op, payload, extra)
    local f = { op = op, payload = payload, key = KEY }
    for k, v in pairs(extra or {}) do f[k] = v end
    return mkframe(f)
end

-- Reads one frame: {fin, rsv, op, masked, key, payload (unmasked)}.
local function readframe(r)
    local b1, b2 = r:readexactly(2):byte(1, 2)
    local len = b2 & 0x7f
    if len == 126 then
        len = string.unpack(">I2", r:readexactly(2))
    elseif len == 127 then
        len = string.unpack(">I8", r:readexactly(8))
    end
    local key = (b2 & 0x80 ~= 0) and r:readexactly(4) or nil
    local payload = len > 0 and r:readexactly(len) or ""
    if key then payload = xor(payload, key) end
    return { fin = b1 & 0x80 ~= 0, rsv = b1 & 0x70, op = b1 & 0x0f,
        masked = key ~= nil, key = key, payload = payload }
end

-- The close code and reason of a close frame.
local function close_of(f)
    assert.are.equal(8, f.op)
    if #f.payload == 0 then return nil, "" end
    return string.unpack(">I2", f.payload), f.payload:sub(3)
end

-- Reads until EOF (the other side closed the connection); returns what
-- came.
local function read_to_eof(r)
    return lasio.wait_for(function() return r:read() end, helper.t(5))
end

-- }======

-- A connected pair: a WebSocket server end (opts) and the raw client side
-- (r, w). p.done() ends it.
local function server_end(opts)
    local p = net.pair()
    p.ws = ws.wrap(p.sr, p.sw, opts)
    return p
end

-- A WebSocket client end (masks its frames) and the raw server side.
local function client_end(opts)
    local p = net.pair()
    local o = { client = true }
    for k, v in pairs(opts or {}) do o[k] = v end
    p.ws = ws.wrap(p.cr, p.cw, o)
    return p
end

-- Both ends are WebSockets.
local function ws_pair(sopts, copts)
    local p = net.pair()
    local c = { client = true }
    for k, v in pairs(copts or {}) do c[k] = v end
    return ws.wrap(p.sr, p.sw, sopts), ws.wrap(p.cr, p.cw, c), p
end

-- The raw client gets the server's close frame with `code`, then EOF (the
-- server, failing the connection, shuts its side down first and closes
-- when the client has closed, so that no reset destroys the close frame).
local function expect_close(p, code)
    local f = readframe(p.cr)
    local got = close_of(f)
    assert.are.equal(code, got)
    assert.are.equal("", read_to_eof(p.cr))
    p.cw:close()
    return f
end

-- Ends a pair made by server_end or client_end with a full close
-- handshake: the raw side answers the socket's close frame (with `code`,
-- default 1000) and sees the connection end.
local function close_both(p, code)
    code = code or 1000
    local t = lasio.spawn(function() p.ws:close(code) end)
    local r, w = p.cr, p.cw
    if p.ws._client then r, w = p.sr, p.sw end
    local f
    repeat f = readframe(r) until f.op == 8
    assert.are.equal(code, close_of(f))
    w:write(mkframe({ op = 8, payload = f.payload, key = not p.ws._client and KEY or nil }))
    if p.ws._client then w:close() end
    t:await()
    assert.are.equal(code, p.ws.close_code)
    if not p.ws._client then assert.are.equal("", read_to_eof(r)) end
    p.done()
end

-- recv raises a lasio.Error carrying `code`; returns it.
local function recv_fails(s, code)
    local ok, e = pcall(s.recv, s)
    assert.is_false(ok)
    assert.is_true(lasio.Error:is(e), tostring(e))
    assert.are.equal(code, e.code)
    return e
end

describe("websocket handshake helpers", function()
    it("computes Sec-WebSocket-Accept as RFC 6455 1.3 does", function()
        assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ws.accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
    end)

    it("makes fresh client keys of 16 random bytes in base64", function()
        local seen = {}
        for _ = 1, 50 do
            local k = ws.new_client_key()
            assert.are.equal(24, #k)
            assert.truthy(k:match("^[A-Za-z0-9+/]+[AQgw]==$"), k)
            assert.is_nil(seen[k])
            seen[k] = true
        end
    end)

    local function headers(extra)
        local h = {
            host = "example.com", upgrade = "websocket", connection = "Upgrade",
            ["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ==",
            ["sec-websocket-version"] = "13",
        }
        for k, v in pairs(extra or {}) do
            if v == false then h[k] = nil else h[k] = v end
        end
        return h
    end

    it("accepts a valid upgrade request", function()
        assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ws.check_request("GET", "1.1", headers()))
        -- tokens are case-insensitive and Connection is a list
        assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", ws.check_request("GET", 1.1,
            headers({ upgrade = "WebSocket", connection = "keep-alive, upgrade" })))
        assert.is_string(ws.check_request("GET", "HTTP/1.1", headers()))
    end)

    it("refuses bad upgrade requests with 400", function()
        local cases = {
            { "POST", "1.1", headers(), "GET" },
            { "GET", "1.0", headers(), "HTTP/1.1" },
            { "GET", "1.1", headers({ upgrade = false }), "Upgrade" },
            { "GET", "1.1", headers({ upgrade = "h2c" }), "Upgrade" },
            { "GET", "1.1", headers({ connection = "keep-alive" }), "Connection" },
            { "GET", "1.1", headers({ connection = false }), "Connection" },
            { "GET", "1.1", headers({ ["sec-websocket-key"] = false }), "missing Sec%-WebSocket%-Key" },
            -- 15 bytes, 17 bytes, not base64, two keys joined
            { "GET", "1.1", headers({ ["sec-websocket-key"] = "AAAAAAAAAAAAAAAAAAAA" }), "invalid" },
            { "GET", "1.1", headers({ ["sec-websocket-key"] = "AAAAAAAAAAAAAAAAAAAAAAA=" }), "invalid" },
            { "GET", "1.1", headers({ ["sec-websocket-key"] = "!!!!!!!!!!!!!!!!!!!!!!==" }), "invalid" },
            { "GET", "1.1", headers({ ["sec-websocket-key"] = "AAAAAAAAAAAAAAAAAAAAAB==" }), "invalid" },
            { "GET", "1.1", headers({
                ["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==" }), "invalid" },
            { "GET", "1.1", headers({ ["sec-websocket-version"] = false }), "Sec%-WebSocket%-Version" },
        }
        for i, c in ipairs(cases) do
            local v, status, msg = ws.check_request(c[1], c[2], c[3])
            assert.is_nil(v, "case " .. i)
            assert.are.equal(400, status, "case " .. i)
            assert.truthy(msg:find(c[4]), "case " .. i .. ": " .. msg)
        end
    end)

    it("answers another version with 426 and Sec-WebSocket-Version: 13", function()
        local v, status, msg, hdrs = ws.check_request("GET", "1.1",
            headers({ ["sec-websocket-version"] = "8" }))
        assert.is_nil(v)
        assert.are.equal(426, status)
        assert.truthy(msg:find("8"))
        assert.are.same({ ["sec-websocket-version"] = "13" }, hdrs)
    end)

    it("checks the server's response", function()
        local key = ws.new_client_key()
        local good = { upgrade = "websocket", connection = "Upgrade",
            ["sec-websocket-accept"] = ws.accept_key(key) }
        assert.is_true(ws.check_response(101, good, key))
        local function bad(status, h, pat)
            local ok, msg = ws.check_response(status, h, key)
            assert.is_nil(ok)
            assert.truthy(msg:find(pat), msg)
        end
        bad(200, good, "status 200")
        bad(101, { connection = "upgrade", ["sec-websocket-accept"] = good["sec-websocket-accept"] }, "Upgrade")
        bad(101, { upgrade = "websocket", ["sec-websocket-accept"] = good["sec-websocket-accept"] }, "Connection")
        bad(101, { upgrade = "websocket", connection = "upgrade" }, "lacks Sec%-WebSocket%-Accept")
        bad(101, { upgrade = "websocket", connection = "upgrade",
            ["sec-websocket-accept"] = ws.accept_key("other") }, "wrong Sec%-WebSocket%-Accept")
    end)
end)

-- The HTTP part of an upgrade, written by hand as the HTTP layer will do
-- it: the request's headers as a table of lower-case names.
local function read_head(r)
    local first = r:readline()
    local headers = {}
    while true do
        local line = r:readline():gsub("\r?\n$", "")
        if line == "" then break end
        local name, value = line:match("^([^:]+):%s*(.-)%s*$")
        name = name:lower()
        headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
    return first, headers
end

describe("websocket over a loopback connection", function()
    -- An echo server doing the upgrade; returns it and its port.
    local function echo_server(opts)
        return lasio.start_server(function(r, w)
            local first, headers = read_head(r)
            local method, version = first:match("^(%u+) %S+ HTTP/(%d%.%d)")
            local accept, status, msg = ws.check_request(method, version, headers)
            if not accept then
                w:write(("HTTP/1.1 %d Bad\r\nContent-Length: %d\r\n\r\n%s"):format(status, #msg, msg))
                return
            end
            w:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                .. "Connection: Upgrade\r\nSec-WebSocket-Accept: " .. accept .. "\r\n\r\n")
            local s <close> = ws.wrap(r, w, opts)
            while true do
                local m, kind = s:recv()
                if m == nil then return end
                s:send(m, kind)
            end
        end, "127.0.0.1", 0)
    end

    local function connect(port, opts)
        local r, w = lasio.open_connection("127.0.0.1", port)
        local key = ws.new_client_key()
        w:write("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            .. "Connection: Upgrade\r\nSec-WebSocket-Key: " .. key
            .. "\r\nSec-WebSocket-Version: 13\r\n\r\n")
        local first, headers = read_head(r)
        local status = tonumber(first:match("^HTTP/1%.1 (%d+)"))
        assert(ws.check_response(status, headers, key))
        local o = { client = true }
        for k, v in pairs(opts or {}) do o[k] = v end
        return ws.wrap(r, w, o)
    end

    it("upgrades and echoes messages of every length form", async(function()
        -- the largest is over the default max_message (1 MiB)
        local big = { max_message = 2 * 1024 * 1024 }
        local server = echo_server(big)
        local c = connect(server:sockets()[1].port, big)
        for _, n in ipairs({ 0, 1, 125, 126, 65535, 65536, net.scale(1024 * 1024, 70000) + 7 }) do
            local text = string.rep("é", n // 2) .. string.rep("a", n % 2)
            c:send(text)
            local m, kind = c:recv()
            assert.are.equal("text", kind)
            assert.are.equal(n, #m)
            assert.are.equal(text, m)
            local bin = string.rep("\xff\x00", n // 2) .. string.rep("\x01", n % 2)
            c:send(bin, "binary")
            m, kind = c:recv()
            assert.are.equal("binary", kind)
            assert.are.equal(bin, m)
        end
        c:send("abc", "binary")
        assert.are.same({ "abc", "binary" }, { c:recv() })
        c:close()
        assert.is_true(c.closed)
        assert.are.equal(1000, c.close_code)
        assert.are.same({ nil, 1000, "" }, { c:recv() })
        server:close()
        server:wait_closed()
    end))

    it("refuses an upgrade with a bad key", async(function()
        local server = echo_server()
        local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
        w:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            .. "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
        local first = r:readline()
        assert.are.equal("HTTP/1.1 400 Bad\r\n", first)
        w:close()
        server:close()
        server:wait_closed()
    end))

    it("closes the connection and releases every fd", async(function()
        local server = echo_server()
        local port = server:sockets()[1].port
        local before = net.settle()
        for _ = 1, 5 do
            local c = connect(port)
            c:send("x")
            c:recv()
            c:close(1001, "going away")
            assert.are.equal(1001, c.close_code)
            assert.are.equal("going away", c.close_reason)
        end
        assert.is_true(net.fds_back_to(before))
        server:close()
        server:wait_closed()
    end))
end)

describe("websocket framing", function()
    it("reads masked frames with 7-, 16- and 64-bit lengths", async(function()
        local p = server_end()
        p.cw:write(cframe(1, "short"))
        p.cw:write(cframe(2, string.rep("b", 300)))
        p.cw:write(cframe(2, string.rep("c", 70000)))
        -- a short payload in the 16- and 64-bit forms is read as well
        p.cw:write(cframe(1, "sixteen", { len16 = true }))
        p.cw:write(cframe(1, "sixtyfour", { len64 = true }))
        assert.are.same({ "short", "text" }, { p.ws:recv() })
        assert.are.same({ string.rep("b", 300), "binary" }, { p.ws:recv() })
        assert.are.same({ string.rep("c", 70000), "binary" }, { p.ws:recv() })
        assert.are.same({ "sixteen", "text" }, { p.ws:recv() })
        assert.are.same({ "sixtyfour", "text" }, { p.ws:recv() })
        close_both(p)
    end))

    it("sends unmasked frames as a server, in the shortest length form", async(function()
        local p = server_end()
        for _, n in ipairs({ 0, 125, 126, 65535, 65536 }) do
            p.ws:send(string.rep("z", n), "binary")
            local f = readframe(p.cr)
            assert.is_false(f.masked)
            assert.is_true(f.fin)
            assert.are.equal(2, f.op)
            assert.are.equal(n, #f.payload)
        end
        p.ws:send("t")
        local f = readframe(p.cr)
        assert.are.equal(1, f.op)
        close_both(p)
    end))

    it("masks every client frame with a fresh key", async(function()
        local p = client_end()
        local keys = {}
        for i = 1, 20 do
            p.ws:send("same payload " .. i)
            local f = readframe(p.sr)
            assert.is_true(f.masked)
            assert.are.equal("same payload " .. i, f.payload)
            assert.is_nil(keys[f.key])
            keys[f.key] = true
        end
        -- the client reads the server's unmasked frames
        p.sw:write(mkframe({ op = 1, payload = "from server" }))
        assert.are.same({ "from server", "text" }, { p.ws:recv() })
        close_both(p, 1000)
    end))

    it("reassembles fragments and answers a ping between them", async(function()
        local p = server_end()
        p.cw:write(cframe(1, "frag", { fin = false }))
        p.cw:write(cframe(9, "mid-ping"))
        p.cw:write(cframe(0, "men", { fin = false }))
        p.cw:write(cframe(10, "unsolicited pong"))
        p.cw:write(cframe(0, "ted"))
        local pong = readframe(p.cr)
        assert.are.equal(10, pong.op)
        assert.are.equal("mid-ping", pong.payload)
        assert.are.same({ "fragmented", "text" }, { p.ws:recv() })
        -- a binary message in fragments, one of them empty
        p.cw:write(cframe(2, "\1\2", { fin = false }) .. cframe(0, "", { fin = false })
            .. cframe(0, "\3"))
        assert.are.same({ "\1\2\3", "binary" }, { p.ws:recv() })
        close_both(p)
    end))

    it("answers a ping with a pong without anyone receiving", async(function()
        local p = server_end()
        p.cw:write(cframe(9, "are you there"))
        local f = readframe(p.cr)
        assert.are.equal(10, f.op)
        assert.are.equal("are you there", f.payload)
        p.cw:write(cframe(9, ""))
        f = readframe(p.cr)
        assert.are.equal(10, f.op)
        assert.are.equal("", f.payload)
        close_both(p)
    end))

    it("stops reading while a ping flood's pongs are not read", async(function()
        -- a peer that sends pings and never reads: the pongs must not pile
        -- up in the server's buffer; it stops reading instead, so TCP
        -- pushes back on the peer
        if net.shim then return end -- filling socket buffers a byte at a time
        local p = server_end()
        p.sw:set_write_buffer_limits(4096)
        local batch = cframe(9, string.rep("x", 125)):rep(512)
        local most, sent, stalled = 0, 0, false
        while sent < 256 * 1024 * 1024 do
            p.cw:write(batch)
            sent = sent + #batch
            stalled = not pcall(lasio.wait_for, function() p.cw:drain() end, helper.t(0.5))
            most = math.max(most, p.sw:get_write_buffer_size())
            if stalled then break end
        end
        assert.is_true(stalled, "the flood was never pushed back")
        assert.is_true(most <= 4096 + 127, "pongs piled up: " .. most .. " bytes")
        p.cw:abort() -- the peer goes away (a close would wait to send its pings)
        recv_fails(p.ws, 1006)
        p.done()
    end))

    it("chooses the kind of a message and checks send's arguments", async(function()
        local p = server_end()
        p.ws:send("plain")
        assert.are.equal(1, readframe(p.cr).op)
        p.ws:send("\xff\xfe")
        assert.are.equal(2, readframe(p.cr).op)
        p.ws:send("valid text", "binary")
        assert.are.equal(2, readframe(p.cr).op)
        local e = helper.raises(p.ws.send, p.ws, "\xff", "text")
        assert.truthy(tostring(e):find("valid UTF%-8"))
        e = helper.raises(p.ws.send, p.ws, "x", "json")
        assert.truthy(tostring(e):find('kind must be "text" or "binary", got json'))
        e = helper.raises(p.ws.send, p.ws, 42)
        assert.truthy(tostring(e):find("data must be a string, got number"))
        close_both(p)
        e = helper.raises(p.ws.send, p.ws, "late")
        assert.truthy(tostring(e):find("websocket send: the connection is closed"))
    end))

    it("refuses a second concurrent recv at once", async(function()
        local p = server_end()
        local first = lasio.spawn(function() return p.ws:recv() end)
        lasio.sleep(0)
        local e = helper.raises(p.ws.recv, p.ws)
        assert.truthy(tostring(e):find("another task is already receiving"))
        p.cw:write(cframe(1, "for the first"))
        assert.are.same({ "for the first", "text" }, { first:await() })
        close_both(p)
    end))

    it("keeps messages for a recv that timed out", async(function()
        local p = server_end()
        local ok, e = pcall(lasio.wait_for, function() return p.ws:recv() end, 0.01)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        p.cw:write(cframe(1, "later"))
        assert.are.same({ "later", "text" }, { p.ws:recv() })
        close_both(p)
    end))

    it("does not interleave the frames of concurrent senders", async(function()
        local s, c, p = ws_pair()
        -- under the one-byte shim every byte read costs four system
        -- calls (~25 s of CPU for 5 frames per sender): 3 keep it well
        -- within its minute on a loaded machine
        local senders, per = 8, net.scale(40, 3)
        local size = 20000 -- big enough for drain to suspend the senders
        local tasks = {}
        for i = 1, senders do
            tasks[i] = lasio.spawn(function()
                for j = 1, per do
                    local head = ("%d:%d:"):format(i, j)
                    s:send(head .. string.rep(string.char(64 + i), size - #head), "binary")
                end
            end)
        end
        local last = {}
        for _ = 1, senders * per do
            local m, kind = c:recv()
            assert.are.equal("binary", kind)
            assert.are.equal(size, #m)
            local i, j = m:match("^(%d+):(%d+):")
            i, j = tonumber(i), tonumber(j)
            assert.are.equal((last[i] or 0) + 1, j)
            last[i] = j
            assert.are.equal(string.rep(string.char(64 + i), size - #m:match("^%d+:%d+:")),
                m:sub(#m:match("^%d+:%d+:") + 1))
        end
        for i = 1, senders do tasks[i]:await() end
        c:close()
        s:close()
        p.done()
    end))
end)

describe("websocket queue and state", function()
    it("stops reading when max_queue messages wait", async(function()
        local p = server_end({ max_queue = 2 })
        p.cw:write(cframe(1, "one") .. cframe(1, "two") .. cframe(1, "three") .. cframe(9, "p"))
        -- two messages wait, the third is held by the reader task, and the
        -- ping behind it is not read yet
        local ok = pcall(lasio.wait_for, function() return readframe(p.cr) end, 0.1)
        assert.is_false(ok)
        assert.are.same({ "one", "text" }, { p.ws:recv() })
        local f = readframe(p.cr)
        assert.are.equal(10, f.op)
        assert.are.equal("p", f.payload)
        assert.are.same({ "two", "text" }, { p.ws:recv() })
        assert.are.same({ "three", "text" }, { p.ws:recv() })
        close_both(p)
    end))

    it("stops reading when max_message bytes wait, whatever the count", async(function()
        -- three messages of 400 bytes with max_message 1000: two fit the
        -- queue (800 bytes), the third waits in the reader task, and the
        -- ping behind it is not read until the queue has room
        local p = server_end({ max_message = 1000 })
        local m = string.rep("m", 400)
        p.cw:write(cframe(2, m) .. cframe(2, m) .. cframe(2, m) .. cframe(9, "p"))
        local ok = pcall(lasio.wait_for, function() return readframe(p.cr) end, 0.1)
        assert.is_false(ok)
        assert.are.same({ m, "binary" }, { p.ws:recv() })
        local f = readframe(p.cr)
        assert.are.equal(10, f.op)
        assert.are.same({ m, "binary" }, { p.ws:recv() })
        assert.are.same({ m, "binary" }, { p.ws:recv() })
        close_both(p)
    end))

    it("queues a message of max_message bytes alone", async(function()
        local p = server_end({ max_message = 1000 })
        local m = string.rep("m", 1000)
        p.cw:write(cframe(2, "x") .. cframe(2, m))
        assert.are.same({ "x", "binary" }, { p.ws:recv() })
        assert.are.same({ m, "binary" }, { p.ws:recv() })
        close_both(p)
    end))

    it("defaults to messages of at most 1 MiB", async(function()
        local p = server_end()
        -- a header announcing 1 MiB + 1 bytes is refused before the payload
        local head = string.char(0x82, 0x80 | 127) .. string.pack(">I8", 1024 * 1024 + 1) .. KEY
        p.cw:write(head)
        expect_close(p, 1009)
        local e = recv_fails(p.ws, 1009)
        assert.truthy(tostring(e):find("message longer than 1048576 bytes"))
        p.done()
    end))

    it("drops messages that arrive after its close frame", async(function()
        local p = server_end()
        local t = lasio.spawn(function() p.ws:close(1000, "enough") end)
        assert.are.equal(1000, close_of(readframe(p.cr)))
        p.cw:write(cframe(1, "too late") .. cframe(8, string.pack(">I2", 1000)))
        t:await()
        assert.are.same({ nil, 1000, "" }, { p.ws:recv() })
        assert.are.equal("", read_to_eof(p.cr))
        p.done()
    end))

    it("fails a waiting ping when the connection ends", async(function()
        local p = server_end()
        local t = lasio.spawn(function() return pcall(p.ws.ping, p.ws, "x") end)
        assert.are.equal(9, readframe(p.cr).op)
        p.cw:close()
        local ok, e = t:await()
        assert.is_false(ok)
        assert.are.equal(1006, e.code)
        e = helper.raises(p.ws.ping, p.ws)
        assert.truthy(tostring(e):find("websocket ping: .*1006"), tostring(e))
        p.done()
    end))

    it("names its close codes and shows its state", async(function()
        assert.are.equal(1000, ws.CLOSE_CODES.NORMAL)
        assert.are.equal(1009, ws.CLOSE_CODES.MESSAGE_TOO_BIG)
        assert.is_true(ws.valid_close_code(4999))
        assert.is_false(ws.valid_close_code(1005))
        local p = server_end()
        assert.are.equal("lasio.WebSocket<server open>", tostring(p.ws))
        assert.is_false(p.ws.closed)
        assert.is_nil(p.ws.close_code)
        close_both(p)
        assert.are.equal("lasio.WebSocket<server closed code=1000>", tostring(p.ws))
    end))
end)

describe("websocket ping", function()
    it("returns the round-trip time of a ping", async(function()
        local s, c, p = ws_pair()
        local rtt = c:ping()
        assert.is_number(rtt)
        assert.is_true(rtt >= 0)
        assert.is_number(s:ping("server ping"))
        c:close()
        s:close()
        p.done()
    end))

    it("times out when no pong comes, and checks its payload", async(function()
        local p = server_end()
        local ok, e = pcall(p.ws.ping, p.ws, "hello?", 0.05)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.truthy(tostring(e):find("websocket ping: timed out"))
        local f = readframe(p.cr)
        assert.are.equal(9, f.op)
        assert.are.equal("hello?", f.payload)
        -- a late pong is ignored
        p.cw:write(cframe(10, "hello?"))
        e = helper.raises(p.ws.ping, p.ws, string.rep("x", 126))
        assert.truthy(tostring(e):find("longer than 125 bytes"))
        -- a pong answers the matching ping
        local t = lasio.spawn(function() return p.ws:ping("second") end)
        f = readframe(p.cr)
        p.cw:write(cframe(10, f.payload))
        assert.is_number(t:await())
        close_both(p)
    end))

    it("sends pings every ping_interval and fails on a missing pong", async(function()
        local p = server_end({ ping_interval = 0.02, ping_timeout = 0.1 })
        local f = readframe(p.cr)
        assert.are.equal(9, f.op)
        p.cw:write(cframe(10, f.payload))
        f = readframe(p.cr)
        assert.are.equal(9, f.op)
        -- no pong this time: close 1011 and the connection ends
        f = readframe(p.cr)
        assert.are.equal(1011, close_of(f))
        assert.are.equal("", read_to_eof(p.cr))
        local e = recv_fails(p.ws, 1011)
        assert.truthy(tostring(e):find("keepalive ping timeout"))
        p.done()
    end))
end)

describe("websocket close handshake", function()
    it("answers the peer's close with the same code and closes first", async(function() -- server side
        local p = server_end()
        p.cw:write(cframe(1, "last words"))
        p.cw:write(cframe(8, string.pack(">I2", 1001) .. "bye"))
        local f = expect_close(p, 1001)
        assert.are.equal("bye", f.payload:sub(3))
        assert.are.same({ "last words", "text" }, { p.ws:recv() })
        assert.are.same({ nil, 1001, "bye" }, { p.ws:recv() })
        assert.is_true(p.ws.closed)
        assert.are.equal(1001, p.ws.close_code)
        assert.are.equal("bye", p.ws.close_reason)
        p.ws:close() -- idempotent
        p.ws:close()
        p.done()
    end))

    it("takes an empty close frame as code 1005 and echoes it empty", async(function()
        local p = server_end()
        p.cw:write(cframe(8, ""))
        local f = readframe(p.cr)
        assert.are.equal(8, f.op)
        assert.are.equal("", f.payload)
        assert.are.same({ nil, 1005, "" }, { p.ws:recv() })
        p.done()
    end))

    it("starts the handshake on close() and waits for the answer", async(function()
        local p = client_end()
        local closing = lasio.spawn(function() p.ws:close(4000, "done here") end)
        local f = readframe(p.sr)
        assert.is_true(f.masked)
        assert.are.same({ 4000, "done here" }, { close_of(f) })
        assert.is_false(closing:done())
        -- the server answers and closes the TCP connection first
        p.sw:write(mkframe({ op = 8, payload = string.pack(">I2", 4000) }))
        p.sw:close()
        closing:await()
        assert.is_true(p.ws.closed)
        assert.are.equal(4000, p.ws.close_code)
        assert.are.same({ nil, 4000, "" }, { p.ws:recv() })
        p.done()
    end))

    it("the client waits for the server to close the TCP connection", async(function()
        local p = client_end({ close_timeout = helper.t(5) })
        p.sw:write(mkframe({ op = 8, payload = string.pack(">I2", 1000) }))
        local f = readframe(p.sr) -- the client's answer
        assert.are.equal(1000, close_of(f))
        assert.are.same({ nil, 1000, "" }, { p.ws:recv() })
        -- the client keeps the connection until the server closes it
        lasio.sleep(0.05)
        assert.is_false(p.cw:is_closing())
        p.sw:close()
        p.ws:close()
        assert.is_true(p.cw:is_closing())
        p.done()
    end))

    it("gives up after close_timeout when the peer never answers", async(function()
        local p = server_end({ close_timeout = 0.1 })
        local t0 = lasio.time()
        p.ws:close(1000, "anyone?")
        local took = lasio.time() - t0
        assert.is_true(took >= 0.09, "took " .. took)
        assert.is_true(took < helper.t(3), "took " .. took)
        assert.is_true(p.ws.closed)
        assert.are.equal(1006, p.ws.close_code)
        assert.are.same({ nil, 1006, "" }, { p.ws:recv() })
        local f = readframe(p.cr)
        assert.are.same({ 1000, "anyone?" }, { close_of(f) })
        assert.are.equal("", read_to_eof(p.cr))
        p.done()
    end))

    it("closes as a to-be-closed variable", async(function()
        local s, c, p = ws_pair()
        do
            local cc <close> = c
            cc:send("bye")
        end
        assert.is_true(c.closed)
        assert.are.same({ "bye", "text" }, { s:recv() })
        assert.are.same({ nil, 1000, "" }, { s:recv() })
        assert.is_true(s.closed)
        p.done()
    end))

    it("closes as a to-be-closed variable left by an error, which goes on unchanged", async(function()
        local s, c, p = ws_pair()
        local ok, e = pcall(function()
            local cc <close> = c
            cc:send("bye")
            error("boom", 0)
        end)
        assert.is_false(ok)
        assert.are.equal("boom", e)
        assert.is_true(c.closed)
        assert.are.same({ "bye", "text" }, { s:recv() })
        assert.are.same({ nil, 1000, "" }, { s:recv() })
        p.done()
    end))

    it("checks close's code and reason", async(function()
        local p = server_end()
        for _, code in ipairs({ 999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5, "1000" }) do
            local e = helper.raises(p.ws.close, p.ws, code)
            assert.truthy(tostring(e):find("invalid close code"), tostring(e))
        end
        local e = helper.raises(p.ws.close, p.ws, 1000, string.rep("r", 124))
        assert.truthy(tostring(e):find("longer than 123 bytes"))
        e = helper.raises(p.ws.close, p.ws, 1000, "\xff")
        assert.truthy(tostring(e):find("not valid UTF%-8"))
        assert.is_false(p.ws.closed)
        close_both(p, 3000)
    end))

    it("reports a connection lost without a close frame as 1006", async(function()
        local p = server_end()
        p.cw:write(cframe(1, "partial", { fin = false }))
        p.cw:close()
        local e = recv_fails(p.ws, 1006)
        assert.truthy(tostring(e):find("without a close frame"))
        assert.is_true(p.ws.closed)
        -- raised again, and send raises too
        recv_fails(p.ws, 1006)
        e = helper.raises(p.ws.send, p.ws, "x")
        assert.are.equal(1006, e.code)
        p.done()
    end))
end)

describe("websocket protocol errors", function()
    local cases = {
        { "reserved bits set", cframe(1, "x", { rsv = 0x40 }), 1002, "reserved bits" },
        { "unknown data opcode", cframe(3, "x"), 1002, "unknown opcode 3" },
        { "unknown control opcode", cframe(11, "x"), 1002, "unknown opcode 11" },
        { "fragmented control frame", cframe(9, "x", { fin = false }), 1002, "fragmented control" },
        { "control frame over 125 bytes", cframe(9, string.rep("p", 126)), 1002, "longer than 125" },
        { "continuation without a start", cframe(0, "x"), 1002, "continuation frame without" },
        { "new data frame inside a fragmented message",
            cframe(1, "a", { fin = false }) .. cframe(2, "b"), 1002, "new data frame inside" },
        { "unmasked frame from a client", mkframe({ op = 1, payload = "x" }), 1002, "unmasked frame" },
        { "close code 999", cframe(8, string.pack(">I2", 999)), 1002, "invalid close code 999" },
        { "close code 1005", cframe(8, string.pack(">I2", 1005)), 1002, "invalid close code 1005" },
        { "close code 1006", cframe(8, string.pack(">I2", 1006)), 1002, "invalid close code 1006" },
        { "close code 1015", cframe(8, string.pack(">I2", 1015)), 1002, "invalid close code 1015" },
        { "close code 5000", cframe(8, string.pack(">I2", 5000)), 1002, "invalid close code 5000" },
        { "close frame of 1 byte", cframe(8, "\3"), 1002, "1%-byte payload" },
        { "invalid UTF-8 in a close reason", cframe(8, string.pack(">I2", 1000) .. "\xc0\xaf"),
            1007, "close reason is not valid UTF%-8" },
        { "invalid UTF-8 in a text message", cframe(1, "ok\xffno"), 1007, "not valid UTF%-8" },
        { "a 64-bit length with its top bit set",
            string.pack(">BBI8", 0x82, 0xff, 0x8000000000000000) .. KEY, 1002, "top bit" },
    }
    for _, c in ipairs(cases) do
        it("closes with " .. c[3] .. " on " .. c[1], async(function()
            local p = server_end()
            p.cw:write(c[2])
            local f = expect_close(p, c[3])
            local e = recv_fails(p.ws, c[3])
            assert.truthy(tostring(e):find(c[4]), tostring(e))
            assert.are.equal(f.payload:sub(3), e.reason)
            assert.is_true(p.ws.closed)
            assert.are.equal(c[3], p.ws.close_code)
            p.done()
        end))
    end

    it("closes with 1002 on a masked frame from the server", async(function()
        local p = client_end()
        p.sw:write(mkframe({ op = 1, payload = "x", key = KEY }))
        local f = readframe(p.sr)
        assert.are.equal(1002, close_of(f))
        local e = recv_fails(p.ws, 1002)
        assert.truthy(tostring(e):find("masked frame from the server"))
        p.done()
    end))

    it("delivers the messages that came before the error", async(function()
        local p = server_end()
        p.cw:write(cframe(1, "good") .. cframe(3, ""))
        expect_close(p, 1002)
        assert.are.same({ "good", "text" }, { p.ws:recv() })
        recv_fails(p.ws, 1002)
        p.done()
    end))
end)

describe("websocket max_message", function()
    it("closes with 1009 on a message over the limit", async(function()
        local p = server_end({ max_message = 1000 })
        p.cw:write(cframe(2, string.rep("a", 1000)))
        assert.are.equal(1000, #p.ws:recv())
        p.cw:write(cframe(2, string.rep("a", 1001)))
        expect_close(p, 1009)
        local e = recv_fails(p.ws, 1009)
        assert.truthy(tostring(e):find("message longer than 1000 bytes"))
        p.done()
    end))

    it("refuses a big message still arriving without resetting the connection", async(function()
        local p = server_end({ max_message = 1000 })
        -- the header announces 4 MiB; the payload keeps coming, more than
        -- the socket buffers hold, while the server refuses it: closing
        -- with that input unread would reset the connection and could
        -- destroy the close frame
        p.cw:write(string.pack(">BBI8", 0x82, 0xff, 4 * 1024 * 1024) .. KEY)
        p.cw:write(string.rep("\0", 4 * 1024 * 1024))
        expect_close(p, 1009)
        recv_fails(p.ws, 1009)
        p.done()
    end))

    it("counts every fragment of a message", async(function()
        local p = server_end({ max_message = 1000 })
        p.cw:write(cframe(1, string.rep("a", 600), { fin = false }))
        p.cw:write(cframe(0, string.rep("a", 401)))
        expect_close(p, 1009)
        recv_fails(p.ws, 1009)
        p.done()
    end))

    it("limits single frames with max_frame", async(function()
        local p = server_end({ max_frame = 100 })
        p.cw:write(cframe(1, string.rep("a", 100), { fin = false }) .. cframe(0, string.rep("b", 100)))
        assert.are.equal(200, #p.ws:recv())
        p.cw:write(cframe(1, string.rep("a", 101)))
        expect_close(p, 1009)
        local e = recv_fails(p.ws, 1009)
        assert.truthy(tostring(e):find("frame longer than 100 bytes"))
        p.done()
    end))

    it("checks wrap's arguments and options", async(function()
        local p = net.pair()
        local e = helper.raises(ws.wrap, p.sr, p.sw, { tiemout = 1 })
        assert.truthy(tostring(e):find("unknown option 'tiemout'"))
        e = helper.raises(ws.wrap, p.sr, p.sw, { max_message = 0 })
        assert.truthy(tostring(e):find("max_message must be a positive integer"))
        e = helper.raises(ws.wrap, p.sr, p.sw, { close_timeout = -1 })
        assert.truthy(tostring(e):find("close_timeout must be a positive number"))
        e = helper.raises(ws.wrap, p.sr, p.sw, { client = "yes" })
        assert.truthy(tostring(e):find("client must be a boolean"))
        e = helper.raises(ws.wrap, p.sr)
        assert.truthy(tostring(e):find("needs a reader and a writer"))
        p.done()
    end))
end)

describe("websocket UTF-8 (Autobahn section 6 style)", function()
    it("accepts valid multi-byte text split at every byte across fragments", async(function()
        local p = server_end()
        local text = "κόσμε 😀 \u{10FFFF} \u{FFFF} é"
        for cut = 1, #text - 1 do
            p.cw:write(cframe(1, text:sub(1, cut), { fin = false }))
            p.cw:write(cframe(0, text:sub(cut + 1)))
            assert.are.same({ text, "text" }, { p.ws:recv() })
        end
        -- one byte per fragment
        p.cw:write(cframe(1, text:sub(1, 1), { fin = false }))
        for i = 2, #text do
            p.cw:write(cframe(0, text:sub(i, i), { fin = i == #text }))
        end
        assert.are.same({ text, "text" }, { p.ws:recv() })
        close_both(p)
    end))

    local invalid = {
        { "a lone continuation byte", "\x80" },
        { "an overlong slash", "\xc0\xaf" },
        { "an overlong 3-byte form", "\xe0\x80\xaf" },
        { "a surrogate", "\xed\xa0\x80" },
        { "above U+10FFFF", "\xf4\x90\x80\x80" },
        { "0xFE", "\xfe" },
        { "a sequence cut at the end", "κόσμε\xce" },
        { "Autobahn 6.3.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64" },
    }
    for _, c in ipairs(invalid) do
        it("closes with 1007 on " .. c[1] .. ", whole or in fragments", async(function()
            local p = server_end()
            p.cw:write(cframe(1, c[2]))
            expect_close(p, 1007)
            recv_fails(p.ws, 1007)
            p.done()
            local q = server_end()
            q.cw:write(cframe(1, "", { fin = false }))
            for i = 1, #c[2] do q.cw:write(cframe(0, c[2]:sub(i, i), { fin = false })) end
            q.cw:write(cframe(0, "end"))
            expect_close(q, 1007)
            recv_fails(q.ws, 1007)
            q.done()
        end))
    end

    it("fails fast: before the message's last fragment", async(function()
        for _, bad in ipairs({ "ok\xed\xa0\x80more", "\xf4\x90", "\xe0\x80", "\xffabc", "ab\x80" }) do
            local p = server_end()
            p.cw:write(cframe(1, bad, { fin = false }))
            -- no final fragment is sent: the close comes anyway
            expect_close(p, 1007)
            recv_fails(p.ws, 1007)
            p.done()
        end
    end))
end)

-- S2 for WebSocket: this spec again under the one-byte /
-- EAGAIN shim (spec/support/ioshim.c), so that every frame arrives cut at
-- every byte; the results must be those of the normal run.
describe("websocket under the one-byte / EAGAIN shim", function()
    it("passes exactly as in a normal run (covers S2)", function()
        if net.shim then return end -- not inside itself
        local dir = net.tmpdir()
        local pre = net.build_io_shim(dir)
        local ok, bad, text = net.run_busted("spec/websocket_spec.lua",
            "LASIO_IO_SHIM=1 LD_PRELOAD=" .. helper.shell_quote(pre))
        net.rmdir(dir)
        assert.are.equal(0, bad, text)
        assert.is_true(ok > 60, text)
    end)
end)
