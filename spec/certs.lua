-- Test certificates for the TLS and HTTPS specs, made by the `openssl`
-- command into a temporary directory once per process.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"

local M = {}

-- A CA, a server certificate it signed (localhost, 127.0.0.1), and a
-- self-signed one; made once, removed when the Lua state closes.
local certs
function M.make()
    if certs then return certs end
    local dir = net.tmpdir()
    local q = helper.shell_quote
    local cmd = ([[
cd %s && {
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=lasio test CA" &&
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" &&
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" > ext.cnf &&
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf &&
openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
} >/dev/null 2>&1]]):format(q(dir))
    assert(os.execute(cmd), "openssl could not make the certificates")
    certs = {
        dir = dir, ca = dir .. "/ca.pem",
        cert = dir .. "/server.pem", key = dir .. "/server.key",
        self = dir .. "/self.pem", selfkey = dir .. "/self.key",
    }
    setmetatable(certs, {__gc = function(c) net.rmdir(c.dir) end})
    return certs
end

return M
