/*
 * inspect_cli.c: the command's side of live introspection (docs/SEEING.md,
 * "Looking at a running process"): turning the inspector on for the
 * script (off with --no-inspect or LASIO_NO_INSPECT=1), and the client
 * commands `lasio ps PID`, `lasio pstree PID` and `lasio dump PID`, which
 * send one request line to the process's socket and print its answer.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "lasio.h"

#define REPLY_MS 10000 /* a reply comes within this (busy: within 1.2 s) */

void
lasio_cli_inspect_start_(lua_State *L, int off) {
    const char *env = getenv("LASIO_NO_INSPECT");
    if (off || (env && *env && strcmp(env, "0") != 0))
        return;
    /* a socket that cannot be made (the name taken) leaves the script
     * running uninspected, as --no-inspect would */
    lasio_inspect_listen(L, NULL);
}

static int
usage(const char *cmd) {
    fprintf(stderr,
            "usage: lasio %s PID%s\n"
            "  lasio ps [--json] PID   the tasks of a running lasio process\n"
            "  lasio pstree PID        its tasks as a tree of awaits\n"
            "  lasio dump PID          every task's stack\n"
            "  lasio trace PID --seconds S -o FILE.json|FILE.jsonl\n"
            "                          record its events for S seconds\n",
            cmd,
            strcmp(cmd, "ps") == 0      ? " [--json]"
            : strcmp(cmd, "trace") == 0 ? " --seconds S -o FILE"
                                        : "");
    return LASIO_EXIT_USAGE;
}

/* Connects to the inspector of pid; -1 with the message printed. */
static int
connect_to(const char *cmd, long pid) {
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "lasio %s: no process with pid %ld\n", cmd, pid);
        return -1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "lasio/%ld", pid);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                                      1 + (size_t)n)) < 0) {
        fprintf(stderr,
                "lasio %s: process %ld is not a lasio process serving the "
                "inspector (no socket @lasio/%ld: not lasio, or run with "
                "--no-inspect)\n",
                cmd, pid, pid);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Reads the reply until the server closes; malloc'd, NUL-terminated. */
static char *
read_reply(int fd, size_t *len, int wait_ms) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0)
            break;
        if (n + 1 >= cap) {
            char *more = realloc(buf, cap * 2);
            if (!more)
                break;
            buf = more;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (buf) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        buf[n] = '\0';
    }
    *len = n;
    return buf;
}

/* Prints what the reply says; returns the exit status. */
static int
show_reply(const char *cmd, char *reply, size_t len, int raw) {
    struct lasio_jfield f[16];
    int n = lasio_json_fields_(reply, len, f, 16);
    const struct lasio_jfield *ok = n > 0 ? lasio_json_get_(f, n, "ok") : NULL;
    if (!ok) {
        fprintf(stderr, "lasio %s: no valid reply from the process\n", cmd);
        return LASIO_EXIT_ERROR;
    }
    if (ok->vlen != 4 || memcmp(ok->val, "true", 4) != 0) {
        const struct lasio_jfield *e = lasio_json_get_(f, n, "error");
        char *msg = malloc(e ? e->vlen + 1 : 1);
        if (msg && e)
            lasio_json_unquote_(e, msg);
        fprintf(stderr, "lasio %s: %s\n", cmd, msg && e ? msg : "failed");
        free(msg);
        return LASIO_EXIT_ERROR;
    }
    if (raw) {
        printf("%s\n", reply);
        return LASIO_EXIT_OK;
    }
    const struct lasio_jfield *t = lasio_json_get_(f, n, "text");
    const struct lasio_jfield *st = lasio_json_get_(f, n, "status");
    char *text = malloc(t ? t->vlen + 1 : 1);
    if (!text || !t) {
        free(text);
        fprintf(stderr, "lasio %s: no valid reply from the process\n", cmd);
        return LASIO_EXIT_ERROR;
    }
    size_t tn = lasio_json_unquote_(t, text);
    fwrite(text, 1, tn, stdout);
    free(text);
    return st ? atoi(st->val) : LASIO_EXIT_OK;
}

/* The request being written (lasio_json_quote_'s put). */
struct reqbuf {
    char *p;
    size_t n, cap;
};

static void
put_req(void *ud, const char *p, size_t n) {
    struct reqbuf *b = ud;
    if (b->n + n < b->cap) {
        memcpy(b->p + b->n, p, n);
        b->n += n;
    } else {
        b->n = b->cap; /* too long: refused by the caller */
    }
}

static int
is_pid(const char *s, long *pid) {
    char *end;
    if (!s || !*s)
        return 0;
    *pid = strtol(s, &end, 10);
    return *end == '\0' && *pid > 0;
}

/* `lasio trace PID --seconds S -o FILE`: fills the request; 0 when the
 * command line is wrong. */
static int
trace_request(int argc, char **argv, long *pid, char *req, size_t reqlen,
              double *seconds) {
    const char *out = NULL, *sec = NULL;
    if (argc < 3 || !is_pid(argv[2], pid))
        return 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            sec = argv[++i];
        else if (strncmp(argv[i], "--seconds=", 10) == 0)
            sec = argv[i] + 10;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else
            return 0;
    }
    char *end;
    *seconds = sec ? strtod(sec, &end) : 0;
    if (!sec || *end != '\0' || !(*seconds > 0 && *seconds <= 3600) || !out ||
        lasio_trace_format_of_(out) < 0)
        return 0;
    char path[3072], cwd[2048];
    if (out[0] == '/')
        snprintf(path, sizeof path, "%s", out);
    else if (getcwd(cwd, sizeof cwd))
        snprintf(path, sizeof path, "%s/%s", cwd, out);
    else
        return 0;
    struct reqbuf b = {req, 0, reqlen};
    b.n = (size_t)snprintf(req, reqlen,
                           "{\"v\":%d,\"cmd\":\"trace\",\"seconds\":%g,"
                           "\"path\":",
                           LASIO_INSPECT_VERSION, *seconds);
    lasio_json_quote_(path, strlen(path), put_req, &b);
    if (b.n + 3 > reqlen)
        return 0;
    memcpy(req + b.n, "}\n", 3);
    return 1;
}

int
lasio_cli_inspect_(int argc, char **argv, int *status) {
    static const char *const cmds[] = {"ps", "pstree", "dump", "trace", NULL};
    const char *const *c;
    long pid = 0;
    if (argc < 2)
        return 0;
    for (c = cmds; *c && strcmp(*c, argv[1]) != 0; c++)
        ;
    /* `lasio trace view|text FILE` is the trace viewer's */
    if (!*c ||
        (strcmp(*c, "trace") == 0 && (argc < 3 || !is_pid(argv[2], &pid))))
        return 0;
    const char *cmd = *c;
    int json = 0, i = 2, wait_ms = REPLY_MS;
    char req[4096];
    if (strcmp(cmd, "trace") == 0) {
        double seconds;
        if (!trace_request(argc, argv, &pid, req, sizeof req, &seconds)) {
            *status = usage(cmd);
            return 1;
        }
        wait_ms += (int)(seconds * 1000);
    } else {
        if (strcmp(cmd, "ps") == 0 && argc > i &&
            strcmp(argv[i], "--json") == 0)
            json = 1, i++;
        if (argc != i + 1 || !is_pid(argv[i], &pid)) {
            *status = usage(cmd);
            return 1;
        }
        snprintf(req, sizeof req,
                 "{\"v\":%d,\"cmd\":\"%s\",\"format\":\"%s\"}\n",
                 LASIO_INSPECT_VERSION, cmd, json ? "json" : "text");
    }
    *status = LASIO_EXIT_ERROR;
    int fd = connect_to(cmd, pid);
    if (fd < 0)
        return 1;
    int n = (int)strlen(req);
    /* a refused peer may find the socket closed: its reply says why */
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n && errno != EPIPE &&
        errno != ECONNRESET) {
        fprintf(stderr, "lasio %s: cannot send the request: %s\n", cmd,
                strerror(errno));
        close(fd);
        return 1;
    }
    size_t len;
    char *reply = read_reply(fd, &len, wait_ms);
    close(fd);
    if (!reply) {
        fprintf(stderr, "lasio %s: not enough memory\n", cmd);
        return 1;
    }
    *status = show_reply(cmd, reply, len, json);
    free(reply);
    if (fflush(stdout) != 0 && *status == LASIO_EXIT_OK)
        *status = LASIO_EXIT_ERROR;
    return 1;
}
