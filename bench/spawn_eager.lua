-- spawn_eager: the spawn workload (bench/spawn.lua, same N) with
-- asyncio 3.12's eager task factory set on the loop: each task runs to its
-- sleep(0) inside the spawn call. usage: lasio bench/spawn_eager.lua [N]
local lasio = require "lasio"
local dir = arg[0]:match("(.*/)") or "./"
lasio.get_running_loop():set_task_factory(lasio.eager_task_factory)
return assert(loadfile(dir .. "spawn.lua"))(...)
