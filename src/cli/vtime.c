/*
 * vtime.c: the lasio command's options of virtual time (docs/VIRTUAL_TIME.md):
 * --virtual-time, --real-io[=MS], --seed=N (or LASIO_SEED), --shuffle,
 * --check-determinism[=N], --virtual-limit=S, --real-timeout=S and
 * --time-rate=R; a required value may also follow as a separate argument.
 * Here: parsing and checking them (a bad value is a usage error, exit 2),
 * asking the core for virtual loops, the wall-clock watchdog, the seed and
 * rerun command printed with any failure, and --check-determinism, which
 * runs the command again N times with one seed and compares what each run
 * printed and how its clock moved.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "cli/cli.h"
#include "core/core.h"

#define PROGNAME "lasio"
/* Where a child run of --check-determinism writes its clock's jumps. */
#define LOG_ENV "LASIO_DETERMINISM_LOG"

/* {====== Parsing ====== */

/* A finite number in (0, max]. */
static int
parse_seconds(const char *opt, const char *v, double max, double *out) {
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || errno || !(d > 0) || !(d <= max)) {
        char want[96];
        snprintf(want, sizeof want, "needs a number > 0 and <= %g", max);
        return lasio_cli_bad_value_(opt, v, want);
    }
    *out = d;
    return 1;
}

int
lasio_cli_vt_option_(struct lasio_cli_vt *vt, char **argv, int *i) {
    const char *arg = argv[*i], *v;
    long long n;
    if (strcmp(arg, "--virtual-time") == 0) {
        vt->on = 1;
        return 1;
    }
    if (strcmp(arg, "--shuffle") == 0) {
        vt->shuffle = 1;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--real-io", &v)) {
        vt->real_io_ms = 10;
        if (v && lasio_cli_parse_int_("--real-io", v, 0, 3600000, &n) < 0)
            return -1;
        if (v)
            vt->real_io_ms = (int)n;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--check-determinism", &v)) {
        vt->check_n = 2;
        if (v &&
            lasio_cli_parse_int_("--check-determinism", v, 2, 1000, &n) < 0)
            return -1;
        if (v)
            vt->check_n = (int)n;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--seed", &v)) {
        if (lasio_cli_parse_int_("--seed", lasio_cli_required_(argv, i, v), 0,
                                 LLONG_MAX, &n) < 0)
            return -1;
        vt->has_seed = 1;
        vt->seed = n;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--virtual-limit", &v))
        return parse_seconds("--virtual-limit", lasio_cli_required_(argv, i, v),
                             1e9, &vt->limit);
    if (lasio_cli_is_opt_(arg, "--real-timeout", &v))
        return parse_seconds("--real-timeout", lasio_cli_required_(argv, i, v),
                             1e9, &vt->real_timeout);
    if (lasio_cli_is_opt_(arg, "--time-rate", &v))
        return parse_seconds("--time-rate", lasio_cli_required_(argv, i, v),
                             1e9, &vt->rate);
    return 0;
}

int
lasio_cli_vt_check_(struct lasio_cli_vt *vt, int interactive) {
    const char *needs = NULL;
    if (vt->shuffle)
        needs = "--shuffle";
    else if (vt->real_io_ms >= 0)
        needs = "--real-io";
    else if (vt->check_n)
        needs = "--check-determinism";
    else if (vt->limit > 0)
        needs = "--virtual-limit";
    else if (vt->rate > 0)
        needs = "--time-rate";
    if (needs && !vt->on) {
        fprintf(stderr, "%s: %s needs --virtual-time\n", PROGNAME, needs);
        return -1;
    }
    if (vt->on && interactive) {
        fprintf(stderr,
                "%s: --virtual-time needs a script: the REPL waits for a "
                "terminal in real time\n",
                PROGNAME);
        return -1;
    }
    const char *env = getenv("LASIO_SEED");
    if (!vt->has_seed && env && *env) {
        long long n;
        if (lasio_cli_parse_int_("LASIO_SEED", env, 0, LLONG_MAX, &n) < 0)
            return -1;
        vt->has_seed = 1;
        vt->seed = n;
    }
    if (!vt->has_seed) { /* chosen here, printed with any failure */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        vt->seed = ((long long)ts.tv_nsec ^ ((long long)getpid() << 16) ^
                    (long long)ts.tv_sec) &
                   0x7fffffff;
    }
    return 0;
}

/* ====== } */

/* {====== The run ====== */

void
lasio_cli_vt_request_(lua_State *L, struct lasio_cli_vt *vt) {
    if (!vt->on)
        return;
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)vt->seed);
    lua_setfield(L, -2, "seed");
    lua_pushboolean(L, vt->shuffle);
    lua_setfield(L, -2, "shuffle");
    if (vt->limit > 0) {
        lua_pushnumber(L, vt->limit);
        lua_setfield(L, -2, "limit");
    }
    if (vt->real_io_ms >= 0) {
        lua_pushinteger(L, vt->real_io_ms);
        lua_setfield(L, -2, "real_io");
    }
    if (vt->rate > 0) {
        lua_pushnumber(L, vt->rate);
        lua_setfield(L, -2, "rate");
    }
    const char *log = getenv(LOG_ENV);
    if (log && *log) {
        lua_pushstring(L, log);
        lua_setfield(L, -2, "log");
    }
    lasio_vclock_request_(L);
}

void
lasio_cli_vt_seed_(lua_State *L, struct lasio_cli_vt *vt) {
    if (!vt->on && !vt->has_seed)
        return;
    if (lua_getglobal(L, "math") == LUA_TTABLE &&
        lua_getfield(L, -1, "randomseed") == LUA_TFUNCTION) {
        lua_pushinteger(L, (lua_Integer)vt->seed);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The watchdog fired: every task's stack (the deadlock report's list). */
static int
watchdog_body(lua_State *L) {
    struct lasio_loop *loop = lua_touserdata(L, 1);
    lasio_deadlock_report_(L, loop);
    const char *report = lua_tostring(L, -1);
    const char *tasks = strchr(report, '\n'); /* past the deadlock line */
    fprintf(stderr, "%d task(s) pending:\n%s", loop->ntasks,
            tasks ? tasks + 1 : "");
    return 0;
}

struct watchdog {
    struct lasio_loop *loop;
    struct lasio_cli_vt *vt;
};

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg) {
    struct watchdog *w = arg;
    (void)fd, (void)what;
    fflush(stdout);
    fprintf(stderr, "lasio: real-time limit %g s reached (wall clock)\n",
            w->vt->real_timeout);
    lasio_guarded_(w->loop, watchdog_body);
    lasio_cli_vt_finish_(w->vt, LASIO_EXIT_TIMEOUT);
    fflush(stderr);
    exit(LASIO_EXIT_TIMEOUT);
}

void
lasio_cli_vt_start_(lua_State *L, struct lasio_cli_vt *vt) {
    static struct watchdog w; /* the command's own state (rule 1) */
    vt->loop = lasio_current_loop_(L);
    if (!(vt->real_timeout > 0) || !vt->loop)
        return;
    w.loop = vt->loop;
    w.vt = vt;
    struct event *ev = evtimer_new(w.loop->base, watchdog_cb, &w);
    double s = vt->real_timeout;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    if (!ev || evtimer_add(ev, &tv) < 0)
        fprintf(stderr, "%s: --real-timeout: cannot arm the watchdog\n",
                PROGNAME);
    /* freed with the base: the process ends soon after the run */
}

/* Prints s quoted for a POSIX shell when it needs it. */
static void
print_quoted(FILE *f, const char *s) {
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_./=:,+@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* The command line with --seed=N in place of any seed given. */
static void
print_rerun(FILE *f, struct lasio_cli_vt *vt) {
    char **argv = vt->argv;
    print_quoted(f, argv[0]);
    fprintf(f, " --seed=%lld", vt->seed);
    int in_opts = 1;
    for (int i = 1; argv[i]; i++) {
        if (in_opts && i == vt->script)
            in_opts = 0;
        if (in_opts && strncmp(argv[i], "--seed", 6) == 0 &&
            (argv[i][6] == '\0' || argv[i][6] == '=')) {
            if (argv[i][6] == '\0' && argv[i + 1])
                i++;
            continue;
        }
        fputc(' ', f);
        print_quoted(f, argv[i]);
    }
}

int
lasio_cli_vt_finish_(struct lasio_cli_vt *vt, int status) {
    double limit;
    if (vt->loop && lasio_vclock_limit_hit_(vt->loop, &limit)) {
        fprintf(stderr,
                "lasio: virtual time limit %g s reached (virtual "
                "clock)\n",
                limit);
        if (status == LASIO_EXIT_OK)
            status = LASIO_EXIT_ERROR;
    }
    if (vt->on && status != LASIO_EXIT_OK) {
        fprintf(stderr,
                "lasio: virtual run with seed %lld; rerun it with: ", vt->seed);
        print_rerun(stderr, vt);
        fputc('\n', stderr);
        fflush(stderr);
    }
    return status;
}

/* ====== } */

/* {====== --check-determinism ====== */

/* Reads a whole file (NULL-terminated, "" when missing). */
static char *
slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    while (f) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Copies file path to the stream out. */
static void
pass_through(const char *path, FILE *out) {
    char *s = slurp(path);
    if (s)
        fputs(s, out);
    free(s);
    fflush(out);
}

struct run {
    char out[64], err[64], log[64];
    int status;
};

/* Runs argv (this command without --check-determinism) once. */
static int
run_once(char **argv, struct run *r) {
    strcpy(r->out, "/tmp/lasio-determinism-XXXXXX");
    strcpy(r->err, r->out);
    strcpy(r->log, r->out);
    int fo = mkstemp(r->out), fe = mkstemp(r->err), fl = mkstemp(r->log);
    if (fo < 0 || fe < 0 || fl < 0)
        return -1;
    close(fl);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        setenv(LOG_ENV, r->log, 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fo);
    close(fe);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 0;
}

/* The n-th line of s (1-based) into buf, or NULL past the end. */
static const char *
line_at(const char *s, int n, char *buf, size_t size) {
    for (int i = 1; i < n && s; i++) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    if (!s || !*s)
        return NULL;
    size_t len = strcspn(s, "\n");
    if (len >= size)
        len = size - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* Compares two texts line by line: 0 the same, else prints the first
 * difference (as event `what`) and returns 1. */
static int
compare(const char *what, const char *a, const char *b, int run) {
    if (strcmp(a, b) == 0)
        return 0;
    char la[512], lb[512];
    for (int n = 1;; n++) {
        const char *x = line_at(a, n, la, sizeof la);
        const char *y = line_at(b, n, lb, sizeof lb);
        if (x && y && strcmp(x, y) == 0)
            continue;
        fprintf(stderr,
                "lasio: --check-determinism: run %d differs from run 1 at "
                "%s line %d:\n  run 1: %s\n  run %d: %s\n",
                run, what, n, x ? x : "(end)", run, y ? y : "(end)");
        return 1;
    }
}

int
lasio_cli_vt_check_determinism_(struct lasio_cli_vt *vt, int argc,
                                char **argv) {
    char seedopt[40];
    snprintf(seedopt, sizeof seedopt, "--seed=%lld", vt->seed);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return LASIO_EXIT_ERROR;
    int n = 0;
    args[n++] = argv[0];
    args[n++] = seedopt;
    for (int i = 1; i < argc; i++) {
        if (i < vt->script || vt->script == 0) {
            const char *v;
            if (lasio_cli_is_opt_(argv[i], "--check-determinism", &v))
                continue;
            if (lasio_cli_is_opt_(argv[i], "--seed", &v)) {
                if (!v)
                    i++;
                continue;
            }
        }
        args[n++] = argv[i];
    }
    args[n] = NULL;
    struct run first, other;
    int status = LASIO_EXIT_ERROR, differ = 0;
    if (run_once(args, &first) < 0) {
        fprintf(stderr, "%s: --check-determinism: cannot run: %s\n", PROGNAME,
                strerror(errno));
        free(args);
        return LASIO_EXIT_ERROR;
    }
    char *out1 = slurp(first.out), *log1 = slurp(first.log);
    for (int k = 2; k <= vt->check_n && !differ && out1 && log1; k++) {
        if (run_once(args, &other) < 0)
            break;
        char *out = slurp(other.out), *log = slurp(other.log);
        if (out && log) {
            differ = compare("output", out1, out, k) ||
                     compare("clock event", log1, log, k);
            if (!differ && other.status != first.status) {
                fprintf(stderr,
                        "lasio: --check-determinism: run %d exited %d, run "
                        "1 exited %d\n",
                        k, other.status, first.status);
                differ = 1;
            }
        }
        free(out);
        free(log);
        remove(other.out);
        remove(other.err);
        remove(other.log);
    }
    pass_through(first.out, stdout);
    pass_through(first.err, stderr);
    status = first.status;
    if (differ) {
        fprintf(stderr,
                "lasio: the run is not deterministic with seed %lld; "
                "rerun the check with: ",
                vt->seed);
        print_rerun(stderr, vt);
        fputc('\n', stderr);
        status = LASIO_EXIT_NONDETERMINISTIC;
    }
    free(out1);
    free(log1);
    remove(first.out);
    remove(first.err);
    remove(first.log);
    free(args);
    return status;
}

/* ====== } */
