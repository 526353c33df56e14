-- The HTTP parser targets (http_request.lua, http_response.lua): an input
-- is parsed whole, split in two at every offset, and byte by byte, with
-- the project's default limits or small ones chosen by the input; every
-- way must give the same event trace (core.internal.http_trace), as the
-- docs promise for the limits (H8) and for everything else.
-- Input: one byte choosing the limits (bit 0 clear: the defaults of
-- lasio.http.serve; set: small limits from the next three bytes), then
-- the message bytes.
-- SPDX-License-Identifier: MIT
local internal = require("lasio.core").internal

-- Above this many bytes, the input is split at a sample of offsets only
-- (every offset costs a parse of the whole input).
local ALL_OFFSETS = 1024

local function limits(data)
    local b = data:byte(1)
    if b & 1 == 0 then
        return {max_line = 8192, max_field = 8192, max_head = 16384,
            max_headers = 100, max_body = 1024 * 1024}, data:sub(2)
    end
    local b1, b2, b3 = data:byte(2, 4)
    b1, b2, b3 = b1 or 0, b2 or 0, b3 or 0
    return {max_line = 1 + b1 % 64, max_field = 1 + b2 % 128,
        max_head = 1 + b3 * 2, max_headers = 1 + (b >> 1) % 8,
        max_body = (b >> 4) * 8}, data:sub(5)
end

local function bytes(s)
    local t = {}
    for i = 1, #s do t[i] = s:sub(i, i) end
    return t
end

return function(kind)
    return function(input)
        if #input == 0 then return end
        local opts, data = limits(input)
        local whole = internal.http_trace(kind, {data}, opts)
        local function same(chunks, how)
            local got = internal.http_trace(kind, chunks, opts)
            if got ~= whole then
                error(string.format("%s trace differs (%s)\nwhole:\n%s\n"
                    .. "split:\n%s", kind, how, whole, got))
            end
        end
        local step = #data <= ALL_OFFSETS and 1 or #data // ALL_OFFSETS + 1
        for i = 1, #data - 1, step do
            same({data:sub(1, i), data:sub(i + 1)}, "cut at " .. i)
        end
        same(bytes(data), "byte by byte")
    end
end
