-- Specs for TLS (docs/API.md): ssl_context, the ssl option of
-- open_connection / start_server, server_hostname and verification (on
-- by default), ALPN, start_tls, handshake failures and timeouts. The
-- certificates are made by the `openssl` command into a temp directory.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local make_certs = require("certs").make

local function server_ctx(opts)
    local c = make_certs()
    opts = opts or {}
    opts.server = true
    opts.certfile = opts.certfile or c.cert
    opts.keyfile = opts.keyfile or c.key
    return lasio.ssl_context(opts)
end

local function client_ctx(opts)
    opts = opts or {}
    opts.cafile = opts.cafile or make_certs().ca
    return lasio.ssl_context(opts)
end

-- A TLS echo-line server; returns it and its port.
local function tls_server(sctx, opts)
    opts = opts or {}
    opts.ssl = sctx or server_ctx()
    local server = lasio.start_server(function(r, w)
        for line in r:lines() do
            w:write(line .. "\n")
            w:drain()
        end
    end, "127.0.0.1", 0, opts)
    return server, server:sockets()[1].port
end

local function handshake_error(...)
    local ok, e = pcall(lasio.open_connection, ...)
    assert.is_false(ok, "the connection should have failed")
    return e
end

describe("TLS", function()
    it("round-trips over a verified connection and reports its parameters",
        async(function()
            local server, port = tls_server(server_ctx({ alpn = { "h2", "http/1.1" } }))
            local r, w = lasio.open_connection("127.0.0.1", port,
                { ssl = client_ctx({ alpn = { "http/1.1", "spdy" } }),
                  server_hostname = "localhost" })
            w:write("hello tls\n")
            assert.are.equal("hello tls\n", r:readline())
            assert.is_false(w:can_write_eof())
            local info = w:get_extra_info("ssl_object")
            assert.matches("^TLSv1%.[23]$", info.version)
            assert.is_string(info.cipher)
            assert.is_false(info.server_side)
            assert.are.equal("http/1.1", info.alpn_protocol)
            assert.are.equal("http/1.1", w:get_extra_info("alpn_protocol"))
            local cert = w:get_extra_info("peercert")
            assert.are.equal("/CN=localhost", cert.subject)
            assert.are.equal("/CN=lasio test CA", cert.issuer)
            assert.are.same({ "DNS:localhost", "IP Address:127.0.0.1" }, cert.subjectAltName)
            assert.is_string(cert.notAfter)
            local cipher = w:get_extra_info("cipher")
            assert.are.equal(info.version, cipher[2])
            assert.is_true(cipher[3] >= 128)
            assert.matches("lasio.SSLContext<client", tostring(w:get_extra_info("sslcontext")))
            assert.are.equal("localhost", w:get_extra_info("server_hostname"))
            w:close()
            w:wait_closed()
            server:close()
        end))

    it("verifies by default: an unknown CA fails the handshake", async(function()
        local server, port = tls_server()
        local e = handshake_error("localhost", port, { ssl = true })
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("handshake", e.op)
        assert.are.equal("SSL_CERTIFICATE_VERIFY_FAILED", e.code)
        assert.matches("certificate verify failed: unable to get local issuer", e.message)
        server:close()
    end))

    it("checks the host name, or the IP address", async(function()
        local server, port = tls_server()
        local ctx = client_ctx()
        local e = handshake_error("127.0.0.1", port, { ssl = ctx, server_hostname = "other.test" })
        assert.are.equal("handshake: certificate verify failed: hostname mismatch", e.message)
        -- the host argument is the name by default: 127.0.0.1 is in the SANs
        local r, w = lasio.open_connection("127.0.0.1", port, { ssl = ctx })
        w:write("ip\n")
        assert.are.equal("ip\n", r:readline())
        w:close()
        e = handshake_error("127.0.0.1", port, { ssl = ctx, server_hostname = "127.0.0.2" })
        assert.matches("IP address mismatch", e.message)
        -- "" skips the name check but not the chain
        r, w = lasio.open_connection("127.0.0.1", port, { ssl = ctx, server_hostname = "" })
        w:write("any\n")
        assert.are.equal("any\n", r:readline())
        w:close()
        server:close()
    end))

    it("verify = false accepts a self-signed server", async(function()
        local c = make_certs()
        local server, port = tls_server(server_ctx({ certfile = c.self, keyfile = c.selfkey }))
        local e = handshake_error("localhost", port, { ssl = client_ctx() })
        assert.matches("self.signed certificate", e.message)
        local r, w = lasio.open_connection("localhost", port,
            { ssl = lasio.ssl_context({ verify = false }) })
        w:write("trusting\n")
        assert.are.equal("trusting\n", r:readline())
        w:close()
        server:close()
    end))

    it("moves a megabyte each way through partial writes and backpressure",
        async(function()
            local server, port = tls_server()
            local r, w = lasio.open_connection("127.0.0.1", port, { ssl = client_ctx() })
            local n = net.scale(1 << 20, 1 << 14) // 1024 * 1024
            local line = string.rep("x", 1023) .. "\n"
            local reader = lasio.spawn(function()
                local got = 0
                while got < n do got = got + #r:readline() end
                return got
            end)
            for _ = 1, n // 1024 do
                w:write(line)
                w:drain()
            end
            assert.are.equal(n, reader:await())
            w:close()
            server:close()
        end))

    it("a closed TLS connection reads as EOF", async(function()
        local server = lasio.start_server(function(_, w) w:write("bye") end,
            "127.0.0.1", 0, { ssl = server_ctx() })
        local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port,
            { ssl = client_ctx() })
        assert.are.equal("bye", r:read())
        assert.is_true(r:at_eof())
        local ok, e = pcall(w.write_eof, w)
        assert.is_false(ok)
        assert.matches("not supported on TLS streams", e)
        w:close()
        server:close()
    end))

    it("a client that fails its handshake is closed without a report", async(function()
        local seen = helper.capture_exceptions(function()
            local server, port = tls_server()
            -- a plain client talking to the TLS server
            local r, w = lasio.open_connection("127.0.0.1", port)
            w:write("GET / HTTP/1.0\r\n\r\n")
            local ok, data = pcall(r.read, r)
            assert.is_true(not ok or #data < 100) -- an alert at most, then EOF
            w:close()
            -- and a TLS client to a plain server that closes
            local plain = lasio.start_server(function(pr) pr:read(1) end, "127.0.0.1", 0)
            local e = handshake_error("127.0.0.1", plain:sockets()[1].port,
                { ssl = client_ctx() })
            assert.is_true(lasio.OSError:is(e))
            assert.are.equal("handshake", e.op)
            plain:close()
            lasio.sleep(0.02)
            server:close()
            server:wait_closed()
        end)
        assert.are.same({}, seen)
    end))

    it("a handshake that never ends times out and releases the socket", async(function()
        local fds0 = net.settle()
        local silent = lasio.start_server(function(r) pcall(r.read, r) end, "127.0.0.1", 0)
        local port = silent:sockets()[1].port
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local ok, e = pcall(lasio.open_connection, "127.0.0.1", port,
            { ssl = client_ctx(), ssl_handshake_timeout = 0.05 })
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.are.equal("handshake: timed out", e.message)
        assert.is_true(loop:time() - t0 < helper.t(5))
        -- the overall timeout bounds the handshake too; cancelling it
        -- releases the socket
        ok, e = pcall(lasio.open_connection, "127.0.0.1", port,
            { ssl = client_ctx(), timeout = 0.05 })
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        local t = lasio.spawn(lasio.open_connection, "127.0.0.1", port, { ssl = client_ctx() })
        lasio.sleep(0.02)
        t:cancel()
        assert.has_error(function() t:await() end)
        silent:close()
        silent:close_clients()
        assert.is_true(net.fds_back_to(fds0))
    end))

    it("start_tls upgrades an open plaintext stream (asyncio's test_start_tls)",
        async(function()
            local sctx = server_ctx()
            local server = lasio.start_server(function(r, w)
                local line = r:readline()
                w:write(line)
                w:drain()
                assert(w:get_extra_info("sslcontext") == nil)
                w:start_tls(sctx)
                assert(w:get_extra_info("sslcontext") == sctx)
                w:write(r:readline())
                w:drain()
            end, "127.0.0.1", 0)
            local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
            w:write("hello world 1!\n")
            assert.are.equal("hello world 1!\n", r:readline())
            w:start_tls(client_ctx(), { server_hostname = "localhost" })
            assert.is_string(w:get_extra_info("ssl_object").version)
            w:write("hello world 2!\n")
            assert.are.equal("hello world 2!\n", r:readline())
            assert.has_error(function() w:start_tls(client_ctx()) end)
            w:close()
            server:close()
        end))

    it("start_tls with the peer's first TLS bytes already buffered", async(function()
        -- the client sends its ClientHello right after its plaintext line;
        -- the server reads both before it upgrades
        local sctx = server_ctx()
        local server = lasio.start_server(function(r, w)
            assert(r:readline() == "STARTTLS\n")
            assert(helper.wait_until(function() return r:buffered() > 0 end))
            w:start_tls(sctx)
            w:write("secure\n")
        end, "127.0.0.1", 0)
        local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
        w:write("STARTTLS\n")
        w:start_tls(client_ctx(), { server_hostname = "localhost" })
        assert.are.equal("secure\n", r:readline())
        w:close()
        server:close()
    end))

    it("works over Unix sockets with server_hostname", async(function()
        local dir = net.tmpdir()
        local path = dir .. "/tls.sock"
        local server = lasio.start_unix_server(function(r, w) w:write(r:readline()) end, path,
            { ssl = server_ctx() })
        local ok, e = pcall(lasio.open_unix_connection, path, { ssl = client_ctx() })
        assert.is_false(ok)
        assert.matches("server_hostname is required", e)
        local r, w = lasio.open_unix_connection(path,
            { ssl = client_ctx(), server_hostname = "localhost" })
        w:write("unix tls\n")
        assert.are.equal("unix tls\n", r:readline())
        w:close()
        server:close()
        net.rmdir(dir)
    end))

    it("refuses bad contexts and options", async(function()
        local c = make_certs()
        local function msg(f, ...)
            local ok, e = pcall(f, ...)
            assert.is_false(ok)
            return tostring(e)
        end
        assert.matches("a server context needs a certfile",
            msg(lasio.ssl_context, { server = true }))
        assert.matches("cannot load certfile", msg(lasio.ssl_context,
            { server = true, certfile = c.dir .. "/missing.pem" }))
        assert.matches("cannot load keyfile .*: key values mismatch", msg(lasio.ssl_context,
            { server = true, certfile = c.cert, keyfile = c.selfkey }))
        assert.matches("cannot load the CA certificates from",
            msg(lasio.ssl_context, { cafile = c.dir .. "/missing.pem" }))
        assert.matches("alpn entries", msg(lasio.ssl_context, { alpn = { "" } }))
        assert.matches("unknown option 'verfy'", msg(lasio.ssl_context, { verfy = false }))
        assert.matches("min_version", msg(lasio.ssl_context, { min_version = "SSLv3" }))
        assert.matches("ssl must be a server SSLContext",
            msg(lasio.start_server, print, "127.0.0.1", 0, { ssl = true }))
        assert.matches("ssl is a server context",
            msg(lasio.open_connection, "127.0.0.1", 1, { ssl = server_ctx() }))
        assert.matches("option 'ssl' must be true or an SSLContext",
            msg(lasio.open_connection, "127.0.0.1", 1, { ssl = "yes" }))
        assert.matches("only meaningful with ssl",
            msg(lasio.open_connection, "127.0.0.1", 1, { server_hostname = "x" }))
        assert.matches("lasio.SSLContext<server verify=false>", tostring(server_ctx()))
    end))

    -- Startup: OpenSSL is not mapped until the first context (tls_dl.c),
    -- in the command and in stock lua5.4 loading the module; a TLS round
    -- trip then works in that same process.
    for _, interp in ipairs(helper.interps) do
        it("loads OpenSSL on the first ssl_context, not before (" .. interp .. ")",
            function()
                local c = make_certs()
                local out, err, status = helper.run_child(([[
local lasio = require "lasio"
local function mapped(name)
    local f = assert(io.open("/proc/self/maps"))
    local maps = f:read("a")
    f:close()
    return maps:find(name, 1, true) ~= nil
end
print("before", mapped("libssl"), mapped("libcrypto"))
local sctx = lasio.ssl_context({ server = true, certfile = %q, keyfile = %q })
print("after", mapped("libssl"), mapped("libcrypto"))
lasio.run(function()
    local server = lasio.start_server(function(r, w)
        w:write(r:readline() .. "\n")
        w:close()
    end, "127.0.0.1", 0, { ssl = sctx })
    local port = server:sockets()[1].port
    local r, w = lasio.open_connection("127.0.0.1", port, {
        ssl = lasio.ssl_context({ cafile = %q }),
        server_hostname = "localhost" })
    w:write("hello\n")
    io.write("echo\t", r:readline())
    w:close()
    server:close()
end)
]]):format(c.cert, c.key, c.ca), { interp = interp })
                assert.are.equal("", err)
                assert.is_true(status == 0 or status == true)
                assert.are.equal(
                    "before\tfalse\tfalse\nafter\ttrue\ttrue\necho\thello\n", out)
            end)
    end
end)
