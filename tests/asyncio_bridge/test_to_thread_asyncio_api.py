"""to_thread's awaitable works with asyncio's combinators as the stdlib's
does: await, gather (with and without return_exceptions), create_task,
ensure_future, wait_for (with a result and with a timeout), wait,
as_completed, shield and, from 3.11, TaskGroup.

Blocking calls wait on a Gate the test opens, so which call finishes when is
decided by the test, not by the clock."""

from __future__ import annotations

import asyncio
import sys

import pytest

import native_exec
from conftest import run


class Boom(Exception):
    pass


def fail(value):
    raise Boom(value)


def double(x):
    return 2 * x


def test_await(impl):
    async def main():
        return await impl.to_thread(double, 21)

    assert run(main()) == 42


def test_gather_keeps_order(impl, make_gate):
    # Calls finish in the reverse order of their positions; gather still
    # returns results by position.
    gates = [make_gate() for _ in range(3)]

    async def main():
        futs = [asyncio.ensure_future(impl.to_thread(g.block, i))
                for i, g in enumerate(gates)]
        all_of_them = asyncio.gather(*futs)
        for i in reversed(range(3)):
            await gates[i].until_started(1)
            gates[i].open()
            await futs[i]
            assert [f.done() for f in futs] == [j >= i for j in range(3)]
        return await all_of_them

    assert run(main()) == [0, 1, 2]


def test_gather_raises_the_first_exception(impl):
    async def main():
        await asyncio.gather(impl.to_thread(double, 1), impl.to_thread(fail, "x"))

    with pytest.raises(Boom, match="x"):
        run(main())


def test_gather_return_exceptions(impl):
    async def main():
        return await asyncio.gather(impl.to_thread(double, 1),
                                    impl.to_thread(fail, "x"),
                                    impl.to_thread(double, 3),
                                    return_exceptions=True)

    first, error, last = run(main())
    assert (first, last) == (2, 6)
    assert isinstance(error, Boom) and error.args == ("x",)


def test_create_task(impl):
    async def main():
        task = asyncio.create_task(impl.to_thread(double, 5))
        assert isinstance(task, asyncio.Task)
        return await task

    assert run(main()) == 10


def test_create_task_with_an_exception(impl):
    async def main():
        task = asyncio.create_task(impl.to_thread(fail, "in task"))
        await asyncio.wait([task])
        return task.exception()

    exc = run(main())
    assert isinstance(exc, Boom) and exc.args == ("in task",)


def test_ensure_future(impl):
    async def main():
        fut = asyncio.ensure_future(impl.to_thread(double, 4))
        assert asyncio.isfuture(fut)
        return await fut

    assert run(main()) == 8


def test_wait_for_result(impl):
    async def main():
        return await asyncio.wait_for(impl.to_thread(double, 7), timeout=WAIT_FOR)

    assert run(main()) == 14


WAIT_FOR = 30


def test_wait_for_timeout(impl, gate):
    # The call cannot finish before the gate opens, and the gate opens only
    # after wait_for gave up: the timeout is the only way out.
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(impl.to_thread(gate.block, "late"), timeout=0.05)
        assert gate.finished == 0
        gate.open()
        # The pool still works afterwards.
        return await impl.to_thread(double, 2)

    assert run(main()) == 4


def test_wait_all_completed(impl):
    async def main():
        futs = [asyncio.create_task(impl.to_thread(double, i)) for i in range(5)]
        done, pending = await asyncio.wait(futs)
        assert pending == set() and done == set(futs)
        return [f.result() for f in futs]

    assert run(main()) == [0, 2, 4, 6, 8]


def test_wait_first_completed(impl, gate):
    async def main():
        slow = asyncio.create_task(impl.to_thread(gate.block, "slow"))
        await gate.until_started(1)
        fast = asyncio.create_task(impl.to_thread(double, 1))
        done, pending = await asyncio.wait({slow, fast},
                                           return_when=asyncio.FIRST_COMPLETED)
        assert (done, pending) == ({fast}, {slow})
        gate.open()
        return await slow

    assert run(main()) == "slow"


def test_wait_first_exception(impl, gate):
    async def main():
        slow = asyncio.create_task(impl.to_thread(gate.block, "slow"))
        await gate.until_started(1)
        bad = asyncio.create_task(impl.to_thread(fail, "bad"))
        done, pending = await asyncio.wait({slow, bad},
                                           return_when=asyncio.FIRST_EXCEPTION)
        assert (done, pending) == ({bad}, {slow})
        gate.open()
        return await slow

    assert run(main()) == "slow"


def test_wait_timeout_leaves_blocked_calls_pending(impl, gate):
    async def main():
        slow = asyncio.create_task(impl.to_thread(gate.block, "slow"))
        done, pending = await asyncio.wait({slow}, timeout=0.05)
        assert (done, pending) == (set(), {slow})
        gate.open()
        return await slow

    assert run(main()) == "slow"


def test_wait_on_ensure_future_of_calls_stdlib():
    # ensure_future is asyncio's other way to make a to_thread call into
    # something asyncio.wait accepts (3.11+ refuses bare coroutines).
    async def main():
        futs = [asyncio.ensure_future(asyncio.to_thread(double, i)) for i in range(3)]
        done, pending = await asyncio.wait(futs)
        assert pending == set() and done == set(futs)
        return [f.result() for f in futs]

    assert run(main()) == [0, 2, 4]


def test_native_wait_takes_tasks_not_the_future_itself():
    # A documented difference: ensure_future returns native_exec's future
    # itself, which is also a coroutine, and asyncio.wait refuses coroutines
    # on 3.11+ (3.10 accepts them with a DeprecationWarning).  create_task,
    # as with asyncio.to_thread, is the way to hand calls to asyncio.wait.
    async def main():
        fut = native_exec.to_thread(double, 1)
        assert asyncio.ensure_future(fut) is fut
        if sys.version_info >= (3, 11):
            with pytest.raises(TypeError, match="coroutines is forbidden"):
                await asyncio.wait([fut])
        await fut
        tasks = [asyncio.create_task(native_exec.to_thread(double, i)) for i in range(3)]
        done, pending = await asyncio.wait(tasks)
        assert pending == set() and done == set(tasks)
        return [t.result() for t in tasks]

    assert run(main()) == [0, 2, 4]


def test_as_completed_yields_in_completion_order(impl, make_gate):
    # Calls are let finish one at a time, in an order unlike submission's.
    order = [2, 0, 3, 1]
    gates = [make_gate() for _ in order]

    async def main():
        futs = [impl.to_thread(g.block, i) for i, g in enumerate(gates)]
        seen = []
        iterator = asyncio.as_completed(futs)
        for expected in order:
            # (Up to 3.12 as_completed schedules the calls on the first next().)
            next_done = next(iterator)
            await gates[expected].until_started(1)
            gates[expected].open()
            seen.append(await next_done)
        return seen

    assert run(main()) == order


def test_as_completed_with_an_exception(impl):
    async def main():
        out = []
        for fut in asyncio.as_completed([impl.to_thread(double, 1),
                                         impl.to_thread(fail, "x")]):
            try:
                out.append(await fut)
            except Boom as exc:
                out.append(exc.args)
        return sorted(out, key=repr)

    assert run(main()) == sorted([2, ("x",)], key=repr)


def test_shield_keeps_the_call_when_the_outer_awaiter_is_cancelled(impl, gate):
    async def main():
        inner = asyncio.ensure_future(impl.to_thread(gate.block, "kept"))
        outer = asyncio.ensure_future(asyncio.shield(inner))
        await gate.until_started(1)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert not inner.cancelled()
        gate.open()
        return await inner

    assert run(main()) == "kept"


def test_wait_for_a_shielded_call_times_out_and_the_call_finishes(impl, gate):
    async def main():
        inner = asyncio.ensure_future(impl.to_thread(gate.block, "kept"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(inner), timeout=0.05)
        assert not inner.done()
        gate.open()
        return await inner

    assert run(main()) == "kept"


def test_shield_of_a_finished_call(impl):
    async def main():
        return await asyncio.shield(impl.to_thread(double, 8))

    assert run(main()) == 16


# TaskGroup exists from 3.11 on: the tests are defined only where it does.
if sys.version_info >= (3, 11):

    def test_task_group_results(impl):
        async def main():
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(impl.to_thread(double, i)) for i in range(10)]
            return [t.result() for t in tasks]

        assert run(main()) == [2 * i for i in range(10)]

    def test_task_group_failure_cancels_the_others(impl, gate):
        async def main():
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821
                async with asyncio.TaskGroup() as tg:
                    blocked = tg.create_task(impl.to_thread(gate.block, "never"))
                    await gate.until_started(1)
                    tg.create_task(impl.to_thread(fail, "group"))
            assert blocked.cancelled()
            # The call that was running still runs to its end.
            assert gate.finished == 0
            gate.open()
            return info.value

        group = run(main())
        assert [type(e) for e in group.exceptions] == [Boom]
        assert group.exceptions[0].args == ("group",)
