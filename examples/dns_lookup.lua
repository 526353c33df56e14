-- Looks names up, and addresses back. Usage:
--   lasio examples/dns_lookup.lua [-s nameserver] name-or-address...
-- e.g. lasio examples/dns_lookup.lua localhost 127.0.0.1
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local i = 1
if arg[1] == "-s" then -- ask this nameserver ("127.0.0.1:5353") only
    lasio.dns_configure({ nameservers = { arg[2] }, hosts = false })
    i = 3
end
for j = i, #arg do
    local name = arg[j]
    if name:match("^[%d.]+$") or name:find(":", 1, true) then
        local host = lasio.getnameinfo(name, nil, { timeout = 5 })
        print(("%s is %s"):format(name, host))
    else
        local ok, addrs = pcall(lasio.getaddrinfo, name, nil, { timeout = 5 })
        if ok then
            local list = {}
            for _, a in ipairs(addrs) do list[#list + 1] = a.addr end
            print(("%s has %s"):format(name, table.concat(list, ", ")))
        else
            print(("%s: %s"):format(name, addrs.message or addrs))
        end
    end
end
