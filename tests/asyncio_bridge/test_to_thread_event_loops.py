"""to_thread serves any event loop: one loop after another, several loops
running at once in different threads, uvloop's loop (where it is installed),
and a worker that runs an event loop of its own and calls to_thread from it.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import WAIT, run

try:
    import uvloop
except ImportError:  # not part of the ".[test]" extra
    uvloop = None

LOOP_FACTORIES = [pytest.param(asyncio.new_event_loop, id="asyncio")]
if uvloop is not None:
    LOOP_FACTORIES.append(pytest.param(uvloop.new_event_loop, id="uvloop"))


def run_on(loop_factory, coro):
    loop = loop_factory()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class Boom(Exception):
    pass


def fail():
    raise Boom("boom")


@pytest.mark.parametrize("loop_factory", LOOP_FACTORIES)
def test_results_errors_and_timeouts_on_each_loop(impl, loop_factory, gate):
    async def main():
        results = await asyncio.gather(*(impl.to_thread(pow, i, 3) for i in range(100)))
        with pytest.raises(Boom):
            await impl.to_thread(fail)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(impl.to_thread(gate.block), timeout=0.05)
        gate.open()
        task = asyncio.ensure_future(impl.to_thread(threading.get_ident))
        return results, await task

    results, ident = run_on(loop_factory, main())
    assert results == [i ** 3 for i in range(100)]
    assert ident != threading.get_ident()


def test_one_loop_after_another(impl):
    for round_ in range(20):
        assert run(impl.to_thread(divmod, round_, 7)) == divmod(round_, 7)


def test_loops_in_several_threads_at_once(impl):
    # Each thread's loop gets exactly its own results, while all of them
    # have calls in flight at the same time (the barrier needs every loop).
    n_loops = 4
    barrier = threading.Barrier(n_loops, timeout=WAIT)
    results = {}
    errors = []

    async def main(k):
        futs = [impl.to_thread(lambda i=i: (k, i)) for i in range(200)]
        await asyncio.sleep(0)
        await impl.to_thread(barrier.wait)
        return await asyncio.gather(*futs)

    def thread_main(k):
        try:
            results[k] = asyncio.run(main(k))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread_main, args=(k,)) for k in range(n_loops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert errors == []
    assert results == {k: [(k, i) for i in range(200)] for k in range(n_loops)}


def test_worker_that_runs_its_own_loop_with_to_thread(impl):
    # A function run by to_thread may itself run a loop and call to_thread
    # (a sync library wrapping async code).  With asyncio.to_thread each
    # loop has its own executor; all the outer calls are in flight at once,
    # as many as the outer executor has workers, plus one.
    async def main():
        n = await impl.default_workers()
        barrier = threading.Barrier(n, timeout=WAIT)

        def sync_wrapper(i):
            if i < n:
                barrier.wait()  # every outer worker is busy now

            async def inner():
                return await asyncio.wait_for(impl.to_thread(pow, i, 2), timeout=5)

            return asyncio.run(inner())

        return n, await asyncio.gather(*(impl.to_thread(sync_wrapper, i)
                                         for i in range(n + 1)))

    n, results = run(main())
    assert results == [i * i for i in range(n + 1)]


@pytest.mark.parametrize("loop_factory", LOOP_FACTORIES)
def test_each_loop_keeps_its_own_default_executor(impl, loop_factory):
    # Two loops used in turns: shutting one's default executor down ends
    # to_thread there and nowhere else (uvloop hides its executor, so
    # native_exec remembers the pool it installed; that memory must follow
    # the loop, not the last call).
    a, b = loop_factory(), loop_factory()
    try:
        for loop in (a, b, a, b):
            assert loop.run_until_complete(impl.to_thread(pow, 2, 5)) == 32
        a.run_until_complete(a.shutdown_default_executor())
        with pytest.raises(RuntimeError):
            a.run_until_complete(impl.to_thread(pow, 2, 5))
        assert b.run_until_complete(impl.to_thread(pow, 3, 3)) == 27
        with pytest.raises(RuntimeError):
            a.run_until_complete(impl.to_thread(pow, 2, 5))
        assert b.run_until_complete(impl.to_thread(pow, 3, 4)) == 81
    finally:
        for loop in (a, b):
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
