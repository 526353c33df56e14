-- Specs for the error classes of docs/API.md, Errors: construction, fields,
-- tostring, Class:is (subclasses included), and identity of the classes
-- across a re-require of the module.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"

local NAMES = {
    "CancelledError", "TimeoutError", "InvalidStateError", "ErrorGroup",
    "QueueEmpty", "QueueFull", "QueueShutDown", "BrokenBarrierError",
    "IncompleteReadError", "LimitOverrunError", "OSError",
}

describe("error classes", function()
    for _, name in ipairs(NAMES) do
        describe(name, function()
            it("is exported by the module", function()
                assert.is_not_nil(lasio[name])
            end)

            it("Class(msg) makes an instance with message and traceback",
                function()
                    local Class = lasio[name]
                    local e = Class("something broke")
                    assert.are.equal("something broke", e.message)
                    assert.are.equal("string", type(e.traceback))
                    assert.is_true(#e.traceback > 0)
                end)

            it("has a readable tostring", function()
                local e = lasio[name]("m1")
                assert.are.equal(name .. ": m1", tostring(e))
            end)

            it("Class:is recognises its own instances and nothing else",
                function()
                    local Class = lasio[name]
                    assert.is_true(Class:is(Class("x")))
                    assert.is_false(Class:is("x"))
                    assert.is_false(Class:is(nil))
                    assert.is_false(Class:is({}))
                    assert.is_false(Class:is({ message = "x" }))
                    assert.is_false(Class:is(42))
                    assert.is_false(Class:is(Class))
                    for _, other in ipairs(NAMES) do
                        if other ~= name then
                            assert.is_false(Class:is(lasio[other]("x")),
                                name .. ":is(" .. other .. ")")
                        end
                    end
                end)

            it("travels through error() and pcall unchanged", function()
                local Class = lasio[name]
                local e = Class("thrown")
                local ok, got = pcall(error, e)
                assert.is_false(ok)
                assert.are.equal(e, got)
                assert.is_true(Class:is(got))
            end)
        end)
    end

    it("CancelledError without a message prints as its class name", function()
        local e = lasio.CancelledError()
        assert.is_nil(e.message)
        assert.are.equal("CancelledError", tostring(e))
        assert.are.equal("string", type(e.traceback))
    end)

    it("the traceback of an instance says where it was made", function()
        local function make_the_error_here()
            local e = lasio.TimeoutError("t")
            return e
        end
        local e = make_the_error_here()
        assert.truthy(e.traceback:find("errors_spec", 1, true), e.traceback)
    end)

    it("the traceback of an error the core raises is written on its "
        .. "first read, as luaL_traceback writes it", function()
        local q = lasio.Queue()
        local function deep(n)
            if n == 0 then
                local _, e = pcall(q.get_nowait, q)
                return e
            end
            return (deep(n - 1))
        end
        local e = deep(30)
        assert.is_true(lasio.QueueEmpty:is(e), tostring(e))
        assert.is_nil(rawget(e, "traceback")) -- not written yet
        local tb = e.traceback
        assert.are.equal("string", type(tb))
        assert.truthy(tb:find("^stack traceback:\n"), tb)
        -- a name found in package.loaded, names from the call sites, the
        -- file and line of each frame, and the middle of a deep stack
        assert.truthy(tb:find("\n\t%[C%]: in function 'pcall'\n"), tb)
        assert.truthy(tb:find("errors_spec.lua:%d+: in upvalue 'deep'"), tb)
        assert.truthy(tb:find("\n\t...\t%(skipping %d+ levels%)\n"), tb)
        -- kept as the field from then on
        assert.are.equal(tb, rawget(e, "traceback"))
        assert.are.equal(tb, e.traceback)
        assert.is_nil(e.no_such_field)
        assert.are.equal(lasio.QueueEmpty.is, e.is)
    end)

    it("a cancelled task's CancelledError still has its traceback",
        helper.async(function()
        local task = lasio.spawn(function()
            local _, e = pcall(lasio.sleep, 10)
            return e
        end)
        lasio.sleep(0)
        task:cancel()
        local ok, e = pcall(task.await, task)
        assert.is_true(ok) -- the task caught it and returned it
        assert.is_true(lasio.CancelledError:is(e), tostring(e))
        assert.truthy(e.traceback:find("^stack traceback:"), e.traceback)
    end))

    it("Class:is includes subclasses (the built-in classes share a base)",
        function()
            -- API.md names no base class; the implementation exports one
            -- as lasio.Error. Every built-in class is its subclass.
            assert.is_table(lasio.Error, "lasio.Error (the base class)")
            for _, name in ipairs(NAMES) do
                assert.is_true(lasio.Error:is(lasio[name]("x")), name)
            end
            assert.is_false(lasio.CancelledError:is(lasio.Error("x")))
            assert.is_false(lasio.Error:is("x"))
        end)

    it("errors raised by the core are instances of the classes", function()
        local fut = lasio.Future()
        local ok, e = pcall(fut.result, fut)
        assert.is_false(ok)
        assert.is_true(lasio.InvalidStateError:is(e), tostring(e))
        assert.are.equal("string", type(e.message))
        assert.are.equal("string", type(e.traceback))
        assert.truthy(tostring(e):find("^InvalidStateError"))
        fut:cancel("why")
        ok, e = pcall(fut.result, fut)
        assert.is_false(ok)
        assert.is_true(lasio.CancelledError:is(e))
        assert.are.equal("why", e.message)
        assert.are.equal("CancelledError: why", tostring(e))
    end)

    describe("after package.loaded.lasio = nil and require again", function()
        local unload, restore = helper.unload_lasio, helper.restore_lasio

        it("the classes are the same tables", function()
            local before = {}
            for _, name in ipairs(NAMES) do before[name] = lasio[name] end
            local old_instance = lasio.TimeoutError("old")
            local saved = unload()
            local ok, again = pcall(require, "lasio")
            restore(saved)
            assert.is_true(ok, tostring(again))
            assert.are_not.equal(nil, again)
            for _, name in ipairs(NAMES) do
                assert.are.equal(before[name], again[name], name)
            end
            assert.is_true(again.TimeoutError:is(old_instance))
            assert.is_true(lasio.TimeoutError:is(again.TimeoutError("new")))
        end)

        for _, interp in ipairs(helper.interps) do
            it("in a fresh process too, and core errors match (" .. interp
                .. ")", function()
                local out, err, status = helper.run_child([[
local lasio = require "lasio"
local C1, I1 = lasio.CancelledError, lasio.InvalidStateError
for k in pairs(package.loaded) do
    if k == "lasio" or k:match("^lasio%.") then package.loaded[k] = nil end
end
local again = require "lasio"
print("same", rawequal(C1, again.CancelledError),
    rawequal(I1, again.InvalidStateError))
local f = again.Future()
local ok, e = pcall(f.result, f)
print("old-class-sees-new-error", I1:is(e))
f:cancel("zz")
ok, e = pcall(f.result, f)
print("cancel", C1:is(e), tostring(e))
]], { interp = interp })
                assert.are.equal(0, status, err)
                assert.truthy(out:find("same\ttrue\ttrue", 1, true), out)
                assert.truthy(out:find("old-class-sees-new-error\ttrue", 1,
                    true), out)
                assert.truthy(out:find("cancel\ttrue\tCancelledError: zz", 1,
                    true), out)
            end)
        end
    end)
end)
