-- HTTP/1.1 server for the peer benchmark (bench/README.md, workload
-- "http"): GET / answers "hello" through lasio.http.serve, keep-alive.
-- Listens on 127.0.0.1:PORT, PORT = arg[1].
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local port = assert(tonumber(arg[1]), "usage: lasio bench/http.lua PORT")

local server = lasio.http.serve(function(_, res)
    res:set_header("Content-Type", "text/plain")
    res:finish("hello")
end, "127.0.0.1", port, {backlog = 1024})
server:serve_forever()
