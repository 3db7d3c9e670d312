/* A unit of work: the call, the context it runs in, and how its future is
 * completed.  Everything here runs with the GIL held. */
#include "native_exec.h"

ne_task *
ne_task_new(PyObject *fn, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames, PyObject *context, PyObject *future,
            ne_bridge *bridge)
{
    ne_task *t = PyMem_Calloc(1, sizeof(*t));
    if (t == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    t->fn = Py_NewRef(fn);
    t->context = Py_XNewRef(context);
    t->future = Py_XNewRef(future);
    t->bridge = (ne_bridge *)Py_XNewRef((PyObject *)bridge);
    t->args = PyTuple_New(nargs);
    if (t->args == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(t->args, i, Py_NewRef(args[i]));
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw > 0) {
        t->kwargs = PyDict_New();
        if (t->kwargs == NULL) {
            goto error;
        }
        for (Py_ssize_t i = 0; i < nkw; i++) {
            if (PyDict_SetItem(t->kwargs, PyTuple_GET_ITEM(kwnames, i),
                               args[nargs + i]) < 0) {
                goto error;
            }
        }
    }
    return t;

error:
    ne_task_free(t);
    return NULL;
}

void
ne_task_free(ne_task *t)
{
    Py_XDECREF(t->fn);
    Py_XDECREF(t->args);
    Py_XDECREF(t->kwargs);
    Py_XDECREF(t->context);
    Py_XDECREF(t->future);
    Py_XDECREF((PyObject *)t->bridge);
    Py_XDECREF(t->result);
    Py_XDECREF(t->error);
    PyMem_Free(t);
}

int
ne_task_traverse(ne_task *t, visitproc visit, void *arg)
{
    Py_VISIT(t->fn);
    Py_VISIT(t->args);
    Py_VISIT(t->kwargs);
    Py_VISIT(t->context);
    Py_VISIT(t->future);
    Py_VISIT((PyObject *)t->bridge);
    Py_VISIT(t->result);
    Py_VISIT(t->error);
    return 0;
}

/* Call fn(*args, **kwargs) inside the task's context; leaves exactly one of
 * t->result and t->error set. */
void
ne_task_run(ne_task *t)
{
    if (t->context != NULL && PyContext_Enter(t->context) < 0) {
        t->error = PyErr_GetRaisedException();
        return;
    }
    t->result = PyObject_Call(t->fn, t->args, t->kwargs);
    if (t->result == NULL) {
        t->error = PyErr_GetRaisedException();
        if (t->error == NULL) {
            t->error = PyObject_CallFunction(
                PyExc_SystemError, "s", "function returned NULL without an exception");
        }
    }
    if (t->context != NULL && PyContext_Exit(t->context) < 0) {
        PyErr_WriteUnraisable(t->context);
    }
}

/* Whether a task a worker took from the queue should run: not if its future
 * was cancelled while it waited.  On 0 the caller frees t. */
int
ne_task_begin(ne_state *st, ne_task *t)
{
    int go;
    if (t->bridge != NULL) {
        /* Reading an asyncio future's state off its loop is safe under the
         * GIL; only completing it must wait for the loop. */
        go = ne_call_bool(t->future, st->s_done);
        go = go < 0 ? go : !go;
    }
    else {
        go = ne_call_bool(t->future, st->s_set_running_or_notify_cancel);
    }
    if (go < 0) {
        PyErr_WriteUnraisable(t->future);
        return 0;
    }
    return go;
}

/* Complete, or hand to the loop, the future of a task that ran.  Consumes t. */
void
ne_task_complete(ne_state *st, ne_task *t)
{
    if (t->counts != NULL) {
        int64_t now = ne_monotonic_ns();
        ne_samples_add(&t->counts->wait, t->taken_ns - t->submitted_ns);
        ne_samples_add(&t->counts->run, now - t->taken_ns);
        ne_counts_ended(t->counts, t->error != NULL ? NE_EXCEPTION : NE_RESULT);
    }
    if (t->error != NULL) {
        ne_complete(st, t->future, t->bridge, NE_EXCEPTION, t->error);
    }
    else {
        ne_complete(st, t->future, t->bridge, NE_RESULT, t->result);
    }
    ne_task_free(t);
}

/* Complete the future of a task that will never run: cancelled when error is
 * NULL, else failed with error (borrowed).  Consumes t. */
void
ne_task_abandon(ne_state *st, ne_task *t, PyObject *error)
{
    ne_ending how = error != NULL ? NE_EXCEPTION : NE_CANCELLED;
    if (t->counts != NULL) {
        ne_counts_ended(t->counts, how);
    }
    ne_complete(st, t->future, t->bridge, how, error);
    ne_task_free(t);
}

/* Called with asyncio.get_running_loop()'s error set.  When it is "no
 * running loop", as in asyncio.run(to_thread(f)), return what
 * asyncio.to_thread would: a coroutine that calls runner(func, *args,
 * **kwargs) once it runs (runner NULL: pool.run).  args[0] is func. */
PyObject *
ne_deferred_run(ne_state *st, PyObject *pool, PyObject *runner, PyObject *const *args,
                Py_ssize_t nargs, PyObject *kwnames)
{
    if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) {
        return NULL;
    }
    PyErr_Clear();
    runner = runner != NULL ? Py_NewRef(runner) : PyObject_GetAttrString(pool, "run");
    if (runner == NULL) {
        return NULL;
    }
    PyObject *call_args = NULL, *call_kwargs = NULL, *coro = NULL;
    call_args = PyTuple_New(nargs - 1);
    if (call_args == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(call_args, i - 1, Py_NewRef(args[i]));
    }
    call_kwargs = PyDict_New();
    if (call_kwargs == NULL) {
        goto done;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyDict_SetItem(call_kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            goto done;
        }
    }
    coro = PyObject_CallFunctionObjArgs(st->deferred_run, runner, args[0], call_args,
                                        call_kwargs, NULL);
done:
    Py_DECREF(runner);
    Py_XDECREF(call_args);
    Py_XDECREF(call_kwargs);
    return coro;
}
