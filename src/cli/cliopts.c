/*
 * cliopts.c: reading the values of the command's options, shared by the
 * option groups that parse their own (virtual time, tracing): the
 * `--opt VALUE` / `--opt=VALUE` forms, integers in a range, and the one
 * message shape of a bad value.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int
lasio_cli_bad_value_(const char *opt, const char *value, const char *want) {
    fprintf(stderr, "lasio: %s: %s, got '%s'\n", opt, want,
            value ? value : "(nothing)");
    fflush(stderr);
    return -1;
}

int
lasio_cli_is_opt_(const char *arg, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
        return 0;
    *value = arg[n] == '=' ? arg + n + 1 : NULL;
    return 1;
}

const char *
lasio_cli_required_(char **argv, int *i, const char *value) {
    if (value)
        return value;
    if (argv[*i + 1] == NULL)
        return NULL;
    return argv[++*i];
}

int
lasio_cli_parse_int_(const char *opt, const char *v, long long lo, long long hi,
                     long long *out) {
    char *end;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || n < lo || n > hi) {
        char want[96];
        snprintf(want, sizeof want, "needs an integer from %lld to %lld", lo,
                 hi);
        return lasio_cli_bad_value_(opt, v, want);
    }
    *out = n;
    return 1;
}
