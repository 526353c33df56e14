/*
 * inspectapi.c: lasio_inspect_listen, the embedding API's way to serve
 * `lasio ps PID` and its siblings (docs/EMBEDDING.md, "Live
 * introspection"), on the core's inspector (core/inspect.c).
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <string.h>

#include "embed/embed.h"

struct listenctx {
    struct lasio_apicall c;
    const char *name;
    int err;
};

static int
listen_body(lua_State *L) {
    struct listenctx *c = lua_touserdata(L, 1);
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (!loop || loop->closed)
        return lasio_api_refuse_(L, &c->c, LASIO_ECLOSED,
                                 "lasio_inspect_listen: lasio is not open in "
                                 "this state");
    if (c->name && (c->name[0] == '\0' || strlen(c->name) > 100))
        return lasio_api_refuse_(L, &c->c, LASIO_EINVAL,
                                 "lasio_inspect_listen: the name must have 1 "
                                 "to 100 bytes");
    if (lasio_inspect_start_(loop, c->name) < 0) {
        c->err = errno;
        return luaL_error(L, "lasio_inspect_listen: %s", strerror(errno));
    }
    return 0;
}

int
lasio_inspect_listen(lua_State *L, const char *name) {
    struct listenctx c = {{0}, name, 0};
    int status = lasio_api_call_(L, listen_body, &c.c, 0, 0);
    if (c.err)
        errno = c.err; /* after the call, which may have changed it */
    return status;
}
