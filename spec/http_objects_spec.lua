-- Specs for the request and response objects of lasio.http.serve
-- (docs/API.md, HTTP/1.1 Server): fields a handler assigns, a request
-- kept past its response, bodies larger than the head's buffer, the Date
-- header as the seconds pass, and bad arguments to the methods.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local H = require "http_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function get(path, extra)
    return "GET " .. (path or "/") .. " HTTP/1.1\r\nHost: x\r\n"
        .. (extra or "") .. "\r\n"
end

-- Reads one response with a Content-Length from r: head, body.
local function read_response(r)
    local head = r:readuntil("\r\n\r\n")
    local n = tonumber(head:match("\r\nContent%-Length: (%d+)\r\n"))
    return head, r:readexactly(n)
end

describe("http.Request and http.Response objects", function()
    it("keep the fields a handler assigns, per request", async(function()
        local seen = {}
        local srv, port = H.serve(function(req, res)
            seen[#seen + 1] = {user = req.user, trace = res.trace}
            req.user = "ann" .. #seen
            res.trace = {id = #seen}
            req.path = "/rewritten" -- shadows the request's own field
            res:finish(req.user .. " " .. res.trace.id .. " " .. req.path
                .. " " .. req.method)
        end)
        local out = H.raw(port, get("/a") .. get("/b"), {until_text = "ann2"})
        assert.matches("ann1 1 /rewritten GET", out, 1, true)
        assert.matches("ann2 2 /rewritten GET", out, 1, true)
        -- nothing of the first request's fields reaches the second's
        assert.are.same({{}, {}}, seen)
        srv:close()
    end))

    it("keep their own head after the connection moved on", async(function()
        local kept = {}
        local srv, port = H.serve(function(req, res)
            kept[#kept + 1] = req
            res:finish("ok")
        end)
        H.raw(port, get("/one?x=1", "X-N: 1\r\n") .. get("/two", "X-N: 2\r\n"),
            {until_text = "okHTTP"})
        assert.is_true(helper.wait_until(function() return #kept == 2 end))
        assert.are.equal("/one", kept[1].path)
        assert.are.equal("x=1", kept[1].query)
        assert.are.equal("/one?x=1", kept[1].target)
        assert.are.equal("1", kept[1].headers["X-N"])
        assert.are.equal("2", kept[2].headers["x-n"])
        assert.are.equal("", kept[2].query)
        assert.are.equal("1.1", kept[2].version)
        assert.is_true(kept[2].keep_alive)
        assert.is_nil(kept[2].content_length)
        assert.matches("^lasio.http.Request %(GET /two%)", tostring(kept[2]))
        srv:close()
    end))

    it("send a body larger than the head's buffer whole, with the head",
        async(function()
            local sizes = {4096, 4097, 100000, 3 * 1024 * 1024}
            local bodies = {}
            for i, n in ipairs(sizes) do
                bodies[i] = ("%d:"):format(n) .. ("x"):rep(n - #tostring(n) - 1)
            end
            local srv, port = H.serve(function(req, res)
                local i = tonumber(req.path:match("%d+"))
                res:set_header("Content-Type", "text/plain")
                res:finish(bodies[i])
            end)
            local r, w = lasio.open_connection("127.0.0.1", port)
            r:settimeout(helper.t(10))
            for i, n in ipairs(sizes) do
                w:write(get("/" .. i))
                local head, body = read_response(r)
                assert.matches("^HTTP/1.1 200 OK\r\n", head)
                assert.matches("\r\nContent%-Length: " .. n .. "\r\n", head)
                assert.are.equal(n, #body)
                assert.is_true(body == bodies[i], "body " .. i .. " differs")
            end
            w:close()
            srv:close()
        end))

    it("date each response with the second it is sent in", async(function()
        local srv, port = H.serve(function(_, res) res:finish("d") end)
        local r, w = lasio.open_connection("127.0.0.1", port)
        r:settimeout(helper.t(5))
        local function date()
            w:write(get())
            local head = read_response(r)
            return head:match("\r\nDate: ([^\r\n]+)\r\n")
        end
        local d1 = date()
        assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", d1)
        assert.are.equal(os.date("!%a, %d %b %Y", os.time()), d1:sub(1, 16))
        local t0 = os.time()
        repeat lasio.sleep(0.05) until os.time() > t0
        local d2 = date()
        assert.are_not.equal(d1, d2)
        assert.are.equal(os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time()), d2)
        w:close()
        srv:close()
    end))

    it("keep their methods when the module is loaded again", async(function()
        -- as errors_spec does: every lasio module unloaded, lasio required
        -- again, the modules in use put back
        local saved = helper.unload_lasio()
        local ok, e = pcall(require, "lasio")
        helper.restore_lasio(saved)
        assert(ok, e)
        local srv, port = H.serve(function(req, res)
            res:write(req:body())
            res:finish()
        end)
        local out = H.raw(port, "POST / HTTP/1.1\r\nHost: x\r\n"
            .. "Content-Length: 3\r\n\r\nabc", {until_text = "0\r\n\r\n"})
        assert.matches("^HTTP/1.1 200 OK\r\n", out)
        assert.matches("\r\n\r\n3\r\nabc\r\n0\r\n\r\n$", out)
        srv:close()
    end))

    it("raise on bad arguments, naming the method and the argument",
        async(function()
            local errors = {}
            local function try(f, ...)
                local ok, e = pcall(f, ...)
                errors[#errors + 1] = ok and "no error" or tostring(e)
            end
            local srv, port = H.serve(function(req, res)
                try(res.set_status, res, "200")
                try(res.set_status, res, 99)
                try(res.set_header, res, nil, "x")
                try(res.set_header, res, "X-A", {})
                try(res.add_header, res, "Bad Name", "x")
                try(res.set_header, res, "Content-Length", "12a")
                try(res.set_header, res, "Transfer-Encoding", "chunked")
                try(res.get_header, res, 42)
                try(res.finish, res, 42)
                try(res.write, res, false)
                try(res.finish, nil)
                try(res.finish, req)
                try(req.set_max_body, req, "x")
                res:set_header("Content-Length", "3")
                try(res.finish, res, "four")
                res:finish("abc")
                try(res.finish, res, "more")
                try(res.set_header, res, "X-Late", "1")
            end)
            local out = H.raw(port, get(), {until_text = "abc"})
            assert.matches("Content%-Length: 3\r\n\r\nabc$", out)
            local want = {
                "res:set_status: status must be an integer from 100 to 999, "
                    .. "not 200",
                "res:set_status: status must be an integer from 100 to 999, "
                    .. "not 99",
                "res:set_header: header name must be a string, not a nil",
                "res:set_header: value of header 'X%-A' must be a string or a "
                    .. "number, not a table",
                "res:add_header: invalid character 0x20 in header name",
                "res:set_header: Content%-Length must be a number >= 0, not "
                    .. "'12a'",
                "res:set_header: Transfer%-Encoding is the server's",
                "res:get_header: name must be a string, not a number",
                "res:finish: body must be a string, not a number",
                "res:write: chunk must be a string, not a boolean",
                "res:finish: self must be a lasio.http.Response %(res:finish%(%)%), "
                    .. "not a nil",
                "res:finish: self must be a lasio.http.Response %(res:finish%(%)%), "
                    .. "not a userdata",
                "req:set_max_body: n must be an integer",
                "res:finish: the body has 4 bytes, but Content%-Length says 3",
                "res:finish: the response is already finished",
                "res:set_header: the response is already finished",
            }
            assert.are.equal(#want, #errors)
            for i, pat in ipairs(want) do assert.matches(pat, errors[i]) end
            srv:close()
        end))
end)

describe("the connection's request loop", function()
    it("answers thousands of pipelined requests in order, none suspending",
        async(function()
            local n = os.getenv("LASIO_SANITIZED") and 500 or 3000
            local srv, port = H.serve(function(req, res)
                res:finish(req.path:sub(2) .. ";")
            end, {keepalive_requests = n + 1})
            local parts = {}
            for i = 1, n do parts[i] = get("/" .. i) end
            local out = H.raw(port, table.concat(parts),
                {until_text = ";" .. n .. ";", wait = helper.t(20)})
            local bodies = {}
            for b in out:gmatch("\r\n\r\n(%d+);") do bodies[#bodies + 1] = b end
            assert.are.equal(n, #bodies)
            for i = 1, n do assert.are.equal(tostring(i), bodies[i]) end
            srv:close()
        end))

    it("alternates handlers that suspend and handlers that do not",
        async(function()
            local srv, port = H.serve(function(req, res)
                if req.path:find("slow", 1, true) then lasio.sleep(0.01) end
                res:finish(req.path)
            end)
            local out = H.raw(port, get("/slow1") .. get("/fast2")
                .. get("/slow3") .. get("/fast4"), {until_text = "/fast4"})
            local paths = {}
            for p in out:gmatch("\r\n\r\n(/%a+%d)") do paths[#paths + 1] = p end
            assert.are.same({"/slow1", "/fast2", "/slow3", "/fast4"}, paths)
            srv:close()
        end))
end)

-- The state the request loop in C and lua/lasio/http_server.lua share
-- (src/http/httpconn.c): bytes in C, boolean fields in Lua.
describe("the connection's state", function()
    local internal = require("lasio.core").internal

    it("has its six fields, false at first, and refuses any other", function()
        local st = internal.http_conn_state()
        for _, k in ipairs {"busy", "handling", "upgraded", "gone", "abort", "closing"} do
            assert.is_false(st[k])
            st[k] = 1
            assert.is_true(st[k])
            st[k] = nil
            assert.is_false(st[k])
        end
        local ok, err = pcall(function() return st.busyy end)
        assert.is_false(ok)
        assert.matches("connection state: no field 'busyy'", err)
        ok, err = pcall(function() st.other = true end)
        assert.is_false(ok)
        assert.matches("no field 'other'", err)
    end)

    it("is checked by the request loop", async(function()
        local ok, err = pcall(internal.http_serve, internal.http_parser("request", {}),
            nil, nil, {}, print, {})
        assert.is_false(ok)
        assert.matches("bad argument #2", err)
        local srv, port = H.serve(function(_, res) res:finish("x") end)
        local r, w = lasio.open_connection("127.0.0.1", port)
        w:write(get())
        local head = r:readuntil("\r\n\r\n")
        assert.matches("^HTTP/1.1 200", head)
        w:close()
        srv:close()
        local parser = internal.http_parser("request", {})
        ok, err = pcall(internal.http_serve, parser, r, w, {}, print, {},
            1, 1, 1, 1, 1, print)
        assert.is_false(ok)
        assert.matches("bad argument #6 .*lasio.http.ConnectionState", err)
    end))

    it("closing: a request in flight when the server closes is its last",
        async(function()
            local entered = lasio.Event()
            local go = lasio.Event()
            local srv, port = H.serve(function(_, res)
                entered:set()
                go:wait()
                res:finish("bye")
            end)
            local r, w = lasio.open_connection("127.0.0.1", port)
            w:write(get())
            entered:wait()
            local closing = lasio.spawn(function() srv:close() end)
            lasio.sleep(0)
            go:set()
            local head = r:readuntil("\r\n\r\n")
            assert.matches("\r\nConnection: close\r\n", head)
            assert.are.equal("bye", r:readexactly(3))
            assert.are.equal("", r:read())
            w:close()
            closing:await()
        end))
end)
