/* The ThreadPool type: a FIFO of tasks served by lazily started pthreads.
 *
 * Waking policy, as the stdlib's ThreadPoolExecutor: a submitted task
 * signals one idle worker that no earlier signal has claimed; failing that
 * it claims a worker that has just finished a task and is about to look at
 * the queue; failing that a new worker starts, up to max_workers.  A
 * worker that holds the GIL takes the next task straight from the queue,
 * so a burst of short tasks runs under one GIL acquisition (see thread_worker.c).
 *
 * Signals are only sent to workers counted in nidle, which are inside
 * pthread_cond_wait (counted under the mutex they wait with), so none is
 * lost: nwoken never exceeds the signals still to be consumed.
 *
 * A call is thus handed to a worker in one of three ways, and the pool
 * counts each until the worker looks at the queue: a signal to an idle
 * worker (nwoken), a worker started for it, or a returning worker claimed
 * for it (npromised).  shutdown(cancel_futures=True) leaves that many of
 * the oldest queued calls to run and cancels the rest, as the stdlib
 * cancels what its workers have not taken: right after a burst of submits
 * to a fresh pool, min(max_workers, calls) run, even if no worker has got
 * the GIL yet to take its call. */
#include "native_exec.h"

#include <errno.h>

static void reap(ne_tpool *p, int block);

static const char BROKEN_MESSAGE[] =
    "A thread initializer failed, the thread pool is not usable anymore";

/* mutex */
static void
enqueue(ne_tpool *p, ne_task *t)
{
    t->next = NULL;
    if (p->tail != NULL) {
        p->tail->next = t;
    }
    else {
        p->head = t;
    }
    p->tail = t;
    ne_queued_set(p, ne_queued_get(p) + 1);
}

/* mutex: empty the queue and return what it held, oldest first. */
ne_task *
ne_tpool_take_all(ne_tpool *p)
{
    ne_task *all = p->head;
    p->head = p->tail = NULL;
    ne_queued_set(p, 0);
    return all;
}

/* mutex: empty the queue but for its oldest calls that a worker has been
 * woken, started or claimed for (nwoken + npromised), which stay queued;
 * return the others, oldest first. */
static ne_task *
take_unpromised(ne_tpool *p)
{
    Py_ssize_t keep = (Py_ssize_t)p->nwoken + p->npromised;
    if (keep <= 0) {
        return ne_tpool_take_all(p);
    }
    ne_task *last = p->head;  /* the last call kept */
    if (last == NULL) {
        return NULL;
    }
    Py_ssize_t kept = 1;
    while (kept < keep && last->next != NULL) {
        last = last->next;
        kept++;
    }
    ne_task *rest = last->next;
    last->next = NULL;
    p->tail = last;
    ne_queued_set(p, kept);
    return rest;
}

/* GIL: complete every task of a list without running it. */
static void
abandon_all(ne_state *st, ne_task *t, PyObject *error)
{
    while (t != NULL) {
        ne_task *next = t->next;
        ne_task_abandon(st, t, error);
        t = next;
    }
}

static PyObject *
broken_error(ne_state *st)
{
    return PyObject_CallFunction(st->BrokenThreadPool, "s", BROKEN_MESSAGE);
}

/* Mutex held: why p takes no new work, or NULL. */
static const char *
refusal_locked(ne_tpool *p)
{
    if (p->broken) {
        return BROKEN_MESSAGE;
    }
    if (p->st->exiting) {
        return "cannot schedule new futures after interpreter shutdown";
    }
    if (p->shutdown) {
        return "cannot schedule new futures after shutdown";
    }
    return NULL;
}

/* Raise the error refusal_locked() named; -1. */
static int
raise_refusal(ne_tpool *p, const char *refusal)
{
    if (refusal == BROKEN_MESSAGE) {
        PyObject *exc = broken_error(p->st);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return -1;
    }
    PyErr_SetString(PyExc_RuntimeError, refusal);
    return -1;
}

/* Queue t and make sure a worker will take it.  elastic: a call made from
 * one of this pool's own workers may start a worker beyond max_workers
 * (it retires once idle), so that a worker waiting on its own nested call
 * cannot starve it.  On -1 (an exception set) t was not queued and still
 * belongs to the caller. */
int
ne_tpool_push(ne_tpool *p, ne_task *t, int elastic)
{
    const char *refusal = NULL;
    int spawn = 0;

    pthread_mutex_lock(&p->mutex);
    refusal = refusal_locked(p);
    if (refusal == NULL) {
        t->counts = &p->counts;
        t->submitted_ns = ne_monotonic_ns();
        p->counts.submitted++;   /* the GIL's, as all counts are */
        enqueue(p, t);
        if (p->nidle > p->nwoken) {
            p->nwoken++;
            pthread_cond_signal(&p->work);
        }
        else if (p->nreturning > 0) {
            for (ne_worker *w = p->workers; w != NULL; w = w->next) {
                if (w->returning) {
                    w->returning = 0;
                    p->nreturning--;
                    if (!w->promised) {
                        w->promised = 1;
                        p->npromised++;
                    }
                    break;
                }
            }
        }
        else if (p->nthreads < p->max_workers || (elastic && ne_worker_is_current(p))) {
            p->nthreads++;
            p->npromised++;  /* the new worker's flag, once it exists */
            spawn = 1;
        }
    }
    pthread_mutex_unlock(&p->mutex);

    if (refusal != NULL) {
        return raise_refusal(p, refusal);
    }
    if (spawn) {
        reap(p, 0);  /* retired workers' threads, so they do not pile up */
    }
    if (spawn && ne_worker_spawn(p) < 0) {
        /* With other workers alive the task still runs; with none, nothing
         * would ever take it, so it is withdrawn and the error raised. */
        pthread_mutex_lock(&p->mutex);
        p->nthreads--;
        p->npromised--;
        ne_task *orphans = p->nthreads == 0 ? ne_tpool_take_all(p) : NULL;
        pthread_mutex_unlock(&p->mutex);
        if (orphans == NULL) {
            PyErr_Clear();
            return 0;
        }
        PyObject *exc = PyErr_GetRaisedException();
        for (ne_task *o = orphans; o != NULL;) {
            ne_task *next = o->next;
            if (o != t) {
                ne_task_abandon(p->st, o, exc);
            }
            o = next;
        }
        PyErr_SetRaisedException(exc);
        return -1;
    }
    return 0;
}

/* Refuse new work and fail everything queued with BrokenThreadPool. */
void
ne_tpool_break(ne_tpool *p)
{
    pthread_mutex_lock(&p->mutex);
    p->broken = 1;
    ne_task *queued = ne_tpool_take_all(p);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mutex);

    PyObject *exc = broken_error(p->st);
    if (exc == NULL) {
        PyErr_WriteUnraisable((PyObject *)p);
    }
    abandon_all(p->st, queued, exc);
    Py_XDECREF(exc);
}

struct workers_left {
    ne_tpool *p;
    int keep;
};

/* mutex: at most `keep` workers remain. */
static int
workers_left(void *arg)
{
    struct workers_left *w = arg;
    return w->p->nthreads <= w->keep;
}

/* Wait until at most `keep` workers remain, with the GIL released; Ctrl-C
 * interrupts the wait as it does Thread.join (-1, exception set). */
static int
wait_for_workers(ne_tpool *p, int keep)
{
    struct workers_left w = {.p = p, .keep = keep};
    return ne_wait_until(&p->mutex, &p->exited, workers_left, &w, 1);
}

/* mutex: a worker leaving hands its thread over, to be joined by
 * reap.  Without memory to note it, the handle is dropped: its
 * thread is then detached as it ends and only the joining is lost. */
void
ne_tpool_note_gone(ne_tpool *p, ne_thread *thread)
{
    if (p->ngone == p->gone_cap) {
        size_t cap = p->gone_cap ? 2 * p->gone_cap : 8;
        ne_thread **grown = PyMem_RawRealloc(p->gone, cap * sizeof(*grown));
        if (grown == NULL) {
            ne_thread_decref(thread);
            return;
        }
        p->gone = grown;
        p->gone_cap = cap;
    }
    p->gone[p->ngone++] = thread;
}

/* mutex: drop the threads seen joined; the first not yet joined at or
 * after *from (a new reference; *from moves past it), or NULL. */
static ne_thread *
next_unjoined(ne_tpool *p, size_t *from)
{
    size_t kept = 0;
    ne_thread *found = NULL;
    for (size_t i = 0; i < p->ngone; i++) {
        ne_thread *t = p->gone[i];
        if (ne_thread_get_state(t) == NE_THREAD_JOINED) {
            ne_thread_decref(t);
            continue;
        }
        if (found == NULL && kept >= *from) {
            found = t;
            *from = kept + 1;
            ne_thread_incref(t);
        }
        p->gone[kept++] = t;
    }
    p->ngone = kept;
    return found;
}

/* GIL: join the workers that have left (p->gone).  Any number of reaps may
 * run at once; each thread's handle lets one of them join it and the
 * others wait.  block: join every one, waiting for each to end, so that a
 * shutdown(wait=True) racing another returns only once every thread is
 * gone; the threads waited for have left Python and are only exiting, so
 * the wait is short and not interruptible.  Otherwise join only those
 * whose function has returned, never waiting. */
static void
reap(ne_tpool *p, int block)
{
    size_t from = 0;
    for (;;) {
        pthread_mutex_lock(&p->mutex);
        ne_thread *t = next_unjoined(p, &from);
        pthread_mutex_unlock(&p->mutex);
        if (t == NULL) {
            return;
        }
        (void)ne_thread_join(t, block ? NE_JOIN_WAIT : NE_JOIN_IF_DONE);
        ne_thread_decref(t);
        if (block) {
            from = 0;   /* every one left must be joined; start again */
        }
    }
}

int
ne_tpool_shutdown(ne_tpool *p, int wait, int cancel_futures)
{
    pthread_mutex_lock(&p->mutex);
    p->shutdown = 1;
    ne_task *cancelled = cancel_futures ? take_unpromised(p) : NULL;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mutex);

    abandon_all(p->st, cancelled, NULL);
    if (!wait) {
        return 0;
    }
    /* A task that shuts down its own pool cannot wait for itself. */
    if (wait_for_workers(p, ne_worker_is_current(p) ? 1 : 0) < 0) {
        return -1;
    }
    reap(p, 1);
    return 0;
}

/* ------------------------------------------------------------ the type */

static PyObject *
tpool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_workers", "thread_name_prefix", "initializer",
                             "initargs", NULL};
    int max_workers;
    PyObject *prefix, *initializer = Py_None, *initargs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iU|OO!:ThreadPool", kwlist,
                                     &max_workers, &prefix, &initializer,
                                     &PyTuple_Type, &initargs)) {
        return NULL;
    }
    if (max_workers <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return NULL;
    }
    if (initializer != Py_None && !PyCallable_Check(initializer)) {
        PyErr_SetString(PyExc_TypeError, "initializer must be a callable");
        return NULL;
    }
    ne_tpool *p = (ne_tpool *)type->tp_alloc(type, 0);
    if (p == NULL) {
        return NULL;
    }
    p->st = ne_state_of_type(type);
    if (pthread_mutex_init(&p->mutex, NULL) != 0
        || pthread_cond_init(&p->work, NULL) != 0
        || pthread_cond_init(&p->exited, NULL) != 0) {
        /* glibc initialises these without allocating; never seen failing */
        Py_DECREF(p);
        return PyErr_NoMemory();
    }
    p->max_workers = max_workers;
    p->prefix = Py_NewRef(prefix);
    p->initializer = Py_NewRef(initializer);
    p->initargs = initargs != NULL ? Py_NewRef(initargs) : PyTuple_New(0);
    ne_tpool_register(p);
    return (PyObject *)p;
}

static int
tpool_traverse(PyObject *self, visitproc visit, void *arg)
{
    ne_tpool *p = (ne_tpool *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(p->prefix);
    Py_VISIT(p->initializer);
    Py_VISIT(p->initargs);
    return 0;
}

static int
tpool_clear(PyObject *self)
{
    ne_tpool *p = (ne_tpool *)self;
    Py_CLEAR(p->initializer);
    Py_CLEAR(p->initargs);
    return 0;
}

/* Workers hold references, so a pool is only freed once all have left. */
static void
tpool_dealloc(PyObject *self)
{
    ne_tpool *p = (ne_tpool *)self;
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (p->st != NULL) {
        ne_tpool_unregister(p);
        reap(p, 1);
        PyMem_RawFree(p->gone);
        abandon_all(p->st, ne_tpool_take_all(p), NULL);
        pthread_cond_destroy(&p->exited);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->mutex);
    }
    tpool_clear(self);
    Py_CLEAR(p->prefix);
    tp->tp_free(self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(tpool_submit_doc,
"submit($self, fn, /, *args, **kwargs)\n--\n\n"
"Schedule fn(*args, **kwargs) and return a concurrent.futures.Future.");

static PyObject *
tpool_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ne_tpool *p = (ne_tpool *)self;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "submit() missing 1 required positional argument: 'fn'");
        return NULL;
    }
    PyObject *fut = PyObject_CallNoArgs(p->st->ConcurrentFuture);
    if (fut == NULL) {
        return NULL;
    }
    ne_task *t = ne_task_new(args[0], args + 1, nargs - 1, kwnames, NULL, fut, NULL);
    if (t == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    if (ne_tpool_push(p, t, 0) < 0) {
        ne_task_free(t);
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

/* pool.run(func, *args, **kwargs) and to_thread inside a running loop: a
 * NativeFuture of that loop holding the call, which starts when something
 * consumes it (native_future.c).  With no running loop, what
 * asyncio.to_thread would return: a coroutine that calls runner(func,
 * *args, **kwargs) once it runs (runner NULL: this pool's run). */
PyObject *
ne_tpool_run(ne_tpool *p, PyObject *loop, PyObject *runner, const char *name,
            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ne_state *st = p->st;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "missing 1 required positional argument: 'func'");
        return NULL;
    }
    if (loop == NULL) {
        loop = PyObject_CallNoArgs(st->get_running_loop);
        if (loop == NULL) {
            return ne_deferred_run(st, (PyObject *)p, runner, args, nargs, kwnames);
        }
    }
    else {
        Py_INCREF(loop);
    }
    /* A pool that takes no more work says so now, not at the first await
     * (which would still fail the future should it refuse by then). */
    pthread_mutex_lock(&p->mutex);
    const char *refusal = refusal_locked(p);
    pthread_mutex_unlock(&p->mutex);
    if (refusal != NULL) {
        Py_DECREF(loop);
        raise_refusal(p, refusal);
        return NULL;
    }
    ne_bridge *bridge = NULL;
    ne_task *t = NULL;
    PyObject *stack[2] = {NULL, loop};
    PyObject *fut = PyObject_Vectorcall(st->NativeFuture, stack + 1,
                                        0 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_loop);
    if (fut != NULL) {
        bridge = ne_bridge_for_loop(st, loop);
    }
    if (bridge != NULL) {
        t = ne_task_new(args[0], args + 1, nargs - 1, kwnames, NULL, NULL, bridge);
    }
    Py_XDECREF((PyObject *)bridge);
    Py_DECREF(loop);
    if (t == NULL) {
        Py_XDECREF(fut);
        return NULL;
    }
    ne_future_defer(fut, (PyObject *)p, t, name);
    return fut;
}

PyDoc_STRVAR(tpool_run_doc,
"run($self, func, /, *args, **kwargs)\n--\n\n"
"Run func(*args, **kwargs) on this pool and return an awaitable asyncio\n"
"future of the running loop, as asyncio.to_thread does on its executor.");

static PyObject *
tpool_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return ne_tpool_run((ne_tpool *)self, NULL, NULL, "ThreadPoolExecutor.run",
                       args, nargs, kwnames);
}

PyDoc_STRVAR(tpool_shutdown_doc,
"shutdown($self, /, wait=True, *, cancel_futures=False)\n--\n\n"
"Refuse new tasks; queued tasks still run unless cancel_futures is true.\n"
"With wait, return once every worker has exited.");

static PyObject *
tpool_shutdown(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int wait, cancel_futures;
    if (ne_parse_shutdown(args, kwargs, &wait, &cancel_futures) < 0) {
        return NULL;
    }
    if (ne_tpool_shutdown((ne_tpool *)self, wait, cancel_futures) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(tpool_stats_doc,
"stats($self, /)\n--\n\n"
"A snapshot of the pool: threads, idle, queued, max_workers, shutdown, broken.");

static PyObject *
tpool_stats(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ne_tpool *p = (ne_tpool *)self;
    pthread_mutex_lock(&p->mutex);
    int threads = p->nthreads, idle = p->nidle, shutdown = p->shutdown,
        broken = p->broken;
    Py_ssize_t queued = ne_queued_get(p);
    pthread_mutex_unlock(&p->mutex);
    return Py_BuildValue("{sisisnsisOsO}", "threads", threads, "idle", idle,
                         "queued", queued, "max_workers", p->max_workers,
                         "shutdown", shutdown ? Py_True : Py_False,
                         "broken", broken ? Py_True : Py_False);
}

PyDoc_STRVAR(tpool_counts_doc,
"counts($self, /)\n--\n\n"
"The public snapshot behind ThreadPoolExecutor.stats(): counts, workers,\n"
"recent queue-wait and run-time percentiles.");

static PyObject *
tpool_counts(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ne_tpool *p = (ne_tpool *)self;
    Py_ssize_t running = 0;
    pthread_mutex_lock(&p->mutex);
    for (ne_worker *w = p->workers; w != NULL; w = w->next) {
        running += w->current != NULL;
    }
    Py_ssize_t queued = ne_queued_get(p), alive = p->nthreads;
    pthread_mutex_unlock(&p->mutex);
    return ne_counts_snapshot(&p->counts, queued, running, alive);
}

static PyMethodDef tpool_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))tpool_submit,
     METH_FASTCALL | METH_KEYWORDS, tpool_submit_doc},
    {"run", (PyCFunction)(void (*)(void))tpool_run,
     METH_FASTCALL | METH_KEYWORDS, tpool_run_doc},
    {"shutdown", (PyCFunction)(void (*)(void))tpool_shutdown,
     METH_VARARGS | METH_KEYWORDS, tpool_shutdown_doc},
    {"stats", tpool_stats, METH_NOARGS, tpool_stats_doc},
    {"counts", tpool_counts, METH_NOARGS, tpool_counts_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *
tpool_repr(PyObject *self)
{
    ne_tpool *p = (ne_tpool *)self;
    return PyUnicode_FromFormat("<native_exec ThreadPool %R max_workers=%d>",
                                p->prefix, p->max_workers);
}

PyDoc_STRVAR(tpool_doc,
"ThreadPool(max_workers, thread_name_prefix, initializer=None, initargs=())\n"
"--\n\n"
"The native core of native_exec.ThreadPoolExecutor: pthread workers, each\n"
"with one thread state for its whole life, waiting with the GIL released.");

static PyType_Slot tpool_slots[] = {
    {Py_tp_new, tpool_new},
    {Py_tp_dealloc, tpool_dealloc},
    {Py_tp_traverse, tpool_traverse},
    {Py_tp_clear, tpool_clear},
    {Py_tp_methods, tpool_methods},
    {Py_tp_repr, tpool_repr},
    {Py_tp_doc, (void *)tpool_doc},
    {0, NULL},
};

PyType_Spec ne_tpool_spec = {
    .name = "native_exec._native.ThreadPool",
    .basicsize = sizeof(ne_tpool),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = tpool_slots,
};
