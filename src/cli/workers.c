/*
 * workers.c: `lasio --workers N script.lua`: a supervisor process that forks
 * N workers before any Lua state exists, restarts a worker that crashes
 * (with backoff), forwards the stop signals, and exits with the worst
 * status. Each worker then runs the script as a plain `lasio script.lua`
 * would, with its servers listening through SO_REUSEPORT by default, so N
 * workers share one port and the kernel spreads the connections.
 * Invariant: the supervisor runs no Lua and no event loop; it sleeps in
 * sigtimedwait with every signal it handles blocked, so no signal is lost
 * between two waits.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

/* Backoff of a crashing worker: doubles from the first delay up to the
 * last; a worker that ran for BACKOFF_RESET seconds starts again from the
 * first. */
#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 10.0
#define BACKOFF_RESET 10.0

enum worker_state { RUNNING, WAITING_RESTART, ENDED };

struct worker {
    pid_t pid;
    enum worker_state state;
    int status;     /* last exit status, 128+signal for a signal death */
    double started; /* when the current process was forked */
    double restart; /* when to fork again (WAITING_RESTART) */
    double backoff; /* the next restart delay */
};

struct supervisor {
    struct worker *w;
    int n;
    int stopping;     /* a stop signal arrived: no more restarts */
    int cannot_start; /* the status of a worker whose script cannot start */
    sigset_t handled, saved;
};

static double
now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lasio: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

/* In the new worker: the environment that names it, the signal mask of
 * before, and death with the supervisor (a worker never outlives it). */
static void
become_worker(struct supervisor *s, int index, pid_t parent) {
    char buf[16];
    snprintf(buf, sizeof buf, "%d", index + 1);
    setenv("LASIO_WORKER", buf, 1);
    snprintf(buf, sizeof buf, "%d", s->n);
    setenv("LASIO_WORKERS", buf, 1);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) /* the supervisor died before the prctl */
        _exit(LASIO_EXIT_SIGTERM);
    sigprocmask(SIG_SETMASK, &s->saved, NULL);
}

/* Forks worker i. Returns its number (i + 1) in the new worker, 0 in the
 * supervisor. */
static int
start(struct supervisor *s, int i) {
    struct worker *w = &s->w[i];
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid == 0) {
        become_worker(s, i, parent);
        return i + 1;
    }
    if (pid < 0) { /* retried like a crash */
        say("worker %d: fork: %s", i + 1, strerror(errno));
        w->state = WAITING_RESTART;
        w->restart = now() + w->backoff;
        return 0;
    }
    w->pid = pid;
    w->state = RUNNING;
    w->started = now();
    return 0;
}

static void
forward(struct supervisor *s, int sig) {
    for (int i = 0; i < s->n; i++)
        if (s->w[i].state == RUNNING)
            kill(s->w[i].pid, sig);
}

/* No more restarts; a worker waiting for one ends with its last status. */
static void
stop(struct supervisor *s) {
    s->stopping = 1;
    for (int i = 0; i < s->n; i++)
        if (s->w[i].state == WAITING_RESTART)
            s->w[i].state = ENDED;
}

/* Worker i's process ended with wait status st. */
static void
ended(struct supervisor *s, int i, int st) {
    struct worker *w = &s->w[i];
    double ran = now() - w->started;
    w->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    w->state = ENDED;
    if (s->stopping || w->status == LASIO_EXIT_OK)
        return;
    if (w->status == LASIO_EXIT_USAGE || w->status == LASIO_EXIT_SYNTAX) {
        /* the script cannot start: another fork would fail the same way */
        say("worker %d (pid %d) exited with status %d; stopping the others",
            i + 1, (int)w->pid, w->status);
        s->cannot_start = w->status;
        stop(s);
        forward(s, SIGTERM);
        return;
    }
    w->backoff = ran >= BACKOFF_RESET ? BACKOFF_FIRST : w->backoff;
    say("worker %d (pid %d) %s %d; restarting in %.1f s", i + 1, (int)w->pid,
        WIFEXITED(st) ? "exited with status" : "killed by signal",
        WIFEXITED(st) ? w->status : WTERMSIG(st), w->backoff);
    w->state = WAITING_RESTART;
    w->restart = now() + w->backoff;
    w->backoff = fmin(w->backoff * 2, BACKOFF_MAX);
}

static void
reap(struct supervisor *s) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (int i = 0; i < s->n; i++)
            if (s->w[i].state == RUNNING && s->w[i].pid == pid)
                ended(s, i, st);
}

/* Seconds until the next restart is due; -1 when none is waiting. */
static double
next_restart(struct supervisor *s) {
    double t = -1, at = now();
    for (int i = 0; i < s->n; i++)
        if (s->w[i].state == WAITING_RESTART) {
            double d = fmax(s->w[i].restart - at, 0);
            t = t < 0 ? d : fmin(t, d);
        }
    return t;
}

static int
any_left(struct supervisor *s) {
    for (int i = 0; i < s->n; i++)
        if (s->w[i].state != ENDED)
            return 1;
    return 0;
}

/* The highest status; the script's own when it could not start (the
 * others were stopped by the supervisor then). */
static int
worst_status(struct supervisor *s) {
    int worst = LASIO_EXIT_OK;
    if (s->cannot_start)
        return s->cannot_start;
    for (int i = 0; i < s->n; i++)
        if (s->w[i].status > worst)
            worst = s->w[i].status;
    return worst;
}

/* The supervisor's loop. Returns the worker's number in a worker
 * (re)started from it, 0 when every worker has ended. */
static int
supervise(struct supervisor *s) {
    while (any_left(s)) {
        siginfo_t info;
        double wait = next_restart(s);
        int sig;
        if (wait < 0) {
            sig = sigwaitinfo(&s->handled, &info);
        } else {
            struct timespec ts = {(time_t)wait,
                                  (long)((wait - floor(wait)) * 1e9)};
            sig = sigtimedwait(&s->handled, &info, &ts);
        }
        if (sig == SIGCHLD) {
            reap(s);
        } else if (sig > 0) {
            stop(s);
            /* A terminal's ^C reaches the whole process group by itself
             * (SI_KERNEL); a kill() reaches the supervisor only. A second
             * signal is passed on too: the workers make it immediate. */
            if (info.si_code != SI_KERNEL)
                forward(s, sig);
        }
        double at = now();
        for (int i = 0; i < s->n && !s->stopping; i++) {
            int worker;
            if (s->w[i].state == WAITING_RESTART && s->w[i].restart <= at &&
                (worker = start(s, i)))
                return worker;
        }
    }
    return 0;
}

int
lasio_cli_supervise_(int n, int *status) {
    struct supervisor s = {0};
    int child = 0;
    s.n = n;
    s.w = calloc((size_t)n, sizeof *s.w);
    if (s.w == NULL) {
        say("--workers: not enough memory");
        *status = LASIO_EXIT_ERROR;
        return 0;
    }
    sigemptyset(&s.handled);
    sigaddset(&s.handled, SIGCHLD);
    sigaddset(&s.handled, SIGTERM);
    sigaddset(&s.handled, SIGINT);
    sigaddset(&s.handled, SIGHUP);
    sigaddset(&s.handled, SIGQUIT);
    sigprocmask(SIG_BLOCK, &s.handled, &s.saved);
    for (int i = 0; i < n && !child; i++) {
        s.w[i].backoff = BACKOFF_FIRST;
        child = start(&s, i);
    }
    if (!child)
        child = supervise(&s);
    if (!child)
        *status = worst_status(&s);
    free(s.w);
    return child;
}
