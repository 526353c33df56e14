-- pattern bomb: a chain of '.-' over a megabyte takes polynomial time in
-- the matcher, C work no count hook sees
local s = ("a"):rep(1024 * 1024)
return string.find(s, ".-.-.-.-.-b")
