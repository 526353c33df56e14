-- lasio: the module table users get from require "lasio". The runtime is
-- the C module lasio.core; this file adds the parts written in Lua and
-- installs the forwarding coroutine functions (API.md section 2).
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

return M
