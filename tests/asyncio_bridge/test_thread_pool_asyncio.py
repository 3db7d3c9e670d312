"""A ThreadPoolExecutor serves asyncio: loop.run_in_executor(pool, ...), and
as the loop's default executor, which asyncio.to_thread and
run_in_executor(None, ...) then use."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import WAIT, run


class Boom(Exception):
    pass


def fail():
    raise Boom("in executor")


def test_run_in_executor(make_pool):
    pool = make_pool(2, thread_name_prefix="rie")

    async def main():
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(pool, pow, 3, 4)
        name = await loop.run_in_executor(pool, lambda: threading.current_thread().name)
        with pytest.raises(Boom):
            await loop.run_in_executor(pool, fail)
        return value, name

    value, name = run(main())
    assert value == 81
    assert name in ("rie_0", "rie_1")


def test_run_in_executor_gathered(make_pool):
    pool = make_pool(4)

    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(pool, abs, -i)
                                      for i in range(500)))

    assert run(main()) == list(range(500))


def test_run_in_executor_cancelled_while_queued_never_runs(make_pool, gate):
    pool = make_pool(1)

    async def main():
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(pool, gate.block, "b")
        await gate.until_started(1)
        ran = []
        victim = loop.run_in_executor(pool, ran.append, "ran")
        victim.cancel()
        # The cancel reaches the pool's future from a callback of the loop.
        for _ in range(3):
            await asyncio.sleep(0)
        gate.open()
        assert await blocker == "b"
        await loop.run_in_executor(pool, int)  # one worker, FIFO
        return ran

    assert run(main()) == []


def test_default_executor_serves_asyncio_to_thread(make_pool, impl):
    prefix = f"dflt-{impl.name}"
    pool = make_pool(2, thread_name_prefix=prefix)

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        barrier = threading.Barrier(2, timeout=WAIT)

        def meet():
            barrier.wait()
            return threading.current_thread().name

        names = await asyncio.gather(asyncio.to_thread(meet), asyncio.to_thread(meet))
        other = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        return names, other

    names, other = run(main())
    assert sorted(names) == [f"{prefix}_0", f"{prefix}_1"]
    assert other in names
    # asyncio.run shut the default executor down when it closed the loop.
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_default_executor_with_contextvars(make_pool):
    import contextvars

    var = contextvars.ContextVar("v", default="unset")
    pool = make_pool(1)

    async def main():
        asyncio.get_running_loop().set_default_executor(pool)
        var.set("caller")
        return await asyncio.to_thread(var.get)

    assert run(main()) == "caller"
