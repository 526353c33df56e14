/*
 * cli.h: what the files of the lasio command share: the exit statuses,
 * running a script (cli_run.c), the facade compiled in, the binary-chunk
 * policy (chunkmode.c), the REPL (repl.c) and the command's allocator and
 * state (alloc.c, clistate.c). Internal to the command: not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_cli_h
#define lasio_cli_h

#include <stddef.h>
#include <lua.h>

/* Exit statuses of the lasio command (docs/API.md, The lasio command). */
#define LASIO_EXIT_OK 0
#define LASIO_EXIT_ERROR 1
#define LASIO_EXIT_USAGE 2
#define LASIO_EXIT_SYNTAX 3
#define LASIO_EXIT_UNRETRIEVED 4
#define LASIO_EXIT_DEADLOCK 5
#define LASIO_EXIT_NONDETERMINISTIC 6
#define LASIO_EXIT_TIMEOUT 124
#define LASIO_EXIT_SIGINT 130
#define LASIO_EXIT_SIGTERM 143

/*
 * Runs the function below the nargs arguments on top of L as the main task
 * of the state's current loop (lasio must be open in L), then keeps the loop
 * running until every task has finished. On the way it prints the main
 * task's error with its traceback, the deadlock report, and handles SIGINT
 * and SIGTERM (the first cancels the interrupt target, by default the main
 * task; a second SIGINT exits 130 at once). Returns the exit status.
 * Stack: [-(nargs+1), +0, e]
 */
int lasio_cli_run_(lua_State *L, int nargs);

/*
 * Registers the compiled-in Lua facade (the files of lua/lasio) in
 * package.preload. Stack: [-0, +0, m]
 */
void lasio_cli_preload_facade_(lua_State *L);

/*
 * Live introspection (inspect_cli.c): `lasio ps|pstree|dump PID`: when
 * argv[1] names one, runs it and returns 1 with *status its exit status;
 * returns 0 otherwise. lasio_cli_inspect_start_ serves the state's loop
 * on the inspector socket unless off (--no-inspect) or LASIO_NO_INSPECT.
 */
int lasio_cli_inspect_(int argc, char **argv, int *status);
void lasio_cli_inspect_start_(lua_State *L, int off);

/*
 * `lasio NAME ARGS...` for the command's tools (tools.c): when argv[1]
 * names a tool (`trace`), runs it and returns 1 with *status its exit
 * status; returns 0 otherwise.
 */
int lasio_cli_tool_(int argc, char **argv, int *status);

/*
 * `--workers N` (workers.c): forks n workers, restarts a crashed one with
 * backoff, passes SIGTERM, SIGINT, SIGHUP and SIGQUIT on, and waits for
 * all. Returns the worker's number (1 to n) in a worker, which goes on to
 * run the script; 0 in the
 * supervisor once every worker has ended, with *status the worst (highest)
 * exit status, 128 + the signal for a worker killed by one.
 */
int lasio_cli_supervise_(int n, int *status);

/* {====== Trace options (clitrace.c) ====== */

/* What --trace, --trace-ring and --trace-stacks asked for. */
struct lasio_cli_trace {
    const char *path; /* --trace FILE, or NULL */
    int format;       /* from the file name (enum lasio_trace_format) */
    long ring;        /* --trace-ring N, else 0 */
    int stacks;       /* --trace-stacks */
};

/* Takes argv[*i] when it is a trace option (*i moves past a separate
 * value): 1 taken, 0 not one, -1 bad value (message printed). */
int lasio_cli_trace_option_(struct lasio_cli_trace *ct, char **argv, int *i);
/* Checks the options together: -1 on a usage error (message printed). */
int lasio_cli_trace_check_(struct lasio_cli_trace *ct);
/* After the loop is made, before any chunk runs: wraps os.exit so that it
 * writes a running recording, and starts --trace's. Returns NULL, or the
 * message of a usage error (the file cannot be opened). [-0, +0, m] */
const char *lasio_cli_trace_start_(lua_State *L, struct lasio_cli_trace *ct);
/* In worker n of --workers: the recording goes to FILE with ".n" before
 * its extension (trace.json: trace.3.json), one file per worker. Returns
 * -1 without memory. */
int lasio_cli_trace_per_worker_(struct lasio_cli_trace *ct, int n);

/* ====== } */

/* {====== Virtual time options (vtime.c) ====== */

struct lasio_loop;

/* What the options of virtual time asked for. */
struct lasio_cli_vt {
    int on;                  /* --virtual-time */
    int shuffle;             /* --shuffle */
    int real_io_ms;          /* --real-io[=MS], else -1 */
    int check_n;             /* --check-determinism[=N], else 0 */
    int has_seed;            /* --seed or LASIO_SEED given */
    long long seed;          /* the seed (chosen when not given) */
    double limit;            /* --virtual-limit, else 0 */
    double real_timeout;     /* --real-timeout, else 0 */
    double rate;             /* --time-rate, else 0 */
    char **argv;             /* the command line, for the rerun command */
    int script;              /* argv index of the script, or 0 */
    struct lasio_loop *loop; /* the run's loop (kept by the state) */
};

/* Takes argv[*i] when it is an option of virtual time (*i moves past a
 * separate value): 1 taken, 0 not one, -1 bad value (message printed). */
int lasio_cli_vt_option_(struct lasio_cli_vt *vt, char **argv, int *i);
/* Checks the options together and reads LASIO_SEED (a seed is chosen when
 * none is given); -1 on a usage error (message printed). */
int lasio_cli_vt_check_(struct lasio_cli_vt *vt, int interactive);
/* Before the loop is made: asks for virtual loops. [-0, +0, m] */
void lasio_cli_vt_request_(lua_State *L, struct lasio_cli_vt *vt);
/* After the standard libraries: seeds math.random. [-0, +0, e] */
void lasio_cli_vt_seed_(lua_State *L, struct lasio_cli_vt *vt);
/* Before the run: notes the current loop and arms the --real-timeout
 * watchdog on it. */
void lasio_cli_vt_start_(lua_State *L, struct lasio_cli_vt *vt);
/* After the run: the limit's message, and for a failed virtual run the
 * seed and the command that reruns it. Returns the exit status (1 when
 * the virtual time limit ended a run). */
int lasio_cli_vt_finish_(struct lasio_cli_vt *vt, int status);
/* --check-determinism: runs the command check_n times with one seed,
 * passes the first run's output through, and returns its status, or 6
 * with the first difference printed. */
int lasio_cli_vt_check_determinism_(struct lasio_cli_vt *vt, int argc,
                                    char **argv);

/* ====== } */

/* {====== The size-class allocator (alloc.c) and the command's state
 * (clistate.c) ====== */

struct lasio_alloc;

/* A lua_Alloc: ud is a struct lasio_alloc. */
void *lasio_alloc_fn_(void *ud, void *ptr, size_t osize, size_t nsize);
struct lasio_alloc *lasio_alloc_new_(void);
/* Unmaps every chunk: only after lua_close of the state using it. */
void lasio_alloc_free_(struct lasio_alloc *a);

/*
 * A new lua_State for the command, like luaL_newstate (panic handler,
 * warnings off until "@on") but on the size-class allocator; the
 * sanitizer build keeps malloc behind it. *a receives the allocator to
 * free after lua_close. NULL when out of memory.
 */
lua_State *lasio_cli_newstate_(struct lasio_alloc **a);

/* ====== } */

/* {====== The binary-chunk policy (chunkmode.c): binary chunks are refused
 * everywhere unless --allow-bytecode is given ====== */

/*
 * Loads the file fname (stdin when NULL) like luaL_loadfilex. Unless
 * allow_binary, only text chunks load, and a refused binary chunk gives a
 * message that names the file and the option that allows it.
 * Returns a lua_load status (LUA_ERRFILE when the file cannot be read).
 * Stack: [-0, +1, m]
 */
int lasio_cli_loadfile_(lua_State *L, const char *fname, int allow_binary);

/*
 * Loads the buffer s like luaL_loadbufferx, under the same policy.
 * Stack: [-0, +1, m]
 */
int lasio_cli_loadbuffer_(lua_State *L, const char *s, size_t len,
                          const char *name, int allow_binary);

/*
 * Replaces the global load, loadfile and dofile and the Lua searcher of
 * require (package.searchers[2]) by versions that refuse binary chunks.
 * Call after luaL_openlibs, only when binary chunks are not allowed.
 * Stack: [-0, +0, e]
 */
void lasio_cli_refuse_binary_(lua_State *L);

/* ====== } */

/* {====== The read-eval-print loop (repl.c): it runs in the main task and reads
 * stdin through the event loop, never blocking it ====== */

/*
 * Pushes a function that runs the REPL until the end of input when called
 * (with no arguments) from a task of the running loop; lasio must be open
 * in L. Each line runs as a task of its own, so the loop keeps running
 * between prompts and SIGINT cancels the line being run.
 * Stack: [-0, +1, m]
 */
void lasio_cli_push_repl_(lua_State *L);

/* ====== } */

/* The options for untrusted scripts (clilimits.c). */
struct lasio_cli_limits {
    size_t memory;
    long forced_yield;
    long long instructions, max_output;
    int max_sockets;
    double cpu;
    int max_tasks, max_timers;
    int sandbox; /* 0 none, 1 without lasio's I/O, 2 with it */
    int any;     /* a limit besides the sandbox was given */
};
/* Reads one such option into lim: 1 taken, 0 not one of them, -1 a bad
 * value. */
int lasio_cli_limit_option_(struct lasio_cli_limits *lim, const char *arg);
/* Applies the limits to L's loop: NULL, or why not. */
const char *lasio_cli_apply_limits_(lua_State *L,
                                    const struct lasio_cli_limits *lim);
/* With --sandbox: gives the loaded main chunk on top a sandbox as _ENV. */
void lasio_cli_sandbox_(lua_State *L, const struct lasio_cli_limits *lim);

/*
 * Option values (cliopts.c), for the option groups that parse their own.
 * lasio_cli_is_opt_: is arg the option name, alone or with "=value"
 * (*value set to it, or NULL)? lasio_cli_required_: a required value,
 * after '=' or the next argument (advancing *i), or NULL.
 * lasio_cli_parse_int_: an integer in [lo, hi] into *out (1), or the
 * message and -1. lasio_cli_bad_value_ prints "lasio: OPT: WANT, got
 * 'VALUE'" and returns -1.
 */
int lasio_cli_bad_value_(const char *opt, const char *value, const char *want);
int lasio_cli_is_opt_(const char *arg, const char *name, const char **value);
const char *lasio_cli_required_(char **argv, int *i, const char *value);
int lasio_cli_parse_int_(const char *opt, const char *v, long long lo,
                         long long hi, long long *out);

#endif
