-- Specs for the HTTP/1.1 client (API.md section 9): lasio.http.request and
-- lasio.http.get against lasio.http.serve servers and against raw
-- lasio.start_server servers that send exact hand-written bytes; the
-- keep-alive pool and its retry of a dead connection; malformed and cut
-- responses (RELIABILITY H9, client side); timeouts; redirects; HTTPS;
-- openssl s_server as a server that is not ours; examples/http_fetch.lua.
-- Durations are hang detectors scaled by helper.t.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"
local client = require "lasio.http_client"

-- Every async spec runs under a hang guard; the pool of the running loop
-- is emptied afterwards (under the lasio command every spec shares one
-- loop).
local function async(fn)
    return helper.async(function()
        local ok, err = pcall(lasio.wait_for, fn, helper.t(60))
        client.close_idle()
        if not ok then error(err, 0) end
    end)
end

local function msg(e) return helper.msg(e) end

-- A lasio.http.serve server on loopback: the server and its base URL.
local function serve(handler, opts)
    local srv = lasio.http.serve(handler, "127.0.0.1", 0, opts)
    return srv, "http://127.0.0.1:" .. srv:sockets()[1].port
end

-- The port the request came from: one per client connection.
local function peer_port(req)
    return req:get_extra_info("peername").port
end

-- A raw server: fn(r, w, n) runs for the n-th connection; the table it
-- returns counts connections (conns) and has the base URL (url).
local function raw_server(fn)
    local s = {conns = 0}
    s.server = lasio.start_server(function(r, w)
        s.conns = s.conns + 1
        pcall(fn, r, w, s.conns) -- a client that goes away ends it
        w:close()
    end, "127.0.0.1", 0)
    s.port = s.server:sockets()[1].port
    s.url = "http://127.0.0.1:" .. s.port
    s.close = function() s.server:close() end
    return s
end

-- Reads one request head from a raw connection (nil at EOF).
local function read_head(r)
    local ok, head = pcall(r.readuntil, r, "\r\n\r\n")
    return ok and head or nil
end

-- A raw server answering every request head with the same bytes.
local function answering(bytes)
    return raw_server(function(r, w)
        while read_head(r) do
            w:write(bytes)
            w:drain()
        end
    end)
end

local function http_error(fn, ...)
    local e = helper.raises(fn, ...)
    assert.is_true(lasio.HTTPError:is(e), "not an HTTPError: " .. msg(e))
    return e
end

local function timeout_error(fn, ...)
    local e = helper.raises(fn, ...)
    assert.is_true(lasio.TimeoutError:is(e), "not a TimeoutError: "
        .. msg(e))
    return e
end

-- A port nothing listens on.
local function closed_port()
    local s = lasio.start_server(function() end, "127.0.0.1", 0)
    local port = s:sockets()[1].port
    s:close()
    s:wait_closed()
    return port
end

describe("lasio.http.get and request", function()
    it("returns status, reason, version, headers and body", async(function()
        local srv <close>, url = serve(function(req, res)
            res:set_header("X-Thing", "one")
            res:add_header("Set-Cookie", "a=1")
            res:add_header("Set-Cookie", "b=2")
            res:finish("hello " .. req.path .. "?" .. req.query)
        end)
        local res = lasio.http.get(url .. "/p/q?x=1#frag")
        assert.are.equal(200, res.status)
        assert.are.equal("OK", res.reason)
        assert.are.equal("1.1", res.version)
        assert.is_true(res.keep_alive)
        assert.are.equal("one", res.headers["x-thing"])
        assert.are.equal("one", res.headers["X-Thing"])
        assert.are.equal("one", res.headers["X-THING"])
        assert.are.equal("a=1, b=2", res.headers["set-cookie"])
        assert.are.equal(14, res.content_length)
        assert.are.equal(url .. "/p/q?x=1#frag", res.url)
        -- raw_headers: the exact names and order the server sent
        local names = {}
        for i = 1, #res.raw_headers, 2 do names[#names + 1] = res.raw_headers[i] end
        assert.are.same({"Date", "X-Thing", "Set-Cookie", "Set-Cookie",
            "Content-Length"}, names)
        assert.are.equal("a=1", res.raw_headers[6])
        assert.are.equal("hello /p/q?x=1", res:body())
        assert.are.equal("hello /p/q?x=1", res:body()) -- kept
        assert.matches("already read", msg(helper.raises(res.reader, res)))
    end))

    it("streams the body chunk by chunk with res:reader()", async(function()
        local go = lasio.Event()
        local srv <close>, url = serve(function(_, res)
            res:write("one")
            go:wait()
            go:clear()
            res:write("two")
            go:wait()
            res:finish("three")
        end)
        local res = lasio.http.get(url)
        assert.is_true(res.chunked)
        local r = res:reader()
        assert.are.equal("one", r:read())
        go:set()
        assert.are.equal("two", r:read())
        go:set()
        assert.are.equal("three", r:read())
        assert.is_nil(r:read())
        assert.is_nil(r:read())
        assert.is_true(r.done)
    end))

    it("reads a HEAD answer without a body and reuses the connection", async(function()
        local ports = {}
        local srv <close>, url = serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            res:finish("twelve bytes")
        end)
        local res = lasio.http.request("HEAD", url)
        assert.are.equal(200, res.status)
        assert.are.equal(12, res.content_length)
        assert.are.equal("", res:body())
        assert.are.equal("twelve bytes", lasio.http.get(url):body())
        assert.are.equal(2, #ports)
        assert.are.equal(ports[1], ports[2])
    end))

    it("reads 204 and 304 answers as bodiless, even with a Content-Length", async(function()
        local s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast")
            r:read()
        end)
        local res = lasio.http.get(s.url)
        assert.are.equal(204, res.status)
        assert.are.equal("", res:body())
        res = lasio.http.get(s.url)
        assert.are.equal(304, res.status)
        assert.are.equal("", res:body())
        assert.are.equal("last", lasio.http.get(s.url):body())
        assert.are.equal(1, s.conns)
        s.close()
    end))

    it("sends a string body with its Content-Length", async(function()
        local seen = {}
        local srv <close>, url = serve(function(req, res)
            seen = {method = req.method, length = req.headers["content-length"],
                te = req.headers["transfer-encoding"], body = req:body()}
            res:finish("ok")
        end)
        local res = lasio.http.request("POST", url .. "/form",
            {body = "a=1&b=2", headers = {["Content-Type"] = "text/plain"}})
        assert.are.equal("ok", res:body())
        assert.are.same({method = "POST", length = "7", body = "a=1&b=2"}, seen)
        -- a POST without a body says so
        lasio.http.request("POST", url):body()
        assert.are.same({method = "POST", length = "0", body = ""}, seen)
    end))

    it("sends a body function chunked, or raw with the Content-Length given", async(function()
        local seen, ended = nil, 0
        local srv <close>, url = serve(function(req, res)
            local _ <close> = helper.closer(function() ended = ended + 1 end)
            seen = {te = req.headers["transfer-encoding"],
                length = req.headers["content-length"], body = req:body()}
            res:finish("ok")
        end)
        local parts = {"first ", "", "second ", "third"}
        local i = 0
        local res = lasio.http.request("PUT", url, {body = function()
            i = i + 1
            return parts[i]
        end})
        assert.are.equal("ok", res:body())
        assert.are.same({te = "chunked", body = "first second third"}, seen)
        i = 0
        res = lasio.http.request("PUT", url, {headers = {["Content-Length"] = 18},
            body = function()
                i = i + 1
                return parts[i]
            end})
        assert.are.equal("ok", res:body())
        assert.are.same({length = "18", body = "first second third"}, seen)
        -- a function that gives something else than strings
        local e = helper.raises(lasio.http.request, "PUT", url,
            {body = function() return 42 end})
        assert.matches("the body function returned a number", msg(e))
        -- a function that gives less than its Content-Length
        e = helper.raises(lasio.http.request, "PUT", url,
            {headers = {["Content-Length"] = 100}, body = function() return nil end})
        assert.matches("gave 0 bytes of a Content%-Length of 100", msg(e))
        -- the server saw both requests cut short
        assert.is_true(helper.wait_until(function() return ended == 4 end))
    end))

    it("sends custom headers, and Host with a non-default port", async(function()
        local got
        local srv <close>, url = serve(function(req, res)
            got = req.headers
            res:finish()
        end)
        local port = srv:sockets()[1].port
        lasio.http.get(url, {headers = {["X-Custom"] = "v 1", ["X-Num"] = 42}}):body()
        assert.are.equal("v 1", got["x-custom"])
        assert.are.equal("42", got["x-num"])
        assert.are.equal("127.0.0.1:" .. port, got.host)
        assert.matches("^lasio/", got["user-agent"])
        lasio.http.get(url, {headers = {Host = "example.test", ["User-Agent"] = "me"}}):body()
        assert.are.equal("example.test", got.host)
        assert.are.equal("me", got["user-agent"])
        -- the default port is left out of Host
        local s = raw_server(function(r, w)
            got = read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        end)
        local res = lasio.http.get("HTTP://LOCALHOST:" .. s.port .. "/x")
        assert.are.equal(200, res.status)
        assert.matches("^GET /x HTTP/1%.1\r\n", got)
        assert.matches("\r\nHost: localhost:" .. s.port .. "\r\n", got)
        s.close()
    end))

    it("reaches an IPv6 literal URL", async(function()
        if not net.has_ipv6() then
            pending("no IPv6 loopback on this machine")
            return
        end
        local host
        local srv <close> = lasio.http.serve(function(req, res)
            host = req.headers.host
            res:finish("six")
        end, "::1", 0)
        local port = srv:sockets()[1].port
        local res = lasio.http.get("http://[::1]:" .. port .. "/")
        assert.are.equal("six", res:body())
        assert.are.equal("[::1]:" .. port, host)
    end))
end)

describe("the connection pool", function()
    it("reuses one connection for sequential requests", async(function()
        local ports = {}
        local srv <close>, url = serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            res:finish("x")
        end)
        for _ = 1, 3 do assert.are.equal("x", lasio.http.get(url):body()) end
        -- a body read to its end through the reader frees it too
        local r = lasio.http.get(url):reader()
        while r:read() do end
        lasio.http.get(url):body()
        assert.are.equal(5, #ports)
        for i = 2, 5 do assert.are.equal(ports[1], ports[i]) end
    end))

    it("opens separate connections for concurrent requests", async(function()
        local ports, arrived = {}, 0
        local both = lasio.Event()
        local srv <close>, url = serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            arrived = arrived + 1
            if arrived == 3 then both:set() end
            both:wait()
            res:finish("c")
        end)
        local function fetch() return lasio.http.get(url):body() end
        assert.are.same({"c", "c", "c"}, {lasio.gather(lasio.spawn(fetch),
            lasio.spawn(fetch), lasio.spawn(fetch))})
        assert.are.equal(3, #ports)
        assert.are_not.equal(ports[1], ports[2])
        assert.are_not.equal(ports[2], ports[3])
        assert.are_not.equal(ports[1], ports[3])
        -- afterwards the idle ones are reused
        both:set()
        local again = {}
        for _ = 1, 3 do
            lasio.http.get(url):body()
            again[ports[#ports]] = true
        end
        for _, p in ipairs({ports[4], ports[5], ports[6]}) do
            assert.is_true(p == ports[1] or p == ports[2] or p == ports[3])
        end
    end))

    it("does not reuse a connection whose body was not read", async(function()
        local ports = {}
        local srv <close>, url = serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            res:finish(string.rep("b", 1000))
        end)
        local unread = lasio.http.get(url)
        assert.are.equal(200, unread.status)
        lasio.http.get(url):body()
        local closed = lasio.http.get(url)
        closed:close() -- dropped explicitly
        lasio.http.get(url):body()
        -- a reader stopped halfway
        local half = lasio.http.get(url)
        assert.is_string(half:reader():read())
        lasio.http.get(url):body()
        assert.are.equal(6, #ports)
        assert.are_not.equal(ports[1], ports[2])
        assert.are.equal(ports[2], ports[3])
        assert.are_not.equal(ports[3], ports[4])
        assert.are.equal(ports[4], ports[5])
        assert.are_not.equal(ports[5], ports[6])
        assert.matches("already read or the response closed",
            msg(helper.raises(closed.body, closed)))
    end))

    it("does not pool a connection the server answers with Connection: close", async(function()
        local ports = {}
        local srv <close>, url = serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            res:set_header("Connection", "close")
            res:finish("bye")
        end)
        local res = lasio.http.get(url)
        assert.is_false(res.keep_alive)
        assert.are.equal("bye", res:body())
        assert.are.equal("bye", lasio.http.get(url):body())
        assert.are_not.equal(ports[1], ports[2])
        -- an HTTP/1.0 answer without keep-alive, delimited by the close
        local s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.0 200 OK\r\n\r\nto the end")
        end)
        for _ = 1, 2 do
            res = lasio.http.get(s.url)
            assert.is_false(res.keep_alive)
            assert.are.equal("to the end", res:body())
        end
        assert.are.equal(2, s.conns)
        s.close()
    end))

    it("replaces a pooled connection the server closed while it was idle", async(function()
        local s = raw_server(function(r, w, n)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn" .. n)
        end)
        assert.are.equal("conn1", lasio.http.get(s.url):body())
        -- the server's close reaches the idle connection
        lasio.sleep(0.05)
        assert.are.equal("conn2", lasio.http.request("POST", s.url):body())
        assert.are.equal(2, s.conns)
        s.close()
    end))

    -- The server closes a kept-alive connection just as the next request
    -- goes out on it (the race RFC 9112 9.3.1 describes).
    local function closing_after_one(partial)
        return raw_server(function(r, w, n)
            if n == 1 then
                read_head(r)
                w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
                read_head(r) -- the second request: no answer
                if partial then w:write(partial) end
                -- let the rest of a request body arrive: closing with
                -- unread bytes would reset instead
                lasio.sleep(0.02)
                return
            end
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nretried")
        end)
    end

    it("sends an idempotent request once more when its pooled connection died unanswered", async(function()
        for _, method in ipairs({"GET", "PUT", "DELETE", "OPTIONS"}) do
            local s = closing_after_one()
            assert.are.equal("first", lasio.http.get(s.url):body())
            local res = lasio.http.request(method, s.url,
                {body = method == "PUT" and "data" or nil})
            assert.are.equal("retried", res:body(), method)
            assert.are.equal(2, s.conns, method)
            s.close()
        end
    end))

    it("does not send a POST again, nor a request whose answer had begun", async(function()
        local s = closing_after_one()
        assert.are.equal("first", lasio.http.get(s.url):body())
        local e = http_error(lasio.http.request, "POST", s.url, {body = "once"})
        assert.matches("closed the connection without an answer", msg(e))
        assert.are.equal(1, s.conns)
        s.close()
        -- the answer had begun: an error, never a second request
        s = closing_after_one("HTTP/1.1 200")
        assert.are.equal("first", lasio.http.get(s.url):body())
        e = http_error(lasio.http.get, s.url)
        assert.are.equal("EOF", e.code)
        assert.are.equal(1, s.conns)
        s.close()
        -- a body function cannot be sent twice
        s = closing_after_one()
        assert.are.equal("first", lasio.http.get(s.url):body())
        local n = 0
        e = http_error(lasio.http.request, "PUT", s.url, {body = function()
            n = n + 1
            return n == 1 and "streamed" or nil
        end})
        assert.matches("without an answer", msg(e))
        assert.are.equal(1, s.conns)
        s.close()
    end))

    it("keeps one pool per loop", function()
        -- a server in a child process; two loops in another child each
        -- make two requests: each loop reuses its own connection and
        -- never one of the other loop
        local server = [[
local lasio = require "lasio"
lasio.run(function()
    local n, all = 0, lasio.Event()
    local srv = lasio.http.serve(function(req, res)
        n = n + 1
        res:finish(tostring(req:get_extra_info("peername").port))
        if n == 4 then all:set() end
    end, "127.0.0.1", 0)
    print(srv:sockets()[1].port)
    io.stdout:flush()
    pcall(lasio.wait_for, function() all:wait() end, 20)
    srv:close()
end)
]]
        local code = [[
local lasio = require "lasio"
local f = assert(io.open(arg[1], "w")) f:write(arg[2]) f:close()
local h = io.popen("timeout 30 lua5.4 " .. arg[1])
local port = h:read("l")
local url = "http://127.0.0.1:" .. port .. "/"
local seen = {}
for i = 1, 2 do
    local loop = lasio.new_event_loop()
    loop:run_until_complete(loop:create_task(function()
        seen[#seen + 1] = lasio.http.get(url):body()
        seen[#seen + 1] = lasio.http.get(url):body()
    end))
    loop:close()
end
h:close()
print(seen[1] == seen[2], seen[3] == seen[4], seen[1] ~= seen[3])
]]
        local dir = net.tmpdir()
        local out, err, status = helper.run_child(code, {interp = "lua5.4",
            args = helper.shell_quote(dir .. "/server.lua") .. " "
                .. helper.shell_quote(server)})
        net.rmdir(dir)
        assert.are.equal(0, status, err)
        assert.are.equal("true\ttrue\ttrue\n", out)
    end)

    it("makes 10 000 requests on one pooled connection with a flat fd count", async(function()
        local n = net.scale(10000)
        local ports = {}
        local srv <close>, url = serve(function(req, res)
            ports[peer_port(req)] = true
            res:finish("ok")
        end, {keepalive_requests = n + 10})
        assert.are.equal("ok", lasio.http.get(url):body())
        local before = net.settle()
        local mem
        for i = 1, n do
            assert.are.equal("ok", lasio.http.get(url .. "/" .. i):body())
            if i == n // 2 then
                collectgarbage()
                mem = collectgarbage("count")
            end
        end
        assert.are.equal(before, net.settle())
        collectgarbage()
        assert.is_true(collectgarbage("count") < mem * 2 + 1024, "the heap grew")
        local count = 0
        for _ in pairs(ports) do count = count + 1 end
        assert.are.equal(1, count)
    end))
end)
