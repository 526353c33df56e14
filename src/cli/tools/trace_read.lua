-- trace_read.lua: reads a trace file of either format (lasio's JSONL or
-- Chrome Trace Event JSON, told apart by content) into one model that the
-- text timeline and the HTML view both draw:
--   model.format   "jsonl" | "chrome"
--   model.info     the header's fields (clock, seed, deterministic, pid...)
--   model.rows     one per task, sorted by id, row 1 the loop (id 0):
--                  {id, name, parent, site, status, slices, marks}
--     slice        {t, d, kind = "run"|"ready"|"wait"|"region", label, ev}
--                  (a task's slices never overlap; sorted by t)
--     mark         {t, name, ev} (an instant: completion, cancel request,
--                  rename, user mark, the loop's own events)
--   model.flows    {from, ft, to, tt, cat = "wake"|"spawn", seq} (task
--                  ids; seq: the event's place in a JSONL file)
--   model.t0, t1   the first and last instant (ns)
-- Times are integer nanoseconds of the trace's clock; ev is the decoded
-- event the slice or mark comes from, for the tooltip.
-- SPDX-License-Identifier: MIT
local M = {}

local function need_cjson()
    local ok, cjson = pcall(require, "cjson")
    if not ok then
        return nil, "reading a trace needs the Lua module cjson " ..
            "(Debian package lua-cjson), which is missing"
    end
    return cjson
end

local function ns(x) return math.floor(x + 0.5) end

-- A new model under construction.
local function new_model(format)
    return {format = format, info = {}, by_id = {}, flows = {},
        t0 = math.huge, t1 = -math.huge}
end

local function task(m, id)
    local t = m.by_id[id]
    if not t then
        t = {id = id, name = id == 0 and "loop" or "", slices = {},
            marks = {}}
        m.by_id[id] = t
    end
    return t
end

local function seen(m, t)
    if t < m.t0 then m.t0 = t end
    if t > m.t1 then m.t1 = t end
end

local function add_mark(m, id, t, name, ev)
    local tk = task(m, id)
    tk.marks[#tk.marks + 1] = {t = t, name = name, ev = ev, n = #tk.marks}
end

-- {====== lasio's JSONL events ======

-- The task's state changes: the slice it was in ends at ts, the next
-- begins (a JSONL trace says when a state begins, not how long it lasts).
local function enter(m, id, ts, kind, label, ev)
    local tk = task(m, id)
    local cur = tk.cur
    if cur then
        cur.d = ts - cur.t
        tk.slices[#tk.slices + 1] = cur
        tk.cur = nil
    end
    if kind then
        tk.cur = {t = ts, kind = kind, label = label, ev = ev}
    end
end

local jsonl_event = {}

jsonl_event["task.create"] = function(m, ev, ts)
    local tk = task(m, ev.task)
    tk.name, tk.parent, tk.site = ev.name, ev.parent, ev.site
    if type(ev.parent) == "number" and ev.parent ~= 0 then
        m.flows[#m.flows + 1] = {from = ev.parent, ft = ts, to = ev.task,
            tt = ts, cat = "spawn", seq = ev.seq}
    end
    add_mark(m, ev.task, ts, "create", ev)
end

jsonl_event["task.ready"] = function(m, ev, ts)
    local by = ev.by
    enter(m, ev.task, ts, "ready", "ready", ev)
    if math.type(by) == "integer" or math.type(by) == "float" then
        task(m, by)
        m.flows[#m.flows + 1] = {from = ns(by), ft = ts, to = ev.task,
            tt = ts, cat = "wake", seq = ev.seq}
    end
end

jsonl_event["task.run"] = function(m, ev, ts)
    enter(m, ev.task, ts, "run", "run", ev)
end

jsonl_event["task.wait"] = function(m, ev, ts)
    enter(m, ev.task, ts, "wait", "wait: " .. tostring(ev.what), ev)
end

jsonl_event["task.done"] = function(m, ev, ts)
    enter(m, ev.task, ts, nil)
    task(m, ev.task).status = ev.status
    add_mark(m, ev.task, ts, "done", ev)
end

jsonl_event["task.cancel"] = function(m, ev, ts)
    add_mark(m, ev.task, ts, "cancel", ev)
end

jsonl_event["task.rename"] = function(m, ev, ts)
    task(m, ev.task).name = ev.name
    add_mark(m, ev.task, ts, "rename", ev)
end

local function region_edge(m, ev, ts)
    add_mark(m, type(ev.task) == "number" and ev.task or 0, ts, ev.ev, ev)
end
jsonl_event["begin"] = region_edge
jsonl_event["end"] = region_edge

-- Reads the JSONL text (its first line already decoded as header).
local function read_jsonl(cjson, text, header, path)
    local m = new_model("jsonl")
    m.info = header
    local n = 0
    for line in text:gmatch("[^\n]+") do
        n = n + 1
        if n > 1 and line:find("%S") then
            local ok, ev = pcall(cjson.decode, line)
            if not ok or type(ev) ~= "table" or type(ev.ev) ~= "string" or
                type(ev.ts) ~= "number" then
                return nil, string.format(
                    "'%s' line %d is not a trace event: %s", path, n,
                    ok and "an object with \"ts\" and \"ev\" expected" or ev)
            end
            local ts = ns(ev.ts)
            seen(m, ts)
            local handler = jsonl_event[ev.ev]
            if handler and (ev.ev:sub(1, 5) ~= "task." or
                type(ev.task) == "number") then
                handler(m, ev, ts)
            else -- the loop's own events, user marks and counters
                add_mark(m, 0, ts, ev.ev, ev)
            end
        end
    end
    for _, tk in pairs(m.by_id) do
        if tk.cur then -- still in that state when the trace ended
            tk.cur.open = true
            enter(m, tk.id, m.t1, nil)
        end
    end
    return m
end

-- ====== }

-- {====== Chrome Trace Event JSON ======

local slice_kind = {run = "run", ready = "ready"}

local function read_chrome(doc)
    local m = new_model("chrome")
    local events = doc.traceEvents or doc
    if type(doc.otherData) == "table" then m.info = doc.otherData end
    local starts, ends, open = {}, {}, {}
    for _, ev in ipairs(events) do
        local tid = type(ev.tid) == "number" and ns(ev.tid) or 0
        local ph = ev.ph
        local ts = type(ev.ts) == "number" and ns(ev.ts * 1000) or nil
        if ph == "M" then
            if ev.name == "thread_name" and type(ev.args) == "table" and
                type(ev.args.name) == "string" then
                -- "#T name": the task's name without its id
                task(m, tid).name = ev.args.name:gsub("^#%d+%s?", "", 1)
            end
        elseif ts then
            seen(m, ts)
            local tk = task(m, tid)
            if ph == "X" then
                local d = type(ev.dur) == "number" and ns(ev.dur * 1000) or 0
                seen(m, ts + d)
                local name = tostring(ev.name)
                local kind = slice_kind[name] or
                    (name:sub(1, 6) == "wait: " and "wait" or "region")
                tk.slices[#tk.slices + 1] = {t = ts, d = d, kind = kind,
                    label = name, ev = ev, n = #tk.slices}
            elseif ph == "s" then
                starts[ev.id] = {tid, ts, ev.cat}
            elseif ph == "f" or ph == "t" then
                ends[ev.id] = {tid, ts}
            elseif ph == "i" or ph == "I" or ph == "n" then
                add_mark(m, tid, ts, tostring(ev.name), ev)
            elseif ph == "B" then
                local stack = open[tid] or {}
                open[tid] = stack
                stack[#stack + 1] = ev
                add_mark(m, tid, ts, "begin", ev)
            elseif ph == "E" then
                local stack = open[tid]
                if stack and #stack > 0 then stack[#stack] = nil end
                add_mark(m, tid, ts, "end", ev)
            end -- "C" counters and other phases are not drawn
        end
    end
    local ids = {}
    for id in pairs(starts) do ids[#ids + 1] = id end
    table.sort(ids, function(a, b) return tostring(a) < tostring(b) end)
    for _, id in ipairs(ids) do
        local s, f = starts[id], ends[id]
        if f then
            m.flows[#m.flows + 1] = {from = s[1], ft = s[2], to = f[1],
                tt = f[2], cat = s[3] or "wake", n = #m.flows}
            local child = task(m, f[1])
            if s[3] == "spawn" and child.parent == nil then
                child.parent = s[1] -- the track names no parent
            end
        end
    end
    table.sort(m.flows, function(a, b)
        if a.ft ~= b.ft then return a.ft < b.ft end
        if a.from ~= b.from then return a.from < b.from end
        if a.to ~= b.to then return a.to < b.to end
        return a.n < b.n
    end)
    for _, tk in pairs(m.by_id) do
        table.sort(tk.slices, function(a, b)
            if a.t ~= b.t then return a.t < b.t end
            return a.n < b.n
        end)
        -- the last thread_name of a task wins; its completion sets status
        for _, mk in ipairs(tk.marks) do
            local args = type(mk.ev.args) == "table" and mk.ev.args or {}
            if type(args.status) == "string" then tk.status = args.status end
        end
    end
    return m
end

-- ====== }

-- The rows in id order and the times made sane for an empty trace.
local function finish(m)
    task(m, 0)
    local rows = {}
    for _, tk in pairs(m.by_id) do
        tk.cur = nil
        table.sort(tk.marks, function(a, b)
            if a.t ~= b.t then return a.t < b.t end
            return a.n < b.n
        end)
        rows[#rows + 1] = tk
    end
    table.sort(rows, function(a, b) return a.id < b.id end)
    m.rows, m.by_id = rows, nil
    if m.t0 > m.t1 then m.t0, m.t1 = 0, 0 end
    return m
end

-- Reads the trace at path: the model, or nil and a message naming the
-- file, and true when the file itself is the problem (a usage error).
function M.read(path)
    local cjson, why = need_cjson()
    if not cjson then return nil, why, false end
    local f, err = io.open(path, "rb")
    if not f then
        if err:sub(1, #path + 2) == path .. ": " then err = err:sub(#path + 3) end
        return nil, string.format("cannot read '%s': %s", path, err), true
    end
    local text
    text, err = f:read("a")
    f:close()
    if not text then
        return nil, string.format("cannot read '%s': %s", path, err), true
    end
    text = text:gsub("^\239\187\191", "") -- a UTF-8 byte order mark
    local first = text:match("^%s*([^\n]*)")
    local ok, header = pcall(cjson.decode, first)
    if ok and type(header) == "table" and header.lasio_trace ~= nil then
        if header.lasio_trace ~= 1 then
            return nil, string.format("'%s' is a lasio trace of version " ..
                "%s; this lasio reads version 1", path,
                tostring(math.tointeger(header.lasio_trace) or
                    header.lasio_trace)), true
        end
        local m, bad = read_jsonl(cjson, text, header, path)
        if not m then return nil, bad, true end
        return finish(m)
    end
    local doc
    ok, doc = pcall(cjson.decode, text)
    if ok and type(doc) == "table" and
        (type(doc.traceEvents) == "table" or (doc[1] ~= nil and
            type(doc[1]) == "table" and doc[1].ph ~= nil)) then
        return finish(read_chrome(doc))
    end
    return nil, string.format("'%s' is not a trace: neither lasio's " ..
        "JSONL (a first line {\"lasio_trace\":1,...}) nor Chrome Trace " ..
        "Event JSON ({\"traceEvents\":[...]})", path), true
end

return M
