/*
 * clilimits.c: the command's options for untrusted scripts
 * (docs/UNTRUSTED.md): --max-memory, --forced-yield, --max-instructions,
 * --max-cpu, --max-tasks, --max-timers, --max-sockets, --max-output,
 * --sandbox[=io]. They
 * are read with the other options and applied once lasio is open, before
 * the script is loaded.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "embed/embed.h"

/* A size: digits with an optional K, M or G suffix (powers of 1024). */
static int
parse_size(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0))
        return 0;
    switch (*end) {
    case 'K':
    case 'k':
        v *= 1024;
        end++;
        break;
    case 'M':
    case 'm':
        v *= 1024 * 1024;
        end++;
        break;
    case 'G':
    case 'g':
        v *= 1024.0 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0' || v > 9e18)
        return 0;
    *out = v;
    return 1;
}

/* The value after "name=" in arg, or NULL. */
static const char *
value_of(const char *arg, const char *name) {
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

int
lasio_cli_limit_option_(struct lasio_cli_limits *lim, const char *arg) {
    static const struct {
        const char *name;
        int sized; /* K/M/G allowed; else a plain number */
    } opts[] = {{"--max-memory", 1},       {"--forced-yield", 0},
                {"--max-instructions", 0}, {"--max-cpu", 0},
                {"--max-tasks", 0},        {"--max-timers", 0},
                {"--max-output", 1},       {"--max-sockets", 0}};
    if (strcmp(arg, "--sandbox") == 0 || strcmp(arg, "--sandbox=io") == 0) {
        lim->sandbox = arg[9] ? 2 : 1;
        return 1;
    }
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        const char *v = value_of(arg, opts[i].name);
        if (!v)
            continue;
        double x;
        if (!parse_size(v, &x) || (!opts[i].sized && strpbrk(v, "KkMmGg")))
            return -1;
        if (i != 3 && x != floor(x)) /* only --max-cpu takes a fraction */
            return -1;
        switch (i) {
        case 0:
            lim->memory = (size_t)x;
            break;
        case 1:
            lim->forced_yield = (long)x;
            break;
        case 2:
            lim->instructions = (long long)x;
            break;
        case 3:
            lim->cpu = x;
            break;
        case 4:
            lim->max_tasks = x > 1e9 ? 0 : (int)x;
            break;
        case 5:
            lim->max_timers = x > 1e9 ? 0 : (int)x;
            break;
        case 6:
            lim->max_output = (long long)x;
            break;
        default:
            lim->max_sockets = x > 1e9 ? 0 : (int)x;
            break;
        }
        lim->any = 1;
        return 1;
    }
    return 0;
}

const char *
lasio_cli_apply_limits_(lua_State *L, const struct lasio_cli_limits *lim) {
    if (!lim->any)
        return NULL;
    if ((lim->forced_yield &&
         lasio_set_forced_yield(L, lim->forced_yield) != LASIO_OK) ||
        ((lim->instructions || lim->cpu > 0) &&
         lasio_set_run_budget(L, lim->instructions, lim->cpu) != LASIO_OK) ||
        ((lim->max_tasks || lim->max_timers) &&
         lasio_set_caps(L, lim->max_tasks, lim->max_timers) != LASIO_OK) ||
        ((lim->max_sockets || lim->max_output) &&
         lasio_set_io_caps(L, lim->max_sockets, lim->max_output) != LASIO_OK))
        return "cannot set the limits: not enough memory";
    if (lim->memory && lasio_set_memory_limit(L, lim->memory) != LASIO_OK)
        return "--max-memory: the cap is below what the state holds at "
               "start (about 400K)";
    return NULL;
}

void
lasio_cli_sandbox_(lua_State *L, const struct lasio_cli_limits *lim) {
    if (!lim->sandbox)
        return;
    lasio_sandbox_env_(L, lim->sandbox == 2, lim->max_output);
    if (!lua_setupvalue(L, -2, 1)) /* the main chunk's _ENV */
        lua_pop(L, 1);
}
