-- Specs of the event trace (docs/SEEING.md): the lasio command's --trace,
-- --trace-ring and --trace-stacks, the files they write (validated by
-- spec/support/trace_check.lua), a golden JSONL trace of a fixed flow in
-- virtual time, files complete however the run ends, and lasio.trace.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
package.path = helper.root .. "/spec/support/?.lua;" .. package.path
local check = require "trace_check"
local lasio = require "lasio"

local q = helper.shell_quote

local function tmpfile(ext)
    local p = os.tmpname()
    os.remove(p)
    return p .. ext
end

local function exists(path)
    local f = io.open(path)
    if f then f:close() end
    return f ~= nil
end

-- Runs code with the lasio command and flags; returns out, err, status.
local function run(code, flags)
    return helper.run_child(code, { flags = flags })
end

describe("lasio --trace", function()
    it("writes the golden JSONL trace of a fixed flow, the same on every run", function()
        local golden = check.read(helper.root .. "/spec/golden/trace_three.jsonl")
        for _ = 1, 2 do
            local path = tmpfile(".jsonl")
            local _, err, status = helper.run_in_root(
                "--virtual-time --seed=1 --trace=" .. q(path)
                .. " spec/support/trace_three.lua", nil, helper.t(30))
            assert.are.equal(0, status, err)
            local text = check.read(path)
            os.remove(path)
            check.jsonl(text)
            assert.are.equal(golden, text)
        end
    end)

    it("writes Chrome JSON with named tracks, flows and no overlap", function()
        local path = tmpfile(".json")
        local _, err, status = helper.run_in_root(
            "--virtual-time --seed=1 --trace " .. q(path)
            .. " spec/support/trace_three.lua", nil, helper.t(30))
        assert.are.equal(0, status, err)
        local doc = check.chrome(check.read(path))
        os.remove(path)
        -- the track of a task renamed right after spawn has the new name
        assert.are.equal("#3 consumer", doc.names["1/3"])
        assert.are.equal("#1 Task-1 (main)", doc.names["1/1"])
        local wake, spawn, waits = 0, 0, {}
        for _, ev in ipairs(doc.traceEvents) do
            if ev.ph == "s" and ev.cat == "wake" then wake = wake + 1 end
            if ev.ph == "s" and ev.cat == "spawn" then spawn = spawn + 1 end
            if ev.ph == "X" and ev.name:match("^wait: ") then waits[ev.name] = true end
        end
        assert.are.equal(2, spawn)
        assert.is_true(wake >= 3)
        assert.is_true(waits["wait: sleep 0.5"])
        assert.is_true(waits["wait: lasio.Queue:get"])
        assert.is_true(waits["wait: Task #2"])
    end)

    it("gives two runs with one seed byte-identical Chrome files", function()
        local a, b = tmpfile(".json"), tmpfile(".json")
        for _, p in ipairs({ a, b }) do
            local _, err, status = helper.run_in_root(
                "--virtual-time --seed=7 --trace=" .. q(p) .. " examples/vt_retry.lua",
                nil, helper.t(30))
            assert.are.equal(0, status, err)
        end
        local ta, tb = check.read(a), check.read(b)
        os.remove(a)
        os.remove(b)
        assert.are.equal(ta, tb)
        check.chrome(ta)
    end)

    it("traces the virtual-time examples into valid files", function()
        for _, ex in ipairs({ "vt_failover", "vt_pipeline", "vt_retry" }) do
            for _, ext in ipairs({ ".json", ".jsonl" }) do
                local path = tmpfile(ext)
                local _, err, status = helper.run_in_root(
                    "--virtual-time --seed=3 --trace " .. q(path) .. " examples/" .. ex .. ".lua",
                    nil, helper.t(60))
                assert.are.equal(0, status, ex .. ": " .. err)
                local text = check.read(path)
                os.remove(path)
                if ext == ".json" then check.chrome(text) else check.jsonl(text) end
            end
        end
    end)

    it("traces a real-time run with the process id and real clock", function()
        local path = tmpfile(".json")
        local _, err, status = run([[
            local t = lasio.spawn(function() lasio.sleep(0.01) end)
            t:set_name("sleeper")
            lasio.await(t)
        ]], "--trace " .. q(path))
        assert.are.equal(0, status, err)
        local doc = check.chrome(check.read(path))
        os.remove(path)
        assert.are.equal("real", doc.otherData.clock)
        assert.are.equal(false, doc.otherData.deterministic)
        assert.are.equal("#2 sleeper", doc.names[string.format("%d/2", doc.otherData.pid)])
    end)

    describe("leaves a complete file however the run ends", function()
        local cases = {
            { "an uncaught error", "lasio.sleep(0.01); error('boom')", 1 },
            { "os.exit", "lasio.spawn(function() lasio.sleep(1) end); lasio.sleep(0.01); os.exit(3)", 3 },
            { "os.exit closing the state", "lasio.sleep(0.01); os.exit(0, true)", 0 },
            { "a deadlock", "lasio.Event():wait()", 5 },
        }
        for _, c in ipairs(cases) do
            it(c[1], function()
                for _, ext in ipairs({ ".json", ".jsonl" }) do
                    local path = tmpfile(ext)
                    local _, err, status = run(c[2], "--trace " .. q(path))
                    assert.are.equal(c[3], status, err)
                    local text = check.read(path)
                    os.remove(path)
                    if ext == ".json" then check.chrome(text) else check.jsonl(text) end
                end
            end)
        end

        it("SIGTERM", function()
            local path = tmpfile(".json")
            local script = tmpfile(".lua")
            local f = assert(io.open(script, "w"))
            f:write("io.stdout:write('up\\n'); io.stdout:flush(); lasio.sleep(60)\n")
            f:close()
            local log = tmpfile(".out")
            local h = io.popen(string.format(
                "%s --trace %s %s >%s 2>&1 & pid=$!; "
                .. "for i in $(seq 300); do grep -q up %s && break; sleep 0.1; done; "
                .. "kill -TERM $pid; wait $pid; echo $?",
                q(helper.lasio_bin), q(path), q(script), q(log), q(log)))
            local out = h:read("a")
            h:close()
            os.remove(script)
            os.remove(log)
            assert.matches("143", out, 1, true)
            check.chrome(check.read(path))
            os.remove(path)
        end)
    end)

    it("keeps the last N events with --trace-ring", function()
        local path = tmpfile(".jsonl")
        local _, err, status = run("for i = 1, 100 do lasio.sleep(0.001) end",
            "--virtual-time --trace-ring 10 --trace=" .. q(path))
        assert.are.equal(0, status, err)
        local _, events = check.jsonl(check.read(path))
        os.remove(path)
        assert.are.equal(10, #events)
        assert.are.equal("task.done", events[#events - 2].ev == "task.done"
            and "task.done" or events[#events].ev == "task.done" and "task.done"
            or events[#events - 1].ev)
        local json = tmpfile(".json")
        _, err, status = run("for i = 1, 100 do lasio.sleep(0.001) end",
            "--virtual-time --trace-ring=10 --trace " .. q(json))
        assert.are.equal(0, status, err)
        local doc = check.chrome(check.read(json))
        os.remove(json)
        assert.are.equal("#1 Task-1 (main)", doc.names["1/1"])
    end)

    it("writes the ring on SIGQUIT and runs on", function()
        local path = tmpfile(".jsonl")
        local script = tmpfile(".lua")
        local log = tmpfile(".out")
        local f = assert(io.open(script, "w"))
        f:write("io.stdout:write('up\\n'); io.stdout:flush()\n",
            "local function size() local h = io.open(", string.format("%q", path), ")\n",
            "  local s = h:read('a'); h:close(); return #s end\n",
            "while size() == 0 do lasio.sleep(0.01) end\n",
            "lasio.sleep(0.2); print('went on')\n")
        f:close()
        -- the file stays empty until written: the script waits for the
        -- SIGQUIT snapshot, then ends
        local h = io.popen(string.format(
            "%s --trace-ring 7 --trace %s %s >%s 2>&1 & pid=$!; "
            .. "for i in $(seq 300); do grep -q up %s && break; sleep 0.1; done; "
            .. "kill -QUIT $pid; wait $pid; echo $?",
            q(helper.lasio_bin), q(path), q(script), q(log), q(log)))
        local status = h:read("a")
        h:close()
        local out = check.read(log)
        os.remove(script)
        os.remove(log)
        assert.matches("^0", status)
        assert.matches("went on", out, 1, true)
        local _, events = check.jsonl(check.read(path))
        os.remove(path)
        assert.are.equal(7, #events)
    end)

    it("adds a stack summary to wait events with --trace-stacks", function()
        local path = tmpfile(".jsonl")
        local _, err, status = run([[
            local function inner() lasio.sleep(0.01) end
            inner()
        ]], "--trace-stacks --trace " .. q(path))
        assert.are.equal(0, status, err)
        local _, events = check.jsonl(check.read(path))
        os.remove(path)
        local found
        for _, ev in ipairs(events) do
            if ev.ev == "task.wait" then found = ev end
        end
        assert.truthy(found and found.stack, "no stack on the wait")
        assert.matches("script.lua:1 < ", found.stack, 1, true)
        assert.matches("script.lua:1", found.site, 1, true)
    end)

    describe("refuses bad options before the script runs (exit 2)", function()
        local cases = {
            { "--trace /nonexistent/dir/t.json", "--trace: cannot open '/nonexistent/dir/t.json'" },
            { "--trace=/tmp/t.txt", "--trace: needs a file name ending in .json" },
            { "--trace", "--trace: needs a file name" },
            { "--trace-ring 0 --trace /tmp/x.json", "--trace-ring: needs an integer from 1 to 100000000" },
            { "--trace-ring=abc --trace /tmp/x.json", "--trace-ring: needs an integer from 1 to 100000000" },
            { "--trace-ring 5", "--trace-ring needs --trace FILE" },
            { "--trace-stacks", "--trace-stacks needs --trace FILE" },
        }
        for _, c in ipairs(cases) do
            it(c[1], function()
                local out, err, status = run("print('ran')", c[1])
                assert.are.equal(2, status, err)
                assert.are.equal("", out)
                assert.matches(c[2], err, 1, true)
            end)
        end
    end)
end)

describe("lasio.trace", function()
    it("records marks, regions and counters between start and stop", function()
        local path = tmpfile(".json")
        lasio.testing.run(function()
            lasio.trace.start(path)
            assert.is_true(lasio.trace.recording())
            local t = lasio.spawn(function()
                local _ <close> = lasio.trace.region("work", { n = 2 })
                lasio.trace.mark("step", { k = "v", list = { 1, 2 }, ok = true })
                lasio.trace.counter("items", 3)
                lasio.trace.counter("ratio", 0.5)
                lasio.sleep(1)
            end)
            lasio.await(t)
            assert.is_true(lasio.trace.stop())
            assert.is_false(lasio.trace.recording())
        end, { seed = 1 })
        local doc = check.chrome(check.read(path))
        os.remove(path)
        local seen = {}
        for _, ev in ipairs(doc.traceEvents) do
            seen[ev.ph .. ":" .. ev.name] = ev
        end
        assert.truthy(seen["B:work"])
        assert.truthy(seen["E:work"])
        assert.are.equal("v", seen["i:step"].args.k)
        assert.are.equal(3, seen["C:items"].args.value)
        assert.are.equal(0.5, seen["C:ratio"].args.value)
        assert.are.equal(1, doc.otherData.seed)
    end)

    it("writes JSONL with the format option and a ring", function()
        local path = tmpfile(".trace")
        lasio.testing.run(function()
            lasio.trace.start(path, { format = "jsonl", ring = 5 })
            for _ = 1, 20 do lasio.sleep(0.1) end
            lasio.trace.stop()
        end)
        local header, events = check.jsonl(check.read(path))
        os.remove(path)
        assert.are.equal("virtual", header.clock)
        assert.are.equal(5, #events)
    end)

    it("does nothing for marks while nothing records", function()
        lasio.run(function()
            lasio.trace.mark("nobody")
            lasio.trace.counter("c", 1)
            local _ <close> = lasio.trace.region("r")
        end)
    end)

    it("raises on bad arguments, naming the function and the argument", function()
        local function err_of(f, ...)
            local ok, e = pcall(f, ...)
            assert.is_false(ok)
            return tostring(e)
        end
        lasio.run(function()
            assert.matches("bad argument #1 to 'lasio.trace.start' (string expected, got no value)",
                err_of(lasio.trace.start), 1, true)
            assert.matches("bad argument #2 to 'lasio.trace.start' (table expected, got number)",
                err_of(lasio.trace.start, "/tmp/x.json", 5), 1, true)
            assert.matches("ring must be an integer from 1 to 100000000",
                err_of(lasio.trace.start, "/tmp/x.json", { ring = 0 }), 1, true)
            assert.matches("format must be \"json\" or \"jsonl\"",
                err_of(lasio.trace.start, "/tmp/x.json", { format = "xml" }), 1, true)
            assert.matches("lasio.trace.start", err_of(lasio.trace.start, "/tmp/x.json", { rnig = 2 }), 1, true)
            assert.matches("cannot tell the format of '/tmp/x.txt'",
                err_of(lasio.trace.start, "/tmp/x.txt"), 1, true)
            assert.matches("lasio.trace.start: cannot open '/nonexistent/dir/x.json'",
                err_of(lasio.trace.start, "/nonexistent/dir/x.json"), 1, true)
            assert.matches("lasio.trace.stop: no trace is being recorded",
                err_of(lasio.trace.stop), 1, true)
            assert.matches("bad argument #1 to 'lasio.trace.mark' (string expected, got number)",
                err_of(lasio.trace.mark, 5), 1, true)
            assert.matches("bad argument #2 to 'lasio.trace.mark' (table expected, got string)",
                err_of(lasio.trace.mark, "m", "x"), 1, true)
            assert.matches("bad argument #1 to 'lasio.trace.region' (string expected, got no value)",
                err_of(lasio.trace.region), 1, true)
            assert.matches("bad argument #2 to 'lasio.trace.counter' (number expected, got string)",
                err_of(lasio.trace.counter, "c", "x"), 1, true)
            -- a second start while one records
            local path = tmpfile(".json")
            lasio.trace.start(path)
            assert.matches("a trace is being recorded already",
                err_of(lasio.trace.start, tmpfile(".json")), 1, true)
            lasio.trace.stop()
            check.chrome(check.read(path))
            os.remove(path)
        end)
        assert.is_false(exists("/tmp/x.txt"))
    end)
end)
