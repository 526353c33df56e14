-- lasio.redis against a real redis-server (spec/redis_server.lua): reply
-- types, large values, pipelines, pub/sub, a server killed mid-call,
-- cancellation, bad input, the pool, and no fd or memory growth.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local net = require "net_helper"
local redis_server = require "redis_server"
local lasio = require "lasio"

local async = helper.async_guarded

describe("lasio.redis", function()
    local server, redis

    setup(function()
        server = redis_server.start()
        redis = lasio.redis
    end)

    teardown(function()
        if server then server:stop() end
    end)

    -- a fresh client on database 0, emptied
    local function client(spec)
        local c = redis.connect(spec or server:url())
        return c
    end

    describe("replies", function()
        it("turns every RESP2 reply type into Lua values", async(function()
            local c <close> = client()
            c:call("FLUSHALL")
            -- status, bulk, nil, integer
            assert.are.equal("OK", c:call("SET", "k", "v"))
            assert.are.equal("PONG", c:call("PING"))
            assert.are.equal("v", c:call("GET", "k"))
            assert.is_nil(c:call("GET", "missing"))
            assert.are.equal(1, c:call("INCR", "n"))
            assert.is_true(math.type(c:call("INCR", "n")) == "integer")
            assert.are.equal(-5, c:call("DECRBY", "neg", 5))
            assert.are.equal(1 << 62, c:call("INCRBY", "big", 1 << 62))
            -- empty and binary-safe bulk strings
            c:call("SET", "empty", "")
            assert.are.equal("", c:call("GET", "empty"))
            local bin = "a\0b\r\n\255"
            c:call("SET", "bin", bin)
            assert.are.equal(bin, c:call("GET", "bin"))
            -- numbers as arguments: integers as integers, floats in full
            assert.are.equal("0.1", c:call("INCRBYFLOAT", "f", 0.1))
            c:call("SET", "third", 1 / 3)
            assert.are.equal(1 / 3, tonumber(c:call("GET", "third")))
            assert.are.equal(7, c:call("SETRANGE", "r", 0, "1234567"))
            -- arrays: empty, flat, nested, with nils (redis.null)
            assert.are.same({}, c:call("LRANGE", "nolist", 0, -1))
            c:call("RPUSH", "list", "a", "b", "c")
            assert.are.same({"a", "b", "c"}, c:call("LRANGE", "list", 0, -1))
            local m = c:call("MGET", "k", "missing", "k")
            assert.are.equal(3, #m)
            assert.are.equal("v", m[1])
            assert.are.equal(redis.null, m[2])
            assert.are.same({1, {2, {"x"}}, "s"},
                c:call("EVAL", "return {1, {2, {'x'}}, 's'}", 0))
        end))

        it("raises a Redis error reply as a ReplyError with its code", async(function()
            local c <close> = client()
            c:call("SET", "str", "v")
            local e = helper.raises(c.call, c, "LPUSH", "str", "x")
            assert.is_true(redis.ReplyError:is(e))
            assert.is_true(lasio.Error:is(e))
            assert.are.equal("WRONGTYPE", e.code)
            assert.matches("^WRONGTYPE Operation against a key", e.message)
            assert.matches("^ReplyError: WRONGTYPE", tostring(e))
            e = helper.raises(c.call, c, "NOSUCHCOMMAND", "x")
            assert.are.equal("ERR", e.code)
            assert.matches("unknown command", e.message)
            -- the connection goes on in order
            assert.are.equal("v", c:call("GET", "str"))
        end))

        it("gives errors inside an array as ReplyError values (EXEC)", async(function()
            local c <close> = client()
            c:call("SET", "s", "text")
            -- nothing can come between commands sent with no await between
            local f1 = c:send("MULTI")
            local f2 = c:send("INCR", "s")
            local f3 = c:send("SET", "s2", "x")
            local exec = c:send("EXEC")
            assert.are.equal("OK", f1:await())
            assert.are.equal("QUEUED", f2:await())
            assert.are.equal("QUEUED", f3:await())
            local r = exec:await()
            assert.are.equal(2, #r)
            assert.is_true(redis.ReplyError:is(r[1]))
            assert.are.equal("ERR", r[1].code)
            assert.are.equal("OK", r[2])
        end))

        it("carries a 10 MiB value both ways, over TCP and a Unix socket", async(function()
            local big = string.rep("0123456789abcdef", 10 * 65536)
            for _, spec in ipairs{server:url(), "unix://" .. server.socket} do
                local c <close> = client(spec)
                assert.are.equal("OK", c:call("SET", "big", big))
                local got = c:call("GET", "big")
                assert.are.equal(#big, #got)
                assert.is_true(got == big)
                assert.are.equal(#big, c:call("STRLEN", "big"))
            end
        end))
    end)

    describe("pipelining", function()
        it("answers 10 000 commands in flight in order", async(function()
            local c <close> = client()
            c:call("DEL", "counter")
            local n = net.scale(10000)
            local futs = {}
            for i = 1, n do futs[i] = c:send("INCR", "counter") end
            for i = 1, n do assert.are.equal(i, futs[i]:await()) end
            assert.are.equal(tostring(n), c:call("GET", "counter"))
        end))

        it("serves many tasks calling on one client at once", async(function()
            local c <close> = client()
            local tasks = {}
            for t = 1, 50 do
                tasks[t] = lasio.spawn(function()
                    for i = 1, 20 do
                        local key = "t" .. t .. ":" .. i
                        c:call("SET", key, t * 1000 + i)
                        assert.are.equal(tostring(t * 1000 + i), c:call("GET", key))
                    end
                    return t
                end)
            end
            for t = 1, 50 do assert.are.equal(t, tasks[t]:await()) end
        end))
    end)

    describe("pub/sub", function()
        it("delivers messages published on another connection", async(function()
            local c <close> = client()
            local pub <close> = client()
            local sub <close> = c:subscribe("news", "sport")
            -- subscribed once subscribe returns: nothing published is lost
            assert.are.equal(1, pub:call("PUBLISH", "news", "hello"))
            assert.are.equal(1, pub:call("PUBLISH", "sport", "goal"))
            pub:call("PUBLISH", "other", "nobody listens")
            local got = {}
            for channel, msg in sub:messages() do
                got[#got + 1] = channel .. "=" .. msg
                if #got == 2 then break end
            end
            assert.are.same({"news=hello", "sport=goal"}, got)
            -- patterns, on the same subscription
            sub:psubscribe("log.*")
            pub:call("PUBLISH", "log.error", "disk full")
            local channel, msg, pattern = sub:next()
            assert.are.same({"log.error", "disk full", "log.*"}, {channel, msg, pattern})
            -- after unsubscribing, a channel's messages stop
            sub:unsubscribe("news")
            assert.are.equal(0, pub:call("PUBLISH", "news", "gone"))
            assert.are.equal(1, pub:call("PUBLISH", "sport", "again"))
            assert.are.same({"sport", "again"}, {sub:next()})
            -- the client itself stays usable for commands
            assert.are.equal("PONG", c:call("PING"))
        end))

        it("ends the iteration when the subscription is closed", async(function()
            local c <close> = client()
            local sub = c:subscribe("quiet")
            local reader = lasio.spawn(function()
                local n = 0
                for _ in sub:messages() do n = n + 1 end
                return n
            end)
            lasio.sleep(0.05)
            sub:close()
            assert.are.equal(0, lasio.wait_for(reader, helper.t(5)))
        end))

        it("refuses SUBSCRIBE through call, which would break the reply order", async(function()
            local c <close> = client()
            local e = helper.raises(c.call, c, "subscribe", "x")
            assert.matches("client:call: subscribe needs a connection of its own", e)
            e = helper.raises(c.send, c, "MONITOR")
            assert.matches("client:send: MONITOR needs a connection of its own", e)
            assert.are.equal("PONG", c:call("PING"))
        end))
    end)

    describe("failures", function()
        it("fails a call with a clear error when the server dies, and reconnects after", async(function()
            local c <close> = client()
            local waiting = lasio.spawn(function() return c:call("BLPOP", "never", 0) end)
            lasio.sleep(0.1)
            server:kill()
            local done = lasio.wait({waiting}, {timeout = helper.t(10)})
            assert.are.equal(1, #done, "the call hung")
            local e = waiting:exception()
            assert.is_true(redis.ConnectionError:is(e))
            assert.is_true(lasio.OSError:is(e))
            assert.matches("127%.0%.0%.1:" .. server.port, e.message)
            -- while the server is down: connection refused, named
            e = helper.raises(c.call, c, "PING")
            assert.is_true(redis.ConnectionError:is(e))
            assert.are.equal("ECONNREFUSED", e.code)
            assert.matches("connect 127%.0%.0%.1:" .. server.port
                .. ": Connection refused", e.message)
            server:restart()
            assert.are.equal("PONG", c:call("PING"))
            assert.are.equal("OK", c:call("SET", "after", "restart"))
            -- the server goes away while the client is idle (and the loop
            -- sees the connection end): the next command, a blocking one
            -- too, reconnects before it is sent
            local function bounce()
                server:kill()
                assert.is_true(helper.wait_until(function()
                    return c.conn:status() == "closed"
                end))
                server:restart()
            end
            bounce()
            assert.is_nil(c:call("BLPOP", "nothing", 0.1))
            bounce()
            assert.are.equal("PONG", c:send("PING"):await())
        end))

        it("refuses a connection with ConnectionError naming the address", async(function()
            local e = helper.raises(redis.connect, "redis://127.0.0.1:1")
            assert.is_true(redis.ConnectionError:is(e))
            assert.are.equal("ECONNREFUSED", e.code)
            assert.are.equal("connect 127.0.0.1:1: Connection refused", e.message)
            e = helper.raises(redis.connect, "unix:///nonexistent/redis.sock")
            assert.are.equal("ENOENT", e.code)
            assert.matches("/nonexistent/redis.sock", e.message)
        end))

        it("times a command out under command_timeout and stays in order", async(function()
            local c <close> = client({port = server.port, command_timeout = 0.2})
            local t0 = lasio.get_running_loop():time()
            -- a script that keeps the server busy for one second
            local e = helper.raises(c.call, c, "EVAL",
                "local function now() local t = redis.call('TIME') "
                .. "return t[1] * 1000000 + t[2] end "
                .. "local s = now() while now() < s + 1000000 do end return 1", 0)
            assert.is_true(lasio.TimeoutError:is(e))
            assert.matches("no reply to EVAL within 0%.2 s", e.message)
            assert.is_true(lasio.get_running_loop():time() - t0 < helper.t(1))
            -- once the script is over, its late reply is read and dropped:
            -- the next reply is PING's
            lasio.sleep(1.2)
            assert.are.equal("PONG", c:call("PING"))
        end))
    end)

    describe("cancellation", function()
        it("cancels a task waiting in BLPOP; the connection stays usable", async(function()
            local c <close> = client()
            c:call("DEL", "jobs")
            local t = lasio.spawn(function() return c:call("BLPOP", "jobs", 0) end)
            lasio.sleep(0.1)
            t:cancel()
            local done = lasio.wait({t}, {timeout = helper.t(5)})
            assert.are.equal(1, #done)
            assert.is_true(t:cancelled())
            -- the server let go of the BLPOP (CLIENT UNBLOCK): no hang here
            assert.are.equal("PONG", lasio.wait_for(function() return c:call("PING") end,
                helper.t(5)))
            -- and a later push is not eaten by the cancelled BLPOP
            c:call("RPUSH", "jobs", "j1")
            assert.are.same({"jobs", "j1"}, c:call("BLPOP", "jobs", 1))
        end))

        it("drops the reply of a cancelled call and keeps the order", async(function()
            local c <close> = client()
            c:call("SET", "a", "1")
            c:call("SET", "b", "2")
            local ta = lasio.spawn(function() return c:call("GET", "a") end)
            local tb = lasio.spawn(function() return c:call("GET", "b") end)
            lasio.sleep(0) -- both commands are sent
            ta:cancel()
            assert.are.equal("2", tb:await())
            assert.is_true(ta:cancelled())
            assert.are.equal("1", c:call("GET", "a"))
            assert.are.equal(0, c.conn:pending())
        end))
    end)

    describe("bad input", function()
        it("names what is wrong with a malformed URL or option", async(function()
            for _, case in ipairs{
                {"http://127.0.0.1", "the scheme must be redis:// or unix://"},
                {"127.0.0.1:6379", "redis://host:port/db or unix:///path expected"},
                {"redis://127.0.0.1:99999", "the port must be a number from 1 to 65535"},
                {"redis://127.0.0.1:6379/db", "the path must be /<database number>"},
                {"redis://127.0.0.1?x=1", "unknown or bad query parameter 'x'"},
                {"unix://relative/sock", "the socket path must be absolute"},
                {"rediss://127.0.0.1", "TLS (rediss://) is not available"},
            } do
                local e = helper.raises(redis.connect, case[1])
                assert.is_string(e)
                assert.matches("lasio.redis.connect: ", e, 1, true)
                assert.matches(case[2], e, 1, true)
                -- raised at the caller's level, not at a line of the client
                assert.is_nil(e:find("redis.lua", 1, true), e)
            end
            local e = helper.raises(redis.connect, {hots = "x"})
            assert.matches("lasio.redis.connect: unknown option 'hots'", e, 1, true)
            e = helper.raises(redis.connect, {db = -1})
            assert.matches("option db must be a database number >= 0", e, 1, true)
            e = helper.raises(redis.connect, 42)
            assert.matches("a redis:// URL or an options table expected, got number",
                e, 1, true)
        end))

        it("refuses a nil or table argument, naming its position and the command", async(function()
            local c <close> = client()
            local e = helper.raises(c.call, c, "SET", "k", nil)
            assert.are.equal("client:call: argument #3 of SET is nil (only strings "
                .. "and numbers can be sent)", e)
            e = helper.raises(c.send, c, "HSET", "h", {}, "v")
            assert.matches("client:send: argument #3 of HSET is table", e, 1, true)
            e = helper.raises(c.call, c)
            assert.matches("client:call: no command given", e, 1, true)
            assert.are.equal("PONG", c:call("PING")) -- nothing was sent
        end))

        it("rejects a wrong password with AUTH's ReplyError, and SELECT's", async(function()
            local secure = redis_server.start({password = "s3cret"})
            local ok, err = pcall(function()
                local e = helper.raises(redis.connect,
                    ("redis://:wrong@127.0.0.1:%d"):format(secure.port))
                assert.is_true(redis.ReplyError:is(e))
                assert.are.equal("WRONGPASS", e.code)
                assert.matches("lasio.redis.connect: AUTH refused by 127.0.0.1:"
                    .. secure.port .. ": WRONGPASS", e.message)
                -- no password at all: the first command says NOAUTH
                local anon <close> = redis.connect(secure:url())
                e = helper.raises(anon.call, anon, "GET", "x")
                assert.are.equal("NOAUTH", e.code)
                -- user and password, database from the URL
                local c <close> = redis.connect(
                    ("redis://default:s3cret@127.0.0.1:%d/3"):format(secure.port))
                c:call("SET", "where", "db3")
                local c0 <close> = redis.connect({port = secure.port,
                    password = "s3cret"})
                assert.is_nil(c0:call("GET", "where"))
                c0:call("SELECT", 3)
                assert.are.equal("db3", c0:call("GET", "where"))
                e = helper.raises(redis.connect,
                    ("redis://:s3cret@127.0.0.1:%d/99"):format(secure.port))
                assert.matches("SELECT 99 refused by", e.message, 1, true)
            end)
            secure:stop()
            assert(ok, err)
        end))

        it("selects the database of a unix:// URL", async(function()
            local c <close> = client("unix://" .. server.socket .. "?db=5")
            c:call("SET", "u", "five")
            local c5 <close> = client(server:url(5))
            assert.are.equal("five", c5:call("GET", "u"))
        end))

        it("refuses calls on a closed client", async(function()
            local c = client()
            c:close()
            c:close() -- idempotent
            local e = helper.raises(c.call, c, "PING")
            assert.is_true(redis.ConnectionError:is(e))
            assert.matches("the client is closed", e.message, 1, true)
        end))
    end)

    describe("pool", function()
        it("lends at most size clients and reuses them", async(function()
            local pool <close> = redis.pool(server:url(), {size = 2})
            local out, busy, max_busy = {}, 0, 0
            local tasks = {}
            for i = 1, 8 do
                tasks[i] = lasio.spawn(function()
                    local c = pool:acquire()
                    busy = busy + 1
                    max_busy = math.max(max_busy, busy)
                    c:call("SET", "p" .. i, i)
                    lasio.sleep(0.01)
                    out[i] = c:call("GET", "p" .. i)
                    busy = busy - 1
                    pool:release(c)
                end)
            end
            lasio.gather(table.unpack(tasks))
            assert.are.equal(2, max_busy)
            for i = 1, 8 do assert.are.equal(tostring(i), out[i]) end
            assert.are.equal(2, #pool.idle)
            assert.are.equal("PONG", pool:call("PING"))
            local e = helper.raises(redis.pool, server:url(), {size = 0})
            assert.matches("size must be an integer >= 1", e, 1, true)
        end))
    end)

    describe("resources", function()
        it("loads hiredis on the first connection only", function()
            local out, err = helper.run_child([[
                local function mapped()
                    return io.open("/proc/self/maps"):read("a"):find("libhiredis") ~= nil
                end
                local lasio = require "lasio"
                local before = mapped()
                local redis = lasio.redis
                local after_require = mapped()
                lasio.run(function() redis.connect(arg[1]):close() end)
                print(before, after_require, mapped())
            ]], {args = helper.shell_quote(server:url())})
            assert.are.equal("false\tfalse\ttrue\n", out, err)
        end)

        it("leaks no fd or memory over 10 000 connect/close cycles", async(function()
            local n = net.scale(10000)
            local function cycles(k)
                for _ = 1, k do
                    local c = redis.connect(server:url())
                    c:call("PING")
                    c:close()
                end
            end
            cycles(200) -- warm up: tables and allocator at their working size
            collectgarbage()
            collectgarbage()
            local fds = net.settle()
            local kb = collectgarbage("count")
            cycles(n)
            collectgarbage()
            collectgarbage()
            assert.is_true(net.fds_back_to(fds), "fds grew")
            local grown = collectgarbage("count") - kb
            assert.is_true(grown < 512, ("Lua heap grew by %.0f KiB"):format(grown))
            -- hiredis's contexts and our events are C memory: a leak of
            -- one small block per connection would show in the RSS of a
            -- process that does nothing else (the sanitizers' quarantine
            -- makes RSS meaningless there; their leak checker covers it)
            if not net.sanitized then
                local out, err = helper.run_child([[
                    local lasio = require "lasio"
                    local function rss()
                        local f = io.open("/proc/self/status")
                        local kb = f:read("a"):match("VmRSS:%s*(%d+)")
                        f:close()
                        return tonumber(kb)
                    end
                    lasio.run(function()
                        local function cycles(k)
                            for _ = 1, k do
                                local c = lasio.redis.connect(arg[1])
                                c:call("PING")
                                c:close()
                            end
                        end
                        cycles(200)
                        collectgarbage()
                        local before = rss()
                        cycles(tonumber(arg[2]))
                        collectgarbage()
                        print(rss() - before)
                    end)
                ]], {interp = helper.mode == "lasio" and helper.lasio_bin or "lua5.4",
                    args = helper.shell_quote(server:url()) .. " " .. n,
                    timeout = helper.t(120)})
                local rss_grown = tonumber(out)
                assert(rss_grown, err)
                assert.is_true(rss_grown < 2048,
                    ("RSS grew by %d KiB over %d cycles"):format(rss_grown, n))
            end
        end))
    end)
end)

describe("examples/redis_jobs.lua", function()
    for _, interp in ipairs(helper.interps) do
        it("runs a job queue on a stream with a consumer group (" .. interp .. ")", function()
            local server = redis_server.start()
            local out, err, status = helper.run_child("dofile(" .. ("%q"):format(
                helper.root .. "/examples/redis_jobs.lua") .. ")",
                {interp = interp, args = helper.shell_quote(server:url())})
            server:stop()
            assert.are.equal(0, status, err)
            assert.are.equal("20 jobs done by 3 workers, sum of squares = 2870\n", out)
        end)
    end
end)
