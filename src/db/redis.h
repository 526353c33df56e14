/*
 * redis.h: the Redis client of the db layer (the connection of
 * redis.c, on hiredis loaded on first use by hiredis_dl.c). Internal; the
 * protocol-level logic (URLs, AUTH, reconnects, the pool, pub/sub) is in
 * the Lua facade (lua/lasio/redis.lua).
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_db_redis_h
#define lasio_db_redis_h

#include "core/core.h"

/* Sets redis_connect, redis_errors and redis_null in the table on the top
 * of the stack (core.internal: module.c). Nothing is loaded or made until
 * the first call. [-0, +0, m] */
LASIO_HIDDEN void lasio_redis_open_(lua_State *L);

#endif
