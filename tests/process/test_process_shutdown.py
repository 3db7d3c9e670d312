"""``shutdown`` of a process pool, against the stdlib's and native_exec's:
``wait=True`` finishes every task and reaps the workers,
``cancel_futures``, submit after shutdown, an unused pool, the context
manager."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, make_ppool, markers, open_gate, square, wait_started, gone, proc_impl)

pytestmark = pytest.mark.timeout(120)


def sleep_then(value, seconds):
    time.sleep(seconds)
    return value, os.getpid()


def test_shutdown_wait_finishes_every_task_and_reaps_workers(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(sleep_then, i, 0.02) for i in range(12)]
    pool.shutdown(wait=True)
    assert all(f.done() for f in futs)
    results = [f.result(timeout=0) for f in futs]
    assert [v for v, _ in results] == list(range(12))
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids
    for pid in pids:
        assert gone(pid), f"worker {pid} still running after shutdown(wait=True)"
    assert not any(c.pid in pids for c in psutil.Process().children(recursive=True))


def test_shutdown_cancel_futures(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    queued = [pool.submit(square, i) for i in range(20)]
    pool.shutdown(wait=False, cancel_futures=True)
    open_gate(markers)
    # (a second shutdown(wait=True) does not wait in the stdlib, and its
    # wait() does not count futures cancelled by shutdown as done)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    for f in queued:
        if not f.cancelled():
            f.result(timeout=WAIT)
    assert all(f.done() for f in queued)
    cancelled = [f.cancelled() for f in queued]
    # the stdlib hands up to max_workers + 1 calls to its call queue
    # before any worker takes them; those can no longer be cancelled
    assert sum(cancelled) >= len(queued) - 3
    assert all(cancelled[3:])
    for i, f in enumerate(queued):
        if not f.cancelled():
            assert f.result(timeout=0) == i * i


def test_submit_after_shutdown_raises(make_ppool):
    pool = make_ppool(1)
    pool.submit(square, 2).result(timeout=WAIT)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(square, 3)
    pool.shutdown()  # twice is fine


def test_shutdown_of_an_unused_pool(make_ppool):
    pool = make_ppool(3)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(square, 3)


def test_context_manager(make_ppool):
    with make_ppool(2) as pool:
        futs = [pool.submit(sleep_then, i, 0.01) for i in range(6)]
    assert all(f.done() for f in futs)
    assert [f.result(timeout=0)[0] for f in futs] == list(range(6))
    with pytest.raises(RuntimeError):
        pool.submit(square, 1)
