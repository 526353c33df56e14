-- an error object whose __tostring would spin in the host
error(setmetatable({}, { __tostring = function() while true do end end }))
