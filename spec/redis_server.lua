-- A real redis-server for the specs: started on a free TCP port of
-- 127.0.0.1 and on a Unix socket in a temporary directory, without
-- persistence (--save '' --appendonly no), and stopped by the spec. The
-- calls block (shell commands): use them in setup / teardown, or where a
-- spec means to stop the server under the client's feet.
-- SPDX-License-Identifier: MIT
local helper = require "helper"

local q = helper.shell_quote
local M = {}
M.__index = M

local function sh(cmd)
    local h = io.popen(cmd)
    local out = h:read("a")
    local ok = h:close()
    return ok, out
end

-- Starts the server's process on self.port; true once it answers PING.
local function launch(self, extra)
    local cmd = ("redis-server --port %d --bind 127.0.0.1 --unixsocket %s "
        .. "--unixsocketperm 700 --save '' --appendonly no --dir %s "
        .. "--logfile %s --daemonize no --enable-debug-command yes %s >/dev/null 2>&1 & echo $!"):format(
        self.port, q(self.socket), q(self.dir), q(self.dir .. "/redis.log"),
        extra or "")
    local _, out = sh(cmd)
    self.pid = tonumber(out:match("%d+"))
    assert(self.pid, "redis_server: cannot start redis-server")
    local ok = sh(("for i in $(seq 200); do "
        .. "redis-cli -s %s ping 2>/dev/null | grep -qE 'PONG|NOAUTH' && exit 0; "
        .. "kill -0 %d 2>/dev/null || exit 1; sleep 0.05; done; exit 1"):format(
        q(self.socket), self.pid))
    return ok
end

-- A new server; opts.password sets requirepass. Raises if redis-server is
-- missing (scripts/setup.sh installs it) or never comes up.
function M.start(opts)
    opts = opts or {}
    assert(os.execute("command -v redis-server >/dev/null 2>&1"),
        "redis_server: redis-server not found (scripts/setup.sh installs "
        .. "the Debian package redis-server)")
    local _, dir = sh("mktemp -d")
    local self = setmetatable({dir = dir:match("[^\n]+"), opts = opts}, M)
    self.socket = self.dir .. "/redis.sock"
    self.extra = opts.password and ("--requirepass " .. q(opts.password)) or ""
    -- a port nobody listens on: redis-server exits when the bind fails,
    -- then another is tried
    for _ = 1, 20 do
        self.port = math.random(20000, 45000)
        if launch(self, self.extra) then return self end
        self:kill()
    end
    error("redis_server: redis-server did not start (log: " .. self.dir
        .. "/redis.log)")
end

function M:url(db)
    return ("redis://127.0.0.1:%d%s"):format(self.port, db and "/" .. db or "")
end

-- Ends the process with SIGKILL (a crash: no reply, no goodbye) and waits
-- until it is gone.
function M:kill()
    if not self.pid then return end
    os.execute(("kill -9 %d 2>/dev/null; while kill -0 %d 2>/dev/null; do "
        .. "sleep 0.02; done"):format(self.pid, self.pid))
    self.pid = nil
end

-- Starts it again on the same port and socket (after kill).
function M:restart()
    assert(not self.pid, "redis_server: still running")
    os.remove(self.socket)
    assert(launch(self, self.extra), "redis_server: no restart on port "
        .. self.port)
end

-- Stops the server and removes its directory.
function M:stop()
    if self.pid then
        os.execute(("kill %d 2>/dev/null; while kill -0 %d 2>/dev/null; do "
            .. "sleep 0.02; done"):format(self.pid, self.pid))
        self.pid = nil
    end
    os.execute("rm -rf " .. q(self.dir))
end

return M
