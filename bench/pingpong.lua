-- pingpong: two tasks hand a token back and forth through two lasio.Queue
-- objects, M hand-offs in all. Wall-clock time.
-- usage: lasio bench/pingpong.lua [M]
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local C = require "common"
local lasio = require "lasio"
local m0 = C.arg(1, 1000000)
local half = m0 // 2

local a, b = lasio.Queue(), lasio.Queue()
local t0 = lasio.time()
local ping = lasio.spawn(function()
    for i = 1, half do
        a:put(i)
        b:get()
    end
end)
local pong = lasio.spawn(function()
    for _ = 1, half do b:put(a:get()) end
end)
ping:await()
pong:await()
local t1 = lasio.time()
local m = half * 2
C.result({m = m, secs = C.fmt(t1 - t0), rate = C.fmt(m / (t1 - t0), 0)},
         {"m", "secs", "rate"})
