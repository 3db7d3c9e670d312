/* The shared-memory region of a process pool, and the primitives that work
 * across processes: futexes and a robust process-shared mutex.
 *
 * One anonymous MAP_SHARED region is mapped by the parent before it forks
 * the pool's zygote, so the zygote and every worker it forks see it at the
 * same address.  Layout:
 *
 *   ne_shm header | ne_wslot[nworkers] | ne_slot[NE_SLOTS]
 *   | argument arena (parent allocates) | one result window per worker
 *
 * The arena and windows are reserved with MAP_NORESERVE: pages cost memory
 * only once touched, and are reused from the start of each area.
 *
 * A task lives in a slot.  Slot states (shm->lock):
 *
 *   FREE --parent publishes--> READY --worker claims--> RUNNING
 *    ^                           |                         |
 *    |   parent withdraws        |       worker posts      v
 *    +------ (cancel) -----------+                       DONE
 *    +------------- parent consumes the result ------------+
 *    +------------- worker died: parent fails the task ----+ (from RUNNING)
 *
 * To stop a RUNNING task (task_timeout, cancel_running), the parent marks
 * the slot and its worker under the lock; the zygote kills the worker and
 * the task ends as a dead worker's does (task_stop.c).
 *
 * A READY task counts as handed to a worker when some worker is committed
 * to claiming one next: a worker being spawned for it (NE_WORKER_SPAWN), one alive
 * and neither running a task, asleep nor leaving (starting, in its
 * initializer, returning from a task, lingering), or one asleep but woken
 * for it (nwoken).  With c such workers, the oldest c READY tasks in ring
 * order are the ones they will claim; shutdown(cancel_futures=True)
 * withdraws only those behind them, as the stdlib cancels only the calls
 * it has not handed to its workers' queue (slot_table.c,
 * committed_workers()).
 *
 * Every update made under the lock leaves a state another process can
 * recover from if the writer dies half-way (the lock is robust): rings may
 * hold stale indices, so whoever pops one checks the slot's state first.
 */
#ifndef NATIVE_EXEC_SHM_H
#define NATIVE_EXEC_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define NE_SLOTS 1024                     /* tasks in shared memory at once */
#define NE_RING (2 * NE_SLOTS)            /* room for stale entries left by a crash */
#define NE_INLINE 448                     /* payload bytes a slot holds itself */
#define NE_ALIGN 64
#define NE_ARENA_MAX (1ULL << 30)         /* virtual size of the argument arena */
#define NE_WINDOW_MAX (256ULL << 20)      /* virtual size of each result window */
#define NE_NAME_MAX 64
#define NE_LINGER_SPINS 200                /* sched_yield()s an idle worker waits before sleeping */
#define NE_STREAM_MIN (4ULL << 20)        /* payloads this big are read as they are written */
#define NE_STREAM_CHUNK (1ULL << 20)

/* A slot's state (ne_slot.state), in the order above. */
enum { NE_SLOT_FREE = 0, NE_SLOT_READY, NE_SLOT_RUNNING, NE_SLOT_DONE };
/* Where a payload lives (ne_span.kind): nowhere yet, in its slot, in the
 * argument arena, in its worker's result window, or in a named segment. */
enum { NE_SPAN_NONE = 0, NE_SPAN_INLINE, NE_SPAN_ARENA, NE_SPAN_WINDOW, NE_SPAN_NAMED };
/* A worker slot's state (ne_wslot.state): unused, asked of the zygote,
 * running, dead and not yet buried by the collector. */
enum { NE_WORKER_EMPTY = 0, NE_WORKER_SPAWN, NE_WORKER_ALIVE, NE_WORKER_DEAD };
/* Why the parent stops the worker running a slot (ne_slot.stop):
 * task_timeout, or cancel() with cancel_running (see task_stop.c). */
enum { NE_STOP_NONE = 0, NE_STOP_TIMEOUT, NE_STOP_CANCEL };
/* What the owner asks of the zygote (zygote_exit).  The request only ever
 * rises: a later, milder one (the collector's ordinary stop after a
 * terminate_workers()) must not undo a harsher one. */
enum {
    NE_ZYGOTE_RUN = 0,      /* fork workers as the owner asks */
    NE_ZYGOTE_DRAIN,        /* fork no more; leave once the workers have left */
    NE_ZYGOTE_TERMINATE,    /* SIGTERM every worker, SIGKILL after a grace period */
    NE_ZYGOTE_KILL,         /* SIGKILL every worker */
};

/* Where a payload lives. */
typedef struct {
    uint32_t kind;                        /* NE_SPAN_* */
    uint32_t pad;
    uint64_t offset;                      /* ARENA, WINDOW: from the region base */
    uint64_t length;
    uint64_t ring_end;                    /* WINDOW: ring position after it */
    char name[NE_NAME_MAX];               /* NAMED: its shm_open name */
} ne_span;

typedef struct {
    _Atomic uint32_t state;               /* NE_SLOT_*: changed under the lock */
    int32_t worker;                       /* lock: index of the worker running it */
    uint32_t is_error;                    /* result is a pickled exception */
    uint32_t stop;                        /* lock: NE_STOP_*, set while RUNNING */
    int64_t claimed_ns;                   /* lock: ne_monotonic_ns() at the claim */
    int64_t finished_ns;                  /* lock: and as its outcome was posted */
    ne_span args;                         /* pickled (fn, args, kwargs) */
    _Atomic uint64_t args_ready;          /* bytes of args written so far */
    ne_span result;
    unsigned char args_inline[NE_INLINE];
    unsigned char result_inline[NE_INLINE];
} ne_slot;

/* One worker process.  The parent moves EMPTY->SPAWN and DEAD->EMPTY; the
 * zygote moves SPAWN->ALIVE (or DEAD if fork fails) and ALIVE->DEAD. */
typedef struct {
    _Atomic uint32_t state;               /* NE_WORKER_* */
    int32_t pid;
    int32_t status;                       /* waitpid() status once DEAD */
    uint32_t sleeping;                    /* lock: waiting for work */
    uint32_t returning;                   /* lock: posted a result, sure to claim before sleeping */
    uint32_t init_failed;                 /* its initializer raised */
    uint32_t ready;                       /* past its initializer */
    uint32_t leaving;                     /* lock: posted its last task, claims no more */
    _Atomic uint32_t doomed;              /* lock: its task is stopped; the zygote
                                           * signals it, it claims no more */
    int64_t kill_at;                      /* zygote's: SIGKILL then, once SIGTERMed */
    uint64_t window_offset;               /* its result ring */
    uint64_t window_size;
    _Atomic uint64_t ring_head;           /* bytes ever reserved (worker) */
    _Atomic uint64_t ring_tail;           /* bytes ever released (parent) */
} ne_wslot;

typedef struct {
    pthread_mutex_t lock;                 /* robust, process-shared */
    /* lock */
    uint32_t ready[NE_RING];              /* slots for workers to claim */
    _Atomic uint64_t ready_head;          /* atomic only so idle workers may peek */
    _Atomic uint64_t ready_tail;
    uint32_t done[NE_RING];               /* slots whose result awaits the parent */
    uint64_t done_head, done_tail;
    uint32_t nsleeping;                   /* workers waiting on work_seq */
    uint32_t nwoken;                      /* wake-ups not yet consumed */
    uint32_t nreturning;                  /* workers sure to claim before sleeping */
    uint32_t collector_sleeping;
    uint32_t stopping;                    /* workers exit once the queue is empty */
    /* futex words */
    _Atomic uint32_t work_seq;            /* workers wait here */
    _Atomic uint32_t collector_seq;       /* the parent's collector waits here */
    _Atomic uint32_t zygote_seq;          /* the zygote waits here */
    _Atomic uint32_t zygote_exit;         /* NE_ZYGOTE_*: raised by the owner only */
    int32_t zygote_pid;
} ne_shm;

/* The parent's (and, by fork, every child's) description of the region. */
typedef struct {
    char *base;
    size_t size;
    ne_shm *shm;
    ne_wslot *workers;
    ne_slot *slots;
    uint64_t arena_offset, arena_size;
    int nworkers;
} ne_region;

int ne_region_map(ne_region *r, int nworkers);
void ne_region_unmap(ne_region *r);
void ne_shm_lock(ne_shm *shm);
void ne_shm_unlock(ne_shm *shm);

/* CLOCK_MONOTONIC, which every process of a pool shares. */
int64_t ne_monotonic_ns(void);

/* futex(2) on a word of the shared region (not FUTEX_PRIVATE: processes share it). */
int ne_futex_wait(_Atomic uint32_t *word, uint32_t expected, long timeout_ns);
/* Bump the word and wake its waiters; safe in a signal handler. */
void ne_futex_ring(_Atomic uint32_t *word, int count);

/* Payloads too large for their area live in their own POSIX shm object,
 * unlinked by whoever reads it (or by the parent if the reader died). */
void *ne_named_create(char name[NE_NAME_MAX], size_t size);
void *ne_named_open(const char *name, size_t size);
void ne_named_release(void *addr, size_t size);
void ne_named_unlink(const char *name);

/* The parent's allocator for the argument arena (GIL-protected). */
typedef struct ne_extent {
    struct ne_extent *next;
    uint64_t offset, length;
} ne_extent;

typedef struct {
    ne_extent *free;                      /* sorted by offset, coalesced */
    uint64_t offset, size;
} ne_arena;

int ne_arena_init(ne_arena *a, uint64_t offset, uint64_t size);
void ne_arena_fini(ne_arena *a);
int ne_arena_alloc(ne_arena *a, uint64_t length, uint64_t *offset);
void ne_arena_free(ne_arena *a, uint64_t offset, uint64_t length);

static inline uint64_t
ne_align(uint64_t n)
{
    return (n + NE_ALIGN - 1) & ~(uint64_t)(NE_ALIGN - 1);
}

#endif /* NATIVE_EXEC_SHM_H */
