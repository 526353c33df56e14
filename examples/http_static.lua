-- A static file server: GET /path serves the file under the root
-- directory, read through lasio.fs (the disk is read in worker threads,
-- so a slow disk never stalls other requests). Directories list their
-- entries; ".." in a path is refused. Ctrl-C stops it.
-- Usage: lasio examples/http_static.lua ROOT [port]
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local fs = lasio.fs

local root = assert(arg[1], "usage: lasio examples/http_static.lua ROOT [port]")

local types = {html = "text/html; charset=utf-8", txt = "text/plain; charset=utf-8",
    css = "text/css", js = "text/javascript", json = "application/json",
    png = "image/png", jpg = "image/jpeg", svg = "image/svg+xml"}

local function content_type(path)
    local ext = path:match("%.(%w+)$")
    return types[ext and ext:lower()] or "application/octet-stream"
end

-- "/a%20b" -> "/a b"
local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function serve(req, res)
    if req.method ~= "GET" and req.method ~= "HEAD" then
        res:set_status(405)
        return res:finish("method not allowed\n")
    end
    local rel = unescape(req.path)
    if rel:find("%.%.") or rel:find("%z") then
        res:set_status(400)
        return res:finish("bad path\n")
    end
    local path = root .. rel
    local ok, st = pcall(fs.stat, path)
    if not ok then
        res:set_status(404)
        return res:finish("not found\n")
    end
    if st.type == "directory" then
        local names = fs.listdir(path)
        table.sort(names)
        res:set_header("Content-Type", "text/plain; charset=utf-8")
        return res:finish(table.concat(names, "\n") .. "\n")
    end
    res:set_header("Content-Type", content_type(path))
    res:finish(fs.read_file(path))
end

local server = lasio.http.serve(serve, "127.0.0.1", tonumber(arg[2]) or 0)
print("listening on 127.0.0.1:" .. server:sockets()[1].port)
io.stdout:flush()
-- Ctrl-C stops at once; SIGTERM (the lasio command) closes the server
-- gracefully: serve_forever returns once the requests in flight are
-- answered, within the server's shutdown_timeout.
server:serve_forever()
