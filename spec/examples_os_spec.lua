-- The examples of subprocesses, signals and worker threads run as tests
-- (under the lasio command and stock lua5.4), and their output is checked.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local function run(path, interp, args)
    local out, err, status
    local cmd = string.format("cd %s && timeout -k 5 %d %s %s %s 2>&1",
        helper.shell_quote(helper.root), math.ceil(helper.t(30)),
        helper.shell_quote(interp), path, args or "")
    local p = io.popen(cmd)
    out = p:read("a")
    local _, _, code = p:close()
    status, err = code, out
    return out, err, status
end

describe("examples (subprocesses, signals, threads)", function()
    for _, interp in ipairs(helper.interps) do
        it("stream_lines.lua prints each line of a command as it comes, under " .. interp, function()
            local out, _, status = run("examples/stream_lines.lua", interp)
            assert.are.equal(0, status, out)
            assert.are.equal("  1 | step 1\n  2 | step 2\n  3 | step 3\n"
                .. "sh exited with status 0 after 3 lines\n", out)
            out, _, status = run("examples/stream_lines.lua", interp, "printf 'x\\ny'")
            assert.are.equal(0, status, out)
            assert.are.equal("  1 | x\n  2 | y\nprintf exited with status 0 after 2 lines\n", out)
        end)

        it("supervisor.lua restarts its worker each time it dies, then gives up, under " .. interp,
            function()
                local out, _, status = run("examples/supervisor.lua", interp)
                assert.are.equal(0, status, out)
                local want = {}
                for g = 1, 4 do
                    want[#want + 1] = "  worker " .. g .. " up"
                    want[#want + 1] = "worker " .. g .. " died with status " .. g
                    if g < 4 then want[#want + 1] = "restarting (" .. g .. "/3)" end
                end
                want[#want + 1] = "giving up after 3 restarts"
                assert.are.equal(table.concat(want, "\n") .. "\n", out)
            end)

        it("checksum.lua hashes files in worker threads, under " .. interp, function()
            local out, _, status = run("examples/checksum.lua", interp)
            assert.are.equal(0, status, out)
            assert.are.equal("49e07605\tfile1.txt\t\n52cc01c5\tfile2.txt\t\n"
                .. "6eb50c85\tfile3.txt\t\n457a63c5\tfile4.txt\t\n", out)
            -- given files, one of them missing
            local f = os.tmpname()
            local h = io.open(f, "w")
            h:write("lasio 1\n")
            h:close()
            out, _, status = run("examples/checksum.lua", interp, f .. " /nonexistent")
            os.remove(f)
            assert.are.equal(0, status, out)
            local first, second = out:match("^([^\n]*)\n([^\n]*)\n$")
            assert.truthy(first:find("^%x%x%x%x%x%x%x%x\t"), out)
            assert.truthy(second:find("^error", 1), out)
            assert.truthy(second:find("No such file", 1, true), out)
        end)
    end
end)
