-- Helpers for the network specs: connected stream pairs on loopback, fd
-- and memory counters of this process, temporary directories, and the
-- stress-size scaling for sanitizer and I/O-shim runs.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local M = {}

M.sanitized = os.getenv("LASIO_SANITIZED") == "1"
-- set when the specs run under the one-byte / EAGAIN I/O shim (S2)
M.shim = os.getenv("LASIO_IO_SHIM") == "1"

-- Scales a stress count or size down for slow runs.
function M.scale(n, small)
    if M.shim then return small or math.max(1, n // 100) end
    if M.sanitized then return math.max(1, n // 10) end
    return n
end

-- Number of open fds of this process. Not through `ls /proc/PID/fd` in
-- a popen: the child may list the popen pipe's write end before the
-- parent has closed it (an fd counted one time in many, under load).
-- An fd's /proc/self/fdinfo entry exists only once it is installed, so
-- the descriptor each probe opens is never counted itself.
M.MAX_FD = 1024
function M.fds()
    local n = 0
    for fd = 0, M.MAX_FD - 1 do
        local f = io.open("/proc/self/fdinfo/" .. fd)
        if f then
            n = n + 1
            f:close()
        end
    end
    return n
end

-- Inside a task: lets connections that other tasks are closing finish
-- (under the lasio command every spec shares one loop), so that the fd
-- count is stable; returns it.
function M.settle()
    local lasio = require "lasio"
    local last = -1
    for _ = 1, 200 do
        collectgarbage()
        lasio.sleep(0.005)
        local n = M.fds()
        if n == last then return n end
        last = n
    end
    return last
end

-- Inside a task: waits until the fd count comes back to n (or below).
function M.fds_back_to(n)
    return helper.wait_until(function()
        collectgarbage()
        return M.fds() <= n
    end)
end

-- A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
function M.status_kb(field)
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match(field .. ":%s*(%d+)"))
end

-- Inside a task: a TCP port on 127.0.0.1 nothing listens on right now
-- (bound on port 0, then closed), for a child process to listen on or a
-- connection to be refused by.
function M.free_port()
    local lasio = require "lasio"
    local s = lasio.start_server(function() end, "127.0.0.1", 0)
    local port = s:sockets()[1].port
    s:close()
    s:wait_closed()
    return port
end

-- A new empty temporary directory; removed by M.rmdir.
function M.tmpdir()
    local h = io.popen("mktemp -d")
    local d = h:read("l")
    h:close()
    return d
end

function M.rmdir(d)
    os.execute("rm -rf " .. helper.shell_quote(d))
end

-- Inside a task: a connected TCP pair on 127.0.0.1. Returns a table with
-- the client side (cr, cw), the server side (sr, sw), the port, and
-- done() to let the server's connection task end. opts go to both
-- start_server and open_connection (limit).
function M.pair(opts)
    local lasio = require "lasio"
    local conn = lasio.Future()
    local release = lasio.Future()
    local server = lasio.start_server(function(r, w)
        conn:set_result(r, w)
        release:await()
    end, "127.0.0.1", 0, opts)
    local port = server:sockets()[1].port
    local cr, cw = lasio.open_connection("127.0.0.1", port, opts)
    local sr, sw = conn:await()
    server:close()
    return {
        cr = cr, cw = cw, sr = sr, sw = sw, port = port, server = server,
        done = function()
            if not release:done() then release:set_result() end
        end,
    }
end

-- Builds the one-byte / EAGAIN I/O shim (spec/support/ioshim.c) in dir;
-- returns the LD_PRELOAD value that loads it (after the sanitizer
-- runtimes in the sanitizer build, which must come first).
function M.build_io_shim(dir)
    local q = helper.shell_quote
    local so = dir .. "/ioshim.so"
    assert(os.execute(("cc -shared -fPIC -O1 -o %s %s/spec/support/ioshim.c -ldl")
        :format(q(so), q(helper.root))), "cannot build the I/O shim")
    if not M.sanitized then return so end
    local h = io.popen("gcc -print-file-name=libasan.so; gcc -print-file-name=libubsan.so")
    local pre = h:read("l") .. ":" .. h:read("l") .. ":" .. so
    h:close()
    return pre
end

-- Runs busted on the spec files (a space-separated list) with the extra
-- environment env ("" for none); returns the counts of TAP successes and
-- of failures + errors, and the output.
function M.run_busted(files, env)
    local q = helper.shell_quote
    local out = os.tmpname()
    local interp = helper.mode == "lasio" and helper.lasio_bin or "lua5.4"
    os.execute(("cd %s && %s timeout -k 5 %d busted --lua=%s -o TAP %s >%s 2>&1")
        :format(q(helper.root), env, math.ceil(helper.t(240)), q(interp), files,
            q(out)))
    local f = assert(io.open(out))
    local text = f:read("a")
    f:close()
    os.remove(out)
    local ok, bad = 0, 0
    for line in text:gmatch("[^\n]+") do
        if line:match("^ok ") then ok = ok + 1 end
        if line:match("^not ok ") then bad = bad + 1 end
    end
    return ok, bad, text
end

-- Inside a task: an echo server on 127.0.0.1 (port 0); returns it and
-- its port.
function M.echo_server(opts)
    local lasio = require "lasio"
    local server = lasio.start_server(function(r, w)
        pcall(function() -- a peer may reset: that ends the connection
            while true do
                local data = r:read(65536)
                if data == "" then break end
                w:write(data)
                w:drain()
            end
        end)
    end, "127.0.0.1", 0, opts)
    return server, server:sockets()[1].port
end

-- Does this machine have IPv6 on loopback?
function M.has_ipv6()
    local f = io.open("/proc/net/if_inet6")
    if not f then return false end
    local s = f:read("a")
    f:close()
    return s:find("00000000000000000000000000000001", 1, true) ~= nil
end

return M
