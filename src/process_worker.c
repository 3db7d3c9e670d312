/* The loop a worker process runs: claim a READY slot, unpickle the call,
 * run it, pickle what it returned or raised into shared memory, post the
 * slot back.  Forked by the zygote; holds the GIL except while it waits.
 *
 * Whatever a task raises comes back as its exception, SystemExit and
 * KeyboardInterrupt included, and the worker goes on, as in the stdlib;
 * only a process that really ends (os._exit, a signal, a crash) fails its
 * task with WorkerDied. */
#include "native_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* The one way out of a worker process (stopping, max_tasks_per_child, an
 * initializer that failed, an outcome that cannot be sent): run what a
 * stdlib fork worker runs as it leaves on this Python (multiprocessing's
 * finalizers, threading's shutdown, from 3.13 the worker's atexit
 * handlers; _process_worker.leave_process), then _exit() with the status it
 * returns.  Called with the GIL, without the region's lock. */
static _Noreturn void
leave(ne_state *st, int code)
{
    PyObject *r = PyObject_CallMethod(st->process_worker, "leave_process", "i", code);
    if (r == NULL) {
        PyErr_WriteUnraisable(st->process_worker);
    }
    else {
        long status = PyLong_AsLong(r);
        if (status == -1 && PyErr_Occurred()) {
            PyErr_WriteUnraisable(st->process_worker);
        }
        else {
            code = (int)status;
        }
        Py_DECREF(r);
    }
    _exit(code);
}

/* lock held: take the oldest READY slot, skipping stale ring entries. */
static int
claim(ne_region *r, int w)
{
    ne_shm *shm = r->shm;
    while (shm->ready_head != shm->ready_tail) {
        uint32_t idx = shm->ready[shm->ready_head % NE_RING];
        ne_slot *s = &r->slots[idx];
        if (s->state == NE_SLOT_READY) {
            /* owner first: if this process dies before the head moves, the
             * entry is stale (not READY) and the parent fails the task */
            s->worker = w;
            s->claimed_ns = ne_monotonic_ns();
            s->state = NE_SLOT_RUNNING;
            atomic_signal_fence(memory_order_seq_cst);
            shm->ready_head++;
            return (int)idx;
        }
        shm->ready_head++;
    }
    return -1;
}

/* Lock held.  Whether worker w counts as idle to the parent while awake:
 * from posting a result until it claims a task or goes to sleep, it is
 * sure to look at the ready ring again, so a task published meanwhile
 * needs no other worker started for it. */
static void
set_returning(ne_region *r, int w, int on)
{
    ne_wslot *ws = &r->workers[w];
    if (ws->returning != (uint32_t)on) {
        ws->returning = (uint32_t)on;
        if (on) {
            r->shm->nreturning++;
        }
        else {
            r->shm->nreturning--;
        }
    }
}

/* Lock held on entry and exit.  Before going to sleep, watch the ready
 * ring for a moment (lock released, GIL released, yielding the CPU): in a
 * burst of short tasks the next one is usually a few microseconds away,
 * and catching it here spares the parent a futex wake per task. */
static void
linger(ne_region *r, int w)
{
    ne_shm *shm = r->shm;
    int found = 0;
    set_returning(r, w, 1);
    ne_shm_unlock(shm);
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < NE_LINGER_SPINS && !found; i++) {
        found = atomic_load_explicit(&shm->ready_tail, memory_order_acquire)
                != atomic_load_explicit(&shm->ready_head, memory_order_acquire);
        if (!found) {
            sched_yield();
        }
    }
    Py_END_ALLOW_THREADS
    ne_shm_lock(shm);
}

/* Wait for work with the GIL released; Ctrl-C while idle is not an error. */
static void
wait_for_work(ne_region *r, int w)
{
    ne_shm *shm = r->shm;
    ne_wslot *ws = &r->workers[w];
    set_returning(r, w, 0);
    ws->sleeping = 1;
    shm->nsleeping++;
    uint32_t seq = atomic_load(&shm->work_seq);
    ne_shm_unlock(shm);
    Py_BEGIN_ALLOW_THREADS
    ne_futex_wait(&shm->work_seq, seq, -1);
    Py_END_ALLOW_THREADS
    if (PyErr_CheckSignals() < 0) {
        PyErr_Clear();
    }
    ne_shm_lock(shm);
    if (ws->sleeping) {
        ws->sleeping = 0;
        shm->nsleeping--;
    }
    if (shm->nwoken > 0) {
        shm->nwoken--;
    }
}

/* The bytes of a span; *mapped is set when a named segment was mapped. */
static const char *
span_bytes(ne_region *r, ne_slot *s, ne_span *span, const unsigned char *inline_buf,
           void **mapped)
{
    *mapped = NULL;
    switch (span->kind) {
    case NE_SPAN_INLINE:
        return (const char *)inline_buf;
    case NE_SPAN_ARENA:
    case NE_SPAN_WINDOW:
        return r->base + span->offset;
    case NE_SPAN_NAMED:
        *mapped = ne_named_open(span->name, span->length);
        if (*mapped == NULL) {
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, span->name);
        }
        return *mapped;
    }
    (void)s;
    PyErr_SetString(PyExc_ValueError, "native_exec: slot without a payload");
    return NULL;
}

/* Reserve n bytes in this worker's result window; 0 if they cannot fit. */
static int
window_reserve(ne_region *r, int w, uint64_t n, ne_span *span)
{
    ne_wslot *ws = &r->workers[w];
    uint64_t size = ws->window_size;
    if (n > size) {
        return 0;
    }
    uint64_t head = atomic_load(&ws->ring_head);
    int empty = head == atomic_load(&ws->ring_tail);
    if (empty) {
        /* start over at the front, where the pages are warm; the skipped
         * bytes count as used until the parent releases this result */
        head = (head + size - 1) / size * size;
    }
    uint64_t pos = head % size;
    if (pos + n > size) {
        head += size - pos;
        pos = 0;
    }
    /* the parent frees space as it reads results; wait for it (an empty
     * ring has all of it free already) */
    while (!empty && head + n - atomic_load(&ws->ring_tail) > size) {
        struct timespec pause = {0, 200 * 1000};
        Py_BEGIN_ALLOW_THREADS
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
        if (getppid() != r->shm->zygote_pid) {
            _exit(1);
        }
    }
    atomic_store(&ws->ring_head, head + n);
    span->kind = NE_SPAN_WINDOW;
    span->offset = ws->window_offset + pos;
    span->length = n;
    span->ring_end = head + n;
    return 1;
}

/* Pickle what the task produced into the slot's result span.  Falls back
 * from the value to its pickling error, then to a plain RuntimeError, so
 * that the parent always gets something. */
static void
write_result(ne_state *st, ne_region *r, int w, ne_slot *s, PyObject *value, int is_error)
{
    ne_blob blob = {0};
    PyObject *payload = Py_NewRef(value);
    for (int attempt = 0;; attempt++) {
        if (ne_blob_dump(st, payload, 2, &blob) == 0) {
            break;
        }
        PyObject *exc = PyErr_GetRaisedException();
        Py_SETREF(payload, PyObject_CallMethod(st->process_worker, "unpicklable",
                                               "OOi", exc, value, is_error));
        Py_XDECREF(exc);
        is_error = 1;
        if (payload == NULL || attempt == 2) {
            PyErr_Clear();
            Py_XSETREF(payload, PyObject_CallMethod(st->process_worker, "last_resort", NULL));
            if (payload == NULL || ne_blob_dump(st, payload, 0, &blob) < 0) {
                PyErr_WriteUnraisable(st->process_worker);
                leave(st, 70);  /* the parent reports the task lost */
            }
            break;
        }
    }
    Py_DECREF(payload);

    s->is_error = (uint32_t)is_error;
    memset(&s->result, 0, sizeof(s->result));
    char *dst;
    if (blob.size <= NE_INLINE) {
        s->result.kind = NE_SPAN_INLINE;
        s->result.length = blob.size;
        dst = (char *)s->result_inline;
    }
    else if (window_reserve(r, w, blob.size, &s->result)) {
        dst = r->base + s->result.offset;
    }
    else {
        s->result.kind = NE_SPAN_NAMED;
        s->result.length = blob.size;
        /* the name is in the slot before the segment exists, so the parent
         * can unlink it should this process die while writing */
        dst = ne_named_create(s->result.name, blob.size);
        if (dst == NULL) {
            s->result.name[0] = '\0';
            PyErr_SetFromErrno(PyExc_OSError);
            PyObject *exc = PyErr_GetRaisedException();
            ne_blob_clear(&blob);
            PyObject *err = PyObject_CallMethod(st->process_worker, "unpicklable",
                                                "OOi", exc, value, is_error);
            Py_XDECREF(exc);
            if (err == NULL || ne_blob_dump(st, err, 0, &blob) < 0 || blob.size > NE_INLINE) {
                PyErr_WriteUnraisable(st->process_worker);
                leave(st, 70);
            }
            Py_DECREF(err);
            s->is_error = 1;
            s->result.kind = NE_SPAN_INLINE;
            s->result.length = blob.size;
            dst = (char *)s->result_inline;
        }
    }
    ne_blob_write(&blob, dst, NULL, 1);
    if (s->result.kind == NE_SPAN_NAMED) {
        ne_named_release(dst, blob.size);
    }
    ne_blob_clear(&blob);
}

/* Hand the result of slot idx to the parent; more: this worker would go
 * on to look for another task.  Returns whether it does: not if the
 * parent stopped this task meanwhile (the zygote is about to signal this
 * process, which must not have claimed someone else's task by then). */
static int
post(ne_region *r, int w, uint32_t idx, int more)
{
    ne_shm *shm = r->shm;
    ne_shm_lock(shm);
    int stay = more && !atomic_load(&r->workers[w].doomed);
    set_returning(r, w, stay);
    r->workers[w].leaving = !stay;
    /* ring entry, then count, then state: a death at any point leaves the
     * slot RUNNING (failed by the parent) or fully posted */
    r->slots[idx].finished_ns = ne_monotonic_ns();
    shm->done[shm->done_tail % NE_RING] = idx;
    atomic_signal_fence(memory_order_seq_cst);
    shm->done_tail++;
    atomic_signal_fence(memory_order_seq_cst);
    r->slots[idx].state = NE_SLOT_DONE;
    int wake = shm->collector_sleeping;
    shm->collector_sleeping = 0;
    ne_shm_unlock(shm);
    if (wake) {
        ne_futex_ring(&shm->collector_seq, 1);
    }
    return stay;
}

/* This process's resident set in bytes (/proc/self/statm), or 0 if it
 * cannot be read. */
static uint64_t
resident_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unsigned long long size, resident;
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Whether this worker may take another task after the one it ran:
 * max_memory_per_child, checked before the outcome is posted so that the
 * parent never counts on it for another task. */
static int
fits(ne_ppool *p)
{
    return p->max_memory_per_child == 0 || resident_bytes() <= p->max_memory_per_child;
}

/* Run the task in slot idx and post its outcome; returns post()'s answer. */
static int
run_task(ne_ppool *p, int w, uint32_t idx, int more)
{
    ne_state *st = p->st;
    ne_region *r = &p->region;
    ne_slot *s = &r->slots[idx];
    void *mapped;
    PyObject *call = NULL, *value = NULL, *failed = NULL;
    const char *src = span_bytes(r, s, &s->args, s->args_inline, &mapped);
    if (src != NULL) {
        call = ne_blob_load(st, src, s->args.length, &s->args_ready);
        if (call == NULL) {
            /* only this task fails: UnpicklingFailed, the error its cause
             * (should that fail too, its error goes back as any other) */
            PyObject *exc = PyErr_GetRaisedException();
            failed = PyObject_CallMethod(st->process_worker, "call_unpickle_failed", "O", exc);
            Py_DECREF(exc);
        }
    }
    if (mapped != NULL) {
        ne_named_release(mapped, s->args.length);
        ne_named_unlink(s->args.name);
    }
    if (failed != NULL) {
        write_result(st, r, w, s, failed, 1);
        Py_DECREF(failed);
        return post(r, w, idx, more && fits(p));
    }
    if (call != NULL) {
        if (!PyTuple_CheckExact(call) || PyTuple_GET_SIZE(call) != 3) {
            PyErr_SetString(PyExc_TypeError, "native_exec: malformed task");
        }
        else {
            PyObject *kwargs = PyTuple_GET_ITEM(call, 2);
            value = PyObject_Call(PyTuple_GET_ITEM(call, 0), PyTuple_GET_ITEM(call, 1),
                                  kwargs == Py_None ? NULL : kwargs);
        }
        Py_DECREF(call);
    }
    if (value != NULL) {
        write_result(st, r, w, s, value, 0);
        Py_DECREF(value);
    }
    else {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *wrapped = PyObject_CallMethod(st->process_worker, "wrap_exception", "O", exc);
        if (wrapped == NULL) {
            PyErr_Clear();
            wrapped = Py_NewRef(exc);
        }
        write_result(st, r, w, s, wrapped, 1);
        Py_DECREF(wrapped);
        Py_DECREF(exc);
    }
    return post(r, w, idx, more && fits(p));
}

_Noreturn void
ne_process_worker_main(ne_ppool *p, int w)
{
    ne_state *st = p->st;
    ne_region *r = &p->region;
    ne_wslot *ws = &r->workers[w];

    /* die with the zygote, and so with the owner: no orphans */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != r->shm->zygote_pid) {
        _exit(1);
    }
    signal(SIGCHLD, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGINT);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    char name[16];
    snprintf(name, sizeof(name), "ne-worker-%d", w);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    /* Large arguments are rebuilt as fresh objects for every task; from
     * mmap they would cost a page fault per 4 KiB each time (most of the
     * time of a 64 MiB argument here).  This process keeps such memory in
     * its heap instead, warm for the next task. */
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);

    PyObject *ok = PyObject_CallMethod(st->process_worker, "enter_worker", "OO",
                                       p->initializer, p->initargs);
    if (ok == NULL || !PyObject_IsTrue(ok)) {
        PyErr_Clear();
        ws->init_failed = 1;
        leave(st, 1);
    }
    Py_DECREF(ok);
    ws->ready = 1;

    long done = 0;
    int lingered = 0;
    ne_shm_lock(r->shm);
    for (;;) {
        int idx = claim(r, w);
        if (idx < 0) {
            if (r->shm->stopping) {
                set_returning(r, w, 0);
                ws->leaving = 1;
                ne_shm_unlock(r->shm);
                leave(st, 0);
            }
            /* sleep only after a claim under the lock found nothing: a
             * task published after linger's last look is not missed */
            if (lingered) {
                wait_for_work(r, w);
                lingered = 0;
            }
            else {
                linger(r, w);
                lingered = 1;
            }
            continue;
        }
        lingered = 0;
        set_returning(r, w, 0);
        ne_shm_unlock(r->shm);
        int last = p->max_tasks_per_child > 0 && ++done >= p->max_tasks_per_child;
        if (!run_task(p, w, (uint32_t)idx, !last)) {
            leave(st, 0);
        }
        ne_shm_lock(r->shm);
    }
}
