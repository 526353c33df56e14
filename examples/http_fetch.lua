-- Fetches several URLs concurrently, each under a timeout, and prints the
-- status and size of each (in the order given).
-- Usage: lasio examples/http_fetch.lua [-t seconds] [URL...]
-- With no URL it starts a local server with a few pages (one of them too
-- slow for the timeout) and fetches those, so it runs offline.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local timeout, urls = 2, {}
local i = 1
while arg[i] do
    if arg[i] == "-t" then
        timeout = tonumber(arg[i + 1]) or error("-t needs a number of seconds")
        i = i + 2
    else
        urls[#urls + 1] = arg[i]
        i = i + 1
    end
end

-- The local demo server: /, a 100 kB page, a redirect, a 404, and a page
-- that answers only after the timeout.
local server
if #urls == 0 then
    timeout = math.min(timeout, 0.5)
    server = lasio.http.serve(function(req, res)
        if req.path == "/" then
            res:finish("hello, lasio\n")
        elseif req.path == "/big" then
            res:set_header("Content-Type", "application/octet-stream")
            for _ = 1, 10 do res:write(string.rep("x", 10000)) end
        elseif req.path == "/moved" then
            res:set_status(302)
            res:set_header("Location", "/")
            res:finish()
        elseif req.path == "/slow" then
            lasio.sleep(timeout * 4)
            res:finish("too late\n")
        else
            res:set_status(404)
            res:finish("no such page\n")
        end
    end, "127.0.0.1", 0)
    local base = "http://127.0.0.1:" .. server:sockets()[1].port
    for _, p in ipairs({"/", "/big", "/moved", "/missing", "/slow"}) do
        urls[#urls + 1] = base .. p
    end
end

-- One line per URL: "status size url", or "error message url".
local function fetch(url)
    local ok, line = pcall(function()
        local res = lasio.http.get(url, {timeout = timeout,
            follow_redirects = true})
        local size = #res:body()
        return ("%d %7d bytes  %s"):format(res.status, size, url)
    end)
    if ok then return line end
    if lasio.TimeoutError:is(line) then
        return ("timeout after %g s  %s"):format(timeout, url)
    end
    local msg = type(line) == "table" and line.message or tostring(line)
    return ("error %s  %s"):format(msg, url)
end

local tasks = {}
for k, url in ipairs(urls) do tasks[k] = lasio.spawn(fetch, url) end
for _, line in ipairs({lasio.gather(table.unpack(tasks))}) do print(line) end
if server then server:close() end
