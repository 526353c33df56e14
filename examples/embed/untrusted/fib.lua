-- A well-behaved script: it computes, awaits, and returns within budget.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
lasio.sleep(0.01)
return fib(20)
