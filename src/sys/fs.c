/*
 * fs.c: lasio.fs (docs/API.md, Files): read_file, write_file, open, stat,
 * lstat, listdir, mkdir, remove, rename, and the File object (read, write,
 * lines, seek, close, <close>). Every system call that can block on a
 * disk runs in the loop's worker threads (threadpool.c); seek only moves
 * an offset and runs inline. A File owns its fd and its read buffer.
 * Invariant: at most one job works on a File's fd at a time (inflight);
 * closing a File with a job in flight closes the fd when the job ends.
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/sys.h"

#define LASIO_FILE_MT "lasio.File"
#define CHUNK 65536

struct lasio_file {
    int fd;
    unsigned char inflight, closed;
    char *buf; /* read-ahead: buf[off .. off+len) */
    size_t off, len, cap;
    int eof;
};

enum {
    OP_READFILE,
    OP_WRITEFILE,
    OP_STAT,
    OP_LSTAT,
    OP_LISTDIR,
    OP_MKDIR,
    OP_REMOVE,
    OP_RENAME,
    OP_OPEN,
    OP_FREAD,
    OP_FWRITE
};

static const char *const op_names[] = {"open",    "open",  "stat",   "lstat",
                                       "listdir", "mkdir", "remove", "rename",
                                       "open",    "read",  "write"};

struct fs_job {
    struct lasio_job head;
    int op;
    char *path, *path2; /* owned copies */
    const char *data;   /* borrowed: the string is in the anchor table */
    size_t len;
    struct lasio_file *file; /* borrowed: the File is in the anchor table */
    int fd, flags, mode;
    /* results */
    int err;
    const char *errop; /* failing step when it is not op_names[op] */
    char *out;         /* read data, or NUL-separated names */
    size_t outlen, nnames;
    struct stat st;
};

/* {====== In the worker ====== */

static int
write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads fd to its end into j->out. */
static int
read_all(struct fs_job *j, int fd) {
    struct stat st;
    size_t cap =
        fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : CHUNK;
    j->out = malloc(cap);
    if (!j->out)
        return errno = ENOMEM, -1;
    for (;;) {
        if (j->outlen == cap) {
            char *np = realloc(j->out, cap * 2);
            if (!np)
                return errno = ENOMEM, -1;
            j->out = np;
            cap *= 2;
        }
        ssize_t n = read(fd, j->out + j->outlen, cap - j->outlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        j->outlen += (size_t)n;
    }
}

static int
cmpnames(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of a directory, NUL-separated, into j->out. */
static int
list(struct fs_job *j) {
    DIR *d = opendir(j->path);
    if (!d)
        return -1;
    struct lasio_wbuf names = {NULL, 0, 0};
    struct dirent *e;
    int rc = 0;
    errno = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (lasio_wbuf_add_(&names, e->d_name, strlen(e->d_name) + 1) < 0) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        j->nnames++;
    }
    if (rc == 0 && errno)
        rc = -1;
    int saved = errno;
    closedir(d);
    errno = saved;
    if (rc < 0) {
        free(names.p);
        return -1;
    }
    /* sort: an array of pointers, then the names again in order */
    char **v = malloc((j->nnames ? j->nnames : 1) * sizeof *v);
    char *sorted = malloc(names.len ? names.len : 1);
    if (!v || !sorted) {
        free(v);
        free(sorted);
        free(names.p);
        return errno = ENOMEM, -1;
    }
    char *p = names.p;
    for (size_t i = 0; i < j->nnames; i++, p += strlen(p) + 1)
        v[i] = p;
    qsort(v, j->nnames, sizeof *v, cmpnames);
    size_t at = 0;
    for (size_t i = 0; i < j->nnames; i++) {
        size_t n = strlen(v[i]) + 1;
        memcpy(sorted + at, v[i], n);
        at += n;
    }
    free(v);
    free(names.p);
    j->out = sorted;
    j->outlen = at;
    return 0;
}

static void
fs_run(struct lasio_job *job, struct lasio_worker *w) {
    struct fs_job *j = (struct fs_job *)job;
    int r = 0, fd;
    (void)w;
    switch (j->op) {
    case OP_READFILE:
        fd = open(j->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            r = -1;
            break;
        }
        if ((r = read_all(j, fd)) < 0)
            j->errop = "read";
        {
            int saved = errno;
            close(fd);
            errno = saved;
        }
        break;
    case OP_WRITEFILE:
        fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            r = -1;
            break;
        }
        r = write_all(fd, j->data, j->len);
        if (r < 0)
            j->errop = "write";
        if (close(fd) < 0 && r == 0) {
            r = -1;
            j->errop = "close";
        }
        break;
    case OP_STAT:
        r = stat(j->path, &j->st);
        break;
    case OP_LSTAT:
        r = lstat(j->path, &j->st);
        break;
    case OP_LISTDIR:
        r = list(j);
        break;
    case OP_MKDIR:
        r = mkdir(j->path, (mode_t)j->mode);
        break;
    case OP_REMOVE:
        r = remove(j->path);
        break;
    case OP_RENAME:
        r = rename(j->path, j->path2);
        break;
    case OP_OPEN:
        j->fd = open(j->path, j->flags | O_CLOEXEC, 0666);
        r = j->fd < 0 ? -1 : 0;
        break;
    case OP_FREAD:
        j->out = malloc(j->len);
        if (!j->out) {
            errno = ENOMEM;
            r = -1;
            break;
        }
        do {
            ssize_t n = read(j->fd, j->out, j->len);
            r = n < 0 ? -1 : 0;
            if (n >= 0)
                j->outlen = (size_t)n;
        } while (r < 0 && errno == EINTR);
        break;
    case OP_FWRITE:
        r = write_all(j->fd, j->data, j->len);
        break;
    }
    j->err = r < 0 ? errno : 0;
}

/* ====== } */

/* {====== On the loop ====== */

static void
push_stat(lua_State *L, const struct stat *st) {
    lua_createtable(L, 0, 11);
    lua_pushinteger(L, (lua_Integer)st->st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushnumber(L, (lua_Number)st->st_mtim.tv_sec +
                          (lua_Number)st->st_mtim.tv_nsec * 1e-9);
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, (lua_Number)st->st_atim.tv_sec +
                          (lua_Number)st->st_atim.tv_nsec * 1e-9);
    lua_setfield(L, -2, "atime");
    lua_pushnumber(L, (lua_Number)st->st_ctim.tv_sec +
                          (lua_Number)st->st_ctim.tv_nsec * 1e-9);
    lua_setfield(L, -2, "ctime");
    lua_pushstring(L, S_ISREG(st->st_mode)   ? "file"
                      : S_ISDIR(st->st_mode) ? "directory"
                      : S_ISLNK(st->st_mode) ? "link"
                                             : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st->st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, (lua_Integer)st->st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st->st_nlink);
    lua_setfield(L, -2, "nlink");
    lua_pushinteger(L, (lua_Integer)st->st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st->st_gid);
    lua_setfield(L, -2, "gid");
}

static struct lasio_file *newfile(lua_State *L);

static int
fs_deliver(lua_State *L, struct lasio_job *job, int anchor) {
    struct fs_job *j = (struct fs_job *)job;
    (void)anchor;
    if (j->err) {
        lua_pushnil(L); /* no traceback: made in C */
        lasio_sys_oserror_(L, j->errop ? j->errop : op_names[j->op], j->err,
                           j->path);
        return -1;
    }
    switch (j->op) {
    case OP_READFILE:
    case OP_FREAD:
        lua_pushlstring(L, j->out ? j->out : "", j->outlen);
        return 1;
    case OP_STAT:
    case OP_LSTAT:
        push_stat(L, &j->st);
        return 1;
    case OP_LISTDIR: {
        lua_createtable(L, (int)j->nnames, 0);
        const char *p = j->out;
        for (size_t i = 0; i < j->nnames; i++, p += strlen(p) + 1) {
            lua_pushstring(L, p);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    }
    case OP_OPEN: {
        struct lasio_file *f = newfile(L);
        f->fd = j->fd; /* the File owns it now */
        j->fd = -1;
        return 1;
    }
    case OP_FWRITE:
        return 0;
    default:
        lua_pushboolean(L, 1);
        return 1;
    }
}

static void
fs_free(struct lasio_job *job) {
    struct fs_job *j = (struct fs_job *)job;
    if (j->op == OP_OPEN && j->fd >= 0) /* opened for a cancelled task */
        close(j->fd);
    if (j->file) { /* the file's operation is over */
        j->file->inflight = 0;
        if (j->file->closed && j->file->fd >= 0) {
            close(j->file->fd);
            j->file->fd = -1;
        }
    }
    free(j->path);
    free(j->path2);
    free(j->out);
    free(j);
}

static const struct lasio_jobtype fs_type = {fs_run, fs_deliver, fs_free};

/* Makes a job in a box: [-0, +1, m] */
static struct fs_job *
newjob(lua_State *L, int op, const char *path, const char *path2,
       struct lasio_job ***boxp) {
    struct lasio_job **box = lasio_pool_box_(L);
    struct fs_job *j = calloc(1, sizeof *j);
    if (!j)
        luaL_error(L, "not enough memory");
    j->head.type = &fs_type;
    j->op = op;
    j->fd = -1;
    *box = &j->head;
    if ((path && !(j->path = strdup(path))) ||
        (path2 && !(j->path2 = strdup(path2))))
        luaL_error(L, "not enough memory");
    *boxp = box;
    return j;
}

/* Runs a path operation: fs.<name>(path [, path2]) */
static int
path_op(lua_State *L, int op, const char *what) {
    const char *path = luaL_checkstring(L, 1);
    const char *path2 = op == OP_RENAME ? luaL_checkstring(L, 2) : NULL;
    int mode = op == OP_MKDIR ? (int)luaL_optinteger(L, 2, 0777) : 0;
    lua_settop(L, op == OP_RENAME ? 2 : 1);
    struct lasio_job **box;
    struct fs_job *j = newjob(L, op, path, path2, &box);
    j->mode = mode;
    return lasio_pool_submit_(L, box, 0, what);
}

static int
fs_read_file(lua_State *L) {
    return path_op(L, OP_READFILE, "lasio.fs.read_file");
}

static int
fs_stat(lua_State *L) {
    return path_op(L, OP_STAT, "lasio.fs.stat");
}

static int
fs_lstat(lua_State *L) {
    return path_op(L, OP_LSTAT, "lasio.fs.lstat");
}

static int
fs_listdir(lua_State *L) {
    return path_op(L, OP_LISTDIR, "lasio.fs.listdir");
}

static int
fs_mkdir(lua_State *L) {
    return path_op(L, OP_MKDIR, "lasio.fs.mkdir");
}

static int
fs_remove(lua_State *L) {
    return path_op(L, OP_REMOVE, "lasio.fs.remove");
}

static int
fs_rename(lua_State *L) {
    return path_op(L, OP_RENAME, "lasio.fs.rename");
}

/* fs.write_file(path, data) */
static int
fs_write_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_settop(L, 2);
    struct lasio_job **box;
    struct fs_job *j = newjob(L, OP_WRITEFILE, path, NULL, &box);
    j->data = data; /* the string is kept alive in the anchor table */
    j->len = len;
    lua_pushvalue(L, 2);
    return lasio_pool_submit_(L, box, 1, "lasio.fs.write_file");
}

/* fs.open(path [, mode]): mode as io.open's ("r", "w", "a", "r+", "w+",
 * "a+", with an optional "b"), and "x" for exclusive creation. */
static int
fs_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    int flags;
    const char *m = mode;
    switch (*m++) {
    case 'r':
        flags = O_RDONLY;
        break;
    case 'w':
        flags = O_WRONLY | O_CREAT | O_TRUNC;
        break;
    case 'a':
        flags = O_WRONLY | O_CREAT | O_APPEND;
        break;
    case 'x':
        flags = O_WRONLY | O_CREAT | O_EXCL;
        break;
    default:
        return luaL_argerror(L, 2, "invalid mode");
    }
    if (*m == '+') {
        flags = (flags & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
        m++;
    }
    if (*m == 'b')
        m++;
    if (*m)
        return luaL_argerror(L, 2, "invalid mode");
    lua_settop(L, 1);
    struct lasio_job **box;
    struct fs_job *j = newjob(L, OP_OPEN, path, NULL, &box);
    j->flags = flags;
    return lasio_pool_submit_(L, box, 0, "lasio.fs.open");
}

/* ====== } */

/* {====== File ====== */

static struct lasio_file *
newfile(lua_State *L) {
    struct lasio_file *f = lua_newuserdatauv(L, sizeof *f, 0);
    memset(f, 0, sizeof *f);
    f->fd = -1;
    luaL_setmetatable(L, LASIO_FILE_MT);
    return f;
}

static struct lasio_file *
checkfile(lua_State *L, int idx, const char *what) {
    struct lasio_file *f = luaL_checkudata(L, idx, LASIO_FILE_MT);
    if (f->closed)
        luaL_error(L, "%s: attempt to use a closed file", what);
    if (f->inflight)
        luaL_error(L, "%s: another operation is in progress on this file",
                   what);
    return f;
}

/* Submits a job on the file at idx 1 (anchored with it). */
static int
file_job(lua_State *L, struct lasio_file *f, int op, const char *data,
         size_t len, const char *what) {
    struct lasio_job **box;
    struct fs_job *j = newjob(L, op, NULL, NULL, &box);
    j->fd = f->fd;
    j->data = data;
    j->len = len;        /* the data's length, or the read size */
    lua_pushvalue(L, 1); /* the file and the data stay alive meanwhile */
    int nextra = 1;
    if (data) {
        lua_pushvalue(L, 2);
        nextra = 2;
    }
    f->inflight = 1;
    j->file = f; /* fs_free clears inflight */
    return lasio_pool_submit_(L, box, nextra, what);
}

/* Drops the read-ahead, moving the fd back to the logical position. */
static void
unread(struct lasio_file *f) {
    if (f->len > 0)
        lseek(f->fd, -(off_t)f->len, SEEK_CUR);
    f->off = f->len = 0;
    f->eof = 0;
}

static int
buf_append(lua_State *L, struct lasio_file *f, const char *p, size_t n) {
    if (f->off > 0) {
        memmove(f->buf, f->buf + f->off, f->len);
        f->off = 0;
    }
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : CHUNK;
        while (cap < f->len + n)
            cap *= 2;
        char *nb = realloc(f->buf, cap);
        if (!nb)
            return luaL_error(L, "not enough memory");
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

static void
consume(lua_State *L, struct lasio_file *f, size_t n, size_t skip) {
    lua_pushlstring(L, f->buf + f->off, n);
    f->off += n + skip;
    f->len -= n + skip;
}

/* Tries one format (at idx) from the buffer: 1 pushed, 0 needs more. */
static int
try_format(lua_State *L, struct lasio_file *f, int idx) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
        size_t n = (size_t)lua_tointeger(L, idx);
        if (f->len >= n || (f->eof && f->len > 0)) {
            consume(L, f, f->len < n ? f->len : n, 0);
            return 1;
        }
        if (f->eof || n == 0) {
            if (n == 0)
                lua_pushliteral(L, "");
            else
                lua_pushnil(L);
            return 1;
        }
        return 0;
    }
    const char *fmt = lua_tostring(L, idx);
    if (*fmt == '*')
        fmt++;
    if (*fmt == 'a') {
        if (!f->eof)
            return 0;
        consume(L, f, f->len, 0);
        return 1;
    }
    const char *nl = f->len ? memchr(f->buf + f->off, '\n', f->len) : NULL;
    if (nl) {
        size_t n = (size_t)(nl - (f->buf + f->off));
        if (*fmt == 'L')
            consume(L, f, n + 1, 0);
        else
            consume(L, f, n, 1);
        return 1;
    }
    if (!f->eof)
        return 0;
    if (f->len == 0)
        lua_pushnil(L);
    else
        consume(L, f, f->len, 0);
    return 1;
}

/* The C function awaited for one more chunk: stack 1 = the file. */
static int
fill_chunk(lua_State *L) {
    struct lasio_file *f = lua_touserdata(L, 1);
    if (f->closed)
        return luaL_error(L, "read: the file was closed");
    return file_job(L, f, OP_FREAD, NULL, CHUNK, "read");
}

/* Continuation of file:read: stack 1 = file, 2.. formats, then the
 * results so far; ctx = the number of formats. */
static int
read_k(lua_State *L, int status, lua_KContext ctx) {
    struct lasio_file *f = lua_touserdata(L, 1);
    int nfmt = (int)ctx;
    if (status == LUA_YIELD || status == LUA_OK + 100) {
        /* a chunk arrived (on top): into the buffer */
        size_t n;
        const char *p = lua_tolstring(L, -1, &n);
        if (n == 0)
            f->eof = 1;
        else
            buf_append(L, f, p, n);
        lua_pop(L, 1);
    }
    for (;;) {
        int done = lua_gettop(L) - 1 - nfmt;
        if (done == nfmt)
            return nfmt;
        luaL_checkstack(L, 4, NULL);
        if (try_format(L, f, 2 + done)) {
            if (lua_isnil(L, -1)) { /* as io: nothing after a nil */
                for (int i = done + 1; i < nfmt; i++)
                    lua_pushnil(L);
                return nfmt;
            }
            continue;
        }
        lua_pushcfunction(L, fill_chunk);
        lua_pushvalue(L, 1);
        lua_callk(L, 1, 1, ctx, read_k);
        /* the chunk came back without a yield */
        return read_k(L, LUA_OK + 100, ctx);
    }
}

/* file:read(...): formats "a", "l", "L" or a byte count (default "l") */
static int
file_read(lua_State *L) {
    checkfile(L, 1, "read");
    int nfmt = lua_gettop(L) - 1;
    if (nfmt == 0) {
        lua_pushliteral(L, "l");
        nfmt = 1;
    }
    for (int i = 2; i <= nfmt + 1; i++) {
        if (lua_type(L, i) == LUA_TNUMBER) {
            luaL_argcheck(L, lua_isinteger(L, i) && lua_tointeger(L, i) >= 0, i,
                          "invalid count");
            continue;
        }
        lasio_checkargtype_(L, i, LUA_TSTRING, "file:read");
        const char *fmt = lua_tostring(L, i);
        if (*fmt == '*')
            fmt++;
        luaL_argcheck(L, *fmt == 'a' || *fmt == 'l' || *fmt == 'L', i,
                      "invalid format");
    }
    return read_k(L, LUA_OK, nfmt);
}

static int
write_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status, (void)ctx;
    lua_settop(L, 1);
    return 1;
}

/* The awaited part of file:write: stack 1 = file, 2 = data. */
static int
write_job(lua_State *L) {
    struct lasio_file *f = lua_touserdata(L, 1);
    size_t len;
    const char *data = lua_tolstring(L, 2, &len);
    return file_job(L, f, OP_FWRITE, data, len, "write");
}

/* file:write(...) -> file */
static int
file_write(lua_State *L) {
    struct lasio_file *f = checkfile(L, 1, "write");
    int n = lua_gettop(L) - 1;
    for (int i = 2; i <= n + 1; i++)
        lasio_checkargtype_(L, i, LUA_TSTRING, "file:write");
    for (int i = 2; i <= n + 1; i++)
        lua_tolstring(L, i, NULL); /* numbers become strings */
    if (n == 0)
        return 1;
    lua_concat(L, n);
    unread(f);
    lua_pushcfunction(L, write_job);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_callk(L, 2, 0, 0, write_k);
    return write_k(L, LUA_OK, 0);
}

/* file:seek([whence [, offset]]) -> position (inline: no disk access) */
static int
file_seek(lua_State *L) {
    static const int modes[] = {SEEK_SET, SEEK_CUR, SEEK_END};
    static const char *const names[] = {"set", "cur", "end", NULL};
    struct lasio_file *f = checkfile(L, 1, "seek");
    if (!lua_isnoneornil(L, 2))
        lasio_checkargtype_(L, 2, LUA_TSTRING, "file:seek");
    int op = luaL_checkoption(L, 2, "cur", names);
    lua_Integer off = luaL_optinteger(L, 3, 0);
    unread(f);
    off_t pos = lseek(f->fd, (off_t)off, modes[op]);
    if (pos < 0)
        return lasio_sys_raise_(L, "seek", errno, NULL);
    lua_pushinteger(L, (lua_Integer)pos);
    return 1;
}

static int
lines_k(lua_State *L, int status, lua_KContext ctx) {
    (void)L, (void)status, (void)ctx;
    return 1;
}

static int
lines_iter(lua_State *L) {
    lua_settop(L, 0);
    lua_pushcfunction(L, file_read);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_callk(L, 2, 1, 0, lines_k);
    return lines_k(L, LUA_OK, 0);
}

/* file:lines([fmt]) -> iterator */
static int
file_lines(lua_State *L) {
    checkfile(L, 1, "lines");
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
        lua_pushliteral(L, "l");
        lua_replace(L, 2);
    }
    lua_pushcclosure(L, lines_iter, 2);
    return 1;
}

/* file:close(): with a job in flight, the fd closes when it ends */
static int
file_close(lua_State *L) {
    struct lasio_file *f = luaL_checkudata(L, 1, LASIO_FILE_MT);
    if (f->closed)
        return 0;
    f->closed = 1;
    free(f->buf);
    f->buf = NULL;
    f->off = f->len = f->cap = 0;
    if (!f->inflight && f->fd >= 0) {
        int r = close(f->fd);
        f->fd = -1;
        if (r < 0)
            return lasio_sys_raise_(L, "close", errno, NULL);
    }
    return 0;
}

static int
file_gc(lua_State *L) {
    struct lasio_file *f = lua_touserdata(L, 1);
    /* anchored while a job runs: no job here, or the pool has gone */
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->closed = 1;
    free(f->buf);
    f->buf = NULL;
    return 0;
}

static int
file_tostring(lua_State *L) {
    struct lasio_file *f = luaL_checkudata(L, 1, LASIO_FILE_MT);
    if (f->closed)
        lua_pushliteral(L, "lasio.File<closed>");
    else
        lua_pushfstring(L, "lasio.File<fd=%d>", f->fd);
    return 1;
}

/* ====== } */

static const luaL_Reg file_methods[] = {
    {"read", file_read}, {"write", file_write}, {"lines", file_lines},
    {"seek", file_seek}, {"close", file_close}, {NULL, NULL}};

static const luaL_Reg fs_funcs[] = {
    {"read_file", fs_read_file}, {"write_file", fs_write_file},
    {"open", fs_open},           {"stat", fs_stat},
    {"lstat", fs_lstat},         {"listdir", fs_listdir},
    {"mkdir", fs_mkdir},         {"remove", fs_remove},
    {"rename", fs_rename},       {NULL, NULL}};

void
lasio_fs_open_(lua_State *L) {
    if (luaL_newmetatable(L, LASIO_FILE_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, file_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, file_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, file_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, file_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, fs_funcs, 0);
    lua_setfield(L, -2, "fs");
}
