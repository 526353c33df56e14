-- The lasio table and lasio.core: the top level of the core is public and
-- copied into the lasio table; what the facade alone uses is in
-- core.internal and never reaches the lasio table (src/module.c, "Public
-- and internal names").
-- SPDX-License-Identifier: MIT
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
