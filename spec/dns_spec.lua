-- Specs for DNS (docs/API.md): getaddrinfo, getnameinfo and
-- dns_configure on evdns, against a fake DNS server on a local UDP socket
-- (spec/fake_dns.lua, written with lasio). Covers D1-D4 and
-- L6's DNS part; names resolved by open_connection, start_server and
-- open_datagram. No test depends on the outside network.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local dns = require "fake_dns"
local lasio = require "lasio"

local async = helper.async_guarded

-- Starts a fake server and points the running loop's resolver at it
-- (no hosts file unless given, short timeouts).
local function setup(handler, records, cfg, tcp_handler)
    local srv = dns.start(handler, records, tcp_handler)
    cfg = cfg or {}
    cfg.nameservers = cfg.nameservers or { srv.nameserver }
    if cfg.hosts == nil then cfg.hosts = false end
    cfg.timeout = cfg.timeout or 0.3
    cfg.attempts = cfg.attempts or 2
    lasio.dns_configure(cfg)
    return srv
end

local function addrs(list)
    local out = {}
    for _, a in ipairs(list) do out[#out + 1] = a.family .. " " .. a.addr .. " " .. a.port end
    return out
end

local function gai_error(...)
    local ok, e = pcall(lasio.getaddrinfo, ...)
    assert.is_false(ok, "getaddrinfo did not fail")
    return e
end

describe("getaddrinfo", function()
    it("resolves A and AAAA records through the configured nameserver", async(function()
        local srv = setup(nil, { ["www.example.test"] = { "10.1.2.3", "10.1.2.4", "fe80::1" } })
        assert.are.same({ "inet 10.1.2.3 80", "inet 10.1.2.4 80", "inet6 fe80::1 80" },
            addrs(lasio.getaddrinfo("www.example.test", 80)))
        assert.are.same({ "inet 10.1.2.3 443", "inet 10.1.2.4 443" },
            addrs(lasio.getaddrinfo("www.example.test", 443, { family = "inet" })))
        assert.are.same({ "inet6 fe80::1 0" },
            addrs(lasio.getaddrinfo("WWW.Example.Test.", nil, { family = "inet6" })))
        -- a service name, as getaddrinfo takes one
        assert.are.same({ "inet 10.1.2.3 80" },
            { addrs(lasio.getaddrinfo("www.example.test", "http", { family = "inet" }))[1] })
        -- queries go out in 0x20 mixed case
        local mixed = false
        for _, q in ipairs(srv.queries) do
            if q.name ~= q.name:lower() and q.name ~= q.name:upper() then mixed = true end
        end
        assert.is_true(mixed)
        srv.close()
    end))

    it("answers numeric addresses, localhost and the hosts file without the DNS",
        async(function()
            local dir = net.tmpdir()
            local hosts = dir .. "/hosts"
            local f = assert(io.open(hosts, "w"))
            f:write("# comment\n10.9.9.9  Box.Local box  # trailing\n::2 box\n\n",
                "bad-address nothing\n127.0.0.5 five\n")
            f:close()
            local srv = setup(nil, {}, { hosts = hosts })
            assert.are.same({ "inet 10.0.0.1 5" }, addrs(lasio.getaddrinfo("10.0.0.1", 5)))
            assert.are.same({ "inet6 ::1 5" }, addrs(lasio.getaddrinfo("::1", 5)))
            assert.are.same({ "inet 127.0.0.1 7", "inet6 ::1 7" },
                addrs(lasio.getaddrinfo("localhost", 7)))
            assert.are.same({ "inet 127.0.0.1 7" },
                addrs(lasio.getaddrinfo("a.localhost", 7, { family = "inet" })))
            assert.are.same({ "inet 10.9.9.9 1", "inet6 ::2 1" },
                addrs(lasio.getaddrinfo("BOX", 1)))
            assert.are.same({ "inet 10.9.9.9 1" }, addrs(lasio.getaddrinfo("box.local", 1)))
            assert.are.equal(0, #srv.queries)
            -- a numeric address of the other family
            local e = gai_error("10.0.0.1", 1, { family = "inet6" })
            assert.are.equal("EAI_FAMILY", e.code)
            srv.close()
            net.rmdir(dir)
        end))

    it("a name that does not exist is EAI_NONAME", async(function()
        local srv = setup(nil, {})
        local e = gai_error("nope.example.test", 80)
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("EAI_NONAME", e.code)
        assert.are.equal(-2, e.errno)
        assert.are.equal("getaddrinfo", e.op)
        assert.are.equal("getaddrinfo: Name or service not known (nope.example.test)", e.message)
        srv.close()
    end))

    it("a name without addresses is EAI_NODATA; a refusing server EAI_FAIL", async(function()
        local srv = setup(function(q)
            if q.name:lower() == "empty.test" then return dns.answer(q, {}) end
            return dns.error(q, 5)
        end)
        assert.are.equal("EAI_NODATA", gai_error("empty.test", 1).code)
        assert.are.equal("EAI_FAIL", gai_error("refused.test", 1).code)
        srv.close()
    end))

    -- covers D3
    it("a silent nameserver fails after timeout x attempts", async(function()
        local srv = setup(function() return nil end, nil, { timeout = 0.2, attempts = 2 })
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local e = gai_error("silent.test", 1, { family = "inet" })
        local dt = loop:time() - t0
        assert.are.equal("EAI_AGAIN", e.code)
        assert.is_true(dt >= 0.35, dt)
        assert.is_true(dt < helper.t(5), dt)
        assert.is_true(#srv.queries >= 2) -- retried
        srv.close()
    end))

    it("the timeout option raises TimeoutError and the late answer is harmless",
        async(function()
            local held = {}
            local srv = setup(function(q, _, from) held[#held + 1] = { q, from } end, nil,
                { timeout = 5 })
            local ok, e = pcall(lasio.getaddrinfo, "slow.test", 1, { timeout = 0.05 })
            assert.is_false(ok)
            assert.is_true(lasio.TimeoutError:is(e))
            assert.are.equal("getaddrinfo: timed out", e.message)
            -- answer now: the orphaned query takes it and goes away
            assert.is_true(#held > 0)
            for _, h in ipairs(held) do srv.send(dns.answer(h[1], { "10.0.0.1" }), h[2]) end
            lasio.sleep(0.05)
            srv.close()
        end))

    -- covers D3
    it("cancelling a lookup in flight raises CancelledError once", async(function()
        local srv = setup(function() return nil end, nil, { timeout = 5 })
        local raised = 0
        local t = lasio.spawn(function()
            local ok, e = pcall(lasio.getaddrinfo, "cancel.test", 1)
            if not ok and lasio.CancelledError:is(e) then raised = raised + 1 end
            error(e, 0)
        end)
        lasio.sleep(0.02)
        t:cancel()
        assert.has_error(function() t:await() end)
        assert.is_true(t:cancelled())
        assert.are.equal(1, raised)
        srv.close()
    end))

    -- covers D3
    it("reconfiguring with 1000 lookups pending fails each exactly once", async(function()
        local srv = setup(function() return nil end, nil, { timeout = 5, max_inflight = 2000 })
        local n = net.scale(1000, 100)
        local outcomes = {}
        local tasks = {}
        for i = 1, n do
            tasks[i] = lasio.spawn(function()
                local ok, e = pcall(lasio.getaddrinfo, "q" .. i .. ".test", 1,
                    { family = "inet" })
                outcomes[i] = (outcomes[i] or 0) + 1
                return ok, e
            end)
        end
        lasio.sleep(0.05)
        lasio.dns_configure({ nameservers = { srv.nameserver }, hosts = false })
        for i = 1, n do
            local ok, e = tasks[i]:await()
            assert.is_false(ok)
            assert.are.equal("EAI_AGAIN", e.code)
        end
        for i = 1, n do assert.are.equal(1, outcomes[i]) end
        srv.close()
    end))

    -- covers D1
    for _, kind in ipairs({ "pointer_loop", "pointer_past_end", "long_label", "long_name",
        "rdlength_past_end", "question_past_end", "odd_rdlength" }) do
        it("a malformed reply (" .. kind .. ") fails the query", async(function()
            local srv = setup(function(q) return dns.malformed(q, kind) end)
            -- (a length byte over 63 has its top bits set: evdns reads it
            -- as a compression pointer, and finds no answer there)
            local e = gai_error("bad.test", 1, { family = "inet" })
            assert.is_true(lasio.OSError:is(e), tostring(e))
            assert.is_truthy(e.code == "EAI_FAIL" or e.code == "EAI_AGAIN"
                or e.code == "EAI_NODATA", e.code)
            srv.close()
        end))
    end

    -- covers D1: a header too short to parse is dropped: the query times out
    it("a reply too short for a header is ignored", async(function()
        local srv = setup(function(q) return dns.malformed(q, "short_header") end, nil,
            { timeout = 0.1, attempts = 1 })
        assert.are.equal("EAI_AGAIN", gai_error("short.test", 1, { family = "inet" }).code)
        srv.close()
    end))

    -- covers D2
    it("a reply with a wrong ID is ignored; the right one is taken", async(function()
        local srv = setup(function(q)
            return {
                dns.answer(q, { "10.6.6.6" }, { id = (q.id + 1) % 65536 }),
                dns.answer(q, { "10.1.1.1" }),
            }
        end)
        assert.are.same({ "inet 10.1.1.1 1" },
            addrs(lasio.getaddrinfo("id.test", 1, { family = "inet" })))
        srv.close()
    end))

    -- covers D2
    -- (evdns 2.1 compares the source address, not the port: see
    -- docs/API.md)
    it("a reply from another address is ignored", async(function()
        local other = lasio.open_datagram({ local_addr = { "127.0.0.2", 0 } })
        local srv = setup(function(q, _, from)
            -- the spoofer answers first, from its own port
            other:send(dns.answer(q, { "10.6.6.6" }), { from.addr, from.port })
            return nil
        end, nil, { timeout = 0.1, attempts = 1 })
        assert.are.equal("EAI_AGAIN", gai_error("spoof.test", 1, { family = "inet" }).code)
        other:close()
        srv.close()
    end))

    -- covers D2 (see docs/API.md: evdns 2.1 compares the question's case
    -- insensitively while it randomises it, so a differently cased
    -- question is taken; with randomize_case = false it must match)
    it("a reply whose question differs in case is refused when case is exact",
        async(function()
            local srv = setup(function(q)
                local flipped = q.question:gsub("%a", function(c)
                    return c == c:lower() and c:upper() or c:lower()
                end)
                return dns.answer(q, { "10.6.6.6" }, { question = flipped })
            end, nil, { randomize_case = false })
            local e = gai_error("case.test", 1, { family = "inet" })
            assert.is_true(lasio.OSError:is(e))
            srv.close()
        end))

    -- covers D2: the documented limits of evdns 2.1.12 (docs/API.md); if
    -- a libevent upgrade closes them, this spec and the docs change
    it("takes a reply from the nameserver's address and another port, and "
        .. "a question in other case while randomising", async(function()
            local other = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
            local srv = setup(function(q, _, from)
                other:send(dns.answer(q, { "10.6.6.6" }), { from.addr, from.port })
            end, nil, { timeout = 0.2, attempts = 1 })
            assert.are.same({ "inet 10.6.6.6 1" },
                addrs(lasio.getaddrinfo("port.test", 1, { family = "inet" })))
            other:close()
            srv.close()
            srv = setup(function(q)
                return dns.answer(q, { "10.6.6.7" }, { question = q.question:lower() })
            end)
            assert.are.same({ "inet 10.6.6.7 1" },
                addrs(lasio.getaddrinfo("CASE.test", 1, { family = "inet" })))
            srv.close()
        end))

    -- covers D4
    it("refuses empty, NUL-containing and oversized host names", async(function()
        local function msg(h)
            local ok, e = pcall(lasio.getaddrinfo, h, 1)
            assert.is_false(ok)
            return tostring(e)
        end
        assert.matches("empty host name", msg(""))
        assert.matches("NUL byte", msg("a\0b.test"))
        assert.matches("too long", msg(string.rep("a.", 130)))
        assert.matches("longer than 63", msg(string.rep("a", 64) .. ".test"))
        assert.matches("empty label", msg("a..b"))
        assert.matches("host must be a string", msg(nil))
        assert.matches("unknown option 'famly'",
            select(2, pcall(lasio.getaddrinfo, "x.test", 1, { famly = "inet" })))
        assert.matches("family must be",
            select(2, pcall(lasio.getaddrinfo, "x.test", 1, { family = "unix" })))
        local e = gai_error("localhost", "no-such-service")
        assert.are.equal("EAI_SERVICE", e.code)
    end))

    it("search domains apply to short names", async(function()
        local srv = setup(nil, { ["db.corp.test"] = { "10.3.3.3" } },
            { search = { "corp.test" }, ndots = 1 })
        assert.are.same({ "inet 10.3.3.3 5" },
            addrs(lasio.getaddrinfo("db", 5, { family = "inet" })))
        assert.are.equal("db.corp.test", srv.queries[1].name:lower())
        srv.close()
    end))
end)

describe("getnameinfo", function()
    it("finds a PTR name, a hosts name, or gives the number", async(function()
        local dir = net.tmpdir()
        local hosts = dir .. "/hosts"
        local f = assert(io.open(hosts, "w"))
        f:write("10.9.9.9 box.local box\n")
        f:close()
        local srv = setup(function(q)
            if q.qtype == dns.PTR and q.name:lower() == "4.3.2.1.in-addr.arpa" then
                return dns.answer(q, { "ptr.example.test" })
            end
            return dns.error(q, 3)
        end, nil, { hosts = hosts })
        assert.are.same({ "ptr.example.test", "http" }, { lasio.getnameinfo("1.2.3.4", 80) })
        assert.are.same({ "box.local", "22" },
            { lasio.getnameinfo("10.9.9.9", 22, { numericserv = true }) })
        assert.are.same({ "10.0.0.9", "ssh" },
            { lasio.getnameinfo({ family = "inet", addr = "10.0.0.9", port = 22 }) })
        assert.are.same({ "1.2.3.4", "http" },
            { lasio.getnameinfo("1.2.3.4", 80, { numerichost = true }) })
        local ok, e = pcall(lasio.getnameinfo, "10.0.0.9", 1, { namereqd = true })
        assert.is_false(ok)
        assert.are.equal("EAI_NONAME", e.code)
        assert.has_error(function() lasio.getnameinfo("not-an-address", 1) end)
        srv.close()
        net.rmdir(dir)
    end))
end)

describe("resolving in the network calls", function()
    it("open_connection resolves a name and tries its addresses in turn",
        async(function()
            local server = lasio.start_server(function(_, w) w:write("hi") end,
                "127.0.0.1", 0)
            local port = server:sockets()[1].port
            -- 127.0.0.3 refuses, 127.0.0.1 answers
            local srv = setup(nil, { ["svc.test"] = { "127.0.0.3", "127.0.0.1" } })
            local r, w = lasio.open_connection("svc.test", port)
            assert.are.equal("hi", r:readexactly(2))
            assert.are.equal("127.0.0.1", w:get_extra_info("peername").addr)
            w:close()
            local ok, e = pcall(lasio.open_connection, "missing.test", port)
            assert.is_false(ok)
            assert.are.equal("EAI_NONAME", e.code)
            -- the whole open shares one timeout
            local slow = setup(function() return nil end, nil, { timeout = 5 })
            ok, e = pcall(lasio.open_connection, "slow.test", port, { timeout = 0.05 })
            assert.is_false(ok)
            assert.is_true(lasio.TimeoutError:is(e))
            server:close()
            srv.close()
            slow.close()
        end))

    it("start_server and open_datagram resolve names", async(function()
        local srv = setup(nil, { ["here.test"] = { "127.0.0.1" } })
        local server = lasio.start_server(function(_, w) w:write("ok") end, "here.test", 0)
        local s = server:sockets()
        assert.are.equal(1, #s)
        assert.are.equal("127.0.0.1", s[1].addr)
        local r, w = lasio.open_connection("127.0.0.1", s[1].port)
        assert.are.equal("ok", r:readexactly(2))
        w:close()
        server:close()
        local a = lasio.open_datagram({ local_addr = { "here.test", 0 } })
        local port = a:get_extra_info("sockname").port
        local b = lasio.open_datagram({ remote_addr = { "here.test", port } })
        b:send("dgram")
        assert.are.equal("dgram", (a:recv()))
        a:close()
        b:close()
        srv.close()
    end))

    -- covers L6 (DNS part)
    it("a client that aborts while its handler awaits a lookup releases it",
        async(function()
            local srv = setup(function() return nil end, nil, { timeout = 5 })
            local outcome = lasio.Future()
            local front = lasio.start_server(function(r)
                local look = lasio.spawn(lasio.getaddrinfo, "slow.test", 1)
                local watch = lasio.spawn(function()
                    pcall(r.read, r, 1)
                    look:cancel("client left")
                end)
                local ok, e = pcall(look.await, look)
                watch:cancel()
                outcome:set_result(ok, e)
            end, "127.0.0.1", 0)
            local _, w = lasio.open_connection("127.0.0.1", front:sockets()[1].port)
            lasio.sleep(0.02)
            w:close()
            local ok, e = outcome:await()
            assert.is_false(ok)
            assert.is_true(lasio.CancelledError:is(e))
            front:close()
            srv.close()
        end))
end)

describe("open_connection by name (happy eyeballs)", function()
    -- A server on 127.0.0.2 whose accept queue is full: connects to it
    -- hang (the way the connect-timeout spec of stream_spec blackholes),
    -- and a working server on 127.0.0.1 at the same port. Returns the
    -- port and a function that undoes it all.
    local function blackholed_and_good()
        local hold = lasio.Future()
        local busy, good, port
        for _ = 1, 20 do
            busy = lasio.start_server(function() hold:await() end, "127.0.0.2", 0,
                { backlog = 0, max_connections = 1 })
            port = busy:sockets()[1].port
            local ok, s = pcall(lasio.start_server, function(_, w) w:write("hi") end,
                "127.0.0.1", port)
            if ok then
                good = s
                break
            end
            busy:close()
        end
        assert(good, "no port free on both addresses")
        local writers = {}
        while true do -- fill the accept queue until a connect hangs
            local ok, _, w = pcall(lasio.open_connection, "127.0.0.2", port,
                { timeout = 0.1 })
            if not ok then break end
            writers[#writers + 1] = w
        end
        return port, function()
            hold:set_result()
            for _, w in ipairs(writers) do w:close() end
            busy:close()
            good:close()
            busy:wait_closed()
            good:wait_closed()
        end
    end

    -- Resolves name once, so that the resolver's own sockets exist, and
    -- returns the fd count then.
    local function resolver_ready(name)
        lasio.getaddrinfo(name, 1)
        return net.settle()
    end

    local function open_times_out(...)
        local ok, e = pcall(lasio.open_connection, ...)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e), tostring(e))
    end

    it("starts the next address after happy_eyeballs_delay; the first to connect wins",
        async(function()
            local srv = setup(nil, { ["he.test"] = { "127.0.0.2", "127.0.0.1" } })
            local fds0 = resolver_ready("he.test")
            local port, undo = blackholed_and_good()
            local loop = lasio.get_running_loop()
            local t0 = loop:time()
            local r, w = lasio.open_connection("he.test", port, { happy_eyeballs_delay = 0.1 })
            local dt = loop:time() - t0
            assert.are.equal("hi", r:readexactly(2))
            assert.are.equal("127.0.0.1", w:get_extra_info("peername").addr)
            assert.is_true(dt >= 0.09 and dt < helper.t(2), dt)
            w:close()
            w:wait_closed()
            -- the default delay (250 ms)
            t0 = loop:time()
            r, w = lasio.open_connection("he.test", port)
            dt = loop:time() - t0
            assert.are.equal("hi", r:readexactly(2))
            assert.are.equal("127.0.0.1", w:get_extra_info("peername").addr)
            assert.is_true(dt >= 0.24 and dt < helper.t(2), dt)
            w:close()
            w:wait_closed()
            -- false: one attempt at a time, so the blackholed one holds
            -- the whole timeout
            open_times_out("he.test", port, { happy_eyeballs_delay = false, timeout = 0.3 })
            undo()
            -- the losing attempts' sockets were closed
            assert.is_true(net.fds_back_to(fds0))
            srv.close()
        end))

    it("a timeout or a cancellation with every attempt pending releases them all",
        async(function()
            -- 127.0.0.2 twice: both attempts hang
            local srv = setup(nil, { ["hang.test"] = { "127.0.0.2", "127.0.0.2" } })
            local fds0 = resolver_ready("hang.test")
            local port, undo = blackholed_and_good()
            local fds1 = net.fds()
            open_times_out("hang.test", port, { happy_eyeballs_delay = 0.05, timeout = 0.3 })
            assert.is_true(net.fds_back_to(fds1))
            local t = lasio.spawn(lasio.open_connection, "hang.test", port,
                { happy_eyeballs_delay = 0.01 })
            assert.is_true(helper.wait_until(function() return net.fds() >= fds1 + 2 end))
            t:cancel()
            assert.has_error(function() t:await() end)
            assert.is_true(t:cancelled())
            assert.is_true(net.fds_back_to(fds1))
            undo()
            assert.is_true(net.fds_back_to(fds0))
            srv.close()
        end))

    it("reports the one error when every attempt failed the same way", async(function()
        local srv = setup(nil, { ["refused.test"] = { "127.0.0.3", "127.0.0.4" } })
        local ok, e = pcall(lasio.open_connection, "refused.test", 1)
        assert.is_false(ok)
        assert.are.equal("ECONNREFUSED", e.code)
        assert.are.equal("connect: Connection refused (while connecting to "
            .. "127.0.0.3:1, 127.0.0.4:1)", e.message)
        assert.are.equal(2, #e.errors)
        srv.close()
    end))

    it("lists the errors when the attempts failed differently, families interleaved",
        async(function()
            -- fe80::1 without a scope cannot be connected to at all
            local srv = setup(nil,
                { ["mixed.test"] = { "127.0.0.3", "127.0.0.4", "fe80::1" } })
            local ok, e = pcall(lasio.open_connection, "mixed.test", 1)
            assert.is_false(ok)
            assert.is_true(lasio.OSError:is(e), tostring(e))
            assert.are.equal(3, #e.errors)
            assert.are.equal("127.0.0.3", e.errors[1].address.addr)
            assert.are.equal("fe80::1", e.errors[2].address.addr) -- interleaved
            assert.are.equal("127.0.0.4", e.errors[3].address.addr)
            assert.are.equal("ECONNREFUSED", e.errors[1].code)
            assert.are.equal("connect", e.op)
            assert.is_nil(e.code)
            assert.matches("open_connection: all 3 attempts failed: connect: "
                .. "Connection refused (while connecting to 127.0.0.3:1); connect: ",
                e.message, 1, true)
            assert.matches("(while connecting to [fe80::1]:1)", e.message, 1, true)
            srv.close()
        end))

    it("refuses a bad happy_eyeballs_delay", async(function()
        for _, v in ipairs({ -1, "x", true }) do
            local ok, e = pcall(lasio.open_connection, "x.test", 1,
                { happy_eyeballs_delay = v })
            assert.is_false(ok)
            assert.matches("happy_eyeballs_delay must be a number >= 0 or false",
                tostring(e))
        end
    end))
end)

describe("dns_configure", function()
    it("refuses bad settings", async(function()
        local function msg(cfg)
            local ok, e = pcall(lasio.dns_configure, cfg)
            assert.is_false(ok)
            return tostring(e)
        end
        assert.matches("bad nameserver 'not an address'",
            msg({ nameservers = { "not an address" } }))
        assert.matches("must be a table of strings", msg({ nameservers = "1.2.3.4" }))
        assert.matches("timeout must be a number > 0", msg({ timeout = 0 }))
        assert.matches("option 'attempts' must be >= 1", msg({ attempts = 0 }))
        assert.matches("unknown option 'nameserver'", msg({ nameserver = {} }))
        assert.matches("hosts must be a boolean or a file name", msg({ hosts = 1 }))
        -- no nameserver at all: names fail at once
        lasio.dns_configure({ nameservers = {}, hosts = false })
        local e = gai_error("any.test", 1)
        assert.are.equal("EAI_FAIL", e.code)
        assert.matches("no nameserver", e.message)
    end))

    -- covers G4 (DNS part)
    it("closing with lookups in flight leaks nothing", function()
        local code = [[
package.path = "spec/?.lua;" .. package.path
local lasio = require "lasio"
local dns = require "fake_dns"
local srv = dns.start(function() return nil end)
lasio.dns_configure({ nameservers = { srv.nameserver }, hosts = false, timeout = 5 })
for i = 1, 20 do lasio.spawn(lasio.getaddrinfo, "pending" .. i .. ".test", 1) end
local t = lasio.spawn(lasio.getaddrinfo, "gone.test", 1, { timeout = 0.01 })
lasio.sleep(0.05)
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

describe("evdns's log lines", function()
    -- a spoofed reply makes evdns warn ("Address mismatch"), a silent
    -- server makes it log the failed nameserver, a bad address warns
    local code = [[
package.path = "spec/?.lua;" .. package.path
local lasio = require "lasio"
local dns = require "fake_dns"
lasio.get_running_loop():set_debug(arg[1] == "debug")
local other = lasio.open_datagram({ local_addr = { "127.0.0.2", 0 } })
local srv = dns.start(function(q, data, from)
    other:send(dns.answer(q, { "10.6.6.6" }), { from.addr, from.port })
end)
lasio.dns_configure({ nameservers = { srv.nameserver }, hosts = false,
    timeout = 0.1, attempts = 1 })
local ok, e = pcall(lasio.getaddrinfo, "spoof.test", 1, { family = "inet" })
pcall(lasio.dns_configure, { nameservers = { "not an address" } })
io.write(e.code, "\n")
srv.close()
other:close()
]]

    it("go nowhere by default", function()
        local out, err, status = helper.run_child(code)
        assert.are.equal(0, status, err)
        assert.are.equal("EAI_AGAIN\n", out)
        assert.are.equal("", err)
    end)

    it("go to stderr in debug mode", function()
        local out, err, status = helper.run_child(code, { args = "debug" })
        assert.are.equal(0, status, err)
        assert.are.equal("EAI_AGAIN\n", out)
        assert.matches("lasio: evdns warning: Address mismatch", err, 1, true)
        assert.matches("lasio: evdns warning: Unable to parse nameserver", err, 1, true)
        assert.matches("has failed", err, 1, true)
    end)
end)

describe("truncated replies", function()
    local function truncated(q) return dns.truncated(q) end
    local function answering(records)
        return function(q)
            local list = records[q.name:lower()]
            if not list then return dns.error(q, 3) end
            return dns.answer(q, list)
        end
    end

    -- covers D4: evdns has no TCP retry; lasio asks the same nameserver
    -- again over TCP, and only the TCP answer carries these addresses
    it("are asked again over TCP of the same nameserver", async(function()
        local srv = setup(truncated, nil, nil,
            answering({ ["big.test"] = { "10.7.0.1", "10.7.0.2", "fd00::7" } }))
        assert.are.same({ "inet 10.7.0.1 9", "inet 10.7.0.2 9", "inet6 fd00::7 9" },
            addrs(lasio.getaddrinfo("Big.Test", 9)))
        assert.are.equal(2, #srv.queries) -- A and AAAA over UDP, both truncated
        assert.are.equal(2, #srv.tcp_queries)
        assert.are.same({ "inet 10.7.0.1 9", "inet 10.7.0.2 9" },
            addrs(lasio.getaddrinfo("big.test", 9, { family = "inet" })))
        -- a name the TCP side does not know
        assert.are.equal("EAI_NONAME", gai_error("none.test", 9).code)
        srv.close()
    end))

    it("keep the answer of the family that was not truncated", async(function()
        local srv = setup(function(q)
            if q.qtype == dns.AAAA then return dns.truncated(q) end
            return dns.answer(q, { "10.8.0.1" })
        end, nil, nil, answering({ ["half.test"] = { "10.6.6.6", "fd00::8" } }))
        assert.are.same({ "inet 10.8.0.1 1", "inet6 fd00::8 1" },
            addrs(lasio.getaddrinfo("half.test", 1)))
        assert.are.equal(1, #srv.tcp_queries)
        assert.are.equal(dns.AAAA, srv.tcp_queries[1].qtype)
        srv.close()
    end))

    it("go to the next configured nameserver when one has no TCP",
        async(function()
            -- the first server truncates and has no TCP listener (refused)
            local first = dns.start(truncated)
            local srv = setup(truncated, nil,
                { nameservers = { first.nameserver } },
                answering({ ["two.test"] = { "10.9.0.2" } }))
            lasio.dns_configure({ nameservers = { first.nameserver, srv.nameserver },
                hosts = false, timeout = 0.3 })
            assert.are.same({ "inet 10.9.0.2 1" },
                addrs(lasio.getaddrinfo("two.test", 1, { family = "inet" })))
            assert.are.equal(1, #srv.tcp_queries)
            first.close()
            srv.close()
        end))

    -- covers D3: the TCP side never answers
    it("honour the timeout option when the TCP side is silent", async(function()
        local srv = setup(truncated, nil, { timeout = 5 }, function() return nil end)
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local ok, e = pcall(lasio.getaddrinfo, "mute.test", 1,
            { family = "inet", timeout = 0.3 })
        local dt = loop:time() - t0
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e), tostring(e))
        assert.are.equal("getaddrinfo: timed out", e.message)
        assert.is_true(dt >= 0.25 and dt < helper.t(3), dt)
        -- the connection was made, then closed by the timed-out lookup
        assert.are.equal(1, srv.tcp_connections)
        helper.wait_until(function() return srv.tcp_closed == 1 end)
        srv.close()
    end))

    -- covers D3
    it("give a silent TCP nameserver the configured timeout", async(function()
        local srv = setup(truncated, nil, { timeout = 0.2 }, function() return nil end)
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local e = gai_error("mute.test", 1, { family = "inet" })
        local dt = loop:time() - t0
        assert.are.equal("EAI_AGAIN", e.code)
        assert.is_true(dt >= 0.18 and dt < helper.t(3), dt)
        helper.wait_until(function() return srv.tcp_closed == 1 end)
        srv.close()
    end))

    -- covers D3
    it("can be cancelled while the TCP side is silent", async(function()
        local srv = setup(truncated, nil, { timeout = 5 }, function() return nil end)
        local raised = 0
        local t = lasio.spawn(function()
            local ok, e = pcall(lasio.getaddrinfo, "mute.test", 1)
            if not ok and lasio.CancelledError:is(e) then raised = raised + 1 end
            error(e, 0)
        end)
        helper.wait_until(function() return #srv.tcp_queries >= 2 end)
        t:cancel()
        assert.has_error(function() t:await() end)
        assert.is_true(t:cancelled())
        assert.are.equal(1, raised)
        -- the socket was released
        helper.wait_until(function() return srv.tcp_closed == 1 end)
        srv.close()
    end))

    -- covers D1, D2 over TCP
    it("refuse a TCP reply with a wrong ID or a malformed body", async(function()
        local srv = setup(truncated, nil, nil, function(q)
            return dns.answer(q, { "10.6.6.6" }, { id = (q.id + 1) % 65536 })
        end)
        assert.are.equal("EAI_AGAIN", gai_error("id.test", 1, { family = "inet" }).code)
        srv.close()
        srv = setup(truncated, nil, nil, function(q)
            return dns.malformed(q, "rdlength_past_end")
        end)
        assert.are.equal("EAI_AGAIN", gai_error("bad.test", 1, { family = "inet" }).code)
        srv.close()
    end))
end)
