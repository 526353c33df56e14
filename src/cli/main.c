/*
 * main.c: the lasio command, a port of Lua 5.4's lua.c (MIT, PUC-Rio): runs
 * LUA_INIT, -e, -l, -W, the script and the REPL in command-line order as ONE
 * main task (lasio_cli_run_). Owns the process's Lua state. Invariant: every
 * chunk loads before any code runs (unreadable: 2, syntax error: 3, at once).
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "cli/cli.h"
#include "net/net.h"
#include "lasio.h"

#define PROGNAME "lasio"

/* One compiled-in facade module as bytecode of this binary's Lua, from
 * build/facade_bc.c (src/cli/facade_dump.c). */
struct lasio_embedded_ {
    const char *mod, *chunkname, *src;
    size_t len;
};
extern const struct lasio_embedded_ lasio_facade_bc_[];

/* The command line, shared by main() and pmain() (no C globals). */
struct cli {
    int argc;
    char **argv;
    int script;      /* index of the script name, 0 if none, or the bad arg */
    int flags;       /* the has_* bits below */
    int nsteps;      /* steps queued for the main task so far */
    int status;      /* exit status */
    int workers;     /* --workers N, 0 without it */
    int worker;      /* in a worker of --workers: its number, from 1 */
    const char *why; /* what is wrong with a bad option value, or NULL */
    const char *bad; /* that value (NULL when missing) */
    struct lasio_cli_vt vt;       /* the options of virtual time (vtime.c) */
    struct lasio_cli_limits lim;  /* --max-memory, --sandbox, ... */
    struct lasio_cli_trace trace; /* --trace FILE, ... */
};

/* bits of the options found by collectargs (lua.c's, plus lasio's) */
#define has_error 1    /* bad option */
#define has_i 2        /* -i */
#define has_v 4        /* -v */
#define has_e 8        /* -e */
#define has_E 16       /* -E */
#define has_help 32    /* --help */
#define has_bytes 64   /* --allow-bytecode */
#define has_debug 128  /* --debug */
#define has_badval 256 /* a bad value of an option (message printed) */
#define has_noinsp 512 /* --no-inspect */

#define MAX_WORKERS 1024
#define MAX_WORKERS_TEXT "1024"

static const char options_text[] =
    "Options (as lua5.4's):\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "Options of lasio:\n"
    "  --allow-bytecode  allow binary (precompiled) chunks as the script\n"
    "            and in load, loadfile, dofile and require (refused by\n"
    "            default: a crafted binary chunk can crash Lua)\n"
    "  --debug   debug mode for every event loop (sets LASIO_DEBUG=1,\n"
    "            which child processes inherit)\n"
    "  --virtual-time    run on a virtual clock that jumps to the next timer\n"
    "            when nothing is ready; real I/O is refused\n"
    "  --real-io[=MS]    with --virtual-time: allow real I/O; the clock holds\n"
    "            MS ms (10) after I/O events (not deterministic)\n"
    "  --seed=N  seed math.random and the virtual loop's PRNG (LASIO_SEED)\n"
    "  --shuffle         with --virtual-time: run each ready batch in a\n"
    "            seeded random order\n"
    "  --check-determinism[=N]  run N (2) times with one seed; exit 6 at\n"
    "            the first difference\n"
    "  --virtual-limit=S cancel the main task at virtual time S\n"
    "  --real-timeout=S  after S wall-clock seconds list every task, exit 124\n"
    "  --time-rate=R     with --virtual-time: let the clock flow R times\n"
    "            real time instead of jumping\n"
    "  --trace FILE      record the run's events: FILE.json (Chrome trace,\n"
    "            for Perfetto) or FILE.jsonl (lasio events, a line each)\n"
    "  --trace-ring N    with --trace: keep only the last N events\n"
    "  --trace-stacks    with --trace: a Lua stack summary on wait events\n"
    "  --help    show this help and exit\n"
    "  --no-inspect  no inspector socket (as LASIO_NO_INSPECT=1)\n"
    "  --workers N  run the script in N processes (1 to 1024) that share\n"
    "            their listening ports; a crashed one is restarted\n"
    "Limits for untrusted scripts (docs/UNTRUSTED.md):\n"
    "  --max-memory=SIZE  cap the Lua state's memory (K, M, G suffixes)\n"
    "  --forced-yield=N   suspend a task that ran a time slice (0.5 ms),\n"
    "            N VM instructions after the slice\n"
    "  --max-instructions=N, --max-cpu=SECONDS  the run's budgets\n"
    "  --max-tasks=N, --max-timers=N  caps of pending tasks and timers\n"
    "  --max-sockets=N    cap of open sockets, servers, UDP endpoints\n"
    "  --max-output=SIZE  cap of the bytes of print, io.write and writes\n"
    "            to stdout and stderr (and the sandbox's print)\n"
    "  --sandbox[=io]     run the script in the sandbox (=io: with\n"
    "            lasio's I/O)\n";

static const char help_text[] =
    "\n"
    "Tools (a script of that name runs as 'lasio ./trace'):\n"
    "  lasio trace view FILE [-o OUT.html]  draw a trace file as a timeline\n"
    "            in one self-contained HTML page (FILE.html by default)\n"
    "  lasio trace text FILE  print a trace file as a text timeline per task\n"
    "\n"
    "LUA_INIT, -e, -l and the script run in command-line order as the main\n"
    "task of an event loop, so 'lasio.sleep(1)' works at top level and\n"
    "'lasio' is a global. The script gets the remaining arguments as '...'\n"
    "and in the table 'arg'. The process exits when the main task and every\n"
    "other task have finished, or at os.exit. Without a script, lasio reads\n"
    "stdin: as a REPL on a terminal, else as a script. REPL lines run as\n"
    "tasks on the running loop (tasks started earlier keep running between\n"
    "prompts); Ctrl-C cancels the line being run, Ctrl-D ends the REPL and\n"
    "cancels the tasks still running.\n"
    "\n"
    "Environment:\n"
    "  LUA_INIT_5_4, LUA_INIT   code run first, or '@file' to run a file\n"
    "  LUA_PATH_5_4, LUA_PATH, LUA_CPATH_5_4, LUA_CPATH   module paths\n"
    "  LASIO_DEBUG   any value but '' and '0': event loops start in debug\n"
    "                mode (slow steps reported, tasks' creation sites kept)\n"
    "  LASIO_NO_INSPECT  any value but '' and '0': as --no-inspect\n"
    "\n"
    "Looking at a running lasio process (its inspector socket):\n"
    "  lasio ps [--json] PID   its tasks: state, what each waits on, steps\n"
    "  lasio pstree PID        the tasks as a tree of awaits (exit 1 on an\n"
    "                          await cycle)\n"
    "  lasio dump PID          every task's stack (also: kill -QUIT PID)\n"
    "  lasio trace PID --seconds S -o FILE   record its events for S s\n"
    "\n"
    "Exit status:\n"
    "  0    success (also when a reader such as 'head' closed stdout early:\n"
    "       writing to that pipe then ends the process)\n"
    "  1    uncaught error in the main task (message and traceback on\n"
    "       stderr)\n"
    "  2    bad command line, or the script file cannot be read\n"
    "  3    syntax error, or a refused binary chunk\n"
    "  4    the main task succeeded but some task's error was never\n"
    "       retrieved\n"
    "  5    deadlock: tasks wait for something that can never happen (they\n"
    "       are listed on stderr)\n"
    "  6    --check-determinism: two runs differed\n"
    "  124  --real-timeout reached (every task listed on stderr)\n"
    "  130  SIGINT, 143 SIGTERM: the first one cancels the main task, so\n"
    "       <close> handlers run; a second SIGINT ends the process at once\n"
    "  the script's own status with os.exit\n";

/* {====== messages ====== */

static void
l_message(const char *pname, const char *msg) {
    if (pname != NULL)
        fprintf(stderr, "%s: ", pname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

/* Prints the message on top (a string, from Lua or msghandler), pops it. */
static void
report(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
        msg = "(error object is not a string)";
    l_message(PROGNAME, msg);
    lua_pop(L, 1);
}

static void
print_usage(const char *badoption, const struct cli *c) {
    if (c->why != NULL)
        fprintf(stderr, "%s: %s, got %s%s%s\n", PROGNAME, c->why,
                c->bad ? "'" : "", c->bad ? c->bad : "nothing",
                c->bad ? "'" : "");
    else if (badoption[1] == 'e' || badoption[1] == 'l')
        fprintf(stderr, "%s: '%s' needs argument\n", PROGNAME, badoption);
    else if (badoption[1] == '-' && strchr(badoption, '='))
        fprintf(stderr, "%s: bad value in option '%s'\n", PROGNAME, badoption);
    else
        fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, badoption);
    fprintf(stderr, "usage: %s [options] [script [args]]\n%s", PROGNAME,
            options_text);
    fflush(stderr);
}

static void
print_help(void) {
    printf("usage: %s [options] [script [args]]\n"
           "Runs Lua 5.4 scripts on lasio, an asyncio-style event loop.\n"
           "\n%s%s",
           PROGNAME, options_text, help_text);
}

static void
print_version(void) {
    printf("lasio %s (%s)\n", LASIO_VERSION, LUA_COPYRIGHT);
    fflush(stdout);
}

/* ====== } */

/* {====== stdout closed by its reader ======
 * The command ignores SIGPIPE, so a script printing to a pipe whose reader
 * has gone (`lasio script | head -1`) would get write errors forever.
 * Instead, a write to stdout that fails because the pipe is broken ends
 * the process with status 0: what SIGPIPE does to lua5.4, minus the
 * signal death. print, io.write and file:write are wrapped for this.
 */

/* Is fd 1 a pipe or socket whose reader has gone? */
static int
stdout_gone(void) {
    struct pollfd p = {1, POLLOUT, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

/* Calls the wrapped function (upvalue 1) with every argument. */
static int
stdout_guard(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (ferror(stdout) && stdout_gone())
        exit(LASIO_EXIT_OK);
    return lua_gettop(L);
}

/* Replaces t[name] (t at idx) by a guarded version. [-0, +0, m] */
static void
guard_field(lua_State *L, int idx, const char *name) {
    idx = lua_absindex(L, idx);
    if (lua_getfield(L, idx, name) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    lua_pushcclosure(L, stdout_guard, 1);
    lua_setfield(L, idx, name);
}

/* [-0, +0, m] */
static void
guard_stdout(lua_State *L) {
    lua_pushglobaltable(L);
    guard_field(L, -1, "print");
    lua_pop(L, 1);
    if (lua_getglobal(L, "io") == LUA_TTABLE)
        guard_field(L, -1, "write");
    lua_pop(L, 1);
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) {
        if (lua_getfield(L, -1, "__index") == LUA_TTABLE)
            guard_field(L, -1, "write"); /* the file methods */
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The exit status once stdout is flushed: a broken pipe is no error. */
static int
flush_stdout(int status) {
    if ((fflush(stdout) != 0 || ferror(stdout)) && !stdout_gone()) {
        l_message(PROGNAME, "error writing to stdout");
        if (status == LASIO_EXIT_OK)
            status = LASIO_EXIT_ERROR;
    }
    return status;
}

/* ====== } */

/* {====== the compiled-in facade ====== */

/* package.preload loader of one facade module (upvalue 1: its entry). */
static int
facade_loader(lua_State *L) {
    const struct lasio_embedded_ *e = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_loadbufferx(L, e->src, e->len, e->chunkname, "b") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from '%s':\n\t%s",
                          e->mod, e->chunkname + 1, lua_tostring(L, -1));
    lua_pushstring(L, e->mod);
    lua_pushstring(L, e->chunkname + 1); /* as a file's loader data */
    lua_call(L, 2, 1);
    return 1;
}

void
lasio_cli_preload_facade_(lua_State *L) {
    const struct lasio_embedded_ *e;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (e = lasio_facade_bc_; e->mod != NULL; e++) {
        /* the entries are static: a light userdata is enough */
        lua_pushlightuserdata(L, (void *)e);
        lua_pushcclosure(L, facade_loader, 1);
        lua_setfield(L, -2, e->mod);
    }
    lua_pop(L, 1);
}

/* ====== } */

/* {====== the steps of the main task ======
 * Each step is a table {f, args..., n = #values, script = bool}: call f
 * with the args, plus arg[1..#arg] when it is the script (read when the
 * script starts, as lua.c does, so -e can change them).
 */

/* Queues f and the nvals - 1 values above it as the next step. Stack:
 * the steps table at index 1. [-nvals, +0, m] */
static void
add_step(lua_State *L, struct cli *c, int nvals, int script) {
    int i, first = lua_gettop(L) - nvals + 1;
    lua_createtable(L, nvals, 2);
    for (i = 0; i < nvals; i++) {
        lua_pushvalue(L, first + i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, nvals);
    lua_setfield(L, -2, "n");
    lua_pushboolean(L, script);
    lua_setfield(L, -2, "script");
    lua_rawseti(L, 1, ++c->nsteps);
    lua_settop(L, first - 1);
}

/* Step of -l: global[argument 1] = require(argument 2). */
static int
dolibrary(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    lua_setglobal(L, luaL_checkstring(L, 1));
    return 0;
}

/* Step of -W. */
static int
warnings_on(lua_State *L) {
    lua_warning(L, "@on", 0);
    return 0;
}

/* Pushes arg[1..#arg] and returns their count (lua.c's pushargs). */
static int
pushargs(lua_State *L) {
    int i, n;
    if (lua_getglobal(L, "arg") != LUA_TTABLE)
        luaL_error(L, "'arg' is not a table");
    n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (i = 1; i <= n; i++)
        lua_rawgeti(L, -i, i);
    lua_remove(L, -i); /* remove table from the stack */
    return n;
}

/*
 * The main task: runs step k, k+1, ... (upvalue 1: the steps table). A
 * step may suspend the task, so each runs through lua_callk with this
 * function as its continuation and the next step's index as context.
 */
static int
main_task_k(lua_State *L, int status, lua_KContext k) {
    lua_Integer i;
    (void)status;
    for (i = (lua_Integer)k;; i++) {
        int n, j, script;
        lua_settop(L, 0);
        if (lua_rawgeti(L, lua_upvalueindex(1), i) != LUA_TTABLE)
            return 0; /* no more steps */
        lua_getfield(L, 1, "n");
        n = (int)lua_tointeger(L, -1);
        lua_getfield(L, 1, "script");
        script = lua_toboolean(L, -1);
        lua_settop(L, 1);
        luaL_checkstack(L, n, "too many arguments");
        for (j = 1; j <= n; j++)
            lua_rawgeti(L, 1, j);
        if (script)
            n += pushargs(L);
        lua_callk(L, n - 1, 0, (lua_KContext)(i + 1), main_task_k);
    }
}

static int
main_task(lua_State *L) {
    return main_task_k(L, LUA_OK, 1);
}

/* ====== } */

/* {====== loading the chunks ====== */

/* The exit status of a failed load; prints its message. */
static int
load_failed(lua_State *L, int status) {
    report(L);
    if (status == LUA_ERRFILE)
        return LASIO_EXIT_USAGE;
    return status == LUA_ERRSYNTAX ? LASIO_EXIT_SYNTAX : LASIO_EXIT_ERROR;
}

/* Queues LUA_INIT_5_4 or LUA_INIT. Returns a lua_load status. */
static int
queue_luainit(lua_State *L, struct cli *c) {
    const char *name = "=LUA_INIT" LUA_VERSUFFIX;
    const char *init = getenv(name + 1);
    int allow = (c->flags & has_bytes) != 0, status;
    if (init == NULL) {
        name = "=LUA_INIT";
        init = getenv(name + 1); /* try alternative name */
    }
    if (init == NULL)
        return LUA_OK;
    if (init[0] == '@')
        status = lasio_cli_loadfile_(L, init + 1, allow);
    else
        status = lasio_cli_loadbuffer_(L, init, strlen(init), name, allow);
    if (status == LUA_OK)
        add_step(L, c, 1, 0);
    return status;
}

/* Queues -e, -l and -W among argv[1 .. n-1], in order (lua.c runargs). */
static int
queue_args(lua_State *L, struct cli *c, int n) {
    int i, allow = (c->flags & has_bytes) != 0;
    for (i = 1; i < n; i++) {
        char **argv = c->argv, *extra, *modname;
        int option = argv[i][1];
        if (option == 'W') {
            lua_pushcfunction(L, warnings_on);
            add_step(L, c, 1, 0);
        }
        if (option != 'e' && option != 'l')
            continue;
        extra = argv[i] + 2; /* both options need an argument */
        if (*extra == '\0')
            extra = argv[++i];
        if (option == 'e') {
            int status = lasio_cli_loadbuffer_(L, extra, strlen(extra),
                                               "=(command line)", allow);
            if (status != LUA_OK)
                return status;
            add_step(L, c, 1, 0);
            continue;
        }
        /* -l g=mod or -l mod */
        lua_pushcfunction(L, dolibrary);
        modname = strchr(extra, '=');
        if (modname == NULL) {
            lua_pushstring(L, extra);
            lua_pushstring(L, extra);
        } else {
            lua_pushlstring(L, extra, (size_t)(modname - extra));
            lua_pushstring(L, modname + 1);
        }
        add_step(L, c, 3, 0);
    }
    return LUA_OK;
}

/* Queues the script argv[c->script] ("-" is stdin unless after "--"). */
static int
queue_script(lua_State *L, struct cli *c) {
    const char *fname = c->argv[c->script];
    int status;
    if (strcmp(fname, "-") == 0 && strcmp(c->argv[c->script - 1], "--") != 0)
        fname = NULL; /* stdin */
    /* a sandboxed script is text, whatever --allow-bytecode says */
    status = lasio_cli_loadfile_(L, fname,
                                 (c->flags & has_bytes) && !c->lim.sandbox);
    if (status == LUA_OK) {
        lasio_cli_sandbox_(L, &c->lim);
        add_step(L, c, 1, 1);
    }
    return status;
}

/* ====== } */

/* {====== command line and main ====== */

/* lua.c's createargtable: arg[0] is the script, options go negative. */
static void
createargtable(lua_State *L, char **argv, int argc, int script) {
    int i, narg;
    narg = argc - (script + 1); /* number of positive indices */
    lua_createtable(L, narg > 0 ? narg : 0, script + 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Reads the N of --workers N (v, NULL when missing) into c->workers;
 * 0, with c->why set, when v is not a number of processes. */
static int
parse_workers(struct cli *c, const char *v) {
    char *end;
    long n = v != NULL ? strtol(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || n < 1 || n > MAX_WORKERS) {
        c->why =
            "--workers needs a number of processes from 1 to " MAX_WORKERS_TEXT;
        c->bad = v;
        return 0;
    }
    c->workers = (int)n;
    return 1;
}

/*
 * lua.c's collectargs, plus --help, --allow-bytecode, --debug and
 * --workers. Returns the
 * has_* mask; c->script is the index of the bad argument on error, else 0 (no
 * script) or the index of the script name.
 */
static int
collectargs(struct cli *c) {
    char **argv = c->argv;
    int args = 0, i;
    c->script = 0;
    if (argv[0] == NULL)
        return 0;
    for (i = 1; argv[i] != NULL; i++) {
        c->script = i;
        if (argv[i][0] != '-') /* not an option? */
            return args;
        if (strcmp(argv[i], "--help") == 0) {
            args |= has_help;
            continue;
        }
        if (strcmp(argv[i], "--allow-bytecode") == 0) {
            args |= has_bytes;
            continue;
        }
        if (strncmp(argv[i], "--workers", 9) == 0 &&
            (argv[i][9] == '\0' || argv[i][9] == '=')) {
            const char *v = argv[i][9] == '=' ? argv[i] + 10 : argv[++i];
            if (!parse_workers(c, v))
                return has_error;
            continue;
        }
        if (strcmp(argv[i], "--debug") == 0) {
            args |= has_debug;
            continue;
        }
        if (strcmp(argv[i], "--no-inspect") == 0) {
            args |= has_noinsp;
            continue;
        }
        if (argv[i][1] == '-' && argv[i][2] != '\0') {
            int taken = lasio_cli_vt_option_(&c->vt, argv, &i);
            if (taken == 0)
                taken = lasio_cli_trace_option_(&c->trace, argv, &i);
            if (taken < 0)
                return has_badval;
            if (taken > 0)
                continue;
        }
        int limit = lasio_cli_limit_option_(&c->lim, argv[i]);
        if (limit < 0)
            return has_error;
        if (limit)
            continue;
        switch (argv[i][1]) {
        case '-': /* '--' */
            if (argv[i][2] != '\0')
                return has_error;
            c->script = argv[i + 1] != NULL ? i + 1 : 0;
            return args;
        case '\0': /* '-': the script is stdin */
            return args;
        case 'E':
            if (argv[i][2] != '\0')
                return has_error;
            args |= has_E;
            break;
        case 'W':
            if (argv[i][2] != '\0')
                return has_error;
            break;
        case 'i':
            args |= has_i; /* -i implies -v */
            /* fall through */
        case 'v':
            if (argv[i][2] != '\0')
                return has_error;
            args |= has_v;
            break;
        case 'e':
            args |= has_e;
            /* fall through */
        case 'l': /* both options need an argument */
            if (argv[i][2] == '\0') {
                i++;
                if (argv[i] == NULL || argv[i][0] == '-')
                    return has_error;
            }
            break;
        default:
            return has_error;
        }
    }
    c->script = 0; /* no script name */
    return args;
}

/* Opens the libraries, lasio and the global `lasio`. [-0, +0, e] */
static void
open_libs(lua_State *L, struct cli *c) {
    if (c->flags & has_E) { /* signal for libraries to ignore env. vars. */
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }
    luaL_openlibs(L);
    lasio_cli_vt_seed_(L, &c->vt);
    lasio_cli_vt_request_(L, &c->vt); /* before lasio_open makes the loop */
    if (!(c->flags & has_bytes))
        lasio_cli_refuse_binary_(L);
    guard_stdout(L);
    if (lasio_open(L, NULL) != 0)
        luaL_error(L, "cannot create the event loop");
    if (c->workers > 0)
        lasio_net_share_listeners_(L);
    lasio_cli_inspect_start_(L, (c->flags & has_noinsp) != 0);
    lasio_cli_preload_facade_(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lasio");
    lua_call(L, 1, 1);
    lua_setglobal(L, "lasio");
}

/* Queues every step and runs them as the main task (in protected mode). */
static int
pmain(lua_State *L) {
    struct cli *c = lua_touserdata(L, 1);
    int optlim = c->script > 0 ? c->script : c->argc;
    int status = LUA_OK;
    luaL_checkversion(L);
    lua_settop(L, 0);
    if (c->flags & has_v)
        print_version();
    open_libs(L, c);
    const char *bad_limits = lasio_cli_apply_limits_(L, &c->lim);
    if (c->worker && lasio_cli_trace_per_worker_(&c->trace, c->worker) < 0)
        luaL_error(L, "--trace: not enough memory");
    if (!bad_limits)
        bad_limits = lasio_cli_trace_start_(L, &c->trace);
    if (bad_limits) {
        l_message(PROGNAME, bad_limits);
        c->status = LASIO_EXIT_USAGE;
        return 0;
    }
    createargtable(L, c->argv, c->argc, c->script);
    lua_gc(L, LUA_GCRESTART);   /* start GC... */
    lua_gc(L, LUA_GCGEN, 0, 0); /* ...in generational mode, as lua.c */
    lua_newtable(L);            /* the steps, at index 1 */
    if (!(c->flags & has_E))
        status = queue_luainit(L, c);
    if (status == LUA_OK)
        status = queue_args(L, c, optlim);
    if (status == LUA_OK && c->script > 0)
        status = queue_script(L, c);
    if (status == LUA_OK && !(c->flags & has_i) && c->script == 0 &&
        !(c->flags & (has_e | has_v))) { /* no active option */
        if (isatty(0)) {
            print_version();
            c->flags |= has_i;
        } else {
            status = lasio_cli_loadfile_(L, NULL, (c->flags & has_bytes) != 0);
            if (status == LUA_OK)
                add_step(L, c, 1, 0);
        }
    }
    if (status != LUA_OK) {
        c->status = load_failed(L, status);
        return 0;
    }
    if (c->flags & has_i) {
        lasio_cli_push_repl_(L);
        add_step(L, c, 1, 0);
    }
    lua_pushcclosure(L, main_task, 1);
    lasio_cli_vt_start_(L, &c->vt);
    c->status = lasio_cli_vt_finish_(&c->vt, lasio_cli_run_(L, 0));
    return 0;
}

int
main(int argc, char **argv) {
    struct cli c = {argc, argv, 0,   0,   0,  LASIO_EXIT_ERROR, 0, 0,
                    NULL, NULL, {0}, {0}, {0}};
    c.vt.real_io_ms = -1;
    lua_State *L;
    struct lasio_alloc *alloc;
    if (lasio_cli_inspect_(argc, argv, &c.status)) /* lasio ps PID ... */
        return c.status;
    if (lasio_cli_tool_(argc, argv, &c.status)) /* lasio trace ... */
        return c.status;
    c.flags = collectargs(&c);
    if (c.flags == has_error) {
        print_usage(argv[c.script], &c);
        return LASIO_EXIT_USAGE;
    }
    c.vt.argv = argv;
    c.vt.script = c.script;
    if (c.flags == has_badval || lasio_cli_trace_check_(&c.trace) < 0 ||
        lasio_cli_vt_check_(&c.vt, (c.flags & has_i) ||
                                       (c.script == 0 && isatty(0) &&
                                        !(c.flags & (has_e | has_v)))) < 0)
        return LASIO_EXIT_USAGE;
    if (c.vt.check_n)
        return lasio_cli_vt_check_determinism_(&c.vt, argc, argv);
    if (c.flags & has_help) {
        print_help();
        return flush_stdout(LASIO_EXIT_OK);
    }
    /* through the environment, so that every loop the script makes starts
     * in debug mode, as they do under LASIO_DEBUG */
    if ((c.flags & has_debug) && setenv("LASIO_DEBUG", "1", 1) != 0) {
        l_message(argv[0], "cannot set LASIO_DEBUG");
        return LASIO_EXIT_ERROR;
    }
    if (c.workers > 0 && (c.script == 0 || (c.flags & has_i))) {
        l_message(PROGNAME, "--workers needs a script, and no -i");
        return LASIO_EXIT_USAGE;
    }
    if (c.workers > 0 &&
        !(c.worker = lasio_cli_supervise_(c.workers, &c.status)))
        return c.status;
    L = lasio_cli_newstate_(&alloc);
    if (L == NULL) {
        l_message(argv[0], "cannot create state: not enough memory");
        return LASIO_EXIT_ERROR;
    }
    lua_gc(L, LUA_GCSTOP); /* stop GC while building state */
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        report(L);
        c.status = LASIO_EXIT_ERROR;
    }
    lua_close(L);
    lasio_alloc_free_(alloc);
    return flush_stdout(c.status);
}

/* ====== } */
