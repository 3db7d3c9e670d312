/* Starting the native threads (pool workers, collectors). */
#include "native_exec.h"

#include <signal.h>

/* Start fn(arg) on a detached pthread that blocks asynchronous signals, so
 * that Ctrl-C and friends reach the main thread and interrupt what it
 * waits on, as they do when every thread runs Python.  Returns 0 or an
 * errno value. */
int
ne_thread_start(void *(*fn)(void *), void *arg)
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
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    pthread_sigmask(SIG_BLOCK, &all, &saved);  /* the new thread inherits it */
    int rc = pthread_create(&thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}
