-- pattern bomb: 120 optional items then 120 fixed ones backtrack 2^120
-- ways, each within the matcher's recursion limit
local n = 120
return ("a"):rep(n):match(("a?"):rep(n) .. ("a"):rep(n) .. "$")
