-- Interoperability of TLS (src/net/tls.c) with OpenSSL's own tools: the
-- lasio server against `openssl s_client` (the chain verified by the
-- client, data both ways, a client that does not trust the server), and
-- the lasio client against `openssl s_server -rev` (data both ways, ALPN,
-- the peer certificate, and the verification failures: an untrusted
-- certificate, a host name that does not match).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local I = require "interop_helper"
local lasio = require "lasio"

local async = helper.async_guarded

describe("TLS interoperability with openssl", function()
    it("openssl s_client verifies the lasio server and exchanges data",
        async(function()
        local c = require("certs").make()
        local ctx = lasio.ssl_context{server = true, certfile = c.cert,
            keyfile = c.key}
        local srv <close> = lasio.start_server(function(reader, writer)
            writer:write("pong: " .. reader:readline())
        end, "127.0.0.1", 0, {ssl = ctx})
        local port = srv:sockets()[1].port
        local function s_client(cafile)
            return I.run("openssl", {"s_client", "-connect",
                "127.0.0.1:" .. port, "-servername", "localhost", "-CAfile",
                cafile, "-verify_hostname", "localhost",
                "-verify_return_error", "-ign_eof"}, "ping\n")
        end
        local out, err, status = s_client(c.ca)
        assert.are.equal(0, status, err)
        assert.matches("\npong: ping\n", out)
        assert.matches("Verify return code: 0 %(ok%)", out)
        assert.matches("TLSv1%.3", out)
        assert.matches("subject=CN ?= ?localhost", out)
        -- a client that trusts another CA refuses the handshake
        out, err, status = s_client(c.self)
        assert.are_not.equal(0, status)
        assert.matches("unable to get local issuer certificate", out .. err)
        assert.is_nil((out .. err):find("pong", 1, true))
        -- and the server goes on serving
        out, err, status = s_client(c.ca)
        assert.are.equal(0, status, err)
        assert.matches("\npong: ping\n", out)
    end))

    it("the lasio client talks to openssl s_server and checks its "
        .. "certificate", async(function()
        local c = require("certs").make()
        local function s_server(cert, key)
            return I.start("openssl", {"s_server", "-accept", "127.0.0.1:0",
                "-cert", cert, "-key", key, "-naccept", "1", "-rev", "-alpn",
                "h2,http/1.1"}, "^ACCEPT .*:(%d+)$")
        end
        local p, port = s_server(c.cert, c.key)
        local ok, e = pcall(function()
            local r, w = lasio.open_connection("127.0.0.1", tonumber(port), {
                ssl = lasio.ssl_context{cafile = c.ca, alpn = {"http/1.1"}},
                server_hostname = "localhost", timeout = helper.t(10)})
            assert.are.equal("http/1.1", w:get_extra_info("alpn_protocol"))
            local cert = w:get_extra_info("peercert")
            assert.matches("CN ?= ?localhost", cert.subject)
            assert.matches("lasio test CA", cert.issuer)
            w:write("hello lasio\n")
            r:settimeout(helper.t(10))
            assert.are.equal("oisal olleh\n", r:readline())
            w:close()
        end)
        I.stop(p)
        assert(ok, e)
        -- a certificate its CA file does not vouch for
        p, port = s_server(c.self, c.selfkey)
        local ok2, e2 = pcall(lasio.open_connection, "127.0.0.1",
            tonumber(port), {ssl = lasio.ssl_context{cafile = c.ca},
            server_hostname = "localhost", timeout = helper.t(10)})
        I.stop(p)
        assert.is_false(ok2)
        assert.are.equal("SSL_CERTIFICATE_VERIFY_FAILED", e2.code,
            tostring(e2))
        assert.are.equal("handshake", e2.op)
        -- the right CA, but another name
        p, port = s_server(c.cert, c.key)
        ok2, e2 = pcall(lasio.open_connection, "127.0.0.1", tonumber(port),
            {ssl = lasio.ssl_context{cafile = c.ca},
            server_hostname = "example.com", timeout = helper.t(10)})
        I.stop(p)
        assert.is_false(ok2)
        assert.are.equal("SSL_CERTIFICATE_VERIFY_FAILED", e2.code)
        assert.matches("hostname mismatch", e2.message)
    end))
end)
