-- Specs for the memory a client can make lasio.http.serve hold
-- (docs/SERVER.md, Memory): req:body() past body_buffer_size waits in a
-- temporary file, the WebSocket queue is bounded in bytes, and a server
-- at its defaults with many clients pinning uploads or WebSocket messages
-- stays under the documented bound per connection, measured in a server
-- process of its own (Lua heap after a full collection, and RSS).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local H = require "http_helper"
local lasio = require "lasio"

local async = helper.async_guarded
local KiB, MiB = 1024, 1024 * 1024

-- The bounds of docs/SERVER.md, Memory, per connection at the defaults.
local UPLOAD_HEAP = 48 * KiB     -- Lua objects of a connection in req:body()
local UPLOAD_RSS = 640 * KiB     -- all of it: buffers, allocator included
local WS_HEAP = 2 * MiB + 64 * KiB -- two messages of max_message, and objects
local WS_RSS = 4 * MiB + 128 * KiB -- and the objects, what malloc keeps

local function post(length, extra)
    return "POST /upload HTTP/1.1\r\nHost: x\r\n" .. (extra or "")
        .. (length and ("Content-Length: " .. length .. "\r\n") or
            "Transfer-Encoding: chunked\r\n") .. "\r\n"
end

local function chunked(s, size)
    local out = {}
    for i = 1, #s, size do
        local part = s:sub(i, i + size - 1)
        out[#out + 1] = ("%x\r\n%s\r\n"):format(#part, part)
    end
    out[#out + 1] = "0\r\n\r\n"
    return table.concat(out)
end

-- A body that shows where each byte was: no run of it repeats.
local function pattern(n)
    local t = {}
    for i = 1, n // 8 + 1 do t[i] = ("%07x\n"):format(i) end
    return table.concat(t):sub(1, n)
end

describe("req:body() and body_buffer_size", function()
    local function echo_size(req, res)
        local b = req:body()
        res:finish(#b .. " " .. b:sub(1, 8) .. " " .. b:sub(-8))
    end

    it("reads bodies below, at and past the in-memory size intact",
        async(function()
            local got
            local srv, port = H.serve(function(req, res)
                got = req:body()
                res:finish("ok")
            end, {body_buffer_size = 1000})
            for _, n in ipairs({0, 1, 999, 1000, 1001, 70000, 300000}) do
                local body = pattern(n)
                local out = H.raw(port, post(n) .. body, {until_text = "ok"})
                assert.matches("^HTTP/1.1 200", out)
                assert.are.equal(n, #got)
                assert.is_true(got == body, "body of " .. n .. " bytes")
                out = H.raw(port, post(nil) .. chunked(body, 777),
                    {until_text = "ok"})
                assert.matches("^HTTP/1.1 200", out)
                assert.is_true(got == body, "chunked body of " .. n)
            end
            srv:close()
        end))

    it("keeps a body past body_buffer_size in an unlinked temporary file "
        .. "while it arrives, and closes it after", async(function()
            local entered = lasio.Event()
            local srv, port = H.serve(function(req, res)
                entered:set()
                res:finish(tostring(#req:body()))
            end, {body_buffer_size = 1000})
            local function tmpfiles()
                local pid = io.open("/proc/self/stat"):read("n")
                local h = io.popen("ls -l /proc/" .. pid
                    .. "/fd 2>/dev/null | grep -c '(deleted)'")
                local n = tonumber(h:read("a"))
                h:close()
                return n
            end
            local before = tmpfiles()
            local r, w = lasio.open_connection("127.0.0.1", port)
            w:write(post(5000) .. string.rep("a", 3000))
            entered:wait()
            assert.is_true(helper.wait_until(function()
                return tmpfiles() == before + 1
            end), "no temporary file while the body arrives")
            w:write(string.rep("b", 2000))
            assert.matches("\r\n\r\n5000$", r:readuntil("5000"))
            assert.is_true(helper.wait_until(function()
                return tmpfiles() == before
            end), "the temporary file stayed open")
            w:close()
            srv:close()
        end))

    it("closes the temporary file of a client that goes away",
        async(function()
            local srv, port = H.serve(echo_size, {body_buffer_size = 100})
            local fds = net.settle()
            for _ = 1, 20 do
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(post(100000) .. string.rep("x", 50000))
                w:drain()
                lasio.sleep(0.01)
                w:abort()
                assert.truthy(r)
            end
            assert.is_true(net.fds_back_to(fds), "fds grew")
            srv:close()
        end))

    it("keeps the limits: 413 past max_body, 408 on a stalled body, "
        .. "400 on a bad chunk", async(function()
            local srv, port = H.serve(echo_size, {body_buffer_size = 100,
                max_body = 5000, body_timeout = 0.2})
            local out = H.raw(port, post(nil) .. chunked(pattern(6000), 1000))
            assert.matches("^HTTP/1.1 413", out)
            out = H.raw(port, post(3000) .. pattern(2000))
            assert.matches("^HTTP/1.1 408", out)
            out = H.raw(port, post(nil) .. "3e8\r\n" .. pattern(1000)
                .. "\r\nzz\r\n")
            assert.matches("^HTTP/1.1 400", out)
            out = H.raw(port, post(4000) .. pattern(4000),
                {until_text = "4000 "})
            assert.matches("^HTTP/1.1 200", out)
            srv:close()
        end))

    -- luacheck: push ignore 122 (io.tmpfile is replaced for a moment)
    it("answers 500 and reports when the temporary file cannot be made",
        async(function()
            local tmpfile = io.tmpfile
            io.tmpfile = function() return nil, "No space left on device" end
            local seen = helper.capture_exceptions(function()
                local srv, port = H.serve(echo_size,
                    {body_buffer_size = 100})
                local out = H.raw(port, post(1000) .. pattern(1000))
                io.tmpfile = tmpfile
                assert.matches("^HTTP/1.1 500", out)
                -- a body that fits in memory needs no file
                out = H.raw(port, post(100) .. pattern(100),
                    {until_text = "100 "})
                assert.matches("^HTTP/1.1 200", out)
                srv:close()
            end)
            io.tmpfile = tmpfile
            assert.are.equal(1, #seen)
            assert.matches("req:body: cannot open a temporary file for "
                .. "the request body: No space left on device",
                helper.msg(seen[1].exception))
        end))
    -- luacheck: pop

    it("checks the option", function()
        for _, bad in ipairs({-1, 1.5, "16k"}) do
            local e = helper.raises(lasio.http.serve, function() end,
                "127.0.0.1", 0, {body_buffer_size = bad})
            assert.matches("lasio.http.serve: option body_buffer_size must "
                .. "be", helper.msg(e))
        end
    end)
end)

-- {====== A server process at its defaults ======

-- The interpreter of this run for the server's own process.
local function interp()
    return helper.mode == "lasio" and helper.lasio_bin or "lua5.4"
end

-- Starts spec/support/memory_server.lua; returns its port, a function
-- giving its Lua heap and RSS in KiB, and a function that stops it.
local function start_server()
    local p = lasio.create_subprocess_exec(interp(),
        {"spec/support/memory_server.lua"}, {stdout = lasio.PIPE})
    local port = tonumber(p.stdout:readline())
    assert(port, "the memory server did not start")
    local function mem()
        local res = lasio.http.get(("http://127.0.0.1:%d/mem"):format(port),
            {timeout = helper.t(30)})
        local heap, rss = res:body():match("^(%d+) (%d+)$")
        return tonumber(heap), tonumber(rss)
    end
    local function stop()
        pcall(p.kill, p, 9)
        p:wait()
    end
    return port, mem, stop
end

-- Has the server's memory grown by at most n connections' bound? RSS
-- only outside the sanitizers (ASan's quarantine keeps freed memory).
local function check_growth(what, n, base, now, heap_bound, rss_bound)
    local heap = (now[1] - base[1]) * KiB
    local rss = (now[2] - base[2]) * KiB
    local info = ("%s: %d connections, Lua heap +%d KiB (%d KiB each, "
        .. "bound %d), RSS +%d KiB (%d KiB each, bound %d)"):format(what, n,
        heap // KiB, heap // n // KiB, heap_bound // KiB, rss // KiB,
        rss // n // KiB, rss_bound // KiB)
    assert.is_true(heap <= n * heap_bound, info)
    if not net.sanitized then
        assert.is_true(rss <= n * rss_bound, info)
    end
end

describe("a server at its defaults", function()
    it("holds at most the documented memory per upload pinned just "
        .. "under max_body", async(function()
            local port, mem, stop = start_server()
            local n = net.scale(64, 16)
            -- warm-up: one upload of each kind before the baseline
            for _ = 1, 2 do
                local out = H.raw(port, post(MiB) .. string.rep("w", MiB),
                    {until_text = "1048576"})
                assert.matches("^HTTP/1.1 200", out)
            end
            local base = {mem()}
            local conns = {}
            local body = string.rep("u", MiB - 1)
            for i = 1, n do
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(post(MiB))
                w:write(body)
                w:drain()
                conns[i] = {r, w}
            end
            -- the server has read every byte it was sent: poll until its
            -- memory settles
            local last, now = -1, nil
            for _ = 1, 50 do
                lasio.sleep(0.1)
                now = {mem()}
                if now[2] == last then break end
                last = now[2]
            end
            check_growth("uploads", n, base, now, UPLOAD_HEAP, UPLOAD_RSS)
            -- and the uploads are still alive: the last byte finishes them
            for i = 1, n do conns[i][2]:write("u") end
            for i = 1, n do
                assert.matches("1048576$", conns[i][1]:readuntil("1048576"))
                conns[i][2]:close()
            end
            stop()
        end))

    it("holds at most the documented memory per WebSocket whose messages "
        .. "nobody receives", async(function()
            local port, mem, stop = start_server()
            local n = net.sanitized and 4 or 16
            local len = MiB - 16 -- the largest message a client may send
            local frame = string.char(0x82, 0x80 | 127)
                .. string.pack(">I8", len) .. "\0\0\0\0" .. string.rep("m", len)
            local function upgrade()
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
                    .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
                    .. "13\r\n\r\n")
                assert.matches("^HTTP/1.1 101", r:readuntil("\r\n\r\n"))
                return r, w
            end
            -- warm-up: the WebSocket module is loaded on the first upgrade
            local wr, ww = upgrade()
            ww:write(string.char(0x82, 0x85) .. "\0\0\0\0hello")
            ww:drain()
            lasio.sleep(helper.t(0.2))
            local base = {mem()}
            local conns, sent = {}, 0
            for i = 1, n do
                local r, w = upgrade()
                -- six messages, as long as the server takes them
                for _ = 1, 6 do
                    w:write(frame)
                    if not pcall(lasio.wait_for, function() w:drain() end,
                        helper.t(1)) then
                        break
                    end
                    sent = sent + 1
                end
                conns[i] = {r, w}
            end
            assert.is_true(sent >= 2 * n, "the server took " .. sent)
            local last, now = -1, nil
            for _ = 1, 50 do
                lasio.sleep(0.1)
                now = {mem()}
                if now[2] == last then break end
                last = now[2]
            end
            check_growth("websockets", n, base, now, WS_HEAP, WS_RSS)
            for i = 1, n do conns[i][2]:abort() end
            ww:abort()
            assert.truthy(wr)
            stop()
        end))
end)

-- ====== }
