-- Helpers for the HTTP specs: a server on an ephemeral loopback port, raw
-- request bytes in and the exact response bytes out, with the Date header
-- (the only part that changes from run to run) taken out.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"

local M = {}

-- lasio.http.serve on 127.0.0.1, port 0: returns the server and its port.
function M.serve(handler, opts)
    local srv = lasio.http.serve(handler, "127.0.0.1", 0, opts)
    return srv, srv:sockets()[1].port
end

-- The response bytes without their Date lines.
function M.undate(s)
    return (s:gsub("Date: [^\r\n]*\r\n", ""))
end

-- Sends the pieces (a string or a list of strings; opts.pause seconds
-- between them), half-closes when opts.half_close, then reads until the
-- server closes or opts.wait seconds pass. Returns the bytes without Date
-- lines, and whether the server closed the connection.
function M.raw(port, pieces, opts)
    opts = opts or {}
    if type(pieces) == "string" then pieces = {pieces} end
    local r, w = lasio.open_connection("127.0.0.1", port)
    for i, p in ipairs(pieces) do
        w:write(p)
        if opts.pause and i < #pieces then lasio.sleep(opts.pause) end
    end
    if opts.half_close then w:write_eof() end
    local out, closed = {}, false
    local deadline = lasio.get_running_loop():time() + (opts.wait or
        helper.t(5))
    while true do
        local left = deadline - lasio.get_running_loop():time()
        if left <= 0 then break end
        r:settimeout(left)
        local ok, data = pcall(r.read, r, 65536)
        if not ok then
            if lasio.TimeoutError:is(data) then break end
            closed = true -- reset
            break
        end
        if data == "" then
            closed = true
            break
        end
        out[#out + 1] = data
        if opts.until_text and table.concat(out):find(opts.until_text, 1,
            true) then
            break
        end
    end
    w:close()
    return M.undate(table.concat(out)), closed
end

-- The status codes of the responses in s, in order.
function M.statuses(s)
    local list = {}
    for code in s:gmatch("HTTP/1%.[01] (%d%d%d) ") do
        list[#list + 1] = tonumber(code)
    end
    return list
end

-- An error response of the server, as sent (Date taken out).
function M.error_response(status, reason, msg)
    local body = msg .. "\n"
    return "HTTP/1.1 " .. status .. " " .. reason .. "\r\n"
        .. "Content-Type: text/plain; charset=utf-8\r\n"
        .. "Content-Length: " .. #body .. "\r\n"
        .. "Connection: close\r\n\r\n" .. body
end

return M
