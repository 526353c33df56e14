-- A DNS server for the specs, on a local UDP port, written with lasio
-- itself: it parses each query and answers with what a handler builds
-- (well-formed replies, errors, or deliberately malformed packets), so
-- that the resolver is tested without any outside network.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local M = {}

local function u16(n) return string.char((n >> 8) & 255, n & 255) end
local function u32(n) return u16((n >> 16) & 0xffff) .. u16(n & 0xffff) end

-- Parses a query: {id=, flags=, name= (as sent, case kept), qtype=,
-- question= (the raw question section)}.
function M.parse(data)
    local id, flags, qd = string.unpack(">I2I2I2", data)
    local pos = 13
    local labels = {}
    while true do
        local n = data:byte(pos)
        if not n or n == 0 then break end
        labels[#labels + 1] = data:sub(pos + 1, pos + n)
        pos = pos + n + 1
    end
    local qtype = string.unpack(">I2", data, pos + 1)
    return {
        id = id, flags = flags, qdcount = qd,
        name = table.concat(labels, "."),
        qtype = qtype,
        question = data:sub(13, pos + 4),
    }
end

M.A, M.AAAA, M.PTR, M.CNAME = 1, 28, 12, 5

-- Encodes a name as labels.
function M.name(s)
    local out = {}
    for label in s:gmatch("[^.]+") do out[#out + 1] = string.char(#label) .. label end
    return table.concat(out) .. "\0"
end

local function pack_addr(qtype, a)
    if qtype == M.A then
        local b = {}
        for part in a:gmatch("%d+") do b[#b + 1] = string.char(tonumber(part)) end
        return table.concat(b)
    end
    -- IPv6: full or "::"-compressed hex groups
    local head, tail = a:match("^(.-)::(.*)$")
    local groups = {}
    local function add(s)
        for g in s:gmatch("[^:]+") do groups[#groups + 1] = tonumber(g, 16) end
    end
    if head then
        add(head)
        local t = {}
        for g in tail:gmatch("[^:]+") do t[#t + 1] = tonumber(g, 16) end
        for _ = 1, 8 - #groups - #t do groups[#groups + 1] = 0 end
        for _, g in ipairs(t) do groups[#groups + 1] = g end
    else
        add(a)
    end
    local out = {}
    for _, g in ipairs(groups) do out[#out + 1] = u16(g) end
    return table.concat(out)
end

-- A reply header for query q: rcode, flags and counts.
function M.header(q, opts)
    opts = opts or {}
    local flags = 0x8180 | (opts.rcode or 0) | (opts.tc and 0x0200 or 0)
    return u16(opts.id or q.id) .. u16(flags) .. u16(opts.qd or 1)
        .. u16(opts.an or 0) .. u16(0) .. u16(0)
end

-- A well-formed answer with the addresses for q's type (A or AAAA; the
-- ones of the other family are left out), or a PTR name.
function M.answer(q, addrs, opts)
    opts = opts or {}
    local rrs = {}
    for _, a in ipairs(addrs) do
        local is6 = a:find(":", 1, true) ~= nil
        if q.qtype == M.PTR then
            local rdata = M.name(a)
            rrs[#rrs + 1] = "\192\12" .. u16(M.PTR) .. u16(1) .. u32(60)
                .. u16(#rdata) .. rdata
        elseif (q.qtype == M.AAAA) == is6 then
            local rdata = pack_addr(q.qtype, a)
            rrs[#rrs + 1] = "\192\12" .. u16(q.qtype) .. u16(1) .. u32(60)
                .. u16(#rdata) .. rdata
        end
    end
    local question = opts.question or q.question
    return M.header(q, { an = #rrs, id = opts.id }) .. question .. table.concat(rrs)
end

-- An error reply (3 = NXDOMAIN, 5 = REFUSED ...).
function M.error(q, rcode)
    return M.header(q, { rcode = rcode }) .. q.question
end

-- A truncated reply (TC bit, no answer).
function M.truncated(q)
    return M.header(q, { tc = true }) .. q.question
end

-- Malformed replies (D1): each one claims an answer whose
-- bytes are broken in one way.
function M.malformed(q, kind)
    local h = M.header(q, { an = 1 })
    local rr_tail = u16(q.qtype) .. u16(1) .. u32(60)
    local addr = q.qtype == M.AAAA and string.rep("\0", 15) .. "\1" or "\1\2\3\4"
    local qlen = #q.question
    if kind == "pointer_loop" then
        -- the answer's name points at itself
        local off = 12 + qlen
        return h .. q.question .. string.char(0xC0 | (off >> 8), off & 255)
            .. rr_tail .. u16(#addr) .. addr
    elseif kind == "pointer_past_end" then
        return h .. q.question .. "\255\250" .. rr_tail .. u16(#addr) .. addr
    elseif kind == "long_label" then
        return h .. q.question .. string.char(64) .. string.rep("a", 64) .. "\0"
            .. rr_tail .. u16(#addr) .. addr
    elseif kind == "long_name" then
        local name = string.rep(string.char(63) .. string.rep("b", 63), 5) .. "\0"
        return h .. q.question .. name .. rr_tail .. u16(#addr) .. addr
    elseif kind == "rdlength_past_end" then
        return h .. q.question .. "\192\12" .. rr_tail .. u16(400) .. addr
    elseif kind == "short_header" then
        return h:sub(1, 7)
    elseif kind == "question_past_end" then
        return M.header(q, { an = 0 }) .. q.question:sub(1, 5)
    elseif kind == "odd_rdlength" then
        return h .. q.question .. "\192\12" .. rr_tail .. u16(#addr - 1) .. addr:sub(2)
    end
    error("unknown malformation " .. kind)
end

-- Serves DNS over TCP (RFC 7766: each message after a 2-byte length)
-- on srv's port: tcp_handler(q, srv) returns a reply, or nil to stay
-- silent (the connection is held until the client goes). Counts the
-- connections in srv.tcp_connections and the ones the client closed in
-- srv.tcp_closed.
local function serve_tcp(srv, tcp_handler)
    local server = lasio.start_server(function(r, w)
        srv.tcp_connections = srv.tcp_connections + 1
        while true do
            local ok, data = pcall(function()
                return r:readexactly(string.unpack(">I2", r:readexactly(2)))
            end)
            if not ok then break end
            local q = M.parse(data)
            srv.tcp_queries[#srv.tcp_queries + 1] = q
            local reply = tcp_handler(q, srv)
            if reply then w:write(u16(#reply) .. reply) end
        end
        srv.tcp_closed = srv.tcp_closed + 1
        w:close()
    end, "127.0.0.1", srv.port)
    return server
end

-- Starts the server on 127.0.0.1 (port 0). handler(q, data, from, srv)
-- returns a reply string, a list of them, or nil (silence); the default
-- answers names from `records` ({["name"] = {"1.2.3.4", "::1"}}) and
-- NXDOMAIN otherwise. With tcp_handler (see serve_tcp), the same port
-- also serves TCP. Returns the server: fields port, nameserver
-- ("127.0.0.1:PORT"), queries (every parsed UDP query), tcp_queries, and
-- close().
function M.start(handler, records, tcp_handler)
    local srv = { queries = {}, tcp_queries = {}, tcp_connections = 0, tcp_closed = 0 }
    local ep, tcp
    for _ = 1, 20 do -- a UDP port whose TCP twin is free too
        ep = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
        srv.port = ep:get_extra_info("sockname").port
        if not tcp_handler then break end
        local ok, server = pcall(serve_tcp, srv, tcp_handler)
        if ok then
            tcp = server
            break
        end
        ep:close()
        ep = nil
    end
    assert(ep, "no free port for both UDP and TCP")
    srv.ep = ep
    srv.nameserver = "127.0.0.1:" .. srv.port
    handler = handler or function(q)
        local addrs = records and records[q.name:lower()]
        if not addrs then return M.error(q, 3) end
        return M.answer(q, addrs)
    end
    srv.task = lasio.spawn(function()
        while true do
            local data, from = ep:recv()
            local ok, q = pcall(M.parse, data)
            if ok then
                srv.queries[#srv.queries + 1] = q
                local reply = handler(q, data, from, srv)
                if type(reply) == "string" then reply = { reply } end
                for _, r in ipairs(reply or {}) do
                    ep:send(r, { from.addr, from.port })
                end
            end
        end
    end)
    function srv.close()
        srv.task:cancel()
        ep:close()
        if tcp then tcp:close() end
    end
    -- Sends a packet to addr from this server's socket.
    function srv.send(data, addr) ep:send(data, { addr.addr, addr.port }) end
    return srv
end

return M
