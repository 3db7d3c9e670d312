"""``terminate_workers()`` and ``kill_workers()`` (Python 3.14's API): the
pool is shut down, pending calls are cancelled, every worker is signalled,
and the calls running in them fail with ``BrokenProcessPool``.

Written once and run against the stdlib where it has them (3.14+) and
against native_exec on every version; what only native_exec promises
(which signal a ``WorkerDied`` names, the SIGKILL that follows an ignored
SIGTERM, no zygote left) is tested without ``proc_impl``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import native_exec
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, children_of_me, gone, make_ppool, markers, native_ppool,
    pool_pids, proc_impl, shm_entries, square, started_count, wait_started,
    wait_until, zombie_children)

pytestmark = pytest.mark.timeout(120)

OPERATIONS = ["terminate_workers", "kill_workers"]
SIGNALS = {"terminate_workers": signal.SIGTERM, "kill_workers": signal.SIGKILL}


def started_pids(marker_dir: str) -> set:
    """The pids of the workers that ran blocked() (its marker files)."""
    return {int(name.split("-")[1]) for name in os.listdir(marker_dir)
            if name.startswith("started-")}


def force(pool, operation: str) -> None:
    getattr(pool, operation)()


@pytest.fixture(params=OPERATIONS)
def operation(request, proc_impl) -> str:
    if proc_impl.name == "stdlib" and not hasattr(concurrent.futures.ProcessPoolExecutor,
                                                  request.param):
        pytest.skip(f"the stdlib has no ProcessPoolExecutor.{request.param} before 3.14 "
                    "(the native variant runs)")
    return request.param


# ------------------------------------------------ what the workers run

def ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def note_sigterm(path: str) -> None:
    """An initializer: on SIGTERM, write path, then exit with 7."""
    def handler(signum, frame):
        with open(path, "a") as f:
            f.write("%d\n" % os.getpid())
        os._exit(7)
    signal.signal(signal.SIGTERM, handler)


# ----------------------------------------------------- both pools

def test_running_calls_fail_and_queued_ones_are_cancelled(make_ppool, proc_impl, operation,
                                                          markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    queued = [pool.submit(square, i) for i in range(20)]
    force(pool, operation)
    # (not concurrent.futures.wait: the stdlib cancels without notifying
    # waiters, so wait() would not see its cancelled futures as done)
    wait_until(lambda: all(f.done() for f in running + queued), "every future to complete")
    for fut in running:
        assert isinstance(fut.exception(), BrokenProcessPool), fut.exception()
    for fut in queued:
        # The stdlib hands up to max_workers + 1 calls to its workers' queue
        # ahead of time: those fail with the pool rather than being cancelled.
        assert fut.cancelled() or isinstance(fut.exception(), BrokenProcessPool)
    if proc_impl.name == "native":
        assert all(fut.cancelled() for fut in queued)
    assert started_count(markers) == 2, "no queued call started"


def test_every_process_is_gone(make_ppool, operation, markers):
    pool = make_ppool(2)
    futs = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    pids = set(pool_pids(pool)) | started_pids(markers)
    assert len(pids) >= 2
    force(pool, operation)
    concurrent.futures.wait(futs, timeout=WAIT)
    wait_until(lambda: all(gone(pid) for pid in pids), f"{pids} to exit")
    pool.shutdown(wait=True)
    assert not set(pids) & children_of_me()
    assert not zombie_children()


def test_submit_afterwards_raises(make_ppool, proc_impl, operation):
    pool = make_ppool(1)
    assert pool.submit(square, 3).result(timeout=WAIT) == 9
    force(pool, operation)
    with pytest.raises(RuntimeError) as info:
        pool.submit(square, 4)
    if proc_impl.name == "native":
        # shut down, not broken (the stdlib's manager thread may mark it
        # broken first, and BrokenProcessPool is a RuntimeError)
        assert type(info.value) is RuntimeError


def test_safe_twice_after_shutdown_and_before_any_worker(make_ppool, operation):
    fresh = make_ppool(2)
    force(fresh, operation)      # nothing started yet
    force(fresh, operation)
    fresh.shutdown(wait=True)
    force(fresh, operation)

    used = make_ppool(1)
    assert used.submit(square, 2).result(timeout=WAIT) == 4
    used.shutdown(wait=True)
    force(used, operation)       # after shutdown: nothing to do
    force(used, operation)


def test_after_a_worker_died(make_ppool, operation):
    # CPython's test_force_shutdown_workers_dead_workers
    pool = make_ppool(1)
    fut = pool.submit(os._exit, 1)
    with pytest.raises(BrokenProcessPool):
        fut.result(timeout=WAIT)
    force(pool, operation)


def test_the_workers_sigterm_handler_runs(make_ppool, tmp_path, markers, proc_impl):
    if proc_impl.name == "stdlib" and not hasattr(concurrent.futures.ProcessPoolExecutor,
                                                  "terminate_workers"):
        pytest.skip("the stdlib has no terminate_workers before 3.14 (the native variant runs)")
    path = str(tmp_path / "sigterm")
    pool = make_ppool(2, initializer=note_sigterm, initargs=(path,))
    futs = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    pool.terminate_workers()
    concurrent.futures.wait(futs, timeout=WAIT)
    assert all(isinstance(f.exception(), BrokenProcessPool) for f in futs)
    with open(path) as f:
        handled = {int(line) for line in f}
    assert started_pids(markers) <= handled


def test_with_statement_returns_after_force(make_ppool, proc_impl, operation, markers):
    # the context manager's shutdown(wait=True) must not wait for the
    # killed calls, only for the processes to go
    with make_ppool(2) as pool:
        futs = [pool.submit(blocked, markers, i) for i in range(2)]
        wait_started(markers, 2)
        force(pool, operation)
    if proc_impl.name == "native":
        # its shutdown(wait=True) returns once the futures are complete
        assert all(f.done() for f in futs)
    assert all(isinstance(f.exception(timeout=WAIT), BrokenProcessPool) for f in futs)


# ------------------------------------------------------- native only

@pytest.mark.parametrize("operation", OPERATIONS)
def test_worker_died_names_the_signal(native_ppool, operation, markers):
    pool = native_ppool(2)
    futs = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    # (from the calls themselves: a worker can start its call before the
    # zygote has marked it alive in _stats())
    pids = started_pids(markers)
    force(pool, operation)
    for fut in futs:
        exc = fut.exception(timeout=WAIT)
        assert type(exc) is native_exec.WorkerDied
        assert exc.signal == SIGNALS[operation]
        assert exc.exitcode == -SIGNALS[operation]
        assert exc.pid in pids
        assert SIGNALS[operation].name in str(exc)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_zygote_worker_or_segment_is_left(native_ppool, operation, markers):
    pool = native_ppool(2)
    big = bytes(300 << 20)   # too big for the region: a named segment
    futs = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    futs.append(pool.submit(len, big))   # queued behind the blocked two
    family = started_pids(markers) | {pool._stats()["zygote_pid"]}
    force(pool, operation)
    concurrent.futures.wait(futs, timeout=WAIT)
    assert futs[2].cancelled()
    wait_until(lambda: all(gone(pid) for pid in family), f"{family} to exit")
    pool.shutdown(wait=True)
    assert pool._stats()["zygote_pid"] == 0
    assert not family & children_of_me()
    assert not zombie_children()
    assert not shm_entries(family | {os.getpid()})


def test_an_ignored_sigterm_is_followed_by_sigkill(native_ppool, markers):
    pool = native_ppool(1, initializer=ignore_sigterm)
    fut = pool.submit(blocked, markers, 0)
    wait_started(markers, 1)
    pool.terminate_workers()
    exc = fut.exception(timeout=WAIT)
    assert type(exc) is native_exec.WorkerDied and exc.signal == signal.SIGKILL
    pool.shutdown(wait=True)
    assert pool._stats()["zygote_pid"] == 0


def test_the_awaitable_of_a_killed_call_fails(native_ppool, markers):
    pool = native_ppool(1)

    async def main():
        pending = asyncio.ensure_future(pool.run(blocked, markers, 0))
        while started_count(markers) < 1:
            await asyncio.sleep(0.002)
        pool.kill_workers()
        with pytest.raises(native_exec.WorkerDied) as info:
            await pending
        return info.value

    exc = asyncio.run(main())
    assert exc.signal == signal.SIGKILL


def test_max_tasks_per_child_and_kill(native_ppool, markers):
    pool = native_ppool(2, max_tasks_per_child=1)
    assert sorted(pool.map(square, range(4))) == [0, 1, 4, 9]
    futs = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    pool.kill_workers()
    assert all(type(f.exception(timeout=WAIT)) is native_exec.WorkerDied for f in futs)


def test_an_unknown_operation_is_refused(native_ppool):
    pool = native_ppool(1)
    with pytest.raises(ValueError, match="Unsupported operation"):
        pool._force_shutdown(operation="invalid operation")
    assert pool.submit(square, 6).result(timeout=WAIT) == 36
