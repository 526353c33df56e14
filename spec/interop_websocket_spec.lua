-- Interoperability of the WebSocket server (req:upgrade_websocket) and
-- client (lasio.http.websocket) with peers that are not lasio: Python's
-- `websockets` (Debian python3-websockets) and node's `ws` (npm, in
-- tests/interop), both ways: text and binary messages echoed, a large
-- message, fragments, ping and pong, subprotocols, and close codes and
-- reasons seen by both sides.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local H = require "http_helper"
local I = require "interop_helper"
local lasio = require "lasio"

local async = helper.async_guarded

-- The lasio server: echoes text as "echo <text>" and binary as is; "bye"
-- makes it close with 4001. Records how each connection closed.
local function echo_server()
    local closes = {}
    local srv, port = H.serve(function(req)
        local s = req:upgrade_websocket({protocols = {"chat", "superchat"}})
        while true do
            local msg, kind = s:recv()
            if msg == nil then break end
            if msg == "bye" then
                s:close(4001, "bye from lasio")
                break
            end
            s:send(kind == "text" and "echo " .. msg or msg, kind)
        end
        closes[#closes + 1] = s.close_code .. " " .. s.close_reason
    end)
    return srv, "ws://127.0.0.1:" .. port .. "/chat", closes
end

-- The lasio client against a peer started by start(): returns what the
-- peer printed about the closes.
local function client_session(url, prefix, peer_code, peer_reason)
    local s = lasio.http.websocket(url, {timeout = helper.t(10)})
    s:send("hi")
    assert.are.same({prefix .. "hi", "text"}, {s:recv()})
    s:send("\0\1\2\255", "binary")
    assert.are.same({"\0\1\2\255", "binary"}, {s:recv()})
    local big = ("0123456789abcdef"):rep(100 * 1024 // 16)
    s:send(big)
    assert.are.same({prefix .. big, "text"}, {s:recv()})
    assert.is_number(s:ping("lasio ping", helper.t(10)))
    -- the peer closes with its code and reason
    s:send("close please")
    assert.are.same({nil, peer_code, peer_reason}, {s:recv()})
    assert.is_true(s.closed)
    assert.are.equal(peer_code, s.close_code)
    -- a second connection that lasio closes with a code of its own
    s = lasio.http.websocket(url, {timeout = helper.t(10)})
    s:send("x")
    s:recv()
    s:close(3000, "from lasio")
    assert.are.equal(3000, s.close_code)
end

describe("WebSocket interoperability with Python websockets", function()
    it("the lasio server echoes a Python client and closes with 4001",
        async(function()
        local _ <close>, url, closes = echo_server()
        local out, err, status = I.python([[
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1],
                                  subprotocols=["superchat", "chat"]) as ws:
        print("protocol", ws.subprotocol)
        await ws.send("h\u00e9llo")
        print("text", await ws.recv())
        await ws.send(bytes([0, 255, 1]))
        print("binary", (await ws.recv()).hex())
        big = "z" * 200000
        await ws.send(big)
        r = await ws.recv()
        print("big", len(r), r == "echo " + big)
        await ws.send(["frag", "ment", "ed"])
        print("fragments", await ws.recv())
        pong = await ws.ping(b"pingdata")
        await asyncio.wait_for(pong, 20)
        print("pong")
        await ws.send("bye")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code, e.rcvd.reason)
asyncio.run(main())
]], {url})
        assert.are.equal(0, status, err)
        assert.are.equal(table.concat({"protocol chat", "text echo héllo",
            "binary 00ff01", "big 200005 True", "fragments echo fragmented",
            "pong", "closed 4001 bye from lasio", ""}, "\n"), out)
        assert.is_true(helper.wait_until(function() return #closes == 1 end))
        assert.are.equal("4001 bye from lasio", closes[1])
    end))

    it("the lasio client talks to a Python server, both close codes seen",
        async(function()
        local p, port = I.start(I.PYTHON, {"-c", [[
import asyncio, websockets
async def handler(ws, path=None):
    try:
        async for msg in ws:
            if msg == "close please":
                await ws.close(4002, "done here")
                return
            await ws.send(msg if isinstance(msg, bytes) else "py:" + msg)
    finally:
        print("closed", ws.close_code, ws.close_reason, flush=True)
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0,
                                max_size=2 ** 20) as server:
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
]]}, "^PORT (%d+)")
        local ok, e = pcall(client_session, "ws://127.0.0.1:" .. port .. "/",
            "py:", 4002, "done here")
        local lines = {}
        if ok then
            p.stdout:settimeout(helper.t(10))
            lines[1] = p.stdout:readline()
            lines[2] = p.stdout:readline()
        end
        I.stop(p)
        assert(ok, e)
        assert.are.same({"closed 4002 done here\n", "closed 3000 from lasio\n"},
            lines)
    end))
end)

describe("WebSocket interoperability with node ws", function()
    it("the lasio server echoes a node client and closes with 4001",
        async(function()
        local _ <close>, url, closes = echo_server()
        local out, err, status = I.node([[
const WebSocket = require("ws");
const ws = new WebSocket(process.argv[1], ["superchat", "chat"]);
let step = 0;
ws.on("open", () => ws.send("h\u00e9llo"));
ws.on("message", (data, isBinary) => {
  step++;
  if (step === 1) {
    console.log("text " + data.toString() + " " + ws.protocol);
    ws.send(Buffer.from([0, 255, 1]));
  } else if (step === 2) {
    console.log("binary " + isBinary + " " + data.toString("hex"));
    ws.send("q".repeat(300000));
  } else if (step === 3) {
    console.log("big " + data.length);
    ws.ping("pp");
  }
});
ws.on("pong", (d) => { console.log("pong " + d.toString()); ws.send("bye"); });
ws.on("close", (code, reason) => console.log("closed " + code + " " + reason));
ws.on("error", (e) => { console.error(e); process.exit(1); });
]], {url})
        assert.are.equal(0, status, err)
        assert.are.equal(table.concat({"text echo héllo chat",
            "binary true 00ff01", "big 300005", "pong pp",
            "closed 4001 bye from lasio", ""}, "\n"), out)
        assert.is_true(helper.wait_until(function() return #closes == 1 end))
        assert.are.equal("4001 bye from lasio", closes[1])
    end))

    it("the lasio client talks to a node server, both close codes seen",
        async(function()
        local p, port = I.start("node", {"-e", [[
const { WebSocketServer } = require("ws");
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("listening", () => console.log("PORT " + wss.address().port));
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    if (!isBinary && data.toString() === "close please") {
      ws.close(4003, "node is done");
      return;
    }
    ws.send(isBinary ? data : "node:" + data.toString(), { binary: isBinary });
  });
  ws.on("close", (code, reason) => console.log("closed " + code + " " + reason));
});
]]}, "^PORT (%d+)", {cwd = I.NODE_DIR})
        local ok, e = pcall(client_session, "ws://127.0.0.1:" .. port .. "/",
            "node:", 4003, "node is done")
        local lines = {}
        if ok then
            p.stdout:settimeout(helper.t(10))
            lines[1] = p.stdout:readline()
            lines[2] = p.stdout:readline()
        end
        I.stop(p)
        assert(ok, e)
        assert.are.same({"closed 4003 node is done\n",
            "closed 3000 from lasio\n"}, lines)
    end))
end)
