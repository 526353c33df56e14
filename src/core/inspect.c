/*
 * inspect.c: the inspector socket behind `lasio ps PID` (docs/SEEING.md).
 * A thread accepts on an abstract Unix socket named after the pid, refuses
 * peers of another uid (but root), reads one request line and hands it to
 * the loop through a pipe of its own; the loop answers between task steps
 * (snapshot.c), so what it tells is consistent. A loop that does not
 * answer within ANSWER_MS runs something that does not yield: the thread
 * then sends BUSY_SIGNAL to the loop's thread, whose handler sets a count
 * hook on the running Lua thread (as the signal hub does), and the hook
 * reports the running task's current line. The thread never touches a
 * Lua state; what it shares with the loop is under `lock`, or written by
 * the signal handler on the loop's thread and read with atomics.
 * One inspector per process (the socket is named after the pid): its
 * address is the one process-wide pointer here, for the signal handler.
 * The pipe's event does not count as a wake-up source, so serving never
 * keeps the loop open, and holds no virtual clock.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/event.h>

#include "core/core.h"

#define ANSWER_MS 500        /* the loop answers within this, or is "busy" */
#define SAMPLE_MS 600        /* then its running line comes within this */
#define READ_MS 2000         /* a client sends its request line within this */
#define TRACE_WRITE_MS 10000 /* a recording is written within this */
#define MAX_REQUEST 4096
#define BIND_RETRY_MS 2           /* waiting for a stopped inspector's name */
#define THREAD_STACK (128 * 1024) /* it needs some 16 KiB */
/* Ignored by default, rarely used by programs: Go's runtime preempts
 * its goroutines with it for the same reasons. */
#define BUSY_SIGNAL SIGURG

struct lasio_inspector {
    struct lasio_loop *loop; /* borrowed: the loop stops the inspector
                                before it goes (loop.c, release) */
    pthread_t thread, loop_thread;
    int listen_fd;
    int stop_fd[2]; /* the loop's side writes: the thread ends */
    int req_fd[2];  /* the thread writes: a request waits */
    struct event *req_ev;
    char name[108]; /* the socket's abstract name */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    size_t request_len;
    unsigned long serial;   /* of the latest request */
    unsigned long answered; /* the request `reply` answers */
    unsigned long tracing;  /* the `trace` request a recording answers */
    char *reply;            /* malloc'd, or NULL */
    size_t reply_len;
    int stopping; /* the loop let go: the thread ends and frees this */
    int sample_wanted, sample_ready;
    int sample_id;
    char sample_name[64], sample_where[160];
    size_t taking_len;
    /* written by the signal handler on the loop's thread */
    int busy_id;
    int64_t busy_start;
    lua_Hook saved_hook; /* the hook the sample replaced */
    int saved_mask, saved_count;
    struct sigaction old_busy;
    int busy_installed;
    /* last, and never cleared: the waiting request (under lock), and the
     * loop thread's copy of the one it answers */
    char request[MAX_REQUEST];
    char taking[MAX_REQUEST];
};

/* The process's inspector, for the BUSY_SIGNAL handler. */
static struct lasio_inspector *volatile the_inspector;
/* Stopped inspectors whose thread has not closed its socket yet: a new
 * one under the same name waits for them (lasio_inspect_start_). */
static atomic_int ending_threads;

/* {====== The loop's side ====== */

static int
answer_inner(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    struct lasio_inspector *ins = loop->inspector;
    lasio_snapshot_reply_(L, loop, ins->taking, ins->taking_len);
    return 1;
}

struct strbuf {
    char buf[1024];
    size_t n;
};

static void
sb_put(void *ud, const char *p, size_t n) {
    struct strbuf *b = ud;
    if (n > sizeof b->buf - 2 - b->n)
        n = sizeof b->buf - 2 - b->n;
    memcpy(b->buf + b->n, p, n);
    b->n += n;
}

static void
sb_puts(struct strbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void
sb_quote(struct strbuf *b, const char *s) {
    lasio_json_quote_(s, strlen(s), sb_put, b);
}

/* Sets the reply of request serial (text of len bytes, copied). */
static void
set_reply(struct lasio_inspector *ins, unsigned long serial, const char *text,
          size_t len) {
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\n';
    }
    pthread_mutex_lock(&ins->lock);
    free(ins->reply);
    ins->reply = copy;
    ins->reply_len = copy ? len + 1 : 0;
    ins->answered = serial;
    pthread_cond_broadcast(&ins->cond);
    pthread_mutex_unlock(&ins->lock);
}

static void
set_error(struct lasio_inspector *ins, unsigned long serial, const char *msg) {
    struct strbuf b = {.n = 0};
    sb_puts(&b, "{\"v\":1,\"ok\":false,\"error\":");
    sb_quote(&b, msg);
    sb_puts(&b, "}");
    set_reply(ins, serial, b.buf, b.n);
}

/* The timed recording of a `trace` request is written (from the loop). */
static void
trace_written(void *ud, int status, const char *path) {
    struct lasio_loop *loop = ud;
    struct lasio_inspector *ins = loop->inspector;
    char msg[600];
    if (!ins || !ins->tracing)
        return;
    if (status != 0) {
        snprintf(msg, sizeof msg, "cannot write %s: %s", path, strerror(errno));
        set_error(ins, ins->tracing, msg);
    } else {
        struct strbuf b = {.n = 0};
        snprintf(msg, sizeof msg, "wrote %s\n", path);
        sb_puts(&b, "{\"v\":1,\"ok\":true,\"status\":0,\"text\":");
        sb_quote(&b, msg);
        sb_puts(&b, "}");
        set_reply(ins, ins->tracing, b.buf, b.n);
    }
    ins->tracing = 0;
}

/* A `trace` request: starts the timed recording, whose end answers it.
 * Returns 1 when it handled the request. */
static int
start_trace(lua_State *L, struct lasio_loop *loop, struct lasio_inspector *ins,
            unsigned long serial) {
    struct lasio_jfield f[16];
    int n = lasio_json_fields_(ins->taking, ins->taking_len, f, 16);
    const struct lasio_jfield *cmd = lasio_json_get_(f, n, "cmd");
    if (!cmd || cmd->vlen != 7 || memcmp(cmd->val, "\"trace\"", 7) != 0)
        return 0;
    const struct lasio_jfield *sec = lasio_json_get_(f, n, "seconds");
    const struct lasio_jfield *path = lasio_json_get_(f, n, "path");
    char file[MAX_REQUEST], err[300];
    double seconds = sec ? strtod(sec->val, NULL) : 0;
    if (!(seconds > 0 && seconds <= 3600) || !path || path->val[0] != '"') {
        set_error(ins, serial,
                  "trace: needs \"seconds\" (0 to 3600) and "
                  "\"path\" (a .json or .jsonl file)");
        return 1;
    }
    lasio_json_unquote_(path, file);
    int format = lasio_trace_format_of_(file);
    if (format < 0) {
        set_error(ins, serial, "the path must end in .json or .jsonl");
        return 1;
    }
    if (ins->tracing) {
        set_error(ins, serial,
                  "a recording for the inspector runs "
                  "already");
        return 1;
    }
    if (lasio_trace_record_for_(loop, file, format, seconds, trace_written,
                                loop, err, sizeof err) < 0) {
        set_error(ins, serial, err);
        return 1;
    }
    ins->tracing = serial;
    /* the tasks made before the recording: their tracks get their names */
    lasio_pushtasks_(L, loop);
    lua_pushnil(L);
    while (loop->trace && lua_next(L, -2)) {
        struct lasio_task *t = lasio_totask_(L, -1);
        if (t && t->fut.state == FUT_PENDING) {
            lasio_task_pushname_(L, -1, t);
            lasio_trace_rename_(L, loop, t, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 1;
}

/* Through lasio_guarded_: answers the waiting request. */
static int
answer_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    struct lasio_inspector *ins = loop->inspector;
    unsigned long serial;
    pthread_mutex_lock(&ins->lock);
    serial = ins->serial;
    int fresh = ins->answered != serial && ins->request_len > 0;
    if (fresh) {
        memcpy(ins->taking, ins->request, ins->request_len);
        ins->taking_len = ins->request_len;
    }
    pthread_mutex_unlock(&ins->lock);
    if (!fresh || start_trace(L, loop, ins, serial))
        return 0;
    lua_pushcfunction(L, answer_inner);
    lua_pushlightuserdata(L, loop);
    size_t len;
    const char *text;
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        text = lua_tolstring(L, -1, &len);
    } else {
        text = "{\"v\":1,\"ok\":false,\"error\":\"the loop could not answer "
               "(out of memory)\"}";
        len = strlen(text);
    }
    set_reply(ins, serial, text, len);
    return 0;
}

static void
request_cb(evutil_socket_t fd, short what, void *arg) {
    struct lasio_loop *loop = arg;
    char buf[16];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    if (loop->inspector && !loop->closed)
        lasio_guarded_(loop, answer_body);
}

/* The count hook BUSY_SIGNAL sets: on the loop's thread, inside the Lua
 * code that keeps the loop busy. Reports the running task and line, then
 * puts back the hook it replaced. */
static void
sample_hook(lua_State *L, lua_Debug *ar) {
    struct lasio_inspector *ins = the_inspector;
    (void)ar;
    if (!ins) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    lua_sethook(L, ins->saved_hook, ins->saved_mask, ins->saved_count);
    struct lasio_loop *loop = ins->loop;
    struct lasio_task *cur = loop->current;
    char where[160] = "?", name[64] = "";
    lua_Debug d;
    if (lua_getstack(L, 0, &d) && lua_getinfo(L, "Sl", &d))
        snprintf(where, sizeof where, "%s:%d", d.short_src, d.currentline);
    if (cur && lua_checkstack(L, 4)) {
        lasio_pushtasks_(L, loop);
        lua_rawgeti(L, -1, cur->fut.ref);
        if (lasio_extra_get_(L, -1, EXTRA_NAME) == LUA_TSTRING)
            snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
        else
            snprintf(name, sizeof name, "Task-%d", cur->id);
        lua_pop(L, 3);
    }
    pthread_mutex_lock(&ins->lock);
    if (ins->sample_wanted) {
        ins->sample_id = cur ? cur->id : 0;
        memcpy(ins->sample_name, name, sizeof name);
        memcpy(ins->sample_where, where, sizeof where);
        ins->sample_ready = 1;
        pthread_cond_broadcast(&ins->cond);
    }
    pthread_mutex_unlock(&ins->lock);
}

/* BUSY_SIGNAL, on the loop's thread (the inspector's thread sends it
 * there with pthread_kill): a count hook on the thread running Lua, as
 * the signal hub sets its interrupt hook (lua_sethook is meant to be
 * called from a signal handler). */
static void
busy_handler(int sig) {
    int saved = errno;
    struct lasio_inspector *ins = the_inspector;
    (void)sig;
    if (ins && pthread_equal(pthread_self(), ins->loop_thread)) {
        struct lasio_loop *loop = ins->loop;
        struct lasio_task *cur = loop->current;
        __atomic_store_n(&ins->busy_id, cur ? cur->id : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&ins->busy_start, loop->step_start, __ATOMIC_RELAXED);
        lua_State *running = loop->running_L;
        if (running && loop->running && lua_gethook(running) != sample_hook) {
            ins->saved_hook = lua_gethook(running);
            ins->saved_mask = lua_gethookmask(running);
            ins->saved_count = lua_gethookcount(running);
            lua_sethook(running, sample_hook, LUA_MASKCOUNT, 1);
        }
    }
    errno = saved;
}

/* ====== } */

static void free_inspector(struct lasio_inspector *ins);

/* {====== The inspector's thread ====== */

static void
send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void
send_error(int fd, const char *msg) {
    struct strbuf b = {.n = 0};
    sb_puts(&b, "{\"v\":1,\"ok\":false,\"error\":");
    sb_quote(&b, msg);
    sb_puts(&b, "}\n");
    send_all(fd, b.buf, b.n);
}

/* Reads the request line into buf: 0, or -1 (nothing within READ_MS),
 * -2 (too long). End of input ends the line as well. */
static int
read_request(int fd, char *buf, size_t *len) {
    size_t n = 0;
    int64_t deadline = lasio_mono_ns_() + (int64_t)READ_MS * 1000000;
    for (;;) {
        int64_t left = (deadline - lasio_mono_ns_()) / 1000000;
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            return -1;
        ssize_t r = recv(fd, buf + n, MAX_REQUEST - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            *len = n;
            return n > 0 ? 0 : -1;
        }
        char *nl = memchr(buf + n, '\n', (size_t)r);
        n += (size_t)r;
        if (nl) {
            *len = (size_t)(nl - buf);
            return 0;
        }
        if (n >= MAX_REQUEST)
            return -2;
    }
}

/* Waits on the condition until pred(ins, arg) or the deadline (ns of
 * CLOCK_MONOTONIC). Called with the lock held. */
static int
wait_until(struct lasio_inspector *ins, int64_t deadline,
           int (*pred)(struct lasio_inspector *, unsigned long),
           unsigned long arg) {
    struct timespec ts = {(time_t)(deadline / 1000000000),
                          (long)(deadline % 1000000000)};
    while (!pred(ins, arg))
        if (pthread_cond_clockwait(&ins->cond, &ins->lock, CLOCK_MONOTONIC,
                                   &ts) == ETIMEDOUT)
            return pred(ins, arg);
    return 1;
}

static int
is_answered(struct lasio_inspector *ins, unsigned long serial) {
    return ins->answered == serial || ins->stopping;
}

static int
is_sampled(struct lasio_inspector *ins, unsigned long serial) {
    return ins->answered == serial || ins->sample_ready || ins->stopping;
}

/* Sends the reply of request serial (under the lock, which it releases). */
static void
send_reply(struct lasio_inspector *ins, int fd) {
    char *reply = ins->reply;
    size_t len = ins->reply_len;
    ins->reply = NULL;
    pthread_mutex_unlock(&ins->lock);
    if (reply)
        send_all(fd, reply, len);
    else
        send_error(fd, "the loop could not answer (out of memory)");
    free(reply);
}

/* The loop did not answer in time: names what it runs. */
static void
send_busy(struct lasio_inspector *ins, int fd, unsigned long serial) {
    pthread_mutex_lock(&ins->lock);
    ins->sample_ready = 0;
    ins->sample_wanted = 1;
    pthread_mutex_unlock(&ins->lock);
    int signalled = pthread_kill(ins->loop_thread, BUSY_SIGNAL) == 0;
    pthread_mutex_lock(&ins->lock);
    if (signalled)
        wait_until(ins, lasio_mono_ns_() + (int64_t)SAMPLE_MS * 1000000,
                   is_sampled, serial);
    ins->sample_wanted = 0;
    if (ins->answered == serial) { /* free again meanwhile */
        send_reply(ins, fd);
        return;
    }
    int id = __atomic_load_n(&ins->busy_id, __ATOMIC_RELAXED);
    int64_t start = __atomic_load_n(&ins->busy_start, __ATOMIC_RELAXED);
    double running = start > 0 ? (double)(lasio_coarse_ns_() - start) / 1e9 : 0;
    char msg[400], num[32];
    struct strbuf b = {.n = 0};
    sb_puts(&b, "{\"v\":1,\"ok\":false,\"busy\":true");
    if (ins->sample_ready && ins->sample_id > 0) {
        snprintf(msg, sizeof msg, "loop busy: #%d %s running for %.1f s at %s",
                 ins->sample_id, ins->sample_name, running, ins->sample_where);
        snprintf(num, sizeof num, "%d", ins->sample_id);
        sb_puts(&b, ",\"task\":");
        sb_puts(&b, num);
        sb_puts(&b, ",\"name\":");
        sb_quote(&b, ins->sample_name);
        sb_puts(&b, ",\"where\":");
        sb_quote(&b, ins->sample_where);
    } else if (ins->sample_ready) {
        snprintf(msg, sizeof msg, "loop busy: a callback running at %s",
                 ins->sample_where);
        sb_puts(&b, ",\"where\":");
        sb_quote(&b, ins->sample_where);
    } else if (id > 0) {
        snprintf(msg, sizeof msg,
                 "loop busy: #%d running for %.1f s (in C code: no Lua line)",
                 id, running);
    } else {
        snprintf(msg, sizeof msg,
                 "loop busy: no answer within %d ms (in C code: no Lua line)",
                 ANSWER_MS);
    }
    pthread_mutex_unlock(&ins->lock);
    snprintf(num, sizeof num, "%.3f", running);
    sb_puts(&b, ",\"running_for\":");
    sb_puts(&b, num);
    sb_puts(&b, ",\"error\":");
    sb_quote(&b, msg);
    sb_puts(&b, "}\n");
    send_all(fd, b.buf, b.n);
}

static void
serve(struct lasio_inspector *ins, int fd) {
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        send_error(fd, "permission denied: the inspector answers its own "
                       "user and root only");
        return;
    }
    char buf[MAX_REQUEST];
    size_t len = 0;
    int r = read_request(fd, buf, &len);
    if (r < 0) {
        send_error(fd, r == -2 ? "malformed request: longer than 4096 bytes"
                               : "malformed request: no request line");
        return;
    }
    /* a malformed request is refused here, even while the loop is busy */
    struct lasio_jfield f[16];
    int nf = lasio_json_fields_(buf, len, f, 16);
    const struct lasio_jfield *cmd =
        nf > 0 ? lasio_json_get_(f, nf, "cmd") : NULL;
    if (!cmd || cmd->val[0] != '"' || !lasio_json_get_(f, nf, "v")) {
        send_error(fd, nf < 0 ? "malformed request: not a JSON object"
                              : "malformed request: \"v\" and \"cmd\" "
                                "are needed");
        return;
    }
    pthread_mutex_lock(&ins->lock);
    memcpy(ins->request, buf, len);
    ins->request_len = len;
    unsigned long serial = ++ins->serial;
    free(ins->reply);
    ins->reply = NULL;
    pthread_mutex_unlock(&ins->lock);
    ssize_t w = write(ins->req_fd[1], "", 1);
    (void)w; /* a full pipe already means "a request waits"; a closed one
                (the loop let go) is seen below */
    /* a trace answers once its recording is written */
    int64_t wait_ms = ANSWER_MS;
    const struct lasio_jfield *sec = lasio_json_get_(f, nf, "seconds");
    if (cmd->vlen == 7 && memcmp(cmd->val, "\"trace\"", 7) == 0 && sec) {
        double seconds = strtod(sec->val, NULL);
        if (seconds > 0 && seconds <= 3600)
            wait_ms += (int64_t)(seconds * 1000) + TRACE_WRITE_MS;
    }
    pthread_mutex_lock(&ins->lock);
    if (wait_until(ins, lasio_mono_ns_() + wait_ms * 1000000, is_answered,
                   serial)) {
        send_reply(ins, fd);
        return;
    }
    int stopping = ins->stopping;
    pthread_mutex_unlock(&ins->lock);
    if (stopping)
        send_error(fd, "the loop is closing");
    else
        send_busy(ins, fd, serial);
}

static void *
serve_thread(void *arg) {
    struct lasio_inspector *ins = arg;
    for (;;) {
        struct pollfd p[2] = {{ins->listen_fd, POLLIN, 0},
                              {ins->stop_fd[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int fd = accept4(ins->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(ins, fd);
        close(fd);
    }
    free_inspector(ins); /* the loop let go of it (stop) */
    atomic_fetch_sub(&ending_threads, 1);
    return NULL;
}

/* ====== } */

/* {====== Starting and stopping ====== */

static void
free_inspector(struct lasio_inspector *ins) {
    if (ins->req_ev)
        event_free(ins->req_ev);
    int *fds[] = {&ins->listen_fd, &ins->stop_fd[0], &ins->stop_fd[1],
                  &ins->req_fd[0], &ins->req_fd[1]};
    for (int i = 0; i < 5; i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    pthread_mutex_destroy(&ins->lock);
    pthread_cond_destroy(&ins->cond);
    free(ins->reply);
    free(ins);
}

static int
open_socket(struct lasio_inspector *ins, const char *name) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (name)
        snprintf(ins->name, sizeof ins->name, "%s", name);
    else
        snprintf(ins->name, sizeof ins->name, "lasio/%ld", (long)getpid());
    size_t n = strlen(ins->name);
    if (n == 0 || n >= sizeof sa.sun_path - 1) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path + 1, ins->name, n); /* abstract: a NUL first */
    ins->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ins->listen_fd < 0)
        return -1;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    /* the name of a stopped inspector is free once its thread closed the
     * socket, which takes at most the end of the request it serves */
    for (int waited = 0;; waited += BIND_RETRY_MS) {
        if (bind(ins->listen_fd, (struct sockaddr *)&sa, len) == 0)
            break;
        if (errno != EADDRINUSE || atomic_load(&ending_threads) == 0 ||
            waited >= READ_MS + ANSWER_MS)
            return -1;
        poll(NULL, 0, BIND_RETRY_MS);
    }
    return listen(ins->listen_fd, 8);
}

/* The busy signal's handler, unless the process handles it already. */
static void
install_busy(struct lasio_inspector *ins) {
    struct sigaction sa;
    if (sigaction(BUSY_SIGNAL, NULL, &ins->old_busy) < 0 ||
        (ins->old_busy.sa_flags & SA_SIGINFO) ||
        (ins->old_busy.sa_handler != SIG_DFL &&
         ins->old_busy.sa_handler != SIG_IGN))
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = busy_handler;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ins->busy_installed = sigaction(BUSY_SIGNAL, &sa, NULL) == 0;
}

int
lasio_inspect_start_(struct lasio_loop *loop, const char *name) {
    if (the_inspector) {
        errno = EBUSY;
        return -1;
    }
    struct lasio_inspector *ins = malloc(sizeof *ins);
    if (!ins)
        return -1;
    memset(ins, 0, offsetof(struct lasio_inspector, request));
    ins->loop = loop;
    ins->loop_thread = pthread_self();
    ins->listen_fd = ins->stop_fd[0] = ins->stop_fd[1] = -1;
    ins->req_fd[0] = ins->req_fd[1] = -1;
    /* static initializers: no library call to bind at every start */
    static const pthread_mutex_t lock0 = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t cond0 = PTHREAD_COND_INITIALIZER;
    ins->lock = lock0;
    ins->cond = cond0;
    int err = 0;
    if (open_socket(ins, name) < 0 ||
        pipe2(ins->stop_fd, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(ins->req_fd, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(ins->req_ev = event_new(loop->base, ins->req_fd[0],
                                  EV_READ | EV_PERSIST, request_cb, loop)) ||
        event_add(ins->req_ev, NULL) < 0) {
        err = errno ? errno : ENOMEM;
        free_inspector(ins);
        errno = err;
        return -1;
    }
    /* the thread takes no signal: they are the loop thread's. It is
     * detached and frees the inspector when it ends, so stopping (a
     * process's exit) never waits for it */
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&ins->thread, &attr, serve_thread, ins);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        free_inspector(ins);
        errno = err;
        return -1;
    }
    loop->inspector = ins;
    the_inspector = ins;
    install_busy(ins);
    return 0;
}

void
lasio_inspect_stop_(struct lasio_loop *loop) {
    struct lasio_inspector *ins = loop->inspector;
    if (!ins)
        return;
    if (ins->busy_installed)
        sigaction(BUSY_SIGNAL, &ins->old_busy, NULL);
    the_inspector = NULL;
    loop->inspector = NULL;
    /* no more clients from now on, though the thread may take a while */
    shutdown(ins->listen_fd, SHUT_RDWR);
    atomic_fetch_add(&ending_threads, 1);
    event_free(ins->req_ev);
    close(ins->req_fd[0]);
    pthread_mutex_lock(&ins->lock);
    ins->req_ev = NULL;
    ins->req_fd[0] = -1;
    ins->stopping = 1;
    pthread_cond_broadcast(&ins->cond);
    pthread_mutex_unlock(&ins->lock);
    /* the thread frees ins once it reads this: the last touch here */
    ssize_t w = write(ins->stop_fd[1], "", 1);
    (void)w;
}

/* ====== } */
