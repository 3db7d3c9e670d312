"""The futures a process pool returns, against the stdlib's and native_exec's:
``result``/``exception`` timeouts, done callbacks (once, off the waiting
thread, free to submit), ``running()`` and ``cancel()`` of a task a worker
runs, and ``wait``/``as_completed``."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    Boom, raise_boom, GATES, WAIT, blocked, make_ppool, markers, open_gate, square, wait_started, wait_until,
    proc_impl)

pytestmark = pytest.mark.timeout(120)


def test_result_timeout_is_honoured(make_ppool, markers):
    pool = make_ppool(1)
    fut = pool.submit(blocked, markers)
    wait_started(markers, 1)
    # Not before the timeout; how long after it is speed, which a loaded
    # machine cannot bound.  What makes it a timeout and not a late result:
    # the wait gives up while the task still runs, and the call goes on.
    for timeout in (0.2, 1.0):
        start = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.result(timeout=timeout)
        elapsed = time.monotonic() - start
        assert elapsed >= timeout, f"result({timeout}) gave up after {elapsed:.3f}s"
        start = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.exception(timeout=timeout)
        elapsed = time.monotonic() - start
        assert elapsed >= timeout, f"exception({timeout}) gave up after {elapsed:.3f}s"
        assert fut.running() and not fut.done()
    open_gate(markers)
    assert fut.result(timeout=WAIT)[0] is None


def test_done_callbacks_run_once_and_may_submit(make_ppool):
    pool = make_ppool(2)
    calls = []
    chained = []
    finished = threading.Event()

    def then(fut):
        calls.append(fut)
        nxt = pool.submit(square, fut.result())
        nxt.add_done_callback(lambda g: (chained.append(g.result()), finished.set()))

    fut = pool.submit(square, 3)
    fut.add_done_callback(then)
    assert finished.wait(WAIT) and chained == [81]
    assert calls == [fut]
    late = []
    fut.add_done_callback(late.append)      # on a done future: at once
    assert late == [fut]


def test_callbacks_run_off_the_thread_waiting_in_result(make_ppool, markers, tmp_path):
    # A thread blocked in result() only waits: other futures' callbacks run
    # elsewhere, so one that waits for this thread cannot hold up its
    # timeout (nor be cut short by a signal meant for it).
    quick_gate = str(tmp_path / "quick")
    os.mkdir(quick_gate)
    GATES.add(quick_gate)
    pool = make_ppool(2)
    long = pool.submit(blocked, markers, "long")
    wait_started(markers, 1)
    released = threading.Event()
    ran_on = []

    def waits_for_main(fut):
        ran_on.append(threading.get_ident())
        released.wait(WAIT)

    quick = pool.submit(blocked, quick_gate, 3)
    # (not done before its callback is added: that one would run at once, here)
    quick.add_done_callback(waits_for_main)
    open_gate(quick_gate)
    try:
        with pytest.raises(concurrent.futures.TimeoutError):
            long.result(timeout=1.0)
        wait_until(lambda: ran_on, "the quick task's callback to run")
        assert ran_on[0] != threading.get_ident()
        assert quick.result(timeout=WAIT)[0] == 3
    finally:
        released.set()
        open_gate(markers)
    assert long.result(timeout=WAIT)[0] == "long"


def test_wait_all_completed(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(square, i) for i in range(30)]
    done, not_done = concurrent.futures.wait(futs, timeout=WAIT)
    assert not not_done and done == set(futs)


def test_wait_first_completed_and_first_exception(make_ppool, markers):
    pool = make_ppool(2)
    slow = pool.submit(blocked, markers, "slow")
    wait_started(markers, 1)
    quick = pool.submit(square, 3)
    done, not_done = concurrent.futures.wait(
        [slow, quick], timeout=WAIT, return_when=concurrent.futures.FIRST_COMPLETED)
    assert done == {quick} and not_done == {slow}
    bad = pool.submit(raise_boom, "first", 1)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=WAIT, return_when=concurrent.futures.FIRST_EXCEPTION)
    assert done == {bad} and not_done == {slow}
    open_gate(markers)
    assert slow.result(timeout=WAIT)[0] == "slow"


def test_as_completed_yields_in_completion_order(make_ppool, markers):
    pool = make_ppool(2)
    slow = pool.submit(blocked, markers, "slow")
    wait_started(markers, 1)
    quick = [pool.submit(square, i) for i in range(5)]
    it = concurrent.futures.as_completed([slow] + quick, timeout=WAIT)
    first = [next(it) for _ in range(5)]
    assert set(first) == set(quick)
    open_gate(markers)
    assert next(it) is slow
    with pytest.raises(StopIteration):
        next(it)


def test_a_task_a_worker_runs_reports_running_and_cannot_be_cancelled(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    for f in running:
        assert f.running() and not f.done()
        assert f.cancel() is False
        assert f.running() and not f.cancelled()
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert not any(f.running() for f in running)


def test_wait_and_as_completed_see_cancelled_futures(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    # (the stdlib hands up to max_workers + 1 calls to its workers' queue,
    # where they can no longer be cancelled: the victim queues behind them)
    fillers = [pool.submit(square, i) for i in range(5)]
    victim = pool.submit(square, 100)
    assert victim.cancel() is True
    open_gate(markers)
    done, not_done = concurrent.futures.wait(running + fillers + [victim], timeout=WAIT)
    assert not not_done, f"wait() still waits for {not_done}"
    assert list(concurrent.futures.as_completed([victim], timeout=WAIT)) == [victim]
    done, not_done = concurrent.futures.wait(
        [victim], timeout=WAIT, return_when=concurrent.futures.FIRST_COMPLETED)
    assert done == {victim}
