-- binary chunks: string.dump is absent and load takes text only
assert(string.dump == nil)
local ok = pcall(load, "\27Lua\84\0", "x", "b")
assert(not ok)
local f, err = load("\27Lua\84\0")
assert(f == nil)
error(err)
