"""``cancel()`` on native_exec's process pool withdraws a task no worker has
claimed, wherever it waits (in shared memory or in the parent's queue),
as ``shutdown(cancel_futures=True)`` does for all of them; racing the
workers, it is consistent; after completion it returns False.  (The
stdlib's can only cancel what is still in its own queue.)"""

from __future__ import annotations

import concurrent.futures
import os
import time

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, markers, native_ppool, open_gate, square, touch, wait_started)

pytestmark = pytest.mark.timeout(180)


def test_cancel_withdraws_a_task_no_worker_claimed(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    victim_file = str(tmp_path / "victim")
    victim = pool.submit(touch, victim_file)
    assert pool._stats()["in_flight"] == 3
    assert victim.cancel() is True
    assert victim.cancelled() and victim.done()
    assert pool._stats()["in_flight"] == 2
    with pytest.raises(concurrent.futures.CancelledError):
        victim.result(timeout=0)
    # a running task cannot be cancelled
    assert running[0].cancel() is False
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert pool.submit(square, 4).result(timeout=WAIT) == 16
    assert running[1].cancel() is False and victim.cancel() is True
    pool.shutdown(wait=True)
    assert not os.path.exists(victim_file)


def test_a_task_no_worker_claimed_is_not_running(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    queued = pool.submit(touch, str(tmp_path / "queued"))
    victim = pool.submit(touch, str(tmp_path / "victim"))
    assert all(f.running() for f in running)
    assert not queued.running() and not victim.running()
    assert victim.cancel() is True and not victim.running()
    open_gate(markers)
    assert queued.result(timeout=WAIT) != os.getpid()
    assert not queued.running()
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert os.path.exists(tmp_path / "queued") and not os.path.exists(tmp_path / "victim")


def test_cancel_in_shared_memory_and_in_the_parents_queue(native_ppool, markers, tmp_path):
    # more tasks than shared-memory slots: the rest wait in the parent
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    files = [str(tmp_path / ("t%d" % i)) for i in range(1100)]
    futs = [pool.submit(touch, path) for path in files]
    stats = pool._stats()
    assert stats["pending"] > 0 and stats["in_flight"] + stats["pending"] == 1102
    victims = {5, 500, 1090, 1099}
    assert all(futs[i].cancel() for i in victims)
    assert pool._stats()["in_flight"] + pool._stats()["pending"] == 1102 - len(victims)
    open_gate(markers)
    for i, f in enumerate(futs):
        if i not in victims:
            assert f.result(timeout=WAIT) in _pids_of(pool, running)
    pool.shutdown(wait=True)
    created = {i for i, path in enumerate(files) if os.path.exists(path)}
    assert created == set(range(1100)) - victims


def _pids_of(pool, running):
    return {f.result(timeout=WAIT)[1] for f in running}


def test_shutdown_cancel_futures_cancels_every_unclaimed_task(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    files = [str(tmp_path / ("t%d" % i)) for i in range(1500)]
    queued = [pool.submit(touch, path) for path in files]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    pool.shutdown(wait=True)
    assert not any(os.path.exists(p) for p in files)


def test_cancel_racing_the_workers_is_consistent(native_ppool, tmp_path):
    # cancel() right after submit() races the workers' claims: True must
    # mean the task never ran, False that it ran (and has its result)
    pool = native_ppool(2)
    records = []
    for i in range(4000):
        path = str(tmp_path / ("t%d" % i))
        fut = pool.submit(touch, path)
        if i % 3 == 0:
            time.sleep(0)
        records.append((path, fut, fut.cancel()))
    pool.shutdown(wait=True)
    withdrawn = 0
    for path, fut, cancelled in records:
        if cancelled:
            withdrawn += 1
            assert fut.cancelled() and not os.path.exists(path)
        else:
            assert os.path.exists(path) and fut.result(timeout=0) != os.getpid()
    assert withdrawn > 0


def test_cancel_after_completion_returns_false(native_ppool):
    pool = native_ppool(1)
    fut = pool.submit(square, 3)
    assert fut.result(timeout=WAIT) == 9
    assert fut.cancel() is False and not fut.cancelled()
