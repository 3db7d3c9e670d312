"""ThreadPoolExecutor.shutdown: wait=True returns only once every submitted
call ran; wait=False returns at once and queued calls still run;
cancel_futures=True cancels what is queued; nothing can be submitted
afterwards; the context manager shuts down with wait=True.

To show that shutdown(wait=True) waits, calls block on a gate that a helper
thread opens only once it sees the main thread inside shutdown()."""

from __future__ import annotations

import sys
import threading

import pytest

from conftest import WAIT, wait_until


def inside_shutdown(thread_id):
    """Whether the given thread is executing (in) a function named shutdown
    or __exit__ of an executor."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name in ("shutdown", "__exit__"):
            return True
        frame = frame.f_back
    return False


class OpenWhenShuttingDown(threading.Thread):
    """Opens the gate once the main thread is blocked inside shutdown()."""

    def __init__(self, gate):
        super().__init__(daemon=True)
        self.gate = gate
        self.main = threading.get_ident()
        self.saw_shutdown = False

    def run(self):
        try:
            wait_until(lambda: inside_shutdown(self.main), "shutdown to be called")
            self.saw_shutdown = True
        finally:
            self.gate.open()


def test_shutdown_wait_waits_for_running_and_queued_calls(make_pool, gate):
    pool = make_pool(2)
    futs = [pool.submit(gate.block, i) for i in range(6)]
    gate.wait_started(2)
    opener = OpenWhenShuttingDown(gate)
    opener.start()
    pool.shutdown(wait=True)
    assert opener.saw_shutdown
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == list(range(6))
    opener.join(WAIT)


def test_shutdown_without_wait_returns_and_queued_calls_still_run(make_pool, gate):
    pool = make_pool(1)
    futs = [pool.submit(gate.block, i) for i in range(4)]
    gate.wait_started(1)
    pool.shutdown(wait=False)  # returns though every call is blocked or queued
    assert not any(f.done() for f in futs)
    gate.open()
    assert [f.result(timeout=WAIT) for f in futs] == [0, 1, 2, 3]


def test_cancel_futures_cancels_the_queued_ones(make_pool, gate):
    pool = make_pool(1)
    running = pool.submit(gate.block, "running")
    gate.wait_started(1)
    ran = []
    queued = [pool.submit(ran.append, i) for i in range(5)]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert not running.cancelled()
    gate.open()
    assert running.result(timeout=WAIT) == "running"
    wait_until(lambda: gate.finished == 1)
    assert ran == []


def test_cancel_futures_with_wait(make_pool, gate):
    pool = make_pool(1)
    running = pool.submit(gate.block, "running")
    gate.wait_started(1)
    ran = []
    queued = [pool.submit(ran.append, i) for i in range(5)]
    opener = OpenWhenShuttingDown(gate)
    opener.start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.done() and running.result() == "running"
    assert all(f.cancelled() for f in queued)
    assert ran == []
    opener.join(WAIT)


def test_submit_after_shutdown_raises_runtime_error(make_pool):
    pool = make_pool(2)
    assert pool.submit(abs, -1).result(timeout=WAIT) == 1
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(abs, -1)
    with pytest.raises(RuntimeError):
        pool.map(abs, [1, 2])


def test_submit_after_shutdown_of_an_unused_pool(make_pool):
    pool = make_pool(2)
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        pool.submit(abs, -1)


def test_shutdown_twice(make_pool):
    pool = make_pool(2)
    pool.submit(abs, 1).result(timeout=WAIT)
    pool.shutdown()
    pool.shutdown()
    pool.shutdown(wait=False, cancel_futures=True)


def test_context_manager_waits_and_shuts_down(make_pool, gate):
    with make_pool(2) as pool:
        futs = [pool.submit(gate.block, i) for i in range(4)]
        gate.wait_started(2)
        opener = OpenWhenShuttingDown(gate)
        opener.start()
    assert opener.saw_shutdown
    assert [f.result(timeout=0) for f in futs] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        pool.submit(abs, -1)
    opener.join(WAIT)


def test_context_manager_returns_the_pool(make_pool):
    pool = make_pool(1)
    with pool as entered:
        assert entered is pool


def test_context_manager_on_an_exception(make_pool):
    with pytest.raises(ZeroDivisionError):
        with make_pool(1) as pool:
            fut = pool.submit(pow, 2, 5)
            1 / 0
    assert fut.result(timeout=0) == 32


def test_workers_are_gone_after_shutdown_wait(make_pool, impl):
    prefix = f"shutdown-{impl.name}"
    pool = make_pool(3, thread_name_prefix=prefix)
    barrier = threading.Barrier(3, timeout=WAIT)
    [f.result(timeout=WAIT) for f in [pool.submit(barrier.wait) for _ in range(3)]]
    names = {t.name for t in threading.enumerate()}
    assert {f"{prefix}_{i}" for i in range(3)} <= names
    pool.shutdown(wait=True)
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_dropping_the_executor_finishes_its_work(impl, gate):
    # An executor collected without shutdown lets its workers finish what
    # was submitted, then they exit.
    import gc

    prefix = f"dropped-{impl.name}"
    pool = impl.ThreadPoolExecutor(1, thread_name_prefix=prefix)
    futs = [pool.submit(gate.block, i) for i in range(3)]
    gate.wait_started(1)
    del pool
    gc.collect()
    gate.open()
    assert [f.result(timeout=WAIT) for f in futs] == [0, 1, 2]
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith(prefix)],
               "the workers of the dropped executor to exit")


def test_submits_racing_a_shutdown_either_run_or_are_refused(make_pool):
    # Threads keep submitting while the pool shuts down: each submit either
    # raises RuntimeError or returns a future that completes.
    pool = make_pool(2)
    accepted, refused = [], []
    go = threading.Event()

    def submitter():
        go.wait(WAIT)
        for i in range(10_000_000):  # until refused
            try:
                accepted.append(pool.submit(abs, -i))
            except RuntimeError:
                refused.append(i)
                return

    threads = [threading.Thread(target=submitter) for _ in range(4)]
    for t in threads:
        t.start()
    go.set()
    wait_until(lambda: len(accepted) >= 100, "some submits to be accepted")
    pool.shutdown(wait=True)
    for t in threads:
        t.join(WAIT)
    assert len(refused) == len(threads)
    assert all(f.done() for f in accepted)
    assert all(f.result() == abs(f.result()) for f in accepted)
