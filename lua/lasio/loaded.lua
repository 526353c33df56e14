-- Keeps the public names in messages: lauxlib names a function in
-- argument errors and tracebacks by searching package.loaded in hash
-- order (pushglobalfuncname), so a function that the lasio table and an
-- inner module both hold would read "lasio.core.open_connection" or
-- "lasio.taskgroup.taskgroup" on some runs. The inner module's loaded
-- entry becomes a view that reaches its fields through metamethods,
-- which that search does not see; require and field access still work.
-- SPDX-License-Identifier: MIT
local M = {}

function M.view(modname)
    local t = package.loaded[modname]
    if type(t) ~= "table" or getmetatable(t) and getmetatable(t).__view then return end
    package.loaded[modname] = setmetatable({}, {
        __view = true,
        __index = t,
        __newindex = t,
        __pairs = function() return next, t, nil end,
    })
end

return M
