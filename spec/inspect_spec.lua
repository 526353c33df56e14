-- Live introspection (docs/SEEING.md, "Looking at a running process"):
-- `lasio ps`, `lasio pstree` and `lasio dump` against running scripts,
-- the inspector socket's refusals and bad input, --no-inspect, SIGQUIT,
-- and a busy loop reported with its line. Every spec runs the built
-- binary in child processes, so the file passes the same under both
-- runners.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local cjson = require "cjson"

-- cjson reads every number as a float: an integer is a whole one
local function is_int(x) return type(x) == "number" and x == math.floor(x) end

local q = helper.shell_quote
local bin = helper.lasio_bin

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. q(tmp)))
assert(os.execute("chmod 755 " .. q(tmp)))

local function write(name, data)
    local path = tmp .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    return path
end

local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

-- Runs a shell command line under a timeout; returns stdout, stderr,
-- exit status and the milliseconds it took.
local function sh(cmd)
    local out, err = tmp .. "/sh.out", tmp .. "/sh.err"
    local full = string.format(
        "t0=$(date +%%s%%N); timeout %d sh -c %s >%s 2>%s; st=$?; "
            .. "t1=$(date +%%s%%N); echo $st $(( (t1 - t0) / 1000000 ))",
        math.ceil(helper.t(30)), q(cmd), q(out), q(err))
    local h = io.popen(full)
    local res = h:read("a")
    h:close()
    local st, ms = res:match("(%d+) (%d+)")
    return slurp(out), slurp(err), tonumber(st), tonumber(ms)
end

-- Starts `code` as a lasio script in the background (env and flags
-- before it) and waits until it printed "ready". Returns its pid and a
-- function that ends it and returns its stdout, stderr and status.
local function start(name, code, flags, env)
    local script = write(name, code)
    local out, err = tmp .. "/" .. name .. ".out", tmp .. "/" .. name .. ".err"
    os.remove(out)
    local h = io.popen(string.format(
        "cd %s && %s %s %s %s >%s 2>%s & echo $!", q(tmp), env or "",
        q(bin), flags or "", q(name), q(out), q(err)))
    local pid = tonumber(h:read("l"))
    h:close()
    assert(os.execute(string.format(
        "i=0; while ! grep -q ready %s 2>/dev/null; do i=$((i + 1)); "
            .. "[ $i -gt %d ] && exit 1; sleep 0.05; done", q(out),
        math.ceil(helper.t(20) / 0.05))), "the script never got ready")
    local function stop(sig)
        os.execute(string.format(
            "kill -%s %d 2>/dev/null; i=0; while kill -0 %d 2>/dev/null; do "
                .. "i=$((i + 1)); [ $i -gt 200 ] && kill -KILL %d; "
                .. "sleep 0.05; done", sig or "TERM", pid, pid, pid))
        return slurp(out), slurp(err)
    end
    return pid, stop, script
end

-- The TaskGroup example of Python's `asyncio ps` documentation, ported.
local albums = [[
local function play(track)
    lasio.sleep(3600)
    print("Finished: " .. track)
end

local function album(name, tracks)
    lasio.taskgroup(function(tg)
        for _, track in ipairs(tracks) do
            tg:spawn(play, track):set_name(track)
        end
    end)
end

lasio.get_running_loop():call_soon(function()
    print("ready") io.stdout:flush()
end)
lasio.taskgroup(function(tg)
    tg:spawn(album, "Sundowning", {"TNDNBTG", "Levitate"})
        :set_name("Sundowning")
    tg:spawn(album, "TMBTE", {"DYWTYLM", "Aqua Regia"}):set_name("TMBTE")
end)
]]

describe("lasio ps", function()
    local pid, stop
    setup(function() pid, stop = start("albums.lua", albums) end)
    teardown(function() stop() end)

    it("lists every task with its columns", function()
        local out, err, st = sh(string.format("%s ps %d", q(bin), pid))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        local header = out:match("^[^\n]*")
        assert.truthy(header:match("^ID%s+NAME%s+STATE%s+WAITING%-ON%s+FOR%s+"
            .. "AWAITED%-BY%s+GROUP%s+CREATED%-AT%s+STEPS%s+CPU$"), header)
        for _, name in ipairs({"Task%-1 %(main%)", "Sundowning", "TMBTE",
                               "TNDNBTG", "Levitate", "DYWTYLM",
                               "Aqua Regia"}) do
            assert.truthy(out:match("\n%d+%s+" .. name .. "%s"), name)
        end
        -- the four players sleep an hour, awaited by their album, in its
        -- task group, created by the line of tg:spawn
        local _, players = out:gsub("\n%d+%s+[%w ]+%s+sleeping%s+sleep 3600%s+"
            .. "[%d.]+s%s+#%d%s+TaskGroup #%d%s+[^\n]*albums%.lua:9%s+1%s+"
            .. "[%d.]+s", "")
        assert.are.equal(4, players, out)
        assert.are.equal(8, helper.count(out, "\n"))
    end)

    it("--json follows the documented schema", function()
        local out, err, st = sh(string.format("%s ps --json %d", q(bin), pid))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        local r = cjson.decode(out)
        assert.are.equal(1, r.v)
        assert.is_true(r.ok)
        assert.are.equal(pid, r.pid)
        assert.are.equal("number", type(r.time))
        assert.is_true(math.abs(r.time - os.time()) < 60)
        assert.are.equal(7, #r.tasks)
        local states = {running = true, ready = true, waiting = true,
                        sleeping = true}
        local names, last = {}, 0
        for _, t in ipairs(r.tasks) do
            assert.is_true(is_int(t.id) and t.id > last)
            last = t.id
            assert.are.equal("string", type(t.name))
            names[t.name] = t
            assert.is_true(states[t.state], t.state)
            assert.is_true(t.waiting_on == cjson.null
                or type(t.waiting_on) == "string")
            assert.is_true(t["for"] == cjson.null or t["for"] >= 0)
            assert.are.equal("table", type(t.awaits))
            assert.are.equal("table", type(t.awaited_by))
            assert.is_true(t.group == cjson.null or type(t.group) == "string")
            assert.is_true(t.created_at == cjson.null
                or type(t.created_at) == "string")
            assert.is_true(t.where == cjson.null or type(t.where) == "string")
            assert.is_true(is_int(t.steps) and t.steps >= 1)
            assert.is_true(type(t.cpu) == "number" and t.cpu >= 0)
        end
        for _, t in ipairs(r.tasks) do
            assert.is_true(t.parent == cjson.null or is_int(t.parent))
        end
        assert.are.equal("sleeping", names.Levitate.state)
        assert.are.equal("sleep 3600", names.Levitate.waiting_on)
        local sun, main = names.Sundowning, names["Task-1 (main)"]
        assert.are.same({sun.id}, names.Levitate.awaited_by)
        assert.are.equal(sun.id, names.Levitate.parent)
        assert.are.equal(("TaskGroup #%d"):format(sun.id), names.Levitate.group)
        assert.truthy(names.Levitate.created_at:match("albums%.lua:9$"))
        assert.are.same({main.id}, sun.awaited_by)
        assert.are.equal(2, #main.awaits)
        assert.are.equal(cjson.null, main.group)
        assert.truthy(names.Levitate.where:match("albums%.lua:2$"))
        assert.truthy(names.Sundowning.where:match("albums%.lua:7$"))
        assert.truthy(names["Task-1 (main)"].where:match("albums%.lua:17$"))
    end)

    it("pstree shows every task under its await sites", function()
        local out, err, st = sh(string.format("%s pstree %d", q(bin), pid))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        for _, name in ipairs({"Sundowning", "TMBTE", "TNDNBTG", "Levitate",
                               "DYWTYLM", "Aqua Regia"}) do
            assert.truthy(out:find("%(T%) #%d+ " .. name
                .. " %[TaskGroup #%d%]\n"), name)
        end
        assert.are.equal(4, helper.count(out, " albums.lua:2\n"))
        assert.falsy(out:find("await cycle"))
    end)

    it("dump groups identical stacks with their count", function()
        local out, err, st = sh(string.format("%s dump %d", q(bin), pid))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        assert.truthy(out:find("^lasio dump: process " .. pid
            .. ", 7 pending task%(s%)\n"))
        -- the four players share one stack, the two albums another
        local players = out:match("%-%-%- 4 task%(s%) with this stack:\n(.*)")
        assert.truthy(players, out)
        assert.truthy(players:find("#%d+ Levitate %[sleeping: sleep 3600, "
            .. "for [%d.]+s%] created at [^\n]*albums%.lua:9\n"), players)
        assert.truthy(players:find("albums%.lua:2: in"))
        assert.truthy(out:find("%-%-%- 2 task%(s%) with this stack:\n"))
    end)
end)

describe("the inspector", function()
    it("reports an await cycle and exits 1", function()
        local pid, stop = start("cycle.lua", [[
local a, b
a = lasio.spawn(function() lasio.sleep(0) b:await() end)
b = lasio.spawn(function() lasio.sleep(0) a:await() end)
a:set_name("a")
b:set_name("b")
lasio.sleep(0.05)
print("ready") io.stdout:flush()
lasio.sleep(60)
]])
        local out, _, st = sh(string.format("%s pstree %d", q(bin), pid))
        stop()
        assert.are.equal(1, st)
        assert.truthy(out:find("await cycle: #2 a → #3 b → #2 a\n", 1, true),
            out)
    end)

    it("refuses a peer of another uid", function()
        local h = io.popen("id -u")
        local uid = h:read("l")
        h:close()
        if uid ~= "0" then
            pending("needs root to run the client as nobody")
            return
        end
        local pid, stop = start("peer.lua",
            "print('ready') io.stdout:flush() lasio.sleep(60)")
        local out, err, st = sh(string.format(
            "runuser -u nobody -- %s ps %d", q(bin), pid))
        stop()
        assert.are.equal("", out)
        assert.are.equal(1, st)
        assert.truthy(err:find("lasio ps: permission denied", 1, true), err)
    end)

    it("is off with --no-inspect and with LASIO_NO_INSPECT=1", function()
        local code = "print('ready') io.stdout:flush() lasio.sleep(60)"
        for _, how in ipairs({{"--no-inspect", nil},
                              {nil, "LASIO_NO_INSPECT=1"}}) do
            local pid, stop = start("off.lua", code, how[1], how[2])
            local _, err, st = sh(string.format("%s ps %d", q(bin), pid))
            stop()
            assert.are.equal(1, st)
            assert.truthy(err:find("is not a lasio process serving the "
                .. "inspector", 1, true), err)
        end
    end)

    it("keeps no script running and holds no virtual clock", function()
        local _, err, st, ms = sh(string.format(
            "%s --virtual-time -e 'lasio.sleep(1000) print(\"done\")'",
            q(bin)))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        assert.is_true(ms < helper.t(10) * 1000)
    end)

    it("SIGQUIT prints the dump and the script goes on", function()
        local pid, stop = start("quit.lua", [[
lasio.spawn(function() lasio.sleep(60) end):set_name("napper")
print("ready") io.stdout:flush()
for i = 1, 40 do
    lasio.sleep(0.05)
end
print("still here")
]])
        assert(os.execute("kill -QUIT " .. pid))
        local out = os.execute(string.format(
            "i=0; while ! grep -q 'still here' %s 2>/dev/null; do "
                .. "i=$((i + 1)); [ $i -gt %d ] && exit 1; sleep 0.05; done",
            q(tmp .. "/quit.lua.out"), math.ceil(helper.t(20) / 0.05)))
        local stdout, stderr = stop()
        assert.is_true(out, "the script did not go on")
        assert.truthy(stdout:find("still here"))
        assert.truthy(stderr:find("^lasio dump: process " .. pid), stderr)
        assert.truthy(stderr:find("#2 napper [sleeping: sleep 60, for ", 1,
            true), stderr)
        assert.truthy(stderr:find("quit.lua:1: in function", 1, true))
    end)

    it("answers for a busy loop within 2 s, naming the line", function()
        local pid, stop = start("spin.lua", [[
lasio.spawn(function()
    print("ready") io.stdout:flush()
    local x = 0
    while true do
        x = x + 1
    end
end):set_name("fetch-3")
lasio.sleep(60)
]])
        local out, err, st, ms = sh(string.format("%s ps %d", q(bin), pid))
        stop("KILL")
        assert.are.equal("", out)
        assert.are.equal(1, st)
        assert.truthy(err:find("^lasio ps: loop busy: #2 fetch%-3 running for "
            .. "[%d.]+ s at spin%.lua:[45]\n$"), err)
        assert.is_true(ms < helper.t(2) * 1000, ms .. " ms")
    end)

    it("answers a malformed request with an error and goes on", function()
        local pid, stop = start("bad.lua",
            "print('ready') io.stdout:flush() lasio.sleep(60)")
        local py = [[
import socket, sys
for req in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX)
    s.connect("\0lasio/" + sys.argv[1])
    s.sendall(req.encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    print(s.makefile().read().strip())
]]
        local out, err, st = sh(string.format(
            "python3 -c %s %d %s %s %s %s", q(py), pid, q("garbage"),
            q('{"v":1}'), q('{"v":2,"cmd":"ps"}'), q('{"v":1,"cmd":"nope"}')))
        assert.are.equal("", err)
        assert.are.equal(0, st)
        local lines = {}
        for l in out:gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
        assert.are.equal(4, #lines)
        for _, r in ipairs(lines) do
            assert.are.equal(1, r.v)
            assert.is_false(r.ok)
        end
        assert.are.equal("malformed request: not a JSON object", lines[1].error)
        assert.are.equal('malformed request: "v" and "cmd" are needed',
            lines[2].error)
        assert.are.equal('unsupported request: "v" must be 1', lines[3].error)
        assert.are.equal('unknown command "nope" (ps, pstree, dump, trace)',
            lines[4].error)
        local ps, _, pst = sh(string.format("%s ps %d", q(bin), pid))
        stop()
        assert.are.equal(0, pst)
        assert.truthy(ps:find("Task%-1 %(main%)"))
    end)

    it("trace PID records the running script for S seconds", function()
        local pid, stop = start("ticker.lua", [[
lasio.spawn(function()
    while true do lasio.sleep(0.01) end
end):set_name("ticker")
print("ready") io.stdout:flush()
lasio.sleep(60)
]])
        local file = tmp .. "/live.jsonl"
        local out, err, st = sh(string.format(
            "cd %s && %s trace %d --seconds 0.5 -o live.jsonl", q(tmp),
            q(bin), pid))
        local _, _, bad = sh(string.format(
            "%s trace %d --seconds 0.5 -o live.txt", q(bin), pid))
        local _, err2, st2 = sh(string.format(
            "%s trace %d --seconds 0.2 -o /nonexistent/x.json", q(bin), pid))
        local ps, _, pst = sh(string.format("%s ps %d", q(bin), pid))
        stop()
        assert.are.equal("", err)
        assert.are.equal(0, st)
        assert.are.equal("wrote " .. file .. "\n", out)
        local lines = {}
        for l in slurp(file):gmatch("[^\n]+") do
            lines[#lines + 1] = cjson.decode(l)
        end
        assert.is_true(#lines > 10, #lines .. " lines")
        local names = slurp(file)
        assert.truthy(names:find('"ticker"', 1, true))
        assert.are.equal(2, bad)
        assert.are.equal(1, st2)
        assert.truthy(err2:find("^lasio trace: cannot open"), err2)
        assert.are.equal(0, pst) -- the script goes on
        assert.truthy(ps:find("ticker"))
    end)

    it("ps of a process that is not lasio, or not running: an error",
       function()
        local h = io.popen("sleep 30 >/dev/null 2>&1 & echo $!")
        local other = tonumber(h:read("l"))
        h:close()
        local out, err, st = sh(string.format("%s ps %d", q(bin), other))
        os.execute("kill " .. other)
        assert.are.equal("", out)
        assert.are.equal(1, st)
        assert.truthy(err:find("lasio ps: process " .. other
            .. " is not a lasio process serving the inspector", 1, true))
        h = io.popen("sh -c 'echo $$'")
        local dead = tonumber(h:read("l"))
        h:close()
        out, err, st = sh(string.format("%s ps %d", q(bin), dead))
        assert.are.equal("", out)
        assert.are.equal(1, st)
        assert.are.equal("lasio ps: no process with pid " .. dead .. "\n", err)
        for _, args in ipairs({"ps", "ps abc", "ps --json", "pstree 1 2",
                               "dump -1", "trace 1", "trace 1 -o x.json",
                               "trace 1 --seconds 0 -o x.json"}) do
            out, err, st = sh(string.format("%s %s", q(bin), args))
            assert.are.equal("", out)
            assert.are.equal(2, st, args)
            assert.truthy(err:find("^usage: lasio "), err)
        end
    end)
end)
