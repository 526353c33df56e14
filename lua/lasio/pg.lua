-- lasio.pg: PostgreSQL on the loop. Connections on libpq's asynchronous
-- API (src/db/pg.c, libpq loaded on first use), host names resolved by
-- lasio's own resolver so nothing blocks the loop, queries with $n
-- parameters, transactions as <close> values, LISTEN as an iterator, and a
-- small pool. Docs: docs/POSTGRESQL.md.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local core = require "lasio.core"

local internal = core.internal
local M = {}

-- {====== Errors ======

-- PGError, a subclass of lasio.Error made once per state (kept in
-- core.internal, so a second require returns the same class).
local function make_error_class()
    local Base = lasio.Error
    local cls = {
        _classname = "PGError", __name = "lasio.PGError", _parent = Base,
        is = Base.is, __tostring = Base.__tostring,
    }
    cls.__index = cls
    return setmetatable(cls, getmetatable(Base))
end
internal.PGError = internal.PGError or make_error_class()
local PGError = internal.PGError
M.Error = PGError

-- The error raised for a failed operation: "what: message (SQLSTATE x)",
-- with the server's fields (sqlstate, severity, detail, hint, position,
-- table, column, constraint) copied onto it.
local function pg_error(what, fields)
    local msg = what .. ": " .. fields.message
    if fields.sqlstate then
        msg = msg .. " (SQLSTATE " .. fields.sqlstate .. ")"
    end
    local e = PGError(msg, fields)
    e.message = msg
    e.server_message = fields.message
    return e
end

-- ====== }

-- {====== Connecting ======

local function is_ip(s)
    return s:match("^%d+%.%d+%.%d+%.%d+$") or s:find(":", 1, true)
end

-- The host list of conninfo as host addresses: a Unix socket directory
-- (or abstract "@name") and a numeric address stay; a name is resolved
-- with lasio.getaddrinfo (hosts file, then DNS through evdns) and its
-- first address becomes that host's hostaddr, so libpq never calls the
-- blocking getaddrinfo. Returns nil when no name needs resolving.
local function resolve_hosts(opts)
    if opts.hostaddr or os.getenv("PGHOSTADDR") then return nil end
    local hosts = opts.host or os.getenv("PGHOST")
    if not hosts or hosts == "" then return nil end
    local addrs, any = {}, false
    for h in (hosts .. ","):gmatch("([^,]*),") do
        if h == "" or h:sub(1, 1) == "/" or h:sub(1, 1) == "@" then
            addrs[#addrs + 1] = ""
        elseif is_ip(h) then
            addrs[#addrs + 1] = h
        else
            local list = lasio.getaddrinfo(h, nil)
            addrs[#addrs + 1] = list[1].addr
            any = true
        end
    end
    if not any then return nil end
    return table.concat(addrs, ",")
end

local Connection = {}
Connection.__index = Connection
Connection.__name = "lasio.pg.Connection"

local function start(conninfo)
    local opts, why = internal.pg_conninfo_parse(conninfo)
    if not opts then
        error(pg_error("pg.connect", {
            message = "malformed conninfo: " .. why:gsub("%s+$", ""),
            sqlstate = "08001",
        }), 0)
    end
    local hostaddr = resolve_hosts(opts)
    if hostaddr then
        opts.host = opts.host or os.getenv("PGHOST")
        opts.hostaddr = hostaddr
    end
    local timeout = tonumber(opts.connect_timeout)
    local keys, vals = {}, {}
    for k, v in pairs(opts) do
        keys[#keys + 1], vals[#vals + 1] = k, v
    end
    local c, err = internal.pg_connect(keys, vals)
    if not c then
        error(pg_error("pg.connect", {
            message = err:gsub("%s+$", ""), sqlstate = "08001" }), 0)
    end
    local ok, herr
    if timeout and timeout > 0 then
        ok, herr = lasio.wait_for(function() return c:handshake() end,
            timeout)
    else
        ok, herr = c:handshake()
    end
    if not ok then
        c:close()
        error(pg_error("pg.connect", {
            message = herr:gsub("%s+$", ""), sqlstate = "08001" }), 0)
    end
    return c
end

-- pg.connect(conninfo) -> Connection. conninfo is a libpq connection
-- string ("host=... dbname=...") or URI ("postgresql://...").
function M.connect(conninfo)
    if type(conninfo) ~= "string" then
        error("pg.connect: conninfo must be a string, got "
            .. type(conninfo), 2)
    end
    internal.vclock_refuse("lasio.pg.connect")
    local c = start(conninfo)
    return setmetatable({ _c = c }, Connection)
end

-- ====== }

-- {====== Queries and transactions ======

-- db:query(sql, ...) -> rows, count. Parameters fill $1, $2...; rows is a
-- sequence of tables keyed by column name; count is the number of rows
-- returned or affected (nil for a command that reports none).
function Connection:query(sql, ...)
    if type(sql) ~= "string" then
        error("query: sql must be a string, got " .. type(sql), 2)
    end
    local rows, n = self._c:query(sql, ...)
    if rows == false then error(pg_error("query", n), 2) end
    return rows, n
end

function Connection:close()
    self._c:close()
end
Connection.__close = Connection.close

-- {state=, pid=, server_version=, transaction=, in_flight=}
function Connection:info()
    return self._c:info()
end

function Connection:__tostring()
    return tostring(self._c)
end

local Transaction = {}
Transaction.__index = Transaction
Transaction.__name = "lasio.pg.Transaction"

function Transaction:query(sql, ...)
    if self.done then
        error("query: the transaction is over", 2)
    end
    return self.conn:query(sql, ...)
end

local function finish(tx, sql)
    if tx.done then
        error(sql:lower() .. ": the transaction is over", 3)
    end
    tx.done = true
    local ok, err = pcall(tx.conn.query, tx.conn, sql)
    if tx.on_end then tx.on_end(tx.conn, ok) end
    if not ok then error(err, 0) end
end

function Transaction:commit() finish(self, "COMMIT") end
function Transaction:rollback() finish(self, "ROLLBACK") end

-- Leaving the <close> scope commits, or rolls back when an error (a
-- cancellation included) leaves it; a failed rollback does not hide that
-- error (the connection is then broken, and a pool drops it).
function Transaction:__close(err)
    if self.done then return end
    if err == nil then
        finish(self, "COMMIT")
    else
        pcall(finish, self, "ROLLBACK")
    end
end

local function begin(conn, on_end)
    conn:query("BEGIN")
    return setmetatable({ conn = conn, done = false, on_end = on_end },
        Transaction)
end

-- local tx <close> = db:transaction(): BEGIN now; COMMIT or ROLLBACK when
-- tx goes out of scope. Other tasks sharing this connection would run
-- inside it: give a transaction a connection of its own (pool:transaction).
function Connection:transaction()
    return begin(self)
end

-- ====== }

-- {====== LISTEN / NOTIFY ======

local function quote_ident(s)
    if type(s) ~= "string" then
        error("pg.quote_ident: expected a string, got " .. type(s), 2)
    end
    return '"' .. s:gsub('"', '""') .. '"'
end
M.quote_ident = quote_ident

-- One task at a time waits on the connection for notifications (the
-- pump); the others wait on an Event set when the pump got one, and every
-- notification goes to the buffer of its channel.
local function pump(self, st)
    if st.pumping then
        st.event:wait()
        return
    end
    st.pumping, st.event = true, lasio.Event()
    local c = self._c
    local ok, ch, payload, pid = pcall(c.notification, c)
    local ev = st.event
    st.pumping, st.event = false, nil
    ev:set()
    if not ok then error(ch, 0) end
    if ch == false then
        if c:info().state == "closed" then return true end
        error(pg_error("listen", payload), 0)
    end
    local buf = st.bufs[ch]
    if buf then
        buf.last = buf.last + 1
        buf[buf.last] = { ch, payload, pid }
    end
end

-- for channel, payload, pid in db:listen(channel) do ... end: LISTEN now,
-- then every notification of that channel, in order, until the connection
-- closes (the loop ends) or breaks (the loop raises). Leaving the loop
-- stops buffering; the session stays LISTENing until db:unlisten.
function Connection:listen(channel)
    if type(channel) ~= "string" or channel == "" then
        error("listen: channel must be a non-empty string", 2)
    end
    self:query("LISTEN " .. quote_ident(channel))
    local st = self._listen
    if not st then
        st = { bufs = {}, pumping = false }
        self._listen = st
    end
    local buf = st.bufs[channel]
    if not buf then
        buf = { first = 1, last = 0, users = 0 }
        st.bufs[channel] = buf
    end
    buf.users = buf.users + 1
    local function iter()
        while true do
            if buf.first <= buf.last then
                local v = buf[buf.first]
                buf[buf.first] = nil
                buf.first = buf.first + 1
                return v[1], v[2], v[3]
            end
            if pump(self, st) then return nil end
        end
    end
    local closer = setmetatable({}, { __close = function()
        buf.users = buf.users - 1
        if buf.users == 0 and st.bufs[channel] == buf then
            st.bufs[channel] = nil
        end
    end })
    return iter, nil, nil, closer
end

function Connection:unlisten(channel)
    self:query("UNLISTEN " .. quote_ident(channel))
end

-- db:notify(channel, payload): pg_notify, with parameters.
function Connection:notify(channel, payload)
    self:query("SELECT pg_notify($1, $2)", channel, payload or "")
end

-- ====== }

-- {====== Pool ======

local Pool = {}
Pool.__index = Pool
Pool.__name = "lasio.pg.Pool"

-- pg.pool(conninfo [, {size = 10}]): up to size connections, made on
-- demand. Idle connections wait in a queue; a discarded one leaves a false
-- token there, which the next acquirer turns into a new connection.
function M.pool(conninfo, opts)
    if type(conninfo) ~= "string" then
        error("pg.pool: conninfo must be a string, got " .. type(conninfo), 2)
    end
    local size = opts and opts.size or 10
    if math.type(size) ~= "integer" or size < 1 then
        error("pg.pool: size must be a positive integer", 2)
    end
    return setmetatable({ conninfo = conninfo, size = size, total = 0,
        idle = lasio.Queue(), closed = false }, Pool)
end

function Pool:acquire()
    if self.closed then error("acquire: the pool is closed", 2) end
    local conn
    if not self.idle:empty() then
        conn = self.idle:get_nowait()
    elseif self.total < self.size then
        self.total = self.total + 1
        conn = false
    else
        conn = self.idle:get()
    end
    if conn then return conn end
    local ok, c = pcall(M.connect, self.conninfo)
    if not ok then
        self.total = self.total - 1
        error(c, 0)
    end
    return c
end

-- Gives conn back; a broken one, or one left inside a transaction, is
-- closed and its place freed.
function Pool:release(conn)
    local info = conn:info()
    if self.closed or info.state ~= "ready" or info.transaction ~= "idle"
        or info.in_flight > 0 then
        conn:close()
        self.total = self.total - 1
        if not self.closed then
            self.total = self.total + 1
            self.idle:put_nowait(false)
        end
        return
    end
    self.idle:put_nowait(conn)
end

function Pool:query(sql, ...)
    local conn = self:acquire()
    local ok, rows, n = pcall(conn.query, conn, sql, ...)
    self:release(conn)
    if not ok then error(rows, 0) end
    return rows, n
end

-- local tx <close> = pool:transaction(): a connection of its own for the
-- transaction, given back when it ends.
function Pool:transaction()
    local conn = self:acquire()
    local ok, tx = pcall(begin, conn, function(c) self:release(c) end)
    if not ok then
        self:release(conn)
        error(tx, 0)
    end
    return tx
end

function Pool:close()
    self.closed = true
    while not self.idle:empty() do
        local c = self.idle:get_nowait()
        if c then c:close() end
        self.total = self.total - 1
    end
end
Pool.__close = Pool.close

-- ====== }

-- pg.bytea(s): a parameter sent as binary bytea (any bytes, NULs too).
function M.bytea(s)
    if type(s) ~= "string" then
        error("pg.bytea: expected a string, got " .. type(s), 2)
    end
    return { bytea = s }
end

return M
