/* The parent's slot table: how a pickled task reaches a worker process.
 *
 * A task is placed in a free slot of the shared region (its arguments
 * inline, in the argument arena, or in a named segment when too large),
 * then published on the ready ring, from which a worker claims it.  Large
 * payloads with out-of-band buffers stream: the slot is published once
 * their prefix is written, and the parent copies the buffers in while the
 * worker reads them.  When all NE_SLOTS slots are in flight, tasks wait
 * pickled in the parent (the pending queue) until the collector frees one.
 * A task no worker has claimed yet can be withdrawn (cancel()).
 *
 * The records, free list, arena and pending queue are the GIL's; slot
 * states, the ready ring and the worker counters the shared lock's (see
 * shm.h and "Locking" in native_exec.h). */
#include "native_exec.h"

#include <string.h>

/* ------------------------------------------------------- pending queue */

/* Take the oldest task waiting in the parent, or NULL. */
ne_pending *
ne_pending_pop(ne_ppool *p)
{
    ne_pending *t = p->pending_head;
    if (t != NULL) {
        p->pending_head = t->next;
        if (p->pending_head == NULL) {
            p->pending_tail = NULL;
        }
        p->npending--;
    }
    return t;
}

/* Release a task that waited in the parent. */
void
ne_pending_free(ne_pending *t)
{
    ne_blob_clear(&t->blob);
    Py_DECREF(t->future);
    Py_XDECREF((PyObject *)t->bridge);
    PyMem_Free(t);
}

/* Unlink the task *link points to. */
static void
pending_unlink(ne_ppool *p, ne_pending **link)
{
    ne_pending *t = *link;
    *link = t->next;
    if (p->pending_tail == t) {
        p->pending_tail = NULL;
        for (ne_pending *q = p->pending_head; q != NULL; q = q->next) {
            p->pending_tail = q;
        }
    }
    p->npending--;
}

/* Queue a task in the parent; consumes blob.  -1 on no memory. */
static int
pending_push(ne_ppool *p, ne_blob *blob, PyObject *future, ne_bridge *bridge,
             uint64_t ticket, int64_t submitted_ns)
{
    ne_pending *t = PyMem_Calloc(1, sizeof(ne_pending));
    if (t == NULL) {
        ne_blob_clear(blob);
        PyErr_NoMemory();
        return -1;
    }
    t->blob = *blob;
    t->future = Py_NewRef(future);
    t->bridge = (ne_bridge *)Py_XNewRef((PyObject *)bridge);
    t->ticket = ticket;
    t->submitted_ns = submitted_ns;
    if (p->pending_tail != NULL) {
        p->pending_tail->next = t;
    }
    else {
        p->pending_head = t;
    }
    p->pending_tail = t;
    p->npending++;
    return 0;
}

/* ---------------------------------------------------------------- slots */

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
ne_slots_release(ne_ppool *p, uint32_t idx)
{
    ne_record *rec = &p->records[idx];
    Py_CLEAR(rec->future);
    Py_CLEAR(rec->bridge);
    ne_slot *s = &p->region.slots[idx];
    if (s->args.kind == NE_SPAN_NAMED) {
        ne_named_unlink(s->args.name);
    }
    if (s->result.kind == NE_SPAN_NAMED) {
        ne_named_unlink(s->result.name);
    }
    s->args.kind = s->result.kind = NE_SPAN_NONE;
    atomic_store(&s->state, NE_SLOT_FREE);
    if (rec->streaming) {
        rec->release_deferred = 1;
        return;
    }
    recycle_slot(p, idx);
}

/* Copy a pickled task into slot idx and record it.  Large payloads with
 * buffers get only their prefix written here: the caller publishes the
 * slot, then stream() copies the rest while a worker reads.
 * Consumes blob unless streaming.  -1 with an exception when there is no
 * room anywhere. */
static int
place(ne_ppool *p, uint32_t idx, ne_blob *blob, PyObject *future,
      ne_bridge *bridge, uint64_t ticket)
{
    ne_slot *s = &p->region.slots[idx];
    ne_record *rec = &p->records[idx];
    memset(&s->args, 0, sizeof(s->args));
    memset(&s->result, 0, sizeof(s->result));
    s->is_error = 0;
    s->stop = NE_STOP_NONE;
    s->args.length = blob->size;
    char *dst;
    uint64_t offset;
    if (blob->size <= NE_INLINE) {
        s->args.kind = NE_SPAN_INLINE;
        dst = (char *)s->args_inline;
    }
    else if (ne_arena_alloc(&p->arena, blob->size, &offset) == 0) {
        s->args.kind = NE_SPAN_ARENA;
        s->args.offset = offset;
        rec->arena_offset = offset;
        rec->arena_length = blob->size;
        dst = p->region.base + offset;
    }
    else {
        /* named before the segment exists: should this process die while
         * writing it, the zygote finds the name and unlinks it */
        s->args.kind = NE_SPAN_NAMED;
        dst = ne_named_create(s->args.name, blob->size);
        if (dst == NULL) {
            s->args.name[0] = '\0';
            s->args.kind = NE_SPAN_NONE;
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
    if (s->args.kind == NE_SPAN_NAMED) {
        ne_named_release(dst, blob->size);
    }
    ne_blob_clear(blob);
    return 0;
}

/* After publishing a streaming slot: copy its buffers in, GIL released,
 * while the worker that claimed it copies them out.  Consumes blob. */
static void
stream(ne_ppool *p, uint32_t idx, ne_blob *blob)
{
    ne_record *rec = &p->records[idx];
    ne_slot *s = &p->region.slots[idx];
    char *dst = rec->stream_dst;
    int named = s->args.kind == NE_SPAN_NAMED;
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
        if (atomic_load(&p->region.slots[idx].state) == NE_SLOT_READY && !seen[idx]) {
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
static void
publish(ne_ppool *p, uint32_t idx)
{
    ne_shm *shm = p->region.shm;
    ne_slot *s = &p->region.slots[idx];
    ne_shm_lock(shm);
    s->worker = -1;
    atomic_store(&s->state, NE_SLOT_READY);
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

/* Place a pickled task in slot idx and publish it: the argument copy ends
 * with the GIL released when it streams.  Consumes blob.  A task there is
 * no room for fails its future; the slot goes back to the free list. */
static void
place_and_publish(ne_ppool *p, uint32_t idx, ne_blob *blob, PyObject *future,
                  ne_bridge *bridge, uint64_t ticket, int64_t submitted_ns)
{
    if (place(p, idx, blob, future, bridge, ticket) < 0) {
        p->free_slots[p->nfree++] = idx;
        p->counts.failed++;
        ne_complete_with_error(p->st, future, bridge);
        return;
    }
    p->records[idx].submitted_ns = submitted_ns;
    publish(p, idx);
    if (p->records[idx].streaming) {
        stream(p, idx, blob);
    }
}

/* A newly pickled task: into a free slot, or behind the tasks already
 * waiting in the parent.  Consumes blob.  -1 only on no memory for the
 * pending queue; a task without room in shared memory fails its future. */
int
ne_slots_admit(ne_ppool *p, ne_blob *blob, PyObject *future, ne_bridge *bridge,
               uint64_t ticket)
{
    int64_t now = ne_monotonic_ns();
    if (p->nfree > 0 && p->pending_head == NULL) {
        place_and_publish(p, p->free_slots[--p->nfree], blob, future, bridge, ticket, now);
        return 0;
    }
    return pending_push(p, blob, future, bridge, ticket, now);
}

/* Move pending tasks into free slots. */
void
ne_slots_refill(ne_ppool *p)
{
    while (p->pending_head != NULL && p->nfree > 0 && p->region.base != NULL) {
        ne_pending *t = ne_pending_pop(p);
        place_and_publish(p, p->free_slots[--p->nfree], &t->blob, t->future, t->bridge,
                          t->ticket, t->submitted_ns);
        ne_pending_free(t);  /* its blob was consumed */
    }
}

/* ---------------------------------------------------- withdraw, claimed */

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

/* Take back a task no worker has claimed: 1 if withdrawn, 0 if a worker
 * has it (it runs to completion), -1 if the pool no longer knows it; with
 * cancel_running, 2 if a worker has it and is being stopped (task_stop.c). */
int
ne_slots_withdraw(ne_ppool *p, uint64_t ticket)
{
    ne_pending **link;
    uint32_t idx;
    switch (find_ticket(p, ticket, &link, &idx)) {
    case TICKET_PENDING: {
        ne_pending *t = *link;
        pending_unlink(p, link);
        ne_pending_free(t);
        p->counts.cancelled++;
        return 1;
    }
    case TICKET_IN_SLOT: {
        ne_shm_lock(p->region.shm);
        uint32_t expected = NE_SLOT_READY;
        int withdrawn = atomic_compare_exchange_strong(&p->region.slots[idx].state,
                                                       &expected, NE_SLOT_FREE);
        ne_shm_unlock(p->region.shm);
        if (withdrawn) {
            ne_slots_release(p, idx);
            ne_slots_refill(p);
            p->counts.cancelled++;
            return 1;
        }
        if (p->cancel_running && ne_stop_cancelled(p, idx)) {
            p->counts.cancelled++;   /* by the caller, which the collector leaves it to */
            return 2;
        }
        return 0;
    }
    default:
        return -1;
    }
}

/* 1 if a worker has claimed the task (it can no longer be withdrawn), 0 if
 * it still waits for one, -1 if the pool no longer knows it. */
int
ne_slots_claimed(ne_ppool *p, uint64_t ticket)
{
    ne_pending **link;
    uint32_t idx;
    switch (find_ticket(p, ticket, &link, &idx)) {
    case TICKET_PENDING:
        return 0;
    case TICKET_IN_SLOT:
        /* a claim moves the slot out of READY under the lock; reading it
         * without the lock gives the state before or after a claim, either
         * of which is a true answer at some instant */
        return atomic_load(&p->region.slots[idx].state) != NE_SLOT_READY;
    default:
        return -1;
    }
}

/* ------------------------------------------------ cancelling on shutdown */

/* Lock held: how many workers are committed to claiming a READY task
 * next, each of which has been handed the oldest one left (see shm.h). */
static uint32_t
committed_workers(ne_ppool *p)
{
    ne_region *r = &p->region;
    unsigned char *running = p->running;
    memset(running, 0, (size_t)r->nworkers);
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_slot *s = &r->slots[idx];
        if (atomic_load(&s->state) == NE_SLOT_RUNNING && s->worker >= 0
            && s->worker < r->nworkers) {
            running[s->worker] = 1;
        }
    }
    uint32_t committed = 0;
    for (int w = 0; w < r->nworkers; w++) {
        ne_wslot *ws = &r->workers[w];
        uint32_t state = atomic_load(&ws->state);
        committed += state == NE_WORKER_SPAWN
                     || (state == NE_WORKER_ALIVE && !running[w] && !ws->sleeping && !ws->leaving);
    }
    ne_shm *shm = r->shm;
    committed += shm->nwoken < shm->nsleeping ? shm->nwoken : shm->nsleeping;
    return committed;
}

/* Cancel the tasks no worker has claimed; with spare_handed, not those a
 * worker has been handed (the oldest committed_workers() READY ones). */
void
ne_slots_cancel_unclaimed(ne_ppool *p, int spare_handed)
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
            if (atomic_load(&p->region.slots[idx].state) == NE_SLOT_READY && !spared[idx]) {
                spared[idx] = 1;
                spare--;
            }
        }
        uint32_t withdrawn[NE_SLOTS];
        int n = 0;
        for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
            uint32_t expected = NE_SLOT_READY;
            if (p->records[idx].future != NULL && !spared[idx]
                && atomic_compare_exchange_strong(&p->region.slots[idx].state, &expected,
                                                  NE_SLOT_FREE)) {
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
            ne_slots_release(p, withdrawn[i]);
        }
    }
    ne_pending *t;
    while ((t = ne_pending_pop(p)) != NULL) {
        PyObject *pair = PyTuple_Pack(2, t->future, t->bridge ? (PyObject *)t->bridge : Py_None);
        if (pair == NULL || PyList_Append(cancelled, pair) < 0) {
            PyErr_WriteUnraisable((PyObject *)p);
        }
        Py_XDECREF(pair);
        ne_pending_free(t);
    }
    /* cancel() of our future classes asks the pool first; the pool no
     * longer knows these tickets, so they cancel as plain futures */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cancelled); i++) {
        PyObject *fut = PyTuple_GET_ITEM(PyList_GET_ITEM(cancelled, i), 0);
        PyObject *bridge = PyTuple_GET_ITEM(PyList_GET_ITEM(cancelled, i), 1);
        p->counts.cancelled++;
        ne_complete(st, fut, bridge != Py_None ? (ne_bridge *)bridge : NULL, NE_CANCELLED,
                    NULL);
    }
    Py_DECREF(cancelled);
}
