-- lasio: the module table users get from require "lasio". The runtime is
-- the C module lasio.core; this file adds the parts written in Lua (one
-- file per concept under lua/lasio/) and installs the forwarding coroutine
-- functions (API.md section 2).
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local M = {}
for k, v in pairs(core) do
    if k ~= "coroutine" and k ~= "set_interrupt_task" then M[k] = v end
end

-- Awaits inside a user's coroutine suspend the whole task: the scheduler's
-- yields pass through these versions of the coroutine functions.
for name, fn in pairs(core.coroutine) do
    coroutine[name] = fn
end

-- The facade modules; each returns a table of names for the module table.
local parts = {
    "combinators", -- gather, wait, as_completed, shield
    "timeouts",    -- wait_for, timeout, timeout_at
    "taskgroup",   -- taskgroup
    "locks",       -- Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier
    "queues",      -- Queue, PriorityQueue, LifoQueue
}
for _, name in ipairs(parts) do
    for k, v in pairs(require("lasio." .. name)) do
        assert(M[k] == nil, "lasio: two definitions of " .. k)
        M[k] = v
    end
end

return M
