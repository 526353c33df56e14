/*
 * lasio.h: the embedding API of lasio, an async runtime for Lua 5.4 on
 * libevent. The only installed header; docs/EMBEDDING.md is its reference.
 * lasio keeps no C globals (but the process-wide signal hub), so several
 * Lua states, each with its own loop, can live in one process and in
 * different threads. No function here raises a Lua error unless it says so.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_h
#define lasio_h

#include <lua.h>
#include <lauxlib.h>

struct event_base;

#if defined(__GNUC__)
#define LASIO_API __attribute__((visibility("default")))
#else
#define LASIO_API
#endif

#define LASIO_VERSION "0.1.0"

/*
 * Conventions.
 *
 * Stack effects use the Lua manual's notation [-o, +p, x]: o values popped,
 * p pushed; x is '-' when the function never raises (every function of
 * this header but lasio_future_await, which is meant for C functions that
 * Lua calls). "Idx" arguments are stack indices of L, as in the Lua API;
 * the caller keeps room on the stack for what a function pushes
 * (lua_checkstack), as with lua_push*.
 *
 * Status codes. A function that returns an int returns LASIO_OK (0), one
 * of lua_pcall's statuses (LUA_ERRRUN, LUA_ERRMEM, LUA_ERRERR: a Lua error
 * or a memory error happened inside), or one of the negative codes below,
 * which mean the call was refused and changed nothing. Functions that push
 * a value push the error object instead when they fail, as lua_pcall does
 * (for a refusal, a message string; for LUA_ERRMEM, Lua's own message).
 *
 * Threads. "The main thread" is the lua_State that lua_newstate returned.
 * lasio_open, lasio_close, lasio_run and lasio_step need it and refuse a
 * coroutine (LASIO_ETHREAD); the other functions accept any thread of the
 * state, so C functions called from a task may use their own L. Only
 * lasio_pin_post may be called from an OS thread other than the one
 * running the loop: a lua_State is never thread-safe.
 */
#define LASIO_OK 0
/* Refused: the loop runs (called from inside lasio_run, lasio_step, a task,
 * a callback, or a host's dispatch of the loop's event_base). */
#define LASIO_EBUSY (-1)
/* lasio is not open in this state, or the loop (of the Future or pin) is
 * closed. */
#define LASIO_ECLOSED (-2)
/* A coroutine where the main thread is needed. */
#define LASIO_ETHREAD (-3)
/* A bad argument: not a Future, a bad count, NULL. */
#define LASIO_EINVAL (-4)
/* The Future is already done (resolved, rejected or cancelled). */
#define LASIO_EDONE (-5)

/*
 * A message naming a status code (LASIO_* or LUA_*). Never NULL; static.
 * Stack: [-0, +0, -]
 */
LASIO_API const char *lasio_strerror(int status);

/* {====== The loop ====== */

/*
 * Opens lasio in L: preloads the C module "lasio.core" (and, when the
 * library was built with it, the Lua facade) in package.preload, and makes
 * a new loop on `base` the state's current loop. With base == NULL the
 * loop creates its own event_base and frees it when it closes (on any
 * base the loop's timers wait on a timerfd of the loop's own); a host's base is never freed by lasio, and it
 * must outlive the loop: free it after lua_close(L) or lasio_close(L).
 * `require "lasio"` then works in L. L must be the main thread.
 * Returns LASIO_OK; LASIO_EBUSY when a loop is already open in L (close it
 * first); LASIO_ETHREAD; LUA_ERRMEM.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_open(lua_State *L, struct event_base *base);

/*
 * Closes the state's current loop, as loop:close() does: tasks still
 * pending are reported ("Task was destroyed but it is pending!") through
 * the exception handler and never run again, every event lasio added to
 * the base is freed (host events are left alone), pins are detached, and
 * calls still queued by lasio_pin_post run with L == NULL. The state stays
 * usable; lasio_open may open a new loop. lua_close(L) does the same
 * teardown without the reports (it runs no Lua code), also when it is
 * called from inside a task or from a callback of the host's dispatch.
 * Cancel the tasks and let them finish first if they need cleanup.
 * Returns LASIO_OK; LASIO_ECLOSED when no loop is open (so a second close
 * is refused); LASIO_EBUSY when the loop runs; LASIO_ETHREAD.
 * When lasio owns the base, do not call this from inside a host's
 * event_base_dispatch of that base: the base is freed here.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_close(lua_State *L);

/*
 * Runs the function below the nargs arguments on top of the stack as the
 * main task of the state's current loop, running the loop (the host's
 * events on the base included) until that task is done; then pops the
 * function and arguments and pushes the task's results (adjusted to
 * nresults, or all of them with LUA_MULTRET), or its error object, exactly
 * as lua_pcall(L, nargs, nresults, 0) would. Tasks the main task leaves
 * running stay pending on the loop, as with loop:run_until_complete: a
 * later lasio_run, lasio_step or the host's dispatch runs them on.
 * Returns LASIO_OK; LUA_ERRRUN when the task failed or was cancelled
 * (error object: what it raised, or a CancelledError), or when nothing
 * can ever wake the task (error: the "lasio: deadlock:" report);
 * LUA_ERRMEM when memory ran out (also inside the task). Refusals, with the
 * loop unharmed and a message pushed: LASIO_EBUSY when called from inside
 * a running loop (a task, a callback, lasio_step) or from a callback of a
 * host's event_base_dispatch on the same base (libevent also logs its
 * "reentrant invocation" warning); LASIO_ECLOSED; LASIO_ETHREAD;
 * LASIO_EINVAL when the stack holds fewer than nargs + 1 values.
 * Stack: [-(nargs+1), +(nresults|1), -]
 */
LASIO_API int lasio_run(lua_State *L, int nargs, int nresults);

/*
 * Runs one non-blocking iteration of the loop: the I/O that is ready and
 * the timers that are due (host events included), then a batch of ready
 * tasks and callbacks (a batch stops after 256 steps or about 1 ms; the
 * next step goes on). For hosts with a main loop of their own that call
 * this every turn. Returns the number of tasks still pending (>= 0), or a
 * refusal: LASIO_EBUSY, LASIO_ECLOSED, LASIO_ETHREAD as lasio_run (no
 * message pushed), or LUA_ERRMEM when it could not start.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_step(lua_State *L);

/*
 * Starts the function below the nargs arguments on top of the stack as a
 * new Task of the running loop, else of the state's current loop, without
 * running anything: its first step runs in the next lasio_run, lasio_step
 * or host dispatch of the base. Pops the function and the arguments and
 * pushes the Task, or the error object (then returns LASIO_ECLOSED,
 * LASIO_EINVAL or LUA_ERRMEM).
 * Stack: [-(nargs+1), +1, -]
 */
LASIO_API int lasio_task_spawn(lua_State *L, int nargs);

/*
 * Sets the exception handler of the running loop, else of the current
 * loop, to the function at idx (called as handler(loop, context), as
 * loop:set_exception_handler), or back to the default with nil. The
 * default prints the message and traceback to stderr. Errors that lasio
 * cannot give to a task (a failing callback, a never-retrieved error, a
 * failing lasio_pin_post call whose Future is already done) go there.
 * Returns LASIO_OK, LASIO_EINVAL (neither function nor nil), LASIO_ECLOSED.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_exception_handler_set(lua_State *L, int idx);

/*
 * The event_base of the running loop, else of the state's current loop;
 * NULL when none is open. Borrowed: owned by the loop or by the host.
 * A host may run event_base_dispatch / event_base_loop on it itself:
 * tasks and callbacks then progress inside that dispatch (lasio's events
 * make the loop "running" while they run, so awaits work in them).
 * Stack: [-0, +0, -]
 */
LASIO_API struct event_base *lasio_get_base(lua_State *L);

/*
 * Virtual time (docs/VIRTUAL_TIME.md): declares work of the host that a
 * task waits for, so the virtual clock of the state's running (else
 * current) loop holds while it is pending: +1 when the work starts, -1
 * when its result is delivered (both on the loop's thread). Does nothing
 * to a real-time loop but count. Returns LUA_OK, or LUA_ERRRUN when no
 * loop is open or more was released than held (nothing changed).
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_loop_hold(lua_State *L, int delta);

/*
 * One event of the loop's trace (docs/SEEING.md, The trace format), as
 * the sink gets it: `json` is the event's JSONL line (no newline), with
 * the fields of the format; `ev` its kind ("task.create", "task.wait",
 * ...). Everything is borrowed for the duration of the call.
 */
struct lasio_trace_event {
    long long seq;    /* 1, 2, 3... over the events this sink got */
    long long ts;     /* the loop's clock in ns (virtual, or since the
                         trace started) */
    const char *ev;   /* the kind */
    int task;         /* the task it is about, 0 for none */
    const char *json; /* the whole event as one JSON object */
    size_t len;       /* strlen(json) */
};
typedef void (*lasio_trace_sink_fn)(void *ud,
                                    const struct lasio_trace_event *ev);

/*
 * Sends every event of the state's running (else current) loop's trace to
 * fn(ud, ev), on the loop's thread, as it happens; fn NULL removes the
 * sink. fn must not call into Lua or lasio. Independent of a recording to
 * a file (--trace, lasio.trace.start): both can be on. Returns LUA_OK,
 * LASIO_ECLOSED when no loop is open, LUA_ERRMEM.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_trace_set_sink(lua_State *L, lasio_trace_sink_fn fn,
                                   void *ud);

/* ====== } */

/* {====== Futures from C ====== */

/*
 * Pushes a new pending Future of the running loop, else of the current
 * loop (or the error object: LASIO_ECLOSED, LUA_ERRMEM). While it is
 * pending and reachable it counts as something that can wake a task, so a
 * task awaiting it is never reported as deadlocked. The Future is an
 * ordinary Lua value: keep it reachable (lasio_future_pin) for as long as
 * C code means to resolve it. A lua_CFunction may return it: the script
 * awaits it with fut:await() or lasio.await(fut).
 * Stack: [-0, +1, -]
 */
LASIO_API int lasio_future_new(lua_State *L);

/*
 * Resolves the pending Future at idx with the nvalues values on top of the
 * stack, which are popped (also on failure). Runs no Lua code: callbacks
 * and waiting tasks are scheduled on the Future's loop, so this may be
 * called from a libevent callback. Returns LASIO_OK; LASIO_EDONE when the
 * Future is already done (for example cancelled by a timeout: ignore it);
 * LASIO_EINVAL when idx is not a Future (a Task cannot be resolved) or
 * nvalues is negative or more than the stack holds; LASIO_ECLOSED when
 * its loop is closed; LUA_ERRMEM.
 * Stack: [-nvalues, +0, -]
 */
LASIO_API int lasio_future_resolve(lua_State *L, int idx, int nvalues);

/*
 * Fails the pending Future at idx with the error value on top of the
 * stack, which is popped (also on failure). Awaiting the Future raises
 * that value. Same rules and statuses as lasio_future_resolve.
 * Stack: [-1, +0, -]
 */
LASIO_API int lasio_future_reject(lua_State *L, int idx);

/*
 * For a lua_CFunction called from a task, as `return
 * lasio_future_await(L, idx);` (like lua_yieldk, it does not return to its
 * caller when it suspends): waits for the Future or Task at idx and
 * returns its results from the C function, or raises its error
 * (CancelledError when the waiting task is cancelled: the Future is then
 * cancelled too). A done Future returns at once. Raises (as lasio.sleep
 * does) when not called from a task or across a C-call boundary.
 * Stack: [-?, +n, e]
 */
LASIO_API int lasio_future_await(lua_State *L, int idx);

/*
 * Sets the functions of the list l (as luaL_setfuncs: into the table
 * below the nup upvalues on top, which are popped and shared) as async
 * functions: calling one calls the C function, and when that returns one
 * Future or Task, waits for it (from a task) and returns its results, so
 * scripts call it like lasio's own I/O: `local v = host.fetch(url)`.
 * The C function may also wait itself with lasio_future_await, or return
 * plain values, which are returned as they are. Called outside a task,
 * an async function that returns a pending Future raises "not inside a
 * task". Returns LASIO_OK, LASIO_EINVAL (no table below the upvalues),
 * LUA_ERRMEM.
 * Stack: [-nup, +0, -]
 */
LASIO_API int lasio_async_register(lua_State *L, const luaL_Reg *l, int nup);

/* ====== } */

/* {====== Pins: C handles of Futures ====== */

/*
 * An opaque handle that keeps a Future (or Task) alive while C code holds
 * it: for the callback argument of a host's own pending event, or for
 * another OS thread. Allocated by lasio (malloc), freed by
 * lasio_future_unpin, which the holder calls exactly once. When the loop
 * closes (lasio_close, lua_close) the pin is detached: the Future is let
 * go, later calls with the pin return LASIO_ECLOSED, and the pin itself
 * stays valid memory until unpinned (also after lua_close).
 */
typedef struct lasio_pin lasio_pin;

/*
 * Pins the Future or Task at idx. A pending Future pinned from C counts as
 * something that can wake a task (see lasio_future_new). Also opens the
 * loop's wake-up pipe, which lasio_pin_post writes to. Returns the pin, or
 * NULL when idx is not a Future or Task, its loop is closed, or memory or
 * file descriptors ran out.
 * Stack: [-0, +0, -]
 */
LASIO_API lasio_pin *lasio_future_pin(lua_State *L, int idx);

/*
 * Lets go of the pin: the Future may be collected once nothing else
 * references it. Call it on the loop's thread (or after the state was
 * closed), once per pin, and only when no other thread can still post
 * with it. NULL is ignored. A lasio_pin_post call that is queued or
 * running keeps the pin and its Future until it returns, so a call may
 * unpin first and then resolve, reject or raise.
 * Stack: none (no lua_State)
 */
LASIO_API void lasio_future_unpin(lasio_pin *pin);

/*
 * Pushes the pinned Future (or the error object: LASIO_ECLOSED when the
 * pin is detached, LASIO_EINVAL for NULL, LUA_ERRMEM).
 * Stack: [-0, +1, -]
 */
LASIO_API int lasio_pin_push(lua_State *L, lasio_pin *pin);

/*
 * lasio_future_resolve / lasio_future_reject on the pinned Future: pops
 * the nvalues values (the error value) on top of the stack and completes
 * the Future; same statuses, plus LASIO_ECLOSED for a detached pin.
 * Stack: [-nvalues, +0, -] and [-1, +0, -]
 */
LASIO_API int lasio_pin_resolve(lua_State *L, lasio_pin *pin, int nvalues);
LASIO_API int lasio_pin_reject(lua_State *L, lasio_pin *pin);

/*
 * A call queued by lasio_pin_post. On the loop's thread, L is the state's
 * main thread and Lua may be used (typically: push values, then
 * lasio_pin_resolve, then lasio_future_unpin). It runs in protected mode:
 * an error it raises rejects the pinned Future when that is still pending
 * (the awaiting task gets it), else goes to the exception handler. When
 * the loop closes before the call could run, it is called with L == NULL
 * (during lasio_close or lua_close): then it must only release what ud
 * holds (and may unpin).
 */
typedef void (*lasio_pin_fn)(lua_State *L, lasio_pin *pin, void *ud);

/*
 * Thread-safe: from any OS thread, queues fn(L, pin, ud) to run on the
 * loop's thread, in order of posting, and wakes the loop through its own
 * wake-up pipe (libevent threading need not be enabled). The loop runs the
 * queue when it next polls: inside lasio_run, lasio_step or the host's
 * dispatch of the base. Returns LASIO_OK (fn will be called exactly once),
 * LASIO_ECLOSED when the loop is closed (fn will not be called: the caller
 * keeps ud), LASIO_EINVAL (NULL pin or fn), LUA_ERRMEM (malloc failed).
 * A pin holds the record of one call: posting while no earlier post of
 * the same pin is queued never allocates, so it cannot fail for memory.
 */
LASIO_API int lasio_pin_post(lasio_pin *pin, lasio_pin_fn fn, void *ud);

/* ====== } */

/* {====== Untrusted scripts: memory cap, budgets, caps, sandbox ======
 * docs/UNTRUSTED.md is the chapter on these. */

/*
 * Caps the memory the Lua state holds at `bytes` (0: no cap). The first
 * call puts lasio's counting allocator in front of the state's allocator
 * (whatever lua_newstate was given; lua_close puts it back). An allocation
 * that would pass the cap fails as "not enough memory" (LUA_ERRMEM) in the
 * code that asked, after Lua's emergency collection; the loop and the
 * other tasks go on. The count is exact for what Lua allocates: the peak
 * never passes the cap; memory outside Lua's allocator (libevent, stream
 * buffers, the allocator's own overhead) is not counted (docs/UNTRUSTED.md
 * measures it). Returns LASIO_OK; LASIO_EINVAL when the state already
 * holds more than `bytes` after a full collection; LUA_ERRRUN or
 * LUA_ERRMEM when memory ran out.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_set_memory_limit(lua_State *L, size_t bytes);

/*
 * What the state holds now and the most it held since the counting
 * allocator was put in front (lasio_set_memory_limit, or a task's memory
 * budget). LASIO_EINVAL when it has none. Either pointer may be NULL.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_memory_usage(lua_State *L, size_t *used, size_t *peak);

/*
 * Forced yields (preemption): a task that runs `instructions` VM
 * instructions is suspended at that point and requeued behind the ready
 * tasks, and the loop polls its timers and I/O before it goes on, so one
 * spinning task cannot starve the others (0: off). The count of a task
 * goes on across its awaits. Where the task cannot yield (inside a C
 * function such as table.sort's comparator, a metamethod called from C, a
 * coroutine the task resumed itself) it goes on to the next point where
 * it can. Applies to tasks spawned after the call, from the main thread
 * or from a task. Returns LASIO_OK, LASIO_EINVAL (negative),
 * LASIO_ECLOSED (lasio is not open).
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_set_forced_yield(lua_State *L, long instructions);

/*
 * The run's budgets, counted from this call over every task and callback
 * of the loop (0: none): VM instructions and CPU seconds of the thread
 * running the loop. Past one, the running code gets a
 * lasio.BudgetExceeded error (fields budget = "instructions" or "cpu",
 * scope = "run", limit), and so does every later one that runs Lua code,
 * so the run ends. Checked every 10,000 instructions (or every forced
 * yield): a C function (string.rep, a pattern match) runs to its end
 * first; the memory cap bounds what it can allocate.
 * Returns LASIO_OK, LASIO_EINVAL, LASIO_ECLOSED.
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_set_run_budget(lua_State *L, long long instructions,
                                   double cpu_seconds);

/*
 * Caps of the loop (0: none): pending tasks and pending timers
 * (call_later, call_at, sleeps). Creating one more raises an error in the
 * code that asked. Returns LASIO_OK, LASIO_EINVAL, LASIO_ECLOSED.
 * Stack: [-0, +(0|1), -]
 */
LASIO_API int lasio_set_caps(lua_State *L, int max_tasks, int max_timers);

/*
 * More caps of the loop (0: none): open sockets (servers, connections
 * made and accepted, UDP endpoints) and bytes of output (print, io.write,
 * io.stdout:write, io.stderr:write). Past one, an error naming the cap.
 * Returns LASIO_OK, LASIO_EINVAL, LASIO_ECLOSED. Stack: [-0, +(0|1), -]
 */
LASIO_API int lasio_set_io_caps(lua_State *L, int max_sockets,
                                long long max_output);

/* The sandbox may use lasio's I/O (sockets, files, processes, HTTP). */
#define LASIO_SANDBOX_IO 1

/*
 * Pushes a new sandbox environment: copies of the safe parts of the
 * standard library (no io, os.execute and the like, package, require,
 * loadfile, dofile, debug, string.dump; load takes text only; getmetatable
 * answers for tables only; setmetatable refuses __gc; collectgarbage
 * answers "count", "step", "isrunning"), print capped at max_output bytes
 * (0: no cap), and a copy of the loaded lasio module (all of it with
 * LASIO_SANDBOX_IO, else scheduling, synchronisation and errors only).
 * Returns LASIO_OK or LUA_ERRMEM (error pushed instead).
 * Stack: [-0, +1, -]
 */
LASIO_API int lasio_sandbox_env(lua_State *L, int flags, long long max_output);

/*
 * Loads `chunk` (text only: a binary chunk is refused) as a function whose
 * environment is a new sandbox environment (lasio_sandbox_env). Pushes the
 * function, or the error (LUA_ERRRUN for a syntax error or a binary
 * chunk, LUA_ERRMEM). LASIO_EINVAL (nothing pushed) for NULL arguments.
 * Stack: [-0, +(0|1), -]
 */
LASIO_API int lasio_load_sandboxed(lua_State *L, const char *chunk, size_t len,
                                   const char *name, int flags,
                                   long long max_output);

/* ====== } */

/* {====== Live introspection ====== */

/*
 * Serves the state's current loop to `lasio ps PID`, `lasio pstree PID`,
 * `lasio dump PID` and `lasio trace PID` (docs/SEEING.md): a thread
 * accepts on the abstract Unix socket `name` (NULL: "lasio/<pid>", the
 * name those commands look for), answers peers of the process's own uid
 * or root only, and hands each request to the loop, which answers between
 * task steps while it runs (lasio_run, lasio_step, or the host's dispatch
 * of its event_base). A loop that does not answer within 0.5 s is
 * reported busy with the running task's line, sampled by a count hook
 * that SIGURG sets on the loop's thread (unless the process handles
 * SIGURG itself). Call it from the thread that runs the loop, once per
 * process; lasio_close (the loop's close) stops serving. Serving keeps no
 * loop running and holds no virtual clock.
 * Returns LASIO_OK; LASIO_ECLOSED (no loop), LASIO_EINVAL (a name of 0 or
 * more than 100 bytes), or LUA_ERRRUN with errno set when the socket or
 * thread cannot be made (EADDRINUSE: the name is taken; EBUSY: this
 * process serves a loop already).
 * Stack: [-0, +0, -]
 */
LASIO_API int lasio_inspect_listen(lua_State *L, const char *name);

/* ====== } */

#endif
