-- lasio.http_spool: the whole body of a request for req:body(), with a
-- bounded memory while it arrives (nginx's client_body_buffer_size). A
-- body of up to `memory` bytes is gathered in memory; a longer one goes
-- to a temporary file as it arrives (tmpfile(3): unlinked at once, so
-- nothing is left behind whatever happens) and is read back in one
-- string once complete. So a client that sends a large body slowly, or
-- many clients at once, pin at most `memory` bytes each in the server
-- (docs/SERVER.md, Memory); the string of a complete body is the
-- handler's, as long as it keeps it.
-- The file is written with plain blocking writes of the parts as they
-- arrive (each at most the stream's input buffer): a local disk or tmpfs
-- takes them in far less time than the network brought them.
-- SPDX-License-Identifier: MIT
local concat = table.concat

local M = {}

-- Holds the file of one body; closing it (at the end of M.read, however
-- it ends: an error, a cancel) closes the file, which frees its space.
local Spool = {__close = function(self)
    if self.file then
        self.file:close()
        self.file = nil
    end
end}

-- Moves the parts gathered so far into a new temporary file.
local function spill(parts, n)
    local file, err = io.tmpfile()
    if not file then
        error("req:body: cannot open a temporary file for the request "
            .. "body: " .. tostring(err), 0)
    end
    local ok, werr = file:write(concat(parts, "", 1, n))
    if not ok then
        file:close()
        error("req:body: cannot write the request body to a temporary "
            .. "file: " .. tostring(werr), 0)
    end
    return file
end

local function append(file, chunk)
    local ok, err = file:write(chunk)
    if not ok then
        error("req:body: cannot write the request body to a temporary "
            .. "file: " .. tostring(err), 0)
    end
end

local function read_back(file)
    local ok, err = file:seek("set", 0)
    local body = ok and file:read("a")
    if not body then
        error("req:body: cannot read the request body back from its "
            .. "temporary file: " .. tostring(err), 0)
    end
    return body
end

-- Reads the next part (all: the whole rest) of the body; a failure of
-- the client's I/O goes to on_error before it is raised.
local function read_body(parser, stream, timeout, all, on_error)
    local ok, chunk = pcall(parser.read_body, parser, stream, timeout(), all)
    if ok then return chunk end
    on_error(chunk)
    error(chunk, 0)
end

-- M.read(parser, stream, timeout, length, memory, on_error) -> the whole
-- body. parser and stream as for parser:read_body; timeout(): the
-- inactivity limit of the next wait; length: the declared Content-Length
-- (nil when chunked); memory: the most bytes kept in memory before the
-- body moves to a file; on_error(e): told of an error of the client's
-- I/O (a timeout, 413, 400, a reset) before it is raised. An error of the
-- file is the server's: it names req:body.
function M.read(parser, stream, timeout, length, memory, on_error)
    if length and length <= memory then
        -- fits: one read of the whole body, in memory
        return read_body(parser, stream, timeout, true, on_error)
    end
    local parts, n, size = {}, 0, 0
    local spool <close> = setmetatable({}, Spool)
    while true do
        local chunk = read_body(parser, stream, timeout, false, on_error)
        if chunk == nil then break end
        local file = spool.file
        if file then
            append(file, chunk)
        else
            n = n + 1
            parts[n] = chunk
            size = size + #chunk
            if size > memory then
                spool.file = spill(parts, n)
                parts, n = nil, 0
            end
        end
    end
    if not spool.file then return concat(parts, "", 1, n) end
    return read_back(spool.file)
end

return M
