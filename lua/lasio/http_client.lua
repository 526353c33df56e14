-- lasio.http_client: lasio.http.request, lasio.http.get and
-- lasio.http.websocket (API.md section 9). Responses are parsed by llhttp
-- (src/httpparse.c) straight from the connection's buffer; a response
-- that breaks HTTP raises HTTPError, one cut short raises HTTPError
-- (code "EOF"), never a hang or a read past the message. Connections are
-- kept per loop and per scheme://host:port and reused while the server
-- keeps them alive.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local core = require "lasio.core"
local body_reader = require "lasio.http_body"

local http_parser, http_send, http_send_chunk = core.http_parser,
    core.http_send, core.http_send_chunk
local check_header, now = core.http_check_header, core.time
local HTTPError, TimeoutError = lasio.HTTPError, lasio.TimeoutError

local M = {}

local MAX_IDLE_PER_HOST = 16
local IDLE_LIFETIME = 30 -- seconds a pooled connection may wait for reuse
local USER_AGENT = "lasio/" .. tostring(core.VERSION)

-- {====== URLs ======

local default_port = {http = 80, https = 443, ws = 80, wss = 443}

-- scheme, host, port, target ("/path?query") of an absolute URL.
local function parse_url(url, what)
    if type(url) ~= "string" then
        error(what .. ": url must be a string, not a " .. type(url), 3)
    end
    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    scheme = scheme and scheme:lower()
    if not scheme or not default_port[scheme] then
        error(what .. ": unsupported URL '" .. url .. "' (http://, https://, "
            .. "ws:// or wss:// expected)", 3)
    end
    local authority, target = rest:match("^([^/?#]*)(.*)$")
    target = target:gsub("#.*$", "")
    if target == "" then target = "/" end
    if target:sub(1, 1) == "?" then target = "/" .. target end
    if target:find("[%s%c]") then
        error(what .. ": the URL has spaces or control characters", 3)
    end
    authority = authority:gsub("^.*@", "") -- no userinfo on the wire
    local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
    if not host then host, port = authority:match("^([^:]*):?(%d*)$") end
    if not host or host == "" then
        error(what .. ": no host in URL '" .. url .. "'", 3)
    end
    port = port ~= "" and tonumber(port) or default_port[scheme]
    if port < 1 or port > 65535 then
        error(what .. ": bad port in URL '" .. url .. "'", 3)
    end
    return scheme, host, port, target
end

local function host_header(scheme, host, port)
    if host:find(":", 1, true) then host = "[" .. host .. "]" end
    if port == default_port[scheme] then return host end
    return host .. ":" .. port
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

-- An idle connection to key that still looks alive, or nil.
local function take_idle(key)
    local list = pool_of(lasio.get_running_loop())[key]
    while list and #list > 0 do
        local c = table.remove(list)
        if now() - c.idle_since < IDLE_LIFETIME and not c.reader:at_eof()
            and c.reader:buffered() == 0 then
            return c
        end
        c.writer:close()
    end
end

local function give_back(c)
    local list = pool_of(lasio.get_running_loop())
    local l = list[c.key]
    if not l then
        l = {}
        list[c.key] = l
    end
    if #l >= MAX_IDLE_PER_HOST then
        c.writer:close()
        return
    end
    c.idle_since = now()
    l[#l + 1] = c
end

local function ssl_context_for(scheme, opts)
    if scheme ~= "https" and scheme ~= "wss" then return nil end
    if opts.ssl == nil or opts.ssl == true then
        return lasio.ssl_context()
    end
    return opts.ssl
end

local function connect(scheme, host, port, opts, deadline)
    local ctx = ssl_context_for(scheme, opts)
    local left = deadline and math.max(deadline - now(), 0) or nil
    local reader, writer = lasio.open_connection(host, port, {
        ssl = ctx, server_hostname = ctx and host or nil, timeout = left})
    return {reader = reader, writer = writer,
        key = scheme .. "://" .. host_header(scheme, host, port),
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
    if res.keep_alive and not c.writer:is_closing() then
        give_back(c)
    else
        c.writer:close()
    end
end

local function reading(res, f, ...)
    local ok, a = pcall(f, ...)
    if ok then return a end
    local c = res._conn
    res._conn = nil
    if c then c.writer:abort() end
    if TimeoutError:is(a) then
        error(TimeoutError("http: timed out reading the response body"), 0)
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

-- res:reader(): the body as it arrives (r:read() -> part or nil).
function Response:reader()
    local c = self._conn
    if not c then
        error("res:reader: the body was already read or the response "
            .. "closed", 2)
    end
    return body_reader.new(c.parser, c.reader, function()
        return left_of(self)
    end, function() released(self) end)
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
    follow_redirects = true, max_redirects = true}

local function check_opts(opts, what)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        error(what .. ": opts must be a table, not a " .. type(opts), 3)
    end
    for k in pairs(opts) do
        if not known[k] then
            error(what .. ": unknown option '" .. tostring(k) .. "'", 3)
        end
    end
    if opts.timeout ~= nil and (type(opts.timeout) ~= "number"
        or opts.timeout < 0) then
        error(what .. ": timeout must be a number >= 0", 3)
    end
    local b = opts.body
    if b ~= nil and type(b) ~= "string" and type(b) ~= "function" then
        error(what .. ": body must be a string or a function returning "
            .. "chunks, not a " .. type(b), 3)
    end
    return opts
end

-- The header list of a request: the user's (checked), then ours.
local function build_headers(opts, scheme, host, port, what)
    local h, have = {}, {}
    local user = opts.headers
    if user ~= nil then
        if type(user) ~= "table" then
            error(what .. ": headers must be a table", 4)
        end
        for name, value in pairs(user) do
            name, value = check_header(name, value, what)
            have[name:lower()] = true
            h[#h + 1], h[#h + 2] = name, value
        end
    end
    if not have.host then
        h[#h + 1], h[#h + 2] = "Host", host_header(scheme, host, port)
    end
    if not have["user-agent"] then
        h[#h + 1], h[#h + 2] = "User-Agent", USER_AGENT
    end
    return h, have
end

-- Sends the request on c and reads the response head.
local function exchange(c, method, target, headers, have, body, deadline)
    local length, chunked = nil, false
    if type(body) == "string" then
        if not have["content-length"] then length = #body end
    elseif type(body) == "function" then
        chunked = true
    elseif method == "POST" or method == "PUT" or method == "PATCH" then
        if not have["content-length"] then length = 0 end
    end
    local line = method .. " " .. target .. " HTTP/1.1"
    http_send(c.writer, line, headers, length, chunked, false,
        type(body) == "string" and body or nil)
    if chunked then
        for chunk in body do
            if chunk ~= "" then http_send_chunk(c.writer, chunk) end
            c.writer:drain()
        end
        http_send_chunk(c.writer, "")
    end
    c.writer:drain()
    c.parser:skip_body(method == "HEAD")
    local left = deadline and math.max(deadline - now(), 0) or nil
    while true do
        local head, why = c.parser:read_head(c.reader, left, left)
        if not head then return nil, why end
        -- interim answers (100 Continue, 103) come before the real one
        if head.status >= 200 or head.status == 101 then return head end
        c.parser:read_body(c.reader, left, true)
    end
end

local function timed_out(what)
    return TimeoutError(what .. ": timed out")
end

local function request_once(method, url, opts, what)
    local scheme, host, port, target = parse_url(url, what)
    if scheme == "ws" or scheme == "wss" then
        error(what .. ": use lasio.http.websocket for " .. scheme .. " URLs",
            3)
    end
    local headers, have = build_headers(opts, scheme, host, port, what)
    local deadline = opts.timeout and now() + opts.timeout or nil
    local key = scheme .. "://" .. host_header(scheme, host, port)
    local c, reused = take_idle(key), true
    for attempt = 1, 2 do
        if not c then
            c, reused = connect(scheme, host, port, opts, deadline), false
        end
        local ok, head, why = pcall(exchange, c, method, target, headers,
            have, opts.body, deadline)
        if ok and head then
            local res = setmetatable(head, Response)
            res._conn, res._deadline, res.url = c, deadline, url
            if method == "HEAD" or head.status == 204 or head.status == 304
                or head.content_length == 0 then
                res:body() -- nothing to wait for: the connection is free
            end
            return res
        end
        c.writer:abort()
        -- a pooled connection the server had closed: once more, on a new
        -- one (only before any byte of an answer came)
        local stale = reused and (not ok and lasio.OSError:is(head)
            or ok and why == "eof")
        if not stale or attempt == 2 or type(opts.body) == "function" then
            if not ok then
                if TimeoutError:is(head) then error(timed_out(what), 0) end
                error(head, 0)
            end
            if why == "idle" then error(timed_out(what), 0) end
            error(HTTPError(what .. ": the server closed the connection "
                .. "without an answer"), 0)
        end
        c = nil
    end
end

local redirect_codes = {[301] = true, [302] = true, [303] = true,
    [307] = true, [308] = true}

-- lasio.http.request(method, url [, opts]) -> res
function M.request(method, url, opts)
    local what = "lasio.http.request"
    if type(method) ~= "string" or not method:match("^[!#$%%&'*+.^_`|~%w-]+$")
    then
        error(what .. ": method must be a token string, not "
            .. tostring(method), 2)
    end
    opts = check_opts(opts, what)
    local max = opts.follow_redirects and (opts.max_redirects or 5) or 0
    for _ = 0, max do
        local res = request_once(method, url, opts, what)
        local loc = res.headers.location
        if max == 0 or not redirect_codes[res.status] or not loc then
            return res
        end
        res:close()
        if not loc:match("^%a[%w+.-]*://") then
            local scheme, host, port = parse_url(url, what)
            local base = scheme .. "://" .. host_header(scheme, host, port)
            if loc:sub(1, 1) ~= "/" then
                local dir = select(4, parse_url(url, what)):match("^[^?]*/")
                loc = dir .. loc
            end
            loc = base .. loc
        end
        url = loc
        if res.status == 303 or ((res.status == 301 or res.status == 302)
            and method == "POST") then
            method = "GET"
            local o = {}
            for k, v in pairs(opts) do o[k] = v end
            o.body = nil
            opts = o
        end
    end
    error(HTTPError(what .. ": too many redirects (more than " .. max
        .. ")"), 2)
end

function M.get(url, opts)
    return M.request("GET", url, opts)
end

-- ====== }

-- {====== WebSocket client ======

local ws_known = {headers = true, timeout = true, ssl = true,
    protocols = true, max_message = true, close_timeout = true,
    ping_interval = true}

-- lasio.http.websocket(url [, opts]) -> WebSocket
function M.websocket(url, opts)
    local what = "lasio.http.websocket"
    opts = opts or {}
    if type(opts) ~= "table" then
        error(what .. ": opts must be a table", 2)
    end
    for k in pairs(opts) do
        if not ws_known[k] then
            error(what .. ": unknown option '" .. tostring(k) .. "'", 2)
        end
    end
    local scheme, host, port, target = parse_url(url, what)
    if scheme == "http" then scheme = "ws" end
    if scheme == "https" then scheme = "wss" end
    local ws = require "lasio.websocket"
    local deadline = opts.timeout and now() + opts.timeout or nil
    local c = connect(scheme, host, port, opts, deadline)
    local key = ws.new_client_key()
    local headers = build_headers(opts, scheme, host, port, what)
    local function add(n, v) headers[#headers + 1], headers[#headers + 2] = n, v end
    add("Upgrade", "websocket")
    add("Connection", "Upgrade")
    add("Sec-WebSocket-Key", key)
    add("Sec-WebSocket-Version", "13")
    if opts.protocols then
        add("Sec-WebSocket-Protocol", table.concat(opts.protocols, ", "))
    end
    local ok, head, why = pcall(exchange, c, "GET", target, headers, {},
        nil, deadline)
    if not ok or not head then
        c.writer:abort()
        if not ok then
            if TimeoutError:is(head) then error(timed_out(what), 0) end
            error(head, 0)
        end
        if why == "idle" then error(timed_out(what), 0) end
        error(HTTPError(what .. ": the server closed the connection"), 0)
    end
    local accepted, msg = ws.check_response(head.status, head.headers, key)
    if not accepted then
        c.writer:abort()
        local err = HTTPError(what .. ": handshake refused: " .. msg)
        err.status = head.status
        error(err, 2)
    end
    return ws.wrap(c.reader, c.writer, {client = true,
        max_message = opts.max_message, close_timeout = opts.close_timeout,
        ping_interval = opts.ping_interval})
end

-- ====== }

return M
