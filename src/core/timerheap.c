/*
 * timerheap.c: the loop's own timer heap. Every TimerHandle and every
 * sleeping task sits in one binary min-heap ordered by (deadline, arrival),
 * and the loop's timerfd (CLOCK_MONOTONIC, absolute time, watched by
 * timer_ev) is armed for the earliest deadline. Due entries are moved to
 * the ready queue in deadline order (ties in arrival order, as asyncio
 * does), and never before their deadline on the monotonic clock
 * (INTERNALS.md, rule 11).
 * The timerfd is set only when the earliest deadline moves earlier, not
 * once per timer, nor once per turn of the loop as libevent's precise
 * timers would. When the earliest deadline moves later (its entry left
 * the heap: a read that got its data before its deadline, once per
 * request on a keep-alive connection), the timerfd stays as it is: it
 * fires early at worst, finds nothing due and is set again.
 * Invariants: entry i's owner has *entry.posp == i; owners are kept alive
 * by the loop (anchored handles, pending tasks) while they are in the
 * heap; while the heap is not empty, the timerfd is armed at or before
 * the earliest deadline and timer_ev is added. When the heap is empty,
 * timer_ev stays added on the loop's own base (a loop of sleeps would
 * otherwise pay an epoll_ctl to remove it and one to add it back per
 * sleep) and is removed on a host's base, so that a dispatch with
 * nothing of lasio's to wait for ends (docs/EMBEDDING.md).
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/core.h"

/* Arms the loop's timerfd to fire at monotonic time `when` (ns), never
 * before, and watches it. Returns -1 when libevent ran out of memory. */
static int
arm(struct lasio_loop *loop, int64_t when) {
    if (!loop->timer_on) {
        if (event_add(loop->timer_ev, NULL) < 0)
            return -1;
        loop->timer_on = 1;
    }
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (when < 1)
        when = 1; /* a zero time would disarm it; a past one fires now */
    its.it_value.tv_sec = (time_t)(when / 1000000000);
    its.it_value.tv_nsec = (long)(when % 1000000000);
    /* fails only for a time out of range: lasio_delay_ns_ caps delays at
     * 4e18 ns, well inside a timespec */
    timerfd_settime(loop->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
    return 0;
}

/* The task a timer entry wakes, for the trace (0: a TimerHandle). */
static int32_t
owner_id(void *owner) {
    return *(unsigned char *)owner == KIND_TASK
               ? ((struct lasio_task *)owner)->id
               : 0;
}

static int
before(const struct lasio_timer_entry *a, const struct lasio_timer_entry *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
place(struct lasio_loop *loop, int i, struct lasio_timer_entry e) {
    loop->th[i] = e;
    *e.posp = i;
}

static void
sift_up(struct lasio_loop *loop, int i) {
    struct lasio_timer_entry e = loop->th[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!before(&e, &loop->th[parent]))
            break;
        place(loop, i, loop->th[parent]);
        i = parent;
    }
    place(loop, i, e);
}

static void
sift_down(struct lasio_loop *loop, int i) {
    struct lasio_timer_entry e = loop->th[i];
    int n = loop->th_n;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && before(&loop->th[child + 1], &loop->th[child]))
            child++;
        if (!before(&loop->th[child], &e))
            break;
        place(loop, i, loop->th[child]);
        i = child;
    }
    place(loop, i, e);
}

/* Arms the loop's timer for the earliest deadline. When the heap is
 * empty, an expiry still armed fires once and finds nothing due; on a
 * host's base the timer is no longer watched. Only adding the event can
 * fail (-1, out of memory). */
static int
rearm(struct lasio_loop *loop) {
    if (loop->vc) /* virtual deadlines: the idle path jumps to them */
        return 0;
    if (loop->th_n == 0) {
        if (loop->timer_on && !loop->own_base) {
            event_del(loop->timer_ev);
            loop->timer_on = 0;
        }
        return 0;
    }
    return arm(loop, loop->th[0].when);
}

int
lasio_timerheap_add_(struct lasio_loop *loop, void *owner, int *posp,
                     int64_t when) {
    if (loop->th_n == loop->th_cap) {
        int cap = loop->th_cap ? loop->th_cap * 2 : 64;
        void *a = realloc(loop->th, (size_t)cap * sizeof *loop->th);
        if (!a)
            return -1;
        loop->th = a;
        loop->th_cap = cap;
    }
    struct lasio_timer_entry e = {when, loop->th_seq++, owner, posp};
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_TIMER_ADD, owner_id(owner), (int64_t)e.seq,
                          when, 0, NULL);
    int i = loop->th_n++;
    place(loop, i, e);
    sift_up(loop, i);
    if (*posp == 0 && rearm(loop) < 0) {
        /* an entry libevent would never wake: take it out again (E4) */
        lasio_timerheap_remove_(loop, posp);
        return -1;
    }
    return 0;
}

void
lasio_timerheap_remove_(struct lasio_loop *loop, int *posp) {
    int i = *posp;
    if (i < 0 || i >= loop->th_n)
        return;
    if (loop->trace)
        lasio_trace_emit_(loop, TEV_TIMER_CANCEL, owner_id(loop->th[i].owner),
                          (int64_t)loop->th[i].seq, loop->th[i].when, 0, NULL);
    *posp = -1;
    int last = --loop->th_n;
    if (i != last) {
        place(loop, i, loop->th[last]);
        if (i > 0 && before(&loop->th[i], &loop->th[(i - 1) / 2]))
            sift_up(loop, i);
        else
            sift_down(loop, i);
    }
    if (loop->th_n == 0)
        rearm(loop); /* nothing left: a host's base stops watching it */
}

void
lasio_timerheap_collect_(lua_State *L, struct lasio_loop *loop, int64_t now) {
    while (loop->th_n > 0 && loop->th[0].when <= now && !loop->closed) {
        lasio_readyq_reserve_(L, loop, 1);
        struct lasio_timer_entry e = loop->th[0];
        *e.posp = -1;
        int last = --loop->th_n;
        if (last > 0) {
            place(loop, 0, loop->th[last]);
            sift_down(loop, 0);
        }
        if (loop->trace) {
            lasio_trace_emit_(loop, TEV_TIMER_FIRE, owner_id(e.owner),
                              (int64_t)e.seq, e.when, 0, NULL);
            lasio_trace_by_(loop, TBY_TIMER);
        }
        if (*(unsigned char *)e.owner == KIND_TASK)
            lasio_task_timer_due_(L, e.owner);
        else
            lasio_readyq_push_timer_(L, loop,
                                     e.owner); /* anchored until taken */
        lasio_trace_by_(loop, TBY_NONE);
    }
}

/* Moves the due entries to the ready queue, in deadline order. Room in
 * the queue is made before an entry leaves the heap, so running out of
 * memory loses no timer. Called through lasio_guarded_. */
static int
fire_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    lasio_timerheap_collect_(L, loop, lasio_mono_ns_());
    return 0;
}

void
lasio_timerheap_fire_cb_(evutil_socket_t fd, short what, void *arg) {
    struct lasio_loop *loop = arg;
    uint64_t expirations;
    (void)what;
    /* empties the timerfd (the count is not needed); EAGAIN when it was
     * set again since it was polled */
    if (read(fd, &expirations, sizeof expirations) < 0)
        expirations = 0;
    lasio_guarded_(loop, fire_body);
    if (!loop->closed)
        rearm(loop); /* what is left; also when woken early */
}

void
lasio_timerheap_free_(struct lasio_loop *loop) {
    for (int i = 0; i < loop->th_n; i++)
        *loop->th[i].posp = -1;
    free(loop->th);
    loop->th = NULL;
    loop->th_n = loop->th_cap = 0;
}
