-- Fuzz target of the HTTP server end to end (lua/lasio/http_server.lua on
-- src/http/): lasio.http.serve listens on a Unix socket, the input is what
-- one client sends on one connection (then it half-closes), and the
-- client reads the answers until the server closes. Handlers read the
-- body whole or by parts, stream the answer, lower the body limit, or
-- upgrade to a WebSocket and echo. Invariants: no handler error escapes
-- to the exception handler except the ones the server answers itself,
-- the server closes the connection, and what it sent parses as HTTP
-- responses, the last one possibly cut short (unless the client asked for HEAD, whose answers carry no
-- body, or the connection was upgraded).
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local http = require "lasio.http"
local internal = require("lasio.core").internal

local path = string.format("\0lasio-fuzz-http-%d-%d", os.time(),
    math.random(1 << 30))
local server
local unexpected -- an error the exception handler got

local function handler(req, res)
    local p = req.path
    if p:sub(1, 3) == "/ws" then
        local s = req:upgrade_websocket({close_timeout = 0.05,
            max_message = 4096})
        local msg, kind = s:recv()
        if msg then s:send(msg, kind) end
        s:close()
    elseif p:sub(1, 7) == "/stream" then
        local n = 0
        for part in req:reader():chunks() do
            n = n + #part
            res:write(part)
        end
        res:write("n=" .. n)
    elseif p == "/limit" then
        req:set_max_body(8)
        res:finish(req:body())
    else
        local body = req:body()
        res:set_header("X-Len", tostring(#body))
        res:finish(body)
    end
end

-- http.serve listens on TCP: for the fuzz run it is handed a Unix
-- listener instead (no port to exhaust, no TIME_WAIT).
local function serve_unix()
    local start_server = lasio.start_server
    lasio.start_server = function(cb, _, _, o)
        return lasio.start_unix_server(cb, path,
            {max_connections = o.max_connections})
    end
    local ok, srv = pcall(http.serve, handler, "unix", 0, {
        max_request_line = 1024, max_header_line = 1024,
        max_header_size = 2048, max_headers = 20, max_body = 4096,
        headers_timeout = 10, body_timeout = 10, keepalive_timeout = 10,
        lingering_timeout = 0.1, shutdown_timeout = 1})
    lasio.start_server = start_server
    assert(ok, srv)
    lasio.get_running_loop():set_exception_handler(function(_, ctx)
        local err = ctx.exception
        -- an HTTP error of the client's own request is not a defect
        if not (lasio.HTTPError:is(err) or lasio.CancelledError:is(err)) then
            unexpected = unexpected or (ctx.message .. ": "
                .. tostring(err) .. "\n" .. tostring(ctx.traceback))
        end
    end)
    return srv
end

return function(input)
    server = server or serve_unix()
    unexpected = nil
    local reader, writer = lasio.open_unix_connection(path)
    reader:settimeout(60)
    writer:write(input)
    writer:write_eof()
    local out = reader:read()
    writer:close()
    if unexpected then error(unexpected) end
    if out == "" then return end
    if input:find("HEAD", 1, true) or out:find(" 101 ", 1, true) then
        return
    end
    local trace = internal.http_trace("response", {out})
    -- (the last answer may be cut short: a handler that fails after its
    -- head was sent, as a body cut by the client's EOF makes it, cuts the
    -- connection)
    if trace:find("^error ") or trace:find("\nerror ") then
        error(string.format("the server's answer does not parse:\n%s\n"
            .. "answer:\n%q", trace, out))
    end
end
