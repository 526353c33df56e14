/*
 * cli.h: what the lasio command (main.c, repl.c) needs from the runtime
 * beyond the public lasio.h. Internal: not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_cli_h
#define lasio_cli_h

#include <lua.h>

/* Exit statuses of the lasio command (API.md section 1). */
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

#endif
