/*
 * slice.c: the time slice of forced yields (docs/UNTRUSTED.md). A count
 * hook makes Lua take a slow path at every VM instruction of the hooked
 * thread, whatever its count, so forced yields alone do not keep one on:
 * a timer on the CPU clock of the loop's thread ticks every SLICE_NS of
 * CPU time the thread uses, and its signal handler hooks the thread
 * running Lua only when the same task step was running at the previous
 * tick too (the loop's step counter did not move), that is a step that ran
 * for at least one slice. Short steps pay nothing; the budget hook then
 * counts on from there and yields (budget.c). The clock stops while the
 * thread sleeps, so an idle loop gets no signal.
 * The handler reads its record from the signal's value, not from a global
 * (INTERNALS.md, rule 1); a hook already on the thread (the signal layer's)
 * is left alone. lua_sethook may be called from a signal handler (lua.c's
 * laction does it). The timer is deleted from the loop's thread with the
 * signal unblocked, so a tick still pending is delivered before the
 * record goes.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "core/core.h"

#define SLICE_NS 500000L /* 0.5 ms */
#define SLICE_MAGIC 0x51ce

/* One of the two timers; the signal's value points to it. */
struct slice_timer {
    int magic; /* SLICE_MAGIC while the timer lives */
    int busy;  /* the CPU clock's timer, else the slice's */
    timer_t id;
    struct lasio_slice *s;
};

struct lasio_slice {
    struct slice_timer tick, busy;
    int ticking; /* the slice timer is armed */
    struct lasio_loop *loop;
    unsigned long seen; /* the loop's step counter at the previous tick */
    lua_Hook hook;      /* what to put on a long step's thread */
    int count;
};

static int
slice_signal(void) {
    return SIGRTMIN + 4;
}

static void
set_ticking(struct lasio_slice *s, int on) {
    struct itimerspec its = {{0, on ? SLICE_NS : 0}, {0, on ? SLICE_NS : 0}};
    if (timer_settime(s->tick.id, 0, &its, NULL) == 0)
        s->ticking = on;
}

/* The slice timer's tick hooks a step that ran since the previous tick,
 * and stops the timer on a loop found idle; the CPU clock's timer, which
 * only runs while the thread works, starts it again. */
static void
slice_tick(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    struct slice_timer *st = si->si_value.sival_ptr;
    if (si->si_code != SI_TIMER || !st || st->magic != SLICE_MAGIC)
        return;
    struct lasio_slice *s = st->s;
    struct lasio_loop *loop = s->loop;
    unsigned long steps = loop->steps;
    if (st->busy) {
        if (!s->ticking) {
            s->seen = steps;
            set_ticking(s, 1);
        }
        return;
    }
    lua_State *L = loop->running_L;
    if (loop->current) {
        if (steps == s->seen && L && !lua_gethook(L))
            lua_sethook(L, s->hook, LUA_MASKCOUNT, s->count);
    } else if (steps == s->seen) {
        set_ticking(s, 0);
    }
    s->seen = steps;
}

/* Our handler on the slice's signal: installed when the signal is at its
 * default; -1 when someone else handles it. */
static int
install_handler(void) {
    int sig = slice_signal();
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) < 0)
        return -1;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == slice_tick)
        return 0;
    if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
        return -1; /* the host's */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = slice_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static int
new_timer(struct lasio_slice *s, struct slice_timer *st, clockid_t clock,
          int busy) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = slice_signal();
    ev.sigev_value.sival_ptr = st;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    st->s = s;
    st->busy = busy;
    if (timer_create(clock, &ev, &st->id) < 0)
        return -1;
    st->magic = SLICE_MAGIC;
    return 0;
}

struct lasio_slice *
lasio_slice_start_(struct lasio_loop *loop, lua_Hook hook, int count) {
    if (install_handler() < 0)
        return NULL;
    struct lasio_slice *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->hook = hook;
    s->count = count;
    s->seen = loop->steps;
    struct itimerspec its = {{0, SLICE_NS}, {0, SLICE_NS}};
    if (new_timer(s, &s->tick, CLOCK_MONOTONIC, 0) < 0 ||
        new_timer(s, &s->busy, CLOCK_THREAD_CPUTIME_ID, 1) < 0 ||
        timer_settime(s->busy.id, 0, &its, NULL) < 0) {
        lasio_slice_stop_(s);
        return NULL;
    }
    set_ticking(s, 1);
    return s;
}

void
lasio_slice_set_count_(struct lasio_slice *s, int count) {
    s->count = count;
}

void
lasio_slice_stop_(struct lasio_slice *s) {
    if (!s)
        return;
    for (int i = 0; i < 2; i++) {
        struct slice_timer *st = i ? &s->busy : &s->tick;
        if (st->magic == SLICE_MAGIC)
            timer_delete(st->id);
        st->magic = 0;
    }
    free(s);
}
