-- The reference manual (docs/reference/*.md) covers the API as it is at run
-- time: every name of the lasio table, of its submodules and of the public
-- modules, and every method of the main object types, has a heading; and
-- every example marked `lua run` runs and prints its `output` block.
-- The names are read from the modules, so a new name fails this spec
-- until its entry is written; the failure lists every missing one.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local helper = require "helper"

local refdir = helper.root .. "/docs/reference"

-- Modules that are public but reached by require, not through the lasio
-- table (a submodule held in the lasio table is found by itself).
local required_modules = { "lasio.websocket" }

-- The chapters, in the order of the index.
local function chapters()
    local files = {}
    local p = assert(io.popen("ls " .. helper.shell_quote(refdir) .. "/*.md"))
    for path in p:lines() do files[#files + 1] = path end
    p:close()
    assert(#files > 1, "no chapters under " .. refdir)
    return files
end

local function slurp(path)
    local f = assert(io.open(path))
    local s = f:read("a")
    f:close()
    return s
end

-- Every heading line of the manual, outside code blocks.
local function headings()
    local all = {}
    for _, path in ipairs(chapters()) do
        local fenced = false
        for line in slurp(path):gmatch("[^\n]*") do
            if line:match("^```") then fenced = not fenced end
            if not fenced and line:match("^#+ ") then all[#all + 1] = line end
        end
    end
    return table.concat(all, "\n")
end

-- Is `name` (such as "lasio.sleep" or "Future:result") in a heading, as
-- a whole name (followed by neither a letter, a digit nor "_")?
local function documented(text, name)
    local i = 1
    while true do
        local a, b = text:find(name, i, true)
        if not a then return false end
        local before, after = text:sub(a - 1, a - 1), text:sub(b + 1, b + 1)
        if not before:match("[%w_.:]") and not after:match("[%w_]") then
            return true
        end
        i = b + 1
    end
end

-- Public names of a module table: names that do not start with "_".
local function public_keys(t)
    local keys = {}
    for k in pairs(t) do
        if type(k) == "string" and not k:match("^_") then keys[#keys + 1] = k end
    end
    table.sort(keys)
    return keys
end

-- The methods of an object: the function-valued public names reached
-- through its metatable's __index (a table, its own __index chain, or
-- the tables a C or Lua __index function keeps as upvalues).
local function methods(obj)
    local found, seen = {}, {}
    local function add(t)
        for k, v in pairs(t) do
            if type(k) == "string" and not k:match("^_") and type(v) == "function"
                and not seen[k] then
                seen[k] = true
                found[#found + 1] = k
            end
        end
    end
    local mt = getmetatable(obj)
    local idx = mt and mt.__index
    local depth = 0
    while type(idx) == "table" and depth < 4 do
        add(idx)
        local imt = getmetatable(idx)
        idx = imt and imt.__index
        depth = depth + 1
    end
    if type(idx) == "function" then
        for i = 1, 8 do
            local name, v = debug.getupvalue(idx, i)
            if not name then break end
            if type(v) == "table" then add(v) end
        end
    end
    table.sort(found)
    return found
end

-- The type's name in headings: its __name without "lasio.", and the
-- types whose entries it shares.
local shares = {
    Task = { "Future" },
    TimerHandle = { "Handle" },
    LifoQueue = { "Queue" },
    PriorityQueue = { "Queue" },
    BoundedSemaphore = { "Semaphore" },
    ["http.Server"] = { "Server" },
    -- in-process pipes have the stream methods
    ["testing.PipeReader"] = { "StreamReader" },
    ["testing.PipeWriter"] = { "StreamWriter" },
}

-- Servers some object types need, started before the loop runs (the
-- helpers block) and stopped after: PostgreSQL always, Redis once
-- lasio.redis is part of the build.
local function start_servers()
    local servers = { pg = require("pg_server").start() }
    if pcall(require, "lasio.redis") then
        servers.redis = require("redis_server").start()
    end
    return servers
end

local function stop_servers(servers)
    require("pg_server").stop(servers.pg)
    if servers.redis then servers.redis:stop() end
end

-- One object of every main type, made inside a task; `close` releases
-- what needs it. Add a line here for a new object type.
local function objects(servers)
    local list, closers = {}, {}
    local function add(obj, close)
        list[#list + 1] = obj
        if close then closers[#closers + 1] = close end
    end
    local loop = lasio.get_running_loop()
    add(loop)
    add(lasio.Future())
    add(lasio.current_task())
    add(loop:call_soon(function() end))
    local timer = loop:call_later(10, function() end)
    add(timer, function() timer:cancel() end)
    for _, k in ipairs({ "Lock", "Event", "Condition", "Semaphore",
        "BoundedSemaphore", "Queue", "LifoQueue", "PriorityQueue", "WaitQueue" }) do
        add(lasio[k]())
    end
    add(lasio.Barrier(2))
    local tmo <close> = lasio.timeout(nil)
    add(lasio.trace.region("reference"))
    add(tmo)
    lasio.taskgroup(function(tg) add(tg) end)
    do
        local tg <close> = lasio.TaskGroup()
        add(tg)
        local t <close> = lasio.Timeout(nil)
        add(t)
    end
    local runner = lasio.Runner()
    add(runner, function() runner:close() end)
    local pr, pw = lasio.testing.pipe()
    add(pr)
    add(pw)
    -- PostgreSQL: a connection, a transaction and a pool
    local pg = lasio.pg
    local conn = pg.connect(servers.pg.conninfo)
    add(conn, function() conn:close() end)
    local tx = conn:transaction()
    add(tx, function() tx:rollback() end)
    local pgpool = pg.pool(servers.pg.conninfo, { size = 1 })
    add(pgpool, function() pgpool:close() end)
    -- Redis: a client, a subscription and a pool
    if servers.redis then
        local redis = lasio.redis
        local client = redis.connect(servers.redis:url())
        add(client, function() client:close() end)
        local sub = client:subscribe("reference")
        add(sub, function() sub:close() end)
        local rpool = redis.pool(servers.redis:url(), { size = 1 })
        add(rpool, function() rpool:close() end)
    end
    add(lasio.TimeoutError("x"))
    local server = lasio.start_server(function() end, "127.0.0.1", 0)
    local r, w = lasio.open_connection("127.0.0.1", server:sockets()[1].port)
    add(r)
    add(w, function() w:close() end)
    add(server, function() server:close() end)
    local proc = lasio.create_subprocess_exec("true")
    add(proc, function() proc:wait() end)
    local file = lasio.fs.open(helper.root .. "/docs/reference/index.md")
    add(file, function() file:close() end)
    local ep = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
    add(ep, function() ep:close() end)
    -- HTTP: the server's request and response, the client's response and
    -- body reader, and WebSockets on both sides
    local http = lasio.http
    local hs = http.serve(function(req, res)
        if req.path == "/ws" then
            local s = req:upgrade_websocket()
            s:recv()
            s:close()
            return
        end
        add(req)
        add(res)
        res:finish("ok")
    end, "127.0.0.1", 0)
    local base = ("127.0.0.1:%d"):format(hs:sockets()[1].port)
    add(hs, function() hs:close() end)
    local resp = http.get("http://" .. base .. "/")
    add(resp)
    add(resp:reader())
    resp:close()
    local ws = http.websocket("ws://" .. base .. "/ws")
    add(ws, function() ws:close() end)
    return list, function()
        for i = #closers, 1, -1 do closers[i]() end
    end
end

-- The fenced code blocks of a chapter: {info =, body =, line =, follows =}
-- (follows: only blank lines separate it from the block before).
local function fenced_blocks(text)
    local blocks, cur, gap, lineno = {}, nil, nil, 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        lineno = lineno + 1
        if cur then
            if line:match("^```%s*$") then
                cur.body = table.concat(cur.lines, "\n") .. "\n"
                blocks[#blocks + 1] = cur
                cur, gap = nil, true
            else
                cur.lines[#cur.lines + 1] = line
            end
        else
            local info = line:match("^```(.*)$")
            if info then
                cur = { info = info, lines = {}, line = lineno, follows = gap }
            elseif not line:match("^%s*$") then
                gap = false
            end
        end
    end
    return blocks
end

describe("the reference manual", function()
    it("documents every public name of the modules and every method", function()
        local text = headings()
        local missing = {}
        local function need(name)
            if not documented(text, name) then missing[#missing + 1] = name end
        end
        -- the lasio table, and each submodule it holds (lasio.http,
        -- lasio.fs, ...): a table that is not an error class (a class is
        -- callable); pairs must list a submodule's names (a lazily loaded
        -- one gives __pairs, as lasio.http does)
        for _, k in ipairs(public_keys(lasio)) do
            need("lasio." .. k)
            local v = lasio[k]
            local mt = getmetatable(v)
            if type(v) == "table" and not (type(mt) == "table" and mt.__call) then
                for _, kk in ipairs(public_keys(v)) do need("lasio." .. k .. "." .. kk) end
            end
        end
        for _, mod in ipairs(required_modules) do
            for _, k in ipairs(public_keys(require(mod))) do need(mod .. "." .. k) end
        end
        -- the methods of the object types
        local servers = start_servers()
        local ok, err = pcall(lasio.run, function()
            local list, close = objects(servers)
            for _, obj in ipairs(list) do
                local tname = assert(getmetatable(obj).__name, tostring(obj))
                    :gsub("^lasio%.", "")
                local also = shares[tname] or {}
                if lasio.Error:is(obj) then also = { "Error" } end
                for _, m in ipairs(methods(obj)) do
                    local ok = documented(text, tname .. ":" .. m)
                        or documented(text, tname .. "." .. m)
                    for _, other in ipairs(also) do
                        ok = ok or documented(text, other .. ":" .. m)
                    end
                    if not ok then missing[#missing + 1] = tname .. ":" .. m end
                end
            end
            close()
        end)
        stop_servers(servers)
        assert(ok, err)
        table.sort(missing)
        local dedup = {}
        for i, name in ipairs(missing) do
            if name ~= missing[i - 1] then dedup[#dedup + 1] = name end
        end
        assert(#dedup == 0, ("%d public names have no heading in docs/reference:\n  %s")
            :format(#dedup, table.concat(dedup, "\n  ")))
    end)

    it("converts to HTML with the build's converter, every heading kept", function()
        local dir = os.tmpname()
        os.remove(dir)
        local cmd = ("%s %s %s %s >/dev/null"):format(helper.shell_quote(helper.interp),
            helper.shell_quote(helper.root .. "/scripts/md2html.lua"),
            helper.shell_quote(refdir), helper.shell_quote(dir))
        assert.is_true(os.execute(cmd))
        for _, path in ipairs(chapters()) do
            local name = path:match("([^/]+)%.md$")
            local html = slurp(dir .. "/" .. name .. ".html")
            local nheads = 0
            for _, b in ipairs({ slurp(path) }) do
                local fenced = false
                for line in b:gmatch("[^\n]*") do
                    if line:match("^```") then fenced = not fenced end
                    if not fenced and line:match("^#+ ") then nheads = nheads + 1 end
                end
            end
            assert.are.equal(nheads, select(2, html:gsub("<h%d id=", "")), name)
            assert.falsy(html:find("<close>", 1, true), name .. ": unescaped code")
            assert.falsy(html:find('href="[%w_]+%.md"'), name .. ": a chapter link not rewritten")
        end
        os.execute("rm -rf " .. helper.shell_quote(dir))
    end)

    -- Each `lua run` block is run as a program by the interpreter of this
    -- run (the lasio command or stock lua5.4); the `output` block after it,
    -- if any, is what it must print.
    for _, path in ipairs(chapters()) do
        local chapter = path:match("[^/]+$")
        local blocks = fenced_blocks(slurp(path))
        local n = 0
        for i, b in ipairs(blocks) do
            if b.info == "lua run" then
                n = n + 1
                local nxt = blocks[i + 1]
                local expected = nxt and nxt.info == "output" and nxt.follows
                    and nxt.body or nil
                it(("%s example %d (line %d) runs"):format(chapter, n, b.line), function()
                    local out, err, status = helper.run_child(b.body, { interp = helper.interp })
                    assert.are.equal(0, status, chapter .. ":" .. b.line .. ": " .. err .. out)
                    if expected then assert.are.equal(expected, out) end
                end)
            end
        end
    end
end)
