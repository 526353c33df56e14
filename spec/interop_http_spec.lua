-- Interoperability of the HTTP server (lasio.http.serve) with clients
-- that are not lasio: curl, Python's http.client and node's fetch, each
-- run for real against a server on an ephemeral port: bodies, headers,
-- status codes, chunked bodies both ways, HEAD, and keep-alive reuse.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local H = require "http_helper"
local I = require "interop_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function handler(req, res)
    if req.path == "/hello" then
        res:set_header("Content-Type", "text/plain")
        res:set_header("X-Served-By", "lasio")
        res:finish("hello " .. (req.headers["x-name"] or "world"))
    elseif req.path == "/echo" then
        local body = req:body()
        res:set_header("X-Method", req.method)
        res:set_header("X-Chunked", tostring(req.chunked or false))
        res:finish(body)
    elseif req.path == "/stream" then
        for i = 1, 5 do
            res:write("part" .. i .. "\n")
            lasio.sleep(0.01)
        end
    else
        res:set_status(404)
        res:finish("no such page")
    end
end

local STREAM = "part1\npart2\npart3\npart4\npart5\n"

describe("HTTP server interoperability", function()
    it("curl: headers, uploads, streaming, 404, HEAD then GET and "
        .. "keep-alive", async(function()
        local _ <close>, port = H.serve(handler)
        local base = "http://127.0.0.1:" .. port
        local function curl(...)
            local out, err, status = I.run("curl", {"-s", "-S", "--max-time",
                "20", ...})
            assert.are.equal(0, status, err)
            return out
        end
        local out = curl("-D", "-", "-H", "X-Name: curl", base .. "/hello")
        assert.matches("^HTTP/1.1 200 OK\r\n", out)
        assert.matches("\r\nX%-Served%-By: lasio\r\n", out)
        assert.matches("\r\nContent%-Length: 10\r\n", out)
        assert.matches("\r\n\r\nhello curl$", out)
        -- an upload of 200 KB, sent by curl with Expect: 100-continue
        local dir = require("net_helper").tmpdir()
        local file = dir .. "/upload.bin"
        local data = {}
        for i = 1, 200 * 1024 // 16 do data[i] = ("%015d\n"):format(i) end
        data = table.concat(data)
        local f = assert(io.open(file, "wb"))
        f:write(data)
        f:close()
        assert.are.equal(data, curl("-H", "Expect: 100-continue",
            "--data-binary", "@" .. file, base .. "/echo"))
        require("net_helper").rmdir(dir)
        assert.are.equal("X-Chunked: true", curl("-D", "-", "-o", "/dev/null",
            "-H", "Transfer-Encoding: chunked", "-d", "abc", base .. "/echo")
            :match("X%-Chunked: %a+"))
        assert.are.equal(STREAM, curl(base .. "/stream"))
        assert.are.equal("no such page404", curl("-w", "%{http_code}",
            base .. "/missing"))
        -- HEAD then GET on the same connection: the HEAD answer has no
        -- body bytes, so the GET answer that follows parses
        out = curl("-I", base .. "/hello", "--next", "-s", "-S",
            base .. "/stream", "--next", "-s", "-S", "-w",
            "%{num_connects}", base .. "/hello")
        assert.matches("^HTTP/1.1 200 OK\r\n.*Content%-Length: 11\r\n", out)
        assert.matches("\r\n\r\n" .. STREAM .. "hello world0$", out)
        -- three requests, one connection
        assert.are.equal("1 0 0 ", curl("-o", "/dev/null", "-o", "/dev/null",
            "-o", "/dev/null", "-w", "%{num_connects} ", base .. "/hello",
            base .. "/echo", base .. "/hello"))
    end))

    it("Python http.client: a keep-alive connection with every kind of "
        .. "body", async(function()
        local _ <close>, port = H.serve(handler)
        local out, err, status = I.python([[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
def show(*parts):
    print("|".join(str(p) for p in parts))
c.request("GET", "/hello", headers={"X-Name": "python"})
r = c.getresponse()
show("get", r.status, r.reason, r.getheader("X-Served-By"),
     r.getheader("Content-Type"), r.read().decode())
first = c.sock
c.request("POST", "/echo", body=b"x" * 100000)
r = c.getresponse()
body = r.read()
show("post", r.status, r.getheader("X-Method"), len(body), body == b"x" * 100000)
c.request("PUT", "/echo", body=iter([b"ab", b"cd", b"ef"]),
          encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
r = c.getresponse()
show("chunked", r.getheader("X-Method"), r.getheader("X-Chunked"), r.read().decode())
c.request("HEAD", "/hello")
r = c.getresponse()
show("head", r.status, r.getheader("Content-Length"), repr(r.read()))
c.request("GET", "/stream")
r = c.getresponse()
show("stream", r.getheader("Transfer-Encoding"), repr(r.read().decode()))
c.request("GET", "/missing")
r = c.getresponse()
show("missing", r.status, r.reason, r.read().decode())
show("one connection", c.sock is first)
]], {port})
        assert.are.equal(0, status, err)
        assert.are.equal(table.concat({
            "get|200|OK|lasio|text/plain|hello python",
            "post|200|POST|100000|True",
            "chunked|PUT|true|abcdef",
            "head|200|11|b''",
            "stream|chunked|'part1\\npart2\\npart3\\npart4\\npart5\\n'",
            "missing|404|Not Found|no such page",
            "one connection|True", ""}, "\n"), out)
    end))

    it("node fetch: headers, bodies both ways, streaming, 404",
        async(function()
        local _ <close>, port = H.serve(handler)
        local out, err, status = I.node([[
const base = process.argv[1];
(async () => {
  let r = await fetch(base + "/hello", {headers: {"X-Name": "node"}});
  console.log(r.status, r.headers.get("x-served-by"), await r.text());
  r = await fetch(base + "/echo", {method: "POST", body: "y".repeat(50000)});
  const t = await r.text();
  console.log(r.status, r.headers.get("x-method"), t.length, t === "y".repeat(50000));
  r = await fetch(base + "/stream");
  const reader = r.body.getReader();
  let s = "", parts = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    s += Buffer.from(value).toString();
    parts++;
  }
  console.log(r.headers.get("transfer-encoding"), JSON.stringify(s), parts > 1);
  const enc = new TextEncoder();
  r = await fetch(base + "/echo", {method: "POST", duplex: "half",
    body: new ReadableStream({start(c) {
      c.enqueue(enc.encode("stre")); c.enqueue(enc.encode("amed")); c.close();
    }})});
  console.log(r.headers.get("x-chunked"), await r.text());
  r = await fetch(base + "/missing");
  console.log(r.status, r.statusText, await r.text());
})().catch(e => { console.error(e); process.exit(1); });
]], {"http://127.0.0.1:" .. port})
        assert.are.equal(0, status, err)
        assert.are.equal(table.concat({
            "200 lasio hello node",
            "200 POST 50000 true",
            'chunked "part1\\npart2\\npart3\\npart4\\npart5\\n" true',
            "true streamed",
            "404 Not Found no such page", ""}, "\n"), out)
    end))
end)
