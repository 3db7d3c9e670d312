"""cancel_running: cancel() on a call a worker is running stops that worker
and cancels the future; the asyncio side's cancellation does the same.

native_exec only: the stdlib's cancel() of a running call returns False,
which is also what native_exec does without cancel_running (see
test_process_cancel.py).  The stuck calls only end when killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, gone, markers, native_ppool, open_gate, square, started_count, started_pids,
    stuck, wait_started, wait_until)

pytestmark = pytest.mark.timeout(180)


def worker_pids(pool):
    return set(pool._stats()["worker_pids"])


@pytest.mark.parametrize("how", ["sleep", "deaf"])
def test_cancel_stops_the_running_call_and_only_it(native_ppool, markers, how):
    pool = native_ppool(2, cancel_running=True)
    victim = pool.submit(stuck, markers, how)
    wait_started(markers, 1)
    [pid] = started_pids(markers)
    calls = []
    victim.add_done_callback(calls.append)
    others = [pool.submit(square, i) for i in range(50)]

    assert victim.running()
    assert victim.cancel() and victim.cancelled() and victim.done()
    with pytest.raises(concurrent.futures.CancelledError):
        victim.result(0)
    done, _ = concurrent.futures.wait([victim], timeout=0)
    assert done == {victim}
    assert [f.result(WAIT) for f in others] == [i * i for i in range(50)]
    wait_until(lambda: gone(pid) and pid not in worker_pids(pool),
               f"the stopped worker {pid} to be buried")
    # the collector buried it without touching the cancelled future again
    assert calls == [victim] and victim.cancelled()
    assert pool.submit(os.getpid).result(WAIT) != pid


def test_a_queued_call_is_withdrawn_not_stopped(native_ppool, markers):
    pool = native_ppool(1, cancel_running=True)
    running = pool.submit(blocked, markers, "first")
    wait_started(markers, 1)
    queued = pool.submit(blocked, markers, "second")
    assert queued.cancel() and queued.cancelled()
    open_gate(markers)
    value, pid = running.result(WAIT)
    assert value == "first" and started_count(markers) == 1
    assert pool.submit(os.getpid).result(WAIT) == pid  # nobody was stopped


def test_a_finished_call_cannot_be_cancelled(native_ppool):
    pool = native_ppool(1, cancel_running=True)
    f = pool.submit(square, 3)
    assert f.result(WAIT) == 9
    assert not f.cancel() and not f.cancelled()


def test_without_cancel_running_a_running_call_runs_on(native_ppool, markers):
    pool = native_ppool(1)
    f = pool.submit(blocked, markers, "kept")
    wait_started(markers, 1)
    assert not f.cancel() and f.running()
    open_gate(markers)
    assert f.result(WAIT)[0] == "kept"


def test_wait_for_stops_the_work_not_just_the_waiting(native_ppool, markers):
    pool = native_ppool(1, cancel_running=True)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.run(stuck, markers, "spin"), 0.5)
        return await pool.run(os.getpid)

    after = asyncio.run(main())
    [pid] = started_pids(markers)
    assert after != pid
    wait_until(lambda: gone(pid), f"the stopped worker {pid} to exit")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")
def test_task_group_cancellation_stops_its_calls(native_ppool, markers):
    pool = native_ppool(2, cancel_running=True)

    async def fail_soon():
        await asyncio.get_running_loop().run_in_executor(None, wait_started, markers, 2)
        raise ValueError("stop the group")

    async def main():
        with pytest.raises(ExceptionGroup):
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pool.run(stuck, markers, "sleep"))
                tg.create_task(pool.run(stuck, markers, "spin"))
                tg.create_task(fail_soon())

    asyncio.run(main())
    pids = started_pids(markers)
    assert len(pids) == 2
    wait_until(lambda: all(gone(pid) for pid in pids), "both stopped workers to exit")
    assert pool.submit(square, 5).result(WAIT) == 25
