-- wrk script for the http_api workload (bench/http_api.sh): each
-- luacheck: globals init request wrk
-- connection cycles through eight requests: six user lookups with an
-- X-Request-Id header, a health check and a POST of a small JSON object.
-- SPDX-License-Identifier: MIT
local requests = {}
local n = 0

function init()
    for i = 1, 6 do
        requests[#requests + 1] = wrk.format("GET", "/api/users/" .. (i * 7),
            {["X-Request-Id"] = "req-" .. i})
    end
    requests[#requests + 1] = wrk.format("GET", "/api/health")
    requests[#requests + 1] = wrk.format("POST", "/api/echo",
        {["Content-Type"] = "application/json"},
        '{"name":"x","tags":["a","b"],"count":3}')
end

function request()
    n = n % #requests + 1
    return requests[n]
end
