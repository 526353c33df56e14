-- trace.lua: `lasio trace FORM ARGS...`, the command's tool for trace
-- files (src/cli/tools.c runs it with the folder's files and the
-- arguments; it returns the exit status). Each form is a function of the
-- table `forms` below, taking the arguments after the form's name: a new
-- form is one more entry (and a line of the usage text).
-- SPDX-License-Identifier: MIT
local files = ...
local argv = table.pack(select(2, ...))

local EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

-- A sibling file of this folder as a module.
local function module(name)
    return assert(load(files[name], "@lasio/tools/" .. name, "t"))(files)
end

local usage_text = [[
usage: lasio trace view FILE [-o OUT.html]
       lasio trace text FILE
  view  write the timeline of FILE as one self-contained HTML page
        (OUT.html, by default FILE with its extension replaced by .html)
  text  print the timeline of FILE as text, one block per task
FILE is a trace written by --trace or lasio.trace: lasio's JSONL events or
Chrome Trace Event JSON (told apart by content).
]]

local function usage_error(msg)
    io.stderr:write("lasio trace: ", msg, "\n", usage_text)
    return EXIT_USAGE
end

-- Reads the model of path, or prints why not: nil and the exit status.
local function read_trace(path)
    local m, why, usage = module("trace_read.lua").read(path)
    if not m then
        io.stderr:write("lasio trace: ", why, "\n")
        return nil, usage and EXIT_USAGE or EXIT_ERROR
    end
    return m
end

local forms = {}

function forms.text(args)
    if #args ~= 1 then return usage_error("text takes one FILE") end
    local m, status = read_trace(args[1])
    if not m then return status end
    local out = io.stdout
    local ok, err = true, nil
    module("trace_text.lua").write(m, function(s)
        if ok then ok, err = out:write(s) end
    end)
    if not ok then
        io.stderr:write("lasio trace: cannot write the timeline: ", tostring(err), "\n")
        return EXIT_ERROR
    end
    return EXIT_OK
end

function forms.view(args)
    local path, out
    local i = 1
    while i <= #args do
        local a = args[i]
        if a == "-o" or a == "--output" then
            out = args[i + 1]
            if out == nil then return usage_error(a .. " needs a file name") end
            i = i + 1
        elseif a:match("^%-%-output=") then
            out = a:sub(10)
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            return usage_error("unknown option '" .. a .. "' of view")
        elseif path == nil then
            path = a
        else
            return usage_error("view takes one FILE, got '" .. a .. "' too")
        end
        i = i + 1
    end
    if path == nil then return usage_error("view needs a FILE") end
    out = out or (path:gsub("%.[^./]*$", "") .. ".html")
    if out == path then
        return usage_error("the output '" .. out .. "' would overwrite the trace")
    end
    local m, status = read_trace(path)
    if not m then return status end
    local page = module("trace_view.lua").page(m, path, files)
    local f, err = io.open(out, "wb")
    if f then
        local ok, werr = f:write(page)
        local closed, cerr = f:close()
        err = (not ok and werr) or (not closed and cerr) or nil
        if err then os.remove(out) end
    end
    if err then
        io.stderr:write("lasio trace: cannot write '", out, "': ",
            tostring(err):gsub("^" .. out:gsub("%p", "%%%0") .. ": ", ""), "\n")
        return EXIT_USAGE
    end
    return EXIT_OK
end

local form = argv[1]
if form == nil then return usage_error("which form? view or text") end
if form == "--help" or form == "-h" or form == "help" then
    io.stdout:write(usage_text)
    return EXIT_OK
end
if not forms[form] then
    return usage_error("unknown form '" .. form .. "'")
end
return forms[form](table.move(argv, 2, argv.n, 1, {}))
