-- trace_text.lua: the text timeline of a trace model (trace_read.lua), one
-- block per task in id order, one line per slice, instant or incoming
-- arrow in time order:
--
--   lasio trace: jsonl, clock=virtual deterministic=true seed=42
--   #0 loop
--     0.000000000             timer.add  timer=1 when=1500000000
--   #3 "fast worker" (parent #1, at three.lua:3, done ok)
--     0.000000000             spawn      from #1
--     0.000000000 0.000000000 ready      by=1
--     0.000000000 0.500000000 wait       sleep 0.5 site=three.lua:3
--     0.500000000             done       status=ok
--
-- Columns: start in seconds (9 decimals, the trace's clock), duration for
-- a slice (blank for an instant, "open" for a state still held at the
-- end), the kind (run, ready, wait, region, wake or spawn for an arrow
-- into the task, or the instant's name), then
-- the event's own fields as key=value in key order. The output depends
-- on the trace's content only, so a deterministic trace gives the same
-- text at every run (golden tests).
-- SPDX-License-Identifier: MIT
local M = {}

local function seconds(ns)
    ns = math.tointeger(ns) or math.floor(ns)
    local sign = ns < 0 and "-" or ""
    ns = math.abs(ns)
    return string.format("%s%d.%09d", sign, ns // 1000000000, ns % 1000000000)
end

local show

local function quote(s)
    if s ~= "" and not s:find('[%s"\\=%c]') then return s end
    return '"' .. s:gsub('[\\"]', "\\%0"):gsub("\n", "\\n"):gsub("\t", "\\t")
        :gsub("%c", function(c) return string.format("\\%03d", c:byte()) end) ..
        '"'
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
end

-- A value in one deterministic line (tables with their keys sorted).
function show(v)
    local tv = type(v)
    if tv == "string" then return quote(v) end
    if tv == "number" then
        local i = math.tointeger(v)
        return i and tostring(i) or string.format("%.14g", v)
    end
    if tv == "table" then
        local parts = {}
        if #v > 0 then
            for i = 1, #v do parts[i] = show(v[i]) end
            return "[" .. table.concat(parts, ",") .. "]"
        end
        for _, k in ipairs(sorted_keys(v)) do
            parts[#parts + 1] = tostring(k) .. "=" .. show(v[k])
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    if tv == "userdata" then return "null" end -- cjson.null
    return tostring(v)
end
M.show = show

-- Fields that the line already says (time, kind, task) or that only
-- place the event in its file.
local structural = {seq = true, ts = true, ev = true, task = true,
    ph = true, pid = true, tid = true, dur = true, cat = true, id = true,
    bp = true, s = true, args = true}

-- The key=value fields of ev (a Chrome event's args among them); skip
-- names one more field the line already shows, as does a Chrome event's
-- name when it is the line's kind or label.
local function fields(ev, skip, shown)
    local all = {}
    for k, v in pairs(ev) do
        if not structural[k] and k ~= skip and
            not (k == "name" and ev.ph ~= nil and v == shown) then
            all[k] = v
        end
    end
    if type(ev.args) == "table" then
        for k, v in pairs(ev.args) do
            if k ~= "seq" and k ~= skip then all[k] = v end
        end
    end
    local out = {}
    for _, k in ipairs(sorted_keys(all)) do
        out[#out + 1] = tostring(k) .. "=" .. show(all[k])
    end
    return table.concat(out, " ")
end

local function slice_line(s)
    local detail = ""
    if s.kind == "wait" then
        detail = s.label:sub(7)
    elseif s.kind == "region" then
        detail = s.label
    end
    local rest = fields(s.ev, s.kind == "wait" and "what" or nil, s.label)
    if detail ~= "" and rest ~= "" then detail = detail .. " " end
    return string.format("  %s %-11s %-10s %s", seconds(s.t),
        s.open and "open" or seconds(s.d), s.kind, detail .. rest)
end

local function mark_line(mk)
    return string.format("  %s %-11s %-10s %s", seconds(mk.t), "", mk.name,
        fields(mk.ev, nil, mk.name))
end

-- The event's place in its file (JSONL seq, a Chrome event's args.seq),
-- else its place among the row's slices or instants.
local function seq_of(ev, n)
    local seq = ev.seq
    if seq == nil and type(ev.args) == "table" then seq = ev.args.seq end
    return type(seq) == "number" and seq or n
end

local function row_title(r)
    local parts = {}
    if type(r.parent) == "number" and r.parent ~= 0 then
        parts[#parts + 1] = "parent #" .. show(r.parent)
    end
    if type(r.site) == "string" and r.site ~= "" then
        parts[#parts + 1] = "at " .. r.site
    end
    if r.status then parts[#parts + 1] = "done " .. r.status end
    local title = "#" .. show(r.id) .. " " .. quote(r.name or "")
    if #parts > 0 then title = title .. " (" .. table.concat(parts, ", ") .. ")" end
    return title
end

-- Writes the timeline of model m with write(s) (one call per line).
function M.write(m, write)
    local info = {}
    for _, k in ipairs({"clock", "deterministic", "seed"}) do
        if m.info[k] ~= nil then info[#info + 1] = k .. "=" .. show(m.info[k]) end
    end
    write(string.format("lasio trace: %s, %s\n", m.format,
        table.concat(info, " ")))
    local incoming = {} -- task id -> its flows, as instants
    for _, f in ipairs(m.flows) do
        local list = incoming[f.to] or {}
        incoming[f.to] = list
        list[#list + 1] = {t = f.tt, seq = f.seq or 0, line = string.format("  %s %-11s %-10s from #%s",
            seconds(f.tt), "", f.cat, show(f.from))}
    end
    for _, r in ipairs(m.rows) do
        write(row_title(r):gsub("%s+$", "") .. "\n")
        local lines = {}
        for _, f in ipairs(incoming[r.id] or {}) do
            lines[#lines + 1] = {t = f.t, rank = 0, seq = f.seq, line = f.line,
                idx = #lines}
        end
        for n, mk in ipairs(r.marks) do
            lines[#lines + 1] = {t = mk.t, rank = 2, seq = seq_of(mk.ev, n),
                line = mark_line(mk), idx = #lines}
        end
        for n, s in ipairs(r.slices) do
            lines[#lines + 1] = {t = s.t, rank = 1, seq = seq_of(s.ev, n),
                line = slice_line(s), idx = #lines}
        end
        -- time order; at one time the file's order when it has one (JSONL
        -- seq), else flows, slices, then instants
        local by_seq = m.format == "jsonl"
        table.sort(lines, function(a, b)
            if a.t ~= b.t then return a.t < b.t end
            if by_seq and a.seq ~= b.seq then return a.seq < b.seq end
            if a.rank ~= b.rank then return a.rank < b.rank end
            if a.seq ~= b.seq then return a.seq < b.seq end
            return a.idx < b.idx
        end)
        for _, l in ipairs(lines) do write(l.line:gsub("%s+$", "") .. "\n") end
    end
end

return M
