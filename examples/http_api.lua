-- A JSON API server with routes: a small in-memory store of notes.
--   GET    /notes        -> the list of notes
--   POST   /notes        -> adds the note in the JSON body {"text": ...}
--   GET    /notes/<id>   -> one note, or 404
--   DELETE /notes/<id>   -> removes it (204), or 404
-- Anything else is 404 (405 for a known path with another method). JSON
-- comes from lua-cjson (Debian's lua-cjson). Ctrl-C stops it.
-- Usage: lasio examples/http_api.lua [port]   (0 or none: any free port)
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local json = require "cjson"

local notes, next_id = {}, 1

local function reply(res, status, value)
    res:set_status(status)
    res:set_header("Content-Type", "application/json")
    res:finish(json.encode(value))
end

local function list(_, res)
    local out = {}
    for id = 1, next_id - 1 do
        if notes[id] then out[#out + 1] = notes[id] end
    end
    if #out == 0 then -- cjson would encode an empty table as {}
        res:set_header("Content-Type", "application/json")
        return res:finish("[]")
    end
    reply(res, 200, out)
end

local function add(req, res)
    local ok, body = pcall(json.decode, req:body())
    if not ok or type(body) ~= "table" or type(body.text) ~= "string" then
        return reply(res, 400, {error = 'expected {"text": "..."}'})
    end
    local note = {id = next_id, text = body.text}
    notes[next_id], next_id = note, next_id + 1
    res:set_header("Location", "/notes/" .. note.id)
    reply(res, 201, note)
end

local function show(_, res, id)
    if not notes[id] then return reply(res, 404, {error = "no such note"}) end
    reply(res, 200, notes[id])
end

local function remove(_, res, id)
    if not notes[id] then return reply(res, 404, {error = "no such note"}) end
    notes[id] = nil
    res:set_status(204)
    res:finish()
end

-- pattern -> {method -> handler}; captures become handler arguments
local routes = {
    {"^/notes$", {GET = list, POST = add}},
    {"^/notes/(%d+)$", {GET = show, DELETE = remove}},
}

local function route(req, res)
    for _, r in ipairs(routes) do
        local id = req.path:match(r[1])
        if id then
            local handler = r[2][req.method]
            if not handler then
                return reply(res, 405, {error = "method not allowed"})
            end
            return handler(req, res, tonumber(id))
        end
    end
    reply(res, 404, {error = "not found"})
end

local server = lasio.http.serve(route, "127.0.0.1", tonumber(arg[1]) or 0)
print("listening on 127.0.0.1:" .. server:sockets()[1].port)
io.stdout:flush()
-- Ctrl-C stops at once; SIGTERM (the lasio command) closes the server
-- gracefully: serve_forever returns once the requests in flight are
-- answered, within the server's shutdown_timeout.
server:serve_forever()
