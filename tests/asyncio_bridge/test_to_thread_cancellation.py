"""A to_thread whose awaiting side is cancelled before its call started
never runs; one cancelled while running runs to its end, its result is
dropped, and the pool goes on.

Structure, not timing: every worker is occupied by a call blocked on a gate,
so the victim can only be queued; it is cancelled there, the gate opens, and
then calls that need every worker at once (a barrier of the pool's size) run:
they can only all start once every call queued before them, the victim
included, was taken and finished.  The victim's flag then tells."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import WAIT, run, until


async def occupy_then_cancel(impl, n, call, gate, ran, how):
    """Occupy n workers, queue a victim through call(), cancel it with how."""
    blockers = [call(gate.block, i) for i in range(n)]
    blockers = [asyncio.ensure_future(b) for b in blockers]
    await gate.until_started(n)

    victim = asyncio.ensure_future(call(ran.append, "victim ran"))
    # Let the stdlib's coroutine reach run_in_executor: the call is queued.
    for _ in range(5):
        await asyncio.sleep(0)
    assert gate.started == n  # every worker is still blocked
    await how(victim)
    assert victim.cancelled()
    # With the stdlib, the cancel reaches the executor's future through a
    # callback of the loop: let it run before any worker can take the call.
    for _ in range(3):
        await asyncio.sleep(0)

    gate.open()
    assert await asyncio.gather(*blockers) == list(range(n))
    barrier = threading.Barrier(n, timeout=WAIT)
    await asyncio.gather(*(call(barrier.wait) for _ in range(n)))
    return ran


async def cancel_directly(victim):
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim


async def cancel_by_wait_for(victim):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(victim, timeout=0.01)


@pytest.mark.parametrize("how", [cancel_directly, cancel_by_wait_for],
                         ids=["cancel", "wait_for_timeout"])
def test_cancelled_before_start_never_runs_default_pool(impl, gate, how):
    async def main():
        n = await impl.default_workers()
        return await occupy_then_cancel(impl, n, impl.to_thread, gate, [], how)

    assert run(main()) == []


@pytest.mark.parametrize("workers", [1, 3])
def test_cancelled_before_start_never_runs_own_pool(impl, make_pool, gate, workers):
    pool = make_pool(workers)

    def call(fn, *args):
        return impl.to_thread_on(pool, fn, *args)

    async def main():
        return await occupy_then_cancel(impl, workers, call, gate, [], cancel_directly)

    assert run(main()) == []


def test_control_uncancelled_victim_runs(impl, make_pool, gate):
    # The same structure without the cancel: the victim must run, which shows
    # the structure above does let queued calls run.
    pool = make_pool(2)

    async def main():
        ran = []
        blockers = [asyncio.ensure_future(impl.to_thread_on(pool, gate.block, i))
                    for i in range(2)]
        await gate.until_started(2)
        victim = asyncio.ensure_future(impl.to_thread_on(pool, ran.append, "ran"))
        for _ in range(5):
            await asyncio.sleep(0)
        gate.open()
        await asyncio.gather(*blockers, victim)
        return ran

    assert run(main()) == ["ran"]


def test_cancelled_while_running_finishes_and_the_pool_goes_on(impl, make_pool, gate):
    pool = make_pool(1)

    async def main():
        running = asyncio.ensure_future(impl.to_thread_on(pool, gate.block, "dropped"))
        await gate.until_started(1)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert gate.finished == 0  # the call is still inside the function
        gate.open()
        # The one worker finishes the cancelled call, then serves the next.
        value = await impl.to_thread_on(pool, threading.current_thread)
        return value, gate.finished

    worker, finished = run(main())
    assert finished == 1
    assert worker is not threading.main_thread()


def test_cancelling_a_task_that_awaits_the_call(impl, gate):
    # The task is cancelled; the call was running, so it still completes.
    async def waiter():
        return await impl.to_thread(gate.block, "x")

    async def main():
        task = asyncio.create_task(waiter())
        await gate.until_started(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.finished == 0
        gate.open()
        await until(lambda: gate.finished == 1, "the cancelled call to end")
        return await impl.to_thread(len, "four")

    assert run(main()) == 4
