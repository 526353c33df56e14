-- A supervisor: keeps a worker process running, restarting it when it
-- dies, with a growing back-off and a limit on restarts. The worker here
-- is a shell that exits by itself; SIGTERM to the supervisor stops the
-- worker and ends cleanly (the script handles the signal itself).
-- SPDX-License-Identifier: MIT
local lasio = require "lasio"

local function main()
    local MAX_RESTARTS = 3
    local stopping = false
    local current

    local loop = lasio.get_running_loop()
    loop:add_signal_handler("SIGTERM", function()
        stopping = true
        if current and not current.returncode then current:terminate() end
    end)

    local function run_worker(generation)
        -- the worker prints a line, then dies with a status of its own
        current = lasio.create_subprocess_exec("sh",
            { "-c", "echo worker $1 up; exit $1", "sh", tostring(generation) },
            { stdout = lasio.PIPE })
        io.write("  ", current.stdout:readline())
        return current:wait()
    end

    local restarts, delay = 0, 0.01
    while not stopping do
        local status = run_worker(restarts + 1)
        print(string.format("worker %d died with status %d", restarts + 1, status))
        if stopping or restarts == MAX_RESTARTS then break end
        restarts = restarts + 1
        lasio.sleep(delay) -- back off before the restart
        delay = delay * 2
        print("restarting (" .. restarts .. "/" .. MAX_RESTARTS .. ")")
    end
    loop:remove_signal_handler("SIGTERM")
    print(stopping and "stopped by SIGTERM" or "giving up after " .. restarts .. " restarts")
end

-- works under the lasio command and with stock lua5.4 alike
lasio.run(main)
