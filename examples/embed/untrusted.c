/*
 * untrusted.c: a host that runs several untrusted scripts on one loop,
 * each in the sandbox and with budgets of its own, under one memory cap,
 * with forced yields so that a spinning script cannot stall the others
 * or the host's own timer task (docs/UNTRUSTED.md).
 * Usage: untrusted SCRIPT:INSTRUCTIONS:CPU_SECONDS:MEMORY_BYTES...
 * Build: cc untrusted.c $(pkg-config --cflags --libs lasio)
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include <lasio.h>

#define MEMORY_CAP (64u << 20) /* the whole state: host and scripts */

/* The host's own part, trusted: a ticker whose lateness shows that the
 * scripts never stall the loop, then the outcome of every script. The
 * error objects are read by their fields only: tostring of an untrusted
 * value could run the script's code outside its budget. */
static const char host_main[] =
    "local jobs = ...\n"
    "local ticks, late = 0, 0\n"
    "local ticker = lasio.spawn(function()\n"
    "    for _ = 1, 20 do\n"
    "        local t0 = lasio.time()\n"
    "        lasio.sleep(0.01)\n"
    "        late = math.max(late, lasio.time() - t0 - 0.01)\n"
    "        ticks = ticks + 1\n"
    "    end\n"
    "end)\n"
    "for _, job in ipairs(jobs) do\n"
    "    local ok, e = pcall(job.task.await, job.task)\n"
    "    local what\n"
    "    if ok then what = 'returned ' .. (math.type(e) and e or type(e))\n"
    "    elseif lasio.BudgetExceeded:is(e) then\n"
    "        what = 'stopped by its ' .. rawget(e, 'budget') .. ' budget'\n"
    "    elseif type(e) == 'string' then what = 'failed: ' .. e\n"
    "    else what = 'failed with a ' .. type(e) end\n"
    "    print(job.name .. ': ' .. what)\n"
    "end\n"
    "ticker:await()\n"
    "print(('ticker: %d ticks, on time: %s'):format(ticks,\n"
    "    late < 0.5 and 'yes' or ('no, ' .. late .. ' s late')))\n";

/* Reads a whole file into a malloc'd buffer. */
static char *
slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            char *b = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* Spawns the script of spec "path:instructions:cpu:memory" as a task with
 * those budgets and appends {name=, task=} to the jobs table on top. */
static int
add_job(lua_State *L, const char *spec) {
    char path[512];
    long long instructions;
    double cpu, memory;
    if (sscanf(spec, "%511[^:]:%lld:%lf:%lf", path, &instructions, &cpu,
               &memory) != 4) {
        fprintf(stderr, "untrusted: bad job '%s'\n", spec);
        return 0;
    }
    size_t len;
    char *src = slurp(path, &len);
    if (!src) {
        fprintf(stderr, "untrusted: cannot read %s\n", path);
        return 0;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char chunkname[600];
    snprintf(chunkname, sizeof chunkname, "=%s", name);
    /* the sandbox without lasio's I/O, print capped at 4 KiB */
    int st = lasio_load_sandboxed(L, src, len, chunkname, 0, 4096);
    free(src);
    if (st == LASIO_OK)
        st = lasio_task_spawn(L, 0);
    if (st != LASIO_OK) {
        fprintf(stderr, "untrusted: %s: %s\n", name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    /* task:set_budget{instructions=, cpu=, memory=} */
    lua_getfield(L, -1, "set_budget");
    lua_pushvalue(L, -2);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, instructions);
    lua_setfield(L, -2, "instructions");
    lua_pushnumber(L, cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushnumber(L, memory);
    lua_setfield(L, -2, "memory");
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "untrusted: %s: %s\n", name, lua_tostring(L, -1));
        lua_pop(L, 2);
        return 0;
    }
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "task");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 1;
}

int
main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: untrusted SCRIPT:INSTRUCTIONS:CPU:MEMORY...\n");
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L)
        return 1;
    luaL_openlibs(L);
    int ok = lasio_open(L, NULL) == LASIO_OK &&
             luaL_dostring(L, "lasio = require 'lasio'") == LUA_OK &&
             lasio_set_memory_limit(L, MEMORY_CAP) == LASIO_OK &&
             lasio_set_forced_yield(L, 10000) == LASIO_OK &&
             lasio_set_caps(L, 100, 100) == LASIO_OK;
    if (!ok) {
        fprintf(stderr, "untrusted: cannot set up the state\n");
        lua_close(L);
        return 1;
    }
    if (luaL_loadstring(L, host_main) != LUA_OK) {
        fprintf(stderr, "untrusted: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_newtable(L); /* the jobs: the main chunk's argument */
    for (int i = 1; i < argc; i++)
        if (!add_job(L, argv[i])) {
            lua_close(L);
            return 1;
        }
    int status = lasio_run(L, 1, 0);
    if (status != LASIO_OK) {
        fprintf(stderr, "untrusted: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    size_t used, peak;
    if (lasio_memory_usage(L, &used, &peak) == LASIO_OK)
        printf("memory: peak under the cap: %s\n",
               peak <= MEMORY_CAP ? "yes" : "no");
    lasio_close(L);
    lua_close(L);
    return status == LASIO_OK ? 0 : 1;
}
