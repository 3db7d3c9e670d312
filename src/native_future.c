/* NativeFuture: what to_thread, to_process and pool.run return inside a
 * running loop.  An asyncio.Future of that loop (a C subclass of it) that
 * is also a coroutine, and starts its call only when something consumes it,
 * as a coroutine runs only once awaited:
 *
 *   DEFERRED --(await, send, add_done_callback, isfuture)--> STARTED
 *      |                                                        |
 *      +--(cancel, close)--> dropped: never runs      pool completes it
 *      +--(collected)------> dropped, with "coroutine ... was never awaited"
 *
 * What starts it is what asyncio's machinery does to a future it is given:
 * `await` calls __await__; a Task driving it (create_task, TaskGroup,
 * asyncio.run) calls send(); gather, wait_for (3.10, 3.11), shield,
 * as_completed and run_until_complete call add_done_callback(); and
 * ensure_future reads _asyncio_future_blocking (asyncio.isfuture).  gather
 * thus takes it as the future it is, with no Task per call, which is most of
 * what asyncio.to_thread costs there.  The contextvars context is copied
 * when it starts, in the consumer's context, as asyncio.to_thread's body
 * copies it when its Task first runs it.
 *
 * The C layout: asyncio.Future's own struct (opaque here), then ne_lazy at
 * lazy_offset.  The base's slots do its part; ours handle ne_lazy and call
 * them.  Everything runs with the GIL, on the loop's thread.
 *
 * The statics below describe asyncio.Future, the same for every
 * interpreter, and the module supports only one interpreter anyway (see
 * module.c); a per-interpreter port moves them into the module state. */
#include "native_exec.h"

typedef struct {
    ne_task *pending;        /* the call, until started; its future is NULL
                              * (the future owns the task, not the reverse) */
    PyObject *pool;          /* strong while pending: ThreadPool or ProcessPool */
    const char *name;        /* the API, for the never-awaited warning */
    unsigned char awaited;   /* __await__ or send() took it */
} ne_lazy;

static Py_ssize_t lazy_offset;
static PyTypeObject *future_base;     /* asyncio.Future; strong */
static PyObject *base_add_done_callback;  /* its method descriptor; strong */
static PyObject *base_cancel;
static PyObject *base_blocking;       /* its _asyncio_future_blocking getset */
static int base_is_heap;              /* its dealloc drops the instance's type ref */

static inline ne_lazy *
lazy_of(PyObject *self)
{
    return (ne_lazy *)((char *)self + lazy_offset);
}

/* Forget the pending call without running it. */
static void
drop_pending(ne_lazy *lz)
{
    if (lz->pending != NULL) {
        ne_task_free(lz->pending);
        lz->pending = NULL;
    }
    Py_CLEAR(lz->pool);
}

/* Hand the pending call to its pool.  Never raises: should the pool refuse
 * it (shut down meanwhile), the future fails with that error instead, as a
 * coroutine does that raises when it first runs.  -1 only for a future
 * that cannot even be completed. */
static int
lazy_start(PyObject *self)
{
    ne_lazy *lz = lazy_of(self);
    ne_task *t = lz->pending;
    if (t == NULL) {
        return 0;
    }
    PyObject *pool = lz->pool;
    lz->pending = NULL;
    lz->pool = NULL;
    ne_state *st = t->bridge->st;
    t->future = Py_NewRef(self);
    int rc;
    if (PyObject_TypeCheck(pool, st->ThreadPoolType)) {
        t->context = PyContext_CopyCurrent();
        rc = t->context == NULL ? -1 : ne_tpool_push((ne_tpool *)pool, t, 0);
        if (rc < 0) {
            ne_task_free(t);
        }
    }
    else {
        rc = ne_ppool_start((ne_ppool *)pool, t);   /* consumes t */
    }
    Py_DECREF(pool);
    if (rc == 0) {
        return 0;
    }
    PyObject *exc = PyErr_GetRaisedException();
    rc = ne_complete_now(st, self, 1, NE_EXCEPTION, exc);
    Py_DECREF(exc);
    return rc;
}

/* Make fut (a NativeFuture just created) hold t until consumed.  Consumes
 * t and takes a reference to pool. */
void
ne_future_defer(PyObject *fut, PyObject *pool, ne_task *t, const char *name)
{
    ne_lazy *lz = lazy_of(fut);
    lz->pending = t;
    lz->pool = Py_NewRef(pool);
    lz->name = name;
}

/* ------------------------------------------------------------ methods */

/* The base class's method (a method descriptor) called on self, with the
 * caller's vectorcall arguments. */
static PyObject *
call_base(PyObject *method, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **stack = n < 8 ? small : PyMem_Malloc((size_t)(n + 1) * sizeof(PyObject *));
    if (stack == NULL) {
        return PyErr_NoMemory();
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < n; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *r = PyObject_Vectorcall(method, stack, nargs + 1, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return r;
}

static PyObject *
fut_add_done_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    if (lazy_start(self) < 0) {
        return NULL;
    }
    return call_base(base_add_done_callback, self, args, nargs, kwnames);
}

static PyObject *
fut_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* a call not started never will, as a coroutine closed unstarted */
    drop_pending(lazy_of(self));
    return call_base(base_cancel, self, args, nargs, kwnames);
}

/* The coroutine protocol, for a Task: the first send() starts the call and
 * yields the future to wait on (itself); once it is done, send() returns
 * its result by raising StopIteration, and throw() raises what the Task
 * got into it. */
static PyObject *
fut_send(PyObject *self, PyObject *Py_UNUSED(value))
{
    ne_lazy *lz = lazy_of(self);
    lz->awaited = 1;
    if (lazy_start(self) < 0) {
        return NULL;
    }
    PyObject *done = PyObject_CallMethod(self, "done", NULL);
    if (done == NULL) {
        return NULL;
    }
    int is_done = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (is_done < 0) {
        return NULL;
    }
    if (!is_done) {
        if (Py_TYPE(base_blocking)->tp_descr_set(base_blocking, self, Py_True) < 0) {
            return NULL;
        }
        return Py_NewRef(self);
    }
    PyObject *result = PyObject_CallMethod(self, "result", NULL);
    if (result == NULL) {
        return NULL;
    }
    /* StopIteration(result), built so that a tuple result stays one value */
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
    Py_DECREF(result);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *
fut_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    drop_pending(lazy_of(self));
    PyObject *done = PyObject_CallMethod(self, "done", NULL);
    if (done == NULL) {
        return NULL;
    }
    int is_done = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (is_done < 0) {
        return NULL;
    }
    if (!is_done) {
        PyObject *r = PyObject_CallMethod(self, "cancel", NULL);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyObject *
fut_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes from 1 to 3 arguments");
        return NULL;
    }
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
    PyObject *tb = nargs > 2 && args[2] != Py_None ? args[2] : NULL;
    PyObject *exc;
    if (val == NULL) {
        exc = PyExceptionClass_Check(typ) ? PyObject_CallNoArgs(typ) : Py_NewRef(typ);
    }
    else {
        exc = PyExceptionInstance_Check(val) ? Py_NewRef(val) : PyObject_CallOneArg(typ, val);
    }
    if (exc == NULL) {
        return NULL;
    }
    if (!PyExceptionInstance_Check(exc)) {
        Py_DECREF(exc);
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving from BaseException");
        return NULL;
    }
    if (tb != NULL && PyException_SetTraceback(exc, tb) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    PyObject *r = fut_close(self, NULL);
    if (r == NULL) {
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *
fut_await(PyObject *self)
{
    ne_lazy *lz = lazy_of(self);
    if (lz->awaited) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return NULL;
    }
    lz->awaited = 1;
    if (lazy_start(self) < 0) {
        return NULL;
    }
    return future_base->tp_as_async->am_await(self);
}

/* asyncio.isfuture() reads it: ensure_future() and every consumer that
 * takes futures as they are start the call here. */
static PyObject *
fut_get_blocking(PyObject *self, void *Py_UNUSED(closure))
{
    if (lazy_start(self) < 0) {
        return NULL;
    }
    return Py_TYPE(base_blocking)->tp_descr_get(base_blocking, self, (PyObject *)Py_TYPE(self));
}

static int
fut_set_blocking(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    return Py_TYPE(base_blocking)->tp_descr_set(base_blocking, self, value);
}

/* ------------------------------------------------------ object life */

static void
fut_finalize(PyObject *self)
{
    ne_lazy *lz = lazy_of(self);
    if (lz->pending != NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        const char *name = lz->name;
        drop_pending(lz);
        if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                             "coroutine '%s' was never awaited", name) < 0) {
            PyErr_WriteUnraisable(self);
        }
        PyErr_SetRaisedException(exc);
    }
    if (future_base->tp_finalize != NULL) {
        future_base->tp_finalize(self);
    }
}

static int
fut_traverse(PyObject *self, visitproc visit, void *arg)
{
    ne_lazy *lz = lazy_of(self);
    if (lz->pending != NULL) {
        int r = ne_task_traverse(lz->pending, visit, arg);
        if (r != 0) {
            return r;
        }
    }
    Py_VISIT(lz->pool);
    if (!base_is_heap) {
        Py_VISIT(Py_TYPE(self));
    }
    return future_base->tp_traverse(self, visit, arg);
}

static int
fut_clear(PyObject *self)
{
    drop_pending(lazy_of(self));
    return future_base->tp_clear(self);
}

static void
fut_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return;   /* resurrected */
    }
    drop_pending(lazy_of(self));
    future_base->tp_dealloc(self);
    /* a heap type's dealloc releases the instance's reference to its
     * type; a static base's (3.10, 3.11) does not */
    if (!base_is_heap) {
        Py_DECREF(tp);
    }
}

static PyMethodDef fut_methods[] = {
    {"add_done_callback", (PyCFunction)(void (*)(void))fut_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS,
     "add_done_callback($self, fn, /, *, context=None)\n--\n\n"
     "As asyncio.Future's; starts the call if it has not started."},
    {"cancel", (PyCFunction)(void (*)(void))fut_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel($self, /, msg=None)\n--\n\n"
     "As asyncio.Future's; a call not yet started never runs."},
    {"send", fut_send, METH_O,
     "send($self, value, /)\n--\n\nThe coroutine protocol: start, then wait for the result."},
    {"throw", (PyCFunction)(void (*)(void))fut_throw, METH_FASTCALL,
     "throw($self, typ, val=None, tb=None, /)\n--\n\n"
     "The coroutine protocol: give up on the result and raise."},
    {"close", fut_close, METH_NOARGS,
     "close($self, /)\n--\n\nGive up on the result: a call not yet started will not run."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fut_getset[] = {
    {"_asyncio_future_blocking", fut_get_blocking, fut_set_blocking, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(fut_doc,
"An asyncio.Future of the running loop that is also a coroutine.\n\n"
"Returned by to_thread(), to_process() and pool.run() inside a running\n"
"loop.  Like a coroutine, its call starts only once it is awaited or given\n"
"to asyncio (gather, wait_for, shield, as_completed, create_task,\n"
"ensure_future, TaskGroup); a second await raises RuntimeError, and one\n"
"never awaited warns.  gather() takes it as the future it is, with no Task\n"
"per call.  Cancelled before a worker starts it, the call never runs; once\n"
"running it finishes and its result is dropped, as with asyncio.to_thread.");

static PyType_Slot fut_slots[] = {
    {Py_tp_methods, fut_methods},
    {Py_tp_getset, fut_getset},
    {Py_tp_finalize, fut_finalize},
    {Py_tp_traverse, fut_traverse},
    {Py_tp_clear, fut_clear},
    {Py_tp_dealloc, fut_dealloc},
    {Py_am_await, fut_await},
    {Py_tp_doc, (void *)fut_doc},
    {0, NULL},
};

static PyType_Spec fut_spec = {
    .name = "native_exec.NativeFuture",
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = fut_slots,
};

/* At module exec: the NativeFuture type, subclassing asyncio.Future. */
PyTypeObject *
ne_future_type_new(PyObject *module)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL) {
        return NULL;
    }
    PyObject *base = PyObject_GetAttrString(asyncio, "Future");
    Py_DECREF(asyncio);
    if (base == NULL) {
        return NULL;
    }
    if (!PyType_Check(base) || ((PyTypeObject *)base)->tp_itemsize != 0
        || ((PyTypeObject *)base)->tp_as_async == NULL
        || ((PyTypeObject *)base)->tp_as_async->am_await == NULL) {
        Py_DECREF(base);
        PyErr_SetString(PyExc_ImportError, "native_exec needs asyncio's C Future");
        return NULL;
    }
    PyTypeObject *tp = NULL;
    Py_XSETREF(future_base, (PyTypeObject *)base);
    base_is_heap = (future_base->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
    PyObject *dict = future_base->tp_dict;
    Py_XSETREF(base_add_done_callback, Py_XNewRef(PyDict_GetItemString(dict, "add_done_callback")));
    Py_XSETREF(base_cancel, Py_XNewRef(PyDict_GetItemString(dict, "cancel")));
    Py_XSETREF(base_blocking, Py_XNewRef(PyDict_GetItemString(dict, "_asyncio_future_blocking")));
    if (base_add_done_callback == NULL || base_cancel == NULL || base_blocking == NULL
        || Py_TYPE(base_blocking)->tp_descr_get == NULL
        || Py_TYPE(base_blocking)->tp_descr_set == NULL) {
        PyErr_SetString(PyExc_ImportError, "native_exec: asyncio.Future lacks what it needs");
        return NULL;
    }
    lazy_offset = (future_base->tp_basicsize + (Py_ssize_t)_Alignof(ne_lazy) - 1)
                  / (Py_ssize_t)_Alignof(ne_lazy) * (Py_ssize_t)_Alignof(ne_lazy);
    fut_spec.basicsize = (int)(lazy_offset + (Py_ssize_t)sizeof(ne_lazy));
    PyObject *bases = PyTuple_Pack(1, base);
    if (bases != NULL) {
        tp = (PyTypeObject *)PyType_FromModuleAndSpec(module, &fut_spec, bases);
        Py_DECREF(bases);
    }
    return tp;
}
