/*
 * lasio.h: the embedding API of lasio, an async runtime for Lua 5.4 on
 * libevent. The only installed header. Every function takes the lua_State
 * of the state lasio was opened in (any thread of it) and keeps no C
 * globals, so several states with their own loops can live in one process.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_h
#define lasio_h

#include <lua.h>

struct event_base;

#if defined(__GNUC__)
#define LASIO_API __attribute__((visibility("default")))
#else
#define LASIO_API
#endif

#define LASIO_VERSION "0.1.0"

/*
 * Opens lasio in L: preloads the C module "lasio.core" (package.preload)
 * and makes a loop on `base` the state's current loop; with base == NULL
 * the loop creates (and later frees) its own event_base. A host-owned base
 * is never freed by lasio. `require "lasio"` then works in L.
 * Returns 0, or -1 when the loop could not be created (no memory).
 * Stack: [-0, +0, m]
 */
LASIO_API int lasio_open(lua_State *L, struct event_base *base);

/*
 * Pushes a new pending Future on the state's current loop.
 * The Future is an ordinary Lua value: keep it reachable (for example with
 * luaL_ref) for as long as C code means to resolve it. While it is pending
 * it counts as something that can wake a task, so a task awaiting it is
 * never reported as deadlocked.
 * Stack: [-0, +1, m]
 */
LASIO_API void lasio_future_new(lua_State *L);

/*
 * Resolves the pending Future at index idx with the nvalues values on top
 * of the stack, which are popped. Runs no Lua code: the Future's callbacks
 * and waiting tasks are scheduled on its loop, so this may be called from a
 * libevent callback. Returns 0, or -1 (values still popped) when the
 * Future was already done or idx is not a Future.
 * Stack: [-nvalues, +0, m]
 */
LASIO_API int lasio_future_resolve(lua_State *L, int idx, int nvalues);

/*
 * Fails the pending Future at index idx with the error value on top of the
 * stack, which is popped. Same rules as lasio_future_resolve.
 * Stack: [-1, +0, m]
 */
LASIO_API int lasio_future_reject(lua_State *L, int idx);

/*
 * The event_base of the state's current loop (NULL before lasio_open or
 * require "lasio"). Borrowed: owned by the loop or by the host.
 * Stack: [-0, +0, -]
 */
LASIO_API struct event_base *lasio_get_base(lua_State *L);

#endif
