-- Specs for virtual time (docs/VIRTUAL_TIME.md) through lasio.testing:
-- each step of the jump rule, ties in creation order, integer ns, sleep(0)
-- never idle, real I/O refused before any side effect, thread jobs and
-- lasio.fs taking zero virtual time, wait_idle (the examples of Go's
-- testing/synctest), seeds, pipes and the in-process network, limits,
-- rates, and bad input. The command's options are in vtime_cli_spec.lua.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local testing = require "lasio.testing"
local async = helper.async

local function vrun(fn, opts) return testing.run(fn, opts) end

-- Open file descriptors of this process.
local function count_fds()
    local p = io.popen("ls /proc/" .. (lasio.internal_pid or "self") .. "/fd 2>/dev/null | wc -l")
    local n = tonumber(p:read("a"))
    p:close()
    return n
end
-- /proc/self in a child (ls) is the child: ask for our own pid instead
do
    local f = io.open("/proc/self/stat")
    local pid = f:read("a"):match("^(%d+)")
    f:close()
    lasio.internal_pid = pid
end

describe("virtual time: the clock", function()
    it("starts at 0 and jumps to each timer: an hour takes no real time", function()
        local t0 = os.clock()
        local times = vrun(function()
            local loop = lasio.get_running_loop()
            local seen = {loop:time()}
            lasio.sleep(3600)
            seen[#seen + 1] = loop:time()
            seen[#seen + 1] = lasio.time()
            return seen
        end)
        assert.are.same({0, 3600, 3600}, times)
        assert.is_true(os.clock() - t0 < helper.t(1))
    end)

    it("starts where opts.start says", function()
        assert.are.equal(100.5, vrun(function()
            return lasio.get_running_loop():time()
        end, {start = 100.5}))
    end)

    it("adds in integer ns: 0.2 + 0.05 is a tie with 0.25", function()
        local order = vrun(function()
            local loop = lasio.get_running_loop()
            local log = {}
            loop:call_later(0.25, function() log[#log + 1] = "timer" end)
            lasio.sleep(0.2)
            lasio.sleep(0.05)
            log[#log + 1] = ("task %.17g"):format(loop:time())
            lasio.sleep(0)
            return log
        end)
        -- the timer was created first, so it runs first
        assert.are.same({"timer", "task 0.25"}, order)
    end)

    it("runs timers due at one instant in creation order, over 100 runs", function()
        local want = {}
        for i = 1, 30 do want[i] = i end
        for run = 1, 100 do
            local got = vrun(function()
                local loop = lasio.get_running_loop()
                local log, tasks = {}, {}
                for i = 1, 30 do
                    if i % 3 == 0 then
                        tasks[#tasks + 1] = lasio.spawn(function()
                            lasio.sleep(1.5)
                            log[#log + 1] = i
                        end)
                        lasio.sleep(0) -- the task's sleep starts now, in order
                    else
                        loop:call_later(1.5, function() log[#log + 1] = i end)
                    end
                end
                for _, t in ipairs(tasks) do t:await() end
                return log
            end, {seed = run})
            assert.are.same(want, got, "run " .. run)
        end
    end)

    it("sleep(0) is never idleness: the clock stays while a task spins", function()
        local at = vrun(function()
            local loop = lasio.get_running_loop()
            local fired = false
            loop:call_later(1, function() fired = true end)
            for _ = 1, 1000 do lasio.sleep(0) end
            assert.is_false(fired)
            return loop:time()
        end)
        assert.are.equal(0, at)
    end)

    it("os.time and os.date read the virtual epoch (2000-01-01Z)", function()
        local r = vrun(function()
            local a, da = os.time(), os.date("!%Y-%m-%d %H:%M:%S")
            lasio.sleep(86400 + 61.9)
            return {a, da, os.time(), os.date("!%Y-%m-%d %H:%M:%S"),
                    os.date("!%Y", 0), os.time({year = 2020, month = 1, day = 1, hour = 12})}
        end)
        assert.are.equal(946684800, r[1])
        assert.are.equal("2000-01-01 00:00:00", r[2])
        assert.are.equal(946684800 + 86400 + 61, r[3])
        assert.are.equal("2000-01-02 00:01:01", r[4])
        assert.are.equal("1970", r[5]) -- an explicit time is Lua's own
        assert.are.equal(os.time({year = 2020, month = 1, day = 1, hour = 12}), r[6])
        assert.are.equal(1000 + 5, vrun(function()
            lasio.sleep(5)
            return os.time()
        end, {epoch = 1000}))
    end)

    it("keeps separate clocks for two loops, nested", function()
        local outer, inner = vrun(function()
            lasio.sleep(100)
            local i = testing.run(function()
                lasio.sleep(1)
                return lasio.get_running_loop():time()
            end)
            return lasio.get_running_loop():time(), i
        end)
        assert.are.equal(100, outer)
        assert.are.equal(1, inner)
    end)

    it("a real loop keeps the real clock while no virtual loop runs", async(function()
        assert.is_false(testing.virtual())
        assert.is_nil(testing.seed())
        assert.is_false(testing.buggify(1))
        assert.is_true(lasio.get_running_loop():time() > 0)
    end))
end)

describe("virtual time: the jump rule", function()
    it("1. a thread job holds the clock and takes zero virtual time", function()
        local r = vrun(function()
            local loop = lasio.get_running_loop()
            local fired = false
            loop:call_later(1, function() fired = true end)
            local v = lasio.to_thread(function()
                local t = os.clock()
                while os.clock() - t < 0.05 do end -- real work, real time
                return "worked"
            end)
            return {v, loop:time(), fired}
        end)
        assert.are.same({"worked", 0, false}, r)
    end)

    it("1. lasio.fs takes zero virtual time", function()
        local path = os.tmpname()
        local r = vrun(function()
            local loop = lasio.get_running_loop()
            lasio.fs.write_file(path, "data")
            local s = lasio.fs.read_file(path)
            return {s, loop:time()}
        end)
        os.remove(path)
        assert.are.same({"data", 0}, r)
    end)

    it("2. jumps only to the earliest timer, one instant at a time", function()
        local log = vrun(function()
            local loop = lasio.get_running_loop()
            local log = {}
            for _, d in ipairs({3, 1, 2}) do
                loop:call_later(d, function() log[#log + 1] = loop:time() end)
            end
            lasio.sleep(5)
            return log
        end)
        assert.are.same({1, 2, 3}, log)
    end)

    it("4. nothing can move: the deadlock report, with the seed", function()
        local ok, e = pcall(vrun, function()
            lasio.sleep(1)
            lasio.Future():await()
        end, {seed = 99})
        assert.is_false(ok)
        local msg = helper.msg(e)
        assert.matches("deadlock", msg)
        assert.matches("seed = 99", msg, 1, true)
    end)

    it("a C host's lasio_loop_hold is in lasio.h", function()
        local h = assert(io.open(helper.root .. "/src/lasio.h"))
        local s = h:read("a")
        h:close()
        assert.truthy(s:find("lasio_loop_hold(lua_State *L, int delta)", 1, true))
    end)
end)

describe("virtual time: real I/O is refused", function()
    local refused = {
        {"open_connection", function() return lasio.open_connection("127.0.0.1", 9) end},
        {"open_unix_connection", function() return lasio.open_unix_connection("/tmp/nope.sock") end},
        {"start_server", function() return lasio.start_server(function() end, "127.0.0.1", 0) end},
        {"start_unix_server", function()
            return lasio.start_unix_server(function() end, os.tmpname() .. ".sock")
        end},
        {"getaddrinfo", function() return lasio.getaddrinfo("localhost", 80) end},
        {"getnameinfo", function() return lasio.getnameinfo("127.0.0.1", 80) end},
        {"open_datagram", function() return lasio.open_datagram({local_addr = {"127.0.0.1", 0}}) end},
        {"ssl_context", function() return lasio.ssl_context() end},
        {"create_subprocess_exec", function() return lasio.create_subprocess_exec("true") end},
        {"create_subprocess_shell", function() return lasio.create_subprocess_shell("true") end},
        {"wait_readable", function() return lasio.wait_readable(0) end},
        {"wait_writable", function() return lasio.wait_writable(1) end},
        {"add_reader", function() return lasio.get_running_loop():add_reader(0, print) end,
            "loop:add_reader"},
        {"add_writer", function() return lasio.get_running_loop():add_writer(1, print) end,
            "loop:add_writer"},
        {"pg.connect", function() return lasio.pg.connect("host=/nonexistent port=1") end},
        {"redis.connect", function() return lasio.redis.connect("redis://127.0.0.1:1") end},
    }
    for _, case in ipairs(refused) do
        it(case[1] .. " raises VirtualTimeError before opening anything", function()
            local before, after
            local ok, e = pcall(vrun, function()
                before = count_fds()
                local ok2, e2 = pcall(case[2])
                after = count_fds()
                assert(not ok2)
                error(e2, 0)
            end, {seed = 1})
            assert.is_false(ok)
            assert.are.equal(lasio.VirtualTimeError, getmetatable(e))
            local msg = helper.msg(e)
            assert.matches(case[3] or ("lasio." .. case[1]), msg, 1, true)
            assert.matches("--real-io", msg, 1, true)
            assert.matches("lasio.testing.pipe", msg, 1, true)
            assert.are.equal(before, after)
        end)
    end

    it("StreamWriter:start_tls is refused as well", function()
        local ok, e = pcall(vrun, function()
            local methods = debug.getregistry()["lasio.StreamWriter"].__index
            methods.start_tls(nil) -- refused before its arguments are read
        end)
        assert.is_false(ok)
        assert.are.equal(lasio.VirtualTimeError, getmetatable(e))
        assert.matches("StreamWriter:start_tls", helper.msg(e), 1, true)
    end)

    it("real_io allows sockets: a real echo over TCP", function()
        local got = vrun(function()
            local srv = lasio.start_server(function(r, w)
                w:write(r:readline())
                w:close()
            end, "127.0.0.1", 0)
            local port = srv:sockets()[1].port
            local r, w = lasio.open_connection("127.0.0.1", port)
            w:write("ping\n")
            local line = r:readline()
            w:close()
            srv:close()
            return line
        end, {real_io = 5})
        assert.are.equal("ping\n", got)
    end)
end)

describe("virtual time: wait_idle", function()
    -- synctest's "AfterFunc" example: a callback runs only after the
    -- event; wait_idle shows each state
    it("sees a blocked task as idle, then its completion", function()
        vrun(function()
            local ev = lasio.Event()
            local called = false
            lasio.spawn(function()
                ev:wait()
                called = true
            end)
            testing.wait_idle()
            assert.is_false(called)
            ev:set()
            testing.wait_idle()
            assert.is_true(called)
        end)
    end)

    -- synctest's "context.WithTimeout" example: just before the deadline
    -- nothing happened, at it the timeout fired
    it("testing.sleep reaches a deadline exactly", function()
        vrun(function()
            local done = false
            lasio.spawn(function()
                pcall(lasio.wait_for, lasio.Future(), 5)
                done = true
            end)
            testing.sleep(5 - 1e-9)
            assert.is_false(done)
            testing.sleep(1e-9)
            assert.is_true(done)
            assert.are.equal(5, lasio.get_running_loop():time())
        end)
    end)

    it("returns before the clock jumps, and several waiters all return", function()
        local r = vrun(function()
            local loop = lasio.get_running_loop()
            loop:call_later(10, function() end)
            local n = 0
            local ts = {}
            for i = 1, 3 do
                ts[i] = lasio.spawn(function() testing.wait_idle() n = n + 1 end)
            end
            for _, t in ipairs(ts) do t:await() end
            return {n, loop:time()}
        end)
        assert.are.same({3, 0}, r)
    end)

    it("works in real time too", async(function()
        local ev = lasio.Event()
        local woke = false
        lasio.spawn(function() ev:wait() woke = true end)
        testing.wait_idle()
        assert.is_false(woke)
        ev:set()
        testing.wait_idle()
        assert.is_true(woke)
    end))
end)

describe("virtual time: seeds", function()
    local function sample(seed, shuffle)
        return vrun(function()
            local r = {math.random(1000000), math.random(1000000)}
            local order = {}
            local ts = {}
            for i = 1, 12 do
                ts[i] = lasio.spawn(function() order[#order + 1] = i end)
            end
            for _, t in ipairs(ts) do t:await() end
            local flips = {}
            for i = 1, 16 do flips[i] = testing.buggify() and 1 or 0 end
            return {r = r, order = table.concat(order, ","), flips = table.concat(flips),
                    seed = testing.seed()}
        end, {seed = seed, shuffle = shuffle})
    end

    it("reproduce math.random, buggify and --shuffle orders", function()
        local a, b = sample(11, true), sample(11, true)
        assert.are.same(a, b)
        assert.are.equal(11, a.seed)
    end)

    it("different seeds give different orders", function()
        local seen = {}
        local distinct = 0
        for seed = 1, 6 do
            local s = sample(seed, true)
            if not seen[s.order] then distinct = distinct + 1 end
            seen[s.order] = true
        end
        assert.is_true(distinct >= 3, "only " .. distinct .. " distinct orders")
        assert.are_not.same(sample(1).r, sample(2).r)
    end)

    it("without shuffle the ready queue stays FIFO", function()
        assert.are.equal("1,2,3,4,5,6,7,8,9,10,11,12", sample(5, false).order)
    end)
end)

describe("virtual time: pipes", function()
    it("latency and bandwidth arithmetic is exact", function()
        local r = vrun(function()
            local loop = lasio.get_running_loop()
            local _, wa, rb = testing.pipe({latency = 0.1, bandwidth = 1000})
            wa:write(string.rep("x", 100)) -- 0.1 s on the wire + 0.1 s latency
            wa:write(string.rep("y", 100)) -- waits for the link: 0.3 s
            local t = {}
            assert.are.equal(string.rep("x", 100), rb:readexactly(100))
            t[1] = loop:time()
            assert.are.equal(string.rep("y", 100), rb:readexactly(100))
            t[2] = loop:time()
            lasio.sleep(0.7)
            wa:write("z") -- link idle again: 0.001 + 0.1 after 1.0
            assert.are.equal("z", rb:read(10))
            t[3] = loop:time()
            return t
        end)
        assert.are.same({0.2, 0.3, 1.101}, r)
    end)

    it("is both ways and has the reader's methods", function()
        vrun(function()
            local ra, wa, rb, wb = testing.pipe()
            wa:write("line one\nrest")
            assert.are.equal("line one\n", rb:readline())
            wa:write_eof()
            assert.are.equal("rest", rb:read())
            assert.is_true(rb:at_eof())
            wb:write("a,b,")
            assert.are.equal("a,", ra:readuntil(","))
            wb:close()
            assert.are.equal("b,", ra:readuntil(","))
            local ok, e = pcall(ra.readexactly, ra, 4)
            assert.is_false(ok)
            assert.are.equal(lasio.IncompleteReadError, getmetatable(e))
            assert.is_true(wb:is_closing())
        end)
    end)

    it("a read waits durably: a stuck reader is a deadlock, not a hang", function()
        local ok, e = pcall(vrun, function()
            local _, _, rb = testing.pipe()
            rb:read(1)
        end)
        assert.is_false(ok)
        assert.matches("deadlock", helper.msg(e))
    end)

    it("code written for open_connection runs on it unchanged", function()
        local function client(r, w) -- as with lasio.open_connection
            w:write("GET\n")
            w:drain()
            local line = r:readline()
            w:close()
            w:wait_closed()
            return line
        end
        assert.are.equal("OK GET\n", vrun(function()
            testing.listen("web", function(r, w)
                w:write("OK " .. r:readline())
                w:drain()
            end)
            local line = client(testing.connect("web", {latency = 0.01}))
            testing.reset()
            return line
        end))
    end)

    it("rejects bad options", function()
        vrun(function()
            for _, o in ipairs({{latency = -1}, {latency = 0 / 0}, {latency = "1"},
                                {bandwidth = 0}, {bandwidth = math.huge}, {bandwidth = -5}}) do
                local ok, e = pcall(testing.pipe, o)
                assert.is_false(ok)
                assert.matches("lasio.testing.pipe", helper.msg(e), 1, true)
            end
            assert.has_error(function() testing.pipe(5) end)
        end)
    end)
end)

describe("virtual time: the in-process network", function()
    after_each(function() testing.reset() end)

    it("partition holds bytes and refuses connections until heal", function()
        local r = vrun(function()
            local loop = lasio.get_running_loop()
            testing.listen("db", function(rd, w)
                while true do
                    local line = rd:readline()
                    if line == "" then return end
                    w:write(line)
                end
            end)
            local rd, w = testing.connect("db", {from = "app", latency = 0.01})
            w:write("1\n")
            local got = {rd:readline()}
            testing.partition("app", "db")
            w:write("2\n")
            local ok = pcall(lasio.wait_for, function() return rd:readline() end, 1)
            got[#got + 1] = ok and "through" or "held"
            local cok, ce = pcall(testing.connect, "db", {from = "app"})
            got[#got + 1] = cok and "connected" or ce.code
            testing.heal()
            got[#got + 1] = rd:readline()
            got[#got + 1] = loop:time()
            w:close()
            return got
        end)
        assert.are.same({"1\n", "held", "ECONNREFUSED", "2\n", 1.03}, r)
    end)

    it("hold and release a host", function()
        local r = vrun(function()
            testing.listen("svc", function(rd, w) w:write(rd:read(5)) end)
            local rd, w = testing.connect("svc")
            testing.hold("svc")
            w:write("hello")
            local ok = pcall(lasio.wait_for, function() return rd:read(5) end, 3)
            testing.release("svc")
            return {ok, rd:read(5)}
        end)
        assert.are.same({false, "hello"}, r)
    end)

    it("connecting to no listener is refused; bad names raise", function()
        vrun(function()
            local ok, e = pcall(testing.connect, "nobody")
            assert.is_false(ok)
            assert.are.equal("ECONNREFUSED", e.code)
            assert.has_error(function() testing.listen("", function() end) end)
            assert.has_error(function() testing.listen("x", "not a function") end)
            assert.has_error(function() testing.partition("a", 5) end)
            testing.listen("x", function() end)
            assert.has_error(function() testing.listen("x", function() end) end)
        end)
    end)
end)

describe("virtual time: limits, rates and bad input", function()
    it("a virtual limit raises TimeoutError naming its clock", function()
        local ok, e = pcall(vrun, function() lasio.sleep(100) end, {limit = 10, seed = 3})
        assert.is_false(ok)
        assert.are.equal(lasio.TimeoutError, getmetatable(e))
        assert.matches("virtual time limit 10 s reached", helper.msg(e), 1, true)
        assert.matches("seed = 3", helper.msg(e), 1, true)
    end)

    it("a rate lets virtual time flow that many times real time", function()
        local function wall()
            local p = io.popen("date +%s.%N")
            local t = tonumber(p:read("a"))
            p:close()
            return t
        end
        local w0 = wall()
        local v = vrun(function()
            lasio.sleep(2)
            return lasio.get_running_loop():time()
        end, {rate = 10})
        local real = wall() - w0
        assert.are.equal(2, v)
        assert.is_true(real >= 0.15, "took only " .. real .. " s")
        assert.is_true(real < helper.t(2), "took " .. real .. " s")
    end)

    it("rejects bad options, naming them", function()
        local bad = {
            {limit = -1}, {limit = 0 / 0}, {limit = 1e300}, {rate = 0}, {rate = -2},
            {rate = 0 / 0}, {rate = 1e300}, {seed = -1}, {seed = 1.5}, {seed = "x"},
            {start = -1}, {real_io = -5}, {colour = "red"},
        }
        for _, o in ipairs(bad) do
            local ok, e = pcall(testing.run, function() end, o)
            assert.is_false(ok)
            local msg = helper.msg(e)
            local k = next(o)
            assert.matches("lasio.testing.run", msg, 1, true)
            assert.matches(k, msg, 1, true)
        end
        assert.has_error(function() testing.run("nope") end)
        assert.has_error(function() testing.run(function() end, 5) end)
        assert.has_error(function() testing.buggify(2) end)
        assert.has_error(function() testing.buggify(0 / 0) end)
    end)

    it("a bad option leaves the next loops real", async(function()
        pcall(testing.run, function() end, {rate = -1})
        assert.is_false(testing.virtual())
    end))
end)
