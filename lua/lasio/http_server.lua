-- lasio.http_server: lasio.http.serve (docs/API.md, HTTP/1.1).
-- Each connection runs in the task lasio.start_server gives it: it reads
-- one request head at a time with the llhttp parser (src/http/httpparse.c)
-- and runs the handler in that same task (no task per request). A second
-- task per connection waits for the client to go away and then cancels the
-- connection's task if a handler runs (L6). Requests on one connection are
-- handled in turn, so pipelined responses leave in request order. The
-- request and the response are C objects (src/http/httpreq.c, httpres.c):
-- a response's head and body leave in one write. The loop over a
-- connection's requests is C too (src/http/httpconn.c: the handler runs
-- under lua_pcallk there); it comes back here for what ends it (a
-- refusal, a failed handler, an upgrade, a bad head), so that each rare
-- path has one place, in this file.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local core = require "lasio.core"
local body_reader = require "lasio.http_body"
local body_spool = require "lasio.http_spool"

local internal = core.internal
local http_parser, http_send, http_send_chunk = internal.http_parser,
    internal.http_send, internal.http_send_chunk
local spawn, now = lasio.spawn, core.time
local HTTPError, CancelledError = lasio.HTTPError, lasio.CancelledError
local TimeoutError = lasio.TimeoutError
local rawget = rawget

local M = {}

-- docs/RELIABILITY.md, "Default limits".
local defaults = {
    max_request_line = 8192,   -- 414
    max_header_line = 8192,    -- 431
    max_header_size = 16384,   -- 431 (the whole head)
    max_headers = 100,         -- 431
    max_body = 1024 * 1024,    -- 413
    body_buffer_size = 16384,  -- req:body() past this: a temporary file
    headers_timeout = 60,      -- 408: the whole head, from its first byte
    request_timeout = 300,     -- the whole request (head and body)
    body_timeout = 60,         -- inactivity while reading the body
    send_timeout = 60,         -- a client that does not read (L4)
    keepalive_timeout = 5,     -- idle between requests
    keepalive_requests = 1000,
    keepalive_lifetime = 3600,
    max_connections = 1024,    -- a cap always exists (L5)
    shutdown_timeout = 10,     -- grace period of close() for requests
    lingering_timeout = 5,     -- draining input after a refusal (0: none)
    lingering_bytes = 4 * 1024 * 1024, -- at most this much is drained
}
local known = {ssl = true, backlog = true, reuse_port = true,
    reuse_address = true, family = true, ssl_handshake_timeout = true}
for k in pairs(defaults) do known[k] = true end

-- Runs f(...) as I/O with the client: its error (a timeout, a reset,
-- bytes that are not HTTP) is the client's, remembered so that a handler
-- failing with it is answered (408, 413 ...) or cut, not reported.
local function client_io(conn, f, ...)
    local ok, a = pcall(f, ...)
    if ok then return a end
    conn.client_error = a
    error(a, 0)
end

-- {====== Responses ======
-- The response is a C object (src/http/httpres.c): its status, headers
-- and finish are there. Streaming is here, since it waits for the client;
-- the head and the framing are still decided in C (_begin_write,
-- _end_stream).

local Response = internal.http_response_methods
local http_serve = internal.http_serve
local http_conn_state = internal.http_conn_state

-- res:write(chunk): streams part of the body (chunked when no
-- Content-Length was set); waits while the client is slow to read.
function Response:write(chunk)
    local send, chunked = self:_begin_write(chunk)
    if not send then return end
    local conn = self._conn
    if chunked then
        client_io(conn, http_send_chunk, conn.writer, chunk)
    else
        client_io(conn, conn.writer.write, conn.writer, chunk)
    end
    client_io(conn, conn.writer.drain, conn.writer)
end

-- res:finish([body]) once the head was sent by write() (src/http/httpres.c
-- calls this): the rest of the body, then the end of the stream.
function Response:_finish_stream(body)
    if body and body ~= "" then self:write(body) end
    local how, sent, length = self:_end_stream()
    if how == "chunked" then
        local conn = self._conn
        client_io(conn, http_send_chunk, conn.writer, "")
    elseif how == "short" then
        error("res:finish: " .. sent .. " bytes sent of a Content-Length of "
            .. length, 3)
    end
end

-- ====== }

-- {====== Requests ======

-- The request is a C object (src/http/httpreq.c) holding its own head:
-- method, path, query and the headers table are made when first read.
-- Its methods are these.
local Request = internal.http_request_methods

-- The request's body deadline: the inactivity limit, within what is left
-- of the whole-request deadline.
local function body_timeout(req)
    local srv = req._conn.server
    local left = req._start + srv.request_timeout - now()
    if left < 0 then left = 0 end
    return left < srv.body_timeout and left or srv.body_timeout
end

-- Before the body is read: a declared body over the route's limit
-- (req:set_max_body) is 413 at once, before a 100 Continue invites it
-- (the server's own max_body was checked with the head).
local function continue(req)
    local limit, length = req._max_body, req.content_length
    if limit and limit >= 0 and length and length > limit then
        local e = HTTPError("request body too large", {status = 413,
            code = "LIMIT"})
        req._conn.client_error = e
        error(e, 0)
    end
    if req._expect and not req._continued then
        req._continued = true
        req._conn.writer:write("HTTP/1.1 100 Continue\r\n\r\n")
    end
end

-- req:body(): the whole body (bounded by max_body: HTTPError 413 beyond;
-- past body_buffer_size it waits in a temporary file, lasio.http_spool).
function Request:body()
    local b = self._body
    if b then return b end
    continue(self)
    local conn = self._conn
    b = body_spool.read(conn.parser, conn.reader, function()
        return body_timeout(self)
    end, self.content_length, conn.server.body_buffer_size,
        function(e) conn.client_error = e end)
    self._body = b
    return b
end

-- req:reader(): the body as it arrives: r:read() returns the next part,
-- nil at the end.
function Request:reader()
    continue(self)
    local conn = self._conn
    return body_reader.new(conn.parser, conn.reader, function()
        return body_timeout(self)
    end, nil, function(e) conn.client_error = e end)
end

-- req:set_max_body(n): this request may have a body of up to n bytes (a
-- route's override of the server's max_body).
function Request:set_max_body(n)
    if math.type(n) ~= "integer" then
        error("req:set_max_body: n must be an integer", 2)
    end
    -- the parser's limit is back to the server's for the next request
    self._conn.parser:set_max_body(n)
    self._max_body = n
end

function Request:get_extra_info(name, default)
    return self._conn.writer:get_extra_info(name, default)
end

-- req:upgrade_websocket([opts]): answers the WebSocket handshake and
-- returns the WebSocket; the connection leaves HTTP.
function Request:upgrade_websocket(opts)
    local ws = require "lasio.websocket"
    local res = self._res
    if res.headers_sent then
        error("req:upgrade_websocket: a response was already started", 2)
    end
    local accept, status, msg = ws.check_request(self.method, self.version,
        self.headers)
    if not accept then
        res._keep = false
        if status == 426 then
            res:set_header("Sec-WebSocket-Version", "13")
        end
        res:set_status(status)
        res:finish(msg)
        error(HTTPError("websocket upgrade refused: " .. msg), 2)
    end
    local conn = self._conn
    local h = {"Upgrade", "websocket", "Connection", "Upgrade",
        "Sec-WebSocket-Accept", accept}
    local o, protocols = {client = false}, nil
    for k, v in pairs(opts or {}) do
        if k == "protocols" then protocols = v else o[k] = v end
    end
    -- subprotocol: the first of ours that the client offered (RFC 6455
    -- 4.2.2); none when there is no common one
    local chosen
    if protocols ~= nil then
        if type(protocols) ~= "table" then
            error("req:upgrade_websocket: protocols must be a list of "
                .. "strings", 2)
        end
        local offered = {}
        local header = rawget(self.headers, "sec-websocket-protocol") or ""
        for p in header:gmatch("[^,%s]+") do offered[p] = true end
        for _, p in ipairs(protocols) do
            if offered[p] then
                chosen = p
                break
            end
        end
        if chosen then
            h[#h + 1], h[#h + 2] = "Sec-WebSocket-Protocol", chosen
        end
    end
    local extra = res._headers
    if extra then
        for i = 1, #extra do h[#h + 1] = extra[i] end
    end
    http_send(conn.writer, 101, h, nil, false, false, nil)
    res.headers_sent, res.finished, res._keep = true, true, false
    -- the connection leaves HTTP: a drop no longer cancels the handler
    -- (the WebSocket reports it itself, with 1006)
    conn.state.upgraded = true
    local sock = ws.wrap(conn.reader, conn.writer, o)
    sock.protocol = chosen
    return sock
end

-- ====== }

-- {====== Connections ======

-- An error answer, and the connection closes.
local function answer_error(conn, status, msg)
    conn.refused = true -- the client may still be sending: linger
    local body = msg .. "\n"
    pcall(http_send, conn.writer, status,
        {"Content-Type", "text/plain; charset=utf-8"}, #body, false, true,
        body)
end

local function report(conn, message, err, task)
    local loop = lasio.get_running_loop()
    loop:call_exception_handler{message = message, exception = err,
        task = task, transport = conn.writer}
end

-- After an upgrade, the end of the WebSocket's connection raised in the
-- handler (a lasio.Error with a close code: lost with 1006, failed, or
-- closed) is the client's doing, as a client going away is: no report.
local function websocket_end(conn, err)
    return conn.state.upgraded and lasio.Error:is(err)
        and math.type(err.code) == "integer" and err.code >= 1000
        and err.code <= 4999
end

-- The handler (or the finish left to the server) failed with err: the
-- answer, or the end of the connection, and the report of a bug.
local function handler_failed(conn, err, res)
    local client = rawequal(err, conn.client_error)
    res._keep = false
    local state = conn.state
    if CancelledError:is(err) or state.gone then
        -- the client went away, or the loop is shutting down: nothing
        -- to answer, nothing to report (asyncio reports no
        -- cancellation either)
        state.abort = true
    elseif not res.headers_sent then
        res.headers_sent, res.finished = true, true
        if HTTPError:is(err) and err.status then
            answer_error(conn, err.status, err.message or "error")
        elseif client and TimeoutError:is(err) then
            answer_error(conn, 408, "timed out reading the request body")
        elseif client then
            state.abort = true -- reset or closed: no one to answer
        else
            report(conn, "Unhandled error in HTTP handler", err,
                lasio.current_task())
            answer_error(conn, 500, "Internal Server Error")
        end
    else
        state.abort = true -- half a response was sent: cut it
        if not (client or HTTPError:is(err) or CancelledError:is(err)
            or websocket_end(conn, err)) then
            report(conn, "Unhandled error in HTTP handler", err,
                lasio.current_task())
        end
    end
end

-- The connection's watcher task: waits until the client goes away (EOF, a
-- reset) and then cancels the connection's task if a handler runs in it
-- (L6). Once the handler upgraded the connection, a drop is the
-- WebSocket's to report: the watcher only ends then, which tells the
-- connection's task that the WebSocket's connection is over. Woken by the
-- connection's end, it returns.
local function watch(conn)
    local parser, reader = conn.parser, conn.reader
    while not conn.closed do
        local ok, gone = pcall(parser.wait_hangup, parser, reader)
        if not ok then return end -- cancelled: the loop's end
        if gone then
            local state = conn.state
            if state.handling and not state.upgraded and not conn.closed then
                state.gone = true
                conn.task:cancel("client disconnected")
            end
            return
        end
    end
end

-- Reads what is left of a body nobody read, so that the next request
-- can be parsed; false when the connection must close instead.
local function skip_body(conn, req)
    local parser = conn.parser
    if parser:state() ~= "body" then return true end
    if req._expect and not req._continued then return false end
    local ok = pcall(function()
        while parser:read_body(conn.reader, body_timeout(req)) do end
    end)
    return ok
end

-- Lingering close (RFC 9112 9.6, nginx's lingering_close): closing a
-- socket with unread input sends a reset, which can destroy the answer
-- before the client reads it (a refused upload the client is still
-- sending). So after such an answer the write side is shut down (the
-- answer goes out first, then FIN) and the input is read and dropped
-- until the client's EOF, at most lingering_bytes and lingering_timeout
-- seconds; then the connection closes.
local function linger(srv, conn)
    local reader, writer = conn.reader, conn.writer
    local left = srv.lingering_bytes
    if srv.lingering_timeout <= 0 or left <= 0 or writer:is_closing()
        or not writer:can_write_eof() then
        return
    end
    if not pcall(writer.write_eof, writer) then return end
    local ok, e = pcall(lasio.timeout, srv.lingering_timeout, function()
        while left > 0 do
            local data = reader:read(left < 65536 and left or 65536)
            if data == "" then return end
            left = left - #data
        end
    end)
    if not ok and CancelledError:is(e) then error(e, 0) end
end

-- Does the connection close with input the client may still be sending?
local function unread_input(conn)
    local state = conn.state
    if state.abort or state.gone or state.upgraded then return false end
    return conn.refused or conn.parser:state() == "body"
        or conn.reader:buffered() > 0
end

local function serve_connection(srv, reader, writer)
    -- conn.state: what the request loop in C and this file both read and
    -- set (busy, handling, upgraded, gone, abort, closing)
    local conn = {server = srv, reader = reader, writer = writer,
        parser = http_parser("request", srv.parser_opts),
        state = http_conn_state(), task = lasio.current_task(),
        closed = false}
    local state = conn.state
    state.closing = srv.closing
    conn.watcher = spawn(watch, conn)
    srv.conns[conn] = true
    writer:settimeout(srv.send_timeout)
    local parser = conn.parser
    local ok, err = pcall(function()
        -- the requests, one after the other (src/http/httpconn.c), until
        -- one ends the loop
        local got, what, a, b, c = pcall(http_serve, parser, reader, writer,
            conn, srv.handler, state, srv.headers_timeout,
            srv.keepalive_timeout, srv.keepalive_requests,
            now() + srv.keepalive_lifetime, srv.max_body, skip_body)
        if not got then -- reading a head failed
            if HTTPError:is(what) and not what.silent then
                answer_error(conn, what.status, what.message)
            end
            return
        end
        if what == "refuse" then return answer_error(conn, a, b) end
        if what == "failed" then handler_failed(conn, a, c) end
        if state.upgraded then
            -- the WebSocket owns the stream now: wait for its end, which
            -- ends the watcher
            local watcher = conn.watcher
            local done, e = pcall(lasio.wait, {watcher})
            if not done then
                watcher:cancel() -- the connection's task was cancelled
                error(e, 0)
            end
        end
    end)
    if ok and unread_input(conn) then
        state.busy = false -- close() ends the drain at once
        ok, err = pcall(linger, srv, conn)
    end
    conn.closed = true
    parser:wake_hangup(reader) -- the watcher ends
    srv.conns[conn] = nil
    if srv.closing and next(srv.conns) == nil then srv:_closed() end
    if state.abort or state.gone then
        writer:abort()
    end
    if not ok and not (lasio.OSError:is(err) or CancelledError:is(err)) then
        error(err, 0)
    end
end

-- ====== }

-- {====== The server ======

local Server = {}
Server.__index = Server
Server.__name = "lasio.http.Server"

function Server:sockets() return self._server:sockets() end
function Server:is_serving() return self._server:is_serving() end
function Server:get_loop() return self._server:get_loop() end
function Server:serve_forever() return self._server:serve_forever() end
function Server:wait_closed() return self._server:wait_closed() end

-- close(): stops accepting at once; idle connections close now, requests
-- in flight finish within shutdown_timeout, then every connection is cut
-- (L7). Idempotent.
function Server:close()
    if self.closing then return end
    self.closing = true
    self._server:close()
    for conn in pairs(self.conns) do
        conn.state.closing = true
        if not conn.state.busy then conn.writer:close() end
    end
    if next(self.conns) == nil then return self:_closed() end
    local srv = self._server
    self._grace = lasio.get_running_loop():call_later(self.shutdown_timeout,
        function() srv:abort_clients() end)
end

Server.__close = Server.close

-- Every connection is gone after close(): the lasio command's SIGTERM
-- no longer waits for this server.
function Server:_closed()
    if self._on_term then
        internal.shutdown_remove(self._on_term)
        self._on_term = nil
    end
end

local function check_opts(opts)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        error("lasio.http.serve: opts must be a table, not a " .. type(opts),
            3)
    end
    for k, v in pairs(opts) do
        if not known[k] then
            error("lasio.http.serve: unknown option '" .. tostring(k) .. "'",
                3)
        end
        if defaults[k] and (type(v) ~= "number" or v < 0) then
            error("lasio.http.serve: option " .. k .. " must be a number "
                .. ">= 0, not " .. tostring(v), 3)
        end
        if (k == "lingering_bytes" or k == "body_buffer_size")
            and math.type(v) ~= "integer" then
            error("lasio.http.serve: option " .. k .. " must be an "
                .. "integer >= 0, not " .. tostring(v), 3)
        end
    end
    return opts
end

function M.serve(handler, host, port, opts)
    if type(handler) ~= "function" and not (getmetatable(handler) or {}).__call
    then
        error("lasio.http.serve: handler must be a function, not a "
            .. type(handler), 2)
    end
    opts = check_opts(opts)
    local srv = setmetatable({handler = handler, conns = {},
        closing = false}, Server)
    for k, v in pairs(defaults) do
        if opts[k] == nil then srv[k] = v else srv[k] = opts[k] end
    end
    srv.parser_opts = {max_line = srv.max_request_line,
        max_field = srv.max_header_line, max_head = srv.max_header_size,
        max_headers = srv.max_headers, max_body = srv.max_body,
        requests = true}
    local sopts = {max_connections = srv.max_connections, ssl = opts.ssl,
        backlog = opts.backlog, reuse_port = opts.reuse_port,
        reuse_address = opts.reuse_address, family = opts.family,
        ssl_handshake_timeout = opts.ssl_handshake_timeout}
    srv._server = lasio.start_server(function(reader, writer)
        return serve_connection(srv, reader, writer)
    end, host, port, sopts)
    -- under the lasio command, the first SIGTERM closes the server
    -- gracefully: requests in flight get shutdown_timeout to finish
    -- before the main task is cancelled (sys/signal.c)
    srv._on_term = function() srv:close() end
    internal.shutdown_add(srv._on_term, srv.shutdown_timeout)
    return srv
end

-- ====== }

return M
