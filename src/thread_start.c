/* Starting, joining and waiting for the native threads (pool workers,
 * collectors). */
#include "native_exec.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

/* Start fn(arg) on a pthread that blocks asynchronous signals, so that
 * Ctrl-C and friends reach the main thread and interrupt what it waits on,
 * as they do when every thread runs Python.  The thread is joinable: a
 * shutdown that waits joins it, so that when it returns the thread is gone
 * entirely, not just done with Python (a fork right after would otherwise
 * copy whatever an exiting thread still holds, e.g. AddressSanitizer's
 * allocator lock).  *thread receives its id.  Returns 0 or an errno value. */
int
ne_thread_start(void *(*fn)(void *), void *arg, pthread_t *thread)
{
    sigset_t all, saved;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_sigmask(SIG_BLOCK, &all, &saved);  /* the new thread inherits it */
    int rc = pthread_create(thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

/* With the GIL: join a thread of ours, releasing the GIL meanwhile; a thread
 * cannot join itself, so then it is detached. */
void
ne_thread_join(pthread_t thread)
{
    if (pthread_equal(thread, pthread_self())) {
        pthread_detach(thread);
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
}

/* With the GIL and without `mutex`: wait on `cond` until done(arg), called
 * with `mutex` held, returns true.  The GIL is released for the whole wait
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
            while (!done(arg)
                   && pthread_cond_timedwait(cond, mutex, &deadline) != ETIMEDOUT) {
            }
        }
        else {
            while (!done(arg)) {
                pthread_cond_wait(cond, mutex);
            }
        }
        finished = done(arg);
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
