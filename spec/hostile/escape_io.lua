-- the process and the files are out of reach
local tries = {
    function() return os.execute("true") end,
    function() return io.popen("true") end,
    function() return io.open("/etc/passwd") end,
    function() return io.lines("/etc/passwd") end,
    function() return loadfile("/etc/passwd") end,
    function() return dofile("/etc/passwd") end,
    function() return require("os") end,
    function() return package.loadlib("libc.so.6", "*") end,
    function() return debug.getregistry() end,
    function() return lasio.open_connection("127.0.0.1", 1) end,
}
for i, f in ipairs(tries) do
    if pcall(f) then error("escape " .. i .. " worked") end
end
error("every escape failed")
