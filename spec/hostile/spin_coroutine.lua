-- a spin inside a coroutine the script resumes itself (no forced yield
-- there: the budget stops it)
local co = coroutine.wrap(function() while true do end end)
co()
