-- tasks without end: the loop's cap stops them
while true do lasio.spawn(function() lasio.sleep(100) end) end
