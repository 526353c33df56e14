-- Shared helpers for the specs: time scaling, running async bodies the same
-- way under the lasio binary and stock lua5.4, and running scripts in a
-- child process. Loaded with require "helper".
-- SPDX-License-Identifier: MIT
local M = {}

-- Durations in specs are hang detectors, never speed claims: scale them.
M.factor = tonumber(os.getenv("LASIO_TEST_TIME_FACTOR")) or 1
function M.t(seconds) return seconds * M.factor end

M.interp = os.getenv("LASIO_TEST_LUA") or "lua5.4"
M.mode = os.getenv("LASIO_TEST_MODE") or "lua5.4"
M.build = os.getenv("LASIO_BUILD") or "build"
M.root = os.getenv("LASIO_ROOT") or "."
M.lasio_bin = M.build .. "/lasio"

-- Calls fn(...), asserts that it raises, and returns the error.
function M.raises(fn, ...)
    local ok, e = pcall(fn, ...)
    require("luassert").is_false(ok, "expected an error")
    return e
end

-- Is e a lasio.CancelledError?
function M.is_cancelled(e)
    return require("lasio").CancelledError:is(e)
end

-- Wraps an async spec body: lasio.run works in a fresh state (lua5.4) and
-- inside the running loop of the lasio command alike.
function M.async(fn)
    return function()
        local lasio = require "lasio"
        return lasio.run(fn)
    end
end

-- M.async under a hang guard: the spec fails with a TimeoutError after
-- 60 s (scaled by M.t) instead of hanging the suite.
function M.async_guarded(fn)
    return M.async(function()
        local lasio = require "lasio"
        return lasio.wait_for(fn, M.t(60))
    end)
end

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

-- Runs a Lua script in a child process with the given interpreter (default:
-- the lasio binary) and returns stdout, stderr, exit status.
function M.run_script(code, opts)
    opts = opts or {}
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. shell_quote(dir)))
    local script = dir .. "/script.lua"
    local f = assert(io.open(script, "w"))
    f:write(code)
    f:close()
    local interp = opts.interp or M.lasio_bin
    local args = opts.args or ""
    local cmd = string.format("cd %s && %s%s %s %s %s >%s/out 2>%s/err",
        shell_quote(M.root),
        opts.env and (opts.env .. " ") or "",
        shell_quote(interp), opts.flags or "", shell_quote(script), args,
        shell_quote(dir), shell_quote(dir))
    if opts.stdin then
        cmd = cmd .. " <" .. shell_quote(opts.stdin)
    end
    local _, _, status = os.execute(cmd)
    local function slurp(p)
        local h = io.open(p, "r")
        if not h then return "" end
        local s = h:read("a")
        h:close()
        return s
    end
    local out, err = slurp(dir .. "/out"), slurp(dir .. "/err")
    os.execute("rm -rf " .. shell_quote(dir))
    return out, err, status
end

-- Runs `interp args` (default interp: the lasio binary; args already
-- quoted for the shell, a path under the project first) from the project
-- root, so messages name the file as the docs do; with `seconds`, under a
-- hang guard (status 124). Returns stdout, stderr, exit status.
function M.run_in_root(args, interp, seconds)
    local tmp = os.tmpname()
    local cmd = string.format("cd %s && %s%s %s >%s.out 2>%s.err",
        shell_quote(M.root), seconds and ("timeout " .. seconds .. " ") or "",
        shell_quote(interp or M.lasio_bin), args, tmp, tmp)
    local _, _, status = os.execute(cmd)
    local function slurp(p)
        local h = assert(io.open(p))
        local s = h:read("a")
        h:close()
        os.remove(p)
        return s
    end
    os.remove(tmp)
    return slurp(tmp .. ".out"), slurp(tmp .. ".err"), status
end

-- The interpreters a child script is run with: the lasio command and stock
-- lua5.4 loading the C module (LUA_PATH / LUA_CPATH are inherited).
M.interps = { M.lasio_bin, "lua5.4" }

-- Environment prefix for a child: a hang guard (coreutils timeout; status
-- 124 when it fires) and, under the sanitizers, the ASan runtime preloaded
-- for stock lua5.4 (run.sh exports it only in lua5.4 mode).
local function child_env(interp, opts)
    local parts = {}
    if opts.env then parts[#parts + 1] = opts.env end
    if interp == "lua5.4" and os.getenv("LASIO_SANITIZED")
        and not os.getenv("LD_PRELOAD") then
        local pre = os.getenv("LASIO_PRELOAD")
        if not pre then
            local h = io.popen("gcc -print-file-name=libasan.so; "
                .. "gcc -print-file-name=libubsan.so")
            local a, b = h:read("l"), h:read("l")
            h:close()
            pre = a .. ":" .. b
        end
        parts[#parts + 1] = "LD_PRELOAD=" .. shell_quote(pre)
    end
    parts[#parts + 1] = string.format("timeout -k 5 %d",
        math.ceil(opts.timeout or M.t(30)))
    return table.concat(parts, " ")
end

-- run_script with a hang guard: a child that does not finish within
-- opts.timeout seconds (default t(30)) is killed and returns status 124.
function M.run_child(code, opts)
    opts = opts or {}
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    local interp = opts.interp or M.lasio_bin
    o.interp = interp
    o.env = child_env(interp, opts)
    return M.run_script(code, o)
end

-- Counts the plain (non-pattern) occurrences of needle in s.
function M.count(s, needle)
    local n, i = 0, 1
    while true do
        local a, b = s:find(needle, i, true)
        if not a then return n end
        n, i = n + 1, b + 1
    end
end

-- A to-be-closed value running fn(err) when its block is left.
function M.closer(fn)
    return setmetatable({}, { __close = function(_, err) fn(err) end })
end

-- Inside a task: sleeps in small steps until pred() is true or `limit`
-- seconds (scaled) passed; returns whether pred() became true.
function M.wait_until(pred, limit)
    local lasio = require "lasio"
    local loop = lasio.get_running_loop()
    local deadline = loop:time() + M.t(limit or 5)
    while not pred() do
        if loop:time() > deadline then return false end
        lasio.sleep(0.001)
    end
    return true
end

-- Inside a task: runs fn(seen, loop) with an exception handler on the running
-- loop that appends every context it gets to `seen`, then restores the
-- previous handler (also when fn fails). Returns `seen`.
function M.capture_exceptions(fn)
    local lasio = require "lasio"
    local loop = lasio.get_running_loop()
    local old = loop:get_exception_handler()
    local seen = {}
    loop:set_exception_handler(function(l, ctx)
        seen[#seen + 1] = ctx
        seen.loop = l
    end)
    local ok, err = pcall(fn, seen, loop)
    loop:set_exception_handler(old)
    if not ok then error(err, 0) end
    return seen
end

-- tostring of any error value, for message checks.
function M.msg(e)
    if type(e) == "table" and getmetatable(e) == nil and e.message ~= nil then
        return tostring(e.message)
    end
    return tostring(e)
end

-- Busy-waits for `seconds` of CPU time without yielding.
function M.busy(seconds)
    local t0 = os.clock()
    while os.clock() - t0 < seconds do end
end

-- Unloads every lasio module (package.loaded.lasio and lasio.*), as a
-- host that loads lasio again does; returns them, for reload_restore.
function M.unload_lasio()
    local saved = {}
    for k, v in pairs(package.loaded) do
        if k == "lasio" or k:match("^lasio%.") then
            saved[k] = v
            package.loaded[k] = nil
        end
    end
    return saved
end

-- Puts back the modules unload_lasio took out.
function M.restore_lasio(saved)
    for k, v in pairs(saved) do package.loaded[k] = v end
end

return M
