/*
 * jsonlite.c: the little JSON the inspector protocol needs (inspect.c and
 * the command's client): writing a quoted string, and reading the top
 * level of one object (its keys, each value's type and raw text; nested
 * values are checked and kept raw). The reader checks the whole grammar,
 * so a malformed request is refused rather than half read.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define MAX_DEPTH 32

void
lasio_json_quote_(const char *s, size_t len,
                  void (*put)(void *ud, const char *p, size_t n), void *ud) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    put(ud, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(ud, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\' || c == '\n' || c == '\t') {
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : (char)c;
            put(ud, esc, 2);
        } else {
            put(ud, esc, 6);
        }
    }
    put(ud, s + run, len - run);
    put(ud, "\"", 1);
}

/* {====== Reader ====== */

struct reader {
    const char *p, *end;
};

static void
skip_ws(struct reader *r) {
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int
read_string(struct reader *r) {
    if (r->p >= r->end || *r->p != '"')
        return -1;
    for (r->p++; r->p < r->end; r->p++) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\')
            continue;
        if (++r->p >= r->end)
            return -1;
        if (*r->p == 'u') {
            for (int i = 0; i < 4; i++)
                if (++r->p >= r->end ||
                    !strchr("0123456789abcdefABCDEF", *r->p))
                    return -1;
        } else if (!strchr("\"\\/bfnrt", *r->p)) {
            return -1;
        }
    }
    return -1;
}

static int
read_digits(struct reader *r) {
    const char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > start ? 0 : -1;
}

static int
read_number(struct reader *r) {
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (read_digits(r) < 0)
        return -1;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (read_digits(r) < 0)
            return -1;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (read_digits(r) < 0)
            return -1;
    }
    return 0;
}

static int
read_word(struct reader *r, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return -1;
    r->p += n;
    return 0;
}

static int read_value(struct reader *r, int depth);

/* An object or array after its opening bracket. */
static int
read_members(struct reader *r, int depth, int object) {
    char close = object ? '}' : ']';
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (object) {
            if (read_string(r) < 0)
                return -1;
            skip_ws(r);
            if (r->p >= r->end || *r->p++ != ':')
                return -1;
        }
        if (read_value(r, depth + 1) < 0)
            return -1;
        skip_ws(r);
        if (r->p >= r->end)
            return -1;
        if (*r->p == close) {
            r->p++;
            return 0;
        }
        if (*r->p++ != ',')
            return -1;
    }
}

static int
read_value(struct reader *r, int depth) {
    if (depth > MAX_DEPTH)
        return -1;
    skip_ws(r);
    if (r->p >= r->end)
        return -1;
    switch (*r->p) {
    case '"':
        return read_string(r);
    case '{':
    case '[':
        r->p++;
        return read_members(r, depth, r->p[-1] == '{');
    case 't':
        return read_word(r, "true");
    case 'f':
        return read_word(r, "false");
    case 'n':
        return read_word(r, "null");
    default:
        return read_number(r);
    }
}

int
lasio_json_fields_(const char *s, size_t len, struct lasio_jfield *out,
                   int max) {
    struct reader r = {s, s + len};
    int n = 0;
    skip_ws(&r);
    if (r.p >= r.end || *r.p++ != '{')
        return -1;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            skip_ws(&r);
            const char *key = r.p;
            if (read_string(&r) < 0)
                return -1;
            size_t klen = (size_t)(r.p - key);
            skip_ws(&r);
            if (r.p >= r.end || *r.p++ != ':')
                return -1;
            skip_ws(&r);
            const char *val = r.p;
            if (read_value(&r, 1) < 0)
                return -1;
            if (n < max) {
                out[n].key = key + 1;
                out[n].klen = klen - 2;
                out[n].val = val;
                out[n].vlen = (size_t)(r.p - val);
                n++;
            }
            skip_ws(&r);
            if (r.p >= r.end)
                return -1;
            if (*r.p == '}') {
                r.p++;
                break;
            }
            if (*r.p++ != ',')
                return -1;
        }
    }
    skip_ws(&r);
    return r.p == r.end ? n : -1;
}

const struct lasio_jfield *
lasio_json_get_(const struct lasio_jfield *f, int n, const char *key) {
    size_t klen = strlen(key);
    for (int i = 0; i < n; i++)
        if (f[i].klen == klen && memcmp(f[i].key, key, klen) == 0)
            return &f[i];
    return NULL;
}

/* Appends the UTF-8 of code point u. */
static size_t
put_utf8(char *d, unsigned long u) {
    if (u < 0x80) {
        d[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        d[0] = (char)(0xC0 | (u >> 6));
        d[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        d[0] = (char)(0xE0 | (u >> 12));
        d[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        d[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (u >> 18));
    d[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((u >> 6) & 0x3F));
    d[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

size_t
lasio_json_unquote_(const struct lasio_jfield *f, char *dst) {
    const char *p = f->val + 1, *end = f->val + f->vlen - 1;
    size_t n = 0;
    if (f->vlen < 2 || f->val[0] != '"')
        return 0;
    while (p < end) {
        if (*p != '\\') {
            dst[n++] = *p++;
            continue;
        }
        p++;
        char c = *p++;
        if (c != 'u') {
            dst[n++] = c == 'n'   ? '\n'
                       : c == 't' ? '\t'
                       : c == 'r' ? '\r'
                       : c == 'b' ? '\b'
                       : c == 'f' ? '\f'
                                  : c;
            continue;
        }
        unsigned long u = 0;
        sscanf(p, "%4lx", &u);
        p += 4;
        if (u >= 0xD800 && u < 0xDC00 && end - p >= 6 && p[0] == '\\' &&
            p[1] == 'u') { /* a surrogate pair */
            unsigned long lo = 0;
            sscanf(p + 2, "%4lx", &lo);
            if (lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        n += put_utf8(dst + n, u);
    }
    dst[n] = '\0';
    return n;
}

/* ====== } */
