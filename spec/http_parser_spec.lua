-- Specs for the HTTP parser (src/http/httpparse.c on llhttp): conformance
-- vectors, valid and invalid, each fed whole, split at every byte offset
-- and in chunks of every size, must give the same event trace (H8).
-- core.internal.http_trace runs the parser over a list of strings as if
-- they had arrived one by one. Vectors after llhttp's test/request and
-- test/response markdown files and H2-H6.
-- SPDX-License-Identifier: MIT
local internal = require("lasio.core").internal

local requests = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /p?q=1#f HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp:   v  \r\n\r\n",
    "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    -- pipelined: three messages in one buffer
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2"
        .. "\r\n\r\nabGET /3 HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\n\r\n\129\5hello",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://example.com:8080/abs?x HTTP/1.1\r\nHost: a\r\n\r\n",
    -- invalid (H2-H6): every one must fail the same way however it is cut
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
        .. "\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n",
    "GET / HTTP/1.1\rHost: a\r\n\r\n",
    "GET / HTTP/1.1\nHost: a\n\n",
    "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "GET / HTTP/1.1\r\nH\"ost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e\nabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    "\1\2\3 garbage\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
}

local responses = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo"
        .. "\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\nbody until the end",
    "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n"
        .. "Content-Length: 10\r\n\r\n",
    "HTTP/1.0 301 Moved\r\nLocation: /x\r\nSet-Cookie: a=1\r\n"
        .. "Set-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\n\r\n\129\2hi",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    "HTTP/1.1 2xx OK\r\n\r\n",
    "HTTX/1.1 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}

local function trace(kind, chunks)
    return internal.http_trace(kind, chunks)
end

-- The vector cut at offset i: two pieces.
local function split(s, i)
    return {s:sub(1, i), s:sub(i + 1)}
end

-- The vector in pieces of n bytes.
local function pieces(s, n)
    local list = {}
    for i = 1, #s, n do list[#list + 1] = s:sub(i, i + n - 1) end
    return list
end

local function check_all(kind, vectors)
    for v, s in ipairs(vectors) do
        local whole = trace(kind, {s})
        for i = 0, #s do
            local t = trace(kind, split(s, i))
            if t ~= whole then
                error(("vector %d split at %d: %q ~= %q"):format(v, i, t,
                    whole))
            end
        end
        for n = 1, #s do
            local t = trace(kind, pieces(s, n))
            if t ~= whole then
                error(("vector %d in pieces of %d: %q ~= %q"):format(v, n,
                    t, whole))
            end
        end
    end
end

describe("the HTTP parser", function()
    it("H8: requests give the same trace whole, split anywhere, in pieces",
        function()
            -- covers H8
            check_all("request", requests)
        end)

    it("H8: responses give the same trace whole, split anywhere, in pieces",
        function()
            -- covers H8
            check_all("response", responses)
        end)

    it("parses the valid vectors into what they say", function()
        assert.are.equal("GET / 1.1 keep=1 upgrade=0 [Host: a]\nbody 0 \nend\n",
            trace("request", {requests[1]}))
        local t = trace("request", {requests[4]})
        assert.matches("body 11 hello world\nend", t)
        t = trace("request", {requests[5]})
        assert.matches("^GET /1 1%.1.*\nPOST /2 1%.1.*\nbody 2 ab\nend\n"
            .. "GET /3 1%.0 keep=0", t)
        t = trace("request", {requests[8]})
        assert.matches("upgrade=1.*\nupgrade\n$", t)
        t = trace("response", {responses[3]})
        assert.matches("body 18 body until the end\nend%-at%-eof\n$", t)
        t = trace("response", {responses[4]})
        assert.matches("^204 No Content.*\nbody 0 \nend\n304 Not Modified", t)
    end)

    it("fails the invalid vectors with 400 (H2-H6)", function()
        for v = 11, #requests do
            local t = trace("request", {requests[v]})
            assert.is_truthy(t:find("error 400 ", 1, true)
                or t:find("eof-error", 1, true), ("vector %d: %s"):format(v, t))
        end
        assert.matches("eof%-error", trace("response", {responses[7]}))
        assert.matches("error 400", trace("response", {responses[8]}))
        assert.matches("error 400", trace("response", {responses[9]}))
        assert.matches("error 400", trace("response", {responses[10]}))
    end)

    it("enforces its limits as the bytes come (H7)", function()
        local long = "GET /" .. ("a"):rep(100) .. " HTTP/1.1\r\n\r\n"
        assert.matches("error 414 HPE_USER",
            internal.http_trace("request", pieces(long, 7), {max_line = 50}))
        local hdr = "GET / HTTP/1.1\r\nX: " .. ("v"):rep(100) .. "\r\n\r\n"
        assert.matches("error 431 HPE_USER",
            internal.http_trace("request", pieces(hdr, 3), {max_field = 50}))
        assert.matches("error 431 HPE_USER",
            internal.http_trace("request", {"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"},
                {max_headers = 1}))
        assert.matches("error 413 HPE_USER",
            internal.http_trace("request", {requests[3]}, {max_body = 10}))
    end)

    it("H7, H8: a limit gives the same answer however the bytes are cut",
        function()
            -- covers H7, H8: a byte llhttp refuses (400) after the point
            -- where a limit is passed is never looked at
            local opts = {max_line = 50, max_field = 50, max_head = 120,
                max_headers = 2}
            local cases = {
                {"GET /" .. ("a"):rep(60) .. "\1" .. ("a"):rep(20)
                    .. " HTTP/1.1\r\n\r\n", 414},
                {"GET /" .. ("a"):rep(49) .. "\1 HTTP/1.1\r\n\r\n", 400},
                {"GET / HTTP/1.1\r\nX: " .. ("v"):rep(55) .. "\1vv\r\n\r\n",
                    431},
                {"GET / HTTP/1.1\r\nX" .. ("n"):rep(55) .. "\1: v\r\n\r\n",
                    431},
                {"GET / HTTP/1.1\r\nA: " .. ("v"):rep(45) .. "\r\nB: "
                    .. ("v"):rep(45) .. "\r\nC: " .. ("v"):rep(40)
                    .. "\1\r\n\r\n", 431},
                {"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC\1: 3\r\n\r\n", 431},
                {"HTTP/1.1 200 " .. ("r"):rep(60) .. "\1\r\n\r\n", 414,
                    "response"},
            }
            for n, case in ipairs(cases) do
                local s, kind = case[1], case[3] or "request"
                local whole = internal.http_trace(kind, {s}, opts)
                assert.are.equal(case[2], tonumber(whole:match("^error (%d+) ")),
                    ("case %d: %s"):format(n, whole))
                for i = 0, #s do
                    assert.are.equal(whole, internal.http_trace(kind,
                        split(s, i), opts), ("case %d cut at %d"):format(n, i))
                end
                for k = 1, 9 do
                    assert.are.equal(whole, internal.http_trace(kind,
                        pieces(s, k), opts), ("case %d in pieces of %d")
                        :format(n, k))
                end
            end
        end)

    -- found by the fuzz target http_request: the next message of a
    -- pipeline was given to llhttp whole, past its limits
    it("H7, H8: a pipelined message's limits hold however the bytes are cut",
        function()
            local opts = {max_line = 50, max_field = 50, max_head = 120,
                max_headers = 2}
            local first = "GET /1 HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
            local cases = {
                {first .. "GET /" .. ("a"):rep(60) .. "\1 HTTP/1.1\r\n\r\n",
                    "request", "error 414 "},
                {first .. "GET / HTTP/1.1\r\nX: " .. ("v"):rep(55)
                    .. "\1\r\n\r\n", "request", "error 431 "},
                {first .. "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC\1: 3\r\n\r\n",
                    "request", "error 431 "},
                {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 "
                    .. ("r"):rep(60) .. "\1\r\n\r\n", "response", "error 414 "},
            }
            for n, case in ipairs(cases) do
                local s, kind = case[1], case[2]
                local whole = internal.http_trace(kind, {s}, opts)
                assert.is_truthy(whole:find("\n" .. case[3], 1, true),
                    ("case %d: %s"):format(n, whole))
                for i = 0, #s do
                    assert.are.equal(whole, internal.http_trace(kind,
                        split(s, i), opts), ("case %d cut at %d"):format(n, i))
                end
            end
        end)

    -- A malicious server's heads that give the parser empty spans before
    -- it has stored any byte (an empty reason phrase, an empty header
    -- name): a clean error or a parsed head, never a zero-length copy to
    -- a NULL buffer (the sanitizer build aborted on the first).
    it("survives empty spans at the start of a head", function()
        local cases = {
            {"HTTP/1.1 \n: 6\r\n\t\na", "^error 400 HPE_INVALID_HEADER_TOKEN"},
            {"HTTP/1.1 \n: 6\r\n", "^eof%-error"},
            {"HTTP/1.1 \n:\r\n\r\n", "^0  1%.1 .*%[: %]"},
            {"HTTP/1.1 \n\n", "^0  1%.1 keep=0"},
            {"HTTP/1.1 200 \r\n: x\r\n\r\n", "^200  1%.1 .*%[: x%]"},
            {"HTTP/1.1 200\r\n:\r\n\r\n", "^200  1%.1 .*%[: %]"},
        }
        for _, c in ipairs(cases) do
            local whole = trace("response", {c[1]})
            assert.matches(c[2], whole, 1, ("%q"):format(c[1]))
            for i = 0, #c[1] do
                assert.are.equal(whole, trace("response", split(c[1], i)))
            end
        end
        -- (llhttp takes an empty header name in a request)
        assert.matches("^GET / 1%.1 keep=1 upgrade=0 %[: %]\n",
            trace("request", {"GET / HTTP/1.1\r\n: \r\n\r\n"}))
    end)

    it("refuses a bad parser kind or option", function()
        local ok, e = pcall(internal.http_parser, "both", {})
        assert.is_false(ok)
        assert.matches("invalid option 'both'", tostring(e))
        ok, e = pcall(internal.http_parser, "request", {max_line = -5})
        assert.is_false(ok)
        assert.matches("option 'max_line' must be >= 0, got %-5", tostring(e))
    end)
end)
