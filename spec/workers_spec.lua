-- `lasio --workers N` (docs/API.md, The lasio command): N processes share
-- one listening port through SO_REUSEPORT, a crashed worker is restarted,
-- stop signals are passed on for a graceful shutdown, and the supervisor
-- exits with the worst status. Each case runs the built binary in a child
-- process, so the file passes the same under both runners.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local lasio = require "lasio"

local async = helper.async_guarded

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. helper.shell_quote(tmp)))

local function write(name, code)
    local path = tmp .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(code)
    f:close()
    return path
end


-- Every worker answers "<worker> <pid>"; /crash ends the answering worker
-- with status 1, /slow answers after 0.5 s.
local server_script = write("server.lua", [[
local http = require "lasio.http"
local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
local server = http.serve(function(req, res)
    if req.path == "/crash" then os.exit(1) end
    if req.path == "/slow" then lasio.sleep(0.5) end
    res:finish(os.getenv("LASIO_WORKER") .. " " .. pid)
end, "127.0.0.1", tonumber(arg[1]))
io.stderr:write("up " .. os.getenv("LASIO_WORKER") .. "/" .. os.getenv("LASIO_WORKERS") .. "\n") -- one write: atomic
server:serve_forever()
]])

local function start(args, opts)
    return lasio.create_subprocess_exec(helper.lasio_bin, args,
        {stdout = lasio.PIPE, stderr = (opts or {}).stderr or lasio.PIPE})
end

-- One request on a new connection (no pooling: each may reach another
-- worker). Returns the body, or nil and the error while nothing listens.
local function get(port, path)
    local ok, reader, writer = pcall(lasio.open_connection, "127.0.0.1", port)
    if not ok then return nil, reader end
    writer:write("GET " .. (path or "/") .. " HTTP/1.0\r\n\r\n")
    local answer = reader:read()
    writer:close()
    return answer:match("\r\n\r\n(.*)$")
end

-- Waits until n lines "up ..." have come on the child's stderr.
local function wait_up(p, n)
    local seen = {}
    for _ = 1, n do
        local line = lasio.wait_for(function() return p.stderr:readline() end,
            helper.t(20))
        seen[#seen + 1] = line
    end
    return seen
end

local function answers(port, count)
    local by_worker = {}
    for _ = 1, count do
        local body = get(port)
        if body then
            local w, pid = body:match("^(%d+) (%d+)$")
            by_worker[w] = by_worker[w] or {}
            by_worker[w][pid] = true
        end
    end
    return by_worker
end

local function alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return false end
    local state = f:read("l"):match("^%d+ %b() (%a)")
    f:close()
    return state ~= "Z"
end

describe("lasio --workers", function()
    it("runs N processes that share one port", async(function()
        local port = net.free_port()
        local p = start({"--workers", "2", server_script, tostring(port)})
        local up = wait_up(p, 2)
        table.sort(up)
        assert.are.same({"up 1/2\n", "up 2/2\n"}, up)
        local seen = answers(port, 60)
        assert.is_truthy(seen["1"], "worker 1 answered")
        assert.is_truthy(seen["2"], "worker 2 answered")
        p:terminate()
        assert.are.equal(143, p:wait())
    end))

    it("restarts a worker that crashes, with a message", async(function()
        local port = net.free_port()
        local p = start({"--workers=2", server_script, tostring(port)})
        wait_up(p, 2)
        local before = answers(port, 40)
        assert.is_nil(get(port, "/crash")) -- the worker ends mid-request
        local msg = lasio.wait_for(function() return p.stderr:readline() end,
            helper.t(20))
        assert.matches("^lasio: worker [12] %(pid %d+%) exited with status 1; restarting in 0%.1 s", msg)
        local again = wait_up(p, 1)
        assert.matches("^up [12]/2", again[1])
        local w = msg:match("worker (%d)")
        local after = answers(port, 60)
        assert.is_truthy(after[w], "the restarted worker answers")
        for pid in pairs(after[w]) do
            assert.is_nil(before[w][pid], "a new process")
        end
        p:terminate()
        assert.are.equal(143, p:wait())
    end))

    it("backs off a worker that keeps crashing: 0.1 s, 0.2 s, 0.4 s", async(function()
        local crash = write("crash.lua", "os.exit(1)")
        local p = start({"--workers", "1", crash})
        for _, delay in ipairs{"0.1", "0.2", "0.4"} do
            local msg = lasio.wait_for(function() return p.stderr:readline() end,
                helper.t(20))
            assert.matches("^lasio: worker 1 %(pid %d+%) exited with status 1; restarting in "
                .. delay:gsub("%.", "%%.") .. " s\n$", msg)
        end
        p:terminate() -- while a restart is pending: its last status counts
        assert.are.equal(1, lasio.wait_for(function() return p:wait() end, helper.t(20)))
    end))

    it("passes SIGTERM on: requests in flight finish, then the exit is 143", async(function()
        local port = net.free_port()
        local p = start({"--workers", "2", server_script, tostring(port)})
        wait_up(p, 2)
        local slow = lasio.spawn(get, port, "/slow")
        lasio.sleep(0.1)
        p:terminate()
        local body = lasio.wait_for(slow, helper.t(10))
        assert.matches("^[12] %d+$", body)
        assert.are.equal(143, lasio.wait_for(function() return p:wait() end, helper.t(20)))
        assert.is_nil((get(port)), "nothing listens after the shutdown")
    end))

    it("exits with the worst status of its workers; 0 when all succeed", async(function()
        local ok_script = write("batch.lua", [[print("done " .. os.getenv("LASIO_WORKER"))]])
        local p = start({"--workers", "3", ok_script})
        local out = p.stdout:read()
        assert.are.equal(0, p:wait())
        local lines = {}
        for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
        table.sort(lines)
        assert.are.same({"done 1", "done 2", "done 3"}, lines)

        -- on SIGTERM each worker's main task is cancelled; worker 2 exits 9
        local mixed = write("mixed.lua", [[
io.stderr:write("up\n")
pcall(lasio.sleep, 60)
os.exit(os.getenv("LASIO_WORKER") == "2" and 9 or 0)
]])
        p = start({"--workers", "2", mixed})
        wait_up(p, 2)
        p:terminate()
        assert.are.equal(9, lasio.wait_for(function() return p:wait() end, helper.t(20)))
    end))

    it("writes --trace FILE as one file per worker, numbered as LASIO_WORKER", async(function()
        local script = write("traced.lua", [[
lasio.spawn(function() lasio.sleep(0) end):await()
]])
        local p = start({"--workers", "2", "--trace", tmp .. "/run.jsonl", script})
        assert.are.equal(0, lasio.wait_for(function() return p:wait() end, helper.t(20)))
        for n = 1, 2 do
            local f = assert(io.open(tmp .. "/run." .. n .. ".jsonl"))
            local text = f:read("a")
            f:close()
            -- the worker's own header, and its events: not two runs in one file
            local _, headers = text:gsub('"lasio_trace":1', "")
            assert.are.equal(1, headers)
            assert.truthy(text:find('"ev":"task.create"', 1, true))
        end
        assert.is_nil(io.open(tmp .. "/run.jsonl"))
    end))

    it("does not restart a script that cannot start (syntax error: 3)", async(function()
        local bad = write("syntax.lua", "this is not lua")
        local p = start({"--workers", "2", bad})
        local _, err = p:communicate(nil, helper.t(20))
        assert.are.equal(3, p.returncode)
        assert.is_nil(err:find("restarting", 1, true))
    end))

    it("takes its workers down with it when killed", async(function()
        local port = net.free_port()
        local p = start({"--workers", "2", server_script, tostring(port)})
        wait_up(p, 2)
        local pids = {}
        for _, by_pid in pairs(answers(port, 40)) do
            for pid in pairs(by_pid) do pids[#pids + 1] = pid end
        end
        assert.is_true(#pids >= 1)
        p:kill()
        p:wait()
        assert.is_true(helper.wait_until(function()
            for _, pid in ipairs(pids) do
                if alive(pid) then return false end
            end
            return true
        end, helper.t(10)))
    end))

    it("refuses bad values with status 2 and a message naming the option", async(function()
        for _, case in ipairs{
            {{"--workers", "0", server_script}, "got '0'"},
            {{"--workers=x", server_script}, "got 'x'"},
            {{"--workers", "1025", server_script}, "got '1025'"},
            {{"--workers"}, "got nothing"},
            {{"--workers", "2"}, "needs a script"},
            {{"--workers", "2", "-i", server_script}, "needs a script, and no %-i"},
        } do
            local p = start(case[1])
            local _, err = p:communicate(nil, helper.t(10))
            assert.are.equal(2, p.returncode, table.concat(case[1], " "))
            assert.matches("^lasio: %-%-workers", err)
            assert.matches(case[2], err)
        end
    end))
end)
