"""shutdown(cancel_futures=True) right after a burst of submits, on both
pools: a call a worker has been handed, or woken for, or is being started
for, still runs; only the calls queued behind those are cancelled.  With
native_exec exactly the oldest min(max_workers, calls) run; with the stdlib
the oldest calls its manager thread has handed to its workers (up to
max_workers + 1 in its call queue, besides those the workers took)."""

from __future__ import annotations

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, at_barrier, blocked, make_ppool, markers, new_barrier, open_gate, proc_impl,
    started_count, wait_until)

pytestmark = pytest.mark.timeout(120)


def settle(pool, futs, markers):
    """Once every call is cancelled or running (the stdlib's pool cancels
    from its manager thread), let the running ones finish."""
    wait_until(lambda: all(f.cancelled() or f.running() or f.done() for f in futs),
               "every call to be cancelled or running")
    open_gate(markers)
    pool.shutdown(wait=True)


def check(proc_impl, futs, workers, markers):
    ran = [f for f in futs if not f.cancelled()]
    # the calls that run are the oldest, and each completes
    assert ran == futs[:len(ran)]
    assert [f.result(timeout=WAIT)[0] for f in ran] == list(range(len(ran)))
    assert all(f.done() for f in futs)
    assert started_count(markers) == len(ran)
    if proc_impl.name == "native":
        assert len(ran) == min(workers, len(futs))
    else:
        # as many as its manager thread had handed to its workers: at most
        # max_workers + 1 in the call queue and those the workers took
        # from it, none if it had not got round to it yet
        assert len(ran) <= min(2 * workers + 1, len(futs))


@pytest.mark.parametrize("workers, calls", [(5, 50), (3, 12), (4, 2)])
def test_a_fresh_pool_runs_what_its_workers_were_started_for(make_ppool, proc_impl, markers,
                                                            workers, calls):
    pool = make_ppool(workers)
    futs = [pool.submit(blocked, markers, i) for i in range(calls)]
    pool.shutdown(wait=False, cancel_futures=True)
    settle(pool, futs, markers)
    check(proc_impl, futs, workers, markers)


@pytest.mark.parametrize("workers, calls", [(3, 12), (3, 2)])
def test_idle_workers_run_what_they_were_woken_for(make_ppool, proc_impl, markers,
                                                   workers, calls):
    new_barrier(workers)
    pool = make_ppool(workers)
    # every worker alive and idle (asleep or about to be) before the burst
    warm = [pool.submit(at_barrier) for _ in range(workers)]
    assert len({f.result(timeout=WAIT) for f in warm}) == workers
    futs = [pool.submit(blocked, markers, i) for i in range(calls)]
    pool.shutdown(wait=False, cancel_futures=True)
    settle(pool, futs, markers)
    check(proc_impl, futs, workers, markers)


def test_busy_workers_leave_every_queued_call_cancelled(make_ppool, proc_impl, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_until(lambda: started_count(markers) == 2, "two calls to start")
    queued = [pool.submit(blocked, markers, i) for i in range(10)]
    pool.shutdown(wait=False, cancel_futures=True)
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    cancelled = [f.cancelled() for f in queued]
    if proc_impl.name == "native":
        assert all(cancelled)
    else:
        # (the stdlib's call queue holds max_workers + 1 calls ahead)
        assert all(cancelled[3:])
