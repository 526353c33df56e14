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

#endif
