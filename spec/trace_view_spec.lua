-- `lasio trace view` and `lasio trace text`: the HTML timeline opened in
-- headless Chromium (one row per task, no script error, 10,000 tasks),
-- the text timeline against golden files, and bad input. The fixtures in
-- spec/trace/ are a three-task run in virtual time in both formats.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local q = helper.shell_quote
local bin = helper.lasio_bin
local fixtures = "spec/trace/"

local function tmpdir()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir)))
    return dir
end

local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function spit(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

-- Runs `lasio trace ARGS` (a shell string, after the environment env):
-- stdout, stderr, exit status.
local function trace(args, env)
    local dir = tmpdir()
    local _, _, status = os.execute(string.format("%s%s trace %s >%s/out 2>%s/err",
        env or "", q(bin), args, q(dir), q(dir)))
    local out, err = slurp(dir .. "/out"), slurp(dir .. "/err")
    os.execute("rm -rf " .. q(dir))
    return out, err, status
end

-- The DOM of the page at path once its scripts ran, from headless
-- Chromium (a fresh profile each time; without the sanitizer runtime
-- that spec/run.sh preloads for the sanitizer build).
local function render(path, hash)
    local profile = tmpdir()
    local abs = path:sub(1, 1) == "/" and path or (helper.root .. "/" .. path)
    local cmd = string.format("env -u LD_PRELOAD -u ASAN_OPTIONS " ..
        "-u UBSAN_OPTIONS timeout %d chromium --headless --no-sandbox " ..
        "--disable-gpu --no-first-run --user-data-dir=%s " ..
        "--window-size=1200,800 --virtual-time-budget=10000 " ..
        "--dump-dom %s 2>/dev/null", math.floor(helper.t(300)), q(profile),
        q("file://" .. abs .. (hash or "")))
    local p = assert(io.popen(cmd))
    local dom = p:read("a")
    p:close()
    os.execute("rm -rf " .. q(profile))
    return dom
end

local function body_attr(dom, name)
    return dom:match("<body[^>]-%s" .. name .. '="([^"]*)"')
end

-- The texts of the row labels in the DOM, in order.
local function labels(dom)
    local out = {}
    for text in dom:gmatch('<div class="row%-label[^"]*"[^>]*>([^<]*)</div>') do
        out[#out + 1] = text
    end
    return out
end

local function errors(dom)
    return dom:match('<pre id="errors"[^>]*>(.-)</pre>')
end

-- A JSONL trace of n tasks (the loop, main and n - 2 workers it spawns,
-- each sleeping a while, then waking main through a queue).
local function generate(path, n)
    local lines = {'{"lasio_trace":1,"clock":"virtual","seed":7,' ..
        '"deterministic":true,"pid":1,"start":0}'}
    local seq = 0
    local function ev(ts, body)
        seq = seq + 1
        lines[#lines + 1] = string.format('{"seq":%d,"ts":%d,%s}', seq, ts, body)
    end
    ev(0, '"ev":"task.create","task":1,"name":"main","parent":0,"site":"gen.lua:1"')
    ev(0, '"ev":"task.ready","task":1,"by":"start"')
    ev(0, '"ev":"task.run","task":1')
    for id = 2, n - 1 do
        ev(0, string.format('"ev":"task.create","task":%d,"name":"worker %d",' ..
            '"parent":1,"site":"gen.lua:2"', id, id))
        ev(0, string.format('"ev":"task.ready","task":%d,"by":1', id))
    end
    ev(0, '"ev":"task.wait","task":1,"what":"Queue.get","site":"gen.lua:3"')
    for id = 2, n - 1 do
        ev(0, string.format('"ev":"task.run","task":%d', id))
        ev(0, string.format('"ev":"task.wait","task":%d,"what":"sleep %g",' ..
            '"site":"gen.lua:2"', id, id / 1000))
    end
    for id = 2, n - 1 do
        local ts = id * 1000000
        ev(ts, string.format('"ev":"task.ready","task":%d,"by":"timer"', id))
        ev(ts, string.format('"ev":"task.run","task":%d', id))
        ev(ts, string.format('"ev":"task.ready","task":1,"by":%d', id))
        ev(ts, string.format('"ev":"task.done","task":%d,"status":"ok"', id))
        ev(ts, '"ev":"task.run","task":1')
        ev(ts, '"ev":"task.wait","task":1,"what":"Queue.get","site":"gen.lua:3"')
    end
    ev(n * 1000000, '"ev":"task.done","task":1,"status":"ok"')
    spit(path, table.concat(lines, "\n") .. "\n")
end

describe("lasio trace text", function()
    for _, name in ipairs({"three.jsonl", "three.json"}) do
        it("prints the golden timeline of " .. name, function()
            local out, err, status = trace("text " .. q(fixtures .. name))
            assert.are.equal("", err)
            assert.are.equal(0, status)
            assert.are.equal(slurp(fixtures .. name .. ".txt"), out)
        end)
    end

    it("gives the same text at every run", function()
        local a = trace("text " .. q(fixtures .. "three.jsonl"))
        local b = trace("text " .. q(fixtures .. "three.jsonl"))
        assert.are.equal(a, b)
    end)

    it("tells the formats by content, not by the file's name", function()
        local dir = tmpdir()
        assert(os.execute(string.format("cp %s %s/a.json && cp %s %s/b.txt",
            q(fixtures .. "three.jsonl"), q(dir), q(fixtures .. "three.json"),
            q(dir))))
        local a = trace("text " .. q(dir .. "/a.json"))
        local b = trace("text " .. q(dir .. "/b.txt"))
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(slurp(fixtures .. "three.jsonl.txt"), a)
        assert.are.equal(slurp(fixtures .. "three.json.txt"), b)
    end)

    it("marks a state still held when the trace ends as open", function()
        local dir = tmpdir()
        spit(dir .. "/t.jsonl", table.concat({
            '{"lasio_trace":1,"clock":"real","seed":null,"deterministic":false,"pid":9,"start":5}',
            '{"seq":1,"ts":1000,"ev":"task.create","task":4,"name":"stuck","parent":0,"site":"s.lua:1"}',
            '{"seq":2,"ts":2000,"ev":"task.wait","task":4,"what":"read fd 7","site":"s.lua:2"}',
            '{"seq":3,"ts":9000,"ev":"loop.poll","ready":0}', ""}, "\n"))
        local out, _, status = trace("text " .. q(dir .. "/t.jsonl"))
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(0, status)
        assert.truthy(out:find("lasio trace: jsonl, clock=real deterministic=false seed=null\n", 1, true))
        assert.truthy(out:find("  0.000002000 open        wait       read fd 7 site=s.lua:2\n",
            1, true))
    end)
end)

describe("lasio trace view", function()
    for _, name in ipairs({"three.jsonl", "three.json"}) do
        it("draws " .. name .. " with one row per task in headless Chromium",
            function()
                local dir = tmpdir()
                local out = dir .. "/view.html"
                local o, err, status = trace(string.format("view %s -o %s",
                    q(fixtures .. name), q(out)))
                assert.are.same({"", "", 0}, {o, err, status})
                local page = slurp(out)
                -- self-contained: no address to fetch, no file beside it
                assert.falsy(page:find("https?://"))
                assert.falsy(page:find("<script[^>]-src"))
                assert.falsy(page:find("<link"))
                -- a task's name cannot end the script element carrying it
                assert.falsy(page:find("slow</script>", 1, true))
                local dom = render(out)
                os.execute("rm -rf " .. q(dir))
                assert.are.equal("", errors(dom))
                assert.are.equal("drawn", body_attr(dom, "data%-state"))
                assert.are.equal("4", body_attr(dom, "data%-rows"))
                assert.are.equal("4", body_attr(dom, "data%-visible%-rows"))
                assert.are.same({"#0 loop", "#1 main",
                    "#2 slow&lt;/script&gt;&lt;b&gt;x", "#3 fast worker"},
                    labels(dom))
                assert.truthy(dom:find("4 rows \194\183 6 arrows", 1, true) or
                    dom:find("4 rows \194\183 4 arrows", 1, true))
            end)
    end

    it("takes a view and an event to point at from the address", function()
        local dir = tmpdir()
        local out = dir .. "/view.html"
        assert.are.equal(0, select(3, trace(string.format("view %s -o %s",
            q(fixtures .. "three.jsonl"), q(out)))))
        -- 0.4 s to 0.6 s, the tooltip of task #2's wait at 0.5 s
        local dom = render(out, "#from=400000000&to=600000000&at=2,500000000")
        os.execute("rm -rf " .. q(dir))
        assert.are.equal("", errors(dom))
        assert.are.equal("400000000", body_attr(dom, "data%-view%-from"))
        assert.are.equal("600000000", body_attr(dom, "data%-view%-to"))
        local tip = dom:match('<div id="tooltip"[^>]*>(.-)</div>')
        assert.are.equal(table.concat({
            "#2 slow&lt;/script&gt;&lt;b&gt;x",
            "created at three.lua:2",
            "wait: sleep 1.5",
            "start 0 ns, duration 1.500 s",
            "",
            'ev: "task.wait"',
            "seq: 12",
            "ts: 0",
            "task: 2",
            'site: "three.lua:2"',
            'what: "sleep 1.5"'}, "\n"), tip)
    end)

    it("writes FILE.html by default", function()
        local dir = tmpdir()
        assert(os.execute(string.format("cp %s %s/run.jsonl",
            q(fixtures .. "three.jsonl"), q(dir))))
        local _, err, status = trace("view " .. q(dir .. "/run.jsonl"))
        local page = slurp(dir .. "/run.html")
        os.execute("rm -rf " .. q(dir))
        assert.are.same({"", 0}, {err, status})
        assert.truthy(page and page:find("<canvas", 1, true))
    end)

    it("draws a trace of 10,000 tasks, only the rows in sight", function()
        local n = os.getenv("LASIO_SANITIZED") and 2000 or 10000
        local dir = tmpdir()
        generate(dir .. "/big.jsonl", n)
        local _, err, status = trace(string.format("view %s -o %s",
            q(dir .. "/big.jsonl"), q(dir .. "/big.html")))
        assert.are.same({"", 0}, {err, status})
        local dom = render(dir .. "/big.html")
        assert.are.equal("", errors(dom))
        assert.are.equal("drawn", body_attr(dom, "data%-state"))
        assert.are.equal(tostring(n), body_attr(dom, "data%-rows"))
        local visible = tonumber(body_attr(dom, "data%-visible%-rows"))
        assert.is_true(visible > 10 and visible < 100)
        local shown = labels(dom)
        assert.are.equal(visible, #shown)
        assert.are.equal("#0 loop", shown[1])
        assert.are.equal("#2 worker 2", shown[3])
        -- the address can ask for rows further down
        dom = render(dir .. "/big.html", "#row=1500")
        os.execute("rm -rf " .. q(dir))
        assert.are.equal("", errors(dom))
        assert.are.equal("1500", body_attr(dom, "data%-first%-row"))
        assert.are.equal("#1500 worker 1500", labels(dom)[1])
    end)
end)

describe("lasio trace on the traces --trace writes", function()
    -- spec/support/trace_three.lua: a producer, a consumer renamed after
    -- spawn and the main task, in virtual time
    local function record(dir, name)
        local _, _, status = os.execute(string.format(
            "%s --virtual-time --seed=1 --trace %s spec/support/trace_three.lua",
            q(bin), q(dir .. "/" .. name)))
        assert.are.equal(0, status)
        return dir .. "/" .. name
    end

    local function titles(text)
        local out = {}
        for title in text:gmatch("\n(#%d+ [^\n]*)") do
            -- without the "(parent ..., at ..., done ...)" after the name
            out[#out + 1] = title:gsub(' %([^"]*%)$', "")
        end
        return out
    end

    it("gives a block per task in both formats, the same at every run",
        function()
            local dir = tmpdir()
            for _, name in ipairs({"t.jsonl", "t.json"}) do
                local path = record(dir, name)
                local a, err, status = trace("text " .. q(path))
                assert.are.same({"", 0}, {err, status})
                assert.are.same({"#0 loop", '#1 "Task-1 (main)"', "#2 Task-2",
                    "#3 consumer"}, titles(a))
                assert.truthy(a:find("wait       lasio.Queue:get", 1, true))
                assert.truthy(a:find("wake       from #2", 1, true))
                local again = record(dir, "again-" .. name)
                assert.are.equal(a, (trace("text " .. q(again))))
            end
            os.execute("rm -rf " .. q(dir))
        end)

    it("draws them in headless Chromium, a row per task", function()
        local dir = tmpdir()
        for _, name in ipairs({"t.jsonl", "t.json"}) do
            local path = record(dir, name)
            local _, err, status = trace("view " .. q(path) .. " -o " ..
                q(dir .. "/view.html"))
            assert.are.same({"", 0}, {err, status})
            local dom = render(dir .. "/view.html")
            assert.are.equal("", errors(dom))
            assert.are.equal("4", body_attr(dom, "data%-rows"))
            assert.are.same({"#0 loop", "#1 Task-1 (main)", "#2 Task-2",
                "#3 consumer"}, labels(dom))
        end
        os.execute("rm -rf " .. q(dir))
    end)
end)

describe("the virtual-time examples, traced and viewed", function()
    for _, example in ipairs({"vt_pipeline", "vt_retry", "vt_failover"}) do
        it(example, function()
            local dir = tmpdir()
            local trace_file = dir .. "/" .. example .. ".json"
            local _, _, ran = os.execute(string.format(
                "%s --virtual-time --seed=1 --trace %s examples/%s.lua >/dev/null",
                q(bin), q(trace_file), example))
            assert.are.equal(0, ran)
            local text, err, status = trace("text " .. q(trace_file))
            assert.are.same({"", 0}, {err, status})
            local _, blocks = text:gsub("\n#%d+ ", "")
            assert.is_true(blocks > 2)
            _, err, status = trace("view " .. q(trace_file))
            assert.are.same({"", 0}, {err, status})
            local dom = render(dir .. "/" .. example .. ".html")
            os.execute("rm -rf " .. q(dir))
            assert.are.equal("", errors(dom))
            assert.are.equal(tostring(blocks), body_attr(dom, "data%-rows"))
            assert.are.equal("#0 loop", labels(dom)[1])
        end)
    end
end)

describe("lasio trace, bad input", function()
    local usage = 2

    it("names a missing file", function()
        local out, err, status = trace("text spec/trace/no-such.jsonl")
        assert.are.equal("", out)
        assert.are.equal(usage, status)
        assert.are.equal("lasio trace: cannot read 'spec/trace/no-such.jsonl': " ..
            "No such file or directory\n", err)
        local _, err2, status2 = trace("view spec/trace/no-such.jsonl -o /tmp/x.html")
        assert.are.equal(usage, status2)
        assert.truthy(err2:find("cannot read 'spec/trace/no-such.jsonl'", 1, true))
    end)

    it("names a file that cannot be read", function()
        local _, err, status = trace("text spec/trace")
        assert.are.equal(usage, status)
        assert.are.equal("lasio trace: cannot read 'spec/trace': Is a directory\n", err)
    end)

    it("names a file that is not a trace", function()
        local dir = tmpdir()
        spit(dir .. "/a.lua", "print('hello')\n")
        spit(dir .. "/b.json", '{"events":[]}')
        spit(dir .. "/c.jsonl", "")
        for _, name in ipairs({"a.lua", "b.json", "c.jsonl"}) do
            local path = dir .. "/" .. name
            for _, form in ipairs({"text ", "view "}) do
                local out, err, status = trace(form .. q(path))
                assert.are.equal("", out)
                assert.are.equal(usage, status)
                assert.truthy(err:find("lasio trace: '" .. path ..
                    "' is not a trace: neither lasio's JSONL", 1, true), err)
            end
        end
        assert.falsy(slurp(dir .. "/a.html"))
        os.execute("rm -rf " .. q(dir))
    end)

    it("names the line of a JSONL trace that is not an event", function()
        local dir = tmpdir()
        spit(dir .. "/t.jsonl", '{"lasio_trace":1,"clock":"virtual"}\n' ..
            '{"seq":1,"ts":0,"ev":"task.run","task":1}\n{"seq":2,"ts":\n')
        local _, err, status = trace("text " .. q(dir .. "/t.jsonl"))
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(usage, status)
        assert.truthy(err:find("t.jsonl' line 3 is not a trace event", 1, true), err)
    end)

    it("refuses a trace of a later version", function()
        local dir = tmpdir()
        spit(dir .. "/t.jsonl", '{"lasio_trace":2,"clock":"virtual"}\n')
        local _, err, status = trace("text " .. q(dir .. "/t.jsonl"))
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(usage, status)
        assert.truthy(err:find("is a lasio trace of version 2; this lasio " ..
            "reads version 1", 1, true), err)
    end)

    it("names an output path that cannot be written", function()
        local out, err, status = trace("view " .. q(fixtures .. "three.jsonl") ..
            " -o /nonexistent-dir/view.html")
        assert.are.equal("", out)
        assert.are.equal(usage, status)
        assert.are.equal("lasio trace: cannot write '/nonexistent-dir/view.html': " ..
            "No such file or directory\n", err)
    end)

    it("says which module is missing when cjson cannot be loaded", function()
        local out, err, status = trace("text " .. q(fixtures .. "three.jsonl"),
            "LUA_CPATH_5_4='/nonexistent/?.so' ")
        assert.are.equal("", out)
        assert.are.equal(1, status)
        assert.are.equal("lasio trace: reading a trace needs the Lua module " ..
            "cjson (Debian package lua-cjson), which is missing\n", err)
    end)

    it("explains a bad command line", function()
        for args, why in pairs({
            [""] = "which form? view or text",
            ["frobnicate x"] = "unknown form 'frobnicate'",
            ["view"] = "view needs a FILE",
            ["view a.json -o"] = "-o needs a file name",
            ["view a.json b.json"] = "view takes one FILE, got 'b.json' too",
            ["view --zoom a.json"] = "unknown option '--zoom' of view",
            ["text"] = "text takes one FILE",
            ["view spec/trace/three.jsonl -o spec/trace/three.jsonl"] =
                "the output 'spec/trace/three.jsonl' would overwrite the trace",
        }) do
            local out, err, status = trace(args)
            assert.are.equal("", out)
            assert.are.equal(usage, status, args)
            assert.truthy(err:find("lasio trace: " .. why .. "\nusage: lasio trace view",
                1, true), err)
        end
        local out, err, status = trace("--help")
        assert.are.same({"", 0}, {err, status})
        assert.truthy(out:find("usage: lasio trace view FILE [-o OUT.html]", 1, true))
    end)

    it("leaves a script named trace to `lasio ./trace`", function()
        local dir = tmpdir()
        spit(dir .. "/trace", "print('the script ran', ...)\n")
        local p = assert(io.popen(string.format("cd %s && %s ./trace x 2>&1",
            q(dir), q(bin:sub(1, 1) == "/" and bin or helper.root .. "/" .. bin))))
        local out = p:read("a")
        p:close()
        os.execute("rm -rf " .. q(dir))
        assert.are.equal("the script ran\tx\n", out)
    end)
end)
