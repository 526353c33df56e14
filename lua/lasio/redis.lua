-- lasio.redis: a Redis client on the loop (docs/REDIS.md). The wire work
-- is hiredis's, in the C connection of src/db/redis.c (hiredis is loaded on
-- the first connection); this file holds the rest: URLs and options, the
-- handshake (AUTH, SELECT), reconnecting on demand, timeouts, unblocking a
-- cancelled blocking command, pub/sub and the pool. Invariant: a Client
-- has at most one live connection, and replies come back in command
-- order, so a reply nobody waits for any more (its task was cancelled or
-- timed out) is read and dropped and the connection stays in step.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"

local internal = core.internal
local raw_connect, null = internal.redis_connect, internal.redis_null
local ReplyError, ConnectionError = internal.redis_errors()
local CancelledError, TimeoutError = core.CancelledError, core.TimeoutError
local type, error, pcall, select, tostring, tonumber, setmetatable =
    type, error, pcall, select, tostring, tonumber, setmetatable
local remove, upper = table.remove, string.upper

local M = {ReplyError = ReplyError, ConnectionError = ConnectionError,
    null = null}

local lasio -- the facade, for wait_for, spawn, getaddrinfo, Semaphore
local function facade()
    lasio = lasio or require "lasio"
    return lasio
end

-- {====== Options and URLs ======

local known_opts = {host = true, port = true, path = true, username = true,
    password = true, db = true, timeout = true, command_timeout = true,
    tls = true}

local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- redis://[[user][:password]@]host[:port][/db], unix:///path[?db=N]
local function parse_url(url, what, level)
    level = level + 1
    local function bad(why)
        error(what .. ": bad URL '" .. url .. "': " .. why, level + 1)
    end
    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    if not scheme then bad("redis://host:port/db or unix:///path expected") end
    scheme = scheme:lower()
    if scheme == "rediss" then
        error(what .. ": TLS (rediss://) is not available: the system's "
            .. "hiredis (0.14) has no TLS support", level)
    end
    local o = {}
    local query
    rest, query = rest:match("^([^?]*)%??(.*)$")
    if scheme == "unix" or scheme == "redis+unix" then
        local userinfo, path = rest:match("^(.-)@(/.*)$")
        path = path or rest
        if path:sub(1, 1) ~= "/" then bad("the socket path must be absolute") end
        o.path = unescape(path)
        if userinfo then rest = userinfo .. "@" else rest = "" end
        local user, pass = rest:match("^([^:@]*):?([^@]*)@$")
        if user and user ~= "" then o.username = unescape(user) end
        if pass and pass ~= "" then o.password = unescape(pass) end
    elseif scheme == "redis" then
        local userinfo, hostport, path = rest:match("^([^@/]*)@([^/]*)(.*)$")
        if not userinfo then
            hostport, path = rest:match("^([^/]*)(.*)$")
        else
            local user, pass = userinfo:match("^([^:]*):?(.*)$")
            if user ~= "" then o.username = unescape(user) end
            if pass ~= "" then o.password = unescape(pass) end
            if userinfo:find(":", 1, true) == nil and o.username then
                -- redis://secret@host: a lone word is the password
                o.password, o.username = o.username, nil
            end
        end
        local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
        if not host then
            host, port = hostport:match("^([^:]*):?(.-)$")
        end
        if port ~= "" then
            local p = tonumber(port)
            if not port:match("^%d+$") or p < 1 or p > 65535 then
                bad("the port must be a number from 1 to 65535")
            end
            o.port = p
        end
        if host ~= "" then o.host = unescape(host) end
        if path ~= "" and path ~= "/" then
            local db = path:match("^/(%d+)$")
            if not db then bad("the path must be /<database number>") end
            o.db = tonumber(db)
        end
    else
        bad("the scheme must be redis:// or unix://")
    end
    for k, v in query:gmatch("([^&=]+)=?([^&]*)") do
        if k == "db" and v:match("^%d+$") then
            o.db = tonumber(v)
        else
            bad("unknown or bad query parameter '" .. k .. "'")
        end
    end
    return o
end

-- The options of a URL or a table, checked; level: the caller's.
local function options(spec, what, level)
    level = level + 1
    local o
    if type(spec) == "string" then
        o = parse_url(spec, what, level)
    elseif spec == nil then
        o = {}
    elseif type(spec) == "table" then
        o = {}
        for k, v in pairs(spec) do
            if not known_opts[k] then
                error(what .. ": unknown option '" .. tostring(k) .. "'", level)
            end
            o[k] = v
        end
        if o.url ~= nil then o.url = nil end
    else
        error(what .. ": a redis:// URL or an options table expected, got "
            .. type(spec), level)
    end
    if o.tls then
        error(what .. ": TLS is not available: the system's hiredis (0.14) "
            .. "has no TLS support", level)
    end
    o.host = o.host or "127.0.0.1"
    o.port = o.port or 6379
    o.db = o.db or 0
    o.timeout = o.timeout or 10
    local function check(name, ok, want)
        if not ok then
            error(what .. ": option " .. name .. " must be " .. want .. ", got "
                .. tostring(o[name]), level)
        end
    end
    check("host", type(o.host) == "string" and o.host ~= "", "a host name")
    check("port", math.type(o.port) == "integer" and o.port > 0
        and o.port < 65536, "a port number")
    check("path", o.path == nil or type(o.path) == "string", "a socket path")
    check("db", math.type(o.db) == "integer" and o.db >= 0,
        "a database number >= 0")
    check("username", o.username == nil or type(o.username) == "string",
        "a string")
    check("password", o.password == nil or type(o.password) == "string",
        "a string")
    check("timeout", type(o.timeout) == "number" and o.timeout > 0,
        "a number of seconds > 0")
    check("command_timeout", o.command_timeout == nil
        or type(o.command_timeout) == "number" and o.command_timeout > 0,
        "nil or a number of seconds > 0")
    o.where = o.path or (o.host:find(":", 1, true) and "[" .. o.host .. "]"
        or o.host) .. ":" .. o.port
    return o
end

-- ====== }

-- {====== Connecting ======

local function is_numeric(host)
    return host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
end

-- Drops a Future whose outcome nobody will read, so that no "never
-- retrieved" report follows.
local function discard(fut)
    if not fut then return end
    if not fut:done() then
        fut:cancel()
    elseif not fut:cancelled() then
        fut:exception()
    end
end

-- AUTH and SELECT, sent together (one round trip), checked in order.
local function handshake(conn, o, deadline)
    local L = lasio
    local auth = o.password and (o.username
        and conn:send("AUTH", o.username, o.password)
        or conn:send("AUTH", o.password))
    local sel = o.db ~= 0 and conn:send("SELECT", o.db)
    local steps = {auth or false, "AUTH", sel or false, "SELECT " .. o.db}
    for i = 1, #steps, 2 do
        local fut = steps[i]
        if fut then
            local ok, e = pcall(L.wait_for, fut,
                deadline - L.get_running_loop():time())
            if not ok then
                discard(auth)
                discard(sel)
                if ReplyError:is(e) then
                    e = ReplyError("lasio.redis.connect: " .. steps[i + 1]
                        .. " refused by " .. o.where .. ": " .. e.message,
                        {code = e.code})
                end
                error(e, 0)
            end
        end
    end
end

-- A connected, authenticated C connection for options o; raises
-- ConnectionError, TimeoutError, or the ReplyError of AUTH / SELECT.
local function open(o)
    local L = facade()
    local deadline = L.get_running_loop():time() + o.timeout
    local conn, ready
    if o.path then
        conn, ready = raw_connect(o.path)
    else
        local host = o.host
        if not is_numeric(host) then
            local addrs = L.wait_for(function()
                return L.getaddrinfo(host, o.port, {type = "stream"})
            end, o.timeout)
            host = addrs[1].addr
        end
        conn, ready = raw_connect(host, o.port)
    end
    local ok, err = pcall(L.wait_for, ready,
        deadline - L.get_running_loop():time())
    if ok and (o.password or o.db ~= 0) then
        ok, err = pcall(handshake, conn, o, deadline)
    end
    if not ok then
        conn:close()
        if TimeoutError:is(err) then
            err = TimeoutError("lasio.redis.connect: no connection to "
                .. o.where .. " within " .. o.timeout .. " s")
        end
        error(err, 0)
    end
    return conn
end

-- ====== }

-- {====== Client ======

local Client = {}
Client.__index = Client
Client.__name = "lasio.redis.Client"

-- Commands the server may hold without an answer: a task cancelled while
-- waiting on one gets the server to let go (CLIENT UNBLOCK). Commands that
-- change what the connection's replies mean need a connection of their
-- own (client:subscribe).
local blocking = {}
for _, name in ipairs{"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP",
        "BZPOPMIN", "BZPOPMAX", "BZMPOP", "XREAD", "XREADGROUP", "WAIT"} do
    blocking[name] = "blocking"
end
for _, name in ipairs{"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE",
        "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"} do
    blocking[name] = "refused"
end
-- command name as given -> "blocking", "refused" or false (memo)
local kind_of = setmetatable({}, {__index = function(t, cmd)
    if type(cmd) ~= "string" then return false end
    local k = blocking[upper(cmd)] or false
    if #cmd <= 32 then t[cmd] = k end
    return k
end})

function M.connect(spec)
    local o = options(spec, "lasio.redis.connect", 2)
    internal.vclock_refuse("lasio.redis.connect")
    local self = setmetatable({opts = o}, Client)
    self.conn = open(o)
    return self
end

local function connection(self)
    if self.closed then
        error(ConnectionError("redis " .. self.opts.where
            .. ": the client is closed", {code = "EPIPE", op = "redis"}), 0)
    end
    local conn = self.conn
    if conn then return conn end
    conn = open(self.opts)
    self.conn, self.id = conn, nil
    return conn
end

-- The connection was found gone before a command went out: reconnect.
local function replace(self, conn, err)
    if not (ConnectionError:is(err) and err.unsent) then error(err, 0) end
    if self.conn == conn then self.conn = nil end
    return connection(self)
end

-- Tells the server to let go of the blocking command of fut on conn, if
-- it is the one being served (cancelled or timed out while waiting).
local function unblock(self, conn, fut, id)
    if not id or not conn:is_head(fut) then return end
    local o = self.opts
    facade().spawn(function()
        pcall(function()
            local side = open(o)
            pcall(side.call, side, "CLIENT", "UNBLOCK", id)
            side:close()
        end)
    end)
end

-- A blocking command, or any command under command_timeout.
local function slow_call(self, conn, ...)
    if conn:status() == "closed" then -- ended while idle: reconnect first
        if self.conn == conn then self.conn = nil end
        conn = connection(self)
    end
    local id
    if kind_of[...] == "blocking" then
        id = self.id
        if not id then
            id = conn:call("CLIENT", "ID")
            if self.conn == conn then self.id = id end
        end
    end
    local fut = conn:send(...)
    local t = self.opts.command_timeout
    local ok, r
    if t and not id then
        ok, r = pcall(facade().wait_for, fut, t)
    else
        ok, r = pcall(fut.await, fut)
    end
    if ok then return r end
    if CancelledError:is(r) or TimeoutError:is(r) then
        if not fut:done() then fut:cancel() end
        unblock(self, conn, fut, id)
        if TimeoutError:is(r) then
            r = TimeoutError("redis " .. self.opts.where .. ": no reply to "
                .. tostring(...) .. " within " .. t .. " s")
        end
    end
    error(r, 0)
end

local function refuse(what, cmd)
    error(what .. ": " .. cmd .. " needs a connection of its own (use "
        .. "client:subscribe or client:psubscribe)", 3)
end

-- client:call(cmd, ...) -> the reply; raises ReplyError for an error
-- reply, ConnectionError, TimeoutError.
function Client:call(...)
    local conn = self.conn or connection(self)
    local kind = kind_of[...]
    if kind then
        if kind == "refused" then refuse("client:call", ...) end
        return slow_call(self, conn, ...)
    end
    if self.opts.command_timeout then return slow_call(self, conn, ...) end
    local ok, r = pcall(conn.call, conn, ...)
    if ok then return r end
    if type(r) == "string" then error("client:" .. r:gsub("^redis ", ""), 2) end
    conn = replace(self, conn, r)
    return conn:call(...)
end

-- client:send(cmd, ...) -> Future of the reply: many commands in flight
-- from one task; nothing can come between commands sent with no await
-- in between (MULTI ... EXEC).
function Client:send(...)
    if kind_of[...] == "refused" then refuse("client:send", ...) end
    local conn = self.conn or connection(self)
    local ok, r = pcall(conn.send, conn, ...)
    if ok then return r end
    if type(r) == "string" then error("client:" .. r:gsub("^redis ", ""), 2) end
    conn = replace(self, conn, r)
    return conn:send(...)
end

-- Drops a connection that has ended, so the next command reconnects.
function Client:is_connected()
    local conn = self.conn
    if conn and conn:status() == "closed" then self.conn = nil end
    return self.conn ~= nil
end

function Client:close()
    self.closed = true
    local conn = self.conn
    self.conn = nil
    if conn then conn:close() end
end
Client.__close = Client.close

function Client:__tostring()
    return "lasio.redis.Client<" .. self.opts.where
        .. (self.closed and " closed" or "") .. ">"
end

-- ====== }

-- {====== Pub/sub ======

local Subscription = {}
Subscription.__index = Subscription
Subscription.__name = "lasio.redis.Subscription"

local function check_names(what, ...)
    local n = select("#", ...)
    if n == 0 then error(what .. ": at least one channel expected", 3) end
    for i = 1, n do
        local v = select(i, ...)
        if type(v) ~= "string" then
            error(what .. ": channel #" .. i .. " must be a string, got "
                .. type(v), 3)
        end
    end
    return n
end

-- Sends kind with the channels and waits for the server's n
-- confirmations; messages that come first are kept for messages().
local function subscribe_command(self, kind, n, ...)
    if self.closed then
        error(ConnectionError("redis " .. self.where
            .. ": the subscription is closed", {code = "EPIPE", op = "redis"}), 0)
    end
    local want = kind:lower()
    self.conn:subscribe_command(kind, ...)
    while n > 0 do
        local m = self.conn:next_message()
        if m[1] == want then
            n = n - 1
            local set = want:sub(1, 1) == "p" and self.patterns or self.channels
            set[m[2]] = want:find("unsub", 1, true) == nil or nil
        else
            self.buffer[#self.buffer + 1] = m
        end
    end
end

function Subscription:subscribe(...)
    subscribe_command(self, "SUBSCRIBE", check_names("sub:subscribe", ...), ...)
    return self
end

function Subscription:psubscribe(...)
    subscribe_command(self, "PSUBSCRIBE",
        check_names("sub:psubscribe", ...), ...)
    return self
end

local function names_of(set)
    local t = {}
    for k in pairs(set) do t[#t + 1] = k end
    return t
end

-- sub:unsubscribe([channel, ...]): every channel when none is named.
function Subscription:unsubscribe(...)
    local list = select("#", ...) > 0 and {...} or names_of(self.channels)
    if #list > 0 then
        check_names("sub:unsubscribe", table.unpack(list))
        subscribe_command(self, "UNSUBSCRIBE", #list, table.unpack(list))
    end
    return self
end

function Subscription:punsubscribe(...)
    local list = select("#", ...) > 0 and {...} or names_of(self.patterns)
    if #list > 0 then
        check_names("sub:punsubscribe", table.unpack(list))
        subscribe_command(self, "PUNSUBSCRIBE", #list, table.unpack(list))
    end
    return self
end

-- sub:next() -> channel, message [, pattern]; nil once the subscription
-- is closed; raises ConnectionError when the connection is lost.
function Subscription:next()
    while true do
        local m = remove(self.buffer, 1)
        if not m then
            if self.closed then return nil end
            local ok, r = pcall(self.conn.next_message, self.conn)
            if not ok then
                if self.closed then return nil end
                error(r, 0)
            end
            m = r
        end
        local kind = m[1]
        if kind == "message" then return m[2], m[3] end
        if kind == "pmessage" then return m[3], m[4], m[2] end
    end
end

-- for channel, message, pattern in sub:messages() do ... end
function Subscription:messages()
    return Subscription.next, self
end

function Subscription:close()
    if self.closed then return end
    self.closed = true
    self.conn:close()
end
Subscription.__close = Subscription.close

function Subscription:__tostring()
    return "lasio.redis.Subscription<" .. self.where
        .. (self.closed and " closed" or "") .. ">"
end

local function new_subscription(client)
    local o = client.opts
    if client.closed then connection(client) end -- raises
    return setmetatable({conn = open(o), where = o.where, buffer = {},
        channels = {}, patterns = {}}, Subscription)
end

-- client:subscribe(channel, ...) -> Subscription on a connection of its
-- own, subscribed once the server has confirmed every channel.
function Client:subscribe(...)
    check_names("client:subscribe", ...)
    local sub = new_subscription(self)
    local ok, err = pcall(sub.subscribe, sub, ...)
    if not ok then sub:close() error(err, 0) end
    return sub
end

function Client:psubscribe(...)
    check_names("client:psubscribe", ...)
    local sub = new_subscription(self)
    local ok, err = pcall(sub.psubscribe, sub, ...)
    if not ok then sub:close() error(err, 0) end
    return sub
end

-- ====== }

-- {====== Pool ======

local Pool = {}
Pool.__index = Pool
Pool.__name = "lasio.redis.Pool"

-- lasio.redis.pool(url or opts [, {size = 10}]) -> Pool of up to size
-- clients, each made on first need.
function M.pool(spec, popts)
    local o = options(spec, "lasio.redis.pool", 2)
    local size = 10
    if popts ~= nil then
        if type(popts) ~= "table" then
            error("lasio.redis.pool: pool options must be a table", 2)
        end
        for k in pairs(popts) do
            if k ~= "size" then
                error("lasio.redis.pool: unknown pool option '" .. tostring(k)
                    .. "'", 2)
            end
        end
        size = popts.size or size
        if math.type(size) ~= "integer" or size < 1 then
            error("lasio.redis.pool: size must be an integer >= 1", 2)
        end
    end
    return setmetatable({opts = o, size = size, idle = {},
        slots = facade().Semaphore(size)}, Pool)
end

-- pool:acquire() -> a Client of its own until pool:release(client); waits
-- while size clients are out.
function Pool:acquire()
    if self.closed then error("pool:acquire: the pool is closed", 2) end
    self.slots:acquire()
    local client = remove(self.idle)
    while client and not client:is_connected() do
        client:close()
        client = remove(self.idle)
    end
    if client then return client end
    local ok, c = pcall(function()
        local cl = setmetatable({opts = self.opts}, Client)
        cl.conn = open(self.opts)
        return cl
    end)
    if not ok then
        self.slots:release()
        error(c, 0)
    end
    return c
end

function Pool:release(client)
    if getmetatable(client) ~= Client then
        error("pool:release: a Client of this pool expected", 2)
    end
    if self.closed or client.closed or not client:is_connected() then
        client:close()
    else
        self.idle[#self.idle + 1] = client
    end
    self.slots:release()
end

-- pool:call(cmd, ...): the command on a client of the pool.
function Pool:call(...)
    local client = self:acquire()
    local ok, r = pcall(client.call, client, ...)
    self:release(client)
    if not ok then error(r, 0) end
    return r
end

function Pool:close()
    self.closed = true
    for _, c in ipairs(self.idle) do c:close() end
    self.idle = {}
end
Pool.__close = Pool.close

-- ====== }

return M
