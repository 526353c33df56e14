-- check-layers.lua: fails when a C file of src/ includes a header of a
-- layer its folder may not use. The layers and what each may include are
-- read from the one table that states them, in docs/INTERNALS.md
-- ("Layers"); a folder may always include its own headers and src/lasio.h.
-- Usage: lua5.4 scripts/check-layers.lua [ROOT] (ROOT: the repository).
-- SPDX-License-Identifier: MIT
local root = arg[1] or "."

local function fail(msg)
    io.stderr:write("check-layers: ", msg, "\n")
    os.exit(1)
end

-- folder -> set of folders it may include
local function read_layers(path)
    local f = io.open(path) or fail("cannot read " .. path)
    local layers, in_table = {}, false
    for line in f:lines() do
        if line:find("<!-- layers:", 1, true) then
            in_table = true
        elseif in_table and line:match("^|") then
            local folder, uses = line:match("^|%s*`([^`]+)`%s*|.-|([^|]*)|%s*$")
            if folder then
                local set = {}
                for used in uses:gmatch("`([^`]+)`") do set[used] = true end
                layers[folder] = set
            end
        elseif in_table and next(layers) then
            break
        end
    end
    f:close()
    if not next(layers) then fail("no layer table in " .. path) end
    return layers
end

local function names(set)
    local t = {}
    for k in pairs(set) do t[#t + 1] = k end
    table.sort(t)
    return #t > 0 and table.concat(t, ", ") or "no other layer"
end

local layers = read_layers(root .. "/docs/INTERNALS.md")
local list = io.popen("cd '" .. root .. "' && find src -name '*.[ch]' | sort")
local problems = {}
for file in list:lines() do
    local folder = file:match("^src/([^/]+)/") or "."
    local allowed = layers[folder]
    if not allowed then
        problems[#problems + 1] = file .. ": folder " .. folder ..
            " is not in the layer table"
    else
        local n = 0
        for line in io.lines(root .. "/" .. file) do
            n = n + 1
            local header = line:match('^%s*#%s*include%s+"([^"]+)"')
            if header and header ~= "lasio.h" then
                local used = header:match("^([^/]+)/")
                if not used then
                    problems[#problems + 1] = ("%s:%d: include \"%s\" without "
                        .. "its folder (write \"<folder>/%s\")"):format(
                        file, n, header, header)
                elseif used ~= folder and not allowed[used] then
                    problems[#problems + 1] = ("%s:%d: %s may not include %s "
                        .. "(it uses only: %s)"):format(file, n, folder,
                        header, names(allowed))
                end
            end
        end
    end
end
list:close()
if #problems > 0 then
    fail("includes against the layers of docs/INTERNALS.md:\n  " ..
        table.concat(problems, "\n  "))
end
print("check-layers: every include of src/ follows the layer table")
