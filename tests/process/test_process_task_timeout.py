"""task_timeout: a call still running that long after a worker took it has
its worker stopped and fails with TaskTimeout; nothing else is touched.

native_exec only (the stdlib has no such parameter).  Stuck calls sleep,
spin, or spin deaf to SIGTERM, so that only killing the process ends them.
What is asserted is structure: which future failed with what, which
process was stopped, which carried on; never how long anything took.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import time

import pytest

from native_exec import ProcessPoolExecutor, TaskTimeout
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, children_of_me, gone, markers, native_ppool, pool_family, shm_entries, square,
    started_pids, stuck, wait_started, wait_until)

pytestmark = pytest.mark.timeout(300)


def sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


@pytest.mark.parametrize("how", ["sleep", "spin", "deaf"])
def test_an_overdue_call_fails_with_task_timeout_and_only_it(native_ppool, markers, how):
    pool = native_ppool(2, task_timeout=0.5)
    doomed = pool.submit(stuck, markers, how)
    wait_started(markers, 1)
    [pid] = started_pids(markers)
    others = [pool.submit(square, i) for i in range(50)]

    exc = doomed.exception(WAIT)
    assert type(exc) is TaskTimeout and isinstance(exc, TimeoutError)
    assert exc.pid == pid and exc.timeout == 0.5
    assert "task_timeout=0.5s" in str(exc) and str(pid) in str(exc)
    assert [f.result(WAIT) for f in others] == [i * i for i in range(50)]
    # stopped, SIGKILLed after the grace period if deaf to SIGTERM
    wait_until(lambda: gone(pid), f"the stopped worker {pid} to exit")
    # replaced: the pool still runs calls, in other processes
    assert pool.submit(os.getpid).result(WAIT) != pid


def test_asyncio_run_fails_with_task_timeout(native_ppool, markers):
    pool = native_ppool(1, task_timeout=0.3)

    async def main():
        with pytest.raises(TaskTimeout) as info:
            await pool.run(stuck, markers, "spin")
        return info.value, await pool.run(square, 7)

    exc, after = asyncio.run(main())
    assert exc.pid == started_pids(markers)[0] and after == 49


def test_time_spent_queued_does_not_count(native_ppool):
    # One worker: the second call waits 1.2 s for it, then runs 1.2 s, 2.4 s
    # after its submit but within its 2 s from the claim.
    pool = native_ppool(1, task_timeout=2.0)
    first = pool.submit(sleep_then, 1.2, 1)
    second = pool.submit(sleep_then, 1.2, 2)
    assert (first.result(WAIT), second.result(WAIT)) == (1, 2)


def test_calls_within_the_timeout_stay_in_one_worker(native_ppool):
    pool = native_ppool(1, task_timeout=30)
    pids = {pool.submit(os.getpid).result(WAIT) for _ in range(200)}
    assert len(pids) == 1


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), (math.nan, ValueError), (math.inf, ValueError),
    ("1", TypeError), (True, TypeError), ([1], TypeError),
])
def test_bad_task_timeout_is_refused(bad, error):
    with pytest.raises(error, match="task_timeout"):
        ProcessPoolExecutor(1, task_timeout=bad)


def test_200_stuck_among_2000_lose_no_future_and_leave_nothing(native_ppool, markers):
    """The issue's bar: 200 stuck calls mixed with 2,000 ordinary ones."""
    pool = native_ppool(2, task_timeout=0.1)
    before_children = children_of_me()
    family = set(pool_family(pool))
    futures, expected = [], []
    for i in range(2200):
        if i % 11 == 5:
            futures.append(pool.submit(stuck, markers, ("sleep", "spin")[i % 2]))
            expected.append(None)
        else:
            futures.append(pool.submit(square, i))
            expected.append(i * i)
    done, not_done = concurrent.futures.wait(futures, timeout=240)
    assert not not_done
    timeouts = 0
    for f, want in zip(futures, expected):
        if want is None:
            assert type(f.exception()) is TaskTimeout
            timeouts += 1
        else:
            assert f.result() == want
    assert timeouts == 200
    stuck_pids = set(started_pids(markers))
    assert len(stuck_pids) == 200  # each stuck call had its own worker, then none
    family |= set(pool_family(pool)) | stuck_pids
    zygote = pool._stats()["zygote_pid"]
    pool.shutdown(wait=True)
    assert all(gone(pid) for pid in family - {os.getpid()})
    assert children_of_me() <= before_children
    assert not shm_entries({os.getpid(), zygote, *family})
