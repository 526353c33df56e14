-- lasio.testing: running event flows in virtual time (docs/VIRTUAL_TIME.md).
-- run() gives a function a fresh virtual loop; wait_idle() waits until
-- every other task is blocked; pipe() and the in-process network
-- (listen/connect, partition/heal/hold/release) move bytes between tasks
-- with a virtual latency and bandwidth; buggify() is a seeded coin flip.
-- The clock itself and its jump rule are in the core (src/core/vclock.c).
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local core = require "lasio.core"
local internal = core.internal

local M = {}

local function info() return internal.vclock_info() end

--- run ----------------------------------------------------------------

local run_opts = {seed = true, start = true, epoch = true, limit = true,
                  shuffle = true, real_io = true, rate = true}

local function check_number(name, v, min, max)
    if type(v) ~= "number" or v ~= v or v < min or v > max then
        error(("lasio.testing.run: opts.%s must be a number from %g to %g, got %s")
            :format(name, min, max, tostring(v)), 3)
    end
end

-- The request for the core: opts checked, a seed chosen when none given.
local function request(opts)
    local r = {once = true}
    for k, v in pairs(opts) do
        if not run_opts[k] then
            error("lasio.testing.run: unknown option '" .. tostring(k) .. "'", 3)
        end
        r[k] = v
    end
    if r.seed == nil then
        r.seed = (os.time() * 1000003 ~ internal.now_ns()
            ~ math.floor(os.clock() * 1e9)) & 0x7fffffff
    elseif math.type(r.seed) ~= "integer" or r.seed < 0 then
        error("lasio.testing.run: opts.seed must be an integer >= 0, got "
            .. tostring(r.seed), 3)
    end
    if r.start ~= nil then check_number("start", r.start, 0, 9e9) end
    if r.epoch ~= nil then check_number("epoch", r.epoch, -9e15, 9e15) end
    if r.limit ~= nil then check_number("limit", r.limit, 1e-9, 9e9) end
    if r.rate ~= nil then check_number("rate", r.rate, 1e-9, 1e9) end
    if r.real_io == true then
        r.real_io = 10
    elseif r.real_io == false then
        r.real_io = nil
    elseif r.real_io ~= nil then
        check_number("real_io", r.real_io, 0, 3600000)
    end
    r.shuffle = not not r.shuffle
    return r
end

-- Appends the seed and a way to rerun to an error.
local function with_seed(e, seed)
    local how = ("(virtual run with seed %d: rerun with lasio.testing.run(fn, {seed = %d}))")
        :format(seed, seed)
    if type(e) == "string" then return e .. "\n" .. how end
    if type(e) == "table" and type(e.message) == "string" then
        e.message = e.message .. " " .. how
        e.seed = seed
    end
    return e
end

--- lasio.testing.run(fn [, opts], ...): runs fn(...) as the main task of a
-- fresh virtual loop and returns its results. From a task of a running
-- loop that loop waits meanwhile.
function M.run(fn, opts, ...)
    if type(fn) ~= "function" then
        error("lasio.testing.run: argument 1 must be a function, got " .. type(fn), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("lasio.testing.run: opts must be a table or nil, got " .. type(opts), 2)
    end
    local r = request(opts or {})
    local loop
    local function main(...)
        loop = lasio.get_running_loop()
        return fn(...)
    end
    local outer = internal.vclock_request(r) -- the command's, kept
    local saved = math.random(0) -- math.random is reseeded: put it back after
    math.randomseed(r.seed)
    local res = table.pack(pcall(internal.run_fresh, main, ...))
    internal.vclock_request(outer)
    math.randomseed(saved)
    local vi = loop and internal.vclock_info(loop)
    if vi and vi.limit_hit then
        error(with_seed(lasio.TimeoutError(("virtual time limit %g s reached")
            :format(vi.limit)), r.seed), 2)
    end
    if not res[1] then error(with_seed(res[2], r.seed), 2) end
    return table.unpack(res, 2, res.n)
end

--- Is the running loop virtual?
function M.virtual() return info() ~= nil end

--- The seed of the running virtual loop, or nil in real time.
function M.seed()
    local vi = info()
    return vi and vi.seed
end

--- wait_idle / sleep ---------------------------------------------------

-- Tasks inside wait_idle, per loop: they keep their own step queued, so
-- the others are idle when nothing but those steps is ready.
local idle_waiters = setmetatable({}, {__mode = "k"})

--- Suspends until every other task is blocked and nothing is ready (Go's
-- synctest.Wait). The waiter keeps the loop busy meanwhile, so a virtual
-- clock never jumps before it returns.
function M.wait_idle()
    local loop = lasio.get_running_loop()
    idle_waiters[loop] = (idle_waiters[loop] or 0) + 1
    local _ <close> = setmetatable({}, {__close = function()
        idle_waiters[loop] = idle_waiters[loop] - 1
    end})
    -- two turns in a row with only waiters ready: timers due now were
    -- collected at the turn between them
    local quiet = 0
    while quiet < 2 do
        lasio.sleep(0)
        if internal.ready_count() <= idle_waiters[loop] - 1 then
            quiet = quiet + 1
        else
            quiet = 0
        end
    end
end

--- sleep(dt) then wait_idle().
function M.sleep(dt)
    lasio.sleep(dt)
    M.wait_idle()
end

--- buggify -------------------------------------------------------------

--- A seeded coin flip that is true with probability p (default 0.25) in
-- virtual time, and always false in real time (FoundationDB's BUGGIFY).
function M.buggify(p)
    if p == nil then p = 0.25 end
    if type(p) ~= "number" or not (p >= 0 and p <= 1) then
        error("lasio.testing.buggify: p must be a number from 0 to 1, got "
            .. tostring(p), 2)
    end
    local x = internal.vclock_random()
    return x ~= nil and x < p
end

--- pipes ---------------------------------------------------------------
-- A pipe is two endpoints, each a reader and a writer with the methods of
-- lasio.StreamReader / StreamWriter. Bytes written at time t arrive at
-- max(t, when the link is free) + size / bandwidth + latency, computed in
-- integer ns; arrivals keep their order. A blocked link (partition, hold)
-- keeps what arrives until it is unblocked.

local NS = 1000000000

local function check_link_opts(what, o)
    if o == nil then return 0, nil end
    if type(o) ~= "table" then
        error(what .. ": opts must be a table or nil, got " .. type(o), 3)
    end
    local lat, bw = o.latency or 0, o.bandwidth
    if type(lat) ~= "number" or not (lat >= 0 and lat <= 1e6) then
        error(what .. ": latency must be a number of seconds from 0 to 1e6, got "
            .. tostring(o.latency), 3)
    end
    if bw ~= nil and (type(bw) ~= "number" or not (bw > 0 and bw < math.huge)) then
        error(what .. ": bandwidth must be a number of bytes per second > 0, got "
            .. tostring(bw), 3)
    end
    return math.floor(lat * NS + 0.5), bw
end

local Reader, Writer = {}, {}
Reader.__index, Writer.__index = Reader, Writer
Reader.__name, Writer.__name = "lasio.testing.PipeReader", "lasio.testing.PipeWriter"

local function closed_error(op)
    return lasio.OSError and lasio.OSError(op .. ": the stream is closed",
        {code = "EBADF", op = op}) or (op .. ": the stream is closed")
end

-- One direction: a writer's bytes travel to a reader.
local function new_link(lat_ns, bw, blocked)
    return {lat = lat_ns, bw = bw, free_at = 0, last = 0, held = {},
            blocked = blocked or function() return false end}
end

local function wake(rd)
    local w = rd.waiter
    if w then
        rd.waiter = nil
        if not w:done() then w:set_result(true) end
    end
end

local function deliver(rd, data)
    if data == nil then
        rd.eof = true
    else
        rd.buf = rd.buf .. data
    end
    wake(rd)
end

-- Moves what a link held while blocked, if it is not blocked now.
local function flush_held(link)
    if link.blocked() then return end
    local held = link.held
    link.held = {}
    for _, item in ipairs(held) do deliver(link.reader, item[1]) end
end

-- Sends data (nil: EOF) over link at the loop's time.
local function send(link, data)
    local loop = lasio.get_running_loop()
    local now = internal.now_ns()
    local start = math.max(now, link.free_at)
    local tx = 0
    if link.bw and data then tx = math.ceil(#data * NS / link.bw) end
    link.free_at = start + tx
    local at = math.max(start + tx + link.lat, link.last)
    link.last = at
    local function arrive()
        if link.blocked() then
            link.held[#link.held + 1] = {data}
        else
            flush_held(link)
            deliver(link.reader, data)
        end
    end
    if at <= now then
        loop:call_soon(arrive)
    else
        loop:call_later((at - now) / NS, arrive)
    end
end

local function new_reader(name)
    return setmetatable({buf = "", eof = false, name = name, timeout = nil}, Reader)
end

-- Waits until the reader's buffer changes (data or EOF).
local function wait_data(rd, op)
    if rd.closed then error(closed_error(op), 3) end
    if rd.waiter then
        error(op .. ": another task is already reading this stream (read already in progress)", 3)
    end
    local f = lasio.Future()
    rd.waiter = f
    local ok, e
    if rd.timeout then
        ok, e = pcall(lasio.wait_for, f, rd.timeout)
    else
        ok, e = pcall(f.await, f)
    end
    if rd.waiter == f then rd.waiter = nil end
    if not ok then
        if lasio.TimeoutError and getmetatable(e) == lasio.TimeoutError then
            error(lasio.TimeoutError(op .. ": timed out"), 3)
        end
        error(e, 0)
    end
    if rd.closed then error(closed_error(op), 3) end
end

function Reader:read(n)
    if n == nil then n = -1 end
    if n < 0 then
        while not self.eof do wait_data(self, "read") end
        local s = self.buf
        self.buf = ""
        return s
    end
    if n == 0 then return "" end
    while self.buf == "" and not self.eof do wait_data(self, "read") end
    local s = self.buf:sub(1, n)
    self.buf = self.buf:sub(n + 1)
    return s
end

function Reader:readexactly(n)
    while #self.buf < n and not self.eof do wait_data(self, "readexactly") end
    if #self.buf < n then
        local partial = self.buf
        self.buf = ""
        error(lasio.IncompleteReadError(("%d bytes read on a total of %d expected bytes")
            :format(#partial, n), {partial = partial, expected = n}), 2)
    end
    local s = self.buf:sub(1, n)
    self.buf = self.buf:sub(n + 1)
    return s
end

function Reader:readuntil(sep)
    sep = sep or "\n"
    while true do
        local i = self.buf:find(sep, 1, true)
        if i then
            local s = self.buf:sub(1, i + #sep - 1)
            self.buf = self.buf:sub(i + #sep)
            return s
        end
        if self.eof then
            local partial = self.buf
            self.buf = ""
            error(lasio.IncompleteReadError(("%d bytes read on a total of undefined expected bytes")
                :format(#partial), {partial = partial}), 2)
        end
        wait_data(self, "readuntil")
    end
end

function Reader:readline()
    local ok, line = pcall(self.readuntil, self, "\n")
    if ok then return line end
    if type(line) == "table" and line.partial then return line.partial end
    error(line, 0)
end

function Reader:at_eof() return self.eof and self.buf == "" end
function Reader:settimeout(s) self.timeout = s end
function Reader:gettimeout() return self.timeout end
function Reader:close()
    self.closed = true
    wake(self)
end
function Reader:get_extra_info(name, default)
    if name == "peername" or name == "sockname" then return self.name end
    return default
end

function Writer:write(data)
    if type(data) ~= "string" then
        error("write: data must be a string, got " .. type(data), 2)
    end
    if self.closing then error(closed_error("write"), 2) end
    if #data > 0 then send(self.link, data) end
end
function Writer:writelines(t) for _, s in ipairs(t) do self:write(s) end end
-- A pipe buffers without bound (no flow control): drain never waits.
function Writer.drain(_) end
function Writer.can_write_eof(_) return true end
function Writer:write_eof()
    if self.eof_sent then return end
    self.eof_sent = true
    send(self.link, nil)
end
function Writer:close()
    if self.closing then return end
    self.closing = true
    self:write_eof()
end
function Writer:is_closing() return self.closing == true end
function Writer.wait_closed(_) end
function Writer:get_extra_info(name, default)
    if name == "peername" or name == "sockname" then return self.name end
    return default
end
Writer.__close = Writer.close
Reader.__close = Reader.close

-- Two endpoints: a's writer feeds b's reader and back.
local function new_pipe(lat, bw, name_a, name_b, blocked)
    local ra, rb = new_reader(name_b), new_reader(name_a)
    local ab, ba = new_link(lat, bw, blocked), new_link(lat, bw, blocked)
    ab.reader, ba.reader = rb, ra
    local wa = setmetatable({link = ab, name = name_b}, Writer)
    local wb = setmetatable({link = ba, name = name_a}, Writer)
    return ra, wa, rb, wb, ab, ba
end

--- lasio.testing.pipe([{latency = s, bandwidth = bytes_per_s}]) →
-- reader_a, writer_a, reader_b, writer_b: what writer_a writes, reader_b
-- reads, and back.
function M.pipe(opts)
    local lat, bw = check_link_opts("lasio.testing.pipe", opts)
    local ra, wa, rb, wb = new_pipe(lat, bw, "a", "b")
    return ra, wa, rb, wb
end

--- The in-process network ----------------------------------------------

local listeners = {}     -- name -> {handler, opts}
local partitions = {}    -- "a\0b" -> true
local held_hosts = {}    -- name -> true
local links = setmetatable({}, {__mode = "k"}) -- every network link

local function pair_key(a, b)
    if a > b then a, b = b, a end
    return a .. "\0" .. b
end

local function flush_all()
    for link in pairs(links) do flush_held(link) end
end

--- listen(name, handler [, {latency, bandwidth}]): connections to name
-- run handler(reader, writer) in a task of their own. Returns a listener
-- with close().
function M.listen(name, handler, opts)
    if type(name) ~= "string" or name == "" then
        error("lasio.testing.listen: name must be a non-empty string, got " .. tostring(name), 2)
    end
    if type(handler) ~= "function" then
        error("lasio.testing.listen: handler must be a function, got " .. type(handler), 2)
    end
    check_link_opts("lasio.testing.listen", opts)
    if listeners[name] then
        error("lasio.testing.listen: '" .. name .. "' is already listening", 2)
    end
    local l = {name = name, handler = handler, opts = opts}
    listeners[name] = l
    function l.close()
        if listeners[name] == l then listeners[name] = nil end
    end
    return l
end

local function refused(name, why)
    local msg = ("connect: %s (%s)"):format(why, name)
    return lasio.OSError and lasio.OSError(msg, {code = "ECONNREFUSED", op = "connect"}) or msg
end

--- connect(name [, {from = host, latency, bandwidth}]) → reader, writer
-- connected to the listener name; from names this side's host (default
-- "client") for partition and hold.
function M.connect(name, opts)
    if type(name) ~= "string" then
        error("lasio.testing.connect: name must be a string, got " .. type(name), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("lasio.testing.connect: opts must be a table or nil, got " .. type(opts), 2)
    end
    local from = opts and opts.from or "client"
    local l = listeners[name]
    if not l then error(refused(name, "nothing listens there"), 2) end
    if partitions[pair_key(from, name)] then
        error(refused(name, "the network is partitioned"), 2)
    end
    local lat, bw = check_link_opts("lasio.testing.connect", opts or l.opts)
    local function blocked()
        return partitions[pair_key(from, name)] or held_hosts[from] or held_hosts[name] or false
    end
    local rc, wc, rs, ws, ab, ba = new_pipe(lat, bw, from, name, blocked)
    links[ab], links[ba] = true, true
    lasio.spawn(function()
        local ok, e = pcall(l.handler, rs, ws)
        ws:close()
        if not ok then error(e, 0) end
    end)
    return rc, wc
end

local function check_host(what, name)
    if type(name) ~= "string" then
        error(what .. ": host name must be a string, got " .. type(name), 3)
    end
end

--- partition(a, b): bytes between hosts a and b wait until heal(); new
-- connections between them are refused.
function M.partition(a, b)
    check_host("lasio.testing.partition", a)
    check_host("lasio.testing.partition", b)
    partitions[pair_key(a, b)] = true
end

--- heal(): ends every partition; held bytes arrive.
function M.heal()
    partitions = {}
    flush_all()
end

--- hold(name): every byte to or from host name waits until release(name).
function M.hold(name)
    check_host("lasio.testing.hold", name)
    held_hosts[name] = true
end

--- release(name): what hold(name) kept arrives.
function M.release(name)
    check_host("lasio.testing.release", name)
    held_hosts[name] = nil
    flush_all()
end

--- reset(): forgets every listener, partition and hold (between tests).
function M.reset()
    listeners, partitions, held_hosts = {}, {}, {}
end

return M
