-- Helpers shared by the bench scripts: RESULT lines, /proc readings, the
-- deterministic delay generator the peers use, overshoot statistics.
-- SPDX-License-Identifier: MIT
local M = {}

function M.arg(i, default) return tonumber(arg and arg[i]) or default end

function M.fmt(x, digits) return string.format("%." .. (digits or 6) .. "f", x) end

-- One "RESULT key=value ..." line, keys in the given order.
function M.result(kv, order)
    local parts = {}
    for _, k in ipairs(order) do parts[#parts + 1] = k .. "=" .. tostring(kv[k]) end
    io.write("RESULT ", table.concat(parts, " "), "\n")
    io.flush()
end

-- A field of /proc/self/status in kB (VmRSS, VmHWM).
function M.proc_kb(field)
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("\n" .. field .. ":%s+(%d+)")) or -1
end

-- The peers' linear congruential generator: integers in [0, 100].
function M.rng(seed)
    local s = seed
    return function()
        s = (s * 1103515245 + 12345) % 2147483648
        return (s // 65536) % 101
    end
end

function M.full_gc()
    collectgarbage("collect")
    collectgarbage("collect")
end

-- Adds over_min/p50/mean/p99/max_ms (values in seconds) to kv and order.
function M.overshoot(vals, kv, order)
    table.sort(vals)
    local n, sum = #vals, 0
    for i = 1, n do sum = sum + vals[i] end
    local function at(p) return vals[math.floor(n * p) + 1] * 1e3 end
    kv.over_min_ms = M.fmt(vals[1] * 1e3, 3)
    kv.over_p50_ms = M.fmt(at(0.5), 3)
    kv.over_mean_ms = M.fmt(sum / n * 1e3, 3)
    kv.over_p99_ms = M.fmt(at(0.99), 3)
    kv.over_max_ms = M.fmt(vals[n] * 1e3, 3)
    for _, k in ipairs {"over_min_ms", "over_p50_ms", "over_mean_ms", "over_p99_ms", "over_max_ms"} do
        order[#order + 1] = k
    end
end

return M
