/* The zygote: a process forked from the pool's owner when the pool is
 * created, while the owner is (normally) single-threaded.  It forks every
 * worker, so no worker inherits a lock that some thread of the owner held,
 * and it reaps them, reporting each death to the owner through the region.
 *
 * It runs no Python after the fork except the interpreter's own fork hooks
 * around each worker fork.  It leaves when the owner asks (zygote_exit) and
 * its workers are gone; the owner may ask it to signal them first
 * (terminate_workers, kill_workers, a broken pool).  It kills them and
 * leaves at once when the owner dies.  Only the zygote signals workers:
 * it alone knows which pids are still its children. */
#include "native_exec.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS (100L * 1000 * 1000)   /* how often the owner's liveness is checked */
/* terminate_workers(), task_timeout and cancel_running: how long a worker
 * may take over its SIGTERM (a handler of its own cleaning up) before it
 * gets SIGKILL.  Keep in step with the docstrings of
 * ProcessPoolExecutor.terminate_workers and ProcessPoolExecutor. */
#define TERMINATE_GRACE_NS (1000L * 1000 * 1000)

static ne_shm *zygote_shm;  /* for the SIGCHLD handler */

static void
on_sigchld(int signo)
{
    (void)signo;
    int saved = errno;
    ne_futex_ring(&zygote_shm->zygote_seq, 1);
    errno = saved;
}

/* Set on the thread in fork_ours() for as long as the fork hooks run.
 * Per thread: those hooks run Python and may let another thread fork
 * meanwhile (os.fork(), another pool's zygote), whose child must not take
 * that fork for ours; the child runs on the thread that forked. */
static _Thread_local int forking;

/* Whether the fork being handled is one of ours (a zygote, a worker),
 * whose child runs none of the parent's code: after-fork hooks only tidy
 * up there. */
int
ne_fork_is_ours(void)
{
    return forking;
}

/* fork() bracketed as os.fork() brackets it.  Returns 0 in the child, the
 * pid (or -1, errno set) in the parent. */
static pid_t
fork_ours(void)
{
    forking = 1;
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        forking = 0;
        return 0;
    }
    int saved = errno;
    PyOS_AfterFork_Parent();
    forking = 0;
    errno = saved;
    return pid;
}

static void
fork_worker(ne_ppool *p, int w)
{
    ne_wslot *ws = &p->region.workers[w];
    pid_t pid = fork_ours();
    if (pid == 0) {
        ne_process_worker_main(p, w);
    }
    if (pid < 0) {
        /* reported as a worker that died at once, with the errno negated */
        ws->pid = 0;
        ws->status = -errno;
        atomic_store(&ws->state, NE_WORKER_DEAD);
        ne_futex_ring(&p->region.shm->collector_seq, 1);
        return;
    }
    ws->pid = pid;
    ws->kill_at = 0;
    atomic_store(&ws->state, NE_WORKER_ALIVE);
}

/* Collect exited workers; returns how many are still alive. */
static int
reap(ne_ppool *p)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int w = 0; w < p->region.nworkers; w++) {
            ne_wslot *ws = &p->region.workers[w];
            if (ws->pid == pid && atomic_load(&ws->state) == NE_WORKER_ALIVE) {
                ws->status = status;
                atomic_store(&ws->state, NE_WORKER_DEAD);
                ne_futex_ring(&p->region.shm->collector_seq, 1);
                break;
            }
        }
    }
    int alive = 0;
    for (int w = 0; w < p->region.nworkers; w++) {
        alive += atomic_load(&p->region.workers[w].state) == NE_WORKER_ALIVE;
    }
    return alive;
}

/* Send sig to every live worker.  The zygote reaps its children only in
 * its own loop, so a pid read here is still its child, alive or a zombie,
 * never a stranger that reused the number. */
static void
signal_workers(ne_ppool *p, int sig)
{
    for (int w = 0; w < p->region.nworkers; w++) {
        ne_wslot *ws = &p->region.workers[w];
        if (atomic_load(&ws->state) == NE_WORKER_ALIVE && ws->pid > 0) {
            kill(ws->pid, sig);
        }
    }
}

/* The workers whose task the owner stopped (task_timeout, cancel_running):
 * SIGTERM first, SIGKILL once the grace period is over.  Running as it
 * does in the zygote's loop, a SIGKILL is at most POLL_NS late. */
static void
signal_doomed(ne_ppool *p)
{
    int64_t now = ne_monotonic_ns();
    for (int w = 0; w < p->region.nworkers; w++) {
        ne_wslot *ws = &p->region.workers[w];
        if (atomic_load(&ws->state) != NE_WORKER_ALIVE || ws->pid <= 0
            || !atomic_load(&ws->doomed)) {
            continue;
        }
        if (ws->kill_at == 0) {
            ws->kill_at = now + TERMINATE_GRACE_NS;
            kill(ws->pid, SIGTERM);
        }
        else if (now >= ws->kill_at) {
            kill(ws->pid, SIGKILL);
        }
    }
}

/* The owner died and every worker is reaped: unlink the payload segments
 * still named in a slot.  The owner or a worker would have unlinked each
 * once read or dropped; with both gone, no one else will.  A slot names a
 * segment before it exists, so one cut short mid-creation is found too. */
static void
unlink_orphaned_payloads(ne_ppool *p)
{
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_span *spans[2] = {&p->region.slots[idx].args, &p->region.slots[idx].result};
        for (int i = 0; i < 2; i++) {
            if (spans[i]->kind == NE_SPAN_NAMED) {
                char name[NE_NAME_MAX];
                memcpy(name, spans[i]->name, NE_NAME_MAX);
                name[NE_NAME_MAX - 1] = '\0';
                ne_named_unlink(name);
            }
        }
    }
}

static _Noreturn void
zygote_main(ne_ppool *p)
{
    ne_shm *shm = p->region.shm;
    zygote_shm = shm;
    prctl(PR_SET_NAME, "ne-zygote", 0, 0, 0);
    /* An inherited signal wake-up fd is the owner's event loop's: a signal
     * caught here or in a worker must not run the owner's handlers. */
    PyObject *signal_module = PyImport_ImportModule("signal");
    PyObject *r = signal_module == NULL ? NULL
                  : PyObject_CallMethod(signal_module, "set_wakeup_fd", "i", -1);
    Py_XDECREF(r);
    Py_XDECREF(signal_module);
    PyErr_Clear();

    /* Ctrl-C goes to the whole foreground process group; it is the owner's
     * to handle, and the zygote must not die of it.  Workers unblock it. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    /* SET, not BLOCK: a pool made on one of our native threads would
     * otherwise pass their all-blocked mask on to every worker */
    sigprocmask(SIG_SETMASK, &block, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    int64_t kill_at = -1;   /* once terminating: when SIGKILL follows */
    for (;;) {
        uint32_t seq = atomic_load(&shm->zygote_seq);
        uint32_t request = atomic_load(&shm->zygote_exit);
        int orphaned = getppid() != p->owner_pid;
        if (orphaned) {
            request = NE_ZYGOTE_KILL;  /* the owner died: no orphans */
        }
        if (request == NE_ZYGOTE_TERMINATE) {
            if (kill_at < 0) {
                kill_at = ne_monotonic_ns() + TERMINATE_GRACE_NS;
                signal_workers(p, SIGTERM);
            }
            else if (ne_monotonic_ns() >= kill_at) {
                request = NE_ZYGOTE_KILL;
            }
        }
        if (request == NE_ZYGOTE_KILL) {
            signal_workers(p, SIGKILL);
        }
        else {
            signal_doomed(p);
        }
        int alive = reap(p);
        if (request != NE_ZYGOTE_RUN && alive == 0) {
            if (orphaned) {
                unlink_orphaned_payloads(p);
            }
            _exit(0);
        }
        if (request == NE_ZYGOTE_RUN) {
            for (int w = 0; w < p->region.nworkers; w++) {
                if (atomic_load(&p->region.workers[w].state) == NE_WORKER_SPAWN) {
                    fork_worker(p, w);
                }
            }
        }
        ne_futex_wait(&shm->zygote_seq, seq, POLL_NS);
    }
}

/* In the owner, with the GIL: fork the zygote.  -1 with an exception. */
int
ne_zygote_start(ne_ppool *p)
{
    /* output still buffered would be written again by every worker */
    PyObject *r = PyObject_CallMethod(p->st->process_worker, "flush_std_streams", NULL);
    Py_XDECREF(r);
    PyErr_Clear();
    pid_t pid = fork_ours();
    if (pid == 0) {
        zygote_main(p);
    }
    if (pid < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    p->zygote_pid = pid;
    p->region.shm->zygote_pid = pid;
    /* Later forks of the owner (another pool's zygote, os.fork) need not
     * carry this region; the zygote's own mapping keeps it for workers. */
    madvise(p->region.base, p->region.size, MADV_DONTFORK);
    return 0;
}

/* In the owner: workers leave once the queue is empty, then the zygote
 * leaves (NE_ZYGOTE_DRAIN); or the workers are signalled at once
 * (NE_ZYGOTE_TERMINATE, NE_ZYGOTE_KILL).  A milder request than one already made
 * changes nothing. */
void
ne_zygote_stop(ne_ppool *p, uint32_t request)
{
    ne_shm *shm = p->region.shm;
    ne_shm_lock(shm);
    shm->stopping = 1;
    ne_shm_unlock(shm);
    ne_futex_ring(&shm->work_seq, INT32_MAX);
    uint32_t made = atomic_load(&shm->zygote_exit);
    while (made < request
           && !atomic_compare_exchange_weak(&shm->zygote_exit, &made, request)) {
    }
    ne_futex_ring(&shm->zygote_seq, 1);
}
