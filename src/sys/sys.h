/*
 * sys.h: cross-file functions of the operating-system layer (signals,
 * child processes, worker threads, files), built on core.h; a child's
 * pipes are streams (stream/stream.h).
 * Internal. Every object here that holds a libevent event registers a
 * closer with its loop, so loop close frees it before the event_base.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_sys_h
#define lasio_sys_h

#include "core/core.h"

/* {====== Signals (signal.c) ====== */
/* Adds loop:add_signal_handler / remove_signal_handler to the loop
 * methods. [-0, +0, m] (module table on top, unchanged) */
LASIO_HIDDEN void lasio_signal_open_(lua_State *L);
/* The lasio command's default handling of SIGINT and SIGTERM: the first
 * cancels the interrupt target (LOOP_UV_INTERRUPT, else the main task),
 * also inside running Lua code; a second SIGINT ends the process at once.
 * A script's own handler of either signal replaces the default. */
LASIO_HIDDEN void lasio_signal_default_(struct lasio_loop *loop);
/* The signal number named by the value at idx ("SIGTERM", "TERM" or a
 * number), or raises an argument error. */
LASIO_HIDDEN int lasio_checksignal_(lua_State *L, int idx, const char *fname);
/* ====== } */

/* {====== Helpers (sysutil.c) ====== */
/* Pushes an OSError for errno value err: message "op: detail: strerror"
 * (detail may be NULL), fields code ("ENOENT"), errno, op and filename
 * (the detail). [-0, +1, m] */
LASIO_HIDDEN void lasio_sys_oserror_(lua_State *L, const char *op, int err,
                                     const char *detail);
/* Raises lasio_sys_oserror_(...). */
LASIO_HIDDEN int lasio_sys_raise_(lua_State *L, const char *op, int err,
                                  const char *detail);
/* Protected calls from libevent callbacks: lasio_io_guard_ (core.h). */
/* Anchors the value at idx in the loop (LOOP_UV_ANCHORS; *anchor: the ref,
 * LUA_NOREF when not anchored); unanchor releases it exactly once. [-0, +0, m]
 */
LASIO_HIDDEN void lasio_sys_anchor_(lua_State *L, struct lasio_loop *loop,
                                    int idx, int *anchor);
LASIO_HIDDEN void lasio_sys_unanchor_(lua_State *L, struct lasio_loop *loop,
                                      int *anchor);
/* Waiting for an fd, deadlines and timeout arguments: iowait.c (core.h),
 * shared with the streams. */
/* Decrements loop->nsources unless the loop is closed. */
LASIO_HIDDEN void lasio_sys_uncount_(struct lasio_loop *loop);
/* ====== } */

/* {====== Processes (process.c) ====== */
LASIO_HIDDEN void lasio_process_open_(lua_State *L);
/* ====== } */

/* {====== Copying values between states (copyval.c) ====== */
/* A growable byte buffer; as a userdata box (wbuf_new) its __gc frees p. */
struct lasio_wbuf {
    char *p;
    size_t len, cap;
};
/* Pushes a new empty box. [-0, +1, m] */
LASIO_HIDDEN struct lasio_wbuf *lasio_wbuf_new_(lua_State *L);
/* Appends bytes; returns -1 when out of memory. */
LASIO_HIDDEN int lasio_wbuf_add_(struct lasio_wbuf *b, const void *data,
                                 size_t len);
/* Appends the n values from index first, or raises a clear error naming
 * `what` ("argument", "result") and the position. [-0, +0, e] */
LASIO_HIDDEN void lasio_copy_write_(lua_State *L, struct lasio_wbuf *b,
                                    int first, int n, const char *what);
/* lasio_copy_write_ for another function: messages read "<fname>: <what>
 * <number>", the values numbered from firstno; loop, when not NULL, may
 * cross (read back in a worker as its handle). [-0, +0, e] */
LASIO_HIDDEN void lasio_copy_write_as_(lua_State *L, struct lasio_wbuf *b,
                                       int first, int n, const char *fname,
                                       const char *what, int firstno,
                                       const struct lasio_loop *loop);
/* Pushes the worker's handle of its pool's loop (tothread.c); raises
 * outside a worker's state. [-0, +1, e] */
LASIO_HIDDEN void lasio_loopproxy_push_(lua_State *W);
/* Writes the pair (msg, nil) as lasio_copy_write_ would; -1 when out of
 * memory. No Lua. */
LASIO_HIDDEN int lasio_copy_message_(struct lasio_wbuf *b, const char *msg,
                                     size_t len);
/* Pushes the values written by lasio_copy_write_ and returns their count.
 * [-0, +n, e] */
LASIO_HIDDEN int lasio_copy_read_(lua_State *L, const char *data, size_t len);
/* ====== } */

/* {====== Worker threads (threadpool.c) ====== */
struct lasio_worker;
struct lasio_job;
struct lasio_jobtype {
    /* In a worker thread: does the blocking work. No Lua of the loop. */
    void (*run)(struct lasio_job *job, struct lasio_worker *w);
    /* On the loop, protected, when the Future is still pending: pushes
     * the results and returns their count, or pushes a traceback (or nil)
     * and an error and returns -1. anchor: index of the anchor table
     * {future, extras...}. */
    int (*deliver)(lua_State *L, struct lasio_job *job, int anchor);
    /* Frees the job (and what it owns). */
    void (*free)(struct lasio_job *job);
};
/* The head of every job (first member of the job's own struct). */
struct lasio_job {
    struct lasio_job *next;
    const struct lasio_jobtype *type;
    unsigned long seq;
    int anchor;            /* anchor ref of {future, extras...} */
    unsigned char counted; /* counted in loop->nsources */
};
/* Pushes a box for a job: its __gc frees a job still in it, so a job made
 * before a Lua error is not leaked. [-0, +1, m] */
LASIO_HIDDEN struct lasio_job **lasio_pool_box_(lua_State *L);
/* Hands the job in *box to loop's pool without waiting: pushes the Future
 * it completes. The nextra values on top are kept alive until the job is
 * over (deliver finds them in its anchor table) and stay on the stack.
 * Takes the job out of the box once the pool owns it. [-0, +1, e] */
LASIO_HIDDEN struct lasio_future *
lasio_pool_start_(lua_State *L, struct lasio_loop *loop, struct lasio_job **box,
                  int nextra, const char *what);
/* Runs the job in *box on the running loop's pool and awaits it: returns
 * what deliver pushed, or raises its error. The nextra values on top are
 * kept alive until the job is over (deliver finds them in its anchor table).
 * Takes the job out of the box once the pool owns it. */
LASIO_HIDDEN int lasio_pool_submit_(lua_State *L, struct lasio_job **box,
                                    int nextra, const char *what);
struct lasio_pool;
/* A call posted from a worker's Lua code (loop:call_soon_threadsafe): the
 * dumped function and its copied arguments, owned (malloc). */
struct lasio_posted {
    struct lasio_posted *next;
    char *code, *args;
    size_t code_len, args_len;
};
/* In a worker's state: its pool (NULL elsewhere). [-0, +0, -] */
LASIO_HIDDEN struct lasio_pool *lasio_worker_pool_(lua_State *W);
/* From a worker: queues p for the pool's loop, which then owns it; -1
 * (p still the caller's) once the pool is shutting down. No Lua. */
LASIO_HIDDEN int lasio_pool_post_(struct lasio_pool *pool,
                                  struct lasio_posted *p);
/* On the loop: schedules the posted call p with call_soon (tothread.c);
 * drops it once the loop is closed for the script. [-0, +0, e] */
LASIO_HIDDEN void lasio_posted_schedule_(lua_State *L, struct lasio_loop *loop,
                                         const struct lasio_posted *p);
LASIO_HIDDEN void lasio_posted_free_(struct lasio_posted *p);
/* In a worker: its own Lua state, created on first use and initialised
 * by init (protected); NULL when it cannot be made. */
LASIO_HIDDEN lua_State *lasio_worker_lua_(struct lasio_worker *w,
                                          int (*init)(lua_State *W));
LASIO_HIDDEN void lasio_thread_open_(lua_State *L);
/* Sets lasio.fs (fs.c) in the module table at the top. */
LASIO_HIDDEN void lasio_fs_open_(lua_State *L);
/* ====== } */

/* {====== Spawning a child (spawn.c) ====== */
#include <sys/types.h>
/* What the child gets; no Lua, no allocation in the child. */
struct lasio_spawn {
    const char *const *paths; /* NULL-terminated programs to try in turn */
    char *const *argv;
    char *const *envp; /* NULL: the parent's environment */
    const char *cwd;   /* NULL: the parent's */
    int fds[3];        /* for 0, 1, 2: an fd >= 3 to dup2 there, or
                          LASIO_SPAWN_INHERIT, or (2 only) LASIO_SPAWN_STDOUT */
    int new_session;
    /* results */
    pid_t pid;
    int pidfd;
    volatile int err;        /* errno of the step that failed */
    const char *volatile op; /* that step: "exec", "chdir", ... */
};
#define LASIO_SPAWN_INHERIT (-1)
#define LASIO_SPAWN_STDOUT (-2)
/* Starts the child: clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), default
 * signal dispositions and an empty mask, only fds 0-2 open. Returns 0 with
 * pid and pidfd set, or -1 with err and op set (a child that failed to
 * exec is reaped already). */
LASIO_HIDDEN int lasio_spawn_(struct lasio_spawn *s);
/* Reaps the exited child of pidfd; returns its asyncio-style returncode
 * (exit status, or -signal), or INT_MIN while it still runs. */
LASIO_HIDDEN int lasio_spawn_reap_(int pidfd, int block);
/* ====== } */

#endif
