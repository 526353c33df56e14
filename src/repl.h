/*
 * repl.h: the lasio command's read-eval-print loop (repl.c), which runs in
 * the main task and reads stdin through the event loop, never blocking it.
 * Internal to the command: not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_repl_h
#define lasio_repl_h

#include <lua.h>

/*
 * Pushes a function that runs the REPL until the end of input when called
 * (with no arguments) from a task of the running loop; lasio must be open
 * in L. Each line runs as a task of its own, so the loop keeps running
 * between prompts and SIGINT cancels the line being run.
 * Stack: [-0, +1, m]
 */
void lasio_cli_push_repl_(lua_State *L);

#endif
