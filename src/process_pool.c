/* The ProcessPool type: the parent's side of a process pool, and its life
 * cycle.
 *
 * submit()/run() (process_submit.c) pickle the call and hand it to the
 * slot table (slot_table.c), which places it in shared memory for a
 * worker (process_worker.c); workers
 * are started on demand through the zygote (zygote.c), and the collector
 * (collector.c) completes the futures.  A pool breaks when an initializer
 * keeps failing or the zygote is gone; it shuts down gently (shutdown), by
 * signalling its workers (terminate_workers, kill_workers), or, in a forked
 * child, by failing the parent's futures there.
 *
 * Everything parent-side is protected by the GIL; the shared region by its
 * lock (see shm.h). */
#include "native_exec.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static void
registry_unlink(ne_ppool *p)
{
    for (ne_ppool **pp = &p->st->ppools; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

/* A new BrokenProcessPool(reason), or NULL with an exception. */
PyObject *
ne_ppool_broken_error(ne_ppool *p, PyObject *reason)
{
    return PyObject_CallOneArg(p->st->BrokenProcessPool, reason);
}




/* Start workers through the zygote while queued tasks outnumber the
 * workers that could take them, up to max_workers. */
void
ne_ppool_spawn_if_needed(ne_ppool *p)
{
    if (p->broken != NULL || p->foreign || p->region.base == NULL) {
        return;
    }
    ne_region *r = &p->region;
    ne_shm *shm = r->shm;
    ne_shm_lock(shm);
    int64_t queued = (int64_t)(shm->ready_tail - shm->ready_head);
    /* a worker asleep (woken or not) or returning claims one task next */
    int64_t idle = (int64_t)shm->nsleeping + (int64_t)shm->nreturning;
    ne_shm_unlock(shm);
    int starting = 0;
    for (int w = 0; w < r->nworkers; w++) {
        starting += atomic_load(&r->workers[w].state) == NE_WORKER_SPAWN;
    }
    int64_t wanted = queued + (int64_t)p->npending - idle - starting;
    int spawned = 0;
    for (int w = 0; w < r->nworkers && wanted > 0 && p->nalive < p->max_workers; w++) {
        if (atomic_load(&r->workers[w].state) == NE_WORKER_EMPTY) {
            atomic_store(&r->workers[w].state, NE_WORKER_SPAWN);
            p->nalive++;
            p->counts.workers_started++;
            wanted--;
            spawned = 1;
        }
    }
    if (spawned) {
        ne_futex_ring(&shm->zygote_seq, 1);
    }
}

/* Fail every task not yet finished and refuse new ones; workers are killed.
 * (The initializer failed, or the zygote is gone.) */
void
ne_ppool_break(ne_ppool *p, const char *reason)
{
    if (p->broken != NULL) {
        return;
    }
    p->broken = PyUnicode_FromString(reason);
    if (p->broken == NULL) {
        PyErr_WriteUnraisable((PyObject *)p);
        p->broken = Py_NewRef(Py_None);
    }
    if (p->region.base != NULL) {
        ne_shm *shm = p->region.shm;
        ne_shm_lock(shm);
        for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
            if (atomic_load(&p->region.slots[idx].state) == NE_SLOT_READY) {
                atomic_store(&p->region.slots[idx].state, NE_SLOT_FREE);
            }
        }
        ne_shm_unlock(shm);
    }
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_record *rec = &p->records[idx];
        if (rec->future == NULL) {
            continue;
        }
        PyObject *exc = ne_ppool_broken_error(p, p->broken);
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        p->counts.failed++;
        ne_complete(p->st, rec->future, rec->bridge, NE_EXCEPTION, exc);
        Py_XDECREF(exc);
        /* RUNNING slots stay taken until their worker is gone */
        if (p->region.base == NULL
            || atomic_load(&p->region.slots[idx].state) == NE_SLOT_FREE) {
            ne_slots_release(p, idx);
        }
        else {
            Py_CLEAR(rec->future);
            Py_CLEAR(rec->bridge);
        }
    }
    ne_pending *t;
    while ((t = ne_pending_pop(p)) != NULL) {
        PyObject *exc = ne_ppool_broken_error(p, p->broken);
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        p->counts.failed++;
        ne_complete(p->st, t->future, t->bridge, NE_EXCEPTION, exc);
        Py_XDECREF(exc);
        ne_pending_free(t);
    }
    if (p->region.base != NULL && !p->foreign) {
        ne_zygote_stop(p, NE_ZYGOTE_KILL);
    }
}

/* ------------------------------------------------------------ shutdown */


/* Stop the zygote and its workers (request: NE_ZYGOTE_*) and reap it (GIL
 * released). */
static void
stop_processes(ne_ppool *p, uint32_t request)
{
    if (p->zygote_pid <= 0) {
        return;
    }
    ne_zygote_stop(p, request);
    pid_t pid = p->zygote_pid;
    Py_BEGIN_ALLOW_THREADS
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    Py_END_ALLOW_THREADS
    p->zygote_pid = 0;
}

/* After every process is gone: give the address space back. */
static void
unmap(ne_ppool *p)
{
    ne_region_unmap(&p->region);
}

/* What a shutdown cancels: nothing, the tasks no worker was handed (the
 * stdlib's shutdown(cancel_futures=True)), or every task no worker has
 * claimed (terminate_workers, kill_workers). */
enum { CANCEL_NONE = 0, CANCEL_QUEUED, CANCEL_UNCLAIMED };

static int
shutdown_pool(ne_ppool *p, int wait, int cancel)
{
    if (p->foreign) {
        return 0;
    }
    p->shutdown = 1;
    if (cancel != CANCEL_NONE) {
        ne_slots_cancel_unclaimed(p, cancel == CANCEL_QUEUED);
    }
    if (p->collector_state == 0) {
        /* nothing was ever submitted: only the zygote to stop, unless it
         * is being forked (ppool_new then finishes the shutdown) */
        if (p->region.base != NULL && !p->starting) {
            stop_processes(p, NE_ZYGOTE_DRAIN);
            unmap(p);
        }
        return 0;
    }
    if (p->region.base != NULL) {
        ne_futex_ring(&p->region.shm->collector_seq, 1);
    }
    if (!wait || ne_collector_is_current(p)) {
        return 0;
    }
    return ne_thread_join(p->collector, NE_JOIN_INTERRUPTIBLE) < 0 ? -1 : 0;
}

int
ne_ppool_shutdown(ne_ppool *p, int wait, int cancel_futures)
{
    return shutdown_pool(p, wait, cancel_futures ? CANCEL_QUEUED : CANCEL_NONE);
}

/* terminate_workers() and kill_workers(): shutdown(wait=False) cancelling
 * every task not yet claimed, then the zygote signals every worker (request:
 * NE_ZYGOTE_TERMINATE or NE_ZYGOTE_KILL).  What follows is an ordinary shutdown:
 * the collector fails the tasks the dead were running with WorkerDied as
 * it buries them, then stops the zygote and unmaps the region.  Nothing
 * to do once the processes are gone, or in a forked child. */
static int
force_shutdown(ne_ppool *p, uint32_t request)
{
    /* every call not yet claimed is cancelled: the workers handed one
     * are about to be signalled */
    if (shutdown_pool(p, 0, CANCEL_UNCLAIMED) < 0) {
        return -1;
    }
    if (!p->foreign && p->region.base != NULL) {
        ne_zygote_stop(p, request);
    }
    return 0;
}

/* Called by the collector once nothing is in flight after shutdown or
 * breakage: the processes leave and the region is unmapped. */
void
ne_ppool_teardown(ne_ppool *p)
{
    stop_processes(p, p->broken != NULL ? NE_ZYGOTE_KILL : NE_ZYGOTE_DRAIN);
    unmap(p);
}

/* A future the parent was waiting for, in a forked child: it fails. */
static void
settle_in_child(ne_ppool *p, PyObject *future, ne_bridge *bridge, PyObject *reason)
{
    PyObject *exc = reason != NULL ? ne_ppool_broken_error(p, reason) : NULL;
    if (exc == NULL) {
        PyErr_Clear();
        return;
    }
    ne_complete_inherited(p->st, future, bridge, exc);
    Py_DECREF(exc);
}

/* In a forked child.  quiet: the fork is one of ours (zygote, worker),
 * which runs no code of the parent's: mark the pool foreign and touch
 * nothing else.  Otherwise the futures the parent is waiting for are the
 * parent's; the child's copies fail. */
void
ne_ppool_after_fork_child(ne_ppool *p, int quiet)
{
    if (p->foreign) {
        return;
    }
    p->foreign = 1;
    if (quiet) {
        return;
    }
    p->region.base = NULL;   /* MADV_DONTFORK: not mapped here */
    p->zygote_pid = 0;       /* not this process's child */
    p->collector_state = 2;
    if (p->collector != NULL) {
        ne_thread_after_fork_child(p->collector);
    }
    PyObject *reason = PyUnicode_FromFormat(
        "the process pool belongs to process %d, not to this forked child", (int)p->owner_pid);
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_record *rec = &p->records[idx];
        if (rec->future != NULL) {
            settle_in_child(p, rec->future, rec->bridge, reason);
        }
        Py_CLEAR(rec->future);
        Py_CLEAR(rec->bridge);
        rec->arena_length = 0;
    }
    ne_pending *t;
    while ((t = ne_pending_pop(p)) != NULL) {
        settle_in_child(p, t->future, t->bridge, reason);
        ne_pending_free(t);
    }
    Py_XDECREF(reason);
}

/* ------------------------------------------------------------ the type */

/* The pool's memory: the shared region, its arena, the collector's
 * buffers.  -1 with an exception. */
static int
allocate(ne_ppool *p)
{
    p->dead = PyMem_Calloc((size_t)p->max_workers, sizeof(int));
    p->running = PyMem_Calloc((size_t)p->max_workers, 1);
    if (p->dead == NULL || p->running == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (ne_region_map(&p->region, p->max_workers) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (ne_arena_init(&p->arena, p->region.arena_offset, p->region.arena_size) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *
ppool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_workers", "initializer", "initargs",
                             "max_tasks_per_child", "task_timeout", "cancel_running",
                             "max_memory_per_child", NULL};
    int max_workers, cancel_running = 0;
    long max_tasks = 0;
    double task_timeout = 0.0;
    unsigned long long max_memory = 0;
    PyObject *initializer = Py_None, *initargs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|OO!ldpK:ProcessPool", kwlist,
                                     &max_workers, &initializer, &PyTuple_Type,
                                     &initargs, &max_tasks, &task_timeout,
                                     &cancel_running, &max_memory)) {
        return NULL;
    }
    /* 0 is none; a timeout below a microsecond (or past 2^63 ns) is refused */
    if (task_timeout != 0.0 && !(task_timeout >= 1e-6 && task_timeout < 9e9)) {
        PyErr_SetString(PyExc_ValueError,
                        "task_timeout must be None or a number of seconds > 0");
        return NULL;
    }
    if (max_workers <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return NULL;
    }
    if (max_tasks < 0) {
        PyErr_SetString(PyExc_ValueError, "max_tasks_per_child must be >= 1");
        return NULL;
    }
    if (initializer != Py_None && !PyCallable_Check(initializer)) {
        PyErr_SetString(PyExc_TypeError, "initializer must be a callable");
        return NULL;
    }
    ne_ppool *p = (ne_ppool *)type->tp_alloc(type, 0);
    if (p == NULL) {
        return NULL;
    }
    p->st = ne_state_of_type(type);
    p->max_workers = max_workers;
    p->max_tasks_per_child = max_tasks;
    p->max_memory_per_child = max_memory;
    p->task_timeout_ns = (int64_t)(task_timeout * 1e9);
    p->cancel_running = cancel_running;
    p->initializer = Py_NewRef(initializer);
    p->initargs = initargs != NULL ? Py_NewRef(initargs) : PyTuple_New(0);
    p->owner_pid = getpid();
    for (int i = 0; i < NE_SLOTS; i++) {
        p->free_slots[i] = (uint32_t)(NE_SLOTS - 1 - i);
    }
    p->nfree = NE_SLOTS;
    p->next = p->st->ppools;
    p->st->ppools = p;
    if (p->initargs == NULL) {
        goto error;
    }
    if (allocate(p) < 0) {
        goto error;
    }
    /* Starting the zygote runs Python (flushing streams, fork hooks), so
     * another thread may shut every pool down meanwhile (interpreter
     * exit): the region must stay mapped until the fork is done. */
    p->starting = 1;
    int started = ne_zygote_start(p);
    p->starting = 0;
    if (started < 0) {
        goto error;
    }
    if (p->shutdown && ne_ppool_shutdown(p, 0, 0) < 0) {
        goto error;
    }
    return (PyObject *)p;

error:
    Py_DECREF(p);
    return NULL;
}

static int
ppool_traverse(PyObject *self, visitproc visit, void *arg)
{
    ne_ppool *p = (ne_ppool *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(p->initializer);
    Py_VISIT(p->initargs);
    return 0;
}

static void
ppool_dealloc(PyObject *self)
{
    ne_ppool *p = (ne_ppool *)self;
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    registry_unlink(p);
    if (!p->foreign && p->collector != NULL) {
        (void)ne_thread_join(p->collector, NE_JOIN_WAIT);
    }
    ne_thread_decref(p->collector);
    if (!p->foreign && p->zygote_pid > 0) {
        /* never shut down and no collector ran: nothing is in flight */
        stop_processes(p, NE_ZYGOTE_KILL);
    }
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        Py_CLEAR(p->records[idx].future);
        Py_CLEAR(p->records[idx].bridge);
    }
    ne_pending *t;
    while ((t = ne_pending_pop(p)) != NULL) {
        ne_pending_free(t);
    }
    if (!p->foreign) {
        unmap(p);
    }
    ne_arena_fini(&p->arena);
    PyMem_Free(p->dead);
    PyMem_Free(p->running);
    Py_CLEAR(p->initializer);
    Py_CLEAR(p->initargs);
    Py_CLEAR(p->broken);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* A ticket argument of _withdraw and _claimed; -1 with an exception. */
static int
ticket_of(PyObject *arg, uint64_t *ticket)
{
    *ticket = PyLong_AsUnsignedLongLong(arg);
    return *ticket == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
}

PyDoc_STRVAR(ppool_withdraw_doc,
"_withdraw($self, ticket, /)\n--\n\n"
"Take back a task no worker has claimed: 1 if withdrawn, 0 if a worker has\n"
"it (it runs to completion), -1 if the pool no longer knows it; with\n"
"cancel_running, 2 if a worker has it and is being stopped.");

static PyObject *
ppool_withdraw(PyObject *self, PyObject *arg)
{
    uint64_t ticket;
    if (ticket_of(arg, &ticket) < 0) {
        return NULL;
    }
    return PyLong_FromLong(ne_slots_withdraw((ne_ppool *)self, ticket));
}

PyDoc_STRVAR(ppool_claimed_doc,
"_claimed($self, ticket, /)\n--\n\n"
"1 if a worker has claimed the task (it can no longer be withdrawn), 0 if it\n"
"still waits for one, -1 if the pool no longer knows it.");

static PyObject *
ppool_claimed(PyObject *self, PyObject *arg)
{
    uint64_t ticket;
    if (ticket_of(arg, &ticket) < 0) {
        return NULL;
    }
    return PyLong_FromLong(ne_slots_claimed((ne_ppool *)self, ticket));
}

PyDoc_STRVAR(ppool_shutdown_doc,
"shutdown($self, /, wait=True, *, cancel_futures=False)\n--\n\n"
"Refuse new tasks; with cancel_futures, cancel those no worker was handed.\n"
"With wait, return once every task has finished and every process is gone.");

static PyObject *
ppool_shutdown(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int wait, cancel_futures;
    if (ne_parse_shutdown(args, kwargs, &wait, &cancel_futures) < 0) {
        return NULL;
    }
    if (ne_ppool_shutdown((ne_ppool *)self, wait, cancel_futures) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ppool_force_shutdown_doc,
"force_shutdown($self, signal, /)\n--\n\n"
"shutdown(wait=False, cancel_futures=True), then send every worker signal:\n"
"SIGKILL, or SIGTERM followed by SIGKILL after a grace period.");

static PyObject *
ppool_force_shutdown(PyObject *self, PyObject *arg)
{
    long sig = PyLong_AsLong(arg);
    if (sig == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (sig != SIGTERM && sig != SIGKILL) {
        PyErr_Format(PyExc_ValueError, "signal must be SIGTERM or SIGKILL, not %ld", sig);
        return NULL;
    }
    if (force_shutdown((ne_ppool *)self,
                                sig == SIGKILL ? NE_ZYGOTE_KILL : NE_ZYGOTE_TERMINATE) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ppool_stats_doc,
"stats($self, /)\n--\n\n"
"A snapshot: worker pids, in_flight, pending, zygote pid, shutdown, broken.");

static PyObject *
ppool_stats(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ne_ppool *p = (ne_ppool *)self;
    PyObject *pids = PyList_New(0);
    if (pids == NULL) {
        return NULL;
    }
    if (p->region.base != NULL && !p->foreign) {
        for (int w = 0; w < p->region.nworkers; w++) {
            ne_wslot *ws = &p->region.workers[w];
            if (atomic_load(&ws->state) == NE_WORKER_ALIVE) {
                PyObject *pid = PyLong_FromLong(ws->pid);
                if (pid == NULL || PyList_Append(pids, pid) < 0) {
                    Py_XDECREF(pid);
                    Py_DECREF(pids);
                    return NULL;
                }
                Py_DECREF(pid);
            }
        }
    }
    return Py_BuildValue("{sNsisnsisisOsO}",
                         "worker_pids", pids,
                         "in_flight", NE_SLOTS - p->nfree,
                         "pending", p->npending,
                         "max_workers", p->max_workers,
                         "zygote_pid", (int)p->zygote_pid,
                         "shutdown", p->shutdown ? Py_True : Py_False,
                         "broken", p->broken != NULL ? p->broken : Py_None);
}

PyDoc_STRVAR(ppool_submit_doc,
"submit($self, fn, /, *args, **kwargs)\n--\n\n"
"Run fn(*args, **kwargs) in a worker process; return a concurrent.futures.Future.");

static PyObject *
ppool_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return ne_ppool_submit((ne_ppool *)self, args, nargs, kwnames);
}

PyDoc_STRVAR(ppool_counts_doc,
"counts($self, /)\n--\n\n"
"The public snapshot behind ProcessPoolExecutor.stats(): counts, workers,\n"
"recent queue-wait and run-time percentiles.");

static PyObject *
ppool_counts(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ne_ppool *p = (ne_ppool *)self;
    Py_ssize_t ready = 0, running = 0, alive = 0;
    if (p->region.base != NULL && !p->foreign) {
        ne_region *r = &p->region;
        ne_shm_lock(r->shm);
        for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
            uint32_t state = atomic_load(&r->slots[idx].state);
            ready += state == NE_SLOT_READY;
            running += state == NE_SLOT_RUNNING;
        }
        ne_shm_unlock(r->shm);
        for (int w = 0; w < r->nworkers; w++) {
            alive += atomic_load(&r->workers[w].state) == NE_WORKER_ALIVE;
        }
    }
    return ne_counts_snapshot(&p->counts, p->npending + ready, running, alive);
}

PyDoc_STRVAR(ppool_run_doc,
"run($self, func, /, *args, **kwargs)\n--\n\n"
"Run func(*args, **kwargs) in a worker process; return an awaitable asyncio\n"
"future of the running loop.");

static PyObject *
ppool_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return ne_ppool_run((ne_ppool *)self, "ProcessPoolExecutor.run", args, nargs, kwnames);
}

static PyMethodDef ppool_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))ppool_submit,
     METH_FASTCALL | METH_KEYWORDS, ppool_submit_doc},
    {"run", (PyCFunction)(void (*)(void))ppool_run,
     METH_FASTCALL | METH_KEYWORDS, ppool_run_doc},
    {"_withdraw", ppool_withdraw, METH_O, ppool_withdraw_doc},
    {"_claimed", ppool_claimed, METH_O, ppool_claimed_doc},
    {"shutdown", (PyCFunction)(void (*)(void))ppool_shutdown,
     METH_VARARGS | METH_KEYWORDS, ppool_shutdown_doc},
    {"force_shutdown", ppool_force_shutdown, METH_O, ppool_force_shutdown_doc},
    {"stats", ppool_stats, METH_NOARGS, ppool_stats_doc},
    {"counts", ppool_counts, METH_NOARGS, ppool_counts_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(ppool_doc,
"ProcessPool(max_workers, initializer=None, initargs=(), max_tasks_per_child=0,\n"
"            task_timeout=0.0, cancel_running=False, max_memory_per_child=0)\n"
"--\n\n"
"The native core of native_exec.ProcessPoolExecutor: workers forked by a\n"
"zygote, tasks and results in shared memory.");

static PyType_Slot ppool_slots[] = {
    {Py_tp_new, ppool_new},
    {Py_tp_dealloc, ppool_dealloc},
    {Py_tp_traverse, ppool_traverse},
    {Py_tp_methods, ppool_methods},
    {Py_tp_doc, (void *)ppool_doc},
    {0, NULL},
};

PyType_Spec ne_ppool_spec = {
    .name = "native_exec._native.ProcessPool",
    .basicsize = sizeof(ne_ppool),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ppool_slots,
};
