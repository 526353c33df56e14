-- Specs for the HTTP/1.1 client (docs/API.md): lasio.http.request and
-- lasio.http.get against lasio.http.serve servers and against raw
-- lasio.start_server servers that send exact hand-written bytes; the
-- keep-alive pool and its retry of a dead connection; malformed and cut
-- responses (H9, client side); timeouts; redirects; HTTPS;
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
    local s = {conns = 0, writers = {}}
    s.server = lasio.start_server(function(r, w)
        s.conns = s.conns + 1
        s.writers[w] = true
        pcall(fn, r, w, s.conns) -- a client that goes away ends it
        s.writers[w] = nil
        w:close()
    end, "127.0.0.1", 0)
    s.port = s.server:sockets()[1].port
    s.url = "http://127.0.0.1:" .. s.port
    -- also ends the connections still open: a handler waiting for the
    -- client's EOF must not outlive its spec when the client's socket is
    -- only closed by a later garbage collection (under the lasio command
    -- every spec shares one loop, which waits for every task at the end)
    s.close = function()
        s.server:close()
        for w in pairs(s.writers) do w:abort() end
    end
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


describe("lasio.http.get and request", function()
    it("returns status, reason, version, headers and body", async(function()
        local _ <close>, url = serve(function(req, res)
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
        local _ <close>, url = serve(function(_, res)
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
        local _ <close>, url = serve(function(req, res)
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

    it("gives bodiless answers (HEAD, 204, 304, empty) a reader at its end", async(function()
        local s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 204 No Content\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast")
            r:read()
        end)
        for _, m in ipairs({"HEAD", "GET", "GET", "GET"}) do
            local res = lasio.http.request(m, s.url)
            local r = res:reader()
            assert.is_nil(r:read())
            assert.is_true(r.done)
            assert.is_nil(r:read())
            local parts = 0
            for _ in res:reader():chunks() do parts = parts + 1 end
            assert.are.equal(0, parts)
            assert.are.equal("", res:body())
        end
        assert.are.equal("last", lasio.http.get(s.url):body())
        assert.are.equal(1, s.conns)
        s.close()
    end))

    it("sends a string body with its Content-Length", async(function()
        local seen = {}
        local _ <close>, url = serve(function(req, res)
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
        local _ <close>, url = serve(function(req, res)
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
        local _ <close>, url = serve(function(req, res)
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
        local _ <close>, url = serve(function(req, res)
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
        for _ = 1, 3 do lasio.http.get(url):body() end
        for _, p in ipairs({ports[4], ports[5], ports[6]}) do
            assert.is_true(p == ports[1] or p == ports[2] or p == ports[3])
        end
    end))

    it("does not reuse a connection whose body was not read", async(function()
        local ports = {}
        local _ <close>, url = serve(function(req, res)
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
        -- no connection is left for the garbage collector
        unread:close()
        half:close()
    end))

    it("does not pool a connection the server answers with Connection: close", async(function()
        local ports = {}
        local _ <close>, url = serve(function(req, res)
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
        local _ <close>, url = serve(function(req, res)
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

describe("malformed and cut responses", function()
    it("raises HTTPError on a malformed status line", async(function() -- covers H9
        for _, bytes in ipairs({"HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
            "garbage\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"}) do
            local s = answering(bytes)
            local e = http_error(lasio.http.get, s.url)
            assert.matches("malformed HTTP response", msg(e))
            assert.is_string(e.code)
            s.close()
        end
    end))

    it("raises HTTPError EOF on a body shorter than its Content-Length", async(function() -- covers H9
        local s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        end)
        local res = lasio.http.get(s.url)
        local e = http_error(res.body, res)
        assert.are.equal("EOF", e.code)
        assert.matches("connection closed before the body was complete", msg(e))
        -- streamed: the part that came, then the error
        res = lasio.http.get(s.url)
        local r = res:reader()
        assert.are.equal("12345", r:read())
        assert.are.equal("EOF", http_error(r.read, r).code)
        assert.matches("already read or the response closed",
            msg(helper.raises(res.body, res)))
        s.close()
    end))

    it("raises HTTPError EOF on a truncated chunked body", async(function() -- covers H9
        for _, cut in ipairs({"5\r\nhel", "5\r\nhello\r\n", "5\r\nhello\r\n0\r\n",
            "5\r\nhello"}) do
            local s = raw_server(function(r, w)
                read_head(r)
                w:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. cut)
            end)
            local res = lasio.http.get(s.url)
            local e = http_error(res.body, res)
            assert.are.equal("EOF", e.code, cut)
            s.close()
        end
    end))

    it("raises HTTPError on an invalid chunk size", async(function() -- covers H9
        local s = answering("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            .. "zz\r\nhello\r\n0\r\n\r\n")
        local res = lasio.http.get(s.url)
        local e = http_error(res.body, res)
        assert.are.equal("HPE_INVALID_CHUNK_SIZE", e.code)
        -- the connection is dropped, not pooled
        local again = lasio.http.get(s.url)
        local e2 = http_error(again.body, again)
        assert.are.equal("HPE_INVALID_CHUNK_SIZE", e2.code)
        assert.is_true(s.conns >= 2)
        s.close()
    end))

    it("never takes bytes after the message as its body or as the next answer", async(function() -- covers H9
        local fake = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
        local s = raw_server(function(r, w, n)
            while read_head(r) do
                if n == 1 then
                    w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" .. fake)
                elseif n == 2 then
                    -- the extra bytes come a moment after the answer
                    w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater")
                    w:drain()
                    lasio.sleep(0.02)
                    w:write(fake)
                else
                    w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
                end
            end
        end)
        local res = lasio.http.get(s.url)
        assert.are.equal("hello", res:body())
        assert.are.equal(5, res.content_length)
        res = lasio.http.get(s.url)
        assert.are.equal("later", res:body())
        lasio.sleep(0.05)
        assert.are.equal("fresh", lasio.http.get(s.url):body())
        assert.are.equal("fresh", lasio.http.get(s.url):body())
        assert.are.equal(3, s.conns)
        -- a streamed read stops at the end of the message too
        s.close()
        s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                .. "3\r\nabc\r\n0\r\n\r\n" .. fake)
            r:read()
        end)
        local rd = lasio.http.get(s.url):reader()
        assert.are.equal("abc", rd:read())
        assert.is_nil(rd:read())
        s.close()
    end))
end)

describe("timeouts", function()
    it("raises TimeoutError in time when the server never answers", async(function() -- covers H9
        local s = raw_server(function(r) read_head(r); r:read() end)
        local t0 = lasio.get_running_loop():time()
        local e = timeout_error(lasio.http.get, s.url, {timeout = 0.2})
        local took = lasio.get_running_loop():time() - t0
        assert.matches("lasio.http.get: timed out waiting for the response", msg(e))
        assert.is_true(took >= 0.19 and took < 0.2 + helper.t(1), took)
        -- a head that never ends is the same
        s.close()
        s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nX-Slow: ")
            r:read()
        end)
        e = timeout_error(lasio.http.get, s.url, {timeout = 0.2})
        assert.matches("timed out waiting for the response", msg(e))
        s.close()
    end))

    it("bounds the body reads too: the timeout covers the whole exchange", async(function() -- covers H9
        local s = raw_server(function(r, w)
            read_head(r)
            w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            r:read()
        end)
        local loop = lasio.get_running_loop()
        local t0 = loop:time()
        local res = lasio.http.get(s.url, {timeout = 0.3})
        assert.are.equal(200, res.status)
        local e = timeout_error(res.body, res)
        local took = loop:time() - t0
        assert.matches("timed out reading the response body", msg(e))
        assert.is_true(took >= 0.29 and took < 0.3 + helper.t(1), took)
        -- streamed
        res = lasio.http.get(s.url, {timeout = 0.3})
        local r = res:reader()
        assert.are.equal("abc", r:read())
        timeout_error(r.read, r)
        -- the timed-out connections were dropped
        assert.is_true(helper.wait_until(function() return s.conns == 2 end))
        s.close()
    end))

    it("bounds the upload to a server that does not read", async(function()
        local s = raw_server(function() lasio.sleep(helper.t(5)) end)
        local big = string.rep("x", 16 * 1024 * 1024)
        local e = timeout_error(lasio.http.request, "PUT", s.url,
            {body = function()
                local b = big
                big = nil
                return b
            end, timeout = 0.2})
        assert.matches("timed out", msg(e))
        s.close()
    end))
end)

describe("bad requests", function()
    it("refuses CR, LF or NUL in header names and values before sending anything", async(function() -- covers H9
        local s = answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        for _, h in ipairs({{["X-A"] = "v\r\nInjected: 1"}, {["X-A"] = "v\nx"},
            {["X-A"] = "a\0b"}, {["X\r\nB"] = "v"}, {["X\0B"] = "v"}, {["X B"] = "v"}}) do
            local e = helper.raises(lasio.http.get, s.url, {headers = h})
            assert.matches("lasio.http.get: .*header", msg(e))
        end
        local e = helper.raises(lasio.http.get, s.url, {headers = {["X-A"] = "v\r\nI: 1"}})
        assert.matches("value of header 'X%-A' contains CR, LF or NUL", msg(e))
        e = helper.raises(lasio.http.get, s.url, {headers = {["X\nB"] = "v"}})
        assert.matches("header name contains CR, LF or NUL", msg(e))
        e = helper.raises(lasio.http.get, s.url, {headers = {["X B"] = "v"}})
        assert.matches("invalid character 0x20 in header name", msg(e))
        e = helper.raises(lasio.http.get, s.url, {headers = {["X-A"] = "a\1b"}})
        assert.matches("invalid character 0x01 in the value of header 'X%-A'", msg(e))
        lasio.sleep(0.05)
        assert.are.equal(0, s.conns)
        s.close()
    end))

    it("refuses bad URLs, naming the problem", async(function()
        local cases = {
            {42, "url must be a string, not a number"},
            {"ftp://example.test/", "unsupported URL 'ftp://example.test/'"},
            {"example.test/path", "unsupported URL"},
            {"http://", "no host in URL"},
            {"http:///path", "no host in URL"},
            {"http://host:0/", "bad port in URL"},
            {"http://host:65536/", "bad port in URL"},
            {"http://host:http/", "bad port in URL"},
            {"http://[::1/", "no host in URL"},
            {"http://host/a b", "has spaces or control characters"},
            {"http://host/a\nb", "has spaces or control characters"},
            {"ws://host/", "use lasio.http.websocket for ws URLs"},
        }
        for _, c in ipairs(cases) do
            local e = helper.raises(lasio.http.get, c[1])
            assert.matches("lasio.http.get: ", msg(e), nil, true)
            assert.matches(c[2], msg(e), nil, true)
        end
    end))

    it("refuses bad methods and options, naming the problem", async(function()
        local url = "http://127.0.0.1:1/"
        local cases = {
            {{"GET /", url}, "method must be a token string"},
            {{nil, url}, "method must be a token string"},
            {{"GET", url, "opts"}, "opts must be a table, not a string"},
            {{"GET", url, {bogus = 1}}, "unknown option 'bogus'"},
            {{"GET", url, {timeout = -1}}, "timeout must be a number >= 0"},
            {{"GET", url, {timeout = "1"}}, "timeout must be a number >= 0"},
            {{"GET", url, {body = 42}}, "body must be a string or a function"},
            {{"GET", url, {headers = "X: y"}}, "headers must be a table"},
            {{"GET", url, {headers = {[1] = "x"}}}, "header name must be a string"},
            {{"GET", url, {headers = {X = {}}}}, "must be a string or a number"},
            {{"GET", url, {headers = {["Transfer-Encoding"] = "gzip"}}},
                "Transfer-Encoding is the client's"},
            {{"GET", url, {headers = {["Content-Length"] = "ten"}}},
                "Content-Length must be a number >= 0"},
            {{"POST", url, {body = "abc", headers = {["Content-Length"] = 5}}},
                "Content-Length says 5 but the body has 3 bytes"},
            {{"GET", url, {ssl = "yes"}}, "ssl must be true or a lasio.ssl_context"},
            {{"GET", "https://127.0.0.1:1/", {ssl = false}}, "an https URL needs TLS"},
            {{"GET", url, {follow_redirects = 1}}, "follow_redirects must be a boolean"},
            {{"GET", url, {max_redirects = -1}}, "max_redirects must be an integer >= 0"},
            {{"GET", url, {max_redirects = 1.5}}, "max_redirects must be an integer >= 0"},
        }
        for _, c in ipairs(cases) do
            local e = helper.raises(lasio.http.request, table.unpack(c[1], 1, 3))
            assert.matches("lasio.http.request: ", msg(e), nil, true)
            assert.matches(c[2], msg(e), nil, true)
        end
    end))

    it("raises OSError when the connection is refused", async(function()
        local e = helper.raises(lasio.http.get, "http://127.0.0.1:" .. net.free_port() .. "/")
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("ECONNREFUSED", e.code)
    end))
end)

describe("redirects", function()
    -- /a -> 301 /b -> 302 c?x=1 -> 307 absolute /d -> 308 ../e -> 200
    local function redirecting()
        local log = {}
        local srv, url
        srv, url = serve(function(req, res)
            log[#log + 1] = req.method .. " " .. req.path .. (req.query ~= ""
                and "?" .. req.query or "") .. " " .. req:body()
            local to = ({["/a"] = {301, "/b"}, ["/b"] = {302, "c?x=1"},
                ["/c"] = {307, url .. "/d/"}, ["/d/"] = {308, "../e"},
                ["/loop"] = {302, "/loop"}, ["/form"] = {303, "/result"},
                ["/tmp"] = {307, "/keep"}, ["/far"] = {302, "//127.0.0.1:"
                    .. srv:sockets()[1].port .. "/e"}})[req.path]
            if to then
                res:set_status(to[1])
                res:set_header("Location", to[2])
                res:finish("moved")
            else
                res:finish(req.method .. " " .. req.path .. " "
                    .. (req.headers["content-type"] or "-") .. " "
                    .. (req.headers["content-length"] or "-"))
            end
        end)
        return srv, url, log
    end

    it("are not followed by default", async(function()
        local _ <close>, url = redirecting()
        local res = lasio.http.get(url .. "/a")
        assert.are.equal(301, res.status)
        assert.are.equal("/b", res.headers.location)
        assert.are.equal("moved", res:body())
    end))

    it("follows 301, 302, 307 and 308, relative and absolute", async(function()
        local _ <close>, url, log = redirecting()
        local res = lasio.http.get(url .. "/a", {follow_redirects = true})
        assert.are.equal(200, res.status)
        assert.are.equal(url .. "/e", res.url)
        assert.are.equal("GET /e - -", res:body())
        assert.are.same({"GET /a ", "GET /b ", "GET /c?x=1 ", "GET /d/ ",
            "GET /e "}, log)
        -- a scheme-relative Location
        res = lasio.http.get(url .. "/far", {follow_redirects = true})
        assert.are.equal("GET /e - -", res:body())
    end))

    it("turns a POST into a GET without its body on 303", async(function()
        local _ <close>, url, log = redirecting()
        local res = lasio.http.request("POST", url .. "/form", {body = "data",
            follow_redirects = true, headers = {["Content-Type"] = "text/plain"}})
        assert.are.equal("GET /result - -", res:body())
        assert.are.same({"POST /form data", "GET /result "}, log)
    end))

    it("keeps the method and the body on 307", async(function()
        local _ <close>, url, log = redirecting()
        local res = lasio.http.request("POST", url .. "/tmp", {body = "data",
            follow_redirects = true, headers = {["Content-Type"] = "text/plain"}})
        assert.are.equal("POST /keep text/plain 4", res:body())
        assert.are.same({"POST /tmp data", "POST /keep data"}, log)
        -- a body function cannot be sent again
        local e = http_error(lasio.http.request, "POST", url .. "/tmp", {
            follow_redirects = true, body = function() return nil end})
        assert.matches("cannot follow a 307 redirect", msg(e))
    end))

    it("raises HTTPError after max_redirects", async(function()
        local _ <close>, url, log = redirecting()
        local e = http_error(lasio.http.get, url .. "/loop",
            {follow_redirects = true, max_redirects = 3})
        assert.matches("too many redirects (more than 3)", msg(e), nil, true)
        assert.are.equal(4, #log)
        e = http_error(lasio.http.get, url .. "/loop", {follow_redirects = true})
        assert.matches("more than 5", msg(e), nil, true)
        assert.are.equal(10, #log)
    end))
end)

local make_certs = require("certs").make

describe("HTTPS", function()
    local function https_server(certfile, keyfile)
        local c = make_certs()
        local ports = {}
        local srv = lasio.http.serve(function(req, res)
            ports[#ports + 1] = peer_port(req)
            res:finish("secure " .. req.path)
        end, "127.0.0.1", 0, {ssl = lasio.ssl_context{server = true,
            certfile = certfile or c.cert, keyfile = keyfile or c.key}})
        return srv, srv:sockets()[1].port, ports
    end

    it("verifies the server by default", async(function()
        local _ <close>, port = https_server()
        local e = helper.raises(lasio.http.get, "https://localhost:" .. port .. "/")
        assert.is_true(lasio.OSError:is(e))
        assert.are.equal("SSL_CERTIFICATE_VERIFY_FAILED", e.code)
        assert.matches("certificate verify failed", msg(e))
        local c = make_certs()
        local self <close> = https_server(c.self, c.selfkey)
        e = helper.raises(lasio.http.get, "https://localhost:"
            .. self:sockets()[1].port .. "/", {ssl = true})
        assert.matches("self%-signed certificate", msg(e))
    end))

    it("talks to a server its CA signed, and pools the connection", async(function()
        local _ <close>, port, ports = https_server()
        local ctx = lasio.ssl_context{cafile = make_certs().ca}
        for _, host in ipairs({"localhost", "127.0.0.1", "localhost"}) do
            local res = lasio.http.get("https://" .. host .. ":" .. port .. "/s",
                {ssl = ctx})
            assert.are.equal(200, res.status)
            assert.are.equal("secure /s", res:body())
        end
        assert.are.equal(3, #ports)
        assert.are.equal(ports[1], ports[3])
        assert.are_not.equal(ports[1], ports[2]) -- another host, another pool entry
        -- a connection verified under one context is not reused under another
        local other = lasio.ssl_context{cafile = make_certs().ca}
        assert.are.equal("secure /o", lasio.http.get("https://localhost:" .. port
            .. "/o", {ssl = other}):body())
        assert.are.equal(4, #ports)
        assert.are_not.equal(ports[1], ports[4])
        assert.are_not.equal(ports[2], ports[4])
        -- the name must match the certificate
        local e = helper.raises(lasio.http.get, "https://127.0.0.2:" .. port .. "/",
            {ssl = ctx})
        assert.is_true(lasio.OSError:is(e))
    end))
end)

describe("HTTPS with the default context", function()
    it("verifies against the system's CA store and pools its connections", function()
        -- OpenSSL's default verify paths follow SSL_CERT_FILE: the test CA
        -- stands in for the system's store in a child process
        local c = make_certs()
        local code = [[
local lasio = require "lasio"
lasio.run(function()
    local ports = {}
    local srv = lasio.http.serve(function(req, res)
        ports[#ports + 1] = req:get_extra_info("peername").port
        res:finish("ok")
    end, "127.0.0.1", 0, {ssl = lasio.ssl_context{server = true,
        certfile = arg[1], keyfile = arg[2]}})
    local url = "https://localhost:" .. srv:sockets()[1].port .. "/"
    local a = lasio.http.get(url):body()
    local b = lasio.http.get(url, {ssl = true}):body()
    print(a, b, #ports, ports[1] == ports[2])
    srv:close()
end)
]]
        local out, err, status = helper.run_child(code, {interp = "lua5.4",
            env = "SSL_CERT_FILE=" .. helper.shell_quote(c.ca),
            args = helper.shell_quote(c.cert) .. " " .. helper.shell_quote(c.key)})
        assert.are.equal(0, status, err)
        assert.are.equal("ok\tok\t2\ttrue\n", out)
    end)
end)

describe("interoperability", function()
    it("fetches a file from openssl s_server -WWW (HTTP/1.0, to the end)", async(function()
        local c = make_certs()
        local f = assert(io.open(c.dir .. "/page.txt", "w"))
        f:write(string.rep("openssl served this\n", 500))
        f:close()
        local p = lasio.create_subprocess_exec("openssl", {"s_server", "-accept",
            "127.0.0.1:0", "-naccept", "1", "-WWW", "-cert", c.cert, "-key", c.key,
            }, {stdout = lasio.PIPE, stderr = lasio.DEVNULL, cwd = c.dir})
        local port
        for line in p.stdout:lines() do
            port = line:match("^ACCEPT .*:(%d+)$")
            if port then break end
        end
        assert.is_string(port, "openssl s_server did not start")
        local res = lasio.http.get("https://localhost:" .. port .. "/page.txt",
            {ssl = lasio.ssl_context{cafile = c.ca}, timeout = helper.t(10)})
        assert.are.equal(200, res.status)
        assert.are.equal("1.0", res.version)
        assert.is_false(res.keep_alive)
        assert.are.equal(string.rep("openssl served this\n", 500), res:body())
        assert.are.equal(0, p:wait(helper.t(10)))
    end))
end)

describe("examples/http_fetch.lua", function()
    it("fetches its demo pages concurrently, one with a timeout", async(function()
        local p = lasio.create_subprocess_exec(helper.lasio_bin, {"examples/http_fetch.lua"},
            {stdout = lasio.PIPE, stderr = lasio.PIPE, cwd = helper.root})
        local out, err = p:communicate(nil, helper.t(30))
        assert.are.equal(0, p.returncode, err)
        local lines = {}
        for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
        assert.are.equal(5, #lines, out)
        assert.matches("^200      13 bytes  http://127%.0%.0%.1:%d+/$", lines[1])
        assert.matches("^200  100000 bytes  http://127%.0%.0%.1:%d+/big$", lines[2])
        assert.matches("^200      13 bytes  http://127%.0%.0%.1:%d+/moved$", lines[3])
        assert.matches("^404      13 bytes  http://127%.0%.0%.1:%d+/missing$", lines[4])
        assert.matches("^timeout after 0%.5 s  http://127%.0%.0%.1:%d+/slow$", lines[5])
    end))

    it("fetches the URLs it is given, and reports errors per URL", async(function()
        local _ <close>, url = serve(function(_, res) res:finish("given") end)
        local dead = "http://127.0.0.1:" .. net.free_port() .. "/"
        local p = lasio.create_subprocess_exec(helper.lasio_bin, {"examples/http_fetch.lua",
            "-t", "5", url .. "/one", dead, "nope://x"},
            {stdout = lasio.PIPE, stderr = lasio.PIPE, cwd = helper.root})
        local out, err = p:communicate(nil, helper.t(30))
        assert.are.equal(0, p.returncode, err)
        assert.matches("^200       5 bytes  " .. url:gsub("%p", "%%%0") .. "/one\n"
            .. "error connect: Connection refused %(while connecting to 127%.0%.0%.1:%d+%)  "
            .. dead:gsub("%p", "%%%0") .. "\n"
            .. "error .*unsupported URL 'nope://x'.*  nope://x\n$", out)
    end))
end)

describe("max_body", function()
    it("bounds a response body, whole or streamed", async(function()
        local srv, base = serve(function(req, res)
            if req.path == "/chunked" then
                for _ = 1, 10 do res:write(("c"):rep(10)) end
                return
            end
            res:finish(("x"):rep(100))
        end)
        assert.are.equal(100, #lasio.http.get(base .. "/", {max_body = 100}):body())
        local res = lasio.http.get(base .. "/", {max_body = 99})
        local e = http_error(res.body, res)
        assert.matches("body too large", msg(e))
        assert.are.equal("LIMIT", e.code)
        res = lasio.http.get(base .. "/chunked", {max_body = 50})
        local r, got = res:reader(), 0
        e = http_error(function()
            for chunk in r:chunks() do got = got + #chunk end
        end)
        assert.matches("body too large", msg(e))
        assert.is_true(got <= 50)
        -- the limit is per request: the next one on the pool has its own
        assert.are.equal(100, #lasio.http.get(base .. "/chunked"):body())
        e = helper.raises(lasio.http.get, base .. "/", {max_body = -1})
        assert.matches("max_body must be an integer >= 0", msg(e))
        srv:close()
    end))
end)
