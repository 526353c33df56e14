/*
 * clitrace.c: the command's trace options (docs/SEEING.md, Tracing a run):
 * --trace FILE, --trace-ring N, --trace-stacks, each value given as the
 * next argument or after '='. The recording starts on the run's loop
 * before any chunk runs (an unwritable path is a usage error then) and is
 * written when the loop closes (trace.c), and by os.exit, which this file
 * wraps: however the run ends, the file is complete.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

#define PROGNAME "lasio"
#define MAX_RING 100000000

int
lasio_cli_trace_option_(struct lasio_cli_trace *ct, char **argv, int *i) {
    const char *arg = argv[*i], *v;
    if (strcmp(arg, "--trace-stacks") == 0) {
        ct->stacks = 1;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--trace-ring", &v)) {
        long long n;
        if (lasio_cli_parse_int_("--trace-ring",
                                 lasio_cli_required_(argv, i, v), 1, MAX_RING,
                                 &n) < 0)
            return -1;
        ct->ring = (long)n;
        return 1;
    }
    if (lasio_cli_is_opt_(arg, "--trace", &v)) {
        v = lasio_cli_required_(argv, i, v);
        if (!v || !*v)
            return lasio_cli_bad_value_("--trace", v, "needs a file name");
        ct->format = lasio_trace_format_of_(v);
        if (ct->format < 0)
            return lasio_cli_bad_value_(
                "--trace", v,
                "needs a file name ending in .json (Chrome "
                "trace) or .jsonl (lasio events)");
        ct->path = v;
        return 1;
    }
    return 0;
}

int
lasio_cli_trace_check_(struct lasio_cli_trace *ct) {
    const char *needs = ct->ring     ? "--trace-ring"
                        : ct->stacks ? "--trace-stacks"
                                     : NULL;
    if (needs && !ct->path) {
        fprintf(stderr, "%s: %s needs --trace FILE\n", PROGNAME, needs);
        fflush(stderr);
        return -1;
    }
    return 0;
}

/* os.exit(...) of the command: writes the running recording first (upvalue
 * 1: the original os.exit). */
static int
exit_writing_trace(lua_State *L) {
    struct lasio_loop *loop = lasio_current_loop_(L);
    if (loop && loop->trace)
        lasio_trace_stop_(loop);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

int
lasio_cli_trace_per_worker_(struct lasio_cli_trace *ct, int n) {
    if (!ct->path)
        return 0;
    const char *dot = strrchr(ct->path, '.'); /* there is one: .json(l) */
    size_t stem = (size_t)(dot - ct->path), size = strlen(ct->path) + 16;
    static char *path; /* the command's own state (rule 1), made once */
    if (!(path = malloc(size)))
        return -1;
    snprintf(path, size, "%.*s.%d%s", (int)stem, ct->path, n, dot);
    ct->path = path;
    return 0;
}

const char *
lasio_cli_trace_start_(lua_State *L, struct lasio_cli_trace *ct) {
    if (lua_getglobal(L, "os") == LUA_TTABLE) {
        lua_getfield(L, -1, "exit");
        lua_pushcclosure(L, exit_writing_trace, 1);
        lua_setfield(L, -2, "exit");
    }
    lua_pop(L, 1);
    if (!ct->path)
        return NULL;
    struct lasio_loop *loop = lasio_current_loop_(L);
    static char err[600]; /* the command's own state (rule 1) */
    char why[512];
    if (!loop)
        return "--trace: no event loop";
    if (lasio_trace_start_(loop, ct->path, ct->format, (size_t)ct->ring,
                           ct->stacks, why, sizeof why) < 0) {
        snprintf(err, sizeof err, "--trace: %s", why);
        return err;
    }
    /* a ring is written on SIGQUIT too, and the run goes on */
    if (ct->ring && lasio_sighub_add_(loop, SIGQUIT) < 0)
        return "--trace-ring: cannot watch SIGQUIT";
    return NULL;
}
