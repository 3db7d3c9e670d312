/* Pool statistics: the counts both pools keep, their recent queue-wait and
 * run-time samples, and the snapshot stats() returns.
 *
 * Everything here is written and read with the GIL held: the thread pool
 * counts as a worker completes a future (which needs the GIL anyway), the
 * process pool as its collector does, so the hot paths take no other lock
 * for it.  A snapshot sorts at most NE_SAMPLES values per percentile pair:
 * cheap enough for a progress bar redrawn many times a second. */
#include "native_exec.h"

#include <stdlib.h>
#include <string.h>

void
ne_samples_add(ne_samples *s, int64_t ns)
{
    s->ns[s->n++ % NE_SAMPLES] = ns < 0 ? 0 : ns;
}

static int
by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The recent samples' p50 and p99, in seconds, into d; None without any. */
static int
put_percentiles(PyObject *d, const char *p50_key, const char *p99_key, const ne_samples *s)
{
    uint64_t n = s->n < NE_SAMPLES ? s->n : NE_SAMPLES;
    PyObject *p50 = Py_NewRef(Py_None), *p99 = Py_NewRef(Py_None);
    if (n > 0) {
        int64_t sorted[NE_SAMPLES];
        memcpy(sorted, s->ns, n * sizeof(int64_t));
        qsort(sorted, n, sizeof(int64_t), by_value);
        Py_SETREF(p50, PyFloat_FromDouble((double)sorted[(n - 1) * 50 / 100] / 1e9));
        Py_SETREF(p99, PyFloat_FromDouble((double)sorted[(n - 1) * 99 / 100] / 1e9));
    }
    int rc = p50 == NULL || p99 == NULL
             || PyDict_SetItemString(d, p50_key, p50) < 0
             || PyDict_SetItemString(d, p99_key, p99) < 0 ? -1 : 0;
    Py_XDECREF(p50);
    Py_XDECREF(p99);
    return rc;
}

/* The public snapshot (native_exec.PoolStats takes it as keywords): c's
 * counts, with what only the pool knows now (queued, running, workers). */
PyObject *
ne_counts_snapshot(const ne_counts *c, Py_ssize_t queued, Py_ssize_t running,
                   Py_ssize_t workers_alive)
{
    PyObject *d = Py_BuildValue(
        "{sKsnsnsKsKsKsnsKsKsKsK}",
        "submitted", (unsigned long long)c->submitted,
        "queued", queued,
        "running", running,
        "completed", (unsigned long long)c->completed,
        "failed", (unsigned long long)c->failed,
        "cancelled", (unsigned long long)c->cancelled,
        "workers_alive", workers_alive,
        "workers_started", (unsigned long long)c->workers_started,
        "worker_deaths", (unsigned long long)c->worker_deaths,
        "timeouts", (unsigned long long)c->timeouts,
        "recycled", (unsigned long long)c->recycled);
    if (d != NULL
        && (put_percentiles(d, "queue_wait_p50", "queue_wait_p99", &c->wait) < 0
            || put_percentiles(d, "run_time_p50", "run_time_p99", &c->run) < 0)) {
        Py_CLEAR(d);
    }
    return d;
}

/* A future ended: count it by how (a result, an exception, cancelled). */
void
ne_counts_ended(ne_counts *c, ne_ending how)
{
    if (how == NE_RESULT) {
        c->completed++;
    }
    else if (how == NE_EXCEPTION) {
        c->failed++;
    }
    else {
        c->cancelled++;
    }
}
