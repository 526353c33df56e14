/*
 * sighub.c: the process-wide signal hub, the one C global of lasio
 * (INTERNALS.md, rule 1). Signals are process-wide and libevent 2.1 gives a
 * signal to one event_base only, so the hub installs one sigaction handler
 * per signal and forwards to every loop watching it: it sets the loop's
 * pending bit, writes a byte to the loop's wake pipe and, for the command's
 * default SIGINT/SIGTERM handling, sets a Lua hook on the thread running
 * Lua so that a CPU-bound task is interrupted too (lua.c's laction
 * pattern). The hub also keeps SIGPIPE ignored while a loop needs it,
 * and SIGCHLD from auto-reaping (SIG_IGN) while a loop has children.
 * Registration is mutex-guarded; the handler only reads the slot arrays;
 * a signal's previous disposition is restored when its last watcher goes.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/core.h"

#define HUB_SIGNALS 32 /* standard signals only: bit masks fit an int */
#define HUB_LOOPS 16   /* loops watching one signal */

/* What a slot watches for its loop (flags, several at once). */
#define HUB_DEFAULT 1 /* the command's default SIGINT/SIGTERM handling */
#define HUB_USER 2    /* a handler of loop:add_signal_handler */
#define HUB_NOPIPE 4  /* SIGPIPE only: keep it from killing the process */
#define HUB_NOREAP 8  /* SIGCHLD only: no auto-reaping of our children */
#define HUB_HANDLED (HUB_DEFAULT | HUB_USER)

/* What the hub made of a signal's disposition. */
enum { SET_NONE, SET_HANDLER, SET_IGNORE, SET_DEFAULT };

static struct {
    pthread_mutex_t lock;
    struct lasio_loop *volatile loops[HUB_SIGNALS][HUB_LOOPS];
    volatile unsigned char flags[HUB_SIGNALS][HUB_LOOPS];
    unsigned char set[HUB_SIGNALS];         /* SET_*, what we installed */
    struct sigaction previous[HUB_SIGNALS]; /* valid while set != NONE */
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Runs in the interrupted thread between two Lua instructions. */
static void
interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    struct lasio_loop *loop = lasio_running_loop_(L);
    lasio_budget_rearm_(L, loop); /* the budget hook, or none */
    if (loop && loop->on_signals)
        loop->on_signals(L, loop, 1);
}

static void
hub_handler(int sig) {
    int saved = errno;
    for (int i = 0; i < HUB_LOOPS; i++) {
        struct lasio_loop *loop = hub.loops[sig][i];
        int flags = hub.flags[sig][i];
        if (!loop || !(flags & HUB_HANDLED))
            continue;
        /* a script that handles the signal itself replaces the default */
        int by_default = loop->interrupt_mode && !(flags & HUB_USER);
        if (by_default && sig == SIGINT &&
            (loop->pending_signals & (1 << SIGINT) ||
             loop->exit_signal == SIGINT))
            _exit(128 + SIGINT); /* a second Ctrl-C: end at once */
        __atomic_or_fetch(&loop->pending_signals, 1 << sig, __ATOMIC_SEQ_CST);
        if (loop->wake_fd[1] >= 0) {
            ssize_t r = write(loop->wake_fd[1], "", 1);
            (void)r; /* a full pipe already means "wake up" */
        }
        lua_State *running = loop->running_L;
        if (by_default && running)
            lua_sethook(running, interrupt_hook,
                        LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

static int
dispatch_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    if (loop->on_signals)
        loop->on_signals(L, loop, 0);
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
    if (loop->on_posted) /* calls queued from other threads */
        loop->on_posted(loop);
}

/* Creates the loop's wake pipe and its read event. */
int
lasio_wake_open_(struct lasio_loop *loop) {
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

/* Makes sig's disposition match its slots: our handler while a slot
 * handles it; for SIGPIPE wanted ignored, SIG_IGN if it was at its
 * default; else what it was before the hub. Called with the lock held.
 * Returns -1 (nothing changed) when sigaction refuses. */
static int
apply(int sig) {
    int want = SET_NONE, keep = 0;
    for (int i = 0; i < HUB_LOOPS; i++) {
        if (!hub.loops[sig][i])
            continue;
        if (hub.flags[sig][i] & HUB_HANDLED)
            want = SET_HANDLER;
        keep |= hub.flags[sig][i] & (HUB_NOPIPE | HUB_NOREAP);
    }
    if (want == SET_NONE && keep) {
        struct sigaction cur;
        if (hub.set[sig] != SET_NONE)
            cur = hub.previous[sig];
        else if (sigaction(sig, NULL, &cur) < 0)
            return -1;
        int plain = !(cur.sa_flags & SA_SIGINFO);
        if ((keep & HUB_NOPIPE) && plain && cur.sa_handler == SIG_DFL)
            want = SET_IGNORE;
        if ((keep & HUB_NOREAP) && ((plain && cur.sa_handler == SIG_IGN) ||
                                    (cur.sa_flags & SA_NOCLDWAIT)))
            want = SET_DEFAULT; /* statuses of our children stay */
    }
    if (want == hub.set[sig])
        return 0;
    if (want == SET_NONE) {
        sigaction(sig, &hub.previous[sig], NULL);
        hub.set[sig] = SET_NONE;
        return 0;
    }
    struct sigaction sa, old;
    sa.sa_handler = want == SET_HANDLER  ? hub_handler
                    : want == SET_IGNORE ? SIG_IGN
                                         : SIG_DFL;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &old) < 0)
        return -1;
    if (hub.set[sig] == SET_NONE)
        hub.previous[sig] = old;
    hub.set[sig] = (unsigned char)want;
    return 0;
}

/* Adds flag to loop's slot for sig (taking a free slot if needed). */
static int
watch(struct lasio_loop *loop, int sig, int flag) {
    int rc = -1, slot = -1;
    if (sig <= 0 || sig >= HUB_SIGNALS)
        return -1;
    if ((flag & HUB_HANDLED) && lasio_wake_open_(loop) < 0)
        return -1;
    pthread_mutex_lock(&hub.lock);
    for (int i = 0; i < HUB_LOOPS; i++) {
        if (hub.loops[sig][i] == loop) {
            slot = i;
            break;
        }
        if (slot < 0 && !hub.loops[sig][i])
            slot = i;
    }
    if (slot >= 0) {
        int had = hub.loops[sig][slot] == loop ? hub.flags[sig][slot] : 0;
        hub.flags[sig][slot] = (unsigned char)(had | flag);
        hub.loops[sig][slot] = loop;
        rc = apply(sig);
        if (rc < 0) { /* undo */
            hub.flags[sig][slot] = (unsigned char)had;
            if (!had)
                hub.loops[sig][slot] = NULL;
        }
    }
    pthread_mutex_unlock(&hub.lock);
    return rc;
}

/* Clears flag from loop's slot for sig; frees the slot when empty. */
static void
unwatch(struct lasio_loop *loop, int sig, int flag) {
    if (sig <= 0 || sig >= HUB_SIGNALS)
        return;
    pthread_mutex_lock(&hub.lock);
    for (int i = 0; i < HUB_LOOPS; i++) {
        if (hub.loops[sig][i] != loop)
            continue;
        hub.flags[sig][i] &= (unsigned char)~flag;
        if (!hub.flags[sig][i])
            hub.loops[sig][i] = NULL;
        apply(sig);
    }
    pthread_mutex_unlock(&hub.lock);
}

int
lasio_sighub_add_(struct lasio_loop *loop, int sig) {
    return watch(loop, sig, HUB_DEFAULT);
}

int
lasio_sighub_add_user_(struct lasio_loop *loop, int sig) {
    return watch(loop, sig, HUB_USER);
}

void
lasio_sighub_remove_user_(struct lasio_loop *loop, int sig) {
    unwatch(loop, sig, HUB_USER);
}

void
lasio_sighub_ignore_sigpipe_(struct lasio_loop *loop) {
    watch(loop, SIGPIPE, HUB_NOPIPE);
}

void
lasio_sighub_keep_children_(struct lasio_loop *loop) {
    watch(loop, SIGCHLD, HUB_NOREAP);
}

void
lasio_sighub_remove_all_(struct lasio_loop *loop) {
    for (int sig = 1; sig < HUB_SIGNALS; sig++)
        unwatch(loop, sig, HUB_DEFAULT | HUB_USER | HUB_NOPIPE | HUB_NOREAP);
}
