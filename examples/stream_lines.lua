-- Runs a command and handles its output line by line as it arrives,
-- while the command still runs: lasio.create_subprocess_exec with a pipe,
-- and reader:lines().
-- Usage: lasio examples/stream_lines.lua [command args...]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local prog, args = arg[1], { table.unpack(arg, 2) }
if not prog then -- a default that shows lines arriving one by one
    prog, args = "sh", { "-c", "for i in 1 2 3; do echo \"step $i\"; sleep 0.05; done" }
end

local function main()
    local proc = lasio.create_subprocess_exec(prog, args, { stdout = lasio.PIPE })
    local n = 0
    for line in proc.stdout:lines() do
        n = n + 1
        print(string.format("%3d | %s", n, line))
    end
    local status = proc:wait()
    print(string.format("%s exited with status %d after %d lines", prog, status, n))
end

-- works under the lasio command and with stock lua5.4 alike
lasio.run(main)
