/*
 * core.h: the structs and cross-file functions of the runtime core (loop,
 * ready queue, Future, Task, timers, errors). Internal: not installed.
 * Every object is a full userdata whose Lua links live in user values
 * (INTERNALS.md, rule 3); C pointers between objects are borrowed and say
 * who keeps the target alive.
 * SPDX-License-Identifier: MIT
 */
#ifndef lasio_core_h
#define lasio_core_h

#include <math.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>

#include "lasio.h"

#define LASIO_HIDDEN __attribute__((visibility("hidden")))

#if LUA_VERSION_RELEASE_NUM < 50406
#define lua_closethread(L, from) lua_resetthread(L)
#endif

/* Metatable names (luaL_newmetatable sets __name from them). */
#define LASIO_LOOP_MT "lasio.Loop"
#define LASIO_FUTURE_MT "lasio.Future"
#define LASIO_TASK_MT "lasio.Task"
#define LASIO_HANDLE_MT "lasio.Handle"
#define LASIO_TIMER_MT "lasio.TimerHandle"

/* Type checks without string lookups: every lasio metatable holds, at
 * index 1, the address of its type's token (a light userdata), and
 * lasio_testobj_ compares that. */
LASIO_HIDDEN extern const char lasio_future_token_, lasio_task_token_,
    lasio_loop_token_, lasio_handle_token_, lasio_waitq_token_;
/* The userdata at idx if its metatable carries token, else NULL.
 * [-0, +0, -] */
LASIO_HIDDEN void *lasio_testobj_(lua_State *L, int idx, const void *token);
/* The same, raising a type error naming tname when it does not. */
LASIO_HIDDEN void *lasio_checkobj_(lua_State *L, int idx, const void *token,
                                   const char *tname);
/* luaL_newmetatable that also stores the token. [-0, +1, m] */
LASIO_HIDDEN int lasio_newmetatable_(lua_State *L, const char *tname,
                                     const void *token);

/* The first byte of every object that can sit in the ready queue. */
enum lasio_kind { KIND_FUTURE = 1, KIND_TASK, KIND_HANDLE, KIND_DONECB };

struct lasio_future;
/* A done callback in C: a userdata that starts with this struct is stored
 * in a Future's callback list like a function. It runs no user code, so
 * the Future's completion runs `run` at once, after queueing its other
 * callbacks (future.c): no trip through the ready queue. Added to a
 * Future already done, it is queued (readyq.c: no lua_pcall, no Lua ring
 * slots) and an error it raises there is reported as an "Exception in
 * callback", as a function's would be. The object must keep alive every
 * Future it is registered on (the queue entry holds only a pointer to the
 * Future while the object itself is anchored). `run` gets the object at
 * cbidx, the done Future at fidx. */
struct lasio_donecb {
    unsigned char kind; /* KIND_DONECB */
    int queued;         /* entries of the ready queue pointing at it */
    int ref;            /* its slot while queued, or LUA_NOREF */
    void (*run)(lua_State *L, int cbidx, int fidx, struct lasio_future *f);
};

enum lasio_fstate { FUT_PENDING, FUT_FINISHED, FUT_CANCELLED };

/* {====== Loop ====== */

/* User values of the loop userdata. */
enum {
    LOOP_UV_TASKS = 1, /* keep-alive slots (readyq.c): pending tasks, and the
                          objects C entries of the ready queue point at */
    LOOP_UV_ANCHORS,   /* objects libevent holds raw pointers to */
    LOOP_UV_HANDLER,   /* exception handler function or nil */
    LOOP_UV_STOPWAIT,  /* Future a task's run_forever() waits on, or nil */
    LOOP_UV_UNSEEN,    /* weak-keyed set of futures with unretrieved errors */
    LOOP_UV_MAIN,      /* the main task of the CLI or lasio.run */
    LOOP_UV_INTERRUPT, /* task that SIGINT/SIGTERM cancel, or nil (main) */
    LOOP_UV_COPOOL,    /* finished tasks' coroutines kept for reuse */
    LOOP_UV_FACTORY,   /* the task factory (set_task_factory) or nil */
    LOOP_NUV = LOOP_UV_FACTORY
};

struct lasio_task;
struct lasio_handle;
struct event;
struct event_base;

/* An I/O object (socket, server, resolver) holding events of the loop's
 * event_base: linked into the loop while it holds them, so closing the
 * loop makes it let go of them before the base is freed. `release` runs no
 * Lua code and is called at most once, after the link was removed; an
 * object that closes first removes its link itself. */
struct lasio_iolink {
    struct lasio_iolink *prev, *next;
    unsigned char socket; /* counted in the loop's nsockets */
    void (*release)(struct lasio_iolink *link);
};

/* An entry of the loop's timer heap (timerheap.c). */
struct lasio_timer_entry {
    int64_t when;      /* deadline in ns of the loop's clock */
    unsigned long seq; /* arrival order, for ties */
    void *owner;       /* a TimerHandle or a Task (kind byte first) */
    int *posp;         /* the owner's index field */
};

struct lasio_loop {
    struct event_base *base;      /* owned iff own_base */
    struct event *drain_ev;       /* drains the ready queue; owned */
    struct event *wake_ev;        /* reads wake_fd[0]: signals and threads */
    struct event *timer_ev;       /* watches timer_fd (timerheap.c) */
    int timer_fd;                 /* a timerfd: the earliest deadline */
    unsigned char timer_on;       /* timer_ev is added */
    struct lasio_timer_entry *th; /* timer heap; owned (malloc) */
    int th_n, th_cap;
    unsigned long th_seq;
    lua_State *L; /* the main thread, or the thread inside run_*: never a
                     coroutine that may die while the loop keeps it */
    struct lasio_task *current; /* task being stepped, or NULL */
    int wake_fd[2]; /* pipe written by the signal hub and lasio_pin_post */
    /* ready queue (readyq.c): the C ring holds the order (Task steps,
     * C callbacks, or a mark for the next entry of the Lua ring, registry
     * ref lq_ref) */
    struct lasio_readyq_entry *rq;
    int rq_head, rq_count, rq_cap;
    /* slots of LOOP_UV_TASKS (readyq.c): slots 1..slot_top exist,
     * free ones hold false and are listed in slot_free (capacity
     * slot_cap >= slot_top, so freeing never allocates) */
    int *slot_free;
    int slot_nfree, slot_top, slot_cap;
    unsigned char in_donecb; /* a C callback runs (its errors are its) */
    int lq_head, lq_count, lq_cap, lq_ref;
    int self_ref; /* registry ref to the loop userdata while open */
    /* registry refs to the metatables the hot paths set: no lookup by
     * name (string hashing) per object */
    int mt_task_ref, mt_future_ref, mt_handle_ref, mt_timer_ref;
    int tasks_ref;  /* registry ref to LOOP_UV_TASKS while open */
    int copool_ref; /* registry ref to LOOP_UV_COPOOL while open */
    int copool_n;   /* coroutines in it (1..copool_n) */
    int ntasks;     /* pending tasks */
    /* the task factory (taskfactory.c): which kind is set, how deep the
     * factory calls run, and the task an eager constructor made */
    unsigned char factory; /* enum lasio_factory */
    int in_factory;
    struct lasio_task *eager_made;
    int next_task_id; /* for default names Task-N */
    long nsources;    /* things besides timers that can wake a task
                         (I/O, children...): none of them, no timer and
                         an empty queue means deadlock */
    int unretrieved;  /* never-retrieved errors reported so far */
    double slow_callback_duration;
    unsigned char own_base, drain_armed, running, stopping, closed,
        close_pending, debug, in_drain, user_stoppable, until_no_tasks,
        interrupt_mode, stop_pending;
    unsigned char report_early; /* the REPL: report unretrieved errors a
                                   few turns after they happen (diag.c) */
    int exit_signal;            /* default-handled signal received */
    /* the command's default SIGINT/SIGTERM handling (sys/signal.c):
     * task steps so far, and where the interrupt hook started watching
     * a running task for a spin (steps then, monotonic time then); the
     * SIGTERM drain of the shutdown callbacks (0 none, 1 under way,
     * 2 over) */
    unsigned long steps, spin_steps;
    double spin_since;
    unsigned char draining;
    volatile int pending_signals;  /* bit mask of hub signals to handle */
    lua_State *volatile running_L; /* thread running Lua now (for hooks) */
    struct lasio_iolink *iolinks;  /* I/O objects to release at close */
    int nsockets;                  /* of them sockets, servers, UDP */
    struct lasio_postq
        *postq; /* lasio_pin_post's queue (embed/pin.c), or NULL */
    /* Wake hooks, installed by the layers above: the wake pipe's callback
     * (sighub.c) calls them and never names those layers. on_signals
     * handles the signals the hub flagged (sys/signal.c), from the ready
     * side (from_hook 0) or from the interrupt hook inside running Lua
     * code (1); on_posted runs the calls other threads queued (pin.c). */
    void (*on_signals)(lua_State *L, struct lasio_loop *loop, int from_hook);
    void (*on_posted)(struct lasio_loop *loop);
    /* Virtual time (vclock.c): NULL in real time, the one test the real
     * path pays. vnow is the virtual clock in ns; vholds counts what holds
     * the clock still (thread jobs, a C host's lasio_loop_hold). */
    struct lasio_vclock *vc;
    int64_t vnow;
    long vholds;
    struct lasio_limits *limits; /* budgets and caps (budget.c), or NULL */
    unsigned char end_batch;     /* a task was preempted: poll before more */
    /* the await graph (awaitgraph.c): the loop's clock read at the start
     * of a drain and every few steps, so a suspending task notes when it
     * began to wait without a clock read of its own; the last chunk
     * sources seen creating tasks, user code's and the facade's */
    double time_cache;
    const char *site_user_src, *site_facade_src;
    struct lasio_sites *sites; /* the state's creation sites (awaitgraph.c),
                                  NULL until the first */
    /* the inspector serving this loop (inspect.c), or NULL; and when the
     * running step began (coarse monotonic ns: the end of the step before
     * it or the start of the drain), for the steps' time and "loop busy" */
    struct lasio_inspector *inspector;
    int64_t step_start;
    /* The event trace (trace.c): NULL when nothing records or listens,
     * the one test every trace site pays then. */
    struct lasio_trace *trace;
};

/* Links / unlinks an I/O object (see struct lasio_iolink). */
LASIO_HIDDEN void lasio_iolink_add_(struct lasio_loop *loop,
                                    struct lasio_iolink *link);
LASIO_HIDDEN void lasio_iolink_remove_(struct lasio_loop *loop,
                                       struct lasio_iolink *link);

/* A per-state context found without a registry lookup: a host that owns
 * its states (the lasio command) makes its allocator's ud start with this
 * struct and sets lasio_ctx_allocf_ to that allocator before the first
 * state is created. States on any other allocator (stock lua5.4, embedding
 * hosts, worker states) have none, and the registry stays the record; the
 * context only mirrors it. */
struct lasio_statectx {
    struct lasio_loop *running; /* the registry's running loop, or NULL */
};
LASIO_HIDDEN extern lua_Alloc lasio_ctx_allocf_;
LASIO_HIDDEN void *lasio_memcap_alloc_(void *ud, void *ptr, size_t osize,
                                       size_t nsize);
/* The context of L's state, or NULL. [-0, +0, -] */
static inline struct lasio_statectx *
lasio_statectx_(lua_State *L) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f && (f == lasio_ctx_allocf_ || f == lasio_memcap_alloc_)
               ? (struct lasio_statectx *)ud
               : NULL;
}

LASIO_HIDDEN struct lasio_loop *lasio_checkloop_(lua_State *L, int idx);
/* The running loop, else the state's current loop (created on first use).
 * [-0, +1, m] pushes the loop userdata and returns it. */
LASIO_HIDDEN struct lasio_loop *lasio_get_loop_(lua_State *L);
/* The loop running on this thread (inside run or a host's poll), or
 * NULL; for callbacks without a Lua state. */
LASIO_HIDDEN struct lasio_loop *lasio_thread_loop_(void);
/* The running loop or NULL. [-0, +0, -] */
LASIO_HIDDEN struct lasio_loop *lasio_running_loop_(lua_State *L);
/* The running loop, else the state's current loop; NULL when neither is
 * open. Never creates one. [-0, +0, -] */
LASIO_HIDDEN struct lasio_loop *lasio_current_loop_(lua_State *L);
/* Makes loop the running loop while a callback of a host's dispatch runs
 * (lasio_guarded_) or lasio_step polls: returns 1, or 0 when a loop runs
 * already (nothing changed). lasio_loop_leave_ undoes it. [-0, +0, m] */
LASIO_HIDDEN int lasio_loop_enter_(lua_State *L, struct lasio_loop *loop);
LASIO_HIDDEN void lasio_loop_leave_(lua_State *L, struct lasio_loop *loop);
/* Pushes the userdata of loop. [-0, +1, -] */
LASIO_HIDDEN void lasio_pushloop_(lua_State *L, struct lasio_loop *loop);
LASIO_HIDDEN double lasio_time_(void);
/* CLOCK_MONOTONIC in ns. */
LASIO_HIDDEN int64_t lasio_mono_ns_(void);
/* The loop's clock in ns: virtual or monotonic. */
static inline int64_t
lasio_loop_now_ns_(struct lasio_loop *loop) {
    return loop->vc ? loop->vnow : lasio_mono_ns_();
}
/* The loop's clock in seconds (loop:time()). */
static inline double
lasio_loop_time_(struct lasio_loop *loop) {
    return loop->vc ? (double)loop->vnow / 1e9 : lasio_time_();
}
/* A delay in seconds (>= 0, finite or huge) as whole ns, rounded up so a
 * timer never fires early (rule 11); saturates far in the future. */
static inline int64_t
lasio_delay_ns_(double delay) {
    double d = delay * 1e9;
    if (!(d < 4e18))
        return (int64_t)4e18;
    int64_t n = (int64_t)d;
    return (double)n < d ? n + 1 : n;
}
/* The deadline `delay` seconds (>= 0) from now on the loop's clock, in
 * ns: rounded up on the monotonic clock (never early), to the nearest ns
 * on a virtual one (exact sums: 0.1 + 0.2 s is 0.3 s). */
static inline int64_t
lasio_loop_deadline_ns_(struct lasio_loop *loop, double delay) {
    if (loop->vc)
        return loop->vnow + (delay < 4e9 ? (int64_t)llround(delay * 1e9)
                                         : lasio_delay_ns_(delay));
    return lasio_mono_ns_() + lasio_delay_ns_(delay);
}
/* Reports a context table at the top through the exception handler;
 * pops it. [-1, +0, -] (errors in the handler are caught and printed) */
LASIO_HIDDEN void lasio_call_exception_handler_(lua_State *L,
                                                struct lasio_loop *loop);
/* Runs the loop until stopping; returns 0, or 1 on deadlock with the
 * report text pushed. [-0, +(0|1), e] */
LASIO_HIDDEN int lasio_loop_run_(lua_State *L, struct lasio_loop *loop);
/* Pushes a deadlock report listing the pending tasks. [-0, +1, m] */
LASIO_HIDDEN void lasio_deadlock_report_(lua_State *L, struct lasio_loop *loop);
LASIO_HIDDEN void lasio_loop_open_(lua_State *L);
/* Pushes the loop's method table, so that another part can add methods
 * (after lasio_loop_open_). [-0, +1, -] */
LASIO_HIDDEN void lasio_loop_methods_push_(lua_State *L);
/* Makes the task at mainidx the main task of the loop at loopidx: the run
 * stops when it is done. [-0, +0, m] */
LASIO_HIDDEN void lasio_loop_set_main_(lua_State *L, int loopidx, int mainidx);
/* Cancels every pending task of the loop, with the message at msgidx (0:
 * none). [-0, +0, m] */
LASIO_HIDDEN void lasio_loop_cancel_all_(lua_State *L, struct lasio_loop *loop,
                                         int msgidx);
/* Cancels every pending task (when `cancel`), then runs until none is
 * left. Returns 1 on deadlock, with the report pushed. [-0, +(0|1), e] */
LASIO_HIDDEN int lasio_loop_finish_all_(lua_State *L, struct lasio_loop *loop,
                                        int cancel);
/* Creates the state's current loop on base (NULL: its own). [-0, +0, m] */
LASIO_HIDDEN void lasio_loop_set_current_new_(lua_State *L,
                                              struct event_base *base);
/* Closes the loop at idx: reports leftovers (report: a mask of
 * LASIO_REPORT_*) through the exception handler, then frees its libevent
 * side. [-0, +0, m] */
#define LASIO_REPORT_UNRETRIEVED 1
#define LASIO_REPORT_PENDING 2
#define LASIO_REPORT_ALL 3
LASIO_HIDDEN void lasio_loop_close_(lua_State *L, int idx,
                                    struct lasio_loop *loop, int report);

/* ====== } */

/* {====== Ready queue (readyq.c) ======
 * FIFO of entries drained in batches by loop->drain_ev. An entry is a Task
 * (step it), a Handle (run it unless cancelled) or a function followed by
 * its one argument (a done callback). */
/* An entry of the C ring: a Task step (obj, NULL), a C callback (obj the
 * done Future, donecb) or the next entry of the Lua ring (NULL, NULL). */
struct lasio_readyq_entry {
    void *obj;
    struct lasio_donecb *donecb;
};
/* Queues the C callback at cbidx for the done Future at fidx: both get an
 * slot while queued. Room must have been made with
 * lasio_readyq_reserve_ and lasio_slot_reserve_(L, loop, 2). [-0, +0, -] */
LASIO_HIDDEN void lasio_readyq_push_donecb_(lua_State *L,
                                            struct lasio_loop *loop, int cbidx,
                                            int fidx);
/* Keep-alive slots in the loop's tasks table (at tidx): take stores the value
 * at vidx and returns its slot (raises only when no slot was reserved);
 * release empties a slot; reserve makes k slots free, so the next k takes
 * cannot fail. [-0, +0, m] */
LASIO_HIDDEN int lasio_slot_take_(lua_State *L, struct lasio_loop *loop,
                                  int tidx, int vidx);
LASIO_HIDDEN void lasio_slot_release_(lua_State *L, struct lasio_loop *loop,
                                      int tidx, int slot);
LASIO_HIDDEN void lasio_slot_reserve_(lua_State *L, struct lasio_loop *loop,
                                      int tidx, int k);
/* Pushes the loop's tasks table (its slots). [-0, +1, -] */
LASIO_HIDDEN void lasio_pushtasks_(lua_State *L, struct lasio_loop *loop);
/* Pushes the value at idx as one entry. [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_push_(lua_State *L, struct lasio_loop *loop,
                                     int idx);
/* Pushes fn (at fidx) and arg (at aidx) as a callback entry. [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_push_call_(lua_State *L, struct lasio_loop *loop,
                                          int fidx, int aidx);
/* Makes room for k more slots, so the next k pushes cannot fail.
 * [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_reserve_(lua_State *L, struct lasio_loop *loop,
                                        int k);
/* The same for k Task steps (lasio_readyq_push_task_), which take no room
 * in the Lua ring. [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_reserve_steps_(lua_State *L,
                                              struct lasio_loop *loop, int k);
LASIO_HIDDEN void lasio_readyq_arm_(struct lasio_loop *loop);
LASIO_HIDDEN void lasio_readyq_drain_cb_(int fd, short what, void *arg);
LASIO_HIDDEN void lasio_readyq_init_(lua_State *L, struct lasio_loop *loop);
/* Frees the queue (loop close). [-0, +0, -] */
LASIO_HIDDEN void lasio_readyq_free_(lua_State *L, struct lasio_loop *loop);
/* Queues a step of the pending task t. [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_push_task_(lua_State *L, struct lasio_loop *loop,
                                          struct lasio_task *t);
/* Queues the run of the due timer h, which keeps its slot until
 * the entry is taken. [-0, +0, m] */
LASIO_HIDDEN void lasio_readyq_push_timer_(lua_State *L,
                                           struct lasio_loop *loop,
                                           struct lasio_handle *h);
/* ====== } */

/* {====== Future ====== */

enum {
    FUT_UV_RESULT = 1, /* value, table of values, error, or cancel msg */
    FUT_UV_CALLBACKS,  /* nil, one callback, or a sequence of them */
    FUT_UV_EXTRA,      /* the loop userdata (keeps loop alive), or, once an
                          object needs one of the rarely used fields below, a
                          table of them that holds the loop at EXTRA_LOOP: a
                          user value less on every object */
    FUT_NUV = FUT_UV_EXTRA
};

/* Keys of the FUT_UV_EXTRA table: fields most objects never need, kept out
 * of the user values so a blocked task stays small. */
enum {
    EXTRA_TRACEBACK = 1, /* traceback of the stored error */
    EXTRA_NAME,          /* task name, or nil: "Task-<id>" */
    EXTRA_SITE,          /* where the task was created (debug mode) */
    EXTRA_CANCELMSG,     /* message of a pending cancellation */
    EXTRA_AWAITS,        /* what a combinator's Future or a task awaits
                            besides its waiter (awaitgraph.c) */
    EXTRA_LOOP,          /* the loop userdata, moved here from the user
                            value when the table is made */
    EXTRA_N = EXTRA_LOOP
};
/* Pushes extra field key of the object at idx (nil when unset); returns
 * its type. [-0, +1, -] */
LASIO_HIDDEN int lasio_extra_get_(lua_State *L, int idx, int key);
/* Sets extra field key of the object at idx to the value on top (popped).
 * [-1, +0, m] */
LASIO_HIDDEN void lasio_extra_set_(lua_State *L, int idx, int key);

/* 24 bytes: the flags in bits, and the counts of results and callbacks
 * in one int (a pending Future has no results, a done one keeps no
 * callbacks: they are scheduled as it completes). */
struct lasio_future {
    unsigned char kind;            /* KIND_FUTURE or KIND_TASK */
    unsigned char state;           /* enum lasio_fstate */
    unsigned char log_error : 1;   /* error stored and not retrieved yet */
    unsigned char has_stop : 1;    /* run_until_complete waits on it */
    unsigned char c_source : 1;    /* made by lasio_future_new: counted in
                                      loop->nsources while pending */
    unsigned char gather_mark : 1; /* seen by the gather starting (gather.c) */
    unsigned char finalized : 1;   /* has the metatable twin with __gc */
    union {
        int ncallbacks; /* pending: 0, 1 (stored directly) or more (table) */
        int nresults;   /* done: 1: value stored directly; else a table
                           (-1: an error) */
    };
    int ref;    /* slot (LOOP_UV_TASKS): while a Task is pending, and while
                   C callback entries point at it, or LUA_NOREF */
    int queued; /* C callback entries of the ready queue pointing at it */
    struct lasio_loop *loop; /* kept alive by FUT_UV_EXTRA */
};

LASIO_HIDDEN struct lasio_future *lasio_tofuture_(lua_State *L, int idx);
LASIO_HIDDEN struct lasio_future *lasio_checkfuture_(lua_State *L, int idx);
/* New pending Future of loop. [-0, +1, m] */
LASIO_HIDDEN struct lasio_future *lasio_future_push_(lua_State *L,
                                                     struct lasio_loop *loop);
/* Initialises the Future part of a new Future or Task at idx. */
LASIO_HIDDEN void lasio_future_init_(lua_State *L, int idx,
                                     struct lasio_future *f,
                                     struct lasio_loop *loop);
/* Completes f (at idx) with n values on top (popped). [-n, +0, m] */
LASIO_HIDDEN void lasio_future_finish_(lua_State *L, int idx,
                                       struct lasio_future *f, int n);
/* Fails f with the error on top (popped), traceback below it or nil.
 * [-2, +0, m] */
LASIO_HIDDEN void lasio_future_fail_(lua_State *L, int idx,
                                     struct lasio_future *f);
/* Cancels f with the message on top (popped). [-1, +0, m] */
LASIO_HIDDEN void lasio_future_cancelled_(lua_State *L, int idx,
                                          struct lasio_future *f);
/* Pushes f's results and returns their count, or raises its error.
 * Marks the error retrieved. [-0, +n, e] */
LASIO_HIDDEN int lasio_future_results_(lua_State *L, int idx,
                                       struct lasio_future *f);
/* Adds the value at cbidx (function or Task) as a done callback of the
 * Future at idx, scheduling it at once if done. [-0, +0, m] */
LASIO_HIDDEN void lasio_future_add_callback_(lua_State *L, int idx,
                                             struct lasio_future *f, int cbidx);
/* Removes every registration of the value at cbidx. Returns the count. */
LASIO_HIDDEN int lasio_future_remove_callback_(lua_State *L, int idx,
                                               struct lasio_future *f,
                                               int cbidx);
/* Cancels f if pending; returns 1 if it did. [-0, +0, m] msg at msgidx
 * (0 for none) */
LASIO_HIDDEN int lasio_future_cancel_(lua_State *L, int idx,
                                      struct lasio_future *f, int msgidx);
/* Pushes the CancelledError instance for a cancelled Future. [-0,+1,m] */
LASIO_HIDDEN void lasio_future_push_cancelled_error_(lua_State *L, int idx);
/* Common methods and metamethods shared with Task. */
LASIO_HIDDEN void lasio_future_register_(lua_State *L);
/* Adds the common metamethods to the metatable on top, then registers
 * its twin with __gc for objects of that kind. [-0, +0, m] */
LASIO_HIDDEN void lasio_future_metamethods_(lua_State *L, int kind);
/* Gives f (at idx) the twin metatable with __gc, once: for a Future
 * holding an error not retrieved yet, or a wake-up source completed by C
 * code. [-0, +0, -] */
LASIO_HIDDEN void lasio_future_finalize_(lua_State *L, int idx,
                                         struct lasio_future *f);
LASIO_HIDDEN void lasio_future_open_(lua_State *L);
/* core.internal.gather_results(list, n): the results table of a finished
 * gather. */
LASIO_HIDDEN int lasio_gather_results_(lua_State *L);
/* Sets gather_ops (gather.c) in the table at the top (core.internal:
 * module.c). */
LASIO_HIDDEN void lasio_gather_open_(lua_State *L);
/* Function that resolves/stops a loop when a Future completes. */
LASIO_HIDDEN int lasio_stop_loop_cb_(lua_State *L);
/* ====== } */

/* {====== Task ======
 * The Task invariant (asyncio's): a pending task that is not running is
 * either scheduled (its step is in the ready queue, waiting == WAIT_NONE)
 * or waiting on exactly one thing (a Future in TASK_UV_WAITER, or its own
 * sleep timer) with its step not scheduled. Only the wake-up (future done,
 * timer fired, cancellation) moves it from the second state to the first.
 */
enum lasio_wait {
    WAIT_NONE,
    WAIT_FUTURE,
    WAIT_SLEEP,
    WAIT_FOREVER,
    WAIT_QUEUE /* linked in a WaitQueue (waitq.c) */
};

/* User values of a Task after the Future's. A pending task has no result
 * yet, so FUT_UV_RESULT holds the Future it waits on while has_waiter is
 * set (the deadlock report names it); the step clears has_waiter before
 * the task can finish and store its outcome there. */
enum {
    TASK_UV_CORO = FUT_NUV + 1, /* the coroutine (a Lua thread) */
    TASK_NUV = TASK_UV_CORO
};
#define TASK_UV_WAITER FUT_UV_RESULT /* while pending and has_waiter */

/* Pointers first, then ints, then the flags packed in three bytes: 104
 * bytes, so that the userdata (header, 4 user values, this) is 208. */
struct lasio_task {
    struct lasio_future fut; /* first: a Task is a Future */
    lua_State *co;           /* kept alive by TASK_UV_CORO */
    /* a task waits on one thing at a time: the links of a WaitQueue
     * (while in_wq) share their room with the timer and I/O fields,
     * which are -1 whenever it is not in a WaitQueue */
    union {
        struct {
            struct lasio_waitq *wq; /* the WaitQueue it is linked in */
            struct lasio_task *wq_next, *wq_prev;
        };
        struct {
            int heap_pos; /* index in the timer heap while sleeping */
            int wait_fd;  /* the fd of an I/O wait (-1: none) */
        };
    };
    /* the await graph (awaitgraph.c): the creation site (an id of the
     * state's table of chunk and line pairs, formatted only when asked);
     * the parent's id; what a WAIT_QUEUE or I/O wait is for (a static or
     * anchored string); the loop time the current wait began */
    const char *wait_what;
    double wait_since;
    /* what the inspector shows (snapshot.c): steps run (wrapping past
     * 2^32) and their time in coarse monotonic ns (an unbiased estimate:
     * see lasio_coarse_ns_) */
    int64_t cpu_ns;
    uint32_t steps;
    uint32_t site; /* the creation site's id (awaitgraph.c), 0: none */
    int parent_id;
    int num_cancels; /* cancelling() */
    int id;
    unsigned char waiting; /* enum lasio_wait */
    /* the bits the step tests at once (task.c) share the first byte */
    unsigned char must_cancel : 1;
    unsigned char started : 1;
    unsigned char has_waiter : 1; /* TASK_UV_WAITER holds the Future */
    unsigned char preempted : 2;  /* suspended by the forced-yield hook (1),
                                     and cancelled since (2) */
    unsigned char scheduled : 1;  /* step is in the ready queue */
    unsigned char counted : 1;    /* counted in loop->ntasks (pending) */
    unsigned char exposed : 1;    /* user code saw its coroutine (running(),
                                     get_coro()): never reused then */
    unsigned char wq_woken : 1;   /* a WaitQueue woke it; cleared by its wait */
    unsigned char cancelling : 1; /* its cancel() passes the request on to
                                     the task it awaits (an await cycle
                                     comes back to it) */
    unsigned char in_wq : 1;      /* linked in a WaitQueue (wq is valid) */
    unsigned char budgeted : 1;   /* has budgets: their struct is owned by
                                     the task (budget.c finds it) */
};

LASIO_HIDDEN struct lasio_task *lasio_totask_(lua_State *L, int idx);
/* Creates a Task running the function at fidx with the nargs values on
 * top (popped), schedules its first step. [-nargs, +1, m] */
LASIO_HIDDEN struct lasio_task *
lasio_task_spawn_(lua_State *L, struct lasio_loop *loop, int fidx, int nargs);
/* The same, without scheduling it: the caller steps or schedules it. */
LASIO_HIDDEN struct lasio_task *
lasio_task_new_(lua_State *L, struct lasio_loop *loop, int fidx, int nargs);

/* {====== The task factory (taskfactory.c) ====== */
enum lasio_factory {
    FACTORY_NONE,   /* tasks are spawned as lasio_task_spawn_ does */
    FACTORY_LUA,    /* a function set with loop:set_task_factory */
    FACTORY_EAGER,  /* lasio.eager_task_factory, called from C directly */
    FACTORY_CAPTURE /* an eager factory's constructor runs */
};
/* The factory path of lasio_task_create_; what names the caller in
 * errors. [-nargs, +1, e] */
LASIO_HIDDEN struct lasio_task *lasio_task_create_slow_(lua_State *L,
                                                        struct lasio_loop *loop,
                                                        int fidx, int nargs,
                                                        const char *what);
/* Makes a task as the loop's task factory says: every task-making call of
 * the module (spawn, create_task, await of a function) goes through here.
 * [-nargs, +1, e] */
static inline struct lasio_task *
lasio_task_create_(lua_State *L, struct lasio_loop *loop, int fidx, int nargs,
                   const char *what) {
    if (loop->factory == FACTORY_NONE)
        return lasio_task_spawn_(L, loop, fidx, nargs);
    return lasio_task_create_slow_(L, loop, fidx, nargs, what);
}
/* loop:set_task_factory(factory | nil), loop:get_task_factory() */
LASIO_HIDDEN int lasio_loop_set_task_factory_(lua_State *L);
LASIO_HIDDEN int lasio_loop_get_task_factory_(lua_State *L);
/* Fills the table on top with eager_task_factory and
 * create_eager_task_factory. [-0, +0, m] */
LASIO_HIDDEN void lasio_taskfactory_open_(lua_State *L);
/* ====== } */
/* Runs one step of the Task at idx. [-0, +0, -] */
LASIO_HIDDEN void lasio_task_step_(lua_State *L, int idx);
/* Requests cancellation; msg at msgidx or 0. Returns 1 if requested. */
LASIO_HIDDEN int lasio_task_cancel_(lua_State *L, int idx, struct lasio_task *t,
                                    int msgidx);
/* Pushes the task's name. [-0, +1, m] */
LASIO_HIDDEN void lasio_task_pushname_(lua_State *L, int idx,
                                       struct lasio_task *t);
/* Pushes the traceback of where the task is suspended. [-0, +1, m] */
LASIO_HIDDEN void lasio_task_pushstack_(lua_State *L, int idx,
                                        struct lasio_task *t);
/* The sleep of task t is over: schedule its step. [-0, +0, m] */
LASIO_HIDDEN void lasio_task_timer_due_(lua_State *L, struct lasio_task *t);
/* The await primitive: suspends the current task on the Future at idx
 * (which must be pending) and returns its results when woken.
 * Raises when not inside a task or not yieldable. `what` names the API
 * function for error messages. */
LASIO_HIDDEN int lasio_await_(lua_State *L, int idx, const char *what);
/* Checks that the caller may suspend: returns the current task or raises
 * "<what>: not inside a task ..." / "cannot await here". */
LASIO_HIDDEN struct lasio_task *
lasio_check_await_(lua_State *L, struct lasio_loop **lp, const char *what);
/* The light userdata every scheduler yield carries (INTERNALS.md, rule
 * 4). */
LASIO_HIDDEN extern const char lasio_yield_sentinel_;
#define LASIO_SENTINEL ((void *)&lasio_yield_sentinel_)
/* Resumed with this first: raise the value after it at the await. */
LASIO_HIDDEN extern const char lasio_throw_sentinel_;
#define LASIO_THROW ((void *)&lasio_throw_sentinel_)
LASIO_HIDDEN void lasio_task_open_(lua_State *L);
LASIO_HIDDEN int lasio_sleep_(lua_State *L);
/* ====== } */

/* {====== WaitQueue (waitq.c) ======
 * A FIFO of waiting tasks, intrusive through the tasks' wq_* fields; it is
 * a Lua object of its own (core.WaitQueue) or embedded in one (queue.c).
 */
struct lasio_waitq {
    struct lasio_task *head, *tail;
    int n;
    struct lasio_loop *loop; /* bound at the first wait, as asyncio's
                                primitives are; only ever compared */
};
LASIO_HIDDEN void lasio_waitq_init_(struct lasio_waitq *q);
/* Takes t out of its WaitQueue, if any. */
LASIO_HIDDEN void lasio_waitq_unlink_(struct lasio_task *t);
/* Takes every task out of q (its owner is being collected). */
LASIO_HIDDEN void lasio_waitq_clear_(struct lasio_waitq *q);
/* Wakes the first waiter of q; returns 0 when there is none. [-0,+0,m] */
LASIO_HIDDEN int lasio_waitq_wake_(lua_State *L, struct lasio_waitq *q);
/* Links the current task at the tail of q (raising when not in a task, not
 * yieldable, or bound to another loop; `what` names the caller). The
 * caller then yields LASIO_SENTINEL with its continuation. */
LASIO_HIDDEN void lasio_waitq_link_(lua_State *L, struct lasio_waitq *q,
                                    const char *what);
/* In that continuation: 1 if the task was resumed with an error (at
 * base + 2), 0 if woken; *woken tells whether a wake-up had reached the
 * task before an error. */
LASIO_HIDDEN int lasio_waitq_resumed_(lua_State *L, int base, int *woken);
/* Sets core.WaitQueue in the module table at the top. [-0, +0, m] */
LASIO_HIDDEN void lasio_waitq_open_(lua_State *L);
/* Sets Queue, LifoQueue, PriorityQueue in the module table at the top. */
LASIO_HIDDEN void lasio_queue_open_(lua_State *L);
/* ====== } */

/* {====== Handles (timer.c) ====== */
struct lasio_handle {
    unsigned char kind; /* KIND_HANDLE */
    unsigned char cancelled;
    unsigned char is_timer;
    int heap_pos; /* index in the timer heap, or -1 */
    int slot;     /* its slot (LOOP_UV_TASKS) while in the heap */
    int nargs;    /* the callback's arguments, user values after HANDLE_NUV */
    double when;
    struct lasio_loop *loop; /* kept alive by HANDLE_UV_LOOP */
};
/* The callback, the loop, then its nargs arguments. */
enum { HANDLE_UV_CALL = 1, HANDLE_UV_LOOP, HANDLE_NUV = HANDLE_UV_LOOP };

/* Runs the handle at idx (from the ready queue). [-0, +0, -] */
LASIO_HIDDEN void lasio_handle_run_(lua_State *L, int idx,
                                    struct lasio_handle *h);
LASIO_HIDDEN int lasio_call_soon_(lua_State *L);
LASIO_HIDDEN int lasio_call_later_(lua_State *L);
LASIO_HIDDEN int lasio_call_at_(lua_State *L);
LASIO_HIDDEN void lasio_timer_open_(lua_State *L);
/* ====== } */

/* {====== Timer heap (timerheap.c) ====== */
/* Adds owner (whose heap index lives at *posp) due at `when`. Returns -1
 * when out of memory (nothing changed). */
LASIO_HIDDEN int lasio_timerheap_add_(struct lasio_loop *loop, void *owner,
                                      int *posp, int64_t when);
/* Moves every entry due at `now` (ns of the loop's clock) to the ready
 * queue, in (deadline, arrival) order. Raises only when out of memory
 * (no timer lost). [-0, +0, m] */
LASIO_HIDDEN void
lasio_timerheap_collect_(lua_State *L, struct lasio_loop *loop, int64_t now);
/* Removes the entry whose index is *posp (no-op when not in the heap). */
LASIO_HIDDEN void lasio_timerheap_remove_(struct lasio_loop *loop, int *posp);
LASIO_HIDDEN void lasio_timerheap_fire_cb_(int fd, short what, void *arg);
/* Forgets every entry and frees the heap (loop close). */
LASIO_HIDDEN void lasio_timerheap_free_(struct lasio_loop *loop);
/* ====== } */

/* {====== Virtual time (vclock.c) ====== */
/* Makes the new loop virtual when the state asked for virtual loops
 * (core.internal.vclock_request). [-0, +0, m] */
LASIO_HIDDEN void lasio_vclock_attach_(lua_State *L, struct lasio_loop *loop);
/* Frees the virtual clock's events (loop close); the clock stays. */
LASIO_HIDDEN void lasio_vclock_free_(struct lasio_loop *loop);
/* Frees all of it (the loop's __gc). */
LASIO_HIDDEN void lasio_vclock_gc_(struct lasio_loop *loop);
/* One turn of a virtual loop's run: the ready work, or else the jump
 * rule. Returns 0 to go on, 1 when nothing can move (deadlock), -1 when
 * libevent failed. [-0, +0, e] */
LASIO_HIDDEN int lasio_vclock_turn_(lua_State *L, struct lasio_loop *loop);
/* The jump of the idle path taken inside the drain once the queue is
 * empty, when nothing outside the loop can wake a task: returns 1 with
 * the due timers queued, or 0 (the idle path decides). [-0, +0, m] */
LASIO_HIDDEN int lasio_vclock_drain_jump_(lua_State *L,
                                          struct lasio_loop *loop);
/* Shuffles the ready batch of a virtual loop run with shuffle. */
LASIO_HIDDEN void lasio_vclock_shuffle_(struct lasio_loop *loop);
/* Raises VirtualTimeError naming fn when the current loop is virtual and
 * real I/O is not allowed; called before any side effect. [-0, +0, v] */
LASIO_HIDDEN void lasio_vclock_refuse_(lua_State *L, const char *fn);
/* Loops made from now on are virtual, as the table on top asks (nil:
 * real time again); pops it. [-1, +0, -] */
LASIO_HIDDEN void lasio_vclock_request_(lua_State *L);
/* Did the virtual time limit (stored in *limit) cancel the loop's main
 * task? 0 for a real-time loop. */
LASIO_HIDDEN int lasio_vclock_limit_hit_(struct lasio_loop *loop,
                                         double *limit);
/* core.internal.run_fresh(fn, ...): lasio.run on a new loop, also from a
 * task of a running loop (which waits meanwhile). */
LASIO_HIDDEN int lasio_run_fresh_(lua_State *L);
/* Sets core.internal.vclock_* into the table at the top. [-0, +0, m] */
LASIO_HIDDEN void lasio_vclock_open_(lua_State *L);
/* {====== Memory cap, budgets, preemption, caps ======
 * (memcap.c, budget.c; docs/UNTRUSTED.md) */

/* The counting allocator in front of a state's own. */
struct lasio_memcap {
    struct lasio_statectx ctx; /* first: the state's context (see above) */
    lua_Alloc inner;           /* the state's allocator before */
    void *inner_ud;
    size_t used, peak, limit;  /* bytes Lua holds; limit SIZE_MAX: none */
    struct lasio_budget *task; /* the running task's, with a memory budget */
};

/* A task's budgets: 0 means none. Counted while the task runs. */
struct lasio_budget {
    long long instructions, instr_used;
    double cpu, cpu_used, cpu_start; /* thread CPU seconds */
    size_t memory, mem_used;         /* bytes allocated (growth), not net */
    lua_State *co;          /* the task's coroutine, for the sticky hook */
    unsigned char exceeded; /* BUDGET_* of the first one exceeded */
};
enum { BUDGET_NONE, BUDGET_INSTRUCTIONS, BUDGET_CPU, BUDGET_MEMORY };

/* A loop's limits. */
struct lasio_limits {
    int quantum;       /* count of the budget hook, in VM instructions */
    long forced_yield; /* suspend a task every N instructions; 0 off */
    long long run_instructions, run_instr_used; /* the run's budget */
    double run_cpu, run_cpu_start;
    unsigned char run_exceeded;
    int max_tasks, max_timers, max_sockets; /* 0: no cap */
    long long max_output, output_used;
    struct lasio_slice *slice; /* forced yields by time slice, or NULL */
    /* the last task whose budgets were looked up, and them: a task keeps
     * no pointer to its budgets (budget.c) */
    struct lasio_task *budget_task;
    struct lasio_budget *budget;
};

/* The state's counting allocator, or NULL. [-0, +0, -] */
LASIO_HIDDEN struct lasio_memcap *lasio_memcap_get_(lua_State *L);
/* Puts the counting allocator in front (once); NULL when out of memory.
 * [-0, +0, -] */
LASIO_HIDDEN struct lasio_memcap *lasio_memcap_install_(lua_State *L);
/* Sets the cap (0: none). Returns 0, -1 out of memory, -2 the state holds
 * more than that already (after a full collection). [-0, +0, -] */
LASIO_HIDDEN int lasio_memcap_set_limit_(lua_State *L, size_t limit);
/* Counts grow bytes against a task's memory budget: 1 when exceeded. */
LASIO_HIDDEN int lasio_budget_memory_grow_(struct lasio_budget *b, size_t grow);
/* The loop's limits, made on first use. [-0, +0, m] */
LASIO_HIDDEN struct lasio_limits *lasio_limits_(lua_State *L,
                                                struct lasio_loop *loop);
/* Puts the budget hook on thread co when the loop's limits need one,
 * else clears its hook (for hooks that are done, as the signal
 * layer's). [-0, +0, -] */
LASIO_HIDDEN void lasio_budget_rearm_(lua_State *co, struct lasio_loop *loop);
/* Around a step of a task that has budgets. */
LASIO_HIDDEN void lasio_budget_enter_(lua_State *L, struct lasio_loop *loop,
                                      struct lasio_task *t);
LASIO_HIDDEN void lasio_budget_leave_(lua_State *L, struct lasio_loop *loop,
                                      struct lasio_task *t);
/* A preempted task t that was cancelled since: the CancelledError on top
 * of L (popped) is raised where it stopped when it resumes. [-1, +0, -] */
LASIO_HIDDEN void lasio_budget_cancel_at_resume_(lua_State *L,
                                                 struct lasio_task *t);
/* The task's body ended with the error on top: replaced by the
 * BudgetExceeded error when a budget of t was exceeded. [-1, +1, m] */
LASIO_HIDDEN void lasio_budget_error_(lua_State *L, struct lasio_task *t);
/* Raises unless the loop may hold one more task / timer. */
LASIO_HIDDEN void lasio_cap_check_(lua_State *L, struct lasio_loop *loop,
                                   int timers);
/* Raises unless the loop may hold one more socket; what names the
 * function. */
LASIO_HIDDEN void lasio_cap_sockets_(lua_State *L, struct lasio_loop *loop,
                                     const char *what);
/* Counts the linked I/O object as a socket until it is removed. */
LASIO_HIDDEN void lasio_iolink_socket_(struct lasio_loop *loop,
                                       struct lasio_iolink *link);
/* Sets the run's forced yield (0: off), instruction and CPU budgets (0:
 * none), counted from now, and hooks the threads that spawn tasks. */
LASIO_HIDDEN int lasio_limits_set_(lua_State *L, struct lasio_loop *loop,
                                   long forced_yield, long long instructions,
                                   double cpu);
/* Charges n steps of C work (a pattern's) as VM instructions to the
 * budgets of the running loop and task, and checks the CPU budgets;
 * raises BudgetExceeded past one. [-0, +0, v] */
LASIO_HIDDEN void lasio_budget_charge_(lua_State *L, int n);
/* Puts the budgeted find, match, gmatch, gsub (patmatch.c) in the
 * state's string library (once). [-0, +0, m] */
LASIO_HIDDEN void lasio_patmatch_install_(lua_State *L);
/* Wraps print, io.write and the files' write (outcap.c) so that they
 * count their bytes against the running loop's max_output. [-0, +0, m] */
LASIO_HIDDEN void lasio_outcap_install_(lua_State *L);
/* At the loop's release: stops the slice timer. [-0, +0, -] */
LASIO_HIDDEN void lasio_limits_release_(struct lasio_loop *loop);
/* The slice timer (slice.c): from the calling thread's CPU clock, puts
 * hook (count) on the loop's running thread once a task step has run for
 * a slice. NULL when it cannot (no timer, the signal taken). */
LASIO_HIDDEN struct lasio_slice *lasio_slice_start_(struct lasio_loop *loop,
                                                    lua_Hook hook, int count);
LASIO_HIDDEN void lasio_slice_set_count_(struct lasio_slice *s, int count);
LASIO_HIDDEN void lasio_slice_stop_(struct lasio_slice *s);
/* Adds the budget functions to the module table at the top and
 * set_budget to the Task methods. [-0, +0, m] */
LASIO_HIDDEN void lasio_budget_open_(lua_State *L);
/* ====== } */

/* {====== Option tables (opts.c) ====== */
/* Optional table field helpers for opts tables (opts may be absent). */
LASIO_HIDDEN int lasio_optfield_(lua_State *L, int opts, const char *key);
LASIO_HIDDEN int lasio_optboolean_(lua_State *L, int opts, const char *key,
                                   int dflt, const char *what);
LASIO_HIDDEN lua_Integer lasio_optinteger_(lua_State *L, int opts,
                                           const char *key, lua_Integer dflt,
                                           lua_Integer min, const char *what);
/* Checks that opts (at idx) is nil or a table whose keys are all listed
 * in the NULL-terminated `known`: a misspelt option raises. */
LASIO_HIDDEN void lasio_checkopts_(lua_State *L, int idx, const char *what,
                                   const char *const known[]);
/* ====== } */

/* {====== Errors (errors.c) ====== */
enum lasio_errclass {
    ERR_BASE,
    ERR_CANCELLED,
    ERR_TIMEOUT,
    ERR_INVALIDSTATE,
    ERR_ERRORGROUP,
    ERR_QUEUEEMPTY,
    ERR_QUEUEFULL,
    ERR_QUEUESHUTDOWN,
    ERR_BROKENBARRIER,
    ERR_INCOMPLETEREAD,
    ERR_LIMITOVERRUN,
    ERR_OSERROR,
    ERR_HTTP,
    ERR_VIRTUALTIME,
    ERR_BUDGET,
    ERR_NCLASSES
};
/* Pushes the class table. [-0, +1, m] */
LASIO_HIDDEN void lasio_pusherrclass_(lua_State *L, int cls);
/* Pushes a new instance with message msg (may be NULL) and a traceback
 * from `level`. [-0, +1, m] */
LASIO_HIDDEN void lasio_newerror_(lua_State *L, int cls, const char *msg,
                                  int level);
/* Same, with the message taken from the value at msgidx (nil allowed). */
LASIO_HIDDEN void lasio_newerror_at_(lua_State *L, int cls, int msgidx);
/* lazytb.c: a traceback of L1 from level, captured (pushed as a table)
 * and written out later as luaL_traceback would have (pushed string). */
LASIO_HIDDEN void lasio_tb_capture_(lua_State *L, lua_State *L1, int level);
LASIO_HIDDEN void lasio_tb_format_(lua_State *L, int idx);
/* Is the value at idx an instance of cls (or a subclass)? [-0, +0, -] */
LASIO_HIDDEN int lasio_iserror_(lua_State *L, int idx, int cls);
/* Raises a new instance of cls. */
LASIO_HIDDEN int lasio_raise_(lua_State *L, int cls, const char *fmt, ...);
/* Makes the classes once per state (in the registry) and sets every class
 * into the module table at the top. [-0, +0, m] */
LASIO_HIDDEN void lasio_errors_open_(lua_State *L);
/* ====== } */

/* {====== Coroutine forwarding (coro.c) ====== */
/* Sets the table of forwarding coroutine functions as field "coroutine"
 * of the module table at the top. [-0, +0, m] */
LASIO_HIDDEN void lasio_coro_open_(lua_State *L);
/* ====== } */

/* {====== Diagnostics (diag.c) ====== */
/* Is debug mode asked for from the outside (LASIO_DEBUG, which the
 * command's --debug sets)? A new loop starts with it. */
LASIO_HIDDEN int lasio_debug_from_env_(void);
/* core.internal.report_errors_early(on): the REPL's mode, in which an
 * error nothing retrieved is reported a few loop turns after it happened
 * instead of at collection or close. */
LASIO_HIDDEN int lasio_diag_report_early_(lua_State *L);
/* Records the Future at idx as holding an unretrieved error. */
LASIO_HIDDEN void lasio_diag_track_(lua_State *L, int idx,
                                    struct lasio_future *f);
LASIO_HIDDEN void lasio_diag_untrack_(lua_State *L, int idx,
                                      struct lasio_future *f);
/* Reports "exception was never retrieved" for the Future at idx. */
LASIO_HIDDEN void lasio_diag_unretrieved_(lua_State *L, int idx,
                                          struct lasio_future *f);
/* At close: reports every tracked unretrieved error and pending task. */
LASIO_HIDDEN void lasio_diag_close_(lua_State *L, int loopidx,
                                    struct lasio_loop *loop, int report);
/* Remembers that the error at idx, stored by the Future at fidx, is being
 * re-raised by an await, so the awaiting task's traceback can name where
 * it came from. [-0, +0, m] */
LASIO_HIDDEN void lasio_diag_rethrow_(lua_State *L, int idx, int fidx);
/* Runs body(L) with the loop as its argument in protected mode on
 * loop->L: a libevent callback must never let a Lua error (out of memory)
 * jump across libevent's frames. An error is printed to stderr. When a
 * host's own dispatch runs the callback, the loop is the running loop
 * meanwhile (lasio_loop_enter_). */
LASIO_HIDDEN void lasio_guarded_(struct lasio_loop *loop, lua_CFunction body);
/* Message handler for pcall: adds a traceback to the error. */
LASIO_HIDDEN int lasio_msgh_(lua_State *L);
/* Runs fn at idx with nargs args (on top) under lasio_msgh_ and reports
 * errors to the loop's exception handler. [-(nargs), +0, -] */
LASIO_HIDDEN void lasio_protected_call_(lua_State *L, struct lasio_loop *loop,
                                        int nargs, int handleidx);
/* Reports the error on top (popped), raised by a callback under
 * lasio_msgh_, as an "Exception in callback" (handle at handleidx, or 0).
 * [-1, +0, m] */
LASIO_HIDDEN void lasio_report_callback_error_(lua_State *L,
                                               struct lasio_loop *loop,
                                               int handleidx);
/* ====== } */

/* {====== The await graph (awaitgraph.c) ======
 * What the inspector, the dump and the reports read about a task; each
 * pushes a fresh value and reads only (no Lua code runs):
 *   lasio_task_pushsite_     "file:line" of the call that created it
 *   lasio_task_pushparent_   the task running then (or its description)
 *   lasio_task_pushwait_     what it waits on ("sleep 1.5", "Queue.get",
 *                            "read fd 7 tcp 127.0.0.1:80", "gather 3",
 *                            "Task #9 name"); t->wait_since says since
 *                            when, in loop time (loop:time())
 *   lasio_awaitgraph_index_  who awaits what: {[Future] = {Task...}}
 *   lasio_callgraph_capture_ and lasio_callgraph_format_: asyncio's
 *                            FutureCallGraph and its text
 *   lasio_task_pushreport_   the report block of a task (diag.c) */
/* At creation (task.c): notes the first caller outside lasio's facade.
 * [-0, +0, m] */
LASIO_HIDDEN void lasio_task_site_record_(lua_State *L, struct lasio_loop *loop,
                                          struct lasio_task *t);
/* Pushes "file:line" of the creating call, or nil (returns 0).
 * [-0, +1, m] */
LASIO_HIDDEN int lasio_task_pushsite_(lua_State *L, struct lasio_task *t);
/* Pushes the parent of t (the task running when it was created): the
 * Task while it is pending (returns 1; found by its id, t->parent_id),
 * else "Task #3" (2), or nil (0) for a task made outside any task.
 * [-0, +1, m] */
LASIO_HIDDEN int lasio_task_pushparent_(lua_State *L, struct lasio_task *t);
/* Pushes what the pending task at idx waits on, or nil (returns 0) when
 * it is running, ready or done. [-0, +1, m] */
LASIO_HIDDEN int lasio_task_pushwait_(lua_State *L, int idx,
                                      struct lasio_task *t);
/* Pushes {[Future or Task] = {Task, ...}}: for every pending task, what
 * it awaits (its waiter, and what a combinator or task group links).
 * [-0, +1, m] */
LASIO_HIDDEN void lasio_awaitgraph_index_(lua_State *L,
                                          struct lasio_loop *loop);
/* The Future at fidx awaits x at xidx (a Future, or a table whose keys
 * or values are Futures); what names its wait ("gather 3"). [-0, +0, m] */
LASIO_HIDDEN void lasio_await_link_(lua_State *L, int fidx, int xidx,
                                    const char *what);
/* Pushes the FutureCallGraph {future=, call_stack={{file=, line=,
 * name=}...}, awaited_by={...}, cycle=true?} of the Future at fidx;
 * index: an index of lasio_awaitgraph_index_ (0: one is made); from_L:
 * the running thread when fidx is the current task (its stack from
 * level depth), else NULL. limit as asyncio's (has_limit 0: all).
 * [-0, +1, m] */
LASIO_HIDDEN void lasio_callgraph_capture_(lua_State *L, int fidx, int index,
                                           lua_State *from_L, int depth,
                                           int limit, int has_limit);
/* Pushes the text of the graph at nidx. [-0, +1, m] */
LASIO_HIDDEN void lasio_callgraph_format_(lua_State *L, int nidx);
/* Pushes the report block of the task at idx (diag.c's reports): where
 * it was created and by whom, and the awaited-by chain with the await
 * site of every edge, a line each, each ending in a newline; index as
 * for lasio_callgraph_capture_. [-0, +1, m] */
LASIO_HIDDEN void lasio_task_pushreport_(lua_State *L, int idx,
                                         struct lasio_task *t, int index);
/* Sets capture_call_graph, format_call_graph, print_call_graph in the
 * module table at the top, core.internal.await_link / await_unlink and
 * task:created_at. [-0, +0, m] */
LASIO_HIDDEN void lasio_awaitgraph_open_(lua_State *L);
/* ====== } */

/* {====== Signal hub (sighub.c) ====== */
/* Watches sig for the loop: the hub's handler sets the bit in
 * loop->pending_signals and writes to loop->wake_fd[1]. */
LASIO_HIDDEN int lasio_sighub_add_(struct lasio_loop *loop, int sig);
LASIO_HIDDEN void lasio_sighub_remove_all_(struct lasio_loop *loop);
/* The same for a handler of loop:add_signal_handler (signal.c): no
 * interrupt hook, no exit on a second SIGINT. Returns -1 when sig cannot
 * be handled (sigaction refused it). */
LASIO_HIDDEN int lasio_sighub_add_user_(struct lasio_loop *loop, int sig);
LASIO_HIDDEN void lasio_sighub_remove_user_(struct lasio_loop *loop, int sig);
/* Keeps SIGPIPE from killing the process while loop is open, if it was at
 * its default (INTERNALS.md, rule 12): writes fail with EPIPE instead. */
LASIO_HIDDEN void lasio_sighub_ignore_sigpipe_(struct lasio_loop *loop);
/* While loop is open and SIGCHLD is ignored (auto-reaping), sets it to its
 * default, so the exit statuses of the loop's children are not lost. */
LASIO_HIDDEN void lasio_sighub_keep_children_(struct lasio_loop *loop);
/* Opens the loop's wake pipe (written by the hub's handler and by
 * lasio_pin_post) and its read event, once. Returns 0 or -1. */
LASIO_HIDDEN int lasio_wake_open_(struct lasio_loop *loop);
/* ====== } */

/* {====== Waiting for I/O (iowait.c) ======
 * A task waiting for I/O is in WAIT_FOREVER (no deadline) or WAIT_SLEEP
 * (its deadline in the loop's timer heap) and counted in loop->nsources;
 * the I/O object records the task pointer. The object's libevent callback
 * wakes it with lasio_io_wake_; cancellation and the deadline wake it
 * through the core. Either way the operation's continuation runs next and
 * re-checks its condition, so a spurious wake-up is harmless, and it
 * forgets the task pointer before returning or raising: a recorded task is
 * always suspended in that operation (and so alive). */

/* Waiting is three steps, so that a task pointer is recorded only once
 * nothing can fail any more:
 *   lasio_io_wait_(L, t, base, deadline);  (may raise; cuts the stack to
 *                                           base values)
 *   obj->waiter = t;                        (must not fail)
 *   return lasio_io_yield_(L, ctx, k);
 * deadline is a monotonic time, or 0 for none. */
LASIO_HIDDEN void lasio_io_wait_(lua_State *L, struct lasio_task *t, int base,
                                 double deadline);
LASIO_HIDDEN int lasio_io_yield_(lua_State *L, lua_KContext ctx,
                                 lua_KFunction k);
/* Undoes lasio_io_wait_ when the wait cannot go ahead after all. */
LASIO_HIDDEN void lasio_io_unwait_(struct lasio_task *t);
/* In a continuation: uncounts the wait; returns 1 when the task was
 * cancelled (the CancelledError is then at base + 2). */
LASIO_HIDDEN int lasio_io_resumed_(lua_State *L, struct lasio_loop *loop,
                                   int base);
/* Wakes t if it still waits. [-0, +0, m] */
LASIO_HIDDEN void lasio_io_wake_(lua_State *L, struct lasio_task *t);
/* The same from a libevent callback: never raises (a memory error is
 * printed, and the task's deadline or cancellation still wakes it). */
LASIO_HIDDEN void lasio_io_wake_cb_(struct lasio_loop *loop,
                                    struct lasio_task *t);
/* Runs body(L) in protected mode on loop->L with the light userdata ud as
 * its argument; returns 0, or -1 after printing the error. */
LASIO_HIDDEN int lasio_io_guard_(struct lasio_loop *loop, lua_CFunction body,
                                 void *ud);
/* The deadline for a timeout of `seconds` (<0 means none): 0 or a
 * monotonic time. */
LASIO_HIDDEN double lasio_io_deadline_(double seconds);
/* The running loop; raises "what: no running loop" without one. */
LASIO_HIDDEN struct lasio_loop *lasio_io_running_loop_(lua_State *L,
                                                       const char *what);
/* Sets wait_readable and wait_writable in the module table at the top and
 * adds add_reader, remove_reader, add_writer, remove_writer to the loop's
 * methods (fdwatch.c). */
LASIO_HIDDEN void lasio_fdwatch_open_(lua_State *L);
/* Takes link out of the loop's list if *linked (and clears it). */
LASIO_HIDDEN void lasio_io_unlink_(struct lasio_loop *loop,
                                   struct lasio_iolink *link,
                                   unsigned char *linked);
/* gettimeout's result: nil for none (< 0), else the seconds; returns 1.
 * [-0, +1, -] */
LASIO_HIDDEN int lasio_io_pushtimeout_(lua_State *L, double timeout);
/* Reads a timeout argument at idx: nil (none, -1) or a number >= 0. */
LASIO_HIDDEN double lasio_io_checktimeout_(lua_State *L, int idx,
                                           const char *what);
/* ====== } */

/* {====== OSError (errors.c) ====== */
/* Pushes an OSError for errno value err, named after the operation:
 * "op: strerror" with fields code ("ECONNREFUSED"), errno and op.
 * [-0, +1, m] */
LASIO_HIDDEN void lasio_oserror_push_(lua_State *L, const char *op, int err);
/* Same with a message of its own. */
LASIO_HIDDEN void lasio_oserror_pushmsg_(lua_State *L, const char *op, int err,
                                         const char *msg);
/* Raises lasio_oserror_push_(op, err). */
LASIO_HIDDEN int lasio_oserror_raise_(lua_State *L, const char *op, int err);
/* ====== } */

/* Raises "bad argument #arg to 'fname' (msg)" with the public name given:
 * luaL_argerror finds a name only from the call site or by searching the
 * loaded modules, which gives '?' for a method called through pcall or a
 * tail call. Methods count arguments after self, as luaL_argerror does for
 * a method call. [-0, +0, v] */
LASIO_HIDDEN int lasio_argerror_(lua_State *L, int arg, const char *fname,
                                 const char *msg);
/* Checks that method argument idx (self is 1) has the type (a string also
 * passes as a number when it converts, a number as a string, as
 * luaL_check* accept them), else lasio_argerror_ names fname.
 * [-0, +0, v] */
LASIO_HIDDEN void lasio_checkargtype_(lua_State *L, int idx, int type,
                                      const char *fname);

/* {====== Inspector (inspect.c, snapshot.c, jsonlite.c) ======
 * `lasio ps PID` and its siblings: a thread accepts on an abstract Unix
 * socket and hands each request to the loop, which answers between task
 * steps (docs/SEEING.md, "Looking at a running process"). */

/* The protocol's version, in every request and reply ("v"). */
#define LASIO_INSPECT_VERSION 1

/* CLOCK_MONOTONIC_COARSE in ns: a few instructions, ticks of some ms.
 * Summed over steps, the differences of a coarse clock are an unbiased
 * estimate of the time spent: a step crosses a tick with the probability
 * of its length over the tick. */
static inline int64_t
lasio_coarse_ns_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Starts serving loop on the abstract socket `name` (NULL: "lasio/PID").
 * Call it on the thread that runs the loop. Returns 0, or -1 with errno
 * (EBUSY: the process serves a loop already). */
LASIO_HIDDEN int lasio_inspect_start_(struct lasio_loop *loop,
                                      const char *name);
/* Stops serving (the loop closes): joins the thread, frees everything.
 * Runs no Lua code. */
LASIO_HIDDEN void lasio_inspect_stop_(struct lasio_loop *loop);
/* Answers the request text req (len bytes) on the loop: pushes the reply
 * line (JSON, without its newline). [-0, +1, m] */
LASIO_HIDDEN void lasio_snapshot_reply_(lua_State *L, struct lasio_loop *loop,
                                        const char *req, size_t len);
/* Pushes the text of `lasio dump` for loop (SIGQUIT). [-0, +1, m] */
LASIO_HIDDEN void lasio_snapshot_dump_(lua_State *L, struct lasio_loop *loop);

/* One top-level member of a JSON object: the key without its quotes and
 * the value's raw text (a string keeps its quotes). */
struct lasio_jfield {
    const char *key, *val;
    size_t klen, vlen;
};
/* Reads the JSON object text s: fills out[0..max-1] with its members and
 * returns their count, or -1 when s is not one valid JSON object. */
LASIO_HIDDEN int lasio_json_fields_(const char *s, size_t len,
                                    struct lasio_jfield *out, int max);
/* The member called key, or NULL. */
LASIO_HIDDEN const struct lasio_jfield *
lasio_json_get_(const struct lasio_jfield *f, int n, const char *key);
/* Decodes the string value of f into dst (room for f->vlen + 1 bytes),
 * NUL-terminated; returns its length (0 when f is not a string). */
LASIO_HIDDEN size_t lasio_json_unquote_(const struct lasio_jfield *f,
                                        char *dst);
/* Writes s (len bytes) as a JSON string through put. */
LASIO_HIDDEN void
lasio_json_quote_(const char *s, size_t len,
                  void (*put)(void *ud, const char *p, size_t n), void *ud);
/* {====== Event trace (trace.c, tracewrite.c, tracelua.c) ======
 * Every site is `if (loop->trace) lasio_trace_*_(...)`: one predictable
 * branch when nothing records. A site appends a fixed-size binary record
 * (strings interned into the trace's own C table); the writers format
 * them at the end (tracewrite.c), so the trace holds no Lua value and can
 * be written from anywhere, also while the state is being torn down. */
enum lasio_trace_ev {
    TEV_TASK_CREATE = 1,
    TEV_TASK_READY,
    TEV_TASK_RUN,
    TEV_TASK_WAIT,
    TEV_TASK_CANCEL,
    TEV_TASK_DONE,
    TEV_TASK_RENAME,
    TEV_TIMER_ADD,
    TEV_TIMER_FIRE,
    TEV_TIMER_CANCEL,
    TEV_IO_WAIT,
    TEV_IO_READY,
    TEV_CB_RUN,
    TEV_THREAD_SUBMIT,
    TEV_THREAD_DONE,
    TEV_LOOP_POLL,
    TEV_CLOCK_JUMP,
    TEV_MARK,
    TEV_BEGIN,
    TEV_END,
    TEV_COUNTER,
    TEV_N
};
/* Who made a task ready (task.ready's `by`), when not a running task. */
enum lasio_trace_by {
    TBY_NONE,
    TBY_TASK,
    TBY_TIMER,
    TBY_IO,
    TBY_CB,
    TBY_THREAD,
    TBY_START,
    TBY_CANCEL
};
/* What a task waits on (task.wait's `what`), formatted by the writer. */
enum lasio_trace_wait {
    TWAIT_SLEEP = 1, /* a = the delay in ns */
    TWAIT_FOREVER,   /* sleep(math.huge) */
    TWAIT_TASK,      /* a = the awaited task's id */
    TWAIT_WHAT,      /* s1 = what the waiting function says */
    TWAIT_IO         /* s1 = what (a read, a write, an accept...) */
};
enum lasio_trace_status { TDONE_OK = 1, TDONE_ERROR, TDONE_CANCELLED };
enum lasio_trace_format { TRACE_JSONL, TRACE_CHROME };

/* One event: 48 bytes, whatever the kind. The fields' meaning per kind is
 * listed at the top of trace.c. */
struct lasio_trace_rec {
    int64_t ts;      /* the loop's clock in ns */
    int64_t a, b, c; /* numbers */
    int32_t task;    /* the task it is about, or 0 */
    uint8_t ev;      /* enum lasio_trace_ev */
    uint8_t kind;    /* a sub-kind: by, wait kind, status */
    uint16_t pad;
    uint32_t s1, s2; /* interned strings, 0: none */
};

/* An embedder's sink: called with every event as it happens (lasio.h). */
typedef lasio_trace_sink_fn lasio_trace_fn;

struct lasio_trace {
    /* the records: a growing array, or a ring of `ring` (> 0) entries
     * whose oldest is at head once it has wrapped */
    struct lasio_trace_rec *recs;
    size_t n, cap, ring, head;
    /* interned strings: ids 1..nstr, an open-addressing index */
    char **str;
    uint32_t *slen, *index;
    uint32_t nstr, strcap, icap;
    /* the current name of every task seen (by id; 0: "Task-<id>"), kept
     * outside the records so a ring still names its tracks */
    uint32_t *names;
    int32_t ncap;
    uint8_t by;        /* enum lasio_trace_by of the wake-up under way */
    int32_t by_task;   /* with TBY_TASK: the task whose end wakes */
    uint8_t recording; /* records are kept for a file */
    uint8_t format;    /* enum lasio_trace_format */
    uint8_t stacks;    /* a stack summary on wait events */
    uint8_t virt, deterministic, has_seed;
    long long seed;
    int64_t start; /* the loop's clock at the start, ns */
    FILE *out;     /* the file, opened at the start */
    char *path;
    /* the embedder's sink and the seq of the events it got */
    lasio_trace_fn sink;
    void *sink_ud;
    uint64_t sink_seq;
    /* a timed recording (lasio_trace_record_for_) */
    struct event *stop_ev;
    void (*on_written)(void *ud, int status, const char *path);
    void *on_written_ud;
    struct lasio_trace_rec scratch; /* the record a sink alone gets */
};

/* The sites (loop->trace is not NULL). [-0, +0, -] unless said. */
/* A new task t, made while `parent` ran (NULL: none); L is the making
 * thread, for the site. [-0, +0, m] */
LASIO_HIDDEN void lasio_trace_create_(lua_State *L, struct lasio_loop *loop,
                                      struct lasio_task *t);
/* t joins the ready queue; by the running task, or trace->by. */
LASIO_HIDDEN void lasio_trace_ready_(struct lasio_loop *loop,
                                     struct lasio_task *t);
/* t waits: kind (enum lasio_trace_wait) with a number or a string; L is
 * the task's thread, for the site. [-0, +0, m] */
LASIO_HIDDEN void lasio_trace_wait_(lua_State *L, struct lasio_loop *loop,
                                    struct lasio_task *t, int kind, int64_t a,
                                    const char *what);
/* A cancel request for t; message at msgidx (0: none). [-0, +0, m] */
LASIO_HIDDEN void lasio_trace_cancel_(lua_State *L, struct lasio_loop *loop,
                                      struct lasio_task *t, int msgidx);
/* t (at idx) is done. [-0, +0, m] */
LASIO_HIDDEN void lasio_trace_done_(lua_State *L, int idx,
                                    struct lasio_loop *loop,
                                    struct lasio_task *t);
/* t was renamed to the string at nameidx. */
LASIO_HIDDEN void lasio_trace_rename_(lua_State *L, struct lasio_loop *loop,
                                      struct lasio_task *t, int nameidx);
/* Right after lasio_io_wait_ (which records an io.wait and a task.wait
 * of t knowing neither): names the fd and the operation of that wait,
 * "StreamReader:read fd 7". */
LASIO_HIDDEN void lasio_trace_io_detail_(struct lasio_loop *loop,
                                         struct lasio_task *t, int fd,
                                         const char *op);
/* Any other event: numbers a, b, c and a static string (may be NULL). */
LASIO_HIDDEN void lasio_trace_emit_(struct lasio_loop *loop, int ev,
                                    int32_t task, int64_t a, int64_t b,
                                    int64_t c, const char *what);
/* A user event of lasio.trace (mark, begin, end, counter) on the current
 * task's track: name, args as JSON text (or NULL), a counter's value
 * (isfloat: a double's bits). */
LASIO_HIDDEN void lasio_trace_user_(struct lasio_loop *loop, int ev,
                                    const char *name, size_t namelen,
                                    const char *args, size_t argslen,
                                    int isfloat, int64_t value);
/* Sets who is making tasks ready now (enum lasio_trace_by, TBY_NONE when
 * done). */
static inline void
lasio_trace_by_(struct lasio_loop *loop, int by) {
    if (loop->trace)
        loop->trace->by = (uint8_t)by;
}

/* Recording. Starts a recording of loop's events into path (the file is
 * opened now: NULL and a message in err when it cannot be) in format, the
 * last `ring` events only when ring > 0; stacks adds a Lua stack summary
 * to wait events. Returns 0, or -1 with err (size errlen) filled. */
LASIO_HIDDEN int lasio_trace_start_(struct lasio_loop *loop, const char *path,
                                    int format, size_t ring, int stacks,
                                    char *err, size_t errlen);
/* Ends the recording: writes the file and closes it. Returns 0, or -1
 * (errno set) when writing failed. Nothing recording: 0. */
LASIO_HIDDEN int lasio_trace_stop_(struct lasio_loop *loop);
/* Writes what a ring recording holds now, and goes on recording. */
LASIO_HIDDEN int lasio_trace_snapshot_(struct lasio_loop *loop);
/* Records for `seconds` of real time, then writes the file and calls
 * done(ud, 0 or -1, path) from the loop (the inspector's `lasio trace
 * PID`). Returns 0, or -1 with err filled (a recording runs already, the
 * file cannot be opened, out of memory). */
LASIO_HIDDEN int
lasio_trace_record_for_(struct lasio_loop *loop, const char *path, int format,
                        double seconds,
                        void (*done)(void *ud, int status, const char *path),
                        void *ud, char *err, size_t errlen);
/* The format a file name asks for: TRACE_CHROME for .json, TRACE_JSONL
 * for .jsonl, -1 otherwise. */
LASIO_HIDDEN int lasio_trace_format_of_(const char *path);
/* Sets or clears (fn NULL) the embedder's sink. Returns 0 or -1 (no
 * memory). */
LASIO_HIDDEN int lasio_trace_sink_(struct lasio_loop *loop, lasio_trace_fn fn,
                                   void *ud);
/* Writes and frees the loop's trace (loop close). Runs no Lua code. */
LASIO_HIDDEN void lasio_trace_free_(struct lasio_loop *loop);
/* The interned string id (trace.c, for the writer). */
LASIO_HIDDEN const char *lasio_trace_str_(struct lasio_trace *tr, uint32_t id,
                                          size_t *len);
/* Writes the records (oldest first) to tr->out in tr->format. Returns 0 or
 * -1. tracewrite.c. */
LASIO_HIDDEN int lasio_trace_write_(struct lasio_trace *tr);
/* Formats record r (seq given) as one JSONL line, without its newline,
 * into buf (grown with realloc). Returns the length or -1. */
LASIO_HIDDEN long lasio_trace_jsonl_line_(struct lasio_trace *tr,
                                          const struct lasio_trace_rec *r,
                                          uint64_t seq, char **buf,
                                          size_t *cap);
/* The seed and determinism of a virtual loop (0 for a real one). */
LASIO_HIDDEN int lasio_vclock_seed_(struct lasio_loop *loop, long long *seed,
                                    int *deterministic);
/* Sets `trace_api` (start, stop, mark, region, counter, recording) in the
 * table at the top (core.internal: lua/lasio/trace.lua makes it
 * lasio.trace, loaded on first use). [-0, +0, m] */
LASIO_HIDDEN void lasio_trace_open_(lua_State *L);
/* ====== } */

#endif
