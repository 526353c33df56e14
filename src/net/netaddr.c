/*
 * netaddr.c: what every network file shares: socket addresses as Lua
 * tables ({family=, addr=, port=}, docs/API.md, Network I/O), new
 * non-blocking sockets, and option tables.
 * Owns nothing: every function works on what its caller passes.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net.h"

/* {====== Addresses ====== */

void
lasio_pushaddr_(lua_State *L, const struct sockaddr *sa, socklen_t len) {
    char buf[INET6_ADDRSTRLEN];
    lua_createtable(L, 0, 3);
    switch (sa->sa_family) {
    case AF_INET:
    case AF_INET6: {
        int six = sa->sa_family == AF_INET6;
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(sa->sa_family,
                  six ? (const void *)&in6->sin6_addr
                      : (const void *)&in->sin_addr,
                  buf, sizeof buf);
        lua_pushstring(L, six ? "inet6" : "inet");
        lua_setfield(L, -2, "family");
        lua_pushstring(L, buf);
        lua_setfield(L, -2, "addr");
        lua_pushinteger(L, ntohs(six ? in6->sin6_port : in->sin_port));
        lua_setfield(L, -2, "port");
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? (size_t)len - off : 0;
        /* a pathname ends at its NUL; an abstract name (leading NUL)
         * spans the whole length */
        if (n > 0 && un->sun_path[0] != '\0')
            n = strnlen(un->sun_path, n);
        lua_pushliteral(L, "unix");
        lua_setfield(L, -2, "family");
        lua_pushlstring(L, un->sun_path, n);
        lua_setfield(L, -2, "addr");
        break;
    }
    default:
        lua_pushinteger(L, sa->sa_family);
        lua_setfield(L, -2, "family");
        break;
    }
}

int
lasio_parseaddr_(const char *host, int port, int family,
                 union lasio_sockaddr *sa, socklen_t *len) {
    memset(sa, 0, sizeof *sa);
    if (family != AF_INET6) {
        struct sockaddr_in *in = (struct sockaddr_in *)&sa->ss;
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            in->sin_port = htons((unsigned short)port);
            *len = sizeof *in;
            return 0;
        }
    }
    if (family != AF_INET) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa->ss;
        const char *h = host;
        char buf[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(host);
        /* "[::1]" as in URLs */
        if (n > 2 && host[0] == '[' && host[n - 1] == ']' &&
            n - 2 < sizeof buf) {
            memcpy(buf, host + 1, n - 2);
            buf[n - 2] = '\0';
            h = buf;
        }
        if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((unsigned short)port);
            *len = sizeof *in6;
            return 0;
        }
    }
    return -1;
}

socklen_t
lasio_unixaddr_(lua_State *L, const char *path, size_t len,
                union lasio_sockaddr *sa, const char *what) {
    struct sockaddr_un *un = (struct sockaddr_un *)&sa->ss;
    memset(sa, 0, sizeof *sa);
    un->sun_family = AF_UNIX;
    if (len == 0)
        luaL_error(L, "%s: empty socket path", what);
    /* a leading NUL names an abstract socket (Linux) */
    if (path[0] != '\0' && strlen(path) != len)
        luaL_error(L, "%s: socket path contains a NUL byte", what);
    if (len >= sizeof un->sun_path)
        luaL_error(L, "%s: socket path too long (%d bytes, at most %d)", what,
                   (int)len, (int)sizeof un->sun_path - 1);
    memcpy(un->sun_path, path, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                       (path[0] != '\0'));
}

int
lasio_checkport_(lua_State *L, int idx, const char *what) {
    lua_Integer port;
    int isnum = 0;
    if (lua_type(L, idx) == LUA_TSTRING) {
        port = lua_tointegerx(L, idx, &isnum);
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
        port = lua_tointegerx(L, idx, &isnum);
        if (!isnum)
            luaL_error(L, "%s: port must be an integer, got %s", what,
                       lua_tostring(L, idx));
    } else {
        return luaL_error(L, "%s: port must be an integer, got %s", what,
                          luaL_typename(L, idx));
    }
    if (!isnum || port < 0 || port > 65535)
        luaL_error(L, "%s: port must be in 0..65535, got %s", what,
                   luaL_tolstring(L, idx, NULL));
    return (int)port;
}

int
lasio_checkpair_(lua_State *L, int idx, const char *what,
                 union lasio_sockaddr *sa, socklen_t *len) {
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        return luaL_error(L, "%s: address must be a {host, port} table, got %s",
                          what, luaL_typename(L, idx));
    if (lua_rawgeti(L, idx, 1) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, idx, "host");
    }
    if (lua_rawgeti(L, idx, 2) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, idx, "port");
    }
    if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_error(L, "%s: address host must be a string, got %s", what,
                          luaL_typename(L, -2));
    int port = lasio_checkport_(L, -1, what);
    lua_pop(L, 1);
    const char *host = lua_tostring(L, -1);
    if (lasio_parseaddr_(host, port, AF_UNSPEC, sa, len) == 0) {
        lua_pop(L, 1);
        return 0;
    }
    return -1;
}

int
lasio_socket_(int family, int type) {
    return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

void
lasio_pushsockname_(lua_State *L, int fd, int peer) {
    union lasio_sockaddr sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    int r =
        peer ? getpeername(fd, &sa.sa, &len) : getsockname(fd, &sa.sa, &len);
    if (fd < 0 || r != 0) {
        lua_pushnil(L);
        return;
    }
    lasio_pushaddr_(L, &sa.sa, len);
}

/* How error messages write an address: "127.0.0.1:80", "[::1]:80", a Unix
 * path, or "@name" for an abstract socket. [-0, +1, m] */
void
lasio_pushaddrstr_(lua_State *L, const struct sockaddr *sa, socklen_t len) {
    lasio_pushaddr_(L, sa, len);
    lua_getfield(L, -1, "addr");
    lua_getfield(L, -2, "port");
    const char *addr = lua_tostring(L, -2);
    if (sa->sa_family == AF_INET6)
        lua_pushfstring(L, "[%s]:%s", addr, lua_tostring(L, -1));
    else if (sa->sa_family == AF_INET)
        lua_pushfstring(L, "%s:%s", addr, lua_tostring(L, -1));
    else if (addr && addr[0] == '\0')
        lua_pushfstring(L, "@%s", addr + 1);
    else
        lua_pushstring(L, addr ? addr : "?");
    lua_replace(L, -4);
    lua_pop(L, 2);
}

int
lasio_raise_addrerror_(lua_State *L, const char *op, int err, const char *doing,
                       const struct sockaddr *sa, socklen_t len) {
    lasio_pushaddrstr_(L, sa, len);
    const char *msg = lua_pushfstring(L, "%s (while %s %s)", strerror(err),
                                      doing, lua_tostring(L, -1));
    lasio_oserror_pushmsg_(L, op, err, msg);
    return lua_error(L);
}

/* ====== } */
