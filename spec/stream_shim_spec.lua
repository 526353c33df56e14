-- S2: the whole stream spec (and the TLS spec) again under an
-- LD_PRELOAD shim (spec/support/ioshim.c) that makes every read and write
-- on a non-blocking stream socket move one byte or fail with EAGAIN; the
-- results must be those of the normal run.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"

local q = helper.shell_quote
local SPECS = "spec/stream_spec.lua spec/tls_spec.lua"

describe("streams under the one-byte / EAGAIN shim", function()
    it("pass exactly as in a normal run (covers S2)", function()
        if net.shim then return end -- not inside itself
        local dir = net.tmpdir()
        local pre = net.build_io_shim(dir)
        local ok0, bad0, text0 = net.run_busted(SPECS, "")
        local ok1, bad1, text1 = net.run_busted(SPECS,
            "LASIO_IO_SHIM=1 LD_PRELOAD=" .. q(pre))
        net.rmdir(dir)
        assert.are.equal(0, bad0, text0)
        assert.is_true(ok0 > 50, text0)
        assert.are.equal(0, bad1, text1)
        assert.are.equal(ok0, ok1, text1)
    end)
end)
