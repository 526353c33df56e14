-- Helpers for the interoperability specs (spec/interop_*_spec.lua): real
-- peers that are not lasio (curl, Python, node, openssl, dnsmasq) started
-- as child processes, and stopped by the spec. Every peer runs without
-- the sanitizer runtimes that spec/run.sh preloads for stock lua5.4
-- (curl and python hang or abort under them).
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"

local M = {}

-- Debian's python3 (the one with python3-websockets), not another on PATH.
M.PYTHON = "/usr/bin/python3"
-- the node peers' packages (scripts/setup.sh installs them there)
M.NODE_DIR = helper.root .. "/tests/interop"

-- Starts prog with args; opts as create_subprocess_exec's (stdin from
-- /dev/null, stdout and stderr piped, unless given).
function M.spawn(prog, args, opts)
    opts = opts or {}
    local argv = {"-u", "LD_PRELOAD", prog}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    local o = {stdin = lasio.DEVNULL, stdout = lasio.PIPE,
        stderr = lasio.PIPE}
    for k, v in pairs(opts) do o[k] = v end
    return lasio.create_subprocess_exec("env", argv, o)
end

-- Runs prog to its end with input on its stdin: stdout, stderr and the
-- exit status. Fails the spec when it takes longer than 30 s (scaled).
function M.run(prog, args, input, opts)
    opts = opts or {}
    opts.stdin = lasio.PIPE
    local p = M.spawn(prog, args, opts)
    local out, err = p:communicate(input or "", helper.t(30))
    return out, err, p:wait()
end

-- Runs a Python 3 program (source text) with args.
function M.python(code, args, input)
    local argv = {"-c", code}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
    return M.run(M.PYTHON, argv, input)
end

-- Runs a node program (source text) with args, from tests/interop so
-- that require finds its node_modules.
function M.node(code, args, input)
    local argv = {"-e", code}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
    return M.run("node", argv, input, {cwd = M.NODE_DIR})
end

-- Starts a long-running peer and reads its stdout until a line (without
-- its end of line) matches pattern: returns the process and the pattern's captures. The spec
-- stops it with M.stop.
function M.start(prog, args, pattern, opts)
    local p = M.spawn(prog, args, opts)
    p.stdout:settimeout(helper.t(30))
    local seen = {}
    while true do
        local line = p.stdout:readline()
        if line == "" then
            local _, err = p:communicate(nil, helper.t(10))
            error(prog .. " ended before it was ready: "
                .. table.concat(seen) .. (err or ""))
        end
        seen[#seen + 1] = line
        local caps = {line:gsub("\r?\n$", ""):match(pattern)}
        if caps[1] then return p, table.unpack(caps) end
    end
end

-- Stops a peer started by M.start (SIGTERM, then waits for it).
function M.stop(p)
    if p.returncode == nil then
        pcall(p.terminate, p)
    end
    p:wait(helper.t(30))
end

-- A free port on 127.0.0.1 for a peer that cannot listen on port 0:
-- taken from a UDP and a TCP socket bound to port 0 then closed.
function M.free_port()
    for _ = 1, 20 do
        local srv = lasio.start_server(function() end, "127.0.0.1", 0)
        local port = srv:sockets()[1].port
        srv:close()
        local ok, udp = pcall(lasio.open_datagram,
            {local_addr = {"127.0.0.1", port}})
        if ok then
            udp:close()
            return port
        end
    end
    error("no free port on 127.0.0.1")
end

return M
