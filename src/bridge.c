/* The asyncio bridge: how outcomes computed off an event loop's thread
 * reach the futures awaiting them on it.
 *
 * One Bridge exists per loop that has work in flight (tasks and process
 * pool records hold strong references to it, so it lives exactly as long as
 * that work).  A thread with an outcome for one of its futures appends it
 * to the bridge's batch; only the first outcome of a batch pays for
 * loop.call_soon_threadsafe(bridge), the one wake-up of the loop.  When the
 * loop calls the bridge it completes every future in the batch
 * (ne_complete_now).  All of it is protected by the GIL. */
#include "native_exec.h"

/* Nodes of drained batches kept for the next outcomes, so that a
 * completion costs no allocation once the module is warm; enough for a
 * typical batch, few enough not to matter. */
#define SPARE_OUTCOMES_MAX 1024

static ne_outcome *
outcome_new(ne_state *st)
{
    ne_outcome *o = st->spare_outcomes;
    if (o != NULL) {
        st->spare_outcomes = o->next;
        st->nspare_outcomes--;
        return o;
    }
    return PyMem_Malloc(sizeof(*o));
}

/* Release o's references and keep or free the node. */
static void
outcome_free(ne_state *st, ne_outcome *o)
{
    Py_DECREF(o->future);
    Py_XDECREF(o->value);
    if (st->nspare_outcomes < SPARE_OUTCOMES_MAX) {
        o->next = st->spare_outcomes;
        st->spare_outcomes = o;
        st->nspare_outcomes++;
        return;
    }
    PyMem_Free(o);
}

/* module_clear: the spare nodes go. */
void
ne_bridge_clear_spares(ne_state *st)
{
    while (st->spare_outcomes != NULL) {
        ne_outcome *o = st->spare_outcomes;
        st->spare_outcomes = o->next;
        PyMem_Free(o);
    }
    st->nspare_outcomes = 0;
}

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

static ne_outcome *
take_batch(ne_bridge *b)
{
    ne_outcome *batch = b->head;
    b->head = b->tail = NULL;
    b->scheduled = 0;
    return batch;
}

static void
free_batch(ne_state *st, ne_outcome *o)
{
    while (o != NULL) {
        ne_outcome *next = o->next;
        outcome_free(st, o);
        o = next;
    }
}

/* Queue an outcome for future (borrowed) to be completed on the loop:
 * value (borrowed) is the result or the exception, NULL when cancelled. */
void
ne_bridge_post(ne_bridge *b, PyObject *future, ne_ending how, PyObject *value)
{
    ne_outcome *o = outcome_new(b->st);
    if (o == NULL) {
        PyErr_NoMemory();
        PyErr_WriteUnraisable(future);
        return;
    }
    o->next = NULL;
    o->future = Py_NewRef(future);
    o->value = Py_XNewRef(value);
    o->how = how;
    if (b->tail != NULL) {
        b->tail->next = o;
    }
    else {
        b->head = o;
    }
    b->tail = o;
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
    free_batch(b->st, take_batch(b));
}

/* Called by the loop: complete every future of the batch. */
static PyObject *
bridge_call(PyObject *self, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs))
{
    ne_bridge *b = (ne_bridge *)self;
    ne_state *st = b->st;
    ne_outcome *o = take_batch(b);
    while (o != NULL) {
        ne_outcome *next = o->next;
        if (ne_complete_now(st, o->future, 1, o->how, o->value) < 0) {
            PyErr_WriteUnraisable(o->future);
        }
        outcome_free(st, o);
        o = next;
    }
    Py_RETURN_NONE;
}

static int
bridge_traverse(PyObject *self, visitproc visit, void *arg)
{
    ne_bridge *b = (ne_bridge *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(b->loop);
    Py_VISIT(b->call_soon_threadsafe);
    for (ne_outcome *o = b->head; o != NULL; o = o->next) {
        Py_VISIT(o->future);
        Py_VISIT(o->value);
    }
    return 0;
}

static int
bridge_clear(PyObject *self)
{
    ne_bridge *b = (ne_bridge *)self;
    free_batch(b->st, take_batch(b));
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
