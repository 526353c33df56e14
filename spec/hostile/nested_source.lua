-- 300 nested parentheses in source: the parser's C-level limit
local src = "return " .. ("("):rep(300) .. "1" .. (")"):rep(300)
return assert(load(src))()
