-- The WebSocket targets (websocket_server.lua, websocket_client.lua): the
-- input is the byte stream a peer sends to a socket made by ws.wrap (the
-- server side, which must refuse unmasked frames, or the client side).
-- The socket receives every message until the close or the failure and
-- echoes each small one back (so its own framing and masking run too),
-- while the peer reads whatever the socket sends until EOF. Invariants:
-- text messages are valid UTF-8, kinds are "text" or "binary", a failure
-- carries one of the close codes the socket may send itself, a close
-- gives an integer code; and the whole outcome (messages, close or
-- failure) is the same whether the bytes arrive in one piece or in small
-- pieces.
-- Input: byte 0 the limits (max_message and max_frame), byte 1 max_queue
-- (low 4 bits) and the size of the pieces - 1 (high 4 bits), then the
-- stream.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local ws = require "lasio.websocket"

-- the codes a failing socket sends: protocol error, invalid data, too
-- big, and the connection lost without a close frame
local FAILURE_CODES = {[1002] = true, [1006] = true, [1007] = true,
    [1009] = true}

local function check(cond, ...)
    if not cond then error(string.format(...), 2) end
end

return function(client_side)
    local path = string.format("\0lasio-fuzz-ws-%s-%d-%d",
        client_side and "c" or "s", os.time(), math.random(1 << 30))
    local server
    local job

    -- the peer: sends the input, then reads until the socket's end
    local function serve(reader, writer)
        local j = job
        for i = 1, #j.data, j.piece do
            writer:write(j.data:sub(i, i + j.piece - 1))
            pcall(writer.drain, writer)
            lasio.sleep(0)
        end
        pcall(writer.write_eof, writer)
        pcall(reader.read, reader)
    end

    local function outcome(data, piece, opts)
        job = {data = data, piece = piece}
        local reader, writer = lasio.open_unix_connection(path)
        local s = ws.wrap(reader, writer, opts)
        local trace = {}
        while true do
            local ok, msg, kind, reason = pcall(s.recv, s)
            if not ok then
                local err = msg
                check(lasio.Error:is(err) and FAILURE_CODES[err.code],
                    "recv raised %s (code %s)", tostring(err),
                    tostring(type(err) == "table" and err.code))
                trace[#trace + 1] = "failed " .. err.code
                break
            end
            if msg == nil then
                check(math.type(kind) == "integer", "close code %s",
                    tostring(kind))
                trace[#trace + 1] = string.format("closed %d %q", kind,
                    reason)
                break
            end
            check(kind == "text" or kind == "binary", "kind %s",
                tostring(kind))
            check(kind == "binary" or utf8.len(msg), "invalid UTF-8 text")
            trace[#trace + 1] = string.format("%s %q", kind, msg)
            if #msg <= 1024 then pcall(s.send, s, msg, kind) end
        end
        s:close()
        return table.concat(trace, "\n")
    end

    return function(input)
        if #input < 2 then return end
        server = server or lasio.start_unix_server(serve, path)
        local b0, b1 = input:byte(1, 2)
        local max = b0 == 0 and 1024 * 1024 or b0 * 16
        local opts = {client = client_side, max_message = max,
            max_frame = max, max_queue = 1 + b1 % 16, close_timeout = 0.05}
        local data = input:sub(3)
        local piece = 1 + (b1 >> 4)
        local whole = outcome(data, math.max(#data, 1), opts)
        local split = outcome(data, piece, opts)
        check(whole == split, "whole:\n%s\nin pieces of %d:\n%s", whole,
            piece, split)
    end
end
