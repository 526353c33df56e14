/*
 * oom_test.c: the allocation-failure sweep (E4). Lua's, libevent's and
 * lasio's own allocations (-Wl,--wrap) are counted; each scenario runs with
 * the N-th failing, N = 1, 2, ... until a run needs fewer. Every run ends
 * cleanly, leaves no live block, never crashes or hangs. oom_test [NAME]
 * SPDX-License-Identifier: MIT
 */
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"

/* {====== Counting and failing ====== */

/* The C library's functions, behind the -Wl,--wrap ones below. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long nallocs;    /* allocations so far in this run */
static long fail_at;    /* the allocation that fails (0: none) */
static int failed_once; /* the failure was injected */
static long live_lua;   /* bytes Lua holds */
static long live_event; /* blocks libevent holds */
static long live_lasio; /* blocks lasio holds (malloc & co) */
static int counting;    /* only while a scenario runs */

/* Counts one allocation; returns 1 when it must fail. */
static int
should_fail(void) {
    int fail = 0;
    pthread_mutex_lock(&count_lock);
    if (counting && ++nallocs == fail_at) {
        fail = 1;
        failed_once = 1;
    }
    pthread_mutex_unlock(&count_lock);
    if (fail && getenv("OOM_TEST_VERBOSE")) { /* where it failed */
        void *frames[16];
        backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
    }
    return fail;
}

static void
add_live(long *counter, long delta) {
    pthread_mutex_lock(&count_lock);
    *counter += delta;
    pthread_mutex_unlock(&count_lock);
}

static void *
lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    if (!ptr)
        osize = 0;
    if (nsize == 0) {
        __real_free(ptr);
        add_live(&live_lua, -(long)osize);
        return NULL;
    }
    /* Lua assumes that shrinking never fails */
    if (nsize > osize && should_fail())
        return NULL;
    void *n = __real_realloc(ptr, nsize);
    if (n)
        add_live(&live_lua, (long)nsize - (long)osize);
    return n;
}

/* libevent's blocks carry a header: was the block counted? */
#define HDR 16
static void *
ev_malloc(size_t n) {
    if (should_fail())
        return NULL;
    char *p = __real_malloc(n + HDR);
    if (!p)
        return NULL;
    pthread_mutex_lock(&count_lock);
    p[0] = (char)counting;
    live_event += counting;
    pthread_mutex_unlock(&count_lock);
    return p + HDR;
}

static void *
ev_realloc(void *p, size_t n) {
    if (!p)
        return ev_malloc(n);
    if (should_fail())
        return NULL;
    char *q = __real_realloc((char *)p - HDR, n + HDR);
    return q ? q + HDR : NULL;
}

static void
ev_free(void *p) {
    if (!p)
        return;
    char *h = (char *)p - HDR;
    if (h[0])
        add_live(&live_event, -1);
    __real_free(h);
}

/* lasio's own blocks: a set of live pointers (a block lasio frees may
 * come from libc itself, which is not wrapped). */
#define SET_SIZE (1 << 20)
static void *live_set[SET_SIZE];

static size_t
slot_of(void *p) {
    return ((uintptr_t)p >> 4) * 2654435761u & (SET_SIZE - 1);
}

static void
set_add(void *p) {
    pthread_mutex_lock(&count_lock);
    size_t i = slot_of(p);
    while (live_set[i] && live_set[i] != (void *)1)
        i = (i + 1) & (SET_SIZE - 1);
    live_set[i] = p;
    live_lasio++;
    pthread_mutex_unlock(&count_lock);
}

static void
set_remove(void *p) {
    pthread_mutex_lock(&count_lock);
    size_t i = slot_of(p);
    while (live_set[i]) {
        if (live_set[i] == p) {
            live_set[i] = (void *)1; /* a tombstone */
            live_lasio--;
            break;
        }
        i = (i + 1) & (SET_SIZE - 1);
    }
    pthread_mutex_unlock(&count_lock);
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);

void *
__wrap_malloc(size_t n) {
    if (should_fail())
        return NULL;
    void *p = __real_malloc(n);
    if (p && counting)
        set_add(p);
    return p;
}

void *
__wrap_calloc(size_t n, size_t m) {
    if (should_fail())
        return NULL;
    void *p = __real_calloc(n, m);
    if (p && counting)
        set_add(p);
    return p;
}

void *
__wrap_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    void *q = __real_realloc(p, n);
    if (q) {
        if (p)
            set_remove(p);
        if (counting)
            set_add(q);
    }
    return q;
}

void
__wrap_free(void *p) {
    if (p)
        set_remove(p);
    __real_free(p);
}

char *
__wrap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ====== } */

/* {====== Scenarios ====== */

/* What a scenario reached: every step it needs succeeded? */
static int completed;

static int
openlibs(lua_State *L) {
    luaL_openlibs(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lasio");
    lua_call(L, 1, 1);
    lua_setglobal(L, "lasio");
    return 0;
}

/* A state with lasio open (NULL when a step failed cleanly). */
static lua_State *
open_state(struct event_base *base) {
    lua_State *L = lua_newstate(lua_alloc, NULL);
    if (!L)
        return NULL;
    if (lasio_open(L, base) != LASIO_OK) {
        lua_close(L);
        return NULL;
    }
    lua_pushcfunction(L, openlibs);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        return NULL;
    }
    return L;
}

static void
sc_open(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st = lasio_close(L);
    lua_close(L);
    completed = st == LASIO_OK;
}

static const char run_script[] =
    "local loop = lasio.get_running_loop()\n"
    "local f = lasio.Future()\n"
    "loop:call_later(0.002, function() f:set_result(40) end)\n"
    "local t = lasio.spawn(function(x) lasio.sleep(0.001) return x end, 2)\n"
    "local slow = lasio.spawn(function() lasio.sleep(10) end)\n"
    "local ok = pcall(lasio.wait_for, slow, 0.001)\n"
    "assert(not ok)\n"
    "local bad = lasio.spawn(function() error('e') end)\n"
    "local r = lasio.gather(f, t)\n"
    "assert(not pcall(bad.result, bad))\n"
    "local q = lasio.Queue()\n"
    "lasio.spawn(function() q:put(1) end)\n"
    "return r + t:result() + q:get() - 1\n";

static void
sc_run(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st = luaL_loadstring(L, run_script);
    if (st == LUA_OK)
        st = lasio_run(L, 0, 1);
    int ok = st == LASIO_OK && lua_tointeger(L, -1) == 42;
    lua_close(L);
    completed = ok;
}

static void
sc_step(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st = luaL_loadstring(L, "local n = 0\n"
                                "for i = 1, 5 do lasio.spawn(function() "
                                "lasio.sleep(0.001 * i) n = n + i end) end\n"
                                "lasio.sleep(0.01)\n"
                                "return n");
    if (st == LUA_OK)
        st = lasio_task_spawn(L, 0);
    int pending = 1;
    for (int i = 0; st == LASIO_OK && pending > 0 && i < 100000; i++)
        pending = lasio_step(L);
    int ok = 0;
    if (st == LASIO_OK && pending == 0 &&
        luaL_dostring(L, "return ...") == LUA_OK) {
        lua_getfield(L, 1, "result");
        lua_pushvalue(L, 1);
        ok = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_tointeger(L, -1) == 15;
    }
    lua_close(L);
    completed = ok;
}

/* C Futures: a host timer resolves one through a pin, a thread another
 * through lasio_pin_post, an async C function returns a third. */
struct later {
    struct event *ev;
    lasio_pin *pin;
    lua_State *L;
};

static void
later_cb(evutil_socket_t fd, short what, void *arg) {
    struct later *l = arg;
    (void)fd, (void)what;
    lua_pushinteger(l->L, 20);
    lasio_pin_resolve(l->L, l->pin, 1);
    lasio_future_unpin(l->pin);
    event_free(l->ev);
    free(l);
}

static lua_State *
mainthread(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *M = lua_tothread(L, -1);
    lua_pop(L, 1);
    return M;
}

static int
c_later(lua_State *L) {
    struct later *l = malloc(sizeof *l);
    if (!l)
        return luaL_error(L, "no memory for later");
    if (lasio_future_new(L) != LASIO_OK) {
        free(l);
        return lua_error(L);
    }
    l->pin = lasio_future_pin(L, -1);
    l->ev = l->pin ? evtimer_new(lasio_get_base(L), later_cb, l) : NULL;
    if (!l->ev) {
        lasio_future_unpin(l->pin);
        free(l);
        return luaL_error(L, "cannot pin or make the timer");
    }
    l->L = mainthread(L);
    struct timeval tv = {0, 1000};
    if (evtimer_add(l->ev, &tv) < 0) { /* else nothing would resolve it */
        event_free(l->ev);
        lasio_future_unpin(l->pin);
        free(l);
        return luaL_error(L, "cannot add the timer");
    }
    return 1;
}

static void
posted(lua_State *L, lasio_pin *pin, void *ud) {
    (void)ud;
    lasio_future_unpin(pin);
    if (L) {
        lua_pushinteger(L, 20);
        lasio_pin_resolve(L, pin, 1);
    }
}

static void *
poster(void *arg) {
    lasio_pin *pin = arg;
    usleep(500);
    if (lasio_pin_post(pin, posted, NULL) != LASIO_OK)
        lasio_future_unpin(pin); /* loop closed: the pin is detached */
    return NULL;
}

static int
c_thread(lua_State *L) {
    if (lasio_future_new(L) != LASIO_OK)
        return lua_error(L);
    lasio_pin *pin = lasio_future_pin(L, -1);
    if (!pin)
        return luaL_error(L, "cannot pin");
    pthread_t th;
    if (pthread_create(&th, NULL, poster, pin) != 0) {
        lasio_future_unpin(pin);
        return luaL_error(L, "cannot start a thread");
    }
    pthread_join(th, NULL); /* posted, not run: the loop runs it */
    return 1;
}

static int
c_value(lua_State *L) {
    lua_pushinteger(L, 2);
    return 1;
}

static const luaL_Reg cfuncs[] = {
    {"later", c_later}, {"thread", c_thread}, {"value", c_value}, {NULL, NULL}};

static void
sc_cfuture(void) {
    struct event_base *base = event_base_new();
    if (!base)
        return;
    lua_State *L = open_state(base);
    if (!L) {
        event_base_free(base);
        return;
    }
    int st = LUA_ERRMEM;
    if (lua_checkstack(L, 2)) {
        lua_createtable(L, 0, 0); /* cannot fail: the stack has room... */
        st = lasio_async_register(L, cfuncs, 0);
        if (st == LASIO_OK)
            lua_setglobal(L, "host");
    }
    if (st == LASIO_OK)
        st = luaL_loadstring(L, "return host.later() + host.thread() + "
                                "host.value()");
    if (st == LASIO_OK)
        st = lasio_run(L, 0, 1);
    int ok = st == LASIO_OK && lua_tointeger(L, -1) == 42;
    lua_close(L);
    event_base_free(base);
    completed = ok;
}

static void
nop(lua_State *L, lasio_pin *pin, void *ud) {
    (void)L, (void)ud;
    lasio_future_unpin(pin);
}

/* Pending work of every kind left behind, then lasio_close, lua_close. */
static void
sc_close(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st = luaL_loadstring(L, "for i = 1, 3 do lasio.spawn(function() "
                                "lasio.sleep(i) end) end\n"
                                "lasio.get_running_loop():call_later(5, "
                                "print)\n"
                                "local f = lasio.Future()\n"
                                "lasio.spawn(function() f:await() end)\n"
                                "lasio.sleep(0)\n"
                                "return f");
    if (st == LUA_OK)
        st = lasio_run(L, 0, 1);
    lasio_pin *pin = st == LASIO_OK ? lasio_future_pin(L, -1) : NULL;
    if (pin && lasio_pin_post(pin, nop, NULL) != LASIO_OK)
        lasio_future_unpin(pin);
    int cst = lasio_close(L);
    lua_close(L);
    completed = st == LASIO_OK && pin && cst == LASIO_OK;
}

/* The library as stock Lua uses it: lasio.run and hand-driven loops, each
 * on an event_base of its own (made and freed under the failures too). */
static void
sc_module(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st =
        luaL_dostring(L, "local r = lasio.run(function(x)\n"
                         "    local t = lasio.spawn(lasio.sleep, 0.001, x)\n"
                         "    return t:await() + 1\n"
                         "end, 1)\n"
                         "local loop = lasio.new_event_loop()\n"
                         "local v = loop:run_until_complete(function()\n"
                         "    lasio.sleep(0.001) return 40 end)\n"
                         "loop:call_soon(function() loop:stop() end)\n"
                         "loop:run_forever()\n"
                         "loop:close()\n"
                         "return r + v");
    int ok = st == LUA_OK && lua_tointeger(L, -1) == 42;
    lua_close(L);
    completed = ok;
}

static int
c_stop(lua_State *L) {
    event_base_loopbreak(lasio_get_base(L));
    return 0;
}

/* A host's own dispatch runs the tasks; a C Future resolved by a host
 * timer; lua_close from a host callback while tasks are pending. */
static void
sc_dispatch(void) {
    struct event_base *base = event_base_new();
    if (!base)
        return;
    lua_State *L = open_state(base);
    if (!L) {
        event_base_free(base);
        return;
    }
    int st = LUA_ERRMEM;
    if (lua_checkstack(L, 3)) {
        lua_createtable(L, 0, 0);
        lua_pushcfunction(L, c_stop);
        lua_setfield(L, -2, "stop");
        st = lasio_async_register(L, cfuncs, 0);
        if (st == LASIO_OK)
            lua_setglobal(L, "host");
    }
    if (st == LASIO_OK)
        st = luaL_loadstring(L, "lasio.spawn(function() lasio.sleep(5) end)\n"
                                "result = host.later() + host.value()\n"
                                "host.stop()");
    if (st == LASIO_OK)
        st = lasio_task_spawn(L, 0);
    if (st == LASIO_OK) {
        /* until host.stop(), or this deadline when the task failed (the
         * loop's wake-up event keeps the dispatch going meanwhile) */
        struct timeval tv = {0, 200000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    int ok = 0;
    if (st == LASIO_OK) {
        lua_getglobal(L, "result");
        ok = lua_tointeger(L, -1) == 22;
    }
    lua_close(L);
    event_base_free(base);
    completed = ok;
}

/* A capped state: memory cap, forced yields, caps, a task budget, a
 * sandboxed chunk; a task that runs into the cap and one past its
 * budget fail, the rest completes. */
static const char capped_script[] =
    "local spin = lasio.spawn(function() local n = 0\n"
    "  for i = 1, 20000 do n = n + i end return n end)\n"
    "local bomb = lasio.spawn(function() local s = 'x'\n"
    "  while true do s = s .. s end end)\n"
    "local over = lasio.spawn(function() while true do end end)\n"
    "over:set_budget{instructions = 5000}\n"
    "local ok1 = pcall(bomb.result, (pcall(lasio.wait, {bomb}) and bomb))\n"
    "local ok2, e = pcall(lasio.wait_for, over, 5)\n"
    "assert(not ok1 and not ok2 and lasio.BudgetExceeded:is(e))\n"
    "local f = assert(load('return lasio.sleep(0) or 1', 'c', 't', sandbox))\n"
    "return spin:await() + lasio.spawn(f):await()\n";

static void
sc_capped(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    int st = lasio_set_memory_limit(L, 4u << 20);
    if (st == LASIO_OK)
        st = lasio_set_forced_yield(L, 1000);
    if (st == LASIO_OK)
        st = lasio_set_caps(L, 50, 50);
    if (st == LASIO_OK) {
        st = lasio_sandbox_env(L, 0, 100);
        if (st == LASIO_OK)
            lua_setglobal(L, "sandbox");
        else
            lua_pop(L, 1);
    }
    if (st == LASIO_OK)
        st = luaL_loadstring(L, capped_script);
    if (st == LASIO_OK)
        st = lasio_run(L, 0, 1);
    size_t used = 0, peak = 0;
    int ok = st == LASIO_OK && lua_tointeger(L, -1) == 200010001 &&
             lasio_memory_usage(L, &used, &peak) == LASIO_OK &&
             peak <= (4u << 20);
    lua_close(L);
    completed = ok;
}

/* The trace: a sink, a recording to a file, user events. */
static const char trace_script[] =
    "local path = os.tmpname() .. '.json'\n"
    "lasio.trace.start(path, {stacks = true})\n"
    "local t = lasio.spawn(function() lasio.sleep(0.001) return 1 end)\n"
    "t:set_name('sleeper')\n"
    "do local _ <close> = lasio.trace.region('r', {k = 'v'})\n"
    "  lasio.trace.mark('m', {1, 2}) lasio.trace.counter('c', 0.5) end\n"
    "local q = lasio.Queue()\n"
    "lasio.spawn(function() q:put(lasio.await(t)) end)\n"
    "local v = q:get()\n"
    "lasio.trace.stop()\n"
    "os.remove(path)\n"
    "return v\n";

static int sink_events;

static void
count_event(void *ud, const struct lasio_trace_event *ev) {
    (void)ud, (void)ev;
    sink_events++;
}

static void
sc_trace(void) {
    lua_State *L = open_state(NULL);
    if (!L)
        return;
    sink_events = 0;
    int st = lasio_trace_set_sink(L, count_event, NULL);
    if (st == LASIO_OK)
        st = luaL_loadstring(L, trace_script);
    if (st == LASIO_OK)
        st = lasio_run(L, 0, 1);
    int ok = st == LASIO_OK && lua_tointeger(L, -1) == 1;
    lua_close(L);
    completed = ok && sink_events > 0;
}

/* ====== } */

static volatile long current_n;

static void
on_alarm(int sig) {
    (void)sig;
    char msg[64] = "oom_test: a run hangs, N=", *p = msg + strlen(msg);
    char digits[24];
    int k = 0;
    long n = current_n;
    do
        digits[k++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    while (k > 0)
        *p++ = digits[--k];
    *p++ = '\n';
    ssize_t r = write(1, msg, (size_t)(p - msg));
    (void)r;
    abort();
}

static const struct {
    const char *name;
    void (*fn)(void);
} scenarios[] = {{"open", sc_open},     {"run", sc_run},
                 {"step", sc_step},     {"cfuture", sc_cfuture},
                 {"close", sc_close},   {"dispatch", sc_dispatch},
                 {"module", sc_module}, {"capped", sc_capped},
                 {"trace", sc_trace},   {NULL, NULL}};

/* Runs fn with the N-th allocation failing; returns 1 when it needed
 * fewer than N allocations (the sweep is over). */
static int
one_run(const char *name, void (*fn)(void), long n) {
    pthread_mutex_lock(&count_lock);
    nallocs = 0;
    fail_at = n;
    failed_once = 0;
    completed = 0;
    live_lua = live_event = live_lasio = 0;
    counting = 1;
    pthread_mutex_unlock(&count_lock);
    current_n = n;
    alarm(30);
    fn();
    alarm(0);
    pthread_mutex_lock(&count_lock);
    counting = 0;
    long lua = live_lua, ev = live_event, own = live_lasio;
    int injected = failed_once;
    pthread_mutex_unlock(&count_lock);
    if (lua || ev || own) {
        printf("%s, N=%ld: leak: %ld Lua bytes, %ld libevent blocks, "
               "%ld lasio blocks\n",
               name, n, lua, ev, own);
        harness_failures++;
    }
    if (!injected && !completed) {
        printf("%s, N=%ld: no failure injected, yet it did not complete\n",
               name, n);
        harness_failures++;
    }
    return !injected;
}

int
main(int argc, char **argv) {
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    int quiet = !getenv("OOM_TEST_VERBOSE");
    int saved = dup(2);
    int ran = 0;
    for (int i = 0; scenarios[i].name; i++) {
        if (argc > 1 && strcmp(argv[1], scenarios[i].name) != 0)
            continue;
        ran++;
        long n = getenv("OOM_TEST_FROM") ? atol(getenv("OOM_TEST_FROM")) : 1;
        if (quiet) { /* lasio reports memory errors on stderr */
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            close(null);
        }
        while (!one_run(scenarios[i].name, scenarios[i].fn, n)) {
            if (!quiet)
                fprintf(stderr, "--- N=%ld\n", n);
            n++;
        }
        dup2(saved, 2);
        printf("%s: %ld runs, each allocation failed once\n", scenarios[i].name,
               n);
        fflush(stdout);
    }
    if (!ran) {
        fprintf(stderr, "oom_test: no scenario named '%s'\n", argv[1]);
        return 2;
    }
    return harness_done("oom_test");
}
