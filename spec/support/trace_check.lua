-- trace_check: validators of lasio's trace files (docs/SEEING.md, The
-- trace format), for the specs. chrome(text) checks a Chrome Trace Event
-- file: every track named, no overlapping complete slices on a track,
-- every flow start with its finish, timestamps in order on every track,
-- regions balanced, and in virtual time pid 1, zero-width run slices and
-- args.seq on every event. jsonl(text) checks a JSONL file: the header,
-- the field order, seq 1, 2, 3... and time never going back. Both return
-- what they parsed, or raise naming the first problem.
-- SPDX-License-Identifier: MIT
local cjson = require "cjson"

local M = {}

local function fail(fmt, ...)
    error("trace_check: " .. string.format(fmt, ...), 2)
end

local function key(ev)
    return string.format("%d/%d", ev.pid, ev.tid)
end

function M.chrome(text)
    local ok, doc = pcall(cjson.decode, text)
    if not ok then fail("not JSON: %s", doc) end
    if type(doc.traceEvents) ~= "table" then fail("no traceEvents array") end
    if doc.displayTimeUnit ~= "ns" then fail("displayTimeUnit is not ns") end
    local other = doc.otherData
    if type(other) ~= "table" or other.lasio_trace ~= 1 then
        fail("otherData does not carry the lasio_trace header")
    end
    local virtual = other.clock == "virtual"
    local names, last_ts, last_end, open, flows = {}, {}, {}, {}, {}
    local tracks = {}
    for i, ev in ipairs(doc.traceEvents) do
        if type(ev.ph) ~= "string" then fail("event %d has no ph", i) end
        if ev.ph == "M" then
            if ev.name == "thread_name" then
                if type(ev.args) ~= "table" or type(ev.args.name) ~= "string" then
                    fail("event %d: a thread_name without args.name", i)
                end
                names[key(ev)] = ev.args.name
            end
        else
            local k = key(ev)
            tracks[k] = true
            if type(ev.ts) ~= "number" then fail("event %d has no ts", i) end
            if last_ts[k] and ev.ts < last_ts[k] then
                fail("event %d (%s) on track %s goes back in time: %s < %s",
                    i, ev.name, k, ev.ts, last_ts[k])
            end
            last_ts[k] = ev.ts
            if virtual then
                if ev.pid ~= 1 then fail("event %d: pid %s in virtual time", i, ev.pid) end
                if ev.ph ~= "C" and (type(ev.args) ~= "table" or type(ev.args.seq) ~= "number") then
                    fail("event %d (%s) has no args.seq", i, ev.name)
                end
            end
            if ev.ph == "X" then
                if type(ev.dur) ~= "number" or ev.dur < 0 then
                    fail("event %d: a slice without a duration", i)
                end
                -- ts and dur are decimal microseconds: allow their rounding
                if last_end[k] and ev.ts < last_end[k] - 1e-6 * math.max(1, math.abs(ev.ts)) then
                    fail("event %d: slice '%s' on track %s overlaps the one before (starts %s, that one ends %s)",
                        i, ev.name, k, ev.ts, last_end[k])
                end
                last_end[k] = ev.ts + ev.dur
                if virtual and ev.name == "run" and ev.dur ~= 0 then
                    fail("event %d: a run slice of width %s in virtual time", i, ev.dur)
                end
            elseif ev.ph == "B" then
                open[k] = (open[k] or 0) + 1
            elseif ev.ph == "E" then
                open[k] = (open[k] or 0) - 1
                if open[k] < 0 then fail("event %d: an E without its B on %s", i, k) end
            elseif ev.ph == "s" then
                if flows[ev.id] then fail("event %d: flow id %s started twice", i, ev.id) end
                flows[ev.id] = "s"
            elseif ev.ph == "f" then
                if flows[ev.id] ~= "s" then
                    fail("event %d: flow %s finishes without its start", i, ev.id)
                end
                flows[ev.id] = "f"
            end
        end
    end
    for k in pairs(tracks) do
        if not names[k] then fail("track %s has no thread_name", k) end
    end
    for id, state in pairs(flows) do
        if state ~= "f" then fail("flow %s starts and never finishes", id) end
    end
    for k, n in pairs(open) do
        if n ~= 0 then fail("track %s has %d unclosed regions", k, n) end
    end
    doc.names = names
    return doc
end

-- The events of a JSONL trace: header, events.
function M.jsonl(text)
    local header, events, last = nil, {}, nil
    local n = 0
    for line in text:gmatch("([^\n]*)\n") do
        n = n + 1
        local ok, obj = pcall(cjson.decode, line)
        if not ok then fail("line %d is not JSON: %s", n, obj) end
        if n == 1 then
            if obj.lasio_trace ~= 1 then fail("line 1 is not the header") end
            for _, f in ipairs({ "clock", "deterministic", "pid", "start" }) do
                if obj[f] == nil then fail("the header has no %s", f) end
            end
            header = obj
        else
            if not line:match('^{"seq":%d+,"ts":%-?%d+,"ev":"[%w.]+"') then
                fail("line %d: fields not in the order seq, ts, ev: %s", n, line)
            end
            if obj.seq ~= #events + 1 then
                fail("line %d: seq %s, expected %d", n, obj.seq, #events + 1)
            end
            if last and obj.ts < last then
                fail("line %d: ts %s goes back (last %s)", n, obj.ts, last)
            end
            last = obj.ts
            events[#events + 1] = obj
        end
    end
    if not header then fail("empty file") end
    if text:sub(-1) ~= "\n" then fail("the last line is cut") end
    return header, events
end

function M.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

return M
