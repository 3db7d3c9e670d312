"""What only native_exec's to_thread does (the stdlib has no counterpart, or
differs on purpose): the NativeFuture it returns in a running loop, which
gather() takes without a Task, the coroutine it returns without a loop,
StopIteration, and the default executor it installs on loops that hide
theirs (uvloop).  The coroutine semantics it shares with asyncio.to_thread
are in test_to_thread_coroutine.py."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import native_exec
from conftest import IMPLS, WAIT, default_max_workers, run, until

NATIVE = IMPLS["native"]


def test_returns_a_native_future_of_the_running_loop():
    async def main():
        fut = native_exec.to_thread(abs, -3)
        assert isinstance(fut, native_exec.NativeFuture)
        assert isinstance(fut, asyncio.Future)
        assert fut.get_loop() is asyncio.get_running_loop()
        return await fut

    assert run(main()) == 3


def test_without_a_running_loop_it_is_a_lazy_coroutine():
    ran = []
    coro = native_exec.to_thread(ran.append, 1)
    assert asyncio.iscoroutine(coro)
    assert not isinstance(coro, asyncio.Future)
    coro.close()  # never run, so never scheduled
    assert ran == []


def test_asyncio_run_of_a_call_made_before_the_loop():
    assert asyncio.run(native_exec.to_thread(divmod, 17, 5)) == (3, 2)


var = contextvars.ContextVar("var", default="unset")


def test_lazy_coroutine_copies_the_context_when_it_runs():
    # As asyncio.to_thread: made before the loop, it copies the context of
    # the task that runs it.
    coro = native_exec.to_thread(var.get)

    async def main():
        var.set("set in the task that awaits")
        return await coro

    assert run(main()) == "set in the task that awaits"


def test_pool_run_without_a_loop_is_a_coroutine(native_pool):
    pool = native_pool(1)
    coro = pool.run(pow, 2, 10)
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == 1024


def test_cancelling_the_future_before_a_worker_takes_it_means_it_never_runs(gate):
    async def main():
        n = await NATIVE.default_workers()
        blockers = [asyncio.ensure_future(native_exec.to_thread(gate.block, i))
                    for i in range(n)]
        await gate.until_started(n)
        ran = []
        victim = asyncio.ensure_future(native_exec.to_thread(ran.append, "ran"))
        assert victim.cancel()   # queued behind the blockers
        gate.open()
        await asyncio.gather(*blockers)
        barrier = threading.Barrier(n, timeout=WAIT)
        await asyncio.gather(*(native_exec.to_thread(barrier.wait) for _ in range(n)))
        return ran, victim.cancelled()

    assert run(main()) == ([], True)


def test_close_gives_up_a_call_not_started(native_pool, gate):
    pool = native_pool(1)

    async def main():
        blocker = asyncio.ensure_future(pool.run(gate.block, "b"))
        await gate.until_started(1)
        ran = []
        victim = asyncio.ensure_future(pool.run(ran.append, "ran"))
        victim.close()   # queued behind the blocker
        gate.open()
        await blocker
        await pool.run(int)  # FIFO on one worker: the victim's turn is over
        return ran, victim.cancelled()

    assert run(main()) == ([], True)


def raise_stop_iteration():
    raise StopIteration("out of items")


def test_stop_iteration_becomes_runtime_error():
    # asyncio.to_thread hangs here (the future refuses StopIteration); the
    # native awaitable raises RuntimeError from it, as a coroutine would.
    async def main():
        await native_exec.to_thread(raise_stop_iteration)

    with pytest.raises(RuntimeError) as info:
        run(main())
    assert isinstance(info.value.__cause__, StopIteration)
    assert info.value.__cause__.args == ("out of items",)


def test_stop_iteration_through_create_task_and_gather(native_pool):
    pool = native_pool(2)

    async def main():
        task = asyncio.create_task(pool.run(raise_stop_iteration))
        results = await asyncio.gather(pool.run(raise_stop_iteration), task,
                                       return_exceptions=True)
        return results

    results = run(main())
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert all(isinstance(r.__cause__, StopIteration) for r in results)


def test_stop_iteration_from_submit_is_kept(native_pool):
    # A concurrent.futures.Future carries StopIteration as the stdlib's does.
    with pytest.raises(StopIteration):
        native_pool(1).submit(raise_stop_iteration).result(timeout=WAIT)


def test_the_call_runs_while_the_loop_runs_other_things(gate):
    # The loop is not blocked by a call in flight.
    async def main():
        fut = asyncio.ensure_future(native_exec.to_thread(gate.block, "done"))
        ticks = 0
        while gate.started == 0 or ticks < 10:
            await asyncio.sleep(0)
            ticks += 1
        assert not fut.done()
        gate.open()
        await until(fut.done, "the call to finish")
        return fut.result()

    assert run(main()) == "done"



def test_gather_makes_no_task_per_call():
    async def main():
        counts = []

        def count_tasks():
            counts.append(len(asyncio.all_tasks(loop)))

        loop = asyncio.get_running_loop()
        calls = [native_exec.to_thread(int) for _ in range(50)]
        calls[-1].add_done_callback(lambda _: count_tasks())
        await asyncio.gather(*calls)
        return counts

    assert run(main()) == [1], "only main() is a task"


def test_the_installed_default_executor_is_native_with_the_stdlib_size():
    async def main():
        await native_exec.to_thread(int)
        return asyncio.get_running_loop()._default_executor

    executor = run(main())
    assert isinstance(executor, native_exec.ThreadPoolExecutor)
    assert executor._max_workers == default_max_workers()
    assert executor._shutdown, "asyncio.run shut it down"


def test_on_uvloop_a_native_default_executor_is_installed_and_joined():
    uvloop = pytest.importorskip("uvloop")

    async def main():
        names = await asyncio.gather(
            *(native_exec.to_thread(lambda: threading.current_thread().name) for _ in range(4)))
        # uvloop hides its default executor; run_in_executor(None) uses ours
        other = await asyncio.get_running_loop().run_in_executor(
            None, lambda: threading.current_thread().name)
        return names, other

    # Threads, not a count: one left by an earlier test may end meanwhile.
    before = set(threading.enumerate())
    loop = uvloop.new_event_loop()
    try:
        names, other = loop.run_until_complete(main())
        # what asyncio.run and uvloop.run do as they close
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    assert all(n.startswith("asyncio_") for n in names + [other]), (names, other)
    assert set(threading.enumerate()) <= before, "uvloop's shutdown joined the workers"
