-- a spin that catches every error raised inside it
while true do
    pcall(function() while true do end end)
end
