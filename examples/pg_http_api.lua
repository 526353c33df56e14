-- A JSON API on PostgreSQL: notes kept in a table, served by lasio.http,
-- every request answered through a small connection pool.
--   GET    /notes        -> the list of notes
--   POST   /notes        -> adds the note in the JSON body {"text": ...}
--   GET    /notes/<id>   -> one note, or 404
--   DELETE /notes/<id>   -> removes it (204), or 404
-- Usage: lasio examples/pg_http_api.lua CONNINFO [port]
--   e.g. lasio examples/pg_http_api.lua "host=/var/run/postgresql dbname=app"
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local pg = require "lasio.pg"
local json = require "cjson"

local db = pg.pool(assert(arg[1], "usage: pg_http_api.lua CONNINFO [port]"),
    {size = 4})
db:query([[CREATE TABLE IF NOT EXISTS notes (
    id serial PRIMARY KEY, text text NOT NULL,
    created timestamptz NOT NULL DEFAULT now())]])

local function reply(res, status, value)
    res:set_status(status)
    res:set_header("Content-Type", "application/json")
    -- cjson would encode an empty list as {}
    res:finish(next(value) == nil and "[]" or json.encode(value))
end

local function list(_, res)
    reply(res, 200, db:query("SELECT id, text FROM notes ORDER BY id"))
end

local function add(req, res)
    local ok, body = pcall(json.decode, req:body())
    if not ok or type(body) ~= "table" or type(body.text) ~= "string" then
        return reply(res, 400, {error = 'expected {"text": "..."}'})
    end
    local note = db:query("INSERT INTO notes (text) VALUES ($1) "
        .. "RETURNING id, text", body.text)[1]
    res:set_header("Location", "/notes/" .. note.id)
    reply(res, 201, note)
end

local function show(_, res, id)
    local note = db:query("SELECT id, text FROM notes WHERE id = $1", id)[1]
    if not note then return reply(res, 404, {error = "no such note"}) end
    reply(res, 200, note)
end

local function remove(_, res, id)
    local _, n = db:query("DELETE FROM notes WHERE id = $1", id)
    if n == 0 then return reply(res, 404, {error = "no such note"}) end
    res:set_status(204)
    res:finish()
end

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
            -- a database error becomes the server's 500 (and is logged)
            return handler(req, res, tonumber(id))
        end
    end
    reply(res, 404, {error = "not found"})
end

local server = lasio.http.serve(route, "127.0.0.1", tonumber(arg[2]) or 0)
print("listening on 127.0.0.1:" .. server:sockets()[1].port)
io.stdout:flush()
server:serve_forever()
db:close()
