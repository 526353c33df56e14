-- examples/deploy/ with a real nginx (Debian's) in front of two lasio
-- processes: nginx balances them, and requests keep succeeding while one
-- of them stops. The example's nginx config is used as shipped, with its
-- ports moved to free ones.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"

local async = helper.async_guarded
local NGINX = "/usr/sbin/nginx"


local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local function write(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

-- One GET on a new connection; returns status and body, or nil and the
-- error.
local function get(port, path)
    local ok, reader, writer = pcall(lasio.open_connection, "127.0.0.1", port)
    if not ok then return nil, reader end
    writer:write("GET " .. path .. " HTTP/1.0\r\nHost: test\r\n\r\n")
    local answer = reader:read()
    writer:close()
    return tonumber(answer:match("^HTTP/1%.%d (%d+)")), answer:match("\r\n\r\n(.*)$")
end

local function wait_listening(port)
    assert(helper.wait_until(function()
        local ok, _, w = pcall(lasio.open_connection, "127.0.0.1", port)
        if ok then w:close() end
        return ok
    end, 10), "nothing listens on port " .. port)
end

local function start_app(port, name)
    local p = lasio.create_subprocess_exec(helper.lasio_bin,
        {helper.root .. "/examples/deploy/app.lua", tostring(port), name},
        {stdout = lasio.PIPE})
    assert.are.equal(("%s listening on 127.0.0.1:%d\n"):format(name, port),
        lasio.wait_for(function() return p.stdout:readline() end, helper.t(20)))
    return p
end

-- nginx in the foreground, one process, everything under dir; the
-- example's lasio.conf included with the ports of this run.
local function start_nginx(dir, front, a, b)
    local conf = read(helper.root .. "/examples/deploy/lasio.conf")
    local n
    conf, n = conf:gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. front)
    assert(n == 1)
    conf = conf:gsub("127%.0%.0%.1:8081", "127.0.0.1:" .. a)
    conf = conf:gsub("127%.0%.0%.1:8082", "127.0.0.1:" .. b)
    write(dir .. "/lasio.conf", conf)
    write(dir .. "/nginx.conf", ([[
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    include %s/lasio.conf;
}
]]):format(dir, dir, dir, dir, dir, dir, dir, dir))
    local p = lasio.create_subprocess_exec(NGINX,
        {"-p", dir, "-e", dir .. "/error.log", "-c", dir .. "/nginx.conf"},
        {stderr = lasio.PIPE})
    wait_listening(front)
    return p
end

describe("examples/deploy: nginx in front of two lasio processes", function()
    it("balances requests over both and skips one that stopped", async(function()
        local dir = net.tmpdir()
        local front, pa, pb = net.free_port(), net.free_port(), net.free_port()
        local a, b, nginx
        finally(function() -- nothing outlives a failed case
            for _, p in ipairs{a, b, nginx} do
                if p and not p.returncode then p:kill() end
            end
            net.rmdir(dir)
        end)
        a, b = start_app(pa, "a"), start_app(pb, "b")
        nginx = start_nginx(dir, front, pa, pb)
        local seen = {}
        for _ = 1, 20 do
            local status, body = get(front, "/")
            assert.are.equal(200, status)
            seen[body] = (seen[body] or 0) + 1
        end
        assert.is_truthy(seen["hello from a\n"], "a answered")
        assert.is_truthy(seen["hello from b\n"], "b answered")
        assert.are.same({200, "ok\n"}, {get(front, "/health")})
        assert.are.equal(404, (get(front, "/nope")))

        a:terminate() -- graceful: it stops accepting, nginx goes to b
        assert.are.equal(143, lasio.wait_for(function() return a:wait() end, helper.t(20)))
        for _ = 1, 20 do
            assert.are.same({200, "hello from b\n"}, {get(front, "/")})
        end

        nginx:terminate()
        nginx:wait()
        b:terminate()
        b:wait()
    end))
end)
