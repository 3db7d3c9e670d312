/* Submitting to a process pool: submit() and run() check that the pool
 * takes work, pickle the call and hand it to the slot table
 * (slot_table.c), which places it in shared memory for a worker or queues
 * it in the parent; then workers are started if the queue outnumbers them.
 * A call that cannot be pickled fails its own future and nothing else.
 * GIL throughout (see "Locking" in native_exec.h). */
#include "native_exec.h"

/* -1 with the error submit() raises if the pool takes no work now. */
static int
refuse_if_unusable(ne_ppool *p)
{
    ne_state *st = p->st;
    if (p->foreign) {
        PyErr_Format(PyExc_RuntimeError,
                     "this process pool belongs to process %d; a forked child cannot use it",
                     (int)p->owner_pid);
        return -1;
    }
    if (p->broken != NULL) {
        PyObject *exc = ne_ppool_broken_error(p, p->broken);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return -1;
    }
    if (st->exiting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot schedule new futures after interpreter shutdown");
        return -1;
    }
    if (p->shutdown) {
        PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        return -1;
    }
    return 0;
}

/* (fn, args, kwargs-or-None) from a vectorcall argument array. */
static PyObject *
make_call(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *call_args = PyTuple_New(nargs - 1);
    if (call_args == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(call_args, i - 1, Py_NewRef(args[i]));
    }
    PyObject *kwargs = Py_NewRef(Py_None);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw > 0) {
        Py_SETREF(kwargs, PyDict_New());
        for (Py_ssize_t i = 0; kwargs != NULL && i < nkw; i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_CLEAR(kwargs);
            }
        }
        if (kwargs == NULL) {
            Py_DECREF(call_args);
            return NULL;
        }
    }
    PyObject *call = PyTuple_Pack(3, args[0], call_args, kwargs);
    Py_DECREF(call_args);
    Py_DECREF(kwargs);
    return call;
}

/* Queue call, (fn, args, kwargs-or-None), with its future.  A call that
 * cannot be pickled (or call NULL: could not be built) fails its future, as
 * with the stdlib; the pool is unaffected.  -1 only when the future could
 * not be set up. */
static int
enqueue(ne_ppool *p, PyObject *future, ne_bridge *bridge, PyObject *call)
{
    ne_state *st = p->st;
    uint64_t ticket = ++p->next_ticket;
    p->counts.submitted++;
    PyObject *ticket_obj = PyLong_FromUnsignedLongLong(ticket);
    if (ticket_obj == NULL
        || PyObject_SetAttr(future, st->s_ne_ticket, ticket_obj) < 0
        || PyObject_SetAttr(future, st->s_ne_pool, (PyObject *)p) < 0) {
        Py_XDECREF(ticket_obj);
        return -1;
    }
    Py_DECREF(ticket_obj);

    ne_blob blob = {0};
    /* pickling runs Python code, which may let another thread shut the
     * pool down or break it; the collector does not finish meanwhile */
    p->nsubmitting++;
    int dumped = call != NULL && ne_blob_dump(st, call, 3, &blob) == 0;
    p->nsubmitting--;
    if (p->nsubmitting == 0 && (p->shutdown || p->broken != NULL)
        && p->collector_state == 1 && p->region.base != NULL) {
        /* the collector may be waiting for this submit to finish */
        ne_futex_ring(&p->region.shm->collector_seq, 1);
    }
    if (!dumped) {
        p->counts.failed++;
        ne_complete_with_error(p->st, future, bridge);
        return 0;
    }
    if (refuse_if_unusable(p) < 0 || p->region.base == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        }
        ne_blob_clear(&blob);
        return -1;
    }
    if (p->collector_state == 0 && ne_collector_start(p) < 0) {
        ne_blob_clear(&blob);
        return -1;
    }
    if (ne_slots_admit(p, &blob, future, bridge, ticket) < 0) {
        return -1;
    }
    ne_ppool_spawn_if_needed(p);
    return 0;
}

/* submit(fn, *args, **kwargs): a concurrent.futures.Future. */
PyObject *
ne_ppool_submit(ne_ppool *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "submit() missing 1 required positional argument: 'fn'");
        return NULL;
    }
    if (refuse_if_unusable(p) < 0) {
        return NULL;
    }
    PyObject *fut = PyObject_CallNoArgs(p->st->ProcessFuture);
    if (fut == NULL) {
        return NULL;
    }
    PyObject *call = make_call(args, nargs, kwnames);
    int rc = enqueue(p, fut, NULL, call);
    Py_XDECREF(call);
    if (rc < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

/* run(func, *args, **kwargs): an asyncio future of the running loop, whose
 * call starts once it is awaited; without a running loop, a coroutine
 * that does that once it runs.  name: the caller, for error messages. */
PyObject *
ne_ppool_run(ne_ppool *p, const char *name, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    ne_state *st = p->st;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "missing 1 required positional argument: 'func'");
        return NULL;
    }
    if (refuse_if_unusable(p) < 0) {
        return NULL;
    }
    PyObject *loop = PyObject_CallNoArgs(st->get_running_loop);
    if (loop == NULL) {
        return ne_deferred_run(st, (PyObject *)p, NULL, args, nargs, kwnames);
    }
    PyObject *stack[2] = {NULL, loop};
    PyObject *fut = PyObject_Vectorcall(st->ProcessNativeFuture, stack + 1,
                                        0 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_loop);
    ne_bridge *bridge = fut != NULL ? ne_bridge_for_loop(st, loop) : NULL;
    Py_DECREF(loop);
    ne_task *t = bridge != NULL
        ? ne_task_new(args[0], args + 1, nargs - 1, kwnames, NULL, NULL, bridge) : NULL;
    Py_XDECREF((PyObject *)bridge);
    if (t == NULL) {
        Py_XDECREF(fut);
        return NULL;
    }
    ne_future_defer(fut, (PyObject *)p, t, name);
    return fut;
}

/* A NativeFuture's deferred call, now consumed: pickle it into the pool.
 * Consumes t; -1 with an exception if the pool refuses it. */
int
ne_ppool_start(ne_ppool *p, ne_task *t)
{
    int rc = refuse_if_unusable(p);
    if (rc == 0) {
        PyObject *call = PyTuple_Pack(3, t->fn, t->args,
                                      t->kwargs != NULL ? t->kwargs : Py_None);
        rc = enqueue(p, t->future, t->bridge, call);
        Py_XDECREF(call);
    }
    ne_task_free(t);
    return rc;
}
