-- Raw descriptors (docs/API.md, "Watching raw descriptors"): loop:add_reader,
-- remove_reader, add_writer, remove_writer and lasio.wait_readable /
-- wait_writable, on real descriptors (datagram sockets, a child's pipe);
-- replacement, removal, cancellation, wake-up sources, bad input.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async_guarded
local raises = helper.raises

-- Two bound datagram endpoints on loopback: the first one's descriptor is
-- watched, the second one sends to it. Returns a, b, send, a's descriptor.
local function pair()
    local a = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
    local b = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
    local port = a:get_extra_info("sockname").port
    return a, b, function(data) b:send(data, { "127.0.0.1", port }) end,
        a:get_extra_info("fd")
end

describe("loop:add_reader", function()
    it("calls back with its arguments once the descriptor is readable", async(function()
        local loop = lasio.get_running_loop()
        local a, b, send = pair()
        local fd = a:get_extra_info("fd")
        local got = lasio.Future()
        loop:add_reader(fd, function(x, y)
            assert.is_true(loop:remove_reader(fd))
            got:set_result(x, y)
        end, "x", 2)
        lasio.sleep(0.01)
        assert.is_false(got:done()) -- nothing to read yet
        send("ping")
        local x, y = got:await()
        assert.are.equal("x", x)
        assert.are.equal(2, y)
        assert.are.equal("ping", a:recv())
        assert.is_false(loop:remove_reader(fd)) -- removed already
        a:close()
        b:close()
    end))

    it("one reader per descriptor: a new one replaces the old", async(function()
        local loop = lasio.get_running_loop()
        local a, b, send, fd = pair()
        local calls = {}
        loop:add_reader(fd, function() calls[#calls + 1] = "first" end)
        loop:add_reader(fd, function()
            calls[#calls + 1] = "second"
            loop:remove_reader(fd)
        end)
        send("x")
        helper.wait_until(function() return #calls > 0 end)
        lasio.sleep(0.02)
        assert.are.same({ "second" }, calls)
        a:close()
        b:close()
    end))

    it("keeps calling while data is unread (level-triggered), once per turn", async(function()
        local loop = lasio.get_running_loop()
        local a, b, send, fd = pair()
        local n = 0
        loop:add_reader(fd, function() n = n + 1 end)
        send("stays")
        helper.wait_until(function() return n >= 3 end)
        assert.is_true(loop:remove_reader(fd))
        local seen = n
        lasio.sleep(0.02)
        assert.are.equal(seen, n)
        a:close()
        b:close()
    end))

    it("an error in the callback reaches the exception handler; the loop goes on",
        async(function()
            local loop = lasio.get_running_loop()
            local a, b, send, fd = pair()
            local reported = lasio.Future()
            local old = loop:get_exception_handler()
            loop:set_exception_handler(function(_, ctx)
                if not reported:done() then reported:set_result(ctx) end
            end)
            loop:add_reader(fd, function()
                loop:remove_reader(fd)
                error("reader failed", 0)
            end)
            send("x")
            local ctx = reported:await()
            loop:set_exception_handler(old)
            assert.are.equal("reader failed", ctx.exception)
            a:close()
            b:close()
        end))

    it("a reader is a wake-up source: the command waits for it, no deadlock report", function()
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    local loop = lasio.get_running_loop()
    local p = lasio.create_subprocess_exec("sh", {"-c", "sleep 0.1; echo hi"},
        {stdout = lasio.PIPE})
    local done = lasio.Future()
    loop:add_reader(p.stdout:fileno(), function()
        loop:remove_reader(p.stdout:fileno())
        done:set_result("readable")
    end)
    print(done:await(), p.stdout:readline())
    p:wait()
end)
]], { interp = interp })
            assert.are.equal(0, status, err)
            assert.are.equal("readable\thi\n\n", out)
        end
    end)
end)

describe("loop:add_writer", function()
    it("calls back while the descriptor is writable; remove_writer stops it", async(function()
        local loop = lasio.get_running_loop()
        local a, b, _, fd = pair()
        local got = lasio.Future()
        loop:add_writer(fd, function(v)
            assert.is_true(loop:remove_writer(fd))
            got:set_result(v)
        end, "w")
        assert.are.equal("w", got:await())
        assert.is_false(loop:remove_writer(fd))
        -- a reader and a writer on one descriptor are independent
        loop:add_reader(fd, function() end)
        loop:add_writer(fd, function() end)
        assert.is_true(loop:remove_writer(fd))
        assert.is_true(loop:remove_reader(fd))
        a:close()
        b:close()
    end))
end)

describe("lasio.wait_readable / wait_writable", function()
    it("return true once the descriptor is ready", async(function()
        local a, b, send, fd = pair()
        assert.is_true(lasio.wait_writable(fd))
        local t = lasio.spawn(lasio.wait_readable, fd)
        lasio.sleep(0.01)
        assert.is_false(t:done())
        send("data")
        assert.is_true(t:await())
        assert.are.equal("data", a:recv())
        a:close()
        b:close()
    end))

    it("wait on a child's pipe", async(function()
        local p = lasio.create_subprocess_exec("sh", { "-c", "sleep 0.05; echo out" },
            { stdout = lasio.PIPE })
        assert.is_true(lasio.wait_readable(p.stdout))
        assert.are.equal("out\n", p.stdout:readline())
        p:wait()
    end))

    it("are cancellable, and a cancelled wait leaves nothing behind", async(function()
        local a, b, _, fd = pair()
        local t = lasio.spawn(lasio.wait_readable, fd)
        lasio.sleep(0.01)
        assert.is_true(t:cancel())
        assert.is_true(helper.is_cancelled(raises(t.await, t)))
        -- under a timeout scope too
        local e = raises(function()
            local _ <close> = lasio.timeout(0.01)
            lasio.wait_readable(fd)
        end)
        assert.is_true(lasio.TimeoutError:is(e))
        a:close()
        b:close()
    end))

    it("a cancelled wait is not a wake-up source any more (no hang)", function()
        for _, interp in ipairs(helper.interps) do
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    local ep = lasio.open_datagram({local_addr = {"127.0.0.1", 0}})
    local t = lasio.spawn(lasio.wait_readable, ep:get_extra_info("fd"))
    lasio.sleep(0.01)
    t:cancel()
    pcall(t.await, t)
    ep:close()
    print("ok")
end)
]], { interp = interp })
            assert.are.equal(0, status, err)
            assert.are.equal("ok\n", out)
        end
    end)
end)

describe("raw descriptors and closing", function()
    it("closing a loop with watchers and a waiting task frees them", function()
        for _, interp in ipairs({ "lua5.4" }) do -- a loop driven by hand
            local out, err, status = helper.run_child([[
local lasio = require "lasio"
local loop = lasio.new_event_loop()
local ep
loop:run_until_complete(function()
    ep = lasio.open_datagram({local_addr = {"127.0.0.1", 0}})
    local fd = ep:get_extra_info("fd")
    loop:add_reader(fd, print)
    loop:add_writer(fd, function() end)
    lasio.spawn(lasio.wait_readable, fd)
    lasio.sleep(0.01)
end)
loop:close()
collectgarbage()
print(loop:is_closed(), loop:remove_reader(0))
]], { interp = interp })
            assert.are.equal(0, status, err)
            assert.are.equal("true\tfalse\n", out)
        end
    end)
end)

describe("raw descriptors: bad input", function()
    it("refuses bad descriptors, callbacks and places with clear errors", async(function()
        local loop = lasio.get_running_loop()
        local f = function() end
        assert.has_error(function() loop:add_reader("x", f) end,
            "loop:add_reader: fd must be an integer descriptor or have fileno(), got string")
        assert.has_error(function() loop:add_writer(-1, f) end,
            "loop:add_writer: fd must be a descriptor >= 0, got -1")
        assert.has_error(function() loop:add_reader(0, nil) end,
            "loop:add_reader: callback must be callable, got nil")
        assert.has_error(function() loop:remove_reader(1.5) end,
            "loop:remove_reader: fd must be an integer descriptor or have fileno(), got number")
        assert.has_error(function() loop:remove_writer({}) end,
            "loop:remove_writer: fd must be an integer descriptor or have fileno(), got table")
        assert.has_error(function() lasio.wait_readable(nil) end,
            "lasio.wait_readable: fd must be an integer descriptor or have fileno(), got nil")
        -- a closed descriptor and a regular file cannot be watched: OSErrors
        local ep = lasio.open_datagram({ local_addr = { "127.0.0.1", 0 } })
        local fd = ep:get_extra_info("fd")
        ep:close()
        local e = raises(loop.add_reader, loop, fd, f)
        assert.is_true(lasio.OSError:is(e), tostring(e))
        assert.truthy(tostring(e):find("loop:add_reader", 1, true))
        assert.is_false(loop:remove_reader(fd))
        e = raises(lasio.wait_writable, fd)
        assert.truthy(tostring(e):find("lasio.wait_writable", 1, true))
        assert.are.equal("EBADF", e.code)

        -- the loop still works
        lasio.sleep(0)
        local closed = lasio.new_event_loop()
        closed:close()
        assert.has_error(function() closed:add_reader(0, f) end,
            "loop:add_reader: the loop is closed")
        assert.is_false(closed:remove_reader(0))
    end))

    it("a regular file is refused (always ready, as epoll says)", function()
        local out, err, status = helper.run_child([[
local lasio = require "lasio"
lasio.run(function()
    local ok, e = pcall(lasio.get_running_loop().add_reader, lasio.get_running_loop(), 0, print)
    print(ok, e.code, e.op)
end)
]], { stdin = helper.root .. "/README.md" })
        assert.are.equal(0, status, err)
        assert.are.equal("false\tEPERM\tloop:add_reader\n", out)
        assert.are.equal("", err)
    end)

    it("wait_readable needs a task", function()
        if helper.mode ~= "lua5.4" then return end
        assert.has_error(function() lasio.wait_readable(0) end,
            "lasio.wait_readable: not inside a task (use lasio.run or the lasio command)")
    end)
end)
