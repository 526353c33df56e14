-- lasio.http_body: the streaming view of an HTTP message body, shared by
-- the server's req:reader() and the client's res:reader(). r:read()
-- returns the next part of the body as it arrives and nil at its end;
-- r:lines() does not exist: bodies are bytes, not lines.
-- SPDX-License-Identifier: MIT
local M = {}

local BodyReader = {}
BodyReader.__index = BodyReader
BodyReader.__name = "lasio.http.BodyReader"

-- r:read(): the next part, or nil at the end of the body.
function BodyReader:read()
    if self.done then return nil end
    local ok, chunk = pcall(self._parser.read_body, self._parser,
        self._stream, self._timeout())
    if not ok then
        if self._on_error then self._on_error(chunk) end
        error(chunk, 0)
    end
    if chunk == nil then
        self.done = true
        if self._on_end then self._on_end() end
    end
    return chunk
end

-- r:chunks(): for chunk in r:chunks() do ... end
function BodyReader:chunks()
    return function() return self:read() end
end

-- timeout: a function returning the inactivity limit of the next wait;
-- on_end: called once when the body has been read to its end; on_error:
-- called with the error of a failed read before it is raised.
function M.new(parser, stream, timeout, on_end, on_error)
    return setmetatable({_parser = parser, _stream = stream,
        _timeout = timeout, _on_end = on_end, _on_error = on_error,
        done = false}, BodyReader)
end

-- A reader at the end of a body that has no bytes (a response to HEAD,
-- 204, 304): read() returns nil at once.
function M.empty()
    return setmetatable({done = true}, BodyReader)
end

return M
