-- RELIABILITY S2: the whole stream spec (and the TLS spec) again under an
-- LD_PRELOAD shim (spec/support/ioshim.c) that makes every read and write
-- on a non-blocking stream socket move one byte or fail with EAGAIN; the
-- results must be those of the normal run.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"

local q = helper.shell_quote

-- Runs busted on the stream and TLS specs with extra environment; returns
-- the successes and the failures + errors of its summary line.
local function run_stream_spec(env)
    local out = os.tmpname()
    local interp = helper.mode == "lasio" and helper.lasio_bin or "lua5.4"
    local cmd = ("cd %s && %s timeout -k 5 %d busted --lua=%s -o TAP spec/stream_spec.lua spec/tls_spec.lua >%s 2>&1")
        :format(q(helper.root), env, math.ceil(helper.t(240)), q(interp), q(out))
    os.execute(cmd)
    local f = assert(io.open(out))
    local text = f:read("a")
    f:close()
    os.remove(out)
    local ok, bad = 0, 0
    for line in text:gmatch("[^\n]+") do
        if line:match("^ok ") then ok = ok + 1 end
        if line:match("^not ok ") then bad = bad + 1 end
    end
    return ok, bad, text
end

describe("streams under the one-byte / EAGAIN shim", function()
    it("pass exactly as in a normal run (covers S2)", function()
        if net.shim then return end -- not inside itself
        local dir = net.tmpdir()
        local so = dir .. "/ioshim.so"
        assert.is_true(os.execute(("cc -shared -fPIC -O1 -o %s %s/spec/support/ioshim.c -ldl")
            :format(q(so), q(helper.root))))
        local pre = so
        if net.sanitized then -- the ASan runtime must come first
            local h = io.popen("gcc -print-file-name=libasan.so; gcc -print-file-name=libubsan.so")
            pre = h:read("l") .. ":" .. h:read("l") .. ":" .. so
            h:close()
        end
        local ok0, bad0, text0 = run_stream_spec("")
        local ok1, bad1, text1 = run_stream_spec("LASIO_IO_SHIM=1 LD_PRELOAD=" .. q(pre))
        net.rmdir(dir)
        assert.are.equal(0, bad0, text0)
        assert.is_true(ok0 > 50, text0)
        assert.are.equal(0, bad1, text1)
        assert.are.equal(ok0, ok1, text1)
    end)
end)
