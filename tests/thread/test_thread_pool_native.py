"""What only native_exec's ThreadPoolExecutor does: pool.run (to_thread on
this pool), the _stats() snapshot, completions coalesced into one wake-up of
the loop, a loop closed under a call in flight, and shutdown(wait=True) from
one of the pool's own workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
from concurrent.futures.thread import BrokenThreadPool

import pytest

import native_exec

from conftest import WAIT, run, wait_until


def test_is_a_stdlib_thread_pool_executor(native_pool):
    pool = native_pool(1)
    assert isinstance(pool, concurrent.futures.ThreadPoolExecutor)
    assert isinstance(pool, concurrent.futures.Executor)


def test_run_returns_a_native_future(native_pool):
    pool = native_pool(2, thread_name_prefix="runner")

    async def main():
        fut = pool.run(lambda a, b=0: (a, b, threading.current_thread().name), 1, b=2)
        assert isinstance(fut, native_exec.NativeFuture)
        assert fut.get_loop() is asyncio.get_running_loop()
        return await fut

    a, b, name = run(main())
    assert (a, b) == (1, 2) and name.startswith("runner_")


def test_run_after_shutdown_raises(native_pool):
    pool = native_pool(1)
    pool.shutdown()

    async def main():
        with pytest.raises(RuntimeError):
            pool.run(int)

    run(main())


def test_run_on_a_broken_pool_raises(native_pool, caplog):
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")

    def bad_init():
        raise ValueError("nope")

    pool = native_pool(1, initializer=bad_init)

    async def main():
        with pytest.raises(BrokenThreadPool):
            await pool.run(int)
        with pytest.raises(BrokenThreadPool):
            pool.run(int)

    run(main())
    assert pool._stats()["broken"] is True
    assert pool._broken


def test_stats_follow_the_pool(native_pool, gate):
    pool = native_pool(2)
    stats = pool._stats()
    assert stats == {"threads": 0, "idle": 0, "queued": 0, "max_workers": 2,
                     "shutdown": False, "broken": False}
    futs = [pool.submit(gate.block, i) for i in range(5)]
    gate.wait_started(2)
    stats = pool._stats()
    assert (stats["threads"], stats["idle"], stats["queued"]) == (2, 0, 3)
    gate.open()
    assert [f.result(timeout=WAIT) for f in futs] == list(range(5))
    wait_until(lambda: pool._stats()["idle"] == 2, "both workers idle")
    assert pool._stats()["queued"] == 0
    pool.shutdown(wait=True)
    stats = pool._stats()
    assert (stats["threads"], stats["shutdown"]) == (0, True)
    assert pool._shutdown is True


def test_completions_are_coalesced_into_one_wake_up(native_pool):
    # While the loop's thread is busy, 200 calls finish; the loop is woken
    # once for all of them, not once per call.
    pool = native_pool(4)
    finished = []
    lock = threading.Lock()

    def work(i):
        with lock:
            finished.append(i)
        return i

    async def main():
        loop = asyncio.get_running_loop()
        wakeups = []
        original = loop.call_soon_threadsafe

        def counting(*args, **kwargs):
            wakeups.append(args)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting
        # started at once (ensure_future), not when gather takes them
        futs = [asyncio.ensure_future(pool.run(work, i)) for i in range(200)]
        # Block the loop until every call ran and every worker is idle again
        # (a worker posts its result before it goes idle).
        wait_until(lambda: len(finished) == 200 and pool._stats()["queued"] == 0
                   and pool._stats()["idle"] == pool._stats()["threads"],
                   "all calls to finish")
        results = await asyncio.gather(*futs)
        return results, len(wakeups)

    results, wakeups = run(main())
    assert results == list(range(200))
    assert wakeups == 1


def test_results_are_set_on_the_loops_thread(native_pool):
    pool = native_pool(2)

    async def main():
        loop_thread = threading.get_ident()
        seen = []
        futs = [pool.run(abs, -i) for i in range(20)]
        for f in futs:
            f.add_done_callback(lambda _f: seen.append(threading.get_ident()))
        await asyncio.gather(*futs)
        await asyncio.sleep(0)
        return loop_thread, seen

    loop_thread, seen = run(main())
    assert seen == [loop_thread] * 20


def test_loop_closed_while_a_call_runs(native_pool, gate, monkeypatch):
    # The call finishes after its loop is gone: its result is dropped
    # quietly (nothing can await it), and the pool goes on.
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    pool = native_pool(1)
    loop = asyncio.new_event_loop()

    async def start():
        return asyncio.ensure_future(pool.run(gate.block, "orphan"))

    fut = loop.run_until_complete(start())
    gate.wait_started(1)
    loop.close()
    gate.open()
    wait_until(lambda: gate.finished == 1 and pool._stats()["idle"] == 1,
               "the orphan call to end")
    assert not fut.done()
    assert unraisable == []
    assert pool.submit(abs, -1).result(timeout=WAIT) == 1


def test_shutdown_with_wait_from_a_worker(native_pool, gate):
    # A call that shuts its own pool down cannot wait for itself; the other
    # workers are waited for.  (The stdlib raises RuntimeError here, from
    # joining its own thread.)
    pool = native_pool(2)
    other = pool.submit(gate.block, "other")
    gate.wait_started(1)

    def shut_down_own_pool():
        pool.shutdown(wait=True)
        return pool._stats()["threads"]

    fut = pool.submit(shut_down_own_pool)
    # The shutdown waits for `other`, which waits for the gate.
    wait_until(lambda: pool._stats()["shutdown"], "shutdown to start")
    assert not fut.done()
    gate.open()
    assert fut.result(timeout=WAIT) == 1  # only the caller's own worker is left
    assert other.result(timeout=WAIT) == "other"


def test_many_loops_each_get_their_own_bridge(native_pool):
    pool = native_pool(2)

    async def main(k):
        return await asyncio.gather(*(pool.run(lambda i=i: (k, i)) for i in range(50)))

    for k in range(5):
        assert run(main(k)) == [(k, i) for i in range(50)]


def test_run_awaited_in_a_task_that_is_cancelled(native_pool, gate):
    pool = native_pool(1)

    async def main():
        blocker = asyncio.ensure_future(pool.run(gate.block, "b"))
        await gate.until_started(1)
        ran = []

        async def awaiter():
            return await pool.run(ran.append, "ran")

        task = asyncio.create_task(awaiter())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.open()
        await blocker
        await pool.run(int)
        return ran

    assert run(main()) == []


def os_thread_names():
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:   # gone meanwhile
            pass
    return names


def os_thread_states(prefix):
    """For a failure message: each OS thread named prefix*, with its state
    and whether the kernel has it exiting (PF_EXITING: user space done)."""
    states = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if name.startswith(prefix):
            states.append((name, fields[0], bool(int(fields[6]) & 0x4)))
    return states


def test_concurrent_shutdowns_each_wait_for_the_os_threads(native_pool):
    # Two threads shut the pool down at once: each returns only when every
    # worker's OS thread has been joined, not just done with Python, so a
    # fork right after copies nothing an exiting thread still holds.  A
    # joined thread may still be listed for a moment: the kernel wakes the
    # joiner (clearing the thread's tid) before it releases the task, but
    # by then the task is marked exiting, with nothing left in user space.
    for round_ in range(20):
        prefix = f"sd{round_}"
        pool = native_pool(4, thread_name_prefix=prefix)
        barrier = threading.Barrier(4, timeout=WAIT)
        [f.result(timeout=WAIT) for f in [pool.submit(barrier.wait) for _ in range(4)]]
        assert sum(n.startswith(prefix + "_") for n in os_thread_names()) == 4
        start = threading.Barrier(2, timeout=WAIT)
        left = []

        def shut():
            start.wait()
            pool.shutdown(wait=True)
            left.append([s for s in os_thread_states(prefix + "_") if not s[2]])

        other = threading.Thread(target=shut)
        other.start()
        shut()
        other.join(WAIT)
        assert left == [[], []], f"round {round_}: (name, state, exiting) not exiting: {left}"
