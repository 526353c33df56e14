-- trace_view.lua: the HTML page of a trace model (trace_read.lua): the
-- template trace_view.html with the style (trace_view.css), the viewer
-- (trace_view.js) and the model as JSON put in. The page needs nothing
-- else: no network, no other file.
-- The model's JSON, compacted for the page (times in ns from model.t0):
--   rows  [{id, name, parent, site, status,
--           s: [[t, d, kind (0 run, 1 ready, 2 wait, 3 region), label, ev]],
--           m: [[t, name, ev]]}]
--   flows [[from row, t, to row, t, cat (0 wake, 1 spawn)]]
-- SPDX-License-Identifier: MIT
local M = {}

local kind_code = {run = 0, ready = 1, wait = 2, region = 3}

local function html_escape(s)
    return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;",
        [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}))
end

-- The model as the page's JSON. Every "<" is written \u003c, so no
-- "</script>" or "<!--" in a trace string can end or bend the script
-- element that carries it.
local function data_json(m, path)
    local cjson = require "cjson"
    local t0 = m.t0
    local rows, index = {}, {}
    for i, r in ipairs(m.rows) do
        index[r.id] = i - 1
        local s, mk = {}, {}
        for j, sl in ipairs(r.slices) do
            s[j] = {sl.t - t0, sl.d, kind_code[sl.kind], sl.label or "", sl.ev}
        end
        for j, x in ipairs(r.marks) do mk[j] = {x.t - t0, x.name, x.ev} end
        rows[i] = {id = r.id, name = r.name or "", parent = r.parent,
            site = r.site, status = r.status, s = s, m = mk}
    end
    local flows = {}
    for _, f in ipairs(m.flows) do
        if index[f.from] and index[f.to] then
            flows[#flows + 1] = {index[f.from], f.ft - t0, index[f.to],
                f.tt - t0, f.cat == "spawn" and 1 or 0}
        end
    end
    local info = {}
    for _, k in ipairs({"clock", "deterministic", "seed"}) do
        info[k] = m.info[k]
    end
    local json = cjson.encode({file = path, format = m.format, info = info,
        t0 = t0, span = m.t1 - t0, rows = rows, flows = flows})
    return (json:gsub("<", "\\u003c"))
end

-- The page for model m read from path: each {{KEY}} of the template
-- replaced once, in one pass (a value is never searched for keys).
function M.page(m, path, files)
    local values = {
        TITLE = html_escape(path:match("[^/]*$")),
        STYLE = files["trace_view.css"],
        SCRIPT = files["trace_view.js"],
        DATA = data_json(m, path),
    }
    return (files["trace_view.html"]:gsub("{{(%u+)}}", function(key)
        return assert(values[key], "trace_view.html: unknown {{" .. key .. "}}")
    end))
end

return M
