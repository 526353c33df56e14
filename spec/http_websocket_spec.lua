-- WebSocket over lasio.http: req:upgrade_websocket() on the server and
-- lasio.http.websocket(url) on the client, against each other; refused
-- handshakes on both sides. The framing itself is specified in
-- spec/websocket_spec.lua.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local H = require "http_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function echo_server(opts)
    return H.serve(function(req)
        local sock = req:upgrade_websocket(opts)
        while true do
            local msg, kind = sock:recv()
            if msg == nil then break end
            sock:send(msg, kind)
        end
    end)
end

describe("WebSocket over HTTP", function()
    it("echoes text and binary messages, then closes cleanly", async(function()
        local srv, port = echo_server()
        local ws = lasio.http.websocket("ws://127.0.0.1:" .. port .. "/echo")
        ws:send("hello")
        assert.are.same({"hello", "text"}, {ws:recv()})
        ws:send("\0\1\2\255", "binary")
        assert.are.same({"\0\1\2\255", "binary"}, {ws:recv()})
        local big = ("x"):rep(200000)
        ws:send(big)
        assert.are.equal(big, ws:recv())
        assert.is_number(ws:ping())
        ws:close(1000, "bye")
        assert.are.equal(1000, ws.close_code)
        srv:close()
        srv:wait_closed()
    end))

    it("a server that closes gives the client nil, code, reason", async(function()
        local srv, port = H.serve(function(req)
            local sock = req:upgrade_websocket()
            sock:close(4000, "go away")
        end)
        local ws = lasio.http.websocket("ws://127.0.0.1:" .. port .. "/")
        assert.are.same({nil, 4000, "go away"}, {ws:recv()})
        srv:close()
    end))

    it("a request that is not a WebSocket handshake is refused with 400",
        async(function()
            local err
            local srv, port = H.serve(function(req)
                local ok, e = pcall(req.upgrade_websocket, req)
                err = e
                if not ok then error(e, 0) end
            end)
            local out, closed = H.raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert.are.equal(400, H.statuses(out)[1])
            assert.is_true(closed)
            assert.is_true(lasio.HTTPError:is(err), tostring(err))
            out = H.raw(port, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
                .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
            assert.are.equal(426, H.statuses(out)[1])
            assert.matches("Sec%-WebSocket%-Version: 13\r\n", out)
            srv:close()
        end))

    it("the upgrade answer carries RFC 6455's accept value", async(function()
        local srv, port = echo_server()
        local out = H.raw(port, "GET /chat HTTP/1.1\r\nHost: x\r\n"
            .. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            .. "Sec-WebSocket-Version: 13\r\n\r\n", {until_text = "\r\n\r\n"})
        assert.are.equal("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
            .. "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
            .. "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", out)
        srv:close()
    end))

    it("the client refuses a server that does not upgrade", async(function()
        local srv, port = H.serve(function(_, res) res:finish("plain") end)
        local e = helper.raises(lasio.http.websocket,
            "ws://127.0.0.1:" .. port .. "/")
        assert.is_true(lasio.HTTPError:is(e), tostring(e))
        assert.matches("handshake refused", tostring(e))
        assert.are.equal(200, e.status)
        srv:close()
    end))

    it("a client that disconnects ends the server's socket and handler",
        async(function()
            local ended
            local srv, port = H.serve(function(req)
                local sock = req:upgrade_websocket()
                pcall(sock.recv, sock)
                ended = true
            end)
            local r, w = lasio.open_connection("127.0.0.1", port)
            w:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
                .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            r:readuntil("\r\n\r\n")
            w:abort()
            assert.is_true(helper.wait_until(function() return ended end))
            srv:close()
            srv:wait_closed()
        end))
end)

describe("WebSocket after the upgrade", function()
    local UPGRADE = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
        .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    for _, how in ipairs({"close", "abort"}) do
        it("a client dropped without a close frame (" .. how .. ") ends recv"
            .. " with 1006; the handler is not cancelled", async(function()
                local result, cancelled, after
                local srv, port = H.serve(function(req)
                    local sock = req:upgrade_websocket()
                    local ok, e = pcall(sock.recv, sock)
                    cancelled = not ok and lasio.CancelledError:is(e)
                    result = {ok = ok, err = e, code = sock.close_code,
                        closed = sock.closed}
                    -- still running, not cancelled: it may await more
                    lasio.sleep(0.01)
                    after = true
                end)
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(UPGRADE)
                r:readuntil("\r\n\r\n")
                lasio.sleep(0.05) -- the handler waits in recv
                w[how](w)
                assert.is_true(helper.wait_until(function() return after end))
                assert.is_false(cancelled, tostring(result.err))
                assert.is_false(result.ok)
                assert.are.equal(1006, result.err.code, tostring(result.err))
                assert.are.equal(1006, result.code)
                assert.is_true(result.closed)
                srv:close()
                srv:wait_closed()
            end))
    end

    it("a dropped client's 1006 escaping the handler is not reported",
        async(function()
            local seen = helper.capture_exceptions(function()
                local done, failed
                local srv, port = H.serve(function(req)
                    local sock = req:upgrade_websocket()
                    local ok, e = pcall(sock.recv, sock)
                    failed, done = not ok and e, true
                    if not ok then error(e, 0) end
                end)
                local r, w = lasio.open_connection("127.0.0.1", port)
                w:write(UPGRADE)
                r:readuntil("\r\n\r\n")
                w:close()
                assert.is_true(helper.wait_until(function() return done end))
                assert.are.equal(1006, failed and failed.code, tostring(failed))
                lasio.sleep(0.05)
                srv:close()
                srv:wait_closed()
            end)
            assert.are.equal(0, #seen, seen[1] and tostring(seen[1].exception))
        end))
end)

describe("WebSocket subprotocols", function()
    it("the server picks the first of its protocols the client offered",
        async(function()
            local server_sock
            local srv, port = H.serve(function(req)
                server_sock = req:upgrade_websocket({protocols = {"v2", "v1"}})
                server_sock:recv()
            end)
            local url = "ws://127.0.0.1:" .. port .. "/"
            local ws = lasio.http.websocket(url, {protocols = {"v1", "v2"}})
            assert.are.equal("v2", ws.protocol)
            assert.is_true(helper.wait_until(function() return server_sock ~= nil end))
            assert.are.equal("v2", server_sock.protocol)
            ws:close()
            -- nothing in common: no protocol, the connection still opens
            local ws2 = lasio.http.websocket(url, {protocols = {"v9"}})
            assert.is_nil(ws2.protocol)
            ws2:close()
            srv:close()
        end))

    it("the client refuses a protocol it did not offer", async(function()
        local accept = require("lasio.websocket").accept_key
        local server = lasio.start_server(function(r, w)
            local head = r:readuntil("\r\n\r\n")
            local key = head:match("[Ss]ec%-[Ww]eb[Ss]ocket%-[Kk]ey: ([^\r]+)")
            w:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                .. "Connection: Upgrade\r\nSec-WebSocket-Accept: " .. accept(key)
                .. "\r\nSec-WebSocket-Protocol: evil\r\n\r\n")
            pcall(r.read, r)
        end, "127.0.0.1", 0)
        local e = helper.raises(lasio.http.websocket,
            "ws://127.0.0.1:" .. server:sockets()[1].port .. "/",
            {protocols = {"good"}})
        assert.is_true(lasio.HTTPError:is(e), tostring(e))
        assert.matches("subprotocol 'evil', which was not offered", tostring(e))
        server:close()
    end))
end)
