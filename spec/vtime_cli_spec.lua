-- Specs for the lasio command's options of virtual time
-- (docs/VIRTUAL_TIME.md): --virtual-time, --seed / LASIO_SEED, --shuffle,
-- --check-determinism, --virtual-limit, --real-timeout, --time-rate,
-- --real-io, the "--opt V" form, bad values (exit 2), and the seed and
-- rerun command printed with every failure.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local function run(code, flags, env)
    return helper.run_child(code, {flags = flags, env = env})
end

local function wall()
    local p = io.popen("date +%s.%N")
    local t = tonumber(p:read("a"))
    p:close()
    return t
end

describe("lasio --virtual-time", function()
    it("runs an hour of timers in well under a second", function()
        local w0 = wall()
        local out, err, status = run([[
            local loop = lasio.get_running_loop()
            for i = 1, 3600 do lasio.sleep(1) end
            print(loop:time(), lasio.time(), os.date("!%H:%M:%S"))
        ]], "--virtual-time")
        assert.are.equal(0, status, err)
        assert.are.equal("3600.0\t3600.0\t01:00:00\n", out)
        assert.is_true(wall() - w0 < helper.t(5))
    end)

    it("refuses real I/O naming the function and the way out", function()
        local _, err, status = run([[lasio.open_connection("127.0.0.1", 9)]], "--virtual-time --seed=4")
        assert.are.equal(1, status)
        assert.matches("VirtualTimeError: lasio.open_connection", err, 1, true)
        assert.matches("--real-io", err, 1, true)
        assert.matches("seed 4", err, 1, true)
    end)

    it("--real-io allows it and the run finishes", function()
        local out, err, status = run([[
            local srv = lasio.start_server(function(r, w) w:write(r:readline()) end, "127.0.0.1", 0)
            local r, w = lasio.open_connection("127.0.0.1", srv:sockets()[1].port)
            w:write("hi\n")
            io.write(r:readline())
            w:close()
            srv:close()
        ]], "--virtual-time --real-io=5")
        assert.are.equal(0, status, err)
        assert.are.equal("hi\n", out)
    end)

    it("blocks for signal handlers when nothing else can move (rule 3)", function()
        local script = os.tmpname()
        local f = io.open(script, "w")
        f:write([[
            local loop = lasio.get_running_loop()
            local got = lasio.Future()
            loop:add_signal_handler(10, function() got:set_result("usr1") end)
            print(got:await(), loop:time())
            loop:remove_signal_handler(10)
        ]])
        f:close()
        local cmd = ("cd %s && (%s --virtual-time %s & p=$!; sleep 0.5; kill -USR1 $p; wait $p)")
            :format(helper.shell_quote(helper.root), helper.shell_quote(helper.lasio_bin), script)
        local p = io.popen("timeout 20 sh -c " .. helper.shell_quote(cmd))
        local out = p:read("a")
        p:close()
        os.remove(script)
        assert.are.equal("usr1\t0.0\n", out)
    end)

    it("lasio.testing.run inside keeps the run's loops virtual", function()
        local out, err, status = run([[
            local testing = require "lasio.testing"
            print(testing.run(function() lasio.sleep(5) return lasio.time() end, {seed = 1}))
            local loop = lasio.new_event_loop()
            print(testing.virtual(), loop:time())
            loop:close()
        ]], "--virtual-time")
        assert.are.equal(0, status, err)
        assert.are.equal("5.0\ntrue\t0.0\n", out)
    end)

    it("a deadlock exits 5 with the seed and the rerun command", function()
        local _, err, status = run([[lasio.sleep(1) lasio.Future():await()]], "--virtual-time --seed=77")
        assert.are.equal(5, status)
        assert.matches("deadlock", err)
        assert.matches("virtual run with seed 77; rerun it with: ", err, 1, true)
        assert.matches("--seed=77 --virtual-time", err, 1, true)
    end)

    it("the printed rerun command reproduces the failure", function()
        local code = [[
            local x = math.random(1000000)
            lasio.sleep(x)
            error("failed at " .. lasio.time())
        ]]
        local _, err, status = run(code, "--virtual-time")
        assert.are.equal(1, status)
        local seed = assert(err:match("virtual run with seed (%d+)"))
        local at = assert(err:match("failed at ([%d.]+)"))
        local _, err2 = run(code, "--virtual-time --seed=" .. seed)
        assert.are.equal(at, err2:match("failed at ([%d.]+)"))
    end)
end)

describe("lasio --seed and --shuffle", function()
    local code = [[
        local order = {}
        local ts = {}
        for i = 1, 10 do ts[i] = lasio.spawn(function() order[#order + 1] = i end) end
        for _, t in ipairs(ts) do t:await() end
        print(math.random(1000000), table.concat(order, ","))
    ]]

    it("a seed reproduces math.random and the shuffled order", function()
        local a = run(code, "--virtual-time --shuffle --seed=5")
        local b = run(code, "--virtual-time --shuffle --seed 5")
        local c = run(code, "--virtual-time --shuffle", "LASIO_SEED=5")
        assert.are.equal(a, b)
        assert.are.equal(a, c)
        assert.are_not.equal("", a)
    end)

    it("different seeds give different orders", function()
        local seen, distinct = {}, 0
        for seed = 1, 6 do
            local out = run(code, "--virtual-time --shuffle --seed=" .. seed)
            local order = out:match("\t(.*)")
            if not seen[order] then distinct = distinct + 1 end
            seen[order] = true
        end
        assert.is_true(distinct >= 3)
    end)

    it("--seed without --virtual-time seeds math.random in real time", function()
        local a = run("print(math.random(1000000))", "--seed=9")
        local b = run("print(math.random(1000000))", "--seed=9")
        assert.are.equal(a, b)
    end)
end)

describe("lasio --check-determinism", function()
    it("passes a clean script, with its output once", function()
        local out, err, status = run([[
            for i = 1, 3 do lasio.sleep(math.random()) print(i, math.random(100)) end
        ]], "--virtual-time --check-determinism=3")
        assert.are.equal(0, status, err)
        assert.are.equal(3, helper.count(out, "\n"))
    end)

    it("catches output that depends on pairs() order (exit 6)", function()
        local _, err, status = run([[
            local t = {}
            for i = 1, 40 do t["key" .. i] = i end
            for k in pairs(t) do io.write(k, " ") end
            print()
        ]], "--virtual-time --check-determinism=6")
        assert.are.equal(6, status, err)
        assert.matches("differs from run 1 at output line 1", err, 1, true)
        assert.matches("not deterministic with seed", err, 1, true)
    end)
end)

describe("lasio limits and rates", function()
    it("--virtual-limit cancels the main task naming the virtual clock", function()
        local out, err, status = run([[lasio.sleep(5) print("at 5") lasio.sleep(60) print("no")]],
            "--virtual-time --virtual-limit 10 --seed=2")
        assert.are.equal(1, status)
        assert.are.equal("at 5\n", out)
        assert.matches("virtual time limit 10 s reached (virtual clock)", err, 1, true)
        assert.matches("--seed=2", err, 1, true)
    end)

    it("--real-timeout lists every task and exits 124, naming the wall clock", function()
        local _, err, status = run([[
            lasio.spawn(function() lasio.sleep(100) end, nil)
            lasio.sleep(100)
        ]], "--real-timeout=0.3")
        assert.are.equal(124, status)
        assert.matches("real-time limit 0.3 s reached (wall clock)", err, 1, true)
        assert.matches("2 task(s) pending", err, 1, true)
        assert.matches("stack traceback", err, 1, true)
    end)

    it("--time-rate lets the virtual clock flow at that rate", function()
        local w0 = wall()
        local out, err, status = run([[lasio.sleep(2) print(lasio.time())]],
            "--virtual-time --time-rate=8")
        local real = wall() - w0
        assert.are.equal(0, status, err)
        assert.are.equal("2.0\n", out)
        assert.is_true(real >= 0.2, "took only " .. real)
        assert.is_true(real < helper.t(3), "took " .. real)
    end)
end)

describe("lasio virtual time: bad input exits 2", function()
    local cases = {
        {"--virtual-time --time-rate=-1", "--time-rate"},
        {"--virtual-time --time-rate=nan", "--time-rate"},
        {"--virtual-time --time-rate=1e300", "--time-rate"},
        {"--virtual-time --time-rate", "--time-rate"},
        {"--virtual-time --virtual-limit=0", "--virtual-limit"},
        {"--virtual-time --virtual-limit=-3", "--virtual-limit"},
        {"--virtual-time --virtual-limit=inf", "--virtual-limit"},
        {"--real-timeout=abc", "--real-timeout"},
        {"--virtual-time --seed=abc", "--seed"},
        {"--virtual-time --seed=-1", "--seed"},
        {"--virtual-time --real-io=x", "--real-io"},
        {"--virtual-time --check-determinism=1", "--check-determinism"},
        {"--shuffle", "--shuffle needs --virtual-time"},
        {"--real-io", "--real-io needs --virtual-time"},
        {"--virtual-limit=5", "--virtual-limit needs --virtual-time"},
        {"--virtual-time -i", "needs a script"},
    }
    for _, case in ipairs(cases) do
        it(case[1], function()
            local out, err, status = run("print('ran')", case[1])
            assert.are.equal(2, status)
            assert.are.equal("", out)
            assert.matches(case[2], err, 1, true)
        end)
    end

    it("a bad LASIO_SEED", function()
        local _, err, status = run("print('ran')", "--virtual-time", "LASIO_SEED=12x")
        assert.are.equal(2, status)
        assert.matches("LASIO_SEED", err, 1, true)
    end)

    it("--real-io's value only after '='", function()
        -- "--real-io 5" takes no value: 5 is the script name
        local _, err, status = run("print('ran')", "--virtual-time --real-io 5")
        assert.are.equal(2, status, err)
        assert.matches("cannot open 5", err, 1, true)
    end)
end)
