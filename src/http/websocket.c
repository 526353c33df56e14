/*
 * websocket.c: the parts of the WebSocket module (lua/lasio/websocket.lua)
 * that are worth doing in C: masking (an XOR over every payload byte),
 * building a whole frame in one string (so that one writer:write sends it
 * and frames of concurrent senders never interleave), fresh random masking
 * keys, and the handshake's keys (RFC 6455 4.1, 4.2.2, 5.2, 5.3).
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "http/http.h"

/* Masking keys come from getrandom(2) in batches: one system call per 64
 * frames instead of one per frame. Thread-local: worker threads have Lua
 * states of their own that may load the module. */
static _Thread_local unsigned char key_pool[256];
static _Thread_local size_t key_pool_left;

static void
random_bytes(lua_State *L, unsigned char *out, size_t n) {
    while (n > 0) {
        ssize_t got = getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            lasio_oserror_raise_(L, "getrandom", errno);
        }
        out += got;
        n -= (size_t)got;
    }
}

static void
next_mask_key(lua_State *L, unsigned char key[4]) {
    if (key_pool_left < 4) {
        random_bytes(L, key_pool, sizeof key_pool);
        key_pool_left = sizeof key_pool;
    }
    key_pool_left -= 4;
    memcpy(key, key_pool + key_pool_left, 4);
    /* a used key is not left in memory for whoever reads it later */
    memset(key_pool + key_pool_left, 0, 4);
}

/* dst[i] = src[i] ^ key[i % 4], eight bytes at a time. */
static void
xor_mask(unsigned char *dst, const unsigned char *src, size_t n,
         const unsigned char key[4]) {
    unsigned char k8[8];
    memcpy(k8, key, 4);
    memcpy(k8 + 4, key, 4);
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* websocket.mask(data, key): data XOR the 4-byte key repeated (masking
 * and unmasking are the same operation). */
static int
ws_mask(lua_State *L) {
    size_t n, klen;
    const char *data = luaL_checklstring(L, 1, &n);
    const char *key = luaL_checklstring(L, 2, &klen);
    if (klen != 4)
        return luaL_argerror(L, 2, "the masking key must be 4 bytes");
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n);
    xor_mask(out, (const unsigned char *)data, n, (const unsigned char *)key);
    luaL_pushresultsize(&b, n);
    return 1;
}

/* websocket.frame(first_byte, payload, masked): the whole frame (RFC 6455
 * 5.2): the first byte (FIN, RSV and opcode) as given, the shortest
 * length encoding, and with `masked` a fresh random key and the masked
 * payload. */
static int
ws_frame(lua_State *L) {
    lua_Integer first = luaL_checkinteger(L, 1);
    size_t n;
    const char *payload = luaL_checklstring(L, 2, &n);
    int masked = lua_toboolean(L, 3);
    luaL_argcheck(L, first >= 0 && first <= 255, 1, "not a byte");
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)first;
    unsigned char mbit = masked ? 0x80 : 0;
    if (n < 126) {
        head[h++] = mbit | (unsigned char)n;
    } else if (n <= 0xffff) {
        head[h++] = mbit | 126;
        head[h++] = (unsigned char)(n >> 8);
        head[h++] = (unsigned char)n;
    } else {
        head[h++] = mbit | 127;
        uint64_t len = n;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)(len >> (8 * i));
    }
    unsigned char key[4];
    if (masked) {
        next_mask_key(L, key);
        memcpy(head + h, key, 4);
        h += 4;
    }
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, h + n);
    memcpy(out, head, h);
    if (masked)
        xor_mask(out + h, (const unsigned char *)payload, n, key);
    else if (n > 0)
        memcpy(out + h, payload, n);
    luaL_pushresultsize(&b, h + n);
    return 1;
}

/* websocket.random(n): n bytes from getrandom(2). */
static int
ws_random(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "must be 0 to 4096");
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
    random_bytes(L, out, (size_t)n);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* websocket.accept_key(key): base64(SHA-1(key .. GUID)), the value of
 * Sec-WebSocket-Accept for the Sec-WebSocket-Key `key`. */
static int
ws_accept_key(lua_State *L) {
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, key, n);
    luaL_addlstring(&b, WS_GUID, sizeof WS_GUID - 1);
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    char out[LASIO_WS_B64_OUT];
    if (lasio_ws_base64_(s, len, 1, out) < 0)
        return luaL_error(L, "websocket.accept_key: SHA-1 failed in OpenSSL");
    lua_pushstring(L, out);
    return 1;
}

/* websocket.new_client_key(): base64 of 16 random bytes, a fresh
 * Sec-WebSocket-Key. */
static int
ws_new_client_key(lua_State *L) {
    unsigned char raw[16];
    random_bytes(L, raw, sizeof raw);
    char out[LASIO_WS_B64_OUT];
    if (lasio_ws_base64_(raw, sizeof raw, 0, out) < 0)
        return luaL_error(L, "websocket.new_client_key: base64 failed");
    lua_pushstring(L, out);
    return 1;
}

static const luaL_Reg ws_funcs[] = {{"mask", ws_mask},
                                    {"frame", ws_frame},
                                    {"random", ws_random},
                                    {"accept_key", ws_accept_key},
                                    {"new_client_key", ws_new_client_key},
                                    {NULL, NULL}};

void
lasio_websocket_open_(lua_State *L) {
    lua_newtable(L);
    luaL_setfuncs(L, ws_funcs, 0);
    lua_setfield(L, -2, "websocket");
}
