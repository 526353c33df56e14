-- Fuzz target of the stream reader operations (src/stream/reader.c):
-- asyncio's invariants. A Unix server sends the data in pieces and then
-- EOF; the client runs a list of operations on its reader and checks each
-- result against a model of the bytes not yet read: read(n) gives a
-- non-empty prefix of at most n bytes ("" only at the end), readexactly
-- and readuntil give exactly what asyncio gives or raise
-- IncompleteReadError with the rest as `partial`, a readuntil over the
-- limit raises LimitOverrunError and consumes nothing, a readline over it
-- drops the line (or what was buffered of it, `consumed`); so the results
-- concatenate to the input, and a final read() gives what is left.
-- Input: byte 0 the limit (0: the default 64 KiB, else 1-255), byte 1 the
-- size of the pieces - 1, byte 2 the number of operations, then two bytes
-- per operation (kind, argument), then the data.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local path = string.format("\0lasio-fuzz-stream-%d-%d", os.time(),
    math.random(1 << 30))
local server
local job -- what the server sends for the current input

local function serve(reader, writer)
    local j = job
    for i = 1, #j.data, j.piece do
        writer:write(j.data:sub(i, i + j.piece - 1))
        writer:drain()
        lasio.sleep(0) -- let the reader see the pieces apart
    end
    writer:write_eof()
    reader:read() -- until the client closes
end

local seps = {"\n", "\r\n", "a", "--"}

local function check(cond, ...)
    if not cond then error(string.format(...), 2) end
end

local function pcall_op(f, ...)
    local ok, res = pcall(f, ...)
    return ok, res
end

return function(input)
    if #input < 3 then return end
    server = server or lasio.start_unix_server(serve, path)
    local b0, b1, nops = input:byte(1, 3)
    local limit = b0 == 0 and 65536 or b0
    nops = nops % 32
    local ops = {}
    local at = 4
    for i = 1, nops do
        local k, a = input:byte(at, at + 1)
        ops[i] = {(k or 0) % 5, a or 0}
        at = at + 2
    end
    local data = input:sub(at)
    job = {data = data, piece = b1 + 1}
    local reader, writer = lasio.open_unix_connection(path, {limit = limit})
    reader:settimeout(30)
    local pos = 1
    for i, op in ipairs(ops) do
        local kind, arg = op[1], op[2]
        local rest = data:sub(pos)
        local what = string.format("op %d (%d %d) at %d, limit %d", i, kind,
            arg, pos, limit)
        if kind == 0 then
            local got = reader:read(arg)
            if arg == 0 or #rest == 0 then
                check(got == "", "%s: read(%d) gave %q", what, arg, got)
            else
                check(#got >= 1 and #got <= arg and got == rest:sub(1, #got),
                    "%s: read(%d) gave %q of %q", what, arg, got, rest)
            end
            pos = pos + #got
        elseif kind == 1 then
            local ok, got = pcall_op(reader.readexactly, reader, arg)
            if #rest >= arg then
                check(ok and got == rest:sub(1, arg),
                    "%s: readexactly gave %s", what, tostring(got))
                pos = pos + arg
            else
                check(not ok and lasio.IncompleteReadError:is(got)
                    and got.partial == rest and got.expected == arg,
                    "%s: readexactly raised %s", what, tostring(got))
                pos = #data + 1
            end
        elseif kind == 2 or kind == 3 then
            local sep = kind == 3 and "\n" or seps[arg % #seps + 1]
            local idx = rest:find(sep, 1, true)
            local isep = idx and idx - 1 -- asyncio's offset of the separator
            local ok, got
            if kind == 2 then
                ok, got = pcall_op(reader.readuntil, reader, sep)
            else
                ok, got = pcall_op(reader.readline, reader)
            end
            if isep and isep <= limit then
                check(ok and got == rest:sub(1, isep + #sep),
                    "%s: read %q up to %q gave %s", what, rest, sep,
                    tostring(got))
                pos = pos + #got
            elseif isep or #rest + 1 - #sep > limit then
                check(not ok and lasio.LimitOverrunError:is(got),
                    "%s: over the limit, %q up to %q gave %s", what, rest,
                    sep, tostring(got))
                if kind == 3 then -- readline drops the line
                    if got.message:find("is found", 1, true) then
                        check(got.consumed == isep, "%s: consumed %d, not %d",
                            what, got.consumed, isep)
                        pos = pos + isep + 1
                    else
                        check(got.consumed > limit and got.consumed <= #rest
                            and (not isep or got.consumed <= isep),
                            "%s: consumed %d", what, got.consumed)
                        pos = pos + got.consumed
                    end
                end
            elseif kind == 2 then
                check(not ok and lasio.IncompleteReadError:is(got)
                    and got.partial == rest and got.expected == nil,
                    "%s: readuntil at EOF raised %s", what, tostring(got))
                pos = #data + 1
            else
                check(ok and got == rest, "%s: readline at EOF gave %s",
                    what, tostring(got))
                pos = #data + 1
            end
        else
            local got = reader:read()
            check(got == rest, "%s: read() gave %q, not %q", what, got, rest)
            pos = #data + 1
        end
    end
    local tail = reader:read()
    check(tail == data:sub(pos), "the rest read %q, not %q", tail,
        data:sub(pos))
    check(reader:at_eof(), "at_eof() after the end")
    writer:close()
    writer:wait_closed()
end
