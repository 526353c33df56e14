-- The soak run of scripts/soak.sh: `soak.lua MINUTES` starts this same
-- script as `soak.lua serve` in a process of its own (the process under
-- test) and drives it for MINUTES with a mixed workload and faults:
--   HTTP: keep-alive requests, pipelined bursts, bodies that fit in
--     memory and bodies that go to the temporary file (docs/SERVER.md),
--     streamed (chunked) answers;
--   WebSocket: echo sessions, closed properly or dropped;
--   TCP: echo sessions;
--   faults: resets mid-request and mid-response, half-closes, readers too
--     slow for a large answer, clients that go away mid-body, garbage;
-- while the server itself runs subprocesses, thread jobs and timers.
-- Anything the server writes on stderr fails the run.
-- Every INTERVAL seconds it prints the server's open fds, RSS and Lua heap
-- (after a full collection). At the end the load stops, the server idles
-- for its connections to close, and the run fails on drift:
--   fds: back to the idle baseline taken before the load (not one more);
--   Lua heap: at most that baseline + 1 MiB;
--   RSS: the largest sample of the second half of the run at most the
--     largest of the first half (after the warm-up) + 16 MiB; a leak of
--     100 bytes a request is far more than that over two minutes, while
--     the allocator keeps the memory it was given at the peak.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

-- {====== The server under test ======

local function rss_kb()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Open fds, through /proc/self/fdinfo (an entry exists only once the fd
-- is installed, so the probe's own fd is never counted).
local function fd_count()
    local n = 0
    for fd = 0, 4095 do
        local f = io.open("/proc/self/fdinfo/" .. fd)
        if f then
            n = n + 1
            f:close()
        end
    end
    return n
end

local function stats()
    collectgarbage()
    collectgarbage()
    return ("fds=%d rss_kb=%d heap_kb=%d"):format(fd_count(), rss_kb(),
        math.floor(collectgarbage("count")))
end

local function handler(req, res)
    local path = req.path
    if path == "/hello" then
        res:set_header("Content-Type", "text/plain")
        res:finish("hello")
    elseif path == "/echo" then
        res:finish(req:body())
    elseif path == "/stream" then
        -- a body whose size the client asks for, in 16 KiB parts
        local n = tonumber(req.query:match("n=(%d+)")) or 0
        local part = string.rep("s", 16384)
        while n > 0 do
            res:write(n >= #part and part or part:sub(1, n))
            n = n - #part
        end
        res:finish()
    elseif path == "/read" then
        -- reads the body part by part
        local r, n = req:reader(), 0
        for chunk in r:chunks() do n = n + #chunk end
        res:finish(tostring(n))
    elseif path == "/ws" then
        local ws = req:upgrade_websocket()
        while true do
            local m, kind = ws:recv()
            if m == nil then break end
            ws:send(m, kind)
        end
    elseif path == "/stats" then
        res:set_header("Connection", "close")
        res:finish(stats())
    else
        res:set_status(404)
        res:finish("no\n")
    end
end

local function echo(reader, writer)
    pcall(function()
        while true do
            local data = reader:read(65536)
            if data == "" then break end
            writer:write(data)
            writer:drain()
        end
    end)
    writer:close()
end

-- The runtime's other parts, in the background of the same process.
local function background()
    local n = 0
    while true do
        n = n + 1
        local p = lasio.create_subprocess_exec("cat", nil, {stdin = lasio.PIPE,
            stdout = lasio.PIPE})
        local out = p:communicate("soak " .. n)
        assert(out == "soak " .. n, "subprocess echo")
        if n % 5 == 0 then
            -- one killed mid-run
            local s = lasio.create_subprocess_exec("sleep", {"10"})
            lasio.sleep(0.01)
            s:kill(9)
            s:wait()
        end
        local jobs = {}
        for i = 1, 4 do
            jobs[i] = lasio.spawn(lasio.to_thread, function(k)
                local t = {}
                for j = 1, 1000 do t[j] = j * k end
                return #t
            end, i)
        end
        for i = 1, 4 do assert(jobs[i]:await() == 1000) end
        local loop, fired = lasio.get_running_loop(), 0
        local handles = {}
        for i = 1, 50 do
            handles[i] = loop:call_later(0.001 * (i % 10),
                function() fired = fired + 1 end)
        end
        for i = 1, 50, 2 do handles[i]:cancel() end
        lasio.sleep(0.05)
        assert(fired == 25, "timers")
    end
end

local function serve()
    lasio.run(function()
        local srv = lasio.http.serve(handler, "127.0.0.1", 0,
            {body_timeout = 2, headers_timeout = 2, send_timeout = 2,
                lingering_timeout = 1})
        local tcp = lasio.start_server(echo, "127.0.0.1", 0)
        io.stdout:write(srv:sockets()[1].port, " ", tcp:sockets()[1].port,
            "\n")
        io.stdout:flush()
        local bg = lasio.spawn(background)
        srv:serve_forever()
        bg:cancel()
    end)
end

-- ====== }

-- {====== The driver ======

local http_port, tcp_port

local function connect(port)
    return lasio.open_connection("127.0.0.1", port or http_port)
end

local function request(method, path, body, extra)
    return ("%s %s HTTP/1.1\r\nHost: soak\r\n%s%s\r\n%s"):format(method, path,
        extra or "", body and ("Content-Length: " .. #body .. "\r\n") or "",
        body or "")
end

-- Reads one answer with a Content-Length body; returns the body.
local function answer(r)
    local head = r:readuntil("\r\n\r\n")
    assert(head:match("^HTTP/1.1 200"), "answer: " .. head:sub(1, 40))
    local n = tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: (%d+)"))
    return n and r:readexactly(n) or nil
end

local counts = {}
local function count(what) counts[what] = (counts[what] or 0) + 1 end

-- The workloads: each one session; errors end the session only.
local work = {}

function work.keepalive()
    local r, w = connect()
    for i = 1, 20 do
        if i % 4 == 0 then
            local body = string.rep("b", (i * 2731) % 40000)
            w:write(request("POST", "/echo", body))
            assert(answer(r) == body, "echo body")
        else
            w:write(request("GET", "/hello"))
            assert(answer(r) == "hello")
        end
    end
    w:close()
    count("keepalive")
end

function work.pipelined()
    local r, w = connect()
    local t = {}
    for i = 1, 16 do t[i] = request("GET", "/hello") end
    w:write(table.concat(t))
    for _ = 1, 16 do assert(answer(r) == "hello") end
    w:close()
    count("pipelined")
end

function work.upload()
    local r, w = connect()
    local n = 100000 + math.random(200000)
    w:write(request("POST", "/read", string.rep("u", n)))
    assert(answer(r) == tostring(n))
    w:write(request("GET", "/stream?n=" .. n, nil, "Connection: close\r\n"))
    local all = r:read(-1)
    assert(all:find("^HTTP/1.1 200"), "stream")
    w:close()
    count("upload")
end

function work.websocket()
    local ws = lasio.http.websocket(("ws://127.0.0.1:%d/ws"):format(http_port))
    for i = 1, 10 do
        local m = string.rep("w", i * 997)
        ws:send(m, "binary")
        assert(ws:recv() == m)
    end
    ws:close()
    count("websocket")
end

-- A WebSocket client by hand, dropped without a close frame.
function work.websocket_dropped()
    local r, w = connect()
    w:write("GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\nSec-WebSocket-Key: "
        .. "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert(r:readuntil("\r\n\r\n"):find("^HTTP/1.1 101"), "upgrade")
    for i = 1, 3 do
        local m = string.rep("d", i * 40)
        -- masked with the key 0: the payload goes as it is
        w:write(string.char(0x82, 0x80 | #m) .. "\0\0\0\0" .. m)
        local h = r:readexactly(2)
        assert(h:byte(2) == #m, "echo length")
        assert(r:readexactly(#m) == m)
    end
    w:abort()
    count("websocket_dropped")
end

function work.tcp_echo()
    local r, w = connect(tcp_port)
    for i = 1, 10 do
        local m = string.rep("e", i * 513)
        w:write(m)
        assert(r:readexactly(#m) == m)
    end
    w:close()
    count("tcp_echo")
end

function work.reset_mid_request()
    local _, w = connect()
    w:write("POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 50000\r\n\r\n"
        .. string.rep("x", 20000))
    lasio.sleep(0.01)
    w:abort()
    count("reset_mid_request")
end

function work.gone_mid_body()
    local _, w = connect()
    w:write("POST /read HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked"
        .. "\r\n\r\n4000\r\n" .. string.rep("y", 0x4000) .. "\r\n")
    lasio.sleep(0.02)
    w:close()
    count("gone_mid_body")
end

-- A client that half-closes counts as gone: its handler is cancelled,
-- with or without an answer.
function work.half_close()
    local r, w = connect()
    w:write(request("POST", "/echo", string.rep("h", 30000)))
    w:write_eof()
    r:read(-1)
    w:close()
    count("half_close")
end

function work.slow_reader()
    local r, w = connect()
    w:write(request("GET", "/stream?n=4000000"))
    for _ = 1, 5 do
        r:read(4096)
        lasio.sleep(0.05)
    end
    w:abort() -- gone mid-response
    count("slow_reader")
end

function work.garbage()
    local r, w = connect()
    w:write("\x16\x03\x01 not HTTP at all\r\n\r\n")
    r:read(-1)
    w:close()
    count("garbage")
end

local kinds = {}
for k in pairs(work) do kinds[#kinds + 1] = k end
table.sort(kinds)

-- One client: sessions of random kinds until `stop` says so.
local function client(stop, failures)
    while not stop() do
        local kind = kinds[math.random(#kinds)]
        local ok, e = pcall(lasio.wait_for, work[kind], 20)
        if not ok then
            failures[#failures + 1] = kind .. ": " .. tostring(e)
        end
    end
end

local function get_stats()
    local r, w = connect()
    w:write(request("GET", "/stats"))
    local s = answer(r)
    w:close()
    local fds, rss, heap = s:match("fds=(%d+) rss_kb=(%d+) heap_kb=(%d+)")
    return {fds = tonumber(fds), rss = tonumber(rss), heap = tonumber(heap)}
end

local function drive(minutes, interval, clients)
    local interp = arg[-1]
    local p = lasio.create_subprocess_exec(interp, {arg[0], "serve"},
        {stdout = lasio.PIPE, stderr = lasio.PIPE})
    -- whatever the server reports (an unhandled error, a leak warning)
    -- fails the run
    local reported = 0
    local errors = lasio.spawn(function()
        while true do
            local l = p.stderr:readline()
            if l == "" then return end
            reported = reported + 1
            io.stderr:write("server: ", l)
        end
    end)
    local line = p.stdout:readline()
    http_port, tcp_port = line:match("^(%d+) (%d+)")
    http_port, tcp_port = tonumber(http_port), tonumber(tcp_port)
    assert(http_port, "the server did not start: " .. tostring(line))
    local loop = lasio.get_running_loop()
    local t0 = loop:time()
    local function say(fmt, ...)
        io.stdout:write(("[%6.1fs] "):format(loop:time() - t0),
            fmt:format(...), "\n")
        io.stdout:flush()
    end
    local duration = minutes * 60
    local warmup = math.min(20, duration / 4)
    local failures, samples = {}, {}
    local stop_at = t0 + duration
    local function stop() return loop:time() >= stop_at end
    lasio.sleep(1) -- the background work has started its parts
    local base = get_stats()
    say("idle: fds %d, RSS %d KiB, Lua heap %d KiB", base.fds, base.rss,
        base.heap)
    local tasks = {}
    for i = 1, clients do tasks[i] = lasio.spawn(client, stop, failures) end
    lasio.sleep(warmup)
    local warm = get_stats()
    say("after warm-up: fds %d, RSS %d KiB, Lua heap %d KiB", warm.fds,
        warm.rss, warm.heap)
    while not stop() do
        lasio.sleep(math.min(interval, math.max(0.1, stop_at - loop:time())))
        local s = get_stats()
        s.t = loop:time() - t0
        samples[#samples + 1] = s
        local sessions = 0
        for _, c in pairs(counts) do sessions = sessions + c end
        say("fds %d, RSS %d KiB, Lua heap %d KiB, %d sessions, %d failed",
            s.fds, s.rss, s.heap, sessions, #failures)
    end
    for i = 1, clients do tasks[i]:await() end
    -- quiet: every connection of the load closes (the server's timeouts
    -- of 2 s end the stragglers)
    local final
    for _ = 1, 30 do
        lasio.sleep(1)
        final = get_stats()
        if final.fds <= base.fds then break end
    end
    say("quiet: fds %d, RSS %d KiB, Lua heap %d KiB", final.fds, final.rss,
        final.heap)
    p:kill(15)
    p:wait()
    errors:await()
    local names = {}
    for k, c in pairs(counts) do names[#names + 1] = k .. " " .. c end
    table.sort(names)
    say("sessions: %s", table.concat(names, ", "))
    local bad = {}
    -- a session may fail under faults of its own making only; the normal
    -- ones must not (a slow machine gets 20 s a session)
    for _, f in ipairs(failures) do
        if not f:match("^reset_mid_request") and not f:match("^slow_reader")
            and not f:match("^gone_mid_body") then
            bad[#bad + 1] = "session failed: " .. f
        end
    end
    if reported > 0 then
        bad[#bad + 1] = reported .. " lines on the server's stderr"
    end
    if final.fds > base.fds then
        bad[#bad + 1] = ("fds: %d after the run, %d before"):format(final.fds,
            base.fds)
    end
    if final.heap > base.heap + 1024 then
        bad[#bad + 1] = ("Lua heap: %d KiB after the run, %d KiB before")
            :format(final.heap, base.heap)
    end
    local half = #samples // 2
    local first, second = warm.rss, 0
    for i, s in ipairs(samples) do
        if i <= half then
            first = math.max(first, s.rss)
        else
            second = math.max(second, s.rss)
        end
    end
    if second > first + 16384 then
        bad[#bad + 1] = ("RSS: up to %d KiB in the second half, %d KiB in "
            .. "the first"):format(second, first)
    end
    for _, b in ipairs(bad) do say("DRIFT %s", b) end
    if #bad > 0 then os.exit(1) end
    say("soak passed")
end

-- ====== }

if arg[1] == "serve" then
    serve()
else
    local minutes = tonumber(arg[1])
    if not minutes or minutes <= 0 then
        io.stderr:write("usage: soak.lua MINUTES [INTERVAL [CLIENTS]]\n")
        os.exit(2)
    end
    lasio.run(function()
        drive(minutes, tonumber(arg[2]) or 5, tonumber(arg[3]) or 8)
    end)
end
