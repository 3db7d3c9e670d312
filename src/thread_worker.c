/* The thread every pool worker runs.
 *
 *   spawn --> enter (GIL: name the thread, run the initializer)
 *               |  initializer failed: break the pool --------------+
 *               v                                                   |
 *           serve: wait for a task with the GIL released;           |
 *                  run tasks while the queue has them, GIL held     |
 *               |  shutdown or broken, queue empty                  |
 *               v                                                   v
 *           leave (GIL): unregister, drop the thread state, exit
 *
 * The thread state made by PyGILState_Ensure lives as long as the thread,
 * so threading.local data persists between tasks and C extensions that call
 * PyGILState_Ensure themselves find the same state. */
#include "native_exec.h"

#include <sched.h>
#include <string.h>

static _Thread_local ne_worker *current_worker;

int
ne_worker_is_current(ne_tpool *p)
{
    return current_worker != NULL && current_worker->pool == p;
}

ne_worker *
ne_worker_current(void)
{
    return current_worker;
}

/* mutex: a worker started or claimed for a call has looked at the queue,
 * whatever it found there. */
static void
keep_promise(ne_tpool *p, ne_worker *w)
{
    if (w->promised) {
        w->promised = 0;
        p->npromised--;
    }
}

/* mutex: the oldest queued task, now this worker's current one. */
static ne_task *
take(ne_tpool *p, ne_worker *w)
{
    keep_promise(p, w);
    ne_task *t = p->head;
    if (t != NULL) {
        p->head = t->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        ne_queued_set(p, ne_queued_get(p) - 1);
        t->next = NULL;
        t->taken_ns = ne_monotonic_ns();
    }
    w->current = t;
    return t;
}

/* mutex: whether w counts as returning, i.e. as about to look for work,
 * so that a submit meanwhile claims it rather than start a worker. */
static void
set_returning(ne_tpool *p, ne_worker *w, int on)
{
    if (w->returning != on) {
        w->returning = on;
        if (on) {
            p->nreturning++;
        }
        else {
            p->nreturning--;
        }
    }
}

/* Without the GIL or the mutex, right after finishing a task (still counted
 * as returning, so a submit meanwhile counts on it): watch the queue for a
 * moment, yielding the CPU, before going to sleep on the condition.  The
 * next call of a caller awaiting one at a time usually comes within that
 * moment, and is then taken without a futex wake-up on either side. */
static void
linger(ne_tpool *p)
{
    for (int i = 0; i < NE_LINGER_SPINS; i++) {
        if (ne_queued_get(p) != 0) {
            return;
        }
        sched_yield();
    }
}

/* Entered and left with the GIL. */
static void
serve(ne_worker *w)
{
    ne_tpool *p = w->pool;
    ne_state *st = p->st;
    PyThreadState *ts = PyEval_SaveThread();
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        ne_task *t = take(p, w);
        if (t == NULL) {
            /* extra workers started for nested calls retire once idle */
            if (p->shutdown || p->broken || p->nthreads > p->max_workers) {
                break;
            }
            p->nidle++;
            pthread_cond_wait(&p->work, &p->mutex);
            p->nidle--;
            if (p->nwoken > 0) {
                p->nwoken--;
            }
            continue;
        }
        pthread_mutex_unlock(&p->mutex);
        PyEval_RestoreThread(ts);
        while (t != NULL) {
            int go = ne_task_begin(st, t);
            if (go) {
                ne_task_run(t);
            }
            /* Counted as returning before the future is completed when
             * completing only hands it to a loop: that may let the GIL go,
             * and the next task submitted meanwhile is ours to find, not a
             * reason to start another worker.  A concurrent future runs its
             * done-callbacks here, which may submit and wait: not before. */
            int early = !go || t->bridge != NULL;
            pthread_mutex_lock(&p->mutex);
            w->current = NULL;  /* a fork from here on must not see it lost */
            set_returning(p, w, early);
            pthread_mutex_unlock(&p->mutex);
            if (go) {
                ne_task_complete(st, t);
            }
            else {
                /* cancelled while it waited */
                ne_counts_ended(&p->counts, NE_CANCELLED);
                ne_task_free(t);
            }
            pthread_mutex_lock(&p->mutex);
            t = take(p, w);
            set_returning(p, w, t == NULL);
            pthread_mutex_unlock(&p->mutex);
        }
        ts = PyEval_SaveThread();
        linger(p);
        pthread_mutex_lock(&p->mutex);
        set_returning(p, w, 0);
    }
    pthread_mutex_unlock(&p->mutex);
    PyEval_RestoreThread(ts);
}

static void
unlink_worker(ne_tpool *p, ne_worker *w)
{
    for (ne_worker **pp = &p->workers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

/* GIL: release what a worker holds; its thread is gone or about to be. */
void
ne_worker_forget(ne_worker *w)
{
    ne_thread_decref(w->thread);
    Py_DECREF(w->name);
    Py_DECREF((PyObject *)w->pool);
    PyMem_RawFree(w);
}

static void
worker_main(void *arg)
{
    ne_worker *w = arg;
    ne_tpool *p = w->pool;
    ne_state *st = p->st;
    current_worker = w;

    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *entered = PyObject_CallFunctionObjArgs(
        st->enter_worker, w->name, p->initializer, p->initargs, NULL);
    int ready = entered != NULL && PyObject_IsTrue(entered) == 1;
    if (entered == NULL) {
        PyErr_WriteUnraisable(st->enter_worker);
    }
    Py_XDECREF(entered);
    if (ready) {
        serve(w);
    }
    else {
        ne_tpool_break(p);
    }
    PyObject *left = PyObject_CallNoArgs(st->leave_worker);
    if (left == NULL) {
        PyErr_WriteUnraisable(st->leave_worker);
    }
    Py_XDECREF(left);

    pthread_mutex_lock(&p->mutex);
    keep_promise(p, w);  /* its initializer failed before it looked */
    unlink_worker(p, w);
    p->nthreads--;
    ne_tpool_note_gone(p, w->thread);
    w->thread = NULL;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->mutex);
    current_worker = NULL;
    ne_worker_forget(w);
    PyGILState_Release(gil);
}

/* The OS keeps 15 bytes of a thread name: keep the "_index" suffix whole
 * and cut the prefix, never inside a UTF-8 sequence. */
static void
make_os_name(char out[16], const char *prefix, unsigned long index)
{
    char suffix[24];
    int slen = snprintf(suffix, sizeof(suffix), "_%lu", index);
    size_t room = 15 - (size_t)slen;
    size_t plen = strlen(prefix);
    if (plen > room) {
        plen = room;
        while (plen > 0 && ((unsigned char)prefix[plen] & 0xC0) == 0x80) {
            plen--;
        }
    }
    memcpy(out, prefix, plen);
    memcpy(out + plen, suffix, (size_t)slen + 1);
}

/* mutex: the lowest index no live worker has, so names stay
 * prefix_0 .. prefix_{max_workers-1} as workers come and go. */
static unsigned long
free_index(ne_tpool *p)
{
    for (unsigned long index = 0;; index++) {
        ne_worker *w = p->workers;
        while (w != NULL && w->index != index) {
            w = w->next;
        }
        if (w == NULL) {
            return index;
        }
    }
}

/* GIL: start a worker; the caller has counted it in nthreads. */
int
ne_worker_spawn(ne_tpool *p)
{
    const char *prefix = PyUnicode_AsUTF8(p->prefix);
    if (prefix == NULL) {
        return -1;
    }
    ne_worker *w = PyMem_RawCalloc(1, sizeof(*w));
    if (w == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->pool = (ne_tpool *)Py_NewRef((PyObject *)p);
    pthread_mutex_lock(&p->mutex);
    w->index = free_index(p);
    w->promised = 1;  /* counted in npromised by the submit that started it */
    w->next = p->workers;
    p->workers = w;
    pthread_mutex_unlock(&p->mutex);
    make_os_name(w->os_name, prefix, w->index);
    w->name = PyUnicode_FromFormat("%U_%lu", p->prefix, w->index);
    w->thread = w->name == NULL ? NULL : ne_thread_new();
    if (w->name != NULL && w->thread == NULL) {
        PyErr_NoMemory();
    }
    int rc = w->thread == NULL ? -1 : ne_thread_start(w->thread, worker_main, w, w->os_name);
    if (rc != 0) {
        pthread_mutex_lock(&p->mutex);
        unlink_worker(p, w);
        pthread_mutex_unlock(&p->mutex);
        if (w->thread == NULL) {
            Py_XDECREF(w->name);
            Py_DECREF((PyObject *)p);
            PyMem_RawFree(w);
            return -1;
        }
        ne_worker_forget(w);
        PyErr_Format(PyExc_RuntimeError, "can't start new thread: %s", strerror(rc));
        return -1;
    }
    p->counts.workers_started++;
    return 0;
}
