-- pattern bomb: a pattern deeper than the matcher's recursion limit
return string.match(("a"):rep(500), ("a?"):rep(500) .. "b")
