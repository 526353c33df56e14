/*
 * sighub.c: the process-wide signal hub, the one C global of lasio
 * (ARCHITECTURE rule 1). Signals are process-wide and libevent 2.1 gives a
 * signal to one event_base only, so the hub installs one sigaction handler
 * per signal and forwards to every loop watching it: it sets the loop's
 * pending bit, writes a byte to the loop's wake pipe and, for loops in
 * interrupt mode, sets a Lua hook on the thread running Lua so that a
 * CPU-bound task is interrupted too (lua.c's laction pattern).
 * Registration is mutex-guarded; the handler only reads the slot arrays.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <event2/event.h>

#include "core.h"

#define HUB_SIGNALS 32 /* standard signals only: bit masks fit an int */
#define HUB_LOOPS 16   /* loops watching one signal */

static struct {
    pthread_mutex_t lock;
    struct lasio_loop *volatile loops[HUB_SIGNALS][HUB_LOOPS];
    int nwatchers[HUB_SIGNALS];
    struct sigaction previous[HUB_SIGNALS];
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Runs in the interrupted thread between two Lua instructions. */
static void
interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    struct lasio_loop *loop = lasio_running_loop_(L);
    if (loop)
        lasio_signals_dispatch_(L, loop, 1);
}

static void
hub_handler(int sig) {
    int saved = errno;
    for (int i = 0; i < HUB_LOOPS; i++) {
        struct lasio_loop *loop = hub.loops[sig][i];
        if (!loop)
            continue;
        if (loop->interrupt_mode && sig == SIGINT &&
            (loop->pending_signals & (1 << SIGINT) ||
             loop->exit_signal == SIGINT))
            _exit(128 + SIGINT); /* a second Ctrl-C: end at once */
        __atomic_or_fetch(&loop->pending_signals, 1 << sig, __ATOMIC_SEQ_CST);
        if (loop->wake_fd[1] >= 0) {
            ssize_t r = write(loop->wake_fd[1], "", 1);
            (void)r; /* a full pipe already means "wake up" */
        }
        lua_State *running = loop->running_L;
        if (loop->interrupt_mode && running)
            lua_sethook(running, interrupt_hook,
                        LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

static int
dispatch_body(lua_State *L) {
    lasio_signals_dispatch_(L, lua_touserdata(L, 1), 0);
    return 0;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg) {
    struct lasio_loop *loop = arg;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    lasio_guarded_(loop, dispatch_body);
}

/* Creates the loop's wake pipe and its read event. */
static int
open_wake(struct lasio_loop *loop) {
    if (loop->wake_ev)
        return 0;
    if (pipe2(loop->wake_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    loop->wake_ev = event_new(loop->base, loop->wake_fd[0],
                              EV_READ | EV_PERSIST, wake_cb, loop);
    if (!loop->wake_ev || event_add(loop->wake_ev, NULL) < 0) {
        close(loop->wake_fd[0]);
        close(loop->wake_fd[1]);
        loop->wake_fd[0] = loop->wake_fd[1] = -1;
        if (loop->wake_ev)
            event_free(loop->wake_ev);
        loop->wake_ev = NULL;
        return -1;
    }
    return 0;
}

int
lasio_sighub_add_(struct lasio_loop *loop, int sig) {
    int rc = -1;
    if (sig <= 0 || sig >= HUB_SIGNALS || open_wake(loop) < 0)
        return -1;
    pthread_mutex_lock(&hub.lock);
    for (int i = 0; i < HUB_LOOPS; i++) {
        if (hub.loops[sig][i] == loop) {
            rc = 0;
            break;
        }
    }
    for (int i = 0; rc < 0 && i < HUB_LOOPS; i++) {
        if (hub.loops[sig][i])
            continue;
        if (hub.nwatchers[sig] == 0) {
            struct sigaction sa;
            sa.sa_handler = hub_handler;
            sigfillset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            if (sigaction(sig, &sa, &hub.previous[sig]) < 0)
                break;
        }
        hub.loops[sig][i] = loop;
        hub.nwatchers[sig]++;
        rc = 0;
    }
    pthread_mutex_unlock(&hub.lock);
    return rc;
}

void
lasio_sighub_remove_(struct lasio_loop *loop, int sig) {
    if (sig <= 0 || sig >= HUB_SIGNALS)
        return;
    pthread_mutex_lock(&hub.lock);
    for (int i = 0; i < HUB_LOOPS; i++) {
        if (hub.loops[sig][i] != loop)
            continue;
        hub.loops[sig][i] = NULL;
        if (--hub.nwatchers[sig] == 0)
            sigaction(sig, &hub.previous[sig], NULL);
    }
    pthread_mutex_unlock(&hub.lock);
}

void
lasio_sighub_remove_all_(struct lasio_loop *loop) {
    for (int sig = 1; sig < HUB_SIGNALS; sig++)
        lasio_sighub_remove_(loop, sig);
}

void
lasio_sighub_set_running_(struct lasio_loop *loop, lua_State *L) {
    loop->running_L = L;
}
