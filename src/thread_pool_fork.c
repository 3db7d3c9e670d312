/* Thread pools across fork(): the registry of live pools, the
 * pthread_atfork handlers, and what a child does with the work its
 * parent's workers held.
 *
 * glibc runs the prepare handler inside fork(), after every Python-level
 * before-fork hook, so no Python code (and no GIL hand-off) happens while
 * it holds the pool mutexes: a worker never waits for the GIL holding one,
 * so taking them cannot deadlock.  The child thus never inherits a queue
 * half-modified by a worker.  The child handler rebuilds each pool with no
 * workers at once; what the parent's workers and queue held is left for
 * the Python-level hook (ne_tpool_after_fork_child), which needs the GIL
 * to complete futures. */
#include "native_exec.h"

#include <errno.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ne_tpool *registry;  /* registry_lock: every live thread pool */

/* Any thread: p joins the registry, as a new pool. */
void
ne_tpool_register(ne_tpool *p)
{
    pthread_mutex_lock(&registry_lock);
    p->next = registry;
    registry = p;
    pthread_mutex_unlock(&registry_lock);
}

/* Any thread: p leaves the registry, as it is freed. */
void
ne_tpool_unregister(ne_tpool *p)
{
    pthread_mutex_lock(&registry_lock);
    for (ne_tpool **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

static void
fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (ne_tpool *p = registry; p != NULL; p = p->next) {
        pthread_mutex_lock(&p->mutex);
    }
}

static void
fork_parent(void)
{
    for (ne_tpool *p = registry; p != NULL; p = p->next) {
        pthread_mutex_unlock(&p->mutex);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void
fork_child(void)
{
    ne_thread_fork_child();
    /* A task running on a worker may fork: that worker is the thread that
     * goes on in the child, with its task, and stays in its pool. */
    ne_worker *self = ne_worker_current();
    for (ne_tpool *p = registry; p != NULL; p = p->next) {
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->exited, NULL);
        ne_worker **wtail = &p->forked_workers;
        while (*wtail != NULL) {
            wtail = &(*wtail)->next;
        }
        ne_worker *survivor = NULL;
        for (ne_worker *w = p->workers, *next; w != NULL; w = next) {
            next = w->next;
            if (w == self) {
                survivor = w;
                continue;
            }
            w->next = NULL;
            *wtail = w;
            wtail = &w->next;
        }
        p->workers = survivor;
        if (survivor != NULL) {
            survivor->next = NULL;
        }
        ne_task **ttail = &p->forked_tasks;
        while (*ttail != NULL) {
            ttail = &(*ttail)->next;
        }
        *ttail = ne_tpool_take_all(p);
        p->ngone = 0;  /* the parent's threads: not here (their handles are leaked) */
        p->nthreads = survivor != NULL;
        p->nidle = p->nwoken = p->nreturning = p->npromised = 0;
        if (survivor != NULL) {
            survivor->returning = survivor->promised = 0;
        }
        pthread_mutex_unlock(&p->mutex);
    }
    pthread_mutex_unlock(&registry_lock);
}

int
ne_tpool_install_fork_handlers(void)
{
    static int installed;
    if (installed) {
        return 0;
    }
    int rc = pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    installed = 1;
    return 0;
}

/* GIL: a list holding a strong reference to every live thread pool. */
PyObject *
ne_tpool_snapshot(void)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry_lock);
    for (ne_tpool *p = registry; p != NULL; p = p->next) {
        if (PyList_Append(list, (PyObject *)p) < 0) {
            Py_CLEAR(list);
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return list;
}

/* A task inherited by a forked child: failed with error, or cancelled if
 * error is NULL; or just dropped when quiet.  Consumes t. */
static void
abandon_in_child(ne_state *st, ne_task *t, PyObject *error, int quiet)
{
    if (!quiet) {
        ne_complete_inherited(st, t->future, t->bridge, error);
    }
    ne_task_free(t);
}

/* In the child only the forking thread exists.  Work the parent submitted
 * stays the parent's: tasks that were running fail with BrokenThreadPool,
 * queued ones are cancelled.  quiet: the child is one of our own forks
 * (zygote, process worker), which never runs the parent's callbacks, so
 * the tasks are just dropped. */
void
ne_tpool_after_fork_child(ne_tpool *p, int quiet)
{
    ne_worker *dead = p->forked_workers;
    ne_task *queued = p->forked_tasks;
    p->forked_workers = NULL;
    p->forked_tasks = NULL;
    if (dead == NULL && queued == NULL) {
        return;
    }
    ne_state *st = p->st;
    PyObject *lost = quiet ? NULL : PyObject_CallFunction(
        st->BrokenThreadPool, "s",
        "the worker thread running this task does not exist in the child process after fork()");
    if (lost == NULL) {
        PyErr_Clear();
    }
    Py_INCREF(p);  /* the dead workers' references are released below */
    while (dead != NULL) {
        ne_worker *next = dead->next;
        if (dead->current != NULL) {
            abandon_in_child(st, dead->current, lost, quiet);
        }
        ne_worker_forget(dead);
        dead = next;
    }
    while (queued != NULL) {
        ne_task *next = queued->next;
        abandon_in_child(st, queued, NULL, quiet);
        queued = next;
    }
    Py_XDECREF(lost);
    Py_DECREF(p);
}
