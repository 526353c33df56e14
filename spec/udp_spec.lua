-- Specs for UDP endpoints (lasio.open_datagram, docs/API.md): send
-- and recv with addresses, connected and unconnected endpoints, errors,
-- timeouts, cancellation, closing, and no fd leak. Everything on loopback.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function bound(opts)
    opts = opts or {}
    opts.local_addr = opts.local_addr or { "127.0.0.1", 0 }
    local ep = lasio.open_datagram(opts)
    return ep, ep:get_extra_info("sockname")
end

describe("open_datagram", function()
    it("sends and receives with addresses on unconnected endpoints", async(function()
        local a, aaddr = bound()
        local b, baddr = bound()
        assert.are.equal("inet", aaddr.family)
        assert.are.equal("127.0.0.1", aaddr.addr)
        a:send("hello", { "127.0.0.1", baddr.port })
        local data, from = b:recv()
        assert.are.equal("hello", data)
        assert.are.same(aaddr, from)
        b:send("back", { from.addr, from.port })
        data, from = a:recv()
        assert.are.equal("back", data)
        assert.are.equal(baddr.port, from.port)
        -- {host=, port=} works too
        a:send("named", { host = "127.0.0.1", port = baddr.port })
        assert.are.equal("named", (b:recv()))
        a:close()
        b:close()
    end))

    it("keeps datagram boundaries, empty and large ones included", async(function()
        local a = bound()
        local b, baddr = bound()
        local to = { "127.0.0.1", baddr.port }
        local big = string.rep("0123456789", 6000)
        a:send("", to)
        a:send("x", to)
        a:send(big, to)
        assert.are.equal("", (b:recv()))
        assert.are.equal("x", (b:recv()))
        assert.are.equal(big, (b:recv()))
        a:close()
        b:close()
    end))

    it("a connected endpoint sends without an address and knows its peer", async(function()
        local srv, saddr = bound()
        local c = lasio.open_datagram({ remote_addr = { "127.0.0.1", saddr.port } })
        assert.matches("connected", tostring(c))
        assert.are.equal(saddr.port, c:get_extra_info("peername").port)
        c:send("ping")
        local data, from = srv:recv()
        assert.are.equal("ping", data)
        srv:send("pong", { from.addr, from.port })
        data, from = c:recv()
        assert.are.equal("pong", data)
        assert.are.equal(saddr.port, from.port)
        local ok, e = pcall(c.send, c, "x", { "127.0.0.1", 1 })
        assert.is_false(ok)
        assert.matches("connected: no address allowed", e)
        ok, e = pcall(srv.send, srv, "x")
        assert.is_false(ok)
        assert.matches("no address", e)
        c:close()
        srv:close()
    end))

    it("a connected endpoint gets ECONNREFUSED from a closed port", async(function()
        local gone, gaddr = bound()
        gone:close()
        local c = lasio.open_datagram({ remote_addr = { "127.0.0.1", gaddr.port } })
        c:settimeout(helper.t(5))
        local ok, e = pcall(function()
            for _ = 1, 10 do
                c:send("anyone?")
                c:recv()
            end
        end)
        assert.is_false(ok)
        assert.is_true(lasio.OSError:is(e), tostring(e))
        assert.are.equal("ECONNREFUSED", e.code)
        c:close()
    end))

    it("works over IPv6 loopback", async(function()
        if not net.has_ipv6() then return end
        local a = lasio.open_datagram({ local_addr = { "::1", 0 } })
        local b = lasio.open_datagram({ local_addr = { "::1", 0 } })
        local port = b:get_extra_info("sockname").port
        a:send("six", { "::1", port })
        local data, from = b:recv()
        assert.are.equal("six", data)
        assert.are.equal("inet6", from.family)
        local ok, e = pcall(a.send, a, "x", { "127.0.0.1", port })
        assert.is_false(ok)
        assert.matches("family", e)
        a:close()
        b:close()
    end))

    it("reuse_port lets two endpoints bind one port", async(function()
        local a = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 }, reuse_port = true })
        local port = a:get_extra_info("sockname").port
        local b = lasio.open_datagram({ local_addr = { "127.0.0.1", port }, reuse_port = true })
        assert.are.equal(port, b:get_extra_info("sockname").port)
        local ok, e = pcall(lasio.open_datagram, { local_addr = { "127.0.0.1", port } })
        assert.is_false(ok)
        assert.are.equal("EADDRINUSE", e.code)
        assert.are.equal("bind", e.op)
        a:close()
        b:close()
    end))

    it("recv waits, times out, and the endpoint stays usable", async(function()
        local a, aaddr = bound()
        local b = bound()
        a:settimeout(0.02)
        assert.are.equal(0.02, a:gettimeout())
        local ok, e = pcall(a.recv, a)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.are.equal("recv: timed out", e.message)
        a:settimeout(nil)
        local t = lasio.spawn(function() return a:recv() end)
        lasio.sleep(0.01)
        assert.is_false(t:done())
        b:send("late", { "127.0.0.1", aaddr.port })
        assert.are.equal("late", (t:await()))
        a:close()
        b:close()
    end))

    it("cancelling recv leaves no stale waiter; a second receiver is refused",
        async(function()
            local a, aaddr = bound()
            local b = bound()
            local t = lasio.spawn(function() return a:recv() end)
            lasio.sleep(0)
            local ok, e = pcall(a.recv, a)
            assert.is_false(ok)
            assert.matches("already receiving", e)
            t:cancel()
            assert.has_error(function() t:await() end)
            assert.is_true(t:cancelled())
            b:send("next", { "127.0.0.1", aaddr.port })
            assert.are.equal("next", (a:recv()))
            a:close()
            b:close()
        end))

    it("close wakes a waiting recv with an error", async(function()
        local a = bound()
        local t = lasio.spawn(function() return a:recv() end)
        lasio.sleep(0)
        a:close()
        a:close() -- idempotent
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.are.equal("recv: the endpoint is closed", e.message)
        assert.are.equal("EBADF", e.code)
        assert.is_true(a:is_closing())
        assert.has_error(function() a:send("x", { "127.0.0.1", 9 }) end)
        assert.matches("closed", tostring(a))
    end))

    it("is a to-be-closed value, and many cycles leak no fd", async(function()
        local fds0 = net.settle()
        for _ = 1, net.scale(2000, 100) do
            local a <close> = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
            local port = a:get_extra_info("sockname").port
            local b <close> = lasio.open_datagram({ remote_addr = { "127.0.0.1", port } })
            b:send("c")
            assert(a:recv() == "c")
        end
        for _ = 1, 50 do -- dropped without a close: collected
            lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
        end
        assert.is_true(net.fds_back_to(fds0))
    end))

    it("refuses bad options", async(function()
        local function msg(...)
            local ok, e = pcall(lasio.open_datagram, ...)
            assert.is_false(ok)
            return tostring(e)
        end
        assert.matches("unknown option 'local'", msg({ ["local"] = 1 }))
        assert.matches("local_addr: address must be a {host, port} table",
            msg({ local_addr = "127.0.0.1" }))
        assert.matches("port must be in 0..65535", msg({ local_addr = { "127.0.0.1", -1 } }))
        assert.matches("different families",
            msg({ local_addr = { "127.0.0.1", 0 }, remote_addr = { "::1", 9 } }))
        assert.matches("invalid option 'unix'", msg({ family = "unix" }))
        assert.matches("do not match", msg({ family = "inet6", local_addr = { "127.0.0.1", 0 } }))
        local a = bound()
        assert.has_error(function() a:send(42, { "127.0.0.1", 9 }) end)
        assert.has_error(function() a:send("x", { "127.0.0.1" }) end)
        a:close()
    end))
end)
