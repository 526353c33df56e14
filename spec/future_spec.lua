-- Specs for lasio.Future (docs/API.md, Future): states, results and errors,
-- cancellation, done callbacks (always from the loop, in order, once),
-- multiple results, tostring. Covers F1 and F2.
-- SPDX-License-Identifier: MIT
local helper = require "helper"
local lasio = require "lasio"
local async = helper.async

local raises = helper.raises

describe("Future", function()
    it("isfuture: true for Futures and Tasks, false for anything else",
        async(function()
            local fut = lasio.Future()
            local t = lasio.spawn(function() end)
            assert.is_true(lasio.isfuture(fut))
            assert.is_true(lasio.isfuture(t))
            fut:set_exception("boom") -- a failed one (finalizer twin) too
            fut:exception()
            assert.is_true(lasio.isfuture(fut))
            for _, v in ipairs({1, "x", {}, print, io.stdout,
                lasio.get_running_loop(), lasio.Event(), coroutine.create(print)}) do
                assert.is_false(lasio.isfuture(v), tostring(v))
            end
            assert.is_false(lasio.isfuture(nil))
            assert.is_false(lasio.isfuture())
            t:await()
        end))

    -- covers F1
    describe("state (F1)", function()
        it("a new future is pending and result/exception raise InvalidState",
            async(function()
                local fut = lasio.Future()
                assert.is_false(fut:done())
                assert.is_false(fut:cancelled())
                local e = raises(fut.result, fut)
                assert.is_true(lasio.InvalidStateError:is(e), tostring(e))
                e = raises(fut.exception, fut)
                assert.is_true(lasio.InvalidStateError:is(e), tostring(e))
            end))

        it("a resolved future keeps its value; a second set raises; cancel is false",
            async(function()
                local fut = lasio.Future()
                fut:set_result(42)
                assert.is_true(fut:done())
                assert.is_false(fut:cancelled())
                assert.are.equal(42, fut:result())
                assert.is_nil(fut:exception())
                local e = raises(fut.set_result, fut, 43)
                assert.is_true(lasio.InvalidStateError:is(e), tostring(e))
                e = raises(fut.set_exception, fut, "nope")
                assert.is_true(lasio.InvalidStateError:is(e), tostring(e))
                assert.is_false(fut:cancel())
                assert.is_false(fut:cancelled())
                assert.are.equal(42, fut:result())
                assert.is_nil(fut:exception())
            end))

        it("a failed future raises its error from result and returns it from exception",
            async(function()
                local err = { code = "E_SPEC" }
                local fut = lasio.Future()
                fut:set_exception(err)
                assert.is_true(fut:done())
                assert.is_false(fut:cancelled())
                assert.are.equal(err, raises(fut.result, fut))
                assert.are.equal(err, fut:exception())
                assert.is_true(lasio.InvalidStateError:is(
                    raises(fut.set_result, fut, 1)))
                assert.is_true(lasio.InvalidStateError:is(
                    raises(fut.set_exception, fut, "again")))
                assert.is_false(fut:cancel())
                assert.are.equal(err, fut:exception())
            end))

        it("a string error is raised by result", async(function()
            local fut = lasio.Future()
            fut:set_exception("string-boom")
            local e = raises(fut.result, fut)
            assert.truthy(tostring(e):find("string-boom", 1, true))
            assert.truthy(tostring(fut:exception()):find("string-boom", 1,
                true))
        end))

        it("a lasio error object is raised as the same object", async(function()
            local err = lasio.TimeoutError("late")
            local fut = lasio.Future()
            fut:set_exception(err)
            assert.are.equal(err, raises(fut.result, fut))
            assert.are.equal(err, raises(lasio.await, fut))
        end))

        it("cancel: true once, then false; result and exception raise CancelledError",
            async(function()
                local fut = lasio.Future()
                assert.is_true(fut:cancel())
                assert.is_true(fut:cancelled())
                assert.is_true(fut:done())
                assert.is_false(fut:cancel())
                local e = raises(fut.result, fut)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_nil(e.message)
                assert.are.equal("CancelledError", tostring(e))
                e = raises(fut.exception, fut)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.is_true(lasio.InvalidStateError:is(
                    raises(fut.set_result, fut, 1)))
                assert.is_true(lasio.InvalidStateError:is(
                    raises(fut.set_exception, fut, "x")))
            end))

        it("cancel(msg) puts the message into the CancelledError", async(function()
            local fut = lasio.Future()
            assert.is_true(fut:cancel("stop it"))
            local e = raises(fut.result, fut)
            assert.is_true(lasio.CancelledError:is(e))
            assert.are.equal("stop it", e.message)
            assert.are.equal("CancelledError: stop it", tostring(e))
            e = raises(lasio.await, fut)
            assert.is_true(lasio.CancelledError:is(e))
            assert.are.equal("stop it", e.message)
        end))

        it("get_loop is the loop it was made on", async(function()
            local loop = lasio.get_running_loop()
            assert.are.equal(loop, lasio.Future():get_loop())
            assert.are.equal(loop, loop:create_future():get_loop())
        end))

        it("loop:create_future makes a pending future", async(function()
            local fut = lasio.get_running_loop():create_future()
            assert.is_false(fut:done())
            fut:set_result("ok")
            assert.are.equal("ok", fut:await())
        end))
    end)

    describe("multiple results", function()
        it("set_result(1, nil, 3) keeps all three, nils included", async(function()
            local fut = lasio.Future()
            fut:set_result(1, nil, 3)
            assert.are.equal(3, select("#", fut:result()))
            local a, b, c = fut:result()
            assert.are.same({ 1, nil, 3 }, { a, b, c })
            assert.are.equal(3, select("#", fut:await()))
            a, b, c = fut:await()
            assert.are.same({ 1, nil, 3 }, { a, b, c })
            assert.are.equal(3, select("#", lasio.await(fut)))
        end))

        it("trailing nils count", async(function()
            local fut = lasio.Future()
            fut:set_result(nil, nil)
            assert.are.equal(2, select("#", fut:result()))
        end))

        it("set_result() with no values gives no values", async(function()
            local fut = lasio.Future()
            fut:set_result()
            assert.is_true(fut:done())
            assert.are.equal(0, select("#", fut:result()))
        end))

        it("an awaiting task gets all values when resolved later", async(function()
            local fut = lasio.Future()
            local loop = lasio.get_running_loop()
            loop:call_later(0.005, function() fut:set_result("a", nil, "c", nil) end)
            local r = table.pack(fut:await())
            assert.are.equal(4, r.n)
            assert.are.equal("a", r[1])
            assert.is_nil(r[2])
            assert.are.equal("c", r[3])
        end))
    end)

    describe("await", function()
        it("suspends until resolved by a callback", async(function()
            local fut = lasio.Future()
            local loop = lasio.get_running_loop()
            local resolved = false
            loop:call_later(0.01, function()
                resolved = true
                fut:set_result("v")
            end)
            assert.are.equal("v", fut:await())
            assert.is_true(resolved)
        end))

        it("raises the error set later", async(function()
            local fut = lasio.Future()
            local err = {}
            lasio.get_running_loop():call_soon(function() fut:set_exception(err) end)
            local ok, e = pcall(fut.await, fut)
            assert.is_false(ok)
            assert.are.equal(err, e)
        end))

        it("raises CancelledError with the message when cancelled later",
            async(function()
                local fut = lasio.Future()
                lasio.get_running_loop():call_soon(function() fut:cancel("later") end)
                local ok, e = pcall(lasio.await, fut)
                assert.is_false(ok)
                assert.is_true(lasio.CancelledError:is(e), tostring(e))
                assert.are.equal("later", e.message)
                -- only the future was cancelled, not the awaiting task
                assert.is_false(lasio.current_task():cancelled())
            end))

        it("several tasks awaiting one future all get the result", async(function()
            local fut = lasio.Future()
            local got = {}
            local tasks = {}
            for i = 1, 5 do
                tasks[i] = lasio.spawn(function() got[i] = fut:await() end)
            end
            lasio.sleep(0)
            fut:set_result("shared")
            for i = 1, 5 do tasks[i]:await() end
            for i = 1, 5 do assert.are.equal("shared", got[i]) end
        end))
    end)

    -- covers F2
    describe("done callbacks (F2)", function()
        it("run from the loop, never inside set_result, with the future",
            async(function()
                local fut = lasio.Future()
                local calls = {}
                fut:add_done_callback(function(f) calls[#calls + 1] = f end)
                fut:set_result(1)
                assert.are.equal(0, #calls)
                lasio.sleep(0)
                assert.are.equal(1, #calls)
                assert.are.equal(fut, calls[1])
            end))

        it("also when the future is cancelled or failed", async(function()
            local f1, f2 = lasio.Future(), lasio.Future()
            local n = 0
            f1:add_done_callback(function(f)
                assert.is_true(f:cancelled())
                n = n + 1
            end)
            f2:add_done_callback(function(f)
                assert.are.equal("bad", f:exception())
                n = n + 1
            end)
            f1:cancel()
            f2:set_exception("bad")
            assert.are.equal(0, n)
            lasio.sleep(0)
            assert.are.equal(2, n)
        end))

        it("are scheduled with call_soon at completion (FIFO with other callbacks)",
            async(function()
                local loop = lasio.get_running_loop()
                local fut = lasio.Future()
                local log = {}
                loop:call_soon(function() log[#log + 1] = "before" end)
                fut:add_done_callback(function() log[#log + 1] = "done-cb" end)
                fut:set_result(true)
                loop:call_soon(function() log[#log + 1] = "after" end)
                lasio.sleep(0)
                assert.are.same({ "before", "done-cb", "after" }, log)
            end))

        it("run in registration order, each once; B removes C and adds D",
            async(function()
                local fut = lasio.Future()
                local log = {}
                local A, B, C, D
                function A() log[#log + 1] = "A" end
                function C() log[#log + 1] = "C" end
                function D() log[#log + 1] = "D" end
                function B(f)
                    log[#log + 1] = "B"
                    f:remove_done_callback(C)
                    f:add_done_callback(D)
                end
                fut:add_done_callback(A)
                fut:add_done_callback(B)
                fut:add_done_callback(C)
                fut:set_result(0)
                assert.are.same({}, log)
                assert.is_true(helper.wait_until(function() return #log >= 4 end, 2))
                lasio.sleep(0.01)
                -- A, B and C were scheduled when the future finished; D was
                -- added to a done future and scheduled at once.
                assert.are.same({ "A", "B", "C", "D" }, log)
            end))

        it("a raising callback goes to the exception handler and the others still run",
            async(function()
                local fut = lasio.Future()
                local log = {}
                local seen = helper.capture_exceptions(function(seen)
                    fut:add_done_callback(function() log[#log + 1] = 1 end)
                    fut:add_done_callback(function() error("cb-exploded") end)
                    fut:add_done_callback(function() log[#log + 1] = 3 end)
                    fut:set_result(true)
                    helper.wait_until(function() return #seen > 0 and #log == 2 end, 2)
                    lasio.sleep(0.01)
                end)
                assert.are.same({ 1, 3 }, log)
                assert.are.equal(1, #seen)
                assert.are.equal("string", type(seen[1].message))
                assert.truthy(tostring(seen[1].exception):find("cb-exploded", 1, true))
                assert.are.equal(lasio.get_running_loop(), seen.loop)
            end))

        it("added to a done future: scheduled at once, not called inline",
            async(function()
                local fut = lasio.Future()
                fut:set_result(5)
                local got
                fut:add_done_callback(function(f) got = f:result() end)
                assert.is_nil(got)
                lasio.sleep(0)
                assert.are.equal(5, got)
            end))

        it("remove_done_callback removes every registration and returns how many",
            async(function()
                local fut = lasio.Future()
                local nf, ng = 0, 0
                local function f() nf = nf + 1 end
                local function g() ng = ng + 1 end
                fut:add_done_callback(f)
                fut:add_done_callback(g)
                fut:add_done_callback(f)
                assert.are.equal(2, fut:remove_done_callback(f))
                assert.are.equal(0, fut:remove_done_callback(f))
                fut:set_result()
                lasio.sleep(0.005)
                assert.are.equal(0, nf)
                assert.are.equal(1, ng)
            end))

        it("the same function registered twice runs twice", async(function()
            local fut = lasio.Future()
            local n = 0
            local function f() n = n + 1 end
            fut:add_done_callback(f)
            fut:add_done_callback(f)
            fut:set_result()
            lasio.sleep(0.005)
            assert.are.equal(2, n)
        end))

        it("callbacks that resolve other futures do not recurse", async(function()
            -- b's callback is scheduled when a's callback resolves b: it must
            -- not run inside a's callback.
            local a, b = lasio.Future(), lasio.Future()
            local depth, max_depth = 0, 0
            b:add_done_callback(function()
                max_depth = math.max(max_depth, depth + 1)
            end)
            a:add_done_callback(function()
                depth = depth + 1
                b:set_result()
                depth = depth - 1
            end)
            a:set_result()
            b:await()
            lasio.sleep(0)
            assert.are.equal(1, max_depth)
        end))

        it("add_done_callback rejects a non-callable", async(function()
            local fut = lasio.Future()
            assert.is_false(pcall(fut.add_done_callback, fut, 42))
        end))
    end)

    describe("tostring", function()
        it("names the state", async(function()
            local p = lasio.Future()
            assert.truthy(tostring(p):find("^lasio%.Future<pending"), tostring(p))
            local f = lasio.Future()
            f:set_result(42)
            assert.truthy(tostring(f):find("^lasio%.Future<finished"), tostring(f))
            assert.truthy(tostring(f):find("42", 1, true), tostring(f))
            local c = lasio.Future()
            c:cancel()
            assert.truthy(tostring(c):find("^lasio%.Future<cancelled"), tostring(c))
            local e = lasio.Future()
            e:set_exception("oops")
            assert.truthy(tostring(e):find("^lasio%.Future<finished"), tostring(e))
            assert.are.equal("oops", e:exception())
        end))
    end)
end)
