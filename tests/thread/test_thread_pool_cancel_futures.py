"""shutdown(cancel_futures=True) cancels only the calls still queued: a call
a worker has been handed, or has been woken or started for, still runs.

Right after a burst of submits to a fresh pool the stdlib has started
min(workers, calls) threads, each of which took the call that started it;
so that many calls run and the rest are cancelled (CPython's
test_shutdown.test_cancel_futures counts on it).  The same holds for
native_exec, whose workers may not even have started yet.  The oldest calls
are the ones that run.

The switch interval is made long for these tests: a thread the stdlib starts
then keeps the GIL from its start until it blocks in the call it took, so the
stdlib's count does not depend on how the OS schedules threads on a loaded
machine (it does not change what native_exec must do)."""

from __future__ import annotations

import sys
import threading

import pytest

from conftest import WAIT, wait_until
from test_thread_pool_shutdown import OpenWhenShuttingDown


@pytest.fixture
def long_switch_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    yield
    sys.setswitchinterval(saved)


def outcome(futs):
    """'run' or 'cancelled' for each future, once each has one."""
    for f in futs:
        if not f.cancelled():
            f.result(timeout=WAIT)
    return ["cancelled" if f.cancelled() else "run" for f in futs]


@pytest.mark.parametrize("workers, calls", [(5, 50), (5, 3), (1, 10), (3, 3)])
def test_after_a_burst_one_call_per_started_worker_runs(
        make_pool, gate, long_switch_interval, workers, calls):
    pool = make_pool(workers)
    futs = [pool.submit(gate.block, i) for i in range(calls)]
    pool.shutdown(wait=False, cancel_futures=True)
    gate.open()
    ran = min(workers, calls)
    assert outcome(futs) == ["run"] * ran + ["cancelled"] * (calls - ran)
    assert gate.started == ran


def test_with_wait_after_a_burst(make_pool, gate, long_switch_interval):
    pool = make_pool(5)
    opener = OpenWhenShuttingDown(gate)   # shutdown waits for the five
    opener.start()
    futs = [pool.submit(gate.block, i) for i in range(50)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert opener.saw_shutdown
    assert all(f.done() for f in futs)
    assert outcome(futs) == ["run"] * 5 + ["cancelled"] * 45
    opener.join(WAIT)


def test_busy_workers_take_nothing_more(make_pool, make_gate, long_switch_interval):
    # Two workers are busy; a burst of 10 starts the three others, one call
    # each; the busy two were woken for nothing, so the other seven are
    # cancelled.
    busy, burst = make_gate(), make_gate()
    pool = make_pool(5)
    running = [pool.submit(busy.block, i) for i in range(2)]
    busy.wait_started(2)
    futs = [pool.submit(burst.block, i) for i in range(10)]
    pool.shutdown(wait=False, cancel_futures=True)
    busy.open()
    burst.open()
    assert outcome(running) == ["run", "run"]
    assert outcome(futs) == ["run"] * 3 + ["cancelled"] * 7


def test_from_the_only_worker_cancels_what_it_submitted(make_pool):
    # The one worker is busy shutting the pool down: no worker was woken or
    # started for the calls it queued just before.
    pool = make_pool(1)

    def submit_then_cancel():
        queued = [pool.submit(int) for _ in range(3)]
        pool.shutdown(wait=False, cancel_futures=True)
        return [f.cancelled() for f in queued]

    assert pool.submit(submit_then_cancel).result(timeout=WAIT) == [True] * 3


def test_native_idle_workers_woken_by_a_burst_each_run_one(native_pool, gate,
                                                          long_switch_interval):
    # Idle workers are signalled by the submits; each has been woken for a
    # call, which runs though the worker may not have taken it yet (it
    # needs the GIL, which the submitting thread keeps).  With the stdlib,
    # whether a woken worker gets its call before the queue is emptied is
    # up to the scheduler.
    pool = native_pool(5)
    barrier = threading.Barrier(5, timeout=WAIT)
    for f in [pool.submit(barrier.wait) for _ in range(5)]:
        f.result(timeout=WAIT)
    wait_until(lambda: pool._stats()["idle"] == 5, "the five workers to sleep")
    futs = [pool.submit(gate.block, i) for i in range(50)]
    pool.shutdown(wait=False, cancel_futures=True)
    gate.open()
    assert outcome(futs) == ["run"] * 5 + ["cancelled"] * 45
    assert gate.started == 5
