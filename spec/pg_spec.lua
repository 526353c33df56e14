-- lasio.pg against a real PostgreSQL (spec/pg_server.lua): types both
-- ways, large values, many queries in flight, the server killed
-- mid-query, cancellation, transactions, LISTEN/NOTIFY, bad input, and no
-- fd or memory growth over connect/close cycles.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local pg_server = require "pg_server"
local async = helper.async_guarded
local t = helper.t
local sanitized = os.getenv("LASIO_SANITIZED") ~= nil

local srv
setup(function() srv = pg_server.start() end)
teardown(function() pg_server.stop(srv) end)

local function pg() return require("lasio.pg") end

local function rss_kib()
    local f = assert(io.open("/proc/self/statm"))
    local _, rss = f:read("n", "n")
    f:close()
    return rss * 4
end

local function fd_count()
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("n")
    f:close()
    local h = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
    local n = tonumber(h:read("l"))
    h:close()
    return n
end

describe("lasio.pg types", function()
    it("reads the common types as Lua values", async(function()
        local db <close> = pg().connect(srv.conninfo)
        local rows, n = db:query([[
            SELECT true AS b, false AS f, 7::int2 AS i2, -8::int4 AS i4,
                   9223372036854775807::int8 AS i8, 1.5::float4 AS f4,
                   0.1::float8 AS f8, 'NaN'::float8 AS nan,
                   '-Infinity'::float8 AS ninf,
                   12345678901234567890.123::numeric AS num,
                   'héllo'::text AS t, 'v'::varchar(4) AS v,
                   'c'::char(3) AS c, '\x00ff41'::bytea AS by,
                   NULL::int AS nothing, '{"a": [1, 2]}'::json AS j,
                   '{"b": 1}'::jsonb AS jb,
                   '2024-02-29 12:34:56.789'::timestamp AS ts,
                   '2024-02-29'::date AS d, 42::oid AS o]])
        assert.equal(1, n)
        local r = rows[1]
        assert.equal(true, r.b)
        assert.equal(false, r.f)
        assert.equal(7, r.i2)
        assert.equal(-8, r.i4)
        assert.equal(math.maxinteger, r.i8)
        assert.equal("integer", math.type(r.i8))
        assert.equal(1.5, r.f4)
        assert.equal(0.1, r.f8)
        assert.is_true(r.nan ~= r.nan)
        assert.equal(-math.huge, r.ninf)
        assert.equal("12345678901234567890.123", r.num)
        assert.equal("héllo", r.t)
        assert.equal("v", r.v)
        assert.equal("c  ", r.c)
        assert.equal("\0\255A", r.by)
        assert.is_nil(r.nothing)
        assert.equal('{"a": [1, 2]}', r.j)
        assert.equal('{"b": 1}', r.jb)
        assert.equal("2024-02-29 12:34:56.789", r.ts)
        assert.equal("2024-02-29", r.d)
        assert.equal(42, r.o)
    end))

    it("sends Lua values as parameters", async(function()
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local rows = db:query([[SELECT $1::bool AS b, $2::int8 AS i,
            $3::float8 AS f, $4::text AS t, $5::bytea AS by, $6::int AS n,
            $7::numeric AS num, $8::float8 AS inf, $9::jsonb AS j,
            $10::timestamptz AT TIME ZONE 'UTC' AS ts, $11::float8 AS exact]],
            true, math.mininteger, -2.25, "it's \"quoted\"",
            pgm.bytea("\0\1\2\255"), nil, "3.14159265358979323846",
            math.huge, '{"k": "v"}', "2020-01-02 03:04:05+00", 0.1 + 0.2)
        local r = rows[1]
        assert.equal(true, r.b)
        assert.equal(math.mininteger, r.i)
        assert.equal(-2.25, r.f)
        assert.equal("it's \"quoted\"", r.t)
        assert.equal("\0\1\2\255", r.by)
        assert.is_nil(r.n)
        assert.equal("3.14159265358979323846", r.num)
        assert.equal(math.huge, r.inf)
        assert.equal('{"k": "v"}', r.j)
        assert.equal("2020-01-02 03:04:05", r.ts)
        assert.equal(0.1 + 0.2, r.exact) -- %.17g round-trips a double
    end))

    it("sends many parameters", async(function()
        local db <close> = pg().connect(srv.conninfo)
        local terms, args = {}, {}
        for i = 1, 40 do
            terms[i] = "$" .. i .. "::int"
            args[i] = i
        end
        local rows = db:query("SELECT " .. table.concat(terms, " + ")
            .. " AS s", table.unpack(args))
        assert.equal(40 * 41 // 2, rows[1].s)
    end))

    it("reports affected rows and keeps rows in order", async(function()
        local db <close> = pg().connect(srv.conninfo)
        db:query("CREATE TEMP TABLE items (id int PRIMARY KEY, name text)")
        local rows, n = db:query("INSERT INTO items SELECT g, 'n' || g "
            .. "FROM generate_series(1, 100) g")
        assert.same({}, rows)
        assert.equal(100, n)
        n = select(2, db:query("UPDATE items SET name = $1 WHERE id <= $2",
            "x", 10))
        assert.equal(10, n)
        rows, n = db:query("SELECT id, name FROM items ORDER BY id")
        assert.equal(100, n)
        assert.equal(100, #rows)
        for i, r in ipairs(rows) do
            assert.equal(i, r.id)
            assert.equal(i <= 10 and "x" or "n" .. i, r.name)
        end
        rows, n = db:query("SELECT 1 WHERE false")
        assert.same({}, rows)
        assert.equal(0, n)
    end))

    it("moves a 10 MiB value both ways", async(function()
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local big = string.rep("0123456789abcdef", 10 * 65536)
        local rows = db:query("SELECT $1::text AS t, length($1::text) AS n",
            big)
        assert.equal(#big, rows[1].n)
        assert.is_true(rows[1].t == big)
        local bin = big:gsub("0", "\0")
        rows = db:query("SELECT $1::bytea AS b", pgm.bytea(bin))
        assert.is_true(rows[1].b == bin)
    end))
end)

describe("lasio.pg concurrency", function()
    it("answers many queries in flight on one connection in order",
        async(function()
        local lasio = require "lasio"
        local db <close> = pg().connect(srv.conninfo)
        local n = sanitized and 200 or 2000
        local tasks = {}
        for i = 1, n do
            tasks[i] = lasio.spawn(function()
                return db:query("SELECT $1::int * 2 AS v", i)[1].v
            end)
        end
        local got = { lasio.gather(table.unpack(tasks)) }
        for i = 1, n do assert.equal(2 * i, got[i]) end
        assert.equal(0, db:info().in_flight)
    end))

    it("runs many tasks' queries on a pool", async(function()
        local lasio = require "lasio"
        local pool <close> = pg().pool(srv.conninfo, { size = 4 })
        local ntasks, each = 50, sanitized and 5 or 40
        local tasks = {}
        for i = 1, ntasks do
            tasks[i] = lasio.spawn(function()
                local sum = 0
                for j = 1, each do
                    sum = sum + pool:query("SELECT $1::int + $2::int AS v",
                        i, j)[1].v
                end
                return sum
            end)
        end
        local got = { lasio.gather(table.unpack(tasks)) }
        for i = 1, ntasks do
            assert.equal(i * each + each * (each + 1) // 2, got[i])
        end
        assert.is_true(pool.total <= 4)
    end))

    it("a failing query does not disturb the ones around it",
        async(function()
        local lasio = require "lasio"
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local a = lasio.spawn(db.query, db, "SELECT 1 AS v")
        local b = lasio.spawn(db.query, db, "SELECT 1/0")
        local c = lasio.spawn(db.query, db, "SELECT 3 AS v")
        assert.equal(1, lasio.await(a)[1].v)
        local ok, e = pcall(lasio.await, b)
        assert.is_false(ok)
        assert.is_true(pgm.Error:is(e))
        assert.equal("22012", e.sqlstate)
        assert.equal(3, lasio.await(c)[1].v)
    end))
end)

describe("lasio.pg cancellation", function()
    it("cancels the running query of a cancelled task; the connection "
        .. "stays usable", async(function()
        local lasio = require "lasio"
        local db <close> = pg().connect(srv.conninfo)
        local task = lasio.spawn(db.query, db, "SELECT pg_sleep(10)")
        lasio.sleep(0.2)
        local t0 = lasio.time()
        task:cancel()
        local ok, e = pcall(lasio.await, task)
        assert.is_false(ok)
        assert.is_true(helper.is_cancelled(e))
        -- the server stopped the sleep: the next query is answered now
        assert.equal(5, db:query("SELECT 5 AS v")[1].v)
        assert.is_true(lasio.time() - t0 < t(5))
        local active = db:query("SELECT count(*) AS n FROM pg_stat_activity "
            .. "WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'")
        assert.equal(0, active[1].n)
    end))

    it("a cancel that comes late never stops the next query", async(function()
        local lasio = require "lasio"
        local db <close> = pg().connect(srv.conninfo)
        -- each query is cancelled about when it ends, and the next one
        -- follows at once: a cancel request still on its way would stop it
        for i = 1, 40 do
            local task = lasio.spawn(db.query, db, "SELECT pg_sleep(0.005)")
            lasio.sleep(0.001 * (i % 6))
            task:cancel()
            pcall(lasio.await, task)
            local rows, err = db:query("SELECT pg_sleep(0.02), $1::int AS v", i)
            assert.is_truthy(rows, not rows and err.message or nil)
            assert.equal(i, rows[1].v)
        end
    end))

    it("wait_for times out a slow query", async(function()
        local lasio = require "lasio"
        local db <close> = pg().connect(srv.conninfo)
        local ok, e = pcall(lasio.wait_for, function()
            return db:query("SELECT pg_sleep(10)")
        end, 0.2)
        assert.is_false(ok)
        assert.is_true(lasio.TimeoutError:is(e))
        assert.equal(1, db:query("SELECT 1 AS v")[1].v)
    end))

    it("a cancelled task waiting behind another drops its result",
        async(function()
        local lasio = require "lasio"
        local db <close> = pg().connect(srv.conninfo)
        local first = lasio.spawn(db.query, db, "SELECT pg_sleep(0.3), 1 AS v")
        local second = lasio.spawn(db.query, db, "SELECT 2 AS v")
        lasio.sleep(0.05)
        second:cancel()
        assert.is_false(pcall(lasio.await, second))
        assert.equal(1, lasio.await(first)[1].v)
        assert.equal(3, db:query("SELECT 3 AS v")[1].v)
        assert.equal(0, db:info().in_flight)
    end))
end)

describe("lasio.pg transactions", function()
    it("commits on normal exit and rolls back on an error", async(function()
        local pgm = pg()
        local pool <close> = pgm.pool(srv.conninfo, { size = 2 })
        pool:query("CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, "
            .. "balance int)")
        pool:query("TRUNCATE accounts")
        do
            local tx <close> = pool:transaction()
            tx:query("INSERT INTO accounts VALUES (1, 100), (2, 0)")
        end
        assert.equal(2, select(2, pool:query("SELECT * FROM accounts")))
        local ok, e = pcall(function()
            local tx <close> = pool:transaction()
            tx:query("UPDATE accounts SET balance = balance - 50 WHERE id = 1")
            error("boom")
        end)
        assert.is_false(ok)
        assert.matches("boom", tostring(e))
        local rows = pool:query("SELECT balance FROM accounts WHERE id = 1")
        assert.equal(100, rows[1].balance)
        -- a failed statement inside: rolled back, the error is the server's
        ok, e = pcall(function()
            local tx <close> = pool:transaction()
            tx:query("UPDATE accounts SET balance = 1 WHERE id = 2")
            tx:query("INSERT INTO accounts VALUES (1, 5)")
        end)
        assert.is_false(ok)
        assert.equal("23505", e.sqlstate)
        rows = pool:query("SELECT balance FROM accounts WHERE id = 2")
        assert.equal(0, rows[1].balance)
        -- explicit commit and rollback on one connection
        local db <close> = pgm.connect(srv.conninfo)
        local tx = db:transaction()
        db:query("UPDATE accounts SET balance = 7 WHERE id = 2")
        assert.equal("intrans", db:info().transaction)
        tx:rollback()
        assert.equal("idle", db:info().transaction)
        assert.equal(0, db:query("SELECT balance FROM accounts WHERE id = 2")
            [1].balance)
        tx = db:transaction()
        db:query("UPDATE accounts SET balance = 8 WHERE id = 2")
        tx:commit()
        assert.equal(8, db:query("SELECT balance FROM accounts WHERE id = 2")
            [1].balance)
        assert.matches("transaction is over", tostring(helper.raises(
            tx.commit, tx)))
        pool:query("DROP TABLE accounts")
    end))

    it("rolls back when the task is cancelled inside", async(function()
        local lasio = require "lasio"
        local pool <close> = pg().pool(srv.conninfo, { size = 1 })
        pool:query("CREATE TABLE IF NOT EXISTS cx (v int)")
        local task = lasio.spawn(function()
            local tx <close> = pool:transaction()
            tx:query("INSERT INTO cx VALUES (1)")
            lasio.sleep(10)
        end)
        lasio.sleep(0.2)
        task:cancel()
        assert.is_false(pcall(lasio.await, task))
        assert.equal(0, pool:query("SELECT count(*) AS n FROM cx")[1].n)
        pool:query("DROP TABLE cx")
    end))
end)

describe("lasio.pg LISTEN/NOTIFY", function()
    it("delivers notifications across two connections", async(function()
        local lasio = require "lasio"
        local pgm = pg()
        local listener <close> = pgm.connect(srv.conninfo)
        local sender <close> = pgm.connect(srv.conninfo)
        local got = {}
        -- LISTEN runs before listen returns: nothing sent after is missed
        local iter, a, b, closer = listener:listen("jobs")
        local task = lasio.spawn(function()
            local _ <close> = closer
            for channel, payload, pid in iter, a, b do
                got[#got + 1] = { channel, payload, pid }
                if payload == "3" then break end
            end
        end)
        sender:notify("other", "ignored")
        for i = 1, 3 do sender:notify("jobs", tostring(i)) end
        lasio.await(task)
        assert.equal(3, #got)
        for i = 1, 3 do
            assert.equal("jobs", got[i][1])
            assert.equal(tostring(i), got[i][2])
            assert.equal(sender:info().pid, got[i][3])
        end
    end))

    it("ends the iteration when the connection is closed", async(function()
        local lasio = require "lasio"
        local db = pg().connect(srv.conninfo)
        local n = 0
        local task = lasio.spawn(function()
            for _ in db:listen("quiet") do n = n + 1 end
            return "ended"
        end)
        lasio.sleep(0.2)
        db:close()
        assert.equal("ended", lasio.await(task))
        assert.equal(0, n)
    end))
end)

describe("lasio.pg bad input", function()
    it("names a malformed conninfo", async(function()
        local pgm = pg()
        local e = helper.raises(pgm.connect, "host=x port")
        assert.is_true(pgm.Error:is(e))
        assert.matches("pg.connect: malformed conninfo", e.message)
        assert.matches("port", e.message)
        e = helper.raises(pgm.connect, "postgresql://[::1")
        assert.matches("malformed conninfo", e.message)
        e = helper.raises(pgm.connect, 42)
        assert.matches("conninfo must be a string", tostring(e))
    end))

    it("names a wrong password and a refused connection", async(function()
        local pgm = pg()
        local e = helper.raises(pgm.connect, srv.tcp
            .. " user=secret password=wrong-pw")
        assert.is_true(pgm.Error:is(e))
        assert.matches("password authentication failed for user \"secret\"",
            e.message)
        assert.equal("08001", e.sqlstate)
        local db = pgm.connect(srv.tcp .. " user=secret password=right-pw")
        assert.equal("secret", db:query("SELECT current_user AS u")[1].u)
        db:close()
        e = helper.raises(pgm.connect, "host=127.0.0.1 port=1")
        assert.matches("Connection refused", e.message)
    end))

    it("resolves a host name without blocking", async(function()
        local db <close> = pg().connect(string.format(
            "host=localhost port=%d user=secret password=right-pw "
            .. "dbname=postgres sslmode=disable", srv.port))
        assert.equal(1, db:query("SELECT 1 AS v")[1].v)
        local e = helper.raises(pg().connect,
            "host=no-such-host.invalid port=5432")
        assert.matches("getaddrinfo", tostring(e))
    end))

    it("names SQL errors with their SQLSTATE", async(function()
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local e = helper.raises(db.query, db, "SELEC 1")
        assert.is_true(pgm.Error:is(e))
        assert.equal("42601", e.sqlstate)
        assert.equal("ERROR", e.severity)
        assert.equal("1", e.position)
        assert.matches('query: syntax error at or near "SELEC" %(SQLSTATE '
            .. '42601%)', e.message)
        e = helper.raises(db.query, db, "SELECT $1::int + $2::int", 1)
        assert.equal("08P01", e.sqlstate)
        assert.matches("bind message supplies 1 parameters, but prepared "
            .. "statement \"\" requires 2", e.message)
        e = helper.raises(db.query, db, "SELECT * FROM no_such_table")
        assert.equal("42P01", e.sqlstate)
        e = helper.raises(db.query, db, "SELECT $1::int", "abc")
        assert.equal("22P02", e.sqlstate)
        -- misuse raises at once, naming the parameter
        e = helper.raises(db.query, db, "SELECT $1", {})
        assert.matches("query: parameter %$1 is a table", tostring(e))
        e = helper.raises(db.query, db, "SELECT $1, $2", 1, print)
        assert.matches("query: parameter %$2: cannot send a function",
            tostring(e))
        e = helper.raises(db.query, db, 42)
        assert.matches("query: sql must be a string, got number", tostring(e))
        -- and the connection is still fine
        assert.equal(1, db:query("SELECT 1 AS v")[1].v)
    end))

    it("refuses COPY and several statements clearly", async(function()
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local e = helper.raises(db.query, db, "SELECT 1; SELECT 2")
        assert.matches("cannot insert multiple commands", e.message)
        assert.equal(1, db:query("SELECT 1 AS v")[1].v)
        e = helper.raises(db.query, db, "COPY (SELECT 1) TO STDOUT")
        assert.matches("COPY is not supported", e.message)
        assert.equal("0A000", e.sqlstate)
        assert.equal("broken", db:info().state)
        e = helper.raises(db.query, db, "SELECT 1")
        assert.matches("COPY is not supported", e.message)
        assert.equal("08006", e.sqlstate)
    end))

    it("fails queries on a closed connection", async(function()
        local pgm = pg()
        local db = pgm.connect(srv.conninfo)
        db:close()
        local e = helper.raises(db.query, db, "SELECT 1")
        assert.matches("connection closed", e.message)
        assert.equal("08006", e.sqlstate)
        db:close() -- idempotent
    end))

    it("is a clear error outside a task", function()
        -- stock lua5.4 has no running loop outside lasio.run (the lasio
        -- command runs a script as its main task)
        local out = helper.run_child(string.format([[
            local pg = require "lasio.pg"
            print(select(2, pcall(pg.connect, %q)))]], srv.conninfo),
            { interp = "lua5.4" })
        assert.matches("pg.connect: no running loop", out)
    end)
end)

describe("lasio.pg resources", function()
    it("keeps fds and memory flat over connect/close cycles",
        async(function()
        local pgm = pg()
        -- a connection costs the server a fork and a backend start (about
        -- 0.1 s on a loaded machine): fewer cycles than 10,000 here
        local n = sanitized and 50 or 200
        local function cycle()
            local db = pgm.connect(srv.conninfo)
            db:query("SELECT 1")
            db:close()
        end
        for _ = 1, 20 do cycle() end
        collectgarbage()
        collectgarbage()
        local fds, mem, rss = fd_count(), collectgarbage("count"), rss_kib()
        for _ = 1, n do cycle() end
        collectgarbage()
        collectgarbage()
        assert.is_true(fd_count() <= fds, "fds grew")
        assert.is_true(collectgarbage("count") < mem + 256,
            "Lua memory grew: " .. mem .. " -> " .. collectgarbage("count"))
        assert.is_true(rss_kib() < rss + 4096,
            "RSS grew: " .. rss .. " -> " .. rss_kib() .. " KiB")
    end))
end)

describe("lasio.pg server failure", function()
    it("fails a query clearly when the server is killed mid-query",
        async(function()
        local lasio = require "lasio"
        local pgm = pg()
        local db <close> = pgm.connect(srv.conninfo)
        local pid = db:info().pid
        local task = lasio.spawn(db.query, db, "SELECT pg_sleep(30)")
        lasio.sleep(0.2)
        os.execute("kill -9 " .. pid)
        local ok, e = pcall(lasio.wait_for, task, t(10))
        assert.is_false(ok)
        assert.is_true(pgm.Error:is(e))
        assert.matches("server closed the connection unexpectedly", e.message)
        assert.equal("broken", db:info().state)
        e = helper.raises(db.query, db, "SELECT 1")
        assert.matches("server closed the connection", e.message)
        -- the postmaster recovers; a new connection works
        assert.is_true(pg_server.wait_ready(srv, t(30)))
        local db2 <close> = pgm.connect(srv.conninfo)
        assert.equal(1, db2:query("SELECT 1 AS v")[1].v)
    end))
end)

describe("lasio.pg and the loop's end", function()
    it("a connection outliving its loop is closed by it, and collected "
        .. "safely", function()
        local out, err, status = helper.run_child(([[
local lasio = require "lasio"
local pg = require "lasio.pg"
local db
lasio.run(function()
    db = pg.connect(%q)
    db:query("SELECT 1")
end)
print(db:info().state)
collectgarbage()
collectgarbage()
db:close()
db = nil
collectgarbage()
collectgarbage()
print("ok")
]]):format(srv.conninfo), { interp = "lua5.4" })
        assert.are.equal("", err)
        assert.is_true(status == 0 or status == true)
        assert.are.equal("closed\nok\n", out)
    end)
end)

describe("lasio.pg loading", function()
    -- Startup: neither the facade nor require "lasio.pg" maps libpq; the
    -- first connection does (src/db/pg_dl.c), in the command and in
    -- stock lua5.4 loading the module.
    for _, interp in ipairs(helper.interps) do
        it("loads libpq on the first connection, not before (" .. interp
            .. ")", function()
            local out, err, status = helper.run_child(([[
local lasio = require "lasio"
local function mapped()
    local f = assert(io.open("/proc/self/maps"))
    local maps = f:read("a")
    f:close()
    return maps:find("libpq", 1, true) ~= nil
end
print("start", mapped())
local pg = lasio.pg
print("required", mapped())
lasio.run(function()
    local db <close> = pg.connect(%q)
    print("connected", mapped(), db:query("SELECT 7 AS v")[1].v)
end)
]]):format(srv.conninfo), { interp = interp })
            assert.are.equal("", err)
            assert.is_true(status == 0 or status == true)
            assert.are.equal("start\tfalse\nrequired\tfalse\nconnected\ttrue\t7\n",
                out)
        end)
    end
end)
