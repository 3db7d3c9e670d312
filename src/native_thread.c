/* The one place native threads (pool workers, collectors) are started,
 * named, joined and waited for, and the one GIL-releasing wait on a
 * condition.  Modelled on _threadmodule.c's ThreadHandle: a handle goes
 *
 *   NOT_STARTED --start--> RUNNING --its function returns--> DONE
 *               --one caller's pthread_join (or a detach)--> JOINED
 *
 * and is shared, reference-counted, by whoever may join it and by the
 * thread itself, so that a handle outlives both.  Any number of threads
 * may join one handle at once: the first to find it DONE joins, the others
 * wait for JOINED; all of them wait with the GIL released.
 *
 * A thread asked to join itself (a worker dropping its pool's last
 * reference) cannot; it is not detached either but becomes an orphan,
 * joined by the next thread start or at exit (ne_thread_join_orphans).
 * Every thread is thus joined, which is also what lets ThreadSanitizer see
 * its end ordered before glibc frees its TLS from another thread. */
#include "native_exec.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

struct ne_thread {
    pthread_mutex_t mutex;
    pthread_cond_t changed;      /* state moved on, or a join finished */
    ne_thread_state state;       /* mutex */
    int joining;                 /* mutex: a caller is in pthread_join */
    int orphaned;                /* mutex: its own thread asked to join it */
    atomic_int refs;
    pthread_t id;                /* set by pthread_create; read once DONE */
    void (*fn)(void *);
    void *arg;
    char name[16];               /* the OS name, or "" to keep the default */
    ne_thread *next_orphan;      /* orphans_lock */
};

static _Thread_local ne_thread *current_thread;

/* Handles (strong) whose thread asked to join itself. */
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static ne_thread *orphans;

ne_thread *
ne_thread_new(void)
{
    ne_thread *t = PyMem_RawCalloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&t->mutex, NULL) != 0) {
        PyMem_RawFree(t);
        return NULL;
    }
    if (pthread_cond_init(&t->changed, NULL) != 0) {
        pthread_mutex_destroy(&t->mutex);
        PyMem_RawFree(t);
        return NULL;
    }
    t->state = NE_THREAD_NOT_STARTED;
    atomic_init(&t->refs, 1);
    return t;
}

void
ne_thread_incref(ne_thread *t)
{
    atomic_fetch_add(&t->refs, 1);
}

/* No GIL needed.  A thread started and never joined is detached as its
 * last handle goes, so that the OS reclaims it when it ends. */
void
ne_thread_decref(ne_thread *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1) {
        return;
    }
    if (t->state == NE_THREAD_RUNNING || t->state == NE_THREAD_DONE) {
        pthread_detach(t->id);
    }
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->mutex);
    PyMem_RawFree(t);
}

/* Its function returned; unless the thread detached itself meanwhile
 * (JOINED), a join may now take it. */
static void
mark_done(ne_thread *t)
{
    pthread_mutex_lock(&t->mutex);
    if (t->state == NE_THREAD_RUNNING) {
        t->state = NE_THREAD_DONE;
        pthread_cond_broadcast(&t->changed);
    }
    pthread_mutex_unlock(&t->mutex);
}

static void *
thread_main(void *arg)
{
    ne_thread *t = arg;   /* start gave the thread its own reference */
    current_thread = t;
    if (t->name[0] != '\0') {
        pthread_setname_np(pthread_self(), t->name);
    }
    t->fn(t->arg);
    /* current_thread is not reset: a thread that detached itself has let
     * the GIL go, the last thing that ordered its TLS writes before
     * whichever thread frees that TLS once it ends. */
    mark_done(t);
    ne_thread_decref(t);
    return NULL;
}

/* Start fn(arg) on the handle's thread, named os_name (NULL: unnamed; at
 * most 15 bytes are kept).  The thread blocks asynchronous signals, so
 * that Ctrl-C and friends reach the main thread and interrupt what it
 * waits on, as they do when every thread runs Python.  It is joinable: a
 * shutdown that waits joins it, so that when it returns the thread is gone
 * entirely, not just done with Python (a fork right after would otherwise
 * copy whatever an exiting thread still holds, e.g. AddressSanitizer's
 * allocator lock).  Returns 0 or an errno value; the handle is then still
 * NOT_STARTED. */
int
ne_thread_start(ne_thread *t, void (*fn)(void *), void *arg, const char *os_name)
{
    ne_thread_join_orphans(NE_JOIN_IF_DONE);
    t->fn = fn;
    t->arg = arg;
    if (os_name != NULL) {
        strncpy(t->name, os_name, sizeof(t->name) - 1);
    }
    sigset_t all, saved;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    t->state = NE_THREAD_RUNNING;   /* before the thread can reach DONE */
    ne_thread_incref(t);
    pthread_sigmask(SIG_BLOCK, &all, &saved);  /* the new thread inherits it */
    int rc = pthread_create(&t->id, NULL, thread_main, t);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (rc != 0) {
        t->state = NE_THREAD_NOT_STARTED;
        atomic_fetch_sub(&t->refs, 1);
    }
    return rc;
}

/* What a caller has left to wait for: an orphan's thread is someone
 * else's to join, so it reads as JOINED. */
ne_thread_state
ne_thread_get_state(ne_thread *t)
{
    pthread_mutex_lock(&t->mutex);
    ne_thread_state state = t->orphaned ? NE_THREAD_JOINED : t->state;
    pthread_mutex_unlock(&t->mutex);
    return state;
}

static int
is_current(ne_thread *t)
{
    return t != NULL && current_thread == t;
}

/* In a forked child: the handle's thread is the parent's, and a thread
 * that vanished in the fork may have held its mutex. */
void
ne_thread_after_fork_child(ne_thread *t)
{
    pthread_mutex_init(&t->mutex, NULL);
    pthread_cond_init(&t->changed, NULL);
    t->state = NE_THREAD_JOINED;
    t->joining = 0;
}

/* pthread_atfork child handler (thread_pool_fork.c): the orphans are the
 * parent's threads, and a thread that vanished may have held the lock. */
void
ne_thread_fork_child(void)
{
    pthread_mutex_init(&orphans_lock, NULL);
    orphans = NULL;   /* leaked: their threads are not in this process */
}

struct join_claim {
    ne_thread *t;
    int wait;       /* wait for DONE, or take the handle only if it is DONE */
    int claimed;    /* out: this caller is to pthread_join */
};

/* mutex: whether the join can stop waiting, claiming it if it is ours. */
static int
join_ready(void *arg)
{
    struct join_claim *c = arg;
    ne_thread *t = c->t;
    if (t->state == NE_THREAD_NOT_STARTED || t->state == NE_THREAD_JOINED) {
        return 1;
    }
    if (t->state == NE_THREAD_DONE && !t->joining) {
        t->joining = 1;
        c->claimed = 1;
        return 1;
    }
    /* RUNNING, or DONE and being joined by someone else */
    return !c->wait;
}

/* A thread that cannot join itself: someone else will (the handle reads
 * as JOINED from now on, to the pool that asked). */
static void
adopt(ne_thread *t)
{
    pthread_mutex_lock(&t->mutex);
    int already = t->orphaned;
    t->orphaned = 1;
    pthread_mutex_unlock(&t->mutex);
    if (already) {
        return;
    }
    ne_thread_incref(t);
    pthread_mutex_lock(&orphans_lock);
    t->next_orphan = orphans;
    orphans = t;
    pthread_mutex_unlock(&orphans_lock);
}

/* With the GIL: join the orphans' threads (how: NE_JOIN_IF_DONE, those
 * that have ended; NE_JOIN_WAIT, all, at exit); those still running stay
 * orphans. */
void
ne_thread_join_orphans(ne_join_how how)
{
    pthread_mutex_lock(&orphans_lock);
    ne_thread *list = orphans;
    orphans = NULL;
    pthread_mutex_unlock(&orphans_lock);
    while (list != NULL) {
        ne_thread *t = list;
        list = t->next_orphan;
        if (ne_thread_join(t, how) == 1) {
            ne_thread_decref(t);
            continue;
        }
        pthread_mutex_lock(&orphans_lock);
        t->next_orphan = orphans;
        orphans = t;
        pthread_mutex_unlock(&orphans_lock);
    }
}

/* With the GIL: join the handle's thread.  how: NE_JOIN_WAIT (the thread
 * is ending; the wait is short), NE_JOIN_INTERRUPTIBLE (it may run long:
 * the signal handlers run every 50 ms, as in Thread.join), or
 * NE_JOIN_IF_DONE (never wait for a thread still running).  A thread
 * cannot join itself, so then it is detached.  Returns 1 once the thread
 * is joined (or was never started), 0 if NE_JOIN_IF_DONE found it
 * running, -1 with a signal handler's exception set. */
int
ne_thread_join(ne_thread *t, ne_join_how how)
{
    if (is_current(t)) {
        adopt(t);
        return 1;
    }
    for (;;) {
        struct join_claim c = {.t = t, .wait = how != NE_JOIN_IF_DONE};
        if (ne_wait_until(&t->mutex, &t->changed, join_ready, &c,
                          how == NE_JOIN_INTERRUPTIBLE) < 0) {
            return -1;
        }
        if (c.claimed) {
            Py_BEGIN_ALLOW_THREADS
            pthread_join(t->id, NULL);
            Py_END_ALLOW_THREADS
            pthread_mutex_lock(&t->mutex);
            t->joining = 0;
            t->state = NE_THREAD_JOINED;
            pthread_cond_broadcast(&t->changed);
            pthread_mutex_unlock(&t->mutex);
            return 1;
        }
        pthread_mutex_lock(&t->mutex);
        ne_thread_state state = t->state;
        pthread_mutex_unlock(&t->mutex);
        if (state == NE_THREAD_JOINED || state == NE_THREAD_NOT_STARTED) {
            return 1;
        }
        if (how == NE_JOIN_IF_DONE) {
            return 0;
        }
        /* DONE and being joined by another caller: wait for JOINED */
    }
}

/* With the GIL and without `mutex`: wait on `cond` until done(arg), called
 * with `mutex` held, returns true; done() runs exactly once per wake-up,
 * so it may claim what it found.  The GIL is released for the whole wait
 * and retaken only once `mutex` is let go, as the locking rule in
 * native_exec.h requires: a thread waiting for the GIL never holds a pool
 * lock, so a thread holding the GIL may always take one.
 *
 * interruptible: for a wait that can be long (workers finishing their
 * calls), wake every 50 ms and run the signal handlers, so that Ctrl-C
 * interrupts it as it does Thread.join; returns -1 with the handler's
 * exception set if one raised.  Otherwise wait on the condition alone.
 * Returns 0 once done(arg) held. */
int
ne_wait_until(pthread_mutex_t *mutex, pthread_cond_t *cond,
              int (*done)(void *arg), void *arg, int interruptible)
{
    for (;;) {
        int finished;
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(mutex);
        if (interruptible) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += 50 * 1000 * 1000;
            if (deadline.tv_nsec >= 1000 * 1000 * 1000) {
                deadline.tv_sec += 1;
                deadline.tv_nsec -= 1000 * 1000 * 1000;
            }
            while (!(finished = done(arg))
                   && pthread_cond_timedwait(cond, mutex, &deadline) != ETIMEDOUT) {
            }
        }
        else {
            while (!(finished = done(arg))) {
                pthread_cond_wait(cond, mutex);
            }
        }
        pthread_mutex_unlock(mutex);
        Py_END_ALLOW_THREADS
        if (finished) {
            return 0;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}
