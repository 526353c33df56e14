-- Parallel checksums of files: each file is read and hashed (FNV-1a,
-- 32 bits) by lasio.to_thread in a worker thread, so the hashing of
-- several files runs at once and the loop stays free. The file names come
-- from the command line; without any, the example makes a few files.
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

-- Runs in a worker: its own Lua state, so it may not use our locals;
-- everything it needs comes as arguments.
local function fnv1a_file(path)
    local f, err = io.open(path, "rb")
    if not f then error(err, 0) end
    local h = 2166136261
    while true do
        local chunk = f:read(65536)
        if not chunk then break end
        for i = 1, #chunk do
            h = ((h ~ chunk:byte(i)) * 16777619) & 0xffffffff
        end
    end
    f:close()
    return string.format("%08x", h)
end

local function main()
    local paths, dir = { table.unpack(arg) }, nil
    if #paths == 0 then
        dir = os.tmpname()
        os.remove(dir)
        lasio.fs.mkdir(dir)
        for i = 1, 4 do
            local p = string.format("%s/file%d.txt", dir, i)
            lasio.fs.write_file(p, string.rep("lasio " .. i .. "\n", 20000 * i))
            paths[#paths + 1] = p
        end
    end

    local tasks = {}
    for i, path in ipairs(paths) do
        tasks[i] = lasio.spawn(lasio.to_thread, fnv1a_file, path)
    end
    for i, path in ipairs(paths) do
        local ok, sum = pcall(tasks[i].await, tasks[i])
        print(ok and sum or "error   ", dir and path:match("[^/]+$") or path,
            ok and "" or sum)
    end

    if dir then
        for _, p in ipairs(paths) do lasio.fs.remove(p) end
        lasio.fs.remove(dir)
    end
end

-- works under the lasio command and with stock lua5.4 alike
lasio.run(main)
