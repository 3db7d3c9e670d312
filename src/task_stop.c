/* Stopping a running process-pool task: task_timeout, and cancel() with
 * cancel_running.
 *
 * Python code running in another process cannot be interrupted, so the
 * parent stops the process.  Under the shared lock, while the task's slot
 * is still RUNNING on worker w, it marks the slot (why it stops) and w
 * (doomed), then wakes the zygote, which sends w SIGTERM and, after a grace
 * period, SIGKILL (zygote.c).  Workers claim and post under the same lock,
 * so w cannot have moved on to another task when it is marked; should it
 * finish this one anyway, it posts the outcome and leaves rather than claim
 * again (process_worker.c, post()).
 *
 * The collector then settles the slot as its mark says, whether its
 * outcome arrives or its worker is buried: a timeout fails the future with
 * TaskTimeout; a cancel leaves it to the canceller, which has cancelled it
 * already (ProcessFuture.cancel).  Nothing else in the pool is touched; the
 * dead worker is replaced on demand, as after any death.
 *
 * GIL and the shared lock (see "Locking" in native_exec.h). */
#include "native_exec.h"

/* Lock held: the task in s, RUNNING, stops (why: NE_STOP_*). */
static void
stop_locked(ne_ppool *p, ne_slot *s, uint32_t why)
{
    s->stop = why;
    atomic_store(&p->region.workers[s->worker].doomed, 1);
}

static int
running_locked(ne_ppool *p, ne_slot *s)
{
    return atomic_load(&s->state) == NE_SLOT_RUNNING && s->worker >= 0
           && s->worker < p->region.nworkers;
}

/* cancel() of a task in slot idx that a worker has claimed, with
 * cancel_running: 1 if it is being stopped (the caller cancels the
 * future), 0 if it has finished meanwhile (its outcome is on its way).
 * A cancel overrides a timeout being enforced: the future is cancelled. */
int
ne_stop_cancelled(ne_ppool *p, uint32_t idx)
{
    ne_shm *shm = p->region.shm;
    ne_slot *s = &p->region.slots[idx];
    ne_shm_lock(shm);
    int running = running_locked(p, s);
    if (running) {
        stop_locked(p, s, NE_STOP_CANCEL);
    }
    ne_shm_unlock(shm);
    if (running) {
        ne_futex_ring(&shm->zygote_seq, 1);
    }
    return running;
}

/* The collector, with a task_timeout: stop every task that has run that
 * long.  Returns when the next one may come due (ne_monotonic_ns()); until
 * then there is nothing to look at, since a task claimed later is due
 * later still. */
int64_t
ne_stop_overdue(ne_ppool *p)
{
    int64_t now = ne_monotonic_ns();
    if (now < p->next_due_ns) {
        return p->next_due_ns;
    }
    ne_shm *shm = p->region.shm;
    int64_t next = now + p->task_timeout_ns;
    int stopped = 0;
    ne_shm_lock(shm);
    for (uint32_t idx = 0; idx < NE_SLOTS; idx++) {
        ne_slot *s = &p->region.slots[idx];
        if (!running_locked(p, s) || s->stop != NE_STOP_NONE) {
            continue;
        }
        int64_t due = s->claimed_ns + p->task_timeout_ns;
        if (due <= now) {
            stop_locked(p, s, NE_STOP_TIMEOUT);
            stopped = 1;
        }
        else if (due < next) {
            next = due;
        }
    }
    ne_shm_unlock(shm);
    if (stopped) {
        ne_futex_ring(&shm->zygote_seq, 1);
    }
    p->next_due_ns = next;
    return next;
}
