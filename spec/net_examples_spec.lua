-- The network examples run as tests: each example runs in a child
-- process (lasio.create_subprocess_exec) against peers this spec starts on
-- loopback (an echo client, chat clients, a TLS server, a fake DNS
-- server), and its output is checked.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local dns = require "fake_dns"
local lasio = require "lasio"

local async = helper.async_guarded

-- Starts examples/<name> under the lasio command with its stdout piped.
local function start(name, args)
    local argv = { "examples/" .. name }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return lasio.create_subprocess_exec(helper.lasio_bin, argv,
        { stdout = lasio.PIPE, stderr = lasio.PIPE, cwd = helper.root })
end

-- Runs examples/<name> to its end: stdout, stderr, exit status.
local function run(name, args)
    local p = start(name, args)
    local out, err = p:communicate(nil, helper.t(30))
    return out, err, p.returncode
end

-- The port a server example announces on its first line.
local function announced_port(p)
    local line = p.stdout:readline()
    return tonumber(line:match("listening on 127%.0%.0%.1:(%d+)")), line
end

describe("network examples", function()
    it("echo_server.lua serves echo_client.lua, and Ctrl-C stops it", async(function()
        local server = start("echo_server.lua", { "0" })
        local port, line = announced_port(server)
        assert.is_number(port, line)
        local out, err, status = run("echo_client.lua", { "127.0.0.1", tostring(port),
            "hello", "lasio streams" })
        assert.are.equal(0, status, err)
        assert.are.equal("echo: hello\necho: lasio streams\n", out)
        assert.matches("^connection from 127%.0%.0%.1:%d+\n", server.stdout:readline() .. "\n")
        assert.are.equal("connection closed\n", server.stdout:readline())
        server:send_signal("SIGINT")
        assert.are.equal(130, server:wait(helper.t(10)))
    end))

    it("chat_server.lua relays lines, joins and leaves between clients", async(function()
        local server = start("chat_server.lua")
        local port = announced_port(server)
        local function join(name)
            local r, w = lasio.open_connection("127.0.0.1", port)
            r:settimeout(helper.t(10))
            assert.are.equal("name? ", r:readexactly(6))
            w:write(name .. "\n")
            return { r = r, w = w }
        end
        local ann = join("ann")
        local bob = join("bob")
        assert.are.equal("* bob joined\n", ann.r:readline())
        local cid = join("cid")
        assert.are.equal("* cid joined\n", ann.r:readline())
        assert.are.equal("* cid joined\n", bob.r:readline())
        bob.w:write("hi all\r\n")
        assert.are.equal("bob: hi all\n", ann.r:readline())
        assert.are.equal("bob: hi all\n", cid.r:readline())
        cid.w:close()
        assert.are.equal("* cid left\n", ann.r:readline())
        assert.are.equal("* cid left\n", bob.r:readline())
        ann.w:write("bye\n")
        assert.are.equal("ann: bye\n", bob.r:readline())
        ann.w:close()
        bob.w:close()
        server:send_signal("SIGINT")
        assert.are.equal(130, server:wait(helper.t(10)))
    end))

    it("tls_get.lua fetches a page from a local TLS server, verified", async(function()
        local dir = net.tmpdir()
        local q = helper.shell_quote
        assert(os.execute(([[
cd %s && {
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=example CA" &&
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" &&
printf "subjectAltName=DNS:localhost\n" > ext.cnf &&
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf
} >/dev/null 2>&1]]):format(q(dir))))
        local ctx = lasio.ssl_context({ server = true, certfile = dir .. "/srv.pem",
            keyfile = dir .. "/srv.key", alpn = { "http/1.1" } })
        local requests = {}
        local server = lasio.start_server(function(r, w)
            local request = r:readline()
            requests[#requests + 1] = request
            while r:readline() ~= "\r\n" do end
            local body = "<h1>hello over TLS</h1>\n"
            w:write("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                .. #body .. "\r\n\r\n" .. body)
        end, "127.0.0.1", 0, { ssl = ctx })
        local port = tostring(server:sockets()[1].port)
        local out, err, status = run("tls_get.lua",
            { "localhost", port, "/index.html", dir .. "/ca.pem" })
        assert.are.equal(0, status, err)
        assert.matches("^connected with TLSv1%.[23], certificate of /CN=localhost\n"
            .. "HTTP/1%.0 200 OK\n<h1>hello over TLS</h1>\n$", out)
        assert.are.same({ "GET /index.html HTTP/1.0\r\n" }, requests)
        -- without the CA, the certificate is refused
        out, err, status = run("tls_get.lua", { "localhost", port })
        assert.are.equal(1, status)
        assert.are.equal("", out)
        assert.matches("certificate verify failed", err)
        server:close()
        net.rmdir(dir)
    end))

    it("dns_lookup.lua resolves names and addresses", async(function()
        local srv = dns.start(function(q)
            if q.qtype == dns.PTR then return dns.answer(q, { "www.example.test" }) end
            if q.name:lower() == "www.example.test" then
                return dns.answer(q, { "10.1.2.3", "2001:db8::7" })
            end
            return dns.error(q, 3)
        end)
        local out, err, status = run("dns_lookup.lua", { "-s", srv.nameserver,
            "www.example.test", "missing.example.test", "10.1.2.3", "localhost" })
        assert.are.equal(0, status, err)
        assert.are.equal("www.example.test has 10.1.2.3, 2001:db8::7\n"
            .. "missing.example.test: getaddrinfo: Name or service not known "
            .. "(missing.example.test)\n"
            .. "10.1.2.3 is www.example.test\n"
            .. "localhost has 127.0.0.1, ::1\n", out)
        srv.close()
        -- the system's hosts file, without any nameserver
        out, err, status = run("dns_lookup.lua", { "localhost", "127.0.0.1" })
        assert.are.equal(0, status, err)
        assert.matches("^localhost has 127%.0%.0%.1", out)
        assert.matches("\n127%.0%.0%.1 is %S+\n$", out)
    end))
end)
