-- lasio.websocket: the WebSocket protocol (RFC 6455) on an open stream,
-- and the handshake checks the HTTP layer calls. `wrap(reader, writer,
-- opts)` turns a StreamReader / StreamWriter pair whose HTTP upgrade is
-- done into a socket object; masking, frame building and the handshake's
-- SHA-1 are in C (src/http/websocket.c, src/http/wsdigest.c).
--
-- One reader task per socket reads every frame as it arrives: it answers
-- pings, matches pongs to ping() calls, queues whole messages for recv()
-- (at most max_queue of them and max_message bytes in all; then it stops
-- reading, so TCP pushes back),
-- and runs the close handshake whichever side starts it. recv() only
-- takes messages from that queue, so a recv that is cancelled or times out
-- loses nothing. Every frame is built in one string and sent with one
-- writer:write (which never suspends), so frames of concurrent senders and
-- the reader task's pongs never interleave.
-- SPDX-License-Identifier: MIT
local core = require "lasio.core"
local lasio = require "lasio"

local C = core.internal.websocket
local frame, unmask = C.frame, C.mask
local spack, sunpack, sbyte = string.pack, string.unpack, string.byte
local concat, utf8len = table.concat, utf8.len
local type, error, pcall, tostring, setmetatable = type, error, pcall, tostring, setmetatable

local M = {}

-- Opcodes (RFC 6455 5.2).
local OP_CONT, OP_TEXT, OP_BINARY = 0, 1, 2
local OP_CLOSE, OP_PING, OP_PONG = 8, 9, 10
local FIN = 0x80

-- Close codes (RFC 6455 7.4.1).
local NORMAL, PROTOCOL_ERROR, INVALID_DATA = 1000, 1002, 1007
local NO_STATUS, ABNORMAL, TOO_BIG, INTERNAL = 1005, 1006, 1009, 1011
M.CLOSE_CODES = {
    NORMAL = NORMAL, GOING_AWAY = 1001, PROTOCOL_ERROR = PROTOCOL_ERROR,
    UNSUPPORTED_DATA = 1003, NO_STATUS = NO_STATUS, ABNORMAL = ABNORMAL,
    INVALID_DATA = INVALID_DATA, POLICY_VIOLATION = 1008,
    MESSAGE_TOO_BIG = TOO_BIG, MANDATORY_EXTENSION = 1010,
    INTERNAL_ERROR = INTERNAL, SERVICE_RESTART = 1012, TRY_AGAIN_LATER = 1013,
    BAD_GATEWAY = 1014,
}

-- May this code travel in a close frame? 1000-1003 and 1007-1014 are
-- defined by the RFC and IANA's registry, 3000-4999 are for libraries and
-- applications; 1004-1006 and 1015 must never be sent.
local function valid_close_code(code)
    return (code >= 1000 and code <= 1003) or (code >= 1007 and code <= 1014)
        or (code >= 3000 and code <= 4999)
end
M.valid_close_code = valid_close_code

-- {====== Errors ======

local function is_cancel(e) return lasio.CancelledError:is(e) end

-- A failure of the connection, raised by recv() (and send, ping) once the
-- socket failed: a lasio.Error with the close code and reason.
local function failure(code, reason, cause)
    return lasio.Error(("websocket: %s (close code %d)"):format(reason, code),
        { code = code, reason = reason, cause = cause })
end

-- What the reader raises inside to fail the connection with `code`.
local Fail = {}
local function fail(code, reason)
    error(setmetatable({ code = code, reason = reason }, Fail), 0)
end

-- Runs fn(...) in a timeout scope of `delay` seconds (nil: none): true and
-- fn's first result, or false and the error. A cancellation of the task
-- from outside is raised again, never returned.
local function within(delay, fn, ...)
    local ok, e
    if delay == nil then
        ok, e = pcall(fn, ...)
    else
        ok, e = pcall(lasio.timeout, delay, fn, ...)
    end
    if not ok and is_cancel(e) then error(e, 0) end
    return ok, e
end

-- }======

local WebSocket = { __name = "lasio.WebSocket" }
WebSocket.__index = WebSocket

-- {====== The reader task ======

-- The next frame: fin, opcode, payload (unmasked). Raises Fail for a
-- protocol violation, and the stream's errors (IncompleteReadError at
-- EOF).
local function read_frame(self, room)
    local r = self._r
    local b1, b2 = sbyte(r:readexactly(2), 1, 2)
    local fin, opcode = b1 & FIN ~= 0, b1 & 0x0f
    if b1 & 0x70 ~= 0 then
        fail(PROTOCOL_ERROR, "reserved bits set without an extension")
    end
    if opcode >= OP_CLOSE then
        if opcode > OP_PONG then fail(PROTOCOL_ERROR, "unknown opcode " .. opcode) end
        if not fin then fail(PROTOCOL_ERROR, "fragmented control frame") end
    elseif opcode > OP_BINARY then
        fail(PROTOCOL_ERROR, "unknown opcode " .. opcode)
    end
    local masked, len = b2 & 0x80 ~= 0, b2 & 0x7f
    if masked == self._client then
        fail(PROTOCOL_ERROR, self._client and "masked frame from the server"
            or "unmasked frame from the client")
    end
    if opcode >= OP_CLOSE and len > 125 then
        fail(PROTOCOL_ERROR, "control frame longer than 125 bytes")
    end
    local ext = (len == 126 and 2 or len == 127 and 8 or 0) + (masked and 4 or 0)
    local key
    if ext > 0 then
        local h = r:readexactly(ext)
        if len == 126 then
            len = sunpack(">I2", h)
        elseif len == 127 then
            if sbyte(h, 1) >= 0x80 then
                fail(PROTOCOL_ERROR, "64-bit length with its top bit set")
            end
            len = sunpack(">i8", h)
        end
        if masked then key = h:sub(-4) end
    end
    if opcode < OP_CLOSE then
        if len > room then
            fail(TOO_BIG, ("message longer than %d bytes"):format(self._max_message))
        elseif len > self._max_frame then
            fail(TOO_BIG, ("frame longer than %d bytes"):format(self._max_frame))
        end
    end
    if len == 0 then return fin, opcode, "" end
    local payload = r:readexactly(len)
    if key then payload = unmask(payload, key) end
    return fin, opcode, payload
end

-- Sends a frame now (one write, which never suspends).
local function send_frame(self, opcode, payload)
    self._w:write(frame(FIN | opcode, payload, self._client))
end

local function close_payload(code, reason)
    if code == NO_STATUS then return "" end
    return spack(">I2", code) .. reason
end

-- Sends our close frame once.
local function send_close(self, code, reason)
    if self._sent_close then return end
    self._sent_close = true
    self._state = "closing"
    -- no drain: a peer that does not read must not hold this up; the
    -- transport's close is bounded by close_timeout
    pcall(send_frame, self, OP_CLOSE, close_payload(code, reason))
    self._space:set() -- a reader task waiting for queue room discards now
end

-- Is there room in the queue for a message of n bytes? At most
-- max_queue messages and max_message bytes in all wait, so that a peer
-- pins at most about twice max_message (the queue and the message
-- waiting for room); a message alone always fits.
local function has_room(self, n)
    local count = self._qlast - self._qfirst + 1
    return count == 0 or (count < self._max_queue
        and self._qbytes + n <= self._max_message)
end

-- Queues a message for recv().
local function deliver(self, msg, kind)
    if self._sent_close then return end -- after our close: dropped
    while not has_room(self, #msg) do
        self._space:clear()
        self._space:wait()
        if self._sent_close then return end
    end
    local q = self._qlast + 1
    self._qlast = q
    self._qbytes = self._qbytes + #msg
    self._q[q] = msg
    self._qkind[q] = kind
    self._avail:set()
end

-- The bytes a sequence starting with lead byte b has (0: not a lead
-- byte), and the range of its second byte (RFC 3629 4: no overlong forms,
-- no surrogates, nothing above U+10FFFF).
local function utf8_lead(b)
    if b >= 0xC2 and b <= 0xDF then return 2, 0x80, 0xBF end
    if b == 0xE0 then return 3, 0xA0, 0xBF end
    if b == 0xED then return 3, 0x80, 0x9F end
    if b >= 0xE1 and b <= 0xEF then return 3, 0x80, 0xBF end
    if b == 0xF0 then return 4, 0x90, 0xBF end
    if b >= 0xF1 and b <= 0xF3 then return 4, 0x80, 0xBF end
    if b == 0xF4 then return 4, 0x80, 0x8F end
    return 0
end

-- Is tail the beginning of a valid sequence, cut before its end?
local function utf8_cut(tail)
    local need, lo, hi = utf8_lead(sbyte(tail, 1))
    if #tail >= need then return false end
    for i = 2, #tail do
        local c = sbyte(tail, i)
        if i == 2 and (c < lo or c > hi) then return false end
        if c < 0x80 or c > 0xBF then return false end
    end
    return true
end

-- The UTF-8 check of a text message, fragment by fragment so that an
-- invalid byte fails at once: `carry` holds the bytes of a sequence that
-- the last fragment cut (at most 3). Returns the new carry, or nil.
local function utf8_step(carry, data, last)
    local s = carry .. data
    local ok, pos = utf8len(s)
    if ok then return "" end
    if last or pos < #s - 2 then return nil end
    local tail = s:sub(pos)
    if not utf8_cut(tail) then return nil end
    return tail -- the next fragment completes it (or fails)
end

local function check_close_frame(payload)
    local n = #payload
    if n == 0 then return NO_STATUS, "" end
    if n == 1 then fail(PROTOCOL_ERROR, "close frame with a 1-byte payload") end
    local code = sunpack(">I2", payload)
    if not valid_close_code(code) then
        fail(PROTOCOL_ERROR, "invalid close code " .. code)
    end
    local reason = payload:sub(3)
    if not utf8len(reason) then fail(INVALID_DATA, "close reason is not valid UTF-8") end
    return code, reason
end

-- Resolves the pending pings up to the one this pong answers (a pong
-- answers the pings sent before it too, as in Python's websockets).
local function on_pong(self, payload)
    local pings = self._pings
    for i = 1, #pings do
        if pings[i].data == payload then
            local now = lasio.time()
            for _ = 1, i do
                local p = table.remove(pings, 1)
                if not p.fut:done() then p.fut:set_result(now - p.t0) end
            end
            return
        end
    end
end

-- Reads frames until the peer's close frame (returns its code and
-- reason); raises Fail or the stream's error.
local function read_loop(self)
    local parts, nparts, size, kind, carry = {}, 0, 0, nil, nil
    local max = self._max_message
    while true do
        local fin, op, payload = read_frame(self, max - size)
        if op == OP_PING then
            if not self._sent_close then
                send_frame(self, OP_PONG, payload)
                -- a peer that pings and does not read its pongs: stop
                -- reading until it does (TCP pushes back), rather than
                -- let the pongs pile up in our buffer
                self._w:drain()
            end
        elseif op == OP_PONG then
            on_pong(self, payload)
        elseif op == OP_CLOSE then
            return check_close_frame(payload)
        else
            if op == OP_CONT then
                if not kind then fail(PROTOCOL_ERROR, "continuation frame without a message to continue") end
            else
                if kind then fail(PROTOCOL_ERROR, "new data frame inside a fragmented message") end
                kind = op == OP_TEXT and "text" or "binary"
                carry = ""
            end
            if kind == "text" then
                carry = utf8_step(carry, payload, fin)
                if not carry then fail(INVALID_DATA, "text message is not valid UTF-8") end
            end
            nparts = nparts + 1
            parts[nparts] = payload
            size = size + #payload
            if fin then
                local msg = nparts == 1 and parts[1] or concat(parts, "", 1, nparts)
                for i = 1, nparts do parts[i] = nil end
                local k = kind
                nparts, size, kind = 0, 0, nil
                deliver(self, msg, k)
            end
        end
    end
end

local function read_to_eof(r)
    while r:read(65536) ~= "" do end -- anything after a close frame is ignored
end

-- Closes the transport after the close frames: the server at once (RFC
-- 6455 7.1.1), the client after the server's EOF or close_timeout.
-- "linger" (after failing the connection): the write side is shut down
-- first and input is read until the peer's EOF (or close_timeout), since
-- closing a socket with unread input sends a reset, which can destroy our
-- close frame before the peer reads it (the peer may still be sending the
-- message we refused).
local function close_transport(self, how)
    local w = self._w
    if how == "linger" and w:can_write_eof() and not w:is_closing() then
        pcall(w.write_eof, w)
        within(self._close_timeout, read_to_eof, self._r)
    elseif how == "wait_eof" then
        within(self._close_timeout, read_to_eof, self._r)
    end
    w:close()
    within(self._close_timeout, w.wait_closed, w) -- a timeout aborts
end

-- The end of the reader task: the outcome goes to every waiter.
local function finish(self, code, reason, err)
    self.close_code, self.close_reason = code, reason or ""
    self._error = err
    self._state = "closed"
    self.closed = true
    self._avail:set()
    local pings = self._pings
    self._pings = {}
    for i = 1, #pings do
        local fut = pings[i].fut
        if not fut:done() then
            fut:set_exception(err or failure(code, "the connection closed before the pong"))
        end
    end
    local ka = self._keepalive
    if ka and ka ~= lasio.current_task() then ka:cancel() end
end

local function run(self)
    local ok, code, reason = pcall(read_loop, self)
    if ok then
        -- the peer's close frame: answered with ours (the same code) unless
        -- it answers ours
        send_close(self, code, reason)
        finish(self, code, reason, nil)
        close_transport(self, self._client and "wait_eof" or "now")
    elseif getmetatable(code) == Fail then
        local e = code
        send_close(self, e.code, e.reason)
        finish(self, e.code, e.reason, failure(e.code, e.reason))
        close_transport(self, "linger")
    elseif is_cancel(code) then
        finish(self, ABNORMAL, "", failure(ABNORMAL, "the reader task was cancelled"))
        self._w:close()
        self._done:set()
        error(code, 0)
    else
        -- EOF, a reset, or our close() giving up on the peer
        local e = code
        local why = lasio.IncompleteReadError:is(e) and "connection closed without a close frame"
            or ("connection lost (%s)"):format(tostring(e))
        local lf = self._local_failure
        if lf then
            finish(self, lf.code, lf.reason, failure(lf.code, lf.reason))
        elseif self._sent_close and self._gave_up then
            finish(self, ABNORMAL, "", nil) -- close() ended it; recv gives nil, 1006
        else
            finish(self, ABNORMAL, "", failure(ABNORMAL, why, e))
        end
        self._w:close()
    end
    self._done:set()
end

-- }======

-- {====== Public methods ======

local function check_self(self, what)
    if getmetatable(self) ~= WebSocket then
        error(("websocket %s: called without a WebSocket (use ws:%s)"):format(what, what), 3)
    end
end

-- The error for an operation on a socket that is closing or closed.
local function not_open(self, what)
    if self._error then
        local msg = self._error.message:gsub("^websocket: ", "")
        error(lasio.Error("websocket " .. what .. ": " .. msg,
            { code = self._error.code, reason = self._error.reason }), 3)
    end
    error(lasio.Error(("websocket %s: the connection is %s"):format(what, self._state),
        { code = self.close_code }), 3)
end

-- ws:send(data [, kind]): kind "text" or "binary"; without it, "text" when
-- data is valid UTF-8.
function WebSocket:send(data, kind)
    check_self(self, "send")
    if type(data) ~= "string" then
        error("websocket send: data must be a string, got " .. type(data), 2)
    end
    local op
    if kind == nil then
        op = utf8len(data) and OP_TEXT or OP_BINARY
    elseif kind == "text" then
        if not utf8len(data) then
            error("websocket send: a text message must be valid UTF-8 (send it as \"binary\")", 2)
        end
        op = OP_TEXT
    elseif kind == "binary" then
        op = OP_BINARY
    else
        error(("websocket send: kind must be \"text\" or \"binary\", got %s"):format(tostring(kind)), 2)
    end
    if self._state ~= "open" then not_open(self, "send") end
    send_frame(self, op, data)
    self._w:drain()
end

-- ws:recv() -> message, kind; after the close handshake nil, code,
-- reason; raises the failure of a failed connection.
function WebSocket:recv()
    check_self(self, "recv")
    if self._receiving then
        error("websocket recv: another task is already receiving on this socket (recv already in progress)", 2)
    end
    while true do
        local q = self._qfirst
        if q <= self._qlast then
            local msg, kind = self._q[q], self._qkind[q]
            self._q[q], self._qkind[q] = nil, nil
            self._qfirst = q + 1
            self._qbytes = self._qbytes - #msg
            if q == self._qlast then
                self._qfirst, self._qlast = 1, 0
                if not self.closed then self._avail:clear() end
            end
            self._space:set()
            return msg, kind
        end
        if self.closed then
            if self._error then error(self._error, 2) end
            return nil, self.close_code, self.close_reason
        end
        self._receiving = true
        local ok, e = pcall(self._avail.wait, self._avail)
        self._receiving = false
        if not ok then error(e, 0) end
    end
end

-- ws:ping([data [, timeout]]) -> round-trip time in seconds, once the
-- matching pong arrived. data: at most 125 bytes (default 4 random ones).
function WebSocket:ping(data, timeout)
    check_self(self, "ping")
    if data == nil then
        data = C.random(4)
    elseif type(data) ~= "string" then
        error("websocket ping: data must be a string or nil, got " .. type(data), 2)
    elseif #data > 125 then
        error("websocket ping: data longer than 125 bytes", 2)
    end
    if timeout ~= nil and type(timeout) ~= "number" then
        error("websocket ping: timeout must be a number or nil, got " .. type(timeout), 2)
    end
    if self._state ~= "open" then not_open(self, "ping") end
    for _, p in ipairs(self._pings) do
        if p.data == data then
            error("websocket ping: a ping with this payload is already waiting for its pong", 2)
        end
    end
    local entry = { data = data, fut = lasio.Future(), t0 = lasio.time() }
    self._pings[#self._pings + 1] = entry
    send_frame(self, OP_PING, data)
    local ok, e = pcall(function()
        self._w:drain()
        return lasio.wait_for(entry.fut, timeout)
    end)
    if not ok then
        for i, p in ipairs(self._pings) do
            if p == entry then table.remove(self._pings, i) break end
        end
        if lasio.TimeoutError:is(e) then
            error(lasio.TimeoutError("websocket ping: timed out"), 2)
        end
        error(e, 0)
    end
    return e
end

-- ws:close([code [, reason]]): the close handshake, then the transport is
-- closed; waits for the end (at most close_timeout). Idempotent.
function WebSocket:close(code, reason)
    check_self(self, "close")
    if code == nil then
        code = NORMAL
        if reason ~= nil then error("websocket close: a reason needs a code", 2) end
    elseif math.type(code) ~= "integer" or not valid_close_code(code) then
        error(("websocket close: invalid close code %s (1000-1003, 1007-1014 or 3000-4999)")
            :format(tostring(code)), 2)
    end
    reason = reason or ""
    if type(reason) ~= "string" then
        error("websocket close: reason must be a string, got " .. type(reason), 2)
    end
    if #reason > 123 then error("websocket close: reason longer than 123 bytes", 2) end
    if not utf8len(reason) then error("websocket close: reason is not valid UTF-8", 2) end
    if self._state == "open" then send_close(self, code, reason) end
    if self._done:is_set() then return end
    local ok = within(self._close_timeout, self._done.wait, self._done)
    if not ok then
        -- the peer never answered: the transport goes now
        self._gave_up = true
        self._w:close()
        self._done:wait()
    end
end

-- `<close>`: a normal close; the error that leaves the scope (the second
-- argument) is not a close code, and goes on as it is.
function WebSocket:__close()
    return self:close()
end

function WebSocket:__tostring()
    if self.closed then
        return ("lasio.WebSocket<%s closed code=%d>"):format(self._client and "client" or "server",
            self.close_code)
    end
    return ("lasio.WebSocket<%s %s>"):format(self._client and "client" or "server", self._state)
end

-- }======

-- {====== wrap ======

local DEFAULTS = {
    client = false,
    max_message = 1024 * 1024, -- as Python's websockets (docs/SERVER.md)
    max_frame = false, -- nil: max_message
    max_queue = 16,
    close_timeout = 5,
    ping_interval = false,
    ping_timeout = false,
}

local function check_opts(opts)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        error("websocket.wrap: opts must be a table or nil, got " .. type(opts), 3)
    end
    for k, v in pairs(opts) do
        if DEFAULTS[k] == nil then
            error(("websocket.wrap: unknown option '%s'"):format(tostring(k)), 3)
        end
        if k == "client" then
            if type(v) ~= "boolean" then error("websocket.wrap: client must be a boolean", 3) end
        elseif k == "max_message" or k == "max_frame" or k == "max_queue" then
            if math.type(v) ~= "integer" or v < 1 then
                error(("websocket.wrap: %s must be a positive integer"):format(k), 3)
            end
        elseif type(v) ~= "number" or v ~= v or v <= 0 then
            error(("websocket.wrap: %s must be a positive number"):format(k), 3)
        end
    end
    return opts
end

local function keepalive(self, interval, timeout)
    while true do
        lasio.sleep(interval)
        if self._state ~= "open" then return end
        local ok, e = pcall(self.ping, self, nil, timeout)
        if not ok then
            if is_cancel(e) then error(e, 0) end
            if lasio.TimeoutError:is(e) and self._state == "open" then
                -- RFC 6455 7.1.7: fail the connection
                self._local_failure = { code = INTERNAL, reason = "keepalive ping timeout" }
                send_close(self, INTERNAL, "keepalive ping timeout")
                self._w:close()
            end
            return
        end
    end
end

-- ws.wrap(reader, writer [, opts]) -> WebSocket
function M.wrap(reader, writer, opts)
    if reader == nil or writer == nil then
        error("websocket.wrap: needs a reader and a writer (the stream pair)", 2)
    end
    opts = check_opts(opts)
    local self = setmetatable({
        _r = reader, _w = writer,
        _client = opts.client or false,
        _max_message = opts.max_message or DEFAULTS.max_message,
        _max_queue = opts.max_queue or DEFAULTS.max_queue,
        _close_timeout = opts.close_timeout or DEFAULTS.close_timeout,
        _state = "open", _sent_close = false, _gave_up = false,
        _q = {}, _qkind = {}, _qfirst = 1, _qlast = 0, _qbytes = 0,
        _avail = lasio.Event(), _space = lasio.Event(), _done = lasio.Event(),
        _pings = {}, _receiving = false,
        closed = false, close_code = nil, close_reason = nil,
    }, WebSocket)
    self._max_frame = opts.max_frame or self._max_message
    self._space:set()
    self._reader_task = lasio.spawn(run, self)
    if opts.ping_interval then
        self._keepalive = lasio.spawn(keepalive, self, opts.ping_interval,
            opts.ping_timeout or opts.ping_interval)
    end
    return self
end

-- }======

-- {====== Handshake helpers (RFC 6455 4) ======

M.accept_key = C.accept_key
M.new_client_key = C.new_client_key

-- Does the comma-separated header value hold `token` (case-insensitive)?
local function has_token(value, token)
    if type(value) ~= "string" then return false end
    for t in value:gmatch("[^,]+") do
        if t:match("^%s*(.-)%s*$"):lower() == token then return true end
    end
    return false
end

-- A Sec-WebSocket-Key is base64 of 16 bytes: 22 characters, the last of
-- them with its 4 low bits zero, then "==".
local function valid_key(key)
    return type(key) == "string" and #key == 24
        and key:match("^[A-Za-z0-9+/]+[AQgw]==$") ~= nil
end

-- ws.check_request(method, version, headers) -> accept value, or nil,
-- status, message (and for 426 a table of headers to send).
function M.check_request(method, version, headers)
    if method ~= "GET" then
        return nil, 400, "WebSocket upgrade needs GET, not " .. tostring(method)
    end
    local v = tonumber(type(version) == "string" and version:match("^HTTP/(.*)$") or version)
    if not v or v < 1.1 then
        return nil, 400, "WebSocket upgrade needs HTTP/1.1 or later"
    end
    if not has_token(headers["upgrade"], "websocket") then
        return nil, 400, "missing 'Upgrade: websocket'"
    end
    if not has_token(headers["connection"], "upgrade") then
        return nil, 400, "missing 'Connection: upgrade'"
    end
    local key = headers["sec-websocket-key"]
    if key == nil then return nil, 400, "missing Sec-WebSocket-Key" end
    if not valid_key(key) then
        return nil, 400, "invalid Sec-WebSocket-Key (must be base64 of 16 bytes)"
    end
    local ver = headers["sec-websocket-version"]
    if ver == nil then return nil, 400, "missing Sec-WebSocket-Version" end
    if ver ~= "13" then
        return nil, 426, "unsupported Sec-WebSocket-Version " .. tostring(ver) .. " (13 is)",
            { ["sec-websocket-version"] = "13" }
    end
    return C.accept_key(key)
end

-- ws.check_response(status, headers, key) -> true, or nil, message
function M.check_response(status, headers, key)
    if status ~= 101 then
        return nil, ("WebSocket upgrade refused: status %s (101 expected)"):format(tostring(status))
    end
    if not has_token(headers["upgrade"], "websocket") then
        return nil, "WebSocket upgrade response lacks 'Upgrade: websocket'"
    end
    if not has_token(headers["connection"], "upgrade") then
        return nil, "WebSocket upgrade response lacks 'Connection: upgrade'"
    end
    local accept = headers["sec-websocket-accept"]
    if accept == nil then return nil, "WebSocket upgrade response lacks Sec-WebSocket-Accept" end
    if accept ~= C.accept_key(key) then
        return nil, "WebSocket upgrade response has a wrong Sec-WebSocket-Accept"
    end
    return true
end

-- }======

return M
