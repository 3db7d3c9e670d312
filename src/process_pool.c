/* The ProcessPool type: the parent's side of a process pool.
 *
 * submit()/run() pickle the call straight into a free slot of the shared
 * region (inline, in the argument arena, or in a named segment when it is
 * too large) and publish it to the workers; when all NE_SLOTS slots are in
 * flight, tasks wait pickled in the parent (pending) until the collector
 * frees one.  Workers are started on demand through the zygote.
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

static PyObject *
broken_error(ne_ppool *p, PyObject *reason)
{
    return PyObject_CallOneArg(p->st->BrokenProcessPool, reason);
}

/* Release a task that waited in the parent. */
static void
pending_free(ne_pending *t)
{
    ne_blob_clear(&t->blob);
    Py_DECREF(t->future);
    Py_XDECREF((PyObject *)t->bridge);
    PyMem_Free(t);
}

/* Fail a task's future with the current exception. */
static void
complete_with_current_error(ne_ppool *p, PyObject *future, ne_bridge *bridge)
{
    PyObject *exc = PyErr_GetRaisedException();
    ne_complete(p->st, future, bridge, NE_EXCEPTION, exc);
    Py_XDECREF(exc);
}

/* Give slot idx back to the free list, with its argument space. */
static void
recycle_slot(ne_ppool *p, uint32_t idx)
{
    ne_record *rec = &p->records[idx];
    if (rec->arena_length != 0) {
        ne_arena_free(&p->arena, rec->arena_offset, rec->arena_length);
        rec->arena_length = 0;
    }
    p->free_slots[p->nfree++] = idx;
}

/* Free a slot: its record, its argument space; unlink named payloads a
 * dead reader left behind.  While the parent is still streaming arguments
 * into it, the space and the slot are recycled when the copy ends. */
void
ne_ppool_release_slot(ne_ppool *p, uint32_t idx)
{
    ne_record *rec = &p->records[idx];
    Py_CLEAR(rec->future);
    Py_CLEAR(rec->bridge);
    ne_slot *s = &p->region.slots[idx];
    if (s->args.kind == SPAN_NAMED) {
        ne_named_unlink(s->args.name);
    }
    if (s->result.kind == SPAN_NAMED) {
        ne_named_unlink(s->result.name);
    }
    s->args.kind = s->result.kind = SPAN_NONE;
    atomic_store(&s->state, SLOT_FREE);
    if (rec->streaming) {
        rec->release_deferred = 1;
        return;
    }
    recycle_slot(p, idx);
}

/* Copy a pickled task into slot idx and record it.  Large payloads with
 * buffers get only their prefix written here: the caller publishes the
 * slot, then ne_ppool_stream copies the rest while a worker reads.
 * Consumes blob unless streaming.  -1 with an exception when there is no
 * room anywhere. */
int
ne_ppool_place(ne_ppool *p, uint32_t idx, ne_blob *blob, PyObject *future,
               ne_bridge *bridge, uint64_t ticket)
{
    ne_slot *s = &p->region.slots[idx];
    ne_record *rec = &p->records[idx];
    memset(&s->args, 0, sizeof(s->args));
    memset(&s->result, 0, sizeof(s->result));
    s->is_error = 0;
    s->args.length = blob->size;
    char *dst;
    uint64_t offset;
    if (blob->size <= NE_INLINE) {
        s->args.kind = SPAN_INLINE;
        dst = (char *)s->args_inline;
    }
    else if (ne_arena_alloc(&p->arena, blob->size, &offset) == 0) {
        s->args.kind = SPAN_ARENA;
        s->args.offset = offset;
        rec->arena_offset = offset;
        rec->arena_length = blob->size;
        dst = p->region.base + offset;
    }
    else {
        /* named before the segment exists: should this process die while
         * writing it, the zygote finds the name and unlinks it */
        s->args.kind = SPAN_NAMED;
        dst = ne_named_create(s->args.name, blob->size);
        if (dst == NULL) {
            s->args.name[0] = '\0';
            s->args.kind = SPAN_NONE;
            PyErr_SetFromErrno(PyExc_OSError);
            ne_blob_clear(blob);
            return -1;
        }
    }
    rec->future = Py_NewRef(future);
    rec->bridge = (ne_bridge *)Py_XNewRef((PyObject *)bridge);
    rec->ticket = ticket;
    if (blob->nviews > 0 && blob->size >= NE_STREAM_MIN) {
        ne_blob_write_prefix(blob, dst);
        atomic_store(&s->args_ready, ne_blob_prefix_size(blob));
        rec->streaming = 1;
        rec->stream_dst = dst;
        return 0;
    }
    /* the GIL stays held: the slot is taken but not yet published, and
     * nothing else may release or reuse it meanwhile (big payloads stream,
     * with that guarded by rec->streaming) */
    ne_blob_write(blob, dst, &s->args_ready, 0);
    if (s->args.kind == SPAN_NAMED) {
        ne_named_release(dst, blob->size);
    }
    ne_blob_clear(blob);
    return 0;
}

/* After publishing a streaming slot: copy its buffers in, GIL released,
 * while the worker that claimed it copies them out.  Consumes blob. */
void
ne_ppool_stream(ne_ppool *p, uint32_t idx, ne_blob *blob)
{
    ne_record *rec = &p->records[idx];
    ne_slot *s = &p->region.slots[idx];
    char *dst = rec->stream_dst;
    int named = s->args.kind == SPAN_NAMED;
    uint64_t size = blob->size;
    Py_BEGIN_ALLOW_THREADS
    ne_blob_write_buffers(blob, dst, &s->args_ready);
    Py_END_ALLOW_THREADS
    if (named) {
        ne_named_release(dst, size);
    }
    ne_blob_clear(blob);
    rec->streaming = 0;
    rec->stream_dst = NULL;
    if (rec->release_deferred) {
        rec->release_deferred = 0;
        recycle_slot(p, idx);
        ne_futex_ring(&p->region.shm->collector_seq, 1);
    }
}

/* lock held: rebuild the ready ring from its READY entries, once stale
 * ones (withdrawn tasks, claims cut short by a death) have filled it. */
static void
compact_ready_ring(ne_ppool *p)
{
    ne_shm *shm = p->region.shm;
    unsigned char seen[NE_SLOTS] = {0};
    uint32_t live[NE_SLOTS];
    uint32_t n = 0;
    for (uint64_t i = shm->ready_head; i != shm->ready_tail; i++) {
        uint32_t idx = shm->ready[i % NE_RING];
        if (atomic_load(&p->region.slots[idx].state) == SLOT_READY && !seen[idx]) {
            seen[idx] = 1;
            live[n++] = idx;
        }
    }
    shm->ready_head = shm->ready_tail;
    for (uint32_t i = 0; i < n; i++) {
        shm->ready[shm->ready_tail++ % NE_RING] = live[i];
    }
}

/* Make slot idx claimable and wake a sleeping worker if one is free. */
void
ne_ppool_publish(ne_ppool *p, uint32_t idx)
{
    ne_shm *shm = p->region.shm;
    ne_slot *s = &p->region.slots[idx];
    ne_shm_lock(shm);
    s->worker = -1;
    atomic_store(&s->state, SLOT_READY);
    if (shm->ready_tail - shm->ready_head >= NE_RING) {
        compact_ready_ring(p);
    }
    shm->ready[shm->ready_tail++ % NE_RING] = idx;
    int wake = shm->nsleeping > shm->nwoken;
    if (wake) {
        shm->nwoken++;
    }
    ne_shm_unlock(shm);
    if (wake) {
        ne_futex_ring(&shm->work_seq, 1);
    }
}

/* Move pending tasks into free slots. */
void
ne_ppool_refill(ne_ppool *p)
{
    while (p->pending_head != NULL && p->nfree > 0 && p->region.base != NULL) {
        ne_pending *t = p->pending_head;
        p->pending_head = t->next;
        if (p->pending_head == NULL) {
            p->pending_tail = NULL;
        }
        p->npending--;
        uint32_t idx = p->free_slots[--p->nfree];
        if (ne_ppool_place(p, idx, &t->blob, t->future, t->bridge, t->ticket) == 0) {
            ne_ppool_publish(p, idx);
            if (p->records[idx].streaming) {
                ne_ppool_stream(p, idx, &t->blob);
            }
        }
        else {
            p->free_slots[p->nfree++] = idx;
            complete_with_current_error(p, t->future, t->bridge);
        }
        pending_free(t);  /* its blob was consumed */
    }
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
        starting += atomic_load(&r->workers[w].state) == W_SPAWN;
    }
    int64_t wanted = queued + (int64_t)p->npending - idle - starting;
    int spawned = 0;
    for (int w = 0; w < r->nworkers && wanted > 0 && p->nalive < p->max_workers; w++) {
        if (atomic_load(&r->workers[w].state) == W_EMPTY) {
            atomic_store(&r->workers[w].state, W_SPAWN);
            p->nalive++;
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
            if (atomic_load(&p->region.slots[idx].state) == SLOT_READY) {
                atomic_store(&p->region.slots[idx].state, SLOT_FREE);
            }
        }
        ne_shm_unlock(shm);
    }
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_record *rec = &p->records[idx];
        if (rec->future == NULL) {
            continue;
        }
        PyObject *exc = broken_error(p, p->broken);
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        ne_complete(p->st, rec->future, rec->bridge, NE_EXCEPTION, exc);
        Py_XDECREF(exc);
        /* RUNNING slots stay taken until their worker is gone */
        if (p->region.base == NULL
            || atomic_load(&p->region.slots[idx].state) == SLOT_FREE) {
            ne_ppool_release_slot(p, idx);
        }
        else {
            Py_CLEAR(rec->future);
            Py_CLEAR(rec->bridge);
        }
    }
    while (p->pending_head != NULL) {
        ne_pending *t = p->pending_head;
        p->pending_head = t->next;
        PyObject *exc = broken_error(p, p->broken);
        if (exc == NULL) {
            exc = PyErr_GetRaisedException();
        }
        ne_complete(p->st, t->future, t->bridge, NE_EXCEPTION, exc);
        Py_XDECREF(exc);
        pending_free(t);
    }
    p->pending_tail = NULL;
    p->npending = 0;
    if (p->region.base != NULL && !p->foreign) {
        ne_zygote_stop(p, ZYGOTE_KILL);
    }
}

/* ---------------------------------------------------------- submitting */

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
        PyObject *exc = broken_error(p, p->broken);
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
        complete_with_current_error(p, future, bridge);
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
    if (p->nfree > 0 && p->pending_head == NULL) {
        uint32_t idx = p->free_slots[--p->nfree];
        if (ne_ppool_place(p, idx, &blob, future, bridge, ticket) < 0) {
            p->free_slots[p->nfree++] = idx;
            complete_with_current_error(p, future, bridge);
            return 0;
        }
        ne_ppool_publish(p, idx);
        if (p->records[idx].streaming) {
            ne_ppool_stream(p, idx, &blob);
        }
    }
    else {
        ne_pending *t = PyMem_Calloc(1, sizeof(ne_pending));
        if (t == NULL) {
            ne_blob_clear(&blob);
            PyErr_NoMemory();
            return -1;
        }
        t->blob = blob;
        t->future = Py_NewRef(future);
        t->bridge = (ne_bridge *)Py_XNewRef((PyObject *)bridge);
        t->ticket = ticket;
        if (p->pending_tail != NULL) {
            p->pending_tail->next = t;
        }
        else {
            p->pending_head = t;
        }
        p->pending_tail = t;
        p->npending++;
    }
    ne_ppool_spawn_if_needed(p);
    return 0;
}

PyDoc_STRVAR(ppool_submit_doc,
"submit($self, fn, /, *args, **kwargs)\n--\n\n"
"Run fn(*args, **kwargs) in a worker process; return a concurrent.futures.Future.");

static PyObject *
ppool_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ne_ppool *p = (ne_ppool *)self;
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

PyDoc_STRVAR(ppool_run_doc,
"run($self, func, /, *args, **kwargs)\n--\n\n"
"Run func(*args, **kwargs) in a worker process; return an awaitable asyncio\n"
"future of the running loop.");

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

/* Where the task with this ticket is: TICKET_PENDING with *link the
 * pointer to it in the parent's queue, TICKET_IN_SLOT with *idx its slot,
 * or TICKET_UNKNOWN (done, or the pool is not this process's). */
enum { TICKET_UNKNOWN, TICKET_PENDING, TICKET_IN_SLOT };

static int
find_ticket(ne_ppool *p, uint64_t ticket, ne_pending ***link, uint32_t *idx)
{
    for (ne_pending **pp = &p->pending_head; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->ticket == ticket) {
            *link = pp;
            return TICKET_PENDING;
        }
    }
    if (p->region.base == NULL || p->foreign) {
        return TICKET_UNKNOWN;
    }
    for (uint32_t i = 0; i < NE_SLOTS; i++) {
        if (p->records[i].future != NULL && p->records[i].ticket == ticket) {
            *idx = i;
            return TICKET_IN_SLOT;
        }
    }
    return TICKET_UNKNOWN;
}

PyDoc_STRVAR(ppool_withdraw_doc,
"_withdraw($self, ticket, /)\n--\n\n"
"Take back a task no worker has claimed: 1 if withdrawn, 0 if a worker has\n"
"it (it runs to completion), -1 if the pool no longer knows it.");

static PyObject *
ppool_withdraw(PyObject *self, PyObject *arg)
{
    ne_ppool *p = (ne_ppool *)self;
    uint64_t ticket = PyLong_AsUnsignedLongLong(arg);
    if (ticket == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    ne_pending **link;
    uint32_t idx;
    switch (find_ticket(p, ticket, &link, &idx)) {
    case TICKET_PENDING: {
        ne_pending *t = *link;
        *link = t->next;
        if (p->pending_tail == t) {
            p->pending_tail = NULL;
            for (ne_pending *q = p->pending_head; q != NULL; q = q->next) {
                p->pending_tail = q;
            }
        }
        p->npending--;
        pending_free(t);
        return PyLong_FromLong(1);
    }
    case TICKET_IN_SLOT: {
        ne_shm_lock(p->region.shm);
        uint32_t expected = SLOT_READY;
        int withdrawn = atomic_compare_exchange_strong(&p->region.slots[idx].state,
                                                       &expected, SLOT_FREE);
        ne_shm_unlock(p->region.shm);
        if (withdrawn) {
            ne_ppool_release_slot(p, idx);
            ne_ppool_refill(p);
        }
        return PyLong_FromLong(withdrawn ? 1 : 0);
    }
    default:
        return PyLong_FromLong(-1);
    }
}

PyDoc_STRVAR(ppool_claimed_doc,
"_claimed($self, ticket, /)\n--\n\n"
"1 if a worker has claimed the task (it can no longer be withdrawn), 0 if it\n"
"still waits for one, -1 if the pool no longer knows it.");

static PyObject *
ppool_claimed(PyObject *self, PyObject *arg)
{
    ne_ppool *p = (ne_ppool *)self;
    uint64_t ticket = PyLong_AsUnsignedLongLong(arg);
    if (ticket == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    ne_pending **link;
    uint32_t idx;
    switch (find_ticket(p, ticket, &link, &idx)) {
    case TICKET_PENDING:
        return PyLong_FromLong(0);
    case TICKET_IN_SLOT:
        /* a claim moves the slot out of READY under the lock; reading it
         * without the lock gives the state before or after a claim, either
         * of which is a true answer at some instant */
        return PyLong_FromLong(atomic_load(&p->region.slots[idx].state) == SLOT_READY ? 0 : 1);
    default:
        return PyLong_FromLong(-1);
    }
}

/* ------------------------------------------------------------ shutdown */

/* Lock held: how many workers are committed to claiming a READY task
 * next, each of which has been handed the oldest one left (see shm.h). */
static uint32_t
committed_workers(ne_ppool *p)
{
    ne_region *r = &p->region;
    unsigned char running[r->nworkers];
    memset(running, 0, sizeof(running));
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_slot *s = &r->slots[idx];
        if (atomic_load(&s->state) == SLOT_RUNNING && s->worker >= 0
            && s->worker < r->nworkers) {
            running[s->worker] = 1;
        }
    }
    uint32_t committed = 0;
    for (int w = 0; w < r->nworkers; w++) {
        ne_wslot *ws = &r->workers[w];
        uint32_t state = atomic_load(&ws->state);
        committed += state == W_SPAWN
                     || (state == W_ALIVE && !running[w] && !ws->sleeping && !ws->leaving);
    }
    ne_shm *shm = r->shm;
    committed += shm->nwoken < shm->nsleeping ? shm->nwoken : shm->nsleeping;
    return committed;
}

/* Cancel the tasks no worker has claimed; with spare_handed, not those a
 * worker has been handed (the oldest committed_workers() READY ones). */
static void
cancel_unclaimed(ne_ppool *p, int spare_handed)
{
    ne_state *st = p->st;
    PyObject *cancelled = PyList_New(0);
    if (cancelled == NULL) {
        PyErr_WriteUnraisable((PyObject *)p);
        return;
    }
    if (p->region.base != NULL) {
        ne_shm *shm = p->region.shm;
        ne_shm_lock(shm);
        /* spared: the first `spare` READY slots in claim order (a slot's
         * first entry in the ring is where it is claimed; later ones are
         * stale) */
        unsigned char spared[NE_SLOTS] = {0};
        uint32_t spare = spare_handed ? committed_workers(p) : 0;
        for (uint64_t i = shm->ready_head; spare > 0 && i != shm->ready_tail; i++) {
            uint32_t idx = shm->ready[i % NE_RING];
            if (atomic_load(&p->region.slots[idx].state) == SLOT_READY && !spared[idx]) {
                spared[idx] = 1;
                spare--;
            }
        }
        uint32_t withdrawn[NE_SLOTS];
        int n = 0;
        for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
            uint32_t expected = SLOT_READY;
            if (p->records[idx].future != NULL && !spared[idx]
                && atomic_compare_exchange_strong(&p->region.slots[idx].state, &expected,
                                                  SLOT_FREE)) {
                withdrawn[n++] = idx;
            }
        }
        ne_shm_unlock(shm);
        for (int i = 0; i < n; i++) {
            ne_record *rec = &p->records[withdrawn[i]];
            PyObject *pair = PyTuple_Pack(2, rec->future, rec->bridge ? (PyObject *)rec->bridge : Py_None);
            if (pair == NULL || PyList_Append(cancelled, pair) < 0) {
                PyErr_WriteUnraisable((PyObject *)p);
            }
            Py_XDECREF(pair);
            ne_ppool_release_slot(p, withdrawn[i]);
        }
    }
    while (p->pending_head != NULL) {
        ne_pending *t = p->pending_head;
        p->pending_head = t->next;
        PyObject *pair = PyTuple_Pack(2, t->future, t->bridge ? (PyObject *)t->bridge : Py_None);
        if (pair == NULL || PyList_Append(cancelled, pair) < 0) {
            PyErr_WriteUnraisable((PyObject *)p);
        }
        Py_XDECREF(pair);
        pending_free(t);
    }
    p->pending_tail = NULL;
    p->npending = 0;
    /* cancel() of our future classes asks the pool first; the pool no
     * longer knows these tickets, so they cancel as plain futures */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cancelled); i++) {
        PyObject *fut = PyTuple_GET_ITEM(PyList_GET_ITEM(cancelled, i), 0);
        PyObject *bridge = PyTuple_GET_ITEM(PyList_GET_ITEM(cancelled, i), 1);
        ne_complete(st, fut, bridge != Py_None ? (ne_bridge *)bridge : NULL, NE_CANCELLED,
                    NULL);
    }
    Py_DECREF(cancelled);
}

/* Stop the zygote and its workers (request: ZYGOTE_*) and reap it (GIL
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
        cancel_unclaimed(p, cancel == CANCEL_QUEUED);
    }
    if (p->collector_state == 0) {
        /* nothing was ever submitted: only the zygote to stop, unless it
         * is being forked (ppool_new then finishes the shutdown) */
        if (p->region.base != NULL && !p->starting) {
            stop_processes(p, ZYGOTE_DRAIN);
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
 * ZYGOTE_TERMINATE or ZYGOTE_KILL).  What follows is an ordinary shutdown:
 * the collector fails the tasks the dead were running with WorkerDied as
 * it buries them, then stops the zygote and unmaps the region.  Nothing
 * to do once the processes are gone, or in a forked child. */
int
ne_ppool_force_shutdown(ne_ppool *p, uint32_t request)
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
ne_ppool_finish(ne_ppool *p)
{
    stop_processes(p, p->broken != NULL ? ZYGOTE_KILL : ZYGOTE_DRAIN);
    unmap(p);
}

/* A future the parent was waiting for, in a forked child: it fails. */
static void
settle_in_child(ne_ppool *p, PyObject *future, ne_bridge *bridge, PyObject *reason)
{
    PyObject *exc = reason != NULL ? broken_error(p, reason) : NULL;
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
    while (p->pending_head != NULL) {
        ne_pending *t = p->pending_head;
        p->pending_head = t->next;
        settle_in_child(p, t->future, t->bridge, reason);
        pending_free(t);
    }
    Py_XDECREF(reason);
    p->pending_tail = NULL;
    p->npending = 0;
}

/* ------------------------------------------------------------ the type */

static PyObject *
ppool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_workers", "initializer", "initargs",
                             "max_tasks_per_child", NULL};
    int max_workers;
    long max_tasks = 0;
    PyObject *initializer = Py_None, *initargs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|OO!l:ProcessPool", kwlist,
                                     &max_workers, &initializer, &PyTuple_Type,
                                     &initargs, &max_tasks)) {
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
    if (ne_region_map(&p->region, max_workers) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    p->region.shm->owner_pid = p->owner_pid;
    if (ne_arena_init(&p->arena, p->region.arena_offset, p->region.arena_size) < 0) {
        PyErr_NoMemory();
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
        stop_processes(p, ZYGOTE_KILL);
    }
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        Py_CLEAR(p->records[idx].future);
        Py_CLEAR(p->records[idx].bridge);
    }
    while (p->pending_head != NULL) {
        ne_pending *t = p->pending_head;
        p->pending_head = t->next;
        pending_free(t);
    }
    if (!p->foreign) {
        unmap(p);
    }
    ne_arena_fini(&p->arena);
    Py_CLEAR(p->initializer);
    Py_CLEAR(p->initargs);
    Py_CLEAR(p->broken);
    tp->tp_free(self);
    Py_DECREF(tp);
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
    if (ne_ppool_force_shutdown((ne_ppool *)self,
                                sig == SIGKILL ? ZYGOTE_KILL : ZYGOTE_TERMINATE) < 0) {
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
            if (atomic_load(&ws->state) == W_ALIVE) {
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
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(ppool_doc,
"ProcessPool(max_workers, initializer=None, initargs=(), max_tasks_per_child=0)\n"
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
