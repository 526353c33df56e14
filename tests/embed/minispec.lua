-- minispec.lua: a small runner for busted spec files inside a host's Lua
-- state (tests/embed/threads_test.c), where busted itself cannot run: it
-- ends with os.exit and keeps process-wide state. describe / it / pending /
-- setup / teardown / before_each / after_each and luassert's assert, spy,
-- stub and mock, enough for the core specs. Returns run(files) -> passed,
-- failed, pending, report text.
-- SPDX-License-Identifier: MIT
local M = {}

local PENDING = setmetatable({}, { __tostring = function() return "pending" end })

-- Collects the tree of one file: blocks {name, tests, children, hooks}.
local function new_block(name, parent)
    return { name = name, parent = parent, items = {},
             setup = {}, teardown = {}, before = {}, after = {} }
end

local function full_name(block, name)
    local parts = { name }
    while block and block.name do
        table.insert(parts, 1, block.name)
        block = block.parent
    end
    return table.concat(parts, " ")
end

local function run_hooks(block, key, outer_first)
    local chain = {}
    local b = block
    while b do
        table.insert(chain, outer_first and 1 or #chain + 1, b)
        b = b.parent
    end
    for _, blk in ipairs(chain) do
        for _, fn in ipairs(blk[key]) do fn() end
    end
end

function M.run(files)
    local luassert = require "luassert"
    local stats = { passed = 0, failed = 0, pending = 0 }
    local report = {}
    local current
    local running = false

    local env = {}
    function env.describe(name, fn)
        local b = new_block(name, current)
        table.insert(current.items, b)
        local saved = current
        current = b
        fn()
        current = saved
    end
    env.context, env.insulate, env.expose = env.describe, env.describe,
        env.describe
    function env.it(name, fn)
        table.insert(current.items, { test = name, fn = fn, block = current })
    end
    env.test, env.spec = env.it, env.it
    function env.pending(name)
        if running then error(PENDING, 0) end
        table.insert(current.items, { test = name, block = current })
    end
    function env.setup(fn) table.insert(current.setup, fn) end
    env.lazy_setup, env.strict_setup = env.setup, env.setup
    function env.teardown(fn) table.insert(current.teardown, fn) end
    env.lazy_teardown, env.strict_teardown = env.teardown, env.teardown
    function env.before_each(fn) table.insert(current.before, fn) end
    function env.after_each(fn) table.insert(current.after, fn) end
    env.assert = luassert
    env.spy = require "luassert.spy"
    env.stub = require "luassert.stub"
    env.mock = require "luassert.mock"
    for k, v in pairs(env) do _G[k] = v end

    local function run_block(block)
        local ok, err
        for _, fn in ipairs(block.setup) do
            ok, err = pcall(fn)
            if not ok then
                stats.failed = stats.failed + 1
                report[#report + 1] = full_name(block, "(setup)") .. ": "
                    .. tostring(err)
                return
            end
        end
        for _, item in ipairs(block.items) do
            if item.test then
                local name = full_name(item.block, item.test)
                if not item.fn then
                    stats.pending = stats.pending + 1
                else
                    running = true
                    ok, err = pcall(function()
                        run_hooks(item.block, "before", true)
                        local tok, terr = pcall(item.fn)
                        run_hooks(item.block, "after", false)
                        if not tok then error(terr, 0) end
                    end)
                    running = false
                    if ok then
                        stats.passed = stats.passed + 1
                    elseif err == PENDING then
                        stats.pending = stats.pending + 1
                    else
                        stats.failed = stats.failed + 1
                        report[#report + 1] = name .. ": " .. tostring(err)
                    end
                end
            else
                run_block(item)
            end
        end
        for _, fn in ipairs(block.teardown) do pcall(fn) end
    end

    for _, file in ipairs(files) do
        local root = new_block(nil, nil)
        current = root
        local chunk, err = loadfile(file)
        if not chunk then
            stats.failed = stats.failed + 1
            report[#report + 1] = err
        else
            local ok, lerr = pcall(chunk)
            if not ok then
                stats.failed = stats.failed + 1
                report[#report + 1] = file .. ": " .. tostring(lerr)
            else
                run_block(root)
            end
        end
    end
    for k in pairs(env) do _G[k] = nil end
    return stats.passed, stats.failed, stats.pending, table.concat(report, "\n")
end

return M
