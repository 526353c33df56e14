/*
 * alloc.h: the size-class allocator the lasio command gives Lua (alloc.c),
 * and the creation of the command's lua_State (clistate.c).
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_alloc_h
#define lasio_alloc_h

#include <stddef.h>

#include <lua.h>

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

#endif
