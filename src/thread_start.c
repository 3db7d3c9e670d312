/* Starting the native threads (pool workers, collectors). */
#include "native_exec.h"

#include <signal.h>

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
