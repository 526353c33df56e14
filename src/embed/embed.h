/*
 * embed.h: what the two files of the embedding API (embed.c, pin.c) share:
 * calling a body in protected mode, so that no function of lasio.h lets a
 * Lua error (out of memory, misuse) jump out of a host's C frames.
 * Internal: not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_embed_h
#define lasio_embed_h

#include "core/core.h"

/* The first member of every body's context. */
struct lasio_apicall {
    int refused; /* a LASIO_E* code, set by lasio_api_refuse_ */
};

/* Calls body in protected mode with c (a light userdata) and the nargs
 * values on top as its arguments, keeping nresults results (LUA_MULTRET:
 * all). Returns LASIO_OK, the refusal code the body raised with
 * lasio_api_refuse_, or lua_pcall's status. On failure with nresults == 0
 * the error object is popped; else it is the one result (nil when there
 * was no stack room to make the call at all: LUA_ERRMEM).
 * [-nargs, +(nresults|1|0), -] */
LASIO_HIDDEN int lasio_api_call_(lua_State *L, lua_CFunction body,
                                 struct lasio_apicall *c, int nargs,
                                 int nresults);
/* In a body: refuses the call with code (raises msg). [-0, +0, v] */
LASIO_HIDDEN int lasio_api_refuse_(lua_State *L, struct lasio_apicall *c,
                                   int code, const char *msg);

/* Pushes a new sandbox environment (sandbox.c): allow_io gives the
 * whole lasio table, max_output caps print's bytes (0: no cap).
 * [-0, +1, m] */
LASIO_HIDDEN void lasio_sandbox_env_(lua_State *L, int allow_io,
                                     long long max_output);
/* Sets lasio.sandbox_env in the module table at the top. [-0, +0, m] */
LASIO_HIDDEN void lasio_sandbox_open_(lua_State *L);

#endif
