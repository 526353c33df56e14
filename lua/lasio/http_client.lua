-- lasio.http_client: lasio.http.request, lasio.http.get and
-- lasio.http.websocket (docs/API.md). Responses are parsed by llhttp
-- (src/http/httpparse.c) straight from the connection's buffer; a response
-- that breaks HTTP raises HTTPError, one cut short raises HTTPError
-- (code "EOF"), never a hang or a read past the message. Connections are
-- kept per loop and per scheme://host:port and reused while the server
-- keeps them alive; a pooled connection that turns out dead before any
-- byte of the answer came is replaced once, for idempotent methods only
-- (RFC 9110 9.2.2, RFC 9112 9.3.1).
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local core = require "lasio.core"
local body_reader = require "lasio.http_body"

local internal = core.internal
local http_parser, http_send, http_send_chunk = internal.http_parser,
    internal.http_send, internal.http_send_chunk
local check_header, now = internal.http_check_header, core.time
local HTTPError, TimeoutError, OSError = lasio.HTTPError, lasio.TimeoutError,
    lasio.OSError

local M = {}

local MAX_IDLE_PER_HOST = 16
local IDLE_LIFETIME = 30 -- seconds a pooled connection may wait for reuse
local USER_AGENT = "lasio/" .. tostring(core.VERSION)

-- RFC 9110 9.2.2: a request with these methods may be sent again when
-- its connection died before the answer.
local idempotent = {GET = true, HEAD = true, PUT = true, DELETE = true,
    OPTIONS = true, TRACE = true}

-- {====== URLs ======

local default_port = {http = 80, https = 443, ws = 80, wss = 443}

-- scheme, host, port, target ("/path?query") of an absolute URL.
local function parse_url(url, what, level)
    level = (level or 1) + 1
    if type(url) ~= "string" then
        error(what .. ": url must be a string, not a " .. type(url), level)
    end
    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    scheme = scheme and scheme:lower()
    if not scheme or not default_port[scheme] then
        error(what .. ": unsupported URL '" .. url .. "' (http://, https://, "
            .. "ws:// or wss:// expected)", level)
    end
    local authority, target = rest:match("^([^/?#]*)(.*)$")
    target = target:gsub("#.*$", "")
    if target == "" then target = "/" end
    if target:sub(1, 1) == "?" then target = "/" .. target end
    if target:find("[%s%c]") then
        error(what .. ": the URL '" .. url .. "' has spaces or control "
            .. "characters", level)
    end
    authority = authority:gsub("^.*@", "") -- no userinfo on the wire
    local host, port = authority:match("^%[([%x:.]+)%](.*)$")
    if not host then host, port = authority:match("^([^:%[%]]*)(.*)$") end
    if not host or host == "" then
        error(what .. ": no host in URL '" .. url .. "'", level)
    end
    if port ~= "" then
        port = port:match("^:(%d+)$")
        port = port and tonumber(port)
        if not port or port < 1 or port > 65535 then
            error(what .. ": bad port in URL '" .. url .. "'", level)
        end
    else
        port = default_port[scheme]
    end
    return scheme, host:lower(), port, target
end

local function host_header(scheme, host, port)
    if host:find(":", 1, true) then host = "[" .. host .. "]" end
    if port == default_port[scheme] then return host end
    return host .. ":" .. port
end

local function origin(scheme, host, port)
    return scheme .. "://" .. host_header(scheme, host, port)
end

-- RFC 3986 5.2.4: "/a/b/../c/./d" -> "/a/c/d".
local function remove_dot_segments(path)
    local out = {}
    for seg in (path .. "/"):gmatch("([^/]*)/") do
        if seg == ".." then
            if #out > 1 then out[#out] = nil end
        elseif seg ~= "." then
            out[#out + 1] = seg
        end
    end
    local last = path:match("[^/]*$")
    local s = table.concat(out, "/")
    if last == "." or last == ".." then s = s .. "/" end
    return s
end

-- The absolute URL of a Location relative to the URL that answered it.
local function resolve(base, loc, what)
    loc = loc:gsub("^%s+", ""):gsub("%s+$", "")
    if loc:match("^%a[%w+.-]*://") then return loc end
    local scheme, host, port, target = parse_url(base, what, 2)
    if loc:sub(1, 2) == "//" then return scheme .. ":" .. loc end
    local path = target:match("^[^?]*")
    if loc == "" then return origin(scheme, host, port) .. target end
    if loc:sub(1, 1) == "?" then
        return origin(scheme, host, port) .. path .. loc
    end
    local rel, rest = loc:match("^([^?#]*)(.*)$")
    if rel:sub(1, 1) ~= "/" then rel = path:match("^.*/") .. rel end
    return origin(scheme, host, port) .. remove_dot_segments(rel) .. rest
end

-- ====== }

-- {====== The pool ======

local pools = setmetatable({}, {__mode = "k"}) -- loop -> key -> list

local function pool_of(loop)
    local p = pools[loop]
    if not p then
        p = {}
        pools[loop] = p
    end
    return p
end

-- Can this idle connection carry another request? Not when the server
-- closed it, sent bytes nobody asked for, or it waited too long.
local function reusable(c)
    return now() - c.idle_since < IDLE_LIFETIME and not c.writer:is_closing()
        and not c.reader:at_eof() and c.reader:buffered() == 0
end

-- Closes the dead connections of a list.
local function sweep(list)
    for i = #list, 1, -1 do
        if not reusable(list[i]) then
            table.remove(list, i).writer:close()
        end
    end
end

-- An idle connection to key that still looks alive, or nil.
local function take_idle(key)
    local list = pool_of(lasio.get_running_loop())[key]
    if not list then return nil end
    sweep(list)
    return table.remove(list)
end

local function give_back(c)
    local pool = pool_of(lasio.get_running_loop())
    local list = pool[c.key]
    if not list then
        list = {}
        pool[c.key] = list
    end
    c.idle_since = now()
    sweep(list)
    -- bytes after the message (or the server's close) already arrived:
    -- they belong to no request of ours
    if #list >= MAX_IDLE_PER_HOST or not reusable(c) then
        c.writer:close()
        return
    end
    c.writer:settimeout(nil)
    list[#list + 1] = c
end

-- close_idle(): closes the idle connections of the running loop's pool.
function M.close_idle()
    local pool = pool_of(lasio.get_running_loop())
    for key, list in pairs(pool) do
        for _, c in ipairs(list) do c.writer:close() end
        pool[key] = nil
    end
end

-- The client context of ssl = nil or true: one, made on first use, so
-- that its connections can be pooled together.
local default_ssl

local function ssl_context_for(scheme, opts)
    if scheme ~= "https" and scheme ~= "wss" then return nil end
    if opts.ssl == nil or opts.ssl == true then
        default_ssl = default_ssl or lasio.ssl_context()
        return default_ssl
    end
    return opts.ssl
end

-- A connection verified under one context is not handed to a request
-- that asked for another: the pool key names the context.
local ssl_ids = setmetatable({}, {__mode = "k"})
local last_ssl_id = 0

local function pool_key(scheme, host, port, ctx)
    local key = origin(scheme, host, port)
    if not ctx then return key end
    local id = ssl_ids[ctx]
    if not id then
        last_ssl_id = last_ssl_id + 1
        id = last_ssl_id
        ssl_ids[ctx] = id
    end
    return key .. " ssl#" .. id
end

local function timed_out(what, doing)
    return TimeoutError(what .. ": timed out " .. doing)
end

local function connect(scheme, host, port, opts, deadline, what)
    local ctx = ssl_context_for(scheme, opts)
    local left = deadline and math.max(deadline - now(), 0) or nil
    local ok, reader, writer = pcall(lasio.open_connection, host, port, {
        ssl = ctx, server_hostname = ctx and host or nil, timeout = left})
    if not ok then
        if TimeoutError:is(reader) then
            error(timed_out(what, "connecting to "
                .. host_header(scheme, host, port)), 0)
        end
        error(reader, 0)
    end
    return {reader = reader, writer = writer,
        key = pool_key(scheme, host, port, ctx),
        parser = http_parser("response", {raw = true, max_line = 8192,
            max_field = 65536, max_head = 262144, max_headers = 1000})}
end

-- ====== }

-- {====== Responses ======

local Response = {}
Response.__index = Response
Response.__name = "lasio.http.ClientResponse"

local function left_of(res)
    if not res._deadline then return nil end
    return math.max(res._deadline - now(), 0)
end

-- The body was read to its end: the connection goes back to the pool.
local function released(res)
    local c = res._conn
    if not c then return end
    res._conn = nil
    if res.keep_alive and c.parser:state() == "done" then
        give_back(c)
    else
        c.writer:close()
    end
end

-- Runs a body read; a failure drops the connection (its parser failed
-- or it stands mid-message).
local function reading(res, f, ...)
    local ok, a = pcall(f, ...)
    if ok then return a end
    local c = res._conn
    res._conn = nil
    if c then c.writer:abort() end
    if TimeoutError:is(a) or HTTPError:is(a) and a.code == "TIMEOUT" then
        error(timed_out(res._what, "reading the response body"), 0)
    end
    error(a, 0)
end

-- res:body(): the whole body.
function Response:body()
    if self._body then return self._body end
    local c = self._conn
    if not c then
        error("res:body: the body was already read or the response closed",
            2)
    end
    local b = reading(self, c.parser.read_body, c.parser, c.reader,
        left_of(self), true)
    self._body = b
    released(self)
    return b
end

-- res:reader(): the body as it arrives (r:read() -> part or nil). A
-- response without a body (HEAD, 204, 304, Content-Length 0) gives a
-- reader already at its end, every time.
function Response:reader()
    if self._bodiless then return body_reader.empty() end
    local c = self._conn
    if not c then
        error("res:reader: the body was already read or the response "
            .. "closed", 2)
    end
    local res = self
    -- reads go through reading(): a failure drops the connection
    local parser = {read_body = function(_, stream, timeout)
        return reading(res, c.parser.read_body, c.parser, stream, timeout)
    end}
    return body_reader.new(parser, c.reader, function()
        return left_of(res)
    end, function() released(res) end)
end

-- res:close(): drops the connection of a body nobody will read.
function Response:close()
    local c = self._conn
    if c then
        self._conn = nil
        c.writer:close()
    end
end
Response.__close = Response.close

-- ====== }

-- {====== Requests ======

local known = {headers = true, body = true, timeout = true, ssl = true,
    follow_redirects = true, max_redirects = true, max_body = true}

-- opts (nil or a table) with keys of `known` only; level: the caller's
-- caller, for error().
local function check_keys(opts, known_keys, what, level)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        error(what .. ": opts must be a table, not a " .. type(opts),
            level + 1)
    end
    for k in pairs(opts) do
        if not known_keys[k] then
            error(what .. ": unknown option '" .. tostring(k) .. "'",
                level + 1)
        end
    end
    return opts
end

local function check_opts(opts, what)
    opts = check_keys(opts, known, what, 3)
    local t = opts.timeout
    if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
        error(what .. ": timeout must be a number >= 0, not "
            .. tostring(t), 3)
    end
    local b = opts.body
    if b ~= nil and type(b) ~= "string" and type(b) ~= "function" then
        error(what .. ": body must be a string or a function returning "
            .. "chunks, not a " .. type(b), 3)
    end
    if opts.headers ~= nil and type(opts.headers) ~= "table" then
        error(what .. ": headers must be a table of name = value, not a "
            .. type(opts.headers), 3)
    end
    local ssl = opts.ssl
    if ssl ~= nil and type(ssl) ~= "boolean" and not (type(ssl) == "userdata"
        and (getmetatable(ssl) or {}).__name == "lasio.SSLContext") then
        error(what .. ": ssl must be true or a lasio.ssl_context, not a "
            .. type(ssl), 3)
    end
    local f = opts.follow_redirects
    if f ~= nil and type(f) ~= "boolean" then
        error(what .. ": follow_redirects must be a boolean, not a "
            .. type(f), 3)
    end
    local m = opts.max_redirects
    if m ~= nil and (math.type(m) ~= "integer" or m < 0) then
        error(what .. ": max_redirects must be an integer >= 0, not "
            .. tostring(m), 3)
    end
    m = opts.max_body
    if m ~= nil and (math.type(m) ~= "integer" or m < 0) then
        error(what .. ": max_body must be an integer >= 0, not "
            .. tostring(m), 3)
    end
    return opts
end

-- The header list of a request: the user's (checked), then ours; and a
-- Content-Length the user gave (for a body function of known size).
local function build_headers(opts, scheme, host, port, what)
    local h, have, length = {}, {}, nil
    local user = opts.headers
    if user ~= nil then
        for name, value in pairs(user) do
            name, value = check_header(name, value, what)
            local lname = name:lower()
            if lname == "transfer-encoding" then
                error(what .. ": Transfer-Encoding is the client's (a body "
                    .. "function is sent chunked)", 4)
            elseif lname == "content-length" then
                length = math.tointeger(tonumber(value))
                if not length or length < 0
                    or not tostring(value):match("^%s*%d+%s*$") then
                    error(what .. ": Content-Length must be a number >= 0, "
                        .. "not '" .. tostring(value) .. "'", 4)
                end
                if type(opts.body) == "string" and length ~= #opts.body then
                    error(what .. ": Content-Length says " .. length
                        .. " but the body has " .. #opts.body .. " bytes", 4)
                end
            else
                h[#h + 1], h[#h + 2] = name, value
            end
            have[lname] = true
        end
    end
    if not have.host then
        h[#h + 1], h[#h + 2] = "Host", host_header(scheme, host, port)
    end
    if not have["user-agent"] then
        h[#h + 1], h[#h + 2] = "User-Agent", USER_AGENT
    end
    return h, length
end

-- Sends a body given as a function: chunked, or raw when the user gave
-- its Content-Length (then it must have exactly that many bytes).
local function send_streamed(c, body, length, what)
    local sent = 0
    while true do
        local chunk = body()
        if chunk == nil then break end
        if type(chunk) ~= "string" then
            error(what .. ": the body function returned a " .. type(chunk)
                .. ", not a string or nil", 0)
        end
        if chunk ~= "" then
            sent = sent + #chunk
            if length then
                if sent > length then
                    error(what .. ": the body function gave more than the "
                        .. "Content-Length of " .. length .. " bytes", 0)
                end
                c.writer:write(chunk)
            else
                http_send_chunk(c.writer, chunk)
            end
            c.writer:drain()
        end
    end
    if length and sent ~= length then
        error(what .. ": the body function gave " .. sent .. " bytes of a "
            .. "Content-Length of " .. length, 0)
    elseif not length then
        http_send_chunk(c.writer, "")
    end
end

-- Sends the request on c and reads the response head. Returns the head,
-- or nil and "eof" (the server closed before the first byte of an
-- answer) or "idle" (none came in time). `sent`: set to true once the
-- request has left in full.
local function exchange(c, req, deadline, progress)
    local left = deadline and math.max(deadline - now(), 0) or nil
    local body, length, chunked = req.body, req.length, false
    if type(body) == "string" then
        length = #body
    elseif type(body) == "function" then
        chunked = not length
    elseif not length and (req.method == "POST" or req.method == "PUT"
        or req.method == "PATCH") then
        length = 0
    end
    c.writer:settimeout(left) -- drain: a server that does not read
    local line = req.method .. " " .. req.target .. " HTTP/1.1"
    http_send(c.writer, line, req.headers, length, chunked, false,
        type(body) == "string" and body or nil)
    if type(body) == "function" then
        progress.streamed = true
        send_streamed(c, body, req.length, req.what)
    end
    c.writer:drain()
    c.parser:skip_body(req.method == "HEAD")
    -- a response body over max_body fails its read (HTTPError, "LIMIT")
    c.parser:set_max_body(req.max_body or -1)
    left = deadline and math.max(deadline - now(), 0) or nil
    while true do
        local head, why = c.parser:read_head(c.reader, left, left)
        if not head then return nil, why end
        -- interim answers (100 Continue, 103) come before the real one
        if head.status >= 200 or head.status == 101 then return head end
        progress.answered = true
        c.parser:read_body(c.reader, left, true)
    end
end

-- Raises the error of a failed exchange.
local function fail(what, err, why)
    if err == nil then
        if why == "idle" then error(timed_out(what, "waiting for the "
            .. "response"), 0) end
        error(HTTPError(what .. ": the server closed the connection "
            .. "without an answer"), 0)
    end
    if TimeoutError:is(err) or HTTPError:is(err) and err.code == "TIMEOUT"
    then
        error(timed_out(what, "waiting for the response"), 0)
    end
    error(err, 0)
end

local function request_once(req, opts)
    local what = req.what
    local scheme, host, port, target = parse_url(req.url, what, 3)
    if scheme == "ws" or scheme == "wss" then
        error(what .. ": use lasio.http.websocket for " .. scheme .. " URLs",
            3)
    end
    if (scheme == "https") and opts.ssl == false then
        error(what .. ": an https URL needs TLS (ssl = false was given)", 3)
    end
    local headers, length = build_headers(opts, scheme, host, port, what)
    req.target, req.headers, req.length, req.body = target, headers, length,
        opts.body
    req.max_body = opts.max_body
    local deadline = opts.timeout and now() + opts.timeout or nil
    local key = pool_key(scheme, host, port, ssl_context_for(scheme, opts))
    local c = take_idle(key)
    local reused = c ~= nil
    for attempt = 1, 2 do
        if not c then
            c, reused = connect(scheme, host, port, opts, deadline, what),
                false
        end
        local progress = {}
        local ok, head, why = pcall(exchange, c, req, deadline, progress)
        if ok and head then
            local res = setmetatable(head, Response)
            res._conn, res._deadline, res._what = c, deadline, what
            res.url = req.url
            if req.method == "HEAD" or head.status == 204
                or head.status == 304 or head.content_length == 0 then
                res._bodiless = true
                res:body() -- nothing to wait for: the connection is free
            end
            return res
        end
        c.writer:abort()
        -- a pooled connection the server had closed meanwhile: once
        -- more on a new one, when the request can be sent again (its
        -- method is idempotent and its body was not consumed) and no
        -- byte of an answer came
        local dead = ok and why == "eof" or not ok and OSError:is(head)
        if not (reused and dead and attempt == 1 and idempotent[req.method]
            and not progress.streamed and not progress.answered) then
            fail(what, ok and nil or head, why)
        end
        c = nil
    end
end

local redirect_codes = {[301] = true, [302] = true, [303] = true,
    [307] = true, [308] = true}
-- headers that do not follow a redirect to another origin
local credentials = {authorization = true, cookie = true,
    ["proxy-authorization"] = true}
-- headers that describe a body a redirect dropped
local body_headers = {["content-length"] = true, ["content-type"] = true,
    ["content-encoding"] = true, ["content-language"] = true,
    ["content-location"] = true}

local function without(headers, drop)
    local h = {}
    for k, v in pairs(headers) do
        if type(k) ~= "string" or not drop[k:lower()] then h[k] = v end
    end
    return h
end

local function copy(t)
    local o = {}
    for k, v in pairs(t) do o[k] = v end
    return o
end

-- lasio.http.request(method, url [, opts]) -> res; what names the public
-- function in errors (reached by tail calls, so level 2 is the user's code)
local function request(what, method, url, opts)
    if type(method) ~= "string" or not method:match("^[!#$%%&'*+.^_`|~%w-]+$")
    then
        error(what .. ": method must be a token string, not "
            .. tostring(method), 2)
    end
    opts = check_opts(opts, what)
    parse_url(url, what, 2)
    local max = opts.follow_redirects and (opts.max_redirects or 5) or 0
    local req = {what = what, method = method, url = url}
    for _ = 0, max do
        local res = request_once(req, opts)
        local loc = res.headers.location
        if max == 0 or not redirect_codes[res.status] or not loc then
            return res
        end
        res:close()
        local status = res.status
        local to = resolve(req.url, loc, what)
        local s1, h1, p1 = parse_url(req.url, what)
        local ok, s2, h2, p2 = pcall(parse_url, to, what)
        if not ok then
            error(HTTPError(what .. ": redirect to an unsupported URL '" .. to
                .. "'"), 2)
        end
        if opts.headers and origin(s1, h1, p1) ~= origin(s2, h2, p2) then
            opts = copy(opts)
            opts.headers = without(opts.headers, credentials)
        end
        if status == 303 and method ~= "HEAD" or (status == 301
            or status == 302) and method == "POST" then
            -- the answer is elsewhere: fetch it without the body
            method = "GET"
            opts = copy(opts)
            opts.body = nil
            if opts.headers then
                opts.headers = without(opts.headers, body_headers)
            end
        elseif type(opts.body) == "function" then
            error(HTTPError(what .. ": cannot follow a " .. status
                .. " redirect: the body function cannot be sent again"), 2)
        end
        req = {what = what, method = method, url = to}
    end
    error(HTTPError(what .. ": too many redirects (more than " .. max
        .. ")"), 2)
end

function M.request(method, url, opts)
    return request("lasio.http.request", method, url, opts)
end

function M.get(url, opts)
    return request("lasio.http.get", "GET", url, opts)
end

-- ====== }

-- {====== WebSocket client ======

local ws_known = {headers = true, timeout = true, ssl = true,
    protocols = true, max_message = true, close_timeout = true,
    ping_interval = true}

-- lasio.http.websocket(url [, opts]) -> WebSocket
function M.websocket(url, opts)
    local what = "lasio.http.websocket"
    opts = check_keys(opts, ws_known, what, 2)
    local scheme, host, port, target = parse_url(url, what, 2)
    if scheme == "http" then scheme = "ws" end
    if scheme == "https" then scheme = "wss" end
    local ws = require "lasio.websocket"
    local deadline = opts.timeout and now() + opts.timeout or nil
    local headers = build_headers(opts, scheme, host, port, what)
    local c = connect(scheme, host, port, opts, deadline, what)
    local key = ws.new_client_key()
    local function add(n, v) headers[#headers + 1], headers[#headers + 2] = n, v end
    add("Upgrade", "websocket")
    add("Connection", "Upgrade")
    add("Sec-WebSocket-Key", key)
    add("Sec-WebSocket-Version", "13")
    if opts.protocols then
        add("Sec-WebSocket-Protocol", table.concat(opts.protocols, ", "))
    end
    local ok, head, why = pcall(exchange, c, {what = what, method = "GET",
        target = target, headers = headers}, deadline, {})
    if not ok or not head then
        c.writer:abort()
        fail(what, ok and nil or head, why)
    end
    local accepted, msg = ws.check_response(head.status, head.headers, key)
    if not accepted then
        c.writer:abort()
        local err = HTTPError(what .. ": handshake refused: " .. msg)
        err.status = head.status
        error(err, 2)
    end
    -- the server may pick one of the offered subprotocols, nothing else
    local chosen = head.headers["sec-websocket-protocol"]
    if chosen then
        local offered = false
        for _, p in ipairs(opts.protocols or {}) do
            offered = offered or p == chosen
        end
        if not offered then
            c.writer:abort()
            error(HTTPError(what .. ": the server chose the subprotocol '"
                .. chosen .. "', which was not offered"), 2)
        end
    end
    c.writer:settimeout(nil)
    local sock = ws.wrap(c.reader, c.writer, {client = true,
        max_message = opts.max_message, close_timeout = opts.close_timeout,
        ping_interval = opts.ping_interval})
    sock.protocol = chosen
    return sock
end

-- ====== }

return M
