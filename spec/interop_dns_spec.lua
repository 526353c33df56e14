-- Interoperability of the resolver (src/net/dns.c on evdns, and the TCP
-- retry of src/net/dnstcp.c) with dnsmasq: dnsmasq runs unprivileged on a
-- free port of 127.0.0.1 with a hosts file of its own and no upstream,
-- authoritative for .test, and lasio's resolver is pointed at it with
-- dns_configure. A name with 60 addresses gets a truncated UDP reply
-- (more than 512 bytes), which lasio asks again over TCP.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local I = require "interop_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function addrs(list)
    local out = {}
    for i, a in ipairs(list) do out[i] = a.addr end
    table.sort(out)
    return out
end

describe("DNS interoperability with dnsmasq", function()
    it("resolves dnsmasq's names over UDP, and over TCP when truncated",
        async(function()
        local dir = net.tmpdir()
        local hosts = {"10.1.2.3 alpha.test", "10.1.2.4 alpha.test",
            "fd00::5 beta.test", "127.0.0.1 self.test"}
        for i = 1, 60 do hosts[#hosts + 1] = "10.9.0." .. i .. " many.test" end
        local f = assert(io.open(dir .. "/hosts", "w"))
        f:write(table.concat(hosts, "\n"), "\n")
        f:close()
        local user = io.popen("id -un"):read("l")
        local port = I.free_port()
        local p = I.start("dnsmasq", {"--no-daemon", "--port=" .. port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
            "--no-hosts", "--addn-hosts=" .. dir .. "/hosts",
            "--local=/test/", "--pid-file=", "--user=" .. user,
            "--log-facility=-"}, "read .*hosts %- (%d+) names",
            {stderr = lasio.STDOUT})
        local ok, e = pcall(function()
            lasio.dns_configure{nameservers = {"127.0.0.1:" .. port},
                hosts = false, timeout = helper.t(2), attempts = 3}
            assert.are.same({"10.1.2.3", "10.1.2.4"},
                addrs(lasio.getaddrinfo("alpha.test", 80, {family = "inet"})))
            assert.are.same({"10.1.2.3", "10.1.2.4"},
                addrs(lasio.getaddrinfo("ALPHA.Test", 80)))
            local six = lasio.getaddrinfo("beta.test", 443)
            assert.are.equal(1, #six)
            assert.are.equal("inet6", six[1].family)
            assert.are.equal("fd00::5", six[1].addr)
            assert.are.equal(443, six[1].port)
            local bad = select(2, pcall(lasio.getaddrinfo, "missing.test", 80))
            assert.is_true(lasio.OSError:is(bad), tostring(bad))
            assert.are.equal("EAI_NONAME", bad.code)
            -- 60 addresses: the UDP reply is cut at 512 bytes (30 of
            -- them at most); over TCP all come, and lasio keeps 32
            local many = addrs(lasio.getaddrinfo("many.test", 80,
                {family = "inet"}))
            assert.are.equal(32, #many)
            for _, a in ipairs(many) do assert.matches("^10%.9%.0%.%d+$", a) end
            -- a connection to a name dnsmasq resolves
            local srv <close> = lasio.start_server(function(_, w)
                w:write("via dnsmasq")
            end, "127.0.0.1", 0)
            local r, w = lasio.open_connection("self.test",
                srv:sockets()[1].port)
            assert.are.equal("via dnsmasq", r:read())
            w:close()
        end)
        lasio.dns_configure{} -- the system's resolver again
        I.stop(p)
        net.rmdir(dir)
        assert(ok, e)
    end))
end)
