/*
 * process.c: lasio.create_subprocess_exec / create_subprocess_shell and
 * the Process object (docs/API.md, Subprocesses). A Process owns its child's
 * pidfd and one read event on it (INTERNALS.md, rule 12: no SIGCHLD handler;
 * while a loop has children, an ignored SIGCHLD is set to its default so
 * the kernel does not reap them before we read their status);
 * its stdio pipes are streams on the plain-fd transport (stream.c), seen
 * as a StreamWriter (stdin) and StreamReaders (stdout, stderr).
 * Invariants: while the child runs, the Process is anchored in the loop
 * (LOOP_UV_ANCHORS) and counted in loop->nsources, so it is reaped even when
 * nobody waits for it or references it; a child still running when the loop
 * closes (or at lua_close) is killed and reaped; pidfd >= 0 exactly until
 * the child is reaped.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>
#include <event2/event.h>

#include "stream/stream.h"
#include "sys/sys.h"

#define LASIO_PROCESS_MT "lasio.Process"

/* The stdio constants, asyncio's values. */
#define STDIO_PIPE (-1)
#define STDIO_STDOUT (-2)
#define STDIO_DEVNULL (-3)

struct lasio_process {
    struct lasio_iolink link;
    struct lasio_loop *loop; /* kept alive by PROC_UV_LOOP */
    struct event *ev;        /* EV_READ on pidfd */
    pid_t pid;
    int pidfd;
    int returncode;
    int anchor; /* anchor ref while the child runs */
    unsigned char linked, new_session, counted;
};

enum {
    PROC_UV_LOOP = 1,
    PROC_UV_WAITERS, /* sequence of Futures of wait() calls, or nil */
    PROC_UV_STDIN,
    PROC_UV_STDOUT,
    PROC_UV_STDERR,
    PROC_NUV = PROC_UV_STDERR
};

static struct lasio_process *
checkprocess(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, LASIO_PROCESS_MT);
}

/* {====== Lifetime ====== */

/* Kills (when still running) and reaps the child, frees the event;
 * runs no Lua code (loop close, lua_close). */
static void
release(struct lasio_process *p) {
    lasio_io_unlink_(p->loop, &p->link, &p->linked);
    if (p->ev) {
        event_free(p->ev);
        p->ev = NULL;
    }
    if (p->pidfd >= 0) {
        if (p->new_session)
            kill(-p->pid, SIGKILL);
        pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0);
        p->returncode = lasio_spawn_reap_(p->pidfd, 1);
        close(p->pidfd);
        p->pidfd = -1;
    }
}

static void
link_release(struct lasio_iolink *link) {
    struct lasio_process *p = (struct lasio_process *)link;
    p->linked = 0;
    release(p);
}

static int
process_gc(lua_State *L) {
    release(lua_touserdata(L, 1));
    return 0;
}

/* Protected part of the exit event: wake every waiter, unanchor. */
static int
exited_body(lua_State *L) {
    struct lasio_process *p = lua_touserdata(L, 1);
    if (p->anchor == LUA_NOREF)
        return 0;
    lasio_pushloop_(L, p->loop);
    if (lua_isnil(L, -1))
        return 0;
    lua_getiuservalue(L, -1, LOOP_UV_ANCHORS);
    lua_rawgeti(L, -1, p->anchor);
    int self = lua_gettop(L);
    if (lua_touserdata(L, self) != p)
        return 0;
    if (lua_getiuservalue(L, self, PROC_UV_WAITERS) == LUA_TTABLE) {
        int list = lua_gettop(L);
        lua_pushnil(L);
        lua_setiuservalue(L, self, PROC_UV_WAITERS);
        lua_Integer n = luaL_len(L, list);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, list, i);
            struct lasio_future *f = lasio_tofuture_(L, -1);
            if (f && f->state == FUT_PENDING) {
                lua_pushinteger(L, p->returncode);
                lasio_future_finish_(L, -2, f, 1);
            }
            lua_pop(L, 1);
        }
    }
    lasio_sys_unanchor_(L, p->loop, &p->anchor);
    return 0;
}

static void
exit_event(evutil_socket_t fd, short what, void *arg) {
    struct lasio_process *p = arg;
    (void)fd, (void)what;
    if (p->pidfd < 0)
        return;
    int rc = lasio_spawn_reap_(p->pidfd, 0);
    if (rc == INT_MIN) { /* not yet: watch on */
        event_add(p->ev, NULL);
        return;
    }
    p->returncode = rc;
    close(p->pidfd);
    p->pidfd = -1;
    if (p->counted) {
        p->counted = 0;
        lasio_sys_uncount_(p->loop);
    }
    lasio_io_guard_(p->loop, exited_body, p);
}

/* ====== } */

/* {====== Spawning ====== */

/* Everything gathered before the child starts. */
struct spawn_args {
    int spec[3];  /* STDIO_* or an fd >= 0, or INT_MIN: inherit */
    size_t limit; /* reader limit */
    struct lasio_spawn s;
};

/* Reads the stdin/stdout/stderr option of slot i at the top. */
static int
read_stdio(lua_State *L, int i, const char *name) {
    static const char *const names[] = {"stdin", "stdout", "stderr"};
    (void)name;
    if (lua_isnil(L, -1))
        return INT_MIN;
    luaL_Stream *f = luaL_testudata(L, -1, LUA_FILEHANDLE);
    if (f) {
        if (!f->closef || !f->f)
            luaL_error(L, "%s: attempt to use a closed file", names[i]);
        return fileno(f->f);
    }
    if (!lua_isinteger(L, -1))
        luaL_error(L,
                   "%s must be lasio.PIPE, lasio.DEVNULL, lasio.STDOUT, a "
                   "file descriptor or a file, got %s",
                   names[i], luaL_typename(L, -1));
    lua_Integer v = lua_tointeger(L, -1);
    if (v == STDIO_STDOUT && i != 2)
        luaL_error(L, "%s: lasio.STDOUT is only for stderr", names[i]);
    if (v < STDIO_DEVNULL || v > INT_MAX)
        luaL_error(L, "%s: bad file descriptor %d", names[i], (int)v);
    return (int)v;
}

/* Pushes a userdata array of n + 1 pointers (the last NULL). */
static const char **
newarray(lua_State *L, size_t n) {
    const char **a = lua_newuserdatauv(L, (n + 1) * sizeof *a, 0);
    memset(a, 0, (n + 1) * sizeof *a);
    return a;
}

/* Reads opts (at idx) into a; pushes what must stay alive: the env array
 * and the strings it points to (in a table). [-0, +2, e] */
static void
read_opts(lua_State *L, int idx, struct spawn_args *a, const char *what) {
    static const char *const known[] = {"stdin", "stdout", "stderr",
                                        "cwd",   "env",    "start_new_session",
                                        "limit", NULL};
    a->spec[0] = a->spec[1] = a->spec[2] = INT_MIN;
    a->limit = LASIO_STREAM_LIMIT;
    a->s.cwd = NULL;
    a->s.envp = NULL;
    a->s.new_session = 0;
    lua_newtable(L); /* keeps strings alive */
    int keep = lua_gettop(L);
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            if (lua_type(L, -2) == LUA_TSTRING &&
                strcmp(lua_tostring(L, -2), known[i]) == 0)
                ok = 1;
        if (!ok)
            luaL_error(L, "%s: unknown option '%s'", what,
                       luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    static const char *const stdio[] = {"stdin", "stdout", "stderr"};
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, idx, stdio[i]);
        a->spec[i] = read_stdio(L, i, stdio[i]);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, idx, "cwd") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: cwd must be a string", what);
        a->s.cwd = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "start_new_session");
    a->s.new_session = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "limit") != LUA_TNIL) {
        lua_Integer v = lua_tointeger(L, -1);
        if (!lua_isinteger(L, -1) || v < 1)
            luaL_error(L, "%s: limit must be an integer >= 1", what);
        a->limit = (size_t)v;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "env") == LUA_TNIL) {
        lua_pushnil(L); /* replaces the nil: no env array */
        lua_remove(L, -2);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: env must be a table of strings", what);
    int env = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, env)) {
        n++;
        lua_pop(L, 1);
    }
    const char **envp = newarray(L, n);
    lua_replace(L, env); /* the table stays reachable: still at idx */
    lua_getfield(L, idx, "env");
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
            luaL_error(L, "%s: env must map names to strings", what);
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        envp[k++] = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    a->s.envp = (char *const *)envp;
}

/* Pushes the programs to try for prog: prog itself when it has a slash,
 * else prog in each directory of PATH (the env option's, else ours). */
static void
search_path(lua_State *L, const char *prog, int opts) {
    if (strchr(prog, '/')) {
        const char **paths = newarray(L, 1);
        paths[0] = prog; /* prog stays on the stack */
        lua_newtable(L);
        return;
    }
    const char *path = NULL;
    if (lua_istable(L, opts) && lua_getfield(L, opts, "env") == LUA_TTABLE) {
        lua_getfield(L, -1, "PATH");
        path = lua_tostring(L, -1);
        lua_pop(L, 2); /* still referenced by the env table */
    } else if (lua_istable(L, opts)) {
        lua_pop(L, 1);
    }
    if (!path)
        path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/bin:/usr/bin";
    size_t n = 1;
    for (const char *c = path; *c; c++)
        n += *c == ':';
    const char **paths = newarray(L, n);
    lua_newtable(L);
    size_t k = 0;
    const char *start = path;
    for (;;) {
        const char *end = strchr(start, ':');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (len == 0)
            lua_pushliteral(L, ".");
        else
            lua_pushlstring(L, start, len);
        lua_pushliteral(L, "/");
        lua_pushstring(L, prog);
        lua_concat(L, 3);
        paths[k++] = lua_tostring(L, -1);
        lua_rawseti(L, -2, (lua_Integer)k);
        if (!end)
            break;
        start = end + 1;
    }
}

/* An fd >= 3 for the child (the original is closed when dup'd). */
static int
high_fd(int fd) {
    if (fd >= 3)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return h;
}

/* Opens what the child's stdio needs; no Lua. Returns -1 with *op set.
 * child[i]: fds to close after the spawn; parent[i]: our pipe ends. */
static int
open_stdio(struct spawn_args *a, int child[3], int parent[3], const char **op) {
    for (int i = 0; i < 3; i++) {
        int spec = a->spec[i], fds[2];
        a->s.fds[i] = LASIO_SPAWN_INHERIT;
        if (spec == INT_MIN)
            continue;
        if (spec == STDIO_STDOUT) {
            a->s.fds[i] = LASIO_SPAWN_STDOUT;
            continue;
        }
        if (spec == STDIO_PIPE) {
            *op = "pipe";
            if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
            int ours = i == 0 ? fds[1] : fds[0];
            int theirs = i == 0 ? fds[0] : fds[1];
            parent[i] = ours;
            child[i] = high_fd(theirs);
            if (child[i] < 0 ||
                fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) | O_NONBLOCK) < 0)
                return -1;
        } else if (spec == STDIO_DEVNULL) {
            *op = "open";
            int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (fd < 0 || (child[i] = high_fd(fd)) < 0)
                return -1;
        } else {
            *op = "dup";
            if ((child[i] = fcntl(spec, F_DUPFD_CLOEXEC, 3)) < 0)
                return -1;
        }
        a->s.fds[i] = child[i];
    }
    return 0;
}

static void
close_all(int fds[3]) {
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* The common part: stack 1 = prog (for messages), argv array on top-1 and
 * its strings on top; opts at `opts`. Pushes the Process. */
static int
spawn(lua_State *L, int opts, const char *what) {
    struct spawn_args a;
    int argv_idx = lua_gettop(L) - 1;
    read_opts(L, opts, &a, what);             /* +2 */
    search_path(L, lua_tostring(L, 1), opts); /* +2 */
    a.s.paths = lua_touserdata(L, -2);
    a.s.argv = (char *const *)lua_touserdata(L, argv_idx);
    struct lasio_loop *loop = lasio_get_loop_(L);
    if (loop->closed)
        return luaL_error(L, "%s: the loop is closed", what);
    /* the objects first, closed; then the resources */
    struct lasio_process *p =
        lua_newuserdatauv(L, sizeof(struct lasio_process), PROC_NUV);
    memset(p, 0, sizeof *p);
    p->pidfd = -1;
    p->anchor = LUA_NOREF;
    p->loop = loop;
    luaL_setmetatable(L, LASIO_PROCESS_MT);
    int pidx = lua_gettop(L);
    lua_pushvalue(L, pidx - 1);
    lua_setiuservalue(L, pidx, PROC_UV_LOOP);
    struct lasio_stream *pipes[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        if (a.spec[i] != STDIO_PIPE)
            continue;
        pipes[i] = lasio_stream_new_(L, loop);
        pipes[i]->limit = a.limit;
        lasio_stream_pushviews_(L, -1);
        lua_remove(L, i == 0 ? -2 : -1); /* stdin: the writer; else reader */
        lua_setiuservalue(L, pidx, PROC_UV_STDIN + i);
        lua_pop(L, 1); /* the stream: the view keeps it */
    }
    lasio_sys_anchor_(L, loop, pidx, &p->anchor);
    if (a.spec[0] == STDIO_PIPE)
        lasio_sighub_ignore_sigpipe_(loop);
    lasio_sighub_keep_children_(loop);
    int child[3] = {-1, -1, -1}, parent[3] = {-1, -1, -1};
    const char *op = "spawn";
    int rc = open_stdio(&a, child, parent, &op);
    int err = errno;
    if (rc == 0) {
        rc = lasio_spawn_(&a.s);
        err = a.s.err;
        op = a.s.op;
    }
    close_all(child);
    if (rc == 0) {
        p->pid = a.s.pid;
        p->pidfd = a.s.pidfd;
        p->new_session = (unsigned char)a.s.new_session;
        p->ev = event_new(loop->base, p->pidfd, EV_READ, exit_event, p);
        int failed = !p->ev || event_add(p->ev, NULL) < 0;
        for (int i = 0; i < 3; i++) {
            if (!pipes[i])
                continue;
            /* the stream owns the fd now, also when this fails */
            if (lasio_stream_attach_(pipes[i], parent[i], &lasio_fd_transport_,
                                     i == 0 ? LASIO_ATTACH_WRONLY : 0) < 0)
                failed = 1;
            parent[i] = -1;
        }
        if (failed) {
            release(p); /* kills and reaps the child */
            lasio_sys_unanchor_(L, loop, &p->anchor);
            return luaL_error(L, "%s: not enough memory", what);
        }
        lasio_iolink_add_(loop, &p->link);
        p->link.release = link_release;
        p->linked = 1;
        p->counted = 1;
        loop->nsources++;
        lua_settop(L, pidx);
        return 1;
    }
    close_all(parent);
    lasio_sys_unanchor_(L, loop, &p->anchor);
    if (op && strcmp(op, "exec") == 0)
        return lasio_sys_raise_(L, "exec", err, lua_tostring(L, 1));
    if (op && strcmp(op, "chdir") == 0)
        return lasio_sys_raise_(L, "chdir", err, a.s.cwd);
    return lasio_sys_raise_(L, op ? op : "spawn", err, NULL);
}

/* lasio.create_subprocess_exec(prog, args [, opts]) */
static int
module_create_subprocess_exec(lua_State *L) {
    lasio_vclock_refuse_(L, "lasio.create_subprocess_exec");
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_Integer n = lua_isnil(L, 2) ? 0 : luaL_len(L, 2);
    if (n < 0 || n > 1000000)
        return luaL_argerror(L, 2, "too many arguments");
    const char **argv = newarray(L, (size_t)n + 1);
    lua_createtable(L, (int)n, 0); /* keeps converted strings alive */
    argv[0] = lua_tostring(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L,
                              "create_subprocess_exec: argument %d is a %s, "
                              "not a string",
                              (int)i, luaL_typename(L, -1));
        argv[i] = lua_tostring(L, -1);
        lua_rawseti(L, -2, i);
    }
    return spawn(L, 3, "create_subprocess_exec");
}

/* lasio.create_subprocess_shell(cmd [, opts]): /bin/sh -c cmd */
static int
module_create_subprocess_shell(lua_State *L) {
    lasio_vclock_refuse_(L, "lasio.create_subprocess_shell");
    luaL_checkstring(L, 1);
    lua_settop(L, 2);
    lua_pushliteral(L, "/bin/sh");
    lua_insert(L, 1); /* "/bin/sh", cmd, opts */
    const char **argv = newarray(L, 3);
    lua_newtable(L);
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = lua_tostring(L, 2);
    return spawn(L, 3, "create_subprocess_shell");
}

/* ====== } */

/* {====== Methods ====== */

/* proc:_wait() -> returncode: proc:wait() without a timeout (the facade's
 * wait, lua/lasio/subprocess.lua, adds the timeout) */
static int
process_wait(lua_State *L) {
    struct lasio_process *p = checkprocess(L, 1);
    if (p->pidfd < 0) {
        lua_pushinteger(L, p->returncode);
        return 1;
    }
    lua_settop(L, 1);
    if (lua_getiuservalue(L, 1, PROC_UV_WAITERS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, PROC_UV_WAITERS);
    }
    /* forget the waiters that were cancelled or timed out */
    lua_Integer n = luaL_len(L, 2), kept = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        struct lasio_future *f = lasio_tofuture_(L, -1);
        if (f && f->state == FUT_PENDING)
            lua_rawseti(L, 2, ++kept);
        else
            lua_pop(L, 1);
    }
    for (lua_Integer i = kept + 1; i <= n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, 2, i);
    }
    lasio_future_push_(L, p->loop);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, kept + 1);
    return lasio_await_(L, lua_gettop(L), "wait");
}

/* A future resolved when the child exits (for the Lua side). */
static int
process_exit_future(lua_State *L) {
    struct lasio_process *p = checkprocess(L, 1);
    lua_settop(L, 1);
    if (lua_getiuservalue(L, 1, PROC_UV_WAITERS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, PROC_UV_WAITERS);
    }
    lasio_future_push_(L, p->loop);
    if (p->pidfd < 0) {
        lua_pushinteger(L, p->returncode);
        lasio_future_finish_(L, -2, lasio_tofuture_(L, -2), 1);
        return 1;
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, luaL_len(L, 2) + 1);
    return 1;
}

/* Sends sig to the child, or to its group (group != 0 and a new session);
 * raises OSError ESRCH once it has exited (and its group is empty). */
static int
signal_child(lua_State *L, struct lasio_process *p, int sig, int group,
             const char *what) {
    int r;
    if (group && p->new_session)
        r = kill(-p->pid, sig);
    else if (p->pidfd >= 0)
        r = pidfd_send_signal(p->pidfd, sig, NULL, 0);
    else {
        r = -1;
        errno = ESRCH;
    }
    if (r < 0)
        return lasio_sys_raise_(L, what, errno, NULL);
    return 0;
}

static int
process_send_signal(lua_State *L) {
    struct lasio_process *p = checkprocess(L, 1);
    int sig;
    if (lua_isinteger(L, 2)) {
        lua_Integer v = lua_tointeger(L, 2);
        sig = v < INT_MIN || v > INT_MAX ? -1 : (int)v;
    } else {
        sig = lasio_checksignal_(L, 2, "proc:send_signal");
    }
    return signal_child(L, p, sig, 0, "send_signal");
}

static int
process_terminate(lua_State *L) {
    return signal_child(L, checkprocess(L, 1), SIGTERM, 1, "terminate");
}

static int
process_kill(lua_State *L) {
    return signal_child(L, checkprocess(L, 1), SIGKILL, 1, "kill");
}

static int
process_index(lua_State *L) {
    struct lasio_process *p = checkprocess(L, 1);
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "pid") == 0)
        lua_pushinteger(L, p->pid);
    else if (key && strcmp(key, "returncode") == 0) {
        if (p->pidfd >= 0 || !p->pid)
            lua_pushnil(L);
        else
            lua_pushinteger(L, p->returncode);
    } else if (key && strcmp(key, "stdin") == 0)
        lua_getiuservalue(L, 1, PROC_UV_STDIN);
    else if (key && strcmp(key, "stdout") == 0)
        lua_getiuservalue(L, 1, PROC_UV_STDOUT);
    else if (key && strcmp(key, "stderr") == 0)
        lua_getiuservalue(L, 1, PROC_UV_STDERR);
    else { /* not raw: the facade's methods load on first use */
        lua_pushvalue(L, 2);
        lua_gettable(L, lua_upvalueindex(1));
    }
    return 1;
}

static int
process_tostring(lua_State *L) {
    struct lasio_process *p = checkprocess(L, 1);
    if (p->pidfd >= 0)
        lua_pushfstring(L, "lasio.Process<pid=%d running>", (int)p->pid);
    else
        lua_pushfstring(L, "lasio.Process<pid=%d returncode=%d>", (int)p->pid,
                        p->returncode);
    return 1;
}

static const luaL_Reg process_methods[] = {
    {"_wait", process_wait},
    {"send_signal", process_send_signal},
    {"terminate", process_terminate},
    {"kill", process_kill},
    {"_exit_future", process_exit_future},
    {NULL, NULL}};

static const luaL_Reg module_funcs[] = {
    {"create_subprocess_exec", module_create_subprocess_exec},
    {"create_subprocess_shell", module_create_subprocess_shell},
    {NULL, NULL}};

/* ====== } */

void
lasio_process_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_PROCESS_MT)) {
        luaL_newlib(L, process_methods);
        lua_pushcclosure(L, process_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, process_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, process_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    /* the method table, as core.internal.process_methods, for the facade
     * to extend: wait and communicate run helper tasks and are written in
     * Lua (lua/lasio/subprocess.lua) */
    lua_getfield(L, -1, "__index");
    lua_getupvalue(L, -1, 1);
    lua_getfield(L, -4, "internal");
    lua_insert(L, -2);
    lua_setfield(L, -2, "process_methods");
    lua_pop(L, 3);
    luaL_setfuncs(L, module_funcs, 0);
    lua_pushinteger(L, STDIO_PIPE);
    lua_setfield(L, -2, "PIPE");
    lua_pushinteger(L, STDIO_STDOUT);
    lua_setfield(L, -2, "STDOUT");
    lua_pushinteger(L, STDIO_DEVNULL);
    lua_setfield(L, -2, "DEVNULL");
}
