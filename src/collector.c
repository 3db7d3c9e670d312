/* The collector: one thread per process pool in the parent.  It sleeps on
 * the region's collector futex (workers ring it when they post a result to
 * a sleeping collector, the zygote when a worker dies) and, holding the
 * GIL, completes a whole batch of futures per wake-up:
 *
 *   results posted -> futures completed, slots freed, pending tasks placed
 *   a worker died  -> its running tasks fail with WorkerDied; replaced on demand
 *   zygote gone    -> the pool is broken
 *   shutdown, nothing in flight -> processes stopped, region unmapped, exit
 *
 * Only this thread completes futures, so done-callbacks run here, never in
 * a thread waiting in result() (where a timeout or Ctrl-C must stay free to
 * interrupt the wait), as in the stdlib's manager thread.
 */
#include "native_exec.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define POLL_NS (100L * 1000 * 1000)   /* zygote liveness is checked this often */

static _Thread_local ne_ppool *current_collector;

/* Whether waiting for p's collector from this thread would wait on itself:
 * a future's done-callback, run by the collector, calling shutdown. */
int
ne_collector_is_current(ne_ppool *p)
{
    return current_collector == p;
}

/* The future in rec of a task that ended without its outcome: its worker
 * died (why NE_STOP_NONE; pid, status: which, and how) or the pool stopped
 * it (see task_stop.c).  A timeout fails it with TaskTimeout, a death with
 * WorkerDied; a cancel is its canceller's, counted and done already. */
static void
settle_lost(ne_ppool *p, ne_record *rec, uint32_t why, int pid, int status)
{
    if (rec->future == NULL || why == NE_STOP_CANCEL) {
        return;
    }
    PyObject *exc;
    if (why == NE_STOP_TIMEOUT) {
        p->counts.timeouts++;
        exc = PyObject_CallFunction(p->st->TaskTimeout, "di",
                                    (double)p->task_timeout_ns / 1e9, pid);
    }
    else {
        exc = PyObject_CallFunction(p->st->WorkerDied, "ii", pid, status);
    }
    if (exc == NULL) {
        exc = PyErr_GetRaisedException();
    }
    p->counts.failed++;
    ne_complete(p->st, rec->future, rec->bridge, NE_EXCEPTION, exc);
    Py_XDECREF(exc);
}

/* Unpickle slot idx's result and complete its future. */
static void
complete_slot(ne_ppool *p, uint32_t idx)
{
    ne_region *r = &p->region;
    ne_slot *s = &r->slots[idx];
    ne_record *rec = &p->records[idx];
    uint32_t stop = s->stop;  /* set only while RUNNING, under the lock */
    PyObject *value = NULL;
    const char *src = NULL;
    void *mapped = NULL;
    switch (s->result.kind) {
    case NE_SPAN_INLINE:
        src = (const char *)s->result_inline;
        break;
    case NE_SPAN_WINDOW:
        src = r->base + s->result.offset;
        break;
    case NE_SPAN_NAMED:
        src = mapped = ne_named_open(s->result.name, s->result.length);
        if (src == NULL) {
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, s->result.name);
        }
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, "native_exec: result missing from shared memory");
    }
    if (src != NULL && stop == NE_STOP_NONE) {
        value = ne_blob_load(p->st, src, s->result.length, NULL);
    }
    if (mapped != NULL) {
        ne_named_release(mapped, s->result.length);
    }
    if (s->result.kind == NE_SPAN_WINDOW && s->worker >= 0) {
        /* results of one worker arrive in the order it wrote them */
        _Atomic uint64_t *tail = &r->workers[s->worker].ring_tail;
        if (atomic_load(tail) < s->result.ring_end) {
            atomic_store(tail, s->result.ring_end);
        }
    }
    if (stop != NE_STOP_NONE) {
        PyErr_Clear();
        /* it finished after all, but the pool had stopped it: dropped */
        settle_lost(p, rec, stop, s->worker >= 0 ? r->workers[s->worker].pid : 0, 0);
    }
    else if (rec->future != NULL) {
        ne_samples_add(&p->counts.wait, s->claimed_ns - rec->submitted_ns);
        ne_samples_add(&p->counts.run, s->finished_ns - s->claimed_ns);
        ne_counts_ended(&p->counts, value == NULL || s->is_error ? NE_EXCEPTION : NE_RESULT);
        if (value == NULL) {
            PyObject *exc = PyErr_GetRaisedException();
            if (src != NULL) {
                /* read but not rebuilt: UnpicklingFailed, the error its
                 * cause; only this future fails */
                PyObject *failed = PyObject_CallFunction(p->st->outcome_unpickle_failed, "Oi",
                                                         exc, (int)s->is_error);
                if (failed != NULL) {
                    Py_SETREF(exc, failed);
                }
                else {
                    PyErr_WriteUnraisable(rec->future);
                }
            }
            ne_complete(p->st, rec->future, rec->bridge, NE_EXCEPTION, exc);
            Py_XDECREF(exc);
        }
        else if (s->is_error) {
            ne_complete(p->st, rec->future, rec->bridge, NE_EXCEPTION, value);
        }
        else {
            ne_complete(p->st, rec->future, rec->bridge, NE_RESULT, value);
        }
    }
    PyErr_Clear();
    Py_XDECREF(value);
    ne_slots_release(p, idx);
}

/* Workers that die by themselves before their initializer has finished,
 * this many in a row, break the pool rather than be replaced forever. */
#define STARTUP_DEATHS_MAX 3

/* An exit, or a crash signal: not killed from outside (which only calls
 * for a replacement). */
static int
dies_by_itself(int status)
{
    if (!WIFSIGNALED(status)) {
        return 1;
    }
    int sig = WTERMSIG(status);
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT;
}

/* For stats(): a worker that left by itself at a limit
 * (max_tasks_per_child, max_memory_per_child) was recycled; one that died
 * otherwise is a death, unless the pool stopped it (doomed). */
static void
count_departure(ne_ppool *p, int doomed, int pid, int status)
{
    if (doomed || pid == 0) {
        return;
    }
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        p->counts.worker_deaths++;
    }
    else if (!p->region.shm->stopping) {
        p->counts.recycled++;
    }
}

/* Worker w is dead: fail what it was running, free its place. */
static void
bury(ne_ppool *p, int w)
{
    ne_region *r = &p->region;
    ne_shm *shm = r->shm;
    ne_wslot *ws = &r->workers[w];
    uint32_t lost[NE_SLOTS], stop[NE_SLOTS];
    int nlost = 0;

    ne_shm_lock(shm);
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        if (atomic_load(&r->slots[idx].state) == NE_SLOT_RUNNING && r->slots[idx].worker == w) {
            stop[nlost] = r->slots[idx].stop;
            lost[nlost++] = idx;
        }
    }
    int doomed = (int)atomic_load(&ws->doomed);
    atomic_store(&ws->doomed, 0);
    if (ws->sleeping) {
        ws->sleeping = 0;
        shm->nsleeping--;
    }
    if (ws->returning) {
        ws->returning = 0;
        shm->nreturning--;
    }
    /* It may have died woken but before taking its wake-up: one too many
     * would be counted as pending, and a later task might wake nobody. */
    if (shm->nwoken > shm->nsleeping) {
        shm->nwoken = shm->nsleeping;
    }
    int pid = ws->pid, status = ws->status, init_failed = (int)ws->init_failed;
    int never_ready = !ws->ready;
    ws->init_failed = 0;
    ws->ready = 0;
    ws->leaving = 0;
    ws->pid = 0;
    atomic_store(&ws->ring_head, 0);
    atomic_store(&ws->ring_tail, 0);
    atomic_store(&ws->state, NE_WORKER_EMPTY);
    ne_shm_unlock(shm);
    ne_futex_ring(&shm->work_seq, INT32_MAX);
    p->nalive--;
    count_departure(p, doomed, pid, status);

    for (int i = 0; i < nlost; i++) {
        settle_lost(p, &p->records[lost[i]], stop[i], pid, status);
        ne_slots_release(p, lost[i]);
    }
    if (init_failed) {
        ne_ppool_break(p, "A process initializer failed, the process pool is not usable anymore");
    }
    else if (!never_ready) {
        p->startup_deaths = 0;
    }
    else if (pid != 0 && p->zygote_pid > 0 && dies_by_itself(status)
             && ++p->startup_deaths >= STARTUP_DEATHS_MAX) {
        /* its initializer keeps ending the process (os._exit, a crash)
         * without raising: every replacement would too */
        ne_ppool_break(p, "worker processes keep dying in their initializer, the process pool is not usable anymore");
    }
    else if (pid == 0 && status < 0) {
        char reason[160];
        snprintf(reason, sizeof(reason),
                 "could not fork a worker process (%s), the process pool is not usable anymore",
                 strerror(-status));
        ne_ppool_break(p, reason);
    }
}

/* Whether the zygote is still there (and reap it if not). */
static int
zygote_alive(ne_ppool *p)
{
    int status;
    pid_t rc = waitpid(p->zygote_pid, &status, WNOHANG);
    if (rc == 0) {
        return 1;
    }
    p->zygote_pid = 0;   /* exited and reaped, or reaped by someone else (ECHILD) */
    return 0;
}

/* One batch, with the GIL.  Returns 1 when the pool's work is over (only
 * the collector thread acts on that). */
static int
collect(ne_ppool *p)
{
    ne_region *r = &p->region;
    ne_shm *shm = r->shm;
    int *dead = p->dead;
    int ndead = 0;
    /* A zygote that left took its workers with it: those it reaped before
     * leaving died as their status says; any others died with it
     * (PDEATHSIG), unseen by anyone who could report them, and count as
     * killed.  Looked at first, so that every result they posted is in the
     * done ring read below. */
    int zygote_gone = p->zygote_pid > 0 && !zygote_alive(p);
    for (int w = 0; zygote_gone && w < r->nworkers; w++) {
        uint32_t state = atomic_load(&r->workers[w].state);
        if (state == NE_WORKER_ALIVE || state == NE_WORKER_SPAWN) {
            r->workers[w].status = SIGKILL;  /* a wait status: killed by SIGKILL */
            atomic_store(&r->workers[w].state, NE_WORKER_DEAD);
        }
    }
    /* deaths first: every result the dead posted is then in the done ring */
    for (int w = 0; w < r->nworkers; w++) {
        if (atomic_load(&r->workers[w].state) == NE_WORKER_DEAD) {
            dead[ndead++] = w;
        }
    }
    uint32_t n = 0;
    ne_shm_lock(shm);
    while (shm->done_head != shm->done_tail) {
        p->batch[n++] = shm->done[shm->done_head++ % NE_RING];
    }
    shm->collector_sleeping = 0;
    ne_shm_unlock(shm);
    for (uint32_t i = 0; i < n; i++) {
        /* a stale entry (its worker died mid-post) is not DONE: skip it */
        if (atomic_load(&r->slots[p->batch[i]].state) == NE_SLOT_DONE) {
            complete_slot(p, p->batch[i]);
        }
    }
    for (int i = 0; i < ndead; i++) {
        bury(p, dead[i]);
    }
    /* Asked to leave (shutdown, terminate_workers) with nothing left to
     * run, the zygote did as told; otherwise the pool cannot go on. */
    if (zygote_gone && (atomic_load(&shm->zygote_exit) == NE_ZYGOTE_RUN
                        || p->nfree != NE_SLOTS || p->pending_head != NULL)) {
        ne_ppool_break(p, "the pool's zygote process died, the process pool is not usable anymore");
    }
    if (p->broken == NULL) {
        ne_slots_refill(p);
        ne_ppool_spawn_if_needed(p);
    }
    if (p->task_timeout_ns > 0) {
        ne_stop_overdue(p);
    }
    return (p->shutdown || p->broken != NULL) && p->nfree == NE_SLOTS
           && p->pending_head == NULL && p->nsubmitting == 0;
}

/* Without the GIL: sleep until a worker posts, one dies, or timeout_ns.
 * seq is collector_seq as read before the caller checked its own
 * condition, so a ring in between is not lost. */
static void
wait_for_news(ne_ppool *p, uint32_t seq, long timeout_ns)
{
    ne_region *r = &p->region;
    ne_shm *shm = r->shm;
    ne_shm_lock(shm);
    int idle = shm->done_head == shm->done_tail;
    for (int w = 0; idle && w < r->nworkers; w++) {
        idle = atomic_load(&r->workers[w].state) != NE_WORKER_DEAD;
    }
    shm->collector_sleeping |= idle;
    ne_shm_unlock(shm);
    if (idle) {
        ne_futex_wait(&shm->collector_seq, seq, timeout_ns);
    }
}

static void
collector_main(void *arg)
{
    ne_ppool *p = arg;   /* the starter gave us a reference */
    current_collector = p;
    PyGILState_STATE gil = PyGILState_Ensure();
    for (;;) {
        uint32_t seq = atomic_load(&p->region.shm->collector_seq);
        long timeout_ns = POLL_NS;
        if (p->task_timeout_ns > 0) {
            /* wake up when the next running task may come due */
            int64_t until = p->next_due_ns - ne_monotonic_ns();
            timeout_ns = until < 1000000 ? 1000000 : until < POLL_NS ? (long)until : POLL_NS;
        }
        PyThreadState *ts = PyEval_SaveThread();
        wait_for_news(p, seq, timeout_ns);
        PyEval_RestoreThread(ts);
        if (p->foreign) {
            break;
        }
        if (collect(p)) {
            ne_ppool_teardown(p);
            break;
        }
    }
    p->collector_state = 2;
    current_collector = NULL;
    Py_DECREF((PyObject *)p);
    PyGILState_Release(gil);
}

/* GIL: start the collector on the first submit. */
int
ne_collector_start(ne_ppool *p)
{
    if (p->collector == NULL && (p->collector = ne_thread_new()) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(p);
    p->collector_state = 1;
    int rc = ne_thread_start(p->collector, collector_main, p, NULL);
    if (rc != 0) {
        p->collector_state = 0;
        Py_DECREF(p);
        PyErr_Format(PyExc_RuntimeError, "can't start the collector thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}
