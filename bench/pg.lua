-- PostgreSQL client benchmark, lasio side (bench/README.md, "PostgreSQL"):
-- SELECT of one row by key on one connection, N queries, either one at a
-- time (plain) or with INFLIGHT tasks issuing them at once (concurrent:
-- pipelined on the one connection). Reports queries per client
-- CPU-second (os.clock: this process's CPU time) and per wall second.
-- Usage: lasio bench/pg.lua CONNINFO N INFLIGHT   (table kv from pg.sh)
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"
local pg = require "lasio.pg"
local common = require "common"

local conninfo = assert(arg[1], "usage: bench/pg.lua CONNINFO N INFLIGHT")
local n = common.arg(2, 20000)
local inflight = common.arg(3, 1)

local db = pg.connect(conninfo)
local sql = "SELECT id, v FROM kv WHERE id = $1"
db:query(sql, 1) -- warm up

local function worker(count, seed)
    local key = seed
    for _ = 1, count do
        key = key % 1000 + 1
        local row = db:query(sql, key)[1]
        assert(row.id == key)
    end
end

local wall0, cpu0 = lasio.time(), os.clock()
if inflight <= 1 then
    worker(n, 0)
else
    local tasks = {}
    for i = 1, inflight do
        tasks[i] = lasio.spawn(worker, n // inflight, i * 7)
    end
    lasio.gather(table.unpack(tasks))
    n = (n // inflight) * inflight
end
local wall, cpu = lasio.time() - wall0, os.clock() - cpu0
db:close()
common.result({peer = "lasio", inflight = inflight, n = n,
    per_cpu_s = math.floor(n / cpu), per_s = math.floor(n / wall)},
    {"peer", "inflight", "n", "per_cpu_s", "per_s"})
