-- pattern bomb: more captures than the matcher allows
return string.find(("a"):rep(10000), ("(.-)"):rep(1000))
