-- A real PostgreSQL server for the specs: initdb into a temporary
-- directory, pg_ctl start on a free port with its Unix socket in that
-- directory, as the unprivileged user nobody when the suite runs as root,
-- stopped and removed by stop(). Loaded with require "pg_server".
-- SPDX-License-Identifier: MIT
local M = {}

local function q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
    local h = io.popen(cmd .. " 2>/dev/null")
    local out = h:read("a")
    h:close()
    return (out:gsub("%s+$", ""))
end

-- The server's binaries: Debian keeps them out of PATH, under
-- /usr/lib/postgresql/<major>/bin (the newest major wins).
function M.bindir()
    local d = sh("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V "
        .. "| tail -n 1")
    if d ~= "" then return d end
    local p = sh("command -v initdb")
    if p ~= "" then return (p:gsub("/initdb$", "")) end
    error("pg_server: no PostgreSQL server binaries (install the Debian "
        .. "package postgresql: scripts/setup.sh does)")
end

local function free_port()
    -- binding port 0 through the shell's python is not guaranteed here;
    -- probe with ss for a port nobody listens on
    for _ = 1, 50 do
        local port = math.random(20000, 60000)
        if sh("ss -ltnH 'sport = :" .. port .. "'") == "" then
            return port
        end
    end
    error("pg_server: no free port")
end

-- Starts a server; returns the server table {dir, port, bindir,
-- conninfo (Unix socket), tcp (127.0.0.1, password user "secret"), ...}.
function M.start()
    local self = { bindir = M.bindir() }
    self.dir = sh("mktemp -d /tmp/lasio-pg.XXXXXX")
    assert(self.dir ~= "", "pg_server: mktemp failed")
    local root = sh("id -u") == "0"
    self.user = root and "nobody" or sh("id -un")
    -- the ASan runtime preloaded for stock lua5.4 must not reach postgres
    local run = "env -u LD_PRELOAD "
    if root then
        assert(os.execute("chown nobody " .. q(self.dir)))
        run = run .. "runuser -u nobody -- "
    end
    self.run = run
    local data = self.dir .. "/data"
    self.data = data
    local pw = self.dir .. "/pw"
    local f = assert(io.open(pw, "w"))
    f:write("postgres-pw\n")
    f:close()
    if root then os.execute("chown nobody " .. q(pw)) end
    assert(os.execute(run .. q(self.bindir .. "/initdb") .. " -D " .. q(data)
        .. " -U postgres --auth-local=trust --auth-host=scram-sha-256"
        .. " --pwfile=" .. q(pw) .. " -E UTF8 --no-sync >"
        .. q(self.dir .. "/initdb.log") .. " 2>&1"),
        "pg_server: initdb failed (see " .. self.dir .. "/initdb.log)")
    for _ = 1, 5 do
        self.port = free_port()
        local opts = string.format("-k %s -p %d -c listen_addresses=127.0.0.1"
            .. " -c fsync=off -c max_connections=200", self.dir, self.port)
        if os.execute(run .. q(self.bindir .. "/pg_ctl") .. " -D " .. q(data)
            .. " -l " .. q(self.dir .. "/server.log") .. " -o " .. q(opts)
            .. " -w -t 60 start >/dev/null 2>&1") then
            self.conninfo = string.format(
                "host=%s port=%d user=postgres dbname=postgres",
                self.dir, self.port)
            self.tcp = string.format("host=127.0.0.1 port=%d dbname=postgres",
                self.port)
            M.psql(self, "CREATE ROLE secret LOGIN PASSWORD 'right-pw'")
            return self
        end
    end
    error("pg_server: pg_ctl start failed (see " .. self.dir
        .. "/server.log)")
end

-- Runs sql with psql on the server (blocking; outside the loop's tasks).
function M.psql(self, sql)
    local out = sh(self.run .. q(self.bindir .. "/psql") .. " -X -q -A -t"
        .. " -h " .. q(self.dir) .. " -p " .. self.port
        .. " -U postgres -d postgres -c " .. q(sql))
    return out
end

-- The pid of the postmaster.
function M.pid(self)
    local f = io.open(self.data .. "/postmaster.pid")
    if not f then return nil end
    local pid = f:read("l")
    f:close()
    return tonumber(pid)
end

-- Waits until the server accepts connections again (after a crash
-- recovery); returns true when it does within `seconds`.
function M.wait_ready(self, seconds)
    local cmd = self.run .. q(self.bindir .. "/pg_isready") .. " -q -h "
        .. q(self.dir) .. " -p " .. self.port
    for _ = 1, seconds * 10 do
        if os.execute(cmd) then return true end
        os.execute("sleep 0.1")
    end
    return false
end

function M.stop(self)
    if not self or not self.dir then return end
    os.execute(self.run .. q(self.bindir .. "/pg_ctl") .. " -D "
        .. q(self.data) .. " -m immediate -w stop >/dev/null 2>&1")
    os.execute("rm -rf " .. q(self.dir))
    self.dir = nil
end

return M
