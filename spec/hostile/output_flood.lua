-- output without end: the sandbox's output cap stops it
while true do print(("x"):rep(100)) end
