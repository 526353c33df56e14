-- lasio.fs (docs/API.md): whole-file helpers, the File object, stat,
-- listdir, mkdir, remove, rename; blocking calls in the worker threads;
-- failures as OSErrors with code, errno, op and filename.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async
local fs = lasio.fs

local function tmpdir()
    local d = os.tmpname()
    os.remove(d)
    assert(os.execute("mkdir " .. d))
    return d
end

describe("lasio.fs", function()
    it("writes and reads whole files, binary data included", async(function()
        local d = tmpdir()
        local data = string.rep("\0\1\2\255 text\n", 100000)
        assert.is_true(fs.write_file(d .. "/f", data))
        assert.is_true(data == fs.read_file(d .. "/f"))
        fs.write_file(d .. "/f", "short")
        assert.are.equal("short", fs.read_file(d .. "/f"))
        fs.write_file(d .. "/empty", "")
        assert.are.equal("", fs.read_file(d .. "/empty"))
        os.execute("rm -rf " .. d)
    end))

    it("stat, lstat, listdir (sorted, without . and ..), mkdir, rename, remove", async(function()
        local d = tmpdir()
        assert.is_true(fs.mkdir(d .. "/sub", tonumber("750", 8)))
        fs.write_file(d .. "/b", "12345")
        fs.write_file(d .. "/a", "")
        assert(os.execute("ln -s b " .. d .. "/link"))
        assert.are.same({"a", "b", "link", "sub"}, fs.listdir(d))
        local st = fs.stat(d .. "/b")
        assert.are.equal(5, st.size)
        assert.are.equal("file", st.type)
        assert.is_number(st.mtime)
        assert.are.equal("directory", fs.stat(d .. "/sub").type)
        assert.are.equal(tonumber("750", 8), fs.stat(d .. "/sub").mode)
        assert.are.equal("file", fs.stat(d .. "/link").type)
        assert.are.equal("link", fs.lstat(d .. "/link").type)
        assert.are.equal("other", fs.stat("/dev/null").type)
        assert.is_true(fs.rename(d .. "/b", d .. "/c"))
        assert.are.same({"a", "c", "link", "sub"}, fs.listdir(d))
        for _, name in ipairs({"a", "c", "link", "sub"}) do
            assert.is_true(fs.remove(d .. "/" .. name))
        end
        assert.are.same({}, fs.listdir(d))
        assert.is_true(fs.remove(d))
    end))

    it("fails with OSErrors naming the operation, the code and the file", async(function()
        local d = tmpdir()
        local cases = {
            {fs.read_file, {d .. "/missing"}, "open", "ENOENT"},
            {fs.stat, {d .. "/missing"}, "stat", "ENOENT"},
            {fs.listdir, {d .. "/missing"}, "listdir", "ENOENT"},
            {fs.mkdir, {d}, "mkdir", "EEXIST"},
            {fs.remove, {d .. "/missing"}, "remove", "ENOENT"},
            {fs.rename, {d .. "/missing", d .. "/x"}, "rename", "ENOENT"},
            {fs.open, {d .. "/missing"}, "open", "ENOENT"},
            {fs.write_file, {d .. "/no/such/dir", "x"}, "open", "ENOENT"},
            {fs.read_file, {d}, "read", "EISDIR"},
        }
        for _, c in ipairs(cases) do
            local ok, err = pcall(c[1], table.unpack(c[2]))
            assert.is_false(ok)
            assert.is_true(lasio.OSError:is(err), tostring(err))
            assert.are.equal(c[3], err.op)
            assert.are.equal(c[4], err.code)
            assert.is_number(err.errno)
            assert.are.equal(c[2][1], err.filename)
            assert.truthy(tostring(err):find(c[2][1], 1, true))
        end
        os.execute("rm -rf " .. d)
    end))

    it("refuses misuse at once", async(function()
        assert.has_error(function() fs.read_file() end)
        assert.has_error(function() fs.write_file("/tmp/x") end)
        assert.has_error(function() fs.open("/tmp/x", "q") end)
    end))
end)

describe("lasio.fs File objects", function()
    it("reads with Lua's formats and a byte count, and writes in chunks", async(function()
        local d = tmpdir()
        do
            local f <close> = fs.open(d .. "/t", "w")
            assert.are.equal(f, f:write("one\n", "two\n", 3, "\n"))
            f:write(string.rep("z", 200000), "\nlast")
        end
        local f = fs.open(d .. "/t")
        assert.are.equal("one", f:read())
        assert.are.equal("two\n", f:read("L"))
        assert.are.equal("3", f:read("l"))
        local a, b = f:read(3, 199997)
        assert.are.equal("zzz", a)
        assert.are.equal(199997, #b)
        assert.are.equal("\nlast", f:read("a"))
        assert.are.equal("", f:read("a"))
        assert.is_nil(f:read("l"))
        assert.is_nil(f:read(1))
        assert.are.equal(0, f:seek("set"))
        assert.are.equal("one", f:read())
        assert.are.equal(4, f:seek())
        assert.are.equal(200015, f:seek("end"))
        f:close()
        assert.has_error(function() f:read() end, "read: attempt to use a closed file")
        f:close() -- idempotent
        os.execute("rm -rf " .. d)
    end))

    it("lines() iterates like io.lines; append and read-write modes work", async(function()
        local d = tmpdir()
        fs.write_file(d .. "/l", "a\nb\n\nc")
        local got = {}
        for line in fs.open(d .. "/l"):lines() do got[#got + 1] = line end
        assert.are.same({"a", "b", "", "c"}, got)
        local f = fs.open(d .. "/l", "a")
        f:write("\nd")
        f:close()
        assert.are.equal("a\nb\n\nc\nd", fs.read_file(d .. "/l"))
        f = fs.open(d .. "/l", "r+")
        assert.are.equal("a", f:read())
        f:write("X") -- writes where reading stopped, not after the read-ahead
        f:close()
        assert.are.equal("a\nX\n\nc\nd", fs.read_file(d .. "/l"))
        assert.has_error(function() fs.open(d .. "/l", "x") end)
        os.execute("rm -rf " .. d)
    end))

    it("refuses a second operation while one is in flight; close waits for it", async(function()
        local d = tmpdir()
        fs.write_file(d .. "/big", string.rep("q", 1000000))
        local f = fs.open(d .. "/big")
        local t = lasio.spawn(function() return f:read("a") end)
        lasio.sleep(0)
        local ok, err = pcall(f.read, f, 1)
        if not ok then -- the read of t is still in flight
            assert.truthy(tostring(err):find("in progress", 1, true))
        end
        assert.are.equal(1000000, #t:await())
        f:close()
        os.execute("rm -rf " .. d)
    end))

    it("keeps the loop running while the disk works: other tasks progress", async(function()
        local d = tmpdir()
        local ticks = 0
        local ticker = lasio.spawn(function()
            while true do
                ticks = ticks + 1
                lasio.sleep(0)
            end
        end)
        for i = 1, 50 do fs.write_file(d .. "/f" .. i, string.rep("x", 10000)) end
        ticker:cancel()
        assert.is_true(ticks > 0)
        assert.are.equal(50, #fs.listdir(d))
        os.execute("rm -rf " .. d)
    end))
end)
