/*
 * repl.c: the lasio REPL. A libevent read event on fd 0 drives libedit's
 * callback interface (terminal) or a line buffer (pipe); each line resolves
 * a Future the REPL chunk (Lua, in the main task) awaits. Owns the input
 * object. Invariant: no Lua code runs in the libevent callback.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <lua.h>
#include <lauxlib.h>

#include "cli/edit_dl.h" /* libedit, loaded on the first terminal */
#include "lasio.h"
#include "cli/cli.h"

#define INPUT_MT "lasio.cli.Input"
#define READ_SIZE 4096

/*
 * stdin as the REPL sees it. L is the state's main thread (from
 * LUA_RIDX_MAINTHREAD): it lives as long as the state, and the callback
 * uses it to resolve the Future, in protected mode. The input object is
 * kept alive by the REPL chunk (a <close> local) for as long as the event
 * may fire; close() frees the event. Invariant: ref holds the Future of the
 * one pending read, and the event is armed only while a read is pending, so
 * input is consumed only when someone waits for it.
 */
struct input {
    lua_State *L;
    struct event *ev; /* read event on fd 0, NULL when fd 0 can't be polled */
    int ref;          /* pending read's Future in the registry, or NOREF */
    int tty;          /* edit lines with libedit */
    int eof;          /* end of input seen: every later read gets nil */
    int installed;    /* libedit's line handler is installed */
    int closed;
    char *buf; /* pipes and files: bytes read, not handed out yet */
    size_t len, cap;
    const char *out; /* the line being handed to resolve_p, or NULL */
    size_t outlen;
};

/*
 * libedit's callback interface is process-wide and its line handler gets
 * no user data: this is the (only) input whose handler is installed. The
 * terminal is one per process too, so this is no per-state data.
 */
static struct input *rl_input;

/* Leaves the terminal in its normal mode if the process exits at the
 * prompt (os.exit from a task, for one). */
static void
restore_terminal(void) {
    if (rl_input != NULL) {
        rl_input->installed = 0;
        rl_input = NULL;
        rl_callback_handler_remove();
    }
}

/* {====== resolving the pending read ====== */

/* [-0, +1, m] Resolves the read's Future with in->out; pushes success. */
static int
resolve_p(lua_State *L) {
    struct input *in = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, in->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref);
    in->ref = LUA_NOREF;
    if (in->out != NULL)
        lua_pushlstring(L, in->out, in->outlen);
    else
        lua_pushnil(L);
    lua_pushboolean(L, lasio_future_resolve(L, -2, 1) == 0);
    return 1;
}

/*
 * Hands the line s (NULL: end of input) to the pending read, using L: the
 * running thread inside a Lua call, in->L in a libevent callback. Safe in
 * the callback: resolving schedules the waiting task and runs no Lua code,
 * and a memory error stays inside the pcall. Returns 0 when the Future was
 * already done (the read was cancelled), so the caller keeps the line.
 */
static int
deliver(lua_State *L, struct input *in, const char *s, size_t len) {
    int ok;
    if (in->ref == LUA_NOREF)
        return 0;
    if (in->ev != NULL)
        event_del(in->ev);
    in->out = s;
    in->outlen = len;
    lua_pushcfunction(L, resolve_p);
    lua_pushlightuserdata(L, in);
    ok = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_toboolean(L, -1);
    lua_pop(L, 1);
    in->out = NULL;
    return ok;
}

/* Hands out the first buffered line, or the end of input. Returns 1 if
 * it did, 0 when no full line is buffered yet. */
static int
deliver_buffered(lua_State *L, struct input *in) {
    char *nl = in->len > 0 ? memchr(in->buf, '\n', in->len) : NULL;
    size_t n;
    if (nl == NULL && !in->eof)
        return 0;
    if (nl == NULL && in->len == 0) { /* end of input */
        deliver(L, in, NULL, 0);
        return 1;
    }
    n = nl != NULL ? (size_t)(nl - in->buf) : in->len;
    if (deliver(L, in, in->buf, n)) {
        n = nl != NULL ? n + 1 : n; /* consume the line and its '\n' */
        memmove(in->buf, in->buf + n, in->len - n);
        in->len -= n;
    }
    return 1;
}

/* Reads once from fd 0 into the buffer; sets eof at the end or on error.
 * Returns 0 when nothing could be read now (EAGAIN, EINTR). */
static int
fill(struct input *in) {
    ssize_t n;
    if (in->cap - in->len < READ_SIZE) {
        size_t cap = in->cap * 2 + READ_SIZE;
        char *p = realloc(in->buf, cap);
        if (p == NULL) {
            in->eof = 1; /* cannot go on reading: end the REPL */
            return 1;
        }
        in->buf = p;
        in->cap = cap;
    }
    n = read(0, in->buf + in->len, READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        in->eof = 1;
    else
        in->len += (size_t)n;
    return 1;
}

/* ====== } */

/* {====== libedit and the read event ====== */

/* libedit's line handler: a whole line, or NULL at Ctrl-D. */
static void
on_line(char *line) {
    struct input *in = rl_input;
    rl_input = NULL;
    rl_callback_handler_remove();
    if (in != NULL) {
        in->installed = 0;
        if (line == NULL)
            in->eof = 1;
        deliver(in->L, in, line, line != NULL ? strlen(line) : 0);
    }
    free(line);
}

/* The read event (libevent callback: no Lua code runs here). */
static void
on_readable(evutil_socket_t fd, short what, void *arg) {
    struct input *in = arg;
    (void)fd;
    (void)what;
    if (in->tty) {
        int avail = 0;
        /* readable with nothing to read: the terminal hung up */
        if (ioctl(0, FIONREAD, &avail) == 0 && avail == 0)
            on_line(NULL);
        else
            rl_callback_read_char(); /* may call on_line */
        return;
    }
    if (fill(in))
        deliver_buffered(in->L, in);
}

/* Drops the pending read, if any: its Future was cancelled (Ctrl-C at
 * the prompt) or the input is closing. */
static void
drop_read(lua_State *L, struct input *in) {
    if (in->ev != NULL)
        event_del(in->ev);
    if (in->installed) {
        in->installed = 0;
        rl_input = NULL;
        rl_callback_handler_remove();
    }
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref);
    in->ref = LUA_NOREF;
}

/* ====== } */

/* {====== the input object ====== */

static struct input *
checkinput(lua_State *L) {
    struct input *in = luaL_checkudata(L, 1, INPUT_MT);
    if (in->closed)
        luaL_error(L, "REPL input is closed");
    return in;
}

/* in:read(prompt) -> Future of the next line (nil at the end of input) */
static int
input_read(lua_State *L) {
    struct input *in = checkinput(L);
    const char *prompt = luaL_optstring(L, 2, "");
    if (in->ref != LUA_NOREF)
        return luaL_error(L, "a REPL read is already pending");
    lua_settop(L, 2);
    lasio_future_new(L); /* index 3 */
    lua_pushvalue(L, 3);
    in->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (in->tty && in->eof) {
        deliver(L, in, NULL, 0);
    } else if (in->tty) {
        rl_input = in;
        in->installed = 1;
        rl_callback_handler_install(prompt, on_line); /* shows the prompt */
        event_add(in->ev, NULL);
    } else {
        fputs(prompt, stdout); /* as lua.c does without readline */
        fflush(stdout);
        if (!deliver_buffered(L, in)) {
            if (in->ev != NULL)
                event_add(in->ev, NULL);
            else /* a file: reading does not block the loop for long */
                while (fill(in), !deliver_buffered(L, in))
                    ;
        }
    }
    lua_settop(L, 3);
    return 1;
}

/* in:cancel(): forget the pending read (its Future was cancelled). */
static int
input_cancel(lua_State *L) {
    drop_read(L, checkinput(L));
    return 0;
}

/* in:history(line): add a line to the line editor's history */
static int
input_history(lua_State *L) {
    struct input *in = checkinput(L);
    const char *line = luaL_checkstring(L, 2);
    if (in->tty && line[0] != '\0')
        add_history(line);
    return 0;
}

/* __gc, __close and close(): idempotent. */
static int
input_close(lua_State *L) {
    struct input *in = luaL_checkudata(L, 1, INPUT_MT);
    if (in->closed)
        return 0;
    drop_read(L, in);
    in->closed = 1;
    if (in->ev != NULL)
        event_free(in->ev);
    in->ev = NULL;
    free(in->buf);
    in->buf = NULL;
    in->len = in->cap = 0;
    return 0;
}

static const luaL_Reg input_methods[] = {{"read", input_read},
                                         {"cancel", input_cancel},
                                         {"history", input_history},
                                         {"close", input_close},
                                         {NULL, NULL}};

/* Can fd 0 be watched with epoll (pipes, sockets, terminals)? */
static int
pollable_stdin(void) {
    struct stat st;
    if (fstat(0, &st) != 0)
        return 0;
    return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(0);
}

/* Pushes a new input object on stdin. [-0, +1, e] */
static void
newinput(lua_State *L) {
    static int registered; /* the atexit hook, once per process */
    struct event_base *base = lasio_get_base(L);
    struct input *in = lua_newuserdatauv(L, sizeof *in, 0);
    memset(in, 0, sizeof *in);
    in->ref = LUA_NOREF;
    in->closed = 1; /* until it is complete */
    if (luaL_newmetatable(L, INPUT_MT)) {
        luaL_newlib(L, input_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, input_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, input_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    in->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    in->tty = isatty(0);
    if (in->tty) {
        const char *why = lasio_edit_load_();
        if (why) { /* read lines as from a pipe, as lua.c without readline */
            fprintf(stderr, "lasio: no line editing: %s\n", why);
            in->tty = 0;
        }
    }
    if (base == NULL)
        luaL_error(L, "REPL: lasio has no event loop");
    if (pollable_stdin()) {
        in->ev = event_new(base, 0, EV_READ | EV_PERSIST, on_readable, in);
        if (in->ev == NULL)
            luaL_error(L, "REPL: cannot watch stdin");
    } else {
        in->tty = 0;
    }
    in->closed = 0;
    if (in->tty) {
        rl_readline_name = "lasio";
        rl_catch_signals = 0; /* the loop handles SIGINT and SIGTERM */
        if (!registered)
            atexit(restore_terminal);
        registered = 1;
    }
}

/* ====== } */

/* {====== the REPL loop (Lua, runs in the main task) ======
 * lua.c's doREPL: each chunk is tried as "return <line>;" first, then as
 * statements, reading continuation lines while the chunk is incomplete.
 */
static const char repl_lua[] =
    "local input <close> = ...\n"
    "local lasio = require 'lasio'\n"
    "local set_interrupt_task = require('lasio.core').internal"
    ".set_interrupt_task\n"
    "local CancelledError = lasio.CancelledError\n"
    /* a task's error nobody took is shown while the session goes on */
    "require('lasio.core').internal.report_errors_early(true)\n"
    "local function report(msg)\n"
    "  io.stderr:write(tostring(msg), '\\n')\n"
    "  io.stderr:flush()\n"
    "end\n"
    "local function msghandler(e)\n"
    "  local msg = e\n"
    "  if type(msg) ~= 'string' then\n"
    "    local mt, ok, s = getmetatable(e), false, nil\n"
    "    if type(mt) == 'table' and mt.__tostring then\n"
    "      ok, s = pcall(tostring, e)\n"
    "    end\n"
    "    msg = (ok and type(s) == 'string') and s or\n"
    "      ('(error object is a %s value)'):format(type(e))\n"
    "  end\n"
    "  msg = debug.traceback(msg, 2)\n"
    "  return {e, (msg:gsub(\"\\n\\t%[C%]: in function 'xpcall'.*$\", ''))}\n"
    "end\n"
    /* CancelledError('interrupted') is a Ctrl-C: SIGTERM or a cancel
     * from code end the REPL */
    "local function interrupted(e)\n"
    "  return CancelledError:is(e) and e.message == 'interrupted'\n"
    "end\n"
    "local function run(fn)\n"
    "  return table.pack(xpcall(fn, msghandler))\n"
    "end\n"
    "local function getline(first)\n"
    "  local p = first and _PROMPT or _PROMPT2\n"
    "  if p == nil then p = first and '> ' or '>> ' end\n"
    "  local fut = input:read(tostring(p))\n"
    "  local ok, line = pcall(fut.await, fut)\n"
    "  if ok then return line end\n"
    "  input:cancel()\n"
    "  io.stdout:write('\\n')\n"
    "  if not interrupted(line) then error(line, 0) end\n"
    /* Ctrl-C at the prompt: handled, so the next one is a first one */
    "  lasio.current_task():uncancel()\n"
    "  set_interrupt_task(nil)\n"
    "  return false\n"
    "end\n"
    "local function incomplete(msg)\n"
    "  return msg:sub(-5) == '<eof>'\n"
    "end\n"
    /* -> 'ok', fn | 'error', msg | 'skip' | 'eof' */
    "local function loadchunk()\n"
    "  local line = getline(true)\n"
    "  if line == nil then return 'eof' end\n"
    "  if line == false then return 'skip' end\n"
    "  if line:sub(1, 1) == '=' then line = 'return ' .. line:sub(2) end\n"
    "  local fn = load('return ' .. line .. ';', '=stdin', 't')\n"
    "  if fn then\n"
    "    input:history(line)\n"
    "    return 'ok', fn\n"
    "  end\n"
    "  while true do\n"
    "    local err\n"
    "    fn, err = load(line, '=stdin', 't')\n"
    "    if fn or not incomplete(err) then\n"
    "      input:history(line)\n"
    "      if fn then return 'ok', fn end\n"
    "      return 'error', err\n"
    "    end\n"
    "    local more = getline(false)\n"
    "    if more == false then return 'skip' end\n"
    "    if more == nil then\n"
    "      input:history(line)\n"
    "      return 'error', err\n"
    "    end\n"
    "    line = line .. '\\n' .. more\n"
    "  end\n"
    "end\n"
    "while true do\n"
    "  local what, x = loadchunk()\n"
    "  if what == 'eof' then break end\n"
    "  if what == 'error' then\n"
    "    report(x)\n"
    "  elseif what == 'ok' then\n"
    "    local task = lasio.spawn(run, x)\n"
    "    set_interrupt_task(task)\n"
    "    local ok, r = pcall(task.await, task)\n"
    "    local err\n"
    "    if not ok then\n" /* cancelled before it started */
    "      err = r\n"
    "      report(r)\n"
    "    elseif not r[1] then\n"
    "      err = r[2][1]\n"
    "      report(r[2][2])\n"
    "    elseif r.n > 1 then\n"
    "      local okp, perr = pcall(print, table.unpack(r, 2, r.n))\n"
    "      if not okp then\n"
    "        report(\"error calling 'print' (\" .. tostring(perr) .. ')')\n"
    "      end\n"
    "    end\n"
    "    if CancelledError:is(err) and not interrupted(err) then\n"
    "      error(err, 0)\n" /* SIGTERM: end with the signal's status */
    "    end\n"
    "    set_interrupt_task(nil)\n"
    "  end\n"
    "end\n"
    "io.stdout:write('\\n')\n"
    /* the end of input ends the program: cancel what is still running */
    "local me = lasio.current_task()\n"
    "for _, t in ipairs(lasio.all_tasks()) do\n"
    "  if t ~= me then t:cancel() end\n"
    "end\n";

/* Continuation: the REPL chunk returned. */
static int
repl_done(lua_State *L, int status, lua_KContext ctx) {
    (void)L;
    (void)status;
    (void)ctx;
    return 0;
}

/* The REPL step of the main task. */
static int
repl_main(lua_State *L) {
    lua_settop(L, 0);
    if (luaL_loadbufferx(L, repl_lua, sizeof repl_lua - 1, "=(lasio repl)",
                         "t") != LUA_OK)
        return lua_error(L);
    newinput(L);
    lua_callk(L, 1, 0, 0, repl_done);
    return repl_done(L, LUA_OK, 0);
}

void
lasio_cli_push_repl_(lua_State *L) {
    lua_pushcfunction(L, repl_main);
}

/* ====== } */
