-- Converts the reference manual (docs/reference/*.md) to HTML, one page
-- per chapter, for `cmake --build build --target docs`. It reads the
-- Markdown subset the manual uses: ATX headings, paragraphs, "- " lists
-- with indented continuation lines, pipe tables, fenced code blocks, and
-- inline code, links (".md" targets become ".html"), **bold** and *italic*.
-- Usage: lua5.4 scripts/md2html.lua SRC_DIR OUT_DIR
-- SPDX-License-Identifier: MIT
local src, out = arg[1], arg[2]
if not src or not out then
    io.stderr:write("usage: md2html.lua SRC_DIR OUT_DIR\n")
    os.exit(2)
end

local function escape(s)
    return (s:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
        ['"'] = "&quot;" }))
end

-- The id of a heading: its text in lower case, words joined by "-".
local function slug(text)
    return (text:lower():gsub("`", ""):gsub("[^%w_:.]+", "-"):gsub("^-+", "")
        :gsub("-+$", ""))
end

-- Inline markup: code spans first (their content is taken literally),
-- then links, bold and italic in the text between them.
local function inline(s)
    local parts, i = {}, 1
    while true do
        local a, b, code = s:find("`([^`]+)`", i)
        local text = s:sub(i, (a or #s + 1) - 1)
        text = escape(text)
            :gsub("%[([^%]]+)%]%(([^)]+)%)", function(label, href)
                if not href:find("/", 1, true) then -- a chapter of this manual
                    href = href:gsub("%.md$", ".html"):gsub("%.md#", ".html#")
                end
                return ('<a href="%s">%s</a>'):format(href, label)
            end)
            :gsub("%*%*(.-)%*%*", "<strong>%1</strong>")
            :gsub("%*([^%s*][^*]-)%*", "<em>%1</em>")
        parts[#parts + 1] = text
        if not a then break end
        parts[#parts + 1] = "<code>" .. escape(code) .. "</code>"
        i = b + 1
    end
    return table.concat(parts)
end

local function cells(line)
    local row = {}
    line = line:gsub("^%s*|", ""):gsub("|%s*$", "")
    -- a "|" inside a code span belongs to the cell
    local buf, incode = {}, false
    for ch in line:gmatch(".") do
        if ch == "`" then incode = not incode end
        if ch == "|" and not incode then
            row[#row + 1] = table.concat(buf):match("^%s*(.-)%s*$")
            buf = {}
        else
            buf[#buf + 1] = ch
        end
    end
    row[#row + 1] = table.concat(buf):match("^%s*(.-)%s*$")
    return row
end

local function convert(md)
    local html, lines, i = {}, {}, 1
    for line in (md .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    local title
    local function emit(s) html[#html + 1] = s end
    while i <= #lines do
        local line = lines[i]
        local fence = line:match("^```(.*)$")
        local level, htext = line:match("^(#+)%s+(.*)$")
        if fence then
            local body = {}
            i = i + 1
            while i <= #lines and not lines[i]:match("^```%s*$") do
                body[#body + 1] = escape(lines[i])
                i = i + 1
            end
            local lang = fence:match("^(%w+)")
            emit(('<pre%s><code>%s</code></pre>'):format(
                lang and (' class="%s"'):format(lang) or "", table.concat(body, "\n")))
            i = i + 1
        elseif level then
            title = title or htext:gsub("`", "")
            emit(('<h%d id="%s">%s</h%d>'):format(#level, slug(htext), inline(htext), #level))
            i = i + 1
        elseif line:match("^|") then
            local head = cells(line)
            emit("<table>\n<tr>" .. table.concat((function()
                local t = {}
                for k, c in ipairs(head) do t[k] = "<th>" .. inline(c) .. "</th>" end
                return t
            end)()) .. "</tr>")
            i = i + 2 -- the separator row
            while i <= #lines and lines[i]:match("^|") do
                local t = {}
                for k, c in ipairs(cells(lines[i])) do t[k] = "<td>" .. inline(c) .. "</td>" end
                emit("<tr>" .. table.concat(t) .. "</tr>")
                i = i + 1
            end
            emit("</table>")
        elseif line:match("^%- ") then
            emit("<ul>")
            while i <= #lines and lines[i]:match("^%- ") do
                local item = { lines[i]:sub(3) }
                i = i + 1
                while i <= #lines and lines[i]:match("^  %S") do
                    item[#item + 1] = lines[i]:match("^%s*(.*)$")
                    i = i + 1
                end
                emit("<li>" .. inline(table.concat(item, " ")) .. "</li>")
            end
            emit("</ul>")
        elseif line:match("^%s*$") then
            i = i + 1
        else
            local para = {}
            while i <= #lines and not lines[i]:match("^%s*$")
                and not lines[i]:match("^```") and not lines[i]:match("^#")
                and not lines[i]:match("^|") and not lines[i]:match("^%- ") do
                para[#para + 1] = lines[i]
                i = i + 1
            end
            emit("<p>" .. inline(table.concat(para, " ")) .. "</p>")
        end
    end
    return title or "lasio", table.concat(html, "\n")
end

local page = [[
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%s</title>
<style>
body { max-width: 50em; margin: 2em auto; padding: 0 1em; font-family: sans-serif; line-height: 1.45; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; }
code { font-family: monospace; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .2em .5em; vertical-align: top; }
h3 { margin-top: 1.6em; border-top: 1px solid #eee; padding-top: .6em; }
</style>
</head>
<body>
%s
<p><a href="index.html">Contents</a></p>
</body>
</html>
]]

assert(os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "'"))
local ls = assert(io.popen("ls '" .. src:gsub("'", "'\\''") .. "'"))
local n = 0
for name in ls:lines() do
    if name:match("%.md$") then
        local f = assert(io.open(src .. "/" .. name))
        local title, body = convert(f:read("a"))
        f:close()
        local o = assert(io.open(out .. "/" .. name:gsub("%.md$", ".html"), "w"))
        o:write(page:format(escape(title), body))
        o:close()
        n = n + 1
    end
end
ls:close()
print(("md2html: %d pages in %s"):format(n, out))
