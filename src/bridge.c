/* The asyncio bridge: how results computed on worker threads reach the
 * event loop that awaits them.
 *
 * One Bridge exists per loop that has work in flight (tasks hold strong
 * references to it, so it lives exactly as long as that work).  A worker
 * that finishes a task appends it to the bridge's batch; only the first
 * task of a batch pays for loop.call_soon_threadsafe(bridge), the one
 * wake-up of the loop.  When the loop calls the bridge it completes every
 * future in the batch.  All of it is protected by the GIL. */
#include "native_exec.h"

static void
bridge_unlink(ne_bridge *b)
{
    for (ne_bridge **pp = &b->st->bridges; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            return;
        }
    }
}

/* A new reference to the bridge serving loop, created on first use. */
ne_bridge *
ne_bridge_for_loop(ne_state *st, PyObject *loop)
{
    for (ne_bridge *b = st->bridges; b != NULL; b = b->next) {
        if (b->loop == loop) {
            return (ne_bridge *)Py_NewRef((PyObject *)b);
        }
    }
    PyObject *method = PyObject_GetAttr(loop, st->s_call_soon_threadsafe);
    if (method == NULL) {
        return NULL;
    }
    ne_bridge *b = PyObject_GC_New(ne_bridge, st->BridgeType);
    if (b == NULL) {
        Py_DECREF(method);
        return NULL;
    }
    b->st = st;
    b->loop = Py_NewRef(loop);
    b->call_soon_threadsafe = method;
    b->head = b->tail = NULL;
    b->scheduled = 0;
    b->next = st->bridges;
    st->bridges = b;
    PyObject_GC_Track(b);
    return b;
}

static ne_task *
take_batch(ne_bridge *b)
{
    ne_task *batch = b->head;
    b->head = b->tail = NULL;
    b->scheduled = 0;
    return batch;
}

static void
free_batch(ne_task *t)
{
    while (t != NULL) {
        ne_task *next = t->next;
        ne_task_free(t);
        t = next;
    }
}

/* Queue a finished task for completion on the loop; consumes t. */
void
ne_bridge_post(ne_bridge *b, ne_task *t)
{
    t->next = NULL;
    if (b->tail != NULL) {
        b->tail->next = t;
    }
    else {
        b->head = t;
    }
    b->tail = t;
    if (b->scheduled) {
        return;
    }
    b->scheduled = 1;
    PyObject *r = PyObject_CallOneArg(b->call_soon_threadsafe, (PyObject *)b);
    if (r != NULL) {
        Py_DECREF(r);
        return;
    }
    /* A closed loop takes no callbacks, and nothing can await its futures
     * any more: the batch is dropped quietly, as asyncio.wrap_future does. */
    PyObject *exc = PyErr_GetRaisedException();
    int closed = ne_call_bool(b->loop, b->st->s_is_closed);
    if (closed != 1) {
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
        PyErr_WriteUnraisable(b->call_soon_threadsafe);
    }
    else {
        Py_DECREF(exc);
    }
    free_batch(take_batch(b));
}

/* Called by the loop: complete every future of the batch. */
static PyObject *
bridge_call(PyObject *self, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs))
{
    ne_bridge *b = (ne_bridge *)self;
    ne_task *t = take_batch(b);
    Py_INCREF(self);  /* freeing the last task may drop the last other reference */
    while (t != NULL) {
        ne_task *next = t->next;
        ne_task_complete_async(b->st, t);
        ne_task_free(t);
        t = next;
    }
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static int
bridge_traverse(PyObject *self, visitproc visit, void *arg)
{
    ne_bridge *b = (ne_bridge *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(b->loop);
    Py_VISIT(b->call_soon_threadsafe);
    for (ne_task *t = b->head; t != NULL; t = t->next) {
        int r = ne_task_traverse(t, visit, arg);
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

static int
bridge_clear(PyObject *self)
{
    ne_bridge *b = (ne_bridge *)self;
    free_batch(take_batch(b));
    Py_CLEAR(b->call_soon_threadsafe);
    Py_CLEAR(b->loop);
    return 0;
}

static void
bridge_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    bridge_unlink((ne_bridge *)self);
    bridge_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

static PyObject *
bridge_repr(PyObject *self)
{
    ne_bridge *b = (ne_bridge *)self;
    return PyUnicode_FromFormat("<native_exec bridge to %R>", b->loop);
}

static PyType_Slot bridge_slots[] = {
    {Py_tp_call, bridge_call},
    {Py_tp_traverse, bridge_traverse},
    {Py_tp_clear, bridge_clear},
    {Py_tp_dealloc, bridge_dealloc},
    {Py_tp_repr, bridge_repr},
    {Py_tp_doc, "Completes, on its event loop, the futures of tasks finished by workers."},
    {0, NULL},
};

PyType_Spec ne_bridge_spec = {
    .name = "native_exec._native.Bridge",
    .basicsize = sizeof(ne_bridge),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = bridge_slots,
};
