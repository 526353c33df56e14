-- The lasio table and lasio.core: the top level of the core is public and
-- copied into the lasio table; what the facade alone uses is in
-- core.internal and never reaches the lasio table (src/module.c, "Public
-- and internal names").
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local core = require "lasio.core"

describe("the lasio table", function()
    it("has every name of the core's top level but internal and coroutine",
        function()
            for k, v in pairs(core) do
                if k == "internal" or k == "coroutine" then
                    assert.is_nil(rawget(lasio, k), k)
                else
                    assert.are.equal(v, rawget(lasio, k), k)
                end
            end
        end)

    it("registers the parts of the modules loaded on first use on the "
        .. "first read of a name core.internal lacks", function()
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child([[
                local core = require "lasio.core"
                require "lasio"
                local names = {"http_parser", "http_send", "websocket",
                    "pg_connect", "redis_connect", "trace_api"}
                for _, k in ipairs(names) do
                    assert(rawget(core.internal, k) == nil, k .. " at start")
                end
                assert(core.internal.gather_ops ~= nil) -- opened at start
                assert(type(core.internal.pg_connect) == "function")
                for _, k in ipairs(names) do
                    assert(rawget(core.internal, k) ~= nil, k .. " missing")
                end
                assert(getmetatable(core.internal) == nil)
                assert(core.internal.no_such_name == nil)
                print("ok")
            ]], {interp = interp})
            assert.are.equal("ok\n", out, interp .. ": " .. err)
            assert.is_true(status == 0 or status == true, err)
        end
    end)

    it("has none of the names of core.internal", function()
        assert.are.equal("table", type(core.internal))
        assert.is_not_nil(core.internal.http_parser)
        for k in pairs(core.internal) do
            assert.is_nil(lasio[k], k)
        end
        for k in pairs(lasio) do -- the facade's parts loaded too
            assert.is_nil(core.internal[k], k)
        end
    end)
end)
