/*
 * spawn.c: starting a child process with a clean slate (docs/API.md,
 * Subprocesses; INTERNALS.md, rule 12): clone with CLONE_VM | CLONE_VFORK |
 * CLONE_PIDFD (the pidfd comes with the child, no pidfd_open race), then in
 * the child default signal dispositions, an empty mask, the requested
 * stdio, only fds 0-2 open, and exec. Owns the child's stack while it runs.
 * Invariant: the child touches only the lasio_spawn struct and its stack.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/sys.h"

#define CHILD_STACK (256 * 1024) /* mapped lazily: only touched pages count */

extern char **environ;

/* Runs in the child, on its own stack, sharing the parent's memory while
 * the parent waits (CLONE_VFORK): only async-signal-safe calls, nothing
 * that allocates or locks, and no sanitizer instrumentation (it would
 * poison shadow memory of a stack that never returns). */
__attribute__((no_sanitize("address", "undefined"))) static int
child_main(void *arg) {
    struct lasio_spawn *s = arg;
    /* a zeroed kernel sigaction is SIG_DFL, no flags, empty mask, in
     * every architecture's layout; raw system calls reach the signals
     * glibc keeps for itself (32, 33) and bypass sanitizer interceptors */
    unsigned long dfl[4] = {0, 0, 0, 0}, none = 0;
    /* the parent blocked every signal before clone: reset the handlers
     * (they are the parent's code) before anything can be delivered */
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, dfl, NULL, sizeof none);
    if (s->new_session && setsid() < 0) {
        s->op = "setsid";
        goto fail;
    }
    for (int i = 0; i < 3; i++) {
        if (s->fds[i] >= 0 && dup2(s->fds[i], i) < 0) {
            s->op = "dup2";
            goto fail;
        }
    }
    if (s->fds[2] == LASIO_SPAWN_STDOUT && dup2(1, 2) < 0) {
        s->op = "dup2";
        goto fail;
    }
    if (s->cwd && chdir(s->cwd) < 0) {
        s->op = "chdir";
        goto fail;
    }
    /* only stdio survives, whatever the host left without O_CLOEXEC */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    }
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
    int seen_eacces = 0, err = ENOENT;
    char *const *envp = s->envp ? s->envp : environ;
    for (int i = 0; s->paths[i]; i++) {
        execve(s->paths[i], s->argv, envp);
        /* as execvp: try the next directory unless the error is final */
        if (errno == EACCES)
            seen_eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
                 errno != ENODEV && errno != ETIMEDOUT) {
            err = errno;
            break;
        }
    }
    s->op = "exec";
    s->err = seen_eacces && err == ENOENT ? EACCES : err;
    _exit(127);
fail:
    s->err = errno;
    _exit(127);
}

int
lasio_spawn_reap_(int pidfd, int block) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int flags = WEXITED | __WALL | (block ? 0 : WNOHANG);
    int r;
    do
        r = waitid(P_PIDFD, (id_t)pidfd, &si, flags);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return 255; /* ECHILD: reaped by someone else, status unknown */
    if (si.si_pid == 0)
        return INT_MIN;
    if (si.si_code == CLD_EXITED)
        return si.si_status;
    return -si.si_status; /* killed or dumped: -signal, as asyncio */
}

int
lasio_spawn_(struct lasio_spawn *s) {
    sigset_t all, old;
    int pidfd = -1;
    s->err = 0;
    s->op = NULL;
    void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        s->err = errno;
        s->op = "mmap";
        return -1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid =
        clone(child_main, (char *)stack + CHILD_STACK,
              CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, s, &pidfd);
    int clone_err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CHILD_STACK);
    if (pid < 0) {
        s->err = clone_err;
        s->op = "clone";
        return -1;
    }
    if (s->err) { /* the child failed before exec and has exited */
        lasio_spawn_reap_(pidfd, 1);
        close(pidfd);
        return -1;
    }
    s->pid = pid;
    s->pidfd = pidfd;
    return 0;
}
