-- The PostgreSQL examples run as tests against a real server
-- (spec/pg_server.lua): each runs in a child lasio process.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local pg_server = require "pg_server"
local lasio = require "lasio"

local async = helper.async_guarded

local srv
setup(function() srv = pg_server.start() end)
teardown(function() pg_server.stop(srv) end)

describe("PostgreSQL examples", function()
    it("pg_http_api.lua: notes stored in PostgreSQL over HTTP",
        async(function()
            local p = lasio.create_subprocess_exec(helper.lasio_bin,
                {"examples/pg_http_api.lua", srv.conninfo},
                {stdout = lasio.PIPE, cwd = helper.root})
            local line = p.stdout:readline()
            local port = tonumber(line:match("listening on 127%.0%.0%.1:(%d+)"))
            assert.is_number(port, line)
            local base = "http://127.0.0.1:" .. port
            local json = require "cjson"
            assert.are.equal("[]", lasio.http.get(base .. "/notes"):body())
            local res = lasio.http.request("POST", base .. "/notes",
                {body = '{"text": "buy milk"}'})
            assert.are.equal(201, res.status)
            assert.are.equal("/notes/1", res.headers.location)
            assert.are.same({id = 1, text = "buy milk"}, json.decode(res:body()))
            res = lasio.http.request("POST", base .. "/notes",
                {body = '{"text": "it\'s \\"quoted\\""}'})
            assert.are.equal(201, res.status)
            res:body()
            res = lasio.http.get(base .. "/notes")
            assert.are.same({{id = 1, text = "buy milk"},
                {id = 2, text = "it's \"quoted\""}}, json.decode(res:body()))
            -- the rows are in the database, not in the process
            assert.are.equal("2", pg_server.psql(srv,
                "SELECT count(*) FROM notes"))
            res = lasio.http.request("POST", base .. "/notes", {body = "nope"})
            assert.are.equal(400, res.status)
            res:body()
            res = lasio.http.request("DELETE", base .. "/notes/1")
            assert.are.equal(204, res.status)
            res = lasio.http.get(base .. "/notes/1")
            assert.are.equal(404, res.status)
            res:body()
            res = lasio.http.get(base .. "/notes/2")
            assert.are.equal(200, res.status)
            res:body()
            p:send_signal("SIGINT")
            assert.are.equal(130, p:wait(helper.t(10)))
        end))

    it("pg_notify_cache.lua: a NOTIFY drops the cached entry", function()
        local h = io.popen(string.format(
            "cd %s && timeout -k 5 %d %s examples/pg_notify_cache.lua %s "
            .. "2>&1; echo \"status $?\"", helper.shell_quote(helper.root),
            math.ceil(helper.t(30)), helper.shell_quote(helper.lasio_bin),
            helper.shell_quote(srv.conninfo)))
        local all = h:read("a")
        h:close()
        local out, status = all:match("^(.-)status (%d+)\n$")
        status = tonumber(status)
        local err = all
        assert.are.equal(0, status, err)
        assert.are.equal(table.concat({
            "tea\t250\tcake\t400",
            "tea\t250\t(cached: loads = 2)",
            "invalidated\ttea",
            "tea\t275\t(reloaded: loads = 3)",
            "invalidated\tcake",
            "cake\tnil",
        }, "\n") .. "\n", out)
    end)
end)
