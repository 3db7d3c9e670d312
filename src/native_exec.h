/* The one private header every C file of native_exec._native includes.
 *
 * Layout of the C core:
 *   module.c         module state, multi-phase init, to_thread, exit and fork hooks
 *   task.c           a unit of work: the call, where it runs, how it completes
 *   completion.c     completing a future, the one way: at once, through its
 *                    loop's bridge, or in a forked child
 *   bridge.c         outcomes handed to an asyncio loop, one wake-up a batch
 *   native_future.c  NativeFuture: the asyncio future that starts its call when consumed
 *   native_thread.c  the one home of native threads: start (signals kept for
 *                    the main thread), name, join from any number of callers,
 *                    and the one wait on a condition with the GIL released
 * Thread pools (ne_tpool_*):
 *   thread_pool.c    the ThreadPool type: queue, submit/run, shutdown
 *   thread_pool_fork.c the registry of thread pools, their at-fork handlers
 *   thread_worker.c  the pthread each pool worker runs
 * Process pools (ne_ppool_*):
 *   process_pool.c   the ProcessPool type and its life cycle: workers on demand,
 *                    breaking, shutdown, a forked child's copy
 *   process_submit.c submit/run: pickling a call and handing it to the slot table
 *   slot_table.c     the parent's slot table: placing and streaming a task in
 *                    shared memory, the ready ring, the pending queue, withdraw
 *   task_stop.c      stopping a running task: task_timeout, cancel_running
 *   shm.c            a process pool's shared region, futexes, the robust lock, the arena
 *   payload.c        objects pickled into and out of shared memory
 *   collector.c      the parent's thread that completes futures from worker results
 *   zygote.c         the single-threaded process that forks a pool's workers
 *   process_worker.c the loop a worker process runs
 *
 * Locking, in one place.  Five locks, listed first, then everything the
 * GIL alone protects, with what a free-threaded port needs in its place.
 *
 *   - ne_tpool.mutex: the queue, counters and worker list (fields marked
 *     "mutex" below) and ne_worker.next/current/index/returning; it hands a
 *     task from submitter to worker.  Taken with or without the GIL, but no
 *     thread waits for the GIL holding it, so the two cannot deadlock: a
 *     thread holding the GIL waits on the pool's conditions only through
 *     ne_wait_until (native_thread.c), which lets the GIL go before taking
 *     the mutex and retakes it after letting the mutex go.  nqueued is
 *     _Atomic: linger() (thread_worker.c) peeks at it unlocked.  Nesting: the
 *     registry lock, then pool mutexes (fork_prepare).
 *   - registry_lock (thread_pool_fork.c): the static `registry` and ne_tpool.next
 *     (listed under GIL below, but it is this lock): fork handlers walk it.
 *   - ne_thread.mutex (native_thread.c): a handle's state, joining and
 *     orphaned flags; its refs are atomic.  Joiners wait on it through
 *     ne_wait_until.  Nesting: a pool mutex, then handle mutexes (reap).
 *   - orphans_lock (native_thread.c): the orphan list; held only to link
 *     or unlink, never across a wait; reinitialised in a forked child.
 *   - ne_shm.lock (robust, process-shared, see shm.h): rings, slot states,
 *     worker counters shared with the zygote and workers.  A leaf: held
 *     for a few loads and stores, never across Python, a wait or another
 *     lock; the parent takes it with the GIL held, a worker or the zygote
 *     without one.  A holder that dies leaves it to the next taker
 *     (EOWNERDEAD), who makes it consistent.
 *   - concurrent.futures.Future._condition: that future's state, changed by
 *     workers, the collector and user threads (cancel()) alike.
 *
 * GIL, module.c (ne_state):
 *   default_ppool: any to_process caller; default_of checks, runs the
 *     factory (Python: threads switch), checks again and returns a borrowed
 *     pointer; _after_fork_child clears it.  loop_default_pool and
 *     NativeThreadPoolExecutor: set by the first to_thread.  Port: critical
 *     section on the module, return a strong reference.
 *   exiting: set by _shutdown_all, read by every submit: atomic.
 *   bridges, ppools: borrowed lists; linked by submitters and ppool_new,
 *     unlinked by dealloc on whichever thread drops the last reference (a
 *     worker, the collector, the loop, the GC).  Port: a state mutex, and
 *     PyUnstable_TryIncRef in ne_bridge_for_loop and snapshot_pools, since
 *     an entry may already be in dealloc (so may ne_tpool_snapshot's).
 *   The other fields are set by module_exec, read-only until module_clear.
 * GIL, bridge.c (ne_bridge.head/tail/scheduled, the batch of outcomes;
 *   ne_state.spare_outcomes/nspare_outcomes, the nodes kept for reuse):
 *   posted to through ne_complete by thread-pool workers (ne_task_complete),
 *   the collector, threads abandoning work (shutdown, a broken pool,
 *   cancel_unclaimed); taken by the loop thread (bridge_call).  Port: a
 *   per-bridge mutex, not held across call_soon_threadsafe, and one for
 *   the spare nodes (or a per-thread cache).
 * GIL, task.c (ne_task): the worker writes result/error in ne_task_run and
 *   hands them to ne_complete: a concurrent future it completes itself, for
 *   an asyncio one the outcome node takes its own references, and the
 *   bridge hand-off (GIL release/acquire; then the bridge mutex) orders its
 *   writes, and those of an abandoning thread, before the loop thread reads
 *   them.  ne_task_begin calls done() on an asyncio future off its loop
 *   (3.14t: _asyncio.Future's own critical section).
 * GIL, thread_pool.c/thread_worker.c (ne_tpool):
 *   forked_workers, forked_tasks: filled by fork_child (atfork, no GIL) and
 *     drained by ne_tpool_after_fork_child, both in the child's one thread:
 *     already safe.  prefix/initializer/initargs: read-only.
 *   ne_worker_spawn links w into workers before w->name is set; only the
 *     GIL keeps an os.fork() (whose child forgets w) out: set name first.
 * GIL, process_pool.c/process_submit.c/slot_table.c/collector.c (ne_ppool,
 *   parent side): records[] (with streaming/release_deferred), free_slots,
 *   nfree, arena, pending_head/tail, npending, next_ticket, nalive,
 *   shutdown, starting, broken, nsubmitting, startup_deaths, zygote_pid and
 *   region.base (listed as set at creation, but cleared later),
 *   collector_state (0->1->2), collector.  Touched by submitting threads
 *   (enqueue, ne_slots_admit, ne_slots_refill), cancellers (_withdraw,
 *   _claimed, ne_slots_cancel_unclaimed), the collector (complete_slot,
 *   bury, ne_ppool_break, ne_slots_refill, ne_ppool_teardown), the
 *   done-callbacks it runs, and stats().  Invariants span fields: a
 *   submit's refuse check and place/publish; "nothing in flight, nothing
 *   pickling" before the collector unmaps; _withdraw's CAS and
 *   ne_slots_release against complete_slot.  Port: one per-pool mutex,
 *   dropped around Python (pickling, completing futures) and the streaming
 *   copy, which runs without the GIL and for which records[].streaming
 *   defers recycling.  collector is set by the starter before the thread
 *   runs, and joined through its handle (native_thread.c: its own mutex).
 *   batch, dead, next_due_ns: the collector's alone.  running: committed_workers'
 *   scratch, used with the shared lock held and no Python in between.
 *   foreign: set only in a forked child.
 *   region.shm/slots/workers: set at creation; wait_for_news reads them
 *   without the GIL, safe as only the collector unmaps once it has one.
 * GIL, Python: ProcessFuture.cancel/running and ProcessNativeFuture.cancel
 *   (_process_future.py) read _ne_pool/_ne_ticket and call _withdraw or
 *   _claimed, atomic against the collector only by the GIL (then the pool
 *   mutex); two racing cancel()s are benign (the second gets -1).
 *   _thread_worker.py relies on threading._active_limbo_lock, not on the GIL.
 * GIL, native_future.c (ne_lazy: pending, pool, awaited): the loop's
 *   thread alone, as for the asyncio.Future it extends.  Its statics
 *   (lazy_offset, future_base and the base's descriptors) are set by
 *   module_exec and read-only after.
 * Statics: current_worker, current_collector, loading, forking (zygote.c,
 *   across the fork hooks, which may switch threads): _Thread_local.
 *   counter (shm.c): atomic.  zygote_shm: the zygote's, set before its
 *   SIGCHLD handler.  installed (thread_pool_fork.c): module_exec, under the
 *   import lock.  Every Py_INCREF/DECREF on a worker or the collector is
 *   made with the GIL held (3.13t+: an attached thread state).
 */
#ifndef NATIVE_EXEC_H
#define NATIVE_EXEC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>

#include "compat.h"
#include "shm.h"

typedef struct ne_state ne_state;
typedef struct ne_task ne_task;
typedef struct ne_bridge ne_bridge;
typedef struct ne_thread ne_thread;
typedef struct ne_outcome ne_outcome;
typedef struct ne_tpool ne_tpool;
typedef struct ne_worker ne_worker;
typedef struct ne_ppool ne_ppool;

/* ------------------------------------------------------------ module.c */

struct ne_state {
    PyTypeObject *ThreadPoolType;
    PyTypeObject *BridgeType;
    PyTypeObject *ProcessPoolType;

    PyObject *get_running_loop;      /* asyncio.get_running_loop */
    PyObject *NativeFuture;          /* native_exec._future.NativeFuture */
    PyObject *deferred_run;          /* native_exec._future.deferred_run */
    PyObject *to_thread;             /* this module's to_thread */
    PyObject *ConcurrentFuture;      /* concurrent.futures.Future */
    PyObject *BrokenThreadPool;      /* concurrent.futures.thread.BrokenThreadPool */
    PyObject *ProcessFuture;         /* native_exec._process_future.ProcessFuture */
    PyObject *ProcessNativeFuture;   /* native_exec._process_future.ProcessNativeFuture */
    PyObject *BrokenProcessPool;     /* concurrent.futures.process.BrokenProcessPool */
    PyObject *WorkerDied;            /* native_exec._errors.WorkerDied */
    PyObject *TaskTimeout;           /* native_exec._errors.TaskTimeout */
    PyObject *process_worker;        /* native_exec._process_worker: hooks run in workers */
    PyObject *outcome_unpickle_failed; /* native_exec._process_future.outcome_unpickle_failed */
    PyObject *oob_dumps;             /* native_exec._serialize.dumps */
    PyObject *oob_loads;             /* native_exec._serialize.loads */
    PyObject *by_value_dumps;        /* native_exec._serialize.dumps_by_value */
    PyObject *known_in_workers;      /* native_exec._serialize.known_in_workers */
    PyObject *s_module;              /* "__module__" */
    PyObject *pickle_dumps;
    PyObject *pickle_loads;
    PyObject *protocol;              /* 5 */
    PyObject *kw_buffer_callback;    /* ("buffer_callback",) */
    PyObject *kw_buffers;            /* ("buffers",) */
    PyObject *s_ne_pool;
    PyObject *s_ne_ticket;
    PyObject *enter_worker;          /* native_exec._thread_worker.enter_worker */
    PyObject *leave_worker;          /* native_exec._thread_worker.leave_worker */
    PyObject *settle_inherited;      /* native_exec._thread_worker.settle_inherited */
    PyTypeObject *NativeFutureType;  /* native_future.c */
    PyObject *asyncio_to_thread;     /* asyncio.to_thread */
    PyObject *loop_default_pool;     /* native_exec._thread.loop_default_pool; on first use */
    PyObject *NativeThreadPoolExecutor; /* native_exec._thread.ThreadPoolExecutor; on first use */
    PyObject *hidden_loop;           /* weakref: the last loop that hides its default executor */
    PyObject *hidden_pool;           /* the native pool to_thread installed there */
    PyObject *s_default_executor;    /* "_default_executor" */
    PyObject *s_pool;                /* "_pool" */
    PyObject *default_ppool_factory; /* native_exec._process_future.default_process_pool */

    /* interned names, for method calls on the hot path */
    PyObject *s_set_result;
    PyObject *s_set_exception;
    PyObject *s_done;
    PyObject *s_cancel;
    PyObject *s_set_running_or_notify_cancel;
    PyObject *s_call_soon_threadsafe;
    PyObject *s_is_closed;
    PyObject *kw_loop;               /* ("loop",), kwnames for NativeFuture(loop=) */

    /* GIL */
    ne_ppool *default_ppool;         /* strong; created by the first to_process */
    ne_bridge *bridges;              /* borrowed; every live bridge */
    ne_outcome *spare_outcomes;      /* bridge.c: nodes kept for reuse */
    int nspare_outcomes;
    ne_ppool *ppools;                /* borrowed; every live process pool */
    int exiting;                     /* interpreter is shutting down: no new work */
};

ne_state *ne_state_of_type(PyTypeObject *tp);
int ne_parse_shutdown(PyObject *args, PyObject *kwargs, int *wait, int *cancel_futures);

/* obj.name() and obj.name(arg); return a new reference or NULL.  The spare
 * slot in front of the arguments lets the call prepend `self` for free. */
static inline PyObject *
ne_call_method0(PyObject *obj, PyObject *name)
{
    PyObject *stack[2] = {NULL, obj};
    return PyObject_VectorcallMethod(
        name, stack + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static inline PyObject *
ne_call_method1(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *stack[3] = {NULL, obj, arg};
    return PyObject_VectorcallMethod(
        name, stack + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* obj.name() as a truth value: 1, 0, or -1 with an exception set. */
static inline int
ne_call_bool(PyObject *obj, PyObject *name)
{
    PyObject *r = ne_call_method0(obj, name);
    if (r == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(r);
    Py_DECREF(r);
    return truth;
}

/* ------------------------------------------------------------- stats.c */

#define NE_SAMPLES 1024          /* recent samples kept per measure */

/* The last NE_SAMPLES durations of one kind, in ns (a ring). */
typedef struct {
    int64_t ns[NE_SAMPLES];
    uint64_t n;                  /* ever added */
} ne_samples;

/* What a pool counts for stats() (GIL, see stats.c). */
typedef struct {
    uint64_t submitted, completed, failed, cancelled;
    uint64_t workers_started, worker_deaths, timeouts, recycled;
    ne_samples wait;             /* from submit to a worker taking it */
    ne_samples run;              /* from a worker taking it to its outcome */
} ne_counts;

/* How a future ends; the value that goes with it is the result, the
 * exception, or NULL. */
typedef enum { NE_RESULT, NE_EXCEPTION, NE_CANCELLED } ne_ending;

void ne_samples_add(ne_samples *s, int64_t ns);
void ne_counts_ended(ne_counts *c, ne_ending how);
PyObject *ne_counts_snapshot(const ne_counts *c, Py_ssize_t queued, Py_ssize_t running,
                             Py_ssize_t workers_alive);

/* -------------------------------------------------------------- task.c */

/* Life of a task:
 *
 *   ne_task_new --> queued in a pool --> taken by a worker --> run --+
 *                        |                                           |
 *                        +--> cancelled or failed unrun              |
 *                                     |                              |
 *          concurrent future: completed at once by the same thread <-+
 *          asyncio future: its outcome posted to its Bridge, completed
 *                          on the loop (ne_complete either way)
 *
 * A task owns strong references to everything it names; ne_task_free
 * releases them and must be called with the GIL. */
struct ne_task {
    ne_task *next;          /* link in a pool queue or a bridge batch */
    PyObject *fn;
    PyObject *args;         /* tuple */
    PyObject *kwargs;       /* dict, or NULL */
    PyObject *context;      /* contextvars.Context to run in, or NULL */
    PyObject *future;       /* NativeFuture if bridge, else concurrent.futures.Future */
    ne_bridge *bridge;      /* strong, or NULL for a concurrent future */
    PyObject *result;       /* set by ne_task_run on success */
    PyObject *error;        /* set by ne_task_run on failure */
    ne_counts *counts;      /* its thread pool's, once queued there; or NULL */
    int64_t submitted_ns;   /* ne_monotonic_ns() as it was queued */
    int64_t taken_ns;       /* as a worker took it */
};

ne_task *ne_task_new(PyObject *fn, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames, PyObject *context, PyObject *future,
                     ne_bridge *bridge);
void ne_task_free(ne_task *t);
int ne_task_traverse(ne_task *t, visitproc visit, void *arg);
int ne_task_begin(ne_state *st, ne_task *t);
void ne_task_run(ne_task *t);
void ne_task_complete(ne_state *st, ne_task *t);
void ne_task_abandon(ne_state *st, ne_task *t, PyObject *error);

/* -------------------------------------------------------- completion.c */

void ne_complete(ne_state *st, PyObject *future, ne_bridge *bridge, ne_ending how,
                 PyObject *value);
int ne_complete_now(ne_state *st, PyObject *future, int on_loop, ne_ending how,
                    PyObject *value);
void ne_complete_inherited(ne_state *st, PyObject *future, ne_bridge *bridge,
                           PyObject *error);
void ne_complete_with_error(ne_state *st, PyObject *future, ne_bridge *bridge);

/* ----------------------------------------------------- native_future.c */

PyTypeObject *ne_future_type_new(PyObject *module);
void ne_future_defer(PyObject *fut, PyObject *pool, ne_task *t, const char *name);

/* ------------------------------------------------------------ bridge.c */

/* An outcome waiting in a bridge's batch for its loop. */
struct ne_outcome {
    ne_outcome *next;
    PyObject *future;                /* strong */
    PyObject *value;                 /* strong: result or exception; NULL if cancelled */
    ne_ending how;
};

struct ne_bridge {
    PyObject_HEAD
    ne_state *st;
    PyObject *loop;                  /* strong */
    PyObject *call_soon_threadsafe;  /* strong; bound method of loop */
    ne_outcome *head, *tail;         /* GIL: outcomes waiting for the loop */
    int scheduled;                   /* GIL: a drain is queued on the loop */
    ne_bridge *next;                 /* GIL: link in st->bridges */
};

extern PyType_Spec ne_bridge_spec;
ne_bridge *ne_bridge_for_loop(ne_state *st, PyObject *loop);
void ne_bridge_post(ne_bridge *b, PyObject *future, ne_ending how, PyObject *value);
void ne_bridge_clear_spares(ne_state *st);

/* ------------------------------------------------------- thread_pool.c */

struct ne_worker {
    ne_worker *next;        /* mutex: link in pool->workers */
    ne_tpool *pool;          /* strong; released by the worker as it exits */
    ne_task *current;       /* mutex: taken from the queue, not yet finished */
    unsigned long index;    /* mutex: the lowest not used by a live worker */
    int returning;          /* mutex: finished a task, about to look at the queue */
    int promised;           /* mutex: started, or claimed while returning, for a
                             * queued call; cleared as it next looks at the queue */
    ne_thread *thread;      /* strong; handed to pool->gone as the worker leaves */
    PyObject *name;         /* str: threading name, f"{prefix}_{index}" */
    char os_name[16];       /* the same, cut to the 15 bytes Linux keeps */
};

struct ne_tpool {
    PyObject_HEAD
    ne_state *st;
    pthread_mutex_t mutex;
    pthread_cond_t work;     /* idle workers wait here for a task or shutdown */
    pthread_cond_t exited;   /* shutdown(wait=True) waits here for workers to leave */

    /* mutex */
    ne_task *head, *tail;
    _Atomic Py_ssize_t nqueued;  /* written under the mutex, read by linger()
                                  * without it: only through ne_queued_* */
    int nthreads;            /* workers started and not yet gone */
    int nidle;               /* workers waiting on `work` */
    int nwoken;              /* signals sent that no worker has consumed yet */
    int nreturning;          /* workers with `returning` set */
    int npromised;           /* workers with `promised` set, or being started
                              * for a call (counted before the worker exists) */
    int shutdown;
    int broken;              /* an initializer failed; the pool refuses work */
    ne_worker *workers;
    ne_thread **gone;        /* strong: threads of workers that left, not yet
                              * seen joined by a reap */
    size_t ngone, gone_cap;

    /* set at creation, then read-only */
    int max_workers;
    PyObject *prefix;        /* str */
    PyObject *initializer;   /* callable or None */
    PyObject *initargs;      /* tuple */

    /* GIL */
    ne_tpool *next;           /* registry lock: link in the registry */
    ne_counts counts;        /* stats() */

    /* what a fork left in the child, for the Python-level hook (GIL) */
    ne_worker *forked_workers;
    ne_task *forked_tasks;
};

/* The queue length, as a hint: linger() polls it without the mutex to see
 * that work arrived, then takes the mutex, which orders the queue itself.
 * So every access is atomic (C11: a plain access racing an atomic one is
 * undefined) and relaxed is enough.  Writers hold the mutex, so a load and
 * a store make the update; no read-modify-write is needed. */
static inline Py_ssize_t
ne_queued_get(ne_tpool *p)
{
    return atomic_load_explicit(&p->nqueued, memory_order_relaxed);
}

/* mutex */
static inline void
ne_queued_set(ne_tpool *p, Py_ssize_t n)
{
    atomic_store_explicit(&p->nqueued, n, memory_order_relaxed);
}

PyObject *ne_deferred_run(ne_state *st, PyObject *pool, PyObject *runner,
                          PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);

extern PyType_Spec ne_tpool_spec;
int ne_tpool_push(ne_tpool *p, ne_task *t, int elastic);
PyObject *ne_tpool_run(ne_tpool *p, PyObject *loop, PyObject *runner, const char *name,
                      PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
int ne_tpool_shutdown(ne_tpool *p, int wait, int cancel_futures);
void ne_tpool_break(ne_tpool *p);
void ne_tpool_note_gone(ne_tpool *p, ne_thread *thread);
ne_task *ne_tpool_take_all(ne_tpool *p);

/* ---------------------------------------------------- thread_pool_fork.c */

void ne_tpool_register(ne_tpool *p);
void ne_tpool_unregister(ne_tpool *p);
int ne_tpool_install_fork_handlers(void);
PyObject *ne_tpool_snapshot(void);
void ne_tpool_after_fork_child(ne_tpool *p, int quiet);

/* ----------------------------------------------------- native_thread.c */

typedef enum {
    NE_THREAD_NOT_STARTED,
    NE_THREAD_RUNNING,
    NE_THREAD_DONE,          /* its function returned; a join is short */
    NE_THREAD_JOINED,        /* joined or detached: nothing left to wait for */
} ne_thread_state;

typedef enum {
    NE_JOIN_WAIT,            /* the thread is ending: wait, not interruptible */
    NE_JOIN_INTERRUPTIBLE,   /* it may run long: signal handlers run meanwhile */
    NE_JOIN_IF_DONE,         /* join only a thread whose function returned */
} ne_join_how;

ne_thread *ne_thread_new(void);
void ne_thread_incref(ne_thread *t);
void ne_thread_decref(ne_thread *t);
int ne_thread_start(ne_thread *t, void (*fn)(void *), void *arg, const char *os_name);
int ne_thread_join(ne_thread *t, ne_join_how how);
ne_thread_state ne_thread_get_state(ne_thread *t);
void ne_thread_after_fork_child(ne_thread *t);
void ne_thread_join_orphans(ne_join_how how);
void ne_thread_fork_child(void);
int ne_wait_until(pthread_mutex_t *mutex, pthread_cond_t *cond,
                  int (*done)(void *arg), void *arg, int interruptible);

/* ----------------------------------------------------- thread_worker.c */

int ne_worker_spawn(ne_tpool *p);
int ne_worker_is_current(ne_tpool *p);
ne_worker *ne_worker_current(void);
void ne_worker_forget(ne_worker *w);

/* ------------------------------------------------------------ payload.c */

/* A Python object pickled, ready to be copied into shared memory. */
typedef struct {
    PyObject *inband;       /* bytes: the pickle stream */
    PyObject *ours;         /* list of large buffers sent out of band, or NULL */
    PyObject *foreign;      /* list of PickleBuffers from pickle, or NULL */
    Py_buffer *views;       /* one per out-of-band buffer, ours first */
    Py_ssize_t nviews;
    uint64_t size;          /* bytes once encoded */
} ne_blob;

int ne_blob_dump(ne_state *st, PyObject *obj, int depth, ne_blob *b);
void ne_blob_write(const ne_blob *b, char *dst, _Atomic uint64_t *ready, int release_gil);
uint64_t ne_blob_prefix_size(const ne_blob *b);
void ne_blob_write_prefix(const ne_blob *b, char *dst);
void ne_blob_write_buffers(const ne_blob *b, char *dst, _Atomic uint64_t *ready);
void ne_blob_clear(ne_blob *b);
PyObject *ne_blob_load(ne_state *st, const char *src, uint64_t len,
                       const _Atomic uint64_t *ready);
PyObject *ne_take_buffer(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* ------------------------------------------------------ process_pool.c */

/* A task the parent holds until a slot frees up. */
typedef struct ne_pending {
    struct ne_pending *next;
    ne_blob blob;
    PyObject *future;
    ne_bridge *bridge;
    uint64_t ticket;
    int64_t submitted_ns;
} ne_pending;

/* The parent's side of a slot (GIL). */
typedef struct {
    PyObject *future;       /* strong; NULL while the slot is free */
    ne_bridge *bridge;      /* strong, or NULL for a concurrent future */
    uint64_t ticket;        /* names the task for withdraw() */
    int64_t submitted_ns;   /* for the queue-wait statistics */
    uint64_t arena_offset;  /* its arguments' arena extent, if arena_length */
    uint64_t arena_length;
    int streaming;          /* the parent is still copying its arguments in */
    char *stream_dst;       /* where, while streaming */
    int release_deferred;   /* released meanwhile: free it once the copy ends */
} ne_record;

struct ne_ppool {
    PyObject_HEAD
    ne_state *st;
    ne_region region;        /* base is NULL once unmapped, or in a forked child */
    ne_arena arena;

    /* set at creation, then read-only (the zygote and workers read copies) */
    int max_workers;
    long max_tasks_per_child;   /* 0: no limit */
    uint64_t max_memory_per_child; /* bytes of RSS after a task; 0: no limit */
    int64_t task_timeout_ns;    /* 0: none */
    int cancel_running;         /* cancel() stops a running task's worker */
    PyObject *initializer;
    PyObject *initargs;
    pid_t owner_pid;
    pid_t zygote_pid;

    /* GIL */
    ne_record records[NE_SLOTS];
    uint32_t free_slots[NE_SLOTS];
    int nfree;
    ne_pending *pending_head, *pending_tail;
    Py_ssize_t npending;
    uint64_t next_ticket;
    int nalive;              /* workers spawning or alive */
    int shutdown;            /* refuses new work */
    int starting;            /* forking the zygote (Python runs meanwhile) */
    PyObject *broken;        /* str: why the pool is unusable, or NULL */
    int foreign;             /* this process is a fork of the pool's owner */
    int collector_state;     /* 0 not started, 1 running, 2 finished */
    ne_thread *collector;    /* strong, from the first submit on */
    int nsubmitting;         /* submits pickling (may run Python, switch threads) */
    int startup_deaths;      /* workers in a row that died in their initializer */
    uint32_t batch[NE_RING]; /* the collection round's results */
    ne_counts counts;        /* stats() */
    int *dead;               /* [max_workers]: the round's dead workers (collector's) */
    int64_t next_due_ns;     /* collector's: no task comes due before then */
    unsigned char *running;  /* [max_workers]: committed_workers()'s, lock held */
    ne_ppool *next;          /* link in st->ppools */
};

extern PyType_Spec ne_ppool_spec;
void ne_ppool_spawn_if_needed(ne_ppool *p);
void ne_ppool_break(ne_ppool *p, const char *reason);
int ne_ppool_shutdown(ne_ppool *p, int wait, int cancel_futures);
void ne_ppool_teardown(ne_ppool *p);
void ne_ppool_after_fork_child(ne_ppool *p, int quiet);

PyObject *ne_ppool_broken_error(ne_ppool *p, PyObject *reason);

/* ---------------------------------------------------- process_submit.c */

PyObject *ne_ppool_submit(ne_ppool *p, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames);
PyObject *ne_ppool_run(ne_ppool *p, const char *name, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames);
int ne_ppool_start(ne_ppool *p, ne_task *t);

/* -------------------------------------------------------- slot_table.c */

ne_pending *ne_pending_pop(ne_ppool *p);
void ne_pending_free(ne_pending *t);
int ne_slots_admit(ne_ppool *p, ne_blob *blob, PyObject *future, ne_bridge *bridge,
                   uint64_t ticket);
void ne_slots_refill(ne_ppool *p);
void ne_slots_release(ne_ppool *p, uint32_t idx);
int ne_slots_withdraw(ne_ppool *p, uint64_t ticket);
int ne_slots_claimed(ne_ppool *p, uint64_t ticket);
void ne_slots_cancel_unclaimed(ne_ppool *p, int spare_handed);

/* --------------------------------------------------------- task_stop.c */

int ne_stop_cancelled(ne_ppool *p, uint32_t idx);
int64_t ne_stop_overdue(ne_ppool *p);

/* --------------------------------------------------------- collector.c */

int ne_collector_start(ne_ppool *p);
int ne_collector_is_current(ne_ppool *p);

/* ------------------------------------------------------------ zygote.c */

int ne_zygote_start(ne_ppool *p);
int ne_fork_is_ours(void);
void ne_zygote_stop(ne_ppool *p, uint32_t request);

/* ---------------------------------------------------- process_worker.c */

_Noreturn void ne_process_worker_main(ne_ppool *p, int w);

#endif /* NATIVE_EXEC_H */
