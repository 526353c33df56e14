-- lasio: the module table users get from require "lasio". The runtime is
-- the C module lasio.core; this file adds the parts written in Lua (one
-- file per concept under lua/lasio/) and installs the forwarding coroutine
-- functions (docs/API.md, Module functions).
-- SPDX-License-Identifier: MIT
local require = require
local core = require "lasio.core"

-- The top level of the core is public; what the facade alone uses is in
-- core.internal (src/module.c, "Public and internal names"), and the
-- coroutine functions are installed below.
local M = {}
for k, v in pairs(core) do
    if k ~= "internal" and k ~= "coroutine" then M[k] = v end
end

-- Messages name functions by their public names (loaded.lua): the core's
-- loaded entry becomes a view, and so does each part's below. lasio.fs
-- is a loaded module of its own ("lasio.fs.read_file", require "lasio.fs").
local view = require("lasio.loaded").view
package.loaded["lasio.fs"] = core.fs
view("lasio.core")

-- Awaits inside a user's coroutine suspend the whole task: the scheduler's
-- yields pass through these versions of the coroutine functions. (luacheck
-- takes the standard library's tables as read-only: writing them is this
-- loop's purpose.)
for name, fn in pairs(core.coroutine) do
    coroutine[name] = fn -- luacheck: ignore 122
end

-- The Process methods written in Lua (subprocess.lua: wait, communicate)
-- extend the C object's method table, loaded on first use.
setmetatable(core.internal.process_methods, {__index = function(methods, name)
    local method = require("lasio.subprocess")[name]
    if method ~= nil then rawset(methods, name, method) end
    return method
end})

-- The facade modules; each returns a table of names for the module table.
-- They load on the first use of a name the core does not define, so a
-- script that needs none of them starts as fast as the core alone.
local parts = {
    "combinators", -- gather, wait, as_completed, shield
    "timeouts",    -- wait_for, timeout, timeout_at, Timeout
    "taskgroup",   -- taskgroup, TaskGroup
    "locks",       -- Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier
    "runners",     -- Runner, ensure_future
}
local loaded = false
local function load_parts()
    if loaded then return end
    loaded = true
    for _, name in ipairs(parts) do
        for k, v in pairs(require("lasio." .. name)) do
            assert(rawget(M, k) == nil, "lasio: two definitions of " .. k)
            M[k] = v
        end
        view("lasio." .. name)
    end
end

-- Parts of their own, loaded only when their name is used.
local lazy = {http = "lasio.http", testing = "lasio.testing", pg = "lasio.pg",
    redis = "lasio.redis", trace = "lasio.trace"}

return setmetatable(M, {
    __index = function(t, k)
        if lazy[k] then
            local v = require(lazy[k])
            rawset(t, k, v)
            return v
        end
        if loaded then return nil end
        load_parts()
        return rawget(t, k)
    end,
    __pairs = function(t)
        load_parts()
        for k, part in pairs(lazy) do
            if rawget(t, k) == nil then rawset(t, k, require(part)) end
        end
        return next, t, nil
    end,
})
