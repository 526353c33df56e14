-- Fetches a page over TLS and prints the status line and the body.
-- Usage: lasio examples/tls_get.lua host port [path [cafile]]
-- The server's certificate is verified, against the system's CA store or
-- cafile, and must be valid for host.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local host, port, path, cafile = arg[1], tonumber(arg[2]), arg[3] or "/", arg[4]
local ctx = lasio.ssl_context({ cafile = cafile, alpn = { "http/1.1" } })
local reader, writer = lasio.open_connection(host, port, { ssl = ctx, timeout = 10 })
reader:settimeout(10)
local tls = writer:get_extra_info("ssl_object")
print(("connected with %s, certificate of %s"):format(tls.version, tls.peercert.subject))

writer:write(("GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n"):format(path, host))
print((reader:readline():gsub("\r\n$", "")))
-- skip the headers, then print the body
for line in reader:lines() do
    if line == "\r" or line == "" then break end
end
io.write(reader:read())
writer:close()
