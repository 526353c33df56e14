-- The HTTP examples run as tests: each server example runs in a child
-- process and this spec talks to it with lasio.http, then stops it with
-- SIGINT (exit status 130).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local function start(name, args)
    local argv = {"examples/" .. name}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    local p = lasio.create_subprocess_exec(helper.lasio_bin, argv,
        {stdout = lasio.PIPE, cwd = helper.root})
    local line = p.stdout:readline()
    local port = tonumber(line:match("listening on 127%.0%.0%.1:(%d+)"))
    assert.is_number(port, line)
    return p, "http://127.0.0.1:" .. port
end

local function stop(p)
    p:send_signal("SIGINT")
    assert.are.equal(130, p:wait(helper.t(10)))
end

describe("HTTP examples", function()
    it("http_api.lua: routes, JSON bodies, 201/204/400/404/405",
        async(function()
            local p, base = start("http_api.lua")
            local json = require "cjson"
            local res = lasio.http.request("POST", base .. "/notes",
                {body = '{"text": "buy milk"}'})
            assert.are.equal(201, res.status)
            assert.are.equal("/notes/1", res.headers.location)
            assert.are.same({id = 1, text = "buy milk"}, json.decode(res:body()))
            res = lasio.http.get(base .. "/notes")
            assert.are.equal("application/json", res.headers["content-type"])
            assert.are.same({{id = 1, text = "buy milk"}}, json.decode(res:body()))
            res = lasio.http.request("POST", base .. "/notes", {body = "nope"})
            assert.are.equal(400, res.status)
            res:body()
            res = lasio.http.request("PUT", base .. "/notes")
            assert.are.equal(405, res.status)
            res:body()
            res = lasio.http.request("DELETE", base .. "/notes/1")
            assert.are.equal(204, res.status)
            res = lasio.http.get(base .. "/notes/1")
            assert.are.equal(404, res.status)
            assert.are.equal("[]", lasio.http.get(base .. "/notes"):body())
            stop(p)
        end))

    it("http_static.lua: files, directories, 404 and .. refused",
        async(function()
            local dir = net.tmpdir()
            lasio.fs.mkdir(dir .. "/sub")
            lasio.fs.write_file(dir .. "/index.html", "<h1>hi</h1>")
            lasio.fs.write_file(dir .. "/sub/a b.txt", "spaced")
            local p, base = start("http_static.lua", {dir})
            local res = lasio.http.get(base .. "/index.html")
            assert.are.equal("text/html; charset=utf-8", res.headers["content-type"])
            assert.are.equal("<h1>hi</h1>", res:body())
            assert.are.equal("spaced", lasio.http.get(base .. "/sub/a%20b.txt"):body())
            assert.are.equal("index.html\nsub\n", lasio.http.get(base .. "/"):body())
            res = lasio.http.get(base .. "/missing")
            assert.are.equal(404, res.status)
            res:body()
            res = lasio.http.get(base .. "/sub/../../etc/passwd")
            assert.are.equal(400, res.status)
            res:body()
            stop(p)
            net.rmdir(dir)
        end))
end)

describe("WebSocket example", function()
    it("websocket_chat.lua relays messages, joins and leaves", async(function()
        local p, base = start("websocket_chat.lua")
        local url = base:gsub("^http", "ws") .. "/ws?name="
        local ann = lasio.http.websocket(url .. "ann")
        assert.are.equal("* ann joined", ann:recv())
        local bob = lasio.http.websocket(url .. "bob")
        assert.are.equal("* bob joined", ann:recv())
        assert.are.equal("* bob joined", bob:recv())
        bob:send("hi all")
        assert.are.same({"bob: hi all", "text"}, {ann:recv()})
        assert.are.equal("bob: hi all", bob:recv())
        bob:close()
        assert.are.equal("* bob left", ann:recv())
        ann:close()
        assert.matches("<title>lasio chat</title>", lasio.http.get(base .. "/"):body())
        stop(p)
    end))
end)
